"""Benchmark: a mixed clinic day, 50 concurrent users on gunicorn (issue 9).

The clinic is bench/digest's (``build_clinic``): 20 supervisors, each supervising 5
therapists (100 therapists), 20 clients per therapist (2,000 clients, about 1,800 in
care) with 8 to 12 weekly sessions of PHQ-9, GAD-7 and the SRS-type alliance rating
already stored, signals and alerts rebuilt by the service, a few alerts acknowledged
with notes. On top of it: an admin, a read-only API token for every therapist, a
password for the therapists who sign in, and for every episode in care its next session
moved to the coming hours (one an hour per therapist) with its questionnaire link (the
clinic's pre-session battery: PHQ-9 then GAD-7), as the reminders job issues them.

gunicorn (``outcome serve``, 2 sync workers as ``make run`` starts it; ``--workers 2 4``
measures 4 as well) serves a copy of that database on loopback, and a thread pool of
``--users`` (50) threads, each acting as one user in a closed loop with no think time
(a user sends its next request as soon as the last one is answered), runs for a
warm-up and then ``--seconds`` (60) measured seconds:

- 60 % clients, each visit a fresh link through the real web form flow, as a client's
  browser does: ``GET /q/<token>`` (303), the PHQ-9 page, ``POST`` it with the page's
  CSRF token (303; stored with scores, signals and alerts), the GAD-7 page, ``POST``
  it, the thank-you page; 5 % answer item 9 (thoughts of self-harm) above 0 and are
  shown the support page after the PHQ-9, as the real flow does;
- 35 % therapists, each a different therapist of the clinic signed in once (before the
  clock starts) through the login form, then in turn their caseload ``/`` (every
  client in care must be listed) and one of their client pages ``/clients/<code>``;
- 5 % API reads, as an EHR sync does: ``GET /api/v1/clients/<code>/signals`` twice and
  ``GET /api/v1/alerts?status=open``, going round all therapists' read tokens (one token
  per therapist's system, as docs/api.md advises; each stays far below the per-token
  rate limit of 300 a minute).

Each user sends ``X-Forwarded-For`` with an address of its own and the server runs with
``OUTCOME_PROXY_HOPS=1``, as behind the clinic's reverse proxy: otherwise 17 staff
logins from 127.0.0.1 would meet the login limit per address (10 a minute). During the
measured seconds, ``--digest-at`` (5) seconds in, the weekly digests of all the clinic's
supervisors for last week are produced by ``outcome digest`` as a separate process
(the production path: claim, read, render, archive, queue the e-mail) and timed from
start to exit; the same command is timed once on an idle copy first, for comparison.

Latency is from sending a request to reading the whole response, on a new connection
each time (the sync workers close every connection after one response), so it includes
waiting in the listen queue. An error is an exception (timeout, reset) or any status
other than the one the flow expects: a redirect to the login page does not count as
success. Reported per kind of request and overall: count, p50/p95/p99/max latency,
errors and requests per second, overall and split into the requests sent while the
digest process ran and the others; also the CPU used by the server, by the load
generator (both share the machine's 2 cores) and by the whole machine, how long the
server waited for a free CPU, and the load average, since other work on the machine
moves these figures. Each of ``--rounds`` (2) starts from a fresh copy of the database.

Target (issue): p99 under 800 ms and errors under 0.1 % at 50 concurrent users. A
functional failure (the server or the digest failing, links running out) exits
non-zero; a missed target does not. Run: ``make bench`` or
``.venv/bin/python -m bench.clinic_day [--users 50] [--seconds 60] [--db sqlite]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import math
import os
import random
import re
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlencode

from bench.dashboard import copy_sqlite
from bench.dashboard import percentile
from bench.digest import build_clinic
from bench.digest import digest_week
from bench.forms import CSRF
from bench.forms import Browser
from bench.forms import free_port

SHARES = (("client", 0.60), ("therapist", 0.35), ("api", 0.05))
TIMEOUT = 30.0  # seconds a request may take before it counts as an error (gunicorn's own)
CODE = re.compile(r"C-W\d{5}")  # bench/digest's client codes
KINDS = ("client.open", "client.page", "client.submit", "client.support", "client.thanks",
         "therapist.caseload", "therapist.client", "api.signals", "api.alerts")
BAD_LOG_LINES = ("database is locked", "Traceback", "[ERROR]", "WORKER TIMEOUT")
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SECRET_KEY = secrets.token_urlsafe(40)  # one for the servers and the digest processes


def mix(users: int) -> dict[str, int]:
    """How many users of each kind: 60 % clients, 5 % API (at least one), the rest staff."""
    clients = round(SHARES[0][1] * users)
    api = max(1, math.ceil(SHARES[2][1] * users))
    return {"client": clients, "therapist": users - clients - api, "api": api}


# -- the clinic ------------------------------------------------------------------------


@dataclass
class Clinic:
    week: str
    password: str
    links: list[str]  # one unused link per episode in care
    staff: list[tuple[str, list[str]]]  # (e-mail, codes in care) of those who sign in
    tokens: list[tuple[str, list[str]]]  # (read token, codes in care), one per therapist
    shape: dict


def prepare(url: str, args, sign_ins: int) -> Clinic:
    """Build the clinic in the empty database at ``url`` (see the module docstring)."""
    from sqlalchemy import select

    from outcome.db import make_engine
    from outcome.db import make_session_factory
    from outcome.db import transaction
    from outcome.models import Appointment
    from outcome.models import Client
    from outcome.models import Clinic as ClinicRow
    from outcome.models import Episode
    from outcome.models import User
    from outcome.services import consent
    from outcome.services.api_tokens import create_token
    from outcome.services.links import issue_link
    from outcome.services.passwords import hash_password

    start = time.perf_counter()
    week, monday = digest_week(dt.datetime.now(dt.UTC).date())
    builder, shape = build_clinic(url, SimpleNamespace(
        supervisors=args.supervisors, therapists_per_supervisor=args.therapists_per_supervisor,
        clients_per_therapist=args.clients_per_therapist, ended=0.1), monday)
    engine = make_engine(url)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=5)
    password = secrets.token_urlsafe(16)
    links, staff, tokens = [], [], []
    with transaction(make_session_factory(engine)) as session:
        clinic = session.scalars(select(ClinicRow)).one()
        admin = User(clinic_id=clinic.id, email="admin@bench.example.org",
                     display_name="Bench Admin", is_admin=True)
        session.add(admin)
        session.flush()
        therapists = session.scalars(select(User).where(User.is_therapist)
                                     .order_by(User.id)).all()
        if len(therapists) < sign_ins:
            raise RuntimeError(f"{sign_ins} therapists sign in but the clinic has "
                               f"{len(therapists)}")
        in_care: dict[int, list[str]] = {t.id: [] for t in therapists}
        episodes = session.scalars(select(Episode).where(Episode.closed_on.is_(None))
                                   .order_by(Episode.id)).all()
        codes = dict(session.execute(select(Client.id, Client.code)).all())
        hashed = hash_password(password)
        for therapist in therapists[:sign_ins]:
            therapist.password_hash = hashed
        for therapist in therapists:
            _row, secret = create_token(session, user=therapist,
                                        name=f"EHR sync for {therapist.email}",
                                        scopes=["read"], created_by=therapist, now=now)
            tokens.append((secret, in_care[therapist.id]))
        booked = {a.episode_id: a for a in session.scalars(
            select(Appointment).where(Appointment.status == "scheduled"))}
        hour = now.replace(minute=0, second=0)
        for episode in episodes:
            caseload = in_care[episode.therapist_id]
            caseload.append(codes[episode.client_id])
            # The next session moves to the coming hours (one an hour per therapist), so
            # that its link is open now, as the reminders job issues them.
            appointment = booked[episode.id]
            appointment.starts_dt = hour + dt.timedelta(hours=len(caseload))
            # The client agreed to the consent text at an earlier visit (in their own
            # language), so the link opens on the questionnaire; the check still runs.
            person = session.get_one(Client, episode.client_id)
            if consent.needs_asking(session, person):
                consent.record_decision(
                    session, client=person, decision="agreed", channel="link", now=now,
                    text=consent.current_text(session, clinic, person.locale, now))
            link, token = issue_link(session, episode=episode, purpose="pre", now=now,
                                     library=builder.library, appointment=appointment)
            if link.battery != ["phq9", "gad7"]:
                raise RuntimeError(f"the links ask for {link.battery}, not PHQ-9 and GAD-7")
            links.append(token)
        staff = [(t.email, in_care[t.id]) for t in therapists[:sign_ins]]
    engine.dispose()
    shape = {k: v for k, v in shape.items() if k != "by_supervisor"}
    shape.update(links=len(links), tokens=len(tokens),
                 prepared_s=round(time.perf_counter() - start, 1))
    return Clinic(week, password, links, staff, tokens, shape)


class Databases:
    """The built clinic, and fresh copies of it, one per round (SQLite or PostgreSQL)."""

    def __init__(self, db: str, folder: Path, postgres_url: str) -> None:
        self.db, self.folder, self.copies = db, folder, 0
        if db == "sqlite":
            self.url = f"sqlite:///{folder / 'clinic.sqlite3'}"
        else:
            from sqlalchemy.engine import make_url

            self.server = make_url(postgres_url)
            self.prefix = f"outcome_clinic_day_{os.getpid()}"
            self.created: list[str] = []
            self.url = self._create(f"{self.prefix}_template", None)

    def copy(self) -> str:
        """A fresh copy of the clinic as built: its URL."""
        self.copies += 1
        if self.db == "sqlite":
            target = self.folder / f"copy{self.copies}.sqlite3"
            copy_sqlite(self.folder / "clinic.sqlite3", target)
            return f"sqlite:///{target}"
        return self._create(f"{self.prefix}_{self.copies}", f"{self.prefix}_template")

    def _create(self, name: str, template: str | None) -> str:
        self._admin(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template
                                                   else ""))
        self.created.append(name)
        return self.server.set(database=name).render_as_string(hide_password=False)

    def _admin(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(host=self.server.host, port=self.server.port or 5432,
                             user=self.server.username, password=self.server.password,
                             dbname=self.server.database, autocommit=True) as conn:
            conn.execute(statement)

    def drop(self) -> None:
        if self.db == "postgresql":
            for name in reversed(self.created):
                self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- the server and its users ----------------------------------------------------------


def serve(url: str, folder: Path, port: int, workers: int) -> tuple[subprocess.Popen, Path]:
    """``outcome serve`` behind one (pretended) proxy; the process and its error log.

    bench.dashboard.start_server always starts 2 workers and discards the log.
    """
    log = folder / f"server-{port}.log"
    env = {**environment(url, folder), "OUTCOME_PROXY_HOPS": "1"}
    outcome = str(Path(sys.executable).parent / "outcome")
    with log.open("wb") as err:
        server = subprocess.Popen([outcome, "serve", "--port", str(port), "--workers",
                                   str(workers)], env=env, stdout=subprocess.DEVNULL,
                                  stderr=err)
    for _ in range(300):
        try:
            if Browser(port).request("GET", "/healthz")[0] == 200:
                return server, log
        except OSError:
            if server.poll() is not None:
                break
            time.sleep(0.1)
    server.terminate()
    raise RuntimeError(f"the server did not start: {log.read_text()[-2000:]}")


def environment(url: str, folder: Path) -> dict[str, str]:
    return {**os.environ, "OUTCOME_DATABASE_URL": url, "OUTCOME_INSTANCE_PATH": str(folder),
            "OUTCOME_SECRET_KEY": SECRET_KEY, "OUTCOME_LOG_LEVEL": "WARNING"}


class Connection(http.client.HTTPConnection):
    """A loopback connection that adds headers of its own to every request."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        super().__init__("127.0.0.1", port, timeout=TIMEOUT)
        self.extra = headers

    def request(self, method, url, body=None, headers=None, **kwargs):
        super().request(method, url, body=body, headers={**self.extra, **(headers or {})},
                        **kwargs)


def browser(port: int, address: str, **headers: str) -> Browser:
    """bench.forms' Browser (cookies), seen by the server as coming from ``address``."""
    b = Browser(port)
    b.conn = Connection(port, {"X-Forwarded-For": address, **headers})
    return b


def sign_in(port: int, address: str, email: str, password: str) -> dict[str, str]:
    """Sign in through the login form (CSRF token and all); the session cookie."""
    b = browser(port, address)
    _, page = b.request("GET", "/login")
    token = CSRF.search(page)
    if token is None:
        raise RuntimeError("no CSRF token on the login page")
    status, _ = b.request("POST", "/login", urlencode(
        {"csrf_token": token.group(1), "email": email, "password": password}))
    b.conn.close()
    if status != 302:
        raise RuntimeError(f"login of {email} failed with HTTP {status}")
    return b.cookies


class Stop(Exception):
    """The measured time is over."""


@dataclass
class Window:
    start: float  # perf_counter: requests sent from here on are counted...
    stop: float  # ...until here, when users stop sending


class Links:
    """The unused links, handed out once each."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens, self.lock, self.ran_out = list(reversed(tokens)), threading.Lock(), False

    def take(self) -> str | None:
        with self.lock:
            if self.tokens:
                return self.tokens.pop()
            self.ran_out = True
            return None


@dataclass
class User:
    kind: str
    number: int
    port: int
    window: Window
    records: list[tuple[str, float, float, str | None]] = field(default_factory=list)
    visits: int = 0  # whole client visits, both questionnaires stored

    @property
    def address(self) -> str:
        return f"10.20.{self.number // 250}.{self.number % 250 + 1}"

    def call(self, b: Browser, kind: str, method: str, path: str, expect: int,
             body: str | None = None, check=None) -> str | None:
        """One request, timed and recorded; its body, or None when it failed."""
        if time.perf_counter() >= self.window.stop:
            raise Stop
        start = time.perf_counter()
        try:
            status, text = b.request(method, path, body)
        except (OSError, http.client.HTTPException) as exc:
            self.records.append((kind, start, time.perf_counter() - start,
                                 type(exc).__name__))
            b.conn.close()  # the next request opens a new connection
            return None
        elapsed = time.perf_counter() - start
        problem = f"HTTP {status}" if status != expect else (check(text) if check else None)
        self.records.append((kind, start, elapsed, problem))
        return None if problem else text

    def run(self, act) -> None:
        try:
            while time.perf_counter() < self.window.stop:
                if act() is False:
                    return
        except Stop:
            return


def client_user(user: User, links: Links, rng: random.Random):
    """A visit: open a fresh link, answer PHQ-9 and GAD-7 page by page, see the thanks."""
    def page_of(instrument: str):
        def check(text: str) -> str | None:
            if f'name="instrument" value="{instrument}"' not in text or not CSRF.search(text):
                return f"not the {instrument} page"
            return None
        return check

    def visit() -> bool:
        token = links.take()
        if token is None:
            return False  # reported: the clinic needs more links for this load
        b = browser(user.port, user.address)
        try:
            if user.call(b, "client.open", "GET", f"/q/{token}", 303) is None:
                return True
            level = rng.choice((0, 1, 1, 2, 2, 3))
            critical = rng.random() < 0.05
            for instrument, items in (("phq9", 9), ("gad7", 7)):
                page = user.call(b, "client.page", "GET", "/q/", 200, check=page_of(instrument))
                if page is None:
                    return True
                answers = {f"{instrument}_{i}": str(min(3, max(0, level + rng.choice(
                    (-1, 0, 0, 1))))) for i in range(1, items + 1)}
                if instrument == "phq9":
                    answers["phq9_9"] = str(rng.choice((1, 2)) if critical else 0)
                form = {"csrf_token": CSRF.search(page).group(1), "instrument": instrument,
                        **answers}
                if user.call(b, "client.submit", "POST", "/q/", 303, urlencode(form)) is None:
                    return True
                if instrument == "phq9" and critical and user.call(
                        b, "client.support", "GET", "/q/support", 200) is None:
                    return True
            if user.call(b, "client.thanks", "GET", "/q/", 200, check=lambda t: None
                         if "Thank you" in t else "not the thank-you page") is not None:
                user.visits += 1
            return True
        finally:
            b.conn.close()

    return visit


def therapist_user(user: User, cookies: dict[str, str], codes: list[str],
                   rng: random.Random):
    """The caseload (all clients in care listed), then one client's page; again."""
    b = browser(user.port, user.address)
    b.cookies = dict(cookies)
    expected = set(codes)

    def caseload(text: str) -> str | None:
        found = set(CODE.findall(text))
        return None if expected <= found else f"{len(expected - found)} clients not listed"

    def step() -> bool:
        user.call(b, "therapist.caseload", "GET", "/", 200, check=caseload)
        code = rng.choice(codes)
        user.call(b, "therapist.client", "GET", f"/clients/{code}", 200,
                  check=lambda t: None if code in t else "not the client's page")
        return True

    return step


def api_user(user: User, tokens: list[tuple[str, list[str]]], rng: random.Random):
    """An EHR sync: each therapist's token in turn, two clients' signals and the alerts."""
    turn = iter(range(user.number, 10**9))

    def step() -> bool:
        secret, codes = tokens[next(turn) % len(tokens)]
        b = browser(user.port, user.address, Authorization=f"Bearer {secret}")
        try:
            for code in rng.sample(codes, min(2, len(codes))):
                user.call(b, "api.signals", "GET", f"/api/v1/clients/{code}/signals", 200)
            user.call(b, "api.alerts", "GET", "/api/v1/alerts?status=open", 200)
        finally:
            b.conn.close()
        return True

    return step


# -- measuring -------------------------------------------------------------------------


def scheduled(pid: int) -> tuple[float, float]:
    """Seconds on a CPU and seconds runnable but waiting for one (``/proc/*/schedstat``),
    of a process and its children: gunicorn's master and workers."""
    on_cpu = waiting = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            if int(entry.name) != pid and int(stat.rsplit(")", 1)[1].split()[1]) != pid:
                continue  # the parent's pid is the second field after the command name
            for task in (entry / "task").iterdir():
                ran, waited, _slices = (task / "schedstat").read_text().split()
                on_cpu, waiting = on_cpu + int(ran) / 1e9, waiting + int(waited) / 1e9
        except (OSError, ValueError, IndexError):
            continue  # a process that ended meanwhile
    return on_cpu, waiting


def machine_busy() -> tuple[float, float]:
    """Busy and total CPU seconds of the whole machine so far (``/proc/stat``)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle and iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(ticks) - idle) / tick, sum(ticks) / tick


class Digest(threading.Thread):
    """``outcome digest --week ...`` as its own process: wall and CPU seconds, output."""

    def __init__(self, url: str, folder: Path, week: str) -> None:
        super().__init__(daemon=True)
        self.command = [str(Path(sys.executable).parent / "outcome"), "digest", "--week", week]
        self.env = environment(url, folder)
        self.started = self.ended = 0.0
        self.cpu_s, self.output, self.returncode = 0.0, "", None

    def run(self) -> None:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.started = time.perf_counter()
        try:
            done = subprocess.run(self.command, env=self.env, capture_output=True, text=True,
                                  timeout=900, check=False)
            self.output, self.returncode = done.stdout + done.stderr[-2000:], done.returncode
        except subprocess.TimeoutExpired:
            self.output = "timed out after 900 s"
        self.ended = time.perf_counter()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

    def result(self, supervisors: int, origin: float = 0.0) -> dict:
        """The figures; ``failed`` says why not every supervisor's digest was produced."""
        produced = re.search(r"(\d+) produced and queued", self.output)
        count = int(produced.group(1)) if produced else 0
        failed = (None if self.returncode == 0 and count == supervisors else
                  f"exit status {self.returncode}, {count} of {supervisors} produced: "
                  f"{self.output.strip()[-600:]}")
        return {"digests": count, "failed": failed,
                "wall_s": round(self.ended - self.started, 2), "cpu_s": round(self.cpu_s, 2),
                "started_at_s": round(self.started - origin, 1),
                "ended_at_s": round(self.ended - origin, 1)}


def run_round(clinic: Clinic, url: str, folder: Path, workers: int, args) -> dict:
    counts = mix(args.users)
    port = free_port()
    server, log = serve(url, folder, port, workers)
    users: list[User] = []
    try:
        links = Links(clinic.links)
        rng = random.Random(args.seed)
        window = Window(0.0, 0.0)  # set when the users are ready (staff signed in)
        acts = []
        for kind in ("client", "therapist", "api"):
            for n in range(counts[kind]):
                user = User(kind, len(users), port, window)
                own = random.Random(rng.random())
                if kind == "client":
                    act = client_user(user, links, own)
                elif kind == "therapist":  # signed in from the address it then uses
                    email, codes = clinic.staff[n]
                    act = therapist_user(user, sign_in(port, user.address, email,
                                                       clinic.password), codes, own)
                else:
                    act = api_user(user, clinic.tokens, own)
                users.append(user)
                acts.append(act)
        threads = [threading.Thread(target=u.run, args=(a,), daemon=True)
                   for u, a in zip(users, acts, strict=True)]
        begin = time.perf_counter()
        window.start, window.stop = begin + args.warmup, begin + args.warmup + args.seconds
        load_before = os.getloadavg()
        for t in threads:
            t.start()
        time.sleep(max(0.0, window.start - time.perf_counter()))
        server_before, own_cpu = scheduled(server.pid), time.process_time()
        busy_before = machine_busy()
        time.sleep(max(0.0, window.start + args.digest_at - time.perf_counter()))
        digest = Digest(url, folder, clinic.week)
        digest.start()
        time.sleep(max(0.0, window.stop - time.perf_counter()))
        server_cpu, server_wait = (b - a for a, b in zip(server_before, scheduled(server.pid),
                                                          strict=True))
        own_cpu = time.process_time() - own_cpu
        busy, total = (b - a for a, b in zip(busy_before, machine_busy(), strict=True))
        load_after = os.getloadavg()
        for t in threads:
            t.join(TIMEOUT + 10)
        digest.join(900)
        digest_figures = digest.result(clinic.shape["supervisors"], window.start)
    finally:
        server.terminate()
        server.wait(timeout=30)
    if links.ran_out:
        raise RuntimeError(f"all {len(clinic.links)} links were used before the time was "
                           "up: build a larger clinic (--clients-per-therapist)")
    logged = log.read_text(errors="replace")
    digesting = max(0.001, min(digest.ended, window.stop) - max(digest.started, window.start))
    records = [r for u in users for r in u.records if window.start <= r[1] < window.stop]
    return {"workers": workers, "users": counts, "seconds": args.seconds,
            "kinds": summarise(records, args.seconds),
            "overall": summarise(records, args.seconds, overall=True),
            # Requests sent while the digest process ran, and the others.
            "during_digest": summarise([r for r in records if digest.started <= r[1]
                                        < digest.ended], digesting, overall=True),
            "outside_digest": summarise([r for r in records if not digest.started <= r[1]
                                         < digest.ended], args.seconds - digesting,
                                        overall=True),
            "visits": sum(u.visits for u in users),
            "failures": dict(Counter(f"{kind}: {problem}" for kind, _, _, problem in records
                                     if problem).most_common(8)),
            "digest": digest_figures,
            "server_cpu_cores": round(server_cpu / args.seconds, 2),
            "server_waiting_for_cpu": round(server_wait / args.seconds, 2),
            "load_generator_cpu_cores": round(own_cpu / args.seconds, 2),
            "machine_busy_cores": round(busy / total * (os.cpu_count() or 1), 2),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in load_after],
            "server_log": {line: logged.count(line) for line in BAD_LOG_LINES}}


def summarise(records, seconds: float, overall: bool = False) -> dict:
    groups: dict[str, list] = {}
    for kind, _start, elapsed, problem in records:
        groups.setdefault("all" if overall else kind, []).append((elapsed, problem))
    out = {}
    for kind in ("all",) if overall else [k for k in KINDS if k in groups]:
        rows = groups.get(kind, [])
        times = sorted(elapsed for elapsed, _ in rows)
        errors = sum(problem is not None for _, problem in rows)
        out[kind] = {"count": len(rows), "rps": round(len(rows) / seconds, 1),
                     "errors": errors,
                     "error_pct": round(100 * errors / len(rows), 3) if rows else 0.0,
                     **{f"p{q}_ms": round(1000 * percentile(times, q / 100), 1) if times
                        else None for q in (50, 95, 99)},
                     "max_ms": round(1000 * times[-1], 1) if times else None}
    return out["all"] if overall else out


def meets(run: dict) -> bool:
    return run["overall"]["p99_ms"] < 800 and run["overall"]["error_pct"] < 0.1


# -- the command -----------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0, help="measured, per round")
    parser.add_argument("--warmup", type=float, default=5.0, help="load before measuring")
    parser.add_argument("--digest-at", type=float, default=5.0,
                        help="seconds into the measured time when the digest run starts")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--postgres-url",
                        default=os.environ.get("OUTCOME_TEST_POSTGRES_URL", DEFAULT_POSTGRES),
                        help="with --db postgresql: a server where this user may create "
                        "databases (the benchmark's own, dropped afterwards)")
    parser.add_argument("--workers", type=int, nargs="+", default=[2],
                        help="gunicorn workers; several values are measured in turn")
    parser.add_argument("--rounds", type=int, default=2, help="per number of workers")
    parser.add_argument("--supervisors", type=int, default=20)
    parser.add_argument("--therapists-per-supervisor", type=int, default=5)
    parser.add_argument("--clients-per-therapist", type=int, default=20)
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary folder (and PostgreSQL databases)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    counts = mix(args.users)
    if (args.users < 3 or counts["client"] < 1 or counts["therapist"] < 1 or args.rounds < 1
            or args.seconds <= 0 or not 0 <= args.digest_at < args.seconds):
        parser.error("need --users >= 3, --rounds >= 1, --seconds > 0 and --digest-at "
                     "within the measured seconds")

    folder = Path(tempfile.mkdtemp(prefix="outcome-bench-"))
    databases = Databases(args.db, folder, args.postgres_url)
    runs = []
    try:
        clinic = prepare(databases.url, args, counts["therapist"])
        # The digest alone on an idle copy: what the load adds to it.
        alone = Digest(databases.copy(), folder, clinic.week)
        alone.run()
        digest_alone = alone.result(clinic.shape["supervisors"], alone.started)
        if digest_alone["failed"]:
            raise RuntimeError(f"the digest run failed on an idle copy: "
                               f"{digest_alone['failed']}")
        for workers in args.workers:
            for _ in range(args.rounds):
                runs.append(run_round(clinic, databases.copy(), folder, workers, args))
                if not args.json:
                    print(f"  round {len(runs)} done ({workers} workers)", file=sys.stderr)
    finally:
        if args.keep:
            print(f"kept {folder}", file=sys.stderr)
        else:
            databases.drop()
            shutil.rmtree(folder, ignore_errors=True)
    figures = {"backend": args.db, "clinic": clinic.shape, "week": clinic.week,
               "users": counts, "seconds": args.seconds, "warmup": args.warmup,
               "digest_alone": digest_alone, "runs": runs,
               "targets_met": [meets(run) for run in runs]}
    if args.json:
        print(json.dumps(figures))
    else:
        report(figures)
    if any(run["digest"]["failed"] for run in runs):
        sys.exit("the digest run failed under load (see above)")


def report(figures: dict) -> None:
    shape, users = figures["clinic"], figures["users"]
    print(f"mixed clinic day on {figures['backend']}: {shape['supervisors']} supervisors, "
          f"{shape['therapists']} therapists, {shape['clients']:,} clients, "
          f"{shape['administrations']:,} administrations (built in {shape['prepared_s']} s)")
    print(f"  {sum(users.values())} users in a closed loop, no think time: {users['client']} "
          f"clients (web form flow, PHQ-9 + GAD-7), {users['therapist']} therapists "
          f"(caseload, client page), {users['api']} API readers (token per therapist); "
          f"{figures['seconds']:g} s measured after {figures['warmup']:g} s warm-up")
    alone = figures["digest_alone"]
    print(f"  digest alone (idle copy): {alone['digests']} digests in {alone['wall_s']} s "
          f"(CPU {alone['cpu_s']} s)")
    for n, run in enumerate(figures["runs"], 1):
        print()
        print(f"round {n}: gunicorn {run['workers']} workers; load average before "
              f"{run['load_average_before'][0]:.2f} (5 min {run['load_average_before'][1]:.2f}),"
              f" after {run['load_average_after'][0]:.2f}")
        print(f"  {'request':20}{'count':>8}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}"
              f"{'p99 ms':>9}{'max ms':>9}{'errors':>8}{'err %':>8}")
        rows = [*run["kinds"].items(), ("overall", run["overall"]),
                ("  while digesting", run["during_digest"]),
                ("  the rest", run["outside_digest"])]
        for kind, s in rows:
            if not s["count"]:
                continue
            print(f"  {kind:20}{s['count']:>8}{s['rps']:>8.1f}{s['p50_ms']:>9.1f}"
                  f"{s['p95_ms']:>9.1f}{s['p99_ms']:>9.1f}{s['max_ms']:>9.1f}"
                  f"{s['errors']:>8}{s['error_pct']:>8.3f}")
        d = run["digest"]
        if d["failed"]:
            print(f"  DIGEST RUN FAILED: {d['failed']}")
        print(f"  client visits completed: {run['visits']} ({run['visits'] / run['seconds']:.1f}"
              f"/s); digest run: {d['digests']} digests in {d['wall_s']} s (CPU {d['cpu_s']} "
              f"s), from {d['started_at_s']} s to {d['ended_at_s']} s of the measured time")
        print(f"  CPU cores used: server {run['server_cpu_cores']} (its processes waited "
              f"{run['server_waiting_for_cpu']} s a second for a free CPU), load generator "
              f"{run['load_generator_cpu_cores']}; the whole machine "
              f"{run['machine_busy_cores']} of {os.cpu_count()}")
        if run["failures"]:
            print(f"  failures: {run['failures']}")
        bad = {k: v for k, v in run["server_log"].items() if v}
        if bad:
            print(f"  server log: {bad}")
    print()
    for n, run in enumerate(figures["runs"], 1):
        o = run["overall"]
        print(f"summary round {n}: {sum(users.values())} users, {run['workers']} workers, "
              f"{figures['backend']}: {o['rps']:.1f} requests/s, p99 {o['p99_ms']:.0f} ms, "
              f"errors {o['error_pct']:.3f} %, digest {run['digest']['wall_s']} s (alone "
              f"{alone['wall_s']} s), load {run['load_average_before'][0]:.2f} -> target "
              f"p99 < 800 ms and errors < 0.1 %: {'met' if meets(run) else 'MISSED'}")


if __name__ == "__main__":
    main()
