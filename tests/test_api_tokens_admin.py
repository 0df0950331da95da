"""API tokens: the service, the admin page (integration tokens, secret shown once, admins
only, audited) and ``outcome tokens`` (personal tokens as the user, integration tokens
as an admin). Personal tokens on the account page: tests/test_token_rules.py."""

from __future__ import annotations

import datetime as dt
import hashlib
import re

import pytest
from sqlalchemy import select
from sqlalchemy import text

from outcome.models import ApiToken
from outcome.models import AuditEvent
from outcome.services import api_tokens
from outcome.services.api_tokens import TokenError
from tests.conftest import csrf_token

SECRET_BOX = re.compile(r'id="new-token-secret" readonly value="([^"]+)"')
WARNING = "Copy this token now; it will not be shown again."


@pytest.fixture
def world(db_session, clinic, make_clinic, make_user):
    """An admin and a therapist of the clinic; an admin and a therapist of another one."""
    other = make_clinic()
    people = {"admin": make_user("admin", display_name="Ada Admin"),
              "therapist": make_user("therapist", display_name="Theo Therapist"),
              "other_admin": make_user("admin", clinic_id=other.id, display_name="Oz Admin"),
              "other_therapist": make_user("therapist", clinic_id=other.id,
                                           display_name="Olga Elsewhere")}
    db_session.commit()
    return {"clinic": clinic, "other": other, **people}


def make_token(db_session, world, clock, *, user="therapist", by=None, kind="personal",
               **kwargs):
    """A token acting for ``user``, made by ``by`` (by default themselves)."""
    kwargs.setdefault("name", "EHR sync")
    kwargs.setdefault("scopes", ["read"])
    token, secret = api_tokens.create_token(
        db_session, user=world[user], created_by=world[by or user], kind=kind,
        now=clock(), **kwargs)
    db_session.commit()
    return token, secret


def events(db_session, action):
    db_session.expire_all()
    return db_session.scalars(select(AuditEvent).where(AuditEvent.action == action)
                              .order_by(AuditEvent.id)).all()


def token_count(db_session) -> int:
    db_session.expire_all()
    return len(db_session.scalars(select(ApiToken)).all())


def row_text(db_session, table: str) -> str:
    """Every stored value of ``table``, as the database holds it."""
    return repr(db_session.execute(text(f"SELECT * FROM {table}")).all())


# --- the service -------------------------------------------------------------------------


def test_only_the_sha256_of_the_secret_is_stored(db_session, world, clock):
    token, secret = make_token(db_session, world, clock, scopes=["write", "read", "read"],
                               days=30)
    assert secret.startswith("oc_") and len(secret) >= 40
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert token.prefix == secret[:10] and token.prefix.startswith("oc_")
    assert token.scopes == ["read", "write"]
    assert token.expires_dt == clock() + dt.timedelta(days=30)
    assert (token.kind, token.user_id, token.created_by_id, token.clinic_id) == (
        "personal", world["therapist"].id, world["therapist"].id, world["clinic"].id)
    stored = row_text(db_session, "api_tokens")
    assert secret not in stored and secret[10:] not in stored
    assert token.token_hash in stored


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"by": "admin"}, "user_id", "acts for the person who creates it"),
    ({"by": "other_admin"}, "user_id", "acts for the person who creates it"),
    ({"kind": "integration"}, None, "Only an active admin"),
    ({"user": "admin", "kind": "integration", "scopes": ["read", "write"]}, "scopes",
     "reads client codes only"),
    ({"name": "   "}, "name", "Give the token a name"),
    ({"name": "x" * 101}, "name", "at most 100 characters"),
    ({"scopes": []}, "scopes", "Choose the token's scopes"),
    ({"scopes": ["read", "admin"]}, "scopes", "Choose the token's scopes"),
    ({"days": 0}, "days", "1 to 366 days"),
    ({"days": 367}, "days", "1 to 366 days"),
])
def test_create_refusals(db_session, world, clock, change, field, message):
    with pytest.raises(TokenError, match=message) as caught:
        make_token(db_session, world, clock, **change)
    assert caught.value.field == field
    db_session.rollback()
    assert token_count(db_session) == 0


def test_a_disabled_staff_member_or_admin_gets_no_token(db_session, world, clock):
    world["therapist"].is_active = False
    db_session.commit()
    with pytest.raises(TokenError, match="active staff member"):
        make_token(db_session, world, clock)
    world["admin"].is_active = False
    db_session.commit()
    with pytest.raises(TokenError, match="active staff member"):
        make_token(db_session, world, clock, user="admin", kind="integration")


def test_revoke_once_by_an_admin_of_the_clinic(db_session, world, clock):
    token, _secret = make_token(db_session, world, clock)
    with pytest.raises(TokenError, match="Only an active admin"):
        api_tokens.revoke_token(db_session, token, world["other_admin"], clock())
    with pytest.raises(TokenError, match="Only an active admin"):
        api_tokens.revoke_token(db_session, token, world["other_therapist"], clock())
    api_tokens.revoke_token(db_session, token, world["admin"], clock())
    assert (token.revoked_dt, token.revoked_by_id) == (clock(), world["admin"].id)
    with pytest.raises(TokenError, match="revoked already"):
        api_tokens.revoke_token(db_session, token, world["admin"], clock())


def test_authenticate_accepts_a_good_token_and_notes_its_use(db_session, world, clock):
    token, secret = make_token(db_session, world, clock)
    assert api_tokens.authenticate(db_session, secret, clock()) is token
    assert token.last_used_dt == clock()
    later = clock() + dt.timedelta(minutes=2)  # within five minutes: not written again
    assert api_tokens.authenticate(db_session, secret, later) is token
    assert token.last_used_dt == clock()
    assert api_tokens.token_status(token, clock()) == "active"


@pytest.mark.parametrize("secret", ["", "oc_", "oc_unknown-secret", "Bearer oc_x",
                                    "oc_" + "a" * 300])
def test_authenticate_refuses_unknown_secrets(db_session, world, clock, secret):
    make_token(db_session, world, clock)
    assert api_tokens.authenticate(db_session, secret, clock()) is None


def test_authenticate_refuses_expired_revoked_and_disabled_user_tokens(db_session, world,
                                                                       clock):
    expired, expired_secret = make_token(db_session, world, clock, days=1)
    at_expiry = clock() + dt.timedelta(days=1)
    assert api_tokens.authenticate(db_session, expired_secret, at_expiry) is None
    assert api_tokens.token_status(expired, at_expiry) == "expired"
    revoked, revoked_secret = make_token(db_session, world, clock, name="Revoked")
    api_tokens.revoke_token(db_session, revoked, world["admin"], clock())
    assert api_tokens.authenticate(db_session, revoked_secret, clock()) is None
    assert api_tokens.token_status(revoked, clock()) == "revoked"
    disabled, disabled_secret = make_token(db_session, world, clock, name="Disabled")
    world["therapist"].is_active = False
    db_session.flush()
    assert api_tokens.authenticate(db_session, disabled_secret, clock()) is None
    assert api_tokens.token_status(disabled, clock()) == "user disabled"
    assert expired.last_used_dt is None and disabled.last_used_dt is None


def test_clinic_tokens_lists_one_clinic_newest_first(db_session, world, clock):
    first, _ = make_token(db_session, world, clock, name="First")
    clock.advance(minutes=1)
    second, _ = make_token(db_session, world, clock, name="Second")
    make_token(db_session, world, clock, user="other_therapist")
    assert api_tokens.clinic_tokens(db_session, world["clinic"]) == [second, first]


# --- the admin page ----------------------------------------------------------------------


def page_token(client) -> str:
    return csrf_token(client.get("/admin/tokens").get_data(as_text=True))


def post(client, url, **data):
    return client.post(url, data={"csrf_token": page_token(client), **data})


def create(client, world, **data):
    data = {"name": "EHR sync", "days": "90", **data}
    return post(client, "/admin/tokens", **data)


def test_the_page_lists_tokens_without_their_secrets(auth, client, db_session, world, clock):
    token, secret = make_token(db_session, world, clock, scopes=["read", "write"])
    make_token(db_session, world, clock, user="other_therapist", name="Other clinic's sync")
    auth.login(world["admin"].email)
    response = client.get("/admin/tokens")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert secret not in html and token.token_hash not in html
    assert f"{token.prefix}…" in html
    for shown in ("EHR sync", "Theo Therapist", world["therapist"].email, "read, write",
                  "Nov 16, 2026", "Feb 14, 2027", "Never", "Active", "personal"):
        assert shown in html, shown
    assert "Other clinic's sync" not in html and "Olga Elsewhere" not in html
    assert f'action="/admin/tokens/{token.id}/revoke"' in html
    # The form: an integration token (nobody to choose: it acts for the admin), read
    # only, 90 days by default.
    assert 'name="user_id"' not in html and 'name="scope"' not in html
    assert 'name="days" required min="1" max="366" step="1" value="90"' in html
    assert 'for="token-name"' in html and "Scope: read" in html
    assert "<script" not in html and "style=" not in html


def test_statuses_on_the_page(auth, client, db_session, world, clock, make_user):
    make_token(db_session, world, clock, name="Short-lived", days=1)
    revoked, _ = make_token(db_session, world, clock, name="Revoked one")
    api_tokens.revoke_token(db_session, revoked, world["admin"], clock())
    disabled_user = world["leaver"] = make_user("therapist", display_name="Lee Leaver")
    make_token(db_session, world, clock, name="Their token", user="leaver")
    disabled_user.is_active = False
    db_session.commit()
    clock.advance(days=2)
    auth.login(world["admin"].email)
    html = client.get("/admin/tokens").get_data(as_text=True)
    for label in ("Expired", "Revoked", "Staff member disabled"):
        assert f"<strong>{label}</strong>" in html, label
    assert f'action="/admin/tokens/{revoked.id}/revoke"' not in html


def test_admin_creates_a_token_and_sees_the_secret_once(auth, client, db_session, world, clock):
    auth.login(world["admin"].email)
    response = create(client, world, name="  EHR sync  ", days="30")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert WARNING in html
    secret = SECRET_BOX.search(html).group(1)
    assert secret.startswith("oc_") and html.count(secret) == 1
    assert all(secret not in value for value in response.headers.values())
    assert "Integration token EHR sync created." in html
    [token] = db_session.scalars(select(ApiToken)).all()
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert (token.name, token.kind, token.scopes, token.user_id, token.created_by_id) == (
        "EHR sync", "integration", ["read"], world["admin"].id, world["admin"].id)
    assert token.expires_dt == clock() + dt.timedelta(days=30)
    assert api_tokens.authenticate(db_session, secret, clock()) == token
    [event] = events(db_session, "api_token.create")
    assert (event.outcome, event.actor_user_id, event.clinic_id, event.object_type,
            event.object_id) == ("allowed", world["admin"].id, world["clinic"].id,
                                 "api_token", str(token.id))
    assert secret not in row_text(db_session, "audit_events")
    # Never again: not on the list, not after signing in again.
    later = client.get("/admin/tokens").get_data(as_text=True)
    assert secret not in later and WARNING not in later
    assert f"{token.prefix}…" in later


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"name": ""}, "name", "Give the token a name"),
    ({"name": "n" * 101}, "name", "at most 100 characters"),
    ({"scope": ["read", "write"]}, "scopes", "reads client codes only"),
    ({"scope": ["read", "delete"]}, "scopes", "Choose the token&#39;s scopes"),
    ({"user_id": "{therapist}"}, "user_id", "acts for the person who creates it"),
    ({"days": "0"}, "days", "1 to 366 days"),
    ({"days": "367"}, "days", "1 to 366 days"),
    ({"days": "ninety"}, "days", "1 to 366 days"),
    ({"days": "9" * 5000}, "days", "1 to 366 days"),
    ({"days": ""}, "days", "1 to 366 days"),
])
def test_a_refused_token_shows_the_field_and_saves_nothing(auth, client, db_session, world,
                                                          data, field, message):
    auth.login(world["admin"].email)
    if data.get("user_id") == "{therapist}":
        data = {"user_id": str(world["therapist"].id)}
    response = create(client, world, **data)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f'<p class="error" id="{field}-error">' in html and message in html
    assert f'aria-describedby="{field}-error"' in html
    assert SECRET_BOX.search(html) is None and WARNING not in html
    assert token_count(db_session) == 0
    [event] = events(db_session, "api_token.create")
    assert (event.outcome, event.object_type) == ("error", "api_token")


def test_the_form_keeps_what_was_typed(auth, client, db_session, world):
    auth.login(world["admin"].email)
    html = create(client, world, name="Kept name", days="400",
                  user_id=str(world["admin"].id)).get_data(as_text=True)
    assert 'value="Kept name"' in html and 'value="400"' in html


def test_a_disabled_staff_member_is_refused_by_field(auth, client, db_session, world):
    world["therapist"].is_active = False
    db_session.commit()
    auth.login(world["admin"].email)
    html = create(client, world, user_id=str(world["therapist"].id)).get_data(as_text=True)
    assert '<p class="error" id="user_id-error">' in html
    assert token_count(db_session) == 0


@pytest.mark.parametrize("user_id", ["other", "unknown", "", "x"])
def test_a_user_of_another_clinic_is_a_404(auth, client, db_session, world, user_id):
    raw = {"other": str(world["other_therapist"].id), "unknown": "987654321"}.get(
        user_id, user_id)
    auth.login(world["admin"].email)
    response = create(client, world, user_id=raw)
    assert response.status_code == 404
    assert token_count(db_session) == 0
    assert [e.outcome for e in events(db_session, "api_token.create")] == ["denied"]


def test_create_needs_the_csrf_token(auth, client, db_session, world):
    auth.login(world["admin"].email)
    response = client.post("/admin/tokens", data={"name": "X", "scope": "read", "days": "9",
                                                  "user_id": str(world["therapist"].id)})
    assert response.status_code == 400
    assert token_count(db_session) == 0


def test_admin_revokes_a_token(auth, client, db_session, world, clock):
    token, secret = make_token(db_session, world, clock)
    auth.login(world["admin"].email)
    response = post(client, f"/admin/tokens/{token.id}/revoke", confirm="yes")
    assert response.status_code == 302 and response.headers["Location"] == "/admin/tokens"
    html = client.get("/admin/tokens").get_data(as_text=True)
    assert "API token EHR sync is revoked; its next request is refused." in html
    assert "<strong>Revoked</strong>" in html
    db_session.expire_all()
    assert db_session.get(ApiToken, token.id).revoked_by_id == world["admin"].id
    assert api_tokens.authenticate(db_session, secret, clock()) is None
    again = post(client, f"/admin/tokens/{token.id}/revoke", confirm="yes")
    assert again.status_code == 302
    assert "revoked already" in client.get("/admin/tokens").get_data(as_text=True)
    assert [(e.outcome, e.object_type, e.object_id)
            for e in events(db_session, "api_token.revoke")] == [
        ("allowed", "api_token", str(token.id)), ("error", "api_token", str(token.id))]


def without_csrf(response) -> str:
    return re.sub(r'name="csrf_token" value="[^"]*"', 'name="csrf_token"',
                  response.get_data(as_text=True))


def test_another_clinics_token_or_an_unknown_one_is_a_404(auth, client, db_session, world,
                                                          clock):
    theirs, _ = make_token(db_session, world, clock, user="other_therapist")
    auth.login(world["admin"].email)
    foreign = post(client, f"/admin/tokens/{theirs.id}/revoke", confirm="yes")
    unknown = post(client, "/admin/tokens/987654321/revoke", confirm="yes")
    assert foreign.status_code == unknown.status_code == 404
    # The pages differ only in the sign-out form's CSRF token, which is signed with the
    # time in seconds: the two requests may fall in different seconds.
    assert without_csrf(foreign) == without_csrf(unknown)
    db_session.expire_all()
    assert db_session.get(ApiToken, theirs.id).revoked_dt is None
    assert [(e.outcome, e.object_id) for e in events(db_session, "api_token.revoke")] == [
        ("denied", str(theirs.id)), ("denied", "987654321")]


@pytest.mark.parametrize("role", ["therapist", "supervisor"])
def test_non_admins_get_404_and_a_denied_record(auth, client, db_session, world, clock,
                                                make_user, role):
    token, _ = make_token(db_session, world, clock)
    user = make_user(role)
    db_session.commit()
    auth.login(user.email)
    csrf = csrf_token(client.get("/").get_data(as_text=True))
    assert client.get("/admin/tokens").status_code == 404
    assert client.post("/admin/tokens", data={
        "csrf_token": csrf, "name": "Mine", "user_id": str(user.id), "scope": "read",
        "days": "90"}).status_code == 404
    assert client.post(f"/admin/tokens/{token.id}/revoke",
                       data={"csrf_token": csrf}).status_code == 404
    assert token_count(db_session) == 1
    assert db_session.get(ApiToken, token.id).revoked_dt is None
    denied = events(db_session, "admin.view")
    assert [(e.outcome, e.object_id) for e in denied] == [
        ("denied", "admin.tokens"), ("denied", "admin.create_token"),
        ("denied", "admin.revoke_token")]


def test_visitors_are_sent_to_the_login_page(client, world):
    response = client.get("/admin/tokens")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_overview_and_the_navigation_link_the_page(auth, client, world):
    auth.login(world["admin"].email)
    html = client.get("/admin/").get_data(as_text=True)
    assert html.count('href="/admin/tokens"') == 2  # the navigation and the overview
    page = client.get("/admin/tokens").get_data(as_text=True)
    assert '<a href="/admin/tokens" aria-current="page">API tokens</a>' in page


def test_the_page_is_in_russian(auth, client, db_session, world, clock):
    make_token(db_session, world, clock)
    auth.login(world["admin"].email)
    headers = {"Accept-Language": "ru"}
    html = client.get("/admin/tokens", headers=headers).get_data(as_text=True)
    assert '<html lang="ru">' in html and "API-токены" in html and "Действует" in html
    created = client.post("/admin/tokens", headers=headers, data={
        "csrf_token": csrf_token(html), "name": "", "days": "90"}).get_data(as_text=True)
    assert "Дайте токену название" in created


# --- the command line --------------------------------------------------------------------


def cli_create(runner, world, *extra):
    return runner.invoke(args=["tokens", "create", "--user", world["therapist"].email,
                               "--name", "EHR sync", "--scope", "read", *extra])


def test_cli_create_prints_the_secret_once(runner, db_session, world):
    result = cli_create(runner, world, "--scope", "write", "--days", "30",
                        "--clinic", world["clinic"].slug)
    assert result.exit_code == 0, result.output
    secret = re.search(r"^(oc_\S+)$", result.output, re.MULTILINE).group(1)
    assert result.output.count(secret) == 1
    assert WARNING.replace("again.", "again:") in result.output
    [token] = db_session.scalars(select(ApiToken)).all()
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert token.scopes == ["read", "write"]
    assert f"Created personal token {token.id} 'EHR sync' ({token.prefix}…)" in result.output
    assert (token.kind, token.user_id, token.created_by_id) == (
        "personal", world["therapist"].id, world["therapist"].id)
    assert token.expires_dt - token.created_dt == dt.timedelta(days=30)
    [event] = events(db_session, "api_token.create")
    assert (event.actor_kind, event.actor_user_id, event.actor_label, event.clinic_id,
            event.object_type, event.object_id) == (
        "system", world["therapist"].id,
        f"outcome tokens create: {api_tokens.audit_label(token)}", world["clinic"].id,
        "api_token", str(token.id))


def test_cli_list_shows_no_secret_or_hash(runner, db_session, world, clock):
    token, secret = make_token(db_session, world, clock, scopes=["read", "write"])
    revoked, _ = make_token(db_session, world, clock, name="Old one")
    api_tokens.revoke_token(db_session, revoked, world["admin"], clock())
    db_session.commit()
    result = runner.invoke(args=["tokens", "list", "--clinic", world["clinic"].slug])
    assert result.exit_code == 0, result.output
    assert secret not in result.output and token.token_hash not in result.output
    line = next(line for line in result.output.splitlines() if "EHR sync" in line)
    for shown in (str(token.id), f"{token.prefix}…", world["therapist"].email, "read,write",
                  "expires 2027-02-14 09:00"):
        assert shown in line, shown
    assert "Old one" in result.output and "revoked" in result.output
    assert "2 token(s)" in result.output
    ambiguous = runner.invoke(args=["tokens", "list"])
    assert ambiguous.exit_code == 2 and "several clinics" in ambiguous.output


def test_cli_revoke(runner, db_session, world, clock):
    token, _secret = make_token(db_session, world, clock)
    result = runner.invoke(args=["tokens", "revoke", str(token.id), "--admin",
                                 world["admin"].email])
    assert result.exit_code == 0, result.output
    assert f"Revoked token {token.id}" in result.output
    db_session.expire_all()
    assert db_session.get(ApiToken, token.id).revoked_dt is not None
    [event] = events(db_session, "api_token.revoke")
    assert (event.actor_kind, event.actor_user_id, event.actor_label, event.object_id) == (
        "system", world["admin"].id, f"outcome tokens revoke: {api_tokens.audit_label(token)}",
        str(token.id))
    again = runner.invoke(args=["tokens", "revoke", str(token.id), "--admin",
                                world["admin"].email])
    assert again.exit_code == 1 and "revoked already" in again.output


def test_cli_refusals(runner, db_session, world, clock):
    token, _ = make_token(db_session, world, clock)
    cases = [
        (["--clinic", "nope"], 2, "no clinic 'nope'"),
        (["--clinic", world["other"].slug], 2, "is not a user of"),
        (["--days", "0"], 1, "1 to 366 days"),
        (["--scope", "admin"], 2, "'admin' is not one of"),
    ]
    for extra, code, message in cases:
        result = cli_create(runner, world, *extra)
        assert (result.exit_code, message in result.output) == (code, True), result.output
        assert "Traceback" not in result.output
    unknown_user = runner.invoke(args=["tokens", "create", "--user", "nobody@example.org",
                                       "--name", "X", "--scope", "read"])
    assert unknown_user.exit_code == 2 and "no user 'nobody@example.org'" in unknown_user.output
    not_admin = runner.invoke(args=["tokens", "create", "--name", "X", "--scope", "read",
                                    "--admin", world["therapist"].email])
    assert not_admin.exit_code == 1 and "Only an active admin" in not_admin.output
    write = runner.invoke(args=["tokens", "create", "--name", "X", "--scope", "write",
                                "--admin", world["admin"].email])
    assert write.exit_code == 1 and "reads client codes only" in write.output
    other_admin = runner.invoke(args=["tokens", "create", "--name", "X", "--scope", "read",
                                      "--admin", world["other_admin"].email, "--clinic",
                                      world["clinic"].slug])
    assert other_admin.exit_code == 2 and "--admin" in other_admin.output
    no_scope = runner.invoke(args=["tokens", "create", "--user", world["therapist"].email,
                                   "--name", "X"])
    assert no_scope.exit_code == 2
    neither = runner.invoke(args=["tokens", "create", "--name", "X", "--scope", "read"])
    assert neither.exit_code == 2 and "exactly one of --user" in neither.output
    unknown_token = runner.invoke(args=["tokens", "revoke", "987654321", "--admin",
                                        world["admin"].email])
    assert unknown_token.exit_code == 2 and "no token 987654321" in unknown_token.output
    unknown_admin = runner.invoke(args=["tokens", "revoke", str(token.id), "--admin",
                                        "nobody@example.org"])
    assert unknown_admin.exit_code == 2 and "no user" in unknown_admin.output
    foreign_admin = runner.invoke(args=["tokens", "revoke", str(token.id), "--admin",
                                        world["other_admin"].email])
    assert foreign_admin.exit_code == 1 and "Only an active admin" in foreign_admin.output
    assert token_count(db_session) == 1
    assert db_session.get(ApiToken, token.id).revoked_dt is None
    assert events(db_session, "api_token.create") == []
    assert events(db_session, "api_token.revoke") == []
