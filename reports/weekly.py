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


@dataclass(frozen=True)
class ColourChange:
    """An episode whose colour on the main outcome measure differs between the start and
    the end of the week (each read from its scores up to that moment)."""

    name: str
    code: str
    before: str  # colour at the week's start (grey: fewer than two scores by then)
    after: str  # colour at the week's end
    # The colour the caseload shows now (it may differ when scores came after the week);
    # None when the episode has ended since.
    now: str | None = None
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
    """An episode ended in the week, with its change on the main outcome measure."""

    name: str
    code: str
    closed_on: dt.date
    measure: str  # the measure the category belongs to, e.g. "PHQ-9"
    # recovered, improved, unchanged, deteriorated, harmed; None: fewer than two scores
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
    # Episodes active in the week (opened by its Sunday, not closed before its Monday),
    # and them by colour at the week's end: red, yellow, green, white, grey (they add up).
    active_episodes: int = 0
    colours: dict[str, int] = field(default_factory=dict)
    # Sessions in the week with the main outcome measure answered, of all its sessions.
    completion: RateFigure = field(default_factory=lambda: RateFigure(0, 0))
    caseload: tuple[CaseloadLine, ...] = ()  # open episodes now, most urgent first
    changes: tuple[ColourChange, ...] = ()
    alerts: tuple[OpenAlert, ...] = ()  # open at the week's end, oldest first
    ended: tuple[EndedEpisode, ...] = ()
    # Said once above the caseload: the statistical basis of its colours, in words.
    notices: tuple[str, ...] = ()
