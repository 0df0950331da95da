"""Files that hold client data or secrets are private to the account that runs outcome.

The instance folder is created with mode 0700; the SQLite database, the instance file
(the secret key), backups and the clinic's licensed-wording overlays are created 0600.
Modes are given when a file or folder is *created* (``os.open`` and ``mkdir`` with a
mode), so there is no moment at which another local account could open it; the process
umask can only take more bits away. SQLite gives its ``-wal`` and ``-shm`` files the mode
of the database file, so a database created here 0600 keeps its WAL and SHM 0600 too.

Existing files are never changed behind the operator's back: :func:`permission_warnings`
reports those that are wider, and ``outcome config check`` prints them.

No Flask here (SQLAlchemy only parses URLs): the CLI, the engine factory
(:mod:`outcome.db`) and tests use it directly.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
# Any permission for the group or for other accounts is too wide.
_SHARED_BITS = stat.S_IRWXG | stat.S_IRWXO


def make_private_dir(path: str | os.PathLike[str]) -> Path:
    """Create folder ``path`` with mode 0700 if it does not exist (its missing parents get
    the usual mode); an existing folder is left as it is. Returns the path."""
    folder = Path(path)
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)
    return folder


def create_private_file(path: str | os.PathLike[str]) -> bool:
    """Create an empty file ``path`` with mode 0600 unless it exists; True if created.

    An empty file is a valid empty SQLite database, so creating the database file here,
    before SQLite opens it, is how the database (and its WAL and SHM) become private.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def write_private_bytes(path: str | os.PathLike[str], content: bytes) -> None:
    """Write ``content`` to ``path`` with mode 0600, atomically: a temporary file beside it
    (created 0600), flushed to disk, then renamed over ``path``."""
    target = Path(path)
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def is_wider_than_private(path: str | os.PathLike[str]) -> int | None:
    """The permission bits of ``path`` if the group or other accounts have any; None when
    they have none or the path does not exist (a symbolic link is followed)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    return stat.S_IMODE(mode) if mode & _SHARED_BITS else None


def permission_warnings(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """One sentence for each of ``paths`` that exists with group or other permissions,
    naming the path, its mode and the ``chmod`` that makes it private."""
    warnings = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path in seen:
            continue
        seen.add(path)
        mode = is_wider_than_private(path)
        if mode is None:
            continue
        wanted = PRIVATE_DIR_MODE if path.is_dir() else PRIVATE_FILE_MODE
        warnings.append(f"{path} has mode {mode:04o}: other local accounts can reach it; "
                        f"run chmod {wanted:o} {path}")
    return warnings


def sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite:`` database URL, or None (another backend, an in-memory
    database, or a ``file:`` URI)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    database = parsed.database
    if (parsed.get_backend_name() != "sqlite" or not database or database == ":memory:"
            or database.startswith("file:")):
        return None
    return Path(database)


def private_paths(instance_path: str | os.PathLike[str], config: dict) -> list[Path]:
    """The files and folders that should be private for a configuration: the instance
    folder, the instance file, the SQLite database with its ``-wal`` and ``-shm``, and
    the clinic's instruments folder with every definition and overlay in it."""
    paths = [Path(instance_path)]
    if config.get("CONFIG_FILE"):
        paths.append(Path(config["CONFIG_FILE"]))
    database = sqlite_file(str(config.get("DATABASE_URL") or ""))
    if database is not None:
        paths += [database, database.with_name(database.name + "-wal"),
                  database.with_name(database.name + "-shm")]
    if config.get("INSTRUMENTS_DIR"):
        folder = Path(config["INSTRUMENTS_DIR"])
        paths.append(folder)
        if folder.is_dir():
            paths += sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml"))
    return paths


def file_permission_warnings(instance_path: str | os.PathLike[str], config: dict) -> list[str]:
    """Warnings for ``outcome config check``: every private path (see
    :func:`private_paths`) that other local accounts can read, write or enter."""
    return permission_warnings(private_paths(instance_path, config))


__all__ = ["PRIVATE_DIR_MODE", "PRIVATE_FILE_MODE", "create_private_file",
           "file_permission_warnings", "is_wider_than_private", "make_private_dir",
           "permission_warnings", "private_paths", "sqlite_file", "write_private_bytes"]
