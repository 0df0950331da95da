"""The supervisor's agenda and their reviews (issue 19; support.md, "The loop", 6).

By client code only: not-on-track and unrepaired-rupture cases without an action plan
``plan_overdue_days`` after their alert, and plans under review (review date reached, or
a plan the supervisor has not yet reviewed). The supervisor records a review: discussed,
plan agreed, follow-up date.

Routing not-on-track cases through supervision follows the largest NHS feedback trial
(Delgadillo et al. 2018, Lancet Psychiatry 5:564), where alerts went to the therapist's
supervisor. The rows (:data:`STATES`, in the order the agenda lists them):

- ``no_plan``: an open ``not_on_track`` or ``unrepaired_rupture`` alert that no plan has
  resolved (``Alert.plan_id`` empty), raised ``plan_overdue_days`` (clinic setting, default
  7) or more days ago, on an open episode; ``days`` = whole days since the alert;
- ``plan_due``: an open plan whose review date has come (on or before today, clinic
  date): it stays on the agenda until the therapist closes or revises it, unless this
  supervisor's latest review of it, made on or after its review date (clinic date), set
  a follow-up date that has not yet come; ``days`` = days since the review date;
- ``follow_up_due``: an open plan whose latest review by this supervisor set a follow-up
  date that has now come (it stays until the plan is closed or revised or a new review
  sets a later date); ``days`` = days since the follow-up date;
- ``plan_new``: an open plan, its review date still to come, that this supervisor has
  not reviewed yet; ``days`` = days since it was recorded.

A review of a plan whose review date has come must set a follow-up date
(:func:`record_review`), so such a plan never leaves the agenda for good while it is
open. A review of a plan before its review date takes the row off until the follow-up
date or the review date, whichever comes first; a review of a case without a plan, until
its follow-up date or, without one, a new alert or plan. Rows name the client by code
and the therapist by name; they carry no client name, answer or item, and of the plan
only the areas of its steps and how many steps each decision has (never their words or
the plan's note). Only the supervisor's own reviews are read: another supervisor's note
is not shown on this agenda (the client's therapist can read a review's note through
the API, ``docs/api.md``).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.core.support import DOMAINS
from outcome.core.support import EXTRA_DOMAINS
from outcome.models import ActionPlan
from outcome.models import Alert
from outcome.models import Client
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import SupervisionReview
from outcome.models import User
from outcome.services import clinic_settings
from outcome.services.access import visible_clients
from outcome.services.supervision import supervisees

# The alert kinds that put a case without a plan on the agenda (support.md, "The loop", 6).
AGENDA_ALERT_KINDS = ("not_on_track", "unrepaired_rupture")
STATES = ("no_plan", "plan_due", "follow_up_due", "plan_new")
NOTE_MAX = 500            # characters of a review's note (the column's width)
FOLLOW_UP_MAX_DAYS = 365  # a follow-up date at most a year ahead


class ReviewError(ValueError):
    """A review that cannot be recorded; ``field`` names the input at fault."""

    def __init__(self, field: str, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.key = key or field  # which message the page shows for it


@dataclass(frozen=True)
class LastReview:
    """The supervisor's latest review of the row's case (their own only)."""

    reviewed_on: dt.date
    discussed: bool
    plan_agreed: bool
    follow_up_on: dt.date | None
    note: str


@dataclass(frozen=True)
class AgendaRow:
    """One case on the agenda, by client code (see the module docstring for states)."""

    state: str
    code: str
    episode_id: int
    therapist_id: int
    therapist_name: str
    days: int
    alert_kind: str | None = None      # no_plan rows: the alert's kind
    plan_id: int | None = None         # plan rows
    review_on: dt.date | None = None   # plan rows: the plan's review date
    last_review: LastReview | None = None
    # plan rows: the domains of the steps taken (not declined), in the check's domain
    # order, and (decision, number of steps) for each decision present, in the order
    # accepted, edited, own, declined; never a step's words or the plan's note
    plan_domains: tuple[str, ...] = ()
    plan_decisions: tuple[tuple[str, int], ...] = ()


DECISION_ORDER = ("accepted", "edited", "own", "declined")
DOMAIN_ORDER = DOMAINS + EXTRA_DOMAINS


def plan_outline(steps: list) -> tuple[tuple[str, ...], tuple[tuple[str, int], ...]]:
    """What the supervisor sees of a plan's steps: the domains of the steps taken (any
    decision but ``declined``), in :data:`DOMAIN_ORDER`, and (decision, count) for each
    decision present, in :data:`DECISION_ORDER`. No step's words."""
    taken = {str(s.get("domain")) for s in steps if s.get("decision") != "declined"}
    domains = tuple(d for d in DOMAIN_ORDER if d in taken) + tuple(
        sorted(taken - set(DOMAIN_ORDER)))
    counts = {d: sum(1 for s in steps if s.get("decision") == d) for d in DECISION_ORDER}
    return domains, tuple((d, n) for d, n in counts.items() if n)


def clinic_today(clinic: Clinic, now: dt.datetime) -> dt.date:
    """Today's date in the clinic's time zone."""
    return now.astimezone(zoneinfo.ZoneInfo(clinic.timezone)).date()


def _episodes(session: Session, supervisor: User) -> dict[int, tuple]:
    """The supervisor's supervisees' open episodes they may see: id -> (code, therapist)."""
    people = {p.id: p for p in supervisees(session, supervisor)} if supervisor.is_active \
        else {}
    if not people or not supervisor.is_supervisor:
        return {}
    visible = visible_clients(supervisor).subquery()
    return {e_id: (code, people[t_id]) for e_id, code, t_id in session.execute(
        select(Episode.id, Client.code, Episode.therapist_id)
        .join(visible, Episode.client_id == visible.c.id)
        .join(Client, Client.id == Episode.client_id)
        .where(Episode.therapist_id.in_(list(people)), Episode.closed_on.is_(None)))}


def _last(review: SupervisionReview | None) -> LastReview | None:
    if review is None:
        return None
    return LastReview(review.reviewed_dt.date(), review.discussed, review.plan_agreed,
                      review.follow_up_on, review.note)


def agenda(session: Session, supervisor: User, now: dt.datetime) -> list[AgendaRow]:
    """The supervisor's agenda at ``now``: rows in the order of :data:`STATES`, longest
    waiting first, then by code (the module docstring defines each row)."""
    clinic = session.get(Clinic, supervisor.clinic_id)
    assert clinic is not None
    episodes = _episodes(session, supervisor)
    if not episodes:
        return []
    ids = list(episodes)
    today = clinic_today(clinic, now)
    overdue = dt.timedelta(days=int(clinic_settings.current(clinic)["plan_overdue_days"]))
    reviews = list(session.scalars(
        select(SupervisionReview).where(SupervisionReview.episode_id.in_(ids),
                                        SupervisionReview.supervisor_id == supervisor.id)
        .order_by(SupervisionReview.reviewed_dt, SupervisionReview.id)))
    latest_of_episode = {r.episode_id: r for r in reviews}
    latest_of_plan = {r.plan_id: r for r in reviews if r.plan_id is not None}
    latest_without_plan = {r.episode_id: r for r in reviews if r.plan_id is None}
    rows: list[AgendaRow] = []

    def hidden_by(review: SupervisionReview | None, since: dt.datetime) -> bool:
        """A review made since ``since`` whose follow-up date has not come."""
        return (review is not None and review.reviewed_dt >= since
                and (review.follow_up_on is None or review.follow_up_on > today))

    for alert in session.scalars(
            select(Alert).where(Alert.episode_id.in_(ids), Alert.status == "open",
                                Alert.kind.in_(AGENDA_ALERT_KINDS), Alert.plan_id.is_(None),
                                Alert.raised_dt <= now - overdue)
            .order_by(Alert.raised_dt, Alert.id)):
        if hidden_by(latest_without_plan.get(alert.episode_id), alert.raised_dt):
            continue
        code, therapist = episodes[alert.episode_id]
        rows.append(AgendaRow("no_plan", code, alert.episode_id, therapist.id,
                              therapist.display_name, (now - alert.raised_dt).days,
                              alert_kind=alert.kind,
                              last_review=_last(latest_of_episode.get(alert.episode_id))))
    for plan in session.scalars(
            select(ActionPlan).where(ActionPlan.episode_id.in_(ids),
                                     ActionPlan.status == "open")
            .order_by(ActionPlan.created_dt, ActionPlan.id)):
        review = latest_of_plan.get(plan.id)
        state, days = None, 0
        if review is not None and review.follow_up_on is not None \
                and review.follow_up_on <= today:
            state, days = "follow_up_due", (today - review.follow_up_on).days
        elif plan.review_on <= today:
            # Past its review date: on the agenda until closed or revised, unless the
            # latest review, made on or after the review date, set a follow-up date
            # still to come.
            if not (review is not None and review.follow_up_on is not None
                    and clinic_today(clinic, review.reviewed_dt) >= plan.review_on):
                state, days = "plan_due", (today - plan.review_on).days
        elif review is None:
            state, days = "plan_new", (today - clinic_today(clinic, plan.created_dt)).days
        if state is None:
            continue
        code, therapist = episodes[plan.episode_id]
        domains, decisions = plan_outline(list(plan.steps or []))
        rows.append(AgendaRow(state, code, plan.episode_id, therapist.id,
                              therapist.display_name, max(0, days), plan_id=plan.id,
                              review_on=plan.review_on,
                              last_review=_last(latest_of_episode.get(plan.episode_id)),
                              plan_domains=domains, plan_decisions=decisions))
    rows.sort(key=lambda r: (STATES.index(r.state), -r.days, r.code))
    return rows


def reviewable_episode(session: Session, supervisor: User, episode_id: int) -> Episode | None:
    """The episode if it is an open episode of one of the supervisor's supervisees whose
    client they may see, else None (the caller answers 404)."""
    if episode_id not in _episodes(session, supervisor):
        return None
    return session.get(Episode, episode_id)


def record_review(session: Session, *, supervisor: User, episode: Episode,
                  plan: ActionPlan | None, discussed: bool, plan_agreed: bool,
                  follow_up_on: dt.date | None, note: str,
                  now: dt.datetime) -> SupervisionReview:
    """Record the supervisor's review of a case on their agenda; flush, never commit.

    Refused with :class:`ReviewError` (nothing stored) when the episode is not an open
    episode of a supervisee the supervisor may see; the plan is not an open plan of that
    episode; a plan is "agreed" without a plan; a plan whose review date has come (on or
    before today, clinic date) is reviewed without a follow-up date (key
    ``follow_up_required``); the follow-up date is not after today
    (clinic date) or more than :data:`FOLLOW_UP_MAX_DAYS` days ahead; or the note is longer
    than :data:`NOTE_MAX` characters. The note is stored with the supervisor's id; their
    agenda shows it to them, and the client's therapist can read it through the API
    (``GET /api/v1/reviews``, docs/api.md); no other supervisor's agenda shows it.
    """
    if reviewable_episode(session, supervisor, episode.id) is None:
        raise ReviewError("episode", "This case is not on your agenda.")
    if plan is not None and (plan.episode_id != episode.id or plan.status != "open"):
        raise ReviewError("plan", "This plan is not an open plan of this case.")
    if plan is None and plan_agreed:
        raise ReviewError("plan_agreed", "There is no plan to agree: this case has none yet.")
    clinic = session.get(Clinic, supervisor.clinic_id)
    assert clinic is not None
    today = clinic_today(clinic, now)
    if plan is not None and follow_up_on is None and plan.review_on <= today:
        raise ReviewError("follow_up_on", "This plan's review date has come: give a "
                          "follow-up date, so the plan comes back to your agenda while it "
                          "stays open.", key="follow_up_required")
    if follow_up_on is not None and not (
            today < follow_up_on <= today + dt.timedelta(days=FOLLOW_UP_MAX_DAYS)):
        raise ReviewError("follow_up_on", "The follow-up date must be after today and "
                          f"at most {FOLLOW_UP_MAX_DAYS} days ahead.")
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise ReviewError("note", f"The note is longer than {NOTE_MAX} characters.")
    review = SupervisionReview(episode_id=episode.id, plan_id=plan.id if plan else None,
                               supervisor_id=supervisor.id, reviewed_dt=now,
                               discussed=bool(discussed), plan_agreed=bool(plan_agreed),
                               follow_up_on=follow_up_on, note=note)
    session.add(review)
    session.flush()
    return review
