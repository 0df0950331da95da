"""Issue 16, findings 1 and 8: no admin path to client data through API tokens, and a
replay re-checks the token's reach.

- A token that reads client data is personal: made by the staff member it acts for, on
  their account page (or by ``outcome tokens create --user`` on the server, as them).
- An admin makes integration tokens only: acting for the admin, read-only, they see
  what the admin pages show (client codes and therapists), nothing more.
- Nobody makes a token acting for somebody else.
- Every token's audit record names its creator and the person it acts for.
- An idempotent replay after the token's user lost the client is a 404, audited with
  the client.
"""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from sqlalchemy import select

from outcome.core.answers import parse_answers
from outcome.models import ApiToken
from outcome.models import AuditEvent
from outcome.services import staff
from outcome.services.submissions import submit_administration
from questionnaires.loader import builtin_library
from tests.conftest import ApiClient
from tests.conftest import csrf_token

LIB = builtin_library()
T0 = dt.datetime(2026, 11, 2, 9, tzinfo=dt.UTC)
SECRET_BOX = re.compile(r'id="new-token-secret" readonly value="([^"]+)"')


@pytest.fixture
def world(db_session, make_clinic, make_user, make_client, make_episode, make_appointment,
          assign):
    """Admin, therapists t1 and t2, supervisor s1 of t1; clients A (t1) and B (t2), each
    with an episode, an appointment, a PHQ-9 (an alert) and canary name and e-mail."""
    users = {"admin": make_user("admin", display_name="Ada Admin"), "t1": make_user(),
             "t2": make_user(), "s1": make_user("supervisor")}
    assign(users["s1"], users["t1"])
    clients = {}
    phq = LIB.get("phq9")
    for label, therapist in (("A", "t1"), ("B", "t2")):
        person = make_client(users[therapist], name=f"Canary Name {label}",
                             email=f"canary-{label.lower()}@example.org")
        episode = make_episode(person)
        make_appointment(episode)
        submit_administration(db_session, episode=episode, instrument=phq,
                              answers=parse_answers(phq, {f"phq9_{i}": 2 for i in range(1, 10)}),
                              completed_dt=T0, idempotency_key=f"rules-{label}", library=LIB,
                              now=T0)
        clients[label] = person
    db_session.commit()
    return {"users": users, "clients": clients}


def _page_secret(response) -> str | None:
    match = SECRET_BOX.search(response.get_data(as_text=True))
    return match.group(1) if match else None


def _post_form(client, page: str, url: str, **data):
    csrf = csrf_token(client.get(page).get_data(as_text=True))
    return client.post(url, data={"csrf_token": csrf, **data})


def _no_canary(response) -> None:
    text = response.get_data(as_text=True)
    assert "Canary Name" not in text and "canary-" not in text


# --- finding 1: the admin ------------------------------------------------------------------


def test_an_admin_cannot_create_a_token_acting_for_a_therapist(auth, client, db_session,
                                                               world):
    """Before issue 16 the admin page made a token acting for any staff member and showed
    its secret: the admin then read the therapist's clients' names through the API."""
    users = world["users"]
    auth.login(users["admin"].email)
    response = _post_form(client, "/admin/tokens", "/admin/tokens", name="EHR",
                          user_id=str(users["t1"].id), scope=["read", "write"], days="90")
    secret = _page_secret(response)
    if secret is not None:  # whatever was made, it reads no names
        for path in ("/api/v1/clients", f"/api/v1/clients/{world['clients']['A'].code}"):
            _no_canary(ApiClient(client, secret).get(path))
    db_session.expire_all()
    assert db_session.scalars(select(ApiToken).where(
        ApiToken.user_id == users["t1"].id)).all() == []
    assert secret is None
    assert 'id="user_id-error"' in response.get_data(as_text=True)


def test_an_admins_integration_token_reads_codes_only(auth, client, db_session, world):
    users, clients = world["users"], world["clients"]
    auth.login(users["admin"].email)
    response = _post_form(client, "/admin/tokens", "/admin/tokens", name="Scheduler",
                          days="90")
    assert response.status_code == 200
    secret = _page_secret(response)
    assert secret is not None
    token = db_session.scalar(select(ApiToken).where(ApiToken.name == "Scheduler"))
    assert (token.kind, token.user_id, token.created_by_id, token.scopes) == (
        "integration", users["admin"].id, users["admin"].id, ["read"])
    api = ApiClient(client, secret)
    listed = api.get("/api/v1/clients")
    assert listed.status_code == 200
    _no_canary(listed)
    items = listed.get_json()["items"]
    assert {c["code"] for c in items} == {clients["A"].code, clients["B"].code}
    for item in items:
        assert {k for k, v in item.items() if v is not None} == {"code", "therapist_id"}
    one = api.get(f"/api/v1/clients/{clients['A'].code}")
    assert one.status_code == 200 and one.get_json()["therapist_id"] == users["t1"].id
    _no_canary(one)
    code = clients["A"].code
    for path in (f"/api/v1/clients/{code}/episodes", f"/api/v1/clients/{code}/appointments",
                 f"/api/v1/clients/{code}/administrations", f"/api/v1/clients/{code}/signals",
                 f"/api/v1/clients/{code}/alerts?status=all",
                 f"/fhir/QuestionnaireResponse?subject=Patient/{code}",
                 f"/fhir/Observation?subject=Patient/{code}"):
        assert api.get(path).status_code == 404, path
    assert api.get("/api/v1/alerts?status=all").get_json()["items"] == []
    assert api.get("/api/v1/instruments").status_code == 200
    assert api.post("/api/v1/clients", json={"name": "New"}).status_code == 403
    assert api.post(f"/api/v1/clients/{code}/appointments",
                    json={"starts_at": "2026-12-01T10:00:00Z"}).status_code == 403


def test_an_integration_token_of_an_admin_therapist_still_reads_codes_only(
        auth, client, db_session, world, make_user, make_client):
    """An admin who is also a therapist: the page's token does not carry their clinical
    access (that is what a personal token is for)."""
    both = make_user("admin", is_therapist=True)
    own = make_client(both, name="Canary Name Own", email="canary-own@example.org")
    db_session.commit()
    auth.login(both.email)
    secret = _page_secret(_post_form(client, "/admin/tokens", "/admin/tokens",
                                     name="Sync", days="30"))
    api = ApiClient(client, secret)
    _no_canary(api.get("/api/v1/clients"))
    _no_canary(api.get(f"/api/v1/clients/{own.code}"))
    assert api.get(f"/api/v1/clients/{own.code}/administrations").status_code == 404


def test_an_integration_token_cannot_be_given_write(db_session, world, clock):
    from outcome.services import api_tokens

    with pytest.raises(api_tokens.TokenError) as refused:
        api_tokens.create_token(db_session, user=world["users"]["admin"], name="x",
                                scopes=["read", "write"], created_by=world["users"]["admin"],
                                now=clock(), kind="integration")
    assert refused.value.field == "scopes"


@pytest.mark.parametrize("creator,user", [("admin", "t1"), ("t1", "t2"), ("s1", "t1")])
@pytest.mark.parametrize("kind", ["personal", "integration"])
def test_nobody_creates_a_token_acting_for_somebody_else(db_session, world, clock, creator,
                                                         user, kind):
    from outcome.services import api_tokens

    users = world["users"]
    with pytest.raises(api_tokens.TokenError) as refused:
        api_tokens.create_token(db_session, user=users[user], name="x", scopes=["read"],
                                created_by=users[creator], now=clock(), kind=kind)
    assert refused.value.field == "user_id"


def test_a_therapist_or_supervisor_is_not_an_integration_creator(db_session, world, clock):
    from outcome.services import api_tokens

    for role in ("t1", "s1"):
        user = world["users"][role]
        with pytest.raises(api_tokens.TokenError):
            api_tokens.create_token(db_session, user=user, name="x", scopes=["read"],
                                    created_by=user, now=clock(), kind="integration")


def test_the_database_refuses_a_token_acting_for_another(db_session, world, clock):
    from sqlalchemy import exc as sa_exc

    from outcome.services.api_tokens import hash_secret

    users = world["users"]
    db_session.add(ApiToken(clinic_id=users["t1"].clinic_id, user_id=users["t1"].id,
                            kind="integration", name="x", token_hash=hash_secret("oc_x"),
                            prefix="oc_x", scopes=["read"], created_by_id=users["admin"].id,
                            created_dt=clock(), expires_dt=clock() + dt.timedelta(days=1)))
    with pytest.raises(sa_exc.IntegrityError):
        db_session.flush()
    db_session.rollback()


# --- finding 1: personal tokens on the account page -----------------------------------------


def test_a_therapist_creates_a_personal_token_and_reads_own_clients(auth, client, db_session,
                                                                     world):
    users, clients = world["users"], world["clients"]
    auth.login(users["t1"].email)
    assert client.get("/account/tokens").status_code == 200
    response = _post_form(client, "/account/tokens", "/account/tokens", name="EHR sync",
                          scope=["read", "write"], days="30")
    assert response.status_code == 200  # the secret on this response, never a redirect
    secret = _page_secret(response)
    assert secret is not None and "Copy this token now" in response.get_data(as_text=True)
    token = db_session.scalar(select(ApiToken).where(ApiToken.name == "EHR sync"))
    assert (token.kind, token.user_id, token.created_by_id, token.scopes) == (
        "personal", users["t1"].id, users["t1"].id, ["read", "write"])
    # Listed afterwards without the secret.
    page = client.get("/account/tokens").get_data(as_text=True)
    assert token.prefix in page and secret not in page
    api = ApiClient(client, secret)
    listed = api.get("/api/v1/clients").get_json()["items"]
    assert [(c["code"], c["name"]) for c in listed] == [(clients["A"].code, "Canary Name A")]
    assert api.get(f"/api/v1/clients/{clients['B'].code}").status_code == 404
    # The admin sees it listed, never its secret.
    auth.logout()
    auth.login(users["admin"].email)
    admin_page = client.get("/admin/tokens").get_data(as_text=True)
    assert "EHR sync" in admin_page and secret not in admin_page


def test_a_supervisors_personal_token_reads_supervisees_by_code(auth, client, db_session,
                                                                 world):
    users, clients = world["users"], world["clients"]
    auth.login(users["s1"].email)
    secret = _page_secret(_post_form(client, "/account/tokens", "/account/tokens",
                                     name="Mine", scope="read", days="30"))
    api = ApiClient(client, secret)
    listed = api.get("/api/v1/clients")
    _no_canary(listed)
    assert [c["code"] for c in listed.get_json()["items"]] == [clients["A"].code]
    assert api.get(f"/api/v1/clients/{clients['A'].code}/signals").status_code == 200
    assert api.get(f"/api/v1/clients/{clients['A'].code}/administrations").status_code == 404


@pytest.mark.parametrize("role,other", [("t1", "t2"), ("admin", "t1"), ("s1", "t1")])
def test_nobody_creates_a_token_for_someone_else_on_the_account_page(
        auth, client, db_session, world, role, other):
    users = world["users"]
    auth.login(users[role].email)
    response = _post_form(client, "/account/tokens", "/account/tokens", name="Theirs",
                          scope="read", days="30", user_id=str(users[other].id))
    assert _page_secret(response) is None
    assert 'id="user_id-error"' in response.get_data(as_text=True)
    db_session.expire_all()
    assert db_session.scalars(select(ApiToken)).all() == []


def test_another_clinics_user_named_on_the_account_page_is_a_404(auth, client, db_session,
                                                                  world, make_clinic, make_user):
    elsewhere = make_user(clinic_id=make_clinic().id)
    db_session.commit()
    auth.login(world["users"]["t1"].email)
    response = _post_form(client, "/account/tokens", "/account/tokens", name="X",
                          scope="read", days="30", user_id=str(elsewhere.id))
    assert response.status_code == 404


def test_own_tokens_only_are_listed_and_revoked(auth, client, db_session, world, make_token):
    users = world["users"]
    make_token(users["t2"], name="Theirs")
    make_token(users["t1"], name="Mine")
    theirs = db_session.scalar(select(ApiToken).where(ApiToken.name == "Theirs"))
    mine = db_session.scalar(select(ApiToken).where(ApiToken.name == "Mine"))
    auth.login(users["t1"].email)
    page = client.get("/account/tokens").get_data(as_text=True)
    assert "Mine" in page and "Theirs" not in page
    refused = _post_form(client, "/account/tokens", f"/account/tokens/{theirs.id}/revoke",
                         confirm="yes")
    assert refused.status_code == 404
    done = _post_form(client, "/account/tokens", f"/account/tokens/{mine.id}/revoke", confirm="yes")
    assert done.status_code == 302
    db_session.expire_all()
    assert db_session.get(ApiToken, mine.id).revoked_dt is not None
    assert db_session.get(ApiToken, theirs.id).revoked_dt is None
    # An admin revokes anybody's token of the clinic.
    auth.logout()
    auth.login(users["admin"].email)
    _post_form(client, "/admin/tokens", f"/admin/tokens/{theirs.id}/revoke", confirm="yes")
    db_session.expire_all()
    assert db_session.get(ApiToken, theirs.id).revoked_by_id == users["admin"].id


def test_visitors_are_sent_to_sign_in(client):
    assert client.get("/account/tokens").status_code == 302


# --- finding 1: the audit names creator and acting person -----------------------------------


def test_every_token_audit_record_names_creator_and_acting_person(auth, client, db_session,
                                                                  world, make_token):
    users = world["users"]
    api = ApiClient(client, make_token(users["t1"]))
    api.get(f"/api/v1/clients/{world['clients']['A'].code}")
    token = db_session.scalar(select(ApiToken).where(ApiToken.user_id == users["t1"].id))
    event = db_session.scalar(select(AuditEvent).where(AuditEvent.action == "api.client.view"))
    assert (event.actor_kind, event.actor_user_id) == ("api_token", users["t1"].id)
    assert event.actor_label.startswith(
        f"token {token.id} personal by user {users['t1'].id} for user {users['t1'].id}")
    # The admin's audit log shows it.
    auth.login(users["admin"].email)
    assert event.actor_label in client.get("/admin/audit").get_data(as_text=True)


def test_the_command_line_makes_a_personal_token_as_the_user_and_says_so(runner, db_session,
                                                                         world):
    users = world["users"]
    result = runner.invoke(args=["tokens", "create", "--user", users["t1"].email, "--name",
                                 "Server sync", "--scope", "read"])
    assert result.exit_code == 0, result.output
    token = db_session.scalar(select(ApiToken).where(ApiToken.name == "Server sync"))
    assert (token.kind, token.user_id, token.created_by_id) == (
        "personal", users["t1"].id, users["t1"].id)
    event = db_session.scalar(select(AuditEvent).where(AuditEvent.action == "api_token.create"))
    assert (event.actor_kind, event.actor_user_id) == ("system", users["t1"].id)
    assert event.actor_label.startswith("outcome tokens create: token ")
    # An integration token with --admin; both or neither is a usage error.
    made = runner.invoke(args=["tokens", "create", "--admin", users["admin"].email, "--name",
                               "Codes", "--scope", "read"])
    assert made.exit_code == 0, made.output
    assert db_session.scalar(select(ApiToken.kind).where(ApiToken.name == "Codes")) == (
        "integration")
    both = runner.invoke(args=["tokens", "create", "--admin", users["admin"].email, "--user",
                               users["t1"].email, "--name", "X", "--scope", "read"])
    assert both.exit_code == 2
    refused = runner.invoke(args=["tokens", "create", "--user", users["t1"].email, "--name",
                                  "X", "--scope", "read", "--clinic", "no-such"])
    assert refused.exit_code != 0


# --- finding 8: a replay re-checks the token's reach ------------------------------------------


def test_a_replay_after_a_transfer_is_a_404_audited_with_the_client(client, db_session, world,
                                                                    make_token, clock):
    users, person = world["users"], world["clients"]["A"]
    api = ApiClient(client, make_token(users["t1"]))
    path = f"/api/v1/clients/{person.code}/appointments"
    body = {"starts_at": "2026-12-01T10:00:00Z"}
    headers = {"Idempotency-Key": "replay-after-transfer"}
    first = api.post(path, json=body, headers=headers)
    assert first.status_code == 201
    again = api.post(path, json=body, headers=headers)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    staff.transfer_client(db_session, db_session.merge(person), users["t2"], clock())
    db_session.commit()
    replay = api.post(path, json=body, headers=headers)
    assert replay.status_code == 404
    assert "Idempotent-Replayed" not in replay.headers
    event = db_session.scalars(select(AuditEvent).where(AuditEvent.action == "api.replay")
                               .order_by(AuditEvent.id.desc())).first()
    assert (event.outcome, event.client_id, event.actor_user_id) == (
        "denied", person.id, users["t1"].id)


# --- the upgrade: existing tokens ---------------------------------------------------------------


def test_migration_0010_turns_admin_tokens_for_others_into_integration_tokens(
        fresh_database_url):
    """A token an admin made acting for a therapist keeps its secret but acts for the
    admin, reads codes only and loses write; one made by its own person becomes personal;
    stored replays are forgotten (their client is unknown). Downgrade works."""
    from sqlalchemy import JSON
    from sqlalchemy import column
    from sqlalchemy import insert
    from sqlalchemy import inspect
    from sqlalchemy import table
    from sqlalchemy import text
    from sqlalchemy.dialects.postgresql import JSONB

    from outcome import schema
    from outcome.db import make_engine

    engine = make_engine(fresh_database_url)
    json_type = JSON().with_variant(JSONB(), "postgresql")
    tokens = table("api_tokens", column("id"), column("clinic_id"), column("user_id"),
                   column("name"), column("token_hash"), column("prefix"),
                   column("scopes", json_type), column("created_by_id"), column("created_dt"),
                   column("expires_dt"))
    records = table("api_idempotency_records", column("token_id"), column("key"),
                    column("request_sha256"), column("status_code"), column("body", json_type),
                    column("created_dt"))
    now = dt.datetime(2026, 11, 1)
    try:
        schema.upgrade(engine, "0009")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO clinics (slug, name, timezone, settings, created_dt)"
                              " VALUES ('c', 'C', 'UTC', '{}', :now)"), {"now": now})
            for email, admin, therapist in (("t@example.org", False, True),
                                            ("a@example.org", True, False)):
                conn.execute(text(
                    "INSERT INTO users (clinic_id, email, display_name, is_admin, "
                    "is_supervisor, is_therapist, is_active, session_version, created_dt) "
                    "VALUES (1, :email, 'X', :admin, false, :therapist, true, 1, :now)"),
                    {"email": email, "admin": admin, "therapist": therapist, "now": now})
            for n, (user, creator) in enumerate(((1, 2), (2, 2)), start=1):
                conn.execute(insert(tokens).values(
                    id=n, clinic_id=1, user_id=user, name=f"T{n}", token_hash=f"{n}" * 64,
                    prefix="oc_x", scopes=["read", "write"], created_by_id=creator,
                    created_dt=now, expires_dt=now + dt.timedelta(days=9)))
            conn.execute(insert(records).values(token_id=1, key="k", request_sha256="0" * 64,
                                                status_code=201, body={"name": "X"},
                                                created_dt=now))
        schema.upgrade(engine)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, kind, user_id, created_by_id, scopes "
                                     "FROM api_tokens ORDER BY id")).all()
            kept = conn.execute(text("SELECT count(*) FROM api_idempotency_records")).scalar()
        as_lists = [(i, k, u, c, s if isinstance(s, list) else json.loads(s))
                    for i, k, u, c, s in rows]
        assert as_lists == [(1, "integration", 2, 2, ["read"]),
                            (2, "personal", 2, 2, ["read", "write"])]
        assert kept == 0
        schema.downgrade(engine, "0009")
        columns = {c["name"] for c in inspect(engine).get_columns("api_tokens")}
        assert "kind" not in columns
        assert "client_id" not in {c["name"] for c in inspect(engine).get_columns(
            "api_idempotency_records")}
    finally:
        engine.dispose()
