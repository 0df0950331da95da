"""Issue 16, finding 6: a limit of 10 a minute holds with several gunicorn workers.

Real ``outcome serve`` processes with 2 and 4 workers, counting in the shared store that
``outcome serve`` picks (a SQLite file in the instance folder) and in Redis. Each run
sends 30 requests from one address at a 10-a-minute limit: 30 unknown questionnaire
links, and 30 failed sign-ins under different e-mail addresses. Before the fix the default
store was each worker's memory and more than 10 got through (17 of 30 in the issue).
"""

from __future__ import annotations

import http.client
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import click
import pytest

from outcome import schema
from outcome.cli.serve import rate_limit_storage
from outcome.db import make_engine

# One backend (conftest's one_backend rule): the limits are counted in Redis or the
# instance file, never in the database; the sign-in they hit runs on both backends in
# test_limits.py and test_sessions.py.
pytestmark = pytest.mark.one_backend

ROOT = Path(__file__).resolve().parent.parent
OUTCOME = str(Path(sys.executable).parent / "outcome")
CSRF = re.compile(r'name="csrf_token"[^>]*?value="([^"]+)"')
REDIS = "redis://127.0.0.1:6379/15"


def _environment(**settings: str) -> dict[str, str]:
    """This process's environment without OUTCOME_ settings, plus ``settings``; the
    checkout's own code first (the venv's editable install may point at another one)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTCOME_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return {**env, **settings}


def test_the_store_outcome_serve_picks(tmp_path):
    folder = str(tmp_path)
    production = {"ENV": "production", "RATELIMIT_STORAGE_URL": ""}
    assert rate_limit_storage(production, 1, folder) == "memory://"
    assert rate_limit_storage(production, 2, folder) == \
        f"sqlite:///{tmp_path.resolve() / 'ratelimits.sqlite3'}"
    assert rate_limit_storage({**production, "RATELIMIT_STORAGE_URL": REDIS}, 4,
                              folder) == REDIS
    memory = {**production, "RATELIMIT_STORAGE_URL": "memory://"}
    assert rate_limit_storage(memory, 1, folder) == "memory://"
    with pytest.raises(click.ClickException, match="OUTCOME_RATELIMIT_STORAGE_URL"):
        rate_limit_storage(memory, 2, folder)
    assert rate_limit_storage({**memory, "ENV": "development"}, 2, folder) == "memory://"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    """``outcome serve`` on a free port behind one (pretend) proxy, so each test run
    speaks from an address of its own (Redis is shared with other runs)."""

    def __init__(self, url: str, folder: Path, workers: int, **env: str) -> None:
        self.port, self.folder, self.workers = _free_port(), folder, workers
        folder.mkdir(parents=True, exist_ok=True)
        self.env = _environment(
            OUTCOME_DATABASE_URL=url, OUTCOME_INSTANCE_PATH=str(folder),
            OUTCOME_SECRET_KEY=secrets.token_urlsafe(40), OUTCOME_PROXY_HOPS="1", **env)
        self.address = ".".join(["10", *(str(secrets.randbelow(250)) for _ in range(3))])

    def __enter__(self) -> Served:
        self.err = (self.folder / "stderr.log").open("wb")
        self.process = subprocess.Popen(
            [OUTCOME, "serve", "--port", str(self.port), "--workers", str(self.workers)],
            env=self.env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=self.err)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(self.log())
            try:
                if (self.request("GET", "/healthz")[0] == 200
                        and self.log().count("Booting worker") >= self.workers):
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        self.__exit__()
        raise RuntimeError("outcome serve did not start:\n" + self.log())

    def __exit__(self, *exc_info: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.err.close()

    def log(self) -> str:
        self.err.flush()
        return (self.folder / "stderr.log").read_text(errors="replace")

    def request(self, method: str, path: str, body: str | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=body,
                         headers={"X-Forwarded-For": getattr(self, "address", "10.0.0.1"),
                                  **(headers or {})})
            reply = conn.getresponse()
            return (reply.status, {k.lower(): v for k, v in reply.getheaders()},
                    reply.read().decode(errors="replace"))
        finally:
            conn.close()

    def failed_sign_in(self, n: int) -> int:
        _status, headers, page = self.request("GET", "/login")
        cookie = headers["set-cookie"].split(";", 1)[0]
        token = CSRF.search(page)
        assert token, page[:500]
        form = urlencode({"csrf_token": token.group(1), "email": f"guess{n}@example.org",
                          "password": "wrong password, long enough"})
        return self.request("POST", "/login", form, {
            "Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})[0]


def _let_through(server: Served) -> tuple[int, int]:
    links = [server.request("GET", f"/q/{secrets.token_urlsafe(32)}")[0] for _ in range(30)]
    sign_ins = [server.failed_sign_in(n) for n in range(30)]
    assert set(links) <= {404, 429} and set(sign_ins) <= {200, 429}, (links, sign_ins)
    return sum(s != 429 for s in links), sum(s != 429 for s in sign_ins)


@pytest.fixture(scope="module")
def migrated_url(databases):
    """One migrated database for the module (a migration per server start only cost
    time): the limits are counted outside it (each server has its own instance folder and
    speaks from an address of its own), and all the tests write there is the count of
    refused requests per address and minute, which nothing here reads."""
    url = databases.new_url()
    engine = make_engine(url)
    schema.upgrade(engine)
    engine.dispose()
    return url


@pytest.mark.slow
@pytest.mark.parametrize("workers", [2, 4])
@pytest.mark.parametrize("store", ["instance file", "redis"])
def test_ten_a_minute_is_ten_a_minute_with_several_workers(migrated_url, tmp_path, workers,
                                                           store):
    env = {"OUTCOME_RATELIMIT_STORAGE_URL": REDIS} if store == "redis" else {}
    with Served(migrated_url, tmp_path / "server", workers, **env) as server:
        links, sign_ins = _let_through(server)
    print(f"\n[limits] {workers} workers, {store}: {links}/30 unknown links and "
          f"{sign_ins}/30 failed sign-ins let through at 10 a minute")
    assert (links, sign_ins) == (10, 10)
    if store == "instance file":
        assert (tmp_path / "server" / "ratelimits.sqlite3").stat().st_mode & 0o077 == 0


def test_serve_refuses_several_workers_on_memory_storage(migrated_url, tmp_path):
    env = _environment(OUTCOME_DATABASE_URL=migrated_url, OUTCOME_INSTANCE_PATH=str(tmp_path),
                       OUTCOME_SECRET_KEY=secrets.token_urlsafe(40),
                       OUTCOME_RATELIMIT_STORAGE_URL="memory://")
    result = subprocess.run([OUTCOME, "serve", "--port", str(_free_port()), "--workers", "2"],
                            env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "OUTCOME_RATELIMIT_STORAGE_URL=memory://" in result.stderr
    assert "2 times too high" in result.stderr
