"""The client's questionnaire pages through the real routes (CSRF included)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from outcome.models import Administration
from outcome.models import Alert
from outcome.models import AuditEvent
from outcome.services.links import issue_link
from questionnaires.loader import builtin_library
from tests.conftest import csrf_token

LIB = builtin_library()


@pytest.fixture
def issued(db_session, clock, make_user, make_client, make_episode):
    episode = make_episode(make_client(make_user()))
    link, token = issue_link(db_session, episode=episode, purpose="pre", now=clock(),
                             library=LIB)
    db_session.commit()
    return link, token


def phq(level, item9=0, **changes):
    data = {**{f"phq9_{i}": str(level) for i in range(1, 9)}, "phq9_9": str(item9)}
    data.update(changes)
    return data


def post_page(client, instrument, answers):
    token = csrf_token(client.get("/q/").get_data(as_text=True))
    return client.post("/q/", data={"csrf_token": token, "instrument": instrument, **answers})


def test_opening_a_link_drops_the_token_from_the_address(client, issued):
    _, token = issued
    response = client.get(f"/q/{token}")
    assert response.status_code == 303 and response.headers["Location"] == "/q/"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    page = client.get("/q/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and token not in html
    assert "Questionnaire 1 of 2" in html and "Little interest or pleasure" in html
    assert "Pfizer" in html  # the licence line
    assert html.count("<fieldset") == 10 and html.count("<legend>") == 10


def test_whole_flow_with_a_validation_error_fixed(client, db_session, issued):
    link, token = issued
    client.get(f"/q/{token}")
    missing = phq(1)
    del missing["phq9_4"]
    del missing["phq9_5"]
    response = post_page(client, "phq9", missing)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert html.count("Please choose an answer.") == 2
    # Answers already given are kept (phq9_1 was answered 1).
    assert re.search(r'name="phq9_1" value="1"\s+checked', html)
    assert db_session.scalar(select(Administration.id)) is None
    assert post_page(client, "phq9", phq(1)).status_code == 303
    assert "Questionnaire 2 of 2" in client.get("/q/").get_data(as_text=True)
    post_page(client, "gad7", {f"gad7_{i}": "0" for i in range(1, 8)})
    assert "Thank you" in client.get("/q/").get_data(as_text=True)
    db_session.refresh(link)
    assert link.used_dt is not None
    again = client.get(f"/q/{token}")  # a used link
    assert again.status_code == 410 and "Already completed" in again.get_data(as_text=True)


def test_critical_answer_shows_the_crisis_text_at_once(client, db_session, issued):
    _, token = issued
    client.get(f"/q/{token}")
    response = post_page(client, "phq9", phq(1, item9=2))
    assert response.headers["Location"] == "/q/support"
    support = client.get("/q/support").get_data(as_text=True)
    assert "call your local emergency number" in support
    assert db_session.scalar(select(Alert.kind)) == "critical_item"


def test_double_submit_stores_one_administration(client, db_session, issued):
    _, token = issued
    client.get(f"/q/{token}")
    page = client.get("/q/").get_data(as_text=True)
    form = {"csrf_token": csrf_token(page), "instrument": "phq9", **phq(2)}
    first = client.post("/q/", data=form)
    second = client.post("/q/", data=form)  # the same page sent again
    assert first.status_code == second.status_code == 303
    assert len(db_session.scalars(select(Administration)).all()) == 1


def test_a_client_can_stop_and_resume(app, client, db_session, issued):
    _, token = issued
    client.get(f"/q/{token}")
    post_page(client, "phq9", phq(1))
    later = app.test_client()  # another visit, e.g. the next morning
    later.get(f"/q/{token}")
    assert "Questionnaire 2 of 2" in later.get("/q/").get_data(as_text=True)


@pytest.mark.parametrize(("setup", "status", "title"), [
    ("unknown", 404, "This link does not work"),
    ("expired", 410, "This link has expired"),
    ("revoked", 410, "This link is no longer valid"),
    ("early", 410, "not open yet"),
])
def test_bad_links_get_a_clear_page_that_reveals_nothing(client, db_session, clock, issued,
                                                         setup, status, title):
    link, token = issued
    if setup == "unknown":
        token = "x" * 43
    elif setup == "expired":
        clock.advance(days=5)
    elif setup == "revoked":
        link.revoked_dt = clock()
        db_session.commit()
    elif setup == "early":
        link.valid_from_dt = clock() + dt.timedelta(hours=1)
        db_session.commit()
    response = client.get(f"/q/{token}")
    html = response.get_data(as_text=True)
    assert response.status_code == status and title in html
    assert "Client Person" not in html and "C-" not in html


def test_idle_client_session_ends(client, clock, issued):
    _, token = issued
    client.get(f"/q/{token}")
    clock.advance(minutes=61)
    response = client.get("/q/")
    assert response.status_code == 401 and "Open the link" in response.get_data(as_text=True)


def test_opening_is_audited_without_content(client, db_session, issued):
    link, token = issued
    client.get(f"/q/{token}")
    event = db_session.scalar(select(AuditEvent).where(AuditEvent.action == "link.open"))
    assert (event.actor_kind, event.outcome, event.object_id) == ("client", "allowed",
                                                                  str(link.id))


def test_links_issue_command(runner, db_session, make_user, make_client, make_episode):
    client_row = make_client(make_user())
    make_episode(client_row)
    db_session.commit()
    result = runner.invoke(args=["links", "issue", "--client", client_row.code])
    assert result.exit_code == 0, result.output
    assert re.search(r"http://127\.0\.0\.1:5000/q/[A-Za-z0-9_-]{43}", result.output)
    missing = runner.invoke(args=["links", "issue", "--client", "C-ZZZZZZ"])
    assert missing.exit_code == 2 and "no client 'C-ZZZZZZ'" in missing.output


def test_the_session_check_is_asked_after_the_session_and_says_it_is_not_validated(
        client, db_session, clock, make_user, make_client, make_episode):
    episode = make_episode(make_client(make_user()))
    link, token = issue_link(db_session, episode=episode, purpose="post", now=clock(),
                             library=LIB)
    db_session.commit()
    assert link.battery == ["session_check"]
    client.get(f"/q/{token}")
    html = client.get("/q/").get_data(as_text=True)
    assert "Session check (not a validated measure)" in html
    assert "They are not a validated measure" in html
    assert "My therapist listened to me and took me seriously." in html
    answers = {item.id: "8" for item in LIB.get("session_check").items}
    assert post_page(client, "session_check", answers).status_code == 303
    stored = db_session.scalar(select(Administration))
    assert stored is not None and stored.total == 32 and stored.link_id == link.id
    assert "Thank you" in client.get("/q/").get_data(as_text=True)


def test_a_link_that_asks_nothing_never_thanks_the_client(client, db_session, issued):
    """An empty battery (a link issued before such links were refused): the client is told
    there is nothing to fill in, never that answers were sent."""
    link, token = issued
    link.battery = []
    db_session.commit()
    client.get(f"/q/{token}")
    response = client.get("/q/")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "There is nothing to fill in for this link" in html
    assert "Your answers have been sent" not in html and "Thank you" not in html
    assert db_session.scalar(select(Administration.id)) is None


def test_links_issue_command_refuses_a_link_that_asks_nothing(runner, db_session, clinic,
                                                               make_user, make_client,
                                                               make_episode):
    from outcome.models import QuestionnaireLink
    from outcome.services import clinic_settings

    client_row = make_client(make_user())
    make_episode(client_row)
    clinic_settings.update(db_session, clinic, {"post_instrument": ""})
    db_session.commit()
    result = runner.invoke(args=["links", "issue", "--client", client_row.code,
                                 "--purpose", "post"])
    assert result.exit_code == 1 and "No link issued" in result.output
    assert "/q/" not in result.output
    assert db_session.scalars(select(QuestionnaireLink)).all() == []
