"""Scheduled jobs: module-level functions run by the one scheduler process.

Each job opens a transaction, calls a service, commits and logs. Every job is safe to
run again (dedupe keys and single-use links), so a restart or a second run does no
harm. Never start the scheduler inside web workers: `outcome scheduler` is its own
process (APScheduler 3.x: one job store is not shared by several schedulers).

Several schedulers (one on each of several application hosts, issue 21) may run on one
PostgreSQL database: `outcome scheduler` runs each job through :func:`exclusive`, which
holds a PostgreSQL advisory lock named after the job while it runs, so a job that is
running in one scheduler is skipped by the others at that moment. A run that was done
twice one after the other is harmless (above), but two at once were not: two
``deliver-mail`` runs read the same pending messages and both sent them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable

from flask import Flask
from sqlalchemy import Connection
from sqlalchemy import text

from outcome.db import transaction
from outcome.extensions import database
from outcome.extensions import instrument_library
from outcome.services.mail import deliver_due
from outcome.services.mail import settings_from_config
from outcome.services.mail import smtp_sender
from outcome.services.reminders import send_due_links
from outcome.services.reminders import send_post_session_links

log = logging.getLogger("outcome.jobs")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _lock_key(scope: str, job_id: str) -> int:
    """The job's PostgreSQL advisory lock: a signed 64-bit number stable across versions.

    Advisory locks are per database, not per schema: ``scope`` (the schema) keeps two
    deployments, or two test runs, in schemas of one database from skipping each other's
    jobs.
    """
    digest = hashlib.sha256(f"outcome.jobs:{scope}:{job_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


# How soon PostgreSQL notices that a scheduler's host is gone (power, network, a crashed
# VM): the kernel does not close the socket then, so the server keeps the session, and
# its lock, until TCP keepalive gives up; by default after about 2 h 11 min, during which
# the other schedulers would skip the job. 30 s idle + 3 probes 10 s apart: about a minute.
_KEEPALIVE = ("SET tcp_keepalives_idle = 30", "SET tcp_keepalives_interval = 10",
              "SET tcp_keepalives_count = 3")


def exclusive(app: Flask, job_id: str, function: Callable[[Flask], object]) -> object:
    """Run the job ``function(app)`` unless another scheduler is running it now.

    On PostgreSQL a session advisory lock named after the job (and the schema) is taken,
    without waiting, on a connection of its own and held until the job has committed; a
    scheduler that does not get it skips this run (None) and runs at its next time. A
    scheduler whose process dies loses its connection, and with it the lock; one whose
    host vanishes loses it within about a minute (server-side TCP keepalive, set on the
    lock's session). SQLite (one host): the job runs.
    """
    engine = database(app).engine
    if engine.dialect.name != "postgresql":
        return function(app)
    with engine.connect() as conn:
        for statement in _KEEPALIVE:  # no effect over a Unix socket, where none is needed
            conn.execute(text(statement))
        key = _lock_key(conn.execute(text("SELECT current_schema()")).scalar() or "", job_id)
        got = conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar()
        conn.commit()  # the lock is the session's: no transaction stays open meanwhile
        if not got:
            log.info("%s: running in another scheduler; skipped this time", job_id)
            return None
        try:
            return function(app)
        finally:
            _unlock(conn, key, job_id)


def _unlock(conn: Connection, key: int, job_id: str) -> None:
    """Release the job's lock; if that fails, discard the connection, lock and all.

    A session lock outlives the pool's reset (a ROLLBACK), so a pooled connection that
    kept it would make every other scheduler skip the job for as long as this one runs.
    Never raises: the job's own error, if any, is the one that matters.
    """
    try:
        released = conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key}).scalar()
        conn.commit()
    except Exception:  # any failure here: the connection is discarded
        released = False
    if not released:
        log.warning("%s: could not release the scheduler lock; closing its connection",
                    job_id)
        conn.invalidate()


def send_links(app: Flask, now: dt.datetime | None = None) -> int:
    """Queue pre-session links and reminders, and post-session links after sessions."""
    with app.app_context(), transaction(database(app).session_factory) as session:
        library, base_url, moment = instrument_library(app), app.config["BASE_URL"], now or _now()
        key = app.config["SECRET_KEY"]
        count = send_due_links(session, library, base_url=base_url, now=moment,
                               secret_key=key)
        count += send_post_session_links(session, library, base_url=base_url, now=moment,
                                         secret_key=key)
    log.info("send_links: %d messages queued", count)
    return count


def deliver_mail(app: Flask, now: dt.datetime | None = None) -> tuple[int, int, int]:
    """Send due messages from the outbox; retry and record failures."""
    config = app.config
    sender = smtp_sender(settings_from_config(config))
    with app.app_context(), transaction(database(app).session_factory) as session:
        report = deliver_due(session, sender, sender=config["MAIL_FROM"], now=now or _now(),
                             secret_key=config["SECRET_KEY"])
    if report.sent or report.retrying or report.failed:
        log.info("deliver_mail: %d sent, %d to retry, %d failed", report.sent,
                 report.retrying, report.failed)
    return report.sent, report.retrying, report.failed


def send_digests(app: Flask, now: dt.datetime | None = None) -> int:
    """Produce and queue every supervisor digest that is due (catching up missed weeks)."""
    from outcome.services.digests.production import run_due_digests

    with app.app_context():
        outcomes = run_due_digests(database(app).session_factory, instrument_library(app),
                                   now or _now(), base_url=app.config["BASE_URL"])
    done = sum(o.status == "succeeded" for o in outcomes)
    failed = [o for o in outcomes if o.status == "failed"]
    if done or failed:
        log.info("send_digests: %d produced, %d failed", done, len(failed))
    return done


def send_therapist_reports(app: Flask, now: dt.datetime | None = None) -> int:
    """Produce every therapist's brief and weekly report that is due, exactly once, and
    queue its notice (issue 18); a brief catches up within its day only."""
    from outcome.services.therapist_reports.preferences import BRIEF_KIND
    from outcome.services.therapist_reports.preferences import WEEKLY_KIND
    from outcome.services.therapist_reports.production import run_due_reports

    moment, done, failed = now or _now(), 0, 0
    with app.app_context():
        for kind in (BRIEF_KIND, WEEKLY_KIND):
            results = run_due_reports(database(app).session_factory, instrument_library(app),
                                      moment, kind, base_url=app.config["BASE_URL"])
            done += sum(r.status == "succeeded" for r in results)
            failed += sum(r.status == "failed" for r in results)
    if done or failed:
        log.info("send_therapist_reports: %d produced, %d failed", done, failed)
    return done


def refit_expectations(app: Flask, now: dt.datetime | None = None) -> int:
    """Refit every clinic's expected-recovery curves, then recompute signals (nightly)."""
    from sqlalchemy import select

    from outcome.models import Clinic
    from outcome.services.fits import refit_models
    from outcome.services.signals import recompute_signals

    moment, library = now or _now(), instrument_library(app)
    with app.app_context(), transaction(database(app).session_factory) as session:
        clinics = session.scalars(select(Clinic)).all()
        for clinic in clinics:
            refit_models(session, clinic, library, moment)
            recompute_signals(session, library, moment, clinic_id=clinic.id)
    log.info("refit_expectations: %d clinics", len(clinics))
    return len(clinics)


def clean_links(app: Flask, now: dt.datetime | None = None) -> int:
    """Delete unused links whose window closed long ago (nightly)."""
    from outcome.services.links import delete_stale_links

    with app.app_context(), transaction(database(app).session_factory) as session:
        count = delete_stale_links(session, now or _now())
    if count:
        log.info("clean_links: %d stale links deleted", count)
    return count


def forget_idempotency_keys(app: Flask, now: dt.datetime | None = None) -> int:
    """Delete API idempotency records older than 24 hours (hourly)."""
    from outcome.services.api_tokens import delete_old_idempotency_records

    with app.app_context(), transaction(database(app).session_factory) as session:
        count = delete_old_idempotency_records(session, now or _now())
    if count:
        log.info("forget_idempotency_keys: %d records deleted", count)
    return count


def forget_denial_counts(app: Flask, now: dt.datetime | None = None) -> int:
    """Delete the counts of refused anonymous requests older than 90 days (nightly)."""
    from outcome.services.audit import forget_denial_counts as forget

    with app.app_context(), transaction(database(app).session_factory) as session:
        count = forget(session, now or _now())
    if count:
        log.info("forget_denial_counts: %d minute counts deleted", count)
    return count


def escalate_urgent_answers(app: Flask, now: dt.datetime | None = None) -> int:
    """Remind therapists, then tell supervisors, of urgent answers left unacknowledged
    (issue 17); each step once. The e-mails go out with the next mail delivery."""
    from outcome.services.escalation import escalate_overdue

    with app.app_context(), transaction(database(app).session_factory) as session:
        steps = escalate_overdue(session, now or _now(), base_url=app.config["BASE_URL"])
    if steps:
        # Identifiers only: no client, no content.
        log.info("escalate_urgent_answers: %d steps (alerts %s)", len(steps),
                 ", ".join(f"{s.alert_id}->{s.level}" for s in steps))
    return len(steps)


def offer_support_checks(app: Flask, now: dt.datetime | None = None) -> int:
    """Start and e-mail a support check for each new red, deteriorating or
    unrepaired-rupture signal, in clinics with ``support_check_auto`` on (issue 19); once
    per signal, never while a check is waiting. The e-mails go with the next delivery."""
    from outcome.services.support import MailContext
    from outcome.services.support import offer_automatically

    with app.app_context(), transaction(database(app).session_factory) as session:
        checks = [c.id for c in offer_automatically(
            session, instrument_library(app), now or _now(),
            mail=MailContext(app.config["BASE_URL"], app.config["SECRET_KEY"]))]
    if checks:
        # Identifiers only: no client, no content.
        log.info("offer_support_checks: %d checks (%s)", len(checks),
                 ", ".join(str(c) for c in checks))
    return len(checks)


def apply_retention(app: Flask, now: dt.datetime | None = None) -> int:
    """The retention policy (issue 20), nightly: for each clinic that sets
    ``retention_years``, today's dry run (admins notified) and today's erase run, each
    exactly once a clinic day (the ``retention_runs`` row is claimed first). One
    transaction per clinic: a clinic whose pass fails is rolled back and logged (its id
    and the error's kind only), and the later clinics still run."""
    from sqlalchemy import select

    from outcome.models import Clinic
    from outcome.services.retention import run_retention

    moment, erased = now or _now(), 0
    with app.app_context():
        factory = database(app).session_factory
        with transaction(factory) as session:
            clinic_ids = list(session.scalars(select(Clinic.id).order_by(Clinic.id)))
        for clinic_id in clinic_ids:
            try:
                with transaction(factory) as session:
                    clinic = session.get(Clinic, clinic_id)
                    assert clinic is not None
                    listed, done = run_retention(session, clinic, moment,
                                                 base_url=app.config["BASE_URL"])
                    ran = listed is not None or done is not None
                    due = len(listed.codes) if listed else 0
                    gone = len(done.codes) if done else 0
            except Exception as exc:  # one clinic must not stop the others
                # The clinic's id and the error's kind only: an error's text may quote
                # data. Its runs were rolled back, so tomorrow's pass tries again.
                log.error("apply_retention: clinic %d failed (%s); its runs were rolled "
                          "back, the other clinics go on", clinic_id, type(exc).__name__)
                continue
            if ran:
                # Counts and ids only: no code, no name.
                log.info("apply_retention: clinic %d, %d due, %d erased", clinic_id, due,
                         gone)
            erased += gone
    return erased


# (id, function, APScheduler trigger, trigger arguments); times are UTC.
JOBS = (
    ("send-links", send_links, "interval", {"minutes": 5}),
    ("deliver-mail", deliver_mail, "interval", {"minutes": 1}),
    ("send-digests", send_digests, "interval", {"minutes": 15}),
    ("send-therapist-reports", send_therapist_reports, "interval", {"minutes": 15}),
    ("refit-expectations", refit_expectations, "cron", {"hour": 2, "minute": 30}),
    ("clean-links", clean_links, "cron", {"hour": 3, "minute": 15}),
    ("forget-idempotency-keys", forget_idempotency_keys, "interval", {"hours": 1}),
    ("forget-denial-counts", forget_denial_counts, "cron", {"hour": 3, "minute": 45}),
    ("escalate-urgent-answers", escalate_urgent_answers, "interval", {"minutes": 5}),
    ("offer-support-checks", offer_support_checks, "interval", {"minutes": 15}),
    ("apply-retention", apply_retention, "cron", {"hour": 4, "minute": 5}),  # issue 20
)
