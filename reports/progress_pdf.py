"""A client's progress report for their therapist: the dashboard's record, on paper.

The same charts as the client page (:mod:`reports.charts`), each with its text
description and the scores it is drawn from; what the signals say, in words; the items
that stayed high; goals with their ratings; alerts with their acknowledgement notes.
For the client's own therapist only (it carries the client's name and goal wording).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from reportlab.platypus import Flowable
from reportlab.platypus import KeepTogether
from reportlab.platypus import Spacer

from reports.charts import HeatmapData
from reports.charts import TrajectoryData
from reports.charts import heatmap_drawing
from reports.charts import trajectory_drawing
from reports.pdf import FRAME_WIDTH
from reports.pdf import _
from reports.pdf import badge
from reports.pdf import build_pdf
from reports.pdf import bullets
from reports.pdf import esc
from reports.pdf import long_date
from reports.pdf import number
from reports.pdf import para
from reports.pdf import rich
from reports.pdf import table


@dataclass(frozen=True)
class ScoreChart:
    """One measure's scores by session: the chart, its text alternative, its table."""

    data: TrajectoryData
    description: str
    rows: tuple[tuple[int, str, float, str], ...] = ()  # session, date, score, marker words
    severities: tuple[str, ...] = ()  # each row's severity band in words ("" for none)
    latest: str = ""  # "Latest: PHQ-9 16 (moderately severe) at session 3, the 3rd PHQ-9."


@dataclass(frozen=True)
class ItemChart:
    """Item answers by session, and the items that stayed high."""

    data: HeatmapData
    staying_high: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class SignalText:
    """One signal explained: the measure, its level (red, recovered, unrepaired...), words,
    and its kind (progress, change, rupture, critical), which names its badge."""

    instrument: str
    level: str
    text: str
    kind: str = ""


@dataclass(frozen=True)
class ScoreNote:
    """What must be said beside one questionnaire's score: a rule's state ("Probable PTSD
    by the DSM-5 rule: cannot be determined (3 items blank)"), a prorated total whose
    safety question was left blank."""

    instrument: str
    completed: dt.datetime
    session: int | None
    score: float | None  # None: no valid score
    text: str


@dataclass(frozen=True)
class GoalRatings:
    position: int
    description: str
    ratings: tuple[tuple[int, float], ...]  # (session, rating 0 to 10)


@dataclass(frozen=True)
class AlertEntry:
    kind: str  # critical_item, not_on_track, rupture... (see ALERT_KINDS)
    status: str  # open, acknowledged, resolved
    text: str
    raised: dt.datetime
    acknowledged: dt.datetime | None = None
    acknowledged_by: str | None = None
    note: str | None = None


def long_moment(moment: dt.datetime) -> str:
    """``16 November 2026, 09:30``: the report's date style with the time."""
    return f"{long_date(moment)}, {moment:%H:%M}"


@dataclass(frozen=True)
class ProgressReport:
    """Everything the progress report shows, as plain data."""

    client_name: str
    client_code: str
    clinic_name: str
    therapist_name: str
    produced: dt.date
    timezone: str
    episode_opened: dt.date | None
    episode_closed: dt.date | None = None
    signals: tuple[SignalText, ...] = ()
    # Said once above the signals: measures whose colours are rule-based.
    notices: tuple[str, ...] = ()
    outcome_charts: tuple[ScoreChart, ...] = ()
    alliance_charts: tuple[ScoreChart, ...] = ()
    heatmaps: tuple[ItemChart, ...] = ()
    goals: tuple[GoalRatings, ...] = ()
    alerts: tuple[AlertEntry, ...] = ()
    score_notes: tuple[ScoreNote, ...] = ()
    # Issue 17: one style for every date in the report, and one for a date with its time
    # (moments arrive in the clinic's time zone); a caller may pass its own formatters.
    day: Callable[[dt.date], str] = long_date
    moment: Callable[[dt.datetime], str] = long_moment


def N_(message: str) -> str:  # marked for the catalogue; said with _() when rendered
    return message


ALERT_KINDS = {
    "critical_item": N_("Critical answer"),
    "critical_unanswered": N_("Critical question unanswered"),
    "not_on_track": N_("Not on track"),
    "rupture": N_("Alliance rupture"),
    "unrepaired_rupture": N_("Rupture not repaired"),
}
STATUS_WORDS = {"open": N_("Open"), "acknowledged": N_("Acknowledged"),
                "resolved": N_("Resolved")}
# Status badges: an open alert is drawn like a red badge, so it stands out in greyscale.
STATUS_LEVELS = {"open": "red", "acknowledged": "white", "resolved": "grey"}
CHART_HEIGHT = 210.0


def render_progress_report(report: ProgressReport) -> bytes:
    """The progress report as PDF bytes (the same report always gives the same bytes)."""
    story: list[Flowable] = [
        para(_("Progress report"), "title"),
        para(f"{report.client_name} \u00b7 {report.client_code}", "subtitle"),
        _facts(report),
        Spacer(1, 4),
        para(_("A session is the episode's treatment session (the appointment's number); a "
               "measure's own count reads \u201cthe 5th PHQ-9\u201d. A score's severity "
               "band, where its measure defines bands, is shown beside it. Times are in "
               "%(timezone)s.", timezone=report.timezone), "muted"),
    ]
    if report.episode_opened is None:
        story.append(para(_("This client has no episode yet."), "body"))
    else:
        story += _signals(report)
        story += _charts(_("Outcome measures"), report.outcome_charts,
                         _("Reliable change since intake"), _("No outcome scores yet."))
        story += _score_notes(report)
        story += _charts(_("Working alliance"), report.alliance_charts,
                         _("Rupture or repair"), _("No alliance ratings yet."))
        story += _items(report)
        story += _goals(report)
        story += _alerts(report)
    return build_pdf(story, title=_("Progress report %(code)s", code=report.client_code),
                     subject=_("Routine outcome monitoring: a client's progress "
                               "(confidential clinical record)"))


def _facts(report: ProgressReport) -> Flowable:
    if report.episode_opened is None:
        episode = _("none yet")
    elif report.episode_closed is None:
        episode = _("opened %(day)s, ongoing", day=report.day(report.episode_opened))
    else:
        episode = _("%(start)s to %(end)s", start=report.day(report.episode_opened),
                    end=report.day(report.episode_closed))
    facts = [(_("Client"), report.client_name), (_("Code"), report.client_code),
             (_("Therapist"), report.therapist_name), (_("Clinic"), report.clinic_name),
             (_("Episode"), episode), (_("Produced"), report.day(report.produced))]
    rows = [[*facts[i], *facts[i + 1]] for i in range(0, len(facts), 2)]
    widths = [64, FRAME_WIDTH / 2 - 64, 64, FRAME_WIDTH / 2 - 64]
    return table(rows, widths, header=False, bold_columns=(0, 2))


def _signals(report: ProgressReport) -> list[Flowable]:
    title = para(_("What the measures say"), "h2")
    notes = [para(notice, "muted") for notice in report.notices]
    head: Flowable = KeepTogether([title, *notes]) if notes else title
    if not report.signals:
        return [head, para(_("No measures yet in this episode."), "body")]
    rows: list[list] = [["", _("Measure"), _("What it means")]]
    rows += [[badge(s.level, _signal_word(s)), s.instrument, s.text] for s in report.signals]
    return [head, table(rows, [62, 62, FRAME_WIDTH - 124],
                        extra=[("VALIGN", (0, 1), (0, -1), "TOP")])]


# A signal's badge says what kind of signal it is; its level (a colour, a change category)
# already opens the sentence beside it, and internal keys ("harmed") are never shown.
SIGNAL_WORDS = {"progress": N_("Progress"), "change": N_("Change"), "critical": N_("Safety")}
REPAIR_WORDS = {"open": N_("Pending"), "repaired": N_("Repaired"),
                "unrepaired": N_("Not repaired")}


def _signal_word(signal: SignalText) -> str:
    if signal.kind == "rupture":
        return _(REPAIR_WORDS.get(signal.level, N_("Alliance")))
    return _(SIGNAL_WORDS.get(signal.kind, N_("Signal")))


def _charts(title: str, charts: tuple[ScoreChart, ...], marker_column: str, empty: str
            ) -> list[Flowable]:
    head = para(title, "h2")
    if not charts:
        return [head, para(empty, "body")]
    story: list[Flowable] = []
    for n, chart in enumerate(charts):
        drawing = trajectory_drawing(chart.data, width=FRAME_WIDTH, height=CHART_HEIGHT)
        # The heading stays with the first chart, each chart with its description (a
        # KeepTogether does not take part in keepWithNext, so the heading goes inside).
        kept: list[Flowable] = [head] if n == 0 else []
        kept += [drawing, Spacer(1, 2)]
        if chart.latest:
            kept.append(para(chart.latest, "body"))
        kept.append(para(chart.description, "muted"))
        story.append(KeepTogether(kept))
        if chart.rows:
            rows: list[list] = [[_("Session"), _("Date"), _("Score"), marker_column]]
            bands = chart.severities or ("",) * len(chart.rows)
            rows += [[str(s), day, number(v) + (f" ({band})" if band else ""), words]
                     for (s, day, v, words), band in zip(chart.rows, bands, strict=True)]
            score_width = 130 if any(chart.severities) else 50
            story.append(table(rows, [50, 80, score_width, FRAME_WIDTH - 130 - score_width],
                               right=(0, 2)))
        story.append(Spacer(1, 8))
    return story


def _score_notes(report: ProgressReport) -> list[Flowable]:
    if not report.score_notes:
        return []
    rows: list[list] = [[_("Date"), _("Measure"), _("Session"), _("Score"), _("Note")]]
    rows += [[report.day(n.completed), n.instrument,
              str(n.session) if n.session else "\u2013",
              number(n.score) if n.score is not None else _("no valid score"), n.text]
             for n in report.score_notes]
    return [para(_("Notes on scores"), "h3"),
            table(rows, [62, 50, 44, 56, FRAME_WIDTH - 212], right=(2,)), Spacer(1, 8)]


def _items(report: ProgressReport) -> list[Flowable]:
    head = para(_("Items over time"), "h2")
    if not report.heatmaps:
        return [head, para(_("No item answers yet."), "body")]
    story: list[Flowable] = []
    for n, item in enumerate(report.heatmaps):
        block: list[Flowable] = [head] if n == 0 else []
        block += [heatmap_drawing(item.data, width=FRAME_WIDTH), Spacer(1, 2)]
        if item.staying_high:
            block.append(para(_("Items that stayed high (at each of the last three "
                                "sessions):"), "h3"))
            block += bullets(item.staying_high)
        else:
            block.append(para(_("No item stayed high over the last three sessions."),
                              "body"))
        block.append(para(item.description, "muted"))
        story += [KeepTogether(block), Spacer(1, 8)]
    return story


def _goals(report: ProgressReport) -> list[Flowable]:
    head = para(_("Goals and their ratings (0 to 10)"), "h2")
    if not report.goals:
        return [head, para(_("No goals set."), "body")]
    rows: list[list] = [[_("Goal"), _("In the client\u2019s words"), _("Ratings by session")]]
    for goal in report.goals:
        ratings = ("; ".join(_("session %(session)s: %(score)s", session=s, score=number(v))
                             for s, v in goal.ratings)
                   or _("Not rated yet."))
        rows.append([str(goal.position), goal.description, ratings])
    return [KeepTogether([head, table(rows, [32, FRAME_WIDTH * 0.48,
                                             FRAME_WIDTH * 0.52 - 32], right=(0,))])]


def _alerts(report: ProgressReport) -> list[Flowable]:
    head = para(_("Alerts"), "h2")
    if not report.alerts:
        return [head, para(_("No alerts in this episode."), "body")]
    rows: list[list] = [[_("Status"), _("Alert"), _("Acknowledgement")]]
    for alert in report.alerts:
        kind = _(ALERT_KINDS[alert.kind]) if alert.kind in ALERT_KINDS else alert.kind
        what = [rich(f"<b>{esc(kind)}</b> \u00b7 "
                     + esc(_("raised %(when)s", when=report.moment(alert.raised))), "cell"),
                para(alert.text, "cell")]
        if alert.acknowledged:
            done: list[Flowable] = [
                para(_("Acknowledged by %(who)s on %(when)s:", who=alert.acknowledged_by,
                       when=report.moment(alert.acknowledged)) if alert.acknowledged_by
                     else _("Acknowledged on %(when)s:", when=report.moment(alert.acknowledged)),
                     "cell_muted"),
                para(alert.note or _("(no note)"), "cell")]
        else:
            done = [para(_("Not acknowledged yet.") if alert.status == "open" else "\u2013",
                         "cell_muted")]
        status = (_(STATUS_WORDS[alert.status]) if alert.status in STATUS_WORDS
                  else alert.status.capitalize())
        rows.append([badge(STATUS_LEVELS.get(alert.status, "grey"), status,
                           width=70), what, done])
    return [head, table(rows, [82, (FRAME_WIDTH - 82) * 0.5, (FRAME_WIDTH - 82) * 0.5])]
