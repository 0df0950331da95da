"""Which therapist reports are due at a moment (issue 18): the pre-session brief of each
working day and the weekly caseload report of the week just ended.

Times are the clinic's local times (its IANA time zone, via zoneinfo), so a brief set
for 07:00 is produced at 07:00 on both sides of a daylight-saving change.

- Brief (kind ``therapist_brief``, period the clinic-local ISO date "2026-11-23"): due
  for an active therapist on a local day when they have at least one appointment that
  day that is not cancelled (status neither "cancelled" nor "late_cancelled"), once the
  local time has reached their brief time (their own choice, else the clinic's
  ``brief_time``, default 07:00). Catch-up after a scheduler outage is within the same
  local day only: a brief of a day gone by is never produced late.
- Weekly (kind ``therapist_weekly``, period the ISO week "2026-W47", Monday to Sunday in
  the clinic's time zone): due for the week just ended once the chosen weekday (default
  Monday) and time (default 07:00) of the following week have passed; catch-up only for
  that one week.

No report is due for a period before the therapist's account existed, nor for a
therapist who turned that report off (:mod:`.preferences`).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.models import Appointment
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import User
from outcome.services import clinic_settings
from outcome.services.digests.figures import DigestError
from outcome.services.digests.figures import iso_week
from outcome.services.digests.figures import week_bounds
from outcome.services.therapist_reports.preferences import BRIEF_KIND
from outcome.services.therapist_reports.preferences import WEEKLY_KIND
from outcome.services.therapist_reports.preferences import choice

CANCELLED = ("cancelled", "late_cancelled")


class ScheduleError(ValueError):
    """A period asked for by hand that cannot be produced; the message says why."""


def _at(day: dt.date, hhmm: str, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    hour, minute = (int(part) for part in hhmm.split(":"))
    return dt.datetime.combine(day, dt.time(hour, minute), tz)


def day_bounds(day: dt.date, timezone: str) -> tuple[dt.datetime, dt.datetime]:
    """The clinic-local ``day`` as UTC [start, end): 23 or 25 hours on a clock change."""
    tz = zoneinfo.ZoneInfo(timezone)
    start = dt.datetime.combine(day, dt.time(), tz).astimezone(dt.UTC)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tz).astimezone(dt.UTC)
    return start, end


def parse_day(text: str) -> dt.date:
    """A brief's period ("2026-11-23") as a date; :class:`ScheduleError` otherwise."""
    try:
        if len(text) != 10:
            raise ValueError
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ScheduleError(f"{text!r} is not a date such as 2026-11-23") from None


def therapists_with_appointments(session: Session, clinic: Clinic, day: dt.date) -> set[int]:
    """Ids of the therapists of ``clinic`` with a non-cancelled appointment on local ``day``."""
    start, end = day_bounds(day, clinic.timezone)
    return set(session.scalars(
        select(Episode.therapist_id).join(Appointment, Appointment.episode_id == Episode.id)
        .where(Episode.clinic_id == clinic.id, Appointment.starts_dt >= start,
               Appointment.starts_dt < end, Appointment.status.not_in(CANCELLED))
        .distinct()).all())


def _therapists(session: Session, clinic: Clinic) -> list[User]:
    return list(session.scalars(select(User).where(
        User.clinic_id == clinic.id, User.is_therapist, User.is_active).order_by(User.id)))


def _local_created(user: User, tz: zoneinfo.ZoneInfo) -> dt.date:
    return user.created_dt.astimezone(tz).date()


def due_briefs(session: Session, now: dt.datetime) -> list[tuple[User, str]]:
    """Every (therapist, local date) whose brief is due at ``now`` (today's only)."""
    due = []
    for clinic in session.scalars(select(Clinic).order_by(Clinic.id)).all():
        settings = clinic_settings.current(clinic)
        tz = zoneinfo.ZoneInfo(clinic.timezone)
        local = now.astimezone(tz)
        today = local.date()
        busy = therapists_with_appointments(session, clinic, today)
        if not busy:
            continue  # nobody is due (the job asks every 15 minutes, weekends included)
        for therapist in _therapists(session, clinic):
            if therapist.id not in busy or _local_created(therapist, tz) > today:
                continue
            chosen = choice(session, therapist, BRIEF_KIND, settings)
            if chosen.enabled and _at(today, chosen.time, tz) <= local:
                due.append((therapist, today.isoformat()))
    return due


def week_just_ended(now: dt.datetime, timezone: str) -> tuple[str, dt.date]:
    """The ISO week before the one ``now`` falls in (clinic time), and its Monday."""
    local = now.astimezone(zoneinfo.ZoneInfo(timezone)).date()
    monday = local - dt.timedelta(days=local.weekday() + 7)
    return iso_week(monday), monday


def due_weeklies(session: Session, now: dt.datetime) -> list[tuple[User, str]]:
    """Every (therapist, ISO week) whose weekly report is due at ``now``: the week just
    ended, once the chosen weekday and time of this week have passed."""
    due = []
    for clinic in session.scalars(select(Clinic).order_by(Clinic.id)).all():
        settings: dict[str, Any] = clinic_settings.current(clinic)
        tz = zoneinfo.ZoneInfo(clinic.timezone)
        local = now.astimezone(tz)
        week, monday = week_just_ended(now, clinic.timezone)
        for therapist in _therapists(session, clinic):
            if iso_week(_local_created(therapist, tz)) > week:
                continue
            chosen = choice(session, therapist, WEEKLY_KIND, settings)
            send_day = monday + dt.timedelta(days=7 + int(chosen.weekday or 0))
            if chosen.enabled and _at(send_day, chosen.time, tz) <= local:
                due.append((therapist, week))
    return due


def due(session: Session, kind: str, now: dt.datetime) -> list[tuple[User, str]]:
    """Every (therapist, period) of ``kind`` due at ``now``."""
    return due_briefs(session, now) if kind == BRIEF_KIND else due_weeklies(session, now)


def check_period(kind: str, period: str) -> None:
    """Raise :class:`ScheduleError` unless ``period`` is written as ``kind``'s periods are
    (a date "2026-11-23" for a brief, an ISO week "2026-W47" for a weekly report)."""
    if kind == BRIEF_KIND:
        parse_day(period)
        return
    try:
        week_bounds(period, "UTC")
    except DigestError as exc:
        raise ScheduleError(str(exc)) from None


def on_demand(session: Session, kind: str, period: str, now: dt.datetime,
              therapist_id: int | None = None) -> list[tuple[User, str]]:
    """The (therapist, ``period``) pairs to produce by hand (``outcome reports run``).

    A brief is for a therapist with appointments that day (an empty brief says
    nothing); a weekly report for every active therapist. Those who turned the report
    off, and those whose account did not exist yet in that period, are left out. A
    period that has not begun (a brief of a later day) or not ended (a weekly report
    of this week) is refused with :class:`ScheduleError`.
    """
    check_period(kind, period)
    pairs = []
    for clinic in session.scalars(select(Clinic).order_by(Clinic.id)).all():
        settings = clinic_settings.current(clinic)
        tz = zoneinfo.ZoneInfo(clinic.timezone)
        today = now.astimezone(tz).date()
        if kind == BRIEF_KIND:
            day = parse_day(period)
            if day > today:
                raise ScheduleError(f"{period} is in the future in {clinic.timezone}; a "
                                    "brief is produced on its day")
            busy = therapists_with_appointments(session, clinic, day)
        elif week_bounds(period, clinic.timezone)[2] > now:
                raise ScheduleError(f"week {period} has not ended yet in {clinic.timezone}")
        for therapist in _therapists(session, clinic):
            if therapist_id is not None and therapist.id != therapist_id:
                continue
            if kind == BRIEF_KIND and therapist.id not in busy:
                continue
            created = _local_created(therapist, tz)
            if (created.isoformat() if kind == BRIEF_KIND else iso_week(created)) > period:
                continue  # no report for a period before the account existed
            if choice(session, therapist, kind, settings).enabled:
                pairs.append((therapist, period))
    return pairs
