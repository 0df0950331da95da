"""The request's unit of work: one session, one transaction, one commit at the edge.

This module is the one place where a web request's transaction is begun and ended:

- **Reads and writes are told apart by the request.** GET, HEAD and OPTIONS requests
  read; other methods, and views marked :func:`writes`, write. A read begins
  ``DEFERRED`` on SQLite, so under WAL it runs beside writers; a write begins
  ``IMMEDIATE``, so it waits for the write lock at its start instead of failing half-way
  (see :mod:`outcome.db`). A read request that tries to change a row fails at once with
  :class:`ReadOnlyRequest`, in tests as in production, so a view cannot forget to say it
  writes.
- **The edge commits once.** Views call services, which flush; after the view returns,
  a response below 400 is committed and anything else is rolled back. No view calls
  ``commit()`` or ``rollback()`` (``tests/test_transactions.py`` keeps that rule).
- **Audit records** (:func:`audit_event`) are written in the request's transaction, so a
  change and its record stand or fall together. A read request's records are written
  before the response leaves, if they cannot be written the page is not shown: on
  PostgreSQL in the read's own transaction (one commit, issue 21); on SQLite, after its
  read, in a short write transaction of their own (a deferred SQLite read cannot be
  upgraded to a write once another connection has written). Records marked ``even_if_failed``
  (refusals) are written even when the request fails: after the rollback, on their own.
- The integration API's POSTs store their idempotency record in the change's own
  transaction (:func:`outcome.web.api.idempotency.idempotent_write`); a concurrent
  duplicate that loses the race discards its work and replays the winner's result.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any
from typing import TypeVar

from flask import Flask
from flask import current_app
from flask import g
from flask import has_request_context
from flask import render_template
from flask import request
from flask_babel import gettext as _
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import ORMExecuteState
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from outcome.db import SQLITE_BEGIN_OPTION
from outcome.extensions import database
from outcome.services import audit
from outcome.web.api.errors import is_integration_request
from outcome.web.api.errors import respond
from outcome.web.clock import now

log = logging.getLogger("outcome.web")

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_WRITES_ATTRIBUTE = "outcome_writes"
_READ_ONLY = "outcome.read_only"
_PENDING = "outcome_pending_writes"

View = TypeVar("View", bound=Callable[..., Any])


class ReadOnlyRequest(RuntimeError):
    """A read request (GET, HEAD, OPTIONS) tried to change the database.

    Mark the view with :func:`writes` if it must write (for example opening a link), or
    record what it did with :func:`audit_event`.
    """


class DatabaseBusy(RuntimeError):
    """The request's transaction could not begin (SQLite's write lock was held past
    ``SQLITE_BUSY_TIMEOUT_MS``, or the database could not be reached): answered with the
    503 "nothing was changed" of a failed commit."""


def init_app(app: Flask) -> None:
    """End each request's transaction after its view, and close the session afterwards."""
    app.after_request(_finish)
    app.teardown_appcontext(_close_session)
    app.register_error_handler(DatabaseBusy, _busy)


def _busy(error: DatabaseBusy) -> Response:
    log.warning("the request's transaction could not begin: %s", error)
    return _not_stored()


def writes(view: View) -> View:
    """Mark a GET view that changes the database: its transaction begins as a write."""
    setattr(view, _WRITES_ATTRIBUTE, True)
    return view


def is_write_request() -> bool:
    """Whether this request's transaction begins as a write (see the module docstring)."""
    if not has_request_context():
        return True  # an app context of its own (a job, a CLI command) may write
    if request.method not in READ_METHODS:
        return True
    view = current_app.view_functions.get(request.endpoint or "")
    return bool(getattr(view, _WRITES_ATTRIBUTE, False))


def db_session() -> Session:
    """The request's session, opened on first use with its transaction begun as a read
    or a write (the only place that decides)."""
    if "db_session" not in g:
        opened = database().session_factory()
        begin = "IMMEDIATE" if is_write_request() else "DEFERRED"
        try:
            opened.connection(execution_options={SQLITE_BEGIN_OPTION: begin})
        except OperationalError as exc:
            # SQLite's write lock held past the busy timeout (or the server unreachable):
            # nothing has begun, so nothing can be half-done; a 503, not a traceback.
            opened.close()
            raise DatabaseBusy(str(exc.orig)) from None
        if begin == "DEFERRED":
            opened.info[_READ_ONLY] = True
            event.listen(opened, "before_flush", _refuse_flush)
            event.listen(opened, "do_orm_execute", _refuse_statement)
        g.db_session = opened
    session: Session = g.db_session
    return session


CLIENT_ACTOR = "client"  # the audit actor kind of a client's own pages: no address kept


def audit_event(*, even_if_failed: bool = False, **fields: Any) -> None:
    """Record one audit event in this request's transaction.

    ``fields`` are those of :func:`outcome.services.audit.record` (``now`` and the
    requester's address are filled in). With ``even_if_failed`` the event is kept when
    the request fails (a refusal recorded on the way to a 403 or 404); otherwise it is
    kept only if the request's changes are committed.

    An event whose actor is a client (``actor_kind`` ``client``: a link or kiosk page)
    stores no address: the audit trail is append-only, so an address stored there could
    never be erased with the client (issue 20).
    """
    address = None if fields.get("actor_kind") == CLIENT_ACTOR else request.remote_addr
    entry = partial(audit.add, now=now(), ip_address=address, **fields)
    _pending().append((entry, even_if_failed))


def count_denial(action: str) -> None:
    """Count one refused anonymous request (``action``) for the client's address in this
    minute, instead of writing an audit event for it: see
    :func:`outcome.services.audit.count_denial`. Kept whatever the response."""
    entry = partial(audit.count_denial, action=action, address=request.remote_addr,
                    now=now())
    _pending().append((entry, True))


def discard_changes() -> None:
    """Undo this request's changes now, and keep none, whatever its response (a form
    refused by a service and shown again, or a redirect after a refusal).

    The session is rolled back at once, so the view can go on reading (on PostgreSQL a
    failed statement leaves the transaction unusable until then); at the end only audit
    records marked ``even_if_failed`` are written.
    """
    g.outcome_discard = True
    session: Session | None = g.get("db_session")
    if session is not None:
        session.rollback()


def after_reading(write: Callable[[Session], object]) -> None:
    """Run ``write(session)`` once the request succeeded: in the request's transaction for a
    write request, or in the short write that follows a read request (for example the
    API token's last-use stamp)."""
    _pending().append((write, False))


def _pending() -> list[tuple[Callable[[Session], object], bool]]:
    if _PENDING not in g:
        setattr(g, _PENDING, [])
    pending: list[tuple[Callable[[Session], object], bool]] = getattr(g, _PENDING)
    return pending


def _refuse_flush(session: Session, _context: object, _instances: object) -> None:
    if session.info.get(_READ_ONLY) and (session.new or session.dirty or session.deleted):
        raise ReadOnlyRequest(f"{request.method} {request.path} changed "
                              f"{len(session.new) + len(session.dirty) + len(session.deleted)}"
                              " rows in a read request")


def _refuse_statement(state: ORMExecuteState) -> None:
    if state.session.info.get(_READ_ONLY) and (state.is_insert or state.is_update
                                               or state.is_delete):
        raise ReadOnlyRequest(f"{request.method} {request.path} ran a write statement in a "
                              "read request")


def _finish(response: Response) -> Response:
    """Commit the request's work if its response is a success, else roll it back; then
    write the audit records that must be kept."""
    pending: list[tuple[Callable[[Session], object], bool]] = g.pop(_PENDING, [])
    session: Session | None = g.get("db_session")
    if session is None and not pending:
        return response
    succeeded = response.status_code < 400 and not g.get("outcome_discard", False)
    try:
        if session is None:
            session = db_session()
        if succeeded and session.info.get(_READ_ONLY) and pending and _writes_in_place(session):
            session.flush()  # refused (a 503) if the view changed rows it never flushed
            # PostgreSQL (issue 21): the read's own transaction takes its records, one
            # commit. (A read transaction on SQLite cannot become a write once another
            # connection has written: its records go in a short write of their own below.)
            session.info[_READ_ONLY] = False
        if succeeded and not session.info.get(_READ_ONLY):
            for write, _kept in pending:
                write(session)
            session.commit()
            return response
        if succeeded:
            session.commit()  # ends the read; nothing was written
            later = [write for write, _kept in pending]
        else:
            session.rollback()
            later = [write for write, kept in pending if kept]
        if later:
            session.info[_READ_ONLY] = False
            session.connection(execution_options={SQLITE_BEGIN_OPTION: "IMMEDIATE"})
            for write in later:
                write(session)
            session.commit()
    except Exception:
        # The work (or its audit record) could not be stored: say so, show nothing.
        log.exception("the request's transaction could not be committed")
        session = g.get("db_session")
        if session is not None:
            session.rollback()
        return _not_stored()
    return response


def _writes_in_place(session: Session) -> bool:
    """Whether a read request's records may go in its own transaction: on every backend
    but SQLite, whose deferred read cannot be upgraded to a write reliably (see above)."""
    return session.get_bind().dialect.name != "sqlite"


def _not_stored() -> Response:
    if is_integration_request():
        return respond(503, "The request could not be stored; nothing was changed. Retry "
                            "it (with the same Idempotency-Key).", headers={"Retry-After": "5"})
    body = render_template("error.html", title=_("Not saved"),
                           message=_("Nothing was changed: the database was busy. Please "
                                     "try again."), code=503)
    return Response(body, status=503, mimetype="text/html", headers={"Retry-After": "5"})


def _close_session(exc: BaseException | None) -> None:
    session: Session | None = g.pop("db_session", None)
    if session is None:
        return
    if session.in_transaction():
        session.rollback()  # the view raised, or the response was never finished
    session.close()
