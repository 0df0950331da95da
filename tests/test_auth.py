"""Staff sign-in and sign-out through the real forms."""

from __future__ import annotations

from sqlalchemy import select

from outcome.models import AuditDenialCount
from outcome.models import AuditEvent
from tests.conftest import TEST_PASSWORD
from tests.conftest import csrf_token


def test_login_page_renders_with_a_csrf_protected_form(client):
    response = client.get("/login")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Sign in" in html
    assert csrf_token(html)
    assert 'autocomplete="current-password"' in html


def test_pages_need_a_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_therapist_signs_in_and_sees_their_caseload(auth, client, make_user, make_client,
                                                    make_episode):
    therapist = make_user(display_name="Robin Field")
    for _ in range(3):
        make_episode(make_client(therapist))
    make_client(make_user())  # someone else's client is not counted
    response = auth.login(therapist.email.upper())  # e-mail is case-insensitive
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    html = client.get("/").get_data(as_text=True)
    assert "Welcome, Robin Field" in html
    assert "<dt>Clients you can see</dt><dd>3</dd>" in html
    assert "<dt>Open episodes</dt><dd>3</dd>" in html


def test_wrong_password_is_refused_with_a_generic_message(auth, db_session, make_user):
    therapist = make_user()
    response = auth.login(therapist.email, "not the password at all")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "do not match an active account" in html
    unknown = auth.login("nobody@example.org", "not the password at all")
    assert "do not match an active account" in unknown.get_data(as_text=True)
    events = db_session.scalars(select(AuditEvent).where(AuditEvent.action == "login")
                                .order_by(AuditEvent.id)).all()
    assert [(e.outcome, e.actor_user_id, e.actor_kind) for e in events] == [
        ("denied", therapist.id, "user")]
    # Nobody's account: counted per address and minute (issue 16), not an event each.
    assert db_session.scalar(select(AuditDenialCount.count).where(
        AuditDenialCount.action == "login")) == 1


def test_disabled_account_cannot_sign_in(auth, make_user):
    user = make_user(is_active=False)
    assert "do not match" in auth.login(user.email).get_data(as_text=True)


def test_login_without_csrf_token_is_refused(client, make_user):
    user = make_user()
    response = client.post("/login", data={"email": user.email, "password": TEST_PASSWORD})
    assert response.status_code == 400
    assert "This form has expired" in response.get_data(as_text=True)


def test_logout_ends_the_session_even_for_a_copied_cookie(app, auth, client, db_session,
                                                          make_user):
    user = make_user()
    auth.login(user.email)
    stolen = client.get_cookie("session").value
    assert auth.logout().status_code == 302
    assert client.get("/").status_code == 302

    replay = app.test_client()
    replay.set_cookie("session", stolen)
    assert replay.get("/").status_code == 302  # the old cookie no longer signs anyone in
    db_session.refresh(user)
    assert user.session_version == 2
    actions = db_session.scalars(select(AuditEvent.action).where(
        AuditEvent.actor_user_id == user.id).order_by(AuditEvent.id)).all()
    # The replayed cookie viewed nothing: the only caseload view is before logging out.
    assert actions == ["login", "caseload.view", "logout"]


def test_next_parameter_cannot_redirect_off_site(auth, make_user):
    user = make_user()
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        response = auth.login(user.email, query_string={"next": target})
        assert response.headers["Location"] == "/", target
        auth.logout()
    response = auth.login(user.email, query_string={"next": "/?tab=alerts"})
    assert response.headers["Location"] == "/?tab=alerts"


def test_supervisor_and_admin_home_pages(auth, client, make_user, make_client, assign):
    therapist = make_user()
    supervisor = make_user("supervisor")
    assign(supervisor, therapist)
    make_client(therapist)
    auth.login(supervisor.email)
    html = client.get("/").get_data(as_text=True)
    assert "<dt>Clients you can see</dt><dd>1</dd>" in html
    assert "by code, not by name" in html
    auth.logout()
    auth.login(make_user("admin").email)
    assert "see no client answers" in client.get("/").get_data(as_text=True)
