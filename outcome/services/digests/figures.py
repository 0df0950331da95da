"""The supervisor's weekly digest: figures for one ISO week, read from the database.

Every figure is defined once, as a function of the week (:meth:`WeekReader.figures`), and
that one definition gives the cover's "this week" and "previous week", every row of the
twelve-week table and each supervisee's section, so the same week always shows the same
numbers. Each is computed from stored data as it stood at the week's end, never from
what is stored now (docs/supervisors.md lists them):

A week runs Monday 00:00 to Monday 00:00 in the clinic's time zone (episode dates are
clinic dates, timestamps are compared in UTC).

- active episodes: opened on or before the week's Sunday and not closed before its
  Monday;
- progress colours (red, yellow, green, white, grey): each active episode's colour on
  the clinic's main outcome measure, read by the engine's own rule
  (:func:`outcome.core.signals.outcome_signals`, today's expected-response model and
  colour settings) from the episode's valid scores completed before the week's end; an
  episode without two scores by then is grey (white if its one score is in the healthy
  range). Counted per active episode, so the colours add up to the active episodes;
- open alerts: raised before the week's end, not acknowledged or resolved by then;
- completion: sessions in the week (scheduled or attended, started before its end) at
  which the client answered the main outcome measure;
- ruptures opened / repaired: rupture alerts raised / resolved in the week;
- episodes ended in the week: the rates of those reliably improved, recovered and
  deteriorated on the main outcome measure from intake to the latest valid score before
  the week's end (Jacobson & Truax 1991, the engine's rule), with Wilson 95 % intervals
  (:mod:`outcome.core.aggregates`); and, in each supervisee's list of them, each
  episode's own change as its client page shows it (:meth:`WeekReader.episode_changes`:
  the episode's primary measure, or the NHS Talking Therapies pair where the clinic uses
  it, domain.md section 3), with the measure or pair it belongs to.

Issue 19: :mod:`outcome.services.digests.loop` adds the supervisor's agenda and the
fidelity figures to the digest built here.

Only the clients needing attention describe the caseload when the digest is produced
(open alerts and stored signals). Client codes only.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.core.aggregates import SMALL_SAMPLE
from outcome.core.aggregates import rate
from outcome.core.instruments import Instrument
from outcome.core.signals import OutcomeSignals
from outcome.core.signals import outcome_signals
from outcome.models import Administration
from outcome.models import Alert
from outcome.models import Appointment
from outcome.models import Client
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import EpisodeSignal
from outcome.models import User
from outcome.models.care import SESSION_STATUSES
from outcome.services.access import visible_clients
from outcome.services.clients import END_REASON_LABELS
from outcome.services.episode_change import change_words
from outcome.services.explanations import render_explanation
from outcome.services.explanations import without_answers
from outcome.services.sessions import session_clock
from outcome.services.signals import ClinicContext
from outcome.services.signals import clinic_context
from outcome.services.supervision import primary_outcome
from outcome.services.supervision import supervisees
from questionnaires.loader import InstrumentLibrary
from reports.charts import TrajectoryData
from reports.digest import AttentionItem
from reports.digest import Digest
from reports.digest import KeyFigures
from reports.digest import RateFigure
from reports.digest import SuperviseeSection
from reports.digest import TrendPoint

COUNTED = SESSION_STATUSES  # statuses that take a session number: one list, in models
TREND_WEEKS = 12
CRITICAL_KINDS = ("critical_item", "critical_unanswered")
COLOUR_NAMES = ("red", "yellow", "green", "white", "grey")


class DigestError(ValueError):
    """A digest that cannot be produced; the message says why."""


def week_bounds(week: str, timezone: str) -> tuple[dt.date, dt.datetime, dt.datetime]:
    """Monday of ISO ``week`` ("2026-W47") and the week's start and end as UTC datetimes."""
    try:
        year, number = week.split("-W")
        monday = dt.date.fromisocalendar(int(year), int(number), 1)
    except ValueError:
        raise DigestError(f"{week!r} is not an ISO week such as 2026-W47") from None
    tz = zoneinfo.ZoneInfo(timezone)
    start = dt.datetime.combine(monday, dt.time(), tz).astimezone(dt.UTC)
    end = dt.datetime.combine(monday + dt.timedelta(days=7), dt.time(), tz).astimezone(dt.UTC)
    return monday, start, end


def iso_week(day: dt.date) -> str:
    """The ISO week of ``day``, e.g. "2026-W47"."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass(frozen=True)
class Week:
    """One ISO week in the clinic's time zone: its label, dates and UTC bounds."""

    label: str
    monday: dt.date
    start: dt.datetime  # Monday 00:00, clinic time, as UTC
    end: dt.datetime  # the next Monday 00:00, clinic time, as UTC (exclusive)

    @property
    def sunday(self) -> dt.date:
        return self.monday + dt.timedelta(days=6)

    @classmethod
    def of(cls, label: str, timezone: str) -> Week:
        monday, start, end = week_bounds(label, timezone)
        return cls(label, monday, start, end)

    def back(self, weeks: int, timezone: str) -> Week:
        """The week ``weeks`` before this one (bounds recomputed: clocks change)."""
        return Week.of(iso_week(self.monday - dt.timedelta(weeks=weeks)), timezone)


def _rate(count: int, n: int) -> RateFigure:
    figure = rate(count, n)
    return RateFigure(figure.count, figure.n, figure.low, figure.high)


@dataclass(frozen=True)
class _Reading:
    """The main outcome measure read as at one week's end: colour and change category of
    each episode, by the engine's rule."""

    colour: dict[int, str]
    category: dict[int, str | None]


def _signals(instrument: Instrument, context: ClinicContext, scores: np.ndarray,
             sessions: np.ndarray) -> OutcomeSignals:
    """The engine's outcome signals of these series, with the clinic's expected-recovery
    model, colour settings and intake SD for the measure (as the live signals are)."""
    sd = context.intake_sd.get(instrument.id)
    return outcome_signals(instrument, scores, sessions,
                           model=context.models.get(instrument.id), settings=context.colours,
                           intake_sd=sd[0] if sd else None, n_intake=sd[1] if sd else None)


class WeekReader:
    """The stored data behind a group of therapists' figures, read once; figures for any
    week. The supervisor's digest reads their supervisees' episodes; the therapist's weekly
    report (:mod:`outcome.services.therapist_reports.weekly`) reads the therapist's own,
    so both say the same numbers for the same week. ``viewer`` scopes the clients read
    (:func:`outcome.services.access.visible_clients`)."""

    def __init__(self, session: Session, viewer: User, clinic: Clinic,
                 therapist_ids: list[int], instrument: Instrument | None) -> None:
        self.session, self.tz, self.instrument = session, clinic.timezone, instrument
        self.instrument_id = instrument.id if instrument else None
        visible = visible_clients(viewer).subquery()
        self.episodes = session.execute(
            select(Episode.id, Episode.therapist_id, Episode.opened_on, Episode.closed_on,
                   Client.code, Episode.end_reason)
            .join(visible, Episode.client_id == visible.c.id)
            .join(Client, Client.id == Episode.client_id)
            .where(Episode.therapist_id.in_(therapist_ids))
            .order_by(Episode.id)).all()
        self.ids = [e.id for e in self.episodes]
        self.alerts = session.execute(
            select(Alert.id, Alert.episode_id, Alert.kind, Alert.raised_dt,
                   Alert.acknowledged_dt, Alert.resolved_dt)
            .where(Alert.episode_id.in_(self.ids))
            .order_by(Alert.raised_dt, Alert.id)).all()
        self.sessions = session.execute(
            select(Appointment.id, Appointment.episode_id, Appointment.starts_dt)
            .where(Appointment.episode_id.in_(self.ids),
                   Appointment.status.in_(COUNTED))).all()
        self.measured: set[int] = set()
        if self.instrument_id is not None:
            self.measured = set(session.scalars(
                select(Administration.appointment_id).where(
                    Administration.episode_id.in_(self.ids),
                    Administration.respondent == "client",
                    Administration.instrument_id == self.instrument_id,
                    Administration.appointment_id.is_not(None))))
        self._readings: dict[dt.datetime, _Reading] = {}
        self._changes: dict[str, dict[int, tuple[str | None, str]]] = {}
        self._context = clinic_context(session, clinic) if instrument is not None else None
        self._scores = self._valid_scores(session) if instrument is not None else {}

    def _valid_scores(self, session: Session
                      ) -> dict[int, list[tuple[dt.datetime, float, int]]]:
        """Each episode's valid client scores on the main measure, oldest first, with their
        times and treatment sessions: the series the engine reads
        (:func:`outcome.services.signals.load_series`: superseded administrations left out,
        ordered by completion then id; t from :mod:`outcome.services.sessions`).
        Columns only: a supervisor's caseload has thousands of administrations."""
        superseded = select(Administration.supersedes_id).where(
            Administration.supersedes_id.is_not(None))
        found: dict[int, list[tuple[dt.datetime, float, int | None]]] = defaultdict(list)
        for episode_id, completed, scores, appointment_id in session.execute(
                select(Administration.episode_id, Administration.completed_dt,
                       Administration.scores, Administration.appointment_id)
                .where(Administration.episode_id.in_(self.ids),
                       Administration.instrument_id == self.instrument_id,
                       Administration.respondent == "client", Administration.is_valid,
                       Administration.id.not_in(superseded))
                .order_by(Administration.episode_id, Administration.completed_dt,
                          Administration.id)):
            primary = (scores or {}).get("primary")
            if primary is not None:
                found[episode_id].append((completed, float(primary), appointment_id))
        clock = session_clock(session, list(found))
        out: dict[int, list[tuple[dt.datetime, float, int]]] = {}
        for episode_id, rows in found.items():
            numbers = clock.session_numbers(episode_id, [(a, when) for when, _, a in rows])
            out[episode_id] = [(when, score, t) for (when, score, _), t
                               in zip(rows, numbers, strict=True)]
        return out

    def scores_of(self, episode_id: int) -> list[tuple[dt.datetime, float, int]]:
        """One episode's valid scores on the main measure: (completed, score, session)."""
        return self._scores.get(episode_id, [])

    def reading(self, end: dt.datetime) -> _Reading:
        """Each episode's colour and change category on the main measure from its valid
        scores completed before ``end`` (the engine's rule; grey without a score)."""
        if end in self._readings:
            return self._readings[end]
        colour: dict[int, str] = {}
        category: dict[int, str | None] = {}
        series = {e: [(score, t) for when, score, t in rows if when < end]
                  for e, rows in self._scores.items()}
        series = {e: row for e, row in series.items() if row}
        context, instrument = self._context, self.instrument
        if series and context is not None and instrument is not None:
            order = sorted(series)
            width = max(len(row) for row in series.values())
            scores = np.full((len(order), width), np.nan)
            # Padding continues the count, as in load_series.
            sessions = np.tile(np.arange(1, width + 1), (len(order), 1))
            for i, e in enumerate(order):
                scores[i, :len(series[e])] = [score for score, _ in series[e]]
                sessions[i, :len(series[e])] = [t for _, t in series[e]]
            signals = _signals(instrument, context, scores, sessions)
            for i, episode_id in enumerate(order):  # no score yet: grey (left out)
                colour[episode_id] = signals.colours.name(i)
                category[episode_id] = (signals.change.label(i) if signals.change is not None
                                        and int(signals.count[i]) >= 2 else None)
        self._readings[end] = _Reading(colour, category)
        return self._readings[end]

    def active(self, episode_ids: set[int], week: Week) -> list:
        """Episodes open at some time in ``week`` (opened by its Sunday, not closed before
        its Monday)."""
        return [e for e in self.episodes if e.id in episode_ids and e.opened_on <= week.sunday
                and (e.closed_on is None or e.closed_on >= week.monday)]

    def ended(self, episode_ids: set[int], week: Week) -> list:
        """Episodes closed in ``week`` (Monday to Sunday, clinic dates)."""
        return [e for e in self.episodes if e.id in episode_ids and e.closed_on is not None
                and week.monday <= e.closed_on <= week.sunday]

    def colours(self, episode_ids: set[int], week: Week) -> dict[str, int]:
        """Active episodes of ``week`` by their colour on the main measure at its end."""
        reading = self.reading(week.end)
        counts = dict.fromkeys(COLOUR_NAMES, 0)
        for e in self.active(episode_ids, week):
            counts[reading.colour.get(e.id, "grey")] += 1
        return counts

    def open_alerts(self, episode_ids: set[int], week: Week) -> list:
        """Alerts of ``episode_ids`` open at the end of ``week``: raised before it ended,
        neither acknowledged nor resolved by then; oldest first."""

        def open_at(alert) -> bool:
            closed = [t for t in (alert.acknowledged_dt, alert.resolved_dt) if t]
            return alert.raised_dt < week.end and not any(t < week.end for t in closed)

        return [a for a in self.alerts if a.episode_id in episode_ids and open_at(a)]

    def completion(self, episode_ids: set[int], week: Week) -> RateFigure:
        """Sessions of ``episode_ids`` in ``week`` (scheduled or attended, started in it)
        at which the client answered the main outcome measure, of all those sessions."""
        return self.completion_between(episode_ids, week.start, week.end)

    def completion_between(self, episode_ids: set[int], start: dt.datetime,
                           end: dt.datetime) -> RateFigure:
        """:meth:`completion` for any period ``start`` <= session start < ``end`` (the one
        definition; the fidelity figures of issue 19 read it for their period)."""
        held = [s for s in self.sessions if s.episode_id in episode_ids
                and start <= s.starts_dt < end]
        return _rate(sum(1 for s in held if s.id in self.measured), len(held))

    def colours_by_score(self, episode_id: int) -> list[tuple[dt.datetime, str]]:
        """The episode's colour on the main measure as it read just after each of its
        valid scores: (completed, colour) per score, oldest first. The engine's rule
        (:func:`outcome.core.signals.outcome_signals`) on the series up to that score,
        as :meth:`reading` reads it at a week's end; [] without a score."""
        rows = self._scores.get(episode_id, [])
        context, instrument = self._context, self.instrument
        if not rows or context is None or instrument is None:
            return []
        width = len(rows)
        scores = np.full((width, width), np.nan)
        sessions = np.tile(np.arange(1, width + 1), (width, 1))
        for k in range(width):  # row k: the series up to its (k + 1)th score
            scores[k, :k + 1] = [score for _, score, _ in rows[:k + 1]]
            sessions[k, :k + 1] = [t for _, _, t in rows[:k + 1]]
        signals = _signals(instrument, context, scores, sessions)
        return [(rows[k][0], signals.colours.name(k)) for k in range(width)]

    def figures(self, episode_ids: set[int], week: Week) -> KeyFigures:
        """Every figure of ``episode_ids`` for ``week``: the one definition the cover, the
        twelve-week table and the sections share (see the module docstring)."""
        alerts = [a for a in self.alerts if a.episode_id in episode_ids]
        ended = self.ended(episode_ids, week)
        reading = self.reading(week.end)
        assessed = [c for c in (reading.category.get(e.id) for e in ended) if c]
        return KeyFigures(
            active_episodes=len(self.active(episode_ids, week)),
            colours=self.colours(episode_ids, week),
            completion=self.completion(episode_ids, week),
            open_alerts=len(self.open_alerts(episode_ids, week)),
            ruptures_opened=sum(1 for a in alerts if a.kind == "rupture"
                                and week.start <= a.raised_dt < week.end),
            ruptures_repaired=sum(1 for a in alerts if a.kind == "rupture"
                                  and a.resolved_dt and week.start <= a.resolved_dt < week.end),
            episodes_ended=len(ended),
            reliably_improved=_rate(sum(c in ("recovered", "improved") for c in assessed),
                                    len(assessed)),
            recovered=_rate(sum(c == "recovered" for c in assessed), len(assessed)),
            deteriorated=_rate(sum(c in ("deteriorated", "harmed") for c in assessed),
                               len(assessed)),
            is_small=len(assessed) < SMALL_SAMPLE)

    def episode_changes(self, episode_ids: set[int], locale: str = "en"
                        ) -> dict[int, tuple[str | None, str]]:
        """Each episode's own change since intake, as stored with its signal and shown on
        its client page (:func:`outcome.services.episode_change.change_words`): its primary
        measure's category (the episode's choice, else the clinic's), or the NHS Talking
        Therapies paired result when the clinic turns the paired rules on (domain.md
        section 3); with the measure or pair in words ("GAD-7"). (None, "") without a
        stored signal. Read once per reader."""
        cache = self._changes.setdefault(locale, {})
        missing = [e for e in episode_ids if e not in cache]
        if missing:
            states: dict[int, dict] = {e: st for e, st in self.session.execute(
                select(EpisodeSignal.episode_id, EpisodeSignal.state)
                .where(EpisodeSignal.episode_id.in_(missing)))}
            for episode_id in missing:
                category, _, measure, _ = change_words(states.get(episode_id), locale)
                cache[episode_id] = (category, measure if category else "")
        return {e: cache[e] for e in episode_ids}

    def ended_list(self, episode_ids: set[int], week: Week) -> tuple[tuple[str, str, str],
                                                                       ...]:
        """(client code, change category, measure or pair) of each episode ended in
        ``week``: the episode's own change (:meth:`episode_changes`), "no change score"
        when it has none yet."""
        ended = self.ended(episode_ids, week)
        changes = self.episode_changes({e.id for e in ended})
        return tuple((e.code, changes[e.id][0] or "no change score", changes[e.id][1])
                     for e in ended)


    def ended_reasons(self, episode_ids: set[int], week: Week) -> tuple[str, ...]:
        """Why each episode of :meth:`ended_list` ended, in words, in its order."""
        return tuple(END_REASON_LABELS.get(e.end_reason or "", e.end_reason or "")
                     for e in self.ended(episode_ids, week))


# The name the digest's code used before the weekly report shared the reader.
_Reader = WeekReader


def trend_point(week: Week, figures: KeyFigures) -> TrendPoint:
    """One row of the twelve-week table: that week's :class:`KeyFigures`, abridged."""
    return TrendPoint(week.label, figures.active_episodes, figures.colours["red"],
                      figures.open_alerts, figures.completion)


def build_digest(session: Session, supervisor: User, week: str, library: InstrumentLibrary,
                 now: dt.datetime) -> Digest:
    """The digest of ``supervisor`` for ISO ``week`` (produced at ``now``).

    Raises :class:`DigestError` for a malformed week or one that has not ended yet.
    """
    clinic = session.get(Clinic, supervisor.clinic_id)
    assert clinic is not None
    this = Week.of(week, clinic.timezone)
    if this.end > now:
        ends = this.end.astimezone(zoneinfo.ZoneInfo(clinic.timezone))
        raise DigestError(f"week {week} has not ended yet (it ends "
                          f"{ends:%Y-%m-%d %H:%M} {clinic.timezone})")
    instrument = primary_outcome(clinic, library)
    people = supervisees(session, supervisor) if supervisor.is_active else []
    reader = WeekReader(session, supervisor, clinic, [p.id for p in people], instrument)
    everyone = set(reader.ids)
    by_therapist: dict[int, set[int]] = defaultdict(set)
    for e in reader.episodes:
        by_therapist[e.therapist_id].add(e.id)
    signals = {row.episode_id: row for row in session.scalars(
        select(EpisodeSignal).where(EpisodeSignal.episode_id.in_(reader.ids)))}
    open_now = {e.id for e in reader.episodes if e.closed_on is None}

    weeks = [this.back(back, clinic.timezone) for back in range(TREND_WEEKS - 1, -1, -1)]
    by_week = {w.label: reader.figures(everyone, w) for w in weeks}
    previous = this.back(1, clinic.timezone)
    sections = []
    for person in people:
        ids = by_therapist.get(person.id, set())
        sections.append(SuperviseeSection(
            therapist_name=person.display_name,
            week=reader.figures(ids, this),
            attention=_attention(session, reader, ids & open_now, signals, instrument, library,
                                 now),
            ended=reader.ended_list(ids, this),
            ended_reasons=reader.ended_reasons(ids, this)))
    return Digest(
        clinic_name=clinic.name, supervisor_name=supervisor.display_name, week=week,
        starts=this.monday, ends=this.sunday, produced=now,
        timezone=clinic.timezone, instrument=instrument.short_name if instrument else "",
        this_week=by_week[this.label], previous_week=by_week[previous.label],
        trend=tuple(trend_point(w, by_week[w.label]) for w in weeks),
        sections=tuple(sections))


def _attention(session: Session, reader: WeekReader, ids: set[int],
               signals: dict[int, EpisodeSignal], instrument, library: InstrumentLibrary,
               now: dt.datetime) -> tuple[AttentionItem, ...]:
    """Open episodes that are red, have an unrepaired rupture, an unacknowledged critical
    answer older than a day, or a reliable deterioration; most urgent first. A critical
    answer is named by its item and urgency, never its value (the digest goes to a
    supervisor; issue 16, finding 14)."""
    day_ago = now - dt.timedelta(days=1)
    open_alerts: dict[int, list] = defaultdict(list)
    for alert in session.execute(select(Alert.episode_id, Alert.kind, Alert.raised_dt,
                                        Alert.detail)
                                 .where(Alert.episode_id.in_(list(ids)),
                                        Alert.status == "open")):
        open_alerts[alert.episode_id].append(alert)
    notes = {}
    for episode_id, text, when in session.execute(
            select(Alert.episode_id, Alert.acknowledgement_note, Alert.acknowledged_dt)
            .where(Alert.episode_id.in_(list(ids)), Alert.acknowledged_dt.is_not(None))
            .order_by(Alert.acknowledged_dt)):
        notes[episode_id] = (text, when)
    codes = {e.id: e.code for e in reader.episodes}
    tz = zoneinfo.ZoneInfo(reader.tz)
    items = []
    for episode_id in ids:
        signal = signals.get(episode_id)
        state = signal.state if signal else {}
        reasons = []
        primary = state.get("outcomes", {}).get(instrument.id if instrument else "", {})
        critical = [a for a in open_alerts[episode_id]
                    if a.kind in CRITICAL_KINDS and a.raised_dt < day_ago]
        reasons += [f"Critical answer not acknowledged for over a day: "
                    f"{render_explanation(without_answers(a.detail, library))}"
                    for a in critical]
        if signal and signal.colour == "red":
            reasons += [render_explanation(data["progress"])
                        for data in state.get("outcomes", {}).values()
                        if data["progress"]["level"] == "red"]
        reasons += [render_explanation(a.detail) for a in open_alerts[episode_id]
                    if a.kind == "unrepaired_rupture"]
        reasons += [render_explanation(data["change"])
                    for data in state.get("outcomes", {}).values()
                    if data.get("change") and data["change"]["level"] in ("deteriorated",
                                                                          "harmed")]
        if not reasons:
            continue
        series = primary.get("series", [])
        # The treatment session of each of the latest scores the signal kept.
        held = [t for _, _, t in reader.scores_of(episode_id)][-len(series):] if series else []
        chart = None
        if instrument is not None and len(series) > 1:
            low, high = instrument.primary_range
            chart = TrajectoryData(
                title=instrument.short_name,
                sessions=(tuple(held) if len(held) == len(series)
                          else tuple(range(1, len(series) + 1))),
                scores=tuple(series), y_min=low, y_max=high,
                cutoff=instrument.cutoff.value if instrument.cutoff else None,
                cutoff_label=f"cutoff {instrument.cutoff.value:g}" if instrument.cutoff
                else "")
        note = notes.get(episode_id)
        urgency = signal.urgency if signal else 7
        items.append((0 if critical else urgency, codes[episode_id], AttentionItem(
            code=codes[episode_id], reasons=tuple(dict.fromkeys(reasons)), chart=chart,
            last_note=note[0] if note else None,
            last_note_date=note[1].astimezone(tz).date() if note and note[1] else None)))
    return tuple(item for _, _, item in sorted(items, key=lambda t: (t[0], t[1])))


def due_weeks(session: Session, clinic: Clinic, now: dt.datetime, settings: dict,
              catch_up_weeks: int) -> list[str]:
    """ISO weeks whose digest is due at ``now``: every ended week up to ``catch_up_weeks``
    back, once the clinic's digest day and time after it have passed (clinic time)."""
    tz = zoneinfo.ZoneInfo(clinic.timezone)
    local = now.astimezone(tz)
    hour, minute = (int(p) for p in str(settings["digest_time"]).split(":"))
    this_monday = local.date() - dt.timedelta(days=local.weekday())
    weeks = []
    for back in range(1, catch_up_weeks + 1):
        monday = this_monday - dt.timedelta(weeks=back)
        send_day = monday + dt.timedelta(days=7 + int(settings["digest_weekday"]))
        send_at = dt.datetime.combine(send_day, dt.time(hour, minute), tz)
        if send_at <= local:
            weeks.append(iso_week(monday))
    return sorted(weeks)

