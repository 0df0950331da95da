"""Writing the audit trail. Records say who did what to which client's data, never the data."""

from __future__ import annotations

import datetime as dt
import functools

from sqlalchemy import Insert
from sqlalchemy import bindparam
from sqlalchemy import delete
from sqlalchemy import insert
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from outcome.models import AuditDenialCount
from outcome.models import AuditEvent

# How long the counts of refused anonymous requests are kept (the audit events
# themselves are kept for ever).
DENIAL_COUNT_DAYS = 90


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


def add(session: Session, *, action: str, outcome: str, now: dt.datetime,
        actor_kind: str = "user", actor_user_id: int | None = None,
        actor_label: str | None = None, clinic_id: int | None = None,
        client_id: int | None = None, object_type: str | None = None,
        object_id: str | int | None = None, ip_address: str | None = None,
        request_id: str | None = None) -> None:
    """:func:`record` as one INSERT statement, for callers that need no object back (the
    web edge's records, issue 21): the same row and the same cuts, without the unit of
    work's bookkeeping, sent on the session's connection in its transaction (the ORM's
    handling of an INSERT took four times as long as the statement; nothing of the
    session is flushed first: the edge's commit flushes)."""
    session.connection().execute(_insert_statement(), {
        "occurred_dt": now, "action": action, "outcome": outcome, "actor_kind": actor_kind,
        "actor_user_id": actor_user_id,
        "actor_label": None if actor_label is None else actor_label[:100],
        "clinic_id": clinic_id, "client_id": client_id, "object_type": object_type,
        "object_id": None if object_id is None else str(object_id)[:64],
        "ip_address": ip_address, "request_id": request_id})


_COLUMNS = ("occurred_dt", "action", "outcome", "actor_kind", "actor_user_id", "actor_label",
            "clinic_id", "client_id", "object_type", "object_id", "ip_address", "request_id")


@functools.cache
def _insert_statement() -> Insert:
    """:func:`add`'s INSERT, built once: every column a bound parameter."""
    table = AuditEvent.__table__
    return insert(AuditEvent).values({
        name: bindparam(name, type_=table.c[name].type) for name in _COLUMNS})


def count_denial(session: Session, *, action: str, address: str | None,
                 now: dt.datetime) -> None:
    """Add one to the count of refused anonymous ``action`` requests from ``address`` in
    ``now``'s minute (UTC), and flush.

    One upsert: concurrent requests add up (``INSERT ... ON CONFLICT DO UPDATE`` on SQLite
    and PostgreSQL), and a client adds at most one row per action and minute. The action
    is cut to 64 characters and the address to 45, as in :func:`record`.
    """
    minute = now.astimezone(dt.UTC).replace(second=0, microsecond=0)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(AuditDenialCount).values(
        minute=minute, address=(address or "")[:45], action=action[:64], count=1)
    session.execute(statement.on_conflict_do_update(
        index_elements=["minute", "address", "action"],
        set_={"count": AuditDenialCount.count + 1}))


def forget_denial_counts(session: Session, now: dt.datetime,
                         days: int = DENIAL_COUNT_DAYS) -> int:
    """Delete the denial counts of minutes more than ``days`` days (90) before ``now``;
    returns how many rows went. Flushes only."""
    cutoff = now - dt.timedelta(days=days)
    result = session.execute(delete(AuditDenialCount).where(AuditDenialCount.minute < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
