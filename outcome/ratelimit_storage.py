"""A rate-limit store for several worker processes that needs no extra service: a SQLite
file, registered with the ``limits`` library under the ``sqlite`` scheme.

``OUTCOME_RATELIMIT_STORAGE_URL=sqlite:////var/lib/outcome/ratelimits.sqlite3`` makes every
gunicorn worker on the machine count in one file; ``outcome serve`` picks such a file in
the instance folder by itself when it starts more than one worker and no store is set.
Redis (``redis://``) is the choice for several machines.

It implements the ``limits`` storage API that Flask-Limiter's default strategy (fixed
window) uses: ``incr``, ``get``, ``get_expiry``, ``clear``, ``reset``, ``check``. Each
counter is one row (key, value, expiry as Unix time); an increment is one ``BEGIN
IMMEDIATE`` transaction, so two workers never lose each other's hits. Counters are not
clinical data and can be recounted, so the file uses ``synchronous=NORMAL``.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from limits.storage import Storage

SCHEME = "sqlite"
_PRUNE_EVERY = 500  # increments between deletions of expired counters


class SQLiteStorage(Storage):
    """Rate-limit counters in a SQLite file shared by the processes of one machine."""

    STORAGE_SCHEME = [SCHEME]  # noqa: RUF012 (declared so by limits.storage.Storage)

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False,
                 **options: Any) -> None:
        if not uri or not uri.startswith(f"{SCHEME}:///") or uri == f"{SCHEME}:///":
            raise ValueError(f"a SQLite rate-limit store is {SCHEME}:///<path>, not {uri!r}")
        # sqlite:////abs/path is an absolute path, sqlite:///rel/path a relative one.
        self.path = Path(uri.removeprefix(f"{SCHEME}:///"))
        self._local = threading.local()
        self._increments = 0
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return sqlite3.Error

    def _db(self) -> sqlite3.Connection:
        """This thread's connection (a forked worker opens its own)."""
        found: tuple[int, sqlite3.Connection] | None = getattr(self._local, "db", None)
        if found is not None and found[0] == os.getpid():
            return found[1]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            # Created private: its keys hold addresses and hashed account names.
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None,
                             check_same_thread=False)
        _use_wal(db)
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE TABLE IF NOT EXISTS counters (key TEXT PRIMARY KEY, "
                   "value INTEGER NOT NULL, expires REAL NOT NULL) WITHOUT ROWID")
        self._local.db = (os.getpid(), db)
        return db

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Add ``amount`` to the counter ``key``; a new (or expired) counter lives ``expiry``
        seconds from now."""
        db = self._db()
        now = time.time()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("DELETE FROM counters WHERE key = ? AND expires <= ?", (key, now))
            row = db.execute(
                "INSERT INTO counters (key, value, expires) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = value + excluded.value "
                "RETURNING value", (key, amount, now + expiry)).fetchone()
            self._increments += 1
            if self._increments % _PRUNE_EVERY == 0:
                db.execute("DELETE FROM counters WHERE expires <= ?", (now,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return int(row[0])

    def get(self, key: str) -> int:
        row = self._db().execute("SELECT value FROM counters WHERE key = ? AND expires > ?",
                                 (key, time.time())).fetchone()
        return int(row[0]) if row else 0

    def get_expiry(self, key: str) -> float:
        now = time.time()
        row = self._db().execute("SELECT expires FROM counters WHERE key = ? AND expires > ?",
                                 (key, now)).fetchone()
        return float(row[0]) if row else now

    def check(self) -> bool:
        try:
            self._db().execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False
        return True

    def reset(self) -> int | None:
        return int(self._db().execute("DELETE FROM counters").rowcount)

    def clear(self, key: str) -> None:
        self._db().execute("DELETE FROM counters WHERE key = ?", (key,))


def _use_wal(db: sqlite3.Connection, attempts: int = 100) -> None:
    """Put the counters file in WAL mode (kept in the file: only its first opener changes
    it). Switching takes an exclusive lock without waiting on SQLite's busy handler, so
    workers starting together are refused "database is locked" at once: read the mode
    first, and retry the switch for up to about five seconds."""
    for attempt in range(attempts):
        try:
            if db.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
                return
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or attempt == attempts - 1:
                raise
            time.sleep(0.05)
