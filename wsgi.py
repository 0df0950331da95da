"""WSGI entry point: ``gunicorn wsgi:app`` or ``flask --app wsgi ...``."""

from __future__ import annotations

import sys

from outcome.app import create_app
from outcome.cli.commands import all_commands
from outcome.config import ConfigError

try:
    app = create_app()
except ConfigError as exc:
    # One clear line for the operator instead of a traceback in the server log.
    sys.stderr.write(f"outcome: configuration error: {exc}\n")
    raise SystemExit(2) from None
# `flask --app wsgi <command>` knows the same commands as `outcome <command>`.
for _command in all_commands():
    app.cli.add_command(_command)
