"""Every command of the CLI, in one table shared by `outcome` and `flask --app wsgi`.

Each command is named by where it lives, not imported here, with its short help (the
line ``outcome --help`` shows): ``outcome --help`` lists the commands from this table
alone, and ``outcome <command>`` imports only that command's module (and what it needs),
so neither loads Flask, the web application, reportlab and every service first (about 4 s
and 180 MB a start before issue 21). tests/test_cli_commands.py checks that each short help
here is the real command's, so the two cannot drift. :func:`all_commands` imports them all
(for ``flask --app wsgi`` and the tests).
"""

from __future__ import annotations

import importlib
from typing import NamedTuple

import click


class Entry(NamedTuple):
    path: str  # "module:attribute"
    short_help: str  # the first sentence of the command's help, as `--help` shows it


COMMANDS: dict[str, Entry] = {
    "analyse": Entry("outcome.cli.analyse:analyse_command",
                     "Reliable and clinically significant change (Jacobson & Truax and "
                     "variants)."),
    "appointments": Entry("outcome.cli.care:appointments_group", "Book sessions."),
    "backup": Entry("outcome.cli.backup:backup_command",
                    "Back up the database to --out FILE, with FILE.manifest.json beside it."),
    # issue 20: erasure and retention
    "clients": Entry("outcome.cli.clients:clients_group",
                     "Erase clients; the retention policy."),
    "clinic": Entry("outcome.cli.clinic:clinic_group",
                    "Clinics: create one with its first admin; settings."),
    "config": Entry("outcome.cli.config:config_group",
                    "Write, show and check the configuration."),
    "db": Entry("outcome.cli.db:db_group", "Create and migrate the database schema."),
    "demo": Entry("outcome.cli.demo:demo_command",
                  "Create the demo clinic (once) and print its logins."),
    "digest": Entry("outcome.cli.digest:digest_command",
                    "Produce the weekly supervision digests of one week, exactly once each."),
    "export": Entry("outcome.cli.export:export_command",
                    "Export a client's answers and scores (--fhir or --csv) to a file or "
                    "stdout."),
    "fits": Entry("outcome.cli.monitoring:fits_group",
                  "Export or import expected recovery curves (fits)."),
    "goals": Entry("outcome.cli.care:goals_group", "A client's goals, in their own words."),
    "instruments": Entry("outcome.cli.instruments:instruments_group",
                         "List, inspect, validate and export questionnaire definitions."),
    # issue 20: encryption at rest
    "keys": Entry("outcome.cli.keys:keys_group",
                  "Encryption at rest: generate keys, see what each encrypts, rotate."),
    "links": Entry("outcome.cli.links:links_group", "Questionnaire links for clients."),
    "model": Entry("outcome.cli.monitoring:model_group",
                   "Fit expected recovery curves on the clinic's episodes."),
    # issue 18
    "reports": Entry("outcome.cli.reports:reports_group",
                     "The therapists' scheduled reports: the pre-session brief and the weekly "
                     "report."),
    "restore": Entry("outcome.cli.backup:restore_command",
                     "Restore backup FILE into the configured database, then verify it."),
    "scheduler": Entry("outcome.cli.scheduler:scheduler_command",
                       "Run scheduled jobs: links and reminders by e-mail, mail delivery, the "
                       "therapists' pre-session briefs and weekly reports, the supervisors' "
                       "weekly digests, the nightly refit of expected recovery and the "
                       "cleanup of stale links."),
    "score": Entry("outcome.cli.instruments:score_command",
                   "Score a CSV of administrations: an `id` column and one column per item."),
    "serve": Entry("outcome.cli.serve:serve_command",
                   "Serve the web application with gunicorn."),
    "signals": Entry("outcome.cli.monitoring:signals_group",
                     "Rebuild the engine's signals from stored answers."),
    "tokens": Entry("outcome.cli.tokens:tokens_group",
                    "API tokens for integrations: create, list, revoke."),
    "users": Entry("outcome.cli.users:users_group",
                   "Staff accounts: create, list, disable, enable, reset passwords and "
                   "second factors, grant access."),
}

# Flask's own commands, offered by `outcome` as by `flask` (their `short_help`, shown whole).
# `flask --app wsgi` has them already, so they are not in all_commands().
FLASK_COMMANDS: dict[str, Entry] = {
    "routes": Entry("flask.cli:routes_command", "Show the routes for the app."),
    "run": Entry("flask.cli:run_command", "Run a development server."),
    "shell": Entry("flask.cli:shell_command", "Run a shell in the app context."),
}

COMMAND_PATHS: dict[str, str] = {name: entry.path for name, entry in COMMANDS.items()}


def _import(name: str, entry: Entry) -> click.Command:
    module, attribute = entry.path.split(":")
    command = getattr(importlib.import_module(module), attribute)
    assert isinstance(command, click.Command) and command.name == name, entry.path
    return command


def load_command(name: str) -> click.Command | None:
    """The command called ``name`` (its module imported now), or None if there is none."""
    entry = COMMANDS.get(name)
    return None if entry is None else _import(name, entry)


def load_flask_command(name: str) -> click.Command | None:
    """Flask's command called ``name`` (``routes``, ``run``, ``shell``), or None."""
    entry = FLASK_COMMANDS.get(name)
    return None if entry is None else _import(name, entry)


def all_commands() -> list[click.Command]:
    """Every command, each module imported (for ``flask --app wsgi`` and the tests)."""
    return [command for name in COMMANDS if (command := load_command(name))]
