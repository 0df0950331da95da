"""Engines and sessions, with the connection settings each database needs to be safe.

SQLite is the embedded default. Every connection gets foreign keys on, WAL, a busy
timeout and ``synchronous=FULL`` (WAL with NORMAL may lose the last commits on power
loss). pysqlite begins transactions lazily and as DEFERRED, so two writers can
deadlock when both upgrade a read lock; following SQLAlchemy's documented recipe we
take over transaction control and emit ``BEGIN IMMEDIATE``, so a writer waits for the
lock at the start (within the busy timeout) instead of failing half-way.

No Flask here: the CLI, scheduler jobs and tests open sessions the same way.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy import create_engine
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from outcome.config import ConfigError
from outcome.config import mask_url_password
from outcome.private_files import create_private_file
from outcome.private_files import make_private_dir

# Execution option naming how a SQLite transaction begins. IMMEDIATE (the default) takes
# the write lock at BEGIN; a read-only unit of work may pass DEFERRED so that, under WAL,
# it runs beside a writer instead of waiting for it.
SQLITE_BEGIN_OPTION = "outcome_sqlite_begin"
_SQLITE_BEGIN_MODES = {"IMMEDIATE": "IMMEDIATE", "DEFERRED": "DEFERRED"}


def make_engine(url: str, *, sqlite_busy_timeout_ms: int = 15000, **kwargs) -> Engine:
    """Create an engine for ``url``; raise :class:`ConfigError` for a URL that cannot work.

    A SQLite file URL gets its parent folder created (mode 0700) and, when missing, the
    database file itself (mode 0600; :mod:`outcome.private_files`), and the pragmas
    described in the module docstring. Other keyword arguments go to
    :func:`sqlalchemy.create_engine`.
    """
    try:
        parsed = make_url(url)
    except sa_exc.ArgumentError:
        raise ConfigError(
            f"OUTCOME_DATABASE_URL {mask_url_password(url)!r} is not a database URL; use "
            "sqlite:////path/to/file.sqlite3 or postgresql+psycopg://user@host:5432/dbname."
        ) from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"OUTCOME_DATABASE_URL uses {backend!r}; outcome supports sqlite and postgresql."
        )
    if (backend == "sqlite" and parsed.database and parsed.database != ":memory:"
            and not parsed.database.startswith("file:")):
        path = Path(parsed.database)
        make_private_dir(path.parent)
        # Created 0600 before SQLite opens it: SQLite gives the -wal and -shm files the
        # database file's mode, so they are private too (issue 16, finding 4).
        create_private_file(path)
    try:
        engine = create_engine(parsed, **kwargs)
    except (ImportError, sa_exc.NoSuchModuleError) as exc:
        raise ConfigError(
            f"OUTCOME_DATABASE_URL needs a driver that is not installed ({exc}); for "
            "PostgreSQL install outcome[postgres] and use postgresql+psycopg://."
        ) from None
    if backend == "sqlite":
        _configure_sqlite(engine, sqlite_busy_timeout_ms)
    return engine


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record) -> None:
        # Take transaction control away from pysqlite; the "begin" hook below opens them.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        # Deleted and replaced content is zeroed, not left in free pages (issue 20: the
        # plaintext a rotation replaces). Many builds default to it; some do not.
        cursor.execute("PRAGMA secure_delete = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:
        mode = connection.get_execution_options().get(SQLITE_BEGIN_OPTION, "IMMEDIATE")
        connection.exec_driver_sql(f"BEGIN {_SQLITE_BEGIN_MODES[mode]}")


def check_connection(engine: Engine) -> None:
    """Open one connection and run ``SELECT 1``; raise :class:`ConfigError` if that fails.

    Called at start-up so that a wrong or unreachable database is reported in one line
    naming the setting, instead of a traceback on the first request.
    """
    try:
        with engine.connect().execution_options(**{SQLITE_BEGIN_OPTION: "DEFERRED"}) as conn:
            conn.execute(text("SELECT 1"))
    except sa_exc.DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise ConfigError(
            f"cannot connect to the database at "
            f"{mask_url_password(engine.url.render_as_string(hide_password=False))} "
            f"({reason}); check OUTCOME_DATABASE_URL and that the server is running."
        ) from None


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """The session factory used by every edge (request, CLI command, job).

    ``expire_on_commit=False`` so that objects loaded in a request stay readable in the
    template after the edge commits.
    """
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def reading(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A unit of work that only reads: ``BEGIN DEFERRED`` on SQLite, so that under WAL it
    runs beside a writer instead of holding or waiting for the write lock; rolled back
    at the end (nothing is written)."""
    session = factory()
    try:
        session.connection(execution_options={SQLITE_BEGIN_OPTION: "DEFERRED"})
        yield session
    finally:
        session.rollback()
        session.close()


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work at an edge: commit on success, roll back on any error.

    Services only flush; this is where the one commit happens, so a failure leaves
    nothing half-written.
    """
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
