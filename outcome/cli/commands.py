"""Every command of the CLI, in one table shared by `outcome` and `flask --app wsgi`.

Each command is named by where it lives, not imported here: ``outcome <command>`` imports
only that command's module (and what it needs), so a short command such as ``outcome db
upgrade`` does not first load the web application, reportlab and every service (about 1.5
s of CPU a start). ``outcome --help`` and :func:`all_commands` import them all.
"""

from __future__ import annotations

import importlib

import click

COMMAND_PATHS: dict[str, str] = {
    "analyse": "outcome.cli.monitoring:analyse_command",
    "appointments": "outcome.cli.care:appointments_group",
    "backup": "outcome.cli.backup:backup_command",
    "clients": "outcome.cli.clients:clients_group",  # issue 20: erasure and retention
    "clinic": "outcome.cli.clinic:clinic_group",
    "config": "outcome.cli.config:config_group",
    "db": "outcome.cli.db:db_group",
    "demo": "outcome.cli.demo:demo_command",
    "digest": "outcome.cli.digest:digest_command",
    "export": "outcome.cli.export:export_command",
    "fits": "outcome.cli.monitoring:fits_group",
    "goals": "outcome.cli.care:goals_group",
    "instruments": "outcome.cli.instruments:instruments_group",
    "keys": "outcome.cli.keys:keys_group",  # issue 20: encryption at rest
    "links": "outcome.cli.links:links_group",
    "model": "outcome.cli.monitoring:model_group",
    "reports": "outcome.cli.reports:reports_group",  # issue 18
    "restore": "outcome.cli.backup:restore_command",
    "scheduler": "outcome.cli.scheduler:scheduler_command",
    "score": "outcome.cli.instruments:score_command",
    "serve": "outcome.cli.serve:serve_command",
    "signals": "outcome.cli.monitoring:signals_group",
    "tokens": "outcome.cli.tokens:tokens_group",
    "users": "outcome.cli.users:users_group",
}


def load_command(name: str) -> click.Command | None:
    """The command called ``name`` (its module imported now), or None if there is none."""
    path = COMMAND_PATHS.get(name)
    if path is None:
        return None
    module, attribute = path.split(":")
    command = getattr(importlib.import_module(module), attribute)
    assert isinstance(command, click.Command) and command.name == name, path
    return command


def all_commands() -> list[click.Command]:
    """Every command, each module imported (for ``flask --app wsgi`` and the tests)."""
    return [command for name in COMMAND_PATHS if (command := load_command(name))]
