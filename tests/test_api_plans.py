"""Action plans and supervision reviews through ``/api/v1`` (issue 19), read only.

Who reads what follows the rest of the API and security.md: the client's own therapist
reads the whole plan; a supervisor of the therapist reads the plan's state by client
code (no step's words, no note, no closing note, no answer, no name); a review's note
is for the supervisor who wrote it and the therapist; an admin (an integration token, or
a personal token without a clinical role) reaches no plan and no review. Every request
about a client writes one audit record about them; a plan outside the token's reach is
the same 404 as one that does not exist. Bad parameters are 400s naming them.

The rows are built directly as models (the plan services are another part of issue 19).
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func
from sqlalchemy import select

from outcome.models import ActionPlan
from outcome.models import Alert
from outcome.models import AuditEvent
from outcome.models import SupervisionReview
from outcome.models import SupportCheck
from tests.conftest import ApiClient

# The app's clock (conftest): 2026-11-16 09:00 UTC; the clinic's calendar is UTC.
NOW = dt.datetime(2026, 11, 16, 9, tzinfo=dt.UTC)
TODAY = dt.date(2026, 11, 16)
UNKNOWN_ID = 987654321
ROLES = ("t1", "t2", "s1", "s2", "s_none", "admin", "t_other", "integration")
# Words only the client's own therapist may read (and, for a review's note, its author).
CANARIES = ("Canary step", "Canary note", "Canary closing", "Canary review", "Canary Name")


def make_plan(store, episode, author, *, days_ago: int = 5, review_on: dt.date,
              status: str = "open", text: str = "Canary step", note: str = "Canary note",
              **fields) -> ActionPlan:
    """A plan row as the plan services store it (models.support.ActionPlan)."""
    created = NOW - dt.timedelta(days=days_ago)
    if status != "open":
        fields.setdefault("closed_dt", created + dt.timedelta(days=1))
        fields.setdefault("closed_by_id", author.id)
    plan = ActionPlan(
        episode_id=episode.id, created_by_id=author.id, created_dt=created,
        review_on=review_on, status=status, note=note,
        steps=[{"domain": "alliance", "suggestion": "alliance.metacommunication",
                "text": f"{text}: talk about the relationship", "decision": "edited"},
               {"domain": "motivation", "suggestion": None, "text": f"{text}: own",
                "decision": "own"},
               {"domain": "life_events", "suggestion": "life_events.problem_solving",
                "text": "Problem-solving", "decision": "declined"}],
        baseline={"instrument": "phq9", "score": 18, "colour": "red", "session": 4,
                  "administration": None}, **fields)
    store.add(plan)
    store.flush()
    return plan


@pytest.fixture
def world(db_session, make_clinic, make_user, make_client, make_episode, assign, make_token,
          client):
    """Clinic 1: t1 (client A), t2 (client B), s1 and s2 both supervising t1, s_b
    supervising t2, s_none supervising nobody, a non-clinician admin (and their
    integration token). Clinic 2: t_other (client C). A has a revised plan, the open plan
    that replaced it (after an answered support check, resolving two alerts, its review
    due) and a review of it by s1; B a closed plan reviewed by s_b; C a plan."""
    other = make_clinic()
    users = {"t1": make_user(), "t2": make_user(), "s1": make_user("supervisor"),
             "s2": make_user("supervisor"), "s_b": make_user("supervisor"),
             "s_none": make_user("supervisor"), "admin": make_user("admin"),
             "t_other": make_user(clinic_id=other.id)}
    assign(users["s1"], users["t1"])
    assign(users["s2"], users["t1"])
    assign(users["s_b"], users["t2"])
    people, episodes, plans = {}, {}, {}
    for label, therapist in (("A", "t1"), ("B", "t2"), ("C", "t_other")):
        people[label] = make_client(users[therapist], name=f"Canary Name {label}")
        episodes[label] = make_episode(people[label])
    t1 = users["t1"]
    plans["A1"] = make_plan(db_session, episodes["A"], t1, days_ago=20, status="revised",
                            review_on=dt.date(2026, 11, 24), closed_dt=NOW - dt.timedelta(days=5),
                            text="Canary step A1", note="Canary note A1")
    check = SupportCheck(episode_id=episodes["A"].id, reason="red", started_by_id=t1.id,
                         started_dt=NOW - dt.timedelta(days=7), status="answered",
                         answered_dt=NOW - dt.timedelta(days=6),
                         battery=[{"domain": "motivation", "instrument": "x"}])
    db_session.add(check)
    db_session.flush()
    plans["A2"] = make_plan(db_session, episodes["A"], t1, days_ago=5,
                            review_on=dt.date(2026, 11, 14), revised_from_id=plans["A1"].id,
                            support_check_id=check.id, text="Canary step A2",
                            note="Canary note A2")
    alerts = []
    for kind in ("not_on_track", "unrepaired_rupture"):
        alert = Alert(episode_id=episodes["A"].id, kind=kind, status="resolved",
                      raised_dt=NOW - dt.timedelta(days=8), resolved_dt=plans["A2"].created_dt,
                      plan_id=plans["A2"].id, detail={})
        db_session.add(alert)
        db_session.flush()
        alerts.append(alert.id)
    plans["B"] = make_plan(db_session, episodes["B"], users["t2"], status="closed",
                           review_on=dt.date(2026, 11, 12), text="Canary step B",
                           note="Canary note B", closing_note="Canary closing B",
                           outcome={"colour_now": "green", "change": -6})
    plans["C"] = make_plan(db_session, episodes["C"], users["t_other"],
                           review_on=dt.date(2026, 12, 1), text="Canary step C",
                           note="Canary note C")
    reviews = {}
    for key, label, supervisor in (("A", "A2", "s1"), ("B", "B", "s_b")):
        reviews[key] = SupervisionReview(
            episode_id=plans[label].episode_id, plan_id=plans[label].id,
            supervisor_id=users[supervisor].id, reviewed_dt=NOW - dt.timedelta(days=1),
            discussed=True, plan_agreed=True, follow_up_on=dt.date(2026, 12, 7),
            note=f"Canary review {key}")
        db_session.add(reviews[key])
    db_session.flush()
    db_session.commit()
    apis = {role: ApiClient(client, make_token(user)) for role, user in users.items()}
    apis["integration"] = ApiClient(client, make_token(users["admin"], scopes=("read",),
                                                       kind="integration"))
    return {"users": users, "people": people, "episodes": episodes, "plans": plans,
            "reviews": reviews, "alerts": alerts, "check": check, "apis": apis}


def _last_event(db_session) -> int:
    return db_session.scalar(select(func.max(AuditEvent.id))) or 0


def _events(db_session, after: int) -> list[AuditEvent]:
    return list(db_session.scalars(select(AuditEvent).where(AuditEvent.id > after)
                                   .order_by(AuditEvent.id)))


def _problem(response, status: int, parameter: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    if parameter is not None:
        assert [e.get("parameter") for e in body["errors"]] == [parameter], body
    return body


# --- what the therapist reads ----------------------------------------------------------------


def test_the_therapist_reads_their_plan_in_full(world):
    t1, plans, check = world["apis"]["t1"], world["plans"], world["check"]
    body = t1.get(f"/api/v1/plans/{plans['A2'].id}").get_json()
    assert body == {
        "id": plans["A2"].id, "client_code": world["people"]["A"].code,
        "episode_id": world["episodes"]["A"].id, "status": "open",
        "created_at": "2026-11-11T09:00:00Z", "created_by_id": world["users"]["t1"].id,
        "review_on": "2026-11-14", "review_due": True,
        "steps": [{"domain": "alliance", "suggestion_id": "alliance.metacommunication",
                   "decision": "edited",
                   "text": "Canary step A2: talk about the relationship"},
                  {"domain": "motivation", "suggestion_id": None, "decision": "own",
                   "text": "Canary step A2: own"},
                  {"domain": "life_events", "suggestion_id": "life_events.problem_solving",
                   "decision": "declined", "text": "Problem-solving"}],
        "note": "Canary note A2",
        "baseline": {"instrument": "phq9", "score": 18, "colour": "red", "session": 4,
                     "administration": None},
        "closed_at": None, "closed_by_id": None, "closing_note": None, "outcome": None,
        "revised_from_id": plans["A1"].id, "revised_by_id": None,
        "support_check": {"id": check.id, "reason": "red", "status": "answered",
                          "started_at": "2026-11-09T09:00:00Z",
                          "answered_at": "2026-11-10T09:00:00Z"},
        "resolved_alert_ids": world["alerts"]}
    older = t1.get(f"/api/v1/plans/{plans['A1'].id}").get_json()
    assert (older["status"], older["revised_by_id"], older["review_due"]) == (
        "revised", plans["A2"].id, False)
    assert older["closed_at"] == "2026-11-11T09:00:00Z"
    listed = t1.get(f"/api/v1/clients/{world['people']['A'].code}/plans?status=all")
    assert [p["id"] for p in listed.get_json()["items"]] == [plans["A1"].id, plans["A2"].id]
    assert listed.get_json()["items"][1] == body


def test_the_therapist_reads_the_reviews_of_their_clients_with_notes(world):
    t1 = world["apis"]["t1"]
    items = t1.get("/api/v1/reviews").get_json()["items"]
    review = world["reviews"]["A"]
    assert items == [{"id": review.id, "client_code": world["people"]["A"].code,
                      "episode_id": world["episodes"]["A"].id,
                      "plan_id": world["plans"]["A2"].id,
                      "supervisor_id": world["users"]["s1"].id,
                      "reviewed_at": "2026-11-15T09:00:00Z", "discussed": True,
                      "plan_agreed": True, "follow_up_on": "2026-12-07",
                      "note": "Canary review A"}]
    code = world["people"]["A"].code
    assert t1.get(f"/api/v1/clients/{code}/reviews").get_json()["items"] == items


# --- what a supervisor reads -------------------------------------------------------------------


def test_a_supervisor_reads_plan_states_by_code_and_no_words(world):
    """security.md: a supervisor sees codes and plan states, never names, notes or answers."""
    s1, t1, plans = world["apis"]["s1"], world["apis"]["t1"], world["plans"]
    code = world["people"]["A"].code
    for path in ("/api/v1/plans?status=all", f"/api/v1/clients/{code}/plans?status=all",
                 f"/api/v1/plans/{plans['A2'].id}", f"/api/v1/plans/{plans['A1'].id}"):
        response = s1.get(path)
        assert response.status_code == 200, path
        text = response.get_data(as_text=True)
        assert not [c for c in CANARIES if c in text], (path, text)
    seen = s1.get(f"/api/v1/plans/{plans['A2'].id}").get_json()
    own = t1.get(f"/api/v1/plans/{plans['A2'].id}").get_json()
    assert seen["note"] is None and seen["closing_note"] is None
    assert [s["text"] for s in seen["steps"]] == [None, None, None]
    # The state is the same as the therapist's: status, dates, decisions, check, alerts.
    hidden = {"note", "closing_note", "steps"}
    assert {k: v for k, v in seen.items() if k not in hidden} == {
        k: v for k, v in own.items() if k not in hidden}
    assert [(s["domain"], s["suggestion_id"], s["decision"]) for s in seen["steps"]] == [
        (s["domain"], s["suggestion_id"], s["decision"]) for s in own["steps"]]
    assert seen["client_code"] == code and seen["support_check"]["status"] == "answered"


def test_a_reviews_note_is_for_its_author_and_the_therapist(world):
    code = world["people"]["A"].code
    notes = {role: [r["note"] for r in world["apis"][role].get(
        f"/api/v1/clients/{code}/reviews").get_json()["items"]] for role in ("t1", "s1", "s2")}
    assert notes == {"t1": ["Canary review A"], "s1": ["Canary review A"], "s2": [None]}
    assert "Canary review" not in world["apis"]["s2"].get("/api/v1/reviews").get_data(
        as_text=True)


# --- who reaches what ------------------------------------------------------------------------


def test_lists_hold_only_what_the_role_may_see(world):
    plans, reviews = world["plans"], world["reviews"]
    expected_plans = {"t1": {plans["A1"].id, plans["A2"].id}, "t2": {plans["B"].id},
                      "s1": {plans["A1"].id, plans["A2"].id},
                      "s2": {plans["A1"].id, plans["A2"].id}, "s_none": set(),
                      "admin": set(), "t_other": {plans["C"].id}, "integration": set()}
    expected_reviews = {"t1": {reviews["A"].id}, "t2": {reviews["B"].id},
                        "s1": {reviews["A"].id}, "s2": {reviews["A"].id}, "s_none": set(),
                        "admin": set(), "t_other": set(), "integration": set()}
    for role in ROLES:
        api = world["apis"][role]
        got = api.get("/api/v1/plans?status=all").get_json()["items"]
        assert {p["id"] for p in got} == expected_plans[role], role
        got = api.get("/api/v1/reviews").get_json()["items"]
        assert {r["id"] for r in got} == expected_reviews[role], role


def _canonical_404(response, code: str | None) -> str:
    body = response.get_json()
    body.pop("instance", None)
    text = json.dumps(body, sort_keys=True)
    return text.replace(code, "<code>") if code else text


def test_every_role_reaches_a_plan_only_as_the_pages_would_and_each_read_is_audited(
        world, db_session):
    """Per role x (A's plan, B's, C's of another clinic, an unknown id, one too large for
    the database, no number): 200 or the same 404; one audit record, allowed or denied,
    naming the client when the plan is of the role's clinic."""
    plans, people = world["plans"], world["people"]
    reach = {"A": {"t1", "s1", "s2"}, "B": {"t2"}, "C": {"t_other"}}
    targets = {"A": plans["A2"].id, "B": plans["B"].id, "C": plans["C"].id,
               "unknown": UNKNOWN_ID, "huge": "9" * 30, "word": "x"}
    problems, bodies = [], {}
    for role in ROLES:
        api = world["apis"][role]
        clinic = world["users"]["admin" if role == "integration" else role].clinic_id
        for label, plan_id in targets.items():
            before = _last_event(db_session)
            response = api.get(f"/api/v1/plans/{plan_id}")
            allowed = role in reach.get(label, set())
            if response.status_code != (200 if allowed else 404):
                problems.append(f"{role} {label}: {response.status_code}")
            if response.status_code == 404:
                bodies.setdefault(role, set()).add(_canonical_404(response, None))
            events = _events(db_session, before)
            person = people.get(label)
            client_id = person.id if person is not None and person.clinic_id == clinic else None
            wanted = [("api.plan.view", "allowed" if allowed else "denied", client_id,
                       "api_token")]
            got = [(e.action, e.outcome, e.client_id, e.actor_kind) for e in events]
            if got != wanted:
                problems.append(f"{role} {label}: audited {got}, expected {wanted}")
    for role, seen in bodies.items():
        if len(seen) > 1:
            problems.append(f"{role}: foreign and unknown plans' 404s differ: {seen}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("suffix", ["plans", "reviews"])
def test_a_clients_plans_and_reviews_are_reached_like_the_client(world, db_session, suffix):
    people = world["people"]
    reach = {"A": {"t1", "s1", "s2"}, "B": {"t2"}, "C": {"t_other"}}
    problems, bodies = [], {}
    for role in ROLES:
        api = world["apis"][role]
        for label in ("A", "B", "C", "unknown"):
            code = people[label].code if label in people else "C-ZZZZZZ"
            before = _last_event(db_session)
            response = api.get(f"/api/v1/clients/{code}/{suffix}")
            allowed = role in reach.get(label, set())
            if response.status_code != (200 if allowed else 404):
                problems.append(f"{role} {label}: {response.status_code}")
            if response.status_code == 404:
                bodies.setdefault(role, set()).add(_canonical_404(response, code))
            events = [(e.action, e.outcome, e.object_type) for e in _events(db_session, before)]
            if events != [(f"api.{suffix}.view", "allowed" if allowed else "denied", "client")]:
                problems.append(f"{role} {label}: audited {events}")
    for role, seen in bodies.items():
        if len(seen) > 1:
            problems.append(f"{role}: foreign and unknown 404s differ: {seen}")
    assert not problems, "\n".join(problems)


def test_lists_are_audited_once_with_the_token(world, db_session):
    for path, action in (("/api/v1/plans", "api.plans.list"),
                         ("/api/v1/reviews", "api.reviews.list")):
        before = _last_event(db_session)
        assert world["apis"]["s1"].get(path).status_code == 200
        events = _events(db_session, before)
        assert [(e.action, e.outcome, e.actor_kind, e.actor_user_id) for e in events] == [
            (action, "allowed", "api_token", world["users"]["s1"].id)]
        assert "token" in (events[0].actor_label or "")


# --- filters, pages and refusals ---------------------------------------------------------------


@pytest.fixture
def caseload(db_session, make_user, make_client, make_episode, make_token, client):
    """A therapist with five clients, each with a plan: open and due (review on the 10th,
    12th), open and not yet due (20th, 30th), and one closed on the 15th."""
    therapist = make_user()
    plans = []
    for n, (status, review_on, days_ago) in enumerate((
            ("open", dt.date(2026, 11, 10), 30), ("open", dt.date(2026, 11, 12), 20),
            ("open", dt.date(2026, 11, 20), 10), ("closed", dt.date(2026, 11, 13), 9),
            ("open", dt.date(2026, 11, 30), 2))):
        episode = make_episode(make_client(therapist))
        closed = {"closed_dt": NOW - dt.timedelta(days=1)} if status == "closed" else {}
        plans.append(make_plan(db_session, episode, therapist, days_ago=days_ago,
                               review_on=review_on, status=status, **closed))
        assert n == len(plans) - 1
    db_session.commit()
    return ApiClient(client, make_token(therapist)), [p.id for p in plans]


def test_status_review_due_and_updated_since_narrow_the_list(caseload):
    api, ids = caseload

    def listed(query: str) -> list[int]:
        response = api.get(f"/api/v1/plans?{query}")
        assert response.status_code == 200, (query, response.get_json())
        return [p["id"] for p in response.get_json()["items"]]

    assert listed("") == [ids[0], ids[1], ids[2], ids[4]]  # open, by default
    assert listed("status=all") == ids
    assert listed("status=closed") == [ids[3]]
    assert listed("status=revised") == []
    # Due: open with a review date today (2026-11-16) or past.
    assert listed("review_due=true") == [ids[0], ids[1]]
    assert listed("review_due=false&status=all") == [ids[2], ids[3], ids[4]]
    # Created, closed or revised at or after the time (the closed one: closed yesterday).
    assert listed("updated_since=2026-11-13T09:00:00Z&status=all") == [ids[3], ids[4]]
    assert listed("updated_since=2026-11-13T10:00:00%2B01:00&status=all") == [ids[3], ids[4]]
    assert listed("updated_since=2026-11-17T00:00:00Z&status=all") == []


def test_pages_neither_repeat_nor_skip(caseload):
    api, ids = caseload
    seen, path, pages = [], "/api/v1/plans?status=all&limit=2", 0
    while path:
        response = api.get(path)
        body = response.get_json()
        seen += [p["id"] for p in body["items"]]
        pages += 1
        link = response.headers.get("Link")
        assert (link is None) == (body["next_cursor"] is None)
        path = link[1:link.index(">")] if link else None
        if path:
            assert "status=all" in path and "limit=2" in path
    assert (seen, pages) == (ids, 3)


BAD = [("status=bogus", "status"), ("status=", "status"), ("status=OPEN", "status"),
       ("review_due=yes", "review_due"), ("review_due=1", "review_due"),
       ("updated_since=yesterday", "updated_since"),
       ("updated_since=2026-11-16T09:00:00", "updated_since"),  # no offset
       ("updated_since=0001-01-01T00:00:00Z", "updated_since"),
       ("updated_since=" + "9" * 5000, "updated_since"),
       ("limit=0", "limit"), ("limit=" + "9" * 5000, "limit"), ("cursor=v1-x", "cursor"),
       ("cursor=v1-" + "9" * 11, "cursor")]
BAD_PLAN_IDS = ["0", "-1", "x", str(2**31), "9" * 5000, "\u0663", "1.5"]


def test_bad_parameters_are_a_400_naming_them(world, db_session):
    api, code = world["apis"]["t1"], world["people"]["A"].code
    for query, parameter in BAD:
        _problem(api.get(f"/api/v1/plans?{query}"), 400, parameter)
        before = _last_event(db_session)
        _problem(api.get(f"/api/v1/clients/{code}/plans?{query}"), 400, parameter)
        if parameter not in ("limit", "cursor"):  # refused by the lookup: audited as denied
            assert [(e.action, e.outcome, e.client_id) for e in _events(db_session, before)] \
                == [("api.plans.view", "denied", world["people"]["A"].id)], query
    for value in BAD_PLAN_IDS:
        _problem(api.get(f"/api/v1/reviews?plan_id={value}"), 400, "plan_id")
        _problem(api.get(f"/api/v1/clients/{code}/reviews?plan_id={value}"), 400, "plan_id")


def test_reviews_filter_by_plan(world):
    t1, plans = world["apis"]["t1"], world["plans"]
    code = world["people"]["A"].code
    for path in ("/api/v1/reviews", f"/api/v1/clients/{code}/reviews"):
        assert [r["id"] for r in t1.get(f"{path}?plan_id={plans['A2'].id}").get_json()[
            "items"]] == [world["reviews"]["A"].id]
        assert t1.get(f"{path}?plan_id={plans['A1'].id}").get_json()["items"] == []
        # Another therapist's plan: nothing, as for a plan that does not exist.
        assert t1.get(f"{path}?plan_id={plans['B'].id}").get_json()["items"] == []


def test_a_foreign_clients_bad_parameter_is_the_same_404(world):
    """The lookup refuses the client before it reads the parameters: nothing is revealed."""
    api = world["apis"]["t2"]
    code = world["people"]["A"].code
    assert api.get(f"/api/v1/clients/{code}/plans?status=bogus").status_code == 404
    assert api.get(f"/api/v1/clients/{code}/reviews?plan_id=x").status_code == 404


def test_plans_cannot_be_written_through_the_api(world):
    api = world["apis"]["t1"]
    plan = world["plans"]["A2"].id
    for path in ("/api/v1/plans", f"/api/v1/plans/{plan}", "/api/v1/reviews"):
        response = api.post(path, json={})
        assert response.status_code == 405, path
        assert response.mimetype == "application/problem+json"


def test_the_docs_example_plan_is_a_plan_as_the_document_describes_it():
    """docs/api.md's example plan matches the OpenAPI schema the responses are held to."""
    from pathlib import Path

    from jsonschema import Draft202012Validator

    from outcome.web.api.openapi import document

    text = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text("utf-8")
    part = text[text.index("A plan, as the client's own therapist reads it:"):]
    start = part.index("```json") + len("```json")
    example = json.loads(part[start:part.index("```", start)])
    doc = document()
    root = {"$ref": "#/components/schemas/Plan", "components": doc["components"]}
    assert list(Draft202012Validator(root).iter_errors(example)) == []
    assert set(example) == set(doc["components"]["schemas"]["Plan"]["required"])
