"""``outcome links issue``: a fresh questionnaire link for clinics that send their own."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from outcome.cli.care import open_episode
from outcome.db import transaction
from outcome.extensions import database
from outcome.extensions import instrument_library
from outcome.models import Appointment
from outcome.services import audit
from outcome.services.links import NothingToAsk
from outcome.services.links import issue_link
from reports.qr import link_qr_svg

links_group = AppGroup("links", help="Questionnaire links for clients.")


@links_group.command("issue")
@click.option("--client", "client_code", required=True, help="Client code, e.g. C-7F3K9Q.")
@click.option("--appointment", "appointment_id", type=int,
              help="Appointment id (default: none; the link is valid from now).")
@click.option("--purpose", type=click.Choice(["pre", "post"]), default="pre",
              show_default=True)
@click.option("--qr", "qr_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the link as a QR code (SVG) to show or print in the office.")
def issue_command(client_code: str, appointment_id: int | None, purpose: str,
                  qr_path: Path | None) -> None:
    """Print a new single-use link for the client's open episode.

    The token is shown only now (it is stored as a hash). Issuing again for the same
    appointment and purpose revokes the previous unused link.
    """
    now = dt.datetime.now(dt.UTC)
    with transaction(database().session_factory) as session:
        episode, _clinic = open_episode(session, client_code)
        appointment = None
        if appointment_id is not None:
            appointment = session.get(Appointment, appointment_id)
            if appointment is None or appointment.episode_id != episode.id:
                raise click.BadParameter(f"appointment {appointment_id} is not in "
                                         f"{client_code}'s open episode",
                                         param_hint="--appointment")
        try:
            link, token = issue_link(session, episode=episode, purpose=purpose, now=now,
                                     library=instrument_library(current_app),
                                     appointment=appointment)
        except NothingToAsk as exc:
            raise click.ClickException(str(exc)) from None
        audit.record(session, action="link.issue", outcome="allowed", now=now,
                     actor_kind="system", actor_label="outcome links issue",
                     clinic_id=episode.clinic_id, client_id=episode.client_id,
                     object_type="link", object_id=link.id)
        valid_until = link.valid_until_dt
        battery = ", ".join(link.battery)
    url = f"{current_app.config['BASE_URL'].rstrip('/')}/q/{token}"
    click.echo(url)
    if qr_path is not None:
        qr_path.write_text(link_qr_svg(url), encoding="utf-8")
        click.echo(f"QR code written to {qr_path}", err=True)
    click.echo(f"valid until {valid_until:%Y-%m-%d %H:%M} UTC; asks for {battery}", err=True)


@links_group.command("revoke")
@click.option("--client", "client_code", required=True, help="Client code, e.g. C-7F3K9Q.")
def revoke_command(client_code: str) -> None:
    """Withdraw every unused link of the client's open episode."""
    from outcome.services.links import revoke_unused

    now = dt.datetime.now(dt.UTC)
    with transaction(database().session_factory) as session:
        episode, _clinic = open_episode(session, client_code)
        count = revoke_unused(session, episode, now)
        audit.record(session, action="link.revoke", outcome="allowed", now=now,
                     actor_kind="system", actor_label="outcome links revoke",
                     clinic_id=episode.clinic_id, client_id=episode.client_id)
    click.echo(f"Withdrew {count} unused link(s) of {client_code}.")
