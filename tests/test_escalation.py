"""Issue 17: an urgent answer left unacknowledged is escalated, once per level: after the
clinic's period to the therapist again, after twice that to their supervisors (or, with
none, to the admins, naming the therapist only). E-mails carry no clinical content and go
through a real SMTP server on loopback; acknowledging stops any further step."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from outcome.jobs import JOBS
from outcome.jobs import deliver_mail
from outcome.jobs import escalate_urgent_answers
from outcome.models import Alert
from outcome.models import AuditEvent
from outcome.services import clinic_settings
from outcome.services.alerts import acknowledge_alert
from tests.helpers import LIB
from tests.helpers import answer

CLIENT_NAME = "Private Canary-Person"
CLIENT_ADDRESS = "private.canary@example.org"
# Words an e-mail must never carry: the client, the measure, the answer.
CLINICAL = ("PHQ", "item", "suicid", "harm", "dead", "score", "critical", "Canary")


@pytest.fixture
def urgent(db_session, clock, make_user, make_client, make_episode):
    """A therapist's client whose PHQ-9 item 9 was answered (an open critical alert raised
    now), a supervisor (not yet assigned) and an admin."""
    therapist = make_user(display_name="Theo Therapist")
    supervisor = make_user("supervisor", display_name="Sue Supervisor")
    admin = make_user("admin", display_name="Ada Admin")
    person = make_client(therapist, name=CLIENT_NAME, email=CLIENT_ADDRESS)
    episode = make_episode(person)
    answer(db_session, episode, [2, 2], item9=2)
    alert = db_session.scalar(select(Alert).where(Alert.episode_id == episode.id,
                                                  Alert.kind == "critical_item"))
    assert alert is not None and alert.status == "open"
    alert.raised_dt = clock()
    db_session.commit()
    return SimpleNamespace(therapist=therapist, supervisor=supervisor, admin=admin,
                           client=person, episode=episode, alert=alert)


def at(clock, hours: float) -> dt.datetime:
    return clock() + dt.timedelta(hours=hours)


def bodies(smtp) -> list[tuple[list[str], str]]:
    """(recipients, subject and decoded body) of every message the server received."""
    found = []
    for envelope in smtp.messages:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        found.append((envelope.rcpt_tos, f"{message['Subject']}\n{message.get_content()}"))
    return found


def assert_content_free(text: str, urgent) -> None:
    for word in (*CLINICAL, urgent.client.code, urgent.therapist.display_name,
                 CLIENT_ADDRESS):
        assert word.lower() not in text.lower(), word


def test_the_therapist_then_the_supervisor_each_once(app, db_session, clock, smtp, urgent,
                                                     assign):
    assign(urgent.supervisor, urgent.therapist)
    db_session.commit()
    assert escalate_urgent_answers(app, now=at(clock, 23.9)) == 0
    assert escalate_urgent_answers(app, now=at(clock, 24)) == 1
    assert escalate_urgent_answers(app, now=at(clock, 25)) == 0  # once per level
    assert deliver_mail(app, now=at(clock, 25)) == (1, 0, 0)
    [(to, body)] = bodies(smtp)
    assert to == [urgent.therapist.email]
    assert "A client's urgent answer has not been acknowledged for 24 hours." in body
    assert "Please sign in" in body
    assert escalate_urgent_answers(app, now=at(clock, 47)) == 0
    assert escalate_urgent_answers(app, now=at(clock, 48)) == 1
    assert escalate_urgent_answers(app, now=at(clock, 200)) == 0  # nothing after level 2
    assert deliver_mail(app, now=at(clock, 200)) == (1, 0, 0)
    to, body = bodies(smtp)[1]
    assert to == [urgent.supervisor.email]
    assert "not been acknowledged for 48 hours" in body
    for _to, text in bodies(smtp):
        assert_content_free(text, urgent)
    db_session.refresh(urgent.alert)
    assert (urgent.alert.escalation_level, urgent.alert.escalated_dt) == (2, at(clock, 48))
    events = db_session.scalars(select(AuditEvent).where(
        AuditEvent.action.like("alert.escalate.%")).order_by(AuditEvent.id)).all()
    assert [(e.action, e.actor_kind, e.client_id, e.object_id) for e in events] == [
        ("alert.escalate.therapist", "system", urgent.client.id, str(urgent.alert.id)),
        ("alert.escalate.supervisors", "system", urgent.client.id, str(urgent.alert.id))]


def test_acknowledging_stops_escalation(app, db_session, clock, smtp, urgent, assign):
    assign(urgent.supervisor, urgent.therapist)
    db_session.commit()
    assert escalate_urgent_answers(app, now=at(clock, 24)) == 1
    acknowledge_alert(db_session, urgent.alert, urgent.therapist, "Called; safety plan agreed",
                      at(clock, 30), LIB)
    db_session.commit()
    assert escalate_urgent_answers(app, now=at(clock, 48)) == 0
    deliver_mail(app, now=at(clock, 48))
    assert [to for to, _body in bodies(smtp)] == [[urgent.therapist.email]]


def test_a_job_that_did_not_run_catches_up_both_steps(app, db_session, clock, smtp, urgent,
                                                     assign):
    """The issue's case: an urgent answer left for 114 days escalated nowhere."""
    assign(urgent.supervisor, urgent.therapist)
    db_session.commit()
    assert escalate_urgent_answers(app, now=at(clock, 114 * 24)) == 2
    assert escalate_urgent_answers(app, now=at(clock, 114 * 24)) == 0
    deliver_mail(app, now=at(clock, 114 * 24))
    assert sorted(to[0] for to, _body in bodies(smtp)) == sorted(
        [urgent.therapist.email, urgent.supervisor.email])


def test_without_a_supervisor_the_admins_are_told_the_therapist_only(
        app, auth, client, db_session, clock, smtp, urgent, make_user, assign):
    retired = make_user("supervisor", is_active=False)
    assign(retired, urgent.therapist)  # an inactive supervisor is no supervisor
    db_session.commit()
    escalate_urgent_answers(app, now=at(clock, 48))
    deliver_mail(app, now=at(clock, 48))
    recipients = sorted(to[0] for to, _body in bodies(smtp))
    assert recipients == sorted([urgent.therapist.email, urgent.admin.email])
    admin_body = next(body for to, body in bodies(smtp) if to == [urgent.admin.email])
    assert "the therapist has no supervisor assigned" in admin_body
    assert_content_free(admin_body, urgent)
    clock.advance(hours=50)  # the app shares the test's clock
    auth.login(urgent.admin.email)
    html = client.get("/admin/").get_data(as_text=True)
    assert "Theo Therapist has an urgent answer" in html and "no supervisor" in html
    assert CLIENT_NAME not in html and urgent.client.code not in html


def test_the_clinic_sets_the_period(app, db_session, clock, urgent, clinic):
    clinic_settings.update(db_session, clinic, {"urgent_escalation_hours": 2})
    db_session.commit()
    assert escalate_urgent_answers(app, now=at(clock, 2)) == 1
    assert escalate_urgent_answers(app, now=at(clock, 4)) == 1
    for wrong in (0, 169):
        assert "urgent_escalation_hours" in clinic_settings.problems(
            clinic, {"urgent_escalation_hours": wrong})


def test_pages_show_the_escalation_to_whom_it_reached(app, auth, client, db_session, clock,
                                                     urgent, assign):
    assign(urgent.supervisor, urgent.therapist)
    db_session.commit()
    start = clock()
    clock.advance(hours=30)  # the pages' clock (the app shares the test's)
    auth.login(urgent.therapist.email)
    assert "has not been acknowledged" not in client.get("/").get_data(as_text=True)
    escalate_urgent_answers(app, now=start + dt.timedelta(hours=24))
    html = client.get("/").get_data(as_text=True)
    assert f"The urgent answer of {CLIENT_NAME} has not been acknowledged for 30 hours." in html
    assert f'href="/clients/{urgent.client.code}"' in html
    auth.logout()
    auth.login(urgent.supervisor.email)
    assert "Urgent answers not acknowledged" not in client.get("/").get_data(as_text=True)
    auth.logout()
    clock.advance(hours=20)
    escalate_urgent_answers(app, now=clock())
    auth.login(urgent.supervisor.email)
    for page in ("/", "/supervision/"):
        html = client.get(page).get_data(as_text=True)
        assert (f"Client {urgent.client.code} of Theo Therapist: an urgent answer has not "
                f"been acknowledged for 50 hours.") in html, page
        assert CLIENT_NAME not in html
    acknowledge_alert(db_session, urgent.alert, urgent.therapist, "Seen in session",
                      clock(), LIB)
    db_session.commit()
    assert "Urgent answers not acknowledged" not in client.get("/").get_data(as_text=True)


def test_the_scheduler_runs_the_escalation():
    assert "escalate-urgent-answers" in {job_id for job_id, *_rest in JOBS}


def test_ending_the_episode_stops_the_escalation_of_its_open_alert(app, db_session, clock,
                                                                  smtp, urgent, assign):
    """Issue 19 (a known gap of issue 17): an ended episode's open critical alert kept
    escalating. Ended the day it was raised: no step; a critical answer given after the
    end (a follow-up measure) still escalates."""
    assign(urgent.supervisor, urgent.therapist)
    urgent.episode.closed_on, urgent.episode.end_reason = clock().date(), "completed"
    db_session.commit()
    assert escalate_urgent_answers(app, now=at(clock, 48)) == 0
    db_session.refresh(urgent.alert)
    assert urgent.alert.escalation_level == 0
    urgent.alert.raised_dt = clock() + dt.timedelta(days=1)  # after the end
    db_session.commit()
    assert escalate_urgent_answers(app, now=at(clock, 48)) == 1
