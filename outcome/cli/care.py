"""``outcome appointments book`` and ``outcome goals set``: booking and goals by command,
until the therapist pages arrive (they call the same services)."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import click
from flask.cli import AppGroup
from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.db import transaction
from outcome.extensions import database
from outcome.models import Client
from outcome.models import Clinic
from outcome.models import Episode
from outcome.services.appointments import BookingError
from outcome.services.appointments import book_weekly_series
from outcome.services.appointments import session_number
from outcome.services.goals import GoalError
from outcome.services.goals import set_goals

appointments_group = AppGroup("appointments", help="Book sessions.")
goals_group = AppGroup("goals", help="A client's goals, in their own words.")


def open_episode(session: Session, code: str) -> tuple[Episode, Clinic]:
    """The open episode (and clinic) of the client with ``code``, or a clear CLI error."""
    client = session.scalar(select(Client).where(Client.code == code))
    if client is None:
        raise click.BadParameter(f"no client {code!r}", param_hint="--client")
    episode = session.scalar(select(Episode).where(Episode.client_id == client.id,
                                                   Episode.closed_on.is_(None)))
    if episode is None:
        raise click.ClickException(f"{code} has no open episode.")
    clinic = session.get(Clinic, episode.clinic_id)
    assert clinic is not None
    return episode, clinic


@appointments_group.command("book")
@click.option("--client", "code", required=True)
@click.option("--at", "when", required=True, type=click.DateTime(["%Y-%m-%d %H:%M"]),
              help="Local time in the clinic's time zone, e.g. '2026-11-30 10:00'.")
@click.option("--weekly", default=1, show_default=True, type=click.IntRange(1, 52),
              help="How many weekly sessions to book from that time.")
@click.option("--minutes", default=50, show_default=True, type=click.IntRange(1, 600))
@click.option("--past", is_flag=True,
              help="Record sessions that already took place (entering a client's history); "
                   "without it a time before now is refused, as in the browser.")
def book_command(code: str, when: dt.datetime, weekly: int, minutes: int, past: bool) -> None:
    """Book one session, or a weekly series, in the client's open episode."""
    with transaction(database().session_factory) as session:
        episode, clinic = open_episode(session, code)
        try:
            booked = book_weekly_series(session, episode, when, count=weekly,
                                        duration_minutes=minutes,
                                        now=None if past else dt.datetime.now(dt.UTC))
        except BookingError as exc:
            raise click.ClickException(str(exc)) from None
        tz = zoneinfo.ZoneInfo(clinic.timezone)
        lines = [f"  session {session_number(session, a)}: "
                 f"{a.starts_dt.astimezone(tz):%a %d %b %Y %H:%M} (id {a.id})" for a in booked]
    click.echo(f"Booked {len(lines)} for {code}:\n" + "\n".join(lines))


@goals_group.command("set")
@click.option("--client", "code", required=True)
@click.argument("goals", nargs=-1, required=True)
def set_goals_command(code: str, goals: tuple[str, ...]) -> None:
    """Set up to three goals for the client's open episode, in the client's words."""
    with transaction(database().session_factory) as session:
        episode, _ = open_episode(session, code)
        try:
            set_goals(session, episode, list(goals), dt.datetime.now(dt.UTC))
        except GoalError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"{len(goals)} goal(s) set for {code}; they are rated from the next session.")
