"""Each user's choices about their scheduled reports (issue 18): whether a report is
produced, whether its notice is e-mailed, and at what time and weekday.

A user chooses about the reports their roles get (:func:`kinds_for`): a therapist their
pre-session brief and weekly caseload report, a supervisor their weekly digest. Without
a stored choice a report is produced at the clinic's time (clinic settings
``brief_time``, ``weekly_report_weekday`` and ``weekly_report_time``, ``digest_weekday``
and ``digest_time``) and announced by e-mail. Off means not produced at all; e-mail off
means produced and archived in outcome, with no notice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.models import Clinic
from outcome.models import ReportPreference
from outcome.models import User
from outcome.services import clinic_settings

BRIEF_KIND = "therapist_brief"
WEEKLY_KIND = "therapist_weekly"
DIGEST_KIND = "supervisor_digest"
# Which clinic settings give a kind's default time and weekday (None: daily).
CLINIC_DEFAULTS: dict[str, tuple[str, str | None]] = {
    BRIEF_KIND: ("brief_time", None),
    WEEKLY_KIND: ("weekly_report_time", "weekly_report_weekday"),
    DIGEST_KIND: ("digest_time", "digest_weekday"),
}
FIELDS = ("enabled", "email", "time", "weekday")


class PreferenceError(ValueError):
    """A choice that cannot be stored; ``field`` is the form field ("brief_time", ...)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Choice:
    """A user's effective choice about one kind: stored values, or the clinic's.

    ``time`` is "HH:MM" in the clinic's time zone; ``weekday`` 0 (Monday) to 6 (Sunday),
    None for the daily brief. ``own_time`` / ``own_weekday`` are the stored overrides
    (None: the clinic's default is followed).
    """

    kind: str
    enabled: bool
    email: bool
    time: str
    weekday: int | None
    own_time: str | None = None
    own_weekday: int | None = None


def kinds_for(user: User) -> list[str]:
    """The report kinds ``user``'s roles get, in the order the page lists them."""
    kinds = [BRIEF_KIND, WEEKLY_KIND] if user.is_therapist else []
    return kinds + ([DIGEST_KIND] if user.is_supervisor else [])


def _stored(session: Session, user_id: int) -> dict[str, ReportPreference]:
    rows = session.scalars(select(ReportPreference).where(ReportPreference.user_id == user_id))
    return {row.kind: row for row in rows}


def choice(session: Session, user: User, kind: str,
           settings: Mapping[str, Any] | None = None) -> Choice:
    """``user``'s effective choice about ``kind`` (``settings``: the clinic's current
    settings, read when not given)."""
    if settings is None:
        clinic = session.get(Clinic, user.clinic_id)
        assert clinic is not None
        settings = clinic_settings.current(clinic)
    row = _stored(session, user.id).get(kind)
    time_key, weekday_key = CLINIC_DEFAULTS[kind]
    own_time = row.time if row else None
    own_weekday = row.weekday if row and weekday_key else None
    return Choice(kind=kind, enabled=row.is_enabled if row else True,
                  email=row.is_emailed if row else True,
                  time=own_time or str(settings[time_key]),
                  weekday=(own_weekday if own_weekday is not None
                           else int(settings[weekday_key])) if weekday_key else None,
                  own_time=own_time, own_weekday=own_weekday)


def choices(session: Session, user: User) -> list[Choice]:
    """``user``'s effective choice for every kind their roles get."""
    clinic = session.get(Clinic, user.clinic_id)
    assert clinic is not None
    settings = clinic_settings.current(clinic)
    return [choice(session, user, kind, settings) for kind in kinds_for(user)]


def wants_email(session: Session, user: User, kind: str) -> bool:
    """Whether ``user`` gets a notice e-mail when their ``kind`` report is ready."""
    row = _stored(session, user.id).get(kind)
    return row.is_emailed if row else True


def _time(field: str, raw: str) -> str | None:
    raw = raw.strip()
    if not raw:
        return None
    if not clinic_settings.time_ok(raw):
        raise PreferenceError(field, f"{field} must be a time from 00:00 to 23:59 (HH:MM); "
                                     f"got {raw[:20]!r}")
    return raw


def _weekday(field: str, raw: str) -> int | None:
    raw = raw.strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) == 1 and int(raw) <= 6):
        raise PreferenceError(field, f"{field} must be 0 (Monday) to 6 (Sunday); "
                                     f"got {raw[:20]!r}")
    return int(raw)


def parse_form(user: User, form: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Read the preferences form (fields ``<kind>_enabled``, ``<kind>_email``,
    ``<kind>_time``, ``<kind>_weekday``; an unticked box is absent) for every kind
    ``user`` gets; raise :class:`PreferenceError` naming the first bad field."""
    changes: dict[str, dict[str, Any]] = {}
    for kind in kinds_for(user):
        weekly = CLINIC_DEFAULTS[kind][1] is not None
        changes[kind] = {
            "enabled": form.get(f"{kind}_enabled") in ("1", "on", "yes"),
            "email": form.get(f"{kind}_email") in ("1", "on", "yes"),
            "time": _time(f"{kind}_time", str(form.get(f"{kind}_time", ""))),
            "weekday": (_weekday(f"{kind}_weekday", str(form.get(f"{kind}_weekday", "")))
                        if weekly else None),
        }
    return changes


def save(session: Session, user: User, changes: Mapping[str, Mapping[str, Any]],
         now: dt.datetime) -> None:
    """Store ``changes`` (from :func:`parse_form`) for ``user``; flush. A kind the user's
    roles do not get is refused (:class:`PreferenceError`), and nothing is stored."""
    allowed = kinds_for(user)
    for kind in changes:
        if kind not in allowed:
            raise PreferenceError("kind", f"{kind!r} is not a report you get")
    stored = _stored(session, user.id)
    for kind, values in changes.items():
        row = stored.get(kind)
        if row is None:
            row = ReportPreference(user_id=user.id, kind=kind)
            session.add(row)
        row.is_enabled = bool(values["enabled"])
        row.is_emailed = bool(values["email"])
        row.time = values.get("time")
        row.weekday = values.get("weekday")
        row.updated_dt = now
    session.flush()
