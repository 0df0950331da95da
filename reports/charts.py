"""Charts as reportlab drawings: one piece of code for PDF reports and on-screen SVG.

Readable in greyscale: the expected band is a light fill, the cutoff a dashed line with
its label, scores a solid line with round markers. Text goes through reportlab, whose
SVG renderer escapes it (a client's own words can never become markup).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reportlab.graphics import renderSVG
from reportlab.graphics.shapes import Circle
from reportlab.graphics.shapes import Drawing
from reportlab.graphics.shapes import Line
from reportlab.graphics.shapes import Polygon
from reportlab.graphics.shapes import PolyLine
from reportlab.graphics.shapes import String
from reportlab.lib import colors

INK = colors.Color(0.11, 0.12, 0.14)
MUTED = colors.Color(0.42, 0.45, 0.48)
BAND = colors.Color(0.85, 0.88, 0.92)
LINE = colors.Color(0.04, 0.36, 0.68)


@dataclass(frozen=True)
class TrajectoryData:
    """A score series to draw: session numbers, scores (None = no valid score), scale."""

    title: str
    sessions: tuple[int, ...]
    scores: tuple[float | None, ...]
    y_min: float
    y_max: float
    cutoff: float | None = None
    cutoff_label: str = ""
    band_low: tuple[float, ...] | None = None
    band_high: tuple[float, ...] | None = None
    y_label: str = ""


def trajectory_drawing(data: TrajectoryData, width: float = 360, height: float = 200
                       ) -> Drawing:
    """Scores by session, with the expected band and the cutoff line when given."""
    left, right, bottom, top = 34.0, 10.0, 28.0, 24.0
    plot_w, plot_h = width - left - right, height - bottom - top
    first, last = min(data.sessions, default=1), max(data.sessions, default=1)
    span = max(last - first, 1)

    def x(session: float) -> float:
        return left + (session - first) / span * plot_w

    def y(value: float) -> float:
        clipped = min(max(value, data.y_min), data.y_max)
        return bottom + (clipped - data.y_min) / (data.y_max - data.y_min) * plot_h

    drawing = Drawing(width, height)
    drawing.add(String(left, height - 14, data.title, fontName="Helvetica-Bold",
                       fontSize=10, fillColor=INK))
    if data.band_low and data.band_high and len(data.sessions) > 1:
        points = [c for s, v in zip(data.sessions, data.band_low, strict=True)
                  for c in (x(s), y(v))]
        points += [c for s, v in reversed(list(zip(data.sessions, data.band_high,
                                                   strict=True))) for c in (x(s), y(v))]
        drawing.add(Polygon(points, fillColor=BAND, strokeColor=None))
    drawing.add(Line(left, bottom, left + plot_w, bottom, strokeColor=MUTED))
    drawing.add(Line(left, bottom, left, bottom + plot_h, strokeColor=MUTED))
    for value in (data.y_min, (data.y_min + data.y_max) / 2, data.y_max):
        drawing.add(String(left - 4, y(value) - 3, f"{value:g}", fontSize=7,
                           fillColor=MUTED, textAnchor="end"))
    for session in sorted(set(data.sessions)):
        drawing.add(String(x(session), bottom - 12, str(session), fontSize=7,
                           fillColor=MUTED, textAnchor="middle"))
    drawing.add(String(left + plot_w / 2, 2, "session", fontSize=7, fillColor=MUTED,
                       textAnchor="middle"))
    if data.cutoff is not None:
        drawing.add(Line(left, y(data.cutoff), left + plot_w, y(data.cutoff),
                         strokeColor=INK, strokeDashArray=[3, 2], strokeWidth=0.8))
        if data.cutoff_label:
            drawing.add(String(left + plot_w, y(data.cutoff) + 3, data.cutoff_label,
                               fontSize=7, fillColor=INK, textAnchor="end"))
    points = [(x(s), y(v)) for s, v in zip(data.sessions, data.scores, strict=True)
              if v is not None]
    if len(points) > 1:
        drawing.add(PolyLine([c for p in points for c in p], strokeColor=LINE,
                             strokeWidth=1.6))
    for px, py in points:
        drawing.add(Circle(px, py, 2.6, fillColor=LINE, strokeColor=colors.white,
                           strokeWidth=0.6))
    return drawing


def to_svg(drawing: Drawing, title: str, description: str) -> str:
    """Inline SVG (no XML prolog) with an accessible title and description."""
    svg = renderSVG.drawToString(drawing)
    svg = svg[svg.index("<svg"):]
    escaped = {ch: f"&#{ord(ch)};" for ch in "<>&\"'"}
    safe_title = "".join(escaped.get(ch, ch) for ch in title)
    safe_desc = "".join(escaped.get(ch, ch) for ch in description)
    svg = re.sub(r"<svg ", '<svg role="img" aria-labelledby="t d" ', svg, count=1)
    head_end = svg.index(">") + 1
    return (svg[:head_end] + f'<title id="t">{safe_title}</title>'
            f'<desc id="d">{safe_desc}</desc>' + svg[head_end:])
