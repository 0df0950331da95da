"""The supervisor's weekly digest: figures for one ISO week, read from the database.

A week runs Monday 00:00 to Monday 00:00 in the clinic's time zone. Figures that have a
history are counted from timestamps, so last week and the twelve-week trend are as
they were, not as they are now:

- active episodes: opened before the week ended and not closed before it began;
- red: an open "not on track" alert at the end of the week;
- open alerts: raised before the end of the week, not acknowledged or resolved by then;
- completion: sessions held in the week (scheduled or attended, already started) at
  which the client answered the main outcome measure;
- ruptures opened / repaired: rupture alerts raised / resolved in the week;
- episodes ended in the week with their change category on the main outcome measure
  (Wilson 95 % intervals, :mod:`outcome.core.aggregates`).

The colour counts and the clients needing attention describe the caseload when the
digest is produced (stored signals have no history). Client codes only.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import defaultdict

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.core.aggregates import SMALL_SAMPLE
from outcome.core.aggregates import rate
from outcome.models import Administration
from outcome.models import Alert
from outcome.models import Appointment
from outcome.models import Client
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import EpisodeSignal
from outcome.models import User
from outcome.services.access import visible_clients
from outcome.services.explanations import render_explanation
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

COUNTED = ("scheduled", "attended")
TREND_WEEKS = 12
CRITICAL_KINDS = ("critical_item", "critical_unanswered")


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


def _rate(count: int, n: int) -> RateFigure:
    figure = rate(count, n)
    return RateFigure(figure.count, figure.n, figure.low, figure.high)


class _Reader:
    """The queries behind one supervisor's figures, for any period."""

    def __init__(self, session: Session, supervisor: User, therapist_ids: list[int],
                 instrument_id: str | None, tz: str) -> None:
        self.session, self.tz, self.instrument_id = session, tz, instrument_id
        visible = visible_clients(supervisor).subquery()
        self.episodes = session.execute(
            select(Episode.id, Episode.therapist_id, Episode.opened_on, Episode.closed_on,
                   Client.code)
            .join(visible, Episode.client_id == visible.c.id)
            .join(Client, Client.id == Episode.client_id)
            .where(Episode.therapist_id.in_(therapist_ids))).all()
        self.ids = [e.id for e in self.episodes]
        self.alerts = session.execute(
            select(Alert.episode_id, Alert.kind, Alert.status, Alert.raised_dt,
                   Alert.acknowledged_dt, Alert.resolved_dt)
            .where(Alert.episode_id.in_(self.ids))).all()

    def _local(self, moment: dt.datetime) -> dt.date:
        return moment.astimezone(zoneinfo.ZoneInfo(self.tz)).date()

    def figures(self, episode_ids: set[int], start: dt.datetime, end: dt.datetime,
                now: dt.datetime, colours: dict[str, int] | None = None) -> KeyFigures:
        first, last = self._local(start), self._local(end - dt.timedelta(seconds=1))
        rows = [e for e in self.episodes if e.id in episode_ids]
        active = [e for e in rows if e.opened_on <= last
                  and (e.closed_on is None or e.closed_on >= first)]
        moment = min(end, now)

        def open_at(alert) -> bool:
            closed = [t for t in (alert.acknowledged_dt, alert.resolved_dt) if t]
            return alert.raised_dt < moment and not any(t <= moment for t in closed)

        alerts = [a for a in self.alerts if a.episode_id in episode_ids]
        red = sum(1 for a in alerts if a.kind == "not_on_track" and open_at(a))
        held, measured = self._completion(episode_ids, start, moment)
        ended = [e for e in rows if e.closed_on is not None and first <= e.closed_on <= last]
        categories = self._categories([e.id for e in ended])
        assessed = [c for c in categories.values() if c]
        return KeyFigures(
            active_episodes=len(active),
            colours=colours if colours is not None else {"red": red},
            completion=_rate(measured, held),
            open_alerts=sum(1 for a in alerts if open_at(a)),
            ruptures_opened=sum(1 for a in alerts if a.kind == "rupture"
                                and start <= a.raised_dt < end),
            ruptures_repaired=sum(1 for a in alerts if a.kind == "rupture"
                                  and a.resolved_dt and start <= a.resolved_dt < end),
            episodes_ended=len(ended),
            reliably_improved=_rate(sum(c in ("recovered", "improved") for c in assessed),
                                    len(assessed)),
            recovered=_rate(sum(c == "recovered" for c in assessed), len(assessed)),
            deteriorated=_rate(sum(c in ("deteriorated", "harmed") for c in assessed),
                               len(assessed)),
            is_small=len(assessed) < SMALL_SAMPLE)

    def _completion(self, episode_ids: set[int], start: dt.datetime, end: dt.datetime
                    ) -> tuple[int, int]:
        if not episode_ids or end <= start:
            return 0, 0
        sessions = (Appointment.episode_id.in_(list(episode_ids)),
                    Appointment.status.in_(COUNTED), Appointment.starts_dt >= start,
                    Appointment.starts_dt < end)
        held = self.session.scalar(select(func.count()).select_from(Appointment)
                                   .where(*sessions)) or 0
        if self.instrument_id is None:
            return held, 0
        answered = select(Administration.appointment_id).where(
            Administration.episode_id.in_(list(episode_ids)),
            Administration.respondent == "client",
            Administration.instrument_id == self.instrument_id,
            Administration.appointment_id.is_not(None))
        measured = self.session.scalar(select(func.count()).select_from(Appointment)
                                       .where(*sessions, Appointment.id.in_(answered))) or 0
        return held, measured

    def _categories(self, episode_ids: list[int]) -> dict[int, str | None]:
        out: dict[int, str | None] = {}
        if not episode_ids:
            return out
        for episode_id, state in self.session.execute(
                select(EpisodeSignal.episode_id, EpisodeSignal.state)
                .where(EpisodeSignal.episode_id.in_(episode_ids))):
            change = state.get("outcomes", {}).get(self.instrument_id or "", {}).get("change")
            out[episode_id] = change["level"] if change else None
        return out


def build_digest(session: Session, supervisor: User, week: str, library: InstrumentLibrary,
                 now: dt.datetime) -> Digest:
    """The digest of ``supervisor`` for ISO ``week`` (produced at ``now``).

    Raises :class:`DigestError` for a malformed week or one that has not ended yet.
    """
    clinic = session.get(Clinic, supervisor.clinic_id)
    assert clinic is not None
    monday, start, end = week_bounds(week, clinic.timezone)
    if end > now:
        raise DigestError(f"week {week} has not ended yet (it ends "
                          f"{end.astimezone(zoneinfo.ZoneInfo(clinic.timezone)):%Y-%m-%d %H:%M} "
                          f"{clinic.timezone})")
    instrument = primary_outcome(clinic, library)
    people = supervisees(session, supervisor) if supervisor.is_active else []
    reader = _Reader(session, supervisor, [p.id for p in people],
                     instrument.id if instrument else None, clinic.timezone)
    everyone = set(reader.ids)
    by_therapist: dict[int, set[int]] = defaultdict(set)
    for e in reader.episodes:
        by_therapist[e.therapist_id].add(e.id)
    signals = {row.episode_id: row for row in session.scalars(
        select(EpisodeSignal).where(EpisodeSignal.episode_id.in_(reader.ids)))}
    open_now = {e.id for e in reader.episodes if e.closed_on is None}

    def colours(ids: set[int]) -> dict[str, int]:
        counts = dict.fromkeys(("red", "yellow", "green", "white", "grey"), 0)
        for episode_id in ids & open_now:
            signal = signals.get(episode_id)
            counts[signal.colour if signal else "grey"] += 1
        return counts

    trend = []
    for back in range(TREND_WEEKS - 1, -1, -1):
        w_start = start - dt.timedelta(weeks=back)
        w_end = end - dt.timedelta(weeks=back)
        figures = reader.figures(everyone, w_start, w_end, now)
        trend.append(TrendPoint(iso_week(monday - dt.timedelta(weeks=back)),
                                figures.active_episodes, figures.colours["red"],
                                figures.open_alerts, figures.completion))
    sections = []
    for person in people:
        ids = by_therapist.get(person.id, set())
        sections.append(SuperviseeSection(
            therapist_name=person.display_name,
            week=reader.figures(ids, start, end, now, colours(ids)),
            attention=_attention(session, reader, ids & open_now, signals, instrument,
                                 now),
            ended=tuple((e.code, (reader._categories([e.id]).get(e.id) or "no change score"))
                        for e in reader.episodes if e.id in ids and e.closed_on is not None
                        and monday <= e.closed_on < monday + dt.timedelta(days=7))))
    return Digest(
        clinic_name=clinic.name, supervisor_name=supervisor.display_name, week=week,
        starts=monday, ends=monday + dt.timedelta(days=6), produced=now,
        timezone=clinic.timezone, instrument=instrument.short_name if instrument else "",
        this_week=reader.figures(everyone, start, end, now, colours(everyone)),
        previous_week=reader.figures(everyone, start - dt.timedelta(weeks=1),
                                     end - dt.timedelta(weeks=1), now),
        trend=tuple(trend), sections=tuple(sections))


def _attention(session: Session, reader: _Reader, ids: set[int],
               signals: dict[int, EpisodeSignal], instrument, now: dt.datetime
               ) -> tuple[AttentionItem, ...]:
    """Open episodes that are red, have an unrepaired rupture, an unacknowledged critical
    answer older than a day, or a reliable deterioration; most urgent first."""
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
                    f"{render_explanation(a.detail)}" for a in critical]
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
        chart = None
        if instrument is not None and len(series) > 1:
            low, high = instrument.primary_range
            chart = TrajectoryData(
                title=instrument.short_name, sessions=tuple(range(1, len(series) + 1)),
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

