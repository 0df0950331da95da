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
import functools
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
from typing import Any
from urllib.parse import quote
from urllib.parse import urlencode

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
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


def client_address(n: int) -> str:
    """The n-th simulated client's own loopback address (127.1.0.1, 127.1.0.2, ...).

    Clients come from many addresses in practice, and the server limits links opened per
    address (``LINK_OPEN_LIMIT``, 30 a minute): from one address the run would be refused.
    Linux answers for the whole of 127/8, so each client connects from its own; the app
    sees the socket's peer (``PROXY_HOPS`` 0: no forwarded header is trusted).
    """
    block, host = divmod(n, 250)
    return f"127.{1 + block // 250}.{block % 250}.{host + 1}"


class Browser:
    """One client's keep-alive connection with its cookie."""

    def __init__(self, port: int, address: str | None = None) -> None:
        self.conn = http.client.HTTPConnection(
            "127.0.0.1", port, timeout=30,
            source_address=(address, 0) if address else None)
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


KINDS = ("link", "page", "post")


def _form(page: str) -> dict[str, str]:
    return {"csrf_token": CSRF.search(page).group(1), "instrument": "phq9",  # type: ignore[union-attr]
            **{f"phq9_{i}": "1" for i in range(1, 9)}, "phq9_9": "0"}


def submit(port: int, n: int, token: str) -> tuple[float, float, float]:
    """One client's visit: open the link, load the page, post a PHQ-9; each request's
    latency in seconds (link, page, post)."""
    browser = Browser(port, client_address(n))
    times = []
    start = time.perf_counter()
    browser.request("GET", f"/q/{token}")
    times.append(time.perf_counter() - start)
    start = time.perf_counter()
    _, page = browser.request("GET", "/q/")
    times.append(time.perf_counter() - start)
    start = time.perf_counter()
    status, _ = browser.request("POST", "/q/", urlencode(_form(page)))
    times.append(time.perf_counter() - start)
    browser.conn.close()
    if status != 303:
        raise RuntimeError(f"submission failed with HTTP {status}")
    return times[0], times[1], times[2]


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


def in_process(env: dict[str, str], tokens: list[str], first: int) -> dict[str, Any]:
    """The same visits through Flask's test client in this process: CPU time and SQL
    statements per request of each kind, and /healthz's CPU time, so the CPU ratio is
    not distorted by whatever else the machine runs. ``first``: the first client's
    number (for its address)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from outcome.app import create_app

    statements = 0

    def count(*_: object) -> None:
        nonlocal statements
        statements += 1

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        app = create_app()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    event.listen(Engine, "before_cursor_execute", count)
    cpu: dict[str, list[float]] = {k: [] for k in (*KINDS, "healthz")}
    sql: dict[str, list[int]] = {k: [] for k in (*KINDS, "healthz")}
    # The views' own CPU time (the rest of a request is the shared machinery: rate
    # limits, session cookie, CSRF, the audit record, the commit).
    in_view = 0.0

    def view_timer(view: Any) -> Any:
        @functools.wraps(view)  # keeps the view's marks (a GET that writes)
        def timed_view(*args: Any, **kwargs: Any) -> Any:
            nonlocal in_view
            start = time.process_time()
            try:
                return view(*args, **kwargs)
            finally:
                in_view += time.process_time() - start
        return timed_view

    for endpoint in ("questionnaire.open_token", "questionnaire.page"):
        app.view_functions[endpoint] = view_timer(app.view_functions[endpoint])
    view_cpu: dict[str, list[float]] = {k: [] for k in KINDS}

    def timed(kind: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal statements, in_view
        statements, in_view = 0, 0.0
        start = time.process_time()
        response = call(*args, **kwargs)
        cpu[kind].append(time.process_time() - start)
        sql[kind].append(statements)
        if kind in view_cpu:
            view_cpu[kind].append(in_view)
        return response

    try:
        with app.test_client() as warm:  # the first request of a process loads templates
            warm.get("/healthz")
        for n, token in enumerate(tokens, start=first):
            client = app.test_client()
            client.environ_base["REMOTE_ADDR"] = client_address(n)
            timed("link", client.get, f"/q/{token}")
            page = timed("page", client.get, "/q/").get_data(as_text=True)
            response = timed("post", client.post, "/q/", data=_form(page))
            if response.status_code != 303:
                raise RuntimeError(f"submission failed with HTTP {response.status_code}")
            timed("healthz", client.get, "/healthz")
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    ms = {k: 1000 * sum(v) / len(v) for k, v in cpu.items()}
    flow = sum(ms[k] for k in KINDS)
    views = {k: 1000 * sum(v) / len(v) for k, v in view_cpu.items()}
    return {"cpu_ms": {k: round(v, 2) for k, v in ms.items()},
            "view_cpu_ms": {k: round(v, 2) for k, v in views.items()},
            "statements": {k: round(sum(v) / len(v), 1) for k, v in sql.items()},
            "cpu_ratio": round(ms["healthz"] / flow, 3)}


def _postgres_schema(postgres_url: str) -> tuple[str, Any]:
    """A new, empty schema on the server; its URL and how to drop it."""
    from sqlalchemy import create_engine
    from sqlalchemy import text

    name = f"outcome_forms_{os.getpid()}_{secrets.token_hex(4)}"
    admin = create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    separator = "&" if "?" in postgres_url else "?"

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        admin.dispose()

    return f"{postgres_url}{separator}options={quote(f'-csearch_path={name}')}", drop


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return round(1000 * ordered[max(0, int(len(ordered) * share) - 1)], 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--trivial-seconds", type=float, default=5.0,
                        help="how long the trivial endpoint is measured")
    parser.add_argument("--cpu-clients", type=int, default=50,
                        help="visits measured in process for CPU time and SQL statements "
                             "(0: none)")
    parser.add_argument("--cpu-only", action="store_true",
                        help="only the in-process measure (no server): quick, and not "
                             "distorted by other load on the machine")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL,
                        help="with --db postgresql: a server where this user may create a "
                             "schema (made for the run and dropped after)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="outcome-bench-"))
    drop = None
    if args.db == "postgresql":
        url, drop = _postgres_schema(args.postgres_url)
    else:
        url = f"sqlite:///{folder / 'bench.sqlite3'}"
    try:
        figures = run(args, folder, url)
    finally:
        if drop is not None:
            drop()
    if args.json:
        print(json.dumps(figures))
        return
    report(args, figures)


def run(args: argparse.Namespace, folder: Path, url: str) -> dict[str, Any]:
    served = 0 if args.cpu_only else args.clients
    tokens = prepare(url, served + (1 if served else 0) + args.cpu_clients)
    measured, tokens = tokens[:args.cpu_clients], tokens[args.cpu_clients:]
    env = {**os.environ, "OUTCOME_DATABASE_URL": url, "OUTCOME_INSTANCE_PATH": str(folder),
           "OUTCOME_SECRET_KEY": secrets.token_urlsafe(40), "OUTCOME_LOG_LEVEL": "WARNING"}
    figures: dict[str, Any] = {"db": args.db}
    if served:
        figures.update(served_run(args, env, tokens))
    if measured:
        figures.update(in_process({k: v for k, v in env.items() if k.startswith("OUTCOME_")},
                                  measured, first=len(tokens) + 1))
    return figures


def served_run(args: argparse.Namespace, env: dict[str, str], tokens: list[str]
               ) -> dict[str, Any]:
    port = free_port()
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
        browser = Browser(port, client_address(len(tokens) - 1))
        browser.request("GET", f"/q/{tokens.pop()}")
        _, page = browser.request("GET", "/q/")
        assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', page)
        external = re.findall(r'(?:href|src)="(https?://[^"]+)"', page)
        weight = len(page.encode()) + sum(len(browser.request("GET", a)[1].encode())
                                          for a in assets)
        trivial_rps = trivial(port, args.trivial_seconds, args.concurrency)
        start = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            latencies = list(pool.map(lambda nt: submit(port, *nt), enumerate(tokens)))
        wall = time.perf_counter() - start
        # Each submission is three requests (open link, load page, post); all are counted.
        submissions_rps = len(tokens) / wall
    finally:
        server.terminate()
        server.wait(timeout=30)
    figures: dict[str, Any] = {
        "page_bytes": weight, "external_requests": len(external),
        "trivial_rps": round(trivial_rps), "submissions_per_s": round(submissions_rps, 1),
        "requests_per_s_in_flow": round(3 * submissions_rps),
        "submission_vs_trivial": round(submissions_rps / trivial_rps, 3),
    }
    for i, kind in enumerate(KINDS):
        values = [t[i] for t in latencies]
        figures[f"{kind}_p50_ms"] = _percentile(values, 0.5)
        figures[f"{kind}_p99_ms"] = _percentile(values, 0.99)
    return figures


def report(args: argparse.Namespace, figures: dict[str, Any]) -> None:
    print(f"database: {figures['db']}")
    if "trivial_rps" in figures:
        print(f"client page (PHQ-9) with its CSS and JS: {figures['page_bytes'] / 1024:.1f} "
              f"KB, {figures['external_requests']} external requests (target: under 50 KB, "
              "none)")
        print(f"trivial endpoint /healthz: {figures['trivial_rps']} requests/s "
              f"({args.concurrency} concurrent, gunicorn 2 workers)")
        print(f"submissions (open link + page + PHQ-9 stored with signals): "
              f"{figures['submissions_per_s']}/s = {figures['submission_vs_trivial']} of the "
              f"trivial endpoint's rate ({figures['requests_per_s_in_flow']} requests/s in "
              "the flow; target >= 0.1)")
        for kind, name in zip(KINDS, ("GET link", "GET page", "POST"), strict=True):
            print(f"{name:8} latency p50 {figures[f'{kind}_p50_ms']} ms, "
                  f"p99 {figures[f'{kind}_p99_ms']} ms")
    if "cpu_ms" in figures:
        cpu, sql = figures["cpu_ms"], figures["statements"]
        print(f"in process, per request (CPU ms / SQL statements): GET link "
              f"{cpu['link']} / {sql['link']}, GET page {cpu['page']} / {sql['page']}, "
              f"POST {cpu['post']} / {sql['post']}, /healthz {cpu['healthz']} / "
              f"{sql['healthz']}")
        view = figures["view_cpu_ms"]
        print(f"of which in the views (CPU ms): GET link {view['link']}, GET page "
              f"{view['page']}, POST {view['post']}; the rest is the shared request "
              "machinery")
        print(f"CPU ratio (/healthz CPU over a visit's three requests): "
              f"{figures['cpu_ratio']}")


if __name__ == "__main__":
    main()
