"""The supervisor's weekly digest as a PDF: a cover with the clinic-wide figures, then
one section per supervisee.

Read on paper and on screens, often in greyscale (users.md): every colour is printed
with its word, and the badges differ by border as well as by fill. It supports a
supervision conversation, it is not a league table: rates carry their counts and 95 %
intervals, and small numbers are labelled "not for comparison", never ranked.
De-identified: the :class:`~reports.digest.Digest` holds client codes only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import zoneinfo

from reportlab.platypus import CondPageBreak
from reportlab.platypus import Flowable
from reportlab.platypus import KeepTogether
from reportlab.platypus import PageBreak
from reportlab.platypus import Spacer
from reportlab.platypus import Table
from reportlab.platypus import TableStyle

from reports.charts import trajectory_drawing
from reports.digest import AttentionItem
from reports.digest import Digest
from reports.digest import KeyFigures
from reports.digest import RateFigure
from reports.digest import SuperviseeSection
from reports.pdf import FRAME_WIDTH
from reports.pdf import MUTED
from reports.pdf import RULE
from reports.pdf import SectionMark
from reports.pdf import badge
from reports.pdf import build_pdf
from reports.pdf import bullets
from reports.pdf import esc
from reports.pdf import long_date
from reports.pdf import para
from reports.pdf import rich
from reports.pdf import table

# Progress colours, in order of concern, with the words that carry their meaning.
COLOURS = (
    ("red", "Red", "not on track"),
    ("yellow", "Yellow", "less progress than expected"),
    ("green", "Green", "on track"),
    ("white", "White", "in the functional range"),
    ("grey", "Grey", "no colour yet"),
)
# Change categories of ended episodes (outcome.core.change.CATEGORIES), in words.
CATEGORY_WORDS = {
    "recovered": "Recovered",
    "improved": "Reliably improved",
    "unchanged": "No reliable change",
    "deteriorated": "Reliably deteriorated",
    "harmed": "Reliably deteriorated into the clinical range",
}
SMALL = "Small numbers: not for comparison."
CHART_WIDTH, CHART_HEIGHT = 214.0, 128.0


def render_digest(digest: Digest) -> bytes:
    """The digest as PDF bytes; the same digest always gives the same bytes.

    Not encrypted: the digest is kept in the app and served to its supervisor only; the
    e-mail is a notice with a link (issue 16).
    """
    story: list[Flowable] = []
    story += _cover(digest)
    for section in digest.sections:
        story.append(PageBreak())
        story += _section(digest, section)
    title = f"Supervision digest {digest.week}, {digest.clinic_name}"
    return build_pdf(story, title=title,
                     subject="Weekly supervision digest (de-identified: client codes only)")


# --- numbers in words ---------------------------------------------------------------------


def _pct(proportion: float) -> str:
    return f"{proportion * 100:.0f}"


def rate_text(figure: RateFigure, *, interval: bool = True, none: str = "none") -> str:
    """``4 of 9 (44 %, 95 % CI 19\u201373 %)``; ``none`` when there is nothing to count."""
    if not figure.n:
        return none
    text = f"{figure.count} of {figure.n} ({_pct(figure.count / figure.n)} %"
    if interval and figure.low is not None and figure.high is not None:
        text += f", 95 % CI {_pct(figure.low)}\u2013{_pct(figure.high)} %"
    return text + ")"


def _share(count: int, total: int) -> str:
    """``3 of 12 (25 %)``: the count beside its share; "—" when there is no total
    (a share of nothing is not 0 % nor 100 %)."""
    return f"{count} of {total} ({_pct(count / total)} %)" if total else "—"


def _produced(digest: Digest) -> str:
    moment = digest.produced
    if moment.tzinfo is not None:
        with contextlib.suppress(zoneinfo.ZoneInfoNotFoundError, ValueError):
            moment = moment.astimezone(zoneinfo.ZoneInfo(digest.timezone))
    return f"{long_date(moment.date())}, {moment:%H:%M} ({digest.timezone})"


def _dates(starts: dt.date, ends: dt.date) -> str:
    return f"{long_date(starts, weekday=True)} to {long_date(ends, weekday=True)}"


# --- the cover --------------------------------------------------------------------------------


def _cover(digest: Digest) -> list[Flowable]:
    story: list[Flowable] = [
        para("Supervision digest", "title"),
        para(f"Week {digest.week} \u00b7 {_dates(digest.starts, digest.ends)}", "subtitle"),
        _facts(digest),
        Spacer(1, 4),
        para("Clients appear by code only. Rates show their counts and a 95 % confidence "
             "interval; with fewer than 10 ended episodes they are labelled as small "
             "numbers and are not for comparing therapists.", "muted"),
        para("Key figures, all supervisees", "h2"),
        _key_figures(digest),
        Spacer(1, 3),
        para(_colour_note(digest) + (f" Outcomes of ended episodes: {SMALL.lower()}"
                                     if digest.this_week.is_small
                                     or digest.previous_week.is_small else ""), "muted"),
    ]
    story.append(KeepTogether([para("The last 12 weeks", "h2"), _trend(digest),
                               para("Each week is counted as the key figures are: red is "
                                    "the active episodes red on "
                                    f"{digest.instrument or 'the main outcome measure'} at "
                                    "the end of that week.", "muted")]))
    if not digest.sections:
        story.append(para("No supervisees are assigned to this supervisor, so there are "
                          "no sections this week.", "body"))
    return story


def _colour_note(digest: Digest) -> str:
    measure = digest.instrument or "the main outcome measure"
    return (f"Colours: each active episode\u2019s colour on {measure} at the end of the "
            "week, from its scores up to then (grey: fewer than two).")


def _facts(digest: Digest) -> Table:
    """Who and what the digest is about, two facts to a row."""
    facts = [("Clinic", digest.clinic_name), ("Supervisor", digest.supervisor_name),
             ("Main outcome measure", digest.instrument or "none set"),
             ("Supervisees", str(len(digest.sections))),
             ("Time zone", f"{digest.timezone} (weeks run Monday to Sunday there)"),
             ("Produced", _produced(digest))]
    rows = [[*facts[i], *facts[i + 1]] for i in range(0, len(facts), 2)]
    widths = [108, FRAME_WIDTH / 2 - 108, 64, FRAME_WIDTH / 2 - 64]
    return table(rows, widths, header=False, bold_columns=(0, 2),
                 extra=[("LINEABOVE", (0, 0), (-1, 0), 0.4, RULE)])


def _key_figures(digest: Digest) -> Table:
    now, before = digest.this_week, digest.previous_week
    measure = digest.instrument or "the main outcome measure"
    rows: list[list] = [[f"Figure (colours: progress on {measure})", "", "This week",
                         "Previous week"],
                        ["Active episodes", "", str(now.active_episodes),
                         str(before.active_episodes)]]
    for key, word, meaning in COLOURS:
        rows.append([badge(key, word), meaning,
                     _share(now.colours.get(key, 0), now.active_episodes),
                     _share(before.colours.get(key, 0), before.active_episodes)])
    rows += [
        [f"Sessions with {measure} answered", "",
         rate_text(now.completion, interval=False, none="no sessions held"),
         rate_text(before.completion, interval=False, none="no sessions held")],
        ["Open alerts", "", str(now.open_alerts), str(before.open_alerts)],
        ["Ruptures opened", "", str(now.ruptures_opened), str(before.ruptures_opened)],
        ["Ruptures repaired", "", str(now.ruptures_repaired), str(before.ruptures_repaired)],
        ["Episodes ended", "", str(now.episodes_ended), str(before.episodes_ended)],
    ]
    for label, attr in (("Reliably improved", "reliably_improved"),
                        ("Recovered", "recovered"), ("Reliably deteriorated", "deteriorated")):
        rows.append([f"{label} on {measure} (of ended episodes)", "",
                     rate_text(getattr(now, attr), none="\u2014"),
                     rate_text(getattr(before, attr), none="\u2014")])
    widths = [100, 140, (FRAME_WIDTH - 240) / 2, (FRAME_WIDTH - 240) / 2]
    colour_rows = range(2, 2 + len(COLOURS))
    # Figures span the first two columns; colour rows use them for badge and meaning.
    spans = [("SPAN", (0, r), (1, r)) for r in range(len(rows)) if r not in colour_rows]
    return table(rows, widths, right=(2, 3), extra=[
        *spans, *[("VALIGN", (0, r), (-1, r), "MIDDLE") for r in colour_rows]])


def _trend(digest: Digest) -> Table:
    rows: list[list] = [["Week", "Active episodes",
                         f"Red on {digest.instrument or 'the measure'}",
                         "Open alerts",
                         f"Sessions with {digest.instrument or 'the measure'} answered"]]
    for point in digest.trend:
        rows.append([point.week, str(point.active_episodes), str(point.red),
                     str(point.open_alerts),
                     rate_text(point.completion, interval=False, none="no sessions held")])
    if len(rows) == 1:
        rows.append(["\u2013", "", "", "", ""])
    widths = [70, 80, 90, 70, FRAME_WIDTH - 310]
    return table(rows, widths, right=(1, 2, 3, 4), bold_rows=(-1,))


# --- a supervisee's section ---------------------------------------------------------------------


def _section(digest: Digest, section: SuperviseeSection) -> list[Flowable]:
    week = section.week
    story: list[Flowable] = [
        SectionMark(section.therapist_name),
        para(section.therapist_name, "h1"),
        para(f"Supervisee \u00b7 week {digest.week} \u00b7 {week.active_episodes} active "
             f"episode{'s' if week.active_episodes != 1 else ''}", "subtitle"),
        para("Active episodes by progress colour on "
             f"{digest.instrument or 'the main outcome measure'} at the end of the week", "h2"),
    ]
    if week.active_episodes:
        story.append(_colour_strip(week))
    else:
        story.append(para("No active episodes this week.", "body"))
    story.append(para("This week", "h2"))
    story.append(_week_strip(digest, week))

    story.append(para(f"Clients needing attention now ({len(section.attention)})", "h2"))
    story.append(para("Read when the digest was produced: open alerts and each client\u2019s "
                      "latest signals.", "muted"))
    if section.attention:
        for item in section.attention:
            story.append(_attention(item))
            story.append(Spacer(1, 6))
    else:
        story.append(para("No clients need attention this week.", "body"))

    ruptures = (f"{_count(week.ruptures_opened, 'rupture')} opened and "
                f"{week.ruptures_repaired} repaired this week."
                if week.ruptures_opened or week.ruptures_repaired
                else "No ruptures opened or repaired this week.")
    story.append(KeepTogether([para("Alliance ruptures", "h2"), para(ruptures, "body")]))
    story += _ended(digest, section)
    story.append(KeepTogether([
        para("Data completeness", "h2"),
        para(_completeness(digest, week.completion), "body")]))
    return story


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _colour_strip(week: KeyFigures) -> Table:
    """Five columns, one per colour: the badge (with its word), the meaning, the count."""
    total = week.active_episodes
    head = [badge(key, word, width=60) for key, word, _ in COLOURS]
    meaning = [para(text, "cell_muted") for _, _, text in COLOURS]
    counts = [para(_share(week.colours.get(key, 0), total), "cell_bold") for key, _, _
              in COLOURS]
    width = FRAME_WIDTH / len(COLOURS)
    strip = Table([head, meaning, counts], colWidths=[width] * len(COLOURS), hAlign="LEFT")
    strip.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 4), ("RIGHTPADDING", (0, 0), (-1, -1), 4),
        ("TOPPADDING", (0, 0), (-1, -1), 2), ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
        ("LINEABOVE", (0, 0), (-1, 0), 0.4, RULE), ("LINEBELOW", (0, -1), (-1, -1), 0.4, RULE),
        ("TOPPADDING", (0, 0), (-1, 0), 6), ("BOTTOMPADDING", (0, -1), (-1, -1), 6),
    ]))
    return strip


def _week_strip(digest: Digest, week: KeyFigures) -> Table:
    labels = [f"Sessions with {digest.instrument or 'the measure'} answered", "Open alerts",
              "Ruptures opened", "Ruptures repaired", "Episodes ended"]
    values = [rate_text(week.completion, interval=False, none="no sessions held"),
              str(week.open_alerts), str(week.ruptures_opened), str(week.ruptures_repaired),
              str(week.episodes_ended)]
    widths = [FRAME_WIDTH * 0.28] + [FRAME_WIDTH * 0.18] * 4
    return table([labels, values], widths)


def _attention(item: AttentionItem) -> Flowable:
    """One client: code, reasons, the latest note on the left; a small chart on the right."""
    text: list[Flowable] = [para(item.code, "h3")]
    text += bullets(item.reasons or ("(no reason given)",), "bullet")
    if item.last_note:
        when = (f" ({long_date(item.last_note_date)})" if item.last_note_date else "")
        text.append(rich(f"<b>Therapist\u2019s latest note{esc(when)}:</b> "
                         f"{esc(item.last_note)}", "small"))
    else:
        text.append(para("No acknowledgement note from the therapist yet.", "muted"))
    chart: Flowable = (trajectory_drawing(item.chart, width=CHART_WIDTH, height=CHART_HEIGHT)
                       if item.chart is not None
                       else para("No chart: fewer than two scores.", "muted"))
    box = Table([[text, chart]], colWidths=[FRAME_WIDTH - CHART_WIDTH - 12,
                                            CHART_WIDTH + 12], hAlign="LEFT")
    box.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("BOX", (0, 0), (-1, -1), 0.6, RULE),
        ("LINEBEFORE", (0, 0), (0, -1), 2.5, MUTED),
        ("LEFTPADDING", (0, 0), (-1, -1), 8), ("RIGHTPADDING", (0, 0), (-1, -1), 6),
        ("TOPPADDING", (0, 0), (-1, -1), 6), ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
    ]))
    return box  # one row: never split across pages; a heading before it keeps with it


def _ended(digest: Digest, section: SuperviseeSection) -> list[Flowable]:
    week = section.week
    measure = digest.instrument or "the main outcome measure"
    head = para(f"Outcomes of episodes ended this week (change on {measure})", "h2")
    if not week.episodes_ended and not section.ended:
        return [KeepTogether([head, para("No episodes ended this week.", "body")])]
    rows: list[list] = [["Outcome", "Episodes ended with a change score"]]
    for label, figure in (("Reliably improved", week.reliably_improved),
                          ("Recovered", week.recovered),
                          ("Reliably deteriorated", week.deteriorated)):
        rows.append([label, rate_text(figure, none="no change score yet")])
    story: list[Flowable] = [head, table(rows, [150, FRAME_WIDTH - 150])]
    if week.is_small:
        story += [Spacer(1, 3), para(SMALL, "muted")]
    block: list[Flowable] = [CondPageBreak(120), *story]
    if section.ended:
        reasons = section.ended_reasons or ("",) * len(section.ended)
        listing = [["Client", "Change from intake to the last score", "Why it ended"]]
        listing += [[code, f"{CATEGORY_WORDS.get(category, category)} ({on})"
                     if on else CATEGORY_WORDS.get(category, category), reason]
                    for (code, category, on), reason in zip(section.ended, reasons,
                                                            strict=True)]
        block += [Spacer(1, 6), table(listing, [90, FRAME_WIDTH - 240, 150])]
        if section.ended_reasons:
            block += [Spacer(1, 6), table(_by_reason(section), [150, FRAME_WIDTH - 150])]
    return block


def _by_reason(section: SuperviseeSection) -> list[list]:
    """Episodes ended this week counted by why they ended, each with its change
    categories (issue 17): "Completed as planned | 3: Recovered 2, No reliable change 1"."""
    counts: dict[str, dict[str, int]] = {}
    for (_code, category, _on), reason in zip(section.ended, section.ended_reasons,
                                              strict=True):
        row = counts.setdefault(reason, {})
        row[category] = row.get(category, 0) + 1
    rows: list[list] = [["Why episodes ended", "Episodes, by change from intake"]]
    for reason, by_category in counts.items():
        words = ", ".join(f"{CATEGORY_WORDS.get(c, c)} {n}" for c, n in by_category.items())
        rows.append([reason, f"{sum(by_category.values())}: {words}"])
    return rows


def _completeness(digest: Digest, completion: RateFigure) -> str:
    measure = digest.instrument or "The main outcome measure"
    if not completion.n:
        return "No sessions were held this week, so there was nothing to complete."
    return f"Sessions held this week with {measure} answered: {rate_text(completion)}."
