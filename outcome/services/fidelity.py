"""Measurement-based-care fidelity per therapist (issue 19; support.md, "The loop", 7).

Never ranked: one row per supervisee in alphabetical order, no "best" or "worst". Small
numbers are labelled: a share whose denominator is under
:data:`reports.digest.FEW_CASES` (5, a project default, unverified: no published
cutoff) says "few cases: read with care" and is shown all the same. Every share is shown as n/N.

A period is ``start`` <= time < ``end`` (UTC); everything is read as it stood at ``end``
(an acknowledgement, a plan or a closing after ``end`` does not count yet), so the same
period always gives the same numbers. Dates (review dates, episode ends) are clinic
dates: the period's first day is the clinic date of ``start``, its last day that of the
moment before ``end``. The figures, each defined in its function's docstring:

- completion (:func:`completion`);
- median hours to acknowledge a critical answer (:func:`acknowledge_hours`);
- red cases (episodes, not alerts) with a plan within 7 days (:func:`plan_within_days`);
- plans reviewed (:func:`plans_reviewed`);
- red cases back on track (green or white) within 4 scored sessions of a plan, on each
  plan's own measure (:func:`back_on_track`, :func:`plan_measure`);
- ending categories of ended episodes (:func:`endings`).

Sources: support.md ("The loop", 7) names the figures; routing not-on-track cases through
supervision follows Delgadillo et al. 2018 (Lancet Psychiatry 5:564); the ending
categories are those support.md says the ICCE (International Center for Clinical
Excellence) indices ask for, with the mutual / unilateral distinction of Westmacott et
al. 2010 (Psychother Res 20:423).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import defaultdict
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.core.episode_change import primary_measure
from outcome.core.trajectory import ON_TRACK_COLOURS
from outcome.models import ActionPlan
from outcome.models import Alert
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import User
from outcome.services import clinic_settings
from outcome.services.digests.figures import WeekReader
from outcome.services.supervision import primary_outcome
from outcome.services.supervision import supervisees
from questionnaires.loader import InstrumentLibrary
from reports.digest import ENDING_CATEGORIES
from reports.digest import ENDING_OF_REASON
from reports.digest import FEW_CASES
from reports.digest import HoursFigure
from reports.digest import Share
from reports.digest import TherapistFidelity

__all__ = ["ENDING_CATEGORIES", "ENDING_OF_REASON", "FEW_CASES", "PERIOD_WEEKS",
           "PLAN_WITHIN_DAYS", "SESSIONS_AFTER_PLAN", "Period", "fidelity"]

PLAN_WITHIN_DAYS = 7      # support.md, "The loop", 7: red cases with a plan within 7 days
SESSIONS_AFTER_PLAN = 4   # support.md, "The loop", 7: back on track within 4 sessions
# Back on track = outcome.core.trajectory.ON_TRACK_COLOURS (green or white), as the
# plan's follow-up reads it; yellow is still off track (domain.md section 4).
PERIOD_WEEKS = 12         # the period the page and the digest show (the digest's trend)


@dataclass(frozen=True)
class Period:
    """``start`` <= time < ``end`` (UTC) and its first and last clinic dates."""

    start: dt.datetime
    end: dt.datetime
    first_day: dt.date
    last_day: dt.date

    @classmethod
    def of(cls, start: dt.datetime, end: dt.datetime, timezone: str) -> Period:
        tz = zoneinfo.ZoneInfo(timezone)
        return cls(start, end, start.astimezone(tz).date(),
                   (end - dt.timedelta(microseconds=1)).astimezone(tz).date())


def _clinic_date(moment: dt.datetime, timezone: str) -> dt.date:
    return moment.astimezone(zoneinfo.ZoneInfo(timezone)).date()


def completion(reader: WeekReader, episode_ids: set[int], period: Period) -> Share:
    """Measure completion: sessions in the period (scheduled or attended, started in it)
    at which the client answered the clinic's main outcome measure, of all those sessions.

    The one definition the supervision page and the weekly digest use
    (:meth:`outcome.services.digests.figures.WeekReader.completion_between`; domain.md
    section 7); not a copy of it.
    """
    figure = reader.completion_between(episode_ids, period.start, period.end)
    return Share(figure.count, figure.n)


def acknowledge_hours(alerts: Iterable, period: Period) -> HoursFigure:
    """Median hours to acknowledge a critical answer: over the ``critical_item`` alerts
    raised in the period, the median of (acknowledged - raised) in hours of those
    acknowledged before the period's end; shown with how many were acknowledged of how
    many were raised (an alert still open is counted in the second, never as 0 hours).

    Source: support.md, "The loop", 7 ("time to acknowledge a critical answer"); users.md
    (a client's self-harm answer: "their therapist must know today").
    """
    raised = [a for a in alerts if a.kind == "critical_item"
              and period.start <= a.raised_dt < period.end]
    hours = [(a.acknowledged_dt - a.raised_dt).total_seconds() / 3600 for a in raised
             if a.acknowledged_dt is not None and a.acknowledged_dt < period.end]
    return HoursFigure(float(np.median(hours)) if hours else None, len(hours), len(raised))


def plan_within_days(alerts: Iterable, plans: list, period: Period,
                     days: int = PLAN_WITHIN_DAYS) -> Share:
    """Red cases with an action plan within 7 days: cases, not alerts.

    A case is an episode with a ``not_on_track`` alert raised in the period (``start`` <=
    raised < ``end``). An alert that cleared by itself (resolved without a plan:
    ``resolved_dt`` set, ``plan_id`` NULL) before its 7 days (168 hours) ran out and
    before the period's end does not make a case: the client came back on track before a
    plan was due. The case's alert is the episode's first alert in the period that did
    not clear so. N: those cases, less the ones still waiting (no plan yet and their
    alert's 7 days not passed by the period's end). n: the cases whose episode got an
    action plan recorded from their alert's time up to 7 days after it, before the
    period's end. Each episode counts once, however many alerts it had.

    Source: support.md, "The loop", 7 ("red cases with a plan within 7 days"); a
    not-on-track alert is resolved by a plan (support.md, "The loop", 4).
    """
    window = dt.timedelta(days=days)
    by_episode: dict[int, list] = defaultdict(list)
    for plan in plans:
        by_episode[plan.episode_id].append(plan.created_dt)
    first: dict[int, dt.datetime] = {}
    for alert in sorted(alerts, key=lambda a: a.raised_dt):
        if alert.kind != "not_on_track" or not period.start <= alert.raised_dt < period.end \
                or alert.episode_id in first:
            continue
        cleared = (alert.plan_id is None and alert.resolved_dt is not None
                   and alert.resolved_dt < min(alert.raised_dt + window, period.end))
        if not cleared:
            first[alert.episode_id] = alert.raised_dt
    count = n = 0
    for episode_id, raised in first.items():
        planned = any(raised <= when <= raised + window and when < period.end
                      for when in by_episode[episode_id])
        if planned:
            count, n = count + 1, n + 1
        elif raised + window <= period.end:
            n += 1
    return Share(count, n)


def plans_reviewed(plans: list, period: Period, timezone: str) -> Share:
    """Plans reviewed: of the plans whose review date falls in the period (first to last
    day, clinic dates) and that were still open on their review date, those the therapist
    closed or revised on or after the review date and before the period's end (status
    ``closed`` or ``revised``, ``closed_dt`` on or after ``review_on``). A plan closed or
    revised before its review date is left out: its review date never came while it was
    in force.

    Source: support.md, "The loop", 5 ("At the review date ... Close or revise the plan")
    and 7 ("plans reviewed").
    """
    count = n = 0
    for plan in plans:
        if not period.first_day <= plan.review_on <= period.last_day:
            continue
        closed_on = (_clinic_date(plan.closed_dt, timezone)
                     if plan.status in ("closed", "revised") and plan.closed_dt else None)
        if closed_on is not None and closed_on < plan.review_on:
            continue
        n += 1
        if closed_on is not None and plan.closed_dt < period.end:
            count += 1
    return Share(count, n)


def back_on_track(colours: Callable[[Any], list[tuple[dt.datetime, str]]], plans: list,
                  ended: dict[int, dt.date | None], period: Period) -> tuple[Share, int]:
    """Red cases back on track within 4 scored sessions of a plan, and how many wait.

    ``colours(plan)`` is the plan's episode's colour after each valid score on the plan's
    own measure (:func:`plan_measure`: ``plan.baseline["instrument"]``, else the
    episode's primary measure, as the plan's follow-up reads it), oldest first, by the
    engine's rule on the stored scores
    (:meth:`~outcome.services.digests.figures.WeekReader.colours_by_score`).

    The cases: first plans (not revisions) recorded in the period on an episode whose
    colour on that measure was red just before the plan. Back on track: the colour read
    after one of the next 4 valid scores (completed after the plan and before the
    period's end) is green or white (:data:`outcome.core.trajectory.ON_TRACK_COLOURS`:
    on track, or in the functional range; yellow, less progress than expected, is still
    off track, domain.md section 4). Not back: those 4 scores without green or white, or
    the episode ended (on or before the period's last day) before one. Waiting (left out
    of N, counted apart): fewer than 4 scores since the plan, none green or white, and
    the episode still open.

    Source: support.md, "The loop", 7 ("red cases back on track within 4 sessions of a
    plan"); domain.md section 4 (the colours). Colours as of a time come from the stored
    score history, not from the episode's current colour.
    """
    count = n = waiting = 0
    for plan in plans:
        if plan.revised_from_id is not None or not period.start <= plan.created_dt < period.end:
            continue
        history = colours(plan)
        before = [colour for when, colour in history if when < plan.created_dt]
        if not before or before[-1] != "red":
            continue
        after = [colour for when, colour in history
                 if plan.created_dt <= when < period.end][:SESSIONS_AFTER_PLAN]
        closed = ended.get(plan.episode_id)
        if any(colour in ON_TRACK_COLOURS for colour in after):
            count, n = count + 1, n + 1
        elif len(after) >= SESSIONS_AFTER_PLAN or (closed is not None
                                                    and closed <= period.last_day):
            n += 1
        else:
            waiting += 1
    return Share(count, n), waiting


def plan_measure(baseline: dict | None, episode_primary: str | None,
                 clinic_primary: str) -> str:
    """The measure a plan is followed up on: the instrument of its baseline (the
    episode's main measure when the plan was made), else the episode's own primary
    measure, else the clinic's (``primary_measure`` setting): the reading of
    ``outcome.services.support.main_measure`` and the plan's follow-up, so the fidelity
    figure and the follow-up agree."""
    instrument = (baseline or {}).get("instrument")
    return str(instrument) if instrument else primary_measure(episode_primary,
                                                               clinic_primary)


def endings(episodes: Iterable, period: Period) -> dict[str, Share]:
    """Ending categories of ended episodes: of the episodes that ended in the period
    (``closed_on`` from its first to its last day), the share in each category of
    :data:`~reports.digest.ENDING_CATEGORIES`, by the therapist's recorded end reason:
    completed -> planned, mutual -> mutual, dropped_out -> unilateral (the client ended
    it), referred / other / none recorded -> other.

    Source: support.md, "The loop", 7 ("dropout categories of ended episodes (planned,
    mutual, unilateral: the ICCE indices ask for these)"); mutual versus unilateral
    termination as in Westmacott et al. 2010, Psychother Res 20:423.
    """
    ended = [e for e in episodes if e.closed_on is not None
             and period.first_day <= e.closed_on <= period.last_day]
    counts = dict.fromkeys(ENDING_CATEGORIES, 0)
    for e in ended:
        counts[ENDING_OF_REASON.get(e.end_reason or "", "other")] += 1
    return {c: Share(counts[c], len(ended)) for c in ENDING_CATEGORIES}


def fidelity(session: Session, supervisor: User, library: InstrumentLibrary, *,
             start: dt.datetime, end: dt.datetime) -> list[TherapistFidelity]:
    """The fidelity figures of each of the supervisor's supervisees for the period
    ``start`` <= time < ``end``, read as at ``end``, by name (alphabetical, never
    ranked). Read through the one scoping function (the supervisor's visible clients)."""
    clinic = session.get(Clinic, supervisor.clinic_id)
    assert clinic is not None
    people = supervisees(session, supervisor) if supervisor.is_active else []
    if not people:
        return []
    period = Period.of(start, end, clinic.timezone)
    therapist_ids = [p.id for p in people]
    main = primary_outcome(clinic, library)
    reader = WeekReader(session, supervisor, clinic, therapist_ids, main)
    plans = list(session.execute(
        select(ActionPlan.id, ActionPlan.episode_id, ActionPlan.created_dt,
               ActionPlan.review_on, ActionPlan.status, ActionPlan.closed_dt,
               ActionPlan.revised_from_id, ActionPlan.baseline, Episode.primary_instrument_id)
        .join(Episode, Episode.id == ActionPlan.episode_id)
        .where(ActionPlan.episode_id.in_(reader.ids), ActionPlan.created_dt < end)
        .order_by(ActionPlan.created_dt, ActionPlan.id)).all())
    # Each plan's follow-up measure, read through a reader of that measure (same scoping).
    clinic_primary = str(clinic_settings.current(clinic)["primary_measure"])
    readers: dict[str, WeekReader | None] = {main.id: reader} if main is not None else {}

    def colours(plan) -> list[tuple[dt.datetime, str]]:
        instrument_id = plan_measure(plan.baseline, plan.primary_instrument_id,
                                     clinic_primary)
        if instrument_id not in readers:
            try:
                instrument = library.get(instrument_id)
            except KeyError:
                instrument = None
            readers[instrument_id] = (
                WeekReader(session, supervisor, clinic, therapist_ids, instrument)
                if instrument is not None and instrument.role == "outcome" else None)
        chosen = readers[instrument_id]
        return chosen.colours_by_score(plan.episode_id) if chosen is not None else []

    # The not-on-track alerts with what resolved them (plan_within_days).
    nott = list(session.execute(
        select(Alert.id, Alert.episode_id, Alert.kind, Alert.raised_dt, Alert.resolved_dt,
               Alert.plan_id)
        .where(Alert.episode_id.in_(reader.ids), Alert.kind == "not_on_track")
        .order_by(Alert.raised_dt, Alert.id)).all())
    ended = {e.id: e.closed_on for e in reader.episodes}
    rows = []
    for person in people:
        episodes = [e for e in reader.episodes if e.therapist_id == person.id]
        ids = {e.id for e in episodes}
        alerts = [a for a in reader.alerts if a.episode_id in ids]
        own_plans = [p for p in plans if p.episode_id in ids]
        back, waiting = back_on_track(colours, own_plans, ended, period)
        rows.append(TherapistFidelity(
            therapist_name=person.display_name,
            completion=completion(reader, ids, period),
            acknowledge=acknowledge_hours(alerts, period),
            plan_within_7_days=plan_within_days(
                [a for a in nott if a.episode_id in ids], own_plans, period),
            plans_reviewed=plans_reviewed(own_plans, period, clinic.timezone),
            back_on_track=back, back_on_track_waiting=waiting,
            endings=endings(episodes, period)))
    return rows


def last_weeks(end: dt.datetime, weeks: int = PERIOD_WEEKS) -> tuple[dt.datetime, dt.datetime]:
    """The period of ``weeks`` weeks ending at ``end``: (start, end)."""
    return end - dt.timedelta(weeks=weeks), end
