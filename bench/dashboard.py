"""Benchmark: the therapist dashboard (the start page) under load, small and large database.

A therapist with 60 clients in care, 20 sessions each (PHQ-9, GAD-7 and SRS-type
alliance ratings every session, signals computed as the demo does), signs in to
gunicorn (``outcome serve``, 2 sync workers) on loopback; 16 connections (http.client
threads, as in bench/forms; the sync workers close each connection after one response,
for both endpoints alike) then fetch ``/`` for a fixed time after a warm-up, and the
same load generator fetches the trivial endpoint ``/healthz`` on the same server. The
database first holds 10,000 administrations in all (the rest belong to other
therapists' clients of the clinic), then 1,000,000. A temporary SQLite database is
measured in alternating rounds (small, large, small, large): the best round of each
size is reported with every round's rate, and the machine's load average is shown,
since other work on a 2-core machine moves single runs by a factor of two.

Targets (issue): the dashboard serves at least 25 % of the trivial endpoint's requests
per second with p99 latency under 100 ms, and is at most 1.3x slower (requests per
second) with 1,000,000 administrations than with 10,000. Every dashboard response must
be 200 and list all the therapist's clients, so a redirect to the login page cannot pass
for speed; a functional failure exits non-zero, a missed target does not. Run:
``make bench`` or ``.venv/bin/python -m bench.dashboard [--large N] [--json]``; on
PostgreSQL ``--postgres URL`` (a database of its own is created on that server and dropped
afterwards) or ``--database-url`` (an empty database, left filled).

Besides the load, one request of each endpoint is measured in process (Flask's test
client, issue 21): the SQL statements the dashboard runs, the audit records it writes
(exactly one, or the run fails), and the CPU time per request of both endpoints with their
ratio, a figure that other work on the machine moves far less than requests per second.
On PostgreSQL that CPU is the web process's only (the server's work is elsewhere). Under
load, the ``caseload.view`` records written must equal the dashboard pages served.

The other therapists' administrations are generated in vectorised batches (the demo's
courses of care, scored by ``outcome.core.scoring.score``) and inserted with SQLAlchemy
Core executemany; signals for every episode of the clinic are then rebuilt by the
service (``recompute_signals``), so the other caseloads have signals and alerts too.
No expected-response models are fitted: colours come from the rational rules.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import numpy as np

from bench.forms import CSRF
from bench.forms import Browser
from bench.forms import free_port

INSTRUMENTS = ("phq9", "gad7", "srs_vas")  # given at every session, in this order
FILLER_PER_THERAPIST = 60
BATCH_EPISODES = 500
CODE = re.compile(r"C-DB\d{4}")  # the benchmarked therapist's client codes
EMAIL = "therapist@bench.example.org"


class Builder:
    """Fills a migrated, empty database and grows it to a given number of administrations.

    Primary keys are assigned here, so related rows can be inserted in batches without
    reading keys back (PostgreSQL sequences are moved past them afterwards).
    ``now`` (default: the current time) dates the rows; open episodes' last sessions fall
    in the seven days before it.
    """

    def __init__(self, url: str, *, clients: int, sessions: int, seed: int = 11,
                 now: dt.datetime | None = None) -> None:
        from outcome import schema
        from outcome.db import make_engine
        from questionnaires.loader import builtin_library

        self.engine = make_engine(url)
        schema.upgrade(self.engine)
        self.library = builtin_library()
        self.instruments = [self.library.get(key) for key in INSTRUMENTS]
        self.clients, self.sessions = clients, sessions
        self.rng = np.random.default_rng(seed)
        self.now = now or dt.datetime.now(dt.UTC).replace(microsecond=0)
        self.password = secrets.token_urlsafe(16)
        self.next_id = {"users": 1, "clients": 1, "episodes": 1, "appointments": 1,
                        "administrations": 1}
        self.filler_clients = 0
        self.filler_therapist = 0  # the user id that gets the next filler clients
        self.administrations = 0
        self.clinic_id = self._create_clinic()

    # -- set-up ------------------------------------------------------------------

    def _create_clinic(self) -> int:
        from sqlalchemy import func
        from sqlalchemy import insert
        from sqlalchemy import select

        from outcome.models import Clinic
        from outcome.models import User
        from outcome.services.passwords import hash_password

        with self.engine.begin() as conn:
            if conn.scalar(select(func.count()).select_from(Clinic)):
                raise RuntimeError("the database is not empty; the benchmark needs a fresh one")
            clinic_id = conn.execute(insert(Clinic).values(
                slug="bench", name="Bench Clinic", timezone="UTC", settings={},
                created_dt=self.now).returning(Clinic.id)).scalar_one()
            self.therapist_id = self._ids("users", 1)[0]
            conn.execute(insert(User), [self._user(clinic_id, self.therapist_id, EMAIL,
                                                   "Bench Therapist",
                                                   hash_password(self.password))])
        return clinic_id

    def _ids(self, table: str, n: int) -> list[int]:
        first = self.next_id[table]
        self.next_id[table] = first + n
        return list(range(first, first + n))

    def _user(self, clinic_id: int, user_id: int, email: str, name: str,
              password_hash: str | None) -> dict:
        return {"id": user_id, "clinic_id": clinic_id, "email": email, "display_name": name,
                "password_hash": password_hash, "is_admin": False, "is_supervisor": False,
                "is_therapist": True, "is_active": True, "session_version": 1,
                "created_dt": self.now, "password_changed_dt": None, "last_login_dt": None}

    # -- growth ------------------------------------------------------------------

    def add_caseload(self) -> None:
        """The benchmarked therapist's clients: all in care, ``sessions`` sessions each."""
        names = _names(self.rng, self.clients)
        episodes = [{"therapist_id": self.therapist_id, "code": f"C-DB{n + 1:04d}",
                     "name": names[n], "sessions": self.sessions, "open": True}
                    for n in range(self.clients)]
        self._insert(episodes, limit=None)

    def add_filler(self, administrations: int) -> None:
        """Other therapists' clients, one episode each, until ``administrations`` more exist."""
        from outcome.models import User

        left = administrations
        while left > 0:
            episodes = []
            users = []
            while left > 0 and len(episodes) < BATCH_EPISODES:
                n = self.filler_clients
                if n % FILLER_PER_THERAPIST == 0:
                    user_id = self._ids("users", 1)[0]
                    users.append(self._user(self.clinic_id, user_id,
                                            f"t{user_id:06d}@bench.example.org",
                                            f"Therapist {user_id}", None))
                    self.filler_therapist = user_id
                sessions = int(min(self.rng.integers(4, 37), math.ceil(left / 3)))
                left -= 3 * sessions
                episodes.append({"therapist_id": self.filler_therapist,
                                 "code": f"C-F{n + 1:07d}", "name": None,
                                 "sessions": sessions, "open": self.rng.random() < 0.7})
                self.filler_clients += 1
            if users:
                with self.engine.begin() as conn:
                    conn.execute(User.__table__.insert(), users)
            names = _names(self.rng, len(episodes))
            for episode, name in zip(episodes, names, strict=True):
                episode["name"] = name
            # The last episode may stop part-way through its last session.
            rows = 3 * sum(e["sessions"] for e in episodes)
            self._insert(episodes, limit=rows + left if left < 0 else None)

    def _insert(self, episodes: list[dict], limit: int | None) -> None:
        """Clients, episodes, weekly appointments and scored administrations; one commit."""
        from outcome.models import Administration
        from outcome.models import Appointment
        from outcome.models import Client
        from outcome.models import Episode

        rng, today = self.rng, self.now.date()
        client_ids = self._ids("clients", len(episodes))
        episode_ids = self._ids("episodes", len(episodes))
        clients, episode_rows, appointments = [], [], []
        session_appointment: list[int] = []  # one per session row, in order
        for episode, client_id, episode_id in zip(episodes, client_ids, episode_ids,
                                                  strict=True):
            n = episode["sessions"]
            if episode["open"]:  # last session in the past week, the next one ahead
                last = today - dt.timedelta(days=int(rng.integers(1, 8)))
            else:
                last = today - dt.timedelta(weeks=int(rng.integers(2, 52)))
            first = last - dt.timedelta(weeks=n - 1)
            hour = int(rng.choice([9, 10, 11, 13, 14, 15, 16, 17]))
            clients.append({"id": client_id, "clinic_id": self.clinic_id,
                            "code": episode["code"], "name": episode["name"], "email": None,
                            "phone": None, "locale": "en",
                            "therapist_id": episode["therapist_id"],
                            "is_progress_shared": False, "created_dt": self.now})
            episode_rows.append({"id": episode_id, "clinic_id": self.clinic_id,
                                 "client_id": client_id,
                                 "therapist_id": episode["therapist_id"], "opened_on": first,
                                 "closed_on": None if episode["open"] else last,
                                 "end_reason": None if episode["open"] else "completed",
                                 "created_dt": self.now})
            days = [first + dt.timedelta(weeks=k) for k in range(n)]
            ids = self._ids("appointments", n + int(episode["open"]))
            for k, appointment_id in enumerate(ids):
                day = days[k] if k < n else last + dt.timedelta(weeks=1)
                appointments.append({
                    "id": appointment_id, "episode_id": episode_id,
                    "starts_dt": dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC),
                    "duration_minutes": 50, "status": "attended" if k < n else "scheduled",
                    "created_dt": self.now})
            session_appointment.extend(ids[:n])
        answers = _answers(rng, self.library, [e["sessions"] for e in episodes])
        starts = {a["id"]: a["starts_dt"] for a in appointments}
        row_episode = np.repeat(episode_ids, [e["sessions"] for e in episodes])
        administrations = []
        for row, appointment_id in enumerate(session_appointment):
            when = starts[appointment_id]
            for instrument, (item_ids, table, matrix) in zip(self.instruments, answers,
                                                             strict=True):
                result = table.row(row)
                administrations.append({
                    "episode_id": int(row_episode[row]), "appointment_id": appointment_id,
                    "link_id": None, "instrument_id": instrument.id,
                    "instrument_version": instrument.version, "respondent": "client",
                    "respondent_user_id": None,
                    "answers": {i: (int(v) if float(v).is_integer() else float(v))
                                for i, v in zip(item_ids, matrix[row].tolist(), strict=True)
                                if not math.isnan(v)},
                    "scores": result.as_json(), "total": result.total,
                    "is_valid": result.is_valid, "is_prorated": result.is_prorated,
                    "completed_dt": when + (dt.timedelta(minutes=60) if instrument.role
                                            == "alliance" else -dt.timedelta(minutes=30)),
                    "supersedes_id": None, "created_dt": when + dt.timedelta(hours=2)})
        if limit is not None:
            del administrations[limit:]
        for administration, adm_id in zip(administrations,
                                          self._ids("administrations", len(administrations)),
                                          strict=True):
            administration["id"] = adm_id
            administration["idempotency_key"] = f"bench:{adm_id}"
        with self.engine.begin() as conn:
            conn.execute(Client.__table__.insert(), clients)
            conn.execute(Episode.__table__.insert(), episode_rows)
            conn.execute(Appointment.__table__.insert(), appointments)
            for start in range(0, len(administrations), 10_000):
                conn.execute(Administration.__table__.insert(),
                             administrations[start:start + 10_000])
        self.administrations += len(administrations)

    def finish(self) -> float:
        """Rebuild every episode's signals (the service), check the counts; seconds taken."""
        from sqlalchemy import func
        from sqlalchemy import select
        from sqlalchemy import text

        from outcome.db import make_session_factory
        from outcome.db import transaction
        from outcome.models import Administration
        from outcome.models import Episode
        from outcome.models import EpisodeSignal
        from outcome.models.base import Base
        from outcome.services.signals import recompute_signals

        if self.engine.dialect.name == "postgresql":
            with self.engine.begin() as conn:
                for name in self.next_id:
                    table = Base.metadata.tables[name]
                    conn.execute(select(func.setval(
                        func.pg_get_serial_sequence(name, "id"),
                        select(func.max(table.c.id)).scalar_subquery())))
        start = time.perf_counter()
        with transaction(make_session_factory(self.engine)) as session:
            recompute_signals(session, self.library, self.now, self.clinic_id)
        seconds = time.perf_counter() - start
        if self.engine.dialect.name == "postgresql":
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("ANALYZE"))  # what autovacuum would soon do
        with self.engine.connect() as conn:
            stored = conn.scalar(select(func.count()).select_from(Administration))
            signalled = conn.scalar(
                select(func.count()).select_from(Episode)
                .join(EpisodeSignal, EpisodeSignal.episode_id == Episode.id)
                .where(Episode.therapist_id == self.therapist_id, Episode.closed_on.is_(None)))
        if stored != self.administrations or signalled != self.clients:
            raise RuntimeError(f"set-up failed: {stored} administrations stored "
                               f"(expected {self.administrations}), {signalled} of the "
                               f"{self.clients} episodes with signals")
        self.engine.dispose()  # the builder's connections stay out of the server's way
        return seconds


def _names(rng: np.random.Generator, n: int) -> list[str]:
    from outcome.services.demo import FIRST_NAMES
    from outcome.services.demo import LAST_NAMES

    first = rng.integers(0, len(FIRST_NAMES), n)
    last = rng.integers(0, len(LAST_NAMES), n)
    return [f"{FIRST_NAMES[f]} {LAST_NAMES[s]}" for f, s in zip(first, last, strict=True)]


def _answers(rng: np.random.Generator, library, sessions: list[int]):
    """Item answers and scores of every session row, per instrument (the demo's courses).

    PHQ-9 follows one of the demo's courses of care (recovering, early responder, slow,
    flat, deteriorating) with noise, items drawn to match the session's level; about 3 %
    leave one item out (prorated) and 5 % of episodes report thoughts of self-harm once.
    GAD-7 follows PHQ-9 loosely. SRS-type ratings sit at a personal level; a quarter of
    longer episodes have a rupture, half of them unrepaired.
    """
    from outcome.core.answers import numeric_item_ids
    from outcome.core.scoring import score
    from outcome.services.demo_answers import COURSE_SHARES
    from outcome.services.demo_answers import COURSES
    from outcome.services.demo_answers import _phq_course

    counts = np.asarray(sessions)
    episodes, rows = len(counts), int(counts.sum())
    row_episode = np.repeat(np.arange(episodes), counts)
    course = rng.choice(len(COURSES), size=episodes, p=COURSE_SHARES)
    intake = np.where(rng.random(episodes) < 0.1, rng.uniform(6, 10, episodes),
                      rng.uniform(11, 22, episodes))
    mean = np.concatenate([_phq_course(COURSES[c], intake[e], np.arange(1, n + 1, dtype=float))
                           for e, (c, n) in enumerate(zip(course, counts, strict=True))])
    phq_total = np.clip(np.rint(mean + rng.normal(0, 1.8, rows)), 0, 27)
    item9 = np.zeros(rows)
    start = np.cumsum(counts) - counts
    for e in np.flatnonzero(rng.random(episodes) < 0.05):
        item9[start[e] + rng.integers(0, counts[e])] = rng.integers(1, 3)
    phq = rng.binomial(3, np.clip((phq_total - item9) / 24, 0, 1)[:, None], (rows, 8))
    phq = phq.astype(float)
    gaps = np.flatnonzero(rng.random(rows) < 0.03)
    phq[gaps, rng.integers(0, 8, gaps.size)] = np.nan
    phq = np.column_stack([phq, item9, np.minimum(3, phq_total // 7)])
    gad_total = np.clip(np.rint(mean * 0.62 + rng.normal(0, 1.6, rows)), 0, 21)
    gad = rng.binomial(3, (gad_total / 21)[:, None], (rows, 7)).astype(float)
    alliance = rng.uniform(36.5, 39.5, episodes)[row_episode] + rng.normal(0, 0.2, rows)
    for e in np.flatnonzero((counts >= 5) & (rng.random(episodes) < 0.25)):
        at = start[e] + rng.integers(3, counts[e] - 1)
        alliance[at] -= rng.uniform(4, 7)
        if rng.random() < 0.5:
            alliance[at + 1:start[e] + counts[e]] -= rng.uniform(3, 5)
    srs = np.round(np.clip(np.clip(alliance, 0, 40)[:, None] / 4
                           + rng.normal(0, 0.05, (rows, 4)), 0, 10), 1)
    out = []
    for key, matrix in zip(INSTRUMENTS, (phq, gad, srs), strict=True):
        instrument = library.get(key)
        out.append((numeric_item_ids(instrument), score(instrument, matrix), matrix))
    return out


# -- load --------------------------------------------------------------------------


def start_server(url: str, folder: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "OUTCOME_DATABASE_URL": url, "OUTCOME_INSTANCE_PATH": str(folder),
           "OUTCOME_SECRET_KEY": secrets.token_urlsafe(40), "OUTCOME_LOG_LEVEL": "WARNING"}
    outcome = str(Path(sys.executable).parent / "outcome")
    server = subprocess.Popen([outcome, "serve", "--port", str(port), "--workers", "2"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            if Browser(port).request("GET", "/healthz")[0] == 200:
                return server
        except OSError:
            if server.poll() is not None:
                break
            time.sleep(0.1)
    server.terminate()
    raise RuntimeError("the server did not start")


def sign_in(port: int, password: str) -> dict[str, str]:
    """The session cookie of the benchmarked therapist.

    One login per server, whose connections all share the cookie, so the login rate
    limits (10 an hour per account, counted in each worker's memory) are never reached.
    """
    browser = Browser(port)
    _, page = browser.request("GET", "/login")
    token = CSRF.search(page)
    if token is None:
        raise RuntimeError("no CSRF token on the login page")
    status, _ = browser.request("POST", "/login", urlencode(
        {"csrf_token": token.group(1), "email": EMAIL, "password": password}))
    if status != 302:
        raise RuntimeError(f"login failed with HTTP {status}")
    return browser.cookies


def drive(port: int, path: str, seconds: float, concurrency: int,
          cookies: dict[str, str] | None = None, check=None) -> dict:
    """``concurrency`` connections fetch ``path`` in a closed loop for ``seconds``."""
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    failures: list[BaseException] = []
    sizes: list[int] = []
    stop = time.perf_counter() + seconds

    def worker(mine: list[float]) -> None:
        browser = Browser(port)
        browser.cookies = dict(cookies or {})
        try:
            while time.perf_counter() < stop:
                start = time.perf_counter()
                status, body = browser.request("GET", path)
                mine.append(time.perf_counter() - start)
                if check is not None:
                    check(status, body)
                if len(mine) == 1:
                    sizes.append(len(body.encode()))
        except Exception as exc:  # reported once all threads stop
            failures.append(exc)
        finally:
            browser.conn.close()

    threads = [threading.Thread(target=worker, args=(mine,)) for mine in latencies]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if failures:
        raise RuntimeError(f"{path}: {failures[0]}") from failures[0]
    times = sorted(x for mine in latencies for x in mine)
    return {"requests": len(times), "rps": len(times) / wall,
            "p50_ms": 1000 * percentile(times, 0.50), "p99_ms": 1000 * percentile(times, 0.99),
            "bytes": max(sizes, default=0)}


def caseload_views(url: str) -> int:
    """How many ``caseload.view`` audit records the database holds."""
    from sqlalchemy import func
    from sqlalchemy import select

    from outcome.db import make_engine
    from outcome.models import AuditEvent

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(AuditEvent)
                                   .where(AuditEvent.action == "caseload.view")) or 0)
    finally:
        engine.dispose()


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def measure(url: str, folder: Path, builder: Builder, administrations: int, args) -> dict:
    """Start gunicorn on the database at ``url``, sign in, and time both endpoints."""
    def check(status: int, body: str) -> None:
        if status != 200:
            raise RuntimeError(f"dashboard answered HTTP {status}")
        found = len(set(CODE.findall(body)))
        if found != builder.clients:
            raise RuntimeError(f"dashboard listed {found} of the {builder.clients} clients")

    port = free_port()
    views = caseload_views(url)
    server = start_server(url, folder, port)
    load = os.getloadavg()[0]  # other work on the machine skews a run: shown with it
    try:
        cookies = sign_in(port, builder.password)
        drive(port, "/healthz", args.warmup, args.concurrency)
        warm = drive(port, "/", args.warmup, args.concurrency, cookies, check)
        trivial = drive(port, "/healthz", args.seconds, args.concurrency)
        dashboard = drive(port, "/", args.seconds, args.concurrency, cookies, check)
    finally:
        server.terminate()
        server.wait(timeout=30)
    # Exactly one audit record per page served under load: none dropped, none doubled.
    served = warm["requests"] + dashboard["requests"]
    recorded = caseload_views(url) - views
    if recorded != served:
        raise RuntimeError(f"{served} dashboard pages were served but {recorded} "
                           "caseload.view audit records written")
    return {"administrations": administrations,
            "trivial_rps": round(trivial["rps"]),
            "trivial_p50_ms": round(trivial["p50_ms"], 1),
            "trivial_p99_ms": round(trivial["p99_ms"], 1),
            "dashboard_rps": round(dashboard["rps"], 1),
            "dashboard_p50_ms": round(dashboard["p50_ms"], 1),
            "dashboard_p99_ms": round(dashboard["p99_ms"], 1),
            "dashboard_requests": dashboard["requests"],
            "dashboard_vs_trivial": round(dashboard["rps"] / trivial["rps"], 3),
            "page_bytes": dashboard["bytes"], "load_average": round(load, 2)}


def in_process(url: str, builder: Builder, requests: int = 20, batches: int = 5) -> dict:
    """The dashboard request measured inside one process with Flask's test client, where
    other work on the machine distorts less than under gunicorn: the SQL statements one
    request runs (the audit INSERT among them; transaction control not counted), the
    audit rows it writes, and the CPU time per request of ``/`` and ``/healthz`` (best of
    ``batches`` batches of ``requests``) with their ratio."""
    from sqlalchemy import event
    from sqlalchemy import func
    from sqlalchemy import select

    from outcome.app import create_app
    from outcome.extensions import database
    from outcome.models import AuditEvent

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": secrets.token_urlsafe(40),
                      "RATELIMIT_ENABLED": False, "LOG_LEVEL": "WARNING"})
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = CSRF.search(page)
    if token is None:
        raise RuntimeError("no CSRF token on the login page")
    response = client.post("/login", data={"csrf_token": token.group(1), "email": EMAIL,
                                           "password": builder.password})
    if response.status_code != 302:
        raise RuntimeError(f"in-process login failed with HTTP {response.status_code}")
    with app.app_context():
        engine = database().engine
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        if statement.lstrip()[:6].upper() in ("SELECT", "INSERT", "UPDATE", "DELETE"):
            statements.append(statement)

    def audit_rows() -> int:
        with engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(AuditEvent)) or 0)

    client.get("/")  # warm: the compiled-statement and table caches
    before = audit_rows()
    event.listen(engine, "before_cursor_execute", count)
    try:
        response = client.get("/")
    finally:
        event.remove(engine, "before_cursor_execute", count)
    if response.status_code != 200:
        raise RuntimeError(f"in-process dashboard answered HTTP {response.status_code}")
    written = audit_rows() - before
    if written != 1:
        raise RuntimeError(f"one dashboard request wrote {written} audit rows, not one")

    def cpu_ms(path: str) -> float:
        best_ms = math.inf
        for _ in range(batches):
            start = time.process_time()
            for _ in range(requests):
                client.get(path)
            best_ms = min(best_ms, 1000 * (time.process_time() - start) / requests)
        return best_ms

    trivial, dashboard = cpu_ms("/healthz"), cpu_ms("/")
    engine.dispose()
    return {"statements_per_request": len(statements), "audit_rows_per_request": written,
            "cpu_ms_trivial": round(trivial, 2), "cpu_ms_dashboard": round(dashboard, 2),
            "cpu_ratio": round(trivial / dashboard, 3)}


def best(runs: list[dict]) -> dict:
    """The round with the most dashboard requests per second, and every round's rate."""
    top = max(runs, key=lambda run: run["dashboard_rps"])
    return {**top, "dashboard_rps_rounds": [run["dashboard_rps"] for run in runs]}


def create_postgres_database(server_url: str) -> str:
    """A new, empty database on the PostgreSQL server of ``server_url``; its URL."""
    from sqlalchemy import create_engine
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    name = f"outcome_bench_{secrets.token_hex(4)}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(server_url: str, url: str) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database (its write-ahead log included)."""
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=60)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--small", type=int, default=10_000,
                        help="administrations in the database for the first run")
    parser.add_argument("--large", type=int, default=1_000_000,
                        help="administrations for the second run (0: skip it)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0, help="per endpoint and run")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--database-url",
                        help="an empty database to fill (PostgreSQL; default: a temporary "
                        "SQLite file); it is left filled")
    parser.add_argument("--postgres", metavar="URL",
                        help="a PostgreSQL server (any database URL on it): the benchmark "
                        "creates a database of its own there and drops it afterwards")
    parser.add_argument("--rounds", type=int, default=2,
                        help="measurements of each database, alternated (small, large, small, "
                        "large...); the best round of each is reported")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary folder with the SQLite databases")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    own = args.clients * args.sessions * len(INSTRUMENTS)
    if own > args.small or 0 < args.large <= args.small or args.rounds < 1:
        parser.error(f"need {own} <= --small < --large (the caseload alone has {own} "
                     "administrations) and --rounds >= 1")

    if args.postgres and args.database_url:
        parser.error("--postgres creates its own database: give it or --database-url")
    folder = Path(tempfile.mkdtemp(prefix="outcome-bench-"))
    scratch = create_postgres_database(args.postgres) if args.postgres else None
    if scratch:
        args.database_url = scratch
    url = args.database_url or f"sqlite:///{folder / 'bench.sqlite3'}"
    # A temporary SQLite database is copied before it grows, so that the two sizes can be
    # measured alternately: load from other work then weighs on both alike.
    snapshot = None if args.database_url or not args.large else folder / "small.sqlite3"
    small_runs, large_runs = [], []
    try:
        start = time.perf_counter()
        builder = Builder(url, clients=args.clients, sessions=args.sessions)
        # Other caseloads before and after the therapist's, as in a clinic that grew.
        filler = args.small - own
        builder.add_filler(filler // 2)
        builder.add_caseload()
        builder.add_filler(filler - filler // 2)
        signals_s = builder.finish()
        small_built = {"build_s": round(time.perf_counter() - start, 1),
                       "signals_s": round(signals_s, 1), **in_process(url, builder)}
        for _ in range(1 if snapshot else args.rounds):
            small_runs.append(measure(url, folder, builder, args.small, args))
        if args.large:
            if snapshot:
                copy_sqlite(folder / "bench.sqlite3", snapshot)
            start = time.perf_counter()
            builder.add_filler(args.large - args.small)
            signals_s = builder.finish()
            large_built = {"build_s": round(time.perf_counter() - start, 1),
                           "signals_s": round(signals_s, 1), **in_process(url, builder)}
            for n in range(args.rounds):
                large_runs.append(measure(url, folder, builder, args.large, args))
                if snapshot and n < args.rounds - 1:
                    small_runs.append(measure(f"sqlite:///{snapshot}", folder, builder,
                                              args.small, args))
    finally:
        if args.keep:
            print(f"kept {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)
        if scratch:
            drop_postgres_database(args.postgres, scratch)
    small = {**best(small_runs), **small_built}
    large = {**best(large_runs), **large_built} if large_runs else None
    figures = {"clients": args.clients, "sessions": args.sessions,
               "concurrency": args.concurrency, "seconds": args.seconds,
               "rounds": args.rounds, "backend": url.split(":", 1)[0].split("+")[0],
               "small": small, "large": large}
    targets = {"dashboard_vs_trivial": small["dashboard_vs_trivial"] >= 0.25,
               "dashboard_p99": small["dashboard_p99_ms"] < 100}
    if large:
        figures["large_slowdown"] = round(small["dashboard_rps"] / large["dashboard_rps"], 3)
        figures["large_p99_ratio"] = round(large["dashboard_p99_ms"]
                                           / small["dashboard_p99_ms"], 3)
        targets["large_slowdown"] = figures["large_slowdown"] <= 1.3
    figures["targets_met"] = targets
    if args.json:
        print(json.dumps(figures))
        return
    report(figures, targets)


def report(figures: dict, targets: dict) -> None:
    def verdict(name: str) -> str:
        return "met" if targets[name] else "MISSED"

    runs = [figures["small"]] + ([figures["large"]] if figures["large"] else [])
    print(f"therapist dashboard GET / ({figures['clients']} clients in care x "
          f"{figures['sessions']} sessions), gunicorn 2 workers, {figures['backend']}, "
          f"{figures['concurrency']} connections, {figures['seconds']:g} s per endpoint, "
          f"best of {figures['rounds']} rounds")
    print(f"  {'administrations in the database':34}"
          + "".join(f"{r['administrations']:>17,}" for r in runs))
    lines = (("trivial /healthz  requests/s", "trivial_rps", "{:.0f}"),
             ("                  p50 / p99 ms", ("trivial_p50_ms", "trivial_p99_ms"),
              "{:.1f} / {:.1f}"),
             ("dashboard /      requests/s", "dashboard_rps", "{:.1f}"),
             ("                  p50 / p99 ms", ("dashboard_p50_ms", "dashboard_p99_ms"),
              "{:.1f} / {:.1f}"),
             ("                  page KB", "page_bytes", "{:.1f}"),
             ("dashboard / trivial requests/s", "dashboard_vs_trivial", "{:.3f}"),
             ("in process: SQL statements / req", "statements_per_request", "{:d}"),
             ("            audit rows / request", "audit_rows_per_request", "{:d}"),
             ("            CPU ms / or /healthz", ("cpu_ms_dashboard", "cpu_ms_trivial"),
              "{:.2f} / {:.2f}"),
             ("            CPU ratio healthz / /", "cpu_ratio", "{:.3f}"),
             ("database built in s (signals)", ("build_s", "signals_s"), "{:.1f} ({:.1f})"),
             ("load average before the run", "load_average", "{:.2f}"))
    for label, keys, shape in lines:
        keys = keys if isinstance(keys, tuple) else (keys,)
        cells = [shape.format(*(r[k] / 1024 if k == "page_bytes" else r[k] for k in keys))
                 for r in runs]
        print(f"  {label:34}" + "".join(f"{c:>17}" for c in cells))
    print(f"  {'dashboard requests/s, each round':34}" + "".join(
        f"{', '.join(f'{x:.1f}' for x in r['dashboard_rps_rounds']):>17}" for r in runs))
    small = figures["small"]
    print(f"  dashboard / trivial = {small['dashboard_vs_trivial']:.3f} "
          f"(target >= 0.25: {verdict('dashboard_vs_trivial')})")
    print(f"  dashboard p99 = {small['dashboard_p99_ms']:.1f} ms "
          f"(target < 100 ms: {verdict('dashboard_p99')})")
    if figures["large"]:
        print(f"  {figures['large']['administrations']:,} vs {small['administrations']:,} "
              f"administrations: {figures['large_slowdown']:.2f}x slower in requests/s, "
              f"p99 x{figures['large_p99_ratio']:.2f} "
              f"(target <= 1.3x: {verdict('large_slowdown')})")


if __name__ == "__main__":
    main()
