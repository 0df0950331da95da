"""``outcome signals``, ``outcome model``, ``outcome fits`` and ``outcome analyse``."""

from __future__ import annotations

import csv
import datetime as dt
import json
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import func
from sqlalchemy import select

from outcome.cli.clinic import chosen_clinic
from outcome.cli.clinic import require_clinic
from outcome.clinical_significance import AnalysisInputError
from outcome.clinical_significance import per_id_rows
from outcome.clinical_significance import read_pairs
from outcome.clinical_significance import summary
from outcome.core.change import CATEGORIES
from outcome.core.change import METHODS
from outcome.core.change import ChangeError
from outcome.core.change import CutoffType
from outcome.core.change import Method
from outcome.core.change import individual_change
from outcome.db import transaction
from outcome.extensions import database
from outcome.extensions import instrument_library
from outcome.models import Clinic
from outcome.models import EpisodeSignal
from outcome.services.explanations import render
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


@click.command("analyse")
@click.argument("input_path", metavar="INPUT.csv",
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--id", "id_col", required=True, help="Column naming the person.")
@click.option("--time", "time_col", required=True, help="Column naming the time point.")
@click.option("--score", "score_col", required=True, help="Column with the score.")
@click.option("--pre", required=True, help="Value of the time column at pre.")
@click.option("--post", required=True, help="Value of the time column at post.")
@click.option("--reliability", type=float, help="Reliability of the measure (0 to 1).")
@click.option("--direction", required=True,
              type=click.Choice(["lower-is-better", "higher-is-better"]))
@click.option("--method", type=click.Choice(METHODS), default="jt", show_default=True)
@click.option("--cutoff", "cutoff_type", type=click.Choice(["a", "b", "c"]))
@click.option("--functional-mean", type=float)
@click.option("--functional-sd", type=float)
@click.option("--critical", type=float, default=1.96, show_default=True)
@click.option("--reliability-post", type=float, help="Post reliability (NK method).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write one row per id here.")
def analyse_command(input_path: Path, id_col: str, time_col: str, score_col: str, pre: str,
                    post: str, reliability: float | None, direction: str, method: Method,
                    cutoff_type: CutoffType | None, functional_mean: float | None,
                    functional_sd: float | None, critical: float,
                    reliability_post: float | None, as_json: bool,
                    output: Path | None) -> None:
    """Reliable and clinically significant change (Jacobson & Truax and variants).

    Reads a long-format CSV (one row per id and time point) and classifies each id as
    recovered, reliably improved, no reliable change, reliably deteriorated, or reliably
    deteriorated into the clinical range (Jacobson & Truax's "harmed": the keys of --json).
    """
    try:
        with input_path.open(encoding="utf-8-sig", newline="") as fh:
            pairs = read_pairs(fh, id_col=id_col, time_col=time_col, score_col=score_col,
                               pre=pre, post=post)
        result = individual_change(
            pairs.pre, pairs.post,
            direction="higher_is_worse" if direction == "lower-is-better" else "higher_is_better",
            method=method, reliability=reliability, reliability_post=reliability_post,
            critical_value=critical, cutoff_type=cutoff_type, functional_mean=functional_mean,
            functional_sd=functional_sd)
    except (AnalysisInputError, ChangeError) as exc:
        click.echo(f"error: {input_path}: {exc}", err=True)
        sys.exit(DATA_ERROR)
    if output:
        with output.open("w", encoding="utf-8", newline="") as fh:
            csv.writer(fh, lineterminator="\n").writerows(per_id_rows(result, pairs))
    data = summary(result, pairs)
    if as_json:
        click.echo(json.dumps(data))
        return
    click.echo(f"{data['n']} ids analysed, {data['n_dropped']} dropped (missing {pre!r} or "
               f"{post!r}); method {method.upper()}, critical value {critical}")
    if result.sd is not None:
        click.echo(f"SD of pre scores {result.sd:.4g}; reliability {reliability}")
    if result.s_diff is not None:
        click.echo(f"S_diff {result.s_diff:.4f} (reliable change: more than "
                   f"{critical * result.s_diff:.2f} points)")
    if result.cutoff is not None:
        click.echo(f"cutoff {result.cutoff:.4f} ({result.cutoff_source})")
    for name in CATEGORIES:  # the user-facing names; --json and -o keep the keys
        count = data["categories"][name]
        share = 100 * count / data["n"] if data["n"] else 0
        label = render(f"change.category.{name}", {})
        click.echo(f"  {label:<46} {count:>5}  {share:5.1f} %")
