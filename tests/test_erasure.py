"""Erasure and retention (issue 20): the service, the CLI and the nightly job.

A client is seeded with a canary name, address and goal in every table that can hold
them; after erasure no table's text holds the canary, the tombstone keeps the code, and
another client's data is untouched.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json

import pytest
from sqlalchemy import func
from sqlalchemy import select

from outcome.core.answers import parse_answers
from outcome.models import AccessRequest
from outcome.models import Administration
from outcome.models import Alert
from outcome.models import ApiIdempotencyRecord
from outcome.models import ApiToken
from outcome.models import AuditEvent
from outcome.models import Client
from outcome.models import ConsentDecision
from outcome.models import ConsentText
from outcome.models import Episode
from outcome.models import Goal
from outcome.models import OutboundEmail
from outcome.models import ReportDocument
from outcome.models import ReportRun
from outcome.models import RetentionRun
from outcome.models import User
from outcome.models.base import Base
from outcome.services import retention
from outcome.services.erasure import ERASED_NAME
from outcome.services.erasure import ErasureError
from outcome.services.erasure import erase_client
from outcome.services.submissions import submit_administration
from questionnaires.fhir import validate_resource
from questionnaires.loader import builtin_library

LIB = builtin_library()
CANARY = "Zebulon Canarywick"
CANARY_MAIL = "zebulon.canarywick@example.net"
CANARY_GOAL = "Canarywick goal: walk the dog"
T0 = dt.datetime(2026, 10, 5, 9, tzinfo=dt.UTC)


def _text_of_every_table(session) -> str:
    """Every row of every table, as text (bytes included), for the canary search."""
    parts = []
    for table in Base.metadata.sorted_tables:
        for row in session.execute(select(table)).all():
            parts.append(repr(tuple(row)))
    return "\n".join(parts)


@pytest.fixture
def canary(db_session, make_user, make_client, make_episode, make_appointment, make_token):
    """A client with the canary everywhere it can go, and a control client."""
    therapist = make_user(locale="en")
    admin = make_user("admin")
    person = make_client(therapist, name=CANARY, email=CANARY_MAIL, phone="+44 7700 900123",
                         locale="ru")
    other = make_client(therapist, name="Control Person", email="control@example.net")
    episode = make_episode(person)
    other_episode = make_episode(other)
    db_session.add(Goal(episode_id=episode.id, position=1, description=CANARY_GOAL))
    appointment = make_appointment(episode)
    for ep, key in ((episode, "c"), (other_episode, "o")):
        instrument = LIB.get("phq9")
        submit_administration(db_session, episode=ep, instrument=instrument,
                              answers=parse_answers(instrument,
                                                    {f"phq9_{i}": 2 for i in range(1, 10)}),
                              completed_dt=T0, idempotency_key=f"erase:{key}", library=LIB,
                              now=T0)
    db_session.add(Alert(episode_id=episode.id, kind="critical_item", status="acknowledged",
                         acknowledged_dt=T0, acknowledged_by_id=therapist.id,
                         acknowledgement_note=f"Phoned {CANARY}", detail={}))
    db_session.add(OutboundEmail(clinic_id=person.clinic_id, kind="link",
                                 dedupe_key=f"link:{appointment.id}:pre",
                                 to_address=CANARY_MAIL, subject="Your questionnaire",
                                 body_text="Hello", next_attempt_dt=T0))
    db_session.add(OutboundEmail(clinic_id=person.clinic_id, kind="reminder",
                                 dedupe_key="reminder:other", to_address=CANARY_MAIL.upper(),
                                 subject="Reminder", body_text="Hello", next_attempt_dt=T0))
    text = ConsentText(clinic_id=person.clinic_id, language="en", version=1, body="We keep")
    db_session.add(text)
    db_session.flush()
    db_session.add(ConsentDecision(clinic_id=person.clinic_id, client_id=person.id,
                                   text_id=text.id, decision="agreed", channel="staff"))
    db_session.add(AccessRequest(clinic_id=person.clinic_id, requester_id=admin.id,
                                 kind="transfer", client_id=person.id,
                                 expires_dt=T0 + dt.timedelta(days=7), created_dt=T0))
    make_token(therapist)
    token = db_session.scalar(select(ApiToken).where(ApiToken.user_id == therapist.id))
    db_session.add(ApiIdempotencyRecord(token_id=token.id, key="k1", request_sha256="0" * 64,
                                        status_code=201, body={"name": CANARY},
                                        client_id=person.id))
    run = ReportRun(kind="therapist_brief", period="2026-10-06",
                    recipient_user_id=therapist.id, status="succeeded",
                    content_sha256="1" * 64)
    db_session.add(run)
    db_session.flush()
    content = f"%PDF-1.4 brief naming {CANARY}".encode()
    db_session.add(ReportDocument(report_run_id=run.id, filename="brief.pdf", content=content,
                                  sha256=hashlib.sha256(content).hexdigest(),
                                  size_bytes=len(content), created_dt=T0))
    db_session.commit()
    return person, other, therapist, admin


def _count(session, model, *where) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def test_erasure_leaves_no_canary_in_any_table(canary, db_session):
    """Security promise: erasure leaves the tombstone only (every table searched)."""
    person, other, _therapist, admin = canary
    assert CANARY in _text_of_every_table(db_session)
    erase_client(db_session, person, "request", admin, T0 + dt.timedelta(days=30))
    db_session.commit()
    everything = _text_of_every_table(db_session)
    assert CANARY not in everything and "Canarywick" not in everything
    assert CANARY_MAIL not in everything.lower()
    assert "900123" not in everything
    db_session.expire_all()
    tomb = db_session.get(Client, person.id)
    assert (tomb.code, tomb.clinic_id, tomb.name, tomb.email, tomb.phone, tomb.therapist_id,
            tomb.erasure_reason) == (person.code, other.clinic_id, ERASED_NAME, None, None,
                                     None, "request")
    assert _count(db_session, Episode, Episode.client_id == person.id) == 0
    assert _count(db_session, ConsentDecision, ConsentDecision.client_id == person.id) == 0
    assert _count(db_session, AccessRequest, AccessRequest.client_id == person.id) == 0
    # The control client keeps everything.
    assert _count(db_session, Episode, Episode.client_id == other.id) == 1
    assert _count(db_session, Administration) == 1
    assert db_session.get(Client, other.id).name == "Control Person"


def test_erasure_is_audited_by_code_without_personal_data(canary, db_session):
    person, _other, _therapist, admin = canary
    erase_client(db_session, person, "request", admin, T0)
    db_session.commit()
    event = db_session.scalar(select(AuditEvent).where(AuditEvent.action == "client.erase"))
    assert (event.object_id, event.client_id, event.actor_user_id, event.outcome) == (
        person.code, person.id, admin.id, "allowed")
    trail = repr([tuple(r) for r in db_session.execute(select(AuditEvent.__table__)).all()])
    assert CANARY not in trail and "Canarywick" not in trail


def test_erasing_twice_is_refused(canary, db_session):
    person, *_rest = canary
    erase_client(db_session, person, "retention", None, T0, actor_label="retention")
    with pytest.raises(ErasureError, match="already erased"):
        erase_client(db_session, person, "request", None, T0)


def test_erased_client_leaves_every_caseload(canary, db_session):
    from outcome.services.access import visible_clients
    person, _other, therapist, _admin = canary
    erase_client(db_session, person, "request", None, T0)
    db_session.flush()
    codes = set(db_session.scalars(visible_clients(therapist).with_only_columns(Client.code)))
    assert person.code not in codes and len(codes) == 1


# --- the CLI ------------------------------------------------------------------------------


def test_cli_erase_writes_both_exports_then_erases(canary, runner, db_session, tmp_path):
    """Security promise: `outcome clients erase` writes valid exports first."""
    person, *_rest = canary
    result = runner.invoke(args=["clients", "erase", person.code, "--export-to",
                                 str(tmp_path / "out")], input=f"{person.code}\n")
    assert result.exit_code == 0, result.output
    assert CANARY not in result.output
    bundle = json.loads((tmp_path / "out" / f"{person.code}.fhir.json").read_text())
    assert validate_resource(bundle) == []
    assert bundle["entry"][0]["resource"]["resourceType"] == "Patient"
    rows = list(csv.DictReader(io.StringIO(
        (tmp_path / "out" / f"{person.code}.csv").read_text())))
    assert len(rows) == 9  # nine PHQ-9 items answered
    assert (tmp_path / "out" / f"{person.code}.csv").stat().st_mode & 0o077 == 0
    db_session.expire_all()
    assert db_session.get(Client, person.id).erased_dt is not None
    assert {e.action for e in db_session.scalars(select(AuditEvent).where(
        AuditEvent.client_id == person.id))} >= {"client.export.csv", "client.export.fhir",
                                                 "client.erase"}


def test_cli_erase_refuses_without_an_export_choice(canary, runner, db_session):
    person, *_rest = canary
    result = runner.invoke(args=["clients", "erase", person.code, "--yes"])
    assert result.exit_code == 2 and "--no-export" in result.output
    db_session.expire_all()
    assert db_session.get(Client, person.id).erased_dt is None


def test_cli_erase_refuses_a_mistyped_code(canary, runner, db_session):
    person, *_rest = canary
    result = runner.invoke(args=["clients", "erase", person.code, "--no-export"],
                           input="C-WRONG\n")
    assert result.exit_code == 1 and "does not match" in result.output
    db_session.expire_all()
    assert db_session.get(Client, person.id).erased_dt is None


def test_cli_erase_twice_says_so(canary, runner, db_session):
    person, *_rest = canary
    assert runner.invoke(args=["clients", "erase", person.code, "--no-export",
                               "--yes"]).exit_code == 0
    again = runner.invoke(args=["clients", "erase", person.code, "--no-export", "--yes"])
    assert again.exit_code == 1 and "already erased" in again.output


def test_cli_reapply_after_restore_erases_listed_codes(canary, runner, db_session, tmp_path):
    person, other, *_rest = canary
    listing = tmp_path / "erased.txt"
    listing.write_text(f"{person.code} 2026-11-01T10:00:00Z request\n")
    result = runner.invoke(args=["clients", "erase", "--reapply", str(listing)])
    assert result.exit_code == 0, result.output
    db_session.expire_all()
    assert db_session.get(Client, person.id).erased_dt is not None
    assert db_session.get(Client, other.id).erased_dt is None
    listed = runner.invoke(args=["clients", "erased"])
    assert person.code in listed.output and "request" in listed.output


# --- retention ----------------------------------------------------------------------------


@pytest.fixture
def ended(canary, db_session):
    """The canary's episode ended in 2019; the clinic keeps data 5 years."""
    person, other, _therapist, _admin = canary
    episode = db_session.scalar(select(Episode).where(Episode.client_id == person.id))
    episode.opened_on, episode.closed_on, episode.end_reason = (
        dt.date(2019, 1, 1), dt.date(2019, 6, 1), "completed")
    from outcome.models import Clinic
    clinic = db_session.get(Clinic, person.clinic_id)
    clinic.settings = {**(clinic.settings or {}), "retention_years": 5}
    db_session.commit()
    return person, other, clinic


def test_due_clients_are_those_whose_care_ended_long_ago(ended, db_session):
    person, _other, clinic = ended
    due = retention.due_clients(db_session, clinic, dt.date(2026, 12, 4))
    assert [(d.code, d.ended_on) for d in due] == [(person.code, dt.date(2019, 6, 1))]
    assert retention.due_clients(db_session, clinic, dt.date(2024, 5, 31)) == []


def test_cli_retention_dry_run_changes_nothing(ended, runner, db_session):
    person, *_rest = ended
    before = _text_of_every_table(db_session)
    result = runner.invoke(args=["clients", "retention", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert person.code in result.output and CANARY not in result.output
    db_session.expire_all()
    assert _text_of_every_table(db_session) == before


def test_run_notifies_then_erases_after_the_notice_once_a_day(ended, runner, db_session,
                                                              clock):
    """Security promise: retention erases only after a dry run's notice, once a day."""
    person, other, _clinic = ended
    first = runner.invoke(args=["clients", "retention", "--run"])
    assert first.exit_code == 0, first.output
    assert "lists 1 due" in first.output and "erased 0" in first.output
    notices = [n for n in db_session.scalars(select(OutboundEmail).where(
        OutboundEmail.kind == "retention")) if "/admin/retention" in n.body_text]
    assert len(notices) == 1  # the admin's (the therapist's is in test_erasure_review.py)
    assert person.code not in notices[0].body_text and CANARY not in notices[0].body_text
    assert "/admin/retention" in notices[0].body_text
    again = runner.invoke(args=["clients", "retention", "--run"])
    assert "done already" in again.output
    # The dry run was made 15 days ago: today's erase run erases the client, once.
    db_session.expire_all()
    for run in db_session.scalars(select(RetentionRun)):
        run.run_on -= dt.timedelta(days=15)
    db_session.commit()
    erased = runner.invoke(args=["clients", "retention", "--run"])
    assert erased.exit_code == 0, erased.output
    assert f"erased 1: {person.code}" in erased.output
    db_session.expire_all()
    assert db_session.get(Client, person.id).erasure_reason == "retention"
    assert db_session.get(Client, other.id).erased_dt is None
    third = runner.invoke(args=["clients", "retention", "--run"])
    assert "done already" in third.output
    assert _count(db_session, RetentionRun, RetentionRun.kind == "erase") == 2


def test_client_back_in_care_is_not_erased(ended, db_session, make_episode):
    person, _other, clinic = ended
    now = dt.datetime(2026, 12, 4, 12, tzinfo=dt.UTC)
    retention.dry_run(db_session, clinic, now - dt.timedelta(days=20), base_url="http://x")
    make_episode(person, opened_on=dt.date(2026, 12, 1))
    run = retention.erase_due(db_session, clinic, now)
    assert run is not None and run.codes == []
    assert person.erased_dt is None


def test_nightly_job_runs_exactly_once_a_day(ended, app, db_session):
    from outcome.jobs import JOBS
    from outcome.jobs import apply_retention
    person, _other, _clinic = ended
    assert "apply-retention" in {job_id for job_id, *_rest in JOBS}
    now = dt.datetime(2026, 12, 4, 4, 5, tzinfo=dt.UTC)
    apply_retention(app, now - dt.timedelta(days=20))
    assert apply_retention(app, now) == 1
    assert apply_retention(app, now) == 0
    assert apply_retention(app, now + dt.timedelta(hours=1)) == 0
    db_session.expire_all()
    assert db_session.get(Client, person.id).erasure_reason == "retention"
    assert _count(db_session, RetentionRun) == 4  # a dry run and an erase run each day


# --- the admin pages ----------------------------------------------------------------------


def _post(web, url, **data):
    from tests.conftest import csrf_token
    token = csrf_token(web.get("/admin/").get_data(as_text=True))
    return web.post(url, data={"csrf_token": token, **data})


def test_admin_erase_page_shows_code_only_and_no_download_link(canary, auth, client):
    person, _other, _therapist, admin = canary
    auth.login(admin.email)
    page = client.get(f"/admin/clients/{person.code}/erase")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and person.code in html
    assert CANARY not in html and "Canarywick" not in html
    assert "can download the export" in html and "not downloaded" in html
    assert "export.csv" not in html and "export.fhir.json" not in html


def test_admin_who_is_the_therapist_gets_the_download_links(db_session, make_user,
                                                              make_client, make_episode,
                                                              auth, client):
    both = make_user("admin", is_therapist=True)
    person = make_client(both, name=CANARY)
    make_episode(person)
    db_session.commit()
    auth.login(both.email)
    assert client.get(f"/clients/{person.code}/export.csv").status_code == 200
    html = client.get(f"/admin/clients/{person.code}/erase").get_data(as_text=True)
    assert f"/clients/{person.code}/export.csv" in html
    assert "last downloaded" in html


def test_admin_wrong_typed_code_erases_nothing(canary, auth, client, db_session):
    """Security promise: the admin erasure needs the code typed again."""
    person, _other, _therapist, admin = canary
    auth.login(admin.email)
    for typed in ("", "C-WRONG1"):
        response = _post(client, f"/admin/clients/{person.code}/erase", confirm_code=typed)
        assert response.status_code == 400
        assert "type the client code" in response.get_data(as_text=True)
    db_session.expire_all()
    assert db_session.get(Client, person.id).erased_dt is None
    assert _count(db_session, AuditEvent, AuditEvent.action == "client.erase",
                  AuditEvent.outcome == "denied") == 2


def test_admin_erases_with_the_typed_code_and_sees_the_tombstone(canary, auth, client,
                                                                 db_session, app):
    person, _other, therapist, admin = canary
    auth.login(admin.email)
    response = _post(client, f"/admin/clients/{person.code}/erase", confirm_code=person.code)
    assert response.status_code == 302
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Erased client {person.code} (on " in html and "on request)" in html
    db_session.expire_all()
    assert db_session.get(Client, person.id).erasure_reason == "request"
    again = _post(client, f"/admin/clients/{person.code}/erase", confirm_code=person.code)
    assert again.status_code == 409 and "already erased" in again.get_data(as_text=True)
    assert person.code not in client.get("/admin/clients").get_data(as_text=True)
    retention_page = client.get("/admin/retention").get_data(as_text=True)
    assert f"Erased client {person.code}" in retention_page
    # The therapist's record page is the tombstone (410), and the exports are gone (404).
    from tests.conftest import AuthActions
    theirs = app.test_client()
    AuthActions(theirs).login(therapist.email)
    record = theirs.get(f"/clients/{person.code}")
    assert record.status_code == 410
    assert f"Erased client {person.code}" in record.get_data(as_text=True)
    assert theirs.get(f"/clients/{person.code}/export.csv").status_code == 404


def _dry_run_then_sign_in_its_admin(db_session, auth, clinic) -> User:
    """The clinic's retention dry run of 1 December 2026 04:00 UTC, committed; its admin
    signed in."""
    admin = db_session.scalar(select(User).where(User.clinic_id == clinic.id,
                                                 User.is_admin.is_(True)))
    retention.dry_run(db_session, clinic, dt.datetime(2026, 12, 1, 4, tzinfo=dt.UTC),
                      base_url="http://x")
    db_session.commit()
    auth.login(admin.email)
    return admin


def test_retention_page_lists_the_latest_dry_run_by_code(ended, auth, client, db_session):
    person, _other, clinic = ended
    _dry_run_then_sign_in_its_admin(db_session, auth, clinic)
    html = client.get("/admin/retention").get_data(as_text=True)
    assert person.code in html and "2019-06-01" in html and "2026-12-15" in html
    assert CANARY not in html


def _only_event(session, action: str) -> AuditEvent:
    session.expire_all()
    events = list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))
    assert len(events) == 1, [(e.action, e.object_id) for e in events]
    return events[0]


def _stored(session, event: AuditEvent) -> str:
    """The event's row as stored, every column, as text."""
    table = AuditEvent.__table__
    return repr(tuple(session.execute(select(table).where(table.c.id == event.id)).one()))


def _personal_data_in(session, event: AuditEvent) -> list[str]:
    """Which of the canary clients' personal details (names, e-mail, phone, parts of them)
    the event's stored row holds, in any column."""
    row = _stored(session, event).lower()
    details = (CANARY, "Canarywick", "Zebulon", CANARY_MAIL, "900123", "Control Person",
               "control@example.net")
    return [d for d in details if d.lower() in row]


def test_viewing_the_erasure_page_is_audited_once_by_code(canary, auth, client, db_session):
    """Security promise: an admin opening a client's erasure page is in the audit trail
    (action ``admin.client.erase.view``), by code only, once per view."""
    person, _other, _therapist, admin = canary
    auth.login(admin.email)
    assert _count(db_session, AuditEvent, AuditEvent.action == "admin.client.erase.view") == 0
    assert client.get(f"/admin/clients/{person.code}/erase").status_code == 200
    event = _only_event(db_session, "admin.client.erase.view")
    assert (event.outcome, event.actor_user_id, event.clinic_id) == (
        "allowed", admin.id, admin.clinic_id)
    assert (event.object_type, event.object_id, event.client_id) == (
        "client", person.code, person.id)
    assert _personal_data_in(db_session, event) == []


def test_viewing_the_retention_page_is_audited_once(ended, auth, client, db_session):
    """Security promise: an admin opening the Retention page (which lists due clients by
    code) is in the audit trail (action ``admin.retention.view``), naming no client."""
    person, _other, clinic = ended
    admin = _dry_run_then_sign_in_its_admin(db_session, auth, clinic)
    assert _count(db_session, AuditEvent, AuditEvent.action == "admin.retention.view") == 0
    html = client.get("/admin/retention").get_data(as_text=True)
    assert person.code in html  # the page lists the client: the event must not
    event = _only_event(db_session, "admin.retention.view")
    assert (event.outcome, event.actor_user_id, event.clinic_id) == (
        "allowed", admin.id, clinic.id)
    assert (event.object_type, event.object_id, event.client_id) == (
        "page", "admin.retention", None)
    assert _personal_data_in(db_session, event) == []
    assert person.code not in _stored(db_session, event)


def test_erased_client_is_gone_from_the_api(canary, db_session, api):
    """Security promise: the API answers 404 for an erased client (as for no client)."""
    person, _other, therapist, _admin = canary
    erase_client(db_session, person, "request", None, T0)
    db_session.commit()
    assert api(therapist).get(f"/api/v1/clients/{person.code}").status_code == 404


def test_cli_export_of_an_erased_client_is_refused(canary, runner, db_session):
    person, *_rest = canary
    erase_client(db_session, person, "request", None, T0)
    db_session.commit()
    result = runner.invoke(args=["export", "--client", person.code, "--csv"])
    assert result.exit_code == 1 and "was erased" in result.output
