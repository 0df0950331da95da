"""The API's access matrix: every token role x every ``/api/v1`` and ``/fhir`` operation x
own, foreign (same clinic), other clinic's and unknown clients.

A personal token acts for the staff member who made it and must get exactly what that
person gets on the pages: the therapist their own clients in full; the supervisor their
supervisees' clients by code (signals, sessions, alerts; no answers, names or notes); an
admin who is not a clinician and a therapist of another clinic nothing. An admin's
integration token gets what the admin pages show: the clinic's clients by code and
therapist (``GET /clients``, ``GET /clients/{code}``), nothing else, and writes
nothing. Outside its reach an object is a 404 identical to an unknown one's; every
request about a client writes exactly one audit record about it; a client's name
reaches only their therapist.
Writes are sent with bodies the service refuses after the lookup (so the owner's 422
proves the request got through, and nothing changes).
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func
from sqlalchemy import select

from outcome.core.answers import parse_answers
from outcome.models import Alert
from outcome.models import AuditEvent
from outcome.services.submissions import submit_administration
from questionnaires.loader import builtin_library
from tests.conftest import ApiClient

LIB = builtin_library()
T0 = dt.datetime(2026, 11, 2, 9, tzinfo=dt.UTC)
ROLES = ("t1", "t2", "s1", "s_none", "admin", "t_other", "integration")
# Operations an integration token reaches (for its clinic's clients): code and therapist.
CODES_ONLY = frozenset({"client"})
UNKNOWN = "C-ZZZZZZ"


@pytest.fixture
def world(db_session, make_clinic, make_user, make_client, make_episode, make_appointment,
          assign, make_token, client):
    other_clinic = make_clinic()
    users = {"t1": make_user(), "t2": make_user(), "s1": make_user("supervisor"),
             "s_none": make_user("supervisor"), "admin": make_user("admin"),
             "t_other": make_user(clinic_id=other_clinic.id)}
    assign(users["s1"], users["t1"])
    clients, alerts = {}, {}
    phq = LIB.get("phq9")
    for label, therapist in (("A", "t1"), ("B", "t2"), ("C", "t_other")):
        person = make_client(users[therapist], name=f"Canary Name {label}",
                             email=f"canary-{label.lower()}@example.org")
        episode = make_episode(person)
        make_appointment(episode)
        answers = parse_answers(phq, {f"phq9_{i}": 2 for i in range(1, 10)})
        submit_administration(db_session, episode=episode, instrument=phq, answers=answers,
                              completed_dt=T0, idempotency_key=f"access-{label}",
                              library=LIB, now=T0)
        clients[label] = person
        alerts[label] = db_session.scalar(select(Alert.id).where(
            Alert.episode_id == episode.id))
    db_session.commit()
    apis = {role: ApiClient(client, make_token(user)) for role, user in users.items()}
    apis["integration"] = ApiClient(client, make_token(users["admin"], scopes=("read",),
                                                       kind="integration"))
    codes = {label: c.code for label, c in clients.items()} | {"unknown": UNKNOWN}
    return {"users": users, "clients": clients, "alerts": alerts, "apis": apis,
            "codes": codes}


# operation: (method, path template, body, who reaches it for client A)
VISIBLE = frozenset({"t1", "s1"})  # A's therapist and their supervisor
OWN = frozenset({"t1"})
OPERATIONS = {
    "client": ("GET", "/api/v1/clients/{code}", None, VISIBLE),
    "episodes": ("GET", "/api/v1/clients/{code}/episodes", None, VISIBLE),
    "appointments": ("GET", "/api/v1/clients/{code}/appointments", None, VISIBLE),
    "signals": ("GET", "/api/v1/clients/{code}/signals", None, VISIBLE),
    "client_alerts": ("GET", "/api/v1/clients/{code}/alerts?status=all", None, VISIBLE),
    "administrations": ("GET", "/api/v1/clients/{code}/administrations", None, OWN),
    "create_episode": ("POST", "/api/v1/clients/{code}/episodes", {"opened_on": "x"}, OWN),
    "end_episode": ("POST", "/api/v1/clients/{code}/episodes/{episode}/close",
                    {"end_reason": "completed", "closed_on": "2000-01-01"}, OWN),
    "book": ("POST", "/api/v1/clients/{code}/appointments", {"starts_at": "soon"}, OWN),
    "submit": ("POST", "/api/v1/clients/{code}/administrations",
               {"instrument": "phq9", "answers": {"phq9_1": 9}}, OWN),
    "acknowledge": ("POST", "/api/v1/clients/{code}/alerts/{alert}/acknowledge",
                    {"note": ""}, OWN),
    "fhir_responses": ("GET", "/fhir/QuestionnaireResponse?subject=Patient/{code}", None,
                       OWN),
    "fhir_observations": ("GET", "/fhir/Observation?subject=Patient/{code}", None, OWN),
    # issue 19: api (a plan by its id, and the lists across clients: test_api_plans.py)
    "client_plans": ("GET", "/api/v1/clients/{code}/plans?status=all", None, VISIBLE),
    "client_reviews": ("GET", "/api/v1/clients/{code}/reviews", None, VISIBLE),
}


def _request(api: ApiClient, method: str, path: str, body):
    if method == "GET":
        return api.get(path)
    return api.post(path, json=body)


def _path(world, template: str, label: str) -> str:
    owner = label if label != "unknown" else "A"
    episode = world["clients"][owner].episodes[0].id
    return (template.replace("{code}", world["codes"][label])
            .replace("{episode}", str(episode))
            .replace("{alert}", str(world["alerts"][owner])))


def _without_instance(response, code: str) -> str:
    """The 404's body without what merely echoes the request (its path, the code asked)."""
    body = response.get_json()
    body.pop("instance", None)
    return json.dumps(body, sort_keys=True).replace(code, "<code>")


def test_every_role_gets_what_the_pages_give_it(world, db_session):
    problems, not_found = [], {}
    for role in ROLES:
        api = world["apis"][role]
        for name, (method, template, body, reach) in OPERATIONS.items():
            if role == "integration" and method == "POST":
                continue  # no write scope: test_an_integration_token_writes_nothing
            for label in ("A", "B", "C", "unknown"):
                before = db_session.scalar(select(func.max(AuditEvent.id)))
                response = _request(api, method, _path(world, template, label), body)
                owners = {"A": reach, "B": {"t2"}, "C": {"t_other"}}.get(label, set())
                if name in CODES_ONLY and label in ("A", "B"):
                    owners = {*owners, "integration"}
                reached = role in owners
                wanted = ({200} if method == "GET" else {409, 422}) if reached else {404}
                if response.status_code not in wanted:
                    problems.append(f"{role} {name} {label}: {response.status_code}, "
                                    f"expected {sorted(wanted)}")
                if response.status_code == 404:
                    not_found.setdefault((role, name), set()).add(
                        _without_instance(response, world["codes"][label]))
                names = [f"Canary Name {x}" for x in "ABC"
                         if f"Canary Name {x}" in response.get_data(as_text=True)]
                own = {"t1": "A", "t2": "B", "t_other": "C"}.get(role)
                if any(n != f"Canary Name {own}" for n in names):
                    problems.append(f"{role} {name} {label}: shows {names}")
                events = db_session.scalars(select(AuditEvent).where(
                    AuditEvent.id > (before or 0))).all()
                about = [e for e in events if e.object_type == "client"]
                if len(events) != 1 or len(about) != 1:  # one record, and about the client
                    problems.append(f"{role} {name} {label}: {len(events)} audit records "
                                    f"{[(e.action, e.object_type) for e in events]}")
                elif (about[0].outcome, about[0].actor_kind) != (
                        "allowed" if reached else "denied", "api_token"):
                    problems.append(f"{role} {name} {label}: audited {about[0].outcome}")
    for (role, name), pages in not_found.items():
        if len(pages) > 1:
            problems.append(f"{role} {name}: foreign and unknown 404s differ: {pages}")
    assert not problems, "\n".join(problems)


def test_lists_hold_only_what_the_role_may_see(world):
    codes = world["codes"]
    expected = {"t1": {codes["A"]}, "t2": {codes["B"]}, "s1": {codes["A"]},
                "s_none": set(), "admin": set(), "t_other": {codes["C"]},
                "integration": {codes["A"], codes["B"]}}
    for role, wanted in expected.items():
        api = world["apis"][role]
        clients = api.get("/api/v1/clients").get_json()["items"]
        assert {c["code"] for c in clients} == wanted, role
        alerts = api.get("/api/v1/alerts?status=all").get_json()["items"]
        assert {a["client_code"] for a in alerts} == (
            set() if role == "integration" else wanted), role
        for listed in clients:
            assert (listed["name"] is not None) == (role in ("t1", "t2", "t_other")), role


def test_a_supervisor_reads_codes_and_signals_but_no_notes(world):
    t1, s1 = world["apis"]["t1"], world["apis"]["s1"]
    code = world["codes"]["A"]
    t1.post(f"/api/v1/clients/{code}/alerts/{world['alerts']['A']}/acknowledge",
            json={"note": "Canary note: called the client"})
    seen = s1.get(f"/api/v1/clients/{code}/alerts?status=all").get_json()["items"]
    assert seen and all(a["note"] is None for a in seen)
    assert "Canary note" not in s1.get("/api/v1/alerts?status=all").get_data(as_text=True)
    own = t1.get(f"/api/v1/clients/{code}/alerts?status=all").get_json()["items"]
    assert any(a["note"] == "Canary note: called the client" for a in own)
    client = s1.get(f"/api/v1/clients/{code}").get_json()
    assert client["name"] is None and client["email"] is None
    assert s1.get(f"/api/v1/clients/{code}/signals").get_json()["colour"]


def test_a_supervisor_cannot_register_clients(world):
    for role in ("s1", "admin"):
        response = world["apis"][role].post("/api/v1/clients", json={"name": "New Person"})
        assert response.status_code == 422
        assert response.get_json()["errors"][0]["pointer"] == "#/therapist"


def test_an_integration_token_reads_codes_and_therapists_only(world):
    users = world["users"]
    api = world["apis"]["integration"]
    for label, therapist in (("A", "t1"), ("B", "t2")):
        body = api.get(f"/api/v1/clients/{world['codes'][label]}").get_json()
        assert {k: v for k, v in body.items() if v is not None} == {
            "code": world["codes"][label], "therapist_id": users[therapist].id}


def test_an_integration_token_writes_nothing(world, db_session):
    api = world["apis"]["integration"]
    before = db_session.scalar(select(func.max(AuditEvent.id)))
    for name, (method, template, body, _reach) in OPERATIONS.items():
        if method != "POST":
            continue
        response = _request(api, method, _path(world, template, "A"), body)
        assert response.status_code == 403, name
    assert api.post("/api/v1/clients", json={"name": "New Person"}).status_code == 403
    fhir = api.post("/fhir/QuestionnaireResponse",
                    json={"resourceType": "QuestionnaireResponse"})
    assert fhir.status_code == 403
    refused = db_session.scalars(select(AuditEvent).where(AuditEvent.id > (before or 0))).all()
    assert {(e.action, e.outcome) for e in refused} == {("api.authorize", "denied")}
