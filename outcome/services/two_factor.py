"""Staff second factors (issue 20): authenticator-app codes (TOTP), recovery codes, and
whether a user must or may use a second step at sign-in.

Passkeys live in :mod:`outcome.services.passkeys`; this module only asks whether a user
has one (and an admin's reset removes them with the rest).

Authenticator codes follow RFC 6238 with the defaults every authenticator app uses:
HMAC-SHA1, 6 digits, a time step ``X`` of 30 seconds counted from the Unix epoch
(``T0 = 0``). A code is accepted for the current time step and one step either side
(:data:`VALID_WINDOW`, RFC 6238 section 5.2 "we RECOMMEND that at most one time step is
allowed as the network delay"), so a clock up to about 30 seconds off still works. The
time step of the last accepted code is kept (``TotpSecret.last_step``) and a code of that
step or an earlier one is refused (section 5.2: "the verifier MUST NOT accept the second
attempt of the OTP after the successful validation has been issued for the first OTP"),
so a code read over a shoulder or from a log cannot be used again. The step is claimed
with a conditional UPDATE, so two requests racing with one code cannot both win.

Every function flushes and never commits (the edge commits once). A refusal raises
:class:`~outcome.services.staff.StaffError` with a sentence marked for translation.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import pyotp
from sqlalchemy import delete
from sqlalchemy import exists
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from outcome.models import Clinic
from outcome.models import Passkey
from outcome.models import RecoveryCode
from outcome.models import TotpSecret
from outcome.models import User
from outcome.services import clinic_settings
from outcome.services.mail import queue_email
from outcome.services.staff import N_
from outcome.services.staff import StaffError

# RFC 6238 parameters (what authenticator apps assume when the URI names none).
DIGITS = 6
STEP_SECONDS = 30
# Steps either side of the current one that are accepted (clock drift, slow typing).
VALID_WINDOW = 1
# Ten codes (issue 20), each 16 symbols of Crockford's base32: 80 random bits.
RECOVERY_CODE_COUNT = 10
RECOVERY_CODE_SYMBOLS = 16
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
# What people type for what they read: Crockford's decoding (O is 0; I and L are 1).
_READ_AS = str.maketrans({"o": "0", "i": "1", "l": "1"})
_HASH_PREFIX = "sha256:"
DEFAULT_ISSUER = "outcome"
# Wrong second-step codes in a row after which the app's codes are no longer accepted
# (NIST SP 800-63B section 5.2.2: at most 100 consecutive failures; we allow 10). The
# hourly login back-off alone forgets after an hour (about 527 guesses a day); this count
# does not forget: only a successful second step or an admin's reset clears it.
TOTP_FAILURE_LIMIT = 10


# --- whether a second step is needed ------------------------------------------------------


def has_second_factor(store: Session, user: User) -> bool:
    """Whether ``user`` has a confirmed authenticator app or at least one passkey, so
    signing in takes a second step after the password."""
    totp = exists().where(TotpSecret.user_id == user.id, TotpSecret.confirmed_dt.is_not(None))
    passkey = exists().where(Passkey.user_id == user.id)
    return bool(store.scalar(select(totp | passkey)))


def required_for(user: User, clinic: Clinic) -> bool:
    """Whether the clinic's ``two_factor_roles`` setting names one of ``user``'s roles."""
    required = set(clinic_settings.current(clinic)["two_factor_roles"])
    return bool(required.intersection(user.roles))


@dataclass(frozen=True)
class Status:
    """What a user's second factors are (never a secret): for their account page and
    for an admin."""

    totp: bool  # a confirmed authenticator app
    enrolling: bool  # an authenticator app waiting for its first code
    recovery_codes_left: int
    passkeys: int

    @property
    def any(self) -> bool:
        return self.totp or self.passkeys > 0


def status(store: Session, user: User) -> Status:
    """The user's second factors, counted."""
    secret = store.scalar(select(TotpSecret).where(TotpSecret.user_id == user.id))
    left = store.scalar(select(func.count()).select_from(RecoveryCode).where(
        RecoveryCode.user_id == user.id, RecoveryCode.used_dt.is_(None))) or 0
    passkeys = store.scalar(select(func.count()).select_from(Passkey).where(
        Passkey.user_id == user.id)) or 0
    return Status(totp=secret is not None and secret.confirmed_dt is not None,
                  enrolling=secret is not None and secret.confirmed_dt is None,
                  recovery_codes_left=left, passkeys=passkeys)


# --- enrolment ----------------------------------------------------------------------------


def _secret_of(store: Session, user: User) -> TotpSecret | None:
    return store.scalar(select(TotpSecret).where(TotpSecret.user_id == user.id))


def start_enrolment(store: Session, user: User, now: dt.datetime) -> TotpSecret:
    """Give ``user`` a new authenticator secret (160 random bits, base32 as RFC 4648),
    unconfirmed until :func:`confirm_enrolment`; flush.

    Starting again replaces an unconfirmed secret (a QR code scanned by nobody, or by a
    phone since lost). A confirmed one is not replaced here: it is removed first
    (:func:`remove_own`), so an open session alone cannot swap the user's app.
    """
    secret = _secret_of(store, user)
    if secret is not None and secret.confirmed_dt is not None:
        raise StaffError(N_("An authenticator app is already set up; remove it before "
                            "setting up another."))
    if secret is None:
        secret = TotpSecret(user_id=user.id, secret=pyotp.random_base32(), created_dt=now)
        store.add(secret)
    else:
        secret.secret, secret.created_dt, secret.last_step = pyotp.random_base32(), now, None
    store.flush()
    return secret


def pending_secret(store: Session, user: User) -> TotpSecret | None:
    """The user's authenticator secret that waits for its first code, if any."""
    secret = _secret_of(store, user)
    return secret if secret is not None and secret.confirmed_dt is None else None


def provisioning_uri(secret: TotpSecret, user: User, clinic: Clinic | None) -> str:
    """The ``otpauth://totp/...`` URI an authenticator app reads from the QR code: the
    issuer is the clinic's name (or "outcome"), the account the user's e-mail; 6 digits,
    30-second steps, SHA-1 (the defaults, stated by omission as the apps expect)."""
    issuer = (clinic.name if clinic is not None and clinic.name else DEFAULT_ISSUER)
    return pyotp.TOTP(secret.secret).provisioning_uri(name=user.email, issuer_name=issuer)


def grouped(secret: TotpSecret) -> str:
    """The secret in groups of four, for typing into an app by hand."""
    return " ".join(secret.secret[i:i + 4] for i in range(0, len(secret.secret), 4))


def _digits(code: str) -> str | None:
    cleaned = "".join(code.split()).replace("-", "")
    return cleaned if len(cleaned) == DIGITS and cleaned.isascii() and cleaned.isdigit() \
        else None


def _matching_step(secret: str, code: str, now: dt.datetime) -> int | None:
    """The time step (RFC 6238: ``floor((unix time - T0) / X)``) within
    :data:`VALID_WINDOW` of ``now`` whose code is ``code``, or None."""
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    current = totp.timecode(now)
    found = None
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        # Every step is compared, in constant time, whichever matches.
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    return found


def _claim_step(store: Session, secret: TotpSecret, step: int) -> bool:
    """Record ``step`` as the last accepted one unless it (or a later one) already was:
    one conditional UPDATE, so of two concurrent uses of one code only one succeeds."""
    claimed = store.execute(
        update(TotpSecret).where(TotpSecret.id == secret.id,
                                 or_(TotpSecret.last_step.is_(None),
                                     TotpSecret.last_step < step))
        .values(last_step=step).execution_options(synchronize_session=False))
    if getattr(claimed, "rowcount", 0) != 1:
        return False
    store.refresh(secret, ["last_step"])
    return True


def confirm_enrolment(store: Session, user: User, code: str,
                      now: dt.datetime) -> list[str]:
    """Confirm the user's waiting secret with a first code from their app; flush.

    Returns ten new recovery codes (in the clear, to show once; only their hashes are
    stored). A wrong or stale code is refused and nothing changes.
    """
    secret = pending_secret(store, user)
    if secret is None:
        raise StaffError(N_("There is no authenticator app waiting for its first code; "
                            "start the set-up again."))
    digits = _digits(code)
    step = _matching_step(secret.secret, digits, now) if digits else None
    if step is None or not _claim_step(store, secret, step):
        raise StaffError(N_("That code is not right. Type the 6-digit code your app shows "
                            "now (check that the phone's clock is set automatically)."),
                         field="code")
    secret.confirmed_dt = now
    store.flush()
    return regenerate_recovery_codes(store, user, now)


# --- signing in -----------------------------------------------------------------------------


def verify_totp(store: Session, user: User, code: str, now: dt.datetime) -> bool:
    """Whether ``code`` is a valid authenticator code of ``user``'s confirmed secret at
    ``now`` (the current 30-second step or one either side) that was not used before;
    flush. An accepted code's step becomes ``last_step``, so it (and any earlier code)
    is refused from then on. No code is accepted after :data:`TOTP_FAILURE_LIMIT` (10)
    wrong ones in a row (:func:`totp_locked`)."""
    secret = _secret_of(store, user)
    digits = _digits(code)
    if secret is None or secret.confirmed_dt is None or digits is None \
            or secret.failures >= TOTP_FAILURE_LIMIT:
        return False
    step = _matching_step(secret.secret, digits, now)
    return step is not None and _claim_step(store, secret, step)


def looks_like_totp(code: str) -> bool:
    """Whether ``code`` has the shape of an authenticator code (6 digits, spaces aside)."""
    return _digits(code) is not None


def totp_locked(store: Session, user: User) -> bool:
    """Whether ``user``'s authenticator codes are no longer accepted: 10
    (:data:`TOTP_FAILURE_LIMIT`) wrong second-step codes in a row. Recovery codes and
    passkeys still work, and a successful second step or an admin's reset clears it."""
    secret = _secret_of(store, user)
    return secret is not None and secret.failures >= TOTP_FAILURE_LIMIT


def record_second_step_failure(store: Session, user: User) -> int:
    """Count one wrong second-step code (an app code or a recovery code) of ``user``;
    flush. Returns the count of failures in a row (0 when the user has no confirmed app,
    so nothing to guess: a failed passkey is a bad signature, not a guess).

    One ``UPDATE ... SET failures = failures + 1``, so concurrent failures are all
    counted."""
    counted = store.execute(
        update(TotpSecret).where(TotpSecret.user_id == user.id,
                                 TotpSecret.confirmed_dt.is_not(None))
        .values(failures=TotpSecret.failures + 1).execution_options(synchronize_session=False))
    if getattr(counted, "rowcount", 0) != 1:
        return 0
    secret = _secret_of(store, user)
    assert secret is not None
    store.refresh(secret, ["failures"])
    return secret.failures


def reset_second_step_failures(store: Session, user: User) -> None:
    """Clear ``user``'s count of wrong second-step codes after a successful second step
    (app code, recovery code or passkey); flush. (An admin's reset deletes the secret and
    its count with it.)"""
    secret = _secret_of(store, user)
    if secret is None or secret.failures == 0:
        return
    store.execute(update(TotpSecret).where(TotpSecret.id == secret.id)
                  .values(failures=0).execution_options(synchronize_session=False))
    store.refresh(secret, ["failures"])


def queue_failure_notice(store: Session, user: User, now: dt.datetime) -> None:
    """Queue an e-mail telling ``user`` that a second step failed after their correct
    password (somebody may know it); flush. At most one an hour per user (the outbox's
    key is the user and the UTC hour). No code, link or clinical content."""
    clinic = store.get(Clinic, user.clinic_id)
    name = clinic.name if clinic is not None and clinic.name else DEFAULT_ISSUER
    queue_email(
        store, clinic_id=user.clinic_id, kind="second_step_failed",
        dedupe_key=f"second_step_failed:{user.id}:{now.astimezone(dt.UTC):%Y%m%d%H}",
        to_address=user.email, subject=f"A sign-in to {name} with your password failed",
        body=(f"Hello {user.display_name},\n\n"
              f"Someone typed the right password of your account ({user.email}) and then "
              f"a wrong second-step code, on {now.astimezone(dt.UTC):%Y-%m-%d at %H:%M} "
              "UTC. If it was not you, change your password now and tell an administrator "
              "of your clinic. (We send this at most once an hour.)\n"),
        now=now)


# --- recovery codes ---------------------------------------------------------------------------


def _normalised(code: str) -> str:
    """A recovery code as stored before hashing: lower case, no spaces or hyphens, with
    the letters people mistake for digits read as those digits."""
    return "".join(code.split()).replace("-", "").lower().translate(_READ_AS)


def _hash(code: str) -> str:
    """The stored form of a recovery code: SHA-256 of its normalised symbols.

    A fast hash is enough here, unlike for passwords: each code is 80 random bits
    (16 symbols of a 32-symbol alphabet from :mod:`secrets`), so even an attacker with a
    copy of the table cannot try a meaningful share of 2**80 codes, and there is nothing
    to gain from a dictionary. argon2 would only add ~50 ms for each of a user's codes
    at every recovery sign-in.
    """
    return _HASH_PREFIX + hashlib.sha256(_normalised(code).encode()).hexdigest()


def _new_code() -> str:
    symbols = "".join(secrets.choice(_CROCKFORD) for _ in range(RECOVERY_CODE_SYMBOLS))
    return "-".join(symbols[i:i + 4] for i in range(0, RECOVERY_CODE_SYMBOLS, 4))


def regenerate_recovery_codes(store: Session, user: User, now: dt.datetime) -> list[str]:
    """Replace all of ``user``'s recovery codes with ten new ones; flush. Returns them in
    the clear (``xxxx-xxxx-xxxx-xxxx``) to show once; only their hashes are stored."""
    store.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = [_new_code() for _ in range(RECOVERY_CODE_COUNT)]
    store.add_all(RecoveryCode(user_id=user.id, code_hash=_hash(code), created_dt=now)
                  for code in codes)
    store.flush()
    return codes


def use_recovery_code(store: Session, user: User, code: str, now: dt.datetime) -> bool:
    """Whether ``code`` is one of ``user``'s unused recovery codes; if so it is marked
    used (``used_dt``) and never accepted again; flush.

    Every unused code's hash is compared in constant time; the code is spent with a
    conditional UPDATE, so two concurrent uses of one code cannot both succeed.
    """
    if not code.strip() or len(code) > 100:
        return False
    wanted = _hash(code)
    rows = store.execute(select(RecoveryCode.id, RecoveryCode.code_hash).where(
        RecoveryCode.user_id == user.id, RecoveryCode.used_dt.is_(None))).all()
    found = None
    for row_id, stored in rows:
        if hmac.compare_digest(stored.encode(), wanted.encode()):
            found = row_id
    if found is None:
        return False
    spent = store.execute(
        update(RecoveryCode).where(RecoveryCode.id == found, RecoveryCode.used_dt.is_(None))
        .values(used_dt=now).execution_options(synchronize_session=False))
    store.flush()
    return getattr(spent, "rowcount", 0) == 1


def recovery_codes_left(store: Session, user: User) -> int:
    """How many of ``user``'s recovery codes are still unused."""
    return store.scalar(select(func.count()).select_from(RecoveryCode).where(
        RecoveryCode.user_id == user.id, RecoveryCode.used_dt.is_(None))) or 0


# --- removal and reset ------------------------------------------------------------------------


def remove_own(store: Session, user: User, clinic: Clinic) -> None:
    """Remove ``user``'s authenticator app and recovery codes at their own request; flush.

    Refused while the clinic requires a second factor of one of the user's roles, unless
    a passkey remains (which is still a second factor). Passkeys are removed one by one
    on their own page.
    """
    passkeys = store.scalar(select(func.count()).select_from(Passkey).where(
        Passkey.user_id == user.id)) or 0
    if required_for(user, clinic) and not passkeys:
        raise StaffError(N_("Your clinic requires a second factor for your role: add a "
                            "passkey before removing the authenticator app, or ask an "
                            "admin."))
    store.execute(delete(TotpSecret).where(TotpSecret.user_id == user.id))
    store.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    store.flush()


def reset(store: Session, user: User) -> None:
    """An admin's (or the server operator's) reset of ``user``'s second factors: their
    authenticator app, recovery codes and passkeys are deleted, and every session of
    theirs ends (``session_version`` is bumped); flush. At their next sign-in a
    password alone lets them in (or, where the clinic requires it, leads to setting up
    a new second factor)."""
    store.execute(delete(TotpSecret).where(TotpSecret.user_id == user.id))
    store.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    store.execute(delete(Passkey).where(Passkey.user_id == user.id))
    user.session_version += 1
    store.flush()
