"""``outcome backup`` and ``outcome restore``: copy the database out and back, verified.

The work is in :mod:`outcome.backup`; these commands add the confirmation and the
messages. See docs/operators.md ("Backup and restore").
"""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from outcome import backup
from outcome.config import mask_url_password
from outcome.extensions import database


def _size(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{n} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} bytes"  # pragma: no cover


def _busy_timeout_s() -> float:
    return max(30.0, current_app.config["SQLITE_BUSY_TIMEOUT_MS"] / 1000)


def _database_name() -> str:
    url = database().engine.url.render_as_string(hide_password=False)
    return mask_url_password(url)


@click.command("backup")
@click.option("--out", "out", required=True,
              type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="The backup file to write (replaced if it exists).")
@with_appcontext
def backup_command(out: Path) -> None:
    """Back up the database to --out FILE, with FILE.manifest.json beside it.

    Safe while the site runs: SQLite is copied with its online backup API from one
    snapshot, PostgreSQL with `pg_dump -Fc` (install postgresql-client). The manifest
    records the schema revision, and each table's row count and content hash.
    """
    try:
        result = backup.backup(database().engine, out, busy_timeout_s=_busy_timeout_s())
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    manifest = result.manifest
    click.echo(f"Backed up {_database_name()} to {result.path}")
    click.echo(f"  size      {_size(result.size_bytes)} ({result.size_bytes} bytes)")
    click.echo(f"  sha256    {result.sha256}")
    click.echo(f"  manifest  {result.manifest_path}: schema {manifest['schema_revision']}, "
               f"{len(manifest['tables'])} tables, {result.total_rows} rows")


@click.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True,
              help="Restore into a database that is not empty, replacing everything in it.")
@with_appcontext
def restore_command(file: Path, yes: bool, force: bool) -> None:
    """Restore backup FILE into the configured database, then verify it.

    The database must be empty (a new SQLite file; a PostgreSQL database or schema with
    no tables) unless --force is given. FILE must match FILE.manifest.json; after the
    restore every table's row count and content hash are compared with the manifest.
    Stop the web server and the scheduler first.
    """
    engine = database().engine
    try:
        plan = backup.check_restore(engine, file, force=force)
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    manifest = plan.manifest
    rows = sum(t["rows"] for t in manifest["tables"].values())
    click.echo(f"Backup {file}: {manifest['backend']}, taken {manifest.get('created_at')}, "
               f"schema {manifest.get('schema_revision')}, {len(manifest['tables'])} tables, "
               f"{rows} rows.")
    if not yes:
        warning = (f" Everything now in it ({len(plan.occupied_tables)} tables) is replaced."
                   if plan.occupied_tables else "")
        click.confirm(f"Restore it into {_database_name()}?{warning}", abort=True)
    try:
        result = backup.restore(engine, file, force=force, busy_timeout_s=_busy_timeout_s())
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Restored into {_database_name()}.")
    if result.verified:
        click.echo(f"Verified against the manifest: {len(manifest['tables'])} tables, "
                   f"{rows} rows, every row count and content hash equal: OK")
    state = result.schema_state
    if state == "current":
        click.echo(f"Schema at {result.revision} (current).")
    elif state == "behind":
        click.echo(f"Schema at {result.revision}; this version of outcome needs {result.head}: "
                   "run `outcome db upgrade` before starting the site.")
    elif state == "unknown":
        click.echo(f"Schema at {result.revision}, which this version of outcome does not know "
                   f"(its newest is {result.head}): the backup comes from a newer version; "
                   "install that version before starting the site.")
    else:
        click.echo("The restored database has no schema revision; run `outcome db upgrade`.")
    if not result.verified:
        raise click.ClickException(
            f"the restored database differs from the manifest: {'; '.join(result.differences)}")
