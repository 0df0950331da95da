"""The therapist reports' archive (issue 18): a rendered brief or weekly report kept as a
document, a notice e-mailed to its therapist, their list of reports, the lookup of one
for its therapist only, and the refresh of today's brief.

These PDFs carry client names and clinical content, so they are never e-mailed: the
notice says only that a report is ready ("Your pre-session brief for Monday 23 November
is ready in outcome") with a link to it in the app, where the therapist signs in. No
client name, code, score or clinical word is in the notice. Each notice's dedupe key is
its run, so a retry never sends twice.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib

from babel.dates import format_date
from sqlalchemy import Integer
from sqlalchemy import Select
from sqlalchemy import bindparam
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import defer

from outcome.models import ReportDocument
from outcome.models import ReportRun
from outcome.models import User
from outcome.services.explanations import language
from outcome.services.explanations import say
from outcome.services.mail import queue_email
from outcome.services.therapist_reports.preferences import BRIEF_KIND
from outcome.services.therapist_reports.preferences import WEEKLY_KIND
from outcome.services.therapist_reports.schedule import parse_day

KINDS = (BRIEF_KIND, WEEKLY_KIND)
NOTICE_KIND = "therapist_report"  # the outbox's kind of these notices


def N_(message: str) -> str:  # the gettext convention for "mark only"; said with say()
    return message


HELLO = N_("Hello %(name)s,")
BRIEF_SUBJECT = N_("Your pre-session brief for %(day)s is ready")
WEEKLY_SUBJECT = N_("Your weekly caseload report for %(week)s is ready")
BRIEF_READY = N_("Your pre-session brief for %(day)s is ready in outcome:")
WEEKLY_READY = N_("Your weekly caseload report for %(week)s (%(start)s to %(end)s) is "
                  "ready in outcome:")
SIGN_IN = N_("Sign in to open it. Reports are kept in outcome and never sent by e-mail, "
             "so that they stay where access is checked and recorded.")


def report_filename(run: ReportRun) -> str:
    """The archived PDF's file name: "brief-2026-11-23-12.pdf", "weekly-2026-W47-12.pdf"
    (period, therapist id; no name)."""
    prefix = "brief" if run.kind == BRIEF_KIND else "weekly"
    return f"{prefix}-{run.period}-{run.recipient_user_id}.pdf"


def period_words(kind: str, period: str, locale: str) -> dict[str, str]:
    """A period as the notice says it, in ``locale``: {"day": "Monday 23 November"} for
    a brief, {"week", "start", "end"} for a weekly report."""
    if kind == BRIEF_KIND:
        return {"day": format_date(parse_day(period), "EEEE d MMMM", locale=locale)}
    year, number = period.split("-W")
    monday = dt.date.fromisocalendar(int(year), int(number), 1)
    return {"week": period, "start": format_date(monday, "d MMMM", locale=locale),
            "end": format_date(monday + dt.timedelta(days=6), "d MMMM y", locale=locale)}


def notice(run: ReportRun, therapist: User, base_url: str) -> tuple[str, str]:
    """The (subject, body) of the notice of ``run``, in the therapist's language: no
    client name, code, score or clinical word, and no attachment (a link)."""
    code = language(therapist.locale)
    words = period_words(run.kind, run.period, code)
    brief = run.kind == BRIEF_KIND
    subject = say(BRIEF_SUBJECT if brief else WEEKLY_SUBJECT, code, **words)
    body = (f"{say(HELLO, code, name=therapist.display_name)}\n\n"
            f"{say(BRIEF_READY if brief else WEEKLY_READY, code, **words)}\n\n"
            f"{base_url.rstrip('/')}/reports/{run.id}.pdf\n\n"
            f"{say(SIGN_IN, code)}\n")
    return subject, body


def archive_report(session: Session, run: ReportRun, therapist: User, content: bytes,
                   now: dt.datetime, *, base_url: str, notify: bool = True
                   ) -> ReportDocument:
    """Archive a rendered report (its SHA-256 on the run), queue its notice unless
    ``notify`` is false (the therapist turned the e-mail off), mark the run succeeded;
    flush."""
    sha = hashlib.sha256(content).hexdigest()
    document = ReportDocument(report_run_id=run.id, filename=report_filename(run),
                              media_type="application/pdf", content=content, sha256=sha,
                              size_bytes=len(content), created_dt=now)
    session.add(document)
    session.flush()
    if notify:
        subject, body = notice(run, therapist, base_url)
        queue_email(session, clinic_id=therapist.clinic_id, kind=NOTICE_KIND,
                    dedupe_key=f"{run.kind}:{run.id}", to_address=therapist.email,
                    subject=subject, body=body, now=now)
    run.status, run.finished_dt, run.content_sha256, run.last_error = "succeeded", now, sha, None
    session.flush()
    return document


def report_archive(session: Session, therapist: User
                   ) -> list[tuple[ReportRun, ReportDocument | None]]:
    """The therapist's briefs and weekly reports, newest first (every status), each with
    its archived document (None until it is produced)."""
    rows = session.execute(
        select(ReportRun, ReportDocument)
        .outerjoin(ReportDocument, ReportDocument.report_run_id == ReportRun.id)
        .where(ReportRun.kind.in_(KINDS), ReportRun.recipient_user_id == therapist.id)
        .order_by(ReportRun.created_dt.desc(), ReportRun.id.desc())).all()
    return [(run, document) for run, document in rows]


def own_run(session: Session, therapist: User, run_id: int) -> ReportRun | None:
    """Run ``run_id`` if it is one of this therapist's reports, else None."""
    return session.scalar(select(ReportRun).where(
        ReportRun.id == run_id, ReportRun.kind.in_(KINDS),
        ReportRun.recipient_user_id == therapist.id))


def archived_report(session: Session, therapist: User, run_id: int
                    ) -> ReportDocument | None:
    """The archived PDF of run ``run_id`` if it is this therapist's produced report,
    else None (another's, an unknown id and one not produced yet alike)."""
    return session.scalar(
        select(ReportDocument).join(ReportRun, ReportRun.id == ReportDocument.report_run_id)
        .where(ReportRun.id == run_id, ReportRun.kind.in_(KINDS),
               ReportRun.recipient_user_id == therapist.id,
               ReportRun.status == "succeeded"))


def todays_brief(session: Session, therapist: User, today: dt.date
                 ) -> tuple[ReportRun, ReportDocument] | None:
    """The therapist's produced brief of ``today`` (clinic date) and its document."""
    row = session.execute(_brief_statement(), {"period": today.isoformat(),
                                               "therapist_id": therapist.id}).first()
    return (row[0], row[1]) if row else None


@functools.cache
def _brief_statement() -> Select:
    """:func:`todays_brief`'s statement, built once (issue 21: the start page runs it on
    every visit); the document's content (the PDF) is not read until it is used."""
    return (select(ReportRun, ReportDocument).join(
        ReportDocument, ReportDocument.report_run_id == ReportRun.id)
        .where(ReportRun.kind == BRIEF_KIND,
               ReportRun.period == bindparam("period", type_=ReportRun.period.type),
               ReportRun.recipient_user_id == bindparam("therapist_id", type_=Integer),
               ReportRun.status == "succeeded")
        .options(defer(ReportDocument.content)))


def replace_document(session: Session, run: ReportRun, content: bytes, now: dt.datetime
                     ) -> ReportDocument:
    """Put freshly rendered ``content`` in place of run's archived document (a refresh
    of today's brief: its "as of" time is ``now``); the run's hash follows; flush. No
    new notice is sent."""
    document = session.scalar(select(ReportDocument).where(
        ReportDocument.report_run_id == run.id))
    sha = hashlib.sha256(content).hexdigest()
    if document is None:
        document = ReportDocument(report_run_id=run.id, filename=report_filename(run),
                                  media_type="application/pdf")
        session.add(document)
    document.content, document.sha256, document.size_bytes = content, sha, len(content)
    document.created_dt = now
    run.status, run.finished_dt, run.content_sha256, run.last_error = "succeeded", now, sha, None
    session.flush()
    return document


def archived_documents(session: Session, kind: str, period: str,
                       therapist_id: int | None = None) -> list[ReportDocument]:
    """The archived PDFs of ``kind`` and ``period`` (every therapist's, or only
    ``therapist_id``'s), for ``outcome reports run --out``."""
    return list(session.scalars(
        select(ReportDocument).join(ReportRun)
        .where(ReportRun.kind == kind, ReportRun.period == period,
               *([ReportRun.recipient_user_id == therapist_id]
                 if therapist_id is not None else []))
        .order_by(ReportRun.recipient_user_id)).all())
