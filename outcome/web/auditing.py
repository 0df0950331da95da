"""Audit records that a later rollback cannot erase.

``record_now`` writes the event in the request's session and commits at once. Call it
before the request changes anything else (at the start of a view, or after a rollback),
so the commit carries only the audit record. A second session is deliberately not used:
on SQLite it would be a second writer waiting on this request's own lock. (A
submission's audit record is written in the submission's transaction instead, so the
two stand or fall together.)
"""

from __future__ import annotations

from typing import Any

from flask import request

from outcome.services import audit
from outcome.web.clock import now
from outcome.web.database import db_session


def record_now(**fields: Any) -> None:
    """Record one audit event and commit it.

    A read-only transaction the request has open is ended first, so the record is
    written in a transaction of its own that takes the write lock at its start (SQLite:
    a read transaction that turns into a write may fail instead of waiting).
    """
    session = db_session()
    if session.in_transaction():
        session.commit()
    audit.record(session, now=now(), ip_address=request.remote_addr, **fields)
    session.commit()
