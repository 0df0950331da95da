"""Issue 16, finding 14: a supervisor learns that a critical item was answered and how
urgent it is, never the answer.

PHQ-9 item 9 answered 3 ("Nearly every day") raises an urgent critical alert. Every path
a supervisor reads it by (their client page, a supervisee's caseload, the API's alerts
and signals, the weekly digest) shows "Critical item answered (urgent): PHQ-9 item 9."
and none of the canaries below; the client's own therapist still reads the answer.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from outcome.services.digests.figures import build_digest
from outcome.services.digests.figures import iso_week
from outcome.services.digests.figures import week_bounds
from outcome.services.explanations import without_answers
from tests.helpers import LIB
from tests.helpers import T0
from tests.helpers import answer

# The answer's option label, its "Answer:" sentence, and the definition's message about it.
CANARIES = ("Nearly every day", "Answer:", "better off dead")
SUPERVISOR_SEES = "Critical item answered (urgent): PHQ-9 item 9."


def assert_no_answer(text: str) -> None:
    for canary in CANARIES:
        assert canary not in text, canary


@pytest.fixture
def crisis(db_session, make_user, make_client, make_episode, assign):
    """Supervisor S of therapist A, whose client answered PHQ-9 item 9 with 3 last week."""
    s = make_user("supervisor", display_name="Sam Supervisor")
    a = make_user(display_name="Alex Therapist")
    assign(s, a)
    person = make_client(a)
    episode = make_episode(person)
    answer(db_session, episode, [2, 2], item9=3)
    db_session.commit()
    return {"s": s, "a": a, "client": person, "episode": episode}


def test_supervisor_client_page_says_answered_not_the_answer(auth, client, crisis):
    code = crisis["client"].code
    auth.login(crisis["s"].email)
    page = client.get(f"/supervision/clients/{code}").get_data(as_text=True)
    assert SUPERVISOR_SEES in page
    assert_no_answer(page)
    auth.logout()
    auth.login(crisis["a"].email)
    own = client.get(f"/clients/{code}").get_data(as_text=True)
    assert "Answer: 3 (Nearly every day)" in own


def test_supervisee_caseload_says_answered_not_the_answer(auth, client, crisis):
    auth.login(crisis["s"].email)
    page = client.get(f"/supervision/therapists/{crisis['a'].id}").get_data(as_text=True)
    assert crisis["client"].code in page and SUPERVISOR_SEES in page
    assert_no_answer(page)
    auth.logout()
    auth.login(crisis["a"].email)
    assert "Answer: 3 (Nearly every day)" in client.get("/").get_data(as_text=True)


@pytest.mark.parametrize("path", ["/api/v1/alerts", "/api/v1/clients/{code}/alerts",
                                  "/api/v1/clients/{code}/signals"])
def test_api_gives_a_supervisor_no_answer(api, crisis, path):
    url = path.format(code=crisis["client"].code)
    supervisor = api(crisis["s"], scopes=("read",)).get(url)
    assert supervisor.status_code == 200, supervisor.get_json()
    found = supervisor.get_json()
    body = json.dumps(found)
    assert SUPERVISOR_SEES in body
    assert_no_answer(body)
    # Nor in the data beside the text: the critical entries keep no value or label.
    critical = json.dumps(found["critical"] if "critical" in found else found["items"])
    for key in ('"observed"', '"label"', '"answer"', '"threshold"', '"clinician_message"'):
        assert key not in critical, key
    therapist = api(crisis["a"], scopes=("read",)).get(url).get_json()
    assert "Answer: 3 (Nearly every day)" in json.dumps(therapist)
    if "critical" in therapist:
        assert therapist["critical"][0]["numbers"]["observed"] == 3


def test_digest_says_answered_not_the_answer(db_session, crisis):
    week = iso_week((T0 + dt.timedelta(weeks=3)).date())
    now = week_bounds(week, "UTC")[2] + dt.timedelta(days=1)
    digest = build_digest(db_session, crisis["s"], week, LIB, now)
    reasons = [r for section in digest.sections for item in section.attention
               for r in item.reasons]
    assert any(SUPERVISOR_SEES in r for r in reasons), reasons
    assert_no_answer(repr(digest))


def test_several_critical_answers_are_each_named_without_values():
    stored = {"kind": "critical", "level": "urgent", "rule": "critical.answer",
              "message": "critical.answers",
              "params": {"answers": [{"message": "critical.answer", "params": {
                  "clinician_message": "Check safety today.", "answer": 3}}]},
              "numbers": {"items": [{"instrument": "phq9", "item": "phq9_9", "observed": 3,
                                     "threshold": 1},
                                    {"instrument": "gone", "item": "x_1", "observed": 2,
                                     "threshold": 1}]}}
    shown = without_answers(stored, LIB)
    assert shown is not None
    assert "observed" not in json.dumps(shown) and "Check safety" not in json.dumps(shown)
    assert shown["numbers"]["items"][0] == {"instrument": "phq9", "item": "phq9_9",
                                            "item_number": 9, "urgency": "urgent"}
    other = {"kind": "progress", "level": "red", "message": "x", "params": {}}
    assert without_answers(other, LIB) is other
