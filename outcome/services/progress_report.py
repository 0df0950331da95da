"""A client's progress report for their own therapist: the client record, as a PDF.

Built from :func:`~outcome.services.client_record.client_record` with ``full=True``,
so the report shows what the therapist's client page shows (the same stored signals
and the same chart data) and never recomputes a score. Its explanations are rendered
in English, the language of the report's own wording. Access is the caller's
business: only the client's own therapist may be given this (it carries the client's
name and goal wording).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo

from sqlalchemy.orm import Session

from outcome.models import Client
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import User
from outcome.services.client_record import ClientRecord
from outcome.services.client_record import client_record
from outcome.services.explanations import language
from outcome.services.explanations import say
from questionnaires.loader import InstrumentLibrary
from reports.pdf import for_reader
from reports.progress_pdf import AlertEntry
from reports.progress_pdf import GoalRatings
from reports.progress_pdf import ItemChart
from reports.progress_pdf import ProgressReport
from reports.progress_pdf import ScoreChart
from reports.progress_pdf import ScoreNote
from reports.progress_pdf import SignalText
from reports.progress_pdf import render_progress_report


def N_(message: str) -> str:  # marked for the catalogue; said with say()
    return message


def progress_report(session: Session, client: Client, episode: Episode | None,
                    library: InstrumentLibrary, now: dt.datetime, locale: str = "en"
                    ) -> ProgressReport:
    """The plain data of ``client``'s progress report for ``episode`` (None: no episode
    yet), produced at ``now``. Reads only; flushes nothing."""
    clinic = session.get(Clinic, client.clinic_id)
    assert clinic is not None
    therapist_id = episode.therapist_id if episode is not None else client.therapist_id
    therapist = session.get(User, therapist_id) if therapist_id is not None else None
    tz = zoneinfo.ZoneInfo(clinic.timezone)
    report = ProgressReport(
        client_name=client.name, client_code=client.code, clinic_name=clinic.name,
        therapist_name=therapist.display_name if therapist else "",
        produced=now.astimezone(tz).date(), timezone=clinic.timezone,
        episode_opened=episode.opened_on if episode else None,
        episode_closed=episode.closed_on if episode else None)
    if episode is None:
        return report
    record = client_record(session, episode, library, full=True, locale=locale)
    return dataclasses.replace(
        report,
        signals=(*_episode_change(record, locale),
                 *(SignalText(e["instrument"], e["level"], e["text"], e.get("kind", ""))
                   for e in record.explanations)),
        notices=record.notices,
        outcome_charts=tuple(ScoreChart(c.data, c.description, c.rows, c.severities,
                                        c.latest)
                             for c in record.outcome_charts),
        alliance_charts=tuple(ScoreChart(c.data, c.description, c.rows)
                              for c in record.alliance_charts),
        heatmaps=tuple(ItemChart(h.data, h.staying_high, h.description)
                       for h in record.heatmaps),
        goals=tuple(GoalRatings(g.position, (g.description or "") + (
                        f" (retired {g.retired_dt:%Y-%m-%d})" if g.retired_dt else ""),
                        g.ratings) for g in record.goals),
        alerts=tuple(AlertEntry(a.kind, a.status, a.text, a.raised, a.acknowledged,
                                a.acknowledged_by, a.note) for a in record.alerts),
        score_notes=tuple(ScoreNote(n.instrument, n.completed, n.session, n.score, n.text)
                          for n in record.score_notes))


def _episode_change(record: ClientRecord, locale: str = "en") -> tuple[SignalText, ...]:
    """The episode's change since intake, named by its measure (or pair) as on the page."""
    change = record.change
    if change is None:
        return ()
    return (SignalText(change.measure, change.category,
                       say(N_("Since intake (%(measure)s): %(text)s"), locale,
                           measure=change.measure,
                           text=change.explanation or change.category_text), "change"),)


def progress_report_pdf(session: Session, client: Client, episode: Episode | None,
                        library: InstrumentLibrary, now: dt.datetime, locale: str = "en"
                        ) -> bytes:
    """The progress report as PDF bytes (see :func:`progress_report`), in ``locale``: the
    language of the staff member who reads it (labels, explanations and dates)."""
    report = progress_report(session, client, episode, library, now, locale)
    code = language(locale)
    with for_reader(lambda message: say(message, code), code):
        return render_progress_report(report)
