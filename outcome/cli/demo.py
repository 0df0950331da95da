"""``outcome demo``: create the demo clinic and print its logins."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import zoneinfo
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from outcome.db import transaction
from outcome.extensions import database
from outcome.extensions import instrument_library
from outcome.models import Clinic
from outcome.models import User
from outcome.private_files import make_private_dir
from outcome.services import demo
from outcome.services.passwords import hash_password

PASSWORD_FILE = "demo-password"  # noqa: S105 (a file name)


def _password_path() -> Path:
    return Path(current_app.instance_path) / PASSWORD_FILE


def _write_password(password: str) -> None:
    path = _password_path()
    make_private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(password + "\n")


def _new_password() -> str:
    return "-".join(secrets.token_hex(3) for _ in range(4))


@click.command("demo")
@click.option("--if-empty", is_flag=True,
              help="Only create the demo in a database that has no clinic yet.")
@click.option("--reset-password", is_flag=True,
              help="Give every demo account a new password (ends their sessions).")
@with_appcontext
def demo_command(if_empty: bool, reset_password: bool) -> None:
    """Create the demo clinic (once) and print its logins.

    1 admin, 2 supervisors, 6 therapists and 150 fictional clients (30 of them past)
    with episodes, months of weekly appointments and the questionnaires answered at
    them. Running it again changes nothing.
    """
    factory = database().session_factory
    tz_name = current_app.config["TIMEZONE"]
    today = dt.datetime.now(zoneinfo.ZoneInfo(tz_name)).date()
    with transaction(factory) as session:
        if if_empty and not demo.database_is_empty(session) and not demo.demo_exists(session):
            click.echo("The database already has a clinic; the demo was not added.")
            return
        password = None
        if not demo.demo_exists(session):
            password = _new_password()
        summary = demo.seed_demo(session, today=today, password=password or "",
                                 timezone=tz_name, library=instrument_library(current_app))
        if reset_password and not summary.created:
            password = _new_password()
            clinic_id = session.scalar(select(Clinic.id).where(Clinic.slug == demo.DEMO_SLUG))
            for user in session.scalars(select(User).where(User.clinic_id == clinic_id)):
                user.password_hash = hash_password(password)
                user.session_version += 1
    if password:
        _write_password(password)
    elif _password_path().exists():
        password = _password_path().read_text(encoding="utf-8").strip()

    verb = "Created" if summary.created else "The demo clinic exists"
    click.echo(f"{verb}: {summary.clinic_name}: {summary.clients} clients, "
               f"{summary.episodes} episodes, {summary.appointments} appointments, "
               f"{summary.administrations} completed questionnaires.")
    click.echo(f"\nSign in at {current_app.config['BASE_URL']}/login with:")
    for login in summary.logins:
        click.echo(f"  {login.email:<34} {', '.join(login.roles):<12} {login.display_name}")
    if password:
        click.echo(f"  password for every demo account: {password}")
    else:
        click.echo("  password: not stored on this machine; run `outcome demo --reset-password`.")
