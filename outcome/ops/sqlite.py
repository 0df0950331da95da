"""SQLite backups and restores, both with SQLite's online backup API.

The backup file is a plain SQLite database file (rollback journal, no ``-wal`` beside
it), copied from one read snapshot, so it is consistent while the site keeps writing,
and checked with ``PRAGMA integrity_check``. A restore is the same page copy the other
way, in one write transaction: the audit trail's triggers never fire, and a failure
leaves the target as it was.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any
from typing import cast
from urllib.parse import quote as url_quote

from sqlalchemy import Engine
from sqlalchemy import create_engine
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from outcome import schema
from outcome.ops.errors import BackupError
from outcome.ops.manifest import Contents
from outcome.ops.manifest import compare_digests
from outcome.ops.manifest import table_digests


def backup(engine: Engine, temp: Path, *, busy_timeout_s: float) -> Contents:
    """Copy the SQLite database of ``engine`` into the existing, empty file ``temp``.

    Waits up to ``busy_timeout_s`` seconds for a writer's lock. The copy is switched to a
    rollback journal and must pass ``PRAGMA integrity_check``; the figures returned are
    read from the copy itself. Raises :class:`BackupError` when the copy fails.
    """
    source = database_path(engine)
    if not Path(source).is_file():
        raise BackupError(f"there is no SQLite database at {source}")
    try:
        src = sqlite3.connect(source, timeout=busy_timeout_s)
        try:
            dst = sqlite3.connect(temp)
            try:
                src.backup(dst)  # one step: every page from one read snapshot
                dst.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
                check = [row[0] for row in dst.execute("PRAGMA integrity_check")]
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        raise BackupError(f"the SQLite backup of {source} failed ({exc})") from None
    if check != ["ok"]:
        raise BackupError(f"the copy of {source} fails PRAGMA integrity_check "
                          f"({'; '.join(check[:3])}); the database itself may be damaged")
    copy = _file_engine(temp)
    try:
        revision = schema.current_revision(copy)
        with copy.connect() as conn:
            digests = table_digests(conn)
    finally:
        copy.dispose()
    return Contents(revision=revision, tables=digests)


def restore(engine: Engine, path: Path, expected: dict[str, Any], *,
            busy_timeout_s: float) -> None:
    """Copy SQLite backup ``path`` over the database of ``engine``.

    Before anything is written the backup must pass ``PRAGMA integrity_check`` and hold
    exactly the figures ``expected`` (a manifest's ``tables``); the copy is one write
    transaction that waits up to ``busy_timeout_s`` seconds for the lock. Raises
    :class:`BackupError` (and restores nothing) when the backup is unusable.
    """
    target = database_path(engine)
    unusable = f"{path} is not a usable SQLite backup"
    source = _file_engine(path, read_only=True)
    try:
        with source.connect() as conn:
            check = [row[0] for row in conn.exec_driver_sql("PRAGMA integrity_check")]
            if check != ["ok"]:
                raise BackupError(f"{unusable} (integrity_check: {'; '.join(check[:3])}); "
                                  "nothing was restored")
            differences = compare_digests(expected, table_digests(conn))
            if differences:
                raise BackupError(f"{path} does not hold what its manifest lists "
                                  f"({'; '.join(differences[:5])}); nothing was restored")
            engine.dispose()
            dst = sqlite3.connect(target, timeout=busy_timeout_s)
            try:
                cast(sqlite3.Connection, conn.connection.driver_connection).backup(dst)
            finally:
                dst.close()
    except sqlite3.Error as exc:
        raise BackupError(f"{unusable} ({exc}); nothing was restored") from None
    except Exception as exc:  # SQLAlchemy wraps the driver's errors
        orig = getattr(exc, "orig", None)
        if isinstance(orig, sqlite3.Error):
            raise BackupError(f"{unusable} ({orig}); nothing was restored") from None
        raise
    finally:
        source.dispose()


def database_path(engine: Engine) -> str:
    """The file of the SQLite database of ``engine``, as its URL names it.

    Raises :class:`BackupError` for an in-memory database or a ``file:`` URI, which
    name no file a backup could copy.
    """
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise BackupError("OUTCOME_DATABASE_URL names no SQLite file "
                          "(sqlite:////path/to/outcome.sqlite3)")
    return database


def is_database_file(engine: Engine, path: Path) -> bool:
    """Whether ``path`` is the database of ``engine``, or its ``-wal`` or ``-shm`` file.

    Compared by path, by resolved path (symbolic links) and by inode, so a backup can
    never be written over the database it copies, nor restored onto itself.
    """
    database = Path(database_path(engine)).absolute()
    candidates = {database, database.with_name(database.name + "-wal"),
                  database.with_name(database.name + "-shm")}
    path = Path(path).absolute()
    if path in candidates or path.resolve() in {c.resolve() for c in candidates}:
        return True
    return path.exists() and database.exists() and os.path.samefile(path, database)


def _file_engine(path: str | os.PathLike[str], *, read_only: bool = False) -> Engine:
    """A plain engine on a SQLite file: no WAL switch, nothing written (read-only)."""
    if read_only:
        uri = f"file:{url_quote(str(Path(path).absolute()))}?mode=ro"
        return create_engine("sqlite://", poolclass=NullPool,
                             creator=lambda: sqlite3.connect(uri, uri=True))
    return create_engine(URL.create("sqlite", database=str(path)), poolclass=NullPool)
