"""``outcome clinic settings``: show and change a clinic's engine settings."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.db import transaction
from outcome.extensions import database
from outcome.models import Clinic
from outcome.services.clinic_settings import CLINIC_SETTINGS
from outcome.services.clinic_settings import SettingError
from outcome.services.clinic_settings import current
from outcome.services.clinic_settings import parse
from outcome.services.clinic_settings import update

clinic_group = AppGroup("clinic", help="Clinic settings.")


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
