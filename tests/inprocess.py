"""The ``outcome`` command run in the test process, for tests whose point is what a command
decides and says rather than the process that runs it.

A process of its own costs ~2 s of CPU before the command starts (importing the
application); :func:`invoke` runs the same command group (``outcome.cli.main.cli``) with
click's runner, under the environment the process would have had, so the configuration,
the app (``outcome.cli.application.build_app``), the messages and the exit status are
those of the process. Tests about the process itself (what an operator runs, what reaches
a real stderr, a process's PATH or umask) start one.
"""

from __future__ import annotations

import os
import traceback
from typing import NamedTuple

from click.testing import CliRunner

from outcome.cli import application as cli_application
from outcome.cli.main import cli
from outcome.extensions import database


class Ran(NamedTuple):
    """What :func:`invoke` returns: the fields of a finished process that tests read
    (those of ``subprocess.run(..., capture_output=True, text=True)``)."""

    returncode: int
    stdout: str
    stderr: str


def invoke(env: dict[str, str], *args: str, input: str | None = None) -> Ran:
    """`outcome ARGS` run in this process with the environment ``env`` (that of the
    process it stands for): the real command group, so the same commands, configuration, app,
    messages and exit status (click's, as in its standalone mode: 1 after an error, after
    "Aborted!"). An exception that escapes is reported as a process would: exit status 1
    and its traceback on stderr. The environment is as before afterwards, and the engine of
    each app the command built is disposed of."""
    changes: dict[str, str | None] = {k: v for k, v in env.items() if os.environ.get(k) != v}
    changes |= {k: None for k in os.environ if k not in env}
    changes.setdefault("FLASK_RUN_FROM_CLI", None)  # set by the group for Flask commands
    built = []
    real_build_app = cli_application.build_app

    def build_app():
        app = real_build_app()
        built.append(app)
        return app

    cli_application.build_app = build_app
    try:
        result = CliRunner(env=changes).invoke(cli, list(args), input=input,
                                               catch_exceptions=True)
    finally:
        cli_application.build_app = real_build_app
        for app in built:
            database(app).engine.dispose()
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "Traceback (most recent call last):\n" + "".join(
            traceback.format_exception(result.exception))
    return Ran(result.exit_code, result.stdout, stderr)


def invoke_raising(env: dict[str, str], *args: str) -> Ran:
    """`outcome ARGS` in this process under exactly ``env``'s OUTCOME_* variables (the
    others removed; os.environ is as before afterwards), for tests of the command line
    itself: an unexpected exception propagates, failing the test with its own traceback,
    instead of becoming exit status 1 as in :func:`invoke`."""
    overrides: dict[str, str | None] = {k: None for k in os.environ if k.startswith("OUTCOME_")}
    overrides |= {k: v for k, v in env.items() if k.startswith("OUTCOME_")}
    overrides["FLASK_RUN_FROM_CLI"] = None  # set by the group; not left for later tests
    result = CliRunner().invoke(cli, list(args), env=overrides, prog_name="outcome",
                                catch_exceptions=False)
    return Ran(result.exit_code, result.stdout, result.stderr)
