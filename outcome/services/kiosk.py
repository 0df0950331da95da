"""The waiting-room kiosk (issue 17): enrolled devices and one-day codes.

An admin creates a kiosk device; its secret is shown once as a setup link, which the
tablet opens to keep the secret in a long-lived cookie (only its SHA-256 is stored). A
therapist makes a short code for a client's appointment today; the client types it at a
kiosk of the clinic and answers that appointment's questionnaires (its link, reused when
one is open, else issued). Codes are six characters from an alphabet without look-alike
characters, stored only as an HMAC keyed with the application's secret, usable once, and
expire at the end of the clinic's day. A new code for the same appointment withdraws the
previous unused one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import zoneinfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.models import Appointment
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import KioskCode
from outcome.models import KioskDevice
from outcome.models import QuestionnaireLink
from outcome.models import User
from outcome.services.links import check_link
from outcome.services.links import hash_token
from outcome.services.links import issue_link
from questionnaires.loader import InstrumentLibrary

# No 0/O, 1/I/L, 2/Z, 5/S, 8/B: letters and digits nobody mistakes for each other.
CODE_ALPHABET = "ACDEFGHJKMNPQRTUVWXY34679"
CODE_LENGTH = 6
MAX_DEVICE_NAME = 80


class KioskError(ValueError):
    """A kiosk action that cannot be done; the message says why (English, for logs and
    the CLI; the web edge shows its own sentence for each ``reason``)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


# --- devices -----------------------------------------------------------------------------


def create_device(session: Session, *, clinic: Clinic, admin: User, name: str,
                  now: dt.datetime) -> tuple[KioskDevice, str]:
    """A new kiosk device and its secret (shown once, as the setup link); flush."""
    name = " ".join(name.split())
    if not name or len(name) > MAX_DEVICE_NAME:
        raise KioskError("name", f"a kiosk needs a name of 1 to {MAX_DEVICE_NAME} characters")
    if not (admin.is_admin and admin.is_active and admin.clinic_id == clinic.id):
        raise KioskError("admin", "only an active admin of the clinic creates a kiosk")
    token = secrets.token_urlsafe(32)
    device = KioskDevice(clinic_id=clinic.id, name=name, token_hash=hash_token(token),
                         created_dt=now, created_by_id=admin.id)
    session.add(device)
    session.flush()
    return device, token


def device_for_token(session: Session, token: str | None) -> KioskDevice | None:
    """The device whose secret is ``token``, unless revoked."""
    if not token or len(token) > 128:
        return None
    device = session.scalar(select(KioskDevice).where(
        KioskDevice.token_hash == hash_token(token)))
    return device if device is not None and device.revoked_dt is None else None


def enrol(session: Session, device: KioskDevice, now: dt.datetime) -> None:
    """The setup link was opened on the device (it works once); flush."""
    if device.enrolled_dt is not None:
        raise KioskError("enrolled", "this setup link has been used already")
    device.enrolled_dt = device.last_used_dt = now
    session.flush()


def revoke_device(session: Session, device: KioskDevice, now: dt.datetime) -> None:
    """The device is no longer a kiosk: its cookie opens nothing from now on; flush."""
    if device.revoked_dt is None:
        device.revoked_dt = now
        session.flush()


# --- day codes ---------------------------------------------------------------------------


def normalise_code(raw: str) -> str:
    """What a client typed, as a code: capitals, without spaces or dashes."""
    return "".join(c for c in raw.upper() if c not in " -\t")[:32]


def hash_code(clinic_id: int, code: str, key: bytes) -> str:
    return hmac.new(key, f"kiosk:{clinic_id}:{code}".encode(), hashlib.sha256).hexdigest()


def end_of_day(moment: dt.datetime, timezone: str) -> dt.datetime:
    """Midnight after ``moment`` in the clinic's time zone, in UTC."""
    tz = zoneinfo.ZoneInfo(timezone)
    local = moment.astimezone(tz).date() + dt.timedelta(days=1)
    return dt.datetime.combine(local, dt.time(0), tzinfo=tz).astimezone(dt.UTC)


def _open_link(session: Session, appointment: Appointment, now: dt.datetime
               ) -> QuestionnaireLink | None:
    """The appointment's pre-session link that can be answered now, if there is one."""
    for link in session.scalars(select(QuestionnaireLink).where(
            QuestionnaireLink.appointment_id == appointment.id,
            QuestionnaireLink.purpose == "pre").order_by(QuestionnaireLink.id.desc())):
        if check_link(link, now) is None:
            return link
    return None


def make_code(session: Session, *, appointment: Appointment, therapist: User,
              now: dt.datetime, library: InstrumentLibrary, key: bytes
              ) -> tuple[KioskCode, str]:
    """A code for ``appointment`` (today, in the clinic's time zone) and the code itself
    (shown once); flush. Raises :class:`KioskError` when the appointment is not today's
    or not scheduled, and :class:`~outcome.services.links.NothingToAsk` when there is
    nothing to ask."""
    episode = session.get_one(Episode, appointment.episode_id)
    clinic = session.get_one(Clinic, episode.clinic_id)
    tz = zoneinfo.ZoneInfo(clinic.timezone)
    if appointment.status != "scheduled" or episode.closed_on is not None:
        raise KioskError("not_scheduled", "the appointment is not a scheduled one")
    if appointment.starts_dt.astimezone(tz).date() != now.astimezone(tz).date():
        raise KioskError("not_today", "a kiosk code is made on the day of the appointment")
    link = _open_link(session, appointment, now)
    if link is None:
        link, _token = issue_link(session, episode=episode, purpose="pre", now=now,
                                  library=library, appointment=appointment)
    for old in session.scalars(select(KioskCode).where(
            KioskCode.appointment_id == appointment.id, KioskCode.used_dt.is_(None),
            KioskCode.revoked_dt.is_(None))):
        old.revoked_dt = now
    while True:
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        digest = hash_code(clinic.id, code, key)
        if session.scalar(select(KioskCode.id).where(KioskCode.code_hash == digest)) is None:
            break
    row = KioskCode(clinic_id=clinic.id, appointment_id=appointment.id, link_id=link.id,
                    code_hash=digest, created_dt=now, created_by_id=therapist.id,
                    expires_dt=end_of_day(now, clinic.timezone))
    session.add(row)
    session.flush()
    return row, code


def redeem(session: Session, *, device: KioskDevice, raw: str, now: dt.datetime,
           key: bytes) -> QuestionnaireLink | None:
    """The link a code typed at ``device`` opens, or None; the code is used up; flush.

    A code works once, on the day it was made, at a kiosk of its clinic, while its link
    can still be answered."""
    code = normalise_code(raw)
    if len(code) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in code):
        return None
    row = session.scalar(select(KioskCode).where(
        KioskCode.code_hash == hash_code(device.clinic_id, code, key),
        KioskCode.clinic_id == device.clinic_id))
    if (row is None or row.used_dt is not None or row.revoked_dt is not None
            or now >= row.expires_dt):
        return None
    link = session.get(QuestionnaireLink, row.link_id)
    if link is None or check_link(link, now) is not None:
        return None
    row.used_dt = now
    row.used_by_device_id = device.id
    device.last_used_dt = now
    if link.opened_dt is None:
        link.opened_dt = now
    session.flush()
    return link
