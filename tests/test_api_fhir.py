"""Contract tests of ``/fhir``: CapabilityStatement, Questionnaire read, QuestionnaireResponse
import and search, Observation search, OperationOutcome errors, scoping and audit, and the
round trip export (``outcome export --fhir``) -> import into another client."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func
from sqlalchemy import select

from outcome.core.answers import parse_answers
from outcome.models import Administration
from outcome.models import Alert
from outcome.models import AuditEvent
from outcome.models import Episode
from outcome.models import EpisodeSignal
from outcome.services.exports import patient_id
from outcome.services.exports import response_id
from questionnaires.fhir import LOINC
from questionnaires.fhir import questionnaire_response
from questionnaires.fhir import validate_resource
from questionnaires.loader import builtin_library
from tests.conftest import ApiClient

LIB = builtin_library()
FHIR = "application/fhir+json"
PHQ_SEVERE = {f"phq9_{i}": 2 for i in range(1, 10)}  # 18; item 9 answered: critical
GAD_MILD = {f"gad7_{i}": 1 for i in range(1, 8)}  # 7


def count(db_session, model, *where) -> int:
    return db_session.scalar(select(func.count()).select_from(model).where(*where))


def outcome_of(response, status: int, *expressions: str) -> list[dict]:
    """The OperationOutcome's issues, checked: status, media type, named expressions."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == FHIR
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome" and validate_resource(body) == []
    found = {e for issue in body["issue"] for e in issue.get("expression", [])}
    assert set(expressions) <= found, body
    return body["issue"]


def fhir_resource(response, status: int = 200) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == FHIR and response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert validate_resource(body) == [], validate_resource(body)
    return body


def qr(instrument_id: str, values: dict, subject: dict | str, authored: dt.datetime,
       resource_id: str | None = None) -> dict:
    instrument = LIB.get(instrument_id)
    resource = questionnaire_response(instrument, parse_answers(instrument, values),
                                      subject="Patient/x", authored=authored,
                                      response_id=resource_id)
    resource["subject"] = subject if isinstance(subject, dict) else {"reference": subject}
    return resource


@pytest.fixture
def therapist(make_user):
    return make_user()


@pytest.fixture
def t_api(api, therapist) -> ApiClient:
    return api(therapist)


@pytest.fixture
def person(db_session, therapist, make_client, make_episode):
    found = make_client(therapist, name="Robin Private")
    make_episode(found)
    db_session.commit()
    return found


def administrations_of(db_session, client) -> list[Administration]:
    return list(db_session.scalars(
        select(Administration).join(Episode, Episode.id == Administration.episode_id)
        .where(Episode.client_id == client.id).order_by(Administration.id)))


# --- CapabilityStatement and Questionnaire ------------------------------------------------


def test_metadata_is_a_public_valid_capability_statement(client):
    statement = fhir_resource(client.get("/fhir/metadata"))
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.0.1" and statement["kind"] == "instance"
    served = {r["type"]: sorted(i["code"] for i in r["interaction"])
              for r in statement["rest"][0]["resource"]}
    assert served == {"Questionnaire": ["read"],
                      "QuestionnaireResponse": ["create", "search-type"],
                      "Observation": ["search-type"]}


def test_questionnaire_by_instrument_id_or_exported_id(t_api):
    newest = fhir_resource(t_api.get("/fhir/Questionnaire/phq9"))
    assert newest["id"] == "phq9-1" and newest["url"] == "urn:outcome:Questionnaire/phq9"
    assert newest["code"][0] == {"system": LOINC, "code": "44249-1",
                                 "display": "Patient Health Questionnaire-9 (PHQ-9)"}
    item9 = next(i for i in newest["item"] if i["linkId"] == "phq9_9")
    assert item9["code"] == [{"system": LOINC, "code": "44260-8"}]
    assert item9["answerOption"][0]["valueCoding"]["code"] == "LA6568-5"
    assert fhir_resource(t_api.get("/fhir/Questionnaire/phq9-1")) == newest
    gad = fhir_resource(t_api.get("/fhir/Questionnaire/gad7-1"))
    assert gad["code"][0]["code"] == "69737-5"


def test_structure_only_questionnaires_carry_no_wording(t_api):
    for path in ("/fhir/Questionnaire/wai_sr", "/fhir/Questionnaire/wai-sr-1"):
        resource = fhir_resource(t_api.get(path))
        assert resource["id"] == "wai-sr-1"
        assert all("text" not in item for item in resource["item"])


@pytest.mark.parametrize("questionnaire_id", ["phq8", "phq9-7", "PHQ9", "x" * 300])
def test_an_unknown_questionnaire_is_404(t_api, questionnaire_id):
    outcome_of(t_api.get(f"/fhir/Questionnaire/{questionnaire_id}"), 404)


def test_tokens_and_scopes_answer_with_operation_outcomes(client, api, therapist, person,
                                                          clock):
    resource = qr("phq9", PHQ_SEVERE, f"Patient/{person.code}", clock())
    issues = outcome_of(client.get("/fhir/Questionnaire/phq9"), 401)
    assert issues[0]["code"] == "login"
    anonymous = client.post("/fhir/QuestionnaireResponse", json=resource)
    outcome_of(anonymous, 401)
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    outcome_of(client.get("/fhir/Observation", query_string={"subject": person.code},
                          headers={"Authorization": "Bearer oc_wrong"}), 401)
    reader = api(therapist, scopes=("read",))
    issues = outcome_of(reader.post("/fhir/QuestionnaireResponse", json=resource), 403)
    assert issues[0]["code"] == "forbidden"
    assert reader.get("/fhir/Questionnaire/phq9").status_code == 200
    outcome_of(api(therapist, scopes=("write",)).get(
        f"/fhir/QuestionnaireResponse?subject={person.code}"), 403)


def test_unknown_paths_and_methods_are_operation_outcomes(t_api):
    outcome_of(t_api.get("/fhir/Patient/x"), 404)
    response = t_api.post("/fhir/Observation", json={"resourceType": "Observation"})
    outcome_of(response, 405)


# --- QuestionnaireResponse: import ------------------------------------------------------------


def test_import_stores_the_answers_scores_and_signals(t_api, person, db_session, clock):
    resource = qr("phq9", PHQ_SEVERE, f"Patient/{person.code}",
                  clock() - dt.timedelta(hours=1))
    response = t_api.post("/fhir/QuestionnaireResponse", json=resource,
                          headers={"Content-Type": FHIR})
    stored = fhir_resource(response, 201)
    [row] = administrations_of(db_session, person)
    assert row.answers == PHQ_SEVERE and row.total == 18 and row.is_valid
    assert row.instrument_id == "phq9" and row.respondent == "client"
    assert row.completed_dt.replace(tzinfo=dt.UTC) == clock() - dt.timedelta(hours=1)
    assert row.idempotency_key.startswith("fhir:")
    # The stored resource: what the Bundle export gives this administration.
    assert stored["id"] == response_id(row.id)
    assert stored["subject"] == {"reference": f"Patient/{patient_id(person.code)}"}
    assert stored["authored"] == "2026-11-16T08:00:00Z"
    assert [i["answer"] for i in stored["item"]] == [i["answer"] for i in resource["item"]]
    assert response.headers["Location"].startswith("/fhir/QuestionnaireResponse?subject=")
    signal = db_session.get(EpisodeSignal, row.episode_id)
    assert signal is not None and signal.urgency == 0  # a critical answer (item 9)
    assert [a.kind for a in db_session.scalars(select(Alert).where(
        Alert.episode_id == row.episode_id))] == ["critical_item"]
    events = db_session.scalars(select(AuditEvent).where(
        AuditEvent.action == "fhir.questionnaire_response.create")).all()
    assert [(e.outcome, e.client_id, e.actor_kind) for e in events] == [
        ("allowed", person.id, "api_token")]


@pytest.mark.parametrize("subject", [
    "code", "uuid", "identifier", "absolute"])
def test_every_form_of_subject_finds_the_client(t_api, person, db_session, clock, subject):
    forms = {"code": {"reference": f"Patient/{person.code}"},
             "uuid": {"reference": f"Patient/{patient_id(person.code)}"},
             "identifier": {"identifier": {"system": "urn:outcome:client-code",
                                           "value": person.code}},
             "absolute": {"reference": f"https://ehr.example/fhir/Patient/{person.code}"}}
    resource = qr("gad7", GAD_MILD, forms[subject], clock())
    fhir_resource(t_api.post("/fhir/QuestionnaireResponse", json=resource), 201)
    assert [r.total for r in administrations_of(db_session, person)] == [7]


def test_an_invalid_answer_is_422_naming_the_item(t_api, person, db_session, clock):
    resource = qr("phq9", PHQ_SEVERE, f"Patient/{person.code}", clock())
    resource["item"][2]["answer"] = [{"valueInteger": 7}]
    issues = outcome_of(t_api.post("/fhir/QuestionnaireResponse", json=resource), 422,
                        "item[2].answer[0].valueInteger")
    assert "phq9_3" in issues[0]["diagnostics"] and issues[0]["code"] == "invalid"
    resource["item"][0]["answer"] = [{"valueCoding": {"system": LOINC, "code": "LA0000-0"}}]
    del resource["item"][4]
    issues = outcome_of(t_api.post("/fhir/QuestionnaireResponse", json=resource), 422,
                        "item[0].answer[0].valueCoding")
    assert administrations_of(db_session, person) == []
    # One audit record per request, refused or not.
    assert count(db_session, AuditEvent,
                 AuditEvent.action == "fhir.questionnaire_response.create") == 2


def test_unanswered_items_are_named_by_item_id(t_api, person, db_session, clock):
    resource = qr("phq9", PHQ_SEVERE, f"Patient/{person.code}", clock())
    resource["item"] = resource["item"][:5]  # four of nine unanswered: too many
    issues = outcome_of(t_api.post("/fhir/QuestionnaireResponse", json=resource), 422)
    expressions = {e for i in issues for e in i["expression"]}
    assert {"phq9_6", "phq9_7", "phq9_8", "phq9_9"} <= expressions, issues
    assert administrations_of(db_session, person) == []


@pytest.mark.parametrize(("change", "expression"), [
    ({"item": "not a list"}, "item"),
    ({"item": [{"linkId": "phq9_1", "answer": [{"valueCoding": "x"}]}]},
     "item[0].answer[0].valueCoding"),
    ({"authored": "yesterday"}, "authored"),
    ({"status": "in-progress"}, "status"),
    ({"questionnaire": "http://elsewhere.example/Questionnaire/phq9"}, "questionnaire"),
    ({"resourceType": "Observation"}, "resourceType"),
    ({"authored": None}, "authored"),
    ({"authored": "2026-11-16"}, "authored"),
    ({"authored": "2026-11-16T09:10:00Z"}, "authored"),  # 10 minutes ahead of the clock
])
def test_a_malformed_resource_is_422_naming_the_path(t_api, person, db_session, clock,
                                                     change, expression):
    resource = qr("phq9", PHQ_SEVERE, f"Patient/{person.code}", clock())
    resource.update(change)
    resource = {k: v for k, v in resource.items() if v is not None}
    issues = outcome_of(t_api.post("/fhir/QuestionnaireResponse", json=resource), 422)
    expressions = [e for i in issues for e in i.get("expression", [])]
    assert any(e == expression or e.startswith(expression + ".") for e in expressions), issues
    assert administrations_of(db_session, person) == []


def test_bodies_of_another_type_or_not_json(t_api, person, clock):
    resource = qr("phq9", PHQ_SEVERE, f"Patient/{person.code}", clock())
    text = t_api.post("/fhir/QuestionnaireResponse", data=json.dumps(resource),
                      headers={"Content-Type": "text/plain"})
    assert outcome_of(text, 415)[0]["code"] == "not-supported"
    broken = t_api.post("/fhir/QuestionnaireResponse", data="{\"resourceType\": ",
                        headers={"Content-Type": FHIR})
    assert "line 1" in outcome_of(broken, 400)[0]["diagnostics"]
    outcome_of(t_api.post("/fhir/QuestionnaireResponse", json=[resource]), 422,
               "resourceType")


@pytest.mark.parametrize(("subject", "status", "expression"), [
    ({"reference": "Patient/C-ZZZZZZ"}, 404, None),
    ({"reference": "Patient/0e6f8b4a-6f0c-4a52-9a3f-6b1f5c2f7d10"}, 404, None),
    ({"identifier": {"system": "urn:outcome:client-code", "value": "C-ZZZZZZ"}}, 404, None),
    ({"reference": "Group/12"}, 422, "subject.reference"),
    ({"identifier": {"system": "urn:elsewhere", "value": "C-ZZZZZZ"}}, 422, "subject"),
    ({"identifier": {"system": "urn:outcome:client-code", "value": "C-\u0000"}}, 422,
     "subject.identifier.value"),
    ({"reference": "Patient/C-ZZZZZZ\n"}, 422, "subject.reference"),
    (None, 422, "subject"),
])
def test_an_unknown_or_malformed_subject(t_api, person, db_session, clock, subject, status,
                                         expression):
    resource = qr("phq9", PHQ_SEVERE, f"Patient/{person.code}", clock())
    if subject is None:
        del resource["subject"]
    else:
        resource["subject"] = subject
    outcome_of(t_api.post("/fhir/QuestionnaireResponse", json=resource), status,
               *([expression] if expression else []))
    assert administrations_of(db_session, person) == []


def test_another_therapist_or_a_supervisor_gets_404(api, make_user, assign, therapist, person,
                                                    db_session, clock):
    supervisor = make_user("supervisor")
    assign(supervisor, therapist)
    db_session.commit()
    for user in (make_user(), supervisor):
        other = api(user)
        for subject in (person.code, patient_id(person.code)):
            resource = qr("phq9", PHQ_SEVERE, f"Patient/{subject}", clock())
            outcome_of(other.post("/fhir/QuestionnaireResponse", json=resource), 404)
            outcome_of(other.get(f"/fhir/QuestionnaireResponse?subject={subject}"), 404)
            outcome_of(other.get(f"/fhir/Observation?subject=Patient/{subject}"), 404)
    assert administrations_of(db_session, person) == []
    denied = db_session.scalars(select(AuditEvent).where(
        AuditEvent.outcome == "denied", AuditEvent.action.like("fhir.%"))).all()
    assert len(denied) == 12
    # Attempts the clinic can tie to the client name it in the audit trail: by code
    # (both users), by Patient uuid (the supervisor, who may see the client's codes).
    assert sum(e.client_id == person.id for e in denied) == 9


def test_a_resource_is_stored_once_however_often_it_is_sent(t_api, person, db_session,
                                                            clock):
    resource = qr("phq9", PHQ_SEVERE, f"Patient/{person.code}", clock(), "ehr-response-1")
    first = fhir_resource(t_api.post("/fhir/QuestionnaireResponse", json=resource), 201)
    again = fhir_resource(t_api.post("/fhir/QuestionnaireResponse", json=resource), 200)
    assert again == first
    # The same resource id with other answers is a conflict, not a second administration.
    changed = qr("phq9", {**PHQ_SEVERE, "phq9_1": 0}, f"Patient/{person.code}", clock(),
                 "ehr-response-1")
    outcome_of(t_api.post("/fhir/QuestionnaireResponse", json=changed), 409, "id")
    # Without an id, the Idempotency-Key header makes a retry safe.
    bare = qr("gad7", GAD_MILD, f"Patient/{person.code}", clock())
    key = {"Idempotency-Key": "7d0c2a4e-retry"}
    created = t_api.post("/fhir/QuestionnaireResponse", json=bare, headers=key)
    assert created.status_code == 201
    replayed = t_api.post("/fhir/QuestionnaireResponse", json=bare, headers=key)
    assert replayed.status_code == 201 and replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.get_json() == created.get_json()
    assert [r.instrument_id for r in administrations_of(db_session, person)] == [
        "phq9", "gad7"]


def test_no_open_episode_is_409(t_api, therapist, make_client, db_session, clock):
    closed = make_client(therapist)
    db_session.add(Episode(clinic_id=closed.clinic_id, client_id=closed.id,
                           therapist_id=therapist.id, opened_on=dt.date(2026, 1, 5),
                           closed_on=dt.date(2026, 6, 1), end_reason="completed"))
    db_session.commit()
    resource = qr("phq9", PHQ_SEVERE, f"Patient/{closed.code}", clock())
    outcome_of(t_api.post("/fhir/QuestionnaireResponse", json=resource), 409)
    assert administrations_of(db_session, closed) == []


def test_an_instrument_the_clinic_has_not_attested_is_refused(t_api, person, db_session,
                                                              clock):
    resource = qr("who5", {f"who5_{i}": 3 for i in range(1, 6)}, f"Patient/{person.code}",
                  clock())
    outcome_of(t_api.post("/fhir/QuestionnaireResponse", json=resource), 422,
               "questionnaire")
    assert administrations_of(db_session, person) == []


# --- searches ------------------------------------------------------------------------------------


@pytest.fixture
def answered(t_api, person, therapist, make_client, make_episode, db_session, clock):
    """The person answered PHQ-9 twice and GAD-7 once; another client of the same
    therapist answered PHQ-9 once."""
    other = make_client(therapist)
    make_episode(other)
    db_session.commit()
    sent = [(person, "phq9", PHQ_SEVERE, 3), (person, "gad7", GAD_MILD, 2),
            (person, "phq9", {f"phq9_{i}": 1 for i in range(1, 10)}, 1),
            (other, "phq9", PHQ_SEVERE, 1)]
    for client, instrument_id, values, days_ago in sent:
        resource = qr(instrument_id, values, f"Patient/{client.code}",
                      clock() - dt.timedelta(days=days_ago))
        assert t_api.post("/fhir/QuestionnaireResponse", json=resource).status_code == 201
    return person, other


def test_search_questionnaire_responses_of_one_client(t_api, answered, db_session):
    person, other = answered
    for subject in (person.code, f"Patient/{person.code}",
                    f"Patient/{patient_id(person.code)}"):
        bundle = fhir_resource(t_api.get("/fhir/QuestionnaireResponse",
                                         query_string={"subject": subject}))
        assert bundle["type"] == "searchset" and bundle["total"] == 3
        resources = [e["resource"] for e in bundle["entry"]]
        assert {r["resourceType"] for r in resources} == {"QuestionnaireResponse"}
        assert {r["subject"]["reference"] for r in resources} == {
            f"Patient/{patient_id(person.code)}"}
        assert [r["questionnaire"] for r in resources] == [
            "urn:outcome:Questionnaire/phq9|1", "urn:outcome:Questionnaire/gad7|1",
            "urn:outcome:Questionnaire/phq9|1"]
        assert [r["id"] for r in resources] == [
            response_id(a.id) for a in administrations_of(db_session, person)]
        assert all(e["search"] == {"mode": "match"} for e in bundle["entry"])
        assert not {response_id(a.id) for a in administrations_of(db_session, other)} & {
            r["id"] for r in resources}
    events = db_session.scalars(select(AuditEvent).where(
        AuditEvent.action == "fhir.questionnaire_responses.search")).all()
    assert [(e.outcome, e.client_id) for e in events] == [("allowed", person.id)] * 3
    assert "Robin" not in json.dumps(bundle)


def test_search_observations_and_filter_by_loinc_code(t_api, answered):
    person, _other = answered

    def search(**query):
        return fhir_resource(t_api.get("/fhir/Observation",
                                       query_string={"subject": person.code, **query}))

    everything = search()
    assert everything["type"] == "searchset" and everything["total"] == 3
    observations = [e["resource"] for e in everything["entry"]]
    assert [(o["code"]["coding"][0]["code"], o["valueQuantity"]["value"])
            for o in observations] == [("44261-6", 18.0), ("70274-6", 7.0), ("44261-6", 9.0)]
    assert all(o["code"]["coding"][0]["system"] == LOINC for o in observations)
    for code in ("44261-6", f"{LOINC}|44261-6"):
        assert [e["resource"]["valueQuantity"]["value"]
                for e in search(code=code)["entry"]] == [18.0, 9.0]
    assert [e["resource"]["valueQuantity"]["value"]
            for e in search(code="70274-6")["entry"]] == [7.0]
    assert search(code="44261-6,70274-6")["total"] == 3
    assert search(code="urn:elsewhere|44261-6")["total"] == 0
    outcome_of(t_api.get("/fhir/Observation",
                         query_string={"subject": person.code, "code": "http://loinc.org|"}),
               400, "code")


@pytest.mark.parametrize("path", ["/fhir/QuestionnaireResponse", "/fhir/Observation"])
def test_search_needs_a_subject(t_api, path, db_session):
    outcome_of(t_api.get(path), 400, "subject")
    for malformed in ("Practitioner/4", "C-\u0000", "C- 1", "C" * 65):
        outcome_of(t_api.get(path, query_string={"subject": malformed}), 400, "subject")
    outcome_of(t_api.get(path, query_string={"subject": "C-ZZZZZZ"}), 404)
    assert count(db_session, AuditEvent, AuditEvent.outcome == "denied",
                 AuditEvent.action.like("fhir.%")) == 1


def test_a_client_without_answers_has_empty_bundles(t_api, person):
    for path in ("/fhir/QuestionnaireResponse", "/fhir/Observation"):
        bundle = fhir_resource(t_api.get(path, query_string={"subject": person.code}))
        assert bundle["total"] == 0 and bundle["entry"] == []


# --- the round trip: export from one client, import into another ------------------------------


def test_round_trip_export_then_import_into_another_client(t_api, runner, db_session, clock):
    """Answers given through the JSON API, exported by ``outcome export --fhir``, imported
    into a second client through ``/fhir``: the same answers and scores; re-importing
    into the first client adds nothing."""
    codes = []
    for name in ("First Person", "Second Person"):
        created = t_api.post("/api/v1/clients", json={"name": name, "opened_on": "2026-09-01"})
        assert created.status_code == 201, created.get_json()
        codes.append(created.get_json()["code"])
    first, second = codes
    given = [("phq9", PHQ_SEVERE), ("gad7", {f"gad7_{i}": 3 for i in range(1, 7)}),
             ("pcl5", {f"pcl5_{i}": i % 5 for i in range(1, 21)}),
             ("phq9", {f"phq9_{i}": 1 for i in range(1, 10)})]
    for week, (instrument_id, answers) in enumerate(given):
        submitted = t_api.post(f"/api/v1/clients/{first}/administrations", json={
            "instrument": instrument_id, "answers": answers,
            "completed_at": f"2026-10-{5 + 7 * week:02d}T09:00:00Z"})
        assert submitted.status_code == 201, submitted.get_json()

    exported = runner.invoke(args=["export", "--client", first, "--fhir"])
    assert exported.exit_code == 0, exported.output
    bundle = json.loads(exported.stdout)
    assert validate_resource(bundle) == []
    responses = [e["resource"] for e in bundle["entry"]
                 if e["resource"]["resourceType"] == "QuestionnaireResponse"]
    assert len(responses) == 4

    for resource in responses:
        moved = {**resource, "subject": {"reference": f"Patient/{second}"}}
        assert t_api.post("/fhir/QuestionnaireResponse", json=moved).status_code == 201
        # Sending it again stores nothing more.
        assert t_api.post("/fhir/QuestionnaireResponse", json=moved).status_code == 200

    def stored(code):
        rows = t_api.get(f"/api/v1/clients/{code}/administrations").get_json()["items"]
        return [(r["instrument"], r["instrument_version"], r["completed_at"], r["answers"],
                 r["total"], r["score"], r["band"], r["is_valid"], r["is_prorated"],
                 r["critical_items"]) for r in rows]

    assert stored(second) == stored(first)
    assert [s[4] for s in stored(first)] == [18, 21, 40, 9]  # GAD-7 prorated: 18 * 7 / 6
    assert stored(first)[1][8] is True
    # Their signals agree too.
    first_signals = t_api.get(f"/api/v1/clients/{first}/signals").get_json()
    second_signals = t_api.get(f"/api/v1/clients/{second}/signals").get_json()
    for field in ("colour", "urgency", "change_category", "outcomes"):
        assert first_signals[field] == second_signals[field], field

    # Re-importing the exported resources into the first client adds nothing: each is
    # recognised by its id as the administration it was exported from.
    before = stored(first)
    for resource in responses:
        again = t_api.post("/fhir/QuestionnaireResponse", json=resource)
        assert again.status_code == 200
        assert again.get_json() == resource
    assert stored(first) == before
