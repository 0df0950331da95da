"""Benchmark: the client questionnaire page and submissions under load.

1. Page weight: the first questionnaire page (PHQ-9) with its stylesheet and script,
   and whether it asks for anything outside the site (target: under 50 KB, none).
2. Throughput: gunicorn (2 workers) on loopback with a fresh SQLite database; N clients
   each open their link, load the page and submit a PHQ-9 (stored with scores, signals
   and alerts in one transaction), 16 at a time. Compared, in the same run and with the
   same load generator, with the trivial endpoint ``/healthz`` on the same server.

Submissions need a session cookie and a CSRF token per client, which wrk's fixed
requests cannot replay, so both are driven by one Python thread pool (http.client,
keep-alive): the ratio compares like with like. Run: ``make bench`` or
``.venv/bin/python -m bench.forms``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

CSRF = re.compile(r'name="csrf_token"[^>]*?value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(url: str, clients: int) -> list[str]:
    """A migrated database with one clinic and ``clients`` clients, each with a link."""
    from outcome import schema
    from outcome.db import make_engine
    from outcome.db import make_session_factory
    from outcome.db import transaction
    from outcome.models import Client
    from outcome.models import Clinic
    from outcome.models import Episode
    from outcome.models import User
    from outcome.services import consent
    from outcome.services.links import issue_link
    from questionnaires.loader import builtin_library

    engine = make_engine(url)
    schema.upgrade(engine)
    library = builtin_library()
    now = dt.datetime.now(dt.UTC)
    tokens = []
    with transaction(make_session_factory(engine)) as session:
        clinic = Clinic(slug="bench", name="Bench Clinic")
        session.add(clinic)
        session.flush()
        therapist = User(clinic_id=clinic.id, email="t@bench.example.org", display_name="T",
                         is_therapist=True)
        session.add(therapist)
        session.flush()
        text = consent.current_text(session, clinic, "en", now)
        for n in range(clients):
            client = Client(clinic_id=clinic.id, code=f"C-{n:06d}", name=f"Client {n}",
                            therapist_id=therapist.id)
            session.add(client)
            session.flush()
            episode = Episode(clinic_id=clinic.id, client_id=client.id,
                              therapist_id=therapist.id, opened_on=now.date())
            session.add(episode)
            session.flush()
            # The client agreed to the consent text at an earlier visit, so the link opens
            # on the questionnaire (the production check of consent still runs each time).
            consent.record_decision(session, client=client, text=text, decision="agreed",
                                    channel="link", now=now)
            tokens.append(issue_link(session, episode=episode, purpose="pre", now=now,
                                     library=library)[1])
    engine.dispose()
    return tokens


class Browser:
    """One client's keep-alive connection with its cookie."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: str | None = None) -> tuple[int, str]:
        headers = {}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items() if v)
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        data = response.read().decode()
        for header in response.msg.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]
        return response.status, data


def submit(port: int, token: str) -> float:
    browser = Browser(port)
    browser.request("GET", f"/q/{token}")
    _, page = browser.request("GET", "/q/")
    form = {"csrf_token": CSRF.search(page).group(1), "instrument": "phq9",
            **{f"phq9_{i}": "1" for i in range(1, 9)}, "phq9_9": "0"}
    start = time.perf_counter()
    status, _ = browser.request("POST", "/q/", urlencode(form))
    elapsed = time.perf_counter() - start
    browser.conn.close()
    if status != 303:
        raise RuntimeError(f"submission failed with HTTP {status}")
    return elapsed


def trivial(port: int, seconds: float, concurrency: int) -> float:
    count = 0
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def worker() -> None:
        nonlocal count
        browser = Browser(port)
        done = 0
        while time.perf_counter() < stop:
            browser.request("GET", "/healthz")
            done += 1
        with lock:
            count += done

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--trivial-seconds", type=float, default=5.0,
                        help="how long the trivial endpoint is measured")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="outcome-bench-"))
    url = f"sqlite:///{folder / 'bench.sqlite3'}"
    tokens = prepare(url, args.clients)
    port = free_port()
    env = {**os.environ, "OUTCOME_DATABASE_URL": url, "OUTCOME_INSTANCE_PATH": str(folder),
           "OUTCOME_SECRET_KEY": secrets.token_urlsafe(40), "OUTCOME_LOG_LEVEL": "WARNING"}
    outcome = str(Path(sys.executable).parent / "outcome")
    server = subprocess.Popen([outcome, "serve", "--port", str(port), "--workers", "2"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Up to a minute for gunicorn to come up: a busy machine (the test suite runs this
        # beside other tests) can take far longer than an idle one.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if Browser(port).request("GET", "/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        # Page weight, from a spare client.
        browser = Browser(port)
        browser.request("GET", f"/q/{tokens.pop()}")
        _, page = browser.request("GET", "/q/")
        assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', page)
        external = re.findall(r'(?:href|src)="(https?://[^"]+)"', page)
        weight = len(page.encode()) + sum(len(browser.request("GET", a)[1].encode())
                                          for a in assets)
        trivial_rps = trivial(port, args.trivial_seconds, args.concurrency)
        start = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            latencies = sorted(pool.map(lambda t: submit(port, t), tokens))
        wall = time.perf_counter() - start
        # Each submission is three requests (open link, load page, post); all are counted.
        submissions_rps = len(tokens) / wall
    finally:
        server.terminate()
        server.wait(timeout=30)
    figures = {
        "page_bytes": weight, "external_requests": len(external),
        "trivial_rps": round(trivial_rps), "submissions_per_s": round(submissions_rps, 1),
        "requests_per_s_in_flow": round(3 * submissions_rps),
        "submission_vs_trivial": round(submissions_rps / trivial_rps, 3),
        "post_p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
        "post_p99_ms": round(1000 * latencies[int(len(latencies) * 0.99) - 1], 1),
    }
    if args.json:
        print(json.dumps(figures))
        return
    print(f"client page (PHQ-9) with its CSS and JS: {weight / 1024:.1f} KB, "
          f"{len(external)} external requests (target: under 50 KB, none)")
    print(f"trivial endpoint /healthz: {trivial_rps:.0f} requests/s "
          f"({args.concurrency} concurrent, gunicorn 2 workers)")
    print(f"submissions (open link + page + PHQ-9 stored with signals): "
          f"{submissions_rps:.1f}/s = {figures['submission_vs_trivial']} of the trivial "
          f"endpoint's rate ({figures['requests_per_s_in_flow']} requests/s in the flow)")
    print(f"POST latency p50 {figures['post_p50_ms']} ms, p99 {figures['post_p99_ms']} ms")


if __name__ == "__main__":
    main()
