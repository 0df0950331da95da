"""What became of the e-mail a clinic sends (issue 17): which client a questionnaire-link
message was for (by code), which links a therapist's clients did not receive, and an
admin's retry of a message that could not be delivered.

A link message is tied to its appointment by its dedupe key (``link:<id>:pre``,
``reminder:<id>:pre``, ``post:<id>``, :mod:`outcome.services.reminders`).

A message that was given up has lost its link's nonce (a key to the client's
questionnaires is not kept once a message is sent or given up), so a retry issues the
appointment a fresh link, exactly as a reminder does (the unused old one is revoked), and
sends to the client's address as it is now: the therapist may have corrected it.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

from sqlalchemy import Integer
from sqlalchemy import Select
from sqlalchemy import bindparam
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.models import Appointment
from outcome.models import Client
from outcome.models import Episode
from outcome.models import OutboundEmail
from outcome.models import QuestionnaireLink
from outcome.models import User
from outcome.services.links import CollectionStopped
from outcome.services.links import NothingToAsk
from outcome.services.links import issue_link
from outcome.services.mail import LINK_SLOT
from outcome.services.mail import RETRY_MINUTES
from outcome.services.mail import link_token
from outcome.services.mail import new_link_nonce
from questionnaires.loader import InstrumentLibrary

MAX_ATTEMPTS = len(RETRY_MINUTES) + 1
PRE_KINDS = ("link", "reminder")
LINK_KINDS = (*PRE_KINDS, "post")
# Failing this many times in a row (about 20 minutes) is worth a therapist's attention
# even before the message is given up.
NOTICE_AFTER_ATTEMPTS = 3
_REDACTED_LINK = "/q/[removed after sending]"  # services.mail.redact_links


def appointment_id_of(email: OutboundEmail) -> int | None:
    """The appointment a questionnaire-link message is for; None for other messages."""
    if email.kind not in LINK_KINDS:
        return None
    parts = email.dedupe_key.split(":")
    if len(parts) >= 2 and parts[0] == email.kind and parts[1].isdigit():
        return int(parts[1])
    return None


def client_codes(session: Session, emails: list[OutboundEmail]) -> dict[int, str]:
    """Client code by message id, for the link messages among ``emails`` (one query)."""
    by_appointment = {e.id: a for e in emails if (a := appointment_id_of(e)) is not None}
    if not by_appointment:
        return {}
    codes = dict(session.execute(
        select(Appointment.id, Client.code).join(Episode, Appointment.episode_id == Episode.id)
        .join(Client, Episode.client_id == Client.id)
        .where(Appointment.id.in_(set(by_appointment.values())))).all())
    return {email_id: codes[a] for email_id, a in by_appointment.items() if a in codes}


@dataclass(frozen=True)
class UndeliveredLink:
    """A client of the therapist whose questionnaire link for a coming session was not
    e-mailed (given up, or failing for a while)."""

    client_code: str
    client_name: str
    starts_dt: dt.datetime
    email_id: int


def undelivered_links(session: Session, therapist: User,
                      now: dt.datetime) -> list[UndeliveredLink]:
    """The therapist's clients whose latest pre-session link message for an appointment
    still to come was not delivered: given up, or failed :data:`NOTICE_AFTER_ATTEMPTS`
    times. A later message for the same appointment that went out clears it."""
    # Columns only (issue 21): on the start page, no message body or client name is
    # read or decrypted unless a link was not delivered.
    appointments = session.execute(_upcoming_statement(), {
        "therapist_id": therapist.id, "now": now,
        "until": now + dt.timedelta(days=15)}).all()
    if not appointments:
        return []
    keys = {f"{kind}:{a_id}:pre": a_id for a_id, *_rest in appointments for kind in PRE_KINDS}
    latest: dict[int, tuple] = {}
    for message in session.execute(_messages_statement(), {"keys": list(keys)}):
        latest[keys[message[1]]] = message
    failing = []
    for appointment_id, starts_dt, client_id, code in appointments:
        email = latest.get(appointment_id)
        if email is None:
            continue
        email_id, _key, status, has_error, attempts = email
        if status == "sent":
            continue
        if status == "failed" or (has_error and attempts >= NOTICE_AFTER_ATTEMPTS):
            failing.append((client_id, code, starts_dt, email_id))
    if not failing:
        return []
    names = dict(session.execute(select(Client.id, Client.name).where(
        Client.id.in_({client_id for client_id, *_rest in failing}))).all())
    found = [UndeliveredLink(code, names[client_id], starts_dt, email_id)
             for client_id, code, starts_dt, email_id in failing]
    return sorted(found, key=lambda u: (u.starts_dt, u.client_code))


# The start page's statements (issue 21), built once: their parameters are bound when run
# (the list of message keys as one expanding parameter, not a literal per key).
@functools.cache
def _upcoming_statement() -> Select:
    now = bindparam("now", type_=Appointment.starts_dt.type)
    until = bindparam("until", type_=Appointment.starts_dt.type)
    therapist_id = bindparam("therapist_id", type_=Integer)
    return (select(Appointment.id, Appointment.starts_dt, Client.id, Client.code)
            .join(Episode, Appointment.episode_id == Episode.id)
            .join(Client, Episode.client_id == Client.id)
            .where(Episode.therapist_id == therapist_id, Client.therapist_id == therapist_id,
                   Episode.closed_on.is_(None), Appointment.status == "scheduled",
                   Appointment.starts_dt > now, Appointment.starts_dt <= until))


@functools.cache
def _messages_statement() -> Select:
    return (select(OutboundEmail.id, OutboundEmail.dedupe_key, OutboundEmail.status,
                   func.coalesce(OutboundEmail.last_error, "") != "", OutboundEmail.attempts)
            .where(OutboundEmail.dedupe_key.in_(bindparam("keys", expanding=True)))
            .order_by(OutboundEmail.id))


class RetryRefused(ValueError):
    """A message that cannot be sent again; ``reason`` says why (a key the page words):

    ``delivered`` (sent already), ``waiting`` (not tried yet), ``passed`` (the
    appointment has passed or was cancelled, or the episode ended), ``answered`` (the
    client has answered already), ``no_address`` (the client has no e-mail address now),
    ``nothing_to_ask`` (no questionnaire is due), ``no_consent`` (the client declined or
    withdrew consent to questionnaires, issue 20), ``unknown`` (the message no longer
    matches its appointment).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def requeue(session: Session, email: OutboundEmail, *, now: dt.datetime,
            library: InstrumentLibrary, secret_key: str) -> None:
    """Put a message that failed (or keeps failing) back in the outbox, due now, with a
    full set of attempts; a link message gets a fresh link (see the module). Flushes.

    Raises :class:`RetryRefused`, changing nothing, when it cannot be sent usefully.
    """
    if email.status == "sent":
        raise RetryRefused("delivered")
    if email.status == "pending" and not email.last_error:
        raise RetryRefused("waiting")
    if email.kind == "support" and (email.status == "failed" or email.link_nonce is None):
        # A support check's token was derived for that one message (issue 19): once
        # given up it is gone; the therapist starts a new check instead.
        raise RetryRefused("support")
    if email.kind in LINK_KINDS and (email.status == "failed" or email.link_nonce is None):
        _fresh_link(session, email, now=now, library=library, secret_key=secret_key)
    elif email.kind in LINK_KINDS:
        _check_link_message(session, email, now)
    email.status, email.attempts, email.next_attempt_dt = "pending", 0, now
    session.flush()


def _link_context(session: Session, email: OutboundEmail,
                  now: dt.datetime) -> tuple[Appointment, Episode, Client]:
    appointment_id = appointment_id_of(email)
    appointment = session.get(Appointment, appointment_id) if appointment_id else None
    episode = session.get(Episode, appointment.episode_id) if appointment else None
    client = session.get(Client, episode.client_id) if episode else None
    if appointment is None or episode is None or client is None:
        raise RetryRefused("unknown")
    if episode.closed_on is not None or appointment.status in ("cancelled", "missed"):
        raise RetryRefused("passed")
    if email.kind == "post":
        ended = appointment.starts_dt + dt.timedelta(minutes=appointment.duration_minutes)
        if not ended <= now <= ended + dt.timedelta(hours=12):
            raise RetryRefused("passed")
    elif appointment.starts_dt <= now:
        raise RetryRefused("passed")
    purpose = "post" if email.kind == "post" else "pre"
    if session.scalar(select(QuestionnaireLink.id).where(
            QuestionnaireLink.appointment_id == appointment.id,
            QuestionnaireLink.purpose == purpose, QuestionnaireLink.used_dt.is_not(None))):
        raise RetryRefused("answered")
    if not client.email:
        raise RetryRefused("no_address")
    return appointment, episode, client


def _check_link_message(session: Session, email: OutboundEmail, now: dt.datetime) -> None:
    _appointment, _episode, client = _link_context(session, email, now)
    assert client.email is not None
    email.to_address = client.email


def _fresh_link(session: Session, email: OutboundEmail, *, now: dt.datetime,
                library: InstrumentLibrary, secret_key: str) -> None:
    appointment, episode, client = _link_context(session, email, now)
    assert client.email is not None
    body = email.body_text.replace(_REDACTED_LINK, f"/q/{LINK_SLOT}")
    if LINK_SLOT not in body:
        raise RetryRefused("unknown")
    nonce = new_link_nonce()
    try:
        link, _token = issue_link(session, episode=episode,
                                  purpose="post" if email.kind == "post" else "pre",
                                  now=now, library=library, appointment=appointment,
                                  token=link_token(secret_key, nonce))
    except CollectionStopped:  # before NothingToAsk, its base: the true reason
        raise RetryRefused("no_consent") from None
    except NothingToAsk:
        raise RetryRefused("nothing_to_ask") from None
    if not link.battery:
        raise RetryRefused("nothing_to_ask")
    email.body_text, email.link_nonce, email.to_address = body, nonce, client.email


def failed_messages(session: Session, clinic_id: int, limit: int = 100) -> list[OutboundEmail]:
    """The clinic's messages that were given up, newest first."""
    return list(session.scalars(select(OutboundEmail).where(
        OutboundEmail.clinic_id == clinic_id, OutboundEmail.status == "failed")
        .order_by(OutboundEmail.id.desc()).limit(limit)))
