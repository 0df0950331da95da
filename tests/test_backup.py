"""Backup and restore drills (issue 9), on the run's backend.

The drill: the demo clinic plus canary rows (odd text, bytes, the audit trail) are
backed up by `outcome backup` run as a real process, restored by `outcome restore` into
a fresh empty database of the same backend, and compared table by table with figures
computed here, independently of outcome.ops. The restored database then serves the
site (``/healthz``, the login page, a demo sign-in) and passes `outcome config check`.

Also: a restore refuses a database that is not empty; a damaged backup fails with one
line and leaves the target as it was; a backup taken while rows are being written is
consistent; a backup from an older schema says to run `outcome db upgrade`.

Real processes (:func:`run`) where the process is the point: the drill's `outcome backup`,
`outcome restore` and `outcome config check` (what an operator runs), a refused restore's
exit status and one line on stderr (nothing else, no warning, reaches a real stderr), the
backup taken while another process's rows are written, and the client tools missing from
a process's PATH. The other cases are about what backup and restore decide and say; they
run the same `outcome` command group in this process (:func:`invoke`: click's runner, the
same configuration from the same variables, the app built by the same
``outcome.cli.application.build_app``), which costs ~0.3 s where a process costs ~2 s of
CPU (importing the application), and the module has some twenty of them.

``-s`` shows the drill's figures (sizes and times); docs/operators.md quotes them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from outcome import schema
from outcome.db import make_engine
from outcome.extensions import database
from outcome.models import AuditEvent
from outcome.models import Client
from outcome.models import Clinic
from outcome.models import User
from outcome.models.report import ReportDocument
from outcome.models.report import ReportRun
from outcome.ops import manifest as ops_manifest
from outcome.ops import postgresql as ops_postgresql
from outcome.services import audit
from tests.conftest import csrf_token
from tests.helpers import DEMO_PASSWORD
from tests.helpers import independent_figures
from tests.inprocess import invoke

# Nearly every test here runs `outcome backup`/`restore` (pg_dump, psql) as processes.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
OUTCOME = str(Path(sys.executable).parent / "outcome")
NOW = dt.datetime(2026, 11, 16, 9, 0, tzinfo=dt.UTC)
# Text that a dump or a schema rename could damage: tabs, newlines, backslashes, quotes,
# a COPY terminator on a line of its own, non-ASCII, and the schema's name with a dot.
CANARY = ("Canary \u03a9mega \u2713 tab\there 'single' \"double\" back\\slash\n\\.\n"
          "{schema}.clients end")
CANARY_BYTES = b"%PDF-1.4\x00\x01\\.\n\xff\xfe" + bytes(range(256))


def cli_env(tmp_path: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTCOME_")}
    env.update(OUTCOME_INSTANCE_PATH=str(tmp_path / "instance"), OUTCOME_DATABASE_URL=url,
               OUTCOME_SECRET_KEY="s" * 40)
    return env


def run(env, *args, timeout=300):
    return subprocess.run([OUTCOME, *args], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def schema_name(url: str) -> str:
    """The schema a URL works in (PostgreSQL search_path), or "main" (SQLite)."""
    options = make_url(url).query.get("options", "")
    return options.partition("search_path=")[2] or ("main" if url.startswith("sqlite") else
                                                    "public")


def add_canaries(url: str) -> str:
    """A client, an audit event and an archived document with awkward content."""
    engine = make_engine(url)
    canary = CANARY.format(schema=schema_name(url))
    try:
        with Session(engine) as session:
            clinic = session.scalars(select(Clinic).order_by(Clinic.id)).first()
            user = session.scalars(select(User).order_by(User.id)).first()
            client = Client(clinic_id=clinic.id, code="C-CANARY1", name=canary)
            session.add(client)
            session.flush()
            audit.record(session, action="backup.canary", outcome="allowed", now=NOW,
                         actor_kind="system", actor_label="backup drill",
                         clinic_id=clinic.id, client_id=client.id)
            run_row = ReportRun(kind="canary", period="2026-W47", recipient_user_id=user.id,
                                status="succeeded",
                                content_sha256=hashlib.sha256(CANARY_BYTES).hexdigest())
            session.add(run_row)
            session.flush()
            session.add(ReportDocument(report_run_id=run_row.id, filename="canary.pdf",
                                       content=CANARY_BYTES,
                                       sha256=hashlib.sha256(CANARY_BYTES).hexdigest(),
                                       size_bytes=len(CANARY_BYTES)))
            session.commit()
    finally:
        engine.dispose()
    return canary


def small_database(url: str, revision: str = "head") -> None:
    """Migrated to ``revision``; at head, with one clinic and one audit event."""
    engine = make_engine(url)
    try:
        schema.upgrade(engine, revision)
        if revision != "head":  # the models describe the newest schema only
            return
        with Session(engine) as session:
            session.add(Clinic(slug=f"small-{secrets.token_hex(3)}", name="Small Clinic"))
            session.flush()
            audit.record(session, action="backup.small", outcome="allowed", now=NOW,
                         actor_kind="system")
            session.commit()
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def source(databases, demo_databases, tmp_path_factory):
    """The demo clinic (the suite's shared copy) with canaries, backed up once by
    `outcome backup` (a real process)."""
    tmp = tmp_path_factory.mktemp("backup-source")
    url = demo_databases.new_url()
    env = cli_env(tmp, url)
    canary = add_canaries(url)
    out = tmp / ("outcome.sqlite3" if databases.backend == "sqlite" else "outcome.dump")
    started = time.perf_counter()
    result = run(env, "backup", "--out", str(out))
    seconds = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    return {"url": url, "env": env, "tmp": tmp, "file": out, "stdout": result.stdout,
            "seconds": seconds, "canary": canary,
            "password": DEMO_PASSWORD}


def test_backup_prints_file_size_and_hash_and_writes_a_manifest(source, databases):
    out, stdout = source["file"], source["stdout"]
    size, sha256 = out.stat().st_size, hashlib.sha256(out.read_bytes()).hexdigest()
    assert str(out) in stdout
    assert f"({size} bytes)" in stdout
    assert sha256 in stdout
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    assert not list(out.parent.glob(".*.tmp"))

    manifest_file = ops_manifest.manifest_path(out)
    assert manifest_file.name == out.name + ".manifest.json"
    manifest = json.loads(manifest_file.read_text())
    assert manifest["backend"] == databases.backend
    assert manifest["schema_revision"] == schema.head_revision()
    assert manifest["size_bytes"] == size and manifest["sha256"] == sha256
    created = dt.datetime.fromisoformat(manifest["created_at"].replace("Z", "+00:00"))
    assert abs(dt.datetime.now(dt.UTC) - created) < dt.timedelta(minutes=10)
    figures = independent_figures(source["url"])
    assert set(manifest["tables"]) == set(figures)
    for name, (rows, _hash) in figures.items():
        assert manifest["tables"][name]["rows"] == rows, name
    assert manifest["tables"]["administrations"]["rows"] > 1000
    assert manifest["tables"]["audit_events"]["rows"] >= 1
    if databases.backend == "sqlite":
        with sqlite3.connect(f"file:{out}?mode=ro", uri=True) as copy:
            assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert not Path(f"{out}-wal").exists()
    else:
        assert out.read_bytes()[:5] == b"PGDMP"  # pg_dump's custom format
        assert manifest["postgresql"] == {"schema": schema_name(source["url"]),
                                          "whole_database": False}


def test_drill_restore_into_a_fresh_database_then_serve_it(source, fresh_database_url,
                                                            tmp_path, databases, make_app):
    target_env = cli_env(tmp_path, fresh_database_url)
    started = time.perf_counter()
    restored = run(target_env, "restore", str(source["file"]), "--yes")
    seconds = time.perf_counter() - started
    assert restored.returncode == 0, restored.stderr
    assert "Verified against the manifest" in restored.stdout and ": OK" in restored.stdout
    assert f"Schema at {schema.head_revision()} (current)." in restored.stdout

    # Table by table, figures computed here from both databases.
    before, after = independent_figures(source["url"]), independent_figures(fresh_database_url)
    assert set(before) == set(after)
    for name in before:
        assert after[name] == before[name], name
    # And outcome's own digests of the restore equal the manifest.
    manifest = ops_manifest.read_manifest(ops_manifest.manifest_path(source["file"]))
    engine = make_engine(fresh_database_url)
    try:
        with engine.connect() as conn:
            actual = ops_manifest.table_digests(conn)
            assert ops_manifest.compare_digests(manifest["tables"], actual) == []
            assert conn.scalar(select(Client.name).where(Client.code == "C-CANARY1")) \
                == source["canary"]
            content = conn.scalar(select(ReportDocument.content)
                                  .where(ReportDocument.filename == "canary.pdf"))
            assert bytes(content) == CANARY_BYTES
        # The audit trail came back through inserts and is still append-only.
        for statement in ("UPDATE audit_events SET action = 'changed'",
                          "DELETE FROM audit_events"):
            with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
                conn.execute(text(statement))
        # Sequences (PostgreSQL) continue after the restored rows.
        with Session(engine) as session:
            newest = session.scalar(select(func.max(AuditEvent.id)))
            event = audit.record(session, action="backup.after", outcome="allowed", now=NOW,
                                 actor_kind="system")
            session.commit()
            assert event.id > newest
    finally:
        engine.dispose()

    # The site runs on the restored database.
    app = make_app(database_url=fresh_database_url, instance_path=tmp_path / "app-instance",
                   SECRET_KEY="t" * 40)
    try:
        client = app.test_client()
        health = client.get("/healthz")
        assert health.status_code == 200 and health.get_data(as_text=True) == "ok\n"
        login = client.get("/login")
        assert login.status_code == 200
        signed_in = client.post("/login", data={
            "csrf_token": csrf_token(login.get_data(as_text=True)),
            "email": "therapist1@demo.example.org", "password": source["password"]})
        assert signed_in.status_code == 302, signed_in.get_data(as_text=True)[:500]
        assert client.get("/").status_code == 200
    finally:
        database(app).engine.dispose()

    check = run(target_env, "config", "check")
    assert check.returncode == 0, check.stderr
    assert "(current)" in check.stdout
    print(f"\n[backup drill, {databases.backend}] {source['file'].stat().st_size} bytes; "
          f"`outcome backup` {source['seconds']:.2f} s, `outcome restore` {seconds:.2f} s "
          f"(each including ~1 s of process start-up); "
          f"{sum(rows for rows, _ in before.values())} rows in {len(before)} tables")


def test_restore_refuses_a_database_that_is_not_empty(source):
    before = independent_figures(source["url"])
    result = run(source["env"], "restore", str(source["file"]), "--yes")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: the database is not empty (")
    assert "--force" in lines[0]
    assert independent_figures(source["url"]) == before


@pytest.mark.sqlite_only
def test_a_backup_never_replaces_the_database_itself(source):
    database_file = make_url(source["url"]).database
    before = independent_figures(source["url"])
    for target in (database_file, f"{database_file}-wal"):
        result = invoke(source["env"], "backup", "--out", target)
        assert result.returncode == 1
        assert "is the database itself" in result.stderr
    assert independent_figures(source["url"]) == before


def test_restore_without_yes_asks_first(source, fresh_database_url, tmp_path):
    env = cli_env(tmp_path, fresh_database_url)
    result = invoke(env, "restore", str(source["file"]), input="n\n")
    assert result.returncode == 1
    assert "Restore it into" in result.stdout and "Aborted" in result.stderr
    assert independent_figures(fresh_database_url) == {}


def test_an_empty_alembic_version_counts_as_empty(source, fresh_database_url, tmp_path):
    engine = make_engine(fresh_database_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL "
                          "PRIMARY KEY)"))
    engine.dispose()
    result = invoke(cli_env(tmp_path, fresh_database_url), "restore", str(source["file"]),
                    "--yes")
    assert result.returncode == 0, result.stderr
    assert ": OK" in result.stdout


def test_force_replaces_everything_in_a_database(source, fresh_database_url, tmp_path):
    small_database(fresh_database_url)
    result = invoke(cli_env(tmp_path, fresh_database_url), "restore", str(source["file"]),
                    "--yes", "--force")
    assert result.returncode == 0, result.stderr
    assert ": OK" in result.stdout
    assert independent_figures(fresh_database_url) == independent_figures(source["url"])


def _damage(file: Path, tmp_path: Path, how: str) -> Path:
    data = file.read_bytes()
    damaged = tmp_path / f"damaged{file.suffix}"
    if how.startswith("truncated"):
        damaged.write_bytes(data[: len(data) * 6 // 10])
    else:
        damaged.write_bytes(secrets.token_bytes(len(data)))
    manifest = json.loads(ops_manifest.manifest_path(file).read_text())
    if how.endswith("manifest rewritten"):  # as if the file was bad before the manifest
        manifest.update(size_bytes=damaged.stat().st_size,
                        sha256=hashlib.sha256(damaged.read_bytes()).hexdigest())
    ops_manifest.manifest_path(damaged).write_text(json.dumps(manifest))
    return damaged


@pytest.mark.parametrize(("how", "expected"), [
    ("truncated", "does not match its manifest"),
    ("truncated, manifest rewritten", "is not a usable"),
    ("garbage, manifest rewritten", "is not a usable"),
])
def test_a_damaged_backup_fails_clearly_and_changes_nothing(source, fresh_database_url,
                                                             tmp_path, how, expected):
    damaged = _damage(source["file"], tmp_path, how)
    small_database(fresh_database_url)
    before = independent_figures(fresh_database_url)
    env = cli_env(tmp_path, fresh_database_url)
    # --force: even the emptying of a database that is not empty must not happen.
    result = invoke(env, "restore", str(damaged), "--yes", "--force")
    assert result.returncode == 1, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0] and "nothing was restored" in lines[0]
    assert "Traceback" not in result.stderr
    assert independent_figures(fresh_database_url) == before


def test_restore_needs_the_manifest_and_the_same_backend(source, fresh_database_url,
                                                         tmp_path, databases):
    env = cli_env(tmp_path, fresh_database_url)
    lonely = tmp_path / source["file"].name
    shutil.copyfile(source["file"], lonely)
    result = invoke(env, "restore", str(lonely), "--yes")
    assert result.returncode == 1
    assert "no manifest at" in result.stderr

    manifest = json.loads(ops_manifest.manifest_path(source["file"]).read_text())
    other = "postgresql" if databases.backend == "sqlite" else "sqlite"
    manifest["backend"] = other
    ops_manifest.manifest_path(lonely).write_text(json.dumps(manifest))
    result = invoke(env, "restore", str(lonely), "--yes")
    assert result.returncode == 1
    assert f"is a {other} backup and the configured database is {databases.backend}" \
        in result.stderr
    assert independent_figures(fresh_database_url) == {}


def test_a_backup_of_an_older_schema_says_to_upgrade(fresh_database_url, databases, tmp_path):
    older = databases.new_url()
    small_database(older, revision="0005")
    env = cli_env(tmp_path, older)
    out = tmp_path / "older.backup"
    assert invoke(env, "backup", "--out", str(out)).returncode == 0
    target_env = cli_env(tmp_path, fresh_database_url)
    restored = invoke(target_env, "restore", str(out), "--yes")
    assert restored.returncode == 0, restored.stderr
    assert ": OK" in restored.stdout
    assert (f"Schema at 0005; this version of outcome needs {schema.head_revision()}: run "
            "`outcome db upgrade`") in restored.stdout
    assert invoke(target_env, "config", "check").returncode == 1
    assert invoke(target_env, "db", "upgrade").returncode == 0
    assert invoke(target_env, "config", "check").returncode == 0


def test_a_backup_taken_while_rows_are_written_is_consistent(fresh_database_url, databases,
                                                             tmp_path):
    """A thread commits a client and its audit event, again and again, during the backup."""
    small_database(fresh_database_url)
    engine = make_engine(fresh_database_url)
    stop, written, errors = threading.Event(), [0], []
    with Session(engine) as session:
        clinic_id = session.scalar(select(Clinic.id))

    def write() -> None:
        try:
            while not stop.is_set():
                with Session(engine) as session:
                    n = written[0] + 1
                    client = Client(clinic_id=clinic_id, code=f"C-W{n:07d}", name=f"Writer {n}")
                    session.add(client)
                    session.flush()
                    audit.record(session, action="backup.write", outcome="allowed", now=NOW,
                                 actor_kind="system", clinic_id=clinic_id,
                                 client_id=client.id)
                    session.commit()
                written[0] = n
        except Exception as exc:  # reported by the test below
            errors.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        deadline = time.monotonic() + 30
        while written[0] < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        out = tmp_path / "busy.backup"
        result = run(cli_env(tmp_path, fresh_database_url), "backup", "--out", str(out))
        during = written[0]
        while written[0] < during + 20 and time.monotonic() < deadline + 30:
            time.sleep(0.01)
    finally:
        stop.set()
        writer.join()
        engine.dispose()
    assert not errors, errors
    assert result.returncode == 0, result.stderr
    manifest = ops_manifest.read_manifest(ops_manifest.manifest_path(out))
    copied = manifest["tables"]["clients"]["rows"]
    # Taken in the middle: after some writes, before the last ones.
    assert 20 <= copied < written[0]
    # Each commit's two rows are both in the copy, or neither.
    assert manifest["tables"]["audit_events"]["rows"] == copied + 1  # + small_database's

    if databases.backend == "sqlite":
        with sqlite3.connect(f"file:{out}?mode=ro", uri=True) as copy:
            assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert copy.execute("SELECT count(*) FROM clients").fetchone() == (copied,)
        copy_engine = create_engine(f"sqlite:///{out}")
        with copy_engine.connect() as conn:
            actual = ops_manifest.table_digests(conn)
            assert ops_manifest.compare_digests(manifest["tables"], actual) == []
        copy_engine.dispose()
    else:  # the dump is the copy: restore it and compare with the manifest
        target = databases.new_url()
        restored = invoke(cli_env(tmp_path, target), "restore", str(out), "--yes")
        assert restored.returncode == 0, restored.stderr
        assert ": OK" in restored.stdout
        assert independent_figures(target)["clients"][0] == copied


def test_a_missing_postgresql_client_is_one_clear_line(source, fresh_database_url, databases,
                                                       tmp_path):
    if databases.backend != "postgresql":
        pytest.skip("pg_dump is needed for PostgreSQL only")
    bare = tmp_path / "bin"
    bare.mkdir()
    env = dict(source["env"], PATH=str(bare))
    result = run(env, "backup", "--out", str(tmp_path / "x.dump"))
    assert result.returncode == 1
    assert result.stderr.strip() == ("Error: pg_dump is not on PATH; install postgresql-client "
                                     "(Debian: apt-get install postgresql-client)")
    env = dict(cli_env(tmp_path, fresh_database_url), PATH=str(bare))
    result = run(env, "restore", str(source["file"]), "--yes")
    assert result.returncode == 1
    assert result.stderr.strip().startswith("Error: pg_restore is not on PATH; install "
                                            "postgresql-client")


def test_leftover_objects_stop_a_restore_until_forced(source, fresh_database_url, databases,
                                                      tmp_path):
    if databases.backend != "postgresql":
        pytest.skip("PostgreSQL only (a SQLite restore replaces the whole file)")
    engine = make_engine(fresh_database_url)
    with engine.begin() as conn:  # no table, so "empty"; but the restore creates this too
        conn.execute(text("CREATE FUNCTION audit_events_append_only() RETURNS trigger "
                          "LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$"))
    engine.dispose()
    env = cli_env(tmp_path, fresh_database_url)
    result = invoke(env, "restore", str(source["file"]), "--yes")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "already exists" in lines[0] and "--force replaces them" in lines[0]
    assert independent_figures(fresh_database_url) == {}
    forced = invoke(env, "restore", str(source["file"]), "--yes", "--force")
    assert forced.returncode == 0, forced.stderr
    assert ": OK" in forced.stdout


def test_a_whole_postgresql_database_without_search_path(databases, tmp_path):
    if databases.backend != "postgresql":
        pytest.skip("PostgreSQL only")
    admin = create_engine(databases.postgres_url, isolation_level="AUTOCOMMIT")
    names = [f"outcome_backup_{os.getpid()}_{secrets.token_hex(3)}_{i}" for i in range(2)]
    try:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    except DBAPIError as exc:
        admin.dispose()
        pytest.skip(f"cannot create databases here ({exc.orig})")
    try:
        base = make_url(databases.postgres_url)
        source_url, target_url = (base.set(database=name).render_as_string(hide_password=False)
                                  for name in names)
        small_database(source_url)
        out = tmp_path / "whole.dump"
        made = invoke(cli_env(tmp_path, source_url), "backup", "--out", str(out))
        assert made.returncode == 0, made.stderr
        manifest = ops_manifest.read_manifest(ops_manifest.manifest_path(out))
        assert manifest["postgresql"] == {"schema": "public", "whole_database": True}
        restored = invoke(cli_env(tmp_path, target_url), "restore", str(out), "--yes")
        assert restored.returncode == 0, restored.stderr
        assert ": OK" in restored.stdout
        assert independent_figures(target_url) == independent_figures(source_url)
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_rewrite_schema_renames_qualified_names_and_leaves_rows_alone():
    script = [
        b"CREATE TABLE src.clients (\n",
        b"ALTER TABLE ONLY src.t ALTER COLUMN id SET DEFAULT nextval('src.t_id_seq'::regclass);\n",
        b'CREATE TRIGGER x BEFORE DELETE ON "src".audit_events EXECUTE FUNCTION src.f();\n',
        b"CREATE INDEX ix ON notsrc.t USING btree (src_id);\n",
        b"COPY src.clients (id, name) FROM stdin;\n",
        b"1\tsrc.clients \\\\. src.x\n",
        b"\\.\n",
        b"SELECT pg_catalog.setval('src.t_id_seq', 9, true);\n",
    ]
    out = list(ops_postgresql.rewrite_schema(script, "src", "dst"))
    assert out == [
        b'CREATE TABLE "dst".clients (\n',
        b"ALTER TABLE ONLY \"dst\".t ALTER COLUMN id SET DEFAULT "
        b"nextval('\"dst\".t_id_seq'::regclass);\n",
        b'CREATE TRIGGER x BEFORE DELETE ON "dst".audit_events EXECUTE FUNCTION "dst".f();\n',
        b"CREATE INDEX ix ON notsrc.t USING btree (src_id);\n",
        b'COPY "dst".clients (id, name) FROM stdin;\n',
        b"1\tsrc.clients \\\\. src.x\n",
        b"\\.\n",
        b"SELECT pg_catalog.setval('\"dst\".t_id_seq', 9, true);\n",
    ]
    assert list(ops_postgresql.rewrite_schema(script, "same", "same")) == script


def test_canonical_values_are_plain_and_stable():
    aware = dt.datetime(2026, 11, 16, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert ops_manifest.canonical_value(aware) == "2026-11-16T09:00:00"
    assert ops_manifest.canonical_value(True) == 1
    assert ops_manifest.canonical_value(b"\x00\xff") == {"$bytes": "00ff"}
    assert ops_manifest.canonical_value({"b": [1.5, None]}) == {"b": [1.5, None]}


def test_the_backup_modules_import_no_flask():
    script = ("import sys, outcome.ops.backup, outcome.ops.manifest, outcome.ops.sqlite, "
              "outcome.ops.postgresql; sys.exit('flask' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", script], timeout=60).returncode == 0
