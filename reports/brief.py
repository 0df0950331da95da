"""The pre-session brief as plain data (issue 18): one therapist, one working day.

Built by :func:`outcome.services.therapist_reports.brief.build_brief` and rendered by
:func:`reports.brief_pdf.render_brief`. Plain data only (no database objects): every
sentence about a client is already written in the reader's language by the service,
from the stored signals and scores, and names its measure; the renderer adds headings
and lays it out. Moments are in the clinic's time zone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from reports.charts import TrajectoryData


@dataclass(frozen=True)
class BriefScore:
    """One outcome measure of a client: its latest score and the change since the one
    before, with the chart drawn from the same data as the client page."""

    instrument: str  # short name, "PHQ-9"
    latest: str  # "Latest: PHQ-9 16 (moderately severe) at session 3, the 3rd PHQ-9."
    since_previous: str  # "PHQ-9 since the previous score (session 2): 18 to 16, ..."
    chart: TrajectoryData
    description: str  # the chart's text alternative (its scores in words)
    # The measure's own change since intake, where it is not the episode's change.
    since_intake: str = ""


@dataclass(frozen=True)
class BriefSignal:
    """A stored signal explained: the measure, its level (a colour, a change category,
    a rupture status) and its words; ``kind`` is progress, change or rupture."""

    instrument: str
    level: str
    text: str
    kind: str


@dataclass(frozen=True)
class BriefAlert:
    """An open alert: its kind (critical_item, not_on_track, rupture...), its words and
    how many of the clinic's calendar days it has been open."""

    kind: str
    text: str
    days: int


@dataclass(frozen=True)
class BriefAlliance:
    """One alliance measure: the trend sentence and the rupture status.

    ``status`` is "none", "possible", "open", "repaired" or "unrepaired" (the latest
    rupture signal); ``text`` is that signal's stored explanation ("" for none).
    """

    instrument: str
    trend: str
    status: str
    text: str


@dataclass(frozen=True)
class BriefGoal:
    position: int
    description: str
    ratings: tuple[tuple[int, float], ...]  # (session, rating 0 to 10), oldest first
    is_retired: bool = False


@dataclass(frozen=True)
class BriefAnswer:
    """A questionnaire answered since the last session held."""

    instrument: str
    completed: dt.datetime  # in the clinic's time zone
    session: int | None
    score: str  # "PHQ-9 16 (moderately severe)", or the words for no valid score
    is_critical: bool  # a critical answer was given in it


@dataclass(frozen=True)
class BriefPlan:
    """The episode's open action plan (issue 19): when it was recorded, its review date
    (clinic-local dates), whether the review is due (the date has come), the steps taken
    (not the declined suggestions) and the note."""

    recorded: dt.date
    review_on: dt.date
    review_due: bool
    steps: tuple[str, ...]
    note: str = ""


@dataclass(frozen=True)
class BriefCheck:
    """A support check (issue 19) the brief mentions: one waiting for the client's
    answers (``sent``), or one answered with no plan recorded since (``answered``); the
    day it was sent or answered."""

    status: str
    day: dt.date


@dataclass(frozen=True)
class BriefClient:
    """One appointment of the day and its client's section."""

    starts: dt.datetime  # in the clinic's time zone
    name: str
    code: str
    session: int | None  # the appointment's treatment session (None: not counted)
    status: str  # the appointment's status (scheduled, attended, no_show)
    colour: str  # red, yellow, green, white, grey
    colour_measure: str  # the measure whose colour it is (the worst); "" for none
    reason: str  # the most urgent open alert's words, else why the colour ("" for none)
    is_most_urgent: bool  # an open critical-answer alert, or red
    has_answers: bool  # anything answered in the episode (scores, goal ratings)
    since: dt.datetime | None = None  # the last session held before this one (start)
    # Earlier appointments of the episode still "scheduled" (never marked held or
    # missed); they count as sessions (domain.md section 3), so the number says so.
    unmarked: int = 0
    change: str = ""  # "Since intake (PHQ-9): ..." ("" when there is no category yet)
    signals: tuple[BriefSignal, ...] = ()
    scores: tuple[BriefScore, ...] = ()
    alerts: tuple[BriefAlert, ...] = ()
    staying_high: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (measure, item labels)
    alliance: tuple[BriefAlliance, ...] = ()
    goals: tuple[BriefGoal, ...] = ()
    answered: tuple[BriefAnswer, ...] = ()
    # issue 19: the open action plan and a support check waiting or answered.
    plan: BriefPlan | None = None
    check: BriefCheck | None = None


@dataclass(frozen=True)
class Brief:
    """One therapist's brief for one day."""

    clinic_name: str
    therapist_name: str
    day: dt.date
    produced: dt.datetime  # "as of": answers after this are not in it
    timezone: str
    clients: tuple[BriefClient, ...] = ()
    # Said once, on the first page (as above a caseload): measures whose colours are
    # rule-based, and the statistical basis of the colours' words.
    basis: tuple[str, ...] = ()
