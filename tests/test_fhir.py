"""FHIR R4 Questionnaire export and QuestionnaireResponse round trips."""

from __future__ import annotations

import datetime as dt

import pytest

from outcome.core.answers import AnswerError
from outcome.core.answers import Answers
from outcome.core.answers import parse_answers
from questionnaires.fhir import LOINC
from questionnaires.fhir import ORDINAL_VALUE
from questionnaires.fhir import ResponseError
from questionnaires.fhir import answers_from_response
from questionnaires.fhir import questionnaire
from questionnaires.fhir import questionnaire_response
from questionnaires.fhir import validate_resource
from questionnaires.loader import builtin_library

LIB = builtin_library()
AUTHORED = dt.datetime(2026, 11, 16, 9, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize("instrument_id", sorted(i.id for i in LIB))
def test_every_questionnaire_validates(instrument_id):
    resource = questionnaire(LIB.get(instrument_id))
    assert validate_resource(resource) == []


def test_phq9_questionnaire_carries_loinc_codes_and_scores():
    resource = questionnaire(LIB.get("phq9"))
    assert resource["code"] == [{"system": LOINC, "code": "44249-1",
                                 "display": "Patient Health Questionnaire-9 (PHQ-9)"}]
    item9 = next(i for i in resource["item"] if i["linkId"] == "phq9_9")
    assert item9["code"] == [{"system": LOINC, "code": "44260-8"}]
    first = item9["answerOption"][0]
    assert first["valueCoding"] == {"system": LOINC, "code": "LA6568-5",
                                    "display": "Not at all"}
    assert first["extension"] == [{"url": ORDINAL_VALUE, "valueDecimal": 0}]
    assert "Pfizer" in resource["copyright"]


def test_structure_only_instruments_export_no_wording():
    resource = questionnaire(LIB.get("wai_sr"))
    assert all("text" not in item for item in resource["item"])
    assert validate_resource(resource) == []


def test_vas_items_export_their_range():
    item = questionnaire(LIB.get("srs_vas"))["item"][0]
    assert item["type"] == "decimal"
    assert {e["url"].rsplit("/", 1)[1]: list(e.values())[1] for e in item["extension"]} == {
        "minValue": 0.0, "maxValue": 10.0, "maxDecimalPlaces": 1}


@pytest.mark.parametrize(("instrument_id", "values"), [
    ("phq9", {**{f"phq9_{i}": i % 4 for i in range(1, 10)}, "phq9_10": 2}),
    ("gad7", {f"gad7_{i}": 3 for i in range(1, 7)}),  # one missing, prorated
    ("srs_vas", {"srs_1": 9.5, "srs_2": "8.0", "srs_3": 10, "srs_4": 0}),
    ("who5", {f"who5_{i}": 5 - i for i in range(1, 6)}),
    ("gbo", {"gbo_1": 4, "gbo_3": 10}),
])
def test_round_trip_through_questionnaire_response(instrument_id, values):
    instrument = LIB.get(instrument_id)
    answers = parse_answers(instrument, values)
    assert isinstance(answers, Answers)
    resource = questionnaire_response(instrument, answers, subject="Patient/C-7F3K9Q",
                                      authored=AUTHORED, response_id="r1")
    assert validate_resource(resource) == []
    assert resource["authored"] == "2026-11-16T09:30:00Z"
    result = answers_from_response(LIB, resource)
    assert not isinstance(result, list), result
    back_instrument, back = result
    assert back_instrument.key == instrument.key
    assert back == answers


def response(**changes):
    instrument = LIB.get("phq9")
    answers = parse_answers(instrument, {f"phq9_{i}": 1 for i in range(1, 10)})
    resource = questionnaire_response(instrument, answers, subject="Patient/x",
                                      authored=AUTHORED)
    resource.update(changes)
    return resource


@pytest.mark.parametrize(("change", "where", "fragment"), [
    ({"status": "in-progress"}, "status", "only completed or amended"),
    ({"questionnaire": "http://elsewhere.example/Q/1"}, "questionnaire", "not one of this"),
    ({"questionnaire": "urn:outcome:Questionnaire/phq8|1"}, "questionnaire",
     "unknown instrument 'phq8@1'"),
    ({"item": "not a list"}, "item", ""),
])
def test_import_refuses_with_a_location(change, where, fragment):
    errors = answers_from_response(LIB, response(**change))
    assert isinstance(errors, list) and errors
    assert errors[0].where.startswith(where), errors
    assert fragment in errors[0].message


def test_import_names_bad_items():
    resource = response()
    resource["item"][0]["answer"] = [{"valueCoding": {"system": LOINC, "code": "LA0000-0"}}]
    resource["item"].append({"linkId": "phq9_99", "answer": [{"valueInteger": 1}]})
    errors = answers_from_response(LIB, resource)
    assert [(type(e), e.where) for e in errors] == [
        (ResponseError, "item[0].answer[0].valueCoding"), (ResponseError, "item[9].linkId")]


def test_import_goes_through_parse_answers():
    resource = response()
    resource["item"][2]["answer"] = [{"valueInteger": 7}]
    errors = answers_from_response(LIB, resource)
    assert errors == [AnswerError("phq9_3", "not_an_option",
                                  "phq9_3: 7 is not one of the answer options (0, 1, 2, 3).")]


def test_not_a_resource():
    assert validate_resource({"hello": 1})[0].where == "resourceType"
    assert "unknown FHIR resource type" in validate_resource(
        {"resourceType": "Nonsense"})[0].message
