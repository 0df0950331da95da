"""The retention policy (issue 20): clients erased a set number of years after care ended.

A clinic's ``retention_years`` (0: keep until erased by hand) says how long a client's
data is kept after their last episode ended. A client is *due* when they are not erased,
have no open episode, have at least one episode, and their last episode ended more than
``retention_years`` before the clinic's today (:func:`due_clients`).

The nightly job runs two kinds of run per clinic, each at most once a clinic day: the
unique ``retention_runs`` row (clinic, kind, day) is claimed first, so a second scheduler,
a retry or ``outcome clients retention --run`` on the same day finds it taken and does
nothing (:func:`claim_run`).

- ``dry_run`` lists the clients due (codes and the day their care ended). When it lists
  clients no earlier dry run listed (same code, same end of care), it e-mails the
  clinic's admins a notice with counts, the day those clients may be erased and a link
  to the admin Retention page (no code, name or clinical word), and each such client's
  therapist the codes of their own clients (:func:`dry_run`).
- ``erase`` erases the clients that a dry run listed, with the same end of care, at
  least ``retention_notice_days`` earlier and that are still due (:func:`erase_due`):
  a client who came back into care in the meantime is no longer due and is kept.

Services flush, never commit.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from outcome.models import Client
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import RetentionRun
from outcome.models import User
from outcome.services import clinic_settings
from outcome.services.erasure import erase_client
from outcome.services.explanations import say
from outcome.services.mail import queue_email

NOTICE_KIND = "retention"  # the outbox's kind of the admins' notice
ACTOR_LABEL = "retention"  # the audit trail's label of the job's erasures


def N_(message: str) -> str:  # the gettext convention for "mark only"; said with say()
    return message


NOTICE_SUBJECT = N_("Retention: %(count)d clients newly due for erasure")
NOTICE_BODY = N_("The retention policy of %(clinic)s: %(count)d newly listed clients whose "
                 "care ended more than %(years)d years ago. Unless they return to care, "
                 "they will be erased on or after %(day)s. %(total)d clients are listed in "
                 "all; those listed earlier are erased sooner, each on the day the "
                 "Retention page shows.")
NOTICE_LINK = N_("The list (client codes only) is on the Retention page:")
THERAPIST_SUBJECT = N_("Retention: %(count)d of your clients due for erasure")
THERAPIST_BODY = N_("The retention policy of %(clinic)s newly lists %(count)d of your "
                    "clients, whose care ended more than %(years)d years ago: %(codes)s. "
                    "Unless they return to care (a new episode), they will be erased on or "
                    "after %(day)s. Download from each client's record, before then, any "
                    "export the law requires you to keep.")


@dataclass(frozen=True)
class DueClient:
    """A client due for erasure: the tombstone-to-be's code and when care ended."""

    client_id: int
    code: str
    ended_on: dt.date


def clinic_today(clinic: Clinic, now: dt.datetime) -> dt.date:
    """The clinic's calendar day at ``now``."""
    return now.astimezone(zoneinfo.ZoneInfo(clinic.timezone)).date()


def years_before(day: dt.date, years: int) -> dt.date:
    """``day`` ``years`` years earlier (29 February becomes 28 February)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def settings(clinic: Clinic) -> tuple[int, int]:
    """The clinic's (retention_years, retention_notice_days)."""
    values = clinic_settings.current(clinic)
    return int(values["retention_years"]), int(values["retention_notice_days"])


def due_clients(session: Session, clinic: Clinic, today: dt.date) -> list[DueClient]:
    """The clinic's clients due for erasure on ``today``, by code (none when the
    clinic keeps data: ``retention_years`` 0)."""
    years, _notice = settings(clinic)
    if years <= 0:
        return []
    cutoff = years_before(today, years)
    last = (select(Episode.client_id, func.max(Episode.closed_on).label("ended_on"),
                   func.count(Episode.id).label("episodes"),
                   func.count(Episode.closed_on).label("closed"))
            .where(Episode.clinic_id == clinic.id).group_by(Episode.client_id).subquery())
    rows = session.execute(
        select(Client.id, Client.code, last.c.ended_on)
        .join(last, last.c.client_id == Client.id)
        .where(Client.clinic_id == clinic.id, Client.erased_dt.is_(None),
               last.c.episodes == last.c.closed, last.c.ended_on < cutoff)
        .order_by(last.c.ended_on, Client.code)).all()
    return [DueClient(client_id, code, ended_on) for client_id, code, ended_on in rows]


def claim_run(session: Session, clinic: Clinic, kind: str, today: dt.date,
              now: dt.datetime) -> RetentionRun | None:
    """Claim the clinic's ``kind`` run of ``today``: the new row, or None if the day's run
    exists already (this process or another got there first)."""
    if session.scalar(select(RetentionRun.id).where(
            RetentionRun.clinic_id == clinic.id, RetentionRun.kind == kind,
            RetentionRun.run_on == today)) is not None:
        return None
    try:
        with session.begin_nested():
            run = RetentionRun(clinic_id=clinic.id, kind=kind, run_on=today, codes=[],
                               started_dt=now)
            session.add(run)
    except IntegrityError:  # another process inserted it first
        return None
    return run


Listing = tuple[str, str]  # (code, the day care ended, ISO): one listing of a client


def listing(due: DueClient) -> Listing:
    """The key of ``due``'s listing: its code and the day its care ended. A client who
    came back into care and became due again ends on another day: a new listing, with
    a new notice period."""
    return due.code, due.ended_on.isoformat()


def first_listed(session: Session, clinic: Clinic) -> dict[Listing, dt.date]:
    """For each (code, care ended) any dry run of the clinic listed, the first day it was
    listed."""
    found: dict[Listing, dt.date] = {}
    for run in session.scalars(select(RetentionRun).where(
            RetentionRun.clinic_id == clinic.id, RetentionRun.kind == "dry_run")
            .order_by(RetentionRun.run_on)):
        for entry in run.codes:
            found.setdefault((entry["code"], entry["ended_on"]), run.run_on)
    return found


def dry_run(session: Session, clinic: Clinic, now: dt.datetime, *, base_url: str
            ) -> RetentionRun | None:
    """Today's dry run for the clinic (None if it ran today already, or the clinic keeps
    data): the clients due, recorded by code and end date. When it lists clients no
    earlier dry run listed (with the same end of care), each active admin gets a notice
    (counts, the day they may be erased and a link; no code or name) and each newly
    listed client's active therapist one naming their own clients by code. Flushes."""
    years, notice_days = settings(clinic)
    if years <= 0:
        return None
    today = clinic_today(clinic, now)
    run = claim_run(session, clinic, "dry_run", today, now)
    if run is None:
        return None
    listed = first_listed(session, clinic)
    due = due_clients(session, clinic, today)
    run.codes = [{"code": d.code, "ended_on": d.ended_on.isoformat()} for d in due]
    run.finished_dt = now
    session.flush()
    new = [d for d in due if listing(d) not in listed]
    if not new:
        return run
    day = today + dt.timedelta(days=notice_days)
    admins = session.scalars(select(User).where(
        User.clinic_id == clinic.id, User.is_admin.is_(True), User.is_active.is_(True)))
    for admin in admins:
        subject, body = notice(clinic, admin, len(new), len(due), years, day, base_url)
        queue_email(session, clinic_id=clinic.id, kind=NOTICE_KIND,
                    dedupe_key=f"retention:{run.id}:{admin.id}",
                    to_address=admin.email, subject=subject, body=body, now=now)
    for therapist, codes in _by_therapist(session, new):
        subject, body = therapist_notice(clinic, therapist, codes, years, day)
        queue_email(session, clinic_id=clinic.id, kind=NOTICE_KIND,
                    dedupe_key=f"retention:{run.id}:therapist:{therapist.id}",
                    to_address=therapist.email, subject=subject, body=body, now=now)
    return run


def _by_therapist(session: Session, due: list[DueClient]) -> list[tuple[User, list[str]]]:
    """The active therapists of ``due``'s clients, each with their own clients' codes."""
    codes: dict[int, list[str]] = {}
    for client_id, therapist_id in session.execute(select(Client.id, Client.therapist_id)
                                                   .where(Client.id.in_(
                                                       [d.client_id for d in due]))):
        if therapist_id is not None:
            code = next(d.code for d in due if d.client_id == client_id)
            codes.setdefault(therapist_id, []).append(code)
    found = []
    for therapist_id in sorted(codes):
        therapist = session.get(User, therapist_id)
        if therapist is not None and therapist.is_active:
            found.append((therapist, sorted(codes[therapist_id])))
    return found


def notice(clinic: Clinic, admin: User, count: int, total: int, years: int, day: dt.date,
           base_url: str) -> tuple[str, str]:
    """The (subject, body) of the admins' dry-run notice, in the admin's language: how
    many clients are newly listed and how many in all, the day the new ones may be
    erased, and a link; no client code, name or clinical word."""
    code = admin.locale or "en"
    subject = say(NOTICE_SUBJECT, code, count=count)
    lead = say(NOTICE_BODY, code, clinic=clinic.name, count=count, years=years,
               day=day.isoformat(), total=total)
    body = (f"{lead}\n\n{say(NOTICE_LINK, code)}\n{base_url.rstrip('/')}/admin/retention\n")
    return subject, body


def therapist_notice(clinic: Clinic, therapist: User, codes: list[str], years: int,
                     day: dt.date) -> tuple[str, str]:
    """The (subject, body) of a therapist's dry-run notice, in their language: their own
    newly listed clients by code and the day they may be erased; no name."""
    code = therapist.locale or "en"
    subject = say(THERAPIST_SUBJECT, code, count=len(codes))
    body = say(THERAPIST_BODY, code, clinic=clinic.name, count=len(codes), years=years,
               codes=", ".join(codes), day=day.isoformat()) + "\n"
    return subject, body


def erasable(session: Session, clinic: Clinic, today: dt.date) -> list[DueClient]:
    """The clients the erase run would erase on ``today``: due now, and listed with the
    same end of care by a dry run at least ``retention_notice_days`` days earlier (a
    listing before they came back into care does not count)."""
    _years, notice_days = settings(clinic)
    listed = first_listed(session, clinic)
    latest = today - dt.timedelta(days=notice_days)
    return [d for d in due_clients(session, clinic, today)
            if listing(d) in listed and listed[listing(d)] <= latest]


def erase_due(session: Session, clinic: Clinic, now: dt.datetime) -> RetentionRun | None:
    """Today's erase run for the clinic (None if it ran today already, or the clinic keeps
    data): erases every client of :func:`erasable`, records their codes. Flushes."""
    years, _notice = settings(clinic)
    if years <= 0:
        return None
    today = clinic_today(clinic, now)
    run = claim_run(session, clinic, "erase", today, now)
    if run is None:
        return None
    erased = []
    for due in erasable(session, clinic, today):
        client = session.get(Client, due.client_id)
        assert client is not None
        erase_client(session, client, "retention", None, now, actor_label=ACTOR_LABEL)
        erased.append({"code": due.code, "ended_on": due.ended_on.isoformat()})
    run.codes = erased
    run.finished_dt = now
    session.flush()
    return run


def latest_dry_run(session: Session, clinic: Clinic) -> RetentionRun | None:
    """The clinic's most recent dry run, if any."""
    return session.scalar(select(RetentionRun).where(
        RetentionRun.clinic_id == clinic.id, RetentionRun.kind == "dry_run")
        .order_by(RetentionRun.run_on.desc()).limit(1))


def erase_on(session: Session, clinic: Clinic, today: dt.date) -> dict[Listing, dt.date]:
    """For each (code, care ended) listed by a dry run, the first clinic day its erase run
    may erase it (first listed + notice days, or today if that day has passed)."""
    _years, notice_days = settings(clinic)
    return {key: max(day + dt.timedelta(days=notice_days), today)
            for key, day in first_listed(session, clinic).items()}


def run_retention(session: Session, clinic: Clinic, now: dt.datetime, *, base_url: str
                  ) -> tuple[RetentionRun | None, RetentionRun | None]:
    """The nightly pass for one clinic: today's dry run, then today's erase run (each None
    if it ran today already or the clinic keeps data). Flushes."""
    return (dry_run(session, clinic, now, base_url=base_url), erase_due(session, clinic, now))
