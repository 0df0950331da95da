"""Issue 17: e-mail that could not be delivered, in plain words, retried by an admin
through the same send path, and made known to the therapist; the mail server settings
and a test e-mail. A real SMTP server (aiosmtpd) on loopback, or a closed port."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re

import pytest
from sqlalchemy import select

from outcome.jobs import deliver_mail
from outcome.jobs import send_links
from outcome.models import AuditEvent
from outcome.models import OutboundEmail
from outcome.models import QuestionnaireLink
from outcome.services.appointments import book_appointment
from tests.conftest import csrf_token
from tests.helpers import free_port

CLIENT_NAME = "Rowan Example"
CLIENT_ADDRESS = "rowan.canary@example.org"
SMTP_PASSWORD = "smtp-password-canary-42"


@pytest.fixture
def booked(db_session, clock, make_user, make_client, make_episode):
    therapist = make_user(display_name="Theo Therapist")
    person = make_client(therapist, email=CLIENT_ADDRESS, name=CLIENT_NAME)
    appointment = book_appointment(db_session, make_episode(person),
                                   clock() + dt.timedelta(hours=20))
    db_session.commit()
    return therapist, person, appointment


def refuse_connections(app) -> None:
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=free_port(), SMTP_SECURITY="none")


def fail_completely(app, clock) -> None:
    """Queue the link e-mail and fail it through every attempt (the server is down)."""
    refuse_connections(app)
    assert send_links(app, now=clock()) == 1
    deliver_mail(app, now=clock())
    for minutes in (1, 5, 15, 60, 240):
        clock.advance(minutes=minutes)
        deliver_mail(app, now=clock())


def post(client, page: str, action: str, **data):
    token = csrf_token(client.get(page).get_data(as_text=True))
    return client.post(action, data={"csrf_token": token, **data})


def decoded(envelope) -> str:
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    return f"{message['Subject']}\n{message.get_content()}"


def test_the_page_says_what_happened_in_plain_words_with_the_client_code(
        app, auth, client, db_session, clock, booked, make_user):
    _therapist, person, _appointment = booked
    refuse_connections(app)
    send_links(app, now=clock())
    deliver_mail(app, now=clock())
    admin = make_user("admin")
    auth.login(admin.email)
    html = client.get("/admin/deliveries").get_data(as_text=True)
    assert "Waiting to retry (attempt 2 of 6): the mail server refused the connection" in html
    assert person.code in html and "Questionnaire link" in html
    for hidden in ("ConnectionRefusedError", "Errno", CLIENT_ADDRESS, CLIENT_NAME):
        assert hidden not in html
    auth.logout()
    for minutes in (1, 5, 15, 60, 240):
        clock.advance(minutes=minutes)
        deliver_mail(app, now=clock())
    auth.login(admin.email)
    html = client.get("/admin/deliveries").get_data(as_text=True)
    assert "Could not be delivered: the mail server refused the connection" in html
    assert "Retry now" in html and "Retry all that could not be delivered" in html


@pytest.mark.parametrize(("stored", "words"), [
    ("SMTPRecipientsRefused: {'[address]': (550, b'5.1.1 <[address]>: User unknown')}",
     "the recipient's address does not exist or was refused"),
    ("SMTPDataError: (552, b'Mailbox full')", "the recipient's mailbox is full"),
    ("SMTPSenderRefused: (451, b'Try later', '[address]')",
     "the mail server asked to try again later"),
    ("SMTPAuthenticationError: (535, b'5.7.8 Bad credentials')",
     "the mail server refused the user name or password"),
    ("TimeoutError: timed out", "the mail server did not answer in time"),
    ("gaierror: [Errno -2] Name or service not known", "the mail server's name could not be found"),
    ("LinkWithdrawn: not sent", "the questionnaire link had been withdrawn"),
    ("KeyError: 'x'", "the mail server could not take the message"),
])
def test_exceptions_and_smtp_codes_become_sentences(app, stored, words):
    from outcome.web.admin.deliveries import reason

    with app.test_request_context():
        assert reason(stored).startswith(words)


def test_retry_now_sends_a_working_link_to_the_address_as_it_is_now(
        app, auth, client, db_session, clock, booked, make_user, smtp):
    _therapist, person, _appointment = booked
    smtp_port = app.config["SMTP_PORT"]
    fail_completely(app, clock)
    message = db_session.scalar(select(OutboundEmail))
    db_session.refresh(message)
    assert message.status == "failed" and message.link_nonce is None
    person.email = "rowan.fixed@example.org"  # the therapist corrected the address
    db_session.commit()
    app.config.update(SMTP_PORT=smtp_port)  # the mail server is back
    auth.login(make_user("admin").email)
    response = post(client, "/admin/deliveries", f"/admin/deliveries/{message.id}/retry")
    assert response.status_code in (302, 303)
    assert "Sent." in client.get("/admin/deliveries").get_data(as_text=True)
    [envelope] = smtp.messages
    assert envelope.rcpt_tos == ["rowan.fixed@example.org"]
    url = re.search(r"http://127\.0\.0\.1:5000(/q/[A-Za-z0-9_-]{43})", decoded(envelope))
    assert url, decoded(envelope)
    assert client.get(url.group(1)).status_code == 303  # the fresh link works
    db_session.refresh(message)
    assert (message.status, message.link_nonce) == ("sent", None)
    live = db_session.scalars(select(QuestionnaireLink).where(
        QuestionnaireLink.revoked_dt.is_(None))).all()
    assert len(live) == 1  # the old, undelivered link was revoked
    event = db_session.scalar(select(AuditEvent).where(AuditEvent.action == "mail.retry"))
    assert (event.outcome, event.client_id, event.object_id) == (
        "allowed", person.id, str(message.id))


def test_a_retry_that_fails_again_says_so_and_keeps_retrying(
        app, auth, client, db_session, clock, booked, make_user):
    fail_completely(app, clock)
    message = db_session.scalar(select(OutboundEmail))
    auth.login(make_user("admin").email)
    post(client, "/admin/deliveries", f"/admin/deliveries/{message.id}/retry")
    html = client.get("/admin/deliveries").get_data(as_text=True)
    assert "Waiting to retry (attempt 2 of 6): the mail server refused the connection" in html
    db_session.refresh(message)
    assert (message.status, message.attempts) == ("pending", 1)


def test_no_retry_after_the_session_and_nothing_changes(
        app, auth, client, db_session, clock, booked, make_user):
    fail_completely(app, clock)
    message = db_session.scalar(select(OutboundEmail))
    clock.advance(hours=20)  # the session has passed
    auth.login(make_user("admin").email)
    post(client, "/admin/deliveries", f"/admin/deliveries/{message.id}/retry")
    html = client.get("/admin/deliveries").get_data(as_text=True)
    assert "Not sent again: the session has passed" in html
    db_session.refresh(message)
    assert message.status == "failed"
    event = db_session.scalar(select(AuditEvent).where(AuditEvent.action == "mail.retry"))
    assert event.outcome == "error"


def test_retry_all_puts_the_failed_messages_back_for_the_job(
        app, auth, client, db_session, clock, booked, make_user, smtp):
    smtp_port = app.config["SMTP_PORT"]
    fail_completely(app, clock)
    auth.login(make_user("admin").email)
    post(client, "/admin/deliveries", "/admin/deliveries/retry-failed")
    assert "1 message is back in the outbox" in client.get(
        "/admin/deliveries").get_data(as_text=True)
    app.config.update(SMTP_PORT=smtp_port)
    assert deliver_mail(app, now=clock()) == (1, 0, 0)
    assert len(smtp.messages) == 1


def test_the_therapist_is_told_until_the_link_goes_out(
        app, auth, client, db_session, clock, booked, make_user, smtp):
    therapist, person, _appointment = booked
    smtp_port = app.config["SMTP_PORT"]
    fail_completely(app, clock)
    auth.login(therapist.email)
    html = client.get("/").get_data(as_text=True)
    assert (f"The questionnaire link for {CLIENT_NAME} (session on 17 Nov 2026, 05:00) could "
            f"not be e-mailed. Give the client the link in person or check their address."
            ) in html
    assert f'href="/clients/{person.code}"' in html
    auth.logout()
    other = make_user()
    auth.login(other.email)
    assert CLIENT_NAME not in client.get("/").get_data(as_text=True)
    auth.logout()
    app.config.update(SMTP_PORT=smtp_port)
    admin = make_user("admin")
    auth.login(admin.email)
    message = db_session.scalar(select(OutboundEmail))
    post(client, "/admin/deliveries", f"/admin/deliveries/{message.id}/retry")
    auth.logout()
    auth.login(therapist.email)
    assert "could not be e-mailed" not in client.get("/").get_data(as_text=True)


def test_the_notice_goes_when_the_session_has_passed(app, auth, client, db_session, clock,
                                                     booked):
    therapist, _person, _appointment = booked
    fail_completely(app, clock)
    clock.advance(hours=15)
    auth.login(therapist.email)
    assert "could not be e-mailed" not in client.get("/").get_data(as_text=True)


def test_the_mail_settings_never_show_the_password(app, auth, client, make_user):
    app.config.update(SMTP_HOST="mail.example.net", SMTP_PORT=587, SMTP_SECURITY="starttls",
                      SMTP_USERNAME="outcome-relay", SMTP_PASSWORD=SMTP_PASSWORD,
                      MAIL_FROM="clinic@example.org")
    auth.login(make_user("admin").email)
    html = client.get("/admin/mail").get_data(as_text=True)
    for shown in ("mail.example.net", "587", "starttls", "outcome-relay", "clinic@example.org",
                  "set (not shown)"):
        assert shown in html
    assert SMTP_PASSWORD not in html


def test_a_test_email_goes_to_the_admin_and_is_limited(app, auth, client, db_session, smtp,
                                                       make_user):
    admin = make_user("admin")
    auth.login(admin.email)
    response = post(client, "/admin/mail", "/admin/mail/test")
    assert response.status_code in (302, 303)
    [envelope] = smtp.messages
    assert envelope.rcpt_tos == [admin.email]
    assert "Test e-mail from outcome" in decoded(envelope)
    assert "handed to the mail server" in client.get("/admin/mail").get_data(as_text=True)
    post(client, "/admin/mail", "/admin/mail/test")
    post(client, "/admin/mail", "/admin/mail/test")
    refused = post(client, "/admin/mail", "/admin/mail/test")
    assert refused.status_code == 429
    assert "At most 3 test e-mails in 10 minutes" in refused.get_data(as_text=True)
    assert len(smtp.messages) == 3
    outcomes = db_session.scalars(select(AuditEvent.outcome).where(
        AuditEvent.action == "mail.test").order_by(AuditEvent.id)).all()
    assert outcomes == ["allowed", "allowed", "allowed", "denied"]


def test_a_failed_test_email_is_explained(app, auth, client, make_user):
    refuse_connections(app)
    auth.login(make_user("admin").email)
    post(client, "/admin/mail", "/admin/mail/test")
    html = client.get("/admin/mail").get_data(as_text=True)
    assert "The test e-mail could not be sent: the mail server refused the connection." in html
    assert "ConnectionRefusedError" not in html and "Errno" not in html


def test_another_clinics_message_is_a_404_and_unchanged(
        app, auth, client, db_session, clock, booked, make_user, make_clinic):
    fail_completely(app, clock)
    message = db_session.scalar(select(OutboundEmail))
    stranger = make_user("admin", clinic_id=make_clinic().id)
    db_session.commit()
    auth.login(stranger.email)
    response = post(client, "/admin/deliveries", f"/admin/deliveries/{message.id}/retry")
    assert response.status_code == 404
    db_session.refresh(message)
    assert message.status == "failed"
    event = db_session.scalar(select(AuditEvent).where(AuditEvent.action == "mail.retry"))
    assert (event.outcome, event.actor_user_id) == ("denied", stranger.id)


def test_the_pages_speak_russian(app, auth, client, db_session, clock, booked, make_user):
    therapist, _person, _appointment = booked
    fail_completely(app, clock)
    admin = make_user("admin")
    auth.login(admin.email)
    russian = {"Accept-Language": "ru"}
    html = client.get("/admin/deliveries", headers=russian).get_data(as_text=True)
    assert "Не удалось доставить: почтовый сервер отказал в соединении" in html  # noqa: RUF001
    assert "Повторить сейчас" in html and "Could not be delivered" not in html
    html = client.get("/admin/mail", headers=russian).get_data(as_text=True)
    assert "Отправить тестовое письмо" in html and "Send a test e-mail" not in html
    auth.logout()
    auth.login(therapist.email)
    html = client.get("/", headers=russian).get_data(as_text=True)
    assert f"Ссылку на опросники для {CLIENT_NAME} (сессия 17 нояб. 2026" in html, html[-3000:]


def test_no_retry_after_the_client_declined_and_the_page_says_so(
        app, auth, client, db_session, clock, booked, make_user):
    """Issue 20 review: a retry refused for consent says so, not "nothing to ask"."""
    from outcome.models import Clinic
    from outcome.services import consent
    from outcome.services import consent_withdrawal

    therapist, person, _appointment = booked
    fail_completely(app, clock)
    message = db_session.scalar(select(OutboundEmail))
    text = consent.current_text(db_session, db_session.get(Clinic, person.clinic_id), "en",
                                clock())
    consent_withdrawal.decline(db_session, client=person, text=text, channel="staff",
                               now=clock(), user=therapist)
    db_session.commit()
    auth.login(make_user("admin").email)
    post(client, "/admin/deliveries", f"/admin/deliveries/{message.id}/retry")
    html = client.get("/admin/deliveries").get_data(as_text=True)
    assert "Not sent again: the client declined or withdrew consent" in html
    assert "no questionnaire is due" not in html
    db_session.refresh(message)
    assert message.status == "failed"
