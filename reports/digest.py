"""The supervisor's weekly digest as plain data: what the PDF shows, nothing more.

Built by :mod:`outcome.services.digests.figures` from the database and drawn by
:mod:`reports.digest_pdf`. Client codes only: no name, contact detail, goal wording
or answer ever enters these structures, so the PDF cannot leak one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from dataclasses import field

from reports.charts import TrajectoryData


@dataclass(frozen=True)
class RateFigure:
    """``count`` of ``n`` with its Wilson 95 % interval (None when n is 0)."""

    count: int
    n: int
    low: float | None = None
    high: float | None = None

    @property
    def proportion(self) -> float | None:
        return self.count / self.n if self.n else None


@dataclass(frozen=True)
class KeyFigures:
    """Figures for one group (a supervisee or all of them) over one period."""

    active_episodes: int
    # red, yellow, green, white, grey: active episodes by their colour on the main outcome
    # measure at the end of the period (they add up to active_episodes)
    colours: dict[str, int]
    completion: RateFigure  # held sessions with the main outcome measure answered
    open_alerts: int
    ruptures_opened: int  # ruptures that started in the period
    ruptures_repaired: int  # ruptures repaired in the period
    episodes_ended: int
    reliably_improved: RateFigure  # of episodes ended in the period with a change score
    recovered: RateFigure
    deteriorated: RateFigure
    is_small: bool  # fewer than 10 ended episodes: label, never rank


@dataclass(frozen=True)
class AttentionItem:
    """A client needing attention, by code, with why, a small chart and the last note."""

    code: str
    reasons: tuple[str, ...]  # plain words, e.g. "Red: PHQ-9 21 at session 6, ..."
    chart: TrajectoryData | None
    last_note: str | None  # the therapist's latest acknowledgement note, if any
    last_note_date: dt.date | None


@dataclass(frozen=True)
class SuperviseeSection:
    therapist_name: str
    week: KeyFigures
    attention: tuple[AttentionItem, ...]
    # (client code, change category, its measure or pair, e.g. "GAD-7" or "PHQ-9 + GAD-7,
    # NHS Talking Therapies") of episodes ended: each episode's own change, as its client
    # page shows it (WeekReader.episode_changes); the measure is "" with no change score
    ended: tuple[tuple[str, str, str], ...]
    # Why each of ``ended`` ended, in words, in the same order (issue 17):
    # "Completed as planned", "Referred on"...
    ended_reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrendPoint:
    """One ISO week of the last twelve, for the cover's trend table."""

    week: str
    active_episodes: int
    red: int  # the week's KeyFigures.colours["red"]: one definition for every week
    open_alerts: int
    completion: RateFigure


@dataclass(frozen=True)
class Digest:
    """One supervisor's digest for one ISO week (Monday to Sunday, clinic time zone)."""

    clinic_name: str
    supervisor_name: str
    week: str  # ISO week, e.g. "2026-W47"
    starts: dt.date
    ends: dt.date
    produced: dt.datetime
    timezone: str
    instrument: str  # the main outcome measure's short name, e.g. "PHQ-9"
    this_week: KeyFigures
    previous_week: KeyFigures
    trend: tuple[TrendPoint, ...]  # the last 12 weeks, oldest first
    sections: tuple[SuperviseeSection, ...] = field(default=())
