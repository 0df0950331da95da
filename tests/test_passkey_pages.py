"""Passkeys on the web (issue 20): registering and removing them on the account page's
slot, using one on the second step of sign-in; every failure a 4xx JSON message."""

from __future__ import annotations

import json

import pytest
from flask import render_template
from flask_login import login_user
from sqlalchemy import select

from outcome.extensions import limiter
from outcome.models import AuditEvent
from outcome.models import Passkey
from outcome.services import clinic_settings
from outcome.web.second_factor import PENDING_KEY
from tests.conftest import TEST_PASSWORD
from tests.conftest import csrf_token
from tests.passkey_authenticator import SoftAuthenticator


def token(client) -> str:
    return csrf_token(client.get("/account/password").get_data(as_text=True))


def post_json(client, url, body, csrf):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(url, data=data, content_type="application/json",
                       headers={"X-CSRFToken": csrf})


def register(client, device, name="Laptop", csrf=None):
    csrf = csrf or token(client)
    options = client.post("/account/passkeys/options", headers={"X-CSRFToken": csrf})
    assert options.status_code == 200, options.get_data(as_text=True)
    return post_json(client, "/account/passkeys",
                     {"name": name, "credential": device.create(options.get_json())}, csrf)


def hold_pending(client, user, clock):
    """What a correct password leaves in the session when a second step is due."""
    with client.session_transaction() as session:
        session.clear()
        session[PENDING_KEY] = {"user": user.id, "version": user.session_version,
                                "at": clock().timestamp(), "next": "/"}
        session["csrf_token"] = "x" * 40  # so the page's token is bound to this session
    return pending_token(client)


def pending_token(client) -> str:
    # The login page is shown to a visitor with a pending sign-in, with a fresh token.
    return csrf_token(client.get("/login").get_data(as_text=True))


def events(db_session, action):
    return db_session.scalars(select(AuditEvent).where(AuditEvent.action == action)
                              .order_by(AuditEvent.id)).all()


@pytest.fixture
def enrolled(auth, client, db_session, make_user):
    """A therapist with one passkey on a software authenticator, signed out."""
    user = make_user()
    device = SoftAuthenticator()
    auth.login(user.email)
    assert register(client, device).status_code == 201
    auth.logout()
    db_session.refresh(user)  # the logout bumped its session version
    return user, device


def test_registration_stores_the_passkey_and_audits_it(auth, client, db_session, make_user):
    user = make_user()
    auth.login(user.email)
    response = register(client, SoftAuthenticator(), name=" Phone ")
    assert response.status_code == 201, response.get_data(as_text=True)
    stored = db_session.scalars(select(Passkey).where(Passkey.user_id == user.id)).one()
    assert stored.name == "Phone"
    [event] = events(db_session, "passkey.register")
    assert (event.outcome, event.actor_user_id, event.object_id) == (
        "allowed", user.id, str(stored.id))


@pytest.mark.parametrize("body", ["not json", "[1, 2]", {"name": "Laptop"},
                                  {"name": "Laptop", "credential": {"id": "AA"}},
                                  {"name": "", "credential": {}},
                                  {"name": "x" * 101, "credential": {}}])
def test_a_bad_registration_is_a_400_with_a_message(auth, client, db_session, make_user, body):
    auth.login(make_user().email)
    csrf = token(client)
    client.post("/account/passkeys/options", headers={"X-CSRFToken": csrf})
    response = post_json(client, "/account/passkeys", body, csrf)
    assert response.status_code == 400
    assert response.get_json()["error"]
    assert db_session.scalars(select(Passkey)).all() == []


def test_registration_without_options_expired_or_replayed_is_refused(
        app, auth, client, db_session, make_user, clock):
    auth.login(make_user().email)
    csrf = token(client)
    device = SoftAuthenticator()
    no_options = post_json(client, "/account/passkeys",
                           {"name": "Laptop", "credential": device.create(
                               {"rp": {"id": "localhost"}, "challenge": "AAAA"})}, csrf)
    assert no_options.status_code == 400 and "expired" in no_options.get_json()["error"]
    options = client.post("/account/passkeys/options", headers={"X-CSRFToken": csrf}).get_json()
    clock.advance(minutes=6)
    late = post_json(client, "/account/passkeys",
                     {"name": "Laptop", "credential": device.create(options)}, csrf)
    assert late.status_code == 400 and "expired" in late.get_json()["error"]
    assert db_session.scalars(select(Passkey)).all() == []


def test_registration_without_the_csrf_token_is_refused(auth, client, make_user):
    auth.login(make_user().email)
    response = client.post("/account/passkeys/options")
    assert response.status_code == 400


def test_signing_in_with_a_passkey(client, db_session, enrolled, clock):
    user, device = enrolled
    csrf = hold_pending(client, user, clock)
    options = client.post("/login/passkey/options", headers={"X-CSRFToken": csrf})
    assert options.status_code == 200
    assert [c["id"] for c in options.get_json()["allowCredentials"]] == [
        db_session.scalars(select(Passkey)).one().credential_id]
    response = post_json(client, "/login/passkey",
                         {"credential": device.get(options.get_json())}, csrf)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {"redirect": "/"}
    assert client.get("/").status_code == 200  # signed in
    login = events(db_session, "login")[-1]
    assert (login.outcome, login.object_id) == ("allowed", "passkey")


def test_sign_in_steps_without_a_pending_sign_in_are_401(client, enrolled):
    csrf = pending_token(client)
    for url in ("/login/passkey/options", "/login/passkey"):
        response = post_json(client, url, {}, csrf)
        assert response.status_code == 401 and response.get_json()["error"]


@pytest.mark.parametrize("body", ["{", "[]", {}, {"credential": "nonsense"},
                                  {"credential": {"id": "AA", "rawId": "AA",
                                                  "type": "public-key", "response": {}}}])
def test_a_bad_assertion_is_a_400_counted_and_audited(client, db_session, enrolled, clock,
                                                     body):
    user, _device = enrolled
    csrf = hold_pending(client, user, clock)
    client.post("/login/passkey/options", headers={"X-CSRFToken": csrf})
    response = post_json(client, "/login/passkey", body, csrf)
    assert response.status_code == 400 and response.get_json()["error"]
    denied = events(db_session, "login")[-1]
    assert (denied.outcome, denied.actor_user_id, denied.object_id) == (
        "denied", user.id, "passkey")
    assert client.get("/").status_code == 302  # not signed in


def test_an_unknown_credential_is_refused(client, db_session, enrolled, clock):
    user, _device = enrolled
    csrf = hold_pending(client, user, clock)
    options = client.post("/login/passkey/options", headers={"X-CSRFToken": csrf}).get_json()
    options["allowCredentials"] = []
    response = post_json(client, "/login/passkey",
                         {"credential": SoftAuthenticator().get(options)}, csrf)
    assert response.status_code == 400
    assert "not registered" in response.get_json()["error"]


def test_an_expired_challenge_is_refused(client, enrolled, clock):
    user, device = enrolled
    csrf = hold_pending(client, user, clock)
    options = client.post("/login/passkey/options", headers={"X-CSRFToken": csrf}).get_json()
    clock.advance(minutes=4)
    csrf = hold_pending(client, user, clock)  # a fresh pending sign-in, the old challenge
    with client.session_transaction() as session:
        assert "passkey_challenge" not in session
    response = post_json(client, "/login/passkey", {"credential": device.get(options)}, csrf)
    assert response.status_code == 400 and "expired" in response.get_json()["error"]


def test_a_challenge_answers_once_even_with_an_old_cookie(app, client, enrolled, clock):
    user, device = enrolled
    csrf = hold_pending(client, user, clock)
    options = client.post("/login/passkey/options", headers={"X-CSRFToken": csrf}).get_json()
    captured = client.get_cookie("session").value
    answer = {"credential": device.get(options)}
    assert post_json(client, "/login/passkey", answer, csrf).status_code == 200
    replay = app.test_client()
    replay.set_cookie("session", captured)
    device.sign_count += 5  # even with a counter that moved on
    again = post_json(replay, "/login/passkey", {"credential": device.get(options)}, csrf)
    assert again.status_code == 400 and "already used" in again.get_json()["error"]
    assert replay.get("/").status_code == 302


def test_a_cloned_key_is_refused(client, db_session, enrolled, clock):
    user, device = enrolled
    for _ in range(2):
        csrf = hold_pending(client, user, clock)
        options = client.post("/login/passkey/options",
                              headers={"X-CSRFToken": csrf}).get_json()
        assert post_json(client, "/login/passkey", {"credential": device.get(options)},
                         csrf).status_code == 200
    clone = SoftAuthenticator(credential_id=device.credential_id, key=device.key)
    csrf = hold_pending(client, user, clock)
    options = client.post("/login/passkey/options", headers={"X-CSRFToken": csrf}).get_json()
    response = post_json(client, "/login/passkey", {"credential": clone.get(options)}, csrf)
    assert response.status_code == 400 and "copied" in response.get_json()["error"]


def test_failed_passkey_attempts_are_throttled_like_passwords(make_app, session_factory,
                                                             clock, db_session, make_user):
    app = make_app(session_factory=session_factory, clock=clock, RATELIMIT_ENABLED=True)
    client = app.test_client()
    user = make_user()
    db_session.add(Passkey(user_id=user.id, credential_id="AAAA", public_key="AAAA",
                           name="Laptop"))
    db_session.flush()
    try:
        statuses = []
        for _ in range(12):
            csrf = hold_pending(client, user, clock)
            statuses.append(post_json(client, "/login/passkey", {"credential": {}},
                                      csrf).status_code)
        assert statuses[0] == 400 and 429 in statuses
        refused = post_json(client, "/login/passkey", {}, csrf)
        assert refused.status_code == 429 and refused.get_json()["error"]
    finally:
        with app.app_context():
            limiter.reset()


def test_deleting_needs_confirmation_ownership_and_another_required_factor(
        auth, client, db_session, make_user, clinic):
    user = make_user()
    auth.login(user.email)
    register(client, SoftAuthenticator())
    passkey_id = db_session.scalars(select(Passkey.id)).one()
    url = f"/account/passkeys/{passkey_id}/delete"
    csrf = token(client)
    assert client.post(url, data={"csrf_token": csrf}).status_code == 400  # no confirmation
    clinic_settings.update(db_session, clinic, {"two_factor_roles": ["therapist"]})
    refused = client.post(url, data={"csrf_token": csrf, "confirm": "yes",
                                     "password": TEST_PASSWORD,
                                     "next": "/account/password"}, follow_redirects=True)
    assert "requires a second step" in refused.get_data(as_text=True)
    assert db_session.scalars(select(Passkey.id)).all() == [passkey_id]
    clinic_settings.update(db_session, clinic, {"two_factor_roles": []})
    done = client.post(url, data={"csrf_token": csrf, "confirm": "yes",
                                  "password": TEST_PASSWORD,
                                  "next": "https://evil.example/"})
    assert done.status_code == 303 and done.headers["Location"] == "/"
    assert db_session.scalars(select(Passkey.id)).all() == []
    assert [e.outcome for e in events(db_session, "passkey.delete")] == ["denied", "allowed"]


def test_removing_a_passkey_needs_the_password_or_a_current_code(auth, client, db_session,
                                                                make_user):
    # "Weakening the account needs more than an open session" (docs/security.md): in a
    # clinic that requires no second factor, the last passkey still needs the password.
    user = make_user()
    auth.login(user.email)
    register(client, SoftAuthenticator())
    passkey_id = db_session.scalars(select(Passkey.id)).one()
    url = f"/account/passkeys/{passkey_id}/delete"
    csrf = token(client)
    for typed in ({}, {"password": "not my password"}, {"code": "123456"}):
        refused = client.post(url, data={"csrf_token": csrf, "confirm": "yes", **typed,
                                         "next": "/account/two-factor"},
                              follow_redirects=True)
        assert "your password" in refused.get_data(as_text=True)
        assert db_session.scalars(select(Passkey.id)).all() == [passkey_id]
    done = client.post(url, data={"csrf_token": csrf, "confirm": "yes",
                                  "password": TEST_PASSWORD})
    assert done.status_code == 303
    assert db_session.scalars(select(Passkey.id)).all() == []
    assert [e.outcome for e in events(db_session, "passkey.delete")] == [
        "denied", "denied", "denied", "allowed"]


def test_somebody_elses_passkey_is_a_404(auth, client, db_session, make_user):
    owner, other = make_user(), make_user()
    passkey = Passkey(user_id=owner.id, credential_id="AAAA", public_key="AAAA", name="Key")
    db_session.add(passkey)
    db_session.flush()
    auth.login(other.email)
    response = client.post(f"/account/passkeys/{passkey.id}/delete",
                           data={"csrf_token": token(client), "confirm": "yes"})
    assert response.status_code == 404
    assert db_session.get(Passkey, passkey.id) is not None


def test_the_account_slot_lists_own_passkeys_and_the_add_form(app, db_session, make_user):
    user, other = make_user(), make_user()
    db_session.add_all([Passkey(user_id=user.id, credential_id="AAAA", public_key="AAAA",
                                name="My <laptop>"),
                        Passkey(user_id=other.id, credential_id="BBBB", public_key="AAAA",
                                name="Their key")])
    db_session.flush()
    with app.test_request_context("/account/two-factor"):
        login_user(user)
        html = render_template("account/_passkeys.html")
    assert "My &lt;laptop&gt;" in html and "Their key" not in html
    assert 'data-passkey="register"' in html and "passkeys.js" in html
    assert 'name="confirm"' in html and 'value="/account/two-factor"' in html
    assert 'name="password"' in html


def test_the_sign_in_slot_shows_only_for_a_pending_user_with_a_passkey(app, make_user,
                                                                       db_session, clock):
    with_key, without = make_user(), make_user()
    db_session.add(Passkey(user_id=with_key.id, credential_id="AAAA", public_key="AAAA",
                           name="Key"))
    db_session.flush()
    for user, shown in ((with_key, True), (without, False), (None, False)):
        with app.test_request_context("/login/second-factor"):
            from flask import session
            if user is not None:
                session[PENDING_KEY] = {"user": user.id, "version": user.session_version,
                                        "at": clock().timestamp(), "next": "/"}
            html = render_template("auth/_passkey_option.html")
        assert ('data-passkey="sign-in"' in html) is shown
