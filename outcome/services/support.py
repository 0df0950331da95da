"""After the signal (issue 19): support checks, action plans and their follow-up.

The loop of ``../shared/design/support.md``: a signal (red, reliable deterioration, an
unrepaired rupture) offers a support check; the client answers it through a link of
purpose ``support``; its domain results (:mod:`outcome.core.support`) suggest steps; the
therapist records an action plan, which resolves the signal's alerts; at the review date
the follow-up says whether the client came back on track, and the plan is closed or
revised. Functions flush; the edge commits.

INTERFACE (issue 19): implemented by the "support-services" helper. Signatures are the
contract other helpers code against; do not change them without saying so.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from outcome.core.support import CheckReading
from outcome.models import ActionPlan
from outcome.models import Alert
from outcome.models import Episode
from outcome.models import QuestionnaireLink
from outcome.models import SupportCheck
from outcome.models import User
from questionnaires.loader import InstrumentLibrary

# The alert kinds an action plan resolves; a bare acknowledgement note is refused for them
# (support.md, "The loop", 4). Critical answers keep their acknowledgement.
PLAN_KINDS = ("not_on_track", "rupture", "unrepaired_rupture")
NOTE_MAX = 2000


class SupportError(ValueError):
    """A request about a check or a plan that cannot be done; the message says why."""


@dataclass(frozen=True)
class Offer:
    """Why a support check is offered for an episode now, or None from :func:`offer_for`."""

    reason: str            # one of models.support.CHECK_REASONS except "therapist"
    alert_id: int | None   # the open alert behind it


@dataclass(frozen=True)
class CheckView:
    """A check as the therapist sees it: its row, its state and (once answered) reading."""

    check: SupportCheck
    reading: CheckReading | None   # None until answered


@dataclass(frozen=True)
class FollowUp:
    """Whether the client came back on track since a plan (support.md, "The loop", 5).

    ``colour_then``/``colour_now``: the main measure's colour at the plan and now;
    ``score_then``/``score_now`` and ``change`` (now - then, in the measure's points);
    ``sessions_since``: scored sessions after the plan; ``back_on_track``: colour now is
    green or amber (not red), None when no score has come since the plan.
    """

    instrument_id: str | None
    colour_then: str | None
    colour_now: str | None
    score_then: float | None
    score_now: float | None
    change: float | None
    sessions_since: int
    back_on_track: bool | None
    is_due: bool           # the review date has come


def offer_for(session: Session, episode: Episode) -> Offer | None:
    """The reason a support check is offered for the episode now, or None."""
    raise NotImplementedError


def start_check(session: Session, *, episode: Episode, user: User | None,
                now: dt.datetime, library: InstrumentLibrary, alert: Alert | None = None,
                reason: str | None = None) -> tuple[SupportCheck, QuestionnaireLink, str]:
    """Create a check and its link (purpose ``support``); return the check, link and token.

    ``user`` None: offered automatically (clinic setting ``support_check_auto``).
    Raises :class:`SupportError` when the episode is ended, a check is already waiting,
    or no support measure is available.
    """
    raise NotImplementedError


def view_check(session: Session, check: SupportCheck, library: InstrumentLibrary) -> CheckView:
    """The check and, once answered, its domain results and suggestions."""
    raise NotImplementedError


def checks_for(session: Session, episode_id: int) -> list[SupportCheck]:
    """The episode's checks, newest first."""
    raise NotImplementedError


def cancel_check(session: Session, check: SupportCheck, user: User, now: dt.datetime) -> None:
    """Withdraw a check not yet answered; its link is revoked."""
    raise NotImplementedError


def record_plan(session: Session, *, episode: Episode, user: User,
                steps: list[dict[str, Any]], note: str, review_on: dt.date,
                now: dt.datetime, library: InstrumentLibrary,
                check: SupportCheck | None = None,
                revises: ActionPlan | None = None) -> ActionPlan:
    """Record an action plan; resolve the episode's open alerts of :data:`PLAN_KINDS`.

    ``steps``: ``{"domain", "suggestion" (id or None), "text", "decision"}`` each, with
    at least one step not declined. ``review_on`` after today. ``revises``: the open plan
    it replaces (marked ``revised``). Audited by the caller.
    """
    raise NotImplementedError


def close_plan(session: Session, plan: ActionPlan, *, user: User, note: str,
               now: dt.datetime, library: InstrumentLibrary) -> ActionPlan:
    """Close an open plan with a note; keeps the follow-up read at closing in ``outcome``."""
    raise NotImplementedError


def follow_up(session: Session, plan: ActionPlan, library: InstrumentLibrary,
              now: dt.datetime) -> FollowUp:
    """Colour and change on the main measure since the plan."""
    raise NotImplementedError


def active_plan(session: Session, episode_id: int) -> ActionPlan | None:
    """The episode's open plan, if any (at most one is open)."""
    raise NotImplementedError


def plans_for(session: Session, episode_id: int) -> list[ActionPlan]:
    """The episode's plans, newest first."""
    raise NotImplementedError
