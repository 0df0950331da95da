"""Entry point of the ``outcome`` console script.

The root group is a plain :class:`click.Group`, not Flask's ``FlaskGroup``: ``outcome
--help`` lists the commands from :mod:`outcome.cli.commands` (names and short help, nothing
imported), so it imports neither Flask nor the app and works with a broken configuration.
A command's module is imported when the command is run; if that module uses Flask (an
``AppGroup``, ``with_appcontext``, ``current_app``), the group hands it the way to build the
app (Flask's ``ScriptInfo`` with :func:`outcome.cli.application.build_app`), as
``FlaskGroup`` did. A command that needs no app (``outcome analyse``) never loads Flask.
"""

from __future__ import annotations

import os
import sys

# One OpenBLAS thread unless the operator says otherwise, set before anything imports
# numpy: the engine's numpy work is elementwise (no BLAS), starting OpenBLAS's thread pool
# costs about 0.08 s of every command's start (half of `outcome analyse`'s), and under
# `outcome serve` each worker's idle pool would compete with the other workers for cores.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import click  # after the thread setting above, on purpose

from outcome import __version__
from outcome.cli.commands import COMMANDS
from outcome.cli.commands import FLASK_COMMANDS
from outcome.cli.commands import load_command
from outcome.cli.commands import load_flask_command


def listed_commands() -> dict[str, click.Command]:
    """Stand-ins for every command, carrying only the name and short help of the table:
    what ``outcome --help`` lists (click shortens them to the terminal as it would the real
    commands' help)."""
    stand_ins = {name: click.Command(name, help=entry.short_help)
                 for name, entry in COMMANDS.items()}
    stand_ins |= {name: click.Command(name, short_help=entry.short_help)  # shown whole
                  for name, entry in FLASK_COMMANDS.items()}
    return dict(sorted(stand_ins.items()))


def _offer_the_app(ctx: click.Context) -> None:
    """Let Flask's ``with_appcontext`` build the app with :func:`build_app` (one-line
    configuration errors), as ``FlaskGroup`` did; only once a Flask command is chosen."""
    # A command whose module imports no Flask (``analyse``) cannot ask for the app; a
    # command that needs the app must import Flask at module level (``with_appcontext``
    # or ``current_app``, as every such command here does), not only inside its callback.
    if ctx.obj is not None or "flask" not in sys.modules:
        return
    from flask.cli import ScriptInfo

    from outcome.cli.application import build_app
    # What FlaskGroup sets: `app.run()` is a no-op under the command line.
    os.environ["FLASK_RUN_FROM_CLI"] = "true"
    ctx.obj = ScriptInfo(create_app=build_app, set_debug_flag=False,
                         load_dotenv_defaults=False)


class OutcomeGroup(click.Group):
    """The ``outcome`` commands: listed from the table, each imported only when run."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(listed_commands())

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = load_command(name) or load_flask_command(name)
        if command is not None:
            _offer_the_app(ctx)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        click.Group(self.name, commands=listed_commands()).format_commands(ctx, formatter)


cli = OutcomeGroup(
    name="outcome",
    help="outcome: progress feedback for psychotherapy practices.\n\n"
         "Settings come from the instance file and OUTCOME_* variables; "
         "see `outcome config show`.",
)
cli = click.version_option(__version__, prog_name="outcome")(cli)
