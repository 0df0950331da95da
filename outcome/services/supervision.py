"""A supervisor's view: one row of figures per supervisee.

Figures (domain.md section 7, :mod:`outcome.core.aggregates`): active episodes;
completion (sessions held with the primary outcome measure answered, over sessions
held); the share of active episodes by colour; open alerts and the age of the oldest;
ruptures and the share repaired; and for ended episodes the share reliably improved,
recovered and deteriorated with Wilson 95 % intervals, the pre-post effect size and the
severity-adjusted effect size. Groups with fewer than 10 assessed ended episodes are
labelled small and never ranked: rows are ordered by name.

Episodes are read through the one scoping function, so a supervisor's figures cover
exactly the clients they may see. Change figures use the clinic's primary outcome
measure: the first outcome instrument of its pre-session battery.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.core.aggregates import GroupSummary
from outcome.core.aggregates import summarise_groups
from outcome.core.change import CATEGORIES
from outcome.core.change import NO_DATA
from outcome.core.instruments import Instrument
from outcome.core.trajectory import COLOURS
from outcome.models import Administration
from outcome.models import Alert
from outcome.models import Appointment
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import EpisodeSignal
from outcome.models import SupervisorAssignment
from outcome.models import User
from outcome.models.care import END_REASONS
from outcome.models.care import SESSION_STATUSES
from outcome.services import clinic_settings
from outcome.services.access import visible_clients
from questionnaires.loader import InstrumentLibrary

COUNTED = SESSION_STATUSES  # statuses that take a session number: one list, in models
TOTAL = 0  # group key of the all-supervisees row (user ids start at 1)


@dataclass(frozen=True)
class SuperviseeRow:
    """One supervisee's figures (``therapist`` is None for the total row)."""

    therapist: User | None
    figures: GroupSummary | None
    open_alerts: int
    oldest_alert_days: float | None


@dataclass(frozen=True)
class SupervisionOverview:
    instrument: Instrument | None
    rows: list[SuperviseeRow]
    total: SuperviseeRow


def supervisees(session: Session, supervisor: User) -> list[User]:
    """The supervisor's supervisees (same clinic), by name."""
    return list(session.scalars(
        select(User).join(SupervisorAssignment, SupervisorAssignment.therapist_id == User.id)
        .where(SupervisorAssignment.supervisor_id == supervisor.id,
               SupervisorAssignment.clinic_id == supervisor.clinic_id,
               User.clinic_id == supervisor.clinic_id)
        .order_by(User.display_name, User.id)))


def primary_outcome(clinic: Clinic, library: InstrumentLibrary) -> Instrument | None:
    """The clinic's primary outcome measure (setting ``primary_measure``, domain.md section
    3) if installed, else the first outcome instrument of the pre-session battery."""
    settings = clinic_settings.current(clinic)
    try:
        chosen = library.get(settings["primary_measure"])
    except KeyError:
        chosen = None
    if chosen is not None and chosen.role == "outcome":
        return chosen
    for entry in settings["pre_battery"]:
        instrument_id = entry["instrument"] if isinstance(entry, dict) else entry
        try:
            instrument = library.get(instrument_id)
        except KeyError:
            continue
        if instrument.role == "outcome":
            return instrument
    return None


def overview(session: Session, supervisor: User, library: InstrumentLibrary,
             now: dt.datetime) -> SupervisionOverview:
    """Figures for each supervisee and for all of them together."""
    clinic = session.get(Clinic, supervisor.clinic_id)
    assert clinic is not None
    instrument = primary_outcome(clinic, library)
    people = supervisees(session, supervisor) if supervisor.is_active else []
    ids = [p.id for p in people]
    visible = visible_clients(supervisor).subquery()
    episodes = session.execute(
        select(Episode.id, Episode.therapist_id, Episode.closed_on, EpisodeSignal)
        .join(visible, Episode.client_id == visible.c.id)
        .outerjoin(EpisodeSignal, EpisodeSignal.episode_id == Episode.id)
        .where(Episode.therapist_id.in_(ids)).order_by(Episode.id)).all()
    episode_ids = [e[0] for e in episodes]
    held = _held_sessions(session, episode_ids, now)
    measured = (_measured_sessions(session, episode_ids, instrument.id, now)
                if instrument else {})
    alerts = session.execute(
        select(Episode.therapist_id, func.count(), func.min(Alert.raised_dt))
        .join(Alert, Alert.episode_id == Episode.id)
        .where(Alert.status == "open", Episode.id.in_(episode_ids))
        .group_by(Episode.therapist_id)).all()
    alert_counts = {t: (n, oldest) for t, n, oldest in alerts}

    n = len(episodes)
    group = np.array([e[1] for e in episodes], dtype=np.int64)
    active = np.array([e[2] is None for e in episodes], dtype=bool)
    colour = np.zeros(n, dtype=np.int64)
    ruptures, repaired, unrepaired = (np.zeros(n) for _ in range(3))
    category = np.full(n, NO_DATA, dtype=np.int64)
    intake, last = np.full(n, np.nan), np.full(n, np.nan)
    for i, (_episode_id, _t, _closed, signal) in enumerate(episodes):
        if signal is None:
            continue
        colour[i] = COLOURS.index(signal.colour)
        ruptures[i], repaired[i] = signal.ruptures, signal.ruptures_repaired
        unrepaired[i] = signal.ruptures_unrepaired
        change = (signal.state.get("outcomes", {}).get(instrument.id, {}).get("change")
                  if instrument else None)
        if change:
            category[i] = CATEGORIES.index(change["level"])
            intake[i] = change["numbers"]["intake"]
            last[i] = change["numbers"]["observed"]
    sessions = np.array([held.get(e, 0) for e in episode_ids], dtype=float)
    answered = np.array([measured.get(e, 0) for e in episode_ids], dtype=float)
    arrays: dict[str, Any] = dict(active=active, sessions=sessions, sessions_measured=answered,
                  colour=colour, colour_names=COLOURS, ruptures=ruptures, repaired=repaired,
                  unrepaired=unrepaired, ended=~active, category=category, intake=intake,
                  last=last, d=instrument.d if instrument else -1)
    by_therapist = summarise_groups(group=group, **arrays) if n else {}
    together = summarise_groups(group=np.full(n, TOTAL), **arrays) if n else {}

    def row(user: User | None, figures: GroupSummary | None, keys: list[int]
            ) -> SuperviseeRow:
        count = sum(alert_counts.get(k, (0, None))[0] for k in keys)
        oldest = [alert_counts[k][1] for k in keys if k in alert_counts]
        age = max(0.0, (now - min(oldest)).total_seconds() / 86400) if oldest else None
        return SuperviseeRow(user, figures, count, age)

    rows = [row(p, by_therapist.get(p.id), [p.id]) for p in people]
    return SupervisionOverview(instrument, rows, row(None, together.get(TOTAL), ids))


def _held_sessions(session: Session, episode_ids: list[int], now: dt.datetime
                   ) -> dict[int, int]:
    if not episode_ids:
        return {}
    return dict(session.execute(
        select(Appointment.episode_id, func.count())
        .where(Appointment.episode_id.in_(episode_ids), Appointment.status.in_(COUNTED),
               Appointment.starts_dt <= now)
        .group_by(Appointment.episode_id)).all())


def _measured_sessions(session: Session, episode_ids: list[int], instrument_id: str,
                       now: dt.datetime) -> dict[int, int]:
    """Held sessions whose primary outcome measure the client answered."""
    if not episode_ids:
        return {}
    answered = select(Administration.appointment_id).where(
        Administration.episode_id.in_(episode_ids), Administration.respondent == "client",
        Administration.instrument_id == instrument_id,
        Administration.appointment_id.is_not(None))
    return dict(session.execute(
        select(Appointment.episode_id, func.count())
        .where(Appointment.episode_id.in_(episode_ids), Appointment.status.in_(COUNTED),
               Appointment.starts_dt <= now, Appointment.id.in_(answered))
        .group_by(Appointment.episode_id)).all())


def is_supervisee(session: Session, supervisor: User, therapist_id: int) -> bool:
    """Whether ``therapist_id`` is one of the supervisor's supervisees."""
    return any(p.id == therapist_id for p in supervisees(session, supervisor))


@dataclass(frozen=True)
class EndedByReason:
    """Ended episodes of one end reason (issue 17): how many, and how many ended in each
    change category of the episode (:data:`outcome.core.change.CATEGORIES`; ``None``:
    no change score)."""

    reason: str
    ended: int
    categories: dict[str | None, int]


def ended_by_reason(session: Session, supervisor: User) -> list[EndedByReason]:
    """The supervisees' ended episodes counted by end reason and change category, in the
    order of :data:`outcome.models.care.END_REASONS` (reasons with none left out).

    Read through the one scoping function, as :func:`overview`; the change category is
    the episode's stored one (its primary measure or pair, domain.md section 3).
    """
    people = supervisees(session, supervisor) if supervisor.is_active else []
    if not people:
        return []
    visible = visible_clients(supervisor).subquery()
    counts: dict[str, dict[str | None, int]] = {}
    for reason, category, n in session.execute(
            select(Episode.end_reason, EpisodeSignal.change_category, func.count())
            .join(visible, Episode.client_id == visible.c.id)
            .outerjoin(EpisodeSignal, EpisodeSignal.episode_id == Episode.id)
            .where(Episode.therapist_id.in_([p.id for p in people]),
                   Episode.closed_on.is_not(None))
            .group_by(Episode.end_reason, EpisodeSignal.change_category)):
        known = category if category in CATEGORIES else None
        row = counts.setdefault(reason or "", {})
        row[known] = row.get(known, 0) + n
    return [EndedByReason(reason, sum(counts[reason].values()),
                          {c: counts[reason].get(c, 0) for c in (*CATEGORIES, None)})
            for reason in END_REASONS if reason in counts]
