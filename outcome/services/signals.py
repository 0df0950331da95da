"""Episode signals: computed from stored answers, stored, and turned into alerts.

One code path serves a single submission (:func:`update_episode_signals`), a full
rebuild (:func:`recompute_signals`) and, through :mod:`outcome.services.fits`, the
nightly refit. Clinic statistics the rules need (the intake SD for instruments whose
reliable change comes from a reliability, the between-client alliance SD) are taken from
the latest fit, so a rebuild gives the same result as the submissions did one by one.

Alerts are raised and resolved here, as the signals are stored (acknowledging one is
:mod:`outcome.services.alerts`): at most one open alert per kind and episode, never
duplicates.

- ``critical_item`` and ``critical_unanswered`` (any administration with a critical
  answer, or a critical item left blank), and ``unrepaired_rupture``, are *events*: each
  triggering administration is alerted once; a new trigger while an alert of the kind is
  open is added to that alert. They end when a clinician acknowledges them.
- ``not_on_track`` (red) and ``rupture`` (a rupture waiting for repair) are
  *conditions*: raised while true, resolved automatically when no longer true.

A series' session numbers are the episode's treatment sessions
(:mod:`outcome.services.sessions`: the appointment's number among sessions held, so a
missed appointment does not advance t), not a count of forms; the intake is the first
valid score. Invalid administrations (too many items unanswered) take no place in a
series, but their critical answers still alert.
Services flush; the caller commits.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import numpy as np
from sqlalchemy import Integer
from sqlalchemy import Select
from sqlalchemy import bindparam
from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.core.alliance import OPEN
from outcome.core.alliance import REPAIRED
from outcome.core.alliance import RUPTURE
from outcome.core.alliance import UNREPAIRED
from outcome.core.episode_change import DEPRESSION_MEASURE
from outcome.core.episode_change import MeasureReading
from outcome.core.episode_change import episode_change
from outcome.core.episode_change import primary_measure
from outcome.core.instruments import Instrument
from outcome.core.messages import Message
from outcome.core.signals import Explanation
from outcome.core.signals import alliance_settings
from outcome.core.signals import alliance_signals
from outcome.core.signals import explain_critical
from outcome.core.signals import explain_unanswered_critical
from outcome.core.signals import first_and_last
from outcome.core.signals import outcome_signals
from outcome.core.trajectory import ColourSettings
from outcome.core.trajectory import TrajectoryModel
from outcome.models import ActionPlan
from outcome.models import Administration
from outcome.models import Alert
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import EpisodeSignal
from outcome.models import QuestionnaireLink
from outcome.models import TrajectoryFit
from outcome.services import clinic_settings
from outcome.services.sessions import SessionClock
from outcome.services.sessions import session_clock
from questionnaires.loader import InstrumentLibrary

EVENT_KINDS = ("critical_item", "critical_unanswered", "unrepaired_rupture")
CONDITION_KINDS = ("not_on_track", "rupture")
WORST_FIRST = ("red", "yellow", "green", "white", "grey")
# Scores kept with each episode's signals, so the caseload draws sparklines without
# reading administrations.
SERIES_KEPT = 20
COLOUR_URGENCY = {"red": 1, "yellow": 4, "green": 5, "white": 6, "grey": 7}
BATCH = 2000


@dataclass(frozen=True)
class DesiredAlert:
    kind: str
    trigger: int | None
    explanation: Explanation


@dataclass
class EpisodeReading:
    """What the engine reads for one episode, before it is stored."""

    colour: str = "grey"
    change_category: str | None = None
    ruptures: int = 0
    repaired: int = 0
    unrepaired: int = 0
    state: dict[str, Any] = field(default_factory=dict)
    alerts: list[DesiredAlert] = field(default_factory=list)


@dataclass(frozen=True)
class ClinicContext:
    """Settings and fitted statistics of one clinic, read once per batch."""

    clinic_id: int
    colours: ColourSettings
    repair_window: int
    discrepancy_points: float
    models: dict[str, TrajectoryModel]
    intake_sd: dict[str, tuple[float, int]]
    alliance_sd: dict[str, float]
    primary_measure: str = DEPRESSION_MEASURE
    paired_rules: bool = False


def clinic_context(session: Session, clinic: Clinic) -> ClinicContext:
    """The clinic's colour and rupture settings and its latest fitted statistics."""
    settings = clinic_settings.current(clinic)
    colours = ColourSettings(
        green_max=float(settings["colour_green_max"]),
        yellow_max=float(settings["colour_yellow_max"]),
        min_episodes=int(settings["model_min_episodes"]),
        rational_from_session=int(settings["rational_from_session"]),
        rational_fraction=float(settings["rational_fraction"]),
        rational_red_session=int(settings["rational_red_session"]))
    models: dict[str, TrajectoryModel] = {}
    intake_sd: dict[str, tuple[float, int]] = {}
    alliance_sd: dict[str, float] = {}
    fits = session.scalars(_statements().fits, {"clinic_id": clinic.id}).all()
    for fit in fits:  # later fits overwrite earlier ones
        params = fit.parameters
        if "beta0" in params:
            models[fit.instrument_id] = TrajectoryModel.from_json(params, source=fit.source)
        elif fit.instrument_id in models:
            del models[fit.instrument_id]
        if params.get("intake_sd"):
            intake_sd[fit.instrument_id] = (float(params["intake_sd"]), int(params["n_intake"]))
        if params.get("between_client_sd") is not None:
            alliance_sd[fit.instrument_id] = float(params["between_client_sd"])
    return ClinicContext(clinic.id, colours, int(settings["repair_window"]),
                         float(settings["discrepancy_points"]), models, intake_sd, alliance_sd,
                         str(settings["primary_measure"]), bool(settings["paired_rules"]))


@dataclass
class _Series:
    """One instrument's administrations for a batch of episodes, as padded matrices."""

    instrument: Instrument
    rows: dict[int, int]
    scores: np.ndarray
    sessions: np.ndarray
    ids: np.ndarray
    appointments: np.ndarray
    administrations: dict[int, list[Administration]]


def load_series(session: Session, episode_ids: list[int], library: InstrumentLibrary,
                respondent: str = "client", clock: SessionClock | None = None
                ) -> dict[str, _Series]:
    """Each instrument's valid primary scores of ``episode_ids`` by ``respondent``, as
    padded matrices (NaN where an episode has fewer sessions), with each score's
    treatment session number; superseded administrations and instruments no longer in
    the library are left out. ``clock``: the episodes' appointments, when already read."""
    return _load_series_of(session, episode_ids, library, (respondent,), clock)[respondent]


def _load_series_of(session: Session, episode_ids: list[int], library: InstrumentLibrary,
                    respondents: tuple[str, ...], clock: SessionClock | None = None
                    ) -> dict[str, dict[str, _Series]]:
    """:func:`load_series` for each of ``respondents``, from one statement (issue 21: a
    submission read the administrations and the support links once per respondent)."""
    # A support check's answers (issue 19) are read by the check, not as sessions: an
    # alliance rating given between sessions must not start or repair a rupture. Those
    # of a measure with critical items stay among the administrations (never in a
    # series), so a critical answer among them still alerts.
    found = session.execute(_statements().administrations,
                            {"episode_ids": list(episode_ids),
                             "respondents": list(respondents)}).all()
    support_links = {row.link_id for row, purpose in found if purpose == "support"}
    clock = clock or session_clock(session, episode_ids)
    return {respondent: _series_of([row for row, _ in found if row.respondent == respondent],
                                   support_links, library, clock)
            for respondent in respondents}


def _series_of(rows: list[Administration], support_links: set[int | None],
               library: InstrumentLibrary, clock: SessionClock) -> dict[str, _Series]:
    grouped: dict[str, dict[int, list[Administration]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row.link_id in support_links and not _has_critical_items(library, row.instrument_id):
            continue
        grouped[row.instrument_id][row.episode_id].append(row)
    out = {}
    for instrument_id, by_episode in grouped.items():
        try:
            instrument = library.get(instrument_id)
        except KeyError:
            continue  # a definition the clinic removed: its answers stay stored, unread
        valid = {e: [a for a in rows if a.is_valid and (a.scores or {}).get("primary")
                     is not None and a.link_id not in support_links]
                 for e, rows in by_episode.items()}
        width = max(1, max(len(v) for v in valid.values()))
        order = sorted(by_episode)
        scores = np.full((len(order), width), np.nan)
        ids = np.full((len(order), width), -1, dtype=np.int64)
        appointments = np.full((len(order), width), -1, dtype=np.int64)
        # Padding continues the count, so a padded cell never looks like session 1.
        sessions = np.tile(np.arange(1, width + 1), (len(order), 1))
        for i, episode_id in enumerate(order):
            administered = valid[episode_id]
            numbers = clock.session_numbers(
                episode_id, [(a.appointment_id, a.completed_dt) for a in administered])
            for j, adm in enumerate(administered):
                scores[i, j] = adm.scores["primary"]
                ids[i, j] = adm.id
                appointments[i, j] = adm.appointment_id if adm.appointment_id else -1
                sessions[i, j] = numbers[j]
        out[instrument_id] = _Series(instrument, {e: i for i, e in enumerate(order)}, scores,
                                     sessions, ids, appointments,
                                     {e: by_episode[e] for e in order})
    return out


def _has_critical_items(library: InstrumentLibrary, instrument_id: str) -> bool:
    try:
        return bool(library.get(instrument_id).critical_items)
    except KeyError:
        return False


def read_episodes(session: Session, context: ClinicContext, episode_ids: list[int],
                  library: InstrumentLibrary, episodes: dict[int, Episode] | None = None
                  ) -> dict[int, EpisodeReading]:
    """Compute every signal for ``episode_ids`` (one clinic) in vectorised passes.
    ``episodes``: their rows, when the caller has them (else their fields are read)."""
    readings = {episode_id: EpisodeReading(state={"outcomes": {}, "alliance": {},
                                                  "critical": []})
                for episode_id in episode_ids}
    both = _load_series_of(session, episode_ids, library, ("client", "therapist"))
    series, therapist = both["client"], both["therapist"]
    worst: dict[int, tuple[int, str]] = {}
    measured: dict[int, dict[str, MeasureReading]] = defaultdict(dict)
    for instrument_id, s in sorted(series.items()):
        instrument = s.instrument
        if instrument.role == "outcome":
            sd = context.intake_sd.get(instrument_id)
            signals = outcome_signals(instrument, s.scores, s.sessions,
                                      model=context.models.get(instrument_id),
                                      settings=context.colours,
                                      intake_sd=sd[0] if sd else None,
                                      n_intake=sd[1] if sd else None)
            for episode_id, i in s.rows.items():
                progress = signals.explain_progress(i)
                change = signals.explain_change(i)
                reading = readings[episode_id]
                reading.state["outcomes"][instrument_id] = {
                    "latest": _num(signals.latest[i]), "session": int(signals.session[i]),
                    "series": _series(s.scores[i]),
                    "progress": progress.as_json(),
                    "change": change.as_json() if change else None}
                rank = WORST_FIRST.index(progress.level)
                if episode_id not in worst or rank < worst[episode_id][0]:
                    worst[episode_id] = (rank, instrument_id)
                    reading.colour = progress.level
                measured[episode_id][instrument_id] = _measure_reading(
                    instrument, signals.intake[i], signals.latest[i], int(signals.count[i]),
                    change.level if change else None)
                if progress.level == "red":
                    reading.alerts.append(DesiredAlert("not_on_track", None, progress))
        elif instrument.role == "alliance":
            settings = alliance_settings(
                instrument, repair_window=context.repair_window,
                between_client_sd=context.alliance_sd.get(instrument_id),
                discrepancy_points=context.discrepancy_points)
            therapist_scores = _aligned(s, therapist.get(instrument_id))
            alliance = alliance_signals(instrument, s.scores, s.sessions, settings=settings,
                                        therapist_scores=therapist_scores)
            result = alliance.result
            for episode_id, i in s.rows.items():
                reading = readings[episode_id]
                explanations = alliance.explain(i)
                for explanation, col in zip(explanations, np.flatnonzero(result.start[i]),
                                            strict=True):
                    # Only a rupture alerts; a possible rupture is shown, not alerted
                    # (domain.md section 5).
                    if result.kind[i, col] != RUPTURE:
                        continue
                    trigger = int(s.ids[i, col])
                    if result.status[i, col] == OPEN:
                        reading.alerts.append(DesiredAlert("rupture", trigger, explanation))
                    elif result.status[i, col] == UNREPAIRED:
                        reading.alerts.append(DesiredAlert("unrepaired_rupture", trigger,
                                                           explanation))
                discrepancies = [int(s.sessions[i, c]) for c in
                                 np.flatnonzero(result.discrepancy[i])]
                reading.ruptures += int(result.ruptures[i])
                reading.repaired += int(result.count(REPAIRED)[i])
                reading.unrepaired += int(result.count(UNREPAIRED)[i])
                latest = first_and_last(s.scores[i:i + 1], s.sessions[i:i + 1])[1][0]
                reading.state["alliance"][instrument_id] = {
                    "latest": _num(latest), "series": _series(s.scores[i]),
                    "ruptures": [e.as_json() for e in explanations],
                    "possible_ruptures": int(result.possible_ruptures[i]),
                    "discrepancy_sessions": discrepancies}
        if instrument.critical_items:
            # Every critical answer is an event, not only the latest: a rebuild must not
            # lose one that nobody has acknowledged yet.
            for episode_id in s.rows:
                reading = readings[episode_id]
                for adm in s.administrations[episode_id]:
                    scores = adm.scores or {}
                    hits = [explain_critical(instrument, item_id, float(adm.answers[item_id]))
                            for item_id in scores.get("critical_items", [])]
                    if hits:
                        reading.alerts.append(DesiredAlert("critical_item", adm.id,
                                                           _combined(hits)))
                    for explanation in hits:
                        reading.state["critical"].append(
                            {**explanation.as_json(), "administration": adm.id,
                             "completed": adm.completed_dt.isoformat()})
                    for item_id in scores.get("critical_unanswered", []):
                        explanation = explain_unanswered_critical(instrument, item_id)
                        reading.alerts.append(DesiredAlert("critical_unanswered", adm.id,
                                                           explanation))
                        reading.state["critical"].append(
                            {**explanation.as_json(), "administration": adm.id,
                             "completed": adm.completed_dt.isoformat()})
    _episode_changes(session, context, readings, measured, library, episodes)
    return readings


def _measure_reading(instrument: Instrument, first: float, last: float, count: int,
                     category: str | None) -> MeasureReading:
    cutoff = instrument.cutoff
    rule = instrument.reliable_change
    return MeasureReading(
        instrument.id, instrument.short_name, float(first), float(last), count, category,
        caseness=cutoff.value if cutoff is not None and cutoff.clinical_side == ">=" else None,
        reliable_points=rule.points if rule is not None else None)


def _episode_changes(session: Session, context: ClinicContext,
                     readings: dict[int, EpisodeReading],
                     measured: dict[int, dict[str, MeasureReading]],
                     library: InstrumentLibrary,
                     episodes: dict[int, Episode] | None = None) -> None:
    """Each episode's change category: its primary measure's, or the paired result
    (:mod:`outcome.core.episode_change`), with the measure (or pair) in state["change"]."""
    installed = frozenset(i.id for i in library)
    names = {i.id: i.short_name for i in library}
    if episodes is not None and set(episodes) >= set(readings):
        fields: Any = [(e, episodes[e].primary_instrument_id, episodes[e].problem_descriptor)
                       for e in readings]
    else:
        fields = session.execute(
            select(Episode.id, Episode.primary_instrument_id, Episode.problem_descriptor)
            .where(Episode.id.in_(list(readings))))
    for episode_id, primary_id, descriptor in fields:
        result = episode_change(primary_measure(primary_id, context.primary_measure),
                                measured.get(episode_id, {}),
                                paired_rules=context.paired_rules, descriptor=descriptor,
                                installed=installed)
        readings[episode_id].change_category = result.category
        readings[episode_id].state["change"] = result.as_json(names)


def _combined(explanations: list[Explanation]) -> Explanation:
    """One alert for several critical answers in the same form, every message kept."""
    if len(explanations) == 1:
        return explanations[0]
    level = "urgent" if any(e.level == "urgent" for e in explanations) else "high"
    return Explanation("critical", level, "critical.answer",
                       Message("critical.answers", {"answers": [e.message for e in explanations]}),
                       {"items": [e.numbers for e in explanations]})


def _aligned(client: _Series, therapist: _Series | None) -> np.ndarray | None:
    """Therapist ratings placed beside the client's ratings of the same appointment."""
    if therapist is None:
        return None
    rated = {(episode_id, int(therapist.appointments[i, j])): therapist.scores[i, j]
             for episode_id, i in therapist.rows.items()
             for j in range(therapist.scores.shape[1]) if therapist.appointments[i, j] >= 0}
    out = np.full(client.scores.shape, np.nan)
    for episode_id, i in client.rows.items():
        for j in range(client.scores.shape[1]):
            key = (episode_id, int(client.appointments[i, j]))
            if key[1] >= 0 and key in rated:
                out[i, j] = rated[key]
    return out


def _series(row: np.ndarray, last: int = SERIES_KEPT) -> list[float]:
    """The latest valid scores of one episode, oldest first (for caseload sparklines)."""
    values = row[np.isfinite(row)]
    return [float(v) for v in values[-last:]]


def _num(value: float) -> float | None:
    return None if value is None or np.isnan(value) else float(value)


def _store(session: Session, episodes: dict[int, Episode],
           readings: dict[int, EpisodeReading], now: dt.datetime
           ) -> dict[int, EpisodeSignal]:
    statements = _statements()
    ids = {"episode_ids": list(readings)}
    existing = {row.episode_id: row for row in session.scalars(statements.signals, ids)}
    alerts_by_episode: dict[int, list[Alert]] = defaultdict(list)
    for alert in session.scalars(statements.alerts, ids):
        alerts_by_episode[alert.episode_id].append(alert)
    holds = plan_holds(session, list(readings))
    stored: dict[int, EpisodeSignal] = {}
    for episode_id, reading in readings.items():
        episode = episodes[episode_id]
        alerts = alerts_by_episode[episode_id]
        desired = reading.alerts
        if episode.closed_on is not None:
            # An ended episode still alerts a critical answer (follow-up measures); its
            # progress and rupture conditions are over and resolve.
            desired = [d for d in desired if d.kind in ("critical_item", "critical_unanswered")]
        _sync_alerts(session, episode_id, desired, alerts, now, hold=holds.get(episode_id))
        open_kinds = {a.kind for a in alerts if a.status == "open"}
        if open_kinds & {"critical_item", "critical_unanswered"}:
            urgency = 0
        elif reading.colour == "red":
            urgency = 1
        elif "unrepaired_rupture" in open_kinds:
            urgency = 2
        elif "rupture" in open_kinds:
            urgency = 3
        else:
            urgency = COLOUR_URGENCY[reading.colour]
        row = existing.get(episode_id)
        if row is None:
            row = EpisodeSignal(episode_id=episode_id)
            session.add(row)
        row.colour = reading.colour
        row.urgency = urgency
        row.change_category = reading.change_category
        row.ruptures, row.ruptures_repaired = reading.ruptures, reading.repaired
        row.ruptures_unrepaired = reading.unrepaired
        row.state = reading.state
        row.computed_dt = now
        stored[episode_id] = row
    session.flush()
    return stored


@dataclass(frozen=True)
class PlanHold:
    """What an episode's open action plan (issue 19) answers, so it is not alerted again
    while the plan is open: ``red`` (the plan was made for red: the alerts it or a plan
    it revised resolved include a not-on-track one, or one of their baseline colours
    was red) and ``ruptures`` (the administrations that started the ruptures they
    resolved). A revision answers what the plan it replaces answered."""

    red: bool
    ruptures: frozenset[int]

    def holds(self, desired: DesiredAlert) -> bool:
        """Whether ``desired`` (a condition) is the one the plan answers."""
        if desired.kind == "not_on_track":
            return self.red
        return desired.trigger is not None and desired.trigger in self.ruptures


def plan_holds(session: Session, episode_ids: list[int]) -> dict[int, PlanHold]:
    """Each episode's open plan's hold (:class:`PlanHold`), through the plans it revised
    (a revision resolves nothing itself: the first plan did). Episodes without an open
    plan are absent. Two queries and one per plan chain's alerts."""
    plans = session.scalars(_statements().plans, {"episode_ids": list(episode_ids)}).all()
    by_id = {p.id: p for p in plans}
    out: dict[int, PlanHold] = {}
    chains: dict[int, list[int]] = {}
    for plan in plans:
        if plan.status != "open":
            continue
        chain: list[int] = []
        current: ActionPlan | None = plan
        while current is not None and current.id not in chain:
            chain.append(current.id)
            current = by_id.get(current.revised_from_id) if current.revised_from_id else None
        chains[plan.episode_id] = chain
    if not chains:
        return out
    resolved: dict[int, list[Alert]] = defaultdict(list)
    for alert in session.scalars(select(Alert).where(
            Alert.plan_id.in_([i for chain in chains.values() for i in chain]))):
        resolved[alert.episode_id].append(alert)
    for episode_id, chain in chains.items():
        red = any((by_id[i].baseline or {}).get("colour") == "red" for i in chain) or any(
            a.kind == "not_on_track" for a in resolved[episode_id])
        ruptures = frozenset(
            int(t) for a in resolved[episode_id] if a.kind in ("rupture", "unrepaired_rupture")
            for t in [*(a.detail or {}).get("triggers", []), a.administration_id]
            if t is not None)
        out[episode_id] = PlanHold(red, ruptures)
    return out


def _sync_alerts(session: Session, episode_id: int, desired: list[DesiredAlert],
                 alerts: list[Alert], now: dt.datetime, *, hold: PlanHold | None = None
                 ) -> None:
    """Raise, add to and resolve the episode's alerts. ``hold``: what the episode's open
    action plan (issue 19) answers (:func:`plan_holds`): that condition raises no new
    alert while the plan is open (its follow-up says whether it worked); closing the
    plan lets a persisting one alert again. A condition the plan did not answer (red
    after a plan made when the client was not red; a rupture that starts after it)
    alerts as always (domain.md sections 4-5), as do events (critical answers, a new
    unrepaired rupture)."""
    for kind in EVENT_KINDS + CONDITION_KINDS:
        wanted = [d for d in desired if d.kind == kind]
        of_kind = [a for a in alerts if a.kind == kind]
        open_alert = next((a for a in of_kind if a.status == "open"), None)
        if kind in CONDITION_KINDS:
            if wanted:
                latest = wanted[-1]
                fresh = [d for d in wanted if hold is None or not hold.holds(d)]
                if open_alert is not None:
                    open_alert.detail = _detail(latest, open_alert.detail.get("triggers", []))
                elif fresh and not any(a.status == "acknowledged" for a in of_kind):
                    alerts.append(_raise(session, episode_id, fresh[-1], [], now))
            else:
                for alert in of_kind:
                    if alert.status in ("open", "acknowledged"):
                        alert.status, alert.resolved_dt = "resolved", now
            continue
        covered = {t for a in of_kind for t in a.detail.get("triggers", [])}
        new = [d for d in wanted if d.trigger not in covered]
        if not new:
            continue
        if open_alert is not None:
            triggers = open_alert.detail.get("triggers", []) + [d.trigger for d in new]
            open_alert.detail = _detail(new[-1], triggers)
            open_alert.administration_id = new[-1].trigger
        else:
            alerts.append(_raise(session, episode_id, new[-1], [d.trigger for d in new[:-1]],
                                 now))


def _detail(desired: DesiredAlert, triggers: list[int | None]) -> dict[str, Any]:
    all_triggers = list(dict.fromkeys([*triggers, desired.trigger]))
    return {**desired.explanation.as_json(), "triggers": [t for t in all_triggers
                                                           if t is not None]}


def _raise(session: Session, episode_id: int, desired: DesiredAlert,
           earlier: list[int | None], now: dt.datetime) -> Alert:
    alert = Alert(episode_id=episode_id, kind=desired.kind, status="open",
                  administration_id=desired.trigger, raised_dt=now,
                  detail=_detail(desired, earlier))
    session.add(alert)
    return alert


def lock_episode(session: Session, episode_id: int) -> None:
    """Hold the episode's row lock until the transaction ends, before reading its signals.

    Two transactions for one episode at once (PHQ-9 and GAD-7 posted together, or an
    alert acknowledged as a new answer arrives) would each read without the other's
    work, and the last to commit would overwrite the signals with a score or an open
    alert missing. With the lock the second waits, then reads what the first committed.
    Take it before changing the episode's alerts, so every writer locks in the same order
    (episode, then alerts). PostgreSQL only: SQLite renders no FOR clause, its BEGIN
    IMMEDIATE already serialises writers. NO KEY UPDATE, so inserts that merely refer to
    the episode (a new administration) do not wait for it.
    """
    session.execute(_statements().lock, {"episode_id": episode_id})


@dataclass(frozen=True)
class _Statements:
    """The statements a submission's signal update runs, built once (issue 21: building
    them took about a tenth of a millisecond each, every time); their parameters are
    bound when run (lists of ids as one expanding parameter)."""

    fits: Select
    administrations: Select
    signals: Select
    alerts: Select
    plans: Select
    lock: Select


@functools.cache
def _statements() -> _Statements:
    episode_ids = bindparam("episode_ids", type_=Integer, expanding=True)
    superseded = select(Administration.supersedes_id).where(
        Administration.supersedes_id.is_not(None))
    return _Statements(
        fits=select(TrajectoryFit)
        .where(TrajectoryFit.clinic_id == bindparam("clinic_id", type_=Integer))
        .order_by(TrajectoryFit.fitted_dt, TrajectoryFit.id),
        administrations=select(Administration, QuestionnaireLink.purpose)
        .outerjoin(QuestionnaireLink, QuestionnaireLink.id == Administration.link_id)
        .where(Administration.episode_id.in_(episode_ids),
               Administration.respondent.in_(bindparam("respondents", expanding=True)),
               Administration.id.not_in(superseded))
        .order_by(Administration.episode_id, Administration.completed_dt,
                  Administration.id),
        signals=select(EpisodeSignal).where(EpisodeSignal.episode_id.in_(episode_ids)),
        alerts=select(Alert).where(Alert.episode_id.in_(episode_ids)),
        plans=select(ActionPlan).where(ActionPlan.episode_id.in_(episode_ids)),
        lock=select(Episode.id)
        .where(Episode.id == bindparam("episode_id", type_=Integer))
        .with_for_update(key_share=True))


def update_episode_signals(session: Session, episode: Episode, library: InstrumentLibrary,
                           now: dt.datetime) -> EpisodeSignal:
    """Recompute and store one episode's signals and alerts; flush."""
    if session.get_bind().dialect.name != "sqlite":
        # (SQLite would render no FOR clause: its BEGIN IMMEDIATE already serialises
        # the writers, so the statement is not sent; see lock_episode.)
        lock_episode(session, episode.id)
    clinic = session.get(Clinic, episode.clinic_id)
    assert clinic is not None
    context = clinic_context(session, clinic)
    episodes = {episode.id: episode}
    readings = read_episodes(session, context, [episode.id], library, episodes)
    return _store(session, episodes, readings, now)[episode.id]


def recompute_signals(session: Session, library: InstrumentLibrary, now: dt.datetime,
                      clinic_id: int | None = None) -> int:
    """Rebuild every episode's signals from stored answers; flush. Returns the count."""
    clinics = session.scalars(select(Clinic) if clinic_id is None
                              else select(Clinic).where(Clinic.id == clinic_id)).all()
    total = 0
    for clinic in clinics:
        context = clinic_context(session, clinic)
        episodes = session.scalars(select(Episode).where(Episode.clinic_id == clinic.id)
                                   .order_by(Episode.id)).all()
        for start in range(0, len(episodes), BATCH):
            chunk = {e.id: e for e in episodes[start:start + BATCH]}
            _store(session, chunk, read_episodes(session, context, list(chunk), library, chunk),
                   now)
            total += len(chunk)
    return total


@dataclass(frozen=True)
class ScoreColour:
    """One valid score of an episode's series and the progress colour it had then."""

    administration_id: int
    completed_dt: dt.datetime
    score: float
    session: int
    colour: str


def colour_history(session: Session, episode: Episode, instrument_id: str,
                   library: InstrumentLibrary) -> list[ScoreColour]:
    """The colour each valid score of one outcome series had when it came in, oldest first.

    Each score is read as the engine reads a latest score (:func:`outcome_signals`, with
    the clinic's current settings and fit) on the series up to it, so the colour at score
    k is the one the caseload showed then, given today's expected-recovery curve. Used
    where a past moment must be told truly (issue 19: a plan's baseline in the demo).
    Empty for an instrument without valid scores or not an outcome measure.
    """
    try:
        instrument = library.get(instrument_id)
    except KeyError:
        return []
    if instrument.role != "outcome":
        return []
    series = load_series(session, [episode.id], library).get(instrument_id)
    if series is None:
        return []
    i = series.rows[episode.id]
    count = int(np.isfinite(series.scores[i]).sum())
    if count == 0:
        return []
    context = clinic_context(session, session.get_one(Clinic, episode.clinic_id))
    prefixes = np.full((count, series.scores.shape[1]), np.nan)
    for k in range(count):
        prefixes[k, :k + 1] = series.scores[i, :k + 1]
    sessions = np.tile(series.sessions[i], (count, 1))
    sd = context.intake_sd.get(instrument_id)
    signals = outcome_signals(instrument, prefixes, sessions,
                              model=context.models.get(instrument_id),
                              settings=context.colours, intake_sd=sd[0] if sd else None,
                              n_intake=sd[1] if sd else None)
    rows = {a.id: a for a in series.administrations[episode.id]}
    return [ScoreColour(int(series.ids[i, k]), rows[int(series.ids[i, k])].completed_dt,
                        float(series.scores[i, k]), int(series.sessions[i, k]),
                        signals.explain_progress(k).level) for k in range(count)]
