"""Booking appointments within an episode, and recording what became of them (issue 17).

The session number is derived, never typed (:mod:`outcome.services.sessions`). A booking
must fall within the episode (on or after the day it opened, on or before the day it
ended, in the clinic's time zone) and, when the caller gives ``now``, not in the past: a
session booked before the episode opened would take a number and renumber every later
session. Refusals are :class:`BookingError`, whose message is an untranslated message id.

What became of an appointment is its status (``outcome.models.care.APPOINTMENT_STATUSES``).
Cancelling one (in good time or late) or recording that the client did not attend
revokes its unused questionnaire links and withdraws its link e-mails not yet sent;
rescheduling moves its unused links' window with it and withdraws the unsent e-mails,
whose text names the old time (the scheduler queues them again for the new time).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.models import Administration
from outcome.models import Appointment
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import OutboundEmail
from outcome.models import QuestionnaireLink
from outcome.models.care import OUTCOME_STATUSES
from outcome.models.care import SESSION_STATUSES
from outcome.services.sessions import episode_clocks

COUNTED = SESSION_STATUSES  # the name the callers know
HISTORY_PAGE_SIZE = 20


def N_(message: str) -> str:  # the gettext convention for "mark only"
    return message


class BookingError(ValueError):
    """A booking or change that cannot be made; the message says why.

    ``message`` is the untranslated message id and ``params`` its ``%(name)s`` values;
    ``field`` names the input at fault (``starts_at``, ``status``...). (Shaped like
    ``services.staff.StaffError``, which this module cannot import: staff imports mail,
    mail links, and links this module.)
    """

    def __init__(self, message: str, *, field: str | None = None, **params: Any) -> None:
        self.message, self.params, self.field = message, params, field
        super().__init__(message % params if params else message)


def _tz(session: Session, episode: Episode) -> zoneinfo.ZoneInfo:
    clinic = session.get(Clinic, episode.clinic_id)
    assert clinic is not None
    return zoneinfo.ZoneInfo(clinic.timezone)


def check_time(session: Session, episode: Episode, starts_dt: dt.datetime, *,
               now: dt.datetime | None = None) -> None:
    """Refuse a start time outside the episode or (with ``now``) in the past."""
    if starts_dt.tzinfo is None:
        raise BookingError(N_("The appointment time needs a time zone."), field="starts_at")
    tz = _tz(session, episode)
    local = starts_dt.astimezone(tz)
    day = local.date()
    if day < episode.opened_on:
        raise BookingError(
            N_("%(when)s is before the episode opened (%(opened)s): a session cannot be "
               "booked before the episode."), field="starts_at",
            when=f"{local:%Y-%m-%d %H:%M}", opened=episode.opened_on.isoformat())
    if episode.closed_on is not None and day > episode.closed_on:
        raise BookingError(
            N_("%(when)s is after the episode ended (%(closed)s)."), field="starts_at",
            when=f"{local:%Y-%m-%d %H:%M}", closed=episode.closed_on.isoformat())
    if now is not None and starts_dt < now:
        raise BookingError(
            N_("%(when)s is in the past: sessions are booked from now on."),
            field="starts_at",
            when=f"{local:%Y-%m-%d %H:%M}")


def book_appointment(session: Session, episode: Episode, starts_dt: dt.datetime, *,
                     duration_minutes: int = 50, now: dt.datetime | None = None,
                     series_id: int | None = None) -> Appointment:
    """Book one appointment in an open episode; flush. Nothing is stored when refused."""
    if episode.closed_on is not None:
        raise BookingError(N_("The episode has ended; open a new episode to book sessions."))
    check_time(session, episode, starts_dt, now=now)
    _no_clash(session, episode, starts_dt)
    appointment = Appointment(episode_id=episode.id, starts_dt=starts_dt,
                              duration_minutes=duration_minutes, status="scheduled",
                              series_id=series_id)
    session.add(appointment)
    session.flush()
    return appointment


def _no_clash(session: Session, episode: Episode, starts_dt: dt.datetime,
              ignore: int | None = None) -> None:
    query = select(Appointment.id).where(
        Appointment.episode_id == episode.id, Appointment.starts_dt == starts_dt,
        Appointment.status.in_(SESSION_STATUSES))
    if ignore is not None:
        query = query.where(Appointment.id != ignore)
    if session.scalar(query) is not None:
        local = starts_dt.astimezone(_tz(session, episode))
        raise BookingError(N_("There is already an appointment at %(when)s."),
                           field="starts_at", when=f"{local:%Y-%m-%d %H:%M}")


def book_weekly_series(session: Session, episode: Episode, first_local: dt.datetime, *,
                       count: int, weeks_apart: int = 1, duration_minutes: int = 50,
                       now: dt.datetime | None = None) -> list[Appointment]:
    """Book ``count`` appointments at the same local time every ``weeks_apart`` weeks.

    ``first_local`` is naive local time in the clinic's time zone, so a series keeps
    10:00 across daylight-saving changes. Nothing is booked if any one is refused. The
    appointments of a series of two or more share ``series_id`` (the first one's id).
    """
    if not 1 <= count <= 52:
        raise BookingError(N_("A series has 1 to 52 appointments."), field="weekly")
    tz = _tz(session, episode)
    booked: list[Appointment] = []
    with session.begin_nested():
        for k in range(count):
            local = (first_local + dt.timedelta(weeks=k * weeks_apart)).replace(tzinfo=tz)
            booked.append(book_appointment(
                session, episode, local.astimezone(dt.UTC), duration_minutes=duration_minutes,
                now=now, series_id=booked[0].id if booked else None))
        if count > 1:
            booked[0].series_id = booked[0].id
            session.flush()
    return booked


def is_last_booked(session: Session, appointment: Appointment) -> bool:
    """No scheduled or attended appointment of the episode comes after this one: it is
    the last session booked (the "end" of a battery entry asked at intake and end)."""
    later = session.scalar(select(func.count()).select_from(Appointment).where(
        Appointment.episode_id == appointment.episode_id,
        Appointment.status.in_(COUNTED), Appointment.starts_dt > appointment.starts_dt))
    return not later


def session_number(session: Session, appointment: Appointment) -> int:
    """1 + the scheduled or attended appointments of the episode before this one."""
    earlier = session.scalar(select(func.count()).select_from(Appointment).where(
        Appointment.episode_id == appointment.episode_id,
        Appointment.status.in_(COUNTED), Appointment.starts_dt < appointment.starts_dt))
    return int(earlier or 0) + 1


# --- what became of an appointment --------------------------------------------------------


def withdraw_unsent_mail(session: Session, appointment: Appointment) -> int:
    """Delete the appointment's link, reminder and post-session e-mails not yet sent
    (their text names its time; their link would no longer open); the number deleted."""
    keys = [f"link:{appointment.id}:pre", f"reminder:{appointment.id}:pre",
            f"post:{appointment.id}"]
    result = session.execute(delete(OutboundEmail).where(
        OutboundEmail.dedupe_key.in_(keys), OutboundEmail.status == "pending")
        .execution_options(synchronize_session="fetch"))
    return int(getattr(result, "rowcount", 0) or 0)


def _open_links(session: Session, appointment: Appointment) -> list[QuestionnaireLink]:
    return list(session.scalars(select(QuestionnaireLink).where(
        QuestionnaireLink.appointment_id == appointment.id,
        QuestionnaireLink.used_dt.is_(None), QuestionnaireLink.revoked_dt.is_(None))))


def _call_off(session: Session, appointment: Appointment, now: dt.datetime) -> None:
    for link in _open_links(session, appointment):
        link.revoked_dt = now
    withdraw_unsent_mail(session, appointment)


def _editable(session: Session, appointment: Appointment) -> Episode:
    episode = session.get(Episode, appointment.episode_id)
    assert episode is not None
    if episode.closed_on is not None:
        raise BookingError(N_("The episode has ended; its appointments can no longer be "
                              "changed."))
    return episode


def cancel_appointment(session: Session, appointment: Appointment, now: dt.datetime) -> None:
    """Cancel a scheduled appointment (in good time); flush."""
    _editable(session, appointment)
    if appointment.status != "scheduled":
        raise BookingError(N_("Only a scheduled appointment can be cancelled."))
    appointment.status = "cancelled"
    _call_off(session, appointment, now)
    session.flush()


def record_outcome(session: Session, appointment: Appointment, status: str,
                   now: dt.datetime) -> None:
    """Record that the session was attended, not attended, or cancelled late; flush.

    Attended and did-not-attend only once the appointment has begun; a late cancellation
    at any time. A recorded outcome can be corrected into another one.
    """
    _editable(session, appointment)
    if status not in OUTCOME_STATUSES:
        raise BookingError(N_("Unknown status."), field="status")
    if appointment.status not in ("scheduled", *OUTCOME_STATUSES):
        raise BookingError(N_("A cancelled appointment cannot be marked; book a new one."))
    if status != "late_cancelled" and appointment.starts_dt > now:
        raise BookingError(N_("This appointment has not begun yet: it can be marked "
                              "attended or not attended from its start time."),
                           field="status")
    appointment.status = status
    if status != "attended":
        _call_off(session, appointment, now)
    session.flush()


def reschedule_appointment(session: Session, appointment: Appointment,
                           starts_dt: dt.datetime, now: dt.datetime) -> None:
    """Move a scheduled appointment to ``starts_dt``; flush. Its unused links move with it."""
    episode = _editable(session, appointment)
    if appointment.status != "scheduled":
        raise BookingError(N_("Only a scheduled appointment can be moved."))
    check_time(session, episode, starts_dt, now=now)
    _no_clash(session, episode, starts_dt, ignore=appointment.id)
    shift = starts_dt - appointment.starts_dt
    for link in _open_links(session, appointment):
        link.valid_from_dt += shift
        link.valid_until_dt += shift
    withdraw_unsent_mail(session, appointment)
    appointment.starts_dt = starts_dt
    session.flush()


def rest_of_series(session: Session, appointment: Appointment) -> list[Appointment]:
    """This appointment and the later scheduled ones of its weekly series, in order."""
    if appointment.series_id is None:
        return [appointment] if appointment.status == "scheduled" else []
    return list(session.scalars(select(Appointment).where(
        Appointment.episode_id == appointment.episode_id,
        Appointment.series_id == appointment.series_id,
        Appointment.status == "scheduled",
        Appointment.starts_dt >= appointment.starts_dt).order_by(Appointment.starts_dt)))


def cancel_rest_of_series(session: Session, appointment: Appointment,
                          now: dt.datetime) -> list[Appointment]:
    """Cancel this appointment and the later scheduled ones of its series; flush."""
    _editable(session, appointment)
    rest = rest_of_series(session, appointment)
    if not rest:
        raise BookingError(N_("Only a scheduled appointment can be cancelled."))
    for one in rest:
        one.status = "cancelled"
        _call_off(session, one, now)
    session.flush()
    return rest


# --- the session history ------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryRow:
    appointment: Appointment
    episode: Episode
    number: int | None  # the session number; None when it takes none (not held)
    is_expected: bool  # scheduled: the number it will have if held as booked
    measures: int  # measures (instruments) answered for this appointment


@dataclass(frozen=True)
class HistoryPage:
    rows: list[HistoryRow]
    page: int
    pages: int
    total: int


def session_history(session: Session, client_id: int, page: int = 1,
                    per_page: int = HISTORY_PAGE_SIZE) -> HistoryPage:
    """Every appointment of the client, newest first, ``per_page`` at a time."""
    base = (select(Appointment, Episode).join(Episode, Episode.id == Appointment.episode_id)
            .where(Episode.client_id == client_id))
    total = int(session.scalar(select(func.count()).select_from(base.subquery())) or 0)
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    found = session.execute(base.order_by(Appointment.starts_dt.desc(), Appointment.id.desc())
                            .limit(per_page).offset((page - 1) * per_page)).all()
    clocks = episode_clocks(session, {e.id for _a, e in found})
    ids = [a.id for a, _e in found]
    answered = dict(session.execute(
        select(Administration.appointment_id,
               func.count(func.distinct(Administration.instrument_id)))
        .where(Administration.appointment_id.in_(ids))
        .group_by(Administration.appointment_id)).all()) if ids else {}
    rows = [HistoryRow(appointment=a, episode=e,
                       number=clocks[e.id].numbers.get(a.id),
                       is_expected=a.status == "scheduled",
                       measures=int(answered.get(a.id, 0)))
            for a, e in found]
    return HistoryPage(rows=rows, page=page, pages=pages, total=total)
