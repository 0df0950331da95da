"""The client report (issue 18): a client's own progress in plain words, for their
therapist to review and give them, on paper or on screen ("review together").

Built from :func:`~outcome.services.client_record.client_record`, so its scores, sessions,
expected band and reliable change are the ones the therapist's page shows (nothing is
recomputed differently here), and written in the client's language. What changed is said
by the measure's own reliable-change rule (:func:`outcome.core.signals.
reliable_change_rule`: a fixed number of points, reached or passed, e.g. PHQ-9 6 points
(NHS Talking Therapies); or the RCI from a reliability and SD, passed; Jacobson & Truax
1991) and its published cutoff, always for the latest score against the first (domain.md
section 3; :func:`outcome.core.signals.change_markers`, which marks the therapist's chart),
never for another score of the same session:

- "a clear improvement" only when the change since the first score is reliable
  (``improved`` or ``recovered``); "below the usual dividing line" for ``recovered`` (or
  any latest score on the healthy side of the cutoff, said as a fact, never as progress);
- "not yet a clear change" when the change is within the rule's threshold;
- "moved in the harder direction by more than the usual ups and downs" when it is a
  reliable deterioration;
- with fewer than two scores: "not enough answers yet to show a change".

The expected band (the clinic's fitted curve, 25th to 90th percentile of clients with a
similar intake, domain.md section 4) is shown and explained (:func:`band_note`, its words
derived from those percentiles) only where the therapist's chart shows it: a clinic fit on
enough episodes. Left out: alerts, colours, critical and item answers, notes, other
clients. Reads only; flushes nothing. It is never sent: the caller serves it to the
client's own therapist, who reviews it first.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo

import numpy as np
from sqlalchemy.orm import Session

from outcome.core.instruments import Instrument
from outcome.core.signals import change_markers
from outcome.core.signals import reliable_change_rule
from outcome.core.trajectory import BAND_HIGH
from outcome.core.trajectory import BAND_LOW
from outcome.models import Client
from outcome.models import Clinic
from outcome.models import Episode
from outcome.services.client_record import ChartView
from outcome.services.client_record import GoalView
from outcome.services.client_record import client_record
from outcome.services.explanations import format_number
from outcome.services.explanations import language
from outcome.services.explanations import say
from outcome.services.signals import clinic_context
from questionnaires.loader import InstrumentLibrary
from reports.client_report import ClientReport
from reports.client_report import GoalProgress
from reports.client_report import MeasureChange
from reports.client_report_pdf import render_client_report
from reports.pdf import for_reader
from reports.pdf import long_date

# At most this many charts fit one A4 page beside their words; further measures are said
# in words only (their scores are still listed).
MAX_CHARTS = 3


def N_(message: str) -> str:  # marked for the catalogue; said with say()
    return message


# Which side of the cutoff a score lies on, by the cutoff's clinical side (">=": a score of
# 10 or more is in the clinical range, so the healthy side is "below").
HEALTHY_SIDE = {
    ">=": N_("Your latest score is below the usual dividing line of %(cutoff)s."),
    ">": N_("Your latest score is at or below the usual dividing line of %(cutoff)s."),
    "<=": N_("Your latest score is above the usual dividing line of %(cutoff)s."),
    "<": N_("Your latest score is at or above the usual dividing line of %(cutoff)s."),
}
CLINICAL_SIDE = {
    ">=": N_("Your latest score is at or above the usual dividing line of %(cutoff)s."),
    ">": N_("Your latest score is above the usual dividing line of %(cutoff)s."),
    "<=": N_("Your latest score is at or below the usual dividing line of %(cutoff)s."),
    "<": N_("Your latest score is below the usual dividing line of %(cutoff)s."),
}
BAND_NOTE = N_("The shaded area shows where about %(share)s people who started with a "
               "similar score were at each session.")
# Said only when more than half of those people are on the worse side of the band's better
# edge (1 - BAND_LOW > 1/2); below or above by the measure's direction.
BETTER_SIDE = {
    "higher_is_worse": N_("Below it means doing better than most of them."),
    "higher_is_better": N_("Above it means doing better than most of them."),
}
# Shares said as a simple fraction when within SHARE_TOLERANCE of one; otherwise "N in 100".
SHARES = {
    (2, 3): N_("two in three"),
    (3, 4): N_("three in four"),
    (4, 5): N_("four in five"),
    (9, 10): N_("nine in ten"),
}
SHARE_TOLERANCE = 0.02


def share_words(fraction: float, code: str) -> str:
    """A share of people (0..1) in plain words, in language ``code``: the nearest of
    :data:`SHARES` ("two in three") when within :data:`SHARE_TOLERANCE` (0.02) of it, else
    whole percent ("60 in 100"). Said after "about", so a near fraction stays true."""
    (part, whole), words = min(SHARES.items(),
                               key=lambda item: abs(item[0][0] / item[0][1] - fraction))
    if abs(part / whole - fraction) <= SHARE_TOLERANCE:
        return say(words, code)
    return say(N_("%(percent)s in 100"), code, percent=format_number(100 * fraction, code))


def band_note(instrument: Instrument, code: str) -> str:
    """What the shaded area is, in language ``code``, derived from the band's percentiles
    (:data:`~outcome.core.trajectory.BAND_LOW` 25th to
    :data:`~outcome.core.trajectory.BAND_HIGH` 90th of past clients' residuals with a
    similar intake, domain.md section 4): the share of people inside it ("about two in
    three"), and that its better side (below for higher-is-worse, above for
    higher-is-better) is better than most of them, said only while 1 - BAND_LOW > 1/2."""
    words = [say(BAND_NOTE, code, share=share_words(BAND_HIGH - BAND_LOW, code))]
    if 1 - BAND_LOW > 0.5:
        words.append(say(BETTER_SIDE[instrument.direction], code))
    return " ".join(words)


def client_report(session: Session, client: Client, episode: Episode | None,
                  library: InstrumentLibrary, now: dt.datetime, locale: str = "en"
                  ) -> ClientReport:
    """The plain data of ``client``'s report for ``episode`` (None: no episode yet), dated
    ``now`` in the clinic's time zone, every sentence in ``locale`` (the client's language
    unless the therapist previews another). Reads only."""
    code = language(locale)
    clinic = session.get(Clinic, client.clinic_id)
    assert clinic is not None
    produced = now.astimezone(zoneinfo.ZoneInfo(clinic.timezone)).date()
    report = ClientReport(
        client_name=client.name, produced=produced, locale=code,
        intro=say(N_("This page shows how your answers to the short questionnaires have "
                     "changed since the start, and how you rated your goals. It is a "
                     "starting point for a conversation with your therapist, not a "
                     "diagnosis."), code),
        closing=say(N_("Scores go up and down from week to week. Talk with your therapist "
                       "about what you see here and what it means for you."), code))
    if episode is None:
        return dataclasses.replace(report, empty=say(N_("There are no answers yet."), code))
    record = client_record(session, episode, library, full=True, locale=code)
    context = clinic_context(session, clinic)
    primary = episode.primary_instrument_id or context.primary_measure
    charts = sorted(record.outcome_charts,
                    key=lambda c: (c.instrument_id != primary, c.data.title, c.instrument_id))
    measures = []
    for n, chart in enumerate(charts):
        instrument = library.get(chart.instrument_id)
        sd = context.intake_sd.get(instrument.id)
        measures.append(_measure(instrument, chart, sd, code, drawn=n < MAX_CHARTS))
    goals = tuple(_goal(g, code) for g in record.goals
                  if g.retired_dt is None and g.description)
    return dataclasses.replace(
        report, measures=tuple(measures), goals=goals,
        goal_scale=say(N_("Goals are rated from 0 (not at all met) to 10 (goal reached)."),
                       code) if goals else "",
        empty="" if measures or goals else say(N_("There are no answers yet."), code))


def _measure(instrument: Instrument, chart: ChartView, sd: tuple[float, int] | None,
             code: str, *, drawn: bool) -> MeasureChange:
    """One measure's chart for the client, and its sentences (see the module's rules)."""
    name = instrument.short_name
    scores = [float(v) for _s, _day, v, _w in chart.rows]
    sessions = [s for s, _day, _v, _w in chart.rows]
    number = {"first": format_number(scores[0], code),
              "latest": format_number(scores[-1], code)}
    sentences = [say(N_("On the %(measure)s, lower scores mean fewer difficulties.")
                     if instrument.direction == "higher_is_worse" else
                     N_("On the %(measure)s, higher scores mean things are going better."),
                     code, measure=name)]
    category: str | None = None
    cutoff = instrument.cutoff
    if len(scores) < 2:
        sentences.append(say(N_("Your %(measure)s score was %(score)s at session "
                                "%(session)s."), code, measure=name, score=number["first"],
                             session=sessions[0]))
        sentences.append(say(N_("There are not enough answers yet to show a change."), code))
    else:
        sentences.append(say(N_("Your %(measure)s score was %(first)s at session "
                                "%(first_session)s and %(latest)s at session "
                                "%(latest_session)s."), code, measure=name,
                             first_session=sessions[0], latest_session=sessions[-1],
                             **number))
        rule = reliable_change_rule(instrument, *(sd if sd else (None, None)))
        if rule is None:
            # No threshold: none in the definition, or (an RCI from the clinic's intake
            # SD) too few intakes yet.
            sentences.append(say(N_("The size of a clear change on the %(measure)s is not "
                                    "set yet, so this page does not say whether it "
                                    "changed."), code, measure=name))
        else:
            # The category of the latest score itself against the first, by the function
            # that marks the therapist's chart (change_markers): None means the change is
            # within the threshold. Never looked up by session number: two scores can
            # share a session (one answered between sessions).
            category = change_markers(instrument, np.array(scores), *(
                sd if sd else (None, None)))[-1] or "unchanged"
            threshold = format_number(rule.threshold, code, digits=2)
            sentences.append(say(
                N_("On the %(measure)s, a change of %(threshold)s or more is larger than "
                   "the usual ups and downs.") if rule.is_inclusive else
                N_("On the %(measure)s, a change of more than %(threshold)s is larger "
                   "than the usual ups and downs."), code, measure=name, threshold=threshold))
            sentences.append(say({
                "recovered": N_("This is a clear improvement."),
                "improved": N_("This is a clear improvement."),
                "unchanged": N_("This is not yet a clear change."),
                "deteriorated": N_("Your score has moved in the harder direction by more "
                                   "than the usual ups and downs. This is worth talking "
                                   "about together."),
                "harmed": N_("Your score has moved in the harder direction by more than "
                             "the usual ups and downs. This is worth talking about "
                             "together."),
            }[category], code))
    if cutoff is not None:
        # The side of the usual dividing line: for any latest score on its healthy side,
        # as a plain fact (recovered is always there); on its clinical side only after a
        # reliable deterioration into it (harmed).
        if not cutoff.is_clinical(scores[-1]):
            sentences.append(say(HEALTHY_SIDE[cutoff.clinical_side], code,
                                 cutoff=format_number(cutoff.value, code)))
        elif category == "harmed":
            sentences.append(say(CLINICAL_SIDE[cutoff.clinical_side], code,
                                 cutoff=format_number(cutoff.value, code)))
    listing = "; ".join(say(N_("session %(session)s: %(score)s"), code, session=s,
                            score=format_number(v, code))
                        for s, v in zip(sessions, scores, strict=True))
    description = say(N_("Your %(measure)s scores by session: %(listing)s."), code,
                      measure=name, listing=listing)
    has_band = bool(chart.data.band_low and chart.data.band_high)
    data = dataclasses.replace(
        chart.data, markers=(), band_label="",
        cutoff_label=say(N_("usual dividing line"), code) if cutoff is not None else "",
        words=(("session", say(N_("session"), code)),))
    return MeasureChange(
        instrument=name, chart=data if drawn and len(scores) >= 2 else None,
        description=description, sentences=tuple(sentences),
        band_note=band_note(instrument, code) if has_band and drawn else "",
        category=category, first=scores[0], latest=scores[-1], count=len(scores))


def _goal(goal: GoalView, code: str) -> GoalProgress:
    ratings = goal.ratings
    if not ratings:
        text = say(N_("Not rated yet."), code)
    elif len(ratings) == 1:
        text = say(N_("Rated %(rating)s at session %(session)s."), code,
                   rating=format_number(ratings[0][1], code), session=ratings[0][0])
    else:
        text = say(N_("First rated %(first)s at session %(first_session)s; most recently "
                      "%(latest)s at session %(latest_session)s."), code,
                   first=format_number(ratings[0][1], code), first_session=ratings[0][0],
                   latest=format_number(ratings[-1][1], code), latest_session=ratings[-1][0])
    return GoalProgress(goal.position, goal.description or "", text)


def client_report_pdf(session: Session, client: Client, episode: Episode | None,
                      library: InstrumentLibrary, now: dt.datetime, locale: str = "en"
                      ) -> bytes:
    """The client report as a one-page A4 PDF (see :func:`client_report`), in ``locale``
    (the client's language, or the one the therapist chose to preview). The same data
    always gives the same bytes."""
    report = client_report(session, client, episode, library, now, locale)
    with for_reader(lambda message: say(message, report.locale), report.locale):
        return render_client_report(report)


def screen_words(report: ClientReport) -> dict[str, str]:
    """The report's headings in its own language, for the screen ("review together"): the
    same words as the PDF's, so the page and the paper read alike."""
    with for_reader(None, report.locale):
        day = long_date(report.produced)
    return {"title": say("Your progress", report.locale),
            "subtitle": say("For %(name)s, %(date)s", report.locale,
                            name=report.client_name, date=day),
            "goals": say("Your goals", report.locale),
            "goal": say("Goal %(n)s", report.locale),
            "scores": say(N_("Every score by session"), report.locale)}
