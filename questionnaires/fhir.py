"""FHIR mappings: Questionnaire export, QuestionnaireResponse export and import.

Resources are produced as plain dicts in FHIR R4 form and validated with
``fhir.resources.R4B`` (R4B, 4.3.0, is R4's technical correction; Questionnaire and
QuestionnaireResponse are unchanged in it). Import goes through
:func:`outcome.core.answers.parse_answers`, the one validation path.

- Items carry their LOINC code where one exists (PHQ-9 44250-9 ...), answer options
  their LOINC answer code (LA6568-5 ...) and their score as the ``ordinalValue``
  extension; options without a LOINC code use the system ``urn:outcome:<id>:answer``
  with the value as code.
- Structure-only instruments export no item text: licensed wording never leaves the
  clinic through an export.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from outcome.core.answers import AnswerError
from outcome.core.answers import Answers
from outcome.core.answers import parse_answers
from outcome.core.instruments import Instrument
from outcome.core.instruments import Item
from questionnaires.loader import InstrumentLibrary

LOINC = "http://loinc.org"
CANONICAL_BASE = "urn:outcome:Questionnaire"
ORDINAL_VALUE = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue"
MAX_DECIMALS = "http://hl7.org/fhir/StructureDefinition/maxDecimalPlaces"


@dataclass(frozen=True)
class ResponseError:
    """A problem with an imported resource: where in it (a FHIR path) and what."""

    where: str
    message: str


def canonical_url(instrument: Instrument) -> str:
    """The Questionnaire's canonical URL (without version)."""
    return f"{CANONICAL_BASE}/{instrument.id}"


def answer_system(instrument: Instrument) -> str:
    return f"urn:outcome:{instrument.id}:answer"


def _coding(instrument: Instrument, item: Item, value: int) -> dict[str, Any]:
    option = next(o for o in item.options if o.value == value)
    if option.loinc_answer:
        coding = {"system": LOINC, "code": option.loinc_answer}
    else:
        coding = {"system": answer_system(instrument), "code": str(value)}
    if option.label:
        coding["display"] = option.label
    return coding


def _questionnaire_item(instrument: Instrument, item: Item) -> dict[str, Any]:
    out: dict[str, Any] = {"linkId": item.id}
    if item.text:
        out["text"] = item.text
    elif item.label:
        out["prefix"] = item.label
    if item.loinc:
        out["code"] = [{"system": LOINC, "code": item.loinc}]
    if item.type == "text":
        out.update(type="text", maxLength=item.max_length)
        return out
    if item.type == "vas":
        out["type"] = "decimal"
        out["extension"] = [{"url": MIN_VALUE, "valueDecimal": item.minimum},
                            {"url": MAX_VALUE, "valueDecimal": item.maximum},
                            {"url": MAX_DECIMALS, "valueInteger": item.decimals}]
        return out
    out["type"] = "choice"
    out["answerOption"] = [
        {"valueCoding": _coding(instrument, item, option.value),
         "extension": [{"url": ORDINAL_VALUE, "valueDecimal": option.value}]}
        for option in item.options]
    return out


def questionnaire(instrument: Instrument) -> dict[str, Any]:
    """The instrument as an R4 ``Questionnaire`` resource (a dict)."""
    resource: dict[str, Any] = {
        "resourceType": "Questionnaire",
        "id": f"{instrument.id}-{instrument.version}".replace("_", "-"),
        "url": canonical_url(instrument),
        "version": instrument.version,
        "name": "".join(ch for ch in instrument.short_name if ch.isalnum()),
        "title": instrument.name,
        "status": "active",
        "subjectType": ["Patient"],
        "copyright": instrument.licence.attribution,
        "item": [],
    }
    if instrument.loinc_panel:
        resource["code"] = [{"system": LOINC, "code": instrument.loinc_panel,
                             "display": instrument.name}]
    if instrument.stem:
        resource["item"].append({"linkId": "stem", "type": "display", "text": instrument.stem})
    resource["item"].extend(_questionnaire_item(instrument, item) for item in instrument.items)
    return resource


def questionnaire_response(instrument: Instrument, answers: Answers, *, subject: str,
                           authored: dt.datetime, response_id: str | None = None
                           ) -> dict[str, Any]:
    """Validated answers as an R4 ``QuestionnaireResponse`` (a dict).

    ``subject`` is a reference such as ``Patient/C-7F3K9Q``; ``authored`` must be aware.
    Unanswered items are left out, as FHIR expects.
    """
    if authored.tzinfo is None:
        raise ValueError("authored must be timezone-aware")
    items = []
    for item in instrument.items:
        if item.id in answers.values:
            value = answers.values[item.id]
            if item.type == "vas":
                answer: dict[str, Any] = {"valueDecimal": value}
            else:
                answer = {"valueCoding": _coding(instrument, item, int(value))}
        elif item.id in answers.texts:
            answer = {"valueString": answers.texts[item.id]}
        else:
            continue
        entry: dict[str, Any] = {"linkId": item.id, "answer": [answer]}
        if item.text:
            entry["text"] = item.text
        items.append(entry)
    resource: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": f"{canonical_url(instrument)}|{instrument.version}",
        "status": "completed",
        "subject": {"reference": subject},
        "authored": authored.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "item": items,
    }
    if response_id:
        resource["id"] = response_id
    return resource


def validate_resource(resource: dict[str, Any]) -> list[ResponseError]:
    """Check ``resource`` against the FHIR R4B model; empty when it conforms."""
    from fhir.resources.R4B import get_fhir_model_class

    kind = resource.get("resourceType") if isinstance(resource, dict) else None
    if not isinstance(kind, str):
        return [ResponseError("resourceType", "missing; this is not a FHIR resource")]
    try:
        model = get_fhir_model_class(kind)
    except (KeyError, ValueError):
        return [ResponseError("resourceType", f"unknown FHIR resource type {kind!r}")]
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        return [ResponseError(".".join(str(p) for p in err["loc"]) or kind, err["msg"])
                for err in exc.errors()]
    return []


def _value_of(instrument: Instrument, item: Item, answer: dict[str, Any], where: str
              ) -> tuple[Any, ResponseError | None]:
    answer = {key: value for key, value in answer.items() if value is not None}
    if "valueCoding" in answer and item.type in ("likert", "goal"):
        coding = answer["valueCoding"]
        for option in item.options:
            known = _coding(instrument, item, option.value)
            if coding.get("system") == known["system"] and coding.get("code") == known["code"]:
                return option.value, None
        return None, ResponseError(f"{where}.valueCoding", f"{coding.get('system')}|"
                                   f"{coding.get('code')} is not an answer option of {item.id}")
    for key in ("valueInteger", "valueDecimal", "valueString"):
        if key in answer:
            return answer[key], None
    return None, ResponseError(where, f"{item.id}: no usable answer value "
                                      "(expected valueCoding, valueInteger, valueDecimal or "
                                      "valueString)")


def answers_from_response(library: InstrumentLibrary, resource: dict[str, Any]
                          ) -> tuple[Instrument, Answers] | list[ResponseError | AnswerError]:
    """Read a QuestionnaireResponse into validated answers, or list what is wrong.

    The resource must conform to FHIR, be ``completed`` or ``amended``, and name one of
    the library's questionnaires by canonical URL (with ``|version``, or the newest).
    Its answers then go through :func:`parse_answers` like any other.
    """
    errors: list[ResponseError | AnswerError] = list(validate_resource(resource))
    if errors:
        return errors
    if resource["resourceType"] != "QuestionnaireResponse":
        return [ResponseError("resourceType", "expected a QuestionnaireResponse")]
    if resource.get("status") not in ("completed", "amended"):
        return [ResponseError("status", f"is {resource.get('status')!r}; only completed or "
                                        "amended responses can be imported")]
    canonical = resource.get("questionnaire") or ""
    if not isinstance(canonical, str):
        return [ResponseError("questionnaire", "must be the questionnaire's canonical URL")]
    url, _, version = canonical.partition("|")
    if not url.startswith(CANONICAL_BASE + "/"):
        return [ResponseError("questionnaire", f"{canonical!r} is not one of this "
                                               f"system's questionnaires ({CANONICAL_BASE}/...)")]
    try:
        instrument = library.get(url.rsplit("/", 1)[1], version or None)
    except KeyError as exc:
        return [ResponseError("questionnaire", str(exc.args[0]))]

    items = {item.id: item for item in instrument.items}
    mapping: dict[str, Any] = {}
    # fhir.resources reads an explicit null as absent; so does this.
    for index, entry in enumerate(resource.get("item") or []):
        where = f"item[{index}]"
        link_id = entry.get("linkId")
        if link_id == "stem":
            continue
        item = items.get(link_id)
        if item is None:
            errors.append(ResponseError(f"{where}.linkId",
                                        f"{instrument.short_name} has no item {link_id!r}"))
            continue
        if link_id in mapping:
            errors.append(ResponseError(f"{where}.linkId", f"{link_id} appears twice"))
            continue
        answer_list = entry.get("answer") or []
        if len(answer_list) > 1:
            errors.append(ResponseError(f"{where}.answer", f"{link_id} has "
                                        f"{len(answer_list)} answers; one is expected"))
            continue
        if not answer_list:
            continue
        value, problem = _value_of(instrument, item, answer_list[0], f"{where}.answer[0]")
        if problem:
            errors.append(problem)
        else:
            mapping[link_id] = value
    if errors:
        return errors
    parsed = parse_answers(instrument, mapping)
    if isinstance(parsed, list):
        return list(parsed)
    return instrument, parsed
