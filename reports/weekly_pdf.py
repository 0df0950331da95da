"""The therapist's weekly caseload report as a PDF (issue 18).

One document, in this order: the week in figures (colour counts, completion, open
alerts, episodes ended), the caseload by urgency (now, with how it relates to the
week's end), who changed colour this week, the alerts open at the week's end by age,
and the episodes ended with their outcome. Every colour and change category is printed
with the measure it is on ("Red on GAD-7", "GAD-7: Recovered").

Read on paper and on screens, often in greyscale (users.md): every colour is printed
with its word (and a badge that differs by border), a change category always names its
measure, and every data string is escaped (:func:`reports.pdf.esc`, through
:func:`reports.pdf.table` and :func:`reports.pdf.para`). The words, the badges, the
colour strip and the rates are the supervisor's digest's (:mod:`reports.digest_pdf`).
"""

from __future__ import annotations

from reportlab.platypus import CondPageBreak
from reportlab.platypus import Flowable
from reportlab.platypus import KeepTogether
from reportlab.platypus import Spacer

from reports.digest_pdf import CATEGORY_WORDS
from reports.digest_pdf import COLOURS
from reports.digest_pdf import N_
from reports.digest_pdf import colour_strip
from reports.digest_pdf import produced_text
from reports.digest_pdf import rate_text
from reports.pdf import FRAME_WIDTH
from reports.pdf import RULE
from reports.pdf import _
from reports.pdf import badge
from reports.pdf import build_pdf
from reports.pdf import long_date
from reports.pdf import para
from reports.pdf import table
from reports.weekly import ColourChange
from reports.weekly import EndedEpisode
from reports.weekly import WeeklyReport

# Alert kinds in words (the same words as the client record's, record/_labels.html).
ALERT_KINDS = {
    "critical_item": N_("Critical answer"),
    "critical_unanswered": N_("Critical question unanswered"),
    "not_on_track": N_("Not on track"),
    "rupture": N_("Alliance rupture"),
    "unrepaired_rupture": N_("Rupture not repaired"),
}
_WORDS = {key: (word, meaning) for key, word, meaning in COLOURS}
# Room a section needs below its heading to start on this page (points): a heading never
# ends a page without the first rows of its table.
KEEP = 130


def render_weekly(report: WeeklyReport) -> bytes:
    """The report as PDF bytes (the same report always gives the same bytes).

    Not encrypted, like every report (:mod:`reports.pdf`): it is kept in the app and served
    to its therapist only.
    """
    story: list[Flowable] = []
    story += _cover(report)
    story += _caseload(report)
    story += _changes(report)
    story += _alerts(report)
    story += _ended(report)
    title = _("Weekly caseload report %(week)s", week=report.week)
    return build_pdf(story, title=title,
                     subject=_("A therapist's weekly caseload report (names their own "
                               "clients)"))


def _measure(report: WeeklyReport) -> str:
    return report.instrument or _("the main outcome measure")


def colour_words(colour: str) -> str:
    """``Red (not on track)``: a colour never printed without its meaning."""
    word, meaning = _WORDS.get(colour, _WORDS["grey"])
    return f"{_(word)} ({_(meaning)})"


def colour_on(colour: str, measure: str) -> str:
    """``Red on GAD-7``: a colour with the measure it is on (the word alone without one:
    grey before any score)."""
    word = _(_WORDS.get(colour, _WORDS["grey"])[0])
    return _("%(colour)s on %(measure)s", colour=word, measure=measure) if measure else word


def colour_on_words(colour: str, measure: str) -> str:
    """``Red on GAD-7 (not on track)``: a colour with its measure and its meaning."""
    meaning = _(_WORDS.get(colour, _WORDS["grey"])[1])
    return f"{colour_on(colour, measure)} ({meaning})"


def _client(name: str, code: str) -> str:
    return name if name == code else f"{name}\n{code}"


def _week_end(report: WeeklyReport) -> str:
    return _("the end of %(day)s (%(zone)s)", day=long_date(report.ends, weekday=True),
             zone=report.timezone)


# --- the cover ------------------------------------------------------------------------------


def _cover(report: WeeklyReport) -> list[Flowable]:
    facts = [(_("Therapist"), report.therapist_name), (_("Clinic"), report.clinic_name),
             (_("Main outcome measure"), report.instrument or _("none set")),
             (_("Time zone"), _("%(zone)s (weeks run Monday to Sunday there)",
                                zone=report.timezone)),
             (_("As of"), produced_text(report.produced, report.timezone)), ("", "")]
    rows = [[*facts[i], *facts[i + 1]] for i in range(0, len(facts), 2)]
    widths = [108, FRAME_WIDTH / 2 - 108, 64, FRAME_WIDTH / 2 - 64]
    story: list[Flowable] = [
        para(_("Weekly caseload report"), "title"),
        # Its own sentence (not the digest's "%(start)s to %(end)s"), so that a language
        # whose "from ... to" changes the weekday's case can say the dates as a range.
        para(_("Week %(week)s \u00b7 %(start)s to %(end)s", week=report.week,
               start=long_date(report.starts, weekday=True),
               end=long_date(report.ends, weekday=True)), "subtitle"),
        table(rows, widths, header=False, bold_columns=(0, 2),
              extra=[("LINEABOVE", (0, 0), (-1, 0), 0.4, RULE)]),
        Spacer(1, 4),
        para(_("Confidential: this report names your own clients. The week\u2019s figures "
               "are as at %(end)s; the caseload by urgency is as at the time above.",
               end=_week_end(report)), "muted"),
        para(_("The week in figures"), "h2"),
        para(_("Episodes open at any time this week: %(n)s (%(open)s open at its end, "
               "%(ended)s ended during it), by colour on %(measure)s from each "
               "one\u2019s scores up to the end of the week (for an episode that ended, "
               "its last score)", n=report.active_episodes, open=report.open_at_end,
               ended=report.active_episodes - report.open_at_end, measure=_measure(report)),
             "body"),
    ]
    if report.active_episodes:
        story.append(colour_strip(report.colours, report.active_episodes))
        story.append(para(_("Grey: no colour yet: no score by then, or the latest score is "
                            "from the first session and outside the functional range (a "
                            "first score in the functional range is white), or the measure "
                            "has no reliable-change threshold yet."), "muted"))
    else:
        story.append(para(_("No active episodes this week."), "body"))
    completion = (_("Sessions this week with %(measure)s answered: %(rate)s.",
                    measure=_measure(report),
                    rate=rate_text(report.completion, interval=False))
                  if report.completion.n
                  else _("No sessions were held this week, so there was nothing to "
                         "complete."))
    story += [
        Spacer(1, 4),
        table([[_("Completion"), completion],
               [_("Open alerts"), _("%(n)s open at the end of the week.",
                                    n=len(report.alerts))],
               [_("Episodes ended"), _("%(n)s ended this week.", n=len(report.ended))]],
              [108, FRAME_WIDTH - 108], header=False, bold_columns=(0,)),
        para(_("Sessions: appointments in the week that were attended or are still "
               "marked as booked; missed and cancelled appointments are not counted."),
             "muted"),
    ]
    return story


# --- the caseload now -----------------------------------------------------------------------


def _caseload(report: WeeklyReport) -> list[Flowable]:
    head = [para(_("Caseload by urgency"), "h2"),
            para(_("Open episodes as at %(time)s, most urgent first, in the order of your "
                   "caseload page.", time=produced_text(report.produced, report.timezone)),
                 "muted"),
            para(_open_now(report), "body")]
    if not report.caseload:
        return [KeepTogether([*head, para(_("No open episodes."), "body")])]
    rows: list[list] = [["#", _("Client"), _("Colour"), _("Most urgent reason")]]
    for n, line in enumerate(report.caseload, start=1):
        if line.reason:
            reason = line.reason
        elif line.progress:
            reason = _("No open alert. %(progress)s", progress=line.progress)
        else:
            reason = _("No open alert.")
        rows.append([str(n), _client(line.name, line.code),
                     badge(line.colour, colour_on(line.colour, line.measure), width=84),
                     reason])
    story: list[Flowable] = [CondPageBreak(KEEP), *head,
                             table(rows, [18, 112, 100, FRAME_WIDTH - 230], right=(0,))]
    story += [para(text, "muted") for text in report.notices]
    return story


def _open_now(report: WeeklyReport) -> str:
    """"Open now: 4 (the 4 open at the end of the week, 1 ended since, 1 opened since)."
    The relation only when it adds up (an episode moved to another therapist would not)."""
    n = len(report.caseload)
    if n != report.open_at_end - report.ended_since + report.opened_since:
        return _("Open now: %(n)s.", n=n)

    ended = (_("%(n)s ended since", n=report.ended_since) if report.ended_since
             else _("none ended since"))
    opened = (_("%(n)s opened since", n=report.opened_since) if report.opened_since
              else _("none opened since"))
    return _("Open now: %(n)s (the %(open)s open at the end of the week, %(ended)s, "
             "%(opened)s).", n=n, open=report.open_at_end, ended=ended, opened=opened)


# --- colour changes ---------------------------------------------------------------------------


def _changes(report: WeeklyReport) -> list[Flowable]:
    head = [para(_("Who changed colour this week"), "h2"),
            para(_("Colour on %(measure)s at the start of the week against its end, each "
                   "read from the scores up to then.", measure=_measure(report)), "muted")]
    if not report.changes:
        return [KeepTogether([*head, para(_("No client changed colour this week."),
                                          "body")])]
    rows: list[list] = [[_("Client"), _("Colour change"), _("Why, now")]]
    rows += [[_client(c.name, c.code),
              f"{colour_on_words(c.before, c.measure)} \u2192 "
              f"{colour_on_words(c.after, c.measure)}", _why(c)]
             for c in report.changes]
    return [CondPageBreak(KEEP), *head, table(rows, [130, 170, FRAME_WIDTH - 300])]


def _why(change: ColourChange) -> str:
    """Why, now, each colour with its measure: "Now ..." only of the week's own measure,
    when its colour has changed again since the week ended (new scores), so the words
    never contradict the arrow; the caseload's colour, when it is on another measure
    (the episode's worst), as "GAD-7 is red (not on track): ..."."""
    if change.now is None:
        return _("The episode has ended.")
    parts = []
    if change.now_main is not None and change.now_main != change.after:
        parts.append(_("Now %(colour)s.", colour=colour_on_words(change.now_main,
                                                                  change.measure)))
    if change.now_measure and change.now_measure != change.measure:
        word, meaning = _WORDS.get(change.now, _WORDS["grey"])
        said = _("%(measure)s is %(colour)s (%(meaning)s)", measure=change.now_measure,
                 colour=_(word).lower(), meaning=_(meaning))
        parts.append(f"{said}: {change.reason}" if change.reason else f"{said}.")
    elif change.reason:
        parts.append(change.reason)
    return " ".join(parts) or "\u2014"


# --- open alerts by age -----------------------------------------------------------------------


def _alerts(report: WeeklyReport) -> list[Flowable]:
    head = [para(_("Open alerts by age"), "h2"),
            para(_("Alerts open at %(end)s, oldest first. Days open: calendar days from the "
                   "day the alert was raised to that Sunday, in the clinic\u2019s time zone.",
                   end=_week_end(report)), "muted")]
    if not report.alerts:
        return [KeepTogether([*head, para(_("No alerts were open at the end of the week."),
                                          "body")])]
    rows: list[list] = [[_("Client"), _("Alert"), _("Raised"), _("Days open")]]
    rows += [[_client(a.name, a.code), _(ALERT_KINDS[a.kind]) if a.kind in ALERT_KINDS
              else a.kind, long_date(a.raised), str(a.days)] for a in report.alerts]
    return [CondPageBreak(KEEP), *head,
            table(rows, [150, FRAME_WIDTH - 370, 150, 70], right=(3,))]


# --- episodes ended -----------------------------------------------------------------------------


def outcome_words(episode: EndedEpisode) -> str:
    """``GAD-7: Recovered``: the episode's own change category, always with its measure
    (or pair); "No change score yet." without one."""
    if episode.category is None or not episode.measure:
        return _("No change score yet.")
    said = (_(CATEGORY_WORDS[episode.category]) if episode.category in CATEGORY_WORDS
            else episode.category)
    return f"{episode.measure}: {said}"


def _ended(report: WeeklyReport) -> list[Flowable]:
    head = [para(_("Episodes ended this week"), "h2"),
            para(_("Each episode\u2019s own change from intake to its last score, as its "
                   "client page shows it: on the episode\u2019s primary measure, or on the "
                   "NHS Talking Therapies pair where the clinic uses it (reliable and "
                   "clinically significant change)."), "muted")]
    if not report.ended:
        return [KeepTogether([*head, para(_("No episodes ended this week."), "body")])]
    rows: list[list] = [[_("Client"), _("Ended on"), _("Outcome"), _("Why it ended")]]
    rows += [[_client(e.name, e.code), long_date(e.closed_on), outcome_words(e),
              _(e.end_reason) if e.end_reason else "\u2014"] for e in report.ended]
    return [CondPageBreak(KEEP), *head, table(rows, [130, 90, FRAME_WIDTH - 350, 130])]
