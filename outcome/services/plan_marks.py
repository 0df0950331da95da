"""What the therapist's pages say about the loop after a signal (issue 19), in few queries.

Read-only helpers for the caseload's small plan marker, the client page's alerts (which
plan resolved which alert) and the pre-session brief; the loop itself (checks, plans,
follow-up) is :mod:`outcome.services.support`. Sources: ``../shared/design/support.md``
("The loop").
"""

from __future__ import annotations

import datetime as dt
import secrets
import zoneinfo
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.models import ActionPlan
from outcome.models import Alert
from outcome.models import Client
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import QuestionnaireLink
from outcome.models import SupportCheck
from outcome.services.explanations import language
from outcome.services.explanations import say
from outcome.services.links import hash_token
from outcome.services.mail import LINK_SLOT
from outcome.services.mail import link_token
from outcome.services.mail import new_link_nonce
from outcome.services.mail import queue_email

# The caseload's plan marker for an open episode, most pressing first: an open plan whose
# review date has come; a support check answered and no plan recorded since; an open plan
# before its review date; a check sent and not yet answered.
MARKS = ("review_due", "check_answered", "plan_open", "check_sent")


def N_(message: str) -> str:  # the gettext convention for "mark only"; said with say()
    return message


# The client's e-mail with a support check's link: no clinical content (security.md),
# in the language of the client's record.
SUPPORT_SUBJECT = N_("A few questions from %(clinic)s")
SUPPORT_FIRST = N_("Your therapist asks you to answer a few short questions before your "
                   "next session. They take a few minutes:")
HELLO = N_("Hello,")
ONLY_FOR_YOU = N_("The link is only for you and works until you have answered; please do "
                  "not forward it.")


class PlanMark(NamedTuple):
    """A client's plan marker: its kind (one of :data:`MARKS`) and, for an open plan, its
    review date."""

    kind: str
    review_on: dt.date | None = None


def plan_marks(session: Session, therapist_id: int, today: dt.date) -> dict[str, PlanMark]:
    """Client code -> the plan marker of each open episode of ``therapist_id`` that has
    one; ``today`` is the clinic's calendar day (a review is due on its review date and
    after). Three queries."""
    plans = session.execute(
        select(Client.code, ActionPlan.review_on, ActionPlan.created_dt)
        .join(Episode, Episode.id == ActionPlan.episode_id)
        .join(Client, Client.id == Episode.client_id)
        .where(Episode.therapist_id == therapist_id, Episode.closed_on.is_(None),
               ActionPlan.status == "open")).all()
    checks = session.execute(
        select(Client.code, SupportCheck.status, SupportCheck.answered_dt, Episode.id)
        .join(Episode, Episode.id == SupportCheck.episode_id)
        .join(Client, Client.id == Episode.client_id)
        .where(Episode.therapist_id == therapist_id, Episode.closed_on.is_(None),
               SupportCheck.status.in_(("sent", "answered")))).all()
    latest_plan = dict(session.execute(
        select(Client.code, ActionPlan.created_dt)
        .join(Episode, Episode.id == ActionPlan.episode_id)
        .join(Client, Client.id == Episode.client_id)
        .where(Episode.therapist_id == therapist_id, Episode.closed_on.is_(None))
        .order_by(ActionPlan.created_dt)).all())
    found: dict[str, set[str]] = {}
    reviews = {}
    for code, review_on, _created in plans:
        reviews[code] = review_on
        found.setdefault(code, set()).add("review_due" if review_on <= today else "plan_open")
    for code, status, answered, _episode in checks:
        if status == "sent":
            found.setdefault(code, set()).add("check_sent")
        elif answered is not None and (code not in latest_plan
                                       or _aware(latest_plan[code]) < _aware(answered)):
            found.setdefault(code, set()).add("check_answered")
    out = {}
    for code, marks in found.items():
        kind = next(m for m in MARKS if m in marks)
        out[code] = PlanMark(kind, reviews.get(code) if kind in ("review_due", "plan_open")
                             else None)
    return out


def _aware(moment: dt.datetime) -> dt.datetime:
    """SQLite gives naive UTC datetimes back; PostgreSQL aware ones."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def resolving_plans(session: Session, episode_id: int) -> dict[int, int]:
    """Alert id -> the action plan that resolved it, for the episode's alerts."""
    return {alert_id: plan_id for alert_id, plan_id in session.execute(
        select(Alert.id, Alert.plan_id).where(Alert.episode_id == episode_id,
                                              Alert.plan_id.is_not(None)))
        if plan_id is not None}


def clinic_today(session: Session, clinic_id: int, now: dt.datetime) -> dt.date:
    """The clinic's calendar day at ``now``."""
    clinic = session.get(Clinic, clinic_id)
    tz = zoneinfo.ZoneInfo(clinic.timezone if clinic is not None else "UTC")
    return now.astimezone(tz).date()


def email_check_link(session: Session, *, check: SupportCheck, link: QuestionnaireLink,
                     client: Client, clinic: Clinic, base_url: str, secret_key: str,
                     now: dt.datetime) -> str:
    """Queue the check's link to the client's address (when they have one) and return
    the token to show once on the therapist's screen.

    An e-mailed link's token is derived from its message's nonce and the app's secret
    key (:func:`outcome.services.mail.link_token`), so it is stored nowhere in clear: the
    link is given that token here (its hash replaces the one made with it). The message
    says nothing clinical. Without an address the token is a fresh random one. Flushes.
    """
    if not client.email:
        token = secrets.token_urlsafe(32)
        link.token_hash = hash_token(token)
        session.flush()
        return token
    nonce = new_link_nonce()
    token = link_token(secret_key, nonce)
    link.token_hash = hash_token(token)
    session.flush()
    code = language(client.locale)
    url = f"{base_url.rstrip('/')}/q/{LINK_SLOT}"
    body = (f"{say(HELLO, code)}\n\n{say(SUPPORT_FIRST, code)}\n\n{url}\n\n"
            f"{say(ONLY_FOR_YOU, code)}\n\n{clinic.name}\n")
    queue_email(session, clinic_id=clinic.id, kind="support", dedupe_key=f"support:{check.id}",
                to_address=client.email, subject=say(SUPPORT_SUBJECT, code, clinic=clinic.name),
                body=body, now=now, link_nonce=nonce)
    return token
