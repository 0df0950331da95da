"""Booking and goals from the command line."""

from __future__ import annotations

import datetime as dt


def test_book_a_weekly_series_and_set_goals(runner, db_session, clinic, make_user, make_client,
                                            make_episode):
    clinic.timezone = "Europe/London"
    person = make_client(make_user())
    make_episode(person)
    db_session.commit()
    # A Monday at least a week from the real today: the command refuses past times.
    today = dt.date.today()
    monday = today + dt.timedelta(days=7 + (7 - today.weekday()) % 7)
    result = runner.invoke(args=["appointments", "book", "--client", person.code, "--at",
                                 f"{monday} 10:00", "--weekly", "3"])
    assert result.exit_code == 0, result.output
    assert "Booked 3 for" in result.output
    assert f"session 1: {monday:%a %d %b %Y} 10:00" in result.output
    assert f"session 3: {monday + dt.timedelta(weeks=2):%a %d %b %Y} 10:00" in result.output
    clash = runner.invoke(args=["appointments", "book", "--client", person.code, "--at",
                                f"{monday + dt.timedelta(weeks=1)} 10:00"])
    assert clash.exit_code == 1 and "already an appointment" in clash.output
    goals = runner.invoke(args=["goals", "set", "--client", person.code, "Sleep better",
                                "See friends again"])
    assert goals.exit_code == 0 and "2 goal(s) set" in goals.output
    too_many = runner.invoke(args=["goals", "set", "--client", person.code, "a", "b", "c",
                                   "d"])
    assert too_many.exit_code == 1 and "1 to 3 goals" in too_many.output


def test_booking_in_the_past_needs_past(runner, db_session, clinic, make_user, make_client,
                                        make_episode):
    """A time before now is refused (one clear line, nothing booked) unless --past says
    that a session that already took place is being recorded."""
    from sqlalchemy import func
    from sqlalchemy import select

    from outcome.models import Appointment

    person = make_client(make_user())
    make_episode(person, opened_on=dt.date.today() - dt.timedelta(days=60))
    db_session.commit()
    when = f"{dt.date.today() - dt.timedelta(days=14)} 10:00"
    refused = runner.invoke(args=["appointments", "book", "--client", person.code,
                                  "--at", when, "--weekly", "2"])
    assert refused.exit_code == 1 and "is in the past" in refused.output
    assert db_session.scalar(select(func.count()).select_from(Appointment)) == 0
    recorded = runner.invoke(args=["appointments", "book", "--client", person.code,
                                   "--at", when, "--weekly", "2", "--past"])
    assert recorded.exit_code == 0, recorded.output
    assert db_session.scalar(select(func.count()).select_from(Appointment)) == 2
