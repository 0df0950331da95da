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

The weekly supervisor digest (:mod:`outcome.services.digests`) is the one kind today.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from typing import cast

from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from outcome.models import ReportRun

RETRY_MINUTES = (5, 30, 120)
STALE_MINUTES = 30


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
