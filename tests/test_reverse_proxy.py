"""The reverse proxy set-up that docs/operators.md recommends, tested (issue 16, finding 13).

The nginx block is taken from docs/operators.md (so the page and this test cannot drift),
pointed at loopback ports and temporary files, and run by Debian's nginx in front of
``outcome serve`` with ``OUTCOME_PROXY_HOPS=1``. Checked: requests pass and port 80
redirects to https; 30 slow clients at nginx do not delay anyone (nginx reads requests
whole before passing them on); the client's address and ``https`` reach the app, and a
forged ``X-Forwarded-For`` does not; no link token reaches nginx's logs, nginx's own
error lines about an upstream that is down included.
"""

from __future__ import annotations

import http.client
import os
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from bench.slow_clients import measure
from outcome.models import AuditDenialCount
from tests.helpers import ROOT
from tests.helpers import free_port
from tests.test_concurrency import Server
from tests.test_concurrency import setup_clinic  # noqa: F401 (a fixture used below)

# One backend (conftest's one_backend rule): this is about nginx in front of the server
# (headers, buffering, addresses); the pages it loads are read on both backends by the
# access matrix and the page tests.
pytestmark = pytest.mark.one_backend

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CLIENT_ADDRESS = "127.0.0.2"  # the "client" connects from here; outcome sees 127.0.0.1
FORGED = "203.0.113.9"


def documented_config() -> str:
    """The ```nginx block of docs/operators.md."""
    page = (ROOT / "docs" / "operators.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```nginx\n(.*?)^```$", page, re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1, "docs/operators.md should show exactly one nginx block"
    return blocks[0]


def local_config(folder: Path, *, app_port: int, http_port: int, https_port: int) -> str:
    """The documented block on loopback ports and temporary files; every placeholder it
    replaces must be there."""
    text = documented_config()
    replacements = [
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;"),
        ("server 127.0.0.1:5000;", f"server 127.0.0.1:{app_port};"),
        ("/etc/letsencrypt/live/outcome.example.org/", f"{folder}/"),
        ("/var/log/nginx/", f"{folder}/logs/"),
    ]
    for old, new in replacements:
        assert old in text, f"docs/operators.md's nginx block no longer has {old!r}"
        text = text.replace(old, new)
    user = "user root;\n" if os.geteuid() == 0 else ""  # the workers read the temp folder
    return (f"{user}worker_processes 1;\ndaemon off;\npid {folder}/nginx.pid;\n"
            f"error_log {folder}/logs/main.error.log;\n"
            "events { worker_connections 1024; }\n"
            "http {\n"
            f"    access_log {folder}/logs/default.access.log;\n"
            + "".join(f"    {kind}_temp_path {folder}/{kind};\n"
                      for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
            + text + "}\n")


def wait_for_port(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited with {process.returncode}:\n"
                               f"{log.read_text(errors='replace')}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("nginx did not listen in 20 s")


def tls_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return context


def get(port: int, path: str, *, tls: bool = True, headers: dict[str, str] | None = None,
        source: str = CLIENT_ADDRESS) -> http.client.HTTPResponse:
    if tls:
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            "127.0.0.1", port, timeout=20, context=tls_context(), source_address=(source, 0))
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20,
                                          source_address=(source, 0))
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


@pytest.mark.slow
def test_the_documented_nginx_set_up(setup_clinic, tmp_path):  # noqa: F811
    if not Path(NGINX).exists() or shutil.which("openssl") is None:
        pytest.skip("nginx (and openssl) are not installed: `make browser-tools` installs "
                    "them")
    setup = setup_clinic(clients=0)
    folder = tmp_path / "nginx"
    (folder / "logs").mkdir(parents=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-keyout", str(folder / "privkey.pem"),
                    "-out", str(folder / "fullchain.pem")], check=True, capture_output=True)
    http_port, https_port = free_port(), free_port()
    server = Server(setup.url, tmp_path / "server", workers=2)
    server.env["OUTCOME_PROXY_HOPS"] = "1"
    conf = folder / "nginx.conf"
    conf.write_text(local_config(folder, app_port=server.port, http_port=http_port,
                                 https_port=https_port))
    test = subprocess.run([NGINX, "-t", "-p", str(folder), "-c", str(conf)],
                          capture_output=True, text=True)
    assert test.returncode == 0, test.stderr
    nginx = subprocess.Popen([NGINX, "-p", str(folder), "-c", str(conf)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    tokens = [secrets.token_urlsafe(32) for _ in range(4)]
    try:
        wait_for_port(https_port, nginx, folder / "logs" / "main.error.log")
        with server:
            # Requests pass; port 80 sends browsers to https.
            assert get(https_port, "/healthz").status == 200
            assert get(https_port, "/login").status == 200
            redirect = get(http_port, f"/q/{tokens[0]}", tls=False)
            assert redirect.status == 301
            assert redirect.getheader("Location", "").startswith("https://")

            # https reached the app (HSTS is sent on secure requests only) ...
            assert get(https_port, "/login").getheader("Strict-Transport-Security")
            direct = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
            direct.request("GET", "/login")
            assert direct.getresponse().getheader("Strict-Transport-Security") is None
            direct.close()
            # ... and so did the client's address, not a forged one: an unknown link is
            # counted against the address it came from (refused anonymous requests are
            # counts per address and minute, not audit events).
            assert get(https_port, f"/q/{tokens[1]}",
                       headers={"X-Forwarded-For": FORGED}).status == 404
            with setup.factory() as session:
                counted = set(session.scalars(select(AuditDenialCount.address).where(
                    AuditDenialCount.action == "link.open")))
            assert counted == {CLIENT_ADDRESS}, counted

            # 30 slow clients at nginx: nobody else waits for them.
            figures = measure("127.0.0.1", https_port, slow=30, seconds=4, timeout=5,
                              context=tls_context())
            assert figures.no_answer == 0 and figures.max_s < 2.0, figures
            assert figures.requests > 10, figures
        # outcome is down: nginx answers 502 and writes an error line for /q/ too.
        assert get(https_port, f"/q/{tokens[2]}").status == 502
        assert get(https_port, "/login").status == 502
        assert get(https_port, f"/q/{tokens[3]}?x=1").status == 502
    finally:
        nginx.terminate()
        nginx.wait(20)
    logs = {path.name: path.read_text(errors="replace")
            for path in sorted((folder / "logs").iterdir())}
    assert "/q/[token]" in logs["outcome.access.log"], logs["outcome.access.log"]
    assert "connect() failed" in logs["outcome.error.log"]  # the /login 502 was logged
    for name, text in logs.items():
        leaked = [line for line in text.splitlines()
                  if any(token[:16] in line for token in tokens)]
        assert not leaked, f"{name}:\n" + "\n".join(leaked)
