"""E-mail: queued in the outbox in the caller's transaction, delivered by a job.

Messages carry links and practical words only, never clinical content. Delivery
failures are retried with growing waits (1, 5, 15, 60, 240 minutes) and recorded;
after the last attempt the message is marked failed, visible to admins, never dropped
silently. Once a message is sent (or given up), the link token in its stored body is
removed: the outbox is no store of keys to clients' questionnaires.
"""

from __future__ import annotations

import datetime as dt
import re
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage

from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.models import OutboundEmail
from outcome.models import ReportDocument

RETRY_MINUTES = (1, 5, 15, 60, 240)
_LINK = re.compile(r"/q/[A-Za-z0-9_-]{16,}")


def redact_links(text: str) -> str:
    """The text with questionnaire tokens removed (kept only until delivery)."""
    return _LINK.sub("/q/[removed after sending]", text)


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str  # none, starttls, tls
    username: str
    password: str
    sender: str
    timeout: float = 20.0


def smtp_sender(settings: SmtpSettings) -> Callable[[EmailMessage], None]:
    """A function that sends one message through the configured SMTP server."""
    def send(message: EmailMessage) -> None:
        context = ssl.create_default_context()
        if settings.security == "tls":
            server: smtplib.SMTP = smtplib.SMTP_SSL(settings.host, settings.port,
                                                    timeout=settings.timeout, context=context)
        else:
            server = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        with server:
            if settings.security == "starttls":
                server.starttls(context=context)
            if settings.username:
                server.login(settings.username, settings.password)
            server.send_message(message)
    return send


def queue_email(session: Session, *, clinic_id: int, kind: str, dedupe_key: str,
                to_address: str, subject: str, body: str, now: dt.datetime,
                attachment: ReportDocument | None = None) -> OutboundEmail | None:
    """Add a message to the outbox unless one with ``dedupe_key`` exists; flush.

    ``attachment`` is an archived document sent with the message (the digest PDF).
    """
    if session.scalar(select(OutboundEmail.id).where(OutboundEmail.dedupe_key == dedupe_key)):
        return None
    email = OutboundEmail(clinic_id=clinic_id, kind=kind, dedupe_key=dedupe_key,
                          to_address=to_address, subject=subject, body_text=body,
                          next_attempt_dt=now, created_dt=now,
                          attachment_document_id=attachment.id if attachment else None)
    session.add(email)
    session.flush()
    return email


@dataclass(frozen=True)
class DeliveryReport:
    sent: int
    retrying: int
    failed: int


def deliver_due(session: Session, send: Callable[[EmailMessage], None], *, sender: str,
                now: dt.datetime, limit: int = 100) -> DeliveryReport:
    """Try every pending message that is due; record each outcome; flush."""
    due = session.scalars(select(OutboundEmail).where(
        OutboundEmail.status == "pending", OutboundEmail.next_attempt_dt <= now)
        .order_by(OutboundEmail.next_attempt_dt, OutboundEmail.id).limit(limit)).all()
    sent = retrying = failed = 0
    for email in due:
        email.attempts += 1
        try:
            message = EmailMessage()
            message["From"] = sender
            message["To"] = email.to_address
            message["Subject"] = email.subject
            message.set_content(email.body_text)
            if email.attachment_document_id is not None:
                document = session.get(ReportDocument, email.attachment_document_id)
                if document is None:
                    raise LookupError("the attached document is no longer archived")
                maintype, _, subtype = document.media_type.partition("/")
                message.add_attachment(document.content, maintype=maintype, subtype=subtype,
                                       filename=document.filename)
            send(message)
        except Exception as exc:
            email.last_error = f"{type(exc).__name__}: {exc}"[:1000]
            permanent = not isinstance(exc, OSError | smtplib.SMTPException)
            if permanent or email.attempts > len(RETRY_MINUTES):
                email.status = "failed"
                email.body_text = redact_links(email.body_text)
                failed += 1
            else:
                email.next_attempt_dt = now + dt.timedelta(
                    minutes=RETRY_MINUTES[email.attempts - 1])
                retrying += 1
        else:
            email.status, email.sent_dt, email.last_error = "sent", now, None
            # The token is a key to the client's questionnaires: not kept once delivered.
            email.body_text = redact_links(email.body_text)
            sent += 1
    session.flush()
    return DeliveryReport(sent, retrying, failed)
