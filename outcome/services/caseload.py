"""A caseload, ordered by who needs attention first.

Urgency (stored with each episode's signals): unacknowledged critical answer, red,
unrepaired rupture, new rupture, yellow, green, white, nothing to show yet. Rows come
only from the one scoping function. A therapist reads their own clients by name; a
supervisor reads a supervisee's caseload by client code only.

Everything shown comes from the stored signals (including the last scores for the
sparklines and the treatment session of each latest score, the engine's t from
:mod:`outcome.services.sessions`, as on the client page), so the page costs the same with
ten thousand or a million administrations.
A latest score shows its severity band when its instrument has bands ("PHQ-9 16
(moderately severe)").
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import NamedTuple

from sqlalchemy import ColumnElement
from sqlalchemy import Integer
from sqlalchemy import bindparam
from sqlalchemy import func
from sqlalchemy import literal
from sqlalchemy import null
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import union_all
from sqlalchemy.orm import Session

from outcome.core.severity import severity
from outcome.core.signals import rule_based_notice
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
from outcome.services.client_search import like_pattern
from outcome.services.client_search import name_matches
from outcome.services.client_search import name_order
from outcome.services.explanations import band_name
from outcome.services.explanations import render_explanation
from outcome.services.explanations import split_basis
from outcome.services.explanations import without_answers
from questionnaires.loader import InstrumentLibrary

NOTHING_YET = 7
COLOURS = ("red", "yellow", "green", "white", "grey")
# Which clients a caseload lists (issue 17): those with an open episode, those whose last
# episode has ended (past clients, :func:`past_clients`), or both.
EPISODE_FILTERS = ("current", "ended", "all")
COUNTED = SESSION_STATUSES  # statuses that take a session number: one list, in models
# An alliance score counts as rising or falling when it differs from the mean of the
# previous three by at least this share of the scale (the rupture SD floor, 2.5 %).
TREND_FRACTION = 0.025

# The reasons a client needs attention, most urgent first: the one order for every row
# (and the same as the stored urgency, outcome.services.signals._store). A red row's
# reason is a reliable deterioration before any other "not on track"; a kind added later
# comes last until it is placed here.
REASON_ORDER = ("critical_item", "critical_unanswered", "deterioration", "not_on_track",
                "unrepaired_rupture", "rupture")
DETERIORATION_RULE = "progress.reliable_deterioration_since_intake"
# Columns a caseload sorts by (``?sort=``); "urgency" is the default order.
SORT_COLUMNS = ("name", "colour", "next", "last", "alert")


def reason_rank(kind: str, detail: dict[str, Any] | None) -> int:
    """Where an open alert of ``kind`` (with its stored ``detail``) stands in
    :data:`REASON_ORDER`; unknown kinds after every known one."""
    if kind == "not_on_track" and (detail or {}).get("rule") == DETERIORATION_RULE:
        kind = "deterioration"
    return REASON_ORDER.index(kind) if kind in REASON_ORDER else len(REASON_ORDER)


class Reason(NamedTuple):
    """An open alert as a row shows it: its kind, its words and how long it has been
    open, in whole days (None when the caseload was read without a ``now``)."""

    kind: str
    text: str
    days: int | None = None


@dataclass(frozen=True)
class CaseloadSort:
    """The order of a caseload: "urgency" (most urgent first, the default) or one of
    :data:`SORT_COLUMNS`. Clients without the value sorted on (no next appointment, no
    answers, no open alert) come last in either direction; ties keep the urgency order."""

    column: str = "urgency"
    descending: bool = False


@dataclass(frozen=True)
class CaseloadFilter:
    """What to show: colours (empty = all), only clients with open alerts, a search text.

    The search matches the client code, and the name only for the client's own
    therapist (a supervisor cannot search by a name they may not see).
    """

    colours: tuple[str, ...] = ()
    needs_attention: bool = False
    search: str = ""
    episodes: str = "current"  # one of EPISODE_FILTERS

    @property
    def is_active(self) -> bool:
        return bool(self.colours or self.needs_attention or self.search
                    or self.episodes != "current")

    @property
    def shows_current(self) -> bool:
        return self.episodes in ("current", "all")

    @property
    def shows_ended(self) -> bool:
        return self.episodes in ("ended", "all")


@dataclass(frozen=True)
class Measure:
    """One measure's latest score, its change category and its recent scores."""

    instrument_id: str
    latest: float | None
    session: int
    change: str | None
    series: tuple[float, ...]
    trend: str | None = None  # alliance only: rising, falling or steady
    # Alliance only: the session of a possible rupture (shown, not alerted) that is the
    # latest rupture signal and not yet back to the usual level.
    possible_rupture: int | None = None
    points: str = ""  # the sparkline's SVG polyline points, on the instrument's scale
    severity: str | None = None  # the latest score's band in words ("moderately severe")
    band_range: str = ""  # that band's range ("15-19", with an en dash)

    @property
    def series_text(self) -> str:
        """The recent scores as words for a sparkline's text alternative ("16, 12, 9")."""
        return ", ".join(f"{v:g}" for v in self.series)


@dataclass(frozen=True)
class CaseloadRow:
    code: str
    name: str | None
    colour: str
    urgency: int
    change_category: str | None
    session: int
    latest: tuple[tuple[str, float | None, int], ...]
    # Open alerts, the most urgent reason first (REASON_ORDER).
    alerts: tuple[Reason, ...]
    progress_text: str
    outcomes: tuple[Measure, ...] = field(default=())
    alliance: tuple[Measure, ...] = field(default=())
    oldest_alert: dt.datetime | None = None
    # The measure (or pair) change_category belongs to, in words: "PHQ-9",
    # "PHQ-9 + GAD-7, NHS Talking Therapies" (domain.md section 3).
    change_measure: str = ""
    # Measures whose colour comes from the rational rules: (instrument, episodes the
    # clinic has, episodes needed), said once above the list (rule_based_notices).
    rule_based: tuple[tuple[str, int, int], ...] = ()
    # The earliest scheduled appointment from now on, and the latest answers (issue 17).
    next_appointment: dt.datetime | None = None
    last_answered: dt.datetime | None = None
    # The statistical basis of the row's explanations, said once above a list.
    basis: tuple[str, ...] = ()

    @property
    def reason(self) -> Reason | None:
        """The most urgent reason this client needs attention (None without an alert)."""
        return self.alerts[0] if self.alerts else None

    @property
    def alert_days(self) -> int | None:
        """Days the oldest open alert has been open."""
        days = [r.days for r in self.alerts if r.days is not None]
        return max(days) if days else None


def alliance_trend(series: list[float] | tuple[float, ...], scale: tuple[float, float]
                   ) -> str | None:
    """"rising", "falling" or "steady": the latest score against the previous three's mean.

    The threshold is 2.5 % of the scale (e.g. 1 point on the 0-40 SRS). None with fewer
    than two scores.
    """
    if len(series) < 2:
        return None
    previous = series[-4:-1]
    mean = sum(previous) / len(previous)
    threshold = TREND_FRACTION * (scale[1] - scale[0])
    delta = series[-1] - mean
    if delta >= threshold:
        return "rising"
    if delta <= -threshold:
        return "falling"
    return "steady"


def latest_possible_rupture(ruptures: list[dict]) -> int | None:
    """The session of the latest rupture signal if it is a possible rupture not repaired.

    ``ruptures`` are the stored explanations of one alliance measure, oldest first
    (:meth:`outcome.core.signals.AllianceSignals.explain`).
    """
    if not ruptures:
        return None
    latest = ruptures[-1]
    numbers = latest.get("numbers", {})
    if latest.get("level") == "possible" and numbers.get("status") != "repaired":
        return int(numbers["session"])
    return None


def alert_age_days(raised: dt.datetime, now: dt.datetime, tz: dt.tzinfo) -> int:
    """How long an alert raised at ``raised`` has been open at ``now``, in whole calendar
    days of the clinic (``tz``): "open since today" means today there, and an answer given
    last evening is a day old the next morning."""
    return (now.astimezone(tz).date() - raised.astimezone(tz).date()).days


def open_alert_reasons(session: Session, episode_ids: list[int], tz: dt.tzinfo, *,
                       now: dt.datetime | None, named: bool = True, locale: str = "en",
                       library: InstrumentLibrary | None = None
                       ) -> tuple[dict[int, list[tuple[int, dt.datetime, Reason]]],
                                  dict[int, list[str]]]:
    """The open alerts of ``episode_ids`` (one query), oldest first per episode, each as
    (:func:`reason_rank`, raised, :class:`Reason` with its age in the clinic's days at
    ``now``); and the statistical basis of their words, said once above a list.

    Only the client's own therapist (``named``) reads a critical answer; anyone else reads
    that one was given, its item and its urgency (issue 16, finding 14).
    """
    alerts: dict[int, list[tuple[int, dt.datetime, Reason]]] = defaultdict(list)
    basis: dict[int, list[str]] = defaultdict(list)
    if not episode_ids:
        return alerts, basis
    for episode_id, kind, detail, raised in session.execute(
            select(Alert.episode_id, Alert.kind, Alert.detail, Alert.raised_dt)
            .where(Alert.episode_id.in_(episode_ids), Alert.status == "open")
            .order_by(Alert.raised_dt, Alert.id)):
        shown, said_once = split_basis(detail if named else without_answers(detail, library))
        if said_once is not None:
            basis[episode_id].append(render_explanation(said_once, locale))
        days = alert_age_days(raised, now, tz) if now is not None else None
        alerts[episode_id].append((reason_rank(kind, detail), raised,
                                   Reason(kind, render_explanation(shown, locale), days)))
    return alerts, basis


def colour_reason(state: dict, colour: str | None, locale: str = "en") -> tuple[str, str]:
    """Why an episode has its colour: the stored progress explanation of the (first)
    outcome measure whose level is the episode's colour, without its statistical basis;
    and that basis ("" for none), said once above a list. ("", "") without a colour."""
    outcomes = (state or {}).get("outcomes", {})
    shown, said_once = next((split_basis(data["progress"]) for data in outcomes.values()
                             if colour and data["progress"]["level"] == colour),
                            (None, None))
    return (render_explanation(shown, locale),
            render_explanation(said_once, locale) if said_once is not None else "")


def caseload(session: Session, viewer: User, *, therapist_id: int | None = None,
             filters: CaseloadFilter | None = None, sort: CaseloadSort | None = None,
             scales: dict[str, tuple[float, float]] | None = None,
             now: dt.datetime | None = None, locale: str = "en",
             library: InstrumentLibrary | None = None) -> list[CaseloadRow]:
    """Open episodes of one therapist's clients, most urgent first, then by name or code.

    ``therapist_id`` defaults to the viewer (their own caseload); a supervisor passes a
    supervisee's id and gets codes only. ``scales`` (instrument id to score range) turns
    on the alliance trend; ``now`` counts the sessions held so far. Alert and progress
    explanations are rendered in ``locale`` (the reader's language). With ``library``,
    each latest score carries its severity band. ``sort`` orders the rows by a column
    (:class:`CaseloadSort`); each row's reasons come most urgent first whatever the
    order, with the statistical basis of a red row's words split out (``basis``).
    """
    filters = filters or CaseloadFilter()
    therapist_id = viewer.id if therapist_id is None else therapist_id
    named = therapist_id == viewer.id and viewer.is_therapist
    visible = visible_clients(viewer).where(Client.therapist_id == therapist_id).subquery()
    # An open episode's therapist is the client's (a transfer moves both); saying so
    # lets PostgreSQL use the episodes' therapist index instead of scanning them all.
    query = (select(Client.code, Client.name, Episode.id, EpisodeSignal)
             .join(visible, Client.id == visible.c.id)
             .join(Episode, (Episode.client_id == Client.id) & Episode.closed_on.is_(None)
                   & (Episode.therapist_id == therapist_id))
             .outerjoin(EpisodeSignal, EpisodeSignal.episode_id == Episode.id))
    if filters.colours:
        wanted = [c for c in filters.colours if c in COLOURS]
        colour = func.coalesce(EpisodeSignal.colour, "grey")
        query = query.where(colour.in_(wanted))
    if filters.needs_attention:
        query = query.where(Episode.id.in_(select(Alert.episode_id)
                                           .where(Alert.status == "open")))
    text = filters.search.strip()
    if text:
        matches: list[ColumnElement[bool]] = [
            func.lower(Client.code).like(like_pattern(text.lower()), escape="\\")]
        if named:
            matches.append(name_matches(text))
        query = query.where(or_(*matches))
    urgency = func.coalesce(EpisodeSignal.urgency, NOTHING_YET)
    found = list(session.execute(query.add_columns(urgency).order_by(urgency, Client.code)))
    if named:  # by name within an urgency, in Python: the name may be encrypted at rest
        found.sort(key=lambda r: (r[4], name_order(r[1])))
    rows = [tuple(r[:4]) for r in found]
    episode_ids = [r[2] for r in rows]
    clinic = session.get(Clinic, viewer.clinic_id)
    tz = zoneinfo.ZoneInfo(clinic.timezone if clinic is not None else "UTC")
    alerts, basis = open_alert_reasons(session, episode_ids, tz, now=now, named=named,
                                       locale=locale, library=library)
    oldest = {e: min(raised for _, raised, _ in found) for e, found in alerts.items()}
    upcoming: dict[int, dt.datetime] = {}
    answered: dict[int, dt.datetime] = {}
    if episode_ids:
        if now is not None:
            upcoming = dict(session.execute(
                select(Appointment.episode_id, func.min(Appointment.starts_dt))
                .where(Appointment.episode_id.in_(episode_ids),
                       Appointment.status == "scheduled", Appointment.starts_dt >= now)
                .group_by(Appointment.episode_id)).all())
        answered = dict(session.execute(
            select(Administration.episode_id, func.max(Administration.completed_dt))
            .where(Administration.episode_id.in_(episode_ids))
            .group_by(Administration.episode_id)).all())
    held: dict[int, int] = {}
    if now is not None and episode_ids:
        held = dict(session.execute(
            select(Appointment.episode_id, func.count())
            .where(Appointment.episode_id.in_(episode_ids),
                   Appointment.status.in_(COUNTED), Appointment.starts_dt <= now)
            .group_by(Appointment.episode_id)).all())
    scales = scales or {}
    out = []
    for code, name, episode_id, signal in rows:
        state = signal.state if signal else {}
        outcomes = state.get("outcomes", {})
        latest = tuple((instrument, data.get("latest"), data.get("session", 0))
                       for instrument, data in sorted(outcomes.items()))
        worst, said = colour_reason(state, signal.colour if signal else None, locale)
        if said:
            basis[episode_id].append(said)
        measures = tuple(
            Measure(instrument, data.get("latest"),
                    data.get("session", 0),  # the latest score's treatment session
                    (data.get("change") or {}).get("level"), tuple(data.get("series", ())),
                    points=sparkline_points(tuple(data.get("series", ())), scales[instrument])
                    if instrument in scales else "",
                    **_band(library, instrument, data.get("latest"), locale))
            for instrument, data in sorted(outcomes.items()))
        alliance = tuple(
            Measure(instrument, data.get("latest"), len(data.get("series", ())), None,
                    tuple(data.get("series", ())),
                    alliance_trend(data.get("series", []), scales[instrument])
                    if instrument in scales else None,
                    possible_rupture=latest_possible_rupture(data.get("ruptures", [])))
            for instrument, data in sorted(state.get("alliance", {}).items()))
        out.append(CaseloadRow(code=code, name=name if named else None,
                               colour=signal.colour if signal else "grey",
                               urgency=signal.urgency if signal else NOTHING_YET,
                               change_category=signal.change_category if signal else None,
                               session=held.get(episode_id, 0),
                               latest=latest,
                               alerts=tuple(r for _, _, r in sorted(
                                   alerts[episode_id], key=lambda a: a[:2])),
                               progress_text=worst, outcomes=measures, alliance=alliance,
                               oldest_alert=oldest.get(episode_id),
                               change_measure=render_explanation(
                                   (state.get("change") or {}).get("label"), locale),
                               rule_based=rule_based_measures(outcomes),
                               next_appointment=upcoming.get(episode_id),
                               last_answered=answered.get(episode_id),
                               basis=tuple(dict.fromkeys(basis[episode_id]))))
    return sort_caseload(out, sort or CaseloadSort())


def sort_caseload(rows: list[CaseloadRow], sort: CaseloadSort) -> list[CaseloadRow]:
    """``rows`` (most urgent first) in the order of ``sort``: a stable sort, so ties keep
    the urgency order; rows without a value come last in either direction."""
    if sort.column == "urgency":
        return list(reversed(rows)) if sort.descending else list(rows)
    keys: dict[str, Any] = {
        "name": lambda r: (r.name or r.code).casefold(),
        "colour": lambda r: COLOURS.index(r.colour) if r.colour in COLOURS else len(COLOURS),
        "next": lambda r: r.next_appointment,
        "last": lambda r: r.last_answered,
        "alert": lambda r: r.alert_days,
    }
    key = keys[sort.column]
    having = [r for r in rows if key(r) is not None]
    without = [r for r in rows if key(r) is None]
    return sorted(having, key=key, reverse=sort.descending) + without


def basis_notices(rows: Iterable[CaseloadRow]) -> tuple[str, ...]:
    """The statistical basis of the rows' explanations, each sentence once."""
    return tuple(dict.fromkeys(text for row in rows for text in row.basis))


def rule_based_measures(outcomes: dict) -> tuple[tuple[str, int, int], ...]:
    """The stored outcome signals whose colour came from the rational rules."""
    out = []
    for instrument_id, data in sorted(outcomes.items()):
        numbers = (data.get("progress") or {}).get("numbers") or {}
        if numbers.get("method") == "rational":
            out.append((instrument_id, int(numbers.get("episodes_available") or 0),
                        int(numbers.get("episodes_needed") or 0)))
    return tuple(out)


def rule_based_notices(measures: Iterable[tuple[str, int, int]], names: dict[str, str],
                       locale: str = "en") -> tuple[str, ...]:
    """One sentence per measure whose colours are rule-based, for above a list
    (domain.md section 4: said once, not in every row); the latest counts win."""
    latest: dict[str, tuple[int, int]] = {}
    for instrument_id, available, needed in measures:
        latest[instrument_id] = max(latest.get(instrument_id, (0, 0)), (available, needed))
    return tuple(render_explanation(rule_based_notice(names.get(i, i), *latest[i]).as_json(),
                                    locale) for i in sorted(latest))


def _band(library: InstrumentLibrary | None, instrument_id: str, score: float | None,
          locale: str) -> dict:
    try:
        band = severity(library.get(instrument_id), score) if library is not None else None
    except KeyError:
        band = None
    return {"severity": band_name(band, locale),
            "band_range": band.range_text if band else ""}


def sparkline_points(series: tuple[float, ...], scale: tuple[float, float],
                     width: float = 72, height: float = 18) -> str:
    """SVG polyline points for a sparkline of ``series`` on a fixed scale (higher = up)."""
    if not series:
        return ""
    low, high = scale
    span = (high - low) or 1.0
    step = width / max(len(series) - 1, 1)
    points = []
    for i, value in enumerate(series):
        level = (min(max(value, low), high) - low) / span
        points.append(f"{i * step:.1f},{height - 1 - level * (height - 2):.1f}")
    return " ".join(points)


def caseload_version(session: Session, therapist_id: int, now: dt.datetime) -> tuple:
    """A cheap fingerprint of everything a therapist's caseload shows.

    It changes when an open episode starts or ends or moves, when any of their signals
    is recomputed, when an alert opens, is acknowledged or resolves, when a session
    passes or is cancelled, and when an appointment is booked. Pages may cache the
    rendered caseload under it (with a short expiry for what it cannot see, such as a
    renamed client).
    """
    rows = session.execute(_version_statement(),
                           {"therapist_id": therapist_id, "now": now}).all()
    return tuple(tuple(row[1:]) for row in sorted(rows, key=lambda row: row[0]))


@functools.cache
def _version_statement():
    """The statement of :func:`caseload_version`, built once (issue 21: the start page runs
    it on every visit): four aggregates, each computed once, as the rows of one UNION ALL
    (padded to the same columns), so one round trip."""
    therapist_id = bindparam("therapist_id", type_=Integer)
    now = bindparam("now", type_=Appointment.starts_dt.type)
    nothing = null()
    open_episode = (Episode.therapist_id == therapist_id, Episode.closed_on.is_(None))
    return union_all(
        select(literal(0), func.count(Episode.id), func.coalesce(func.sum(Episode.id), 0),
               func.max(EpisodeSignal.computed_dt), func.count(EpisodeSignal.episode_id))
        .outerjoin(EpisodeSignal, EpisodeSignal.episode_id == Episode.id)
        .where(*open_episode),
        select(literal(1), func.count(Alert.id), func.coalesce(func.sum(Alert.id), 0),
               nothing, nothing)
        .join(Episode, Episode.id == Alert.episode_id)
        .where(*open_episode, Alert.status == "open"),
        select(literal(2), func.count(Appointment.id), nothing, nothing, nothing)
        .join(Episode, Episode.id == Appointment.episode_id)
        .where(*open_episode, Appointment.status.in_(COUNTED), Appointment.starts_dt <= now),
        # The next appointments (issue 17): one booked, moved or cancelled.
        select(literal(3), func.count(Appointment.id),
               func.coalesce(func.sum(Appointment.id), 0), nothing, nothing)
        .join(Episode, Episode.id == Appointment.episode_id)
        .where(*open_episode, Appointment.status == "scheduled",
               Appointment.starts_dt >= now))


# --- past clients (issue 17) ----------------------------------------------------------------


@dataclass(frozen=True)
class PastClientRow:
    """A client whose last episode has ended: when, why, and the change it ended with."""

    code: str
    name: str | None
    opened_on: dt.date
    closed_on: dt.date
    end_reason: str
    change_category: str | None
    change_measure: str = ""


def past_clients(session: Session, viewer: User, *, therapist_id: int | None = None,
                 search: str = "", locale: str = "en", limit: int = 200
                 ) -> list[PastClientRow]:
    """One therapist's clients with no open episode, each with their last ended episode,
    the most recently ended first (at most ``limit``).

    Read through the one scoping function, as :func:`caseload`: names only for the
    viewer's own clients, and the search matches the code (and the name only there).
    """
    therapist_id = viewer.id if therapist_id is None else therapist_id
    named = therapist_id == viewer.id and viewer.is_therapist
    visible = visible_clients(viewer).where(Client.therapist_id == therapist_id).subquery()
    still_open = select(Episode.client_id).where(Episode.closed_on.is_(None))
    ranked = (select(Episode.id, func.row_number().over(
        partition_by=Episode.client_id,
        order_by=(Episode.closed_on.desc(), Episode.id.desc())).label("n"))
        .join(visible, Episode.client_id == visible.c.id)
        .where(Episode.closed_on.is_not(None)).subquery())
    query = (select(Client.code, Client.name, Episode, EpisodeSignal)
             .join(visible, Client.id == visible.c.id)
             .join(Episode, Episode.client_id == Client.id)
             .join(ranked, (ranked.c.id == Episode.id) & (ranked.c.n == 1))
             .outerjoin(EpisodeSignal, EpisodeSignal.episode_id == Episode.id)
             .where(Client.id.not_in(still_open)))
    text = search.strip()
    if text:
        matches: list[ColumnElement[bool]] = [
            func.lower(Client.code).like(like_pattern(text.lower()), escape="\\")]
        if named:
            matches.append(name_matches(text))
        query = query.where(or_(*matches))
    rows = session.execute(query.order_by(Episode.closed_on.desc(), Client.code)
                           .limit(limit)).all()
    return [PastClientRow(
        code=code, name=name if named else None, opened_on=episode.opened_on,
        closed_on=episode.closed_on or episode.opened_on, end_reason=episode.end_reason or "",
        change_category=signal.change_category if signal else None,
        change_measure=render_explanation(
            ((signal.state if signal else {}).get("change") or {}).get("label"), locale))
        for code, name, episode, signal in rows]
