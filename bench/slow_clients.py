"""Slow clients against ``outcome serve``: do a few slow connections stall the site?

A slow client (slowloris) opens a connection, sends a request line and then one byte of
a header every second, never finishing; when the server closes the connection it opens
another. While N such clients run, one normal client sends requests one after another
(a new connection each, as separate visitors would) and the time each takes is
measured. Issue 16 (finding 13): with gunicorn's two sync workers three slow clients
held both workers until gunicorn's 30 s worker timeout killed them, round after round.

The script starts ``outcome serve`` itself on a fresh SQLite database, or measures a
server that is already running (``--url http://127.0.0.1:8080``: for the reverse proxy
in front of it, see docs/operators.md and tests/test_reverse_proxy.py).

Run: ``python -m bench.slow_clients [--slow 0 3 10 30] [--seconds 20] [--workers 2]``.
Figures per N: requests answered, median and longest time in seconds, requests that
got no answer within ``--timeout``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import socket
import ssl
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

REQUEST_TIMEOUT = 40.0  # above gunicorn's 30 s worker timeout, so a stall shows in full
SETTLE_SECONDS = 2.0  # the slow clients are connected and have sent bytes before probing


class SlowClient(threading.Thread):
    """One slowloris connection, re-opened whenever the server closes it."""

    def __init__(self, host: str, port: int, interval: float = 1.0,
                 context: ssl.SSLContext | None = None) -> None:
        super().__init__(daemon=True)
        self.host, self.port, self.interval, self.context = host, port, interval, context
        self.stop = threading.Event()
        self.connections = 0

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                with socket.create_connection((self.host, self.port), timeout=5) as raw, \
                        (self.context.wrap_socket(raw, server_hostname=self.host)
                         if self.context else raw) as sock:
                    self.connections += 1
                    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
                    while not self.stop.wait(self.interval):
                        sock.sendall(b"a")  # the header never ends
            except OSError:
                self.stop.wait(0.2)  # closed or refused: open another, as an attacker would


@dataclass
class Figures:
    slow: int
    requests: int
    median_s: float
    max_s: float
    no_answer: int
    slow_connections: int

    def line(self) -> str:
        return (f"{self.slow:3d} slow clients: {self.requests:4d} requests, median "
                f"{self.median_s:6.3f} s, longest {self.max_s:6.2f} s, no answer "
                f"{self.no_answer}, slow connections opened {self.slow_connections}")


def probe(host: str, port: int, seconds: float, path: str = "/login",
          timeout: float = REQUEST_TIMEOUT, context: ssl.SSLContext | None = None,
          ) -> tuple[list[float], int]:
    """Requests one after another for ``seconds``: their times, and how many got none."""
    times: list[float] = []
    failed = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.monotonic()
        conn = (http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
                if context else http.client.HTTPConnection(host, port, timeout=timeout))
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            ok = response.status < 500
        except OSError:
            ok = False
        finally:
            conn.close()
        if ok:
            times.append(time.monotonic() - started)
        else:
            failed += 1
            time.sleep(0.1)
    return times, failed


def measure(host: str, port: int, slow: int, seconds: float, path: str = "/login",
            timeout: float = REQUEST_TIMEOUT, context: ssl.SSLContext | None = None,
            ) -> Figures:
    """Figures for ``slow`` slow clients running while a normal client probes (over TLS
    with ``context``)."""
    clients = [SlowClient(host, port, context=context) for _ in range(slow)]
    for client in clients:
        client.start()
    try:
        if clients:
            time.sleep(SETTLE_SECONDS)
        times, failed = probe(host, port, seconds, path, timeout, context)
    finally:
        for client in clients:
            client.stop.set()
        for client in clients:
            client.join(5)
    return Figures(slow=slow, requests=len(times),
                   median_s=round(statistics.median(times), 4) if times else 0.0,
                   max_s=round(max(times), 3) if times else 0.0, no_answer=failed,
                   slow_connections=sum(c.connections for c in clients))


def run(host: str, port: int, counts: list[int], seconds: float, path: str = "/login",
        timeout: float = REQUEST_TIMEOUT, log=print, context: ssl.SSLContext | None = None,
        ) -> list[Figures]:
    results = []
    for slow in counts:
        figures = measure(host, port, slow, seconds, path, timeout, context)
        if log:
            log(figures.line())
        results.append(figures)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", type=int, nargs="+", default=[0, 3, 10, 30],
                        help="numbers of slow clients, measured in turn")
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="how long the normal client probes, per number")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--path", default="/login", help="what the normal client asks for")
    parser.add_argument("--timeout", type=float, default=REQUEST_TIMEOUT)
    parser.add_argument("--url", help="measure this running server instead of starting one")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    log = None if args.json else print

    if args.url:
        parts = urlsplit(args.url)
        context = None
        if parts.scheme == "https":  # a test certificate, usually: not verified
            context = ssl.create_default_context()
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        results = run(parts.hostname or "127.0.0.1",
                      parts.port or (443 if context else 80), args.slow, args.seconds,
                      args.path, args.timeout, log, context)
    else:
        from bench.crash import Server
        from outcome import schema
        from outcome.db import make_engine

        folder = Path(tempfile.mkdtemp(prefix="outcome-slow-"))
        try:
            url = f"sqlite:///{folder / 'slow.sqlite3'}"
            engine = make_engine(url)
            schema.upgrade(engine)
            engine.dispose()
            server = Server(url, folder / "server", workers=args.workers).start()
            try:
                if log:
                    log(f"outcome serve, {args.workers} workers, on port {server.port}")
                results = run("127.0.0.1", server.port, args.slow, args.seconds, args.path,
                              args.timeout, log)
            finally:
                server.stop()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    if args.json:
        print(json.dumps([vars(f) for f in results]))


if __name__ == "__main__":
    main()
