"""Fuzzing of the parsers that take outside input (issue 9): zero crashes in 100,000
coverage-guided inputs or 5 seconds per target, whichever comes first (atheris;
``tests/fuzz/harness.py``; libFuzzer's ``-runs`` and ``-max_total_time``), plus the inputs
that fuzzing found crashing, kept as regression tests.

``OUTCOME_FUZZ_RUNS`` sets the inputs per target (default 100,000) and
``OUTCOME_FUZZ_SECONDS`` the time budget (default 5); ``make fuzz`` runs each target for
ten minutes. The suite's budget is a smoke run (issue 18): each target starts, takes
inputs (1,672 for the definition loader, 21,197 for the answers in 5 s under load) and
does not crash; the search for new crashes is ``make fuzz``'s
(the definition loader alone needs 274 s for 100,000 inputs, and 5 x 60 s was a tenth
of the SQLite run's worker time). The targets do not touch the database, so they run once, in the
SQLite run.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from outcome.core.answers import parse_answers
from questionnaires.fhir import answers_from_response
from questionnaires.fhir import questionnaire_response
from questionnaires.loader import builtin_library

HARNESS = Path(__file__).parent / "fuzz" / "harness.py"
TARGETS = ("definitions", "answers", "csv", "fhir", "inputs")  # slowest first
RUNS = int(os.environ.get("OUTCOME_FUZZ_RUNS", "100000"))
SECONDS = int(os.environ.get("OUTCOME_FUZZ_SECONDS", "5"))
DONE = re.compile(r"^Done (\d+) runs in (\d+) second")
LIB = builtin_library()


def run_target(target: str, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(HARNESS), target, f"-runs={RUNS}",
         f"-max_total_time={SECONDS}", "-seed=20261201",
         "-max_len=4096", f"-artifact_prefix={tmp_path}/{target}-"],
        capture_output=True, text=True, timeout=1800, cwd=tmp_path)


@pytest.mark.slow
@pytest.mark.no_database
@pytest.mark.parametrize("target", TARGETS)
def test_no_target_crashes(target, tmp_path):
    # One test per target, so that parallel runs (pytest-xdist) spread them over the cores.
    result = run_target(target, tmp_path)
    done = [line for line in result.stderr.splitlines() if line.startswith("Done ")]
    assert result.returncode == 0, f"{target} crashed:\n" + result.stderr[-4000:]
    assert len(done) == 1, result.stderr[-2000:]
    runs, seconds = map(int, DONE.match(done[0]).groups())
    # Every input, or the whole time budget (libFuzzer stops at whichever comes first).
    assert runs == RUNS or seconds >= SECONDS, result.stderr[-2000:]
    print(f"{target}: {done[0]}")


# --- what fuzzing found ----------------------------------------------------------------------
# Each crashed answers_from_response (and so POST /fhir/QuestionnaireResponse, with a 500):
# fhir.resources reads an explicit JSON null as "absent", the import did not.


def _response() -> dict:
    phq = LIB.get("phq9")
    answers = parse_answers(phq, {f"phq9_{i}": 1 for i in range(1, 10)})
    return questionnaire_response(phq, answers, subject="Patient/C-7F3K9Q",
                                  authored=dt.datetime(2026, 11, 16, 9, tzinfo=dt.UTC))


def test_a_null_questionnaire_is_an_error_not_a_crash():
    resource = {**_response(), "questionnaire": None}
    errors = answers_from_response(LIB, resource)
    assert isinstance(errors, list) and errors[0].where == "questionnaire"


def test_null_items_and_answers_count_as_absent():
    resource = {**_response(), "item": None}
    errors = answers_from_response(LIB, resource)
    assert isinstance(errors, list) and {e.code for e in errors} == {"missing"}
    resource = _response()
    resource["item"][0]["answer"] = None  # one item unanswered: PHQ-9 prorates
    _instrument, answers = answers_from_response(LIB, resource)
    assert answers.missing == ("phq9_1",)


def test_a_null_coding_is_no_answer_value():
    resource = _response()
    resource["item"][0]["answer"] = [{"valueCoding": None}]
    errors = answers_from_response(LIB, resource)
    assert isinstance(errors, list) and "no usable answer value" in errors[0].message


def test_the_endpoint_answers_these_with_422(api, make_user, make_client, make_episode):
    therapist = make_user()
    person = make_client(therapist)
    make_episode(person)
    t_api = api(therapist)
    for change in ({"questionnaire": None}, {"item": None}):
        resource = {**_response(), **change, "subject": {"reference": f"Patient/{person.code}"}}
        response = t_api.post("/fhir/QuestionnaireResponse", json=resource)
        assert response.status_code == 422, response.get_data(as_text=True)
        assert response.get_json()["resourceType"] == "OperationOutcome"


# Issue 16 (finding 9): a whole number past Python's 4,300-digit limit crashed
# parse_answers (int() raises ValueError), and so the questionnaire page and the API.


def test_an_answer_past_pythons_digit_limit_is_an_error_not_a_crash():
    phq = LIB.get("phq9")
    for raw in ("9" * 5000, "-" + "9" * 4301):
        errors = parse_answers(phq, {"phq9_1": raw}, allow_incomplete=True)
        assert isinstance(errors, list) and errors[0].code == "wrong_type"


# Issue 17: a translation's answer labels keyed by something other than an option value
# (here "") crashed the definition loader (int("") raises ValueError).


def test_a_translation_of_an_unknown_answer_option_is_a_problem_not_a_crash(tmp_path):
    import yaml

    from questionnaires.loader import DefinitionError
    from questionnaires.loader import load_definition

    source = Path(__file__).parent.parent / "questionnaires" / "definitions" / "phq9.yaml"
    phq = yaml.safe_load(source.read_text(encoding="utf-8"))
    for bad in ("", "x", "7"):
        data = {**phq, "translations": {"ru": {"options": {"phq9_1": {bad: "?"}}}}}
        path = tmp_path / "phq9.yaml"
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        with pytest.raises(DefinitionError) as raised:
            load_definition(path)
        assert "translations.ru.options.phq9_1" in str(raised.value), str(raised.value)
