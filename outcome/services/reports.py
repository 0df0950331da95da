"""Producing scheduled reports exactly once: claim, build, archive, send.

Each (kind, period, recipient) has one ``ReportRun`` row (a unique constraint). A
process claims a run by inserting that row, or by moving a pending or failed one to
"running" with a compare-and-set UPDATE; whoever does not win does nothing. So two
or three schedulers against one database produce one digest per supervisor and week,
and a scheduler that was down catches up on the weeks it missed (up to
``CATCH_UP_WEEKS``) without repeating any.

A failure is recorded on the run (attempts, last error) and retried after 5, 30 and
120 minutes, then left "failed" for an admin to see. A run stuck in "running" for
``STALE_MINUTES`` (its process died) may be claimed again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any
from typing import cast

from sqlalchemy import CursorResult
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from outcome.models import Clinic
from outcome.models import ReportDocument
from outcome.models import ReportRun
from outcome.models import User
from outcome.services import clinic_settings
from outcome.services.digest import build_digest
from outcome.services.digest import due_weeks
from outcome.services.digest import iso_week
from outcome.services.mail import queue_email
from questionnaires.loader import InstrumentLibrary
from reports.digest import Digest

log = logging.getLogger("outcome.reports")

CATCH_UP_WEEKS = 4
RETRY_MINUTES = (5, 30, 120)
STALE_MINUTES = 30

Renderer = Callable[[Digest], bytes]


def default_renderer(digest: Digest) -> bytes:
    """The PDF of a digest (reportlab, :mod:`reports.digest_pdf`)."""
    from reports.digest_pdf import render_digest

    return render_digest(digest)


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


def digest_filename(digest_week: str, supervisor: User) -> str:
    return f"digest-{digest_week}-{supervisor.id}.pdf"


def render_digest(session: Session, run: ReportRun, supervisor: User,
                  library: InstrumentLibrary, now: dt.datetime,
                  render: Renderer = default_renderer) -> tuple[Digest, bytes]:
    """Build and render one claimed digest; reads only (the caller may hold no write lock).

    Rendering is most of a digest's time (about 0.2 s a page); keeping it out of the
    writing transaction keeps SQLite's single write lock free for the clinic meanwhile.
    """
    digest = build_digest(session, supervisor, run.period, library, now)
    return digest, render(digest)


def archive_digest(session: Session, run: ReportRun, supervisor: User, digest: Digest,
                   content: bytes, now: dt.datetime, *, base_url: str) -> ReportDocument:
    """Archive a rendered digest, queue its e-mail and mark the run succeeded; flush.

    The e-mail carries the PDF (de-identified: client codes only) and a link to the
    archive; its dedupe key is the run, so a retry never sends twice.
    """
    sha = hashlib.sha256(content).hexdigest()
    document = ReportDocument(report_run_id=run.id,
                              filename=digest_filename(run.period, supervisor),
                              media_type="application/pdf", content=content, sha256=sha,
                              size_bytes=len(content), created_dt=now)
    session.add(document)
    session.flush()
    queue_email(
        session, clinic_id=supervisor.clinic_id, kind="digest", dedupe_key=f"digest:{run.id}",
        to_address=supervisor.email,
        subject=f"Weekly supervision digest {run.period}",
        body=(f"Hello {supervisor.display_name},\n\n"
              f"Your de-identified supervision digest for {run.period} "
              f"({digest.starts:%d %b} to {digest.ends:%d %b %Y}) is attached.\n"
              f"It is also kept in outcome: {base_url.rstrip('/')}/supervision/digests\n\n"
              "Clients appear by code only. Please keep it confidential.\n"),
        now=now, attachment=document)
    run.status, run.finished_dt, run.content_sha256, run.last_error = "succeeded", now, sha, None
    session.flush()
    return document


def produce_digest(session: Session, run: ReportRun, supervisor: User,
                   library: InstrumentLibrary, now: dt.datetime, *, base_url: str,
                   render: Renderer = default_renderer) -> ReportDocument:
    """Build, render and archive one claimed digest, and queue its e-mail; flush.

    :func:`render_digest` then :func:`archive_digest` in one session.
    """
    digest, content = render_digest(session, run, supervisor, library, now, render)
    return archive_digest(session, run, supervisor, digest, content, now, base_url=base_url)


def due_digests(session: Session, now: dt.datetime) -> Iterator[tuple[User, str]]:
    """Every (supervisor, ISO week) whose digest is due at ``now``, catch-up included."""
    for clinic in session.scalars(select(Clinic).order_by(Clinic.id)).all():
        settings = clinic_settings.current(clinic)
        weeks = due_weeks(session, clinic, now, settings, CATCH_UP_WEEKS)
        people = session.scalars(select(User).where(
            User.clinic_id == clinic.id, User.is_supervisor, User.is_active)
            .order_by(User.id)).all()
        for supervisor in people:
            created = iso_week(supervisor.created_dt.date())
            for week in weeks:
                if week >= created:  # no digests for weeks before the account existed
                    yield supervisor, week
