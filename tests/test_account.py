"""A staff member changes their own password; every other session ends."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from outcome.extensions import limiter
from outcome.models import AuditEvent
from outcome.services.passwords import verify_password
from tests.conftest import TEST_PASSWORD
from tests.conftest import AuthActions
from tests.conftest import csrf_token

NEW_PASSWORD = "a lantern by the quiet harbour"


def change(client, current=TEST_PASSWORD, new=NEW_PASSWORD, confirm=None):
    token = csrf_token(client.get("/account/password").get_data(as_text=True))
    return client.post("/account/password", data={
        "csrf_token": token, "current_password": current, "new_password": new,
        "confirm": new if confirm is None else confirm})


def test_the_page_needs_a_login(client):
    response = client.get("/account/password")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.mark.parametrize("role", ["therapist", "supervisor", "admin"])
def test_form_has_labelled_password_fields(auth, client, make_user, role):
    auth.login(make_user(role).email)
    html = client.get("/account/password").get_data(as_text=True)
    for name, autocomplete in (("current_password", "current-password"),
                               ("new_password", "new-password"), ("confirm", "new-password")):
        assert f'<label for="{name}">' in html
        assert f'name="{name}"' in html and f'autocomplete="{autocomplete}"' in html


def test_change_ends_a_captured_cookie_and_keeps_this_browser_signed_in(
        app, auth, client, db_session, make_user):
    user = make_user()
    auth.login(user.email)
    captured = client.get_cookie("session").value
    other_browser = app.test_client()
    AuthActions(other_browser).login(user.email)
    response = change(client)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    home = client.get("/")
    assert home.status_code == 200  # re-issued with the new session version
    assert "Your password is changed" in home.get_data(as_text=True)
    replay = app.test_client()
    replay.set_cookie("session", captured)
    assert replay.get("/").status_code == 302  # the captured cookie is dead
    assert other_browser.get("/").status_code == 302  # so is the other session
    db_session.refresh(user)
    assert user.session_version == 2 and verify_password(user.password_hash, NEW_PASSWORD)
    assert "do not match" in AuthActions(app.test_client()).login(user.email).get_data(
        as_text=True)
    assert AuthActions(app.test_client()).login(user.email, NEW_PASSWORD).status_code == 302
    [event] = db_session.scalars(select(AuditEvent).where(
        AuditEvent.action == "password.change")).all()
    assert (event.outcome, event.actor_user_id, event.object_id) == (
        "allowed", user.id, str(user.id))


def test_change_keeps_the_original_sign_in_time(auth, client, clock, make_user):
    # A password change must not extend the absolute session limit (12 h).
    auth.login(make_user().email)
    for _ in range(22):  # 11 hours of activity
        clock.advance(minutes=30)
        client.get("/")
    change(client)
    statuses = []
    for minutes in (20, 20, 25):  # active, and 12 h 5 min after signing in
        clock.advance(minutes=minutes)
        statuses.append(client.get("/").status_code)
    assert statuses == [200, 200, 302]


@pytest.mark.parametrize(("current", "new", "confirm", "message", "outcome"), [
    ("not my password", NEW_PASSWORD, None, "The current password is not right", "denied"),
    (TEST_PASSWORD, "short", None, "at least 15 characters", "error"),
    (TEST_PASSWORD, TEST_PASSWORD, None, "same as the current one", "error"),
    (TEST_PASSWORD, NEW_PASSWORD, "something else entirely", "The two new passwords differ",
     None),
])
def test_a_refused_change_says_why_and_changes_nothing(app, auth, client, db_session,
                                                      make_user, current, new, confirm,
                                                      message, outcome):
    user = make_user()
    auth.login(user.email)
    captured = client.get_cookie("session").value
    response = change(client, current, new, confirm)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and message in html
    assert 'aria-invalid="true"' in html
    db_session.refresh(user)
    assert user.session_version == 1 and verify_password(user.password_hash, TEST_PASSWORD)
    replay = app.test_client()
    replay.set_cookie("session", captured)
    assert replay.get("/").status_code == 200
    events = db_session.scalars(select(AuditEvent).where(
        AuditEvent.action == "password.change")).all()
    assert [e.outcome for e in events] == ([outcome] if outcome else [])


def test_the_change_needs_a_csrf_token(auth, client, make_user):
    auth.login(make_user().email)
    response = client.post("/account/password", data={
        "current_password": TEST_PASSWORD, "new_password": NEW_PASSWORD,
        "confirm": NEW_PASSWORD})
    assert response.status_code == 400


@pytest.fixture
def limited(make_app, session_factory, clock):
    """An app with rate limits on and fresh counters."""
    app = make_app(session_factory=session_factory, clock=clock, RATELIMIT_ENABLED=True)
    limiter.reset()
    yield app
    limiter.reset()


def test_guessing_the_current_password_is_rate_limited(limited, make_user):
    user = make_user()
    browser = limited.test_client()
    AuthActions(browser).login(user.email)
    statuses = [change(browser, f"wrong guess number {n}").status_code for n in range(11)]
    assert statuses[:10] == [200] * 10 and statuses[10] == 429
