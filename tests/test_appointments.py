"""Appointments in the browser (issue 17): bookings inside the episode only, what became of
each session, cancelling (one, or the rest of a series) with its links and e-mails, moving,
and the whole history paged."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import func
from sqlalchemy import select

from outcome.models import Appointment
from outcome.models import AuditEvent
from outcome.models import OutboundEmail
from outcome.models import QuestionnaireLink
from outcome.services.appointments import BookingError
from outcome.services.appointments import book_appointment
from outcome.services.appointments import book_weekly_series
from outcome.services.appointments import cancel_appointment
from outcome.services.appointments import cancel_rest_of_series
from outcome.services.appointments import record_outcome
from outcome.services.appointments import reschedule_appointment
from outcome.services.appointments import session_history
from outcome.services.appointments import session_number
from outcome.services.links import issue_link
from outcome.services.mail import queue_email
from outcome.services.sessions import appointment_numbers
from questionnaires.loader import builtin_library
from tests.conftest import csrf_token

LIB = builtin_library()
NOW = dt.datetime(2026, 11, 16, 9, 0, tzinfo=dt.UTC)  # the ``clock`` fixture's time


@pytest.fixture
def setup(db_session, make_user, make_client, make_episode):
    therapist = make_user()
    person = make_client(therapist, email="rowan@example.org")
    episode = make_episode(person, opened_on=dt.date(2026, 11, 2))
    db_session.commit()
    return therapist, person, episode


def _count(db_session) -> int:
    return db_session.scalar(select(func.count()).select_from(Appointment))


def _form(client, path: str, **data) -> dict:
    token = csrf_token(client.get(path).get_data(as_text=True))
    return {"csrf_token": token, **data}


# --- the bug: a session booked before the episode opened ------------------------------------


def test_a_session_before_the_episode_opened_is_refused_and_renumbers_nothing(
        auth, client, db_session, setup):
    therapist, person, _episode = setup
    auth.login(therapist.email)
    care = f"/clients/{person.code}/care"
    client.post(f"/clients/{person.code}/appointments", data=_form(
        client, care, date="2026-11-23", time="10:00", weekly="2"))
    assert _count(db_session) == 2
    response = client.post(f"/clients/{person.code}/appointments", data=_form(
        client, care, date="2026-10-05", time="10:00", weekly="1"), follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "before the episode opened (2026-11-02)" in page and "2026-10-05 10:00" in page
    assert _count(db_session) == 2  # nothing stored
    later = db_session.scalars(select(Appointment).order_by(Appointment.starts_dt)).all()
    assert [session_number(db_session, a) for a in later] == [1, 2]


def test_bookings_outside_the_episode_or_in_the_past_are_refused(db_session, setup):
    _, _, episode = setup
    with pytest.raises(BookingError, match="before the episode opened") as before:
        book_appointment(db_session, episode, dt.datetime(2026, 11, 1, 22, tzinfo=dt.UTC),
                         now=NOW)
    assert before.value.field == "starts_at"
    with pytest.raises(BookingError, match="in the past"):
        book_appointment(db_session, episode, NOW - dt.timedelta(hours=1), now=NOW)
    with pytest.raises(BookingError, match="in the past"):  # a series is all or nothing
        book_weekly_series(db_session, episode, dt.datetime(2026, 11, 9, 10), count=3,
                           now=NOW)
    episode.closed_on, episode.end_reason = dt.date(2026, 11, 20), "completed"
    db_session.flush()
    with pytest.raises(BookingError, match="episode has ended"):
        book_appointment(db_session, episode, NOW + dt.timedelta(days=1), now=NOW)
    assert _count(db_session) == 0


def test_the_clinic_time_zone_decides_the_day(db_session, clinic, setup):
    _, _, episode = setup
    clinic.timezone = "Pacific/Auckland"  # UTC+13 in November
    db_session.flush()
    # 1 November 12:00 UTC is 2 November 01:00 in Auckland: the day the episode opened.
    book_appointment(db_session, episode, dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC))
    with pytest.raises(BookingError, match="before the episode opened"):
        book_appointment(db_session, episode, dt.datetime(2026, 11, 1, 10, tzinfo=dt.UTC))


def test_the_api_refuses_with_422_and_points_at_starts_at(api, db_session, setup):
    therapist, person, _ = setup
    caller = api(therapist, scopes=["read", "write"])
    response = caller.post(f"/api/v1/clients/{person.code}/appointments",
                           json={"starts_at": "2026-10-05T10:00:00Z"})
    assert response.status_code == 422
    body = response.get_json()
    assert "before the episode opened" in body["detail"]
    assert body["errors"][0]["pointer"] == "#/starts_at"
    past = caller.post(f"/api/v1/clients/{person.code}/appointments",
                       json={"starts_at": "2026-11-16T08:00:00Z"})
    assert past.status_code == 422 and "in the past" in past.get_json()["detail"]
    assert _count(db_session) == 0


# --- what became of a session -----------------------------------------------------------------


def test_numbers_count_held_and_booked_sessions_only(db_session, setup):
    _, _, episode = setup
    series = book_weekly_series(db_session, episode, dt.datetime(2026, 11, 16, 10), count=5)
    now = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)  # after the third
    record_outcome(db_session, series[0], "attended", now)
    record_outcome(db_session, series[1], "no_show", now)
    record_outcome(db_session, series[2], "attended", now)
    record_outcome(db_session, series[3], "late_cancelled", now)
    numbers = appointment_numbers(db_session, episode.id)
    assert [numbers.get(a.id) for a in series] == [1, None, 2, None, 3]
    with pytest.raises(BookingError, match="not begun yet"):
        record_outcome(db_session, series[4], "attended", now)
    with pytest.raises(BookingError, match="Unknown status"):
        record_outcome(db_session, series[4], "scheduled", now)


def test_cancelling_revokes_its_link_and_withdraws_unsent_mail(db_session, setup):
    _, _, episode = setup
    appointment = book_appointment(db_session, episode, NOW + dt.timedelta(days=1))
    other = book_appointment(db_session, episode, NOW + dt.timedelta(days=8))
    link, _ = issue_link(db_session, episode=episode, purpose="pre", now=NOW, library=LIB,
                         appointment=appointment)
    keep, _ = issue_link(db_session, episode=episode, purpose="pre", now=NOW, library=LIB,
                         appointment=other)
    for key in (f"link:{appointment.id}:pre", f"link:{other.id}:pre"):
        queue_email(db_session, clinic_id=episode.clinic_id, kind="link", dedupe_key=key,
                    to_address="rowan@example.org", subject="s", body="b", now=NOW)
    cancel_appointment(db_session, appointment, NOW)
    assert appointment.status == "cancelled" and link.revoked_dt == NOW
    assert keep.revoked_dt is None
    assert db_session.scalars(select(OutboundEmail.dedupe_key)).all() == [
        f"link:{other.id}:pre"]
    with pytest.raises(BookingError, match="Only a scheduled"):
        cancel_appointment(db_session, appointment, NOW)


def test_moving_moves_the_link_window_and_refuses_the_past(db_session, setup):
    _, _, episode = setup
    appointment = book_appointment(db_session, episode, NOW + dt.timedelta(days=1))
    link, _ = issue_link(db_session, episode=episode, purpose="pre", now=NOW, library=LIB,
                         appointment=appointment)
    queue_email(db_session, clinic_id=episode.clinic_id, kind="link",
                dedupe_key=f"link:{appointment.id}:pre", to_address="rowan@example.org",
                subject="s", body="b", now=NOW)
    opens, closes = link.valid_from_dt, link.valid_until_dt
    reschedule_appointment(db_session, appointment, NOW + dt.timedelta(days=3), NOW)
    assert appointment.starts_dt == NOW + dt.timedelta(days=3)
    assert (link.valid_from_dt, link.valid_until_dt) == (opens + dt.timedelta(days=2),
                                                        closes + dt.timedelta(days=2))
    assert link.revoked_dt is None
    assert db_session.scalar(select(func.count()).select_from(OutboundEmail)) == 0
    with pytest.raises(BookingError, match="in the past"):
        reschedule_appointment(db_session, appointment, NOW - dt.timedelta(days=1), NOW)
    assert appointment.starts_dt == NOW + dt.timedelta(days=3)


def test_cancelling_the_rest_of_a_series(db_session, setup):
    _, _, episode = setup
    series = book_weekly_series(db_session, episode, dt.datetime(2026, 11, 17, 10), count=4)
    alone = book_appointment(db_session, episode, dt.datetime(2026, 11, 19, 10,
                                                               tzinfo=dt.UTC))
    assert {a.series_id for a in series} == {series[0].id} and alone.series_id is None
    cancelled = cancel_rest_of_series(db_session, series[1], NOW)
    assert cancelled == series[1:]
    assert [a.status for a in series] == ["scheduled"] + ["cancelled"] * 3
    assert alone.status == "scheduled"


def test_history_is_paged_newest_first_with_measures(db_session, setup):
    _, person, episode = setup
    series = book_weekly_series(db_session, episode, dt.datetime(2026, 11, 17, 10), count=25)
    first = session_history(db_session, person.id)
    assert (first.page, first.pages, first.total, len(first.rows)) == (1, 2, 25, 20)
    assert first.rows[0].appointment.id == series[-1].id
    assert first.rows[0].number == 25 and first.rows[0].is_expected
    last = session_history(db_session, person.id, page=9)  # clamped
    assert last.page == 2 and len(last.rows) == 5 and last.rows[-1].measures == 0


# --- the pages ---------------------------------------------------------------------------


def test_a_therapist_cancels_after_confirming(auth, client, db_session, setup):
    therapist, person, episode = setup
    appointment = book_appointment(db_session, episode, NOW + dt.timedelta(days=1))
    db_session.commit()
    auth.login(therapist.email)
    manage = f"/clients/{person.code}/sessions/{appointment.id}"
    page = client.get(manage).get_data(as_text=True)
    assert "expected 1" in page and "Cancel this appointment" in page
    confirm = client.get(f"{manage}/cancel")
    assert confirm.status_code == 200
    assert "Cancel this appointment?" in confirm.get_data(as_text=True)
    # Without the confirmation field the POST only asks again.
    asked = client.post(f"{manage}/cancel", data=_form(client, f"{manage}/cancel"))
    assert asked.status_code == 200
    db_session.refresh(appointment)
    assert appointment.status == "scheduled"
    done = client.post(f"{manage}/cancel", data=_form(client, f"{manage}/cancel",
                                                      confirm="yes"))
    assert done.status_code == 303
    db_session.refresh(appointment)
    assert appointment.status == "cancelled"
    actions = db_session.scalars(select(AuditEvent.action).where(
        AuditEvent.action.like("appointment.%"))).all()
    assert "appointment.cancel" in actions


def test_marking_moving_and_the_series_from_the_pages(auth, client, db_session, setup):
    therapist, person, episode = setup
    # The first of the series was a week ago (booked then); the second is in an hour.
    series = book_weekly_series(db_session, episode, dt.datetime(2026, 11, 9, 10), count=3)
    db_session.commit()
    auth.login(therapist.email)
    second = f"/clients/{person.code}/sessions/{series[1].id}"
    early = client.post(f"{second}/status", data=_form(client, second, status="attended"),
                        follow_redirects=True)
    assert "has not begun yet" in early.get_data(as_text=True)
    manage = f"/clients/{person.code}/sessions/{series[0].id}"
    assert "1, not marked yet" in client.get(manage).get_data(as_text=True)
    client.post(f"{manage}/status", data=_form(client, manage, status="attended"))
    db_session.refresh(series[0])
    assert series[0].status == "attended"
    moved = client.post(f"{second}/reschedule", data=_form(
        client, second, date="2026-11-17", time="15:30"), follow_redirects=True)
    assert "The appointment was moved." in moved.get_data(as_text=True)
    db_session.refresh(series[1])
    assert series[1].starts_dt == dt.datetime(2026, 11, 17, 15, 30, tzinfo=dt.UTC)
    bad = client.post(f"{second}/reschedule", data=_form(
        client, second, date="2026-10-01", time="10:00"), follow_redirects=True)
    assert "before the episode opened" in bad.get_data(as_text=True)
    confirm = client.get(f"{second}/cancel-series").get_data(as_text=True)
    assert "2 appointments will be cancelled" in confirm
    client.post(f"{second}/cancel-series", data=_form(client, f"{second}/cancel-series",
                                                      confirm="yes"))
    for one in series:
        db_session.refresh(one)
    assert [a.status for a in series] == ["attended", "cancelled", "cancelled"]
    history = client.get(f"/clients/{person.code}/sessions").get_data(as_text=True)
    assert history.count("cancelled") >= 2 and "none answered" in history


@pytest.mark.parametrize("path", ["/sessions", "/sessions/{id}", "/sessions/{id}/cancel"])
def test_only_the_own_therapist(auth, client, db_session, make_user, setup, path):
    _, person, episode = setup
    appointment = book_appointment(db_session, episode, NOW + dt.timedelta(days=1))
    other = make_user()
    db_session.commit()
    auth.login(other.email)
    url = f"/clients/{person.code}" + path.format(id=appointment.id)
    assert client.get(url).status_code == 404


def test_bad_input_is_a_clear_4xx(auth, client, db_session, setup):
    therapist, person, episode = setup
    appointment = book_appointment(db_session, episode, NOW + dt.timedelta(days=1))
    db_session.commit()
    auth.login(therapist.email)
    assert client.get(f"/clients/{person.code}/sessions?page=x").status_code == 400
    assert client.get(f"/clients/{person.code}/sessions?page=0").status_code == 400
    manage = f"/clients/{person.code}/sessions/{appointment.id}"
    odd = client.post(f"{manage}/status", data=_form(client, manage, status="nonsense"),
                      follow_redirects=True)
    assert odd.status_code == 200 and "Unknown status" in odd.get_data(as_text=True)
    junk = client.post(f"{manage}/reschedule", data=_form(client, manage, date="soon"),
                       follow_redirects=True)
    assert "Please give a date and a time." in junk.get_data(as_text=True)
    db_session.refresh(appointment)
    assert appointment.status == "scheduled"
    assert db_session.scalar(select(func.count()).select_from(QuestionnaireLink)) == 0


def test_russian_pages_say_it_in_russian(auth, client, db_session, setup):
    therapist, person, episode = setup
    appointment = book_appointment(db_session, episode, NOW + dt.timedelta(days=1))
    db_session.commit()
    auth.login(therapist.email)
    manage = f"/clients/{person.code}/sessions/{appointment.id}"
    for path in (manage, f"{manage}/cancel", f"/clients/{person.code}/sessions",
                 f"/clients/{person.code}/care"):
        page = client.get(path, headers={"Accept-Language": "ru"}).get_data(as_text=True)
        main = page[page.index('<main id="main">'):]
        visible = re.sub(r"<[^>]+>", " ", main)
        visible = visible.replace(person.name, "").replace(person.code, "")
        words = set(re.findall(r"[A-Za-z]{3,}", visible)) - {"UTC", "QR"}
        assert not words, (path, words)
    refused = client.post(f"/clients/{person.code}/appointments", data=_form(
        client, f"/clients/{person.code}/care", date="2026-10-05", time="10:00", weekly="1"),
        headers={"Accept-Language": "ru"}, follow_redirects=True).get_data(as_text=True)
    assert "до начала эпизода" in refused


# --- every consumer of the session number agrees ---------------------------------------------


def test_outcomes_recorded_on_the_pages_renumber_every_consumer_alike(
        auth, client, db_session, make_user, make_client, make_episode, api):
    """Ten weekly appointments; the 3rd cancelled late and the 6th missed, recorded
    through the service: the eight held sessions are 1 to 8 on the caseload, the client
    record's chart, the API and the history page."""
    from outcome.core.answers import parse_answers
    from outcome.services.caseload import caseload
    from outcome.services.client_record import client_record
    from outcome.services.submissions import submit_administration

    gad = LIB.get("gad7")
    first = dt.datetime(2026, 6, 1, 9, tzinfo=dt.UTC)
    therapist = make_user()
    person = make_client(therapist, name="Ten Appointments")
    episode = make_episode(person, opened_on=first.date())
    series = book_weekly_series(db_session, episode, dt.datetime(2026, 6, 1, 9), count=10)
    done = first + dt.timedelta(weeks=12)
    for k, appointment in enumerate(series):
        status = {2: "late_cancelled", 5: "no_show"}.get(k, "attended")
        record_outcome(db_session, appointment, status, done)
        if status == "attended":
            values = {f"gad7_{i}": 1 for i in range(1, 8)}
            completed = appointment.starts_dt - dt.timedelta(hours=1)
            submit_administration(db_session, episode=episode, instrument=gad,
                                  answers=parse_answers(gad, values), completed_dt=completed,
                                  idempotency_key=f"gad:{k}", library=LIB, now=completed,
                                  appointment_id=appointment.id)
    db_session.commit()
    held = [1, 2, None, 3, 4, None, 5, 6, 7, 8]
    numbers = appointment_numbers(db_session, episode.id)
    assert [numbers.get(a.id) for a in series] == held

    [row] = caseload(db_session, therapist, now=done, library=LIB)
    assert row.session == 8
    record = client_record(db_session, episode, LIB, full=True)
    [chart] = record.outcome_charts
    assert [r[0] for r in chart.rows] == [1, 2, 3, 4, 5, 6, 7, 8]

    listed = api(therapist, scopes=["read"]).get(
        f"/api/v1/clients/{person.code}/appointments").get_json()["items"]
    by_id = {item["id"]: item["session_number"] for item in listed}
    assert [by_id[a.id] for a in series] == held

    history = session_history(db_session, person.id)
    assert [r.number for r in reversed(history.rows)] == held
    assert [r.measures for r in reversed(history.rows)] == [1 if n else 0 for n in held]
    auth.login(therapist.email)
    page = client.get(f"/clients/{person.code}/sessions").get_data(as_text=True)
    assert "1 answered" in page and "cancelled late" in page and "did not attend" in page


# --- migration 0014 ----------------------------------------------------------------------


def test_migration_0014_keeps_the_data_and_the_check(fresh_database_url):
    from sqlalchemy import exc as sa_exc
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    from outcome import schema
    from outcome.db import make_engine
    from outcome.models import Client
    from outcome.models import Clinic
    from outcome.models import Episode
    from outcome.models import User

    engine = make_engine(fresh_database_url)
    schema.upgrade(engine)
    with Session(engine) as store:
        clinic = Clinic(slug="m16", name="M16")
        store.add(clinic)
        store.flush()
        user = User(clinic_id=clinic.id, email="t@m16.example", display_name="T",
                    is_therapist=True)
        store.add(user)
        store.flush()
        person = Client(clinic_id=clinic.id, code="C-M16M16", name="P", therapist_id=user.id)
        store.add(person)
        store.flush()
        episode = Episode(clinic_id=clinic.id, client_id=person.id, therapist_id=user.id,
                          opened_on=dt.date(2026, 11, 2))
        store.add(episode)
        store.flush()
        for status in ("late_cancelled", "no_show"):
            store.add(Appointment(episode_id=episode.id, status=status, series_id=None,
                                  starts_dt=NOW + dt.timedelta(days=len(status))))
        store.commit()
    schema.downgrade(engine, "0013")
    with engine.connect() as connection:
        assert sorted(connection.scalars(text("SELECT status FROM appointments"))) == [
            "cancelled", "no_show"]
    schema.upgrade(engine)
    with engine.begin() as connection, pytest.raises(sa_exc.IntegrityError):
        connection.execute(text("UPDATE appointments SET status = 'maybe'"))
    engine.dispose()


def test_a_moved_appointment_is_e_mailed_again_for_its_new_time(db_session, setup):
    from outcome.services.reminders import send_due_links

    _, _, episode = setup
    appointment = book_appointment(db_session, episode, NOW + dt.timedelta(hours=20))
    queue = {"library": LIB, "base_url": "https://clinic.example", "secret_key": "k" * 40}
    assert send_due_links(db_session, now=NOW, **queue) == 1
    [old] = db_session.scalars(select(OutboundEmail)).all()
    assert "16 November" not in old.body_text and "17 November" in old.body_text
    reschedule_appointment(db_session, appointment, NOW + dt.timedelta(days=3, hours=1), NOW)
    assert db_session.scalars(select(OutboundEmail)).all() == []
    later = NOW + dt.timedelta(days=2, hours=5)  # 20 hours before the new time
    assert send_due_links(db_session, now=later, **queue) == 1
    [new] = db_session.scalars(select(OutboundEmail)).all()
    assert "19 November at 10:00" in new.body_text
    cancel_appointment(db_session, appointment, later)
    assert db_session.scalars(select(OutboundEmail)).all() == []
    assert all(link.revoked_dt is not None or link.used_dt is not None
               for link in db_session.scalars(select(QuestionnaireLink)))


def test_ending_the_episode_withdraws_the_link_e_mails_of_cancelled_sessions(db_session,
                                                                          setup):
    # A link e-mail queued for a session that ending the episode cancels would reach the
    # client after discharge, with a link that no longer opens.
    from outcome.services.clients import close_episode
    from outcome.services.reminders import send_due_links

    _, _, episode = setup
    book_appointment(db_session, episode, NOW + dt.timedelta(hours=20))
    queue = {"library": LIB, "base_url": "https://clinic.example", "secret_key": "k" * 40}
    assert send_due_links(db_session, now=NOW, **queue) == 1
    assert len(db_session.scalars(select(OutboundEmail)).all()) == 1
    close_episode(db_session, episode, end_reason="completed", closed_on=NOW.date(),
                  library=LIB, now=NOW)
    assert db_session.scalars(select(OutboundEmail)).all() == []
    assert all(link.revoked_dt is not None
               for link in db_session.scalars(select(QuestionnaireLink)))
