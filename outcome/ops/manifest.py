"""The manifest beside every backup: what the file is, and every table's figures.

``FILE.manifest.json`` is a JSON object::

    {"format": "outcome-backup/1", "file": "NAME", "size_bytes": N,
     "sha256": "<hex of FILE>", "backend": "sqlite" | "postgresql",
     "schema_revision": "0007", "created_at": "2026-12-01T19:59:32Z",
     "outcome_version": "0.1.0",
     "postgresql": {"schema": "public", "whole_database": true},   (PostgreSQL only)
     "tables": {"clients": {"rows": 120, "sha256": "<hex>"}, ...}}

A table's ``sha256`` is the SHA-256 of its column names (sorted, as a JSON list, then a
newline) followed by one line per row, rows ordered by primary key (strings in byte
order), each a JSON list of the row's values in that column order, rendered by
:func:`canonical_value`. A database and a restore of it on the same backend give the
same hashes; the figures of the two backends are not meant to be compared.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import ColumnElement
from sqlalchemy import Connection
from sqlalchemy import Select
from sqlalchemy import String
from sqlalchemy import column
from sqlalchemy import inspect
from sqlalchemy import select
from sqlalchemy import table

from outcome import __version__
from outcome import schema
from outcome.ops.errors import BackupError

MANIFEST_FORMAT = "outcome-backup/1"
MANIFEST_SUFFIX = ".manifest.json"
_CHUNK = 1024 * 1024
_ROWS_PER_FETCH = 2000


@dataclass(frozen=True)
class TableDigest:
    """A table's row count and content hash (see the module docstring for the hash)."""

    rows: int
    sha256: str

    def as_json(self) -> dict[str, Any]:
        """The manifest's form: ``{"rows": N, "sha256": "..."}``."""
        return {"rows": self.rows, "sha256": self.sha256}


@dataclass(frozen=True)
class Contents:
    """What a backend's copy holds, read in the same snapshot as the copy itself.

    ``revision`` is the Alembic revision (``None``: no schema), ``tables`` every table's
    figures, ``extra`` the manifest fields of that backend only (PostgreSQL:
    ``{"postgresql": {"schema": ..., "whole_database": ...}}``).
    """

    revision: str | None
    tables: dict[str, TableDigest]
    extra: dict[str, Any] = field(default_factory=dict)


def manifest_path(path: str | os.PathLike[str]) -> Path:
    """The manifest written beside backup ``path``: ``path`` + ``.manifest.json``."""
    path = Path(path)
    return path.with_name(path.name + MANIFEST_SUFFIX)


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file's bytes, as lower-case hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def canonical_value(value: Any) -> Any:
    """A column value as plain JSON data, the same for a database and its restore.

    ``None`` stays null; booleans become 0 or 1 (SQLite stores them so); integers, floats
    and strings stay; ``Decimal``, UUIDs and other scalars become their ``str``; bytes
    become ``{"$bytes": "<hex>"}``; a timezone-aware datetime is converted to UTC, then
    every date, time and datetime becomes its ISO 8601 text; JSON objects and arrays are
    rendered recursively (keys are sorted when the row is serialised).
    """
    if value is None or (isinstance(value, (int, float, str)) and not isinstance(value, bool)):
        return value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": bytes(value).hex()}
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None and value.utcoffset() is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): canonical_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical_value(v) for v in value]
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    return str(value)


def _row_line(row: Iterable[Any]) -> bytes:
    values = [canonical_value(v) for v in row]
    return json.dumps(values, ensure_ascii=False, sort_keys=True,
                      separators=(",", ":")).encode("utf-8") + b"\n"


def table_digests(conn: Connection) -> dict[str, TableDigest]:
    """Row count and content hash of every table in the connection's default schema.

    Read within the connection's current transaction, so a caller holding a snapshot
    (PostgreSQL REPEATABLE READ) gets figures for exactly that snapshot.
    """
    inspector = inspect(conn)
    digests = {}
    for name in sorted(inspector.get_table_names()):
        columns = {c["name"]: c["type"] for c in inspector.get_columns(name)}
        primary_key = inspector.get_pk_constraint(name).get("constrained_columns") or []
        digests[name] = _table_digest(conn, name, columns, primary_key)
    return digests


def _table_digest(conn: Connection, name: str, columns: dict[str, Any],
                  primary_key: list[str]) -> TableDigest:
    names = sorted(columns)
    digest = hashlib.sha256(json.dumps(names).encode("utf-8") + b"\n")
    query: Select[*tuple[Any, ...]] = select(*[column(n) for n in names]).select_from(table(name))
    postgresql = conn.dialect.name == "postgresql"
    for key in primary_key:
        order: ColumnElement[Any] = column(key)
        if postgresql and isinstance(columns[key], String):
            order = order.collate("C")  # byte order, whatever the server's collation
        query = query.order_by(order)
    result = conn.execution_options(yield_per=_ROWS_PER_FETCH).execute(query)
    count = 0
    if primary_key:
        for row in result:
            digest.update(_row_line(row))
            count += 1
    else:  # no key to order by: order the rendered rows themselves
        lines = sorted(_row_line(row) for row in result)
        for line in lines:
            digest.update(line)
        count = len(lines)
    return TableDigest(rows=count, sha256=digest.hexdigest())


def compare_digests(expected: dict[str, Any], actual: dict[str, TableDigest]) -> list[str]:
    """The tables whose figures differ, each as ``"name: what differs"`` (empty: equal).

    ``expected`` is a manifest's ``tables`` (``{"name": {"rows": N, "sha256": "..."}}``).
    """
    differences = []
    for name in sorted(set(expected) | set(actual)):
        if name not in actual:
            differences.append(f"{name}: missing")
            continue
        if name not in expected:
            differences.append(f"{name}: not in the backup ({actual[name].rows} rows)")
            continue
        want, got = expected[name], actual[name]
        if want["rows"] != got.rows:
            differences.append(f"{name}: {got.rows} rows, expected {want['rows']}")
        elif want["sha256"] != got.sha256:
            differences.append(f"{name}: content differs")
    return differences


def make_manifest(*, file_name: str, size_bytes: int, sha256: str, backend: str,
                  contents: Contents, created_at: dt.datetime) -> dict[str, Any]:
    """The manifest of a finished backup, keys in the order the module docstring shows.

    ``size_bytes`` and ``sha256`` describe the file as written; ``created_at`` is an
    aware UTC datetime (rendered to the second, with ``Z``).
    """
    return {
        "format": MANIFEST_FORMAT,
        "file": file_name,
        "size_bytes": size_bytes,
        "sha256": sha256,
        "backend": backend,
        "schema_revision": contents.revision,
        "created_at": created_at.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "outcome_version": __version__,
        **contents.extra,
        "tables": {name: d.as_json() for name, d in contents.tables.items()},
    }


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a manifest; raise :class:`BackupError` when it is missing or wrong."""
    path = Path(path)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(f"no manifest at {path}; `outcome backup` writes one beside "
                          "every backup, and a restore is verified against it") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BackupError(f"cannot read the manifest {path} ({exc})") from None
    required = ("format", "backend", "size_bytes", "sha256", "tables")
    if (not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT
            or any(key not in manifest for key in required)):
        raise BackupError(f"{path} is not an outcome backup manifest ({MANIFEST_FORMAT})")
    return manifest


def known_revision(revision: str) -> bool:
    """Whether this version of outcome has a migration with id ``revision``."""
    script = ScriptDirectory.from_config(schema.alembic_config(None))  # type: ignore[arg-type]
    return revision in {rev.revision for rev in script.walk_revisions()}


def current_revision(conn: Connection) -> str | None:
    """The database's Alembic revision (``None``: no schema), read on ``conn``.

    :func:`outcome.schema.current_revision` on a connection rather than an engine, so
    it is read within the connection's transaction and snapshot.
    """
    return MigrationContext.configure(conn).get_current_revision()
