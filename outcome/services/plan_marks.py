"""What the therapist's pages say about the loop after a signal (issue 19), in few queries.

Read-only helpers for the caseload's small plan marker, the client page's alerts (which
plan resolved which alert) and the pre-session brief; the loop itself (checks, plans,
follow-up) is :mod:`outcome.services.support`. Sources: ``../shared/design/support.md``
("The loop").
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from typing import NamedTuple

from sqlalchemy import Integer
from sqlalchemy import Select
from sqlalchemy import bindparam
from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.models import ActionPlan
from outcome.models import Alert
from outcome.models import Client
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import QuestionnaireLink
from outcome.models import SupportCheck
from outcome.services.links import check_link

# The caseload's plan marker for an open episode, most pressing first: an open plan whose
# review date has come; a support check answered and no plan recorded since; an open plan
# before its review date; a check sent and not yet answered.
MARKS = ("review_due", "check_answered", "plan_open", "check_sent")


class PlanMark(NamedTuple):
    """A client's plan marker: its kind (one of :data:`MARKS`) and, for an open plan, its
    review date."""

    kind: str
    review_on: dt.date | None = None


def plan_marks(session: Session, therapist_id: int, today: dt.date,
               now: dt.datetime | None = None) -> dict[str, PlanMark]:
    """Client code -> the plan marker of each open episode of ``therapist_id`` that has
    one; ``today`` is the clinic's calendar day (a review is due on its review date and
    after); with ``now``, a sent check whose link has closed is not "sent"
    (:func:`check_status`). Reads only."""
    plans_statement, checks_statement = _statements()
    bound = {"therapist_id": therapist_id}
    # Every plan of the open episodes, oldest first: the open ones, and each client's
    # latest plan (whatever its status).
    every_plan = session.execute(plans_statement, bound).all()
    plans = [(code, review_on, created) for code, review_on, created, status in every_plan
             if status == "open"]
    latest_plan = {code: created for code, _review_on, created, _status in every_plan}
    checks = session.execute(checks_statement, bound).all()
    found: dict[str, set[str]] = {}
    reviews = {}
    for code, review_on, _created in plans:
        reviews[code] = review_on
        found.setdefault(code, set()).add("review_due" if review_on <= today else "plan_open")
    for code, check, answered, _episode in checks:
        status = check_status(session, check, now) if now is not None else check.status
        if status == "sent":
            found.setdefault(code, set()).add("check_sent")
        elif answered is not None and (code not in latest_plan
                                       or aware(latest_plan[code]) < aware(answered)):
            found.setdefault(code, set()).add("check_answered")
    out = {}
    for code, marks in found.items():
        kind = next(m for m in MARKS if m in marks)
        out[code] = PlanMark(kind, reviews.get(code) if kind in ("review_due", "plan_open")
                             else None)
    return out


@functools.cache
def _statements() -> tuple[Select, Select]:
    """:func:`plan_marks`' two statements, built once (issue 21: the start page runs them
    on every visit), the therapist bound when run."""
    therapist_id = bindparam("therapist_id", type_=Integer)
    plans = (select(Client.code, ActionPlan.review_on, ActionPlan.created_dt,
                    ActionPlan.status)
             .join(Episode, Episode.id == ActionPlan.episode_id)
             .join(Client, Client.id == Episode.client_id)
             .where(Episode.therapist_id == therapist_id, Episode.closed_on.is_(None))
             .order_by(ActionPlan.created_dt, ActionPlan.id))
    checks = (select(Client.code, SupportCheck, SupportCheck.answered_dt, Episode.id)
              .join(Episode, Episode.id == SupportCheck.episode_id)
              .join(Client, Client.id == Episode.client_id)
              .where(Episode.therapist_id == therapist_id, Episode.closed_on.is_(None),
                     SupportCheck.status.in_(("sent", "answered"))))
    return plans, checks


def aware(moment: dt.datetime) -> dt.datetime:
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


def check_status(session: Session, check: SupportCheck, now: dt.datetime) -> str:
    """The check's status as of ``now`` without writing (pages that only read): a sent
    check whose link can no longer be answered (its window closed, revoked, or gone) is
    ``expired``, as :func:`outcome.services.support.waiting_check` would store it."""
    if check.status != "sent":
        return check.status
    link = session.get(QuestionnaireLink, check.link_id) if check.link_id else None
    if link is not None and link.used_dt is not None:
        return "sent"  # answered; marked by the link's last page
    if link is None or check_link(link, now) in ("expired", "revoked", "unknown"):
        return "expired"
    return "sent"
