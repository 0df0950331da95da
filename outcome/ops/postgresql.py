"""PostgreSQL backups (``pg_dump`` of one snapshot) and restores (``pg_restore`` into ``psql``).

The backup file is a ``pg_dump`` archive in custom format (``pg_dump -Fc``; read it with
``pg_restore``). For a URL whose ``options`` set ``search_path``, only that schema
(``pg_dump -n``); otherwise the whole database. The dump reads the snapshot the
manifest's figures are computed from (``pg_export_snapshot`` / ``pg_dump --snapshot``).

A restore runs ``pg_restore`` feeding ``psql`` in one transaction (rows arrive by
``COPY``, which inserts; the audit trail refuses only UPDATE, DELETE and TRUNCATE), into
the schema the target URL's ``search_path`` names, renaming the backup's schema if it
differs. The client tools come from postgresql-client; they must be on ``PATH``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from collections.abc import Iterator
from pathlib import Path
from typing import IO
from typing import Any
from urllib.parse import quote as url_quote

from sqlalchemy import Engine
from sqlalchemy import inspect
from sqlalchemy import text
from sqlalchemy.engine import URL

from outcome.ops.errors import BackupError
from outcome.ops.manifest import Contents
from outcome.ops.manifest import current_revision
from outcome.ops.manifest import table_digests

POSTGRESQL_CLIENT_HINT = "install postgresql-client (Debian: apt-get install postgresql-client)"
_CHUNK = 1024 * 1024


def backup(engine: Engine, temp: Path) -> Contents:
    """Dump the PostgreSQL database (or schema) of ``engine`` into the file ``temp``.

    One REPEATABLE READ transaction exports its snapshot; ``pg_dump`` dumps that
    snapshot, and the figures returned are read in it too, so they match the dump row
    for row however busy the site is. The archive's table of contents is then read back
    with ``pg_restore --list``. Raises :class:`BackupError` when a tool is missing or
    fails, or the URL's ``search_path`` names no schema.
    """
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
            revision = current_revision(conn)
            digests = table_digests(conn)
    # A cheap look at the archive's table of contents: pg_restore can read it.
    _run([pg_restore, "--list", str(temp)], env, "pg_restore --list")
    return Contents(revision=revision, tables=digests,
                    extra={"postgresql": {"schema": current, "whole_database": whole_database}})


def restore(engine: Engine, path: Path, manifest: dict[str, Any], *, force: bool) -> None:
    """Restore PostgreSQL backup ``path`` (described by ``manifest``) into ``engine``'s schema.

    The target is the schema the URL's ``search_path`` names (``public`` without one);
    the backup's schema is renamed to it. With ``force`` everything in that schema is
    dropped first, in the same transaction; without, only an empty ``alembic_version``
    is. One transaction, committed only once ``pg_restore`` has read the whole archive:
    a failure leaves the database as it was and raises :class:`BackupError`.
    """
    pg_restore, psql = _tool("pg_restore"), _tool("psql")
    conninfo, env = _libpq(engine.url)
    source_schema = (manifest.get("postgresql") or {}).get("schema") or "public"
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
        listing = _run([pg_restore, "--list", str(path)], env, "pg_restore --list",
                       unusable=f"{path} is not a usable PostgreSQL backup")
        list_file = Path(work) / "toc.list"
        list_file.write_text("".join(_without_schema_entry(listing, source_schema)),
                             encoding="utf-8")
        _pipe_restore(
            [pg_restore, "--file=-", "--no-owner", "--no-privileges", f"--use-list={list_file}",
             str(path)],
            [psql, "--no-psqlrc", "--quiet", "--no-password", "--set=ON_ERROR_STOP=1",
             f"--dbname={conninfo}"],
            env, Path(work), path, prefix, source_schema, target_schema)


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
