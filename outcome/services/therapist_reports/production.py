"""Producing the therapist reports exactly once each (issue 18): the use case behind the
scheduler's job ``send-therapist-reports``, ``outcome reports run`` and the refresh of
today's brief.

:func:`run_due_reports` takes the session factory, not a session: each report's run is
claimed, rendered (reading only) and archived in its own transactions by
:func:`outcome.services.report_runs.produce_once`, the code the supervisor digest uses
too, so two or three schedulers produce one brief per therapist and day.

The PDF comes from a renderer ``render(session, therapist, period, library, now) ->
bytes``, injectable for tests; by default :data:`RENDERERS` (the brief's and the weekly
report's own builders, imported only when called).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from outcome.db import transaction
from outcome.models import ReportRun
from outcome.models import User
from outcome.services.report_runs import RunResult
from outcome.services.report_runs import produce_once
from outcome.services.therapist_reports.archive import archive_report
from outcome.services.therapist_reports.archive import replace_document
from outcome.services.therapist_reports.preferences import BRIEF_KIND
from outcome.services.therapist_reports.preferences import WEEKLY_KIND
from outcome.services.therapist_reports.preferences import wants_email
from outcome.services.therapist_reports.schedule import due
from outcome.services.therapist_reports.schedule import on_demand
from outcome.services.therapist_reports.schedule import parse_day
from questionnaires.loader import InstrumentLibrary

KINDS = {"brief": BRIEF_KIND, "weekly": WEEKLY_KIND}  # the CLI's words for the kinds


class Renderer(Protocol):
    """``render(session, therapist, period, library, now) -> PDF bytes``; reads only."""

    def __call__(self, session: Session, therapist: User, period: str,
                 library: InstrumentLibrary, now: dt.datetime) -> bytes: ...


def render_brief(session: Session, therapist: User, period: str,
                 library: InstrumentLibrary, now: dt.datetime) -> bytes:
    """The brief of local date ``period`` as PDF, in the therapist's language
    (:func:`outcome.services.therapist_reports.brief.brief_pdf`)."""
    from outcome.services.therapist_reports.brief import brief_pdf

    return brief_pdf(session, therapist, parse_day(period), library, now)


def render_weekly(session: Session, therapist: User, period: str,
                  library: InstrumentLibrary, now: dt.datetime) -> bytes:
    """The weekly caseload report of ISO week ``period`` as PDF, in the therapist's
    language (:func:`outcome.services.therapist_reports.weekly.weekly_pdf`)."""
    from outcome.services.therapist_reports.weekly import weekly_pdf

    return weekly_pdf(session, therapist, period, library, now)


# The default renderer of each kind; looked up at each call (tests replace them).
RENDERERS: dict[str, Renderer] = {BRIEF_KIND: render_brief, WEEKLY_KIND: render_weekly}


def run_due_reports(factory: sessionmaker[Session], library: InstrumentLibrary,
                    now: dt.datetime, kind: str, *, base_url: str,
                    render: Renderer | None = None,
                    only: tuple[int | None, str | None] = (None, None),
                    progress: Callable[[int], None] | None = None) -> list[RunResult]:
    """Produce every due report of ``kind`` (or, with ``only=(therapist_id, period)``,
    that period's, by hand), each exactly once; one :class:`RunResult` per report.

    Each report has its own transactions (:func:`produce_once`); a failure is recorded
    on its run and the others go on. ``progress(1)`` is called after each report.
    """
    renderer = render or RENDERERS[kind]
    therapist_id, period = only
    with transaction(factory) as session:
        if period is not None:
            pairs = [(t.id, p) for t, p in on_demand(session, kind, period, now,
                                                     therapist_id)]
        else:
            pairs = [(t.id, p) for t, p in due(session, kind, now)
                     if therapist_id is None or t.id == therapist_id]
            # The job runs every 15 minutes all day: the reports already produced are
            # left out here, in one read, rather than each refused by its claim's write.
            rows = session.execute(select(ReportRun.recipient_user_id, ReportRun.period).where(
                ReportRun.kind == kind, ReportRun.status == "succeeded",
                ReportRun.period.in_({p for _t, p in pairs}))).all() if pairs else []
            done = {(recipient, produced) for recipient, produced in rows}
            pairs = [pair for pair in pairs if pair not in done]
    results = []
    for recipient_id, chosen in pairs:
        results.append(_one(factory, library, now, kind, recipient_id, chosen, base_url,
                            renderer))
        if progress:
            progress(1)
    return results


def count_due(factory: sessionmaker[Session], kind: str, now: dt.datetime,
              only: tuple[int | None, str | None]) -> int:
    """How many reports :func:`run_due_reports` would try with ``only`` (for a progress
    bar); raises :class:`~outcome.services.therapist_reports.schedule.ScheduleError` for
    a period that cannot be produced."""
    therapist_id, period = only
    with transaction(factory) as session:
        if period is not None:
            return len(on_demand(session, kind, period, now, therapist_id))
        return len([t for t, _p in due(session, kind, now)
                    if therapist_id is None or t.id == therapist_id])


def _one(factory: sessionmaker[Session], library: InstrumentLibrary, now: dt.datetime,
         kind: str, therapist_id: int, period: str, base_url: str,
         render: Renderer) -> RunResult:
    def build(session: Session, run: ReportRun, therapist: User) -> bytes:
        return render(session, therapist, run.period, library, now)

    def store(session: Session, run: ReportRun, therapist: User, content: bytes) -> None:
        archive_report(session, run, therapist, content, now, base_url=base_url,
                       notify=wants_email(session, therapist, kind))

    return produce_once(factory, kind, period, therapist_id, now, render=build,
                        archive=store)


def refresh_brief(session: Session, run: ReportRun, therapist: User,
                  library: InstrumentLibrary, now: dt.datetime,
                  render: Renderer | None = None) -> None:
    """Render ``run``'s brief again as of ``now`` (answers that came in since) and put
    it in place of the archived one; flush. The caller checks that the run is the
    therapist's brief of today."""
    content = (render or RENDERERS[BRIEF_KIND])(session, therapist, run.period, library, now)
    replace_document(session, run, content, now)
