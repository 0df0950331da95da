"""Appointments and single-use questionnaire links."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from outcome.models import Administration
from outcome.models import QuestionnaireLink
from outcome.services import clinic_settings
from outcome.services.appointments import BookingError
from outcome.services.appointments import book_appointment
from outcome.services.appointments import book_weekly_series
from outcome.services.appointments import session_number
from outcome.services.links import check_link
from outcome.services.links import hash_token
from outcome.services.links import issue_link
from outcome.services.links import open_link
from outcome.services.links import steps
from outcome.services.links import submit_page
from questionnaires.loader import builtin_library

LIB = builtin_library()
MONDAY_10 = dt.datetime(2026, 11, 16, 10, tzinfo=dt.UTC)


@pytest.fixture
def episode(make_user, make_client, make_episode):
    return make_episode(make_client(make_user()))


def test_weekly_series_keeps_local_time_across_daylight_saving(db_session, clinic, episode):
    clinic.timezone = "Europe/London"
    db_session.flush()
    series = book_weekly_series(db_session, episode, dt.datetime(2026, 10, 19, 10, 0), count=3)
    # BST ends on 25 October 2026: 10:00 local is 09:00 UTC, then 10:00 UTC.
    assert [a.starts_dt.hour for a in series] == [9, 10, 10]
    assert [session_number(db_session, a) for a in series] == [1, 2, 3]
    series[0].status = "cancelled"
    db_session.flush()
    assert session_number(db_session, series[2]) == 2  # cancelled sessions do not count


def test_double_booking_is_refused_and_a_series_is_all_or_nothing(db_session, clinic,
                                                                   episode):
    book_appointment(db_session, episode, MONDAY_10 + dt.timedelta(weeks=1))
    with pytest.raises(BookingError, match="already an appointment"):
        book_weekly_series(db_session, episode, dt.datetime(2026, 11, 16, 10, 0), count=3)
    assert len(episode.appointments) == 1


def test_link_token_is_stored_only_as_a_hash_and_has_a_window(db_session, episode):
    appointment = book_appointment(db_session, episode, MONDAY_10)
    link, token = issue_link(db_session, episode=episode, purpose="pre", now=MONDAY_10,
                             library=LIB, appointment=appointment)
    assert len(token) >= 43 and link.token_hash == hash_token(token)
    assert token not in repr(db_session.scalars(select(QuestionnaireLink)).all()[0].__dict__)
    assert link.valid_from_dt == MONDAY_10 - dt.timedelta(hours=48)
    assert link.valid_until_dt == MONDAY_10 + dt.timedelta(hours=24)
    assert link.battery == ["phq9", "gad7"]  # gbo needs attestation in a new clinic
    assert check_link(link, MONDAY_10 - dt.timedelta(hours=49)) == "not_yet_open"
    assert check_link(link, MONDAY_10 + dt.timedelta(hours=25)) == "expired"
    assert open_link(db_session, "wrong", MONDAY_10) == (None, "unknown")
    opened, problem = open_link(db_session, token, MONDAY_10)
    assert problem is None and opened.opened_dt == MONDAY_10


def test_reissuing_revokes_the_previous_unused_link(db_session, episode):
    appointment = book_appointment(db_session, episode, MONDAY_10)
    _, token1 = issue_link(db_session, episode=episode, purpose="pre", now=MONDAY_10,
                               library=LIB, appointment=appointment)
    _, token2 = issue_link(db_session, episode=episode, purpose="pre", now=MONDAY_10,
                           library=LIB, appointment=appointment)
    assert open_link(db_session, token1, MONDAY_10)[1] == "revoked"
    assert open_link(db_session, token2, MONDAY_10)[1] is None


def test_battery_rules(db_session, clinic, episode, make_user):
    from outcome.services.goals import set_goals
    from outcome.services.instruments import attest

    attest(db_session, clinic=clinic, instrument=LIB.get("gbo"), admin=make_user("admin"),
           now=MONDAY_10)
    set_goals(db_session, episode, ["Sleep better"], MONDAY_10)
    clinic_settings.update(db_session, clinic, {"pre_battery": [
        {"instrument": "phq9", "every": "session"}, {"instrument": "pcl5", "every": "month"},
        {"instrument": "gbo", "every": "session"}, {"instrument": "gad7", "every": "intake"}]})
    series = book_weekly_series(db_session, episode, dt.datetime(2026, 11, 2, 10), count=5)
    batteries = [issue_link(db_session, episode=episode, purpose="pre", now=MONDAY_10,
                            library=LIB, appointment=a)[0].battery for a in series]
    assert batteries[0] == ["phq9", "pcl5", "gbo", "gad7"]
    assert batteries[1] == batteries[2] == batteries[3] == ["phq9", "gbo"]
    assert batteries[4] == ["phq9", "pcl5", "gbo"]
    post, _ = issue_link(db_session, episode=episode, purpose="post", now=MONDAY_10,
                         library=LIB, appointment=series[0])
    # A new clinic's post-session measure is the project's own session check.
    assert post.battery == ["session_check"]


@pytest.mark.parametrize("post_instrument, why", [
    ("srs_vas", "no wording installed"),
    ("wai_sr", "no wording installed"),
    ("", "none configured"),
])
def test_no_post_session_link_when_no_alliance_measure_is_usable(
        db_session, clinic, episode, make_user, post_instrument, why):
    from outcome.services.instruments import attest
    from outcome.services.links import NothingToAsk

    if post_instrument:  # attested, but its licensed wording is not installed
        attest(db_session, clinic=clinic, instrument=LIB.get(post_instrument),
               admin=make_user("admin"), now=MONDAY_10)
    clinic_settings.update(db_session, clinic, {"post_instrument": post_instrument})
    appointment = book_appointment(db_session, episode, MONDAY_10)
    with pytest.raises(NothingToAsk, match="No link issued"):
        issue_link(db_session, episode=episode, purpose="post", now=MONDAY_10, library=LIB,
                   appointment=appointment)
    assert db_session.scalars(select(QuestionnaireLink)).all() == [], why


def test_a_refused_link_leaves_the_previous_one_valid(db_session, clinic, episode):
    from outcome.services.links import NothingToAsk

    appointment = book_appointment(db_session, episode, MONDAY_10)
    first, _ = issue_link(db_session, episode=episode, purpose="post", now=MONDAY_10,
                          library=LIB, appointment=appointment)
    clinic_settings.update(db_session, clinic, {"post_instrument": "srs_vas"})
    with pytest.raises(NothingToAsk):
        issue_link(db_session, episode=episode, purpose="post", now=MONDAY_10, library=LIB,
                   appointment=appointment)
    assert first.revoked_dt is None and first.battery == ["session_check"]


def answers(level, item9=0):
    return {**{f"phq9_{i}": str(level) for i in range(1, 9)}, "phq9_9": str(item9)}


def test_pages_are_stored_one_by_one_and_the_link_is_used_at_the_end(db_session, episode):
    link, _ = issue_link(db_session, episode=episode, purpose="pre", now=MONDAY_10,
                         library=LIB)
    bad = submit_page(db_session, link=link, instrument=LIB.get("phq9"),
                      form={**answers(1), "phq9_3": "7"}, library=LIB, now=MONDAY_10)
    assert [(e.item, e.code) for e in bad.errors] == [("phq9_3", "not_an_option")]
    assert db_session.query(Administration).count() == 0  # nothing half-written
    first = submit_page(db_session, link=link, instrument=LIB.get("phq9"), form=answers(1, 1),
                        library=LIB, now=MONDAY_10)
    assert first.is_critical and not first.is_finished and link.used_dt is None
    again = submit_page(db_session, link=link, instrument=LIB.get("phq9"), form=answers(1, 1),
                        library=LIB, now=MONDAY_10)  # a resend stores nothing new
    assert db_session.query(Administration).count() == 1 and again.errors == []
    assert [(s.instrument_id, s.is_done) for s in steps(db_session, link)] == [
        ("phq9", True), ("gad7", False)]
    last = submit_page(db_session, link=link, instrument=LIB.get("gad7"),
                       form={f"gad7_{i}": "0" for i in range(1, 8)}, library=LIB,
                       now=MONDAY_10)
    assert last.is_finished and link.used_dt == MONDAY_10
    assert check_link(link, MONDAY_10) == "used"
