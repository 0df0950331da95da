"""Report runs: producing a scheduled report exactly once, and retrying it when it fails.

Each (kind, period, recipient) has one ``ReportRun`` row (a unique constraint). A
process claims a run by inserting that row, or by moving a pending or failed one to
"running" with a compare-and-set UPDATE; whoever does not win does nothing. So two
or three schedulers against one database produce one digest per supervisor and week,
and a scheduler that was down catches up on the weeks it missed (up to
:data:`~outcome.services.digests.production.CATCH_UP_WEEKS`) without repeating any.

A failure is recorded on the run (attempts, last error) and retried after 5, 30 and
120 minutes, then left "failed" for an admin to see. A run stuck in "running" for
``STALE_MINUTES`` (its process died) may be claimed again.

:func:`produce_once` is one run's whole life, shared by every kind (the supervisor
digest, :mod:`outcome.services.digests`; the therapist's brief and weekly report,
:mod:`outcome.services.therapist_reports`): the claim is committed in its own
transaction before any work, so a concurrent scheduler sees it at once; the document is
built and rendered in a read-only transaction (no write lock held while a PDF is drawn);
its archive, notice and success are one short write; a failure is recorded on the run in
another, and the caller goes on with the next recipient.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from typing import TypeVar
from typing import cast

from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from outcome.db import reading
from outcome.db import transaction
from outcome.models import ReportRun
from outcome.models import User
from outcome.services.mail import describe_error

RETRY_MINUTES = (5, 30, 120)
STALE_MINUTES = 30

log = logging.getLogger("outcome.report_runs")

Rendered = TypeVar("Rendered")


def claim(session: Session, kind: str, period: str, recipient_id: int, now: dt.datetime
          ) -> ReportRun | None:
    """Take the run for (kind, period, recipient) if nobody else holds it; flush.

    Returns the run, now "running" with one more attempt, or None when it succeeded
    already, another process is running it, or its next retry is not due yet.
    """
    run = session.scalar(select(ReportRun).where(
        ReportRun.kind == kind, ReportRun.period == period,
        ReportRun.recipient_user_id == recipient_id))
    if run is None:
        try:
            with session.begin_nested():
                run = ReportRun(kind=kind, period=period, recipient_user_id=recipient_id,
                                status="running", attempts=1, created_dt=now, started_dt=now)
                session.add(run)
        except IntegrityError:  # another process inserted it first
            return None
        return run
    if run.status == "succeeded":
        return None
    if run.status == "failed":
        if run.attempts > len(RETRY_MINUTES) or run.finished_dt is None:
            return None
        due = run.finished_dt + dt.timedelta(minutes=RETRY_MINUTES[run.attempts - 1])
        if due > now:
            return None
    stale = now - dt.timedelta(minutes=STALE_MINUTES)
    taken = cast("CursorResult[Any]", session.execute(  # DML: a cursor result
        update(ReportRun).where(
            ReportRun.id == run.id, ReportRun.attempts == run.attempts,
            or_(ReportRun.status.in_(("pending", "failed")),
                (ReportRun.status == "running") & (ReportRun.started_dt < stale)))
        .values(status="running", attempts=ReportRun.attempts + 1, started_dt=now)
        .execution_options(synchronize_session=False)))
    if taken.rowcount != 1:
        return None
    session.refresh(run)
    return run


@dataclass(frozen=True)
class RunResult:
    """What :func:`produce_once` did with one recipient's report of one period."""

    recipient_id: int
    period: str
    status: str  # "succeeded", "failed", or "skipped" (another process has it, or done)
    run_id: int | None = None
    error: str | None = None


def produce_once(factory: sessionmaker[Session], kind: str, period: str, recipient_id: int,
                 now: dt.datetime, *,
                 render: Callable[[Session, ReportRun, User], Rendered],
                 archive: Callable[[Session, ReportRun, User, Rendered], object]
                 ) -> RunResult:
    """Produce one report run exactly once: claim, render, archive; or record the failure.

    ``render(session, run, recipient)`` builds the document in a read-only transaction
    (BEGIN DEFERRED on SQLite) and returns what ``archive(session, run, recipient,
    rendered)`` then stores, with its notice and the run's success, in one short write.
    Any exception from either is recorded on the run (status "failed", ``last_error``
    with addresses masked, since admins read it) and returned as a "failed" result, so
    the caller goes on with the next recipient; the run is retried per
    :data:`RETRY_MINUTES`. This function owns its transactions (it takes the factory):
    exactly-once needs the claim committed before any work.
    """
    with transaction(factory) as session:
        run = claim(session, kind, period, recipient_id, now)
        run_id = run.id if run else None
    if run_id is None:
        return RunResult(recipient_id, period, "skipped")
    try:
        with reading(factory) as session:
            run = session.get(ReportRun, run_id)
            recipient = session.get(User, recipient_id)
            assert run is not None and recipient is not None
            rendered = render(session, run, recipient)
        with transaction(factory) as session:
            run = session.get(ReportRun, run_id)
            recipient = session.get(User, recipient_id)
            assert run is not None and recipient is not None
            archive(session, run, recipient, rendered)
    except Exception as exc:  # recorded on the run; the next recipient's report still goes
        error = describe_error(exc)  # addresses masked: admins see this
        # Identifiers only in the log: no recipient name, no content.
        log.exception("%s %s for user %s failed", kind, period, recipient_id)
        with transaction(factory) as session:
            run = session.get(ReportRun, run_id)
            if run is not None:
                run.status, run.finished_dt, run.last_error = "failed", now, error
        return RunResult(recipient_id, period, "failed", run_id, error)
    return RunResult(recipient_id, period, "succeeded", run_id)
