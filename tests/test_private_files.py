"""Issue 16, finding 4: files holding client data or secrets are private to outcome's account.

A fresh install made the way docs/operators.md says (``outcome config init``, ``outcome db
upgrade``, a write, ``outcome backup``, ``outcome instruments install``) leaves the
instance folder 0700 and the database, its -wal and -shm, the backup and the overlay
0600, under the usual umask 022; ``outcome config check`` names anything wider.

The fresh install's commands run as processes of their own (the operator's steps, each
under the umask a process inherits). Reading the result back (``instruments show``,
``config check``), and the second test's install, which is only its starting point, run the
same commands in this process under the same umask (:func:`tests.inprocess.invoke`: ~2 s
of CPU less each, the application's imports).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from outcome.db import make_engine
from outcome.private_files import file_permission_warnings
from outcome.private_files import sqlite_file
from tests.inprocess import Ran
from tests.inprocess import invoke

ROOT = Path(__file__).resolve().parent.parent
# The `outcome` command of this checkout (``-c`` puts the working folder first on the path,
# so a shared virtualenv's console script cannot run another checkout's code).
OUTCOME = [sys.executable, "-c", "from outcome.cli.main import cli; cli()"]


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def run(env, *args):
    # The umask most systems give a service account: without care, files come out 0644.
    return subprocess.run([*OUTCOME, *args], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=120, preexec_fn=lambda: os.umask(0o022))


def run_here(env, *args) -> Ran:
    """``run(env, *args)`` in this process (:func:`tests.inprocess.invoke`), under the same
    umask."""
    old = os.umask(0o022)
    try:
        return invoke(env, *args)
    finally:
        os.umask(old)


def fresh_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTCOME_")}
    env["OUTCOME_INSTANCE_PATH"] = str(tmp_path / "instance")  # SQLite in the instance folder
    return env


def test_a_fresh_install_keeps_every_private_file_private(tmp_path):
    env = fresh_env(tmp_path)
    instance = tmp_path / "instance"
    for args in (("config", "init"), ("db", "upgrade")):
        result = run(env, *args)
        assert result.returncode == 0, result.stderr
    database = instance / "outcome.sqlite3"
    assert oct(mode(instance)) == oct(0o700)
    assert oct(mode(instance / "outcome.toml")) == oct(0o600)
    assert oct(mode(database)) == oct(0o600)

    # A write through outcome's own engine, with the connection held open so that the
    # -wal and -shm files exist; SQLite gives them the database file's mode.
    old = os.umask(0o022)
    engine = make_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as conn:
            conn.execute(text("CREATE TABLE canary (x INTEGER)"))
            conn.execute(text("INSERT INTO canary VALUES (1)"))
            conn.commit()
            for suffix in ("-wal", "-shm"):
                side = database.with_name(database.name + suffix)
                assert side.exists(), suffix
                assert oct(mode(side)) == oct(0o600), suffix
    finally:
        engine.dispose()
        os.umask(old)

    backup = tmp_path / "outcome.backup"
    result = run(env, "backup", "--out", str(backup))
    assert result.returncode == 0, result.stderr
    assert oct(mode(backup)) == oct(0o600)
    assert oct(mode(Path(f"{backup}.manifest.json"))) == oct(0o600)

    overlay = tmp_path / "srs-wording.yaml"
    overlay.write_text("overlay_for: srs_vas@1\nitems: {srs_1: A, srs_2: B, srs_3: C, srs_4: D}\n")
    result = run(env, "instruments", "install", str(overlay))
    assert result.returncode == 0, result.stderr
    installed = instance / "instruments" / overlay.name
    assert installed.read_text() == overlay.read_text()
    assert oct(mode(installed)) == oct(0o600)
    assert oct(mode(installed.parent)) == oct(0o700)
    assert "srs_1      A" in run_here(env, "instruments", "show", "srs_vas").stdout

    check = run_here(env, "config", "check")
    assert check.returncode == 0, check.stderr
    assert "warning" not in check.stderr


def test_config_check_names_each_file_that_others_can_read(tmp_path):
    env = fresh_env(tmp_path)
    instance = tmp_path / "instance"
    for args in (("config", "init"), ("db", "upgrade")):
        assert run_here(env, *args).returncode == 0
    database = instance / "outcome.sqlite3"
    os.chmod(database, 0o644)
    os.chmod(instance, 0o755)
    check = run_here(env, "config", "check")
    assert check.returncode == 0, check.stderr
    assert f"warning: {database} has mode 0644" in check.stderr
    assert f"run chmod 600 {database}" in check.stderr
    assert f"warning: {instance} has mode 0755" in check.stderr
    assert f"run chmod 700 {instance}" in check.stderr
    assert "outcome.toml" not in check.stderr  # still 0600: not named


def test_an_overlay_readable_by_others_is_named(tmp_path):
    folder = tmp_path / "instruments"
    folder.mkdir(mode=0o700)
    overlay = folder / "wai.yaml"
    overlay.write_text("overlay_for: wai_sr@1\n")
    os.chmod(overlay, 0o644)
    config = {"INSTRUMENTS_DIR": str(folder), "DATABASE_URL": "postgresql://x@h/db"}
    os.chmod(tmp_path, 0o700)
    assert file_permission_warnings(tmp_path, config) == [
        f"{overlay} has mode 0644: other local accounts can reach it; run chmod 600 {overlay}"]


def test_sqlite_file_of_a_url():
    assert sqlite_file("sqlite:////var/lib/outcome/outcome.sqlite3") == Path(
        "/var/lib/outcome/outcome.sqlite3")
    assert sqlite_file("sqlite://") is None
    assert sqlite_file("sqlite:///:memory:") is None
    assert sqlite_file("postgresql+psycopg://u@h/db") is None
    assert sqlite_file("not a url") is None
