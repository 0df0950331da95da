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


# issue 19: the supervisor's agenda and fidelity figures, as plain data.
# Fewer cases than this in a share's denominator: labelled "few cases: read with care",
# shown all the same (never hidden, never ranked; users.md, "Supervisors"). 5 is this
# project's own choice, not a published cutoff: no source was found for it.
FEW_CASES = 5  # a project default (unverified)
# The end reasons of an episode (outcome.models.care.END_REASONS) in the ending
# categories the ICCE indices ask for (support.md, "The loop", 7): planned, mutual,
# unilateral; "other" for a referral, another reason or none recorded.
ENDING_CATEGORIES = ("planned", "mutual", "unilateral", "other")
ENDING_OF_REASON = {"completed": "planned", "mutual": "mutual", "dropped_out": "unilateral",
                    "referred": "other", "other": "other"}


@dataclass(frozen=True)
class Share:
    """``count`` of ``n`` cases; ``is_few`` when ``n`` < :data:`FEW_CASES` (labelled)."""

    count: int
    n: int

    @property
    def proportion(self) -> float | None:
        return self.count / self.n if self.n else None

    @property
    def is_few(self) -> bool:
        return self.n < FEW_CASES


@dataclass(frozen=True)
class HoursFigure:
    """The median hours from a critical answer's alert to its acknowledgement, over the
    ``acknowledged`` alerts of ``raised`` (None when none was acknowledged)."""

    median_hours: float | None
    acknowledged: int
    raised: int

    @property
    def is_few(self) -> bool:
        return self.acknowledged < FEW_CASES


@dataclass(frozen=True)
class TherapistFidelity:
    """One therapist's measurement-based-care figures for a period (issue 19);
    :mod:`outcome.services.fidelity` defines each."""

    therapist_name: str
    completion: Share
    acknowledge: HoursFigure
    plan_within_7_days: Share
    plans_reviewed: Share
    back_on_track: Share
    back_on_track_waiting: int  # plans whose four sessions have not all come yet
    endings: dict[str, Share]   # ENDING_CATEGORIES -> share of the ended episodes


@dataclass(frozen=True)
class AgendaEntry:
    """One case on the supervisor's agenda, by code (states: see
    :mod:`outcome.services.supervision_agenda`)."""

    code: str
    therapist_name: str
    state: str          # no_plan, plan_due, follow_up_due, plan_new
    days: int
    alert_kind: str | None = None
    review_on: dt.date | None = None
    last_reviewed: dt.date | None = None


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
    # issue 19: the agenda when the digest was produced, and the fidelity figures of the
    # twelve weeks ending with this one (one row per supervisee, alphabetical)
    agenda: tuple[AgendaEntry, ...] = ()
    fidelity: tuple[TherapistFidelity, ...] = ()
    fidelity_starts: dt.date | None = None
