"""Coverage-guided fuzzing (atheris, libFuzzer) of the parsers that take outside input.

    python tests/fuzz/harness.py TARGET [libFuzzer options, e.g. -runs=100000 -seed=1]

Targets: ``answers`` (:func:`parse_answers`), ``csv`` (batch scoring and the research
CSV reader), ``definitions`` (the instrument definition loader), ``fhir`` (the
QuestionnaireResponse import) and ``inputs`` (:mod:`outcome.core.inputs`: the JSON
reader of the API and FHIR bodies, ids, dates and times). The answers and FHIR
targets also get the hostile values of issue 16: numbers past Python's digit limit,
other scripts' digits, lone surrogates, times at the edges of the calendar. Each
turns the fuzzer's bytes into an input of the right shape (an answers mapping, CSV
text, a definition file, a resource), mostly by mutating a valid one, and calls the
parser. The contract: a result, or the parser's
documented error (a list of problems, ``HeaderError``, ``AnalysisInputError``,
``DefinitionError``, ``InputError``); any other exception is a crash, which libFuzzer
reports with the input that caused it and a non-zero exit.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import io
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import atheris

# The checkout this file belongs to, before any installed copy of the project.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

# Third-party libraries first, so that only the project's own code is instrumented
# (instrumented pure-Python YAML and JSON Schema would slow every run tenfold).
import fhir.resources.R4B  # noqa: F401
import jsonschema  # noqa: F401
import numpy  # noqa: F401
import yaml

with atheris.instrument_imports():

    from outcome.clinical_significance import AnalysisInputError
    from outcome.clinical_significance import read_pairs
    from outcome.core.answers import AnswerError
    from outcome.core.answers import Answers
    from outcome.core.answers import parse_answers
    from outcome.core.inputs import InputError
    from outcome.core.inputs import ascii_int
    from outcome.core.inputs import load_json
    from outcome.core.inputs import local_time
    from outcome.core.inputs import parse_date
    from outcome.core.inputs import parse_timestamp
    from questionnaires.csv_scoring import HeaderError
    from questionnaires.csv_scoring import score_csv
    from questionnaires.fhir import ResponseError
    from questionnaires.fhir import answers_from_response
    from questionnaires.fhir import questionnaire_response
    from questionnaires.loader import BUILTIN_DIR
    from questionnaires.loader import DefinitionError
    from questionnaires.loader import builtin_library
    from questionnaires.loader import load_definition

DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
LIBRARY = builtin_library()
INSTRUMENTS = list(LIBRARY)
DEFINITIONS = [yaml.safe_load(p.read_text(encoding="utf-8"))
               for p in sorted(BUILTIN_DIR.glob("*.yaml"))]
SCRATCH = Path(tempfile.mkdtemp(prefix="outcome-fuzz-")) / "definition.yaml"
T0 = dt.datetime(2026, 11, 16, 9, tzinfo=dt.UTC)


def scalar(fdp: atheris.FuzzedDataProvider) -> Any:
    """A JSON-ish value of a kind chosen by the input."""
    kind = fdp.ConsumeIntInRange(0, 8)
    if kind == 0:
        return None
    if kind == 1:
        return fdp.ConsumeBool()
    if kind == 2:
        return fdp.ConsumeIntInRange(-5, 12)
    if kind == 3:
        return fdp.ConsumeInt(8)
    if kind == 4:
        return fdp.ConsumeFloat()
    if kind == 5:
        return fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 12))
    if kind == 6:
        return str(fdp.ConsumeIntInRange(-2, 5))
    if kind == 7:
        return [scalar(fdp) for _ in range(fdp.ConsumeIntInRange(0, 2))]
    return {fdp.ConsumeUnicodeNoSurrogates(4): scalar(fdp)
            for _ in range(fdp.ConsumeIntInRange(0, 2))}


# Values that crashed the web edges (issue 16, finding 9): each is a 4xx now.
HOSTILE_TEXT = ("9" * 5000, "1" + "0" * 25, "\u0663", "\uff13", "\u00b2", "\ud800", "\udfff",
                "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "9999-12-31",
                "0001-01-01", "NaN", "1e400", "-0", "+3")


def hostile(fdp: atheris.FuzzedDataProvider) -> Any:
    """A :func:`scalar`, or one of the values that crashed the edges, or text with
    surrogates (for the targets whose input never reaches YAML or an encoder)."""
    kind = fdp.ConsumeIntInRange(0, 3)
    if kind == 0:
        return HOSTILE_TEXT[fdp.ConsumeIntInRange(0, len(HOSTILE_TEXT) - 1)]
    if kind == 1:
        return fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 12))
    if kind == 2:
        return int("9" * fdp.ConsumeIntInRange(1, 60))
    return scalar(fdp)


def mutate(value: Any, fdp: atheris.FuzzedDataProvider, depth: int = 0,
           values: Any = None) -> Any:
    """``value`` with a few parts replaced, dropped or added, as the input says."""
    values = values or scalar
    if depth > 6 or fdp.remaining_bytes() == 0:
        return value
    if isinstance(value, dict) and value:
        keys = list(value)
        key = keys[fdp.ConsumeIntInRange(0, len(keys) - 1)]
        action = fdp.ConsumeIntInRange(0, 3)
        if action == 0:
            del value[key]
        elif action == 1:
            value[key] = values(fdp)
        elif action == 2:
            value[fdp.ConsumeUnicodeNoSurrogates(6)] = values(fdp)
        else:
            value[key] = mutate(value[key], fdp, depth + 1, values)
        return value
    if isinstance(value, list) and value:
        index = fdp.ConsumeIntInRange(0, len(value) - 1)
        action = fdp.ConsumeIntInRange(0, 2)
        if action == 0:
            value.pop(index)
        elif action == 1:
            value[index] = values(fdp)
        else:
            value[index] = mutate(value[index], fdp, depth + 1, values)
        return value
    return values(fdp) if fdp.ConsumeBool() else value


def answers_target(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    instrument = INSTRUMENTS[fdp.ConsumeIntInRange(0, len(INSTRUMENTS) - 1)]
    ids = [item.id for item in instrument.items]
    mapping: dict[Any, Any] = {}
    for _ in range(fdp.ConsumeIntInRange(0, len(ids) + 2)):
        key: Any = ids[fdp.ConsumeIntInRange(0, len(ids) - 1)] if fdp.ConsumeProbability() < 0.9 \
            else fdp.ConsumeUnicodeNoSurrogates(6)
        mapping[key] = hostile(fdp)
    result = parse_answers(instrument, mapping, allow_incomplete=fdp.ConsumeBool())
    assert isinstance(result, Answers) or all(isinstance(e, AnswerError) for e in result)


def csv_target(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    instrument = INSTRUMENTS[fdp.ConsumeIntInRange(0, len(INSTRUMENTS) - 1)]
    header = ["id", *(item.id for item in instrument.items)]
    rows = [",".join(header)] if fdp.ConsumeProbability() < 0.8 else []
    for _ in range(fdp.ConsumeIntInRange(0, 4)):
        cells = [str(scalar(fdp)) if fdp.ConsumeProbability() < 0.4 else
                 str(fdp.ConsumeIntInRange(-1, 5)) for _ in header]
        rows.append(",".join(cells))
    rows.append(fdp.ConsumeUnicodeNoSurrogates(fdp.remaining_bytes()))
    text = "\n".join(rows)
    with contextlib.suppress(HeaderError):
        score_csv(instrument, io.StringIO(text, newline=""), io.StringIO(),
                  skip_invalid=fdp.ConsumeBool(), keep_incomplete=fdp.ConsumeBool())
    research = "id,time,score\n" + text
    with contextlib.suppress(AnalysisInputError):
        read_pairs(io.StringIO(research, newline=""), id_col="id", time_col="time",
                   score_col="score", pre="0", post="1")


def definitions_target(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    if fdp.ConsumeProbability() < 0.15:
        SCRATCH.write_bytes(fdp.ConsumeBytes(fdp.remaining_bytes()))
    else:
        definition = copy.deepcopy(DEFINITIONS[fdp.ConsumeIntInRange(0, len(DEFINITIONS) - 1)])
        for _ in range(fdp.ConsumeIntInRange(1, 4)):
            definition = mutate(definition, fdp)
        SCRATCH.write_text(yaml.dump(definition, Dumper=DUMPER, allow_unicode=True),
                           encoding="utf-8")
    with contextlib.suppress(DefinitionError):
        load_definition(SCRATCH)


def fhir_target(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    if fdp.ConsumeProbability() < 0.1:
        try:
            resource = json.loads(fdp.ConsumeUnicodeNoSurrogates(fdp.remaining_bytes()))
        except ValueError:
            return
    else:
        instrument = INSTRUMENTS[fdp.ConsumeIntInRange(0, len(INSTRUMENTS) - 1)]
        values = {}
        for item in instrument.items:
            if item.options:
                values[item.id] = item.options[fdp.ConsumeIntInRange(
                    0, len(item.options) - 1)].value
            elif item.type == "vas":
                values[item.id] = fdp.ConsumeIntInRange(0, 10)
        answers = parse_answers(instrument, values, allow_incomplete=True)
        if not isinstance(answers, Answers):
            return
        resource = questionnaire_response(instrument, answers, subject="Patient/C-7F3K9Q",
                                          authored=T0)
        for _ in range(fdp.ConsumeIntInRange(0, 4)):
            resource = mutate(resource, fdp, values=hostile)
    result = answers_from_response(LIBRARY, resource)
    assert isinstance(result, tuple) or all(
        isinstance(e, ResponseError | AnswerError) for e in result)


def _nested(fdp: atheris.FuzzedDataProvider) -> str:
    """JSON text, often deeply nested or with long numbers, escapes and brackets in strings."""
    kind = fdp.ConsumeIntInRange(0, 3)
    if kind == 0:
        depth = fdp.ConsumeIntInRange(0, 3000)
        opener = "[" if fdp.ConsumeBool() else '{"a": '
        closer = "]" if opener == "[" else "}"
        return opener * depth + json.dumps(hostile(fdp)) + closer * depth
    if kind == 1:
        return json.dumps(mutate({"name": "X", "items": [1, {"b": "[{"}], "t": "2026-01-01"},
                                 fdp, values=hostile), ensure_ascii=fdp.ConsumeBool())
    if kind == 2:
        return '{"a": "' + "\\" * fdp.ConsumeIntInRange(0, 5) + '"' + "[" * 80 + "]" * 80 + "}"
    return fdp.ConsumeUnicode(fdp.remaining_bytes())


def inputs_target(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    text = _nested(fdp)
    try:
        value = load_json(text)
    except InputError as exc:
        assert exc.code in ("not_json", "too_deep", "number_too_large", "lone_surrogate"), exc
    else:
        json.dumps(value).encode("utf-8")  # what came out can be stored and sent
    raw = fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 40)) if fdp.ConsumeBool() else \
        str(hostile(fdp))
    number = ascii_int(raw)
    assert number is None or 0 <= number < 2**31
    for parse in (parse_date, parse_timestamp):
        with contextlib.suppress(InputError):
            moment = parse(raw)
            assert 1900 <= moment.year <= 2999
    with contextlib.suppress(InputError):
        local_time(raw[:10], raw[10:])


TARGETS = {"answers": answers_target, "csv": csv_target, "definitions": definitions_target,
           "fhir": fhir_target, "inputs": inputs_target}


def main() -> None:
    target = TARGETS[sys.argv[1]]
    os.environ.setdefault("PYTHONHASHSEED", "0")
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
