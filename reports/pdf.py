"""Shared PDF plumbing: the A4 page, its footer, styles, tables, badges and escaping.

Every report is a list of flowables handed to :func:`build_pdf`, which returns bytes.
Three promises hold for every document built here:

- **Text is text.** reportlab's ``Paragraph`` parses a small markup language (``<b>``,
  ``<img src=...>``, ``<link>``...). Every data string goes through :func:`esc` (or
  :func:`para`, which calls it), so a client's note is printed, never interpreted; an
  ``<img>`` in a note can neither crash the renderer nor make it read a file or URL.
  Nothing here fetches anything: no images, no URLs; the only file read is the font
  shipped inside the package.
- **Same data, same bytes.** Documents are built with ``invariant=1`` (no timestamps or
  random ids), so a report can be compared byte for byte (as reportlab's own tests do).
- **No encryption.** Reports are served by the app to signed-in staff and never e-mailed
  (issue 16: reportlab's own encryption is RC4, and an e-mailed PDF leaves the clinic's
  access control); there is deliberately no password option.
- **Readable on paper in greyscale.** Colour never carries meaning alone: a status badge
  holds its word, and the badges differ by border (solid, dashed, none) as well.

The text font is DejaVu Sans, shipped in ``reports/fonts`` (see :data:`FONT`), so names
in any European script print; charts keep Helvetica for their Latin labels.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from xml.sax.saxutils import escape

from reportlab.graphics.shapes import Drawing
from reportlab.graphics.shapes import Rect
from reportlab.graphics.shapes import String
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import BaseDocTemplate
from reportlab.platypus import Flowable
from reportlab.platypus import Frame
from reportlab.platypus import PageTemplate
from reportlab.platypus import Paragraph
from reportlab.platypus import Table
from reportlab.platypus import TableStyle

# DejaVu Sans ships with the package (reports/fonts, Bitstream Vera licence): the PDF
# standard fonts cover Latin-1 only, and a client named in Cyrillic or Greek must not
# print as boxes. reportlab embeds the subset of glyphs used, read from the package
# folder (never from the system or the network), so documents stay identical everywhere.
_FONTS = Path(__file__).resolve().parent / "fonts"
FONT = "DejaVuSans"
FONT_BOLD = "DejaVuSans-Bold"
for _name in (FONT, FONT_BOLD):
    if _name not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(_name, str(_FONTS / f"{_name}.ttf")))
pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=FONT_BOLD, italic=FONT,
                              boldItalic=FONT_BOLD)

PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN = 18 * mm
FOOTER_HEIGHT = 12 * mm
FRAME_WIDTH = PAGE_WIDTH - 2 * MARGIN

INK = colors.Color(0.11, 0.12, 0.14)
MUTED = colors.Color(0.38, 0.40, 0.43)
RULE = colors.Color(0.78, 0.80, 0.82)
SHADE = colors.Color(0.93, 0.94, 0.95)

AUTHOR = "outcome"


# --- escaping -----------------------------------------------------------------------------


def esc(value: object) -> str:
    """``value`` as Paragraph text: markup characters escaped, line breaks kept.

    Every string that comes from data (names, notes, reasons, labels) must pass through
    here (or :func:`para`) before it reaches a ``Paragraph``.
    """
    text = escape(str(value))
    return "<br/>".join(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))


# --- styles -------------------------------------------------------------------------------


def _styles() -> dict[str, ParagraphStyle]:
    # DejaVu Sans runs about 10 % wider than Helvetica: sizes are set for it.
    base = ParagraphStyle("body", fontName=FONT, fontSize=9, leading=12, textColor=INK,
                          spaceAfter=4)
    return {
        "body": base,
        "title": ParagraphStyle("title", base, fontName=FONT_BOLD, fontSize=20, leading=24,
                                spaceAfter=2),
        "subtitle": ParagraphStyle("subtitle", base, fontSize=11.5, leading=15,
                                   textColor=MUTED, spaceAfter=10),
        "h1": ParagraphStyle("h1", base, fontName=FONT_BOLD, fontSize=15, leading=19,
                             spaceBefore=4, spaceAfter=6, keepWithNext=1),
        "h2": ParagraphStyle("h2", base, fontName=FONT_BOLD, fontSize=11.5, leading=15,
                             spaceBefore=10, spaceAfter=4, keepWithNext=1),
        "h3": ParagraphStyle("h3", base, fontName=FONT_BOLD, fontSize=10, leading=13,
                             spaceBefore=4, spaceAfter=2, keepWithNext=1),
        "small": ParagraphStyle("small", base, fontSize=8.5, leading=11),
        "muted": ParagraphStyle("muted", base, fontSize=8.5, leading=11, textColor=MUTED),
        "bullet": ParagraphStyle("bullet", base, leftIndent=10, bulletIndent=0,
                                 spaceAfter=1),
        "cell": ParagraphStyle("cell", base, fontSize=8, leading=10, spaceAfter=0),
        "cell_bold": ParagraphStyle("cell_bold", base, fontName=FONT_BOLD, fontSize=8,
                                    leading=10, spaceAfter=0),
        "cell_right": ParagraphStyle("cell_right", base, fontSize=8, leading=10,
                                     spaceAfter=0, alignment=TA_RIGHT),
        "cell_bold_right": ParagraphStyle("cell_bold_right", base, fontName=FONT_BOLD,
                                          fontSize=8, leading=10, spaceAfter=0,
                                          alignment=TA_RIGHT),
        "cell_muted": ParagraphStyle("cell_muted", base, fontSize=8, leading=10,
                                     spaceAfter=0, textColor=MUTED),
    }


STYLES = _styles()


def para(text: object, style: str = "body") -> Paragraph:
    """A paragraph of plain text (escaped: never parsed as markup)."""
    return Paragraph(esc(text), STYLES[style])


def rich(markup: str, style: str = "body") -> Paragraph:
    """A paragraph of trusted markup: every data value in it already passed :func:`esc`."""
    return Paragraph(markup, STYLES[style])


def bullets(items: Iterable[object], style: str = "bullet") -> list[Paragraph]:
    """Plain-text bullet points (escaped)."""
    return [Paragraph(esc(item), STYLES[style], bulletText="\u2022") for item in items]


# --- tables -------------------------------------------------------------------------------


def table(rows: Sequence[Sequence[object]], widths: Sequence[float], *, header: bool = True,
          right: Iterable[int] = (), bold_columns: Iterable[int] = (),
          bold_rows: Iterable[int] = (), extra: Iterable[tuple] = ()) -> Table:
    """A plain table: a shaded bold header row, thin rules between rows.

    Cells that are strings are escaped into paragraphs (so long text wraps and markup
    stays text); flowables are used as they are. ``right`` lists columns aligned right
    (numbers); ``bold_columns`` and ``bold_rows`` (negative counts from the end) are set
    in bold.
    """
    right, bold_columns = set(right), set(bold_columns)
    bold_rows = {r % len(rows) for r in bold_rows} if rows else set()
    if header:
        bold_rows.add(0)
    body = []
    for r, row in enumerate(rows):
        cells = []
        for c, cell in enumerate(row):
            if isinstance(cell, str | int | float):
                style = "cell_bold" if r in bold_rows or c in bold_columns else "cell"
                cell = Paragraph(esc(cell), STYLES[style + ("_right" if c in right else "")])
            cells.append(cell)
        body.append(cells)
    commands: list[tuple] = [
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 4),
        ("RIGHTPADDING", (0, 0), (-1, -1), 4),
        ("TOPPADDING", (0, 0), (-1, -1), 3),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
        ("LINEBELOW", (0, 0), (-1, -1), 0.4, RULE),
    ]
    if header:
        commands += [("BACKGROUND", (0, 0), (-1, 0), SHADE),
                     ("LINEBELOW", (0, 0), (-1, 0), 0.8, MUTED)]
    commands += list(extra)
    result = Table(body, colWidths=list(widths), repeatRows=1 if header else 0,
                   hAlign="LEFT")
    result.setStyle(TableStyle(commands))
    return result


# --- badges: a status in words, drawn so that greyscale still tells them apart -------------

# (fill, border, border width, dash) after the dashboard's CSS badges.
_RED = (colors.HexColor("#fde7e6"), colors.HexColor("#b3261e"), 1.6, None)
_YELLOW = (colors.HexColor("#fff4cc"), colors.HexColor("#8a6d00"), 1.0, [2.2, 1.4])
_GREEN = (colors.HexColor("#e3f4e8"), colors.HexColor("#1a7f37"), 0.8, None)
_WHITE = (colors.white, MUTED, 0.6, None)
_GREY = (colors.HexColor("#eef0f2"), None, 0, None)
BADGES = {
    "red": _RED, "yellow": _YELLOW, "green": _GREEN, "white": _WHITE, "grey": _GREY,
    "recovered": _GREEN, "improved": _GREEN, "repaired": _GREEN,
    "deteriorated": _RED, "harmed": _RED, "unrepaired": _RED, "urgent": _RED,
    "high": _RED, "open": _GREY, "unchanged": _GREY, "possible": _YELLOW, "rupture": _YELLOW,
}


def badge(level: str, word: str | None = None, width: float = 50) -> Drawing:
    """A small labelled badge for a status (``word`` defaults to the level, capitalised).

    Drawn, not typed, so it is a flowable for a table cell; the word is a reportlab
    ``String`` (never parsed as markup).
    """
    fill, border, line, dash = BADGES.get(level, _GREY)
    label = word if word is not None else level.replace("_", " ").capitalize()
    size = 7.5
    width = max(width, stringWidth(label, FONT_BOLD, size) + 10)
    drawing = Drawing(width, 12)
    # (mypy: types-reportlab types Rect's **kw without Unpack, so no keyword fits.)
    drawing.add(Rect(0.8, 0.8, width - 1.6, 10.4, rx=2.5, ry=2.5,
                     fillColor=fill, strokeColor=border, strokeWidth=line, strokeDashArray=dash))  # type: ignore[arg-type]
    drawing.add(String(width / 2, 3.4, label, fontName=FONT_BOLD, fontSize=size,
                       fillColor=INK, textAnchor="middle"))
    return drawing


# --- the document ---------------------------------------------------------------------------


class SectionMark(Flowable):
    """An invisible flowable: from the page it lands on, the footer names ``text`` (say,
    whose section a page belongs to, for the pages that continue it)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.width = self.height = 0

    def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
        return 0, 0

    def draw(self) -> None:
        self.canv._outcome_section = self.text  # type: ignore[attr-defined]


def _canvas_class(title: str) -> type[Canvas]:
    """A canvas that holds its pages back until the end, to print "Page 3 of 7"."""

    class NumberedCanvas(Canvas):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict] = []

        def showPage(self) -> None:
            self._pages.append(dict(self.__dict__))
            self._startPage()  # type: ignore[attr-defined]  # private; not in reportlab's stubs

        def save(self) -> None:
            total = len(self._pages)
            for number, state in enumerate(self._pages, start=1):
                self.__dict__.pop("_outcome_section", None)  # a page without a mark
                self.__dict__.update(state)
                self._footer(number, total)
                super().showPage()
            super().save()

        def _footer(self, number: int, total: int) -> None:
            self.saveState()
            y = MARGIN - 6 * mm
            self.setStrokeColor(RULE)
            self.setLineWidth(0.5)
            self.line(MARGIN, y + 9, PAGE_WIDTH - MARGIN, y + 9)
            self.setFillColor(MUTED)
            self.setFont(FONT_BOLD, 7.5)
            confidential = _("Confidential")
            self.drawString(MARGIN, y, confidential)
            self.setFont(FONT, 7.5)
            section = getattr(self, "_outcome_section", "")
            shown = f"{title}  \u00b7  {section}" if section else title
            shown = shown if len(shown) <= 100 else shown[:99] + "\u2026"
            self.drawString(MARGIN + stringWidth(confidential, FONT_BOLD, 7.5) + 6, y,
                            f"\u00b7  {shown}")
            self.drawRightString(PAGE_WIDTH - MARGIN, y,
                                 _("Page %(number)s of %(total)s", number=number, total=total))
            self.restoreState()

    return NumberedCanvas


def build_pdf(story: list[Flowable], *, title: str, subject: str) -> bytes:
    """Lay ``story`` out on A4 pages and return the PDF bytes.

    ``title`` is the document's metadata title and is printed in every page's footer
    beside "Confidential"; keep names of people out of it (print them in the body, where
    a reader expects them).
    """
    buffer = io.BytesIO()
    doc = BaseDocTemplate(
        buffer, pagesize=A4, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN,
        bottomMargin=MARGIN + FOOTER_HEIGHT / 2, title=title, author=AUTHOR,
        subject=subject, creator=AUTHOR, lang="en", invariant=1)
    frame = Frame(doc.leftMargin, doc.bottomMargin, doc.width, doc.height, id="body",
                  leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0)
    doc.addPageTemplates([PageTemplate(id="page", frames=[frame])])
    doc.build(story, canvasmaker=_canvas_class(title))
    return buffer.getvalue()


# --- small formatting helpers shared by the reports -------------------------------------------

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def long_date(day: dt.date, *, weekday: bool = False) -> str:
    """``Monday 16 November 2026`` in the reader's language (English by default, whatever
    the process locale; in Russian, babel's long date with the month in the genitive)."""
    code = reader_locale()
    if code != "en":
        from babel.dates import format_date
        return format_date(day, "EEEE, d MMMM y" if weekday else "d MMMM y", locale=code)
    text = f"{day.day} {_MONTHS[day.month - 1]} {day.year}"
    return f"{_DAYS[day.weekday()]} {text}" if weekday else text


# --- the reader's language ------------------------------------------------------------------
# A report is rendered for one reader. The caller (a service, which owns the catalogues)
# passes its gettext for the reader's language; the renderers call ``_`` on their words.
# A context variable, so concurrent renders in threads never mix their readers.

_READER: ContextVar[tuple[Callable[[str], str], str]] = ContextVar(
    "report_reader", default=(lambda message: message, "en"))


def _(message: str, **params: object) -> str:
    """``message`` in the reader's language, with ``%(name)s`` ``params``."""
    text = _READER.get()[0](message)
    return text % params if params else text


def reader_locale() -> str:
    """The language code of the reader the report is being rendered for."""
    return _READER.get()[1]


@contextmanager
def for_reader(gettext: Callable[[str], str] | None, locale: str = "en") -> Iterator[None]:
    """Render, inside the block, for a reader whose words ``gettext`` gives."""
    token = _READER.set((gettext or (lambda message: message), locale))
    try:
        yield
    finally:
        _READER.reset(token)


def number(value: float) -> str:
    """A score as people write it: 17, 9.5, 38.4."""
    return f"{value:g}"
