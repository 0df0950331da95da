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
from reports.digest import ENDING_CATEGORIES
from reports.digest import FEW_CASES
from reports.digest import AgendaEntry
from reports.digest import AttentionItem
from reports.digest import Digest
from reports.digest import HoursFigure
from reports.digest import KeyFigures
from reports.digest import RateFigure
from reports.digest import Share
from reports.digest import SuperviseeSection
from reports.digest import TherapistFidelity
from reports.pdf import FRAME_WIDTH
from reports.pdf import MUTED
from reports.pdf import RULE
from reports.pdf import SectionMark
from reports.pdf import _
from reports.pdf import badge
from reports.pdf import build_pdf
from reports.pdf import bullets
from reports.pdf import esc
from reports.pdf import long_date
from reports.pdf import para
from reports.pdf import rich
from reports.pdf import table


# Progress colours, in order of concern, with the words that carry their meaning.
def N_(message: str) -> str:  # marked for the catalogue; said with _() when rendered
    return message


COLOURS = (
    ("red", N_("Red"), N_("not on track")),
    ("yellow", N_("Yellow"), N_("less progress than expected")),
    ("green", N_("Green"), N_("on track")),
    ("white", N_("White"), N_("in the functional range")),
    ("grey", N_("Grey"), N_("no colour yet")),
)
# Change categories of ended episodes (outcome.core.change.CATEGORIES), in words.
CATEGORY_WORDS = {
    "recovered": N_("Recovered"),
    "improved": N_("Reliably improved"),
    "unchanged": N_("No reliable change"),
    "deteriorated": N_("Reliably deteriorated"),
    "harmed": N_("Reliably deteriorated into the clinical range"),
}
SMALL = N_("Small numbers: not for comparison.")


def _measure(digest: Digest, default: str = N_("the main outcome measure")) -> str:
    return digest.instrument or _(default)
CHART_WIDTH, CHART_HEIGHT = 214.0, 128.0


def render_digest(digest: Digest) -> bytes:
    """The digest as PDF bytes; the same digest always gives the same bytes.

    Not encrypted: the digest is kept in the app and served to its supervisor only; the
    e-mail is a notice with a link (issue 16).
    """
    story: list[Flowable] = []
    story += _cover(digest)
    if digest.sections:  # issue 19: the agenda and the fidelity figures
        story.append(PageBreak())
        story += _agenda(digest)
        story += _fidelity(digest)
    for section in digest.sections:
        story.append(PageBreak())
        story += _section(digest, section)
    title = _("Supervision digest %(week)s, %(clinic)s", week=digest.week,
              clinic=digest.clinic_name)
    return build_pdf(story, title=title,
                     subject=_("Weekly supervision digest (de-identified: client codes "
                               "only)"))


# --- numbers in words ---------------------------------------------------------------------


def _pct(proportion: float) -> str:
    return f"{proportion * 100:.0f}"


def rate_text(figure: RateFigure, *, interval: bool = True, none: str = "none") -> str:
    """``4 of 9 (44 %, 95 % CI 19\u201373 %)``; ``none`` when there is nothing to count."""
    if not figure.n:
        return none
    text = _("%(count)s of %(n)s", count=figure.count, n=figure.n)
    text += f" ({_pct(figure.count / figure.n)} %"
    if interval and figure.low is not None and figure.high is not None:
        text += ", " + _("95 %% CI %(low)s\u2013%(high)s %%", low=_pct(figure.low),
                          high=_pct(figure.high))
    return text + ")"


def _share(count: int, total: int) -> str:
    """``3 of 12 (25 %)``: the count beside its share; "—" when there is no total
    (a share of nothing is not 0 % nor 100 %)."""
    return (_("%(count)s of %(n)s", count=count, n=total) + f" ({_pct(count / total)} %)"
            if total else "—")


def _produced(digest: Digest) -> str:
    return produced_text(digest.produced, digest.timezone)


def produced_text(moment: dt.datetime, timezone: str) -> str:
    """``16 November 2026, 09:00 (Europe/London)``: a moment in the clinic's time zone."""
    if moment.tzinfo is not None:
        with contextlib.suppress(zoneinfo.ZoneInfoNotFoundError, ValueError):
            moment = moment.astimezone(zoneinfo.ZoneInfo(timezone))
    return f"{long_date(moment.date())}, {moment:%H:%M} ({timezone})"


def _dates(starts: dt.date, ends: dt.date) -> str:
    return _("%(start)s to %(end)s", start=long_date(starts, weekday=True),
             end=long_date(ends, weekday=True))


# --- the cover --------------------------------------------------------------------------------


def _cover(digest: Digest) -> list[Flowable]:
    story: list[Flowable] = [
        para(_("Supervision digest"), "title"),
        para(_("Week %(week)s", week=digest.week)
             + f" \u00b7 {_dates(digest.starts, digest.ends)}", "subtitle"),
        _facts(digest),
        Spacer(1, 4),
        para(_("Clients appear by code only. Rates show their counts and a confidence "
               "interval (95 %); with fewer than 10 ended episodes they are labelled as small "
               "numbers and are not for comparing therapists."), "muted"),
        para(_("Key figures, all supervisees"), "h2"),
        _key_figures(digest),
        Spacer(1, 3),
        para(_colour_note(digest) + (" " + _("Outcomes of ended episodes: %(small)s",
                                             small=_(SMALL).lower())
                                     if digest.this_week.is_small
                                     or digest.previous_week.is_small else ""), "muted"),
    ]
    story.append(KeepTogether([para(_("The last 12 weeks"), "h2"), _trend(digest),
                               para(_("Each week is counted as the key figures are: red is "
                                      "the active episodes red on %(measure)s at the end of "
                                      "that week.", measure=_measure(digest)), "muted")]))
    if not digest.sections:
        story.append(para(_("No supervisees are assigned to this supervisor, so there are "
                            "no sections this week."), "body"))
    return story


def _colour_note(digest: Digest) -> str:
    return _("Colours: each active episode\u2019s colour on %(measure)s at the end of the "
             "week, from its scores up to then (grey: fewer than two).",
             measure=_measure(digest))


def _facts(digest: Digest) -> Table:
    """Who and what the digest is about, two facts to a row."""
    facts = [(_("Clinic"), digest.clinic_name), (_("Supervisor"), digest.supervisor_name),
             (_("Main outcome measure"), digest.instrument or _("none set")),
             (_("Supervisees"), str(len(digest.sections))),
             (_("Time zone"), _("%(zone)s (weeks run Monday to Sunday there)",
                                zone=digest.timezone)),
             (_("Produced"), _produced(digest))]
    rows = [[*facts[i], *facts[i + 1]] for i in range(0, len(facts), 2)]
    widths = [108, FRAME_WIDTH / 2 - 108, 64, FRAME_WIDTH / 2 - 64]
    return table(rows, widths, header=False, bold_columns=(0, 2),
                 extra=[("LINEABOVE", (0, 0), (-1, 0), 0.4, RULE)])


def _key_figures(digest: Digest) -> Table:
    now, before = digest.this_week, digest.previous_week
    measure = _measure(digest)
    none_held = _("no sessions held")
    rows: list[list] = [[_("Figure (colours: progress on %(measure)s)", measure=measure), "",
                         _("This week"), _("Previous week")],
                        [_("Active episodes"), "", str(now.active_episodes),
                         str(before.active_episodes)]]
    for key, word, meaning in COLOURS:
        rows.append([badge(key, _(word)), _(meaning),
                     _share(now.colours.get(key, 0), now.active_episodes),
                     _share(before.colours.get(key, 0), before.active_episodes)])
    rows += [
        [_("Sessions with %(measure)s answered", measure=measure), "",
         rate_text(now.completion, interval=False, none=none_held),
         rate_text(before.completion, interval=False, none=none_held)],
        [_("Open alerts"), "", str(now.open_alerts), str(before.open_alerts)],
        [_("Ruptures opened"), "", str(now.ruptures_opened), str(before.ruptures_opened)],
        [_("Ruptures repaired"), "", str(now.ruptures_repaired),
         str(before.ruptures_repaired)],
        [_("Episodes ended"), "", str(now.episodes_ended), str(before.episodes_ended)],
    ]
    for label, attr in ((N_("Reliably improved"), "reliably_improved"),
                        (N_("Recovered"), "recovered"),
                        (N_("Reliably deteriorated"), "deteriorated")):
        rows.append([_("%(label)s on %(measure)s (of ended episodes)", label=_(label),
                       measure=measure), "",
                     rate_text(getattr(now, attr), none="\u2014"),
                     rate_text(getattr(before, attr), none="\u2014")])
    widths = [100, 140, (FRAME_WIDTH - 240) / 2, (FRAME_WIDTH - 240) / 2]
    colour_rows = range(2, 2 + len(COLOURS))
    # Figures span the first two columns; colour rows use them for badge and meaning.
    spans = [("SPAN", (0, r), (1, r)) for r in range(len(rows)) if r not in colour_rows]
    return table(rows, widths, right=(2, 3), extra=[
        *spans, *[("VALIGN", (0, r), (-1, r), "MIDDLE") for r in colour_rows]])


def _trend(digest: Digest) -> Table:
    measure = _measure(digest, N_("the measure"))
    rows: list[list] = [[_("Week"), _("Active episodes"),
                         _("Red on %(measure)s", measure=measure),
                         _("Open alerts"),
                         _("Sessions with %(measure)s answered", measure=measure)]]
    for point in digest.trend:
        rows.append([point.week, str(point.active_episodes), str(point.red),
                     str(point.open_alerts),
                     rate_text(point.completion, interval=False,
                               none=_("no sessions held"))])
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
        para(_("Supervisee \u00b7 week %(week)s", week=digest.week) + " \u00b7 "
             + (_("%(n)s active episode", n=week.active_episodes)
                if week.active_episodes == 1
                else _("%(n)s active episodes", n=week.active_episodes)), "subtitle"),
        para(_("Active episodes by progress colour on %(measure)s at the end of the week",
               measure=_measure(digest)), "h2"),
    ]
    if week.active_episodes:
        story.append(_colour_strip(week))
    else:
        story.append(para(_("No active episodes this week."), "body"))
    story.append(para(_("This week"), "h2"))
    story.append(_week_strip(digest, week))

    story.append(para(_("Clients needing attention now (%(n)s)", n=len(section.attention)),
                      "h2"))
    story.append(para(_("Read when the digest was produced: open alerts and each "
                        "client\u2019s latest signals."), "muted"))
    if section.attention:
        for item in section.attention:
            story.append(_attention(item))
            story.append(Spacer(1, 6))
    else:
        story.append(para(_("No clients need attention this week."), "body"))

    ruptures = ((_("%(opened)s rupture opened and %(repaired)s repaired this week.",
                   opened=week.ruptures_opened, repaired=week.ruptures_repaired)
                 if week.ruptures_opened == 1
                 else _("%(opened)s ruptures opened and %(repaired)s repaired this week.",
                        opened=week.ruptures_opened, repaired=week.ruptures_repaired))
                if week.ruptures_opened or week.ruptures_repaired
                else _("No ruptures opened or repaired this week."))
    story.append(KeepTogether([para(_("Alliance ruptures"), "h2"), para(ruptures, "body")]))
    story += _ended(digest, section)
    story.append(KeepTogether([
        para(_("Data completeness"), "h2"),
        para(_completeness(digest, week.completion), "body")]))
    return story


def _colour_strip(week: KeyFigures) -> Table:
    return colour_strip(week.colours, week.active_episodes)


def colour_strip(colours: dict[str, int], total: int) -> Table:
    """Five columns, one per colour: the badge (with its word), the meaning, and the
    count of ``total`` active episodes (``colours`` by colour name)."""
    head = [badge(key, _(word), width=60) for key, word, _meaning in COLOURS]
    meaning = [para(_(text), "cell_muted") for _key, _word, text in COLOURS]
    counts = [para(_share(colours.get(key, 0), total), "cell_bold")
              for key, _word, _meaning in COLOURS]
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
    labels = [_("Sessions with %(measure)s answered",
                measure=_measure(digest, N_("the measure"))), _("Open alerts"),
              _("Ruptures opened"), _("Ruptures repaired"), _("Episodes ended")]
    values = [rate_text(week.completion, interval=False, none=_("no sessions held")),
              str(week.open_alerts), str(week.ruptures_opened), str(week.ruptures_repaired),
              str(week.episodes_ended)]
    widths = [FRAME_WIDTH * 0.28] + [FRAME_WIDTH * 0.18] * 4
    return table([labels, values], widths)


def _attention(item: AttentionItem) -> Flowable:
    """One client: code, reasons, the latest note on the left; a small chart on the right."""
    text: list[Flowable] = [para(item.code, "h3")]
    text += bullets(item.reasons or (_("(no reason given)"),), "bullet")
    if item.last_note:
        said = (_("Therapist\u2019s latest note (%(day)s):",
                  day=long_date(item.last_note_date)) if item.last_note_date
                else _("Therapist\u2019s latest note:"))
        text.append(rich(f"<b>{esc(said)}</b> {esc(item.last_note)}", "small"))
    else:
        text.append(para(_("No acknowledgement note from the therapist yet."), "muted"))
    chart: Flowable = (trajectory_drawing(item.chart, width=CHART_WIDTH, height=CHART_HEIGHT)
                       if item.chart is not None
                       else para(_("No chart: fewer than two scores."), "muted"))
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
    head = para(_("Outcomes of episodes ended this week (change on %(measure)s)",
                  measure=_measure(digest)), "h2")
    if not week.episodes_ended and not section.ended:
        return [KeepTogether([head, para(_("No episodes ended this week."), "body")])]
    rows: list[list] = [[_("Outcome"), _("Episodes ended with a change score")]]
    for label, figure in ((N_("Reliably improved"), week.reliably_improved),
                          (N_("Recovered"), week.recovered),
                          (N_("Reliably deteriorated"), week.deteriorated)):
        rows.append([_(label), rate_text(figure, none=_("no change score yet"))])
    story: list[Flowable] = [head, table(rows, [150, FRAME_WIDTH - 150])]
    if week.is_small:
        story += [Spacer(1, 3), para(_(SMALL), "muted")]
    block: list[Flowable] = [CondPageBreak(120), *story]
    if section.ended:
        def said(category: str) -> str:
            return _(CATEGORY_WORDS[category]) if category in CATEGORY_WORDS else category
        reasons = section.ended_reasons or ("",) * len(section.ended)
        listing = [[_("Client"), _("Change from intake to the last score"), _("Why it ended")]]
        listing += [[code, f"{said(category)} ({on})" if on else said(category), reason]
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
    rows: list[list] = [[_("Why episodes ended"), _("Episodes, by change from intake")]]
    for reason, by_category in counts.items():
        words = ", ".join(f"{_(CATEGORY_WORDS[c]) if c in CATEGORY_WORDS else c} {n}"
                          for c, n in by_category.items())
        rows.append([reason, f"{sum(by_category.values())}: {words}"])
    return rows


def _completeness(digest: Digest, completion: RateFigure) -> str:
    measure = digest.instrument or _("The main outcome measure")
    if not completion.n:
        return _("No sessions were held this week, so there was nothing to complete.")
    return _("Sessions held this week with %(measure)s answered: %(rate)s.", measure=measure,
             rate=rate_text(completion))


# --- issue 19: the supervisor's agenda and the fidelity figures ---------------------------

ALERT_WORDS = {"not_on_track": N_("Not on track"), "unrepaired_rupture": N_("Rupture not repaired")}
ENDING_WORDS = {"planned": N_("planned"), "mutual": N_("mutual"),
                "unilateral": N_("unilateral (the client stopped)"),
                "other": N_("other (referred or another reason)")}
FEW = N_("few cases: read with care")


def agenda_state(entry: AgendaEntry) -> str:
    """The state of a case on the agenda in words, with its days and dates."""
    if entry.state == "no_plan":
        return _("%(alert)s: no action plan; days since the alert: %(days)s",
                 alert=_(ALERT_WORDS.get(entry.alert_kind or "", entry.alert_kind or "")),
                 days=entry.days)
    if entry.state == "plan_due":
        return _("Action plan under review: its review date was %(date)s",
                 date=long_date(entry.review_on)) if entry.review_on else ""
    if entry.state == "follow_up_due":
        return _("The follow-up date of your review has come; days since: %(days)s",
                 days=entry.days)
    return _("New action plan, not yet reviewed; review date %(date)s",
             date=long_date(entry.review_on) if entry.review_on else "\u2014")


def _agenda(digest: Digest) -> list[Flowable]:
    story: list[Flowable] = [
        SectionMark(_("Supervision agenda")),
        para(_("Supervision agenda"), "h1"),
        para(_("Cases by client code: not on track or with an unrepaired rupture and no "
               "action plan after the clinic\u2019s number of days, and action plans under "
               "review, as on %(when)s. Record reviews on the supervision agenda page.",
               when=_produced(digest)), "muted")]
    if not digest.agenda:
        story.append(para(_("Nothing on the agenda."), "body"))
        return story
    rows: list[list] = [[_("Client code"), _("Therapist"), _("State"), _("Your last review")]]
    for entry in digest.agenda:
        rows.append([entry.code, entry.therapist_name, agenda_state(entry),
                     long_date(entry.last_reviewed) if entry.last_reviewed else "\u2014"])
    story.append(table(rows, [70, 100, FRAME_WIDTH - 260, 90]))
    return story


def share_text(share: Share) -> str:
    """``2/5 (40 %)``, with the few-cases label when N < FEW_CASES; ``0/0`` when none."""
    text = f"{share.count}/{share.n}" + (f" ({_pct(share.count / share.n)} %)"
                                          if share.n else "")
    return text + (f" \u00b7 {_(FEW)}" if share.is_few else "")


def hours_text(figure: HoursFigure) -> str:
    """The median hours with how many were acknowledged of how many raised."""
    text = (_("median %(hours)s hours", hours=f"{figure.median_hours:.1f}")
            if figure.median_hours is not None else _("none acknowledged"))
    text += " \u00b7 " + _("%(n)s of %(total)s acknowledged", n=figure.acknowledged,
                          total=figure.raised)
    return text + (f" \u00b7 {_(FEW)}" if figure.is_few else "")


def _fidelity(digest: Digest) -> list[Flowable]:
    starts = long_date(digest.fidelity_starts) if digest.fidelity_starts else ""
    story: list[Flowable] = [
        para(_("Fidelity to measurement-based care"), "h2"),
        para(_("Each supervisee over the 12 weeks from %(start)s to %(end)s, in alphabetical "
               "order, never ranked. Each share shows its cases as n/N; fewer than %(few)s "
               "cases are labelled \u201cfew cases: read with care\u201d (%(few)s is a "
               "project default, not a published cutoff). Plans within 7 days count "
               "cases (episodes), not alerts; back on track means green or white on the "
               "plan\u2019s own measure.", start=starts,
               end=long_date(digest.ends), few=FEW_CASES), "muted")]
    for row in digest.fidelity:
        story.append(KeepTogether([para(row.therapist_name, "h3"),
                                   table(_fidelity_rows(row), [250, FRAME_WIDTH - 250])]))
    return story


def _fidelity_rows(row: TherapistFidelity) -> list[list]:
    rows: list[list] = [[_("Figure"), _("n/N")],
                        [_("Measure completion"), share_text(row.completion)],
                        [_("Median time to acknowledge a critical answer"),
                         hours_text(row.acknowledge)],
                        [_("Red cases (episodes with a not-on-track alert) with an action plan "
                           "within 7 days"),
                         share_text(row.plan_within_7_days)],
                        [_("Action plans reviewed (closed or revised on or after their "
                           "review date)"), share_text(row.plans_reviewed)],
                        [_("Red cases back on track (green or white) within 4 scored sessions of "
                           "a plan"),
                         share_text(row.back_on_track)
                         + (" \u00b7 " + _("waiting: %(n)s", n=row.back_on_track_waiting)
                            if row.back_on_track_waiting else "")]]
    for key in ENDING_CATEGORIES:
        rows.append([_("Ended episodes: %(category)s", category=_(ENDING_WORDS[key])),
                     share_text(row.endings[key])])
    return rows
