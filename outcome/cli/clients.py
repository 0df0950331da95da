"""``outcome clients``: erasing a client, the retention policy, and the erased codes (issue 20).

- ``outcome clients erase CODE --export-to DIR | --no-export [--yes]`` writes the client's
  CSV and FHIR exports (the record page's, :mod:`outcome.services.exports`) into DIR,
  then erases (:func:`outcome.services.erasure.erase_client`) in the same transaction:
  a failed write erases nothing. It asks for the code typed again unless ``--yes``.
- ``outcome clients erase --reapply FILE`` re-erases, after a restore of an older backup,
  every code listed in FILE (the output of ``outcome clients erased``) that the restored
  database holds un-erased.
- ``outcome clients erased`` prints every tombstone: code, date, reason (keep this list
  outside the backups; docs/operators.md).
- ``outcome clients retention --dry-run`` prints who is due, changing nothing;
  ``--run`` does the nightly job's pass now (dry run, then erasure of clients listed
  at least the notice period ago), each at most once a clinic day.

Output names codes only, never a name.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.db import transaction
from outcome.extensions import database
from outcome.extensions import instrument_library
from outcome.models import Client
from outcome.models import Clinic
from outcome.models import Episode
from outcome.private_files import write_private_bytes
from outcome.services import audit
from outcome.services import retention
from outcome.services.erasure import ErasureError
from outcome.services.erasure import erase_client
from outcome.services.erasure import erased_codes
from outcome.services.exports import episodes_bundle
from outcome.services.exports import episodes_csv

clients_group = AppGroup("clients", help="Erase clients; the retention policy.")
CLI_LABEL = "outcome clients erase"


def _write_exports(session: Session, client: Client, folder: Path, now: dt.datetime
                   ) -> list[Path]:
    """Write ``CODE.csv`` and ``CODE.fhir.json`` into ``folder`` (0600), each audited as
    the record page's export is; the paths."""
    episodes = list(session.scalars(select(Episode).where(Episode.client_id == client.id)
                                    .order_by(Episode.opened_on.desc(), Episode.id.desc())))
    library = instrument_library(current_app)
    csv_path = folder / f"{client.code}.csv"
    fhir_path = folder / f"{client.code}.fhir.json"
    write_private_bytes(csv_path, episodes_csv(session, client, episodes, library)
                        .encode("utf-8"))
    bundle = episodes_bundle(session, client, episodes, library, now)
    write_private_bytes(fhir_path, (json.dumps(bundle, indent=1) + "\n").encode("utf-8"))
    for kind in ("csv", "fhir"):
        audit.record(session, action=f"client.export.{kind}", outcome="allowed", now=now,
                     actor_kind="system", actor_label=CLI_LABEL, clinic_id=client.clinic_id,
                     client_id=client.id, object_type="client", object_id=client.code)
    return [csv_path, fhir_path]


@clients_group.command("erase")
@click.argument("code", required=False)
@click.option("--export-to", "folder", type=click.Path(file_okay=False, path_type=Path),
              help="Write the client's CSV and FHIR exports into this folder first.")
@click.option("--no-export", is_flag=True, help="Erase without writing the exports.")
@click.option("--yes", is_flag=True, help="Do not ask for the code to be typed again.")
@click.option("--reapply", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="After restoring an older backup: re-erase every code listed in this "
                   "file (the output of `outcome clients erased`).")
def erase_command(code: str | None, folder: Path | None, no_export: bool, yes: bool,
                  reapply: Path | None) -> None:
    """Erase client CODE's personal data and answers; a tombstone with the code stays."""
    if reapply is not None:
        if code is not None:
            raise click.UsageError("give either CODE or --reapply FILE, not both.")
        _reapply(reapply)
        return
    if code is None:
        raise click.UsageError("name the client: outcome clients erase CODE.")
    if (folder is None) == (not no_export):
        raise click.UsageError("choose: --export-to DIR (the CSV and FHIR exports are "
                               "written there first) or --no-export.")
    now = dt.datetime.now(dt.UTC)
    with transaction(database().session_factory) as session:
        client = session.scalar(select(Client).where(Client.code == code))
        if client is None:
            raise click.BadParameter(f"no client {code!r}", param_hint="CODE")
        if client.erased_dt is not None:
            raise click.ClickException(f"{code} was already erased on "
                                       f"{client.erased_dt:%Y-%m-%d}.")
        if not yes:
            typed = click.prompt(f"Type the code {code} again to erase this client", default="",
                                 show_default=False)
            if typed.strip() != code:
                raise click.ClickException("The code typed does not match: nothing erased.")
        written: list[Path] = []
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            written = _write_exports(session, client, folder, now)
        try:
            counts = erase_client(session, client, "request", None, now, actor_label=CLI_LABEL)
        except ErasureError as exc:
            raise click.ClickException(str(exc)) from None
    for path in written:
        click.echo(f"Wrote {path}.")
    click.echo(f"Erased {code}: {counts['episodes']} episodes and everything in them, "
               f"{counts['emails']} queued e-mails, {counts['documents']} archived reports. "
               "The tombstone keeps the code.")


def _reapply(listing: Path) -> None:
    """Re-erase every code of ``listing`` (lines "CODE DATE REASON") still un-erased."""
    wanted: list[tuple[str, str]] = []
    for line in listing.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if parts and parts[0].startswith("C-"):
            wanted.append((parts[0], parts[2] if len(parts) > 2 else "request"))
    now = dt.datetime.now(dt.UTC)
    erased = 0
    with transaction(database().session_factory) as session:
        for code, reason in wanted:
            client = session.scalar(select(Client).where(Client.code == code))
            if client is None or client.erased_dt is not None:
                continue
            erase_client(session, client, reason if reason in ("request", "retention")
                         else "request", None, now, actor_label="outcome clients erase "
                         "--reapply")
            click.echo(f"Erased {code} again.")
            erased += 1
    click.echo(f"{erased} of {len(wanted)} listed codes needed erasing again.")


@clients_group.command("erased")
def erased_command() -> None:
    """List every erased client: code, date (UTC) and reason, oldest first."""
    with transaction(database().session_factory) as session:
        for client in erased_codes(session):
            assert client.erased_dt is not None
            click.echo(f"{client.code} {client.erased_dt:%Y-%m-%dT%H:%M:%SZ} "
                       f"{client.erasure_reason}")


@clients_group.command("retention")
@click.option("--dry-run", "mode", flag_value="dry-run",
              help="Print the clients due for erasure; change nothing.")
@click.option("--run", "mode", flag_value="run",
              help="Do the nightly pass now (at most once a day): the dry run, then erase "
                   "the clients listed at least the notice period ago.")
def retention_command(mode: str | None) -> None:
    """The retention policy: who is due for erasure, and erasing them."""
    if mode is None:
        raise click.UsageError("choose --dry-run or --run.")
    now = dt.datetime.now(dt.UTC)
    with transaction(database().session_factory) as session:
        for clinic in session.scalars(select(Clinic).order_by(Clinic.id)):
            years, notice_days = retention.settings(clinic)
            if years <= 0:
                click.echo(f"Clinic {clinic.id}: retention off (data kept until erased).")
                continue
            today = retention.clinic_today(clinic, now)
            if mode == "dry-run":
                due = retention.due_clients(session, clinic, today)
                when = retention.erase_on(session, clinic, today)
                click.echo(f"Clinic {clinic.id}: {len(due)} due (care ended more than "
                           f"{years} years ago).")
                for d in due:
                    day = when.get(retention.listing(d))
                    click.echo(f"  {d.code} ended {d.ended_on.isoformat()}; " + (
                        f"erased on {day.isoformat()} or after" if day else
                        f"not yet listed: erased {notice_days} days after the next dry run"))
                continue
            listed, done = retention.run_retention(session, clinic, now,
                                                   base_url=current_app.config["BASE_URL"])
            if listed is None and done is None:
                click.echo(f"Clinic {clinic.id}: today's retention runs were done already.")
                continue
            if listed is not None:
                click.echo(f"Clinic {clinic.id}: dry run lists {len(listed.codes)} due.")
            if done is not None:
                click.echo(f"Clinic {clinic.id}: erased {len(done.codes)}"
                           + (": " + ", ".join(e["code"] for e in done.codes)
                              if done.codes else "."))
