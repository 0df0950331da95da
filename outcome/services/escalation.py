"""Escalating urgent answers left unacknowledged (issue 17).

A critical answer raises an ``critical_item`` alert that the therapist acknowledges with
a note. When nobody does, the scheduler (:func:`outcome.jobs.escalate_urgent_answers`)
escalates it in two steps, measured from when the alert was raised, with the clinic's
``urgent_escalation_hours`` (default 24):

1. after one period, the therapist is told again: a notice at the top of their caseload
   and an e-mail;
2. after two periods, the therapist's supervisors: a notice on their start page and an
   e-mail. A therapist with no supervisor: the clinic's admins get an e-mail and a notice
   naming the therapist only (never a client, a code or a measure), so that somebody
   reaches the therapist or assigns a supervisor; admins never reach client data.

Every e-mail is free of clinical content and names no client or therapist ("A client's
urgent answer has not been acknowledged for 24 hours. Please sign in."). Each step is
stored on the alert (``escalation_level``, ``escalated_dt``) and audited, so it happens
once per level however often the job runs; acknowledging (or resolving) the alert stops
any further step. A job that was not running catches up: both steps at once when both
periods have passed.
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from dataclasses import dataclass

from sqlalchemy import Integer
from sqlalchemy import Select
from sqlalchemy import bindparam
from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.models import Alert
from outcome.models import Client
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import SupervisorAssignment
from outcome.models import User
from outcome.services import audit
from outcome.services import clinic_settings
from outcome.services.mail import queue_email

# The alerts that escalate: a critical item answered (not one left blank, nor progress).
URGENT_KINDS = ("critical_item",)
THERAPIST, SUPERVISORS = 1, 2


@dataclass(frozen=True)
class Step:
    """One escalation step taken: the alert, the level reached, who was told."""

    alert_id: int
    level: int
    user_ids: tuple[int, ...]
    to_admins: bool = False


def _hours(clinic: Clinic) -> int:
    return int(clinic_settings.current(clinic)["urgent_escalation_hours"])


def _body(clinic: Clinic, first: str, url: str) -> str:
    return f"Hello,\n\n{first} Please sign in:\n\n{url}\n\n{clinic.name}\n"


def _mail(session: Session, clinic: Clinic, alert: Alert, level: int, user: User,
          subject: str, first: str, url: str, now: dt.datetime) -> None:
    queue_email(session, clinic_id=clinic.id, kind="escalation",
                dedupe_key=f"escalation:{alert.id}:{level}:{user.id}", to_address=user.email,
                subject=subject, body=_body(clinic, first, url), now=now)


def supervisors_of(session: Session, therapist_id: int, clinic_id: int) -> list[User]:
    """The active supervisors assigned to the therapist, in their clinic."""
    return list(session.scalars(
        select(User).join(SupervisorAssignment, SupervisorAssignment.supervisor_id == User.id)
        .where(SupervisorAssignment.therapist_id == therapist_id,
               SupervisorAssignment.clinic_id == clinic_id, User.clinic_id == clinic_id,
               User.is_active.is_(True), User.is_supervisor.is_(True))
        .order_by(User.id)))


def _admins(session: Session, clinic_id: int) -> list[User]:
    return list(session.scalars(select(User).where(
        User.clinic_id == clinic_id, User.is_admin.is_(True), User.is_active.is_(True))
        .order_by(User.id)))


def escalate_overdue(session: Session, now: dt.datetime, *, base_url: str) -> list[Step]:
    """Take every escalation step that is due; queue its e-mails, audit it; flush.

    Idempotent: a step is recorded on its alert and never taken twice. An alert raised
    on or before the day its episode ended (clinic's day) is not escalated further: the
    therapist ended the episode knowing it (its note is still asked for). A critical
    answer given after the end (a follow-up measure) escalates as usual.
    """
    base = base_url.rstrip("/")
    steps: list[Step] = []
    rows = session.execute(
        select(Alert, Episode, Clinic).join(Episode, Alert.episode_id == Episode.id)
        .join(Clinic, Episode.clinic_id == Clinic.id)
        .where(Alert.status == "open", Alert.kind.in_(URGENT_KINDS),
               Alert.escalation_level < SUPERVISORS)
        .order_by(Alert.raised_dt, Alert.id)).all()
    for alert, episode, clinic in rows:
        if episode.closed_on is not None and alert.raised_dt.astimezone(
                zoneinfo.ZoneInfo(clinic.timezone)).date() <= episode.closed_on:
            continue
        period = dt.timedelta(hours=_hours(clinic))
        hours = _hours(clinic)
        if alert.escalation_level < THERAPIST and now - alert.raised_dt >= period:
            therapist = session.get(User, episode.therapist_id) if episode.therapist_id else None
            told: tuple[int, ...] = ()
            if therapist is not None and therapist.is_active:
                _mail(session, clinic, alert, THERAPIST, therapist,
                      "An urgent answer is waiting for you",
                      f"A client's urgent answer has not been acknowledged for {hours} hours.",
                      f"{base}/", now)
                told = (therapist.id,)
            _record(session, alert, episode, THERAPIST, now)
            steps.append(Step(alert.id, THERAPIST, told))
        if alert.escalation_level < SUPERVISORS and now - alert.raised_dt >= 2 * period:
            supervisors = (supervisors_of(session, episode.therapist_id, clinic.id)
                           if episode.therapist_id else [])
            for supervisor in supervisors:
                _mail(session, clinic, alert, SUPERVISORS, supervisor,
                      "An urgent answer has not been acknowledged",
                      f"An urgent answer of a client of a therapist you supervise has not "
                      f"been acknowledged for {2 * hours} hours.", f"{base}/", now)
            admins = [] if supervisors else _admins(session, clinic.id)
            for admin in admins:
                _mail(session, clinic, alert, SUPERVISORS, admin,
                      "An urgent answer has not been acknowledged",
                      f"A client's urgent answer has not been acknowledged for {2 * hours} "
                      f"hours, and the therapist has no supervisor assigned.",
                      f"{base}/admin/", now)
            _record(session, alert, episode, SUPERVISORS, now)
            steps.append(Step(alert.id, SUPERVISORS,
                              tuple(u.id for u in supervisors or admins), not supervisors))
    session.flush()
    return steps


def _record(session: Session, alert: Alert, episode: Episode, level: int,
            now: dt.datetime) -> None:
    alert.escalation_level, alert.escalated_dt = level, now
    audit.record(session, action=f"alert.escalate.{'therapist' if level == 1 else 'supervisors'}",
                 outcome="allowed", now=now, actor_kind="system", actor_label="scheduler",
                 clinic_id=episode.clinic_id, client_id=episode.client_id, object_type="alert",
                 object_id=alert.id)


# --- what the pages show ------------------------------------------------------------------


@dataclass(frozen=True)
class Overdue:
    """An escalated urgent alert, as a page shows it: hours open, and who it is about.

    ``client_name`` is for the client's own therapist only; ``client_code`` and
    ``therapist_name`` for supervisors; admins get ``therapist_name`` alone.
    """

    alert_id: int
    hours: int
    client_code: str
    client_name: str
    therapist_name: str


def _hours_open(alert: Alert, now: dt.datetime) -> int:
    return max(0, int((now - alert.raised_dt).total_seconds() // 3600))


def overdue_for_therapist(session: Session, user: User, now: dt.datetime) -> list[Overdue]:
    """The therapist's own open urgent alerts that have been escalated at least once."""
    rows = session.execute(_therapist_statement(), {"therapist_id": user.id}).all()
    return [Overdue(a.id, _hours_open(a, now), c.code, c.name, user.display_name)
            for a, c in rows]


@functools.cache
def _therapist_statement() -> Select:
    """:func:`overdue_for_therapist`'s statement, built once (issue 21: the start page
    runs it on every visit), the therapist bound when run."""
    therapist_id = bindparam("therapist_id", type_=Integer)
    return (select(Alert, Client).join(Episode, Alert.episode_id == Episode.id)
            .join(Client, Episode.client_id == Client.id)
            .where(Episode.therapist_id == therapist_id, Client.therapist_id == therapist_id,
                   Alert.status == "open", Alert.kind.in_(URGENT_KINDS),
                   Alert.escalation_level >= THERAPIST)
            .order_by(Alert.raised_dt, Alert.id))


def overdue_for_supervisor(session: Session, user: User, now: dt.datetime) -> list[Overdue]:
    """Open urgent alerts of the supervisor's supervisees that reached them (by code)."""
    rows = session.execute(
        select(Alert, Client.code, User.display_name)
        .join(Episode, Alert.episode_id == Episode.id)
        .join(Client, Episode.client_id == Client.id)
        .join(User, User.id == Episode.therapist_id)
        .join(SupervisorAssignment, SupervisorAssignment.therapist_id == Episode.therapist_id)
        .where(SupervisorAssignment.supervisor_id == user.id,
               SupervisorAssignment.clinic_id == user.clinic_id,
               Episode.clinic_id == user.clinic_id, Client.therapist_id == Episode.therapist_id,
               Alert.status == "open", Alert.kind.in_(URGENT_KINDS),
               Alert.escalation_level >= SUPERVISORS)
        .order_by(Alert.raised_dt, Alert.id)).all()
    return [Overdue(a.id, _hours_open(a, now), code, "", name) for a, code, name in rows]


def overdue_without_supervisor(session: Session, clinic_id: int,
                               now: dt.datetime) -> list[Overdue]:
    """For admins: the therapists with an escalated urgent alert and no supervisor.

    One entry per therapist (the oldest alert's hours); no client, code or measure.
    """
    supervised = select(SupervisorAssignment.therapist_id).join(
        User, User.id == SupervisorAssignment.supervisor_id).where(
        SupervisorAssignment.clinic_id == clinic_id, User.is_active.is_(True),
        User.is_supervisor.is_(True))
    rows = session.execute(
        select(Alert, User.id, User.display_name)
        .join(Episode, Alert.episode_id == Episode.id)
        .join(User, User.id == Episode.therapist_id)
        .where(Episode.clinic_id == clinic_id, Alert.status == "open",
               Alert.kind.in_(URGENT_KINDS), Alert.escalation_level >= SUPERVISORS,
               Episode.therapist_id.not_in(supervised))
        .order_by(Alert.raised_dt, Alert.id)).all()
    seen: dict[int, Overdue] = {}
    for alert, therapist_id, name in rows:
        seen.setdefault(therapist_id, Overdue(0, _hours_open(alert, now), "", "", name))
    return list(seen.values())
