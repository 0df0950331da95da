"""The therapist's weekly caseload report (issue 18): its figures, read from the database.

The week's figures come from the supervisor's digest machinery
(:class:`outcome.services.digests.figures.WeekReader`), read for the therapist's own
episodes, so the report and the digest say the same numbers for the same week:

- episodes open at any time in the week (of them, those still open at its end), and
  their colours on the clinic's main outcome measure from their valid scores completed
  before the week's end (the engine's rule, :mod:`outcome.core.trajectory`: grey without
  a score, or with only a first-session score outside the functional range, or without
  a reliable-change threshold); counted per episode, so the colours add up;
- colour changes: each such episode's colour on the main measure at the week's start
  (Monday 00:00 clinic time) against its end, read by that same rule, each with the
  colour the caseload shows now (the episode's worst across its outcome measures) and
  the measure that colour is on, so no colour is said without its measure;
- completion: sessions in the week (attended or still scheduled; missed and cancelled
  ones are not sessions) at which the client answered the main outcome measure;
- alerts open at the week's end (raised before it, not acknowledged or resolved by then),
  oldest first, each aged in the clinic's calendar days up to the week's Sunday, as the
  caseload ages an alert;
- episodes ended in the week (clinic dates), each with the episode's own change since
  intake as its client page shows it (its primary measure, or the NHS Talking Therapies
  pair; :meth:`~outcome.services.digests.figures.WeekReader.episode_changes`, Jacobson &
  Truax 1991) with that measure or pair named, and the end reason.

The caseload by urgency is read when the report is produced, by the caseload page's own
function (:func:`outcome.services.caseload.caseload`), in the same order; with how many
episodes have ended and opened since the week's end.

Names: the therapist's own clients only (those whose therapist they are now); any other
episode they led is shown by client code.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.models import Client
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import EpisodeSignal
from outcome.models import User
from outcome.services.access import visible_clients
from outcome.services.caseload import basis_notices
from outcome.services.caseload import caseload
from outcome.services.clients import END_REASON_LABELS
from outcome.services.digests.figures import DigestError
from outcome.services.digests.figures import Week
from outcome.services.digests.figures import WeekReader
from outcome.services.explanations import language
from outcome.services.explanations import say
from outcome.services.supervision import primary_outcome
from questionnaires.loader import InstrumentLibrary
from reports.pdf import for_reader
from reports.weekly import CaseloadLine
from reports.weekly import ColourChange
from reports.weekly import EndedEpisode
from reports.weekly import OpenAlert
from reports.weekly import WeeklyReport


def build_weekly(session: Session, therapist: User, week: str, library: InstrumentLibrary,
                 now: dt.datetime, locale: str = "en") -> WeeklyReport:
    """``therapist``'s caseload report for ISO ``week`` ("2026-W47", Monday to Sunday in
    the clinic's time zone), as of ``now``; words in ``locale``. Reads only.

    Raises :class:`~outcome.services.digests.figures.DigestError` for a malformed week or
    one that has not ended at ``now`` (a weekly report is for a whole week).
    """
    clinic = session.get(Clinic, therapist.clinic_id)
    assert clinic is not None
    this = Week.of(week, clinic.timezone)
    tz = zoneinfo.ZoneInfo(clinic.timezone)
    if this.end > now:
        ends = this.end.astimezone(tz)
        raise DigestError(f"week {week} has not ended yet (it ends "
                          f"{ends:%Y-%m-%d %H:%M} {clinic.timezone})")
    instrument = primary_outcome(clinic, library)
    reader = WeekReader(session, therapist, clinic, [therapist.id], instrument)
    ids = set(reader.ids)
    names = _names(session, therapist, reader.ids)

    def name(episode_id: int, code: str) -> str:
        return names.get(episode_id) or code

    rows = caseload(session, therapist, now=now, locale=locale, library=library)
    now_by_code = {row.code: row for row in rows}
    short = {i.id: i.short_name for i in library}
    states: dict[int, dict] = {e: st for e, st in session.execute(
        select(EpisodeSignal.episode_id, EpisodeSignal.state)
        .where(EpisodeSignal.episode_id.in_(reader.ids)))}
    main_id = instrument.id if instrument else ""

    start, end = reader.reading(this.start), reader.reading(this.end)
    active = reader.active(ids, this)
    changes = []
    for e in active:
        before, after = start.colour.get(e.id, "grey"), end.colour.get(e.id, "grey")
        if before != after:
            row = now_by_code.get(e.code) if e.closed_on is None else None
            outcomes = (states.get(e.id) or {}).get("outcomes", {})
            main = outcomes.get(main_id, {}).get("progress", {}).get("level")
            changes.append(ColourChange(
                name=name(e.id, e.code), code=e.code, before=before, after=after,
                measure=instrument.short_name if instrument else "",
                now=row.colour if row else None,
                now_measure=short.get(colour_measure(states.get(e.id), row.colour), "")
                if row else "",
                now_main=main if row else None,
                reason=row.progress_text if row else ""))

    codes = {e.id: e.code for e in reader.episodes}
    alerts = []
    for alert in reader.open_alerts(ids, this):
        raised = alert.raised_dt.astimezone(tz).date()
        alerts.append(OpenAlert(name=name(alert.episode_id, codes[alert.episode_id]),
                                code=codes[alert.episode_id], kind=alert.kind, raised=raised,
                                days=(this.sunday - raised).days))
    alerts.sort(key=lambda a: (a.raised, a.name.casefold(), a.code))

    measure = instrument.short_name if instrument else ""
    ended = reader.ended(ids, this)
    own = reader.episode_changes({e.id for e in ended}, locale)
    ended_list = [EndedEpisode(name=name(e.id, e.code), code=e.code,
                               closed_on=e.closed_on, measure=own[e.id][1],
                               category=own[e.id][0],
                               end_reason=END_REASON_LABELS.get(e.end_reason or "",
                                                                e.end_reason or ""))
                  for e in ended]
    ended_list.sort(key=lambda x: (x.closed_on, x.name.casefold(), x.code))
    open_at_end = [e for e in active if e.closed_on is None or e.closed_on > this.sunday]
    code_to_id = {e.code: e.id for e in reader.episodes if e.closed_on is None}

    return WeeklyReport(
        clinic_name=clinic.name, therapist_name=therapist.display_name, week=week,
        starts=this.monday, ends=this.sunday, produced=now, timezone=clinic.timezone,
        instrument=measure, active_episodes=len(active), open_at_end=len(open_at_end),
        ended_since=sum(1 for e in open_at_end if e.closed_on is not None),
        opened_since=sum(1 for e in reader.episodes
                         if e.opened_on > this.sunday and e.closed_on is None),
        colours=reader.colours(ids, this), completion=reader.completion(ids, this),
        caseload=tuple(CaseloadLine(name=row.name or row.code, code=row.code,
                                    colour=row.colour,
                                    reason=row.reason.text if row.reason else None,
                                    progress=row.progress_text,
                                    measure=short.get(colour_measure(
                                        states.get(code_to_id.get(row.code, -1)),
                                        row.colour), ""))
                        for row in rows),
        changes=tuple(sorted(changes, key=lambda c: (c.name.casefold(), c.code))),
        alerts=tuple(alerts), ended=tuple(ended_list), notices=basis_notices(rows))


def colour_measure(state: dict | None, colour: str | None) -> str:
    """The outcome measure (instrument id) whose stored progress level is the episode's
    colour: the first, in the stored order, as
    :func:`outcome.services.caseload.colour_reason` picks the explanation it shows, so the
    measure named is the one that explanation is about. "" without one."""
    outcomes = (state or {}).get("outcomes", {})
    return next((instrument_id for instrument_id, data in outcomes.items()
                 if colour and data["progress"]["level"] == colour), "")


def _names(session: Session, therapist: User, episode_ids: list[int]) -> dict[int, str]:
    """Client names of ``episode_ids`` whose client is the therapist's own now (the rule of
    :func:`outcome.services.access.sees_client_names`); other episodes go by code."""
    if not therapist.is_therapist or not episode_ids:
        return {}
    own = visible_clients(therapist).where(Client.therapist_id == therapist.id).subquery()
    return dict(session.execute(
        select(Episode.id, own.c.name).join(own, own.c.id == Episode.client_id)
        .where(Episode.id.in_(episode_ids))).all())


def weekly_pdf(session: Session, therapist: User, week: str, library: InstrumentLibrary,
               now: dt.datetime) -> bytes:
    """The PDF of :func:`build_weekly` in the therapist's own language (their account's;
    English when none is chosen). Reads only."""
    from reports.weekly_pdf import render_weekly

    code = language(therapist.locale)
    report = build_weekly(session, therapist, week, library, now, locale=code)
    with for_reader(lambda message: say(message, code), code):
        return render_weekly(report)
