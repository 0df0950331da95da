"""The client report as a one-page A4 PDF: plain data in (:mod:`reports.client_report`),
bytes out.

One page always: each measure's chart (the same :func:`reports.charts.trajectory_drawing`
as the screens) sits beside its sentences, charts get shorter as measures are added, and
the whole page is shrunk to fit (reportlab's ``KeepInFrame``) when long goals would
overflow it, rather than spill onto a second page. Every data string is escaped
(:func:`reports.pdf.para`); the same report always gives the same bytes.
"""

from __future__ import annotations

from reportlab.lib.styles import ParagraphStyle
from reportlab.platypus import Flowable
from reportlab.platypus import KeepInFrame
from reportlab.platypus import Paragraph
from reportlab.platypus import Spacer
from reportlab.platypus import Table
from reportlab.platypus import TableStyle

from reports.charts import trajectory_drawing
from reports.client_report import ClientReport
from reports.client_report import MeasureChange
from reports.pdf import FONT_BOLD
from reports.pdf import FOOTER_HEIGHT
from reports.pdf import FRAME_WIDTH
from reports.pdf import MARGIN
from reports.pdf import PAGE_HEIGHT
from reports.pdf import RULE
from reports.pdf import STYLES
from reports.pdf import _
from reports.pdf import build_pdf
from reports.pdf import esc
from reports.pdf import long_date
from reports.pdf import para

# The body frame's height (reports.pdf.build_pdf's margins), less a point of slack.
FRAME_HEIGHT = PAGE_HEIGHT - 2 * MARGIN - FOOTER_HEIGHT / 2 - 1
CHART_WIDTH = FRAME_WIDTH * 0.54
# A chart's height by the number of charts on the page (one page holds three).
CHART_HEIGHTS = {1: 200.0, 2: 170.0}
SMALLEST_CHART = 130.0

# Client-facing text is a size larger than the clinical reports' (read on paper, at home).
_READ = ParagraphStyle("read", STYLES["body"], fontSize=10, leading=13.5, spaceAfter=3)
_SMALL = ParagraphStyle("read_small", STYLES["muted"], fontSize=9, leading=12, spaceAfter=3)
_MEASURE = ParagraphStyle("read_measure", _READ, fontName=FONT_BOLD, fontSize=11.5,
                          leading=15, spaceAfter=3)


def render_client_report(report: ClientReport) -> bytes:
    """The client report as PDF bytes: always one A4 page, the same bytes for the same
    report, words in the reader's language (:func:`reports.pdf.for_reader`)."""
    story: list[Flowable] = [
        para(_("Your progress"), "title"),
        para(_("For %(name)s, %(date)s", name=report.client_name,
               date=long_date(report.produced)), "subtitle"),
        Paragraph(esc(report.intro), _READ),
        Spacer(1, 4),
    ]
    if report.empty:
        story.append(Paragraph(esc(report.empty), _READ))
    drawn = sum(1 for m in report.measures if m.chart is not None)
    height = CHART_HEIGHTS.get(drawn, SMALLEST_CHART)
    for measure in report.measures:
        story += _measure(measure, height)
    if report.goals:
        story += [para(_("Your goals"), "h2"), Paragraph(esc(report.goal_scale), _SMALL)]
        for goal in report.goals:
            story.append(Paragraph(
                f"<b>{esc(_('Goal %(n)s', n=goal.position))}:</b> {esc(goal.description)}",
                _READ))
            story.append(Paragraph(esc(goal.text), _SMALL))
    if report.closing:
        story += [Spacer(1, 6), Paragraph(esc(report.closing), _SMALL)]
    page = KeepInFrame(FRAME_WIDTH, FRAME_HEIGHT, story, mode="shrink")
    return build_pdf([page], title=_("Your progress"),
                     subject=_("A client's own progress, reviewed with their therapist"))


def _measure(measure: MeasureChange, height: float) -> list[Flowable]:
    words: list[Flowable] = [Paragraph(esc(measure.instrument), _MEASURE)]
    words += [Paragraph(esc(sentence), _READ) for sentence in measure.sentences]
    if measure.band_note:
        words.append(Paragraph(esc(measure.band_note), _SMALL))
    if measure.chart is None:
        return [*words, Spacer(1, 4)]
    drawing = trajectory_drawing(measure.chart, width=CHART_WIDTH, height=height)
    row = Table([[drawing, words]], colWidths=[CHART_WIDTH, FRAME_WIDTH - CHART_WIDTH],
                hAlign="LEFT")
    row.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (0, 0), 0),
        ("LEFTPADDING", (1, 0), (1, 0), 8),
        ("RIGHTPADDING", (0, 0), (-1, -1), 0),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
        ("LINEBELOW", (0, 0), (-1, -1), 0.4, RULE),
    ]))
    return [row, Spacer(1, 4)]
