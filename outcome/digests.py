"""Producing the due digests: the edge that commits, one digest at a time.

Used by the scheduler's job and by `outcome digest`. The claim is committed in its own
transaction before any work, so a concurrent scheduler sees it at once; the digest is
built and rendered in a read-only transaction (no write lock held while the PDF is
drawn); its archive, e-mail and success are one short write; a failure is recorded on
the run in another. See :mod:`outcome.services.reports` for the exactly-once rules.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from outcome.db import reading
from outcome.db import transaction
from outcome.models import ReportRun
from outcome.models import User
from outcome.services.reports import Renderer
from outcome.services.reports import archive_digest
from outcome.services.reports import claim
from outcome.services.reports import default_renderer
from outcome.services.reports import due_digests
from outcome.services.reports import render_digest
from outcome.services.supervision import DIGEST_KIND
from questionnaires.loader import InstrumentLibrary

log = logging.getLogger("outcome.digests")


@dataclass(frozen=True)
class RunOutcome:
    supervisor_id: int
    week: str
    status: str  # "succeeded", "failed", or "skipped" (another process has it, or done)
    run_id: int | None = None
    error: str | None = None


def run_due_digests(factory: sessionmaker[Session], library: InstrumentLibrary,
                    now: dt.datetime, *, base_url: str, render: Renderer = default_renderer,
                    only: tuple[int | None, str | None] = (None, None),
                    progress: Callable[[int], None] | None = None) -> list[RunOutcome]:
    """Produce every due digest (or only one supervisor's or week's), each exactly once.

    Each digest has its own transactions: the claim is committed first, then the work;
    a failure is recorded on the run and the others go on.
    """
    with transaction(factory) as session:
        supervisor_id, week = only
        if week is not None:
            people = session.scalars(select(User).where(User.is_supervisor, User.is_active)
                                     .order_by(User.id)).all()
            pairs = [(p.id, week) for p in people]
        else:
            pairs = [(s.id, w) for s, w in due_digests(session, now)]
        if supervisor_id is not None:
            pairs = [(s, w) for s, w in pairs if s == supervisor_id]
    outcomes = []
    for supervisor_id, week in pairs:
        outcomes.append(_one(factory, library, now, supervisor_id, week, base_url, render))
        if progress:
            progress(1)
    return outcomes


def _one(factory: sessionmaker[Session], library: InstrumentLibrary, now: dt.datetime,
         supervisor_id: int, week: str, base_url: str, render: Renderer) -> RunOutcome:
    with transaction(factory) as session:
        run = claim(session, DIGEST_KIND, week, supervisor_id, now)
        run_id = run.id if run else None
    if run_id is None:
        return RunOutcome(supervisor_id, week, "skipped")
    try:
        # Built and rendered while only reading (seconds, for a large team), then archived
        # and queued in a short write: the clinic's requests never wait for a PDF.
        with reading(factory) as session:
            run = session.get(ReportRun, run_id)
            supervisor = session.get(User, supervisor_id)
            assert run is not None and supervisor is not None
            digest, content = render_digest(session, run, supervisor, library, now, render)
        with transaction(factory) as session:
            run = session.get(ReportRun, run_id)
            supervisor = session.get(User, supervisor_id)
            assert run is not None and supervisor is not None
            archive_digest(session, run, supervisor, digest, content, now, base_url=base_url)
    except Exception as exc:  # recorded on the run; the next digest still goes out
        error = f"{type(exc).__name__}: {exc}"[:1000]
        log.exception("digest %s for supervisor %s failed", week, supervisor_id)
        with transaction(factory) as session:
            run = session.get(ReportRun, run_id)
            if run is not None:
                run.status, run.finished_dt, run.last_error = "failed", now, error
        return RunOutcome(supervisor_id, week, "failed", run_id, error)
    return RunOutcome(supervisor_id, week, "succeeded", run_id)
