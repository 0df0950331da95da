"""Saying no to consent (issue 20): a refusal, or a withdrawal and what follows it.

A withdrawal revokes the client's unused links, cancels their waiting support checks and
queues an e-mail to their therapist that names no client and carries no clinical content
(to the clinic's admins, by client code only, when the client has no active therapist).
A refusal revokes the client's unused links except the one it was made on (the client may
still change their mind there, while it is valid) and cancels their waiting support
checks. Either forgets the unsent answers kept by Back on all the client's links.
Kept apart from :mod:`outcome.services.consent` because it sends mail, and the mail
service imports the link service, which asks :func:`outcome.services.consent.may_collect`.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.models import Client
from outcome.models import Clinic
from outcome.models import ConsentDecision
from outcome.models import ConsentText
from outcome.models import Episode
from outcome.models import QuestionnaireLink
from outcome.models import SupportCheck
from outcome.models import User
from outcome.services.consent import record_decision
from outcome.services.consent import status
from outcome.services.explanations import say
from outcome.services.mail import queue_email


def N_(message: str) -> str:  # the gettext convention for "mark only"
    return message


# The therapist's notice on a withdrawal: no client, no code, nothing clinical.
HELLO = N_("Hello,")
WITHDRAWN_SUBJECT = N_("A client withdrew consent to questionnaires")
WITHDRAWN_BODY = N_("One of your clients withdrew their consent to questionnaires on "
                    "%(date)s (UTC). No further answers are collected from them, and their "
                    "open questionnaire links were cancelled. Their record and your "
                    "caseload show who. Please sign in:")

# The admins' notice, when the client has no active therapist: the client's code only
# (admins see codes, to give the client a therapist), nothing clinical.
WITHDRAWN_ADMIN_BODY = N_("A client with no active therapist, code %(code)s, withdrew their "
                          "consent to questionnaires on %(date)s (UTC). No further answers "
                          "are collected from them, and their open questionnaire links were "
                          "cancelled. Nobody else has been told: please give the client a "
                          "therapist. Sign in:")


def decline(session: Session, *, client: Client, text: ConsentText, channel: str,
            now: dt.datetime, link: QuestionnaireLink | None = None,
            user: User | None = None, base_url: str | None = None) -> ConsentDecision:
    """The client said no to ``text``: a refusal, or a withdrawal when they had agreed to
    an earlier version (then as :func:`withdraw`); flush. A refusal keeps ``link`` (the
    one it was made on) usable, so the client can still agree there, revokes their other
    unused links, forgets their unsent drafts and cancels their waiting support checks."""
    if status(session, client).state == "agreed":
        return withdraw(session, client=client, text=text, channel=channel, now=now,
                        link=link, user=user, base_url=base_url)
    row = record_decision(session, client=client, text=text, decision="refused",
                          channel=channel, now=now, link=link, user=user)
    _stop_collecting(session, client, now, keep_link=link)
    session.flush()
    return row


def _stop_collecting(session: Session, client: Client, now: dt.datetime, *,
                     keep_link: QuestionnaireLink | None = None) -> None:
    """Forget every unsent draft of the client's links, revoke their unused links (but
    ``keep_link``) and cancel their waiting support checks."""
    episode_ids = select(Episode.id).where(Episode.client_id == client.id)
    for row in session.scalars(select(QuestionnaireLink).where(
            QuestionnaireLink.episode_id.in_(episode_ids))):
        row.draft = None
        if (row.used_dt is None and row.revoked_dt is None
                and (keep_link is None or row.id != keep_link.id)):
            row.revoked_dt = now
    for check in session.scalars(select(SupportCheck).where(
            SupportCheck.episode_id.in_(episode_ids), SupportCheck.status == "sent")):
        check.status = "cancelled"


def withdraw(session: Session, *, client: Client, text: ConsentText, channel: str,
             now: dt.datetime, link: QuestionnaireLink | None = None,
             user: User | None = None, base_url: str | None = None) -> ConsentDecision:
    """Record a withdrawal, revoke the client's unused links, forget their unsent drafts,
    cancel their waiting support checks and queue the therapist's notice (unless the
    therapist recorded it); flush."""
    row = record_decision(session, client=client, text=text, decision="withdrawn",
                          channel=channel, now=now, link=link, user=user)
    _stop_collecting(session, client, now)
    if user is None or user.id != client.therapist_id:  # or their admins, with none
        tell_therapist(session, client=client, decision=row, base_url=base_url, now=now)
    session.flush()
    return row


def tell_therapist(session: Session, *, client: Client, decision: ConsentDecision,
                   base_url: str | None, now: dt.datetime) -> None:
    """Queue the e-mail telling the client's therapist of a withdrawal: the date only,
    no name, code or clinical content (the record and caseload show who); flush.

    A client with no active therapist: the clinic's active admins are told instead, by
    the client's code only (so that someone gives the client a therapist)."""
    therapist = session.get(User, client.therapist_id) if client.therapist_id else None
    clinic = session.get_one(Clinic, client.clinic_id)
    date = now.astimezone(dt.UTC).strftime("%Y-%m-%d")
    url = (base_url or "").rstrip("/") + "/"
    if therapist is not None and therapist.is_active:
        readers = [(therapist, say(WITHDRAWN_BODY, therapist.locale, date=date))]
    else:
        readers = [(admin, say(WITHDRAWN_ADMIN_BODY, admin.locale, code=client.code,
                               date=date))
                   for admin in session.scalars(select(User).where(
                       User.clinic_id == clinic.id, User.is_admin.is_(True),
                       User.is_active.is_(True)).order_by(User.id))]
    for reader, first in readers:
        queue_email(session, clinic_id=clinic.id, kind="consent_withdrawn",
                    dedupe_key=f"consent_withdrawn:{decision.id}:{reader.id}",
                    to_address=reader.email, subject=say(WITHDRAWN_SUBJECT, reader.locale),
                    body=f"{say(HELLO, reader.locale)}\n\n{first}\n\n{url}\n\n"
                         f"{clinic.name}\n", now=now)
