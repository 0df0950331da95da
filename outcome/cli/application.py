"""The one place the command line builds the web application (for commands that need it).

Most commands only open a database session (``outcome.extensions``); building the app is
deferred to the commands that need its configuration, so ``outcome --help`` always works.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from outcome.config import ConfigError

if TYPE_CHECKING:
    from flask import Flask


def build_app() -> Flask:
    """The configured app, or a one-line :class:`click.ClickException` naming what is wrong."""
    # Imported here, not above: only the commands that build the app pay for loading it.
    from outcome.app import create_app
    try:
        return create_app()
    except ConfigError as exc:
        raise click.ClickException(f"configuration error: {exc}") from None
