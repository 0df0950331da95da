"""A clinic from nothing: the first clinic and its first admin, and the one-time setup token.

Two ways lead to a first clinic, and both end here:

- ``outcome clinic create`` on the server (any time: it also adds further clinics);
- the setup page of a fresh installation (no clinic yet), reachable only with the
  one-time token that ``outcome serve`` prints.

:func:`create_clinic` makes the clinic (its slug from its name, its time zone checked
against the IANA database) and its first admin, whose password somebody else chose, so
they must change it at their first sign-in. It flushes and never commits: a refusal
(:class:`SetupError`) leaves nothing behind once the caller's transaction is rolled back.

The setup token is kept only as a SHA-256 digest, in a file of the instance folder that
only the account running outcome can read (:mod:`outcome.private_files`). It works once:
the file is removed when the clinic is created, and a token is refused (and its file
removed) as soon as any clinic exists. Each ``outcome serve`` on an empty database
replaces it with a new one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import re
import secrets
import unicodedata
import zoneinfo
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.log_redaction import redact
from outcome.models import Clinic
from outcome.models import User
from outcome.private_files import make_private_dir
from outcome.private_files import write_private_bytes
from outcome.services import staff

SETUP_TOKEN_FILE = "setup-token"  # noqa: S105 (a file name)
MAX_CLINIC_NAME = 200
MAX_SLUG = 64


def N_(message: str) -> str:  # the gettext convention for "mark only"
    """Mark ``message`` for translation without translating it (Babel extracts ``N_``)."""
    return message


class SetupError(ValueError):
    """A clinic that cannot be created; the message says why (English with ``str()``).

    Like :class:`outcome.services.staff.StaffError`: ``message`` is the untranslated
    template, ``params`` its values, ``field`` the input at fault (``name``,
    ``timezone``, ``email``, ``password``...).
    """

    def __init__(self, message: str, *, field: str | None = None, **params: Any) -> None:
        self.message = message
        self.params = params
        self.field = field
        super().__init__(message % params if params else message)


# --- the clinic --------------------------------------------------------------------------


def slug_for(name: str) -> str:
    """The clinic's slug from its name: lower-case ASCII letters, digits and hyphens.

    Accents are dropped (``Clínica Sur`` is ``clinica-sur``); a name with no Latin letter
    or digit at all (``Клиника``) gets ``clinic``. At most 64 characters.
    """
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:MAX_SLUG].strip("-")
    return slug or "clinic"


def check_timezone(name: str) -> str:
    """``name`` if it is an IANA time zone (``Europe/London``); else :class:`SetupError`."""
    cleaned = (name or "").strip()
    try:
        if not cleaned or len(cleaned) > 64:
            raise ValueError(cleaned)
        zoneinfo.ZoneInfo(cleaned)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise SetupError(N_("%(timezone)s is not a time zone; give an IANA name such as "
                            "Europe/London or America/New_York."), field="timezone",
                         timezone=cleaned or "''") from None
    return cleaned


def has_clinic(session: Session) -> bool:
    """Whether any clinic exists (a fresh installation has none)."""
    return (session.scalar(select(func.count()).select_from(Clinic)) or 0) > 0


def create_clinic(session: Session, *, name: str, timezone: str, admin_email: str,
                  admin_name: str, password: str, now: dt.datetime) -> tuple[Clinic, User]:
    """Create a clinic and its first admin; flush and return both.

    Refused (:class:`SetupError`) when the name is empty or too long, the time zone is
    not an IANA name, a clinic with the same name or slug exists, or the admin's e-mail,
    name or password would be refused by :func:`outcome.services.staff.create_user`.
    The admin must change the password at their first sign-in.
    """
    cleaned = " ".join((name or "").split())
    if not cleaned:
        raise SetupError(N_("Give the clinic's name."), field="name")
    if len(cleaned) > MAX_CLINIC_NAME:
        raise SetupError(N_("A clinic's name has at most %(count)s characters."),
                         field="name", count=MAX_CLINIC_NAME)
    zone = check_timezone(timezone)
    slug = slug_for(cleaned)
    taken = session.scalar(select(Clinic).where(
        (Clinic.slug == slug) | (func.lower(Clinic.name) == cleaned.lower())))
    if taken is not None:
        raise SetupError(N_("There is already a clinic called %(name)s (%(slug)s); choose "
                            "another name."), field="name", name=taken.name, slug=taken.slug)
    clinic = Clinic(slug=slug, name=cleaned, timezone=zone, settings={}, created_dt=now)
    session.add(clinic)
    session.flush()
    try:
        admin = staff.create_user(session, clinic, admin_email, admin_name, ["admin"],
                                  password, now, must_change_password=True)
    except staff.StaffError as exc:
        field = {"display_name": "admin_name", "email": "email"}.get(exc.field or "",
                                                                     exc.field)
        raise SetupError(exc.message, field=field, **exc.params) from None
    return clinic, admin


# --- the one-time setup token ------------------------------------------------------------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _token_path(instance_path: str | Path) -> Path:
    return Path(instance_path) / SETUP_TOKEN_FILE


def issue_setup_token(instance_path: str | Path) -> str:
    """A new one-time setup token; its digest replaces any earlier one on disk.

    The token is 43 URL-safe characters, drawn until the log redaction recognises it,
    so that the setup address never reaches a log line whole.
    """
    token = secrets.token_urlsafe(32)
    while redact(token) == token:  # all one case, or no digit: about 1 in 1500
        token = secrets.token_urlsafe(32)
    folder = make_private_dir(instance_path)
    write_private_bytes(_token_path(folder), (_digest(token) + "\n").encode())
    return token


def setup_token_digest(instance_path: str | Path) -> str | None:
    """The stored digest of the current setup token, or None when there is none."""
    try:
        stored = _token_path(instance_path).read_text(encoding="ascii").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    return stored if re.fullmatch(r"[0-9a-f]{64}", stored) else None


def check_setup_token(instance_path: str | Path, token: str) -> str | None:
    """The digest of ``token`` if it is the current setup token, else None (in constant
    time). The caller also checks that no clinic exists yet."""
    stored = setup_token_digest(instance_path)
    if stored is None or not token or len(token) > 100:
        return None
    candidate = _digest(token)
    return candidate if hmac.compare_digest(stored, candidate) else None


def claim_setup_token(instance_path: str | Path, digest: str) -> Path | None:
    """Take the setup token for one request, if ``digest`` is still the current one.

    The token's file is renamed to a name of this claim (atomic), so that a second
    request at the same moment (a double click) finds no token instead of creating a
    second clinic. Returns the claimed file, for :func:`release_setup_token` when the
    clinic is refused, or None when the token is gone or another.
    """
    if setup_token_digest(instance_path) != digest:
        return None
    claim = _token_path(instance_path).with_name(f".{SETUP_TOKEN_FILE}.{secrets.token_hex(8)}")
    try:
        _token_path(instance_path).rename(claim)
    except FileNotFoundError:  # another request claimed it first
        return None
    return claim


def release_setup_token(claim: Path) -> None:
    """Put a claimed token back (the form was refused: it may be sent again)."""
    with contextlib.suppress(FileNotFoundError):
        claim.rename(claim.with_name(SETUP_TOKEN_FILE))


def discard_setup_token(instance_path: str | Path) -> None:
    """Remove the setup token: it is used, or a clinic exists."""
    _token_path(instance_path).unlink(missing_ok=True)
