"""Issue 16, findings 3, 4 (tokens in pending e-mails) and 15 (mail): no client address on
admin pages, no usable link token stored in clear, STARTTLS by default, digests kept in the
app with only a notice e-mailed."""

from __future__ import annotations

import datetime as dt
import re
import smtplib
import ssl
import subprocess

import pytest
from sqlalchemy import inspect
from sqlalchemy import select
from sqlalchemy import table
from sqlalchemy import text

from outcome import schema
from outcome.db import make_engine
from outcome.jobs import deliver_mail
from outcome.jobs import send_links
from outcome.models import OutboundEmail
from outcome.models import QuestionnaireLink
from outcome.services.appointments import book_appointment
from outcome.services.links import revoke_unused
from tests.helpers import free_port

CLIENT_ADDRESS = "rowan.canary@example.org"
CLIENT_NAME = "Rowan Canary"


@pytest.fixture
def booked(db_session, clock, make_user, make_client, make_episode):
    client = make_client(make_user(), email=CLIENT_ADDRESS, name=CLIENT_NAME)
    episode = make_episode(client)
    appointment = book_appointment(db_session, episode, clock() + dt.timedelta(hours=20))
    db_session.commit()
    return appointment


class Recorder:
    """aiosmtpd handler: keeps messages and whether each came over TLS; can refuse RCPT."""

    def __init__(self, refuse: bool = False) -> None:
        self.messages: list = []
        self.over_tls: list[bool] = []
        self.refuse = refuse

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        self.over_tls.append(session.ssl is not None)
        return "250 OK"


def start_server(handler, tls_context=None):
    from aiosmtpd.controller import Controller

    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port,
                            tls_context=tls_context)
    controller.start()
    return controller, port


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1, made with openssl for this run."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def server_context(certificate):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def all_stored_text(session) -> str:
    """Every value of every row of every table, as one text (bytes decoded)."""
    parts = []
    for name in inspect(session.connection()).get_table_names():
        for row in session.execute(select(text("*")).select_from(table(name))):
            for value in row:
                if isinstance(value, bytes | memoryview):
                    value = bytes(value).decode("latin-1")
                parts.append(str(value))
    return "\n".join(parts)


# --- finding 3: no client address on /admin/deliveries ----------------------------------


def test_a_refused_recipient_leaves_no_address_in_the_stored_error_or_the_page(
        app, auth, client, db_session, clock, booked, make_user):
    controller, port = start_server(Recorder(refuse=True))
    try:
        app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_SECURITY="none")
        send_links(app, now=clock())
        assert deliver_mail(app, now=clock()) == (0, 1, 0)
    finally:
        controller.stop()
    email = db_session.scalar(select(OutboundEmail))
    db_session.refresh(email)
    assert "Recipient address rejected" in email.last_error  # the server's words stay
    assert CLIENT_ADDRESS not in email.last_error and "@" not in email.last_error
    auth.login(make_user("admin").email)
    html = client.get("/admin/deliveries").get_data(as_text=True)
    # In plain words (issue 17): the reply code 550 names what happened.
    assert "address does not exist or was refused" in html
    assert "Recipient address rejected" in html
    assert CLIENT_ADDRESS not in html and CLIENT_NAME not in html
    assert "SMTPRecipientsRefused" not in html  # a plain-language class, not a class name


def test_fifteen_refused_clients_leave_no_address_on_the_page(
        app, auth, client, db_session, clock, make_user, make_client, make_episode):
    """The finding's measurement: 15 clients whose addresses the server refuses; count
    the client addresses on /admin/deliveries (15 before the fix; 0 now)."""
    therapist = make_user()
    addresses = [f"client{n}.canary@example.org" for n in range(15)]
    for address in addresses:
        book_appointment(db_session, make_episode(make_client(therapist, email=address)),
                         clock() + dt.timedelta(hours=20))
    db_session.commit()
    controller, port = start_server(Recorder(refuse=True))
    try:
        app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_SECURITY="none")
        assert send_links(app, now=clock()) == 15
        assert deliver_mail(app, now=clock()) == (0, 15, 0)
    finally:
        controller.stop()
    auth.login(make_user("admin").email)
    html = client.get("/admin/deliveries").get_data(as_text=True)
    shown = [address for address in addresses if address in html]
    print(f"client addresses on /admin/deliveries: {len(shown)} of {len(addresses)}")
    assert shown == []


def test_the_deliveries_page_masks_every_address_and_names_the_error_class(
        auth, client, db_session, clock, make_user):
    admin = make_user("admin")
    db_session.add(OutboundEmail(
        clinic_id=admin.clinic_id, kind="link", dedupe_key="legacy", to_address=CLIENT_ADDRESS,
        subject="s", body_text="b", status="failed", attempts=6, next_attempt_dt=clock(),
        last_error=f"SMTPDataError: (554, b'<{CLIENT_ADDRESS}> and other@example.net')"))
    db_session.add(OutboundEmail(
        clinic_id=admin.clinic_id, kind="link", dedupe_key="refused", to_address="x@y.org",
        subject="s", body_text="b", status="pending", attempts=1, next_attempt_dt=clock(),
        last_error="ConnectionRefusedError: [Errno 111] Connection refused"))
    db_session.commit()
    auth.login(admin.email)
    html = client.get("/admin/deliveries").get_data(as_text=True)
    assert CLIENT_ADDRESS not in html and "other@example.net" not in html
    assert "the mail server refused the connection" in html.lower()
    assert "ConnectionRefusedError" not in html


def test_the_migration_masks_addresses_already_stored(fresh_database_url):
    engine = make_engine(fresh_database_url)
    try:
        schema.upgrade(engine, "0009")
        now = dt.datetime(2026, 11, 1)
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO clinics (slug, name, timezone, settings, created_dt)"
                              " VALUES ('c', 'C', 'UTC', '{}', :now)"), {"now": now})
            conn.execute(text(
                "INSERT INTO outbound_emails (clinic_id, kind, dedupe_key, to_address, subject,"
                " body_text, status, attempts, next_attempt_dt, last_error, created_dt) VALUES"
                " (1, 'link', 'k', :to, 's', 'b', 'failed', 6, :now, :error, :now)"),
                {"to": CLIENT_ADDRESS, "now": now,
                 "error": f"SMTPRecipientsRefused: {{'{CLIENT_ADDRESS}': (550, b'<"
                          f"{CLIENT_ADDRESS}>: rejected')}}"})
        schema.upgrade(engine)
        with engine.connect() as conn:
            error = conn.execute(text("SELECT last_error FROM outbound_emails")).scalar_one()
        assert CLIENT_ADDRESS not in error and "rejected" in error
        schema.downgrade(engine, "0009")  # the masked text stays masked; the schema goes back
    finally:
        engine.dispose()


# --- finding 4: no usable link token stored in clear -------------------------------------


@pytest.fixture
def issued_tokens(monkeypatch):
    """Every questionnaire-link token issued during the test, as the client gets it."""
    from outcome.services import links

    issued: list[str] = []
    original = links.issue_link

    def recording(*args, **kwargs):
        link, token = original(*args, **kwargs)
        issued.append(token)
        return link, token

    monkeypatch.setattr(links, "issue_link", recording)
    monkeypatch.setattr("outcome.services.reminders.issue_link", recording)
    return issued


def test_no_table_holds_a_usable_token_after_queuing_or_after_sending(
        app, client, db_session, clock, smtp, booked, issued_tokens):
    assert send_links(app, now=clock()) == 1
    [token] = issued_tokens
    assert token not in all_stored_text(db_session)  # pending: sealed, not in clear
    assert deliver_mail(app, now=clock()) == (1, 0, 0)
    [envelope] = smtp.messages
    assert f"/q/{token}" in envelope.content.decode()  # the client gets the real link
    assert token not in all_stored_text(db_session)  # sent: gone
    assert client.get(f"/q/{token}").status_code == 303  # and it works


def test_a_retry_sends_the_same_working_link(app, client, db_session, clock, booked,
                                             issued_tokens):
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=free_port(), SMTP_SECURITY="none")
    send_links(app, now=clock())
    assert deliver_mail(app, now=clock()) == (0, 1, 0)  # nobody listens: retried later
    recorder = Recorder()
    controller, port = start_server(recorder)
    try:
        app.config.update(SMTP_PORT=port)
        clock.advance(minutes=1)
        assert deliver_mail(app, now=clock()) == (1, 0, 0)
    finally:
        controller.stop()
    [token] = issued_tokens
    assert f"/q/{token}" in recorder.messages[0].content.decode()
    assert token not in all_stored_text(db_session)
    assert client.get(f"/q/{token}").status_code == 303


def test_a_crash_after_sending_resends_a_link_that_still_works(
        app, client, db_session, session_factory, clock, booked, issued_tokens):
    """The message went out but its "sent" mark was lost (rolled back): the retry sends
    the same token again, so neither message holds a dead link."""
    from outcome.services.mail import deliver_due

    send_links(app, now=clock())
    sent: list = []
    crashing = session_factory()
    deliver_due(crashing, sent.append, sender="c@example.org", now=clock(),
                secret_key=app.config["SECRET_KEY"])
    crashing.rollback()  # the crash: nothing of the delivery is kept
    crashing.close()
    deliver_due(db_session, sent.append, sender="c@example.org", now=clock(),
                secret_key=app.config["SECRET_KEY"])
    links = [re.search(r"/q/([A-Za-z0-9_-]{43})", m.get_content()).group(1) for m in sent]
    assert len(links) == 2 and links[0] == links[1] == issued_tokens[0]
    db_session.commit()
    assert client.get(f"/q/{links[0]}").status_code == 303


def test_a_pending_message_whose_link_was_withdrawn_is_not_sent(
        app, db_session, clock, smtp, booked):
    """A retry must not send a dead link: the link was revoked while the message waited."""
    send_links(app, now=clock())
    link = db_session.scalar(select(QuestionnaireLink))
    from outcome.models import Episode

    revoke_unused(db_session, db_session.get(Episode, link.episode_id), clock())
    db_session.commit()
    assert deliver_mail(app, now=clock()) == (0, 0, 1)
    assert smtp.messages == []
    email = db_session.scalar(select(OutboundEmail))
    db_session.refresh(email)
    assert email.status == "failed" and "withdrawn" in email.last_error


# --- finding 15: STARTTLS by default; config check warns on plain SMTP --------------------


def test_the_default_upgrades_to_starttls_when_the_server_offers_it(
        app, db_session, clock, booked, certificate):
    from outcome.config import SETTINGS_BY_NAME

    assert SETTINGS_BY_NAME["SMTP_SECURITY"].default == "auto"
    recorder = Recorder()
    controller, port = start_server(recorder, tls_context=server_context(certificate))
    try:
        app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_SECURITY="auto")
        send_links(app, now=clock())
        assert deliver_mail(app, now=clock()) == (1, 0, 0)
    finally:
        controller.stop()
    assert recorder.over_tls == [True]


def test_the_default_sends_in_plain_to_a_server_without_starttls(app, db_session, clock,
                                                                 booked):
    recorder = Recorder()
    controller, port = start_server(recorder)
    try:
        app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_SECURITY="auto")
        send_links(app, now=clock())
        assert deliver_mail(app, now=clock()) == (1, 0, 0)
    finally:
        controller.stop()
    assert recorder.over_tls == [False]


def test_required_starttls_verifies_the_certificate_and_refuses_plain(certificate):
    from email.message import EmailMessage

    from outcome.services.mail import SmtpSettings
    from outcome.services.mail import smtp_sender

    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.org", "b@example.org", "s"
    message.set_content("hello")
    recorder = Recorder()
    controller, port = start_server(recorder, tls_context=server_context(certificate))
    plain_controller, plain_port = start_server(Recorder())
    try:
        trusting = SmtpSettings("127.0.0.1", port, "starttls", "", "", "a@example.org",
                                ca_file=str(certificate[0]))
        smtp_sender(trusting)(message)
        assert recorder.over_tls == [True]
        untrusted = SmtpSettings("127.0.0.1", port, "starttls", "", "", "a@example.org")
        with pytest.raises(ssl.SSLCertVerificationError):
            smtp_sender(untrusted)(message)
        no_tls = SmtpSettings("127.0.0.1", plain_port, "starttls", "", "", "a@example.org")
        with pytest.raises(smtplib.SMTPNotSupportedError):
            smtp_sender(no_tls)(message)
        # auto never sends a password in plain text (STARTTLS missing, or stripped).
        password_in_plain = SmtpSettings("127.0.0.1", plain_port, "auto", "user", "secret",
                                         "a@example.org")
        with pytest.raises(smtplib.SMTPNotSupportedError, match="not sent in plain"):
            smtp_sender(password_in_plain)(message)
    finally:
        controller.stop()
        plain_controller.stop()


@pytest.mark.parametrize(("security", "host", "warned"), [
    ("none", "smtp.example.org", True), ("none", "localhost", True),
    ("auto", "smtp.example.org", True), ("auto", "127.0.0.1", False),
    ("starttls", "smtp.example.org", False), ("tls", "smtp.example.org", False)])
def test_config_check_warns_on_plain_smtp(security, host, warned):
    from outcome.cli.config import smtp_warnings

    warnings = smtp_warnings({"SMTP_SECURITY": security, "SMTP_HOST": host})
    assert bool(warnings) == warned
    assert all("OUTCOME_SMTP_SECURITY" in w for w in warnings)


def test_outcome_config_check_prints_the_warning(tmp_path, fresh_database_url):
    import os
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTCOME_")}
    env.update(OUTCOME_INSTANCE_PATH=str(tmp_path / "instance"),
               OUTCOME_DATABASE_URL=fresh_database_url, OUTCOME_SECRET_KEY="s" * 40,
               OUTCOME_SMTP_SECURITY="none", OUTCOME_SMTP_HOST="smtp.example.org")
    root = Path(__file__).resolve().parent.parent  # this checkout's code, not the venv's
    result = subprocess.run([sys.executable, "-c", "from outcome.cli.main import cli; cli()",
                             "config", "check"], env=env, cwd=root, capture_output=True,
                            text=True, timeout=120)
    assert "warning: OUTCOME_SMTP_SECURITY=none" in result.stderr
