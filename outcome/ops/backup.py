"""``backup`` and ``restore``: the entry points of :mod:`outcome.ops`, for either backend.

A backup is two files: ``FILE``, the copy (:mod:`outcome.ops.sqlite` and
:mod:`outcome.ops.postgresql` say what it is on each backend), and
``FILE.manifest.json``, its size, SHA-256, schema revision and every table's row count
and content hash (:mod:`outcome.ops.manifest` gives the format).

A restore goes into an empty database of the same backend (no tables, or only an empty
``alembic_version``), or replaces everything with ``force=True``. The file is checked
against its manifest (size and SHA-256) before anything is written; afterwards every
table is counted and hashed again and compared with the manifest.

Errors a user can fix raise :class:`~outcome.ops.errors.BackupError` with one line.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy import func
from sqlalchemy import inspect
from sqlalchemy import select
from sqlalchemy import table

from outcome import schema
from outcome.ops import postgresql
from outcome.ops import sqlite
from outcome.ops.errors import BackupError
from outcome.ops.manifest import compare_digests
from outcome.ops.manifest import current_revision
from outcome.ops.manifest import file_sha256
from outcome.ops.manifest import known_revision
from outcome.ops.manifest import make_manifest
from outcome.ops.manifest import manifest_path
from outcome.ops.manifest import read_manifest
from outcome.ops.manifest import table_digests
from outcome.private_files import write_private_bytes


@dataclass(frozen=True)
class BackupResult:
    """What :func:`backup` wrote."""

    path: Path
    manifest_path: Path
    size_bytes: int
    sha256: str
    manifest: dict[str, Any]

    @property
    def total_rows(self) -> int:
        """Rows in every table together."""
        return sum(t["rows"] for t in self.manifest["tables"].values())


@dataclass(frozen=True)
class RestorePlan:
    """What :func:`check_restore` found: the manifest and what the target holds now."""

    path: Path
    manifest: dict[str, Any]
    occupied_tables: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RestoreResult:
    """What :func:`restore` did, and how the result compares with the manifest."""

    path: Path
    manifest: dict[str, Any]
    differences: list[str]
    revision: str | None
    head: str

    @property
    def verified(self) -> bool:
        """Whether every table's row count and hash equal the manifest's."""
        return not self.differences

    @property
    def schema_state(self) -> str:
        """``current``, ``behind`` (run ``outcome db upgrade``), ``unknown`` (a revision
        this version does not know: the backup comes from a newer version) or ``empty``."""
        if self.revision is None:
            return "empty"
        if self.revision == self.head:
            return "current"
        return "behind" if known_revision(self.revision) else "unknown"


# --- backup ------------------------------------------------------------------------------


def backup(engine: Engine, out: str | os.PathLike[str], *,
           busy_timeout_s: float = 30.0) -> BackupResult:
    """Back up the database of ``engine`` to ``out``, and write ``out.manifest.json``.

    Formats are in the module docstring. The copy is written to a temporary file in the
    same folder and renamed into place only once complete and checked, so ``out`` is
    never a partial backup; both files are created with mode 0600 (they hold every
    client's answers). SQLite waits up to ``busy_timeout_s`` seconds for a writer's
    lock. Raises :class:`BackupError` when the backup cannot be made.
    """
    out = Path(out).absolute()
    if not out.parent.is_dir():
        raise BackupError(f"the folder {out.parent} does not exist")
    if out.is_dir():
        raise BackupError(f"{out} is a folder; give the backup file's name")
    if engine.dialect.name == "sqlite" and sqlite.is_database_file(engine, out):
        raise BackupError(f"{out} is the database itself (or its -wal or -shm); "
                          "write the backup to another file")
    created_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    temp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    _create_private(temp)
    try:
        backend = engine.dialect.name
        if backend == "sqlite":
            contents = sqlite.backup(engine, temp, busy_timeout_s=busy_timeout_s)
        elif backend == "postgresql":
            contents = postgresql.backup(engine, temp)
        else:
            raise BackupError(f"cannot back up a {backend} database")
        _fsync(temp)
        size, sha256 = temp.stat().st_size, file_sha256(temp)
        os.replace(temp, out)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_folder(out.parent)
    manifest = make_manifest(file_name=out.name, size_bytes=size, sha256=sha256,
                             backend=backend, contents=contents, created_at=created_at)
    path = manifest_path(out)
    _write_private(path, json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    return BackupResult(path=out, manifest_path=path, size_bytes=size, sha256=sha256,
                        manifest=manifest)


# --- restore -------------------------------------------------------------------------------


def occupied_tables(engine: Engine) -> list[str]:
    """Tables in the database's default schema, but an empty ``alembic_version``."""
    with engine.connect() as conn:
        names = inspect(conn).get_table_names()
        if names == ["alembic_version"]:
            rows = conn.execute(select(func.count()).select_from(table("alembic_version")))
            if rows.scalar_one() == 0:
                return []
        return sorted(names)


def check_restore(engine: Engine, path: str | os.PathLike[str], *,
                  force: bool = False) -> RestorePlan:
    """Check that backup ``path`` can go into the database of ``engine``; change nothing.

    Raises :class:`BackupError` when the file or its manifest is missing, the manifest is
    of another backend, the file does not match the manifest (damaged or incomplete), or
    the database is not empty and ``force`` is false.
    """
    path = Path(path)
    if not path.is_file():
        raise BackupError(f"there is no backup file at {path}")
    manifest = read_manifest(manifest_path(path))
    backend = engine.dialect.name
    if manifest["backend"] != backend:
        raise BackupError(f"{path} is a {manifest['backend']} backup and the configured "
                          f"database is {backend}; restore it into a {manifest['backend']} "
                          "database")
    occupied = occupied_tables(engine)
    if occupied and not force:
        raise BackupError(f"the database is not empty ({len(occupied)} tables, among them "
                          f"{', '.join(occupied[:3])}); restore into an empty database, or "
                          "pass --force to replace everything in it")
    size = path.stat().st_size
    if size != manifest["size_bytes"] or file_sha256(path) != manifest["sha256"]:
        raise BackupError(f"{path} does not match its manifest ({size} bytes, the manifest "
                          f"says {manifest['size_bytes']}, or another SHA-256): the file is "
                          "damaged or incomplete; nothing was restored")
    return RestorePlan(path=path, manifest=manifest, occupied_tables=occupied)


def restore(engine: Engine, path: str | os.PathLike[str], *, force: bool = False,
            busy_timeout_s: float = 30.0) -> RestoreResult:
    """Restore backup ``path`` into the database of ``engine``, then verify it.

    Runs :func:`check_restore` first, so nothing is written unless the file matches its
    manifest and the database is empty (or ``force``). A failure while restoring leaves
    the database as it was (SQLite: the copy is one write transaction, waiting up to
    ``busy_timeout_s`` seconds for the lock; PostgreSQL: one transaction, committed only
    once ``pg_restore`` has read the whole archive). The result lists every table whose
    row count or hash differs from the manifest.
    """
    plan = check_restore(engine, path, force=force)
    if engine.dialect.name == "sqlite" and sqlite.is_database_file(engine, plan.path):
        raise BackupError(f"{plan.path} is the configured database itself; nothing to do")
    if engine.dialect.name == "sqlite":
        sqlite.restore(engine, plan.path, plan.manifest["tables"],
                       busy_timeout_s=busy_timeout_s)
    else:
        postgresql.restore(engine, plan.path, plan.manifest, force=force)
    engine.dispose()  # no pooled connection keeps a view of the database from before
    with engine.connect() as conn:
        actual = table_digests(conn)
        revision = current_revision(conn)
    return RestoreResult(path=plan.path, manifest=plan.manifest,
                         differences=compare_digests(plan.manifest["tables"], actual),
                         revision=revision, head=schema.head_revision())


# --- files ---------------------------------------------------------------------------------


def _create_private(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)


def _write_private(path: Path, content: str) -> None:
    write_private_bytes(path, content.encode("utf-8"))
    _fsync_folder(path.parent)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(path: Path) -> None:
    with contextlib.suppress(OSError):  # some file systems cannot fsync a folder
        _fsync(path)
