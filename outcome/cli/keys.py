"""``outcome keys``: encryption-at-rest keys (issue 20): generate, status, rotate.

``generate`` makes a key (prints it, or puts it first in a key file, mode 0600, so it
becomes the current key and the older ones still decrypt). ``status`` counts the stored
values under each key id and those still plaintext, and fails when a key they need is not
configured. ``rotate`` rewrites every encrypted column under the current key in batches,
one short transaction each, so it can run while the application serves; interrupted, it
is run again and skips what is done. Each run is audited (counts only, never content).
See docs/operators.md, "Encryption at rest".
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import click
from flask.cli import AppGroup

from outcome import encryption
from outcome.config import ConfigError
from outcome.db import transaction
from outcome.extensions import clock
from outcome.extensions import database
from outcome.private_files import is_wider_than_private
from outcome.private_files import write_private_bytes
from outcome.services import audit
from outcome.services import encryption_keys

keys_group = AppGroup("keys", help="Encryption at rest: generate keys, see what each "
                                   "encrypts, rotate.")


@keys_group.command("generate", with_appcontext=False)
@click.option("--id", "key_id", default=None,
              help="The new key's id (letters, digits, - and _). Default: k<today>.")
@click.option("--file", "path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Put the key first in this key file (created mode 0600), making it the "
                   "current key; without it the key line is printed.")
def generate_command(key_id: str | None, path: Path | None) -> None:
    """Make a new 256-bit key: ``<key id>:<base64>``."""
    key_id = key_id or "k" + dt.datetime.now(dt.UTC).strftime("%Y%m%d")
    try:
        line = encryption.new_key_line(key_id)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--id") from None
    if path is None:
        click.echo(line)
        return
    existing = ""
    if path.exists():
        if is_wider_than_private(path) is not None:
            raise click.ClickException(f"{path} is readable by others; run chmod 600 on it.")
        existing = path.read_text(encoding="utf-8")
        try:
            known = [k for k, _ in encryption.parse_keys(existing, str(path))]
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None
        if key_id in known:
            raise click.BadParameter(f"{path} already has a key {key_id!r}", param_hint="--id")
    write_private_bytes(path, (line + "\n" + existing).encode("utf-8"))
    os.chmod(path, 0o600)
    click.echo(f"Key {key_id} written first in {path} (mode 0600): it is the current key once "
               "the application and commands restart with OUTCOME_ENCRYPTION_KEY_FILE set to "
               "it. Run `outcome keys rotate` to re-encrypt older values. Keep a copy of the "
               "file apart from the backups: without it the encrypted data is lost.")


@keys_group.command("status")
def status_command() -> None:
    """Count stored values by key id; exit 1 if a key they need is not configured."""
    ring = encryption.active()
    click.echo(f"Encryption: {'on, current key ' + str(ring.current_id) if ring.enabled else 'off'}"
               f"; configured keys: {', '.join(ring.key_ids) or 'none'}.")
    with transaction(database().session_factory) as session:
        census = encryption_keys.key_census(session)
    totals: dict[str, int] = {}
    for column, counts in census.items():
        shown = ", ".join(f"{key}: {n}" for key, n in sorted(counts.items())) or "empty"
        click.echo(f"  {column}: {shown}")
        for key, n in counts.items():
            totals[key] = totals.get(key, 0) + n
    click.echo("Total: " + (", ".join(f"{key}: {n}" for key, n in sorted(totals.items()))
                            or "no values"))
    missing = sorted(k for k in totals
                     if k != encryption_keys.PLAINTEXT and k not in ring.key_ids)
    if missing:
        raise click.ClickException(
            f"values are encrypted under key(s) {', '.join(missing)}, which are not configured: "
            "they cannot be read. Add the key(s) to OUTCOME_ENCRYPTION_KEY_FILE.")
    if ring.enabled and any(k != ring.current_id for k in totals):
        click.echo("Some values are not under the current key: run `outcome keys rotate`.")


@keys_group.command("rotate")
@click.option("--batch-size", type=click.IntRange(1, 100_000), default=500, show_default=True,
              help="Rows per transaction.")
@click.option("--decrypt", is_flag=True,
              help="Write plaintext instead (before switching encryption off or downgrading "
                   "below migration 0024); the keys must still be configured.")
def rotate_command(batch_size: int, decrypt: bool) -> None:
    """Re-encrypt every encrypted value under the current key, in batches (resumable)."""
    ring = encryption.active()
    if not ring.enabled:
        raise click.ClickException(
            "encryption is off (no key configured): set OUTCOME_ENCRYPTION_KEY_FILE or "
            "OUTCOME_ENCRYPTION_KEYS, current key first, then rotate.")
    factory = database().session_factory
    total = encryption_keys.RotationCounts()
    target = "plaintext" if decrypt else str(ring.current_id)
    failure: BaseException | None = None
    try:
        for table, column, is_json in encryption_keys.encrypted_columns():
            after = 0
            while True:
                with transaction(factory) as session:
                    last, counts = encryption_keys.rotate_batch(
                        session, table, column, is_json, after_id=after, limit=batch_size,
                        decrypt=decrypt)
                total.add(counts)
                if last is None:
                    break
                after = last
    except (Exception, KeyboardInterrupt) as exc:
        failure = exc
    with transaction(factory) as session:
        audit.record(session, action="encryption.rotate",
                     outcome="error" if failure else "allowed", now=clock()(),
                     actor_kind="system",
                     actor_label=(f"outcome keys rotate: to {target}, {total.rewritten} "
                                  f"rewritten, {total.skipped} already done"
                                  + (", interrupted" if failure else "")),
                     object_type="encryption_key", object_id=target)
    for column, n in sorted(total.by_column.items()):
        click.echo(f"  {column}: {n} rewritten")
    click.echo(f"{total.rewritten} values rewritten to {target}, {total.skipped} already done.")
    if isinstance(failure, encryption.EncryptionError):
        raise click.ClickException(f"stopped: {failure} Run the command again once fixed; "
                                   "it continues where it stopped.")
    if failure is not None:
        click.echo("Stopped before the end; run the command again: it continues where it "
                   "stopped.", err=True)
        raise failure
