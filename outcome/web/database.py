"""The database as seen from Flask: one engine per app, one session per request.

The session is opened lazily on first use and closed when the app context ends; a
request that raised is rolled back. Routes commit explicitly once their service call
succeeded ("services flush; the edges commit").
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask
from flask import current_app
from flask import g
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from outcome.db import SQLITE_BEGIN_OPTION
from outcome.db import check_connection
from outcome.db import make_engine
from outcome.db import make_session_factory

EXTENSION_KEY = "outcome.db"


@dataclass
class Database:
    """The app's engine and session factory (tests may swap the factory for one bound to a
    connection held in a rolled-back transaction)."""

    engine: Engine
    session_factory: sessionmaker[Session]


def init_app(app: Flask) -> None:
    """Create the engine, check that the database answers, and register teardown."""
    engine = make_engine(app.config["DATABASE_URL"],
                         sqlite_busy_timeout_ms=app.config["SQLITE_BUSY_TIMEOUT_MS"],
                         pool_pre_ping=True)
    check_connection(engine)
    app.extensions[EXTENSION_KEY] = Database(engine, make_session_factory(engine))
    app.teardown_appcontext(_close_session)


def database(app: Flask | None = None) -> Database:
    """The :class:`Database` of ``app`` (default: the current app)."""
    return (app or current_app).extensions[EXTENSION_KEY]


def db_session() -> Session:
    """The session of the current app context, opened on first use."""
    if "db_session" not in g:
        g.db_session = database().session_factory()
    return g.db_session


def begin_reading() -> Session:
    """Begin the request's next transaction as a read (``BEGIN DEFERRED`` on SQLite).

    Under WAL a deferred reader runs beside writers instead of queueing for the write
    lock. Call it after the request's last write was committed (for example after
    :func:`outcome.web.auditing.record_now`) and before the next query; a transaction
    already under way is left as it is.
    """
    session = db_session()
    if not session.in_transaction():
        session.connection(execution_options={SQLITE_BEGIN_OPTION: "DEFERRED"})
    return session


def _close_session(exc: BaseException | None) -> None:
    session: Session | None = g.pop("db_session", None)
    if session is None:
        return
    if exc is not None:
        session.rollback()
    session.close()
