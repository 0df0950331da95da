"""Producing the due digests exactly once, one digest at a time: the use case behind the
scheduler's job and `outcome digest`.

:func:`run_due_digests` is the one digest service that owns its transactions (it takes
the session factory, not a session), because exactly-once needs them: the claim is
committed in its own transaction before any work, so a concurrent scheduler sees it at
once; the digest is built and rendered in a read-only transaction (no write lock held
while the PDF is drawn); its archive, e-mail and success are one short write; a failure
is recorded on the run in another. See :mod:`outcome.services.report_runs` for the
exactly-once rules. The other functions flush only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from collections.abc import Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from outcome.db import transaction
from outcome.models import Clinic
from outcome.models import ReportDocument
from outcome.models import ReportRun
from outcome.models import User
from outcome.services import clinic_settings
from outcome.services.digests.archive import DIGEST_KIND
from outcome.services.digests.archive import archive_digest
from outcome.services.digests.figures import DigestError
from outcome.services.digests.figures import due_weeks
from outcome.services.digests.figures import iso_week
from outcome.services.digests.figures import week_bounds
from outcome.services.digests.loop import build_supervisor_digest
from outcome.services.explanations import language
from outcome.services.explanations import say
from outcome.services.report_runs import RunResult
from outcome.services.report_runs import produce_once
from outcome.services.therapist_reports.preferences import choice
from outcome.services.therapist_reports.preferences import wants_email
from questionnaires.loader import InstrumentLibrary
from reports.digest import Digest
from reports.pdf import for_reader

CATCH_UP_WEEKS = 4

Renderer = Callable[[Digest], bytes]


def default_renderer(digest: Digest) -> bytes:
    """The PDF of a digest (reportlab, :mod:`reports.digest_pdf`)."""
    from reports.digest_pdf import render_digest

    return render_digest(digest)


def due_digests(session: Session, now: dt.datetime) -> Iterator[tuple[User, str]]:
    """Every (supervisor, ISO week) whose digest is due at ``now``, catch-up included.

    A supervisor who turned their digest off gets none; one who chose another weekday
    or time gets it then (:mod:`outcome.services.therapist_reports.preferences`).
    """
    for clinic in session.scalars(select(Clinic).order_by(Clinic.id)).all():
        settings = clinic_settings.current(clinic)
        people = session.scalars(select(User).where(
            User.clinic_id == clinic.id, User.is_supervisor, User.is_active)
            .order_by(User.id)).all()
        for supervisor in people:
            chosen = choice(session, supervisor, DIGEST_KIND, settings)
            if not chosen.enabled:
                continue
            own = {**settings, "digest_time": chosen.time, "digest_weekday": chosen.weekday}
            weeks = due_weeks(session, clinic, now, own, CATCH_UP_WEEKS)
            created = iso_week(supervisor.created_dt.date())
            for week in weeks:
                if week >= created:  # no digests for weeks before the account existed
                    yield supervisor, week


def render_digest(session: Session, run: ReportRun, supervisor: User,
                  library: InstrumentLibrary, now: dt.datetime,
                  render: Renderer = default_renderer) -> tuple[Digest, bytes]:
    """Build and render one claimed digest; reads only (the caller may hold no write lock).

    Rendering is most of a digest's time (about 0.2 s a page); keeping it out of the
    writing transaction keeps SQLite's single write lock free for the clinic meanwhile.
    """
    digest = build_supervisor_digest(session, supervisor, run.period, library, now)
    # In the supervisor's own language (their account's; English when none is chosen).
    code = language(supervisor.locale)
    with for_reader(lambda message: say(message, code), code):
        return digest, render(digest)


def produce_digest(session: Session, run: ReportRun, supervisor: User,
                   library: InstrumentLibrary, now: dt.datetime, *, base_url: str,
                   render: Renderer = default_renderer) -> ReportDocument:
    """Build, render and archive one claimed digest, and queue its e-mail; flush.

    :func:`render_digest` then :func:`archive_digest` in one session.
    """
    digest, content = render_digest(session, run, supervisor, library, now, render)
    return archive_digest(session, run, supervisor, digest, content, now, base_url=base_url)


class RunOutcome(RunResult):
    """What :func:`run_due_digests` did with one supervisor's digest of one week: a
    :class:`~outcome.services.report_runs.RunResult`, read in the digest's words."""

    @property
    def supervisor_id(self) -> int:
        return self.recipient_id

    @property
    def week(self) -> str:
        return self.period


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
    # Built and rendered while only reading (seconds, for a large team), then archived
    # and queued in a short write: the clinic's requests never wait for a PDF.
    def build(session: Session, run: ReportRun, supervisor: User) -> tuple[Digest, bytes]:
        return render_digest(session, run, supervisor, library, now, render)

    def store(session: Session, run: ReportRun, supervisor: User,
              rendered: tuple[Digest, bytes]) -> None:
        digest, content = rendered
        archive_digest(session, run, supervisor, digest, content, now, base_url=base_url,
                       notify=wants_email(session, supervisor, DIGEST_KIND))

    result = produce_once(factory, DIGEST_KIND, week, supervisor_id, now, render=build,
                          archive=store)
    return RunOutcome(**dataclasses.asdict(result))


def check_week_ended(session: Session, week: str, now: dt.datetime) -> None:
    """Raise :class:`DigestError` unless ISO ``week`` is well formed and has ended at
    ``now`` in every clinic's time zone (a digest by hand is for a whole week)."""
    for clinic in session.scalars(select(Clinic)):
        if week_bounds(week, clinic.timezone)[2] > now:
            raise DigestError(f"week {week} has not ended yet in {clinic.timezone}")


def count_recipients(session: Session, supervisor_id: int | None = None) -> int:
    """How many active supervisors get a digest (only ``supervisor_id``, if given: 1 or 0)."""
    query = select(User.id).where(User.is_supervisor, User.is_active)
    if supervisor_id is not None:
        query = query.where(User.id == supervisor_id)
    return len(session.scalars(query).all())
