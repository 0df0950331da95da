"""Staff two-factor sign-in through the real forms (issue 20): the second step, its
throttling and audit, the clinic's requirement, the account page and the admin's reset."""

from __future__ import annotations

import datetime as dt
import re

import pyotp
import pytest
from sqlalchemy import select

from outcome.extensions import limiter
from outcome.models import AuditEvent
from outcome.models import RecoveryCode
from outcome.models import TotpSecret
from outcome.services import two_factor
from tests.conftest import TEST_PASSWORD
from tests.conftest import AuthActions
from tests.conftest import csrf_token


@pytest.fixture
def enrol(db_session, clock):
    """``enrol(user)``: give ``user`` a confirmed authenticator app (a minute before the
    clock); returns (pyotp.TOTP, recovery codes)."""
    def make(user):
        earlier = clock() - dt.timedelta(minutes=1)
        secret = two_factor.start_enrolment(db_session, user, earlier)
        totp = pyotp.TOTP(secret.secret)
        codes = two_factor.confirm_enrolment(db_session, user, totp.at(earlier), earlier)
        db_session.commit()
        return totp, codes
    return make


def second_step(http, **data):
    page = http.get("/login/second-factor")
    assert page.status_code == 200, page.status_code
    return http.post("/login/second-factor",
                     data={"csrf_token": csrf_token(page.get_data(as_text=True)), **data})


def events(db_session, action: str) -> list[tuple]:
    return [(e.outcome, e.actor_user_id, e.object_type, e.object_id) for e in
            db_session.scalars(select(AuditEvent).where(AuditEvent.action == action)
                               .order_by(AuditEvent.id))]


def test_a_password_alone_does_not_sign_in_a_user_with_an_app(auth, client, clock, enrol,
                                                              make_user, db_session):
    user = make_user()
    totp, _codes = enrol(user)
    response = auth.login(user.email)
    assert response.status_code == 303
    assert response.headers["Location"] == "/login/second-factor"
    assert client.get("/").status_code == 302  # not signed in yet
    page = client.get("/login/second-factor").get_data(as_text=True)
    assert 'autocomplete="one-time-code"' in page and 'inputmode="numeric"' in page
    assert "Start again" in page and "recovery code" in page
    signed_in = second_step(client, code=totp.at(clock()))
    assert signed_in.status_code == 302 and signed_in.headers["Location"] == "/"
    assert client.get("/").status_code == 200
    assert events(db_session, "login") == [("allowed", user.id, "sign_in_method", "totp")]


def test_next_page_survives_the_second_step(auth, client, clock, enrol, make_user):
    user = make_user()
    totp, _codes = enrol(user)
    token = csrf_token(client.get("/login").get_data(as_text=True))
    client.post("/login?next=/account/language", data={
        "csrf_token": token, "email": user.email, "password": TEST_PASSWORD})
    assert second_step(client, code=totp.at(clock())).headers["Location"] == "/account/language"


def test_a_wrong_code_is_refused_with_a_message_and_audited(auth, client, clock, enrol,
                                                            make_user, db_session):
    user = make_user()
    totp, _codes = enrol(user)
    auth.login(user.email)
    wrong = "000000" if totp.at(clock()) != "000000" else "111111"
    response = second_step(client, code=wrong)
    assert response.status_code == 200
    assert "That code is not right" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302
    assert events(db_session, "login") == [("denied", user.id, "sign_in_method", "totp")]
    # The same code twice: the second time is a replay, refused.
    code = totp.at(clock())
    assert second_step(client, code=code).status_code == 302
    auth.logout()
    auth.login(user.email)
    assert "That code is not right" in second_step(client, code=code).get_data(as_text=True)


def test_nothing_typed_is_said_and_not_counted(auth, client, enrol, make_user, db_session):
    user = make_user()
    enrol(user)
    auth.login(user.email)
    response = second_step(client, code="  ")
    assert response.status_code == 200 and "Type the 6-digit code" in response.get_data(
        as_text=True)
    assert events(db_session, "login") == []


def test_a_recovery_code_signs_in_once_and_says_how_many_are_left(auth, client, enrol,
                                                                   make_user, db_session):
    user = make_user()
    _totp, codes = enrol(user)
    auth.login(user.email)
    response = second_step(client, recovery_code=codes[0].upper())
    assert response.status_code == 302
    assert "9 codes are left" in client.get("/").get_data(as_text=True)
    assert events(db_session, "login")[-1] == ("allowed", user.id, "sign_in_method",
                                               "recovery_code")
    auth.logout()
    auth.login(user.email)
    again = second_step(client, recovery_code=codes[0])
    assert "not right or was used already" in again.get_data(as_text=True)
    assert events(db_session, "login")[-1] == ("denied", user.id, "sign_in_method",
                                               "recovery_code")
    # A recovery code typed in the app's field works too (a phone user's one field).
    assert second_step(client, code=codes[1]).status_code == 302


def test_a_lapsed_or_missing_pending_sign_in_goes_back_to_the_password(auth, client, clock,
                                                                       enrol, make_user):
    assert client.get("/login/second-factor").headers["Location"] == "/login"
    assert "Your sign-in lapsed" in client.get("/login").get_data(as_text=True)
    user = make_user()
    totp, _codes = enrol(user)
    auth.login(user.email)
    token = csrf_token(client.get("/login/second-factor").get_data(as_text=True))
    clock.advance(minutes=6)
    late = client.post("/login/second-factor", data={"csrf_token": token,
                                                     "code": totp.at(clock())})
    assert late.status_code == 302 and late.headers["Location"] == "/login"
    assert client.get("/").status_code == 302


@pytest.fixture
def limited(make_app, session_factory, clock):
    app = make_app(session_factory=session_factory, clock=clock, RATELIMIT_ENABLED=True)
    limiter.reset()
    yield app
    limiter.reset()


def test_wrong_codes_are_throttled_per_account(limited, clock, enrol, make_user):
    user = make_user()
    totp, _codes = enrol(user)
    http = limited.test_client()
    AuthActions(http).login(user.email)
    wrong = "000000" if totp.at(clock()) != "000000" else "111111"
    statuses = [second_step(http, code=wrong).status_code for _ in range(6)]
    assert statuses[:5] == [200] * 5 and statuses[5] == 429
    refused = second_step(http, code=totp.at(clock()))  # even the right code waits
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0


def test_the_clinic_requirement_leads_to_the_set_up_page_only(auth, client, clock, clinic,
                                                               make_user, db_session):
    clinic.settings = {**(clinic.settings or {}), "two_factor_roles": ["therapist"]}
    user = make_user()
    admin = make_user("admin")
    db_session.commit()
    assert auth.login(user.email).status_code == 302  # no factor yet: the password alone
    for path in ("/", "/account/language", "/account/tokens"):
        response = client.get(path)
        assert response.status_code == 303, path
        assert response.headers["Location"] == "/account/two-factor"
    assert client.get("/account/two-factor").status_code == 200
    page = client.post("/account/two-factor/start", data={
        "csrf_token": csrf_token(client.get("/account/two-factor").get_data(as_text=True)),
        "password": TEST_PASSWORD})
    assert page.status_code == 303
    html = client.get("/account/two-factor").get_data(as_text=True)
    assert "<svg" in html and "asks everyone in your role" in html
    secret = db_session.scalar(select(TotpSecret.secret).where(TotpSecret.user_id == user.id))
    confirmed = client.post("/account/two-factor/confirm", data={
        "csrf_token": csrf_token(html), "code": pyotp.TOTP(secret).at(clock())})
    assert confirmed.status_code == 200
    assert client.get("/").status_code == 200  # set up: the pages open
    auth.logout()
    assert auth.login(admin.email).status_code == 302  # not a required role
    assert client.get("/").status_code == 200


def test_a_password_change_comes_before_the_set_up(auth, client, clinic, make_user,
                                                   db_session):
    clinic.settings = {**(clinic.settings or {}), "two_factor_roles": ["therapist"]}
    user = make_user(must_change_password=True)
    db_session.commit()
    auth.login(user.email)
    assert client.get("/").headers["Location"] == "/account/password"
    assert client.get("/account/two-factor").headers["Location"] == "/account/password"
    assert client.get("/account/password").status_code == 200


def test_enrolment_on_the_account_page(auth, client, clock, clinic, make_user, db_session):
    user = make_user()
    auth.login(user.email)
    page = client.get("/account/two-factor").get_data(as_text=True)
    assert "Set up an authenticator app" in page
    # An open session alone cannot start it (the set-up ends with ten recovery codes).
    for typed in ({}, {"password": "not my password"}):
        refused = client.post("/account/two-factor/start",
                              data={"csrf_token": csrf_token(page), **typed})
        assert refused.status_code == 400
        assert "Type your password" in refused.get_data(as_text=True)
        assert db_session.scalar(select(TotpSecret).where(TotpSecret.user_id == user.id)) \
            is None
    client.post("/account/two-factor/start", data={"csrf_token": csrf_token(page),
                                                   "password": TEST_PASSWORD})
    html = client.get("/account/two-factor").get_data(as_text=True)
    shown = re.search(r'<code class="secret-key" id="secret-key">([A-Z2-7 ]+)</code>', html)
    assert shown and '<svg role="img"' in html and "<title>QR code" in html
    secret = shown.group(1).replace(" ", "")
    wrong = client.post("/account/two-factor/confirm", data={"csrf_token": csrf_token(html),
                                                              "code": "12345"})
    assert wrong.status_code == 400 and "That code is not right" in wrong.get_data(
        as_text=True)
    done = client.post("/account/two-factor/confirm", data={
        "csrf_token": csrf_token(html), "code": pyotp.TOTP(secret).at(clock())})
    body = done.get_data(as_text=True)
    assert done.status_code == 200 and "shown only now" in body
    codes = re.findall(r"<li><code>([0-9a-z-]{19})</code></li>", body)
    assert len(codes) == 10
    assert 'download="outcome-recovery-codes.txt"' in body
    stored = db_session.scalars(select(RecoveryCode.code_hash).where(
        RecoveryCode.user_id == user.id)).all()
    assert len(stored) == 10 and not set(codes) & set(stored)
    assert [e[0] for e in events(db_session, "two_factor.enrol.confirm")] == ["denied",
                                                                             "allowed"]
    assert "shown only now" not in client.get("/account/two-factor").get_data(as_text=True)
    # New codes need a current code; a wrong one is refused and audited.
    token = csrf_token(body)
    refused = client.post("/account/two-factor/recovery-codes",
                          data={"csrf_token": token, "code": "000000"})
    assert refused.status_code == 400
    clock.advance(seconds=30)
    fresh = client.post("/account/two-factor/recovery-codes", data={
        "csrf_token": token, "code": pyotp.TOTP(secret).at(clock())})
    assert fresh.status_code == 200
    assert len(re.findall(r"<li><code>", fresh.get_data(as_text=True))) == 10
    assert [e[0] for e in events(db_session, "two_factor.recovery_codes.regenerate")] == [
        "denied", "allowed"]
    # Removing: the confirmation box, and the password (or a code).
    assert client.post("/account/two-factor/remove", data={
        "csrf_token": token, "password": TEST_PASSWORD}).status_code == 400
    assert client.post("/account/two-factor/remove", data={
        "csrf_token": token, "password": "wrong", "confirm": "yes"}).status_code == 400
    removed = client.post("/account/two-factor/remove", data={
        "csrf_token": token, "password": TEST_PASSWORD, "confirm": "yes"})
    assert removed.status_code == 303
    assert not two_factor.has_second_factor(db_session, user)
    assert [e[0] for e in events(db_session, "two_factor.remove")] == ["denied", "allowed"]


def test_removal_is_refused_while_the_clinic_requires_it(auth, client, clock, clinic, enrol,
                                                          make_user, db_session):
    user = make_user()
    totp, _codes = enrol(user)
    clinic.settings = {**(clinic.settings or {}), "two_factor_roles": ["therapist"]}
    db_session.commit()
    auth.login(user.email)
    second_step(client, code=totp.at(clock()))
    token = csrf_token(client.get("/account/two-factor").get_data(as_text=True))
    refused = client.post("/account/two-factor/remove", data={
        "csrf_token": token, "password": TEST_PASSWORD, "confirm": "yes"})
    assert refused.status_code == 400
    assert "requires a second factor" in refused.get_data(as_text=True)
    assert two_factor.has_second_factor(db_session, user)


def test_an_admin_resets_a_second_factor_audited_and_the_sessions_end(
        app, auth, client, clock, enrol, make_user, db_session):
    user = make_user()
    totp, _codes = enrol(user)
    victim = app.test_client()
    AuthActions(victim).login(user.email)
    assert second_step(victim, code=totp.at(clock())).status_code == 302
    assert victim.get("/").status_code == 200
    admin = make_user("admin")
    auth.login(admin.email)
    page = client.get(f"/admin/users/{user.id}").get_data(as_text=True)
    assert "Authenticator app: on" in page and totp.secret not in page
    no_box = client.post(f"/admin/users/{user.id}/two-factor/reset",
                         data={"csrf_token": csrf_token(page)})
    assert no_box.status_code == 400 and two_factor.has_second_factor(db_session, user)
    reset = client.post(f"/admin/users/{user.id}/two-factor/reset",
                        data={"csrf_token": csrf_token(page), "confirm": "yes"})
    assert reset.status_code == 303
    assert not two_factor.has_second_factor(db_session, user)
    assert victim.get("/").status_code == 302  # their session ended
    assert events(db_session, "two_factor.reset") == [("allowed", admin.id, "user",
                                                       str(user.id))]
    assert "Authenticator app: off" in client.get(f"/admin/users/{user.id}").get_data(
        as_text=True)


def test_an_admin_cannot_reset_another_clinics_user(auth, client, make_clinic, make_user,
                                                    db_session):
    other = make_user(clinic_id=make_clinic().id)
    admin = make_user("admin")
    auth.login(admin.email)
    token = csrf_token(client.get("/admin/").get_data(as_text=True))
    response = client.post(f"/admin/users/{other.id}/two-factor/reset",
                           data={"csrf_token": token, "confirm": "yes"})
    assert response.status_code == 404
    assert events(db_session, "two_factor.reset") == [("denied", admin.id, "user",
                                                       str(other.id))]


def test_the_settings_card_chooses_the_roles(auth, client, clinic, make_user, db_session):
    admin = make_user("admin")
    auth.login(admin.email)
    page = client.get("/admin/settings").get_data(as_text=True)
    assert "Sign-in" in page and 'name="two_factor_roles" value="therapist"' in page
    token = csrf_token(page)
    saved = client.post("/admin/settings", data={
        "csrf_token": token, "two_factor_roles__shown": "1",
        "two_factor_roles": ["supervisor", "therapist"]})
    assert saved.status_code == 302
    db_session.refresh(clinic)
    assert clinic.settings["two_factor_roles"] == ["supervisor", "therapist"]
    assert 'value="therapist" checked' in client.get("/admin/settings").get_data(as_text=True)
    bad = client.post("/admin/settings", data={
        "csrf_token": token, "two_factor_roles__shown": "1", "two_factor_roles": ["owner"]})
    assert bad.status_code == 200 and 'id="setting-two_factor_roles-error"' in bad.get_data(
        as_text=True)
    cleared = client.post("/admin/settings", data={"csrf_token": token,
                                                   "two_factor_roles__shown": "1"})
    assert cleared.status_code == 302
    db_session.refresh(clinic)
    assert clinic.settings["two_factor_roles"] == []
    assert [e[0] for e in events(db_session, "clinic.settings.change")] == [
        "allowed", "error", "allowed"]


def test_the_command_line_reset(runner, clock, enrol, make_user, db_session):
    user = make_user()
    enrol(user)
    version = user.session_version
    result = runner.invoke(args=["users", "reset-2fa", user.email])
    assert result.exit_code == 0, result.output
    assert "removed an authenticator app, 10 unused recovery code(s)" in result.output
    db_session.expire_all()
    assert not two_factor.has_second_factor(db_session, user)
    assert user.session_version == version + 1
    [event] = db_session.scalars(select(AuditEvent).where(
        AuditEvent.action == "two_factor.reset"))
    assert (event.actor_kind, event.actor_label, event.object_id) == (
        "system", "outcome users reset-2fa", str(user.id))
    unknown = runner.invoke(args=["users", "reset-2fa", "nobody@example.org"])
    assert unknown.exit_code == 2 and "no user" in unknown.output


def test_ten_wrong_codes_in_a_row_stop_the_apps_codes(auth, client, clock, enrol, make_user,
                                                      db_session):
    user = make_user()
    totp, codes = enrol(user)
    secret = db_session.scalars(select(TotpSecret).where(TotpSecret.user_id == user.id)).one()
    auth.login(user.email)
    wrong = "000000" if totp.at(clock()) != "000000" else "111111"
    second_step(client, code=wrong)
    second_step(client, recovery_code="aaaa-bbbb-cccc-dddd")
    db_session.refresh(secret)
    assert secret.failures == 2  # a wrong app code and a wrong recovery code
    secret.failures = two_factor.TOTP_FAILURE_LIMIT - 1  # as if days of guessing
    db_session.commit()
    second_step(client, code=wrong)
    refused = second_step(client, code=totp.at(clock()))  # the right code, too late
    assert refused.status_code == 200
    assert "Too many wrong codes" in refused.get_data(as_text=True)
    assert client.get("/").status_code == 302
    assert second_step(client, recovery_code=codes[0]).status_code == 302
    db_session.refresh(secret)
    assert secret.failures == 0


@pytest.mark.parametrize("factors", ["app", "passkey", "both"])
def test_the_second_step_offers_only_the_factors_the_user_has(auth, client, enrol, make_user,
                                                              db_session, factors):
    from outcome.models import Passkey
    user = make_user()
    if factors in ("app", "both"):
        enrol(user)
    if factors in ("passkey", "both"):
        db_session.add(Passkey(user_id=user.id, credential_id="AAAA", public_key="AAAA",
                               name="Key"))
        db_session.commit()
    auth.login(user.email)
    page = client.get("/login/second-factor").get_data(as_text=True)
    has_app = factors != "passkey"
    assert ('name="code"' in page) is has_app
    assert ("authenticator app on your phone" in page) is has_app
    assert ('name="recovery_code"' in page) is has_app
    assert ('data-passkey="sign-in"' in page) is (factors != "app")
    assert "Start again" in page
    if factors == "passkey":
        assert "Use your passkey" in page


def test_a_failed_second_step_e_mails_the_user_at_most_once_an_hour(auth, client, clock,
                                                                    enrol, make_user,
                                                                    db_session):
    from outcome.models import OutboundEmail
    user = make_user()
    totp, _codes = enrol(user)
    auth.login(user.email)
    wrong = "000000" if totp.at(clock()) != "000000" else "111111"
    second_step(client, code=wrong)
    second_step(client, recovery_code="aaaa-bbbb-cccc-dddd")
    sent = db_session.scalars(select(OutboundEmail).where(
        OutboundEmail.kind == "second_step_failed")).all()
    assert len(sent) == 1 and sent[0].to_address == user.email
    assert "password" in sent[0].body_text and wrong not in sent[0].body_text
