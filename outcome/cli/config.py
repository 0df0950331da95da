"""``outcome config``: write, show and check the configuration."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
from flask import Flask

from outcome.config import CONFIG_FILE_NAME
from outcome.config import ConfigError
from outcome.config import config_file_path
from outcome.config import describe
from outcome.config import instance_path
from outcome.config import load_config
from outcome.config import read_config_file
from outcome.private_files import PRIVATE_FILE_MODE
from outcome.private_files import file_permission_warnings
from outcome.private_files import make_private_dir


def _instance_path() -> str:
    # A bare Flask object computes the same default instance folder as the real app.
    return Flask("outcome.app", instance_path=instance_path()).instance_path


@click.group("config")
def config_group() -> None:
    """Write, show and check the configuration."""


@config_group.command("init")
def init_command() -> None:
    """Create the instance folder (mode 0700) and a config file (0600) with a random secret key.

    Does nothing to a file that already sets secret_key, so it is safe to run again.
    """
    path = config_file_path(_instance_path(), os.environ)
    try:
        existing = read_config_file(path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if existing.get("SECRET_KEY"):
        click.echo(f"{path} already sets secret_key; left unchanged.")
        return
    make_private_dir(_instance_path())
    make_private_dir(path.parent)
    line = f'secret_key = "{secrets.token_urlsafe(48)}"\n'
    header = "" if path.exists() else (
        "# outcome instance configuration. Keys are the OUTCOME_* settings in lower case;\n"
        "# environment variables override this file. See `outcome config show`.\n")
    # Created 0600 (never readable by others, not even for a moment); an existing file
    # keeps its mode, which `outcome config check` warns about when it is wider.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE_MODE)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        fh.write(header + line)
    click.echo(f"Wrote a new secret key to {path}.")


@config_group.command("show")
def show_command() -> None:
    """List every setting with its current value (secrets masked) and meaning."""
    try:
        values = load_config(_instance_path())
    except ConfigError as exc:
        raise click.ClickException(f"configuration error: {exc}") from None
    click.echo(f"instance folder: {_instance_path()}")
    click.echo(f"config file:     {values['CONFIG_FILE']}"
               f"{'' if Path(values['CONFIG_FILE']).exists() else ' (not present)'}")
    for env_var, shown, doc in describe(values):
        click.echo(f"\n{env_var} = {shown}\n    {doc}")


def smtp_warnings(values: Mapping[str, Any]) -> list[str]:
    """Warnings about how e-mail reaches the SMTP server (issue 16): plain text, or
    encryption that is not required and not verified, to a server on another machine.

    E-mail carries questionnaire links, each a key to a client's questionnaires.
    """
    from outcome.services.mail import is_loopback_host

    security, host = values["SMTP_SECURITY"], str(values["SMTP_HOST"])
    if security == "none":
        where = ("even on this machine, prefer auto" if is_loopback_host(host)
                 else "anyone on the network path can read the questionnaire links")
        return [f"warning: OUTCOME_SMTP_SECURITY=none sends e-mail to {host} as plain "
                f"text ({where}); set starttls or tls."]
    if security == "auto" and not is_loopback_host(host):
        return [f"warning: OUTCOME_SMTP_SECURITY=auto sends e-mail to {host} in plain text "
                "if the server does not offer STARTTLS, and does not verify its certificate "
                "unless OUTCOME_SMTP_CA_FILE is set; set starttls (port 587) or tls "
                "(port 465) for a server on another machine."]
    return []


@config_group.command("check")
def check_command() -> None:
    """Build the app, connect to the database and report whether its schema is current."""
    from outcome import schema
    from outcome.cli.application import build_app
    from outcome.extensions import database

    app = build_app()
    for warning in smtp_warnings(app.config):
        click.echo(warning, err=True)
    engine = database(app).engine
    current, head = schema.current_revision(engine), schema.head_revision()
    click.echo(f"configuration ok; database {engine.url.render_as_string()} answers")
    _warn_about_file_permissions(app)
    if current != head:
        raise click.ClickException(
            f"database schema is at {current or 'empty'}, this version needs {head}; "
            "run `outcome db upgrade`.")
    click.echo(f"schema at {head} (current)")


def _warn_about_file_permissions(app: Flask) -> None:
    """Name every private file or folder (instance folder and file, SQLite database with
    its -wal and -shm, clinic instruments) that other local accounts can reach."""
    for warning in file_permission_warnings(app.instance_path, app.config):
        click.echo(f"warning: {warning}", err=True)


__all__ = ["CONFIG_FILE_NAME", "config_group"]
