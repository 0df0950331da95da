"""``outcome digest``: produce the weekly supervision digests by hand, as the scheduler does."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from outcome.db import transaction
from outcome.extensions import database
from outcome.extensions import instrument_library
from outcome.services.digests.archive import archived_documents
from outcome.services.digests.figures import DigestError
from outcome.services.digests.figures import iso_week
from outcome.services.digests.production import check_week_ended
from outcome.services.digests.production import count_recipients
from outcome.services.digests.production import run_due_digests

DATA_ERROR = 2


@click.command("digest")
@click.option("--week", help="ISO week, e.g. 2026-W47 (default: last week).")
@click.option("--supervisor", "supervisor_id", type=int, help="Only this supervisor (user id).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Also write each digest PDF into this folder.")
@with_appcontext
def digest_command(week: str | None, supervisor_id: int | None, out_dir: Path | None) -> None:
    """Produce the weekly supervision digests of one week, exactly once each.

    The same code as the scheduler: a digest already produced is not produced or sent
    again (use --out to get its archived copy), a failed one is retried.
    """
    now = dt.datetime.now(dt.UTC)
    week = week or iso_week((now - dt.timedelta(weeks=1)).date())
    factory = database().session_factory
    with transaction(factory) as session:
        try:
            check_week_ended(session, week, now)
        except DigestError as exc:
            raise click.ClickException(str(exc)) from None
        count = count_recipients(session, supervisor_id)
    if supervisor_id is not None and not count:
        raise click.ClickException(f"no active supervisor has the id {supervisor_id}")
    with click.progressbar(length=count, label=f"Digests for {week}",
                           file=sys.stderr) as bar:
        outcomes = run_due_digests(factory, instrument_library(current_app), now,
                                   base_url=current_app.config["BASE_URL"],
                                   only=(supervisor_id, week), progress=bar.update)
    for status in ("succeeded", "skipped", "failed"):
        chosen = [o for o in outcomes if o.status == status]
        if chosen:
            words = {"succeeded": "produced and queued for e-mail",
                     "skipped": "already produced (not sent again)", "failed": "failed"}
            click.echo(f"{len(chosen)} {words[status]}")
    for outcome in outcomes:
        if outcome.status == "failed":
            click.echo(f"  supervisor {outcome.supervisor_id}: {outcome.error}", err=True)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        with transaction(factory) as session:
            for document in archived_documents(session, week, supervisor_id):
                (out_dir / document.filename).write_bytes(document.content)
                click.echo(f"wrote {out_dir / document.filename} (sha256 {document.sha256})")
    if any(o.status == "failed" for o in outcomes):
        raise SystemExit(DATA_ERROR)
