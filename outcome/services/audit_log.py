"""Reading the audit trail: one page of a clinic's audit log, filtered, newest first.

The writer is :mod:`outcome.services.audit`; this module only reads. Pages hold plain
data (no ORM objects) and identifiers only, as the trail itself: a client appears by
code, a staff member by name and e-mail, never a client's name or answers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import false
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import aliased

from outcome.models import AccessRequest
from outcome.models import AuditDenialCount
from outcome.models import AuditEvent
from outcome.models import Client
from outcome.models import User
from outcome.services.access import administered_clients

PAGE_SIZE = 50
DENIAL_LINES = 50


@dataclass(frozen=True)
class AuditLine:
    """One audit event as the log shows it.

    ``occurred_dt`` is UTC (convert to the clinic's time zone to show it). ``actor_name``
    and ``actor_email`` are those of the staff member who acted (None for clients, tokens,
    the scheduler, anonymous visitors: ``actor_label`` and ``actor_kind`` say who);
    ``client_code`` is the code of the client concerned, if any.
    """

    id: int
    occurred_dt: dt.datetime
    action: str
    outcome: str
    actor_kind: str
    actor_label: str | None
    actor_name: str | None
    actor_email: str | None
    client_code: str | None
    object_type: str | None
    object_id: str | None
    ip_address: str | None


@dataclass(frozen=True)
class AuditPage:
    """One page of the log and what the filter form needs.

    ``page`` is the 1-based page number actually shown; ``has_more`` says whether an
    older page exists. ``unknown_client`` is true when a client code was given that no
    client of the clinic has (the page is then empty). ``actions`` lists every action
    the clinic's log holds, sorted, for the filter's choices.
    """

    lines: list[AuditLine]
    page: int
    has_more: bool
    unknown_client: bool
    actions: list[str]


def audit_page(
    session: Session,
    admin: User,
    *,
    tz: dt.tzinfo,
    action: str | None = None,
    outcome: str | None = None,
    actor_user_id: int | None = None,
    client_code: str | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    page: int = 1,
    page_size: int = PAGE_SIZE,
) -> AuditPage:
    """One page of the audit log of ``admin``'s clinic, newest first.

    Only events of the admin's clinic are read, and nothing for anybody who is not an
    active admin (the web guard already refuses them; this keeps the service safe on its
    own). Each filter applies when given:

    - ``action``: the exact action (``client.care.view``); ``outcome``: ``allowed``,
      ``denied`` or ``error``; ``actor_user_id``: the staff member who acted;
    - ``client_code``: the exact code of a client of the clinic, looked up through
      :func:`outcome.services.access.administered_clients`; an unknown code (or another
      clinic's) sets ``unknown_client`` and matches nothing;
    - ``start`` and ``end``: the first and last day shown, both included, as calendar
      days in ``tz`` (the clinic's time zone), so a day runs from local midnight to the
      next local midnight whatever the UTC offset.

    Pages are ``page_size`` events (50 by default) ordered by time, then id, both
    descending; ``page`` below 1 counts as 1. Reads only: nothing is written or flushed
    (the caller records that the log was viewed).
    """
    page = max(page, 1)
    allowed = admin.is_active and admin.is_admin
    actor = aliased(User)
    query = (select(AuditEvent, actor.display_name, actor.email, Client.code)
             .outerjoin(actor, actor.id == AuditEvent.actor_user_id)
             .outerjoin(Client, Client.id == AuditEvent.client_id)
             .where(AuditEvent.clinic_id == admin.clinic_id))
    if not allowed:
        query = query.where(false())
    if action:
        query = query.where(AuditEvent.action == action)
    if outcome:
        query = query.where(AuditEvent.outcome == outcome)
    if actor_user_id is not None:
        query = query.where(AuditEvent.actor_user_id == actor_user_id)
    unknown_client = False
    if client_code:
        client_id = session.scalar(administered_clients(admin)
                                   .with_only_columns(Client.id)
                                   .where(Client.code == client_code))
        unknown_client = client_id is None
        query = query.where(AuditEvent.client_id == (client_id or -1))
    if start:
        query = query.where(AuditEvent.occurred_dt >= _local_midnight(start, tz))
    if end:
        query = query.where(AuditEvent.occurred_dt
                            < _local_midnight(end + dt.timedelta(days=1), tz))
    # One event more than a page tells whether an older page exists.
    rows = session.execute(query.order_by(AuditEvent.occurred_dt.desc(),
                                          AuditEvent.id.desc())
                           .limit(page_size + 1)
                           .offset((page - 1) * page_size)).all()
    actions = (list(session.scalars(select(AuditEvent.action).where(
        AuditEvent.clinic_id == admin.clinic_id).distinct().order_by(AuditEvent.action)))
        if allowed else [])
    return AuditPage(
        lines=[_line(event, name, email, code) for event, name, email, code
               in rows[:page_size]],
        page=page, has_more=len(rows) > page_size, unknown_client=unknown_client,
        actions=actions)


def _local_midnight(day: dt.date, tz: dt.tzinfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tz).astimezone(dt.UTC)


def _line(event: AuditEvent, name: str | None, email: str | None,
          code: str | None) -> AuditLine:
    return AuditLine(
        id=event.id, occurred_dt=event.occurred_dt, action=event.action,
        outcome=event.outcome, actor_kind=event.actor_kind, actor_label=event.actor_label,
        actor_name=name, actor_email=email, client_code=code,
        object_type=event.object_type, object_id=event.object_id,
        ip_address=event.ip_address)


# --- account security changes ------------------------------------------------------------

SECURITY_ACTIONS = ("user.create", "user.roles.change", "user.password.reset",
                    "user.disable", "user.enable", "access_request.create",
                    "access_request.approve", "access_request.decline",
                    "access_request.cancel")
SECURITY_DAYS = 30


@dataclass(frozen=True)
class SecurityChange:
    """A change to who can sign in or what they may see, as the admin overview lists it.

    ``action`` is the audit action (see :data:`SECURITY_ACTIONS`); ``actor_name`` the
    staff member who made it, or None when the server's operator did (``actor_label``
    names the command); ``subject_name`` the staff member it concerns: the account for
    ``user.*`` actions, the requester for ``access_request.*``. ``occurred_dt`` is UTC.
    """

    occurred_dt: dt.datetime
    action: str
    actor_name: str | None
    actor_label: str | None
    subject_name: str | None


def security_changes(session: Session, admin: User, now: dt.datetime, *,
                     days: int = SECURITY_DAYS, limit: int = 20) -> list[SecurityChange]:
    """The latest account security changes of ``admin``'s clinic, newest first.

    Allowed (carried out) events of :data:`SECURITY_ACTIONS` from the last ``days``
    days (30), at most ``limit`` (20): account creation, role changes, password resets
    by admins or on the server, disabling and enabling, and requests for an admin's own
    client access with their decisions. So every admin sees what another admin did to
    accounts, their own included. Active admins only (anyone else gets an empty list);
    reads only.
    """
    if not (admin.is_active and admin.is_admin):
        return []
    events = session.scalars(select(AuditEvent).where(
        AuditEvent.clinic_id == admin.clinic_id, AuditEvent.outcome == "allowed",
        AuditEvent.action.in_(SECURITY_ACTIONS),
        AuditEvent.occurred_dt >= now - dt.timedelta(days=days))
        .order_by(AuditEvent.occurred_dt.desc(), AuditEvent.id.desc()).limit(limit)).all()
    people = {u.id: u.display_name for u in session.scalars(select(User).where(
        User.clinic_id == admin.clinic_id))}
    request_ids = [int(e.object_id or 0) for e in events
                   if e.object_type == "access_request" and (e.object_id or "").isdigit()]
    requesters = {request_id: requester for request_id, requester in session.execute(
        select(AccessRequest.id, AccessRequest.requester_id)
        .where(AccessRequest.id.in_(request_ids)))}

    def subject(event: AuditEvent) -> str | None:
        if not (event.object_id or "").isdigit():
            return None
        if event.object_type == "user":
            return people.get(int(event.object_id or 0))
        if event.object_type == "access_request":
            return people.get(requesters.get(int(event.object_id or 0), 0))
        return None

    return [SecurityChange(occurred_dt=e.occurred_dt, action=e.action,
                           actor_name=people.get(e.actor_user_id or 0),
                           actor_label=e.actor_label, subject_name=subject(e))
            for e in events]


@dataclass(frozen=True)
class DenialLine:
    """Refused anonymous requests of one address and action over a span of time:
    ``total`` requests, between the minutes ``first_dt`` and ``last_dt`` (UTC)."""

    address: str
    action: str
    total: int
    first_dt: dt.datetime
    last_dt: dt.datetime


def denial_summary(session: Session, admin: User, *, tz: dt.tzinfo, now: dt.datetime,
                   start: dt.date | None = None, end: dt.date | None = None,
                   limit: int = DENIAL_LINES) -> list[DenialLine]:
    """The refused anonymous requests counted per address and action, largest totals
    first, at most ``limit`` lines: over the local days ``start`` to ``end`` (both
    included, in ``tz``, as :func:`audit_page`), or the 24 hours before ``now`` when
    neither is given.

    These counts belong to no clinic (nobody was signed in), so every active admin reads
    the site's; anybody else reads nothing. They hold an address and an action, never an
    account, a token or a link.
    """
    if not (admin.is_active and admin.is_admin):
        return []
    if start:
        since = _local_midnight(start, tz)
    elif end:
        since = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    else:
        since = now - dt.timedelta(hours=24)
    until = (_local_midnight(end + dt.timedelta(days=1), tz) if end
             else now + dt.timedelta(minutes=1))
    total = func.sum(AuditDenialCount.count)
    rows = session.execute(
        select(AuditDenialCount.address, AuditDenialCount.action, total,
               func.min(AuditDenialCount.minute), func.max(AuditDenialCount.minute))
        .where(AuditDenialCount.minute >= since, AuditDenialCount.minute < until)
        .group_by(AuditDenialCount.address, AuditDenialCount.action)
        .order_by(total.desc(), AuditDenialCount.address, AuditDenialCount.action)
        .limit(limit)).all()
    return [DenialLine(address, action, int(count), _aware(first), _aware(last))
            for address, action, count, first, last in rows]


def _aware(moment: dt.datetime) -> dt.datetime:
    # min()/max() come back without the column's type on some backends: naive UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
