"""``outcome db``: schema migrations."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from outcome import schema
from outcome.extensions import database

db_group = AppGroup("db", help="Create and migrate the database schema.")


@db_group.command("upgrade")
@click.argument("revision", default="head")
def upgrade_command(revision: str) -> None:
    """Bring the database to REVISION (default: the newest). Safe to run again."""
    engine = database().engine
    before = schema.current_revision(engine)
    schema.upgrade(engine, revision)
    after = schema.current_revision(engine)
    if before == after:
        click.echo(f"Database already at {after}; nothing to do.")
    else:
        click.echo(f"Database upgraded from {before or 'empty'} to {after}.")


@db_group.command("downgrade")
@click.argument("revision")
@click.confirmation_option(prompt="Downgrading can drop tables and data. Continue?")
def downgrade_command(revision: str) -> None:
    """Step the database back to REVISION (`base` drops every table)."""
    engine = database().engine
    schema.downgrade(engine, revision)
    click.echo(f"Database now at {schema.current_revision(engine) or 'empty'}.")


@db_group.command("current")
def current_command() -> None:
    """Print the database's revision and whether it is the newest."""
    engine = database().engine
    current, head = schema.current_revision(engine), schema.head_revision()
    state = "current" if current == head else f"behind; newest is {head}"
    click.echo(f"{current or 'empty'} ({state})")


@db_group.command("check")
def check_command() -> None:
    """For developers: fail when the models differ from the migrated schema."""
    engine = database().engine
    diff = schema.pending_model_changes(engine)
    if diff:
        for change in diff:
            click.echo(f"  {change}", err=True)
        raise click.ClickException(
            "the models and the migrations disagree; write a migration for the changes above.")
    click.echo("Models and migrations agree.")
