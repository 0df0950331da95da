"""E-mail: queued in the outbox in the caller's transaction, delivered by a job.

Messages carry links and practical words only, never clinical content. Delivery
failures are retried with growing waits (1, 5, 15, 60, 240 minutes) and recorded;
after the last attempt the message is marked failed, visible to admins, never dropped
silently. A delivery error is stored with every e-mail address in it masked (a server
that refuses a recipient names the client's address).

The outbox is no store of keys to clients' questionnaires. A questionnaire link is not
written into a stored body: the body holds :data:`LINK_SLOT`, and the row holds a
random nonce from which the token is derived, at queueing and again at sending, as
HMAC-SHA256 keyed with a key derived from the app's secret key. The database alone
therefore holds no usable token (only its SHA-256, on the link). At sending the token is
derived again, checked against its link (a message whose link was withdrawn, used or
has expired is not sent: no dead link), put into the message, and the nonce is
cleared once the message is sent or given up. A retry, or a resend after a crash
between sending and recording it, derives the same token: the client never receives a
dead link. If the secret key changes while a message waits, the derived token matches
no link and the message is not sent (failed, with that reason).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import re
import secrets
import smtplib
import ssl
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.models import OutboundEmail
from outcome.models import QuestionnaireLink
from outcome.services.links import check_link
from outcome.services.links import hash_token

RETRY_MINUTES = (1, 5, 15, 60, 240)
# How messages are written. Python's default folds a long non-ASCII header (a Russian
# subject) into encoded words with the space between two words left outside them, where
# RFC 2047 tells readers to drop it ("сегодняшняявстреча"). Lines up to RFC 5322's 998
# characters leave such a header unfolded, one encoded word, every space kept. Bodies
# stay 7-bit (a non-ASCII one is encoded), whatever the server offers.
MESSAGE_POLICY = default_policy.clone(max_line_length=998, cte_type="7bit")
_LINK = re.compile(r"/q/[A-Za-z0-9_-]{16,}")
# What a stored body holds where the link's token goes; filled in at sending only.
LINK_SLOT = "[link added when sent]"
# An e-mail address anywhere in a text (the local part as RFC 5322 allows it unquoted;
# Unicode letters too, for internationalised addresses).
_ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)*")
MASKED_ADDRESS = "[address]"


def redact_links(text: str) -> str:
    """The text with questionnaire tokens removed (kept only until delivery)."""
    return _LINK.sub("/q/[removed after sending]", text)


def mask_addresses(text: str) -> str:
    """``text`` with every e-mail address replaced by ``[address]``.

    Mail servers quote the recipient in their refusals ("550 <rowan@example.org>:
    Recipient address rejected"); such text is shown to admins, who never see clients'
    contact details.
    """
    return _ADDRESS.sub(MASKED_ADDRESS, text)


def describe_error(exc: BaseException) -> str:
    """What is stored as a delivery's ``last_error``: the exception's class name and its
    text with addresses masked, at most 1000 characters."""
    return mask_addresses(f"{type(exc).__name__}: {exc}")[:1000]


def new_link_nonce() -> str:
    """A random nonce (256 bits) from which a link's token is derived (see the module)."""
    return secrets.token_urlsafe(32)


def link_token(secret_key: str, nonce: str) -> str:
    """The questionnaire-link token of ``nonce``: HMAC-SHA256 under a key derived from the
    app's ``secret_key`` (43 URL-safe characters, 256 bits, like a random token)."""
    key = hmac.new(secret_key.encode("utf-8"), b"outcome outbox link token v1",
                   hashlib.sha256).digest()
    digest = hmac.new(key, nonce.encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class LinkWithdrawn(Exception):
    """The message's link can no longer be used (revoked, used, expired, or unknown after
    a change of secret key): the message is not sent, so no dead link goes out."""


SMTP_SECURITY_MODES = ("auto", "starttls", "tls", "none")


@dataclass(frozen=True)
class SmtpSettings:
    """How to reach the SMTP server. ``security``:

    - ``auto`` (the default): STARTTLS whenever the server offers it, plain otherwise.
      Opportunistic, as mail servers do between themselves (RFC 7435): without
      ``ca_file`` the certificate is not checked (a local relay's is usually
      self-signed), so this defeats eavesdropping, not an active attacker; with
      ``ca_file`` it is verified. ``outcome config check`` says so for a remote host.
    - ``starttls``: STARTTLS required, certificate verified; no plain fallback.
    - ``tls``: TLS from the first byte (port 465), certificate verified.
    - ``none``: plain text (a relay on the same machine only).
    """

    host: str
    port: int
    security: str  # auto, starttls, tls, none
    username: str
    password: str
    sender: str
    timeout: float = 20.0
    ca_file: str = ""


def _verified_context(settings: SmtpSettings) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=settings.ca_file or None)


def _opportunistic_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def smtp_sender(settings: SmtpSettings) -> Callable[[EmailMessage], None]:
    """A function that sends one message through the configured SMTP server.

    Raises :class:`smtplib.SMTPNotSupportedError` when ``starttls`` is required and the
    server does not offer it, or when ``auto`` would send the SMTP password in plain
    text (a server without STARTTLS, or an attacker who stripped it), and
    :class:`ssl.SSLCertVerificationError` when a verified mode meets a certificate it
    cannot trust.
    """
    if settings.security not in SMTP_SECURITY_MODES:
        raise ValueError(f"SMTP security must be one of {', '.join(SMTP_SECURITY_MODES)}; "
                         f"got {settings.security!r}")

    def send(message: EmailMessage) -> None:
        if settings.security == "tls":
            server: smtplib.SMTP = smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=settings.timeout,
                context=_verified_context(settings))
        else:
            server = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        with server:
            if settings.security == "starttls":
                server.starttls(context=_verified_context(settings))
            elif settings.security == "auto":
                server.ehlo_or_helo_if_needed()
                if server.has_extn("starttls"):
                    server.starttls(context=_auto_context(settings))
                elif settings.username:
                    raise smtplib.SMTPNotSupportedError(
                        "the server does not offer STARTTLS; the SMTP password is not sent "
                        "in plain text (set OUTCOME_SMTP_SECURITY=none to allow it)")
            if settings.username:
                server.login(settings.username, settings.password)
            server.send_message(message)
    return send


def _auto_context(settings: SmtpSettings) -> ssl.SSLContext:
    """Verified when a CA file is given, else encryption without authentication."""
    return _verified_context(settings) if settings.ca_file else _opportunistic_context()


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` is this machine (localhost, 127.0.0.0/8, ::1): mail to it never
    crosses a network."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def queue_email(session: Session, *, clinic_id: int, kind: str, dedupe_key: str,
                to_address: str, subject: str, body: str, now: dt.datetime,
                link_nonce: str | None = None) -> OutboundEmail | None:
    """Add a message to the outbox unless one with ``dedupe_key`` exists; flush.

    A message with a questionnaire link has :data:`LINK_SLOT` in ``body`` where the
    token goes and ``link_nonce``, the nonce the token was derived from
    (:func:`link_token`); the token itself is never stored.
    """
    if (link_nonce is None) != (LINK_SLOT not in body):
        raise ValueError("a link nonce goes with a body that has the link slot, and only then")
    if session.scalar(select(OutboundEmail.id).where(OutboundEmail.dedupe_key == dedupe_key)):
        return None
    email = OutboundEmail(clinic_id=clinic_id, kind=kind, dedupe_key=dedupe_key,
                          to_address=to_address, subject=subject, body_text=body,
                          link_nonce=link_nonce, next_attempt_dt=now, created_dt=now)
    session.add(email)
    session.flush()
    return email


@dataclass(frozen=True)
class DeliveryReport:
    sent: int
    retrying: int
    failed: int


def _body_to_send(session: Session, email: OutboundEmail, secret_key: str,
                  now: dt.datetime) -> str:
    """The body with its link's token filled in; :class:`LinkWithdrawn` when the link can
    no longer be used (not yet open is fine: links are sent ahead of their window)."""
    if email.link_nonce is None:
        return email.body_text
    token = link_token(secret_key, email.link_nonce)
    link = session.scalar(select(QuestionnaireLink).where(
        QuestionnaireLink.token_hash == hash_token(token)))
    problem = check_link(link, now)
    if problem not in (None, "not_yet_open"):
        raise LinkWithdrawn(
            f"not sent: the link was withdrawn, used or expired before it could be sent "
            f"({problem})")
    return email.body_text.replace(LINK_SLOT, token)


def _forget_link(email: OutboundEmail) -> None:
    # The token is a key to the client's questionnaires: not kept once delivered or
    # given up (a legacy body, queued before 0012, may hold it in clear).
    email.link_nonce = None
    email.body_text = redact_links(email.body_text)


def seal_pending_links(session: Session, secret_key: str) -> int:
    """Take clear tokens out of pending messages queued before 0012; flush; return how many.

    Such a message was never delivered, so its token has not reached the client: its
    link is given a token derived from a new nonce (:func:`link_token`), and the body
    gets :data:`LINK_SLOT`. A token that matches no link gets a nonce too: at sending it
    matches nothing and the message is not sent.
    """
    sealed = 0
    for email in session.scalars(select(OutboundEmail).where(
            OutboundEmail.status == "pending", OutboundEmail.link_nonce.is_(None),
            OutboundEmail.body_text.contains("/q/"))):
        found = _LINK.search(email.body_text)
        if found is None:
            continue
        old_token = found.group()[len("/q/"):]
        nonce = new_link_nonce()
        link = session.scalar(select(QuestionnaireLink).where(
            QuestionnaireLink.token_hash == hash_token(old_token)))
        if link is not None:
            link.token_hash = hash_token(link_token(secret_key, nonce))
        email.body_text = email.body_text.replace(old_token, LINK_SLOT)
        email.link_nonce = nonce
        sealed += 1
    session.flush()
    return sealed


def deliver_due(session: Session, send: Callable[[EmailMessage], None], *, sender: str,
                now: dt.datetime, secret_key: str, limit: int = 100) -> DeliveryReport:
    """Try every pending message that is due; record each outcome; flush.

    ``secret_key`` is the app's: link tokens are derived from it (see the module).
    Pending messages queued before 0012 are sealed first (:func:`seal_pending_links`).
    """
    seal_pending_links(session, secret_key)
    due = session.scalars(select(OutboundEmail).where(
        OutboundEmail.status == "pending", OutboundEmail.next_attempt_dt <= now)
        .order_by(OutboundEmail.next_attempt_dt, OutboundEmail.id).limit(limit)).all()
    counts = {"sent": 0, "retrying": 0, "failed": 0}
    for email in due:
        counts[attempt_delivery(session, email, send, sender=sender, now=now,
                                secret_key=secret_key)] += 1
    session.flush()
    return DeliveryReport(counts["sent"], counts["retrying"], counts["failed"])


def attempt_delivery(session: Session, email: OutboundEmail,
                     send: Callable[[EmailMessage], None], *, sender: str, now: dt.datetime,
                     secret_key: str) -> str:
    """Try to send one message and record the outcome (no flush): ``sent``, ``retrying``
    (a passing failure; the next attempt is scheduled) or ``failed`` (given up).

    The one send path: the delivery job and an admin's "Retry now" both come here.
    """
    email.attempts += 1
    try:
        message = EmailMessage(policy=MESSAGE_POLICY)
        message["From"] = sender
        message["To"] = email.to_address
        message["Subject"] = email.subject
        message.set_content(_body_to_send(session, email, secret_key, now))
        send(message)
    except Exception as exc:
        email.last_error = describe_error(exc)
        permanent = not isinstance(exc, OSError | smtplib.SMTPException)
        if permanent or email.attempts > len(RETRY_MINUTES):
            email.status = "failed"
            _forget_link(email)
            return "failed"
        email.next_attempt_dt = now + dt.timedelta(minutes=RETRY_MINUTES[email.attempts - 1])
        return "retrying"
    email.status, email.sent_dt, email.last_error = "sent", now, None
    _forget_link(email)
    return "sent"


def settings_from_config(config: Mapping[str, Any]) -> SmtpSettings:
    """The SMTP settings of the app's configuration (``OUTCOME_SMTP_*``, ``MAIL_FROM``)."""
    return SmtpSettings(config["SMTP_HOST"], config["SMTP_PORT"], config["SMTP_SECURITY"],
                        config["SMTP_USERNAME"], config["SMTP_PASSWORD"], config["MAIL_FROM"],
                        ca_file=config.get("SMTP_CA_FILE") or "")
