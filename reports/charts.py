"""Charts as reportlab drawings: one piece of code for PDF reports and on-screen SVG.

Readable in greyscale: the expected band is a light fill, the cutoff a dashed line with
its label, scores a solid line with round markers. Text goes through reportlab, whose
SVG renderer escapes it (a client's own words can never become markup).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from reportlab.graphics import renderSVG
from reportlab.graphics.shapes import Circle
from reportlab.graphics.shapes import Drawing
from reportlab.graphics.shapes import Line
from reportlab.graphics.shapes import Polygon
from reportlab.graphics.shapes import PolyLine
from reportlab.graphics.shapes import Rect
from reportlab.graphics.shapes import String
from reportlab.lib import colors
from reportlab.pdfbase.pdfmetrics import stringWidth

from reports.pdf import FONT
from reports.pdf import FONT_BOLD

INK = colors.Color(0.11, 0.12, 0.14)
MUTED = colors.Color(0.42, 0.45, 0.48)
BAND = colors.Color(0.85, 0.88, 0.92)
LINE = colors.Color(0.04, 0.36, 0.68)

# Latin labels keep Helvetica (the PDF standard font, so English charts stay as they
# were); a label that Helvetica's encoding cannot print (Cyrillic, Greek: a Russian
# reader's "встреча") is set in the shipped DejaVu Sans, which reports.pdf registers,
# instead of printing as black boxes (issue 18).
UNICODE_FONTS = {"Helvetica": FONT, "Helvetica-Bold": FONT_BOLD}


def label_font(text: str, font: str = "Helvetica") -> str:
    """``font`` if it can print ``text`` (cp1252, Helvetica's encoding), else DejaVu Sans."""
    try:
        text.encode("cp1252")
    except UnicodeEncodeError:
        return UNICODE_FONTS.get(font, FONT)
    return font


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
    # The band's legend, e.g. "PHQ-9 expected range (clinic fit, n = 212)".
    band_label: str = ""
    y_label: str = ""
    # (session, kind): kinds of MARKERS, drawn at that session's score.
    markers: tuple[tuple[int, str], ...] = ()
    # The reader's words for the marker kinds and the axis ("session"), where not English.
    words: tuple[tuple[str, str], ...] = ()


# Marker kinds, their legend words and shapes (shape, not colour, carries the meaning so a
# greyscale print still reads).
MARKERS = {
    "improved": "reliable improvement",
    "recovered": "recovered",
    "deteriorated": "reliable deterioration",
    "harmed": "reliable deterioration",
    "possible": "possible rupture",
    "rupture": "rupture",
    "unrepaired": "unrepaired rupture",
    "repaired": "repair",
}


def _marker(kind: str, px: float, py: float) -> list:
    """The shapes of one marker centred on a point (up/down triangles, crosses, rings)."""
    if kind in ("improved", "recovered"):
        fill = INK if kind == "recovered" else colors.white
        return [Polygon([px - 4, py + 6, px + 4, py + 6, px, py + 12], fillColor=fill,
                        strokeColor=INK, strokeWidth=0.8)]
    if kind in ("deteriorated", "harmed"):
        return [Polygon([px - 4, py - 6, px + 4, py - 6, px, py - 12], fillColor=INK,
                        strokeColor=INK, strokeWidth=0.8)]
    if kind in ("rupture", "unrepaired"):
        shapes = [Line(px - 3.5, py - 6, px + 3.5, py - 13, strokeColor=INK, strokeWidth=1.2),
                  Line(px - 3.5, py - 13, px + 3.5, py - 6, strokeColor=INK, strokeWidth=1.2)]
        if kind == "unrepaired":
            shapes.append(Line(px - 5, py - 15.5, px + 5, py - 15.5, strokeColor=INK,
                               strokeWidth=1.2))
        return shapes
    if kind == "possible":  # a rupture's cross, thin and dashed: shown, not alerted
        return [Line(px - 3.5, py - 6, px + 3.5, py - 13, strokeColor=INK, strokeWidth=0.7,
                     strokeDashArray=[1.5, 1]),
                Line(px - 3.5, py - 13, px + 3.5, py - 6, strokeColor=INK, strokeWidth=0.7,
                     strokeDashArray=[1.5, 1])]
    if kind == "repaired":
        return [Circle(px, py, 5.5, fillColor=None, strokeColor=INK, strokeWidth=1.0)]
    raise ValueError(f"unknown chart marker {kind!r}")


def trajectory_drawing(data: TrajectoryData, width: float = 360, height: float = 200
                       ) -> Drawing:
    """Scores by session, with the expected band and the cutoff line when given."""
    left, right, bottom, top = 34.0, 10.0, 28.0, 24.0
    said = {**MARKERS, **dict(data.words)}
    legend = list(dict.fromkeys(said[kind] for _, kind in data.markers))
    # A legend too wide to sit beside the title (a narrow chart, or longer Russian words)
    # gets its own row under the title (and under the band's label, if any).
    beside = (stringWidth(data.title, label_font(data.title, "Helvetica-Bold"), 10) + 12
              + sum(legend_width(w, 7) + 18 for w in legend)) <= width - left - right
    legend_y = height - 14 if beside else height - (34 if data.band_label else 24)
    if not beside:
        top += 12 if data.band_label else 10
    plot_w, plot_h = width - left - right, height - bottom - top
    first, last = min(data.sessions, default=1), max(data.sessions, default=1)
    span = max(last - first, 1)

    def x(session: float) -> float:
        return left + (session - first) / span * plot_w

    def y(value: float) -> float:
        clipped = min(max(value, data.y_min), data.y_max)
        return bottom + (clipped - data.y_min) / (data.y_max - data.y_min) * plot_h

    drawing = Drawing(width, height)
    drawing.add(String(left, height - 14, data.title,
                       fontName=label_font(data.title, "Helvetica-Bold"),
                       fontSize=10, fillColor=INK))
    if data.band_low and data.band_high and len(data.sessions) > 1:
        outline = [c for s, v in zip(data.sessions, data.band_low, strict=True)
                   for c in (x(s), y(v))]
        outline += [c for s, v in reversed(list(zip(data.sessions, data.band_high,
                                                    strict=True))) for c in (x(s), y(v))]
        drawing.add(Polygon(outline, fillColor=BAND, strokeColor=None))
        if data.band_label:
            # Under the title: a swatch of the fill, then whose range it is.
            # (mypy: types-reportlab types Rect's **kw without Unpack, so no keyword fits.)
            drawing.add(Rect(left, height - 23, 9, 6, fillColor=BAND,  # type: ignore[arg-type]
                             strokeColor=MUTED, strokeWidth=0.4))  # type: ignore[arg-type]
            drawing.add(String(left + 12, height - 23, data.band_label, fontSize=6.5,
                               fontName=label_font(data.band_label),
                               fillColor=INK, textAnchor="start"))
    drawing.add(Line(left, bottom, left + plot_w, bottom, strokeColor=MUTED))
    drawing.add(Line(left, bottom, left, bottom + plot_h, strokeColor=MUTED))
    value: float | None  # an axis value here; below, a score that may be missing
    for value in (data.y_min, (data.y_min + data.y_max) / 2, data.y_max):
        drawing.add(String(left - 4, y(value) - 3, f"{value:g}", fontSize=7,
                           fillColor=MUTED, textAnchor="end"))
    for session in sorted(set(data.sessions)):
        drawing.add(String(x(session), bottom - 12, str(session), fontSize=7,
                           fillColor=MUTED, textAnchor="middle"))
    axis = dict(data.words).get("session", "session")
    drawing.add(String(left + plot_w / 2, 2, axis, fontName=label_font(axis),
                       fontSize=7, fillColor=MUTED, textAnchor="middle"))
    if data.cutoff is not None:
        drawing.add(Line(left, y(data.cutoff), left + plot_w, y(data.cutoff),
                         strokeColor=INK, strokeDashArray=[3, 2], strokeWidth=0.8))
        if data.cutoff_label:
            # At the left end, where the first score rarely sits right on the line.
            drawing.add(String(left + 4, y(data.cutoff) + 3, data.cutoff_label,
                               fontName=label_font(data.cutoff_label),
                               fontSize=7, fillColor=INK, textAnchor="start"))
    points = [(x(s), y(v)) for s, v in zip(data.sessions, data.scores, strict=True)
              if v is not None]
    if len(points) > 1:
        drawing.add(PolyLine([c for p in points for c in p], strokeColor=LINE,
                             strokeWidth=1.6))
    for px, py in points:
        drawing.add(Circle(px, py, 2.6, fillColor=LINE, strokeColor=colors.white,
                           strokeWidth=0.6))
    by_session = {s: v for s, v in zip(data.sessions, data.scores, strict=True)}
    for session, kind in data.markers:
        value = by_session.get(session)
        if value is not None:
            for shape in _marker(kind, x(session), y(value)):
                drawing.add(shape)
    lx = left + plot_w
    for words in reversed(legend):
        kind = next(k for k in MARKERS if said[k] == words)
        width_words = legend_width(words, 7)
        drawing.add(String(lx, legend_y, words, fontSize=7, fillColor=INK,
                           fontName=label_font(words), textAnchor="end"))
        for shape in _marker(kind, lx - width_words - 7, legend_y + 3 - (
                9 if kind in ("improved", "recovered") else -9 if kind in (
                    "deteriorated", "harmed", "possible", "rupture", "unrepaired") else 0)):
            drawing.add(shape)
        lx -= width_words + 18
    return drawing


def legend_width(words: str, size: float) -> float:
    """The printed width of a chart label in points, by the metrics of the font it is
    printed in (:func:`label_font`), so a legend's markers never overlap its words."""
    return float(stringWidth(words, label_font(words), size))


@dataclass(frozen=True)
class HeatmapData:
    """Item answers by session: ``values[i][j]`` is item i at session j (None = no answer)."""

    title: str
    item_labels: tuple[str, ...]
    sessions: tuple[int, ...]
    values: tuple[tuple[float | None, ...], ...]
    v_min: float
    v_max: float


def heatmap_drawing(data: HeatmapData, width: float = 520, row_height: float = 14
                    ) -> Drawing:
    """An item-by-session grid shaded by answer (darker = higher), the number in each cell.

    Missing answers are left blank with a thin dash: an unanswered item is not a 0.
    """
    label_w, top, bottom = 150.0, 22.0, 18.0
    n_rows, n_cols = len(data.item_labels), max(len(data.sessions), 1)
    height = top + bottom + n_rows * row_height
    cell_w = (width - label_w - 6) / n_cols
    drawing = Drawing(width, height)
    drawing.add(String(0, height - 14, data.title,
                       fontName=label_font(data.title, "Helvetica-Bold"), fontSize=10,
                       fillColor=INK))
    span = (data.v_max - data.v_min) or 1.0
    for i, label in enumerate(data.item_labels):
        y0 = height - top - (i + 1) * row_height
        short = label if len(label) <= 34 else label[:33] + "…"
        drawing.add(String(label_w - 4, y0 + 4, short, fontSize=7, fillColor=INK,
                           fontName=label_font(short),
                           textAnchor="end"))
        for j, value in enumerate(data.values[i]):
            x0 = label_w + j * cell_w
            if value is None:
                drawing.add(Line(x0 + cell_w / 2 - 2, y0 + row_height / 2,
                                 x0 + cell_w / 2 + 2, y0 + row_height / 2,
                                 strokeColor=MUTED, strokeWidth=0.5))
                continue
            level = min(max((value - data.v_min) / span, 0.0), 1.0)
            shade = 0.96 - 0.74 * level
            # (mypy: types-reportlab types Rect's **kw without Unpack, so no keyword fits.)
            drawing.add(Rect(x0, y0, cell_w - 1, row_height - 1,
                             fillColor=colors.Color(shade, shade, shade), strokeColor=None))  # type: ignore[arg-type]
            drawing.add(String(x0 + cell_w / 2, y0 + 4, f"{value:g}", fontSize=6.5,
                               fillColor=colors.white if level > 0.55 else INK,
                               textAnchor="middle"))
    for j, session in enumerate(data.sessions):
        drawing.add(String(label_w + j * cell_w + cell_w / 2, 4, str(session), fontSize=6.5,
                           fillColor=MUTED, textAnchor="middle"))
    return drawing


_STYLE = re.compile(r'style="([^"]*)"')
_FONTS = {"Helvetica": ("Helvetica, Arial, sans-serif", None),
          "Helvetica-Bold": ("Helvetica, Arial, sans-serif", "bold"),
          FONT: ("DejaVu Sans, Helvetica, Arial, sans-serif", None),
          FONT_BOLD: ("DejaVu Sans, Helvetica, Arial, sans-serif", "bold")}


def _presentation(match: re.Match[str]) -> str:
    """A ``style`` attribute as SVG presentation attributes.

    The page's Content-Security-Policy (``style-src 'self'``) blocks inline style
    attributes, but not presentation attributes such as ``fill`` and ``stroke``.
    """
    attributes = []
    for declaration in match.group(1).split(";"):
        name, _, value = declaration.partition(":")
        name, value = name.strip(), value.strip()
        if not name or not re.fullmatch(r"[a-z-]+", name):
            continue
        if name == "font-family":
            value, weight = _FONTS.get(value, (value, None))
            if weight:
                attributes.append(f'font-weight="{weight}"')
        attributes.append(f'{name}="{value.replace(chr(34), "")}"')
    return " ".join(attributes)


# The least text size of a chart on screen, in CSS pixels (issue 17: a phone shrank
# charts to 4-6 px text).
MIN_SCREEN_FONT_PX = 11.0


def smallest_font(drawing: Drawing) -> float | None:
    """The smallest font size of any text in ``drawing`` (None without text)."""
    sizes: list[float] = []

    def walk(node: Any) -> None:
        if isinstance(node, String):
            sizes.append(float(node.fontSize))
        for child in getattr(node, "contents", ()):
            walk(child)

    walk(drawing)
    return min(sizes) if sizes else None


def to_svg(drawing: Drawing, title: str, description: str, key: str = "",
           min_font_px: float = MIN_SCREEN_FONT_PX) -> str:
    """Inline SVG (no XML prolog) with an accessible title and description.

    ``key`` makes the title and description ids unique when a page has several charts.
    The SVG's width and height are its drawing's, enlarged so that its smallest text is
    ``min_font_px`` CSS pixels when it is shown at that size (the page shows charts at
    their own size and lets a narrow screen scroll them: scaled to a phone's width, the
    text would shrink below reading size).
    """
    svg = renderSVG.drawToString(drawing)
    smallest = smallest_font(drawing)
    scale = max(1.0, min_font_px / smallest) if smallest else 1.0
    if scale > 1.0:
        svg = re.sub(r'width="[0-9.]+" height="[0-9.]+"',
                     f'width="{math.ceil(drawing.width * scale)}" '
                     f'height="{math.ceil(drawing.height * scale)}"', svg, count=1)
    svg = _STYLE.sub(_presentation, svg[svg.index("<svg"):])
    # reportlab's placeholder title and fixed ids would repeat when a page has several
    # charts; ours follow below.
    svg = svg.replace("<title>...</title>", "").replace("<desc>...</desc>", "")
    svg = svg.replace(' id="group"', "")
    escaped = {ch: f"&#{ord(ch)};" for ch in "<>&\"'"}
    safe_title = "".join(escaped.get(ch, ch) for ch in title)
    safe_desc = "".join(escaped.get(ch, ch) for ch in description)
    key = re.sub(r"[^A-Za-z0-9_-]", "", key)
    t, d = (f"t-{key}", f"d-{key}") if key else ("t", "d")
    clip = f"clip-{key}" if key else "clip"
    svg = svg.replace('id="clip"', f'id="{clip}"').replace("url(#clip)", f"url(#{clip})")
    svg = re.sub(r"<svg ", f'<svg role="img" aria-labelledby="{t} {d}" ', svg, count=1)
    head_end = svg.index(">") + 1
    return (svg[:head_end] + f'<title id="{t}">{safe_title}</title>'
            f'<desc id="{d}">{safe_desc}</desc>' + svg[head_end:])


def scrolling_chart(svg: str, key: str = "") -> str:
    """An inline chart in a box that scrolls sideways when the screen is narrower than the
    chart (keyboard users reach it too: it takes focus, named by the chart's title)."""
    key = re.sub(r"[^A-Za-z0-9_-]", "", key)
    title = f"t-{key}" if key else "t"
    return (f'<div class="chart-scroll" role="group" tabindex="0" aria-labelledby="{title}">'
            f"{svg}</div>")
