"""One client's record as their clinicians read it: charts, items, goals, answers, alerts.

Built from stored administrations and the episode's stored signals (never recomputed
here, so the page agrees with the caseload). Two audiences:

- the client's own therapist gets everything: item answers, the heat map, goal texts;
- a supervisor gets a de-identified record (``full=False``): scores, charts and signal
  explanations, but no item answers, no free text and no goal wording, since answers
  reach the client's own therapist only.

"Session" means the episode's treatment session everywhere (domain.md section 3), the
engine's t (:mod:`outcome.services.sessions`): an administration's session is its
appointment's number among the sessions held; one given without an appointment belongs to
the last session started before it was completed (the first, if none was); in an episode
without any appointment the n-th score of a measure is session n. A missed appointment
does not advance it. A measure's own count, where it is said, is "the 15th GAD-7"
(:func:`~outcome.services.explanations.measure_count`). Every score with severity bands
shows its band (:func:`~outcome.core.severity.severity`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo
from dataclasses import dataclass
from dataclasses import field

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.core.instruments import Instrument
from outcome.core.messages import Message
from outcome.core.score_notes import critical_blank_notes
from outcome.core.score_notes import score_notes
from outcome.core.severity import severity
from outcome.core.signals import change_markers
from outcome.models import Administration
from outcome.models import Alert
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import EpisodeSignal
from outcome.models import User
from outcome.models.care import SESSION_STATUSES
from outcome.services.caseload import rule_based_measures
from outcome.services.caseload import rule_based_notices
from outcome.services.episode_change import change_words
from outcome.services.explanations import band_name
from outcome.services.explanations import format_day
from outcome.services.explanations import measure_count
from outcome.services.explanations import render
from outcome.services.explanations import render_explanation
from outcome.services.explanations import say
from outcome.services.explanations import scored_text
from outcome.services.explanations import without_answers
from outcome.services.goals import episode_goals
from outcome.services.goals import goal_for_rating
from outcome.services.sessions import EpisodeClock
from outcome.services.sessions import episode_clocks
from outcome.services.signals import ClinicContext
from outcome.services.signals import clinic_context
from questionnaires.loader import InstrumentLibrary
from reports.charts import HeatmapData
from reports.charts import TrajectoryData

COUNTED = SESSION_STATUSES  # statuses that take a session number: one list, in models
# An item "stays high" when it is in the top third of its scale at each of the last
# three valid administrations (e.g. PHQ-9 "more than half the days" or worse).
HIGH_FRACTION = 2 / 3
HIGH_RUN = 3


def N_(message: str) -> str:  # mark for the catalogue (Babel extracts N_); translate later
    return message


# The chart markers' words (reports.charts.MARKERS), marked here for the catalogue so the
# reader's language is used on the page and in the chart's legend.
MARKER_WORDS = {
    "improved": N_("reliable improvement"), "recovered": N_("recovered"),
    "deteriorated": N_("reliable deterioration"), "harmed": N_("reliable deterioration"),
    "possible": N_("possible rupture"), "rupture": N_("rupture"),
    "unrepaired": N_("unrepaired rupture"), "repaired": N_("repair"),
}


def _chart_words(locale: str) -> tuple[tuple[str, str], ...]:
    """The chart's marker and axis words in ``locale`` (for reports.charts)."""
    return (*((kind, say(words, locale)) for kind, words in MARKER_WORDS.items()),
            ("session", say(N_("session"), locale)))


@dataclass(frozen=True)
class ChartView:
    """One measure's chart, with the text alternative and the table it is drawn from."""

    instrument_id: str
    data: TrajectoryData
    description: str
    rows: tuple[tuple[int, str, float, str], ...]  # session, local date, score, marker words
    severities: tuple[str, ...] = ()  # each row's severity band in words ("" for none)
    latest: str = ""  # "Latest: PHQ-9 16 (moderately severe) at session 3, the 3rd PHQ-9."


@dataclass(frozen=True)
class HeatmapView:
    instrument_id: str
    data: HeatmapData
    staying_high: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class AnswerView:
    label: str
    text: str
    answer: str
    is_critical: bool = False


@dataclass(frozen=True)
class AdministrationView:
    id: int
    instrument: str
    completed: dt.datetime
    session: int | None
    respondent: str
    score: float | None
    is_valid: bool
    is_prorated: bool
    is_superseded: bool
    answers: tuple[AnswerView, ...]
    severity: str | None = None  # the score's band in words ("moderately severe")
    # What must be said beside the score (outcome.core.score_notes), in the reader's
    # language; a prorated total with a blank critical item carries its own "prorated; ...".
    notes: tuple[str, ...] = ()
    is_prorated_note: bool = False
    # The language the client was shown the wording in ("en", "ru"); None: not recorded.
    language: str | None = None
    appointment_id: int | None = None  # the appointment it was given for, if any


@dataclass(frozen=True)
class ScoreNoteView:
    """A note beside one administration's score: a rule's state, a blank safety question."""

    instrument: str
    completed: dt.datetime
    session: int | None
    score: float | None
    text: str


@dataclass(frozen=True)
class GoalView:
    position: int
    description: str | None
    ratings: tuple[tuple[int, float], ...]
    retired_dt: dt.datetime | None = None  # a retired goal keeps its ratings


@dataclass(frozen=True)
class AlertView:
    id: int
    kind: str
    status: str
    text: str
    raised: dt.datetime
    acknowledged: dt.datetime | None
    acknowledged_by: str | None
    note: str | None


@dataclass
class ClientRecord:
    """Everything the client page shows for one episode."""

    episode: Episode
    timezone: str
    explanations: list[dict] = field(default_factory=list)
    # Said once above the explanations: measures whose colours are rule-based.
    notices: tuple[str, ...] = ()
    outcome_charts: list[ChartView] = field(default_factory=list)
    alliance_charts: list[ChartView] = field(default_factory=list)
    heatmaps: list[HeatmapView] = field(default_factory=list)
    goals: list[GoalView] = field(default_factory=list)
    administrations: list[AdministrationView] = field(default_factory=list)
    alerts: list[AlertView] = field(default_factory=list)
    score_notes: list[ScoreNoteView] = field(default_factory=list)
    # The episode's change since intake and the measure (or pair) it belongs to.
    change: EpisodeChangeView | None = None


@dataclass(frozen=True)
class EpisodeChangeView:
    """"Since intake (PHQ-9): Recovered", with the sentence that explains it."""

    category: str
    category_text: str
    measure: str
    explanation: str


def episode_administrations(session: Session, episode_id: int) -> list[Administration]:
    """Every administration of the episode, oldest first (corrections included)."""
    return list(session.scalars(select(Administration)
                                .where(Administration.episode_id == episode_id)
                                .order_by(Administration.completed_dt, Administration.id)))


def _answer_text(instrument: Instrument, item_id: str, value: object) -> str:
    item = instrument.item(item_id)
    if isinstance(value, str):
        return value
    label = next((o.label for o in item.options if o.value == value and o.label), None)
    number = f"{float(value):g}"  # type: ignore[arg-type]
    return f"{number} ({label})" if label else number


def client_record(session: Session, episode: Episode, library: InstrumentLibrary, *,
                  full: bool, locale: str = "en", context: ClinicContext | None = None,
                  listed_after: dt.datetime | None = None) -> ClientRecord:
    """The record of ``episode``; ``full`` only for the client's own therapist.

    Reads the episode's administrations (one query), its stored signal, alerts and
    goals. The outcome chart carries the expected band from the clinic's fitted curve
    (25th to 90th percentile, trajectory.py), the instrument's cutoff and a marker at
    each score whose change since intake is reliable (:func:`change_markers`); the
    alliance chart marks ruptures and their repair from the stored signal. Explanations
    and alert texts are rendered in ``locale`` (the reader's language; English for the
    PDF report, whose own wording is English). ``context`` is the clinic's
    :func:`~outcome.services.signals.clinic_context`, read here when not given (a caller
    that reads many records of one clinic reads it once). ``listed_after`` limits the
    listed administrations (``administrations``, with their answers) to those completed
    after that moment; charts, items and signals still use every one.
    """
    clinic = session.get(Clinic, episode.clinic_id)
    assert clinic is not None
    tz = zoneinfo.ZoneInfo(clinic.timezone)
    record = ClientRecord(episode=episode, timezone=clinic.timezone)
    context = context if context is not None else clinic_context(session, clinic)
    signal = session.get(EpisodeSignal, episode.id)
    state = signal.state if signal else {}
    rows = episode_administrations(session, episode.id)
    clock = episode_clocks(session, [episode.id])[episode.id]
    numbers = clock.numbers
    superseded = {row.supersedes_id for row in rows if row.supersedes_id}
    current = [row for row in rows if row.id not in superseded]

    category, category_text, measure, explanation = change_words(state, locale)
    if category:
        record.change = EpisodeChangeView(category, category_text, measure, explanation)
    for instrument_id, data in sorted(state.get("outcomes", {}).items()):
        record.explanations.append(_explained(library, instrument_id, data["progress"],
                                              locale))
        if data.get("change"):
            record.explanations.append(_explained(library, instrument_id, data["change"],
                                                  locale))
    record.notices = rule_based_notices(
        rule_based_measures(state.get("outcomes", {})),
        {i: _short(library, i) for i in state.get("outcomes", {})}, locale)
    for instrument_id, data in sorted(state.get("alliance", {}).items()):
        for rupture in data.get("ruptures", []):
            record.explanations.append(_explained(library, instrument_id, rupture, locale))

    series: dict[str, list[Administration]] = {}
    for row in current:
        if (row.respondent == "client" and row.is_valid
                and (row.scores or {}).get("primary") is not None):
            series.setdefault(row.instrument_id, []).append(row)
    for instrument_id, administered in sorted(series.items()):
        try:
            instrument = library.get(instrument_id)
        except KeyError:
            continue
        t = clock.series(administered)
        if instrument.role == "outcome":
            record.outcome_charts.append(_qualified(
                _outcome_chart(instrument, administered, context, tz, t, locale),
                instrument, administered, locale))
        elif instrument.role == "alliance":
            record.alliance_charts.append(_alliance_chart(
                instrument, administered, state.get("alliance", {}).get(instrument_id, {}),
                tz, t, locale))

    goal_rows = episode_goals(session, episode.id)
    # Each rating goes to the goal open at its position when it was given (a retired
    # goal keeps its own; its replacement starts afresh).
    ratings: dict[int, list[tuple[int, float]]] = {g.id: [] for g in goal_rows}
    gbo = series.get("gbo", [])
    for n, row in zip(clock.series(gbo), gbo, strict=True):
        for position in sorted({g.position for g in goal_rows}):
            value = row.answers.get(f"gbo_{position}")
            goal = goal_for_rating(goal_rows, position, row.completed_dt)
            if isinstance(value, int | float) and goal is not None:
                ratings[goal.id].append((n, float(value)))
    record.goals = [GoalView(g.position, g.description if full else None,
                             tuple(ratings[g.id]), g.closed_dt) for g in goal_rows]

    record.score_notes = _score_notes(library, current, numbers, tz, locale)
    if full:
        record.heatmaps = _heatmaps(library, current, clock, locale)
        at = {row.id: n for administered in series.values()
              for n, row in zip(clock.series(administered), administered, strict=True)}
        for row in reversed(rows):
            if listed_after is not None and row.completed_dt <= listed_after:
                break  # oldest first: the rest are older still
            number = at.get(row.id) or (clock.of(row.appointment_id, row.completed_dt)
                                        if clock.starts else None)
            record.administrations.append(_administration(library, row, number, tz,
                                                          row.id in superseded, locale))

    names = dict(session.execute(select(User.id, User.display_name).join(
        Alert, Alert.acknowledged_by_id == User.id).where(Alert.episode_id == episode.id)
        ).all())
    for alert in session.scalars(select(Alert).where(Alert.episode_id == episode.id)
                                 .order_by(Alert.raised_dt.desc(), Alert.id.desc())):
        record.alerts.append(AlertView(
            alert.id, alert.kind, alert.status,
            render_explanation(alert.detail if full else without_answers(alert.detail, library),
                               locale),
            alert.raised_dt.astimezone(tz),
            alert.acknowledged_dt.astimezone(tz) if alert.acknowledged_dt else None,
            names.get(alert.acknowledged_by_id) if alert.acknowledged_by_id else None,
            alert.acknowledgement_note if full else None))
    record.alerts.sort(key=lambda a: a.status != "open")  # open ones first, stable
    return record


def _explained(library: InstrumentLibrary, instrument_id: str, explanation: dict,
               locale: str) -> dict:
    """A stored explanation with its instrument's short name and its text in ``locale``."""
    return {"instrument": _short(library, instrument_id), **explanation,
            "text": render_explanation(explanation, locale)}


def _short(library: InstrumentLibrary, instrument_id: str) -> str:
    try:
        return library.get(instrument_id).short_name
    except KeyError:
        return instrument_id


def _outcome_chart(instrument: Instrument, rows: list[Administration], context,
                   tz: zoneinfo.ZoneInfo, sessions: tuple[int, ...], locale: str = "en"
                   ) -> ChartView:
    scores = np.array([row.scores["primary"] for row in rows], dtype=float)
    bands = [severity(instrument, float(v)) for v in scores]
    sd = context.intake_sd.get(instrument.id)
    marks = change_markers(instrument, scores, *(sd if sd else (None, None)))
    low, high = instrument.primary_range
    band_low = band_high = None
    band_label = ""
    model = context.models.get(instrument.id)
    # The band is drawn only when colours come from the same curve (enough episodes);
    # otherwise the rule-based colours and the band could disagree.
    if (model is not None and model.n_episodes >= context.colours.min_episodes
            and len(rows) > 1):
        edges = model.band(np.full(len(sessions), scores[0]), np.array(sessions))
        band_low, band_high = tuple(map(float, edges[0])), tuple(map(float, edges[1]))
        band_label = expected_range_label(instrument, model, locale)
    data = TrajectoryData(
        title=instrument.short_name, sessions=sessions, scores=tuple(map(float, scores)),
        y_min=low, y_max=high,
        cutoff=instrument.cutoff.value if instrument.cutoff else None,
        cutoff_label=(say(N_("cutoff %(value)s"), locale, value=f"{instrument.cutoff.value:g}")
                      if instrument.cutoff else ""),
        band_low=band_low, band_high=band_high, band_label=band_label,
        markers=tuple((s, m) for s, m in zip(sessions, marks, strict=True) if m),
        words=_chart_words(locale))
    table = tuple((s, format_day(row.completed_dt, locale, tz), float(v),
                   say(MARKER_WORDS[m], locale) if m else "")
                  for s, row, v, m in zip(sessions, rows, scores, marks, strict=True))
    direction = (say(N_("lower is better"), locale)
                 if instrument.direction == "higher_is_worse"
                 else say(N_("higher is better"), locale))
    listing = "; ".join(
        say(N_("session %(session)s: %(score)s"), locale, session=s, score=f"{v:g}")
        + (f" ({'; '.join(x for x in (band_name(b, locale) or '', w) if x)})"
           if b or w else "")
        for (s, _, v, w), b in zip(table, bands, strict=True))
    parts = [say(N_("%(measure)s by session (%(direction)s): %(listing)s."), locale,
                 measure=instrument.short_name, direction=direction, listing=listing)]
    if instrument.cutoff:
        parts.append(say(N_("The clinical cutoff is %(value)s."), locale,
                         value=f"{instrument.cutoff.value:g}"))
    if band_low and band_high:  # set together
        parts.append(say(N_("Expected range at the latest session: %(low)s to %(high)s "
                            "(%(band)s)."), locale, low=f"{band_low[-1]:.1f}",
                         high=f"{band_high[-1]:.1f}", band=band_label))
    latest = render("measure.latest", {
        "scored": scored_text(instrument.short_name, float(scores[-1]), bands[-1], locale),
        "session": sessions[-1], "count": measure_count(len(rows), instrument.short_name,
                                                        locale)}, locale)
    return ChartView(instrument.id, data, " ".join(parts), table,
                     tuple(band_name(b, locale) or "" for b in bands), latest)


def _qualified(chart: ChartView, instrument: Instrument, rows: list[Administration],
               locale: str) -> ChartView:
    """The chart with each total prorated over a blank critical item said so in its table
    and its text ("prorated; item 9 (the safety question) unanswered"): such a total is
    never shown without it (docs/signals.md)."""
    notes = {n: "; ".join(render(m.id, m.as_json()["params"], locale)
                          for m in critical_blank_notes(instrument, row.scores or {}))
             for n, row in enumerate(rows)}
    if not any(notes.values()):
        return chart
    table = tuple((s, day, v, "; ".join(w for w in (words, notes[i]) if w))
                  for i, (s, day, v, words) in enumerate(chart.rows))
    said = " ".join(say(N_("Session %(session)s: %(notes)s."), locale, session=s,
                        notes=notes[i])
                    for i, (s, *_rest) in enumerate(chart.rows) if notes[i])
    return dataclasses.replace(chart, rows=table, description=f"{chart.description} {said}")


def expected_range_label(instrument: Instrument, model, locale: str = "en") -> str:
    """The band's legend: the measure, and whose fit with its sample size."""
    fit = model.source if model.source else say(N_("clinic fit"), locale)
    return say(N_("%(measure)s expected range (%(fit)s, n = %(n)s)"), locale,
               measure=instrument.short_name, fit=fit, n=model.n_episodes)


def _alliance_chart(instrument: Instrument, rows: list[Administration], state: dict,
                    tz: zoneinfo.ZoneInfo, sessions: tuple[int, ...], locale: str = "en"
                    ) -> ChartView:
    scores = [float(row.scores["primary"]) for row in rows]
    markers: list[tuple[int, str]] = []
    for rupture in state.get("ruptures", []):
        numbers = rupture.get("numbers", {})
        at = numbers.get("session")
        level = rupture.get("level")
        if at:
            markers.append((int(at), "possible" if level == "possible" else
                            "unrepaired" if level == "unrepaired" else "rupture"))
        if numbers.get("repaired_session") and level != "possible":
            markers.append((int(numbers["repaired_session"]), "repaired"))
    words: dict[int, list[str]] = {}
    for s, kind in markers:
        words.setdefault(s, []).append(say(MARKER_WORDS[kind], locale))
    low, high = instrument.primary_range
    # Alliance ratings crowd the top of the scale: start the axis a little below the
    # lowest rating or the cutoff, on a round number, so ruptures stay visible.
    floor = min([*scores, instrument.cutoff.value if instrument.cutoff else high])
    step = (high - low) / 8
    y_min = max(low, step * np.floor((floor - step) / step))
    data = TrajectoryData(
        title=instrument.short_name, sessions=sessions, scores=tuple(scores),
        y_min=float(y_min), y_max=high,
        cutoff=instrument.cutoff.value if instrument.cutoff else None,
        cutoff_label=(say(N_("concern below %(value)s"), locale,
                          value=f"{instrument.cutoff.value:g}") if instrument.cutoff else ""),
        markers=tuple(markers), words=_chart_words(locale))
    table = tuple((s, format_day(row.completed_dt, locale, tz), v,
                   ", ".join(words.get(s, [])))
                  for s, row, v in zip(sessions, rows, scores, strict=True))
    listing = "; ".join(say(N_("session %(session)s: %(score)s"), locale, session=s,
                            score=f"{v:g}") + (f" ({w})" if w else "")
                        for s, _, v, w in table)
    return ChartView(instrument.id, data,
                     say(N_("%(measure)s alliance by session: %(listing)s."), locale,
                         measure=instrument.short_name, listing=listing), table)


def _heatmaps(library: InstrumentLibrary, rows: list[Administration], clock: EpisodeClock,
              locale: str = "en") -> list[HeatmapView]:
    by_instrument: dict[str, list[Administration]] = {}
    for row in rows:
        if row.respondent == "client":
            by_instrument.setdefault(row.instrument_id, []).append(row)
    out = []
    for instrument_id, administered in sorted(by_instrument.items()):
        try:
            instrument = library.get(instrument_id)
        except KeyError:
            continue
        items = [item for item in instrument.items if item.is_scored and item.options
                 and item.type == "likert"]
        if instrument.role != "outcome" or len(items) < 2:
            continue
        v_min = min(o.value for item in items for o in item.options)
        v_max = max(o.value for item in items for o in item.options)
        labels = tuple(f"{n}. {item.label or item.text or item.id}"
                       for n, item in enumerate(items, start=1))
        values = tuple(tuple(_numeric(row.answers.get(item.id)) for row in administered)
                       for item in items)
        high = v_min + HIGH_FRACTION * (v_max - v_min)
        staying = []
        for label, row_values in zip(labels, values, strict=True):
            answered = [v for v in row_values if v is not None]
            if len(answered) >= HIGH_RUN and all(v >= high for v in answered[-HIGH_RUN:]):
                staying.append(label)
        sessions = clock.series(administered)
        description = say(N_("%(measure)s answers by item and session, %(low)s to %(high)s."),
                          locale, measure=instrument.short_name, low=f"{v_min:g}",
                          high=f"{v_max:g}") + " "
        description += (say(N_("Items high at each of the last three sessions: %(items)s."),
                            locale, items="; ".join(staying)) if staying
                        else say(N_("No item has stayed high over the last three sessions."),
                                 locale))
        out.append(HeatmapView(instrument_id, HeatmapData(
            title=say(N_("%(measure)s: items by session"), locale,
                      measure=instrument.short_name), item_labels=labels,
            sessions=sessions, values=values, v_min=v_min, v_max=v_max), tuple(staying),
            description))
    return out


def _numeric(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def administration_notes(library: InstrumentLibrary, row: Administration) -> list[Message]:
    """What must be said beside the administration's score (:mod:`outcome.core.
    score_notes`), from its stored scores; none when the clinic no longer defines the
    instrument. The one source for the client page, the PDF and the API."""
    for version in (row.instrument_version, None):
        try:
            instrument = library.get(row.instrument_id, version)
        except KeyError:
            continue
        return score_notes(instrument, row.scores)
    return []


def _notes(library: InstrumentLibrary, row: Administration, locale: str) -> tuple[str, ...]:
    return tuple(render(m.id, m.as_json()["params"], locale)
                 for m in administration_notes(library, row))


def _score_notes(library: InstrumentLibrary, rows: list[Administration],
                 numbers: dict[int, int], tz: zoneinfo.ZoneInfo, locale: str
                 ) -> list[ScoreNoteView]:
    """The notes of the client's current administrations, newest first."""
    out = []
    for row in reversed(rows):
        if row.respondent != "client":
            continue
        for text in _notes(library, row, locale):
            out.append(ScoreNoteView(
                _short(library, row.instrument_id), row.completed_dt.astimezone(tz),
                numbers.get(row.appointment_id) if row.appointment_id else None,
                (row.scores or {}).get("primary") if row.is_valid else None, text))
    return out


def _administration(library: InstrumentLibrary, row: Administration,
                    number: int | None, tz: zoneinfo.ZoneInfo,
                    is_superseded: bool, locale: str = "en") -> AdministrationView:
    try:
        instrument: Instrument | None = library.get(row.instrument_id)
    except KeyError:
        instrument = None
    critical = set((row.scores or {}).get("critical_items", []))
    answers = []
    if instrument is not None:
        for n, item in enumerate(instrument.items, start=1):
            if item.id in row.answers:
                answer = _answer_text(instrument, item.id, row.answers[item.id])
            elif item.is_scored:
                answer = say(N_("not answered"), locale)
            else:
                continue
            answers.append(AnswerView(f"{n}. {item.label}" if item.label else str(n),
                                      item.text or "", answer, item.id in critical))
    return AdministrationView(
        id=row.id,
        instrument=instrument.short_name if instrument else row.instrument_id,
        completed=row.completed_dt.astimezone(tz),
        session=number,
        respondent=row.respondent, score=(row.scores or {}).get("primary"),
        is_valid=row.is_valid,
        # A mean score (goals: one to three of them) over the items answered is not
        # prorated in the sense that matters to a reader: a sum scaled up.
        is_prorated=row.is_prorated and (instrument is None
                                         or instrument.scoring_method == "sum"),
        is_superseded=is_superseded, language=row.language,
        appointment_id=row.appointment_id,
        answers=tuple(answers), notes=_notes(library, row, locale),
        is_prorated_note=row.is_valid and bool((row.scores or {}).get("prorated"))
        and bool((row.scores or {}).get("critical_unanswered")),
        severity=band_name(severity(instrument, (row.scores or {}).get("primary")), locale)
        if instrument is not None and row.is_valid else None)
