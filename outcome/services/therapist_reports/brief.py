"""The therapist's pre-session brief (issue 18): the day's clients, most urgent marked,
then one section per appointment, as plain data (:class:`reports.brief.Brief`).

Everything comes from what the client page shows (:func:`~outcome.services.
client_record.client_record`: the stored signals, the same charts with the expected band
where the clinic has a fitted curve, items that stayed high, goals, alerts) and from the
caseload's rules (:mod:`outcome.services.caseload`: the reason a client needs attention,
alert ages in the clinic's calendar days, the alliance trend); nothing clinical is
recomputed here but the one comparison the client page does not make:

- **Change since the previous score** of each outcome measure: the latest score against
  the one before, judged by the measure's reliable-change rule
  (:func:`outcome.core.signals.reliable_change_rule`: a fixed threshold in points, such
  as PHQ-9's 6, inclusive; else the RCI criterion 1.96 x S_diff from the definition's or
  the clinic's intake SD, strict; Jacobson & Truax 1991). A change is called reliable only
  when the rule says so; without a rule, nothing is said about reliability.
- **Most urgent** (the first page's mark): an open alert for a critical answer or an
  unanswered critical question, or the colour red (the caseload's urgencies 0 and 1).
- **Answered since the last session**: client answers completed after the end of the
  last session held (attended) before the day's appointment, and not linked to it, up
  to the brief's "as of" time; with no session held yet, every answer of the episode.
- **Answers at all** (``has_answers``): any client answer in the whole episode up to the
  "as of" time, any outcome chart or goal rating; not only those since the last session
  (a client who answers at their sessions has nothing "since", but has scores).
- **Session number**: the appointment's number among attended and still-scheduled ones
  (:mod:`outcome.services.sessions`, domain.md section 3); earlier appointments still
  "scheduled" when the brief is made (never marked held or missed) are counted and said.

Reads only (one record per appointment, with the clinic's context read once).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import defaultdict

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.core.signals import reliable_change_rule
from outcome.models import ActionPlan
from outcome.models import Administration
from outcome.models import Appointment
from outcome.models import Client
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import EpisodeSignal
from outcome.models import SupportCheck
from outcome.models import User
from outcome.services.access import visible_clients
from outcome.services.caseload import alliance_trend
from outcome.services.caseload import colour_reason
from outcome.services.caseload import open_alert_reasons
from outcome.services.client_record import ChartView
from outcome.services.client_record import ClientRecord
from outcome.services.client_record import client_record
from outcome.services.explanations import format_number
from outcome.services.explanations import language
from outcome.services.explanations import render
from outcome.services.explanations import render_explanation
from outcome.services.explanations import say
from outcome.services.plan_marks import check_status
from outcome.services.sessions import session_clock
from outcome.services.signals import ClinicContext
from outcome.services.signals import clinic_context
from questionnaires.loader import InstrumentLibrary
from reports.brief import Brief
from reports.brief import BriefAlert
from reports.brief import BriefAlliance
from reports.brief import BriefAnswer
from reports.brief import BriefCheck
from reports.brief import BriefClient
from reports.brief import BriefGoal
from reports.brief import BriefPlan
from reports.brief import BriefScore
from reports.brief import BriefSignal
from reports.brief_pdf import render_brief
from reports.pdf import for_reader

# Appointments of the day that are not in the brief.
CANCELLED = ("cancelled", "late_cancelled")
# Open alerts that make a client "most urgent", with the colour red.
URGENT_KINDS = ("critical_item", "critical_unanswered")


def N_(message: str) -> str:  # marked for the catalogue; said with say()
    return message


TRENDS = {"rising": N_("rising"), "falling": N_("falling"), "steady": N_("steady")}


def build_brief(session: Session, therapist: User, day: dt.date, library: InstrumentLibrary,
                now: dt.datetime, locale: str = "en") -> Brief:
    """The brief of ``therapist``'s appointments on ``day`` (clinic-local date), as of
    ``now``; words in ``locale``. Reads only.

    The appointments are those of the therapist's own clients (through
    :func:`~outcome.services.access.visible_clients`) in episodes the therapist holds,
    starting on ``day`` in the clinic's time zone, scheduled or already held (not
    cancelled), in time order.
    """
    clinic = session.get(Clinic, therapist.clinic_id)
    assert clinic is not None
    tz = zoneinfo.ZoneInfo(clinic.timezone)
    locale = language(locale)
    start = dt.datetime.combine(day, dt.time(0), tzinfo=tz).astimezone(dt.UTC)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0),
                              tzinfo=tz).astimezone(dt.UTC)
    visible = visible_clients(therapist).where(Client.therapist_id == therapist.id).subquery()
    rows = session.execute(
        select(Appointment, Episode, Client)
        .join(Episode, Episode.id == Appointment.episode_id)
        .join(Client, Client.id == Episode.client_id)
        .join(visible, visible.c.id == Client.id)
        .where(Episode.therapist_id == therapist.id, Appointment.starts_dt >= start,
               Appointment.starts_dt < end, Appointment.status.not_in(CANCELLED))
        .order_by(Appointment.starts_dt, Appointment.id)).all()
    brief = Brief(clinic_name=clinic.name, therapist_name=therapist.display_name, day=day,
                  produced=now.astimezone(tz), timezone=clinic.timezone)
    if not rows:
        return brief
    episode_ids = sorted({episode.id for _, episode, _ in rows})
    context = clinic_context(session, clinic)
    clock = session_clock(session, episode_ids)
    held: dict[int, list[tuple[dt.datetime, int, int]]] = defaultdict(list)
    # Appointments still "scheduled" that began before the brief's moment: not marked.
    unmarked: dict[int, list[tuple[dt.datetime, int]]] = defaultdict(list)
    for appointment_id, episode_id, starts, minutes, status in session.execute(
            select(Appointment.id, Appointment.episode_id, Appointment.starts_dt,
                   Appointment.duration_minutes, Appointment.status)
            .where(Appointment.episode_id.in_(episode_ids),
                   (Appointment.status == "attended")
                   | ((Appointment.status == "scheduled") & (Appointment.starts_dt < now)))
            .order_by(Appointment.starts_dt, Appointment.id)):
        if status == "attended":
            held[episode_id].append((starts, appointment_id, minutes))
        else:
            unmarked[episode_id].append((starts, appointment_id))
    # Whether the client has answered anything in the episode (by ``now``): the record
    # lists only the answers since the last session, so it cannot tell.
    answered = set(session.scalars(
        select(Administration.episode_id).distinct()
        .where(Administration.episode_id.in_(episode_ids),
               Administration.respondent == "client", Administration.completed_dt <= now)))
    alerts, basis = open_alert_reasons(session, episode_ids, tz, now=now, locale=locale,
                                       library=library)
    signals = {row.episode_id: row for row in session.scalars(
        select(EpisodeSignal).where(EpisodeSignal.episode_id.in_(episode_ids)))}
    # Each answer listed since the last session held before an appointment (the end of
    # that session): an episode read once lists from its earliest appointment's.
    since: dict[int, dt.datetime | None] = {}
    for appointment, episode, _client in rows:
        after = _last_held(held[episode.id], appointment.starts_dt)
        ended = after[0] + dt.timedelta(minutes=after[2]) if after else None
        known = since.get(episode.id, ended)
        since[episode.id] = None if ended is None or known is None else min(ended, known)
    plans, checks = _support(session, episode_ids, day, tz, now)
    records: dict[int, ClientRecord] = {}
    clients = []
    all_basis: list[str] = []
    for appointment, episode, client in rows:
        if episode.id not in records:
            records[episode.id] = client_record(session, episode, library, full=True,
                                                locale=locale, context=context,
                                                listed_after=since[episode.id])
        record = records[episode.id]
        signal = signals.get(episode.id)
        state = signal.state if signal is not None else {}
        colour = signal.colour if signal is not None else "grey"
        reasons = [r for _, _, r in sorted(alerts[episode.id], key=lambda a: a[:2])]
        shown, said = colour_reason(state, colour, locale)
        # Beside the colour's badge, its explanation (or the alert's words) without the
        # colour word it opens with: the badge says it.
        word = render(f"colour.{colour}", {}, locale) + ": "
        reason = reasons[0].text if reasons else shown
        reason = reason[len(word):] if reason.startswith(word) else reason
        all_basis += [*record.notices, *basis[episode.id], *([said] if said else [])]
        last = _last_held(held[episode.id], appointment.starts_dt)
        clients.append(BriefClient(
            starts=appointment.starts_dt.astimezone(tz), name=client.name, code=client.code,
            session=clock.number.get(appointment.id), status=appointment.status,
            colour=colour, colour_measure=_colour_measure(state, colour, library),
            reason=reason,
            is_most_urgent=colour == "red" or any(r.kind in URGENT_KINDS for r in reasons),
            has_answers=(episode.id in answered or bool(record.outcome_charts)
                         or any(g.ratings for g in record.goals)),
            since=last[0].astimezone(tz) if last else None,
            unmarked=sum(1 for starts, _id in unmarked[episode.id]
                         if starts < appointment.starts_dt),
            change=_change(record, locale),
            signals=tuple(BriefSignal(e["instrument"], e["level"], e["text"],
                                      e.get("kind", "")) for e in record.explanations
                          if e.get("kind") == "progress"),
            scores=tuple(_score(chart, library, context, record, locale)
                         for chart in record.outcome_charts),
            alerts=tuple(BriefAlert(r.kind, r.text, r.days or 0) for r in reasons),
            staying_high=tuple((_short(library, h.instrument_id), h.staying_high)
                               for h in record.heatmaps if h.staying_high),
            alliance=_alliance(state, library, locale),
            goals=tuple(BriefGoal(g.position, g.description or "", g.ratings,
                                  g.retired_dt is not None) for g in record.goals),
            answered=_answered(record, library, last, appointment.id, now, tz, locale),
            plan=plans.get(episode.id), check=checks.get(episode.id)))
    return Brief(clinic_name=clinic.name, therapist_name=therapist.display_name, day=day,
                 produced=now.astimezone(tz), timezone=clinic.timezone,
                 clients=tuple(clients), basis=tuple(dict.fromkeys(all_basis)))


def _support(session: Session, episode_ids: list[int], day: dt.date, tz: dt.tzinfo,
             now: dt.datetime) -> tuple[dict[int, BriefPlan], dict[int, BriefCheck]]:
    """Each episode's open action plan (issue 19; its review is due when its review date
    is ``day`` or earlier) and its latest support check when it is waiting for the
    client's answers as of ``now`` (:func:`~outcome.services.plan_marks.check_status`:
    a sent check whose link has closed is not waiting), or answered with no plan
    recorded since. Two queries, and one per sent check's link."""
    plans: dict[int, BriefPlan] = {}
    latest_plan: dict[int, dt.datetime] = {}
    for plan in session.scalars(select(ActionPlan).where(ActionPlan.episode_id.in_(episode_ids))
                                .order_by(ActionPlan.created_dt, ActionPlan.id)):
        latest_plan[plan.episode_id] = _utc(plan.created_dt)
        if plan.status == "open":
            plans[plan.episode_id] = BriefPlan(
                recorded=_utc(plan.created_dt).astimezone(tz).date(), review_on=plan.review_on,
                review_due=plan.review_on <= day,
                steps=tuple(str(s.get("text") or "") for s in plan.steps or []
                            if s.get("decision") != "declined"),
                note=plan.note or "")
    checks: dict[int, BriefCheck] = {}
    for check in session.scalars(select(SupportCheck).where(
            SupportCheck.episode_id.in_(episode_ids),
            SupportCheck.status.in_(("sent", "answered")))
            .order_by(SupportCheck.started_dt, SupportCheck.id)):
        status = check_status(session, check, now)
        if status == "expired":
            continue
        if status == "sent":
            checks[check.episode_id] = BriefCheck(
                "sent", _utc(check.started_dt).astimezone(tz).date())
        elif check.answered_dt is not None and (
                check.episode_id not in latest_plan
                or latest_plan[check.episode_id] < _utc(check.answered_dt)):
            checks[check.episode_id] = BriefCheck(
                "answered", _utc(check.answered_dt).astimezone(tz).date())
    return plans, checks


def _utc(moment: dt.datetime) -> dt.datetime:
    """SQLite gives naive UTC datetimes back; PostgreSQL aware ones."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _last_held(held: list[tuple[dt.datetime, int, int]], starts: dt.datetime
               ) -> tuple[dt.datetime, int, int] | None:
    """The last session held (start, appointment id, minutes) that began before
    ``starts``; None when none was."""
    previous = [h for h in held if h[0] < starts]
    return previous[-1] if previous else None


def _colour_measure(state: dict, colour: str, library: InstrumentLibrary) -> str:
    """The measures whose colour is the episode's (the worst across its outcome
    measures): each whose progress level is ``colour``, in the stored signal's order (the
    first is the one :func:`~outcome.services.caseload.colour_reason` explains), joined
    with ", "; "" for none."""
    outcomes = (state or {}).get("outcomes", {})
    return ", ".join(_short(library, instrument_id) for instrument_id, data in outcomes.items()
                     if data.get("progress", {}).get("level") == colour)


def _short(library: InstrumentLibrary, instrument_id: str) -> str:
    try:
        return library.get(instrument_id).short_name
    except KeyError:
        return instrument_id


def _change(record: ClientRecord, locale: str) -> str:
    """The episode's change since intake, named by its measure (or pair), as in the
    progress report."""
    change = record.change
    if change is None:
        return ""
    return say(N_("Since intake (%(measure)s): %(text)s"), locale, measure=change.measure,
               text=change.explanation or change.category_text)


def _score(chart: ChartView, library: InstrumentLibrary, context: ClinicContext,
           record: ClientRecord, locale: str) -> BriefScore:
    """One outcome measure's latest score, its own change since intake (unless it is the
    episode's change, said above) and its change since the score before."""
    data = chart.data
    measure = data.title
    episode_measure = record.change.measure if record.change is not None else None
    since_intake = next((e["text"] for e in record.explanations
                         if e.get("kind") == "change" and e["instrument"] == measure
                         and measure != episode_measure), "")
    scores = [s for s in data.scores if s is not None]
    if len(scores) < 2:
        since = say(N_("%(measure)s: one score so far, so there is no change since a "
                       "previous one."), locale, measure=measure)
    else:
        previous, latest = float(scores[-2]), float(scores[-1])
        session_before = data.sessions[len(data.scores) - 2]
        since = say(N_("%(measure)s since the previous score (session %(session)s): "
                       "%(previous)s to %(latest)s, %(verdict)s."), locale,
                    measure=measure, session=session_before,
                    previous=format_number(previous, locale),
                    latest=format_number(latest, locale),
                    verdict=_verdict(library, chart.instrument_id, context, previous, latest,
                                     locale))
    return BriefScore(measure, chart.latest, since, data, chart.description, since_intake)


def _verdict(library: InstrumentLibrary, instrument_id: str, context: ClinicContext,
             previous: float, latest: float, locale: str) -> str:
    """Whether ``previous`` to ``latest`` is a reliable change by the measure's rule."""
    try:
        instrument = library.get(instrument_id)
    except KeyError:
        instrument = None
    sd = context.intake_sd.get(instrument_id)
    rule = (reliable_change_rule(instrument, *(sd if sd else (None, None)))
            if instrument is not None else None)
    if instrument is None or rule is None:
        measure = instrument.short_name if instrument is not None else instrument_id
        return say(N_("no reliable-change threshold is set for %(measure)s, so whether "
                      "this change is reliable is not said"), locale, measure=measure)
    d = 1 if instrument.direction == "higher_is_better" else -1
    good = d * (latest - previous)
    threshold = format_number(rule.threshold, locale)
    limit = (say(N_("a change of %(threshold)s or more is reliable"), locale,
                 threshold=threshold) if rule.is_inclusive
             else say(N_("a change of more than %(threshold)s is reliable"), locale,
                      threshold=threshold))
    change = np.array([good])
    if bool(rule.improved(change)[0]):
        verdict = say(N_("a reliable improvement"), locale)
    elif bool(rule.deteriorated(change)[0]):
        verdict = say(N_("a reliable deterioration"), locale)
    elif latest == previous:
        verdict = say(N_("no change"), locale)
    else:
        verdict = say(N_("not a reliable change"), locale)
    return f"{verdict} ({limit})"


def _alliance(state: dict, library: InstrumentLibrary, locale: str
              ) -> tuple[BriefAlliance, ...]:
    """Each alliance measure's trend (:func:`~outcome.services.caseload.alliance_trend`)
    and the status of its latest rupture signal, from the stored signal."""
    out = []
    for instrument_id, data in sorted((state or {}).get("alliance", {}).items()):
        try:
            instrument = library.get(instrument_id)
        except KeyError:
            continue
        measure = instrument.short_name
        series = [float(v) for v in data.get("series", [])]
        trend = alliance_trend(series, instrument.primary_range)
        if trend is None or len(series) < 2:
            words = (say(N_("%(measure)s: one rating so far (%(latest)s)."), locale,
                         measure=measure, latest=format_number(series[-1], locale))
                     if series else say(N_("%(measure)s: no ratings yet."), locale,
                                        measure=measure))
        else:
            before = series[-4:-1]
            words = say(N_("%(measure)s trend: %(trend)s (latest %(latest)s against "
                           "%(mean)s, the mean of the %(n)s before it)."), locale,
                        measure=measure, trend=say(TRENDS[trend], locale),
                        latest=format_number(series[-1], locale),
                        mean=format_number(sum(before) / len(before), locale),
                        n=len(before))
        ruptures = data.get("ruptures", [])
        latest = ruptures[-1] if ruptures else None
        if latest is None:
            status, text = "none", ""
        else:
            numbers = latest.get("numbers") or {}
            level = latest.get("level", "")
            status = ("repaired" if numbers.get("status") == "repaired" else "possible"
                      if level == "possible" else level)
            text = render_explanation(latest, locale)
        out.append(BriefAlliance(measure, words, status, text))
    return tuple(out)


def _answered(record: ClientRecord, library: InstrumentLibrary,
              last: tuple[dt.datetime, int, int] | None, appointment_id: int,
              now: dt.datetime, tz: dt.tzinfo, locale: str) -> tuple[BriefAnswer, ...]:
    """The client's answers since the last session held (see the module docstring),
    oldest first; corrected (superseded) ones left out."""
    after = last[0] + dt.timedelta(minutes=last[2]) if last else None
    out = []
    for view in reversed(record.administrations):
        if view.respondent != "client" or view.is_superseded:
            continue
        if view.completed > now.astimezone(tz):
            continue
        if after is not None and (view.completed <= after.astimezone(tz)
                                  or (last is not None and view.appointment_id == last[1])):
            continue  # given at or for the last session held
        if view.is_valid and view.score is not None:
            number = format_number(view.score, locale)
            score = (render("severity.score", {"instrument": view.instrument,
                                               "score": number, "band": view.severity},
                            locale)
                     if view.severity else f"{view.instrument} {number}")
        else:
            score = say(N_("%(measure)s: no valid score"), locale, measure=view.instrument)
        out.append(BriefAnswer(view.instrument, view.completed, view.session, score,
                               any(a.is_critical for a in view.answers)))
    return tuple(out)


def brief_pdf(session: Session, therapist: User, day: dt.date, library: InstrumentLibrary,
              now: dt.datetime) -> bytes:
    """The brief (see :func:`build_brief`) as PDF bytes, in the therapist's language
    (``therapist.locale``; English when unset): words, dates and explanations."""
    code = language(therapist.locale)
    brief = build_brief(session, therapist, day, library, now, code)
    with for_reader(lambda message: say(message, code), code):
        return render_brief(brief)
