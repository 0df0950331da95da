"""Coverage-guided fuzzing (atheris, libFuzzer) of the parsers that take outside input.

    python tests/fuzz/harness.py TARGET [libFuzzer options, e.g. -runs=100000 -seed=1]

Targets: ``answers`` (:func:`parse_answers`), ``csv`` (batch scoring and the research
CSV reader), ``definitions`` (the instrument definition loader) and ``fhir`` (the
QuestionnaireResponse import). Each turns the fuzzer's bytes into an input of the
right shape (an answers mapping, CSV text, a definition file, a resource), mostly by
mutating a valid one, and calls the parser. The contract: a result, or the parser's
documented error (a list of problems, ``HeaderError``, ``AnalysisInputError``,
``DefinitionError``); any other exception is a crash, which libFuzzer reports with the
input that caused it and a non-zero exit.
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


def mutate(value: Any, fdp: atheris.FuzzedDataProvider, depth: int = 0) -> Any:
    """``value`` with a few parts replaced, dropped or added, as the input says."""
    if depth > 6 or fdp.remaining_bytes() == 0:
        return value
    if isinstance(value, dict) and value:
        keys = list(value)
        key = keys[fdp.ConsumeIntInRange(0, len(keys) - 1)]
        action = fdp.ConsumeIntInRange(0, 3)
        if action == 0:
            del value[key]
        elif action == 1:
            value[key] = scalar(fdp)
        elif action == 2:
            value[fdp.ConsumeUnicodeNoSurrogates(6)] = scalar(fdp)
        else:
            value[key] = mutate(value[key], fdp, depth + 1)
        return value
    if isinstance(value, list) and value:
        index = fdp.ConsumeIntInRange(0, len(value) - 1)
        action = fdp.ConsumeIntInRange(0, 2)
        if action == 0:
            value.pop(index)
        elif action == 1:
            value[index] = scalar(fdp)
        else:
            value[index] = mutate(value[index], fdp, depth + 1)
        return value
    return scalar(fdp) if fdp.ConsumeBool() else value


def answers_target(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    instrument = INSTRUMENTS[fdp.ConsumeIntInRange(0, len(INSTRUMENTS) - 1)]
    ids = [item.id for item in instrument.items]
    mapping: dict[Any, Any] = {}
    for _ in range(fdp.ConsumeIntInRange(0, len(ids) + 2)):
        key: Any = ids[fdp.ConsumeIntInRange(0, len(ids) - 1)] if fdp.ConsumeProbability() < 0.9 \
            else fdp.ConsumeUnicodeNoSurrogates(6)
        mapping[key] = scalar(fdp)
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
            resource = mutate(resource, fdp)
    result = answers_from_response(LIBRARY, resource)
    assert isinstance(result, tuple) or all(
        isinstance(e, ResponseError | AnswerError) for e in result)


TARGETS = {"answers": answers_target, "csv": csv_target, "definitions": definitions_target,
           "fhir": fhir_target}


def main() -> None:
    target = TARGETS[sys.argv[1]]
    os.environ.setdefault("PYTHONHASHSEED", "0")
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
