"""``outcome instruments`` and ``outcome score``: the instrument library on the command line."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import tempfile
from pathlib import Path

import click
from flask.cli import with_appcontext
from sqlalchemy import func
from sqlalchemy import select

from outcome.config import config_file_path
from outcome.config import read_config_file
from outcome.core.instruments import Instrument
from outcome.private_files import make_private_dir
from outcome.private_files import write_private_bytes
from questionnaires.loader import DefinitionError
from questionnaires.loader import InstrumentLibrary
from questionnaires.loader import check_file
from questionnaires.loader import load_library

DATA_ERROR = 2  # exit status for bad input files, as opposed to 1 for bad configuration
MAX_REPORTED = 50


def clinic_instruments_dir() -> Path:
    """The clinic's definitions folder, read without requiring a full configuration."""
    from outcome.cli.config import _instance_path

    instance = _instance_path()
    explicit = os.environ.get("OUTCOME_INSTRUMENTS_DIR")
    if explicit:
        return Path(explicit)
    values = read_config_file(config_file_path(instance, os.environ))
    return Path(values.get("INSTRUMENTS_DIR") or Path(instance) / "instruments")


def cli_library() -> InstrumentLibrary:
    """Built-in plus clinic instruments; a broken clinic file stops with its problems."""
    try:
        return load_library(clinic_instruments_dir())
    except DefinitionError as exc:
        raise click.ClickException(f"instrument definitions are broken:\n{exc}") from None


def _get(library: InstrumentLibrary, instrument_id: str) -> Instrument:
    name, _, version = instrument_id.partition("@")
    try:
        return library.get(name, version or None)
    except KeyError as exc:
        raise click.BadParameter(str(exc.args[0]), param_hint="ID") from None


@click.group("instruments")
def instruments_group() -> None:
    """List, inspect, validate and export questionnaire definitions."""


@instruments_group.command("list")
@click.option("--clinic", "clinic_slug", help="Show availability for this clinic (needs the "
                                              "database).")
def list_command(clinic_slug: str | None) -> None:
    """List every instrument with its role, licence and wording status."""
    library = cli_library()
    if clinic_slug:
        _list_for_clinic(library, clinic_slug)
        return
    click.echo(f"{'id':<12} {'version':<8} {'name':<10} {'role':<9} {'items':>5}  licence")
    for instrument in library:
        notes = []
        if instrument.licence.is_attestation_required:
            notes.append("attestation required")
        if not instrument.is_wording_installed:
            notes.append("wording not installed")
        click.echo(f"{instrument.id:<12} {instrument.version:<8} {instrument.short_name:<10} "
                   f"{instrument.role:<9} {len(instrument.items):>5}  "
                   f"{instrument.licence.name}{' [' + '; '.join(notes) + ']' if notes else ''}")


@with_appcontext
def _list_for_clinic(library: InstrumentLibrary, clinic_slug: str) -> None:
    from outcome.cli.clinic import require_clinic
    from outcome.db import transaction
    from outcome.extensions import database
    from outcome.services.instruments import instrument_statuses

    with transaction(database().session_factory) as session:
        clinic = require_clinic(session, clinic_slug)
        click.echo(f"{clinic.name}:")
        for status in instrument_statuses(session, clinic.id, library):
            click.echo(f"  {status.instrument.id:<12} {status.instrument.short_name:<10} "
                       f"{status.status}")


@instruments_group.command("show")
@click.argument("instrument_id", metavar="ID")
def show_command(instrument_id: str) -> None:
    """Show one instrument: items, options, scoring, norms and licence (ID or ID@VERSION)."""
    i = _get(cli_library(), instrument_id)
    click.echo(f"{i.name} ({i.key})\n  role {i.role}, {i.direction.replace('_', ' ')}")
    click.echo(f"  licence: {i.licence.name}"
               f"{' (attestation required)' if i.licence.is_attestation_required else ''}")
    click.echo(f"  attribution: {i.licence.attribution}")
    click.echo(f"  source: {i.source_file}")
    if i.stem:
        click.echo(f"\n  {i.stem}")
    for item in i.items:
        text = item.text or "[wording not installed]"
        flags = [f for f, on in (("not scored", not item.is_scored),
                                 ("reverse-keyed", item.is_reverse)) if on]
        click.echo(f"  {item.id:<10} {text}{' (' + ', '.join(flags) + ')' if flags else ''}")
        if item.type == "vas":
            click.echo(f"{'':13}visual analogue {item.minimum:g}-{item.maximum:g}, "
                       f"{item.decimals} decimal(s)")
    if i.items[0].options:
        options = ", ".join(f"{o.value}={o.label or '?'}" for o in i.items[0].options)
        click.echo(f"\n  options: {options}")
    low, high = i.primary_range
    missing = (f"up to {i.max_missing} unanswered prorated" if i.max_missing
               else "every item must be answered")
    click.echo(f"\n  scoring: {i.scoring_method} of {len(i.scored_items)} items, "
               f"{low:g}-{high:g}, {missing}, {i.precision} decimal(s)")
    for sub in i.subscales:
        click.echo(f"  subscale {sub.id}: {sub.name}: {', '.join(sub.items)}")
    for band in i.bands:
        click.echo(f"  band {band.minimum:g}-{band.maximum:g}: {band.label}")
    if i.cutoff:
        source = f" ({i.cutoff.source})" if i.cutoff.source else ""
        click.echo(f"  clinical cutoff: {i.cutoff.clinical_side} {i.cutoff.value:g}{source}")
    if i.reliable_change:
        rc = i.reliable_change
        what = f"{rc.points:g} points" if rc.points else f"reliability {rc.reliability}"
        click.echo(f"  reliable change: {what}{'' if rc.is_verified else ' (unverified)'}"
                   f"{' - ' + rc.source if rc.source else ''}")
    for critical in i.critical_items:
        click.echo(f"  critical: {critical.item} >= {critical.threshold:g} ({critical.urgency})")
    for rule in i.rules:
        needs = ", ".join(f"{sub} >= {n}" for sub, n in rule.minimum_endorsed)
        click.echo(f"  rule {rule.id}: {rule.label}: item >= {rule.endorsed_at:g} endorsed; "
                   f"{needs}; undetermined when blank items could change it")


@instruments_group.command("validate")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def validate_command(path: Path) -> None:
    """Check a definition or overlay FILE; exit status 2 with every problem if it is broken."""
    try:
        instrument = check_file(path)
    except DefinitionError as exc:
        click.echo(str(exc), err=True)
        sys.exit(DATA_ERROR)
    wording = "wording installed" if instrument.is_wording_installed else "no wording"
    click.echo(f"{path}: ok: {instrument.key}, {len(instrument.items)} items, {wording}.")


@instruments_group.command("install")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def install_command(path: Path) -> None:
    """Check a definition or overlay FILE and copy it into the clinic's instruments folder.

    The folder (OUTCOME_INSTRUMENTS_DIR, default `instruments` in the instance folder) is
    created with mode 0700 and the copy with mode 0600: licensed wording is the clinic's
    to keep. A file of the same name there is replaced. Restart the site to load it.
    """
    try:
        instrument = check_file(path)
    except DefinitionError as exc:
        click.echo(str(exc), err=True)
        sys.exit(DATA_ERROR)
    folder = make_private_dir(clinic_instruments_dir())
    target = folder / path.name
    if target.exists() and target.resolve() == path.resolve():
        raise click.ClickException(f"{path} is already in {folder}")
    write_private_bytes(target, path.read_bytes())
    click.echo(f"Installed {instrument.key} as {target} (mode 0600); restart the site and "
               "the scheduler to load it.")


@instruments_group.command("export-fhir")
@click.argument("instrument_id", metavar="ID")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file instead of standard output.")
def export_fhir_command(instrument_id: str, output: Path | None) -> None:
    """Write the instrument as a FHIR R4 Questionnaire (JSON), validated before writing."""
    from questionnaires.fhir import questionnaire
    from questionnaires.fhir import validate_resource

    resource = questionnaire(_get(cli_library(), instrument_id))
    problems = validate_resource(resource)
    if problems:  # a bug, not a user error: never write an invalid resource
        raise click.ClickException("; ".join(f"{p.where}: {p.message}" for p in problems))
    text = json.dumps(resource, indent=2, ensure_ascii=False) + "\n"
    if output:
        output.write_text(text, encoding="utf-8")
        click.echo(f"Wrote {output}.", err=True)
    else:
        click.echo(text, nl=False)


def _attestation_edge(instrument_id: str, clinic_slug: str, admin_email: str, action):
    from outcome.cli.clinic import require_clinic
    from outcome.db import transaction
    from outcome.extensions import database
    from outcome.models import User
    from outcome.services.instruments import AttestationError

    with transaction(database().session_factory) as session:
        clinic = require_clinic(session, clinic_slug)
        admin = session.scalar(select(User).where(func.lower(User.email)
                                                  == admin_email.strip().lower()))
        if admin is None:
            raise click.BadParameter(f"no user {admin_email!r}", param_hint="--admin")
        try:
            return action(session, clinic, admin)
        except AttestationError as exc:
            raise click.ClickException(str(exc)) from None


@instruments_group.command("attest")
@click.argument("instrument_id", metavar="ID")
@click.option("--clinic", "clinic_slug", required=True)
@click.option("--admin", "admin_email", required=True, help="E-mail of the attesting admin.")
@click.option("--note", help="Licence reference, e.g. an agreement number.")
@with_appcontext
def attest_command(instrument_id: str, clinic_slug: str, admin_email: str,
                   note: str | None) -> None:
    """Record that the clinic holds the licence for ID, which enables it."""
    from outcome.services.instruments import attest

    instrument = _get(cli_library(), instrument_id)
    now = dt.datetime.now(dt.UTC)
    _attestation_edge(instrument_id, clinic_slug, admin_email,
                      lambda s, c, a: attest(s, clinic=c, instrument=instrument, admin=a,
                                             now=now, note=note))
    click.echo(f"{instrument.short_name} attested for {clinic_slug} by {admin_email}.")


@instruments_group.command("revoke")
@click.argument("instrument_id", metavar="ID")
@click.option("--clinic", "clinic_slug", required=True)
@click.option("--admin", "admin_email", required=True)
@with_appcontext
def revoke_command(instrument_id: str, clinic_slug: str, admin_email: str) -> None:
    """Withdraw the clinic's attestation for ID, which disables it again."""
    from outcome.services.instruments import revoke

    now = dt.datetime.now(dt.UTC)
    _attestation_edge(instrument_id, clinic_slug, admin_email,
                      lambda s, c, a: revoke(s, clinic=c, instrument_id=instrument_id,
                                             admin=a, now=now))
    click.echo(f"Attestation for {instrument_id} withdrawn for {clinic_slug}.")


@click.command("score")
@click.argument("input_path", metavar="INPUT.csv",
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-i", "--instrument", "instrument_id", required=True, help="ID or ID@VERSION.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write here (replaced only when scoring succeeds); default standard output.")
@click.option("--skip-invalid", is_flag=True, help="Write the valid rows; report the others.")
@click.option("--keep-incomplete", is_flag=True,
              help="Write rows with too many unanswered items as invalid instead of failing.")
def score_command(input_path: Path, instrument_id: str, output: Path | None,
                  skip_invalid: bool, keep_incomplete: bool) -> None:
    """Score a CSV of administrations: an `id` column and one column per item.

    Output: the input columns plus total, subscales, band, valid, prorated, critical and
    each rule (true, false, or undetermined when blank items could change it).
    Any invalid row stops the run with exit status 2 and a message naming the line,
    column and problem; nothing is written. --skip-invalid writes the valid rows.
    """
    from questionnaires.csv_scoring import HeaderError
    from questionnaires.csv_scoring import score_csv

    instrument = _get(cli_library(), instrument_id)
    size = input_path.stat().st_size
    show_progress = sys.stderr.isatty() and size > 1_000_000
    target_dir = output.parent if output else None
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", newline="", delete=False,
                                     dir=target_dir, suffix=".partial") as tmp, \
            input_path.open(encoding="utf-8-sig", newline="") as source:
        try:
            if show_progress:
                with click.progressbar(length=size, label="Scoring", file=sys.stderr) as bar:
                    result = score_csv(instrument, source, tmp, skip_invalid=skip_invalid,
                                       keep_incomplete=keep_incomplete,
                                       on_line=lambda line: bar.update(len(line.encode())))
            else:
                result = score_csv(instrument, source, tmp, skip_invalid=skip_invalid,
                                   keep_incomplete=keep_incomplete)
        except (HeaderError, UnicodeDecodeError) as exc:
            os.unlink(tmp.name)
            click.echo(f"error: {input_path}: {exc}", err=True)
            sys.exit(DATA_ERROR)
    for problem in result.problems[:MAX_REPORTED]:
        click.echo(f"{'skipped' if skip_invalid else 'error'}: {input_path}: {problem}",
                   err=True)
    if len(result.problems) > MAX_REPORTED:
        click.echo(f"... and {len(result.problems) - MAX_REPORTED} more problems", err=True)
    if result.problems and not skip_invalid:
        os.unlink(tmp.name)
        click.echo(f"No output written: {result.invalid_rows} of {result.rows_read} rows are "
                   "invalid. Fix them, or use --skip-invalid.", err=True)
        sys.exit(DATA_ERROR)
    if output:
        os.replace(tmp.name, output)
    else:
        with open(tmp.name, encoding="utf-8") as fh:
            for chunk in iter(lambda: fh.read(1 << 16), ""):
                sys.stdout.write(chunk)
        os.unlink(tmp.name)
    skipped = f", skipped {result.invalid_rows} invalid" if result.problems else ""
    click.echo(f"Scored {result.rows_written} rows with {instrument.key}{skipped}"
               f"{' into ' + str(output) if output else ''}.", err=True)


__all__ = ["instruments_group", "score_command"]
