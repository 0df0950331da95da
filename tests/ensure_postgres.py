"""Make sure the PostgreSQL server for the test run answers; start a local one if it is down.

Usage: python tests/ensure_postgres.py postgresql+psycopg://postgres@127.0.0.1:5432/test

Exits 0 when a connection succeeds. When the server is on this machine and Debian's
``pg_ctlcluster`` is present, it starts the cluster and waits up to 30 s. Otherwise it
exits 1 with one line saying what to do.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url


def _connect(url: str) -> str | None:
    parsed = make_url(url)
    try:
        with psycopg.connect(host=parsed.host, port=parsed.port or 5432, user=parsed.username,
                             password=parsed.password, dbname=parsed.database,
                             connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]


def _start_local_cluster() -> bool:
    ctl = shutil.which("pg_ctlcluster")
    versions = sorted(Path("/etc/postgresql").glob("*/main")) if ctl else []
    if not versions:
        return False
    version = versions[-1].parent.name
    subprocess.run([ctl, "--skip-systemctl-redirect", version, "main", "start"], check=False)
    return True


def main(url: str) -> int:
    error = _connect(url)
    if error is None:
        return 0
    host = make_url(url).host or "localhost"
    if host in ("127.0.0.1", "localhost", "::1") and _start_local_cluster():
        for _ in range(30):
            time.sleep(1)
            if (error := _connect(url)) is None:
                print("Started the local PostgreSQL cluster.")
                return 0
    print(f"PostgreSQL for the tests is not reachable at {make_url(url)!r}: {error}. "
          "Start it, or point OUTCOME_TEST_POSTGRES_URL at a server where the user may "
          "create schemas.", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
