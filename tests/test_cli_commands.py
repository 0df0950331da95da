"""The `outcome` command table (issue 21): static short help equal to the real commands',
and `outcome --help` listing them without importing Flask, the app or any command."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from outcome.cli.commands import COMMANDS
from outcome.cli.commands import FLASK_COMMANDS
from outcome.cli.commands import all_commands
from outcome.cli.commands import load_command
from outcome.cli.commands import load_flask_command
from outcome.cli.main import cli
from outcome.cli.main import listed_commands
from tests.helpers import ROOT


def real_commands() -> dict[str, click.Command]:
    commands = {name: load_command(name) or load_flask_command(name)
                for name in [*COMMANDS, *FLASK_COMMANDS]}
    assert all(commands.values())
    return dict(sorted(commands.items()))  # type: ignore[arg-type]


def test_all_commands_are_the_table():
    assert [command.name for command in all_commands()] == list(COMMANDS)


@pytest.mark.parametrize("limit", [10, 30, 45, 54, 60, 68, 74, 100, 120, 1000])
def test_the_static_short_help_is_each_commands_own(limit):
    stand_ins = listed_commands()
    for name, command in real_commands().items():
        assert not command.hidden and not command.deprecated, name
        assert stand_ins[name].get_short_help_str(limit) == command.get_short_help_str(limit), (
            f"{name}: update its short help in outcome/cli/commands.py")


@pytest.mark.parametrize("width", [60, 80, 120, 200])
def test_help_lists_the_commands_as_the_real_commands_would(width):
    def listing(group: click.Group) -> str:
        ctx = click.Context(group, info_name="outcome", terminal_width=width,
                            max_content_width=width)
        formatter = ctx.make_formatter()
        group.format_commands(ctx, formatter)
        return formatter.getvalue()

    eager = click.Group("outcome", commands=real_commands())
    assert listing(cli) == listing(eager)


def modules_after(*args: str, script: str = "") -> set[str]:
    """The modules a fresh `outcome ARGS` process has imported when it ends."""
    code = ("import json, sys\nfrom outcome.cli.main import cli\n" + script
            + "try:\n    cli(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n")
    result = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    return set(json.loads(result.stderr.strip().splitlines()[-1]))


HEAVY = ("flask", "werkzeug", "sqlalchemy", "babel", "reportlab", "outcome.app",
         "outcome.models", "outcome.services")


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.startswith(HEAVY))


@pytest.mark.parametrize("args", [["--help"], [], ["--version"]])
def test_help_imports_neither_flask_nor_the_app_nor_any_command(args):
    modules = modules_after(*args)
    assert not heavy(modules)
    assert not sorted(m for m in modules if m.startswith("outcome.cli.")
                      and m not in {"outcome.cli.main", "outcome.cli.commands"})
    assert "numpy" not in modules


def test_analyse_needs_no_flask_database_or_babel(tmp_path):
    path = tmp_path / "scores.csv"
    path.write_text("id,time,score\n" + "".join(f"{n},pre,{10 + n % 9}\n{n},post,{n % 12}\n"
                                                 for n in range(40)))
    modules = modules_after("analyse", str(path), "--id", "id", "--time", "time", "--score",
                            "score", "--pre", "pre", "--post", "post", "--reliability", "0.8",
                            "--direction", "lower-is-better", "-o", str(tmp_path / "rows.csv"))
    assert (tmp_path / "rows.csv").read_text().startswith("id,pre,post,index,")
    assert "outcome.cli.analyse" in modules and not heavy(modules)


@pytest.mark.slow
def test_a_flask_command_gets_the_configured_app_and_its_one_line_errors(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "OUTCOME_INSTANCE_PATH": str(tmp_path / "instance"),
           "OUTCOME_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    run = [sys.executable, "-c", "from outcome.cli.main import cli; cli()", "routes"]
    broken = subprocess.run(run, env=env, cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert broken.returncode == 1
    assert broken.stderr.startswith("Error: configuration error: OUTCOME_SECRET_KEY is not "
                                     "set")
    assert len(broken.stderr.strip().splitlines()) == 1, broken.stderr
    fine = subprocess.run(run, env={**env, "OUTCOME_SECRET_KEY": "s" * 40}, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert fine.returncode == 0, fine.stderr
    assert "/account/password" in fine.stdout
