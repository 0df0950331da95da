"""Writing the audit trail. Records say who did what to which client's data, never the data."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from outcome.models import AuditEvent


def record(
    session: Session,
    *,
    action: str,
    outcome: str,
    now: dt.datetime,
    actor_kind: str = "user",
    actor_user_id: int | None = None,
    actor_label: str | None = None,
    clinic_id: int | None = None,
    client_id: int | None = None,
    object_type: str | None = None,
    object_id: str | int | None = None,
    ip_address: str | None = None,
    request_id: str | None = None,
) -> AuditEvent:
    """Add one audit event and flush it (the edge commits).

    ``action`` is a dotted verb such as ``login`` or ``client.view``; ``outcome`` is
    ``allowed``, ``denied`` or ``error``. Pass identifiers only: no names, answers or
    free text, which must never reach the audit trail. An ``object_id`` taken from a
    URL is cut to the column's 64 characters, and ``actor_label`` to 100, so a hostile
    address cannot stop its own attempt from being recorded.
    """
    event = AuditEvent(
        occurred_dt=now,
        action=action,
        outcome=outcome,
        actor_kind=actor_kind,
        actor_user_id=actor_user_id,
        actor_label=None if actor_label is None else actor_label[:100],
        clinic_id=clinic_id,
        client_id=client_id,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id)[:64],
        ip_address=ip_address,
        request_id=request_id,
    )
    session.add(event)
    session.flush()
    return event
