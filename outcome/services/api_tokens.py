"""API tokens: personal or integration, stored as hashes, revocable.

Two kinds (:data:`outcome.models.api.TOKEN_KINDS`), and in both the token acts for the
person who created it, so nobody ever holds a secret that reads another person's
clients:

- a **personal** token is created by the staff member it acts for (on their account
  page, or by ``outcome tokens create --user`` run on the server "as them") and carries
  at most that person's access (the scoping of :mod:`outcome.services.access`);
- an **integration** token is created by an admin on the admin page (or with
  ``outcome tokens create --admin``) and sees at most what an admin sees on the admin
  pages: client codes and their therapists, no names, contacts, answers, scores or
  notes (:func:`outcome.services.access.token_clients`). It is read-only.

Scopes narrow a token further to reading (``read``) and/or changing (``write``) data.
The secret has 256 bits of randomness, so a plain SHA-256 is a sufficient hash (a slow
password hash protects guessable secrets; this one cannot be guessed). It is shown once
and never stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from typing import Any
from typing import cast

from sqlalchemy import CursorResult
from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.models import ApiIdempotencyRecord
from outcome.models import ApiToken
from outcome.models import Clinic
from outcome.models import User
from outcome.models.api import API_SCOPES
from outcome.models.api import TOKEN_KINDS
from outcome.services.staff import N_
from outcome.services.staff import StaffError

SECRET_PREFIX = "oc_"  # noqa: S105 (a public marker that tells secrets apart, not a secret)
PREFIX_SHOWN = 10  # "oc_" and 7 characters of the secret: enough to tell tokens apart
MAX_DAYS = 366
DEFAULT_DAYS = 90
NAME_MAX = 100
# Writing last_used_dt on every request would make every read a write.
LAST_USED_PRECISION = dt.timedelta(minutes=5)
IDEMPOTENCY_KEPT = dt.timedelta(hours=24)


class TokenError(StaffError):
    """A token that cannot be created or revoked; the message says why."""


def hash_secret(secret: str) -> str:
    """SHA-256 (hex) of a token secret, as stored."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_token(session: Session, *, user: User, name: str, scopes: Iterable[str],
                 created_by: User, now: dt.datetime, kind: str = "personal",
                 days: int = DEFAULT_DAYS) -> tuple[ApiToken, str]:
    """Create a token of ``kind`` acting for ``user``, valid for ``days`` (1 to 366); flush.

    Returns the stored row and the secret, which is shown once and cannot be recovered.
    A token always acts for the person who creates it: ``created_by`` must be ``user``
    (nobody, admins included, creates a token acting for someone else). A ``personal``
    token is for any active staff member; an ``integration`` token only for an active
    admin, and only with the ``read`` scope (it reads codes, and writes nothing).
    ``scopes`` is a non-empty subset of ``read``, ``write``.
    """
    if kind not in TOKEN_KINDS:
        raise ValueError(f"unknown token kind {kind!r}")
    if created_by.id != user.id:
        raise TokenError(N_("A token acts for the person who creates it: staff members "
                            "create their own personal tokens on their account page."),
                         field="user_id")
    if not user.is_active:
        raise TokenError(N_("A token acts for an active staff member of this clinic."),
                         field="user_id")
    if kind == "integration" and not user.is_admin:
        raise TokenError(N_("Only an active admin of the clinic can create API tokens."))
    clean_name = (name or "").strip()
    if not clean_name:
        raise TokenError(N_("Give the token a name that says which system uses it."),
                         field="name")
    if len(clean_name) > NAME_MAX:
        raise TokenError(N_("The name is too long: at most 100 characters."), field="name")
    wanted = sorted(set(scopes))
    if not wanted or any(scope not in API_SCOPES for scope in wanted):
        raise TokenError(N_("Choose the token's scopes: read, write or both."), field="scopes")
    if kind == "integration" and wanted != ["read"]:
        raise TokenError(N_("An integration token reads client codes only: its scope is "
                            "read."), field="scopes")
    if not 1 <= days <= MAX_DAYS:
        raise TokenError(N_("A token is valid for 1 to 366 days."), field="days")
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(clinic_id=user.clinic_id, user_id=user.id, kind=kind, name=clean_name,
                     token_hash=hash_secret(secret), prefix=secret[:PREFIX_SHOWN],
                     scopes=wanted, created_by_id=created_by.id, created_dt=now,
                     expires_dt=now + dt.timedelta(days=days))
    session.add(token)
    session.flush()
    return token, secret


def audit_label(token: ApiToken) -> str:
    """How the audit trail names a token: its id and kind, who created it and whom it
    acts for (user ids), then its name, cut to the column's 100 characters."""
    return (f"token {token.id} {token.kind} by user {token.created_by_id} for user "
            f"{token.user_id} ({token.name})")[:100]


def authenticate(session: Session, secret: str, now: dt.datetime, *, record_use: bool = True
                 ) -> ApiToken | None:
    """The usable token whose secret is ``secret``, or None (unknown, expired, revoked,
    or its user disabled). With ``record_use``, notes when it was last used, to the
    nearest five minutes (:func:`touch`); an edge that reads first passes False and
    touches in a write of its own."""
    if not secret.startswith(SECRET_PREFIX) or len(secret) > 200:
        return None
    digest = hash_secret(secret)
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
    # The lookup is by hash; the constant-time compare keeps it so if that ever changes.
    if token is None or not hmac.compare_digest(token.token_hash, digest):
        return None
    if not token.is_usable(now):
        return None
    if record_use and is_stale(token, now):
        touch(session, token, now)
    return token


def is_stale(token: ApiToken, now: dt.datetime) -> bool:
    """Whether the token's ``last_used_dt`` is more than five minutes behind ``now``."""
    return token.last_used_dt is None or now - token.last_used_dt > LAST_USED_PRECISION


def touch(session: Session, token: ApiToken, now: dt.datetime) -> None:
    """Note that the token was used at ``now``; flush."""
    token.last_used_dt = now
    session.flush()


def user_tokens(session: Session, user: User) -> list[ApiToken]:
    """The personal tokens acting for ``user``, newest first (revoked and expired ones
    included)."""
    return list(session.scalars(select(ApiToken).where(
        ApiToken.user_id == user.id, ApiToken.kind == "personal")
        .order_by(ApiToken.created_dt.desc(), ApiToken.id.desc())))


def clinic_tokens(session: Session, clinic: Clinic) -> list[ApiToken]:
    """Every token of the clinic, newest first (revoked and expired ones included)."""
    return list(session.scalars(select(ApiToken).where(ApiToken.clinic_id == clinic.id)
                                .order_by(ApiToken.created_dt.desc(), ApiToken.id.desc())))


TOKEN_STATUSES = ("active", "expired", "revoked", "user disabled")


def token_status(token: ApiToken, now: dt.datetime) -> str:
    """Why a token is (not) usable: ``active``, ``revoked``, ``expired`` or ``user disabled``
    (in that order of precedence; only ``active`` tokens are accepted)."""
    if token.revoked_dt is not None:
        return "revoked"
    if now >= token.expires_dt:
        return "expired"
    if not token.user.is_active:
        return "user disabled"
    return "active"


def revoke_token(session: Session, token: ApiToken, by: User, now: dt.datetime) -> ApiToken:
    """Revoke ``token`` at once (its next request is refused); flush.

    An active admin of the token's clinic may revoke any of its tokens, and a staff
    member their own personal tokens; revoking twice is refused.
    """
    own = token.kind == "personal" and token.user_id == by.id
    admin = by.is_admin and by.clinic_id == token.clinic_id
    if not (by.is_active and (own or admin)):
        raise TokenError(N_("Only an active admin of the clinic can revoke API tokens."))
    if token.revoked_dt is not None:
        raise TokenError(N_("This token was revoked already."))
    token.revoked_dt = now
    token.revoked_by_id = by.id
    session.flush()
    return token


def delete_old_idempotency_records(session: Session, now: dt.datetime) -> int:
    """Forget idempotency records older than 24 hours; flush. Returns how many."""
    result = cast("CursorResult[Any]", session.execute(delete(ApiIdempotencyRecord).where(
        ApiIdempotencyRecord.created_dt < now - IDEMPOTENCY_KEPT)))  # DML: a cursor result
    session.flush()
    return int(result.rowcount or 0)
