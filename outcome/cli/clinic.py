"""``outcome clinic``: create a clinic with its first admin; show and change its settings."""

from __future__ import annotations

import datetime as dt

import click
from flask.cli import AppGroup
from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.db import transaction
from outcome.extensions import database
from outcome.models import Clinic
from outcome.services import audit
from outcome.services import setup
from outcome.services import staff
from outcome.services.clinic_settings import CLINIC_SETTINGS
from outcome.services.clinic_settings import SettingError
from outcome.services.clinic_settings import current
from outcome.services.clinic_settings import parse
from outcome.services.clinic_settings import update

clinic_group = AppGroup("clinic", help="Clinics: create one with its first admin; settings.")


def require_clinic(session: Session, slug: str, param_hint: str = "--clinic") -> Clinic:
    """The clinic with ``slug``, or a usage error naming the option."""
    clinic = session.scalar(select(Clinic).where(Clinic.slug == slug))
    if clinic is None:
        raise click.BadParameter(f"no clinic {slug!r}", param_hint=param_hint)
    return clinic


def chosen_clinic(session: Session, slug: str | None) -> Clinic:
    """The clinic named by --clinic, or the only clinic when there is just one."""
    if slug:
        return require_clinic(session, slug)
    clinics = session.scalars(select(Clinic).order_by(Clinic.slug).limit(2)).all()
    if not clinics:
        raise click.ClickException("there is no clinic yet; create one first "
                                   "(`outcome demo` makes a demonstration clinic).")
    if len(clinics) > 1:
        raise click.UsageError("there are several clinics; name one with --clinic SLUG.")
    return clinics[0]


@clinic_group.command("settings")
@click.argument("slug")
@click.argument("changes", nargs=-1, metavar="[KEY=VALUE]...")
def settings_command(slug: str, changes: tuple[str, ...]) -> None:
    """Show the clinic's settings, or change them (KEY=VALUE ...).

    After changing colour or rupture settings, run `outcome signals recompute`.
    """
    with transaction(database().session_factory) as session:
        clinic = require_clinic(session, slug, "SLUG")
        try:
            parsed = {}
            for change in changes:
                key, sep, raw = change.partition("=")
                if not sep:
                    raise SettingError(f"{change!r} is not KEY=VALUE")
                parsed[key] = parse(key, raw)
            values = update(session, clinic, parsed) if parsed else current(clinic)
        except SettingError as exc:
            raise click.ClickException(str(exc)) from None
    for setting in CLINIC_SETTINGS:
        click.echo(f"{setting.key} = {values[setting.key]}\n    {setting.doc}")
    if changes:
        click.echo("Saved. Run `outcome signals recompute` to apply it to stored signals.")


@clinic_group.command("create")
@click.option("--name", required=True, help="The clinic's name, as staff know it.")
@click.option("--timezone", required=True,
              help="The clinic's IANA time zone, such as Europe/London.")
@click.option("--admin-email", required=True, help="The first admin's e-mail (their login).")
@click.option("--admin-name", default=None,
              help="The first admin's name (default: the e-mail's name part).")
def create_command(name: str, timezone: str, admin_email: str,
                   admin_name: str | None) -> None:
    """Create a clinic and its first admin, and print the admin's one-time password.

    The slug comes from the name. The admin must change the password at their first
    sign-in; it is shown only now. Refused, with nothing stored, for a clinic name or
    slug that exists, an e-mail already in use, or an unknown time zone.
    """
    now = dt.datetime.now(dt.UTC)
    password = staff.generate_password()
    person = admin_name if admin_name is not None else admin_email.partition("@")[0]
    with transaction(database().session_factory) as session:
        try:
            clinic, admin = setup.create_clinic(
                session, name=name, timezone=timezone, admin_email=admin_email,
                admin_name=person, password=password, now=now)
        except setup.SetupError as exc:
            raise click.ClickException(str(exc)) from None
        for action, object_type, object_id in (("clinic.create", "clinic", clinic.id),
                                               ("user.create", "user", admin.id)):
            audit.record(session, action=action, outcome="allowed", now=now,
                         actor_kind="system", actor_label="outcome clinic create",
                         clinic_id=clinic.id, object_type=object_type, object_id=object_id)
        summary = (f"Created the clinic {clinic.name} ({clinic.slug}, {clinic.timezone}) "
                   f"and its admin {admin.email}.")
    click.echo(summary)
    click.echo(f"One-time password (shown only now; it must be changed at the first "
               f"sign-in): {password}")
    click.echo("Then, on the admin's start page: set the clinic's crisis contacts and "
               "reading hours (setup is not finished without them).")
