"""The therapist's weekly caseload report as plain data (issue 18): what the PDF shows.

Built by :mod:`outcome.services.therapist_reports.weekly` from the database and drawn by
:mod:`reports.weekly_pdf`. It is the therapist's own report, so it names their own
clients (and only theirs). Two moments are behind it, and the PDF says which is which:

- the **week** (Monday 00:00 to the next Monday 00:00 in the clinic's time zone): the
  colour counts, the colour changes, completion, the alerts open at its end and the
  episodes ended in it, computed as the supervisor's digest computes them
  (:class:`outcome.services.digests.figures.WeekReader`), so both reports agree;
- **now** (``produced``): the caseload by urgency, exactly as the caseload page lists it
  (:func:`outcome.services.caseload.caseload`).

Words that depend only on a code (colours, change categories, alert kinds, end reasons)
are kept as codes or English message ids and said in the reader's language when the PDF
is drawn; explanations of signals arrive already in the reader's language.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from dataclasses import field

from reports.digest import RateFigure


@dataclass(frozen=True)
class CaseloadLine:
    """One open episode as the caseload page lists it (most urgent first)."""

    name: str
    code: str
    colour: str  # red, yellow, green, white or grey: the stored progress colour
    # The most urgent open alert's words (REASON_ORDER), None without an open alert.
    reason: str | None
    # The current colour's explanation ("Red: PHQ-9 21 at session 6, ..."), "" if none.
    progress: str = ""
    # The outcome measure whose colour ``colour`` is (the episode's worst across its
    # outcome measures), e.g. "GAD-7"; "" when no measure has a colour yet.
    measure: str = ""


@dataclass(frozen=True)
class ColourChange:
    """An episode whose colour on the main outcome measure differs between the start and
    the end of the week (each read from its scores up to that moment)."""

    name: str
    code: str
    before: str  # colour on ``measure`` at the week's start (the engine's rule)
    after: str  # colour on ``measure`` at the week's end
    measure: str = ""  # the main outcome measure, e.g. "PHQ-9"
    # The colour the caseload shows now: the episode's worst across its outcome measures,
    # on ``now_measure`` (it may differ when scores came after the week, or when another
    # measure is worse); None when the episode has ended since.
    now: str | None = None
    now_measure: str = ""
    # The colour on ``measure`` now (stored signal), None without one or when ended.
    now_main: str | None = None
    # Why, as the caseload says now: the explanation of the colour it shows now ("" for
    # grey, or when the episode has ended since).
    reason: str = ""


@dataclass(frozen=True)
class OpenAlert:
    """An alert open at the end of the week."""

    name: str
    code: str
    kind: str  # critical_item, critical_unanswered, not_on_track, rupture, ...
    raised: dt.date  # the clinic's calendar day it was raised
    days: int  # calendar days from ``raised`` to the week's Sunday (0: raised that day)


@dataclass(frozen=True)
class EndedEpisode:
    """An episode ended in the week, with the episode's own change since intake: its
    primary measure's category, or the NHS Talking Therapies paired result (domain.md
    section 3), as the client's page shows it."""

    name: str
    code: str
    closed_on: dt.date
    # The measure (or pair) the category belongs to, in words: "GAD-7",
    # "PHQ-9 + GAD-7, NHS Talking Therapies"; "" when nothing is stored.
    measure: str
    # recovered, improved, unchanged, deteriorated, harmed; None: no change score yet
    category: str | None
    end_reason: str  # in words, an English message id ("Completed as planned")


@dataclass(frozen=True)
class WeeklyReport:
    """One therapist's caseload report for one ISO week."""

    clinic_name: str
    therapist_name: str
    week: str
    starts: dt.date
    ends: dt.date
    produced: dt.datetime
    timezone: str
    instrument: str = ""  # the main outcome measure's short name, e.g. "PHQ-9"
    # Episodes open at any time in the week (opened by its Sunday, not closed before its
    # Monday), and them by colour on the main measure from their scores up to the week's
    # end: red, yellow, green, white, grey (they add up).
    active_episodes: int = 0
    # Of those, the ones still open at the week's end (not ended during it).
    open_at_end: int = 0
    # Since the week's end: of those open at its end, how many have ended; and how many
    # episodes have been opened (and are open now). With ``caseload`` (open now):
    # len(caseload) == open_at_end - ended_since + opened_since when the data agree.
    ended_since: int = 0
    opened_since: int = 0
    colours: dict[str, int] = field(default_factory=dict)
    # Sessions in the week with the main outcome measure answered, of all its sessions.
    completion: RateFigure = field(default_factory=lambda: RateFigure(0, 0))
    caseload: tuple[CaseloadLine, ...] = ()  # open episodes now, most urgent first
    changes: tuple[ColourChange, ...] = ()
    alerts: tuple[OpenAlert, ...] = ()  # open at the week's end, oldest first
    ended: tuple[EndedEpisode, ...] = ()
    # Said once above the caseload: the statistical basis of its colours, in words.
    notices: tuple[str, ...] = ()
