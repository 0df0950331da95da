"""The digest archive: a rendered digest kept as a document, a notice e-mailed to its
supervisor, and the supervisor's list of their digests and the download of one.

A digest's PDF is archived once, with its SHA-256, on its report run
(:mod:`outcome.services.report_runs`). It is not e-mailed (issue 16): the e-mail is a
notice with a link to the digest in the app, with no clinical content, not even client
codes. Only the supervisor a digest was produced for may read it, signed in, and each
download is audited; an e-mailed PDF would sit in mailboxes and backups beyond the
clinic's control, and reportlab could only have encrypted it with RC4.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.models import ReportDocument
from outcome.models import ReportRun
from outcome.models import User
from outcome.services.mail import queue_email
from reports.digest import Digest

DIGEST_KIND = "supervisor_digest"


def digest_filename(digest_week: str, supervisor: User) -> str:
    """The archived PDF's file name, e.g. "digest-2026-W47-12.pdf" (week, supervisor id)."""
    return f"digest-{digest_week}-{supervisor.id}.pdf"


def archive_digest(session: Session, run: ReportRun, supervisor: User, digest: Digest,
                   content: bytes, now: dt.datetime, *, base_url: str,
                   notify: bool = True) -> ReportDocument:
    """Archive a rendered digest, queue its notice and mark the run succeeded; flush.

    The notice links to the PDF in the app and says nothing of its content; its dedupe
    key is the run, so a retry never sends twice. ``notify`` false (the supervisor
    turned the e-mail off): archived, no notice.
    """
    sha = hashlib.sha256(content).hexdigest()
    document = ReportDocument(report_run_id=run.id,
                              filename=digest_filename(run.period, supervisor),
                              media_type="application/pdf", content=content, sha256=sha,
                              size_bytes=len(content), created_dt=now)
    session.add(document)
    session.flush()
    if notify:
        _queue_notice(session, run, supervisor, digest, now, base_url)
    run.status, run.finished_dt, run.content_sha256, run.last_error = "succeeded", now, sha, None
    session.flush()
    return document


def _queue_notice(session: Session, run: ReportRun, supervisor: User, digest: Digest,
                  now: dt.datetime, base_url: str) -> None:
    queue_email(
        session, clinic_id=supervisor.clinic_id, kind="digest", dedupe_key=f"digest:{run.id}",
        to_address=supervisor.email,
        subject=f"Weekly supervision digest {run.period}",
        body=(f"Hello {supervisor.display_name},\n\n"
              f"Your supervision digest for {run.period} "
              f"({digest.starts:%d %b} to {digest.ends:%d %b %Y}) is ready in outcome:\n\n"
              f"{base_url.rstrip('/')}/supervision/digests/{run.id}.pdf\n\n"
              "Sign in to open it. Digests are kept in outcome and not sent by e-mail, "
              "so that they stay where access is checked and recorded.\n"),
        now=now)


def digest_archive(session: Session, supervisor: User
                   ) -> list[tuple[ReportRun, int | None]]:
    """The supervisor's weekly digests, newest period first (every status), each with
    the size of its archived PDF (None until it is produced)."""
    return list(session.execute(
        select(ReportRun, ReportDocument.size_bytes)
        .outerjoin(ReportDocument, ReportDocument.report_run_id == ReportRun.id)
        .where(ReportRun.kind == DIGEST_KIND, ReportRun.recipient_user_id == supervisor.id)
        .order_by(ReportRun.period.desc())).all())


def archived_digest(session: Session, supervisor: User, run_id: int
                    ) -> ReportDocument | None:
    """The archived PDF of run ``run_id`` if it is this supervisor's digest, else None."""
    return session.scalar(
        select(ReportDocument).join(ReportRun, ReportRun.id == ReportDocument.report_run_id)
        .where(ReportRun.id == run_id, ReportRun.kind == DIGEST_KIND,
               ReportRun.recipient_user_id == supervisor.id,
               ReportRun.status == "succeeded"))


def archived_documents(session: Session, week: str, supervisor_id: int | None = None
                       ) -> list[ReportDocument]:
    """The archived digest PDFs of ISO ``week`` (every supervisor's, or only
    ``supervisor_id``'s), for ``outcome digest --out``."""
    return list(session.scalars(
        select(ReportDocument).join(ReportRun)
        .where(ReportRun.kind == DIGEST_KIND, ReportRun.period == week,
               *([ReportRun.recipient_user_id == supervisor_id]
                 if supervisor_id is not None else []))).all())
