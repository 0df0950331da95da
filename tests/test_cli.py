"""The `outcome` command, run as a real process against the run's database backend.

Each command family runs at least once as a real process (``run``): the console script,
its configuration from the environment, its exit status and what it prints. A real process
costs a Python start and the app's imports (about 2 s of CPU for a command that builds the
app), so where a test's point is what a command does rather than the process, the command
runs in this process (``invoke``: click's runner on the same ``outcome`` group and the same
environment, so the app is built from the same settings), and a database that only needs
to be migrated is migrated in this process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from outcome import schema
from outcome.db import make_engine
from tests.inprocess import invoke_raising as invoke

ROOT = Path(__file__).resolve().parent.parent
OUTCOME = str(Path(sys.executable).parent / "outcome")


@pytest.fixture
def env(tmp_path, fresh_database_url):
    """An environment with an empty database and a fresh instance folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTCOME_")}
    env.update(OUTCOME_INSTANCE_PATH=str(tmp_path / "instance"),
               OUTCOME_DATABASE_URL=fresh_database_url,
               OUTCOME_SECRET_KEY="s" * 40)
    return env


def run(env, *args, timeout=120):
    return subprocess.run([OUTCOME, *args], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def migrate(env):
    """Bring env's database to the newest revision (in this process)."""
    engine = make_engine(env["OUTCOME_DATABASE_URL"])
    try:
        schema.upgrade(engine)
    finally:
        engine.dispose()


@pytest.mark.slow
def test_help_lists_every_command_even_with_a_broken_configuration(env):
    env["OUTCOME_DATABASE_URL"] = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    del env["OUTCOME_SECRET_KEY"]
    result = run(env, "--help")
    assert result.returncode == 0, result.stderr
    for command in ("config", "db", "demo", "serve", "routes", "shell"):
        assert f"\n  {command} " in result.stdout
    assert "--app" not in result.stdout
    db_help = run(env, "db", "--help")
    assert db_help.returncode == 0, db_help.stderr
    assert "upgrade" in db_help.stdout


@pytest.mark.slow
def test_db_upgrade_on_empty_then_on_migrated_database(env):
    first = run(env, "db", "upgrade")
    assert first.returncode == 0, first.stderr
    assert "Database upgraded from empty to " in first.stdout
    second = run(env, "db", "upgrade")
    assert second.returncode == 0, second.stderr
    assert "nothing to do" in second.stdout
    # `db upgrade` ran as a process above (twice); these read what it left.
    current = invoke(env, "db", "current")
    assert current.stdout.strip().endswith("(current)")
    with warnings.catch_warnings():
        # SQLite cannot reflect the lower(email) index, so `db check` skips it there with a
        # warning (on standard error in a real process; an error under pytest's settings).
        warnings.filterwarnings("ignore", message=".*expression-based index")
        check = invoke(env, "db", "check")
    assert check.returncode == 0, check.stderr


def test_flask_cli_runs_the_same_commands(env):
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
                            env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Database upgraded" in result.stdout


# The unreachable database runs as a real process (the error reaches an operator's terminal
# as one line); the other two in this process: the same group, app building and message.
@pytest.mark.parametrize(("change", "expected", "how"), [
    ({"OUTCOME_SECRET_KEY": None}, "OUTCOME_SECRET_KEY is not set", invoke),
    ({"OUTCOME_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"},
     "cannot connect to the database at postgresql+psycopg://nobody@127.0.0.1:1/none", run),
    ({"OUTCOME_TIMEZONE": "Europe/Atlantis"}, "OUTCOME_TIMEZONE 'Europe/Atlantis'", invoke),
])
def test_bad_configuration_is_one_clear_line(env, change, expected, how):
    for key, value in change.items():
        if value is None:
            env.pop(key)
        else:
            env[key] = value
    result = how(env, "db", "upgrade")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: configuration error: ")
    assert expected in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_config_init_writes_a_secret_once(env, tmp_path):
    del env["OUTCOME_SECRET_KEY"]
    assert "Wrote a new secret key" in run(env, "config", "init").stdout
    path = tmp_path / "instance" / "outcome.toml"
    content = path.read_text()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert "left unchanged" in run(env, "config", "init").stdout
    assert path.read_text() == content
    # The written key satisfies production (the app built from the same environment and
    # instance file as a process would, in this process: `config init` ran as one above).
    assert invoke(env, "db", "upgrade").returncode == 0


def test_config_show_masks_secrets(env):
    result = run(env, "config", "show")
    assert result.returncode == 0, result.stderr
    assert "OUTCOME_SECRET_KEY = (set)" in result.stdout
    assert "s" * 40 not in result.stdout


@pytest.mark.slow
# What the command prints and stores, the same on either backend; the seeding's SQL runs on
# both in conftest's demo_databases, and test_demo.py's tests on both (one_backend rule).
@pytest.mark.one_backend
def test_demo_is_created_once_and_prints_logins(env, tmp_path):
    migrate(env)
    # About 18 s on an idle core (2.7 s before): each alliance answer is submitted.
    first = run(env, "demo", "--if-empty", timeout=600)
    assert first.returncode == 0, first.stderr
    assert "Created: Riverside Psychotherapy (demo): 150 clients" in first.stdout
    assert "therapist1@demo.example.org" in first.stdout
    password = (tmp_path / "instance" / "demo-password").read_text().strip()
    assert f"password for every demo account: {password}" in first.stdout

    # The command ran as a process above; these two read what it left, in this process.
    again = invoke(env, "demo", "--if-empty")
    assert again.returncode == 0, again.stderr
    assert "The demo clinic exists" in again.stdout
    assert first.stdout.split(":", 2)[2] == again.stdout.split(":", 2)[2]  # same counts
    assert password in again.stdout

    reset = invoke(env, "demo", "--reset-password")
    new_password = (tmp_path / "instance" / "demo-password").read_text().strip()
    assert new_password != password and new_password in reset.stdout


def test_demo_is_not_added_to_a_database_with_a_real_clinic(app, runner, db_session, clinic):
    result = runner.invoke(args=["demo", "--if-empty"])
    assert result.exit_code == 0, result.output
    assert "already has a clinic; the demo was not added" in result.output


def test_serve_refuses_an_unmigrated_database(env):
    result = run(env, "serve", "--port", "5999")
    assert result.returncode == 1
    assert "run `outcome db upgrade` first" in result.stderr
