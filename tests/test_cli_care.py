"""Booking and goals from the command line."""

from __future__ import annotations


def test_book_a_weekly_series_and_set_goals(runner, db_session, clinic, make_user, make_client,
                                            make_episode):
    clinic.timezone = "Europe/London"
    person = make_client(make_user())
    make_episode(person)
    db_session.commit()
    result = runner.invoke(args=["appointments", "book", "--client", person.code, "--at",
                                 "2026-11-30 10:00", "--weekly", "3"])
    assert result.exit_code == 0, result.output
    assert "Booked 3 for" in result.output
    assert "session 1: Mon 30 Nov 2026 10:00" in result.output
    assert "session 3: Mon 14 Dec 2026 10:00" in result.output
    clash = runner.invoke(args=["appointments", "book", "--client", person.code, "--at",
                                "2026-12-07 10:00"])
    assert clash.exit_code == 1 and "already an appointment" in clash.output
    goals = runner.invoke(args=["goals", "set", "--client", person.code, "Sleep better",
                                "See friends again"])
    assert goals.exit_code == 0 and "2 goal(s) set" in goals.output
    too_many = runner.invoke(args=["goals", "set", "--client", person.code, "a", "b", "c",
                                   "d"])
    assert too_many.exit_code == 1 and "1 to 3 goals" in too_many.output
