"""The therapist reports at the edges (issue 18): the scheduler job and its e-mail (the
canary: no client name, code, goal or score in any message), the therapist's archive,
download (their own only) and refresh, the report choices page, the admin's runs list
and ``outcome reports run``."""

from __future__ import annotations

import datetime as dt
import io
from email import message_from_bytes
from email.policy import default as default_policy

import pytest
from pypdf import PdfReader
from reportlab.pdfgen import canvas
from sqlalchemy import select

from outcome.models import AuditEvent
from outcome.models import Client
from outcome.models import OutboundEmail
from outcome.models import ReportDocument
from outcome.models import ReportPreference
from outcome.models import ReportRun
from outcome.models import User
from outcome.services.goals import set_goals
from outcome.services.therapist_reports import production
from outcome.services.therapist_reports.preferences import BRIEF_KIND
from outcome.services.therapist_reports.preferences import WEEKLY_KIND
from tests.conftest import csrf_token
from tests.helpers import answer

MONDAY = dt.date(2026, 11, 16)  # the test clock's day (09:00 UTC); the clinic is on UTC
CREATED = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)


def revealing_pdf(session, therapist, period, library, now) -> bytes:
    """A stand-in renderer that, like the real brief, names the therapist's clients (so
    the canary below is not vacuous), with the period and its "as of" time."""
    names = session.scalars(select(Client.name).where(
        Client.therapist_id == therapist.id).order_by(Client.id)).all()
    out = io.BytesIO()
    page = canvas.Canvas(out, invariant=1)
    page.drawString(72, 720, f"Report {period} as of {now:%H:%M} UTC")
    page.drawString(72, 700, "Clients: " + ", ".join(names))
    page.save()
    return out.getvalue()


def pdf_text(content: bytes) -> str:
    return " ".join(p.extract_text() for p in PdfReader(io.BytesIO(content)).pages)


@pytest.fixture
def fake_renderers(monkeypatch):
    for kind in (BRIEF_KIND, WEEKLY_KIND):
        monkeypatch.setitem(production.RENDERERS, kind, revealing_pdf)


@pytest.fixture
def world(db_session, make_user, make_client, make_episode, make_appointment, clock):
    """Therapists t1 and t2 with a client each (names, goals, PHQ-9 scores, an
    appointment today at 14:00), a supervisor and an admin; accounts from September."""
    people = {"t1": make_user(display_name="Tess One"), "t2": make_user(display_name="Tom Two"),
              "sup": make_user("supervisor"), "admin": make_user("admin")}
    clients = {}
    for key, name, goal in (("t1", "Ottilie Canarybird", "Visit Grandmother Hildegard"),
                            ("t2", "Wendelin Nightjar", "Sing at the Lighthouse")):
        person = clients[key] = make_client(people[key], name=name,
                                            email=f"{key}.client@example.org")
        episode = make_episode(person)
        set_goals(db_session, episode, [goal], clock())
        answer(db_session, episode, [2, 3, 3], item9=1)
        make_appointment(episode, starts_dt=dt.datetime.combine(
            MONDAY, dt.time(14), dt.UTC))
    for user in people.values():
        user.created_dt = CREATED
    db_session.commit()
    return {"people": people, "clients": clients,
            "goals": ["Visit Grandmother Hildegard", "Sing at the Lighthouse"]}


def test_job_e_mails_carry_no_clinical_text_or_name_and_only_the_therapist_downloads(
        app, client, auth, db_session, world, smtp, fake_renderers, clock):
    """The CANARY: every client name, code, e-mail address, goal text and clinical word
    of the world is searched for in every received message (headers and body)."""
    from outcome.jobs import JOBS
    from outcome.jobs import deliver_mail
    from outcome.jobs import send_therapist_reports

    assert ("send-therapist-reports", send_therapist_reports, "interval",
            {"minutes": 15}) in JOBS
    now = dt.datetime.combine(MONDAY, dt.time(8), dt.UTC)
    # Monday 08:00: today's brief of each therapist and last week's weekly report.
    assert send_therapist_reports(app, now=now) == 4
    assert send_therapist_reports(app, now=now + dt.timedelta(minutes=15)) == 0
    assert deliver_mail(app, now=now) == (4, 0, 0)
    assert len(smtp.messages) == 4
    t1, t2 = world["people"]["t1"], world["people"]["t2"]
    canaries = [c.name for c in world["clients"].values()]
    canaries += [c.name.split()[1] for c in world["clients"].values()]
    canaries += [c.code for c in world["clients"].values()]
    canaries += [c.email for c in world["clients"].values()]
    canaries += world["goals"] + ["Hildegard", "Lighthouse", "PHQ", "GAD", "score",
                                  "critical", "urgent", "alert", "risk", "suicid"]
    for envelope in smtp.messages:
        raw = envelope.content.decode("utf-8", "replace")
        message = message_from_bytes(envelope.content, policy=default_policy)
        assert not message.is_multipart() and b"%PDF" not in envelope.content
        assert not [part for part in message.walk() if part.get_filename()]
        readable = raw + str(message["Subject"]) + message.get_content()
        for canary in canaries:
            assert canary.lower() not in readable.lower(), (canary, readable)
    runs = {(r.recipient_user_id, r.kind): r for r in db_session.scalars(select(ReportRun))}
    brief = runs[(t1.id, BRIEF_KIND)]
    assert brief.period == "2026-11-16" and runs[(t1.id, WEEKLY_KIND)].period == "2026-W46"
    mine = next(m for m in smtp.messages if t1.email in m.rcpt_tos)
    notice = message_from_bytes(mine.content, policy=default_policy)
    assert str(notice["Subject"]) in (
        "Your pre-session brief for Monday 16 November is ready",
        "Your weekly caseload report for 2026-W46 is ready")
    bodies = [message_from_bytes(m.content, policy=default_policy).get_content()
              for m in smtp.messages if t1.email in m.rcpt_tos]
    assert any(f"/reports/{brief.id}.pdf" in body for body in bodies)

    auth.login(t1.email)
    page = client.get("/reports").get_data(as_text=True)
    assert f"/reports/{brief.id}.pdf" in page and "2026-W46" in page
    response = client.get(f"/reports/{brief.id}.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.headers["Cache-Control"] == "no-store"
    document = db_session.scalar(select(ReportDocument).where(
        ReportDocument.report_run_id == brief.id))
    assert response.data == document.content and brief.content_sha256 == document.sha256
    assert "Ottilie Canarybird" in pdf_text(response.data)  # the PDF has what mail has not
    home = client.get("/").get_data(as_text=True)
    assert f"/reports/{brief.id}.pdf" in home and "as of" in home
    auth.logout()
    auth.login(t2.email)
    for path in (f"/reports/{brief.id}.pdf", "/reports/987654321.pdf",
                 "/reports/99999999999999999999.pdf"):
        assert client.get(path).status_code == 404, path
    events = db_session.scalars(select(AuditEvent).where(
        AuditEvent.action == "reports.download").order_by(AuditEvent.id)).all()
    assert [(e.actor_user_id, e.outcome) for e in events] == [
        (t1.id, "allowed"), (t2.id, "denied"), (t2.id, "denied"), (t2.id, "denied")]
    auth.logout()
    auth.login(world["people"]["sup"].email)
    assert client.get(f"/reports/{brief.id}.pdf").status_code == 404
    assert client.get("/reports").status_code == 404


def test_refresh_replaces_todays_brief_and_its_as_of_time(
        app, client, auth, db_session, world, fake_renderers, clock):
    from outcome.jobs import send_therapist_reports

    t1 = world["people"]["t1"]
    clock.current = dt.datetime.combine(MONDAY, dt.time(7, 30), dt.UTC)
    send_therapist_reports(app, now=clock())
    run = db_session.scalar(select(ReportRun).where(ReportRun.kind == BRIEF_KIND,
                                                    ReportRun.recipient_user_id == t1.id))
    before = db_session.scalar(select(ReportDocument).where(
        ReportDocument.report_run_id == run.id))
    old_sha = before.sha256
    assert "as of 07:30" in pdf_text(before.content)
    clock.current = dt.datetime.combine(MONDAY, dt.time(11, 5), dt.UTC)
    auth.login(t1.email)
    token = csrf_token(client.get("/reports").get_data(as_text=True))
    assert client.post(f"/reports/{run.id}/refresh").status_code == 400  # no CSRF token
    response = client.post(f"/reports/{run.id}/refresh", data={"csrf_token": token})
    assert response.status_code == 303
    db_session.expire_all()
    after = db_session.scalar(select(ReportDocument).where(
        ReportDocument.report_run_id == run.id))
    assert "as of 11:05" in pdf_text(after.content) and after.sha256 != old_sha
    assert db_session.get(ReportRun, run.id).content_sha256 == after.sha256
    assert after.created_dt == clock()
    assert db_session.scalar(select(AuditEvent).where(
        AuditEvent.action == "reports.refresh", AuditEvent.outcome == "allowed"))
    # to_address is encrypted at rest when a key is configured: compared in Python.
    assert t1.email in set(db_session.scalars(select(OutboundEmail.to_address).where(
        OutboundEmail.kind == "therapist_report")))
    # The weekly report is not today's brief: refused, kept as it was.
    weekly = db_session.scalar(select(ReportRun).where(ReportRun.kind == WEEKLY_KIND,
                                                       ReportRun.recipient_user_id == t1.id))
    sha = weekly.content_sha256
    response = client.post(f"/reports/{weekly.id}/refresh", data={"csrf_token": token})
    assert response.status_code == 303
    assert "Only today" in client.get("/reports").get_data(as_text=True)
    db_session.expire_all()
    assert db_session.get(ReportRun, weekly.id).content_sha256 == sha
    # Another therapist's brief: the same 404 as an unknown id.
    other = db_session.scalar(select(ReportRun).where(
        ReportRun.recipient_user_id == world["people"]["t2"].id))
    assert client.post(f"/reports/{other.id}/refresh",
                       data={"csrf_token": token}).status_code == 404
    assert client.post("/reports/987654321/refresh",
                       data={"csrf_token": token}).status_code == 404


def test_report_choices_page_stores_choices_and_refuses_bad_input(
        client, auth, db_session, world, make_user):
    both = make_user("therapist", is_supervisor=True)
    auth.login(both.email)
    page = client.get("/account/reports").get_data(as_text=True)
    for words in ("Pre-session brief", "Weekly caseload report", "Weekly supervision digest"):
        assert words in page
    token = csrf_token(page)
    bad = client.post("/account/reports", data={
        "csrf_token": token, "therapist_brief_enabled": "1", "therapist_brief_time": "25:00",
        "therapist_weekly_enabled": "1", "supervisor_digest_enabled": "1"})
    assert bad.status_code == 400
    html = bad.get_data(as_text=True)
    assert "Pre-session brief: the time must be written HH:MM" in html
    assert 'id="therapist_brief_time"' in html and 'aria-invalid="true"' in html
    assert db_session.scalars(select(ReportPreference)).all() == []
    bad_day = client.post("/account/reports", data={
        "csrf_token": token, "therapist_weekly_weekday": "7"})
    assert bad_day.status_code == 400 and "the day must be one of Monday to Sunday" in (
        bad_day.get_data(as_text=True))
    good = client.post("/account/reports", data={
        "csrf_token": token, "therapist_brief_enabled": "1", "therapist_brief_time": "06:30",
        "therapist_weekly_email": "1", "therapist_weekly_weekday": "4",
        "supervisor_digest_enabled": "1", "supervisor_digest_weekday": "2",
        "supervisor_digest_time": "18:00"})
    assert good.status_code == 303
    stored = {p.kind: p for p in db_session.scalars(select(ReportPreference).where(
        ReportPreference.user_id == both.id))}
    assert (stored[BRIEF_KIND].is_enabled, stored[BRIEF_KIND].is_emailed,
            stored[BRIEF_KIND].time) == (True, False, "06:30")
    assert (stored[WEEKLY_KIND].is_enabled, stored[WEEKLY_KIND].weekday) == (False, 4)
    assert (stored["supervisor_digest"].weekday, stored["supervisor_digest"].time) == (
        2, "18:00")
    again = client.get("/account/reports").get_data(as_text=True)
    assert 'value="06:30"' in again and "Now: not produced." in again


def test_the_digest_honours_its_supervisors_choices(app, db_session, team):
    from outcome.jobs import send_digests

    now = dt.datetime(2026, 11, 23, 8, tzinfo=dt.UTC)  # Monday after 2026-W47, 07:00 passed
    team["s"].created_dt = dt.datetime(2026, 11, 17, 9, tzinfo=dt.UTC)
    db_session.add(ReportPreference(user_id=team["s"].id, kind="supervisor_digest",
                                    is_emailed=False, weekday=0, time="09:00"))
    db_session.commit()
    assert send_digests(app, now=now) == 0  # chosen 09:00
    assert send_digests(app, now=now + dt.timedelta(hours=1)) == 1
    assert db_session.scalar(select(OutboundEmail.id).where(
        OutboundEmail.kind == "digest")) is None  # e-mail off: archived, no notice
    pref = db_session.scalar(select(ReportPreference))
    pref.is_enabled = False
    db_session.execute(ReportRun.__table__.delete())
    db_session.commit()
    assert send_digests(app, now=now + dt.timedelta(hours=2)) == 0


def test_admin_runs_list_names_each_kind_and_shows_no_client_data(
        app, client, auth, db_session, world, fake_renderers):
    from outcome.jobs import send_therapist_reports

    send_therapist_reports(app, now=dt.datetime.combine(MONDAY, dt.time(8), dt.UTC))
    db_session.add(ReportRun(kind=BRIEF_KIND, period="2026-11-13", status="failed",
                             recipient_user_id=world["people"]["t2"].id, attempts=4,
                             last_error="RuntimeError: renderer crashed"))
    db_session.commit()
    auth.login(world["people"]["admin"].email)
    html = client.get("/admin/deliveries").get_data(as_text=True)
    for words in ("Pre-session brief", "Weekly caseload report", "2026-11-16", "2026-W46",
                  "Tess One", "Tom Two", "RuntimeError: renderer crashed"):
        assert words in html, words
    for person in world["clients"].values():
        assert person.name not in html and person.code not in html
    for goal in world["goals"]:
        assert goal not in html


def test_outcome_reports_run_by_hand(runner, db_session, world, fake_renderers, tmp_path,
                                     monkeypatch):
    t1 = world["people"]["t1"]
    first = runner.invoke(args=["reports", "run", "--kind", "brief", "--date", "2026-11-16",
                                "--out", str(tmp_path)])
    assert first.exit_code == 0, first.output
    assert "2 produced and queued for e-mail" in first.output
    assert sorted(p.name for p in tmp_path.glob("*.pdf")) == sorted(
        f"brief-2026-11-16-{world['people'][k].id}.pdf" for k in ("t1", "t2"))
    again = runner.invoke(args=["reports", "run", "--kind", "brief", "--date", "2026-11-16",
                                "--therapist", str(t1.id)])
    assert again.exit_code == 0 and "1 already produced (not sent again)" in again.output
    weekly = runner.invoke(args=["reports", "run", "--kind", "weekly", "--week", "2026-W46",
                                 "--therapist", str(t1.id), "--out", str(tmp_path / "w")])
    assert weekly.exit_code == 0, weekly.output
    assert [p.name for p in (tmp_path / "w").glob("*.pdf")] == [
        f"weekly-2026-W46-{t1.id}.pdf"]
    for args, words in (
            (["--kind", "brief", "--date", "16.11.2026"], "is not a date such as 2026-11-23"),
            (["--kind", "brief", "--date", "2099-01-01"], "in the future"),
            (["--kind", "weekly", "--week", "2099-W01"], "has not ended yet"),
            (["--kind", "weekly", "--week", "46"], "not an ISO week"),
            (["--kind", "brief", "--therapist", "999999"],
             "no active therapist has the id 999999"),
            (["--kind", "brief", "--week", "2026-W46"], "--week is for --kind weekly"),
            (["--kind", "monthly"], "Invalid value for '--kind'")):
        result = runner.invoke(args=["reports", "run", *args])
        assert result.exit_code != 0 and words in result.output, (args, result.output)
        assert "Traceback" not in result.output
    assert db_session.scalar(select(User.id).where(User.id == t1.id)) == t1.id
