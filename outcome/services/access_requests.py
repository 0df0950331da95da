"""Separation of duties: an admin's client access of their own waits for a second admin.

An admin manages accounts and sees no client data (docs/admins.md). Three changes would
give the admin who makes them access to clients, so they are never made by that admin
alone:

- adding the ``therapist`` or ``supervisor`` role to their own account (a therapist sees
  their clients' records; a supervisor sees their supervisees' clients by code, with
  scores, and the supervisor role is the first step to that);
- transferring a client to themselves;
- making themselves the supervisor of a therapist.

Each is stored as an :class:`~outcome.models.AccessRequest` that another active admin of
the clinic approves (the change is then made in the approver's transaction) or declines;
the requester can cancel it, never approve it. A request waits :data:`REQUEST_DAYS` days.
In a clinic with a single active admin the change is refused with the way out: add a
second admin, or have the server's operator run ``outcome users grant`` (audited; server
access is already the highest trust). The same changes made for somebody else, and the
removal of access, need no approval.

Functions flush and never commit; refusals raise :class:`~outcome.services.staff.StaffError`
with a sentence an admin can act on. The edge writes the audit records.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.models import AccessRequest
from outcome.models import Client
from outcome.models import SupervisorAssignment
from outcome.models import User
from outcome.models.clinic import ROLES
from outcome.services import staff
from outcome.services.mail import queue_email
from outcome.services.staff import N_
from outcome.services.staff import StaffError

REQUEST_DAYS = 7
CLINICAL_ROLES = frozenset({"supervisor", "therapist"})
HISTORY_DAYS = 30

SINGLE_ADMIN = N_("You are the clinic's only active admin, and access to clients for "
                  "yourself needs another admin's approval: add a second admin first, or "
                  "ask whoever runs the server to run \"outcome users grant %(email)s\" "
                  "(recorded in the audit log).")


def _roles_text(roles: Iterable[str]) -> str:
    chosen = set(roles)
    return ",".join(role for role in ROLES if role in chosen)


# --- asking ------------------------------------------------------------------------------


def change_roles(session: Session, actor: User, user: User, roles: Iterable[str],
                 now: dt.datetime, *, base_url: str = "") -> AccessRequest | None:
    """Give ``user`` exactly ``roles``, or ask for it when ``actor`` gives themself access.

    When ``actor`` is ``user`` and the change adds the therapist or supervisor role, the
    change waits for another admin: a request is stored (and returned) and the other
    admins are told by e-mail. Otherwise the roles are set at once and None is returned.
    The usual rules (:func:`outcome.services.staff.check_roles`) are checked first in
    both cases; a single admin is refused (:data:`SINGLE_ADMIN`).
    """
    chosen = staff.check_roles(session, user, roles)
    if user.id == actor.id and (chosen - set(user.roles)) & CLINICAL_ROLES:
        return _ask(session, actor, now, base_url, kind="roles",
                    roles_before=_roles_text(user.roles), roles_after=_roles_text(chosen))
    staff.set_roles(session, user, chosen)
    return None


def transfer_client(session: Session, actor: User, client: Client, therapist: User,
                    now: dt.datetime, *, base_url: str = "") -> AccessRequest | None:
    """Move ``client`` to ``therapist``, or ask for it when ``actor`` takes the client.

    Returns the stored request when ``therapist`` is ``actor`` (the client moves only
    when another admin approves), None when the client moved. The rules of
    :func:`outcome.services.staff.transfer_client` are checked first.
    """
    staff.check_transfer(client, therapist)
    if therapist.id == actor.id:
        return _ask(session, actor, now, base_url, kind="transfer", client_id=client.id)
    staff.transfer_client(session, client, therapist, now)
    return None


def assign_supervisor(session: Session, actor: User, supervisor: User, therapist: User,
                      now: dt.datetime, *,
                      base_url: str = "") -> AccessRequest | SupervisorAssignment:
    """Pair ``supervisor`` with ``therapist``, or ask for it when ``actor`` is the supervisor.

    Returns the new pair, or the stored request when ``actor`` would supervise (and so
    see the therapist's clients). The rules of
    :func:`outcome.services.staff.assign_supervisor` are checked first.
    """
    staff.check_assignment(session, supervisor, therapist)
    if supervisor.id == actor.id:
        return _ask(session, actor, now, base_url, kind="supervision",
                    therapist_id=therapist.id)
    return staff.assign_supervisor(session, supervisor, therapist, now)


def _ask(session: Session, actor: User, now: dt.datetime, base_url: str, *, kind: str,
         **fields: str | int) -> AccessRequest:
    if not (actor.is_admin and actor.is_active):
        raise StaffError(N_("Only an active admin can ask for this."))
    if staff.other_active_admins(session, actor) == 0:
        raise StaffError(SINGLE_ADMIN, email=actor.email)
    same = select(AccessRequest.id).where(
        AccessRequest.requester_id == actor.id, AccessRequest.kind == kind,
        AccessRequest.status == "pending", AccessRequest.expires_dt > now)
    for name in ("roles_after", "client_id", "therapist_id"):
        same = same.where(getattr(AccessRequest, name) == fields.get(name))
    if session.scalar(same) is not None:
        raise StaffError(N_("The same request is already waiting for another admin's "
                            "approval; see Approvals."))
    request = AccessRequest(clinic_id=actor.clinic_id, requester_id=actor.id, kind=kind,
                            status="pending", created_dt=now,
                            expires_dt=now + dt.timedelta(days=REQUEST_DAYS), **fields)
    session.add(request)
    session.flush()
    _tell_other_admins(session, actor, request, now, base_url)
    return request


def _tell_other_admins(session: Session, actor: User, request: AccessRequest,
                       now: dt.datetime, base_url: str) -> None:
    """E-mail every other active admin of the clinic: who asks, for what kind of access
    (no client code or name), until when, and where to decide."""
    what = {"roles": "a clinical role on their own account",
            "transfer": "one of the clinic's clients for themselves",
            "supervision": "to supervise a therapist (and so see their clients by code)"}
    others = session.scalars(select(User).where(
        User.clinic_id == actor.clinic_id, User.id != actor.id, User.is_admin.is_(True),
        User.is_active.is_(True))).all()
    where = f"{base_url.rstrip('/')}/admin/approvals" if base_url else "Administration, Approvals"
    for admin in others:
        queue_email(
            session, clinic_id=actor.clinic_id, kind="access_request",
            dedupe_key=f"access_request:{request.id}:{admin.id}", to_address=admin.email,
            subject="An admin asks for your approval",
            body=(f"Hello {admin.display_name},\n\n"
                  f"{actor.display_name} asks for {what[request.kind]}. Admins do not "
                  "give themselves access to clients alone: another admin approves or "
                  f"declines it, until {request.expires_dt:%Y-%m-%d %H:%M} UTC, here:\n\n"
                  f"{where}\n"),
            now=now)


# --- deciding ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Carried:
    """What an approval changed, for the audit record of the change itself.

    ``action`` is the change's usual audit action (``user.roles.change``,
    ``client.transfer`` or ``assignment.create``) with its object and client.
    """

    action: str
    object_type: str
    object_id: int
    client_id: int | None = None


def is_expired(request: AccessRequest, now: dt.datetime) -> bool:
    """Whether a pending ``request`` has passed its expiry and can no longer be approved."""
    return request.status == "pending" and now >= request.expires_dt


def _open(request: AccessRequest, now: dt.datetime) -> None:
    if request.status != "pending":
        raise StaffError(N_("This request is no longer waiting for a decision."))
    if is_expired(request, now):
        raise StaffError(N_("This request has expired (requests wait %(days)s days); the "
                            "admin can ask again."), days=REQUEST_DAYS)


def _other_admin(request: AccessRequest, admin: User, own: str) -> None:
    if admin.id == request.requester_id:
        raise StaffError(own)
    if not (admin.is_admin and admin.is_active and admin.clinic_id == request.clinic_id):
        raise StaffError(N_("Only another active admin of the clinic can decide this."))


def approve(session: Session, request: AccessRequest, admin: User,
            now: dt.datetime) -> Carried:
    """Approve ``request`` as ``admin`` and carry out the change in the same flush.

    Refused when ``admin`` asked it themself, is not an active admin of the clinic, when
    the request was decided, cancelled or has expired, when the requester is disabled or
    their roles changed since they asked, or when the change itself is refused now (a
    client already moved, a pair that exists...). Returns what changed.
    """
    _open(request, now)
    _other_admin(request, admin, N_("You cannot approve your own request; another admin "
                                    "of the clinic must."))
    requester = session.get(User, request.requester_id)
    assert requester is not None
    if not requester.is_active:
        raise StaffError(N_("%(name)s is disabled; decline the request."),
                         name=requester.display_name)
    carried: Carried
    if request.kind == "roles":
        if _roles_text(requester.roles) != request.roles_before:
            raise StaffError(N_("The roles of %(name)s changed since they asked; decline the "
                                "request and let them ask again."),
                             name=requester.display_name)
        staff.set_roles(session, requester, (request.roles_after or "").split(","))
        carried = Carried("user.roles.change", "user", requester.id)
    elif request.kind == "transfer":
        client = session.get(Client, request.client_id)
        assert client is not None
        staff.transfer_client(session, client, requester, now)
        carried = Carried("client.transfer", "user", requester.id, client_id=client.id)
    else:
        therapist = session.get(User, request.therapist_id)
        assert therapist is not None
        row = staff.assign_supervisor(session, requester, therapist, now)
        carried = Carried("assignment.create", "assignment", row.id)
    _decide(session, request, admin, "approved", now)
    return carried


def decline(session: Session, request: AccessRequest, admin: User, now: dt.datetime) -> None:
    """Decline ``request`` as ``admin`` (another active admin of the clinic); flush."""
    _open(request, now)
    _other_admin(request, admin, N_("You cannot decline your own request; cancel it "
                                    "instead."))
    _decide(session, request, admin, "declined", now)


def cancel(session: Session, request: AccessRequest, admin: User, now: dt.datetime) -> None:
    """Withdraw ``request``; only the admin who asked can; flush."""
    _open(request, now)
    if admin.id != request.requester_id:
        raise StaffError(N_("A request can be cancelled only by the admin who asked; decline "
                            "it instead."))
    _decide(session, request, admin, "cancelled", now)


def _decide(session: Session, request: AccessRequest, admin: User, status: str,
            now: dt.datetime) -> None:
    request.status, request.decided_by_id, request.decided_dt = status, admin.id, now
    session.flush()


# --- reading -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestLine:
    """One request as the approvals page shows it (identifiers and names of staff only).

    ``state`` is ``pending``, ``expired`` (pending past its expiry), ``approved``,
    ``declined`` or ``cancelled``. ``roles_before`` and ``roles_after`` are tuples of
    role names (``roles`` requests); ``client_code`` the client's code (``transfer``);
    ``therapist_name`` the therapist to supervise (``supervision``). Times are UTC.
    """

    id: int
    kind: str
    state: str
    requester_id: int
    requester_name: str
    roles_before: tuple[str, ...]
    roles_after: tuple[str, ...]
    client_code: str | None
    therapist_name: str | None
    created_dt: dt.datetime
    expires_dt: dt.datetime
    decided_by_name: str | None
    decided_dt: dt.datetime | None


def requests_for(session: Session, admin: User, now: dt.datetime) -> list[RequestLine]:
    """The requests of ``admin``'s clinic that are waiting (or expired in the last
    :data:`HISTORY_DAYS` days), then those decided in the last :data:`HISTORY_DAYS` days,
    newest first; for active admins only (anyone else gets an empty list). Reads only."""
    if not (admin.is_admin and admin.is_active):
        return []
    since = now - dt.timedelta(days=HISTORY_DAYS)
    rows = session.scalars(select(AccessRequest).where(
        AccessRequest.clinic_id == admin.clinic_id,
        ((AccessRequest.status == "pending") & (AccessRequest.expires_dt >= since))
        | (AccessRequest.decided_dt >= since))
        .order_by(AccessRequest.created_dt.desc(), AccessRequest.id.desc())).all()
    people = {u.id: u for u in session.scalars(select(User).where(
        User.clinic_id == admin.clinic_id))}
    codes = {client_id: code for client_id, code in session.execute(
        select(Client.id, Client.code).where(
            Client.clinic_id == admin.clinic_id,
            Client.id.in_([r.client_id for r in rows if r.client_id is not None])))}
    lines = [RequestLine(
        id=r.id, kind=r.kind, state="expired" if is_expired(r, now) else r.status,
        requester_id=r.requester_id, requester_name=people[r.requester_id].display_name,
        roles_before=tuple(filter(None, (r.roles_before or "").split(","))),
        roles_after=tuple(filter(None, (r.roles_after or "").split(","))),
        client_code=codes.get(r.client_id) if r.client_id is not None else None,
        therapist_name=(people[r.therapist_id].display_name
                        if r.therapist_id is not None else None),
        created_dt=r.created_dt, expires_dt=r.expires_dt,
        decided_by_name=(people[r.decided_by_id].display_name
                         if r.decided_by_id in people else None),
        decided_dt=r.decided_dt) for r in rows]
    waiting = [line for line in lines if line.state in ("pending", "expired")]
    return waiting + [line for line in lines if line not in waiting]


def waiting_for(session: Session, admin: User, now: dt.datetime) -> int:
    """How many requests of other admins wait for ``admin``'s decision (not expired)."""
    if not (admin.is_admin and admin.is_active):
        return 0
    return len(session.scalars(select(AccessRequest.id).where(
        AccessRequest.clinic_id == admin.clinic_id, AccessRequest.requester_id != admin.id,
        AccessRequest.status == "pending", AccessRequest.expires_dt > now)).all())
