"""``outcome scheduler``: the process that runs scheduled jobs (one per application host
on PostgreSQL; each job runs in one scheduler at a time, :func:`outcome.jobs.exclusive`)."""

from __future__ import annotations

import contextlib
import logging

import click
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import current_app
from flask.cli import with_appcontext

from outcome.jobs import JOBS
from outcome.jobs import exclusive


@click.command("scheduler")
@click.option("--once", is_flag=True, help="Run every job once now, then exit.")
@with_appcontext
def scheduler_command(once: bool) -> None:
    """Run scheduled jobs: links and reminders by e-mail, mail delivery, the therapists'
    pre-session briefs and weekly reports, the supervisors' weekly digests,
    the nightly refit of expected recovery and the cleanup of stale links.

    `make run` starts it beside the web server. On PostgreSQL several schedulers (one
    per application host) may run: each job runs in one of them at a time.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    logging.basicConfig(level=app.config["LOG_LEVEL"],
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if once:
        for job_id, function, _, _ in JOBS:
            result = exclusive(app, job_id, function)
            click.echo(f"{job_id}: " + ("skipped: running in another scheduler"
                                       if result is None else f"{result}"))
        return
    scheduler = BlockingScheduler(timezone="UTC")
    for job_id, function, trigger, when in JOBS:
        scheduler.add_job(exclusive, trigger, args=[app, job_id, function], id=job_id,
                          replace_existing=True,
                          coalesce=True, max_instances=1, misfire_grace_time=300, **when)
    click.echo(f"Scheduler running {len(JOBS)} jobs: "
               f"{', '.join(job_id for job_id, _, _, _ in JOBS)}. Stop with Ctrl-C.")
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        scheduler.start()
