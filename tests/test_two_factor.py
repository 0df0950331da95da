"""Staff second factors (issue 20): the service (RFC 6238 codes, replay, recovery codes)."""

from __future__ import annotations

import datetime as dt
import hashlib

import pyotp
import pytest
from sqlalchemy import select

from outcome.models import Passkey
from outcome.models import RecoveryCode
from outcome.models import TotpSecret
from outcome.services import two_factor
from outcome.services.staff import StaffError

NOW = dt.datetime(2026, 11, 16, 9, 0, 10, tzinfo=dt.UTC)


def code_at(secret: TotpSecret, moment: dt.datetime) -> str:
    return pyotp.TOTP(secret.secret).at(moment)


@pytest.fixture
def enrolled(db_session, make_user):
    """A therapist with a confirmed authenticator app (confirmed a minute before NOW) and
    their ten recovery codes."""
    user = make_user()
    secret = two_factor.start_enrolment(db_session, user, NOW)
    earlier = NOW - dt.timedelta(minutes=1)
    codes = two_factor.confirm_enrolment(db_session, user, code_at(secret, earlier), earlier)
    return user, secret, codes


def test_enrolment_needs_the_first_code_and_restarting_replaces_the_unconfirmed_secret(
        db_session, make_user):
    user = make_user()
    first = two_factor.start_enrolment(db_session, user, NOW)
    old = first.secret
    assert not two_factor.has_second_factor(db_session, user)  # unconfirmed: no factor
    assert two_factor.verify_totp(db_session, user, code_at(first, NOW), NOW) is False
    again = two_factor.start_enrolment(db_session, user, NOW)
    assert again.secret != old and len(again.secret) == 32  # 160 bits in base32
    assert db_session.scalar(select(TotpSecret.id).where(TotpSecret.user_id == user.id))
    with pytest.raises(StaffError) as refused:
        two_factor.confirm_enrolment(db_session, user, pyotp.TOTP(old).at(NOW), NOW)
    assert refused.value.field == "code"
    codes = two_factor.confirm_enrolment(db_session, user, code_at(again, NOW), NOW)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert two_factor.has_second_factor(db_session, user)
    with pytest.raises(StaffError):  # a confirmed app is not swapped by starting again
        two_factor.start_enrolment(db_session, user, NOW)


def test_provisioning_uri_names_the_clinic_and_the_email(db_session, make_user, clinic):
    user = make_user()
    secret = two_factor.start_enrolment(db_session, user, NOW)
    uri = two_factor.provisioning_uri(secret, user, clinic)
    assert uri.startswith("otpauth://totp/")
    assert f"secret={secret.secret}" in uri
    assert "issuer=Test%20Clinic" in uri and user.email.replace("@", "%40") in uri
    assert "issuer=outcome" in two_factor.provisioning_uri(secret, user, None)
    assert two_factor.grouped(secret).replace(" ", "") == secret.secret


def test_a_code_is_accepted_once_and_never_replayed(db_session, enrolled):
    user, secret, _codes = enrolled
    code = code_at(secret, NOW)
    assert two_factor.verify_totp(db_session, user, code, NOW) is True
    assert two_factor.verify_totp(db_session, user, code, NOW) is False  # replay
    # The previous step's code, still inside the window, is older than the last used.
    previous = code_at(secret, NOW - dt.timedelta(seconds=30))
    assert two_factor.verify_totp(db_session, user, previous, NOW) is False
    # The next step's code is new and accepted.
    later = NOW + dt.timedelta(seconds=30)
    assert two_factor.verify_totp(db_session, user, code_at(secret, later), later) is True


def test_the_window_is_one_step_either_side(db_session, enrolled):
    user, secret, _codes = enrolled
    assert two_factor.verify_totp(
        db_session, user, code_at(secret, NOW - dt.timedelta(seconds=60)), NOW) is False
    assert two_factor.verify_totp(
        db_session, user, code_at(secret, NOW - dt.timedelta(seconds=30)), NOW) is True
    assert two_factor.verify_totp(
        db_session, user, code_at(secret, NOW + dt.timedelta(seconds=30)), NOW) is True
    assert two_factor.verify_totp(
        db_session, user, code_at(secret, NOW + dt.timedelta(seconds=90)), NOW) is False


FULLWIDTH_DIGITS = "\uff11\uff12\uff13\uff14\uff15\uff16"


@pytest.mark.parametrize("typed", ["", "12345", "1234567", "abcdef", FULLWIDTH_DIGITS,
                                   "12 34 5x"])
def test_malformed_codes_are_refused(db_session, enrolled, typed):
    user, _secret, _codes = enrolled
    assert two_factor.verify_totp(db_session, user, typed, NOW) is False


def test_a_code_typed_with_spaces_is_read(db_session, enrolled):
    user, secret, _codes = enrolled
    code = code_at(secret, NOW)
    assert two_factor.verify_totp(db_session, user, f" {code[:3]} {code[3:]} ", NOW)


def test_recovery_codes_are_single_use_and_only_their_hashes_are_stored(db_session, enrolled):
    user, _secret, codes = enrolled
    stored = db_session.scalars(select(RecoveryCode.code_hash).where(
        RecoveryCode.user_id == user.id)).all()
    assert len(stored) == 10
    joined = " ".join(stored)
    for code in codes:
        assert code not in joined and code.replace("-", "") not in joined
    assert all(h.startswith("sha256:") and len(h) == 7 + 64 for h in stored)
    assert f"sha256:{hashlib.sha256(codes[0].replace('-', '').encode()).hexdigest()}" in stored
    assert two_factor.use_recovery_code(db_session, user, codes[0], NOW) is True
    assert two_factor.use_recovery_code(db_session, user, codes[0], NOW) is False
    assert two_factor.recovery_codes_left(db_session, user) == 9
    used = db_session.scalar(select(RecoveryCode).where(RecoveryCode.used_dt.is_not(None),
                                                        RecoveryCode.user_id == user.id))
    assert used is not None and used.used_dt is not None
    # Typed in capitals, without hyphens, with O for 0 and l for 1: the same code.
    second = codes[1].upper().replace("-", " ").replace("0", "O").replace("1", "l")
    assert two_factor.use_recovery_code(db_session, user, second, NOW) is True
    assert two_factor.use_recovery_code(db_session, user, "not-a-code", NOW) is False
    assert two_factor.use_recovery_code(db_session, user, "x" * 500, NOW) is False


def test_another_users_recovery_code_does_not_work(db_session, enrolled, make_user):
    _user, _secret, codes = enrolled
    other = make_user()
    assert two_factor.use_recovery_code(db_session, other, codes[0], NOW) is False


def test_regenerating_replaces_every_code(db_session, enrolled):
    user, _secret, codes = enrolled
    fresh = two_factor.regenerate_recovery_codes(db_session, user, NOW)
    assert not set(fresh) & set(codes)
    assert two_factor.use_recovery_code(db_session, user, codes[2], NOW) is False
    assert two_factor.use_recovery_code(db_session, user, fresh[2], NOW) is True


def test_removing_is_refused_while_the_clinic_requires_it_unless_a_passkey_remains(
        db_session, enrolled, clinic):
    user, _secret, _codes = enrolled
    clinic.settings = {**(clinic.settings or {}), "two_factor_roles": ["therapist"]}
    db_session.flush()
    assert two_factor.required_for(user, clinic)
    with pytest.raises(StaffError):
        two_factor.remove_own(db_session, user, clinic)
    db_session.add(Passkey(user_id=user.id, credential_id="cred-1", public_key="pk",
                           name="Laptop"))
    db_session.flush()
    two_factor.remove_own(db_session, user, clinic)
    assert two_factor.status(db_session, user) == two_factor.Status(
        totp=False, enrolling=False, recovery_codes_left=0, passkeys=1)


def test_removing_when_not_required(db_session, enrolled, clinic):
    user, _secret, _codes = enrolled
    two_factor.remove_own(db_session, user, clinic)
    assert not two_factor.has_second_factor(db_session, user)
    assert two_factor.recovery_codes_left(db_session, user) == 0


def test_an_admin_reset_removes_every_factor_and_ends_sessions(db_session, enrolled):
    user, _secret, _codes = enrolled
    db_session.add(Passkey(user_id=user.id, credential_id="cred-2", public_key="pk",
                           name="Key"))
    db_session.flush()
    version = user.session_version
    two_factor.reset(db_session, user)
    assert user.session_version == version + 1
    assert two_factor.status(db_session, user) == two_factor.Status(
        totp=False, enrolling=False, recovery_codes_left=0, passkeys=0)
    assert not two_factor.has_second_factor(db_session, user)


def test_ten_wrong_codes_in_a_row_stop_the_apps_codes_until_a_reset(db_session, enrolled,
                                                                     make_user):
    # NIST SP 800-63B section 5.2.2: consecutive failures are limited (at most 100; 10
    # here), across hours and days, unlike the hourly login back-off.
    user, secret, codes = enrolled
    for count in range(1, two_factor.TOTP_FAILURE_LIMIT + 1):
        assert not two_factor.totp_locked(db_session, user)
        assert two_factor.record_second_step_failure(db_session, user) == count
    assert two_factor.totp_locked(db_session, user)
    assert not two_factor.verify_totp(db_session, user, code_at(secret, NOW), NOW)
    assert two_factor.use_recovery_code(db_session, user, codes[0], NOW)  # still works
    two_factor.reset_second_step_failures(db_session, user)
    db_session.refresh(secret)
    assert secret.failures == 0 and not two_factor.totp_locked(db_session, user)
    assert two_factor.verify_totp(db_session, user, code_at(secret, NOW), NOW)
    # Somebody with only a passkey has no app code to guess: nothing is counted.
    passkey_only = make_user()
    db_session.add(Passkey(user_id=passkey_only.id, credential_id="AAAA", public_key="AAAA",
                           name="Key"))
    db_session.flush()
    assert two_factor.record_second_step_failure(db_session, passkey_only) == 0
    assert not two_factor.totp_locked(db_session, passkey_only)
