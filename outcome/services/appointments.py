"""Booking appointments within an episode; the session number is derived, never typed."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.models import Appointment
from outcome.models import Clinic
from outcome.models import Episode

COUNTED = ("scheduled", "attended")


class BookingError(ValueError):
    """A booking that cannot be made; the message says why."""


def book_appointment(session: Session, episode: Episode, starts_dt: dt.datetime, *,
                     duration_minutes: int = 50) -> Appointment:
    """Book one appointment in an open episode; flush."""
    if episode.closed_on is not None:
        raise BookingError("the episode has ended; open a new episode to book sessions")
    if starts_dt.tzinfo is None:
        raise BookingError("the appointment time needs a time zone")
    clash = session.scalar(select(Appointment.id).where(
        Appointment.episode_id == episode.id, Appointment.starts_dt == starts_dt,
        Appointment.status != "cancelled"))
    if clash is not None:
        raise BookingError(f"there is already an appointment at {starts_dt:%Y-%m-%d %H:%M}")
    appointment = Appointment(episode_id=episode.id, starts_dt=starts_dt,
                              duration_minutes=duration_minutes, status="scheduled")
    session.add(appointment)
    session.flush()
    return appointment


def book_weekly_series(session: Session, episode: Episode, first_local: dt.datetime, *,
                       count: int, weeks_apart: int = 1, duration_minutes: int = 50
                       ) -> list[Appointment]:
    """Book ``count`` appointments at the same local time every ``weeks_apart`` weeks.

    ``first_local`` is naive local time in the clinic's time zone, so a series keeps
    10:00 across daylight-saving changes. Nothing is booked if any one clashes.
    """
    if not 1 <= count <= 52:
        raise BookingError("a series has 1 to 52 appointments")
    clinic = session.get(Clinic, episode.clinic_id)
    assert clinic is not None
    tz = zoneinfo.ZoneInfo(clinic.timezone)
    booked = []
    with session.begin_nested():
        for k in range(count):
            local = (first_local + dt.timedelta(weeks=k * weeks_apart)).replace(tzinfo=tz)
            booked.append(book_appointment(session, episode, local.astimezone(dt.UTC),
                                           duration_minutes=duration_minutes))
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
