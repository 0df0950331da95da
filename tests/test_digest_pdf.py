"""The supervisor's digest PDF (reports.digest_pdf) from a hand-built Digest.

Text is extracted with pypdf; the pages are also rendered to PNG with poppler's
``pdftoppm`` into ``test-artifacts/reports/`` for people to look at.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path

from pypdf import PdfReader

from reports.charts import TrajectoryData
from reports.digest import AttentionItem
from reports.digest import Digest
from reports.digest import KeyFigures
from reports.digest import RateFigure
from reports.digest import SuperviseeSection
from reports.digest import TrendPoint
from reports.digest_pdf import render_digest
from tests.helpers import flat
from tests.helpers import save_pngs

ROOT = Path(__file__).resolve().parent.parent
CANARY = "<img src=x onerror=alert(1)>"
NO_COLOURS = dict.fromkeys(("red", "yellow", "green", "white", "grey"), 0)


def figures(active=0, colours=None, completion=(0, 0, None, None), alerts=0, opened=0,
            repaired=0, ended=0, improved=(0, 0, None, None), recovered=(0, 0, None, None),
            deteriorated=(0, 0, None, None)) -> KeyFigures:
    assessed = improved[1]
    return KeyFigures(
        active_episodes=active, colours=dict(colours if colours is not None else NO_COLOURS),
        completion=RateFigure(*completion), open_alerts=alerts, ruptures_opened=opened,
        ruptures_repaired=repaired, episodes_ended=ended,
        reliably_improved=RateFigure(*improved), recovered=RateFigure(*recovered),
        deteriorated=RateFigure(*deteriorated), is_small=assessed < 10)


def phq(scores, markers=()) -> TrajectoryData:
    return TrajectoryData(title="PHQ-9", sessions=tuple(range(1, len(scores) + 1)),
                          scores=tuple(scores), y_min=0, y_max=27, cutoff=10,
                          cutoff_label="cutoff 10", markers=tuple(markers))


def sample_digest() -> Digest:
    """Two supervisees with clients (one with attention items, one with none), and one
    supervisee without any client."""
    rivers = SuperviseeSection(
        therapist_name="Alex Rivers",
        week=figures(active=6, colours={"red": 2, "yellow": 1, "green": 2, "white": 1,
                                        "grey": 0},
                     completion=(9, 11, 0.52, 0.95), alerts=3, opened=2, repaired=1, ended=3,
                     improved=(2, 3, 0.21, 0.94), recovered=(1, 3, 0.06, 0.79),
                     deteriorated=(0, 3, 0.0, 0.56)),
        attention=(
            AttentionItem(
                code="C-7KQ2MX",
                reasons=("Critical answer not acknowledged for over a day: PHQ-9 item 9 "
                         "answered 2 at session 6",
                         "Red: PHQ-9 21 at session 6, above the expected range (16 to 19)"),
                chart=phq([15, 17, 18, 19, 20, 21], markers=((6, "deteriorated"),)),
                last_note=CANARY, last_note_date=dt.date(2026, 11, 19)),
            AttentionItem(
                code="C-3HT9PA",
                reasons=("SRS rupture at session 4 not repaired within 2 sessions",),
                chart=phq([19, 16, 14, 14, 15]), last_note=None, last_note_date=None),
            AttentionItem(
                code="C-9WQ4RT", reasons=("Red: reliable deterioration since intake",),
                chart=None, last_note="Discussed in session; plan\nreviewed weekly",
                last_note_date=dt.date(2026, 11, 18)),
        ),
        ended=(("C-2BC4DE", "recovered", "PHQ-9"), ("C-5FG6HJ", "improved", "PHQ-9"),
               ("C-8KL9MN", "unchanged", "PHQ-9")))
    moreau = SuperviseeSection(
        therapist_name="Sam Moreau",
        week=figures(active=4, colours={"red": 0, "yellow": 0, "green": 3, "white": 1,
                                        "grey": 0},
                     completion=(5, 5, 0.57, 1.0), alerts=0),
        attention=(), ended=())
    empty = SuperviseeSection(therapist_name="Robin New", week=figures(), attention=(),
                              ended=())
    trend = tuple(
        TrendPoint(week=f"2026-W{w:02d}", active_episodes=8 + w % 3, red=w % 4,
                   open_alerts=(w * 7) % 5, completion=RateFigure(10 + w % 4, 14, 0.45, 0.9))
        for w in range(36, 46))
    # The last two rows are the previous week and this week, as in the key figures.
    trend += (TrendPoint("2026-W46", 11, 3, 4, RateFigure(12, 15, 0.55, 0.93)),
              TrendPoint("2026-W47", 10, 2, 3, RateFigure(14, 16, 0.64, 0.96)))
    return Digest(
        clinic_name="Heron Practice", supervisor_name="Dr Jo Okafor", week="2026-W47",
        starts=dt.date(2026, 11, 16), ends=dt.date(2026, 11, 22),
        produced=dt.datetime(2026, 11, 23, 6, 0, tzinfo=dt.UTC), timezone="Europe/Berlin",
        instrument="PHQ-9",
        this_week=figures(active=10, colours={"red": 2, "yellow": 1, "green": 5, "white": 2,
                                              "grey": 0},
                          completion=(14, 16, 0.64, 0.96), alerts=3, opened=2, repaired=1,
                          ended=3, improved=(2, 3, 0.21, 0.94), recovered=(1, 3, 0.06, 0.79),
                          deteriorated=(0, 3, 0.0, 0.56)),
        previous_week=figures(active=11, colours={"red": 3, "yellow": 2, "green": 4,
                                                  "white": 2, "grey": 0},
                              completion=(12, 15, 0.55, 0.93),
                              alerts=4, opened=1, repaired=2),
        trend=trend, sections=(rivers, moreau, empty))


def text_of(pdf: bytes) -> list[str]:
    reader = PdfReader(io.BytesIO(pdf))
    return [page.extract_text() for page in reader.pages]


def section(pages: list[str], name: str) -> str:
    """The text of the pages of ``name``'s section (the footer names it on each)."""
    return flat(" ".join(page for page in pages if f"\u00b7 {name} Page" in flat(page)))


def test_digest_shows_cover_sections_and_figures():
    pages = text_of(render_digest(sample_digest()))
    cover, everything = flat(pages[0]), flat(" ".join(pages))
    # Cover: clinic, supervisor, ISO week with its dates, time zone, main measure.
    for expected in ("Supervision digest", "Heron Practice", "Dr Jo Okafor", "2026-W47",
                     "Monday 16 November 2026", "Sunday 22 November 2026", "Europe/Berlin",
                     "PHQ-9", "This week", "Previous week", "The last 12 weeks"):
        assert expected in cover, expected
    # Key figures this week against last, and the 12-week trend (oldest first).
    assert re.search(r"Active episodes 10 11", cover)
    assert "progress on PHQ-9" in cover
    assert "Red not on track 2 of 10 (20 %) 3 of 11 (27 %)" in cover
    assert "Open alerts 3 4" in cover
    # No episode ended the week before: a dash, never 0 % of nothing.
    assert "Recovered on PHQ-9 (of ended episodes) 1 of 3 (33 %, 95 % CI 6\u201379 %) \u2014" \
        in cover
    trend = cover[cover.index("The last 12 weeks"):cover.index("Each week is counted")]
    assert re.findall(r"2026-W\d\d", trend) == [f"2026-W{w}" for w in range(36, 48)]
    assert "2026-W46 11 3 4 12 of 15 (80 %)" in trend
    assert "2026-W47 10 2 3 14 of 16 (88 %)" in trend
    # One section per supervisee, each on its own page.
    for name in ("Alex Rivers", "Sam Moreau", "Robin New"):
        assert sum(name in flat(page) for page in pages[1:]) >= 1, name
    rivers = section(pages, "Alex Rivers")
    # Caseload by colour: each colour with its word.
    for word in ("Red", "not on track", "Yellow", "less progress than expected", "Green",
                 "on track", "White", "Grey"):
        assert word in rivers, word
    # Clients needing attention, by code, with reasons in words and the latest note.
    assert "Clients needing attention now (3)" in rivers
    assert "C-7KQ2MX" in rivers and "C-3HT9PA" in rivers
    assert "PHQ-9 item 9 answered 2 at session 6" in rivers
    assert "latest note (19 November 2026)" in rivers
    assert "No acknowledgement note from the therapist yet." in rivers
    assert "No chart: fewer than two scores." in rivers  # C-9WQ4RT has no chart
    # Ruptures, outcomes of ended episodes with counts and intervals, completeness.
    assert "2 ruptures opened and 1 repaired this week." in rivers
    assert "Reliably improved 2 of 3 (67 %, 95 % CI 21\u201394 %)" in rivers
    assert "Recovered 1 of 3 (33 %, 95 % CI 6\u201379 %)" in rivers
    assert "Small numbers: not for comparison." in rivers
    assert "C-2BC4DE Recovered (PHQ-9)" in rivers
    assert "C-8KL9MN No reliable change (PHQ-9)" in rivers
    assert "with PHQ-9 answered: 9 of 11 (82 %, 95 % CI 52\u201395 %)" in rivers
    # Client codes only: no client name is in the data, so none can be in the PDF.
    assert "Lovelace" not in everything


def test_empty_supervisee_and_empty_week_render_sensibly():
    pages = text_of(render_digest(sample_digest()))
    robin = flat(next(p for p in pages if "Robin New" in p))
    assert "No active episodes this week." in robin
    assert "Grey" not in robin and "100 %" not in robin  # no share of nobody
    assert "No clients need attention this week." in robin
    assert "No episodes ended this week." in robin
    assert "No sessions were held this week" in robin
    moreau = flat(next(p for p in pages if "Sam Moreau" in p))
    assert "No clients need attention this week." in moreau

    # A digest without any supervisee, trend or measure still renders a cover.
    bare = Digest(clinic_name="Heron Practice", supervisor_name="Dr Jo Okafor",
                  week="2026-W01", starts=dt.date(2025, 12, 29), ends=dt.date(2026, 1, 4),
                  produced=dt.datetime(2026, 1, 5, 6, 0, tzinfo=dt.UTC), timezone="UTC",
                  instrument="", this_week=figures(), previous_week=figures(colours={}),
                  trend=(), sections=())
    pages = text_of(render_digest(bare))
    assert len(pages) == 1
    cover = flat(pages[0])
    assert "Monday 29 December 2025 to Sunday 4 January 2026" in cover
    assert "No supervisees are assigned" in cover


def test_canary_note_is_printed_as_text():
    pages = text_of(render_digest(sample_digest()))
    rivers = section(pages, "Alex Rivers")
    # Printed as the characters typed: not parsed (no image, no crash), not double-escaped.
    assert CANARY in rivers
    assert "&lt;" not in rivers and "&amp;" not in rivers
    # A line break in a note is kept as a line break.
    assert "Discussed in session; plan reviewed weekly" in rivers


def test_metadata_footer_and_page_numbers():
    pdf = render_digest(sample_digest())
    reader = PdfReader(io.BytesIO(pdf))
    meta = reader.metadata
    assert meta.title == "Supervision digest 2026-W47, Heron Practice"
    assert meta.author == "outcome"
    assert "de-identified" in meta.subject
    total = len(reader.pages)
    assert total >= 4  # cover + three supervisees
    for number, page in enumerate(reader.pages, start=1):
        text = flat(page.extract_text())
        assert f"Page {number} of {total}" in text
        assert "Confidential" in text and "Supervision digest 2026-W47" in text
    # Nothing in the file that would make a viewer fetch or run anything.
    for needle in (b"/URI", b"/JavaScript", b"/Launch", b"/EmbeddedFile"):
        assert needle not in pdf


def test_same_digest_same_bytes():
    assert render_digest(sample_digest()) == render_digest(sample_digest())


def test_the_digest_has_no_encryption_option():
    """Issue 16: digests stay in the app (no RC4 from reportlab, no e-mailed PDF)."""
    import inspect

    assert "password" not in inspect.signature(render_digest).parameters
    assert not PdfReader(io.BytesIO(render_digest(sample_digest()))).is_encrypted


def test_digest_pages_as_png():
    pngs = save_pngs(render_digest(sample_digest()), "digest")
    assert len(pngs) >= 4
    assert all(p.stat().st_size > 1000 for p in pngs)
