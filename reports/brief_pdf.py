"""The pre-session brief as a PDF (issue 18): the day's list, then a page per client.

The first page names the day, the "as of" time and the day's appointments in time
order, each with its client's colour in words, the reason they need attention and the
"Most urgent" mark (a word, never a colour alone; what it means is said once beneath
the list). Each client's section starts on a new page: latest scores with their
severity bands, change since intake and since the previous score, the colour with its
reason, open alerts with their age, items that stayed high, the alliance, goals and what
was answered since the last session, with the client page's charts (reports.charts).
Every data string is escaped (reports.pdf); the same brief always gives the same bytes.
"""

from __future__ import annotations

from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import Flowable
from reportlab.platypus import KeepTogether
from reportlab.platypus import PageBreak
from reportlab.platypus import Spacer
from reportlab.platypus import Table
from reportlab.platypus import TableStyle

from reports.brief import Brief
from reports.brief import BriefClient
from reports.brief import BriefScore
from reports.charts import trajectory_drawing
from reports.digest_pdf import COLOURS
from reports.pdf import FONT_BOLD
from reports.pdf import FRAME_WIDTH
from reports.pdf import RULE
from reports.pdf import SectionMark
from reports.pdf import _
from reports.pdf import badge
from reports.pdf import build_pdf
from reports.pdf import esc
from reports.pdf import long_date
from reports.pdf import number
from reports.pdf import para
from reports.pdf import rich
from reports.pdf import table
from reports.progress_pdf import ALERT_KINDS


def N_(message: str) -> str:  # marked for the catalogue; said with _() when rendered
    return message


COLOUR_WORDS = {key: word for key, word, _meaning in COLOURS}
COLOUR_MEANINGS = {key: meaning for key, _word, meaning in COLOURS}
SIGNAL_WORDS = {"progress": N_("Progress"), "change": N_("Change"), "critical": N_("Safety")}
# The latest rupture signal of an alliance measure: its badge level and word.
RUPTURE_STATUS = {
    "none": ("grey", N_("No rupture")),
    "possible": ("possible", N_("Possible rupture")),
    "open": ("rupture", N_("Rupture")),
    "repaired": ("repaired", N_("Repaired")),
    "unrepaired": ("unrepaired", N_("Not repaired")),
}
STATUS_WORDS = {"attended": N_("already held"), "no_show": N_("marked as missed")}
BADGE_SIZE = 7.5  # the badge's font size (reports.pdf.badge)
CHART_HEIGHT = 128.0
CHART_WIDTH = (FRAME_WIDTH - 12) / 2


def render_brief(brief: Brief) -> bytes:
    """The brief as PDF bytes (the same brief always gives the same bytes)."""
    story: list[Flowable] = _first_page(brief)
    for client in brief.clients:
        story.append(PageBreak())
        story += _section(brief, client)
    title = _("Pre-session brief %(day)s", day=brief.day.isoformat())
    return build_pdf(story, title=title,
                     subject=_("Routine outcome monitoring: the day's clients before their "
                               "sessions (confidential clinical record)"))


def _as_of(brief: Brief) -> str:
    moment = brief.produced
    return _("As of %(moment)s (%(timezone)s)",
             moment=f"{long_date(moment.date())}, {moment:%H:%M}", timezone=brief.timezone)


def _colour(key: str) -> str:
    return _(COLOUR_WORDS.get(key, N_("Grey")))


def _colour_badge(client: BriefClient, width: float) -> list[Flowable]:
    """The episode's colour in a badge ``width`` points wide, with the measure(s) it
    belongs to (the episode's colour is the worst across its measures): "Red (GAD-7)"
    in the badge when that fits, else the colour's word in it and "(GAD-7, PHQ-9)"
    beneath (a longer word, as in Russian, never runs out of its column)."""
    word = _colour(client.colour)
    if not client.colour_measure:
        return [badge(client.colour, word, width=width)]
    named = f"{word} ({client.colour_measure})"
    if stringWidth(named, FONT_BOLD, BADGE_SIZE) + 10 <= width:
        return [badge(client.colour, named, width=width)]
    return [badge(client.colour, word, width=width),
            para(f"({client.colour_measure})", "cell_muted")]


def _first_page(brief: Brief) -> list[Flowable]:
    story: list[Flowable] = [
        para(_("Pre-session brief"), "title"),
        para(f"{long_date(brief.day, weekday=True)} \u00b7 {brief.therapist_name}", "subtitle"),
        table([[_("Clinic"), brief.clinic_name, _("Therapist"), brief.therapist_name],
               [_("Day"), long_date(brief.day, weekday=True), _("Time zone"), brief.timezone]],
              [56, FRAME_WIDTH / 2 - 56, 64, FRAME_WIDTH / 2 - 64], header=False,
              bold_columns=(0, 2), extra=[("LINEABOVE", (0, 0), (-1, 0), 0.4, RULE)]),
        Spacer(1, 4),
        para(_as_of(brief) + ". " + _("Answers given after this time are not in the brief."),
             "body"),
    ]
    if not brief.clients:
        story.append(para(_("No appointments on this day."), "h2"))
        return story
    n = len(brief.clients)
    story.append(para(_("The day\u2019s appointments (%(n)s)", n=n), "h2"))
    rows: list[list] = [[_("Time"), _("Client"), _("Colour"), _("Notes"), _("Urgency")]]
    for client in brief.clients:
        who = [para(client.name, "cell_bold"), para(client.code, "cell_muted")]
        if client.status in STATUS_WORDS:
            who.append(para(_(STATUS_WORDS[client.status]), "cell_muted"))
        rows.append([f"{client.starts:%H:%M}", who,
                     _colour_badge(client, width=72),
                     client.reason or (_(COLOUR_MEANINGS.get(client.colour, N_("no colour yet")))
                                       if client.has_answers else _("No answers yet")),
                     badge("urgent", _("Most urgent"), width=62) if client.is_most_urgent
                     else ""])
    story.append(table(rows, [40, 116, 80, FRAME_WIDTH - 40 - 116 - 80 - 70, 70]))
    story.append(Spacer(1, 4))
    story.append(para(_("Most urgent: an open alert for a critical answer (or an unanswered "
                        "critical question), or red on an outcome measure. Colours: red not "
                        "on track, yellow less progress than expected, green on track, "
                        "white in the functional range, grey no colour yet."), "muted"))
    story += [para(text, "muted") for text in brief.basis]
    return story


def _section(brief: Brief, client: BriefClient) -> list[Flowable]:
    story: list[Flowable] = [
        SectionMark(f"{client.starts:%H:%M} {client.code}"),
        para(f"{client.starts:%H:%M} \u00b7 {client.name} \u00b7 {client.code}", "h1"),
        para(_subtitle(client), "subtitle"),
    ]
    head: list[list] = [[_colour_badge(client, width=78),
                         client.reason or _(COLOUR_MEANINGS.get(client.colour, N_("no colour "
                                                                                  "yet")))]]
    widths = [86, FRAME_WIDTH - 86]
    if client.is_most_urgent:
        head[0].append(badge("urgent", _("Most urgent"), width=62))
        widths = [86, FRAME_WIDTH - 86 - 82, 82]
    story.append(table(head, widths, header=False,
                       extra=[("VALIGN", (0, 0), (-1, -1), "MIDDLE")]))
    if not client.has_answers:
        story.append(para(_("No answers yet in this episode."), "h2"))
        story += _alerts(client) if client.alerts else []
        story += _plan(client)
        story += _goals(client) if client.goals else []
        return story
    story += _scores(client)
    story += _signals(client)
    story += _alerts(client)
    story += _plan(client)
    story += _staying_high(client)
    story += _alliance(client)
    story += _goals(client)
    story += _answered(client)
    return story


def _subtitle(client: BriefClient) -> str:
    parts = [_("Session %(session)s", session=client.session) if client.session
             else _("No session number")]
    if client.status in STATUS_WORDS:
        parts.append(_(STATUS_WORDS[client.status]))
    if client.since:
        parts.append(_("last session held %(day)s", day=long_date(client.since.date())))
    elif not client.unmarked:
        parts.append(_("no session held yet"))
    # Earlier appointments never marked held still take a session number (domain.md
    # section 3): said, so the number does not contradict "no session held".
    if client.unmarked == 1:
        parts.append(_("1 earlier appointment not marked as held"))
    elif client.unmarked:
        parts.append(_("%(n)s earlier appointments not marked as held", n=client.unmarked))
    return " \u00b7 ".join(parts)


def _scores(client: BriefClient) -> list[Flowable]:
    story: list[Flowable] = [para(_("Outcome measures"), "h2")]
    if client.change:
        story.append(para(client.change, "body"))
    if not client.scores:
        story.append(para(_("No outcome scores yet."), "body"))
        return story
    for score in client.scores:
        story.append(para(score.latest, "body"))
        if score.since_intake:
            story.append(para(score.since_intake, "body"))
        story.append(para(score.since_previous, "body"))
    for at in range(0, len(client.scores), 2):
        pair = client.scores[at:at + 2]
        cells = [_chart(score) for score in pair]
        if len(cells) == 1:
            cells.append([])
        grid = Table([cells], colWidths=[CHART_WIDTH + 6, CHART_WIDTH + 6], hAlign="LEFT")
        grid.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"),
                                  ("LEFTPADDING", (0, 0), (-1, -1), 0),
                                  ("RIGHTPADDING", (0, 0), (-1, -1), 6),
                                  ("TOPPADDING", (0, 0), (-1, -1), 2),
                                  ("BOTTOMPADDING", (0, 0), (-1, -1), 2)]))
        story.append(grid)
    return story


def _chart(score: BriefScore) -> list[Flowable]:
    return [trajectory_drawing(score.chart, width=CHART_WIDTH, height=CHART_HEIGHT),
            para(score.description, "cell_muted")]


def _signals(client: BriefClient) -> list[Flowable]:
    head = para(_("Progress colour of each measure"), "h2")
    if not client.signals:
        return [head, para(_("No colour yet."), "body")]
    # The colour opens the sentence beside the badge; the badge says what kind of signal
    # it is (as in the progress report), so no word is said twice.
    rows: list[list] = [[badge(s.level, _(SIGNAL_WORDS.get(s.kind, N_("Signal"))), width=56),
                         s.instrument, s.text] for s in client.signals]
    return [head, table(rows, [64, 50, FRAME_WIDTH - 114], header=False,
                        extra=[("VALIGN", (0, 0), (0, -1), "TOP")])]


def _alerts(client: BriefClient) -> list[Flowable]:
    head = para(_("Open alerts"), "h2")
    if not client.alerts:
        return [KeepTogether([head, para(_("No open alerts."), "body")])]
    items = []
    for alert in client.alerts:
        kind = _(ALERT_KINDS[alert.kind]) if alert.kind in ALERT_KINDS else alert.kind
        age = (_("open since today") if alert.days == 0 else
               _("open for 1 day") if alert.days == 1 else
               _("open for %(days)s days", days=alert.days))
        items.append(rich(f"<b>{esc(kind)}</b> \u00b7 {esc(age)}: {esc(alert.text)}",
                          "bullet"))
    return [head, *items]


def _plan(client: BriefClient) -> list[Flowable]:
    """Issue 19: the open action plan (its steps, note and review date, "review due" when
    the date has come) and a support check waiting or answered."""
    plan, check = client.plan, client.check
    if plan is None and check is None:
        return []
    story: list[Flowable] = [para(_("Action plan"), "h2")]
    if plan is not None:
        story.append(para(
            _("Action plan of %(day)s: review due (review date %(review)s)",
              day=long_date(plan.recorded), review=long_date(plan.review_on))
            if plan.review_due else
            _("Action plan of %(day)s: review on %(review)s", day=long_date(plan.recorded),
              review=long_date(plan.review_on)), "body"))
        story += [para(step, "bullet") for step in plan.steps]
        if plan.note:
            story.append(para(_("Note: %(note)s", note=plan.note), "body"))
    if check is not None:
        story.append(para(
            _("A support check is waiting for the client\u2019s answers (sent %(day)s).",
              day=long_date(check.day)) if check.status == "sent" else
            _("A support check was answered on %(day)s; no action plan has been recorded "
              "since.", day=long_date(check.day)), "body"))
    return [KeepTogether(story)]


def _staying_high(client: BriefClient) -> list[Flowable]:
    if not client.staying_high:
        return []
    story: list[Flowable] = [para(_("Items that stayed high (at each of the last three "
                                    "sessions):"), "h2")]
    for measure, items in client.staying_high:
        story.append(rich(f"<b>{esc(measure)}</b>: {esc('; '.join(items))}", "body"))
    return story


def _alliance(client: BriefClient) -> list[Flowable]:
    if not client.alliance:
        return []
    rows: list[list] = []
    for measure in client.alliance:
        level, word = RUPTURE_STATUS.get(measure.status, ("grey", measure.status))
        said = [para(measure.trend, "cell")]
        if measure.text:
            said.append(para(measure.text, "cell"))
        rows.append([badge(level, _(word), width=56), said])
    return [KeepTogether([para(_("Working alliance"), "h2"),
                          table(rows, [64, FRAME_WIDTH - 64], header=False)])]


def _goals(client: BriefClient) -> list[Flowable]:
    if not client.goals:
        return []
    rows: list[list] = [[_("Goal"), _("In the client\u2019s words"), _("Latest rating"),
                         _("Ratings by session")]]
    for goal in client.goals:
        latest = (_("%(score)s at session %(session)s", score=number(goal.ratings[-1][1]),
                    session=goal.ratings[-1][0]) if goal.ratings else _("Not rated yet."))
        listing = "; ".join(_("session %(session)s: %(score)s", session=s, score=number(v))
                            for s, v in goal.ratings) or "\u2013"
        words = goal.description + (" (" + _("retired") + ")" if goal.is_retired else "")
        rows.append([str(goal.position), words, latest, listing])
    return [KeepTogether([para(_("Goals and their ratings (0 to 10)"), "h2"),
                          table(rows, [32, FRAME_WIDTH * 0.42, 80,
                                       FRAME_WIDTH * 0.58 - 112], right=(0,))])]


def _answered(client: BriefClient) -> list[Flowable]:
    title = (_("Answered since the last session (%(day)s)", day=long_date(client.since.date()))
             if client.since else _("Answered so far (no session held yet)"))
    head = para(title, "h2")
    if not client.answered:
        nothing = (_("Nothing answered since the last session.") if client.since
                   else _("Nothing answered yet."))
        return [KeepTogether([head, para(nothing, "body")])]
    rows: list[list] = [[_("Completed"), _("Score"), _("Session"), _("Critical answer")]]
    for answer in client.answered:
        rows.append([f"{long_date(answer.completed.date())}, {answer.completed:%H:%M}",
                     answer.score, str(answer.session) if answer.session else "\u2013",
                     badge("urgent", _("Critical answer given"), width=90)
                     if answer.is_critical else _("none")])
    return [head, table(rows, [120, FRAME_WIDTH - 120 - 50 - 110, 50, 110], right=(2,))]
