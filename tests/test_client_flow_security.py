"""Regressions from the security review of the client flow."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from outcome.models import AuditDenialCount
from outcome.models import AuditEvent
from outcome.models import OutboundEmail
from outcome.models import QuestionnaireLink
from outcome.services.links import issue_link
from outcome.services.links import steps
from outcome.services.mail import deliver_due
from outcome.services.mail import queue_email
from questionnaires.loader import builtin_library
from tests.conftest import csrf_token

LIB = builtin_library()


@pytest.fixture
def episode(make_user, make_client, make_episode):
    return make_episode(make_client(make_user(), is_progress_shared=True))


def finish(client, token):
    client.get(f"/q/{token}")
    for instrument, count in (("phq9", 9), ("gad7", 7)):
        page = client.get("/q/").get_data(as_text=True)
        client.post("/q/", data={"csrf_token": csrf_token(page), "instrument": instrument,
                                 **{f"{instrument}_{i}": "0" for i in range(1, count + 1)}})


def test_a_finished_client_session_ends_soon_after(client, db_session, clock, episode):
    _, token = issue_link(db_session, episode=episode, purpose="pre", now=clock(),
                          library=LIB)
    db_session.commit()
    finish(client, token)
    assert client.get("/q/").status_code == 200  # the thank-you page, right after
    clock.advance(minutes=16)
    assert client.get("/q/").status_code == 401  # no longer: the session has ended


def test_a_client_session_has_an_absolute_limit(client, db_session, clock, episode):
    _, token = issue_link(db_session, episode=episode, purpose="pre", now=clock(),
                          library=LIB)
    db_session.commit()
    client.get(f"/q/{token}")
    for _ in range(3):  # active every 50 minutes: never idle for an hour
        clock.advance(minutes=50)
        status = client.get("/q/").status_code
    assert status == 401  # but 2.5 hours after opening, the session is over


def test_a_message_queued_before_0012_is_sealed_and_sent_with_a_working_link(
        client, db_session, clock, clinic, episode):
    """Before 0012 a pending body held the token in clear: the delivery job takes it out
    (a new token, derived from a nonce) before anything else, and sends a working link."""
    _, old = issue_link(db_session, episode=episode, purpose="pre", now=clock(),
                        library=LIB)
    db_session.add(OutboundEmail(clinic_id=clinic.id, kind="link", dedupe_key="k1",
                                 to_address="a@example.org", subject="s",
                                 body_text=f"Open http://x/q/{old} now",
                                 next_attempt_dt=clock(), created_dt=clock()))
    db_session.flush()
    sent = []
    report = deliver_due(db_session, sent.append, sender="c@example.org", now=clock(),
                         secret_key="k" * 40)
    assert report.sent == 1
    email = db_session.scalar(select(OutboundEmail))
    assert old not in email.body_text and email.link_nonce is None
    new = sent[0].get_content().split("/q/")[1].split()[0]
    assert new != old and new not in email.body_text
    db_session.commit()
    assert client.get(f"/q/{old}").status_code != 303  # the old token opens nothing
    assert client.get(f"/q/{new}").status_code == 303


def test_one_bad_message_does_not_stall_the_outbox(db_session, clock, clinic):
    for n in range(2):
        queue_email(db_session, clinic_id=clinic.id, kind="link", dedupe_key=f"k{n}",
                    to_address="a@example.org", subject="bad\nheader" if n == 0 else "ok",
                    body="b", now=clock())

    def send(message):
        if "\n" in message["Subject"]:
            raise ValueError("header injection")

    report = deliver_due(db_session, send, sender="c@example.org", now=clock(),
                         secret_key="k" * 40)
    assert (report.sent, report.failed) == (1, 1)
    statuses = db_session.scalars(select(OutboundEmail.status).order_by(OutboundEmail.id))
    assert list(statuses) == ["failed", "sent"]


def test_client_page_views_and_submissions_are_audited(client, db_session, clock, episode):
    _, token = issue_link(db_session, episode=episode, purpose="pre", now=clock(),
                          library=LIB)
    db_session.commit()
    finish(client, token)
    client.get("/q/")  # the thank-you page
    actions = db_session.scalars(select(AuditEvent.action).where(
        AuditEvent.client_id == episode.client_id).order_by(AuditEvent.id)).all()
    assert actions[0] == "link.open"
    assert actions.count("questionnaire.submit") == 2
    assert "questionnaire.view" in actions and "questionnaire.thanks.view" in actions
    client.get("/q/" + "y" * 43)  # an unknown token is counted, per address and minute
    assert db_session.scalar(select(AuditDenialCount.count).where(
        AuditDenialCount.action == "link.open")) == 1


def test_foreign_appointment_link_attempt_is_audited(auth, client, db_session, make_user,
                                                     make_client, make_episode):
    from outcome.services.appointments import book_appointment

    therapist = make_user()
    mine = make_client(therapist)
    make_episode(mine)
    other = make_episode(make_client(make_user()))
    foreign = book_appointment(db_session, other,
                               dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC))
    db_session.commit()
    auth.login(therapist.email)
    page = client.get(f"/clients/{mine.code}/care").get_data(as_text=True)
    response = client.post(f"/clients/{mine.code}/appointments/{foreign.id}/link",
                           data={"csrf_token": csrf_token(page), "purpose": "pre"})
    assert response.status_code == 404
    assert db_session.scalar(select(AuditEvent).where(AuditEvent.action == "link.issue",
                                                      AuditEvent.outcome == "denied"))
    assert db_session.scalar(select(QuestionnaireLink.id)) is None


def test_reissued_link_without_appointment_does_not_ask_twice(client, db_session, clock,
                                                              episode):
    _, token = issue_link(db_session, episode=episode, purpose="pre", now=clock(),
                          library=LIB)
    db_session.commit()
    client.get(f"/q/{token}")
    page = client.get("/q/").get_data(as_text=True)
    client.post("/q/", data={"csrf_token": csrf_token(page), "instrument": "phq9",
                             **{f"phq9_{i}": "0" for i in range(1, 10)}})
    second, _ = issue_link(db_session, episode=episode, purpose="pre", now=clock(),
                           library=LIB)
    assert [(s.instrument_id, s.is_done) for s in steps(db_session, second)] == [
        ("phq9", True), ("gad7", False)]


def test_access_log_never_shows_a_token():
    import io
    from types import SimpleNamespace

    from gunicorn.config import Config

    from outcome.cli.serve import RedactingLogger

    config = Config()
    config.set("accesslog", "-")
    logger = RedactingLogger(config)
    captured = io.StringIO()
    for handler in logger.access_log.handlers:
        handler.stream = captured
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": "/q/abcdefghijklmnopqrstuvwxyz0123",
               "PATH_INFO": "/q/abcdefghijklmnopqrstuvwxyz0123", "QUERY_STRING": "",
               "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1"}
    response = SimpleNamespace(status="303 SEE OTHER", response_length=0, headers=[],
                               sent=0)
    request = SimpleNamespace(headers=[], uri=environ["RAW_URI"])
    logger.access(response, request, environ, dt.timedelta(milliseconds=5))
    line = captured.getvalue()
    assert '"GET /q/[token] HTTP/1.1" 303' in line
    assert "abcdefghijklmnopqrstuvwxyz0123" not in line
