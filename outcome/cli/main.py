"""Entry point of the ``outcome`` console script."""

from __future__ import annotations

import click
from flask.cli import FlaskGroup

from outcome import __version__
from outcome.cli.application import build_app
from outcome.cli.commands import COMMAND_PATHS
from outcome.cli.commands import load_command


class OutcomeGroup(FlaskGroup):
    """A FlaskGroup whose own commands are known without building the app.

    FlaskGroup normally imports the app to list commands, so ``outcome --help`` would fail
    (with a traceback) on a bad configuration; here help always works and the app is built
    only by commands that need it. A command's module is imported when it is asked for
    (:mod:`outcome.cli.commands`).
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(COMMAND_PATHS))  # Flask's routes, shell

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return load_command(name) or self.commands.get(name)


cli = OutcomeGroup(
    name="outcome",
    create_app=build_app,
    add_version_option=False,
    load_dotenv=False,
    set_debug_flag=False,
    help="outcome: progress feedback for psychotherapy practices.\n\n"
         "Settings come from the instance file and OUTCOME_* variables; "
         "see `outcome config show`.",
)
# `outcome` always runs this app: FlaskGroup's --app, --env-file and --debug do not apply.
cli.params = [p for p in cli.params if p.name not in {"app", "env_file", "debug"}]
cli = click.version_option(__version__, prog_name="outcome")(cli)
