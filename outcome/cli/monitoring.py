"""``outcome signals``, ``outcome model`` and ``outcome fits`` (``outcome analyse`` is in
:mod:`outcome.cli.analyse`, which needs neither Flask nor the database)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import func
from sqlalchemy import select

from outcome.cli.analyse import analyse_command  # noqa: F401 (its old home, for imports)
from outcome.cli.clinic import chosen_clinic
from outcome.cli.clinic import require_clinic
from outcome.db import transaction
from outcome.extensions import database
from outcome.extensions import instrument_library
from outcome.models import Clinic
from outcome.models import EpisodeSignal
from outcome.services.fits import FitFileError
from outcome.services.fits import export_fits
from outcome.services.fits import import_fits
from outcome.services.fits import refit_models
from outcome.services.signals import recompute_signals

DATA_ERROR = 2

signals_group = AppGroup("signals", help="Rebuild the engine's signals from stored answers.")
model_group = AppGroup("model", help="Fit expected recovery curves on the clinic's episodes.")
fits_group = AppGroup("fits", help="Export or import expected recovery curves (fits).")


def _clinics(session, slug: str | None) -> list[Clinic]:
    if slug:
        return [require_clinic(session, slug)]
    return list(session.scalars(select(Clinic).order_by(Clinic.id)))


@signals_group.command("recompute")
@click.option("--clinic", "clinic_slug", help="Only this clinic.")
def recompute_command(clinic_slug: str | None) -> None:
    """Rebuild every episode's signals and alerts from stored answers (same result)."""
    now = dt.datetime.now(dt.UTC)
    library = instrument_library(current_app)
    with transaction(database().session_factory) as session:
        total = 0
        for clinic in _clinics(session, clinic_slug):
            total += recompute_signals(session, library, now, clinic.id)
        colours = dict(session.execute(select(EpisodeSignal.colour, func.count())
                                       .group_by(EpisodeSignal.colour)).all())
    shown = ", ".join(f"{colours.get(c, 0)} {c}" for c in ("red", "yellow", "green", "white",
                                                           "grey"))
    click.echo(f"Recomputed signals for {total} episodes: {shown}.")


@model_group.command("refit")
@click.option("--clinic", "clinic_slug", help="Only this clinic.")
def refit_command(clinic_slug: str | None) -> None:
    """Fit each outcome measure's expected recovery curve, then recompute signals."""
    now = dt.datetime.now(dt.UTC)
    library = instrument_library(current_app)
    with transaction(database().session_factory) as session:
        for clinic in _clinics(session, clinic_slug):
            click.echo(f"{clinic.name}:")
            for report in refit_models(session, clinic, library, now):
                click.echo(f"  {report.instrument_id:<10} {report.n_episodes:>5} episodes "
                           f"{report.n_observations:>6} scores  {report.note}")
            recompute_signals(session, library, now, clinic.id)


@fits_group.command("export")
@click.option("--clinic", "clinic_slug", help="The clinic (needed when there are several).")
@click.option("--instrument", "instrument_id", help="Only this measure (e.g. phq9).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the file here (default: standard output).")
def fits_export_command(clinic_slug: str | None, instrument_id: str | None,
                        output: Path | None) -> None:
    """Write the clinic's expected recovery curves as JSON: parameters, band table by
    intake severity, source and sample size (for `outcome fits import` elsewhere)."""
    library = instrument_library(current_app)
    with transaction(database().session_factory) as session:
        data = export_fits(session, chosen_clinic(session, clinic_slug), library,
                           instrument_id)
    if not data["fits"]:
        raise click.ClickException("no fitted curve to export; run `outcome model refit` "
                                   "first")
    text = json.dumps(data, indent=1, ensure_ascii=False) + "\n"
    if output:
        output.write_text(text, encoding="utf-8")
        click.echo(f"Wrote {len(data['fits'])} fit(s) to {output}.", err=True)
    else:
        click.echo(text, nl=False)


@fits_group.command("import")
@click.argument("path", metavar="FILE",
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--source", required=True,
              help='Where the fit comes from, shown with every colour it gives (e.g. '
                   '"Clinic X export, 2026-11").')
@click.option("--clinic", "clinic_slug", help="The clinic (needed when there are several).")
def fits_import_command(path: Path, source: str, clinic_slug: str | None) -> None:
    """Store a published or exported fit for the clinic, then recompute its signals.

    It is used like the clinic's own fit once its sample size reaches
    model_min_episodes; the nightly refit replaces it when the clinic's own fit does.
    A bad file is refused with the field named, and nothing is stored.
    """
    now = dt.datetime.now(dt.UTC)
    library = instrument_library(current_app)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        click.echo(f"error: {path}: not a JSON file ({exc}); nothing was imported", err=True)
        sys.exit(DATA_ERROR)
    try:
        with transaction(database().session_factory) as session:
            clinic = chosen_clinic(session, clinic_slug)
            reports = import_fits(session, clinic, library, data, source=source, now=now)
            recompute_signals(session, library, now, clinic.id)
    except FitFileError as exc:
        click.echo(f"error: {path}: {exc}; nothing was imported", err=True)
        sys.exit(DATA_ERROR)
    for report in reports:
        click.echo(f"  {report.instrument_id:<10} {report.n_episodes:>5} episodes "
                   f"{report.n_observations:>6} scores  {report.note}")
    click.echo(f"Imported {len(reports)} fit(s) from {source!r}.")
