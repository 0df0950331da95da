"""Every command of the CLI, in one list shared by `outcome` and `flask --app wsgi`."""

from __future__ import annotations

from outcome.cli.backup import backup_command
from outcome.cli.backup import restore_command
from outcome.cli.care import appointments_group
from outcome.cli.care import goals_group
from outcome.cli.clinic import clinic_group
from outcome.cli.config import config_group
from outcome.cli.db import db_group
from outcome.cli.demo import demo_command
from outcome.cli.digest import digest_command
from outcome.cli.export import export_command
from outcome.cli.instruments import instruments_group
from outcome.cli.instruments import score_command
from outcome.cli.links import links_group
from outcome.cli.monitoring import analyse_command
from outcome.cli.monitoring import fits_group
from outcome.cli.monitoring import model_group
from outcome.cli.monitoring import signals_group
from outcome.cli.reports import reports_group
from outcome.cli.scheduler import scheduler_command
from outcome.cli.serve import serve_command
from outcome.cli.tokens import tokens_group
from outcome.cli.users import users_group

COMMANDS = (
    analyse_command, appointments_group, clinic_group, config_group, db_group, demo_command,
    digest_command, goals_group, instruments_group, links_group, model_group, scheduler_command,
    score_command, serve_command, signals_group, tokens_group, users_group,
    export_command, backup_command, restore_command, fits_group,
    reports_group,  # issue 18
)
