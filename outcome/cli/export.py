"""``outcome export``: one client's answers and scores as a FHIR Bundle or a CSV file.

The same exports as the client page's download links
(:func:`outcome.services.exports.episodes_bundle`, :func:`~outcome.services.exports.
episodes_csv`): every episode of the client, by code, never by name. Each export is
audited as the ``system`` actor (``client.export.fhir`` or ``client.export.csv``), in the
same transaction as the file is written, so a failed write leaves no record.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from outcome.db import transaction
from outcome.extensions import database
from outcome.extensions import instrument_library
from outcome.models import Client
from outcome.models import Episode
from outcome.services import audit
from outcome.services.exports import episodes_bundle
from outcome.services.exports import episodes_csv


@click.command("export")
@click.option("--client", "code", required=True, metavar="CODE",
              help="Client code, e.g. C-7F3K9Q.")
@click.option("--fhir", "kind", flag_value="fhir",
              help="A FHIR R4 Bundle (collection) of JSON: Patient, QuestionnaireResponses, "
                   "Observations.")
@click.option("--csv", "kind", flag_value="csv",
              help="Long-format CSV: one row per answered item.")
@click.option("--out", "out", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Write to this file (default: standard output).")
@with_appcontext
def export_command(code: str, kind: str | None, out: Path | None) -> None:
    """Export a client's answers and scores (--fhir or --csv) to a file or stdout."""
    if kind is None:
        raise click.UsageError("choose the format: --fhir or --csv.")
    now = dt.datetime.now(dt.UTC)
    with transaction(database().session_factory) as session:
        client = session.scalar(select(Client).where(Client.code == code))
        if client is None:
            raise click.BadParameter(f"no client {code!r}", param_hint="--client")
        if client.erased_dt is not None:  # issue 20: a tombstone has nothing to export
            raise click.ClickException(f"{code} was erased on {client.erased_dt:%Y-%m-%d}: "
                                       "there is nothing to export.")
        episodes = list(session.scalars(select(Episode).where(Episode.client_id == client.id)
                                        .order_by(Episode.opened_on.desc(),
                                                  Episode.id.desc())))
        if kind == "fhir":
            body = json.dumps(episodes_bundle(session, client, episodes,
                                              instrument_library(current_app), now), indent=1)
            body += "\n"
        else:
            body = episodes_csv(session, client, episodes, instrument_library(current_app))
        audit.record(session, action=f"client.export.{kind}", outcome="allowed", now=now,
                     actor_kind="system", actor_label="outcome export",
                     clinic_id=client.clinic_id, client_id=client.id, object_type="client",
                     object_id=client.code)
        if out is not None:
            with out.open("w", encoding="utf-8", newline="") as handle:
                handle.write(body)
    if out is None:
        click.echo(body, nl=False)
    else:
        click.echo(f"Wrote the {kind.upper()} export of {code} to {out}.", err=True)
