"""The weekly digest: its figures, and exactly-once production with catch-up."""

from __future__ import annotations

import datetime as dt
import io
import threading

import pytest
from pypdf import PdfReader
from sqlalchemy import func
from sqlalchemy import select

from outcome import schema
from outcome.db import make_engine
from outcome.db import make_session_factory
from outcome.db import transaction
from outcome.models import Alert
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import OutboundEmail
from outcome.models import ReportDocument
from outcome.models import ReportRun
from outcome.models import SupervisorAssignment
from outcome.models import User
from outcome.services.alerts import acknowledge_alert
from outcome.services.digests.figures import DigestError
from outcome.services.digests.figures import build_digest
from outcome.services.digests.figures import due_weeks
from outcome.services.digests.figures import week_bounds
from outcome.services.digests.production import run_due_digests
from outcome.services.report_runs import claim
from outcome.services.support import record_plan
from questionnaires.loader import builtin_library
from tests.conftest import TEAM_CLIENT_NAME as NAME

LIB = builtin_library()


def fake_pdf(digest) -> bytes:
    """A stand-in renderer: the digest's words, so tests can read what went in."""
    return repr(digest).encode()


def test_week_bounds_follow_the_clinic_time_zone():
    monday, start, end = week_bounds("2026-W44", "Europe/London")
    # 26 October 2026 is after the clocks went back: London is UTC+0 again.
    assert monday == dt.date(2026, 10, 26)
    assert start == dt.datetime(2026, 10, 26, 0, tzinfo=dt.UTC)
    assert end - start == dt.timedelta(days=7)
    _, start, _ = week_bounds("2026-W43", "Europe/London")
    assert start == dt.datetime(2026, 10, 18, 23, tzinfo=dt.UTC)  # BST
    with pytest.raises(DigestError, match="not an ISO week"):
        week_bounds("week 47", "UTC")


def test_due_weeks_wait_for_the_digest_day_and_catch_up():
    clinic = Clinic(slug="c", name="C", timezone="UTC")
    settings = {"digest_weekday": 0, "digest_time": "07:00"}
    monday = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)  # Monday of 2026-W48
    assert due_weeks(None, clinic, monday + dt.timedelta(hours=6), settings, 1) == []
    assert due_weeks(None, clinic, monday + dt.timedelta(hours=7), settings, 1) == [
        "2026-W47"]
    assert due_weeks(None, clinic, monday + dt.timedelta(hours=7), settings, 3) == [
        "2026-W45", "2026-W46", "2026-W47"]


def test_digest_figures_codes_and_attention(db_session, team, clock):
    week = "2026-W47"  # the team's clock is in this week; produce it the week after
    now = week_bounds(week, "UTC")[2] + dt.timedelta(days=1)
    # The latest acknowledgement note is shown: a critical answer's (issue 19: a red
    # client's alert is resolved by an action plan, not a note).
    red = db_session.scalar(select(Alert).where(Alert.kind == "not_on_track"))
    alert = Alert(episode_id=red.episode_id, kind="critical_item", status="open",
                  raised_dt=clock() - dt.timedelta(hours=1), detail={"triggers": []})
    db_session.add(alert)
    db_session.flush()
    acknowledge_alert(db_session, alert, team["a"], "Reviewed goals together", clock(), LIB)
    digest = build_digest(db_session, team["s"], week, LIB, now)
    text = repr(digest)
    assert NAME not in text and "Hidden Client" not in text and team["hidden"].code not in text
    assert [s.therapist_name for s in digest.sections] == ["Alex Therapist", "Bea Therapist"]
    alex = digest.sections[0]
    assert alex.week.colours["red"] == 1 and alex.week.active_episodes == 1
    codes = [item.code for item in alex.attention]
    assert codes == [team["red"].code]
    item = alex.attention[0]
    assert any(r.startswith("Red: PHQ-9") for r in item.reasons)
    assert item.last_note == "Reviewed goals together" and item.chart is not None
    assert len(digest.trend) == 12 and digest.trend[-1].week == week
    assert digest.instrument == "PHQ-9"
    with pytest.raises(DigestError, match="has not ended yet"):
        build_digest(db_session, team["s"], "2026-W48", LIB, now)


def test_claim_is_taken_once_and_retried_with_backoff(db_session, team, clock):
    now = clock()
    run = claim(db_session, "supervisor_digest", "2026-W46", team["s"].id, now)
    assert run is not None and run.status == "running" and run.attempts == 1
    assert claim(db_session, "supervisor_digest", "2026-W46", team["s"].id, now) is None
    run.status, run.finished_dt = "failed", now
    db_session.flush()
    assert claim(db_session, "supervisor_digest", "2026-W46", team["s"].id,
                 now + dt.timedelta(minutes=4)) is None  # the first retry is after 5 min
    again = claim(db_session, "supervisor_digest", "2026-W46", team["s"].id,
                  now + dt.timedelta(minutes=5))
    assert again is not None and again.attempts == 2
    # A run whose process died is taken over after 30 minutes, not before.
    assert claim(db_session, "supervisor_digest", "2026-W46", team["s"].id,
                 now + dt.timedelta(minutes=20)) is None
    assert claim(db_session, "supervisor_digest", "2026-W46", team["s"].id,
                 now + dt.timedelta(minutes=36)).attempts == 3


@pytest.fixture
def clinic_database(fresh_database_url):
    """A committed clinic (not the rolled-back test transaction): one supervisor of two
    therapists with a client each, for schedulers that open their own sessions."""
    engine = make_engine(fresh_database_url)
    schema.upgrade(engine)
    factory = make_session_factory(engine)
    created = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    with transaction(factory) as session:
        clinic = Clinic(slug="north", name="North Clinic", timezone="Europe/London")
        session.add(clinic)
        session.flush()
        people = [User(clinic_id=clinic.id, email=f"{n}@north.example.org",
                       display_name=n.title(), is_supervisor=n.startswith("sup"),
                       is_therapist=not n.startswith("sup"), created_dt=created)
                  for n in ("sup1", "sup2", "ther1", "ther2")]
        session.add_all(people)
        session.flush()
        session.add_all([SupervisorAssignment(clinic_id=clinic.id, supervisor_id=people[0].id,
                                              therapist_id=people[2].id),
                         SupervisorAssignment(clinic_id=clinic.id, supervisor_id=people[1].id,
                                              therapist_id=people[3].id)])
    yield factory
    engine.dispose()


def _counts(factory):
    with transaction(factory) as session:
        return (session.scalar(select(func.count()).select_from(ReportRun)),
                session.scalar(select(func.count()).select_from(ReportDocument)),
                session.scalar(select(func.count()).select_from(OutboundEmail)))


def test_catch_up_after_downtime_without_duplicates(clinic_database):
    factory = clinic_database
    monday_w47 = dt.datetime(2026, 11, 16, 7, 0, tzinfo=dt.UTC)
    first = run_due_digests(factory, LIB, monday_w47 + dt.timedelta(days=7),
                            base_url="https://x.example", render=fake_pdf)
    # Week 47 ended on Sunday; CATCH_UP_WEEKS (4) back: W44-W47 for both supervisors.
    assert sorted({o.week for o in first}) == ["2026-W44", "2026-W45", "2026-W46",
                                               "2026-W47"]
    assert {o.status for o in first} == {"succeeded"} and len(first) == 8
    assert _counts(factory) == (8, 8, 8)
    again = run_due_digests(factory, LIB, monday_w47 + dt.timedelta(days=7, hours=1),
                            base_url="https://x.example", render=fake_pdf)
    assert {o.status for o in again} == {"skipped"}
    # Down for two weeks: the missed weeks come, and nothing already sent again.
    later = run_due_digests(factory, LIB, monday_w47 + dt.timedelta(days=21),
                            base_url="https://x.example", render=fake_pdf)
    assert sorted(o.week for o in later if o.status == "succeeded") == [
        "2026-W48", "2026-W48", "2026-W49", "2026-W49"]
    assert _counts(factory) == (12, 12, 12)


def test_a_failed_digest_is_recorded_and_retried(clinic_database):
    factory = clinic_database
    now = dt.datetime(2026, 11, 23, 8, tzinfo=dt.UTC)
    calls = []

    def flaky(digest):
        calls.append(digest.supervisor_name)
        if len(calls) == 1:
            raise RuntimeError("disk full")
        return fake_pdf(digest)

    outcomes = run_due_digests(factory, LIB, now, base_url="https://x.example", render=flaky,
                               only=(None, "2026-W47"))
    assert [o.status for o in outcomes] == ["failed", "succeeded"]
    with transaction(factory) as session:
        failed = session.scalar(select(ReportRun).where(ReportRun.status == "failed"))
        assert failed.last_error == "RuntimeError: disk full" and failed.attempts == 1
        assert session.scalar(select(func.count()).select_from(ReportDocument)) == 1
    retried = run_due_digests(factory, LIB, now + dt.timedelta(minutes=5),
                              base_url="https://x.example", render=flaky,
                              only=(None, "2026-W47"))
    assert [o.status for o in retried] == ["succeeded", "skipped"]


def test_each_digest_is_drawn_in_its_supervisors_chosen_language(clinic_database):
    """docs/supervisors.md ("Language"): the digest is in the language chosen on the
    supervisor's account page, English with no choice (docs/admins.md says the same)."""
    from reports import pdf
    factory = clinic_database
    with transaction(factory) as session:
        session.scalar(select(User).where(User.email == "sup1@north.example.org")).locale = "ru"
    drawn = {}

    def in_reader_language(digest):
        drawn[digest.supervisor_name] = (pdf.reader_locale(), pdf._("Supervision digest"))
        return fake_pdf(digest)

    outcomes = run_due_digests(factory, LIB, dt.datetime(2026, 11, 23, 8, tzinfo=dt.UTC),
                               base_url="https://x.example", render=in_reader_language,
                               only=(None, "2026-W47"))
    assert [o.status for o in outcomes] == ["succeeded", "succeeded"]
    assert drawn == {"Sup1": ("ru", "Сводка для супервизии"),
                     "Sup2": ("en", "Supervision digest")}


def test_concurrent_schedulers_produce_exactly_one_digest_each(clinic_database, request):
    if request.config.getoption("--db") != "postgresql":
        pytest.skip("several writers at once: the PostgreSQL run covers it")
    factory = clinic_database
    now = dt.datetime(2026, 11, 23, 8, tzinfo=dt.UTC)
    barrier = threading.Barrier(3)
    results: list = []

    def scheduler():
        barrier.wait()
        results.append(run_due_digests(factory, LIB, now, base_url="https://x.example",
                                       render=fake_pdf))

    threads = [threading.Thread(target=scheduler) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    produced = [o for outcomes in results for o in outcomes if o.status == "succeeded"]
    assert len(results) == 3
    assert sorted((o.supervisor_id, o.week) for o in produced) == sorted(
        {(o.supervisor_id, o.week) for outcomes in results for o in outcomes})
    assert _counts(factory) == (8, 8, 8)


def test_scheduler_job_sends_a_notice_and_only_its_supervisor_downloads_the_pdf(
        app, client, auth, db_session, team, smtp, make_user, assign):
    """The e-mail is a notice with a link (no attachment, no clinical content, not even
    client codes); the PDF is fetched from the app by its supervisor and parsed back."""
    from email import message_from_bytes

    from outcome.jobs import deliver_mail
    from outcome.jobs import send_digests

    other = make_user("supervisor")
    assign(other, team["b"])
    now = dt.datetime(2026, 11, 23, 8, tzinfo=dt.UTC)  # Monday after 2026-W47, 07:00 passed
    # The accounts date from 2026-W47 (the real clock would put them after it), so W47 is
    # the one week due for each of them.
    for supervisor in (team["s"], other):
        supervisor.created_dt = dt.datetime(2026, 11, 17, 9, tzinfo=dt.UTC)
    db_session.commit()
    assert send_digests(app, now=now) == 2  # one per supervisor, for the week their
    assert send_digests(app, now=now) == 0  # accounts existed; never twice
    assert deliver_mail(app, now=now) == (2, 0, 0)
    run = db_session.scalar(select(ReportRun).where(
        ReportRun.recipient_user_id == team["s"].id))
    mine = next(m for m in smtp.messages if team["s"].email in m.rcpt_tos)
    message = message_from_bytes(mine.content)
    assert not [part for part in message.walk() if part.get_filename()]  # no attachment
    assert b"%PDF" not in mine.content and not message.is_multipart()
    notice = message.get_payload(decode=True).decode()
    assert f"/supervision/digests/{run.id}.pdf" in notice
    for clinical in (team["red"].code, "red", "PHQ", "GAD", "score", "alert", NAME):
        assert clinical not in notice

    document = db_session.scalar(select(ReportDocument).where(
        ReportDocument.report_run_id == run.id))
    assert run.content_sha256 == document.sha256
    auth.login(team["s"].email)
    page = client.get("/supervision/digests").get_data(as_text=True)
    assert f"/supervision/digests/{run.id}.pdf" in page
    response = client.get(f"/supervision/digests/{run.id}.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.headers["Cache-Control"] == "no-store"
    pdf = response.data
    assert pdf.startswith(b"%PDF") and pdf == document.content
    reader = PdfReader(io.BytesIO(pdf))
    assert not reader.is_encrypted
    text = " ".join(page.extract_text() for page in reader.pages)
    # The canaries: the text is really there, and no name or other team's client is.
    assert "Supervision digest" in text and team["red"].code in text
    assert NAME not in text and "Private" not in text
    assert team["hidden"].code not in text and "Hidden" not in text
    auth.logout()
    auth.login(other.email)
    assert client.get(f"/supervision/digests/{run.id}.pdf").status_code == 404


def test_outcome_digest_by_hand_writes_the_pdfs_once(runner, team, db_session, tmp_path):
    """`outcome digest` runs the scheduler's code: produced once, the archive copied out."""
    db_session.execute(User.__table__.update().values(
        created_dt=dt.datetime(2026, 10, 1, tzinfo=dt.UTC)))
    db_session.commit()
    first = runner.invoke(args=["digest", "--week", "2026-W46", "--out", str(tmp_path)])
    assert first.exit_code == 0, first.output
    assert "1 produced and queued for e-mail" in first.output
    [pdf] = list(tmp_path.glob("*.pdf"))
    assert pdf.read_bytes().startswith(b"%PDF")
    again = runner.invoke(args=["digest", "--week", "2026-W46"])
    assert "1 already produced (not sent again)" in again.output
    future = runner.invoke(args=["digest", "--week", "2099-W01"])
    assert future.exit_code == 1 and "has not ended yet" in future.output
    wrong = runner.invoke(args=["digest", "--week", "46"])
    assert wrong.exit_code == 1 and "not an ISO week" in wrong.output
    nobody = runner.invoke(args=["digest", "--week", "2026-W46", "--supervisor", "999999"])
    assert nobody.exit_code == 1 and "no active supervisor has the id 999999" in nobody.output
    one = runner.invoke(args=["digest", "--week", "2026-W46", "--supervisor",
                              str(team["s"].id), "--out", str(tmp_path / "one")])
    assert one.exit_code == 0, one.output
    assert [p.name for p in (tmp_path / "one").glob("*.pdf")] == [pdf.name]


def test_stale_unused_links_are_deleted(db_session, clock, make_user, make_client,
                                        make_episode):
    from outcome.models import QuestionnaireLink
    from outcome.services.links import delete_stale_links
    from outcome.services.links import issue_link

    episode = make_episode(make_client(make_user()))
    old, _ = issue_link(db_session, episode=episode, purpose="pre", now=clock(), library=LIB)
    used, _ = issue_link(db_session, episode=episode, purpose="post", now=clock(),
                         library=LIB)
    used.used_dt = clock()
    db_session.flush()
    assert delete_stale_links(db_session, clock() + dt.timedelta(days=30)) == 0
    assert delete_stale_links(db_session, clock() + dt.timedelta(days=100)) == 1
    remaining = db_session.scalars(select(QuestionnaireLink.id)).all()
    assert remaining == [used.id] and old.id not in remaining


def test_admins_see_failed_digests_and_mail(auth, client, db_session, team, make_user,
                                            clock):
    from outcome.models import OutboundEmail

    admin = make_user("admin")
    db_session.add(ReportRun(kind="supervisor_digest", period="2026-W45", status="failed",
                             recipient_user_id=team["s"].id, attempts=4, finished_dt=clock(),
                             last_error="RuntimeError: disk full"))
    db_session.add(OutboundEmail(clinic_id=admin.clinic_id, kind="digest", dedupe_key="x",
                                 to_address="s@example.org", subject="Digest",
                                 body_text="b", status="failed", attempts=6,
                                 next_attempt_dt=clock(), last_error="SMTP 550 no mailbox"))
    db_session.commit()
    auth.login(admin.email)
    html = client.get("/admin/deliveries").get_data(as_text=True)
    assert "2026-W45" in html and "RuntimeError: disk full" in html
    assert "SMTP 550 no mailbox" in html and "Sam Supervisor" in html


def test_cover_and_table_count_red_alike_and_history_is_kept(db_session, team):
    """Regression (issue 15): the cover read today's colours, the table open alerts, so
    the same week had two red counts. Now one definition serves both, as of each week;
    an alert resolved by an action plan (issue 19) does not make a red client less red."""
    alert = db_session.scalar(select(Alert).where(Alert.kind == "not_on_track"))
    episode = db_session.get(Episode, alert.episode_id)
    record_plan(db_session, episode=episode, user=team["a"], steps=[
        {"domain": "motivation", "suggestion": None, "text": "Reviewed goals together",
         "decision": "own"}], note="", review_on=dt.date(2026, 12, 8),
        now=dt.datetime(2026, 11, 10, 9, tzinfo=dt.UTC), library=LIB)
    assert alert.status == "resolved"
    now = week_bounds("2026-W47", "UTC")[2] + dt.timedelta(days=1)
    digest = build_digest(db_session, team["s"], "2026-W47", LIB, now)
    assert digest.this_week.colours["red"] == digest.trend[-1].red == 1
    assert digest.previous_week.colours["red"] == digest.trend[-2].red == 1
    assert digest.this_week.active_episodes == digest.trend[-1].active_episodes == 2
    # The red client's PHQ-9 rose by 8 points at its third score (15 September, W38):
    # red from that week on, in every row back to it, not only the last.
    by_week = {p.week: p.red for p in digest.trend}
    assert by_week["2026-W37"] == 0 and by_week["2026-W38"] == 1
    assert all(by_week[w] == 1 for w in by_week if w >= "2026-W38")
    assert sum(digest.this_week.colours.values()) == digest.this_week.active_episodes


def test_a_supervisee_without_active_episodes_has_no_shares(db_session, team, make_user,
                                                            make_client, make_episode,
                                                            assign):
    """Regression (issue 15): an episode opened after the week made a supervisee with 0
    active episodes show "Grey 1 (100 %)"."""
    later = make_user(display_name="Dee Later")
    nobody = make_user(display_name="Eli Nobody")
    assign(team["s"], later)
    assign(team["s"], nobody)
    make_episode(make_client(later), opened_on=dt.date(2026, 11, 30))
    db_session.commit()
    now = dt.datetime(2026, 12, 1, 8, tzinfo=dt.UTC)
    digest = build_digest(db_session, team["s"], "2026-W47", LIB, now)
    sections = {s.therapist_name: s for s in digest.sections}
    for name in ("Dee Later", "Eli Nobody"):
        week = sections[name].week
        assert week.active_episodes == 0 and set(week.colours.values()) == {0}, name
    from reports.digest_pdf import render_digest

    pages = [" ".join(p.extract_text().split())
             for p in PdfReader(io.BytesIO(render_digest(digest))).pages]
    for name in ("Dee Later", "Eli Nobody"):
        page = next(p for p in pages if f"\u00b7 {name} Page" in p)
        assert "No active episodes this week." in page
        assert "Grey" not in page and "%" not in page, page
