"""``outcome reports run``: produce the therapists' briefs and weekly reports by hand, as the
scheduler does (issue 18)."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from outcome.db import transaction
from outcome.extensions import database
from outcome.extensions import instrument_library
from outcome.models import User
from outcome.services.therapist_reports.archive import archived_documents
from outcome.services.therapist_reports.production import KINDS
from outcome.services.therapist_reports.production import count_due
from outcome.services.therapist_reports.production import run_due_reports
from outcome.services.therapist_reports.schedule import ScheduleError
from outcome.services.therapist_reports.schedule import check_period

DATA_ERROR = 2


@click.group("reports")
def reports_group() -> None:
    """The therapists' scheduled reports: the pre-session brief and the weekly report."""


@reports_group.command("run")
@click.option("--kind", type=click.Choice(sorted(KINDS)), required=True,
              help="brief (pre-session brief of a day) or weekly (caseload report of a week).")
@click.option("--date", "day", help="The brief's day, YYYY-MM-DD (clinic date).")
@click.option("--week", help="The weekly report's ISO week, e.g. 2026-W47.")
@click.option("--therapist", "therapist_id", type=int, help="Only this therapist (user id).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Also write each report's PDF into this folder.")
@with_appcontext
def run_command(kind: str, day: str | None, week: str | None, therapist_id: int | None,
                out_dir: Path | None) -> None:
    """Produce the briefs or weekly reports that are due now, or those of one --date or
    --week, exactly once each.

    The same code as the scheduler: a report already produced is not produced or
    announced again (use --out to get its archived copy); a failed one is retried.
    """
    now = dt.datetime.now(dt.UTC)
    report_kind = KINDS[kind]
    if kind == "brief" and week:
        raise click.UsageError("--week is for --kind weekly; a brief takes --date")
    if kind == "weekly" and day:
        raise click.UsageError("--date is for --kind brief; a weekly report takes --week")
    period = day or week
    factory = database().session_factory
    with transaction(factory) as session:
        if therapist_id is not None and session.scalar(select(User.id).where(
                User.id == therapist_id, User.is_therapist, User.is_active)) is None:
            raise click.ClickException(f"no active therapist has the id {therapist_id}")
    try:
        if period is not None:
            check_period(report_kind, period)
        count = count_due(factory, report_kind, now, (therapist_id, period))
    except ScheduleError as exc:
        raise click.ClickException(str(exc)) from None
    label = f"{'Briefs' if kind == 'brief' else 'Weekly reports'} {period or '(due now)'}"
    with click.progressbar(length=count, label=label, file=sys.stderr) as bar:
        results = run_due_reports(factory, instrument_library(current_app), now,
                                  report_kind, base_url=current_app.config["BASE_URL"],
                                  only=(therapist_id, period), progress=bar.update)
    if not results:
        click.echo("nothing to produce (no therapist with appointments that day, or "
                   "the report is not due yet)" if kind == "brief"
                   else "nothing to produce (the report is not due yet)")
    words = {"succeeded": "produced and queued for e-mail",
             "skipped": "already produced (not sent again)", "failed": "failed"}
    for status in ("succeeded", "skipped", "failed"):
        chosen = [r for r in results if r.status == status]
        if chosen:
            click.echo(f"{len(chosen)} {words[status]}")
    for result in results:
        if result.status == "failed":
            click.echo(f"  therapist {result.recipient_id} {result.period}: {result.error}",
                       err=True)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        with transaction(factory) as session:
            for period_done in sorted({r.period for r in results}):
                for document in archived_documents(session, report_kind, period_done,
                                                   therapist_id):
                    (out_dir / document.filename).write_bytes(document.content)
                    click.echo(f"wrote {out_dir / document.filename} "
                               f"(sha256 {document.sha256})")
    if any(r.status == "failed" for r in results):
        raise SystemExit(DATA_ERROR)
