"""The client report as plain data: what a client is given about their own progress.

A one-page summary that the client's therapist reviews, then gives to the client (on paper
or on screen, "review together"); it is never sent automatically. It holds only what a
client may see of their own care: their outcome charts with the expected band (where the
clinic has a fitted curve), what changed in plain words, and their goals with their first
and latest ratings. No alerts, colours, item answers, critical answers, notes, other
clients or anything a supervisor sees.

Every sentence is written by :mod:`outcome.services.client_report` in the client's
language; :mod:`reports.client_report_pdf` lays it out. Clients prefer charts that show
the expected band (Hooke et al. 2018), and feedback works better when clients see it too
(Gondek et al. 2016).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from reports.charts import TrajectoryData


@dataclass(frozen=True)
class MeasureChange:
    """One outcome measure (PHQ-9, GAD-7...): its chart and what changed, in words.

    ``category`` is the Jacobson-Truax category of the latest score against the first
    (``recovered``, ``improved``, ``unchanged``, ``deteriorated``, ``harmed``), None when
    there are fewer than two scores or the measure has no reliable-change threshold. It is
    for tests and the screen's markup; readers get ``sentences``.
    """

    instrument: str  # the measure's short name, "PHQ-9"
    chart: TrajectoryData | None  # None with fewer than two scores, or beyond the chart limit
    description: str  # the chart's text alternative: every score by session
    sentences: tuple[str, ...]  # what it means and what changed, plain language
    band_note: str = ""  # what the shaded band is; "" when there is no band
    category: str | None = None
    first: float | None = None
    latest: float | None = None
    count: int = 0


@dataclass(frozen=True)
class GoalProgress:
    """One of the client's goals in their own words, with its first and latest rating."""

    position: int
    description: str
    text: str  # "First rated 2 at session 1; most recently 6 at session 3."


@dataclass(frozen=True)
class ClientReport:
    """Everything the client report shows, as plain data, in one language."""

    client_name: str
    produced: dt.date
    locale: str
    intro: str
    measures: tuple[MeasureChange, ...] = ()
    goals: tuple[GoalProgress, ...] = ()
    goal_scale: str = ""  # "Goals are rated from 0 (not at all met) to 10 (goal reached)."
    empty: str = ""  # said when there is nothing to show yet
    closing: str = ""  # a line that invites the client to talk it over
