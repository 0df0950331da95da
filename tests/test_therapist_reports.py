"""The therapist's scheduled reports (issue 18): when they are due, produced exactly once
(across clock changes, scheduler outages and concurrent schedulers), the users' choices,
and the notice e-mail that carries no clinical content.

The report contents belong to their own modules; here a fake renderer (a one-page PDF
naming the period and its "as of" time) stands in for them.
"""

from __future__ import annotations

import datetime as dt
import io
import threading
import zoneinfo

import pytest
from pypdf import PdfReader
from reportlab.pdfgen import canvas
from sqlalchemy import func
from sqlalchemy import select

from outcome import schema
from outcome.db import make_engine
from outcome.db import make_session_factory
from outcome.db import transaction
from outcome.models import Appointment
from outcome.models import Client
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import OutboundEmail
from outcome.models import ReportDocument
from outcome.models import ReportPreference
from outcome.models import ReportRun
from outcome.models import User
from outcome.services.therapist_reports.preferences import BRIEF_KIND
from outcome.services.therapist_reports.preferences import WEEKLY_KIND
from outcome.services.therapist_reports.production import run_due_reports
from outcome.services.therapist_reports.schedule import ScheduleError
from outcome.services.therapist_reports.schedule import due_weeklies
from outcome.services.therapist_reports.schedule import on_demand
from questionnaires.loader import builtin_library

LIB = builtin_library()
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
BASE = "https://outcome.example"


def fake_pdf(session, therapist, period, library, now) -> bytes:
    """A stand-in renderer: a small valid PDF naming the period and its "as of" time."""
    out = io.BytesIO()
    page = canvas.Canvas(out, invariant=1)
    page.drawString(72, 720, f"Report {period} as of {now:%Y-%m-%d %H:%M} UTC")
    page.save()
    return out.getvalue()


def pdf_text(content: bytes) -> str:
    return " ".join(p.extract_text() for p in PdfReader(io.BytesIO(content)).pages)


def local(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    """A Berlin wall-clock time as UTC."""
    return dt.datetime.combine(day, dt.time(hour, minute), BERLIN).astimezone(dt.UTC)


# Client names, codes and goal words that must never appear in any e-mail.
CLIENT_NAMES = {"t1": "Ottilie Canarybird", "t2": "Wendelin Nightjar"}


@pytest.fixture
def practice(fresh_database_url):
    """A committed Berlin clinic: therapists t1 and t2 with a client each, and
    appointments at 10:00 local on working days (Monday to Friday) from 16 March to
    10 April 2026 and from 12 to 30 October 2026; t2 has none on Wednesdays and a
    cancelled one on 24 March (a Tuesday: no brief for t2 that day). A supervisor too
    (no briefs for supervisors)."""
    engine = make_engine(fresh_database_url)
    schema.upgrade(engine)
    factory = make_session_factory(engine)
    created = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
    with transaction(factory) as session:
        clinic = Clinic(slug="berlin", name="Praxis Berlin", timezone="Europe/Berlin")
        session.add(clinic)
        session.flush()
        people = {n: User(clinic_id=clinic.id, email=f"{n}@berlin.example.org",
                          display_name=f"Therapist {n.upper()}", is_therapist=n != "sup",
                          is_supervisor=n == "sup", created_dt=created)
                  for n in ("t1", "t2", "sup")}
        session.add_all(people.values())
        session.flush()
        days = [dt.date(2026, 3, 16) + dt.timedelta(days=n) for n in range(26)]
        days += [dt.date(2026, 10, 12) + dt.timedelta(days=n) for n in range(19)]
        for key in ("t1", "t2"):
            person = Client(clinic_id=clinic.id, therapist_id=people[key].id,
                            code=f"C-{key.upper()}QRST", name=CLIENT_NAMES[key],
                            email=f"{key}-client@example.org")
            session.add(person)
            session.flush()
            episode = Episode(clinic_id=clinic.id, client_id=person.id,
                              therapist_id=people[key].id, opened_on=dt.date(2026, 1, 5))
            session.add(episode)
            session.flush()
            for day in days:
                if day.weekday() >= 5 or (key == "t2" and day.weekday() == 2):
                    continue
                status = ("cancelled" if key == "t2" and day == dt.date(2026, 3, 24)
                          else "scheduled")
                session.add(Appointment(episode_id=episode.id, starts_dt=local(day, 10),
                                        status=status))
        ids = {k: u.id for k, u in people.items()}
    yield factory, ids
    engine.dispose()


def counts(factory, kind: str = BRIEF_KIND) -> tuple[int, int, int]:
    with transaction(factory) as session:
        return (session.scalar(select(func.count()).select_from(ReportRun)
                               .where(ReportRun.kind == kind)),
                session.scalar(select(func.count()).select_from(ReportDocument)
                               .join(ReportRun).where(ReportRun.kind == kind)),
                session.scalar(select(func.count()).select_from(OutboundEmail)
                               .where(OutboundEmail.kind == "therapist_report")))


def ticks(first: dt.date, days: int):
    """Every 15 minutes (UTC) from midnight UTC of ``first`` for ``days`` days: what the
    scheduler's 15-minute job sees."""
    moment = dt.datetime.combine(first, dt.time(), dt.UTC)
    for _ in range(days * 96):
        yield moment
        moment += dt.timedelta(minutes=15)


@pytest.mark.parametrize(("first", "days"), [
    (dt.date(2026, 3, 23), 14),  # clocks go forward on Sunday 29 March (CET -> CEST)
    (dt.date(2026, 10, 19), 14),  # and back on Sunday 25 October (CEST -> CET)
], ids=["spring", "autumn"])
def test_one_brief_per_therapist_per_working_day_at_seven_local(practice, first, days):
    factory, ids = practice
    produced: list[tuple[int, str, dt.datetime]] = []
    for moment in ticks(first, days):
        for result in run_due_reports(factory, LIB, moment, BRIEF_KIND, base_url=BASE,
                                      render=fake_pdf):
            assert result.status in ("succeeded", "skipped")
            if result.status == "succeeded":
                produced.append((result.recipient_id, result.period, moment))
    working = [first + dt.timedelta(days=n) for n in range(days)
               if (first + dt.timedelta(days=n)).weekday() < 5]
    expected = {(ids["t1"], d.isoformat()) for d in working}
    expected |= {(ids["t2"], d.isoformat()) for d in working
                 if d.weekday() != 2 and d != dt.date(2026, 3, 24)}
    assert sorted((r, p) for r, p, _ in produced) == sorted(expected)  # each exactly once
    for _recipient, period, moment in produced:
        at = moment.astimezone(BERLIN)
        assert at.date().isoformat() == period and (at.hour, at.minute) == (7, 0), at
    assert counts(factory) == (len(expected),) * 3


def test_no_brief_on_a_day_without_appointments(practice):
    factory, ids = practice
    wednesday = dt.date(2026, 3, 25)
    results = run_due_reports(factory, LIB, local(wednesday, 8), BRIEF_KIND, base_url=BASE,
                              render=fake_pdf)
    assert [(r.recipient_id, r.period) for r in results] == [(ids["t1"], "2026-03-25")]
    saturday = dt.date(2026, 3, 28)
    assert run_due_reports(factory, LIB, local(saturday, 12), BRIEF_KIND, base_url=BASE,
                           render=fake_pdf) == []


def test_an_outage_catches_up_within_the_day_and_never_across_days(practice):
    factory, ids = practice
    monday, tuesday = dt.date(2026, 3, 30), dt.date(2026, 3, 31)
    assert run_due_reports(factory, LIB, local(monday, 6, 45), BRIEF_KIND, base_url=BASE,
                           render=fake_pdf) == []  # not yet 07:00
    # The scheduler was down from 06:45 to 15:30: the briefs come at 15:30, once.
    late = run_due_reports(factory, LIB, local(monday, 15, 30), BRIEF_KIND, base_url=BASE,
                           render=fake_pdf)
    assert sorted((r.recipient_id, r.period, r.status) for r in late) == [
        (ids["t1"], "2026-03-30", "succeeded"), (ids["t2"], "2026-03-30", "succeeded")]
    # Down again from Monday evening to Wednesday 08:00: Tuesday's briefs are never
    # produced (a day gone by), Wednesday's is.
    wednesday = run_due_reports(factory, LIB, local(tuesday + dt.timedelta(days=1), 8),
                                BRIEF_KIND, base_url=BASE, render=fake_pdf)
    assert [(r.recipient_id, r.period) for r in wednesday] == [(ids["t1"], "2026-04-01")]
    with transaction(factory) as session:
        periods = session.scalars(select(ReportRun.period).where(
            ReportRun.kind == BRIEF_KIND)).all()
    assert "2026-03-31" not in periods
    # Just before local midnight the day's brief still comes; just after, the next day's.
    thursday = dt.date(2026, 4, 2)
    assert len(run_due_reports(factory, LIB, local(thursday, 23, 59), BRIEF_KIND,
                               base_url=BASE, render=fake_pdf)) == 2
    assert counts(factory) == (5, 5, 5)


def test_three_schedulers_on_postgresql_give_exactly_one_of_each(practice, request):
    if request.config.getoption("--db") != "postgresql":
        pytest.skip("several writers at once: the PostgreSQL run covers it")
    factory, ids = practice
    now = local(dt.date(2026, 3, 30), 7, 15)  # Monday: both briefs and both weeklies due
    barrier = threading.Barrier(3)
    results: list = []

    def scheduler():
        barrier.wait()
        for kind in (BRIEF_KIND, WEEKLY_KIND):
            results.append(run_due_reports(factory, LIB, now, kind, base_url=BASE,
                                           render=fake_pdf))

    threads = [threading.Thread(target=scheduler) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 6
    produced = sorted((r.recipient_id, r.period) for batch in results for r in batch
                      if r.status == "succeeded")
    assert produced == sorted([(ids["t1"], "2026-03-30"), (ids["t2"], "2026-03-30"),
                               (ids["t1"], "2026-W13"), (ids["t2"], "2026-W13")])
    assert not [r for batch in results for r in batch if r.status == "failed"]
    with transaction(factory) as session:
        assert session.scalar(select(func.count()).select_from(ReportRun)) == 4
        assert session.scalar(select(func.count()).select_from(ReportDocument)) == 4
        assert session.scalar(select(func.count()).select_from(OutboundEmail)) == 4


def test_weekly_report_due_after_the_chosen_day_for_the_week_just_ended(practice):
    factory, ids = practice
    monday = dt.date(2026, 3, 30)  # Monday of 2026-W14, after the clocks went forward
    with transaction(factory) as session:
        assert due_weeklies(session, local(monday, 6, 59)) == []
        due = due_weeklies(session, local(monday, 7))
        assert sorted((t.id, w) for t, w in due) == [(ids["t1"], "2026-W13"),
                                                     (ids["t2"], "2026-W13")]
        # Catch-up only for that week: on Sunday it is still W13, never W12.
        assert {w for _, w in due_weeklies(session, local(monday + dt.timedelta(days=6),
                                                           23))} == {"2026-W13"}
        # A clinic that chose Wednesday 18:00.
        clinic = session.scalar(select(Clinic))
        clinic.settings = {"weekly_report_weekday": 2, "weekly_report_time": "18:00"}
        assert due_weeklies(session, local(monday + dt.timedelta(days=2), 17, 59)) == []
        assert len(due_weeklies(session, local(monday + dt.timedelta(days=2), 18))) == 2
        # No report for a week before the account existed.
        t2 = session.get(User, ids["t2"])
        t2.created_dt = local(monday, 5)
        assert [t.id for t, _ in due_weeklies(session, local(monday + dt.timedelta(
            days=2), 18))] == [ids["t1"]]
        session.rollback()
    results = run_due_reports(factory, LIB, local(monday, 9), WEEKLY_KIND, base_url=BASE,
                              render=fake_pdf)
    assert {r.status for r in results} == {"succeeded"} and len(results) == 2
    # Produced: the job's next runs leave them out (and by hand they are "skipped").
    assert run_due_reports(factory, LIB, local(monday, 10), WEEKLY_KIND, base_url=BASE,
                           render=fake_pdf) == []
    assert {r.status for r in run_due_reports(factory, LIB, local(monday, 10), WEEKLY_KIND,
                                              base_url=BASE, render=fake_pdf,
                                              only=(None, "2026-W13"))} == {"skipped"}


def test_no_brief_for_a_day_before_the_account_existed(practice):
    factory, ids = practice
    monday = dt.date(2026, 3, 30)
    with transaction(factory) as session:
        session.get(User, ids["t2"]).created_dt = local(monday + dt.timedelta(days=1), 9)
    results = run_due_reports(factory, LIB, local(monday, 8), BRIEF_KIND, base_url=BASE,
                              render=fake_pdf)
    assert [r.recipient_id for r in results] == [ids["t1"]]


def test_preferences_off_email_off_and_another_time_are_honoured(practice):
    factory, ids = practice
    monday = dt.date(2026, 3, 30)
    with transaction(factory) as session:
        session.add_all([
            ReportPreference(user_id=ids["t1"], kind=BRIEF_KIND, is_enabled=False),
            ReportPreference(user_id=ids["t2"], kind=BRIEF_KIND, is_emailed=False,
                             time="09:30"),
            ReportPreference(user_id=ids["t1"], kind=WEEKLY_KIND, weekday=0, time="06:00")])
    assert run_due_reports(factory, LIB, local(monday, 9, 15), BRIEF_KIND, base_url=BASE,
                           render=fake_pdf) == []  # t1 off; t2 at 09:30
    results = run_due_reports(factory, LIB, local(monday, 9, 30), BRIEF_KIND,
                              base_url=BASE, render=fake_pdf)
    assert [(r.recipient_id, r.status) for r in results] == [(ids["t2"], "succeeded")]
    assert counts(factory) == (1, 1, 0)  # produced and archived; no notice
    weekly = run_due_reports(factory, LIB, local(monday, 6), WEEKLY_KIND, base_url=BASE,
                             render=fake_pdf)
    assert [r.recipient_id for r in weekly] == [ids["t1"]]  # t2 still on the clinic's 07:00


def test_a_failed_report_is_recorded_and_retried(practice):
    factory, _ids = practice
    now = local(dt.date(2026, 3, 30), 7)
    calls = []

    def flaky(session, therapist, period, library, moment):
        calls.append(therapist.id)
        if len(calls) == 1:
            raise RuntimeError("renderer crashed")
        return fake_pdf(session, therapist, period, library, moment)

    first = run_due_reports(factory, LIB, now, BRIEF_KIND, base_url=BASE, render=flaky)
    assert [r.status for r in first] == ["failed", "succeeded"]
    assert first[0].error == "RuntimeError: renderer crashed"
    retried = run_due_reports(factory, LIB, now + dt.timedelta(minutes=5), BRIEF_KIND,
                              base_url=BASE, render=flaky)
    # Only the failed one is tried again; the produced one is left out.
    assert [(r.recipient_id, r.status) for r in retried] == [
        (first[0].recipient_id, "succeeded")]
    assert counts(factory) == (2, 2, 2)


def test_by_hand_checks_the_period(practice):
    factory, ids = practice
    now = local(dt.date(2026, 3, 30), 8)
    with transaction(factory) as session:
        with pytest.raises(ScheduleError, match="not a date"):
            on_demand(session, BRIEF_KIND, "30.03.2026", now)
        with pytest.raises(ScheduleError, match="in the future"):
            on_demand(session, BRIEF_KIND, "2026-03-31", now)
        with pytest.raises(ScheduleError, match="not an ISO week"):
            on_demand(session, WEEKLY_KIND, "W13", now)
        with pytest.raises(ScheduleError, match="has not ended yet"):
            on_demand(session, WEEKLY_KIND, "2026-W14", now)
        # An old day by hand: allowed (the scheduler never does it).
        assert [t.id for t, _ in on_demand(session, BRIEF_KIND, "2026-03-24", now)] == [
            ids["t1"]]
        # Never for a period before the account existed.
        session.get(User, ids["t1"]).created_dt = local(dt.date(2026, 3, 25), 9)
        assert on_demand(session, BRIEF_KIND, "2026-03-24", now) == []
        assert [t.id for t, _ in on_demand(session, WEEKLY_KIND, "2026-W13", now)] == [
            ids["t1"], ids["t2"]]
        assert [t.id for t, _ in on_demand(session, WEEKLY_KIND, "2026-W12", now)] == [
            ids["t2"]]
        session.rollback()


def test_the_notice_names_no_client_and_is_in_the_therapists_language(practice):
    factory, ids = practice
    with transaction(factory) as session:
        session.get(User, ids["t2"]).locale = "ru"
    run_due_reports(factory, LIB, local(dt.date(2026, 3, 30), 8),
                    BRIEF_KIND, base_url=BASE, render=fake_pdf)
    with transaction(factory) as session:
        mails = {m.to_address: m for m in session.scalars(select(OutboundEmail))}
        runs = {r.recipient_user_id: r for r in session.scalars(select(ReportRun))}
    english = mails["t1@berlin.example.org"]
    assert english.subject == "Your pre-session brief for Monday 30 March is ready"
    assert f"{BASE}/reports/{runs[ids['t1']].id}.pdf" in english.body_text
    russian = mails["t2@berlin.example.org"]
    assert "понедельник 30 марта" in russian.subject
    for mail in mails.values():
        text = mail.subject + mail.body_text
        for secret in (*CLIENT_NAMES.values(), "C-T1QRST", "C-T2QRST", "PHQ", "score"):
            assert secret not in text


def test_the_real_renderers_produce_a_brief_and_a_weekly_report(practice):
    """With the real contents: the job's default renderers give the brief and the weekly
    report, archived, each naming the therapist's own client and no other."""
    factory, ids = practice
    monday = dt.date(2026, 3, 30)
    results = [r for kind in (BRIEF_KIND, WEEKLY_KIND)
               for r in run_due_reports(factory, LIB, local(monday, 8), kind, base_url=BASE,
                                        only=(ids["t1"], None))]
    assert [(r.period, r.status) for r in results] == [("2026-03-30", "succeeded"),
                                                       ("2026-W13", "succeeded")]
    with transaction(factory) as session:
        texts = {run.kind: pdf_text(document.content) for run, document in session.execute(
            select(ReportRun, ReportDocument).join(ReportDocument))}
    assert "Pre-session brief" in texts[BRIEF_KIND]
    assert "Weekly caseload report" in texts[WEEKLY_KIND]
    for text in texts.values():
        assert CLIENT_NAMES["t1"] in text and CLIENT_NAMES["t2"] not in text
