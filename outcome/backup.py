"""Backups of the database, restores, and the manifest that proves a restore complete.

A backup is two files:

``FILE``
    SQLite: a plain SQLite database file (rollback journal, no ``-wal`` beside it), made
    with SQLite's online backup API from one read snapshot, so it is consistent while
    the site keeps writing, and checked with ``PRAGMA integrity_check``.
    PostgreSQL: a ``pg_dump`` archive in custom format (``pg_dump -Fc``; read it with
    ``pg_restore``). For a URL whose ``options`` set ``search_path``, only that schema
    (``pg_dump -n``); otherwise the whole database. The dump reads the snapshot the
    manifest is computed from (``pg_export_snapshot`` / ``pg_dump --snapshot``).

``FILE.manifest.json``
    A JSON object::

        {"format": "outcome-backup/1", "file": "NAME", "size_bytes": N,
         "sha256": "<hex of FILE>", "backend": "sqlite" | "postgresql",
         "schema_revision": "0007", "created_at": "2026-12-01T19:59:32Z",
         "outcome_version": "0.1.0",
         "postgresql": {"schema": "public", "whole_database": true},   (PostgreSQL only)
         "tables": {"clients": {"rows": 120, "sha256": "<hex>"}, ...}}

    A table's ``sha256`` is the SHA-256 of its column names (sorted, as a JSON list, then
    a newline) followed by one line per row, rows ordered by primary key (strings in
    byte order), each a JSON list of the row's values in that column order, rendered by
    :func:`canonical_value`. A database and a restore of it on the same backend give
    the same hashes; the figures of the two backends are not meant to be compared.

A restore goes into an empty database of the same backend (no tables, or only an empty
``alembic_version``), or replaces everything with ``force=True``. The file is checked
against its manifest (size and SHA-256) before anything is written; afterwards every
table is counted and hashed again and compared with the manifest. SQLite restores with
the backup API (a page copy: the audit trail's triggers never fire); PostgreSQL restores
with ``pg_restore`` feeding ``psql`` in one transaction (rows arrive by ``COPY``, which
inserts; the audit trail refuses only UPDATE, DELETE and TRUNCATE), into the schema the
target URL's ``search_path`` names, renaming the backup's schema if it differs.

No Flask here: the CLI (``outcome backup``, ``outcome restore``) and tests call these
functions with an engine and paths. Errors a user can fix raise :class:`BackupError`
with one line.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import uuid
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import IO
from typing import Any
from typing import cast
from urllib.parse import quote as url_quote

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import ColumnElement
from sqlalchemy import Connection
from sqlalchemy import Engine
from sqlalchemy import Select
from sqlalchemy import String
from sqlalchemy import column
from sqlalchemy import create_engine
from sqlalchemy import func
from sqlalchemy import inspect
from sqlalchemy import select
from sqlalchemy import table
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from outcome import __version__
from outcome import schema

MANIFEST_FORMAT = "outcome-backup/1"
MANIFEST_SUFFIX = ".manifest.json"
POSTGRESQL_CLIENT_HINT = "install postgresql-client (Debian: apt-get install postgresql-client)"
_CHUNK = 1024 * 1024
_ROWS_PER_FETCH = 2000


class BackupError(Exception):
    """A backup or restore cannot go ahead; the message is one line that says why."""


@dataclass(frozen=True)
class TableDigest:
    """A table's row count and content hash (see the module docstring for the hash)."""

    rows: int
    sha256: str

    def as_json(self) -> dict[str, Any]:
        """The manifest's form: ``{"rows": N, "sha256": "..."}``."""
        return {"rows": self.rows, "sha256": self.sha256}


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


# --- manifests and digests ------------------------------------------------------------------


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


def _revision(conn: Connection) -> str | None:
    # outcome.schema.current_revision, on this connection (and so within its snapshot).
    return MigrationContext.configure(conn).get_current_revision()


# --- backup ------------------------------------------------------------------------------


def backup(engine: Engine, out: str | os.PathLike[str], *,
           busy_timeout_s: float = 30.0) -> BackupResult:
    """Back up the database of ``engine`` to ``out``, and write ``out.manifest.json``.

    Formats are in the module docstring. The copy is written to a temporary file in the
    same folder and renamed into place only once complete and checked, so ``out`` is
    never a partial backup; both files are created with mode 0600 (they hold every
    client's answers). Raises :class:`BackupError` when the backup cannot be made.
    """
    out = Path(out).absolute()
    if not out.parent.is_dir():
        raise BackupError(f"the folder {out.parent} does not exist")
    if out.is_dir():
        raise BackupError(f"{out} is a folder; give the backup file's name")
    if engine.dialect.name == "sqlite" and _is_database_file(engine, out):
        raise BackupError(f"{out} is the database itself (or its -wal or -shm); "
                          "write the backup to another file")
    created_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    temp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    _create_private(temp)
    try:
        backend = engine.dialect.name
        if backend == "sqlite":
            revision, digests, extra = _backup_sqlite(engine, temp, busy_timeout_s)
        elif backend == "postgresql":
            revision, digests, extra = _backup_postgresql(engine, temp)
        else:
            raise BackupError(f"cannot back up a {backend} database")
        _fsync(temp)
        size, sha256 = temp.stat().st_size, file_sha256(temp)
        os.replace(temp, out)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_folder(out.parent)
    manifest = {
        "format": MANIFEST_FORMAT,
        "file": out.name,
        "size_bytes": size,
        "sha256": sha256,
        "backend": backend,
        "schema_revision": revision,
        "created_at": created_at.isoformat().replace("+00:00", "Z"),
        "outcome_version": __version__,
        **extra,
        "tables": {name: d.as_json() for name, d in digests.items()},
    }
    path = manifest_path(out)
    _write_private(path, json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    return BackupResult(path=out, manifest_path=path, size_bytes=size, sha256=sha256,
                        manifest=manifest)


def _backup_sqlite(engine: Engine, temp: Path, busy_timeout_s: float):
    source = _sqlite_path(engine)
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
    copy = _sqlite_file_engine(temp)
    try:
        revision = schema.current_revision(copy)
        with copy.connect() as conn:
            digests = table_digests(conn)
    finally:
        copy.dispose()
    return revision, digests, {}


def _backup_postgresql(engine: Engine, temp: Path):
    pg_dump, pg_restore = _tool("pg_dump"), _tool("pg_restore")
    conninfo, env = _libpq(engine.url)
    whole_database = not _sets_search_path(engine.url)
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            current = conn.execute(text("SELECT current_schema()")).scalar_one()
            if current is None:
                raise BackupError("the schema named by search_path in OUTCOME_DATABASE_URL "
                                  "does not exist")
            command = [pg_dump, "--format=custom", f"--file={temp}", f"--snapshot={snapshot}",
                       "--no-password"]
            if not whole_database:
                command.append(f"--schema={_quoted_identifier(current)}")
            _run([*command, f"--dbname={conninfo}"], env, "pg_dump")
            revision = _revision(conn)
            digests = table_digests(conn)
    # A cheap look at the archive's table of contents: pg_restore can read it.
    _run([pg_restore, "--list", str(temp)], env, "pg_restore --list")
    return revision, digests, {"postgresql": {"schema": current,
                                              "whole_database": whole_database}}


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
    the database as it was (SQLite: the copy is one write transaction; PostgreSQL: one
    transaction, committed only once ``pg_restore`` has read the whole archive). The
    result lists every table whose row count or hash differs from the manifest.
    """
    plan = check_restore(engine, path, force=force)
    if engine.dialect.name == "sqlite" and _is_database_file(engine, plan.path):
        raise BackupError(f"{plan.path} is the configured database itself; nothing to do")
    if engine.dialect.name == "sqlite":
        _restore_sqlite(engine, plan, busy_timeout_s)
    else:
        _restore_postgresql(engine, plan, force)
    engine.dispose()  # no pooled connection keeps a view of the database from before
    with engine.connect() as conn:
        actual = table_digests(conn)
        revision = _revision(conn)
    return RestoreResult(path=plan.path, manifest=plan.manifest,
                         differences=compare_digests(plan.manifest["tables"], actual),
                         revision=revision, head=schema.head_revision())


def _restore_sqlite(engine: Engine, plan: RestorePlan, busy_timeout_s: float) -> None:
    target = _sqlite_path(engine)
    unusable = f"{plan.path} is not a usable SQLite backup"
    source = _sqlite_file_engine(plan.path, read_only=True)
    try:
        with source.connect() as conn:
            check = [row[0] for row in conn.exec_driver_sql("PRAGMA integrity_check")]
            if check != ["ok"]:
                raise BackupError(f"{unusable} (integrity_check: {'; '.join(check[:3])}); "
                                  "nothing was restored")
            differences = compare_digests(plan.manifest["tables"], table_digests(conn))
            if differences:
                raise BackupError(f"{plan.path} does not hold what its manifest lists "
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


def _restore_postgresql(engine: Engine, plan: RestorePlan, force: bool) -> None:
    pg_restore, psql = _tool("pg_restore"), _tool("psql")
    conninfo, env = _libpq(engine.url)
    source_schema = (plan.manifest.get("postgresql") or {}).get("schema") or "public"
    with engine.connect() as conn:
        target_schema = conn.execute(text("SELECT current_schema()")).scalar_one()
        if target_schema is None:
            raise BackupError("the schema named by search_path in OUTCOME_DATABASE_URL "
                              "does not exist; create it first")
        if force:  # whatever the schema holds, tables or not
            prefix = [row[0] for row in conn.execute(text(_DROP_EVERYTHING_SQL))]
        elif inspect(conn).get_table_names():  # only an empty alembic_version
            prefix = [f"DROP TABLE {_quoted_identifier(target_schema)}.alembic_version;"]
        else:
            prefix = []
    for name in (source_schema, target_schema):
        _check_plain_name(name)
    with tempfile.TemporaryDirectory(prefix="outcome-restore-") as work:
        listing = _run([pg_restore, "--list", str(plan.path)], env, "pg_restore --list",
                       unusable=f"{plan.path} is not a usable PostgreSQL backup")
        list_file = Path(work) / "toc.list"
        list_file.write_text("".join(_without_schema_entry(listing, source_schema)),
                             encoding="utf-8")
        _pipe_restore(
            [pg_restore, "--file=-", "--no-owner", "--no-privileges", f"--use-list={list_file}",
             str(plan.path)],
            [psql, "--no-psqlrc", "--quiet", "--no-password", "--set=ON_ERROR_STOP=1",
             f"--dbname={conninfo}"],
            env, Path(work), plan.path, prefix, source_schema, target_schema)


# Statements that empty the current schema (for --force). DROP is neither DELETE nor
# TRUNCATE, so the audit trail's triggers allow it. Objects of extensions are left alone.
_DROP_EVERYTHING_SQL = """
SELECT format('DROP %s IF EXISTS %I.%I CASCADE;',
              CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                             WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE'
                             ELSE 'TABLE' END, n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  AND NOT c.relispartition
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
UNION ALL
SELECT format('DROP ROUTINE IF EXISTS %I.%I(%s) CASCADE;', n.nspname, p.proname,
              pg_get_function_identity_arguments(p.oid))
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = current_schema() AND p.prokind IN ('f', 'p')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
UNION ALL
SELECT format('DROP TYPE IF EXISTS %I.%I CASCADE;', n.nspname, t.typname)
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname = current_schema() AND t.typtype IN ('e', 'd', 'r', 'm')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = t.oid AND d.deptype = 'e')
"""


def _without_schema_entry(listing: str, schema_name: str) -> Iterator[str]:
    """pg_restore's table of contents without the schema itself (the target has one)."""
    own = re.compile(rf"^\d+; \d+ \d+ (SCHEMA|COMMENT|ACL) - (SCHEMA )?{re.escape(schema_name)} ")
    for line in listing.splitlines(keepends=True):
        if not own.match(line):
            yield line


def rewrite_schema(lines: Iterable[bytes], source: str, target: str) -> Iterator[bytes]:
    """The lines of a ``pg_restore`` SQL script with schema ``source`` renamed ``target``.

    pg_dump qualifies every name (``source.table``, ``"source".table``, and inside
    ``'source.seq'::regclass``); those qualifiers are replaced by ``"target".``. Rows
    (the lines between ``COPY ... FROM stdin;`` and ``\\.``) pass through untouched.
    """
    if source == target:
        yield from lines
        return
    forms = [b'"' + source.encode() + b'"']
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", source):
        forms.append(source.encode())
    pattern = re.compile(rb'(?<![\w$"])(?:' + b"|".join(re.escape(f) for f in forms)
                         + rb")(?=\.)")
    replacement = b'"' + target.encode() + b'"'
    in_rows = False
    for line in lines:
        if in_rows:
            if line in (b"\\.\n", b"\\."):
                in_rows = False
            yield line
            continue
        yield pattern.sub(replacement, line)
        if line.startswith(b"COPY ") and line.rstrip().endswith(b"FROM stdin;"):
            in_rows = True


def _pipe_restore(producer_cmd: list[str], consumer_cmd: list[str], env: dict[str, str],
                  work: Path, path: Path, prefix: list[str], source: str,
                  target: str) -> None:
    """pg_restore's script, renamed, into psql inside BEGIN ... COMMIT.

    COMMIT is sent only after pg_restore has read the whole archive and exited 0; if it
    fails half-way, psql reaches the end of its input inside the transaction and the
    server rolls it back when psql disconnects.
    """
    producer_err = (work / "pg_restore.err").open("w+b")
    consumer_err = (work / "psql.err").open("w+b")
    producer = subprocess.Popen(producer_cmd, stdout=subprocess.PIPE,  # noqa: S603
                                stderr=producer_err, env=env)
    consumer = subprocess.Popen(consumer_cmd, stdin=subprocess.PIPE,  # noqa: S603
                                stdout=subprocess.DEVNULL, stderr=consumer_err, env=env)
    assert producer.stdout is not None and consumer.stdin is not None
    committed = False
    try:
        try:
            consumer.stdin.write(("BEGIN;\n" + "".join(s + "\n" for s in prefix)).encode())
            for line in rewrite_schema(producer.stdout, source, target):
                consumer.stdin.write(line)
            if producer.wait() == 0:
                consumer.stdin.write(b"COMMIT;\n")
                committed = True
            consumer.stdin.close()
        except BrokenPipeError:  # psql stopped at an error; its message follows
            committed = False
            # Let pg_restore finish reading: if the archive is bad, that is the cause.
            while producer.stdout.read(_CHUNK):
                pass
            producer.wait()
        consumer.wait()
    finally:
        killed = [process for process in (producer, consumer) if process.poll() is None]
        for process in killed:
            process.kill()
            process.wait()
        producer.stdout.close()
        if not consumer.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                consumer.stdin.close()
    producer_message = _first_error(producer_err)
    consumer_message = _first_error(consumer_err)
    producer_err.close()
    consumer_err.close()
    # pg_restore failing by itself is the cause (psql may then choke on a cut-off row);
    # pg_restore killed here means psql stopped first, at an error of its own.
    if producer.returncode != 0 and producer not in killed:
        raise BackupError(f"{path} is not a usable PostgreSQL backup "
                          f"({producer_message or 'pg_restore failed'}); nothing was restored")
    if consumer.returncode != 0:
        hint = ("; the database holds objects of its own: --force replaces them"
                if "already exists" in consumer_message else "")
        raise BackupError(f"restoring {path} failed ({consumer_message or 'psql stopped'}); "
                          f"nothing was restored{hint}")
    if not committed:
        raise BackupError(f"restoring {path} failed (psql stopped); nothing was restored")


# --- helpers -------------------------------------------------------------------------------


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} is not on PATH; {POSTGRESQL_CLIENT_HINT}")
    return path


def _run(command: list[str], env: dict[str, str], what: str, *,
         unusable: str | None = None) -> str:
    try:
        result = subprocess.run(command, env=env, capture_output=True, text=True,  # noqa: S603
                                check=False)
    except OSError as exc:
        raise BackupError(f"cannot run {what} ({exc}); {POSTGRESQL_CLIENT_HINT}") from None
    if result.returncode != 0:
        message = _first_error_text(result.stderr) or f"exit status {result.returncode}"
        if unusable:
            raise BackupError(f"{unusable} ({message}); nothing was restored")
        hint = ("; install the postgresql-client of the server's major version or newer"
                if "version mismatch" in message else "")
        raise BackupError(f"{what} failed ({message}){hint}")
    return result.stdout


def _first_error(fh: IO[bytes]) -> str:
    fh.seek(0)
    return _first_error_text(fh.read().decode("utf-8", "replace"))


def _first_error_text(stderr: str) -> str:
    lines = [" ".join(line.split()) for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if "error" in line.lower() or "fatal" in line.lower():
            return line
    return lines[0] if lines else ""


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """A libpq connection string for the PostgreSQL tools, and their environment.

    The password goes in ``PGPASSWORD`` (not on a command line others can read); the
    URL's ``options`` (its search_path) are left out: dumps and scripts name schemas.
    """
    params: dict[str, str] = {}
    if url.host:
        params["host"] = url.host
    if url.port:
        params["port"] = str(url.port)
    if url.username:
        params["user"] = url.username
    if url.database:
        params["dbname"] = url.database
    for key, value in url.query.items():
        if key != "options":
            params[key] = value if isinstance(value, str) else value[-1]
    conninfo = "postgresql://?" + "&".join(f"{k}={url_quote(v, safe='')}"
                                            for k, v in params.items())
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = url.password
    return conninfo, env


def _sets_search_path(url: URL) -> bool:
    options = url.query.get("options", "")
    if not isinstance(options, str):
        options = " ".join(options)
    return re.search(r"search[_-]path\s*=", options) is not None


def _quoted_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _check_plain_name(name: str) -> None:
    if any(ch in name for ch in "\"'\\\n"):
        raise BackupError(f"schema name {name!r} has quotes or backslashes; "
                          "outcome restores only into schemas with plain names")


def _sqlite_path(engine: Engine) -> str:
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise BackupError("OUTCOME_DATABASE_URL names no SQLite file "
                          "(sqlite:////path/to/outcome.sqlite3)")
    return database


def _is_database_file(engine: Engine, path: Path) -> bool:
    database = Path(_sqlite_path(engine)).absolute()
    candidates = {database, database.with_name(database.name + "-wal"),
                  database.with_name(database.name + "-shm")}
    path = Path(path).absolute()
    if path in candidates or path.resolve() in {c.resolve() for c in candidates}:
        return True
    return path.exists() and database.exists() and os.path.samefile(path, database)


def _sqlite_file_engine(path: str | os.PathLike[str], *, read_only: bool = False) -> Engine:
    """A plain engine on a SQLite file: no WAL switch, nothing written (read-only)."""
    if read_only:
        uri = f"file:{url_quote(str(Path(path).absolute()))}?mode=ro"
        return create_engine("sqlite://", poolclass=NullPool,
                             creator=lambda: sqlite3.connect(uri, uri=True))
    return create_engine(URL.create("sqlite", database=str(path)), poolclass=NullPool)


def _create_private(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)


def _write_private(path: Path, content: str) -> None:
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
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
