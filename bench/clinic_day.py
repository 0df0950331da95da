"""Benchmark: a mixed clinic day on gunicorn, with the digest run meanwhile (issues 9, 21).

The clinic is bench/digest's (``build_clinic``): 20 supervisors, each supervising 5
therapists (100 therapists), 20 clients per therapist (2,000 clients, about 1,800 in
care) with 8 to 12 weekly sessions of PHQ-9, GAD-7 and the SRS-type alliance rating
already stored, signals and alerts rebuilt by the service, a few alerts acknowledged
with notes. On top of it: an admin, a read-only API token for every therapist, a
password for the therapists who sign in, and for every episode in care its next session
moved to the coming hours (one an hour per therapist) with its questionnaire link (the
clinic's pre-session battery: PHQ-9 then GAD-7), as the reminders job issues them.

Each measured configuration starts ``outcome serve`` (``--workers`` 2 of 8 threads, as
``make run`` starts it) on a fresh copy of that database, on loopback, behind one
pretended proxy (``OUTCOME_PROXY_HOPS=1``: every user sends ``X-Forwarded-For`` with an
address of its own, so 70 staff sign-ins from 127.0.0.1 do not meet the login limit per
address, nor many visits the link limit). The therapists who take part sign in through
the login form before the clock starts (timed apart, "sign-ins"). ``--digest-at`` seconds
into the measured time, the weekly digests of all the clinic's supervisors for last week
are produced by ``outcome digest`` as a separate process (the production path: claim,
read, render, archive, queue the e-mail), and the measured time lasts at least until it
has ended; the same command is timed once on an idle copy first, for comparison.

The users, and the kinds of request reported:

- clients, each visit a fresh link through the real web form flow, as a client's browser
  does: ``client.open`` (``GET /q/<token>``, 303), ``client.page`` (the PHQ-9 page),
  ``client.submit`` (``POST`` it with the page's CSRF token, 303; stored with scores,
  signals and alerts), the GAD-7 page and its submission, ``client.thanks``; 5 % answer
  item 9 (thoughts of self-harm) above 0 and see ``client.support`` after the PHQ-9;
- therapists, signed in, in turn their caseload ``therapist.caseload`` (``/``; every
  client in care must be listed) and one of their clients' records ``therapist.client``
  (``/clients/<code>``);
- API readers, as an EHR sync does: ``api.signals`` (``GET
  /api/v1/clients/<code>/signals``) twice and ``api.alerts`` (``/api/v1/alerts?status=
  open``), going round all therapists' read tokens (one per therapist's system).

Three load models (``--model``; ``make bench`` runs think and stress on both backends):

think (realistic, closed loop with think time): ``--users`` (50 and 200) threads, 60 %
    clients, 35 % therapists, 5 % API readers (at least one). A client pauses uniformly
    ``--client-think`` (5 to 20 s) before opening a link and before each submission
    (reading and answering the page), then the next visit is another client's; a
    therapist pauses ``--therapist-think`` (10 to 30 s) before each view; an API reader
    ``--api-think`` (10 to 30 s) before each sync. Pauses are seeded. Since every user's
    first action follows a pause, starts are spread over the first think time: the
    ``--warmup`` (20 s) covers it. The measured time is long enough to expect
    ``--requests`` (1,000) requests (at least ``--min-seconds``, 60): about 160 s at 50
    users (6.1 requests/s expected), 60 s at 200 (25 requests/s), so a p99 rests on at
    least 10 requests above it overall.
stress (open loop, the capacity): requests arrive at a fixed rate, Poisson
    (``--arrivals``; ``even``: evenly spaced), whatever the responses, so queueing shows
    in latency instead of slowing the generator; latency is counted from the request's
    scheduled time (its lateness to be sent included: no coordinated omission). Each
    arrival is the next request of a flow of the kind drawn with the think model's
    request shares at 50 users (clients 79 %, therapists 14 %, API 7 %): a client visit
    waiting for its next page (oldest first), or else a new visit (new link and address);
    a therapist flow (the signed-in therapists' sessions in turn), an API sync. Pauses
    are skipped. Steps of ``--step-seconds`` (20, or longer to expect ``--step-requests``,
    500, at the step's rate; after ``--step-warmup`` 3 s, each on a fresh copy with the
    digest during it) from ``--rate-start`` (10/s), times
    ``--rate-factor`` (1.5) until a step fails (p99 >= 800 ms or errors >= 0.1 %) or
    ``--rate-max``, then ``--bisect`` (2) halvings between the last passing and the
    first failing rate (a step that uses up the clinic's links fails too). Reported: the
    highest passing rate. A pool of ``--stress-threads``
    (256) sends the requests; keep-alive connections are reused (gunicorn's gthread
    workers keep them 2 s; the generator drops them after 1.5 s idle, and retries once,
    counted, a request whose reused connection the server had closed).
closed (issue 9's model, kept for comparison): the think model with no pauses, so the
    users queue at the server and p50 says little about the code.

Every request is timed from sending it (stress: from its scheduled time) to reading the
whole response. An error is an exception (timeout after 30 s, reset) or a status other
than the one the flow expects (a redirect to the login page does not count as success).
Reported per configuration, per kind and overall: count, requests/s, p50/p95/p99/max,
errors, split also into the requests sent while the digest ran and the others; the CPU
used by the server, by this load generator (it shares the machine's cores with the
server; stress also reports how late it sent requests) and by the whole machine, how
long the server waited for a free CPU, the load average, keep-alive reuse, and the
server log's bad lines. A functional failure (the server or the digest failing, links
running out) exits non-zero; a missed target does not. Targets (issue 21): p99 < 800 ms
and errors < 0.1 %. Run: ``make bench``, or ``.venv/bin/python -m bench.clinic_day
[--model think stress] [--users 50 200] [--db sqlite postgresql] [--json]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import itertools
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
from collections import deque
from collections.abc import Callable
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
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
IDLE = 1.5  # seconds a kept-alive connection may idle (gunicorn's keepalive: 2)
CODE = re.compile(r"C-W\d{5}")  # bench/digest's client codes
KINDS = ("client.open", "client.page", "client.submit", "client.support", "client.thanks",
         "therapist.caseload", "therapist.client", "api.signals", "api.alerts")
VISIT_REQUESTS = 6.05  # a client visit's requests: 6, and the support page for 5 %
BAD_LOG_LINES = ("database is locked", "Traceback", "[ERROR]", "WORKER TIMEOUT")
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SECRET_KEY = secrets.token_urlsafe(40)  # one for the servers and the digest processes
TARGET_P99_MS, TARGET_ERROR_PCT = 800.0, 0.1


def mix(users: int) -> dict[str, int]:
    """How many users of each kind: 60 % clients, 5 % API (at least one), the rest staff."""
    clients = round(SHARES[0][1] * users)
    api = max(1, math.ceil(SHARES[2][1] * users))
    return {"client": clients, "therapist": users - clients - api, "api": api}


def expected_rates(counts: dict[str, int], args) -> dict[str, float]:
    """Requests a second each kind of user sends in the think model (pauses only; the
    responses' own time makes it a little less)."""
    def mean(pair):
        return max(1e-3, sum(pair) / 2)
    return {"client": counts["client"] * VISIT_REQUESTS / (3 * mean(args.client_think)),
            "therapist": counts["therapist"] / mean(args.therapist_think),
            "api": counts["api"] * 3 / mean(args.api_think)}


def net_address(n: int) -> str:
    """The n-th user's (or visit's) own network address, as the proxy reports it."""
    return f"10.{20 + n // 62_500}.{n // 250 % 250}.{n % 250 + 1}"


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
        sign_ins = min(sign_ins, len(therapists))  # the think model checks it has enough
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



# -- requests, flows and the connection pool -------------------------------------------


@dataclass
class Agent:
    """A browser or an API client: its address (and token), and its cookies."""
    headers: dict[str, str]
    cookies: dict[str, str] = field(default_factory=dict)


@dataclass
class Req:
    agent: Agent
    kind: str
    method: str
    path: str
    expect: int
    body: str | None = None
    check: Callable[[str], str | None] | None = None


@dataclass
class Pause:
    seconds: float


Flow = Generator["Req | Pause", "str | None", bool]  # sent: the body, or None if it failed


class Pool:
    """Kept-alive loopback connections, shared by all users (requests carry their own
    cookies and headers); a connection idle for IDLE seconds is not reused."""

    def __init__(self, port: int) -> None:
        self.port, self.lock = port, threading.Lock()
        self.idle: deque[tuple[http.client.HTTPConnection, float]] = deque()
        self.opened = self.reused = self.retried = 0

    def _get(self) -> tuple[http.client.HTTPConnection, bool]:
        now = time.monotonic()
        with self.lock:
            while self.idle:
                conn, used = self.idle.pop()  # the most recently used
                if now - used < IDLE:
                    self.reused += 1
                    return conn, True
                conn.close()
            self.opened += 1
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT), False

    def send(self, method: str, path: str, body: str | None,
             headers: dict[str, str]) -> tuple[int, list[str], str]:
        for attempt in (0, 1):
            conn, reused = self._get()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read().decode()
            except Exception as exc:
                conn.close()
                if reused and attempt == 0 and isinstance(exc, (
                        http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
                    with self.lock:  # the server had closed it: once more on a new one
                        self.retried += 1
                    continue
                raise
            if response.will_close:
                conn.close()
            else:
                with self.lock:
                    self.idle.append((conn, time.monotonic()))
            return response.status, response.msg.get_all("Set-Cookie") or [], data
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self.lock:
            for conn, _ in self.idle:
                conn.close()
            self.idle.clear()

    def figures(self) -> dict:
        return {"connections_opened": self.opened, "connections_reused": self.reused,
                "retried_on_closed_connection": self.retried}


def perform(pool: Pool, req: Req) -> tuple[str | None, str | None]:
    """Send ``req``: (problem, body); problem is None when it went as the flow expects."""
    headers = dict(req.agent.headers)
    if req.agent.cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in req.agent.cookies.items() if v)
    if req.body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        status, cookies, text = pool.send(req.method, req.path, req.body, headers)
    except (OSError, http.client.HTTPException) as exc:
        return type(exc).__name__, None
    for header in cookies:
        name, _, rest = header.partition("=")
        req.agent.cookies[name] = rest.split(";", 1)[0]
    problem = f"HTTP {status}" if status != req.expect else (
        req.check(text) if req.check else None)
    return problem, None if problem else text


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


class Tally:
    """Whole client visits completed, and the next visit's own address."""

    def __init__(self) -> None:
        self.visits, self.lock = 0, threading.Lock()

    def visited(self) -> None:
        with self.lock:
            self.visits += 1


VISIT_ADDRESSES = itertools.count(100_000)  # every visit from an address of its own


def client_visit(links: Links, rng: random.Random, think: tuple[float, float],
                 tally: Tally) -> Flow:
    """A visit: open a fresh link, answer PHQ-9 and GAD-7 page by page (a pause before
    each submission), see the thanks. False when a link was missing or a request failed."""
    def page_of(instrument: str):
        def check(text: str) -> str | None:
            if f'name="instrument" value="{instrument}"' not in text or not CSRF.search(text):
                return f"not the {instrument} page"
            return None
        return check

    token = links.take()
    if token is None:
        return False  # reported: the clinic needs more links for this load
    me = Agent({"X-Forwarded-For": net_address(next(VISIT_ADDRESSES))})
    if (yield Req(me, "client.open", "GET", f"/q/{token}", 303)) is None:
        return False
    level = rng.choice((0, 1, 1, 2, 2, 3))
    critical = rng.random() < 0.05
    for instrument, items in (("phq9", 9), ("gad7", 7)):
        page = yield Req(me, "client.page", "GET", "/q/", 200, check=page_of(instrument))
        if page is None:
            return False
        answers = {f"{instrument}_{i}": str(min(3, max(0, level + rng.choice((-1, 0, 0, 1)))))
                   for i in range(1, items + 1)}
        if instrument == "phq9":
            answers["phq9_9"] = str(rng.choice((1, 2)) if critical else 0)
        form = {"csrf_token": CSRF.search(page).group(1),  # type: ignore[union-attr]
                "instrument": instrument, **answers}
        yield Pause(rng.uniform(*think))  # reads and answers the page
        if (yield Req(me, "client.submit", "POST", "/q/", 303, urlencode(form))) is None:
            return False
        if instrument == "phq9" and critical and (
                yield Req(me, "client.support", "GET", "/q/support", 200)) is None:
            return False
    if (yield Req(me, "client.thanks", "GET", "/q/", 200, check=lambda t: None
                  if "Thank you" in t else "not the thank-you page")) is None:
        return False
    tally.visited()
    return True


def client_user(links: Links, rng: random.Random, think: tuple[float, float],
                tally: Tally) -> Flow:
    """Think model: a pause (the next client arrives), a visit; again."""
    while True:
        yield Pause(rng.uniform(*think))
        yield from client_visit(links, rng, think, tally)
        if links.ran_out:
            return False


def therapist_user(agent: Agent, codes: list[str], rng: random.Random,
                   think: tuple[float, float]) -> Flow:
    """The caseload (all clients in care listed), then one client's record; again, with a
    pause before each view."""
    expected = set(codes)

    def caseload(text: str) -> str | None:
        found = set(CODE.findall(text))
        return None if expected <= found else f"{len(expected - found)} clients not listed"

    while True:
        yield Pause(rng.uniform(*think))
        yield Req(agent, "therapist.caseload", "GET", "/", 200, check=caseload)
        yield Pause(rng.uniform(*think))
        code = rng.choice(codes)
        yield Req(agent, "therapist.client", "GET", f"/clients/{code}", 200,
                  check=lambda t, code=code: None if code in t else "not the client's page")


def api_sync(agent: Agent, codes: list[str], rng: random.Random) -> Flow:
    """An EHR sync with one therapist's token: two clients' signals, the open alerts."""
    for code in rng.sample(codes, min(2, len(codes))):
        yield Req(agent, "api.signals", "GET", f"/api/v1/clients/{code}/signals", 200)
    yield Req(agent, "api.alerts", "GET", "/api/v1/alerts?status=open", 200)
    return True


def api_user(n: int, tokens: list[tuple[str, list[str]]], rng: random.Random,
             think: tuple[float, float]) -> Flow:
    """Think model: each therapist's token in turn (each stays far below the per-token
    rate limit of 300 a minute), a pause before each sync."""
    for turn in itertools.count(n):
        yield Pause(rng.uniform(*think))
        secret, codes = tokens[turn % len(tokens)]
        yield from api_sync(Agent({"X-Forwarded-For": net_address(n),
                                   "Authorization": f"Bearer {secret}"}), codes, rng)
    return True


def advance(flow: Flow, value: str | None) -> Req | None:
    """The flow's next request, pauses skipped (the stress model); None when it ended."""
    try:
        item = flow.send(value)
        while isinstance(item, Pause):
            item = flow.send(None)
        return item
    except StopIteration:
        return None


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



class Window:
    """The measured time: requests sent (stress: scheduled) from ``start`` to ``stop``
    count; ``stopping`` tells the users to stop."""

    def __init__(self, begin: float, warmup: float) -> None:
        self.begin, self.start, self.stop = begin, begin + warmup, math.inf
        self.stopping = threading.Event()


Record = tuple[str, float, float, str | None]  # kind, sent (or due), seconds, problem


class ThinkLoad:
    """The think and closed models: one thread per user, each running its flow."""

    def __init__(self, clinic: Clinic, counts: dict[str, int], args, pauses: bool) -> None:
        self.clinic, self.counts, self.args, self.pauses = clinic, counts, args, pauses
        self.links, self.tally = Links(clinic.links), Tally()
        self.records: list[Record] = []
        self.threads: list[threading.Thread] = []

    def think(self, pair: tuple[float, float]) -> tuple[float, float]:
        return (pair[0], pair[1]) if self.pauses else (0.0, 0.0)

    def start(self, pool: Pool, signed: list[tuple[Agent, list[str]]], window: Window) -> None:
        rng, args = random.Random(self.args.seed), self.args
        flows: list[Flow] = [
            client_user(self.links, random.Random(rng.random()),
                        self.think(args.client_think), self.tally)
            for _ in range(self.counts["client"])]
        flows += [therapist_user(agent, codes, random.Random(rng.random()),
                                 self.think(args.therapist_think)) for agent, codes in signed]
        flows += [api_user(len(signed) + n, self.clinic.tokens, random.Random(rng.random()),
                           self.think(args.api_think)) for n in range(self.counts["api"])]
        self.threads = [threading.Thread(target=self.drive, args=(flow, pool, window),
                                         daemon=True) for flow in flows]
        for t in self.threads:
            t.start()

    def drive(self, flow: Flow, pool: Pool, window: Window) -> None:
        value: str | None = None
        try:
            while True:
                item = flow.send(value)
                value = None
                if isinstance(item, Pause):
                    if window.stopping.wait(item.seconds):
                        return
                    continue
                if window.stopping.is_set():
                    return
                sent = time.perf_counter()
                problem, value = perform(pool, item)
                self.records.append((item.kind, sent, time.perf_counter() - sent, problem))
        except StopIteration:
            return

    def join(self) -> dict:
        for t in self.threads:
            t.join(TIMEOUT + 10)
        return {"links_ran_out": self.links.ran_out, "visits": self.tally.visits,
                "threads": len(self.threads)}


class StressLoad:
    """The stress model: arrivals at ``rate`` a second, each the next request of a flow,
    sent by a thread pool whatever the earlier responses (see the module docstring)."""

    def __init__(self, clinic: Clinic, args, rate: float, weights: dict[str, float]) -> None:
        self.clinic, self.args, self.rate = clinic, args, rate
        self.roles, self.weights = list(weights), list(weights.values())
        self.links, self.tally = Links(clinic.links), Tally()
        self.records: list[Record] = []
        self.late: list[tuple[float, float]] = []  # (due, seconds sent after it)
        self.ready: dict[str, deque[tuple[Flow, Req]]] = {r: deque() for r in self.roles}
        self.lock = threading.Lock()
        self.dispatched = self.answered = self.no_request = 0
        self.crashed: list[str] = []
        self.executor = ThreadPoolExecutor(max_workers=args.stress_threads)

    def start(self, pool: Pool, signed: list[tuple[Agent, list[str]]], window: Window) -> None:
        self.pool, self.signed, self.window = pool, signed, window
        self.dispatcher = threading.Thread(target=self.dispatch, daemon=True)
        self.dispatcher.start()

    def new_flow(self, role: str, n: int, rng: random.Random) -> Flow:
        if role == "client":
            return client_visit(self.links, random.Random(rng.random()), (0.0, 0.0),
                                self.tally)
        if role == "therapist":
            agent, codes = self.signed[n % len(self.signed)]
            return therapist_user(agent, codes, random.Random(rng.random()), (0.0, 0.0))
        secret, codes = self.clinic.tokens[n % len(self.clinic.tokens)]
        return api_sync(Agent({"X-Forwarded-For": net_address(len(self.signed)),
                               "Authorization": f"Bearer {secret}"}), codes,
                        random.Random(rng.random()))

    def dispatch(self) -> None:
        rng = random.Random(self.args.seed)
        started = Counter[str]()
        due = self.window.begin
        while not self.window.stopping.is_set():
            due += (rng.expovariate(self.rate) if self.args.arrivals == "poisson"
                    else 1 / self.rate)
            delay = due - time.perf_counter()
            if delay > 0 and self.window.stopping.wait(delay):
                return
            role = rng.choices(self.roles, self.weights)[0]
            with self.lock:
                entry = self.ready[role].popleft() if self.ready[role] else None
            if entry is None:
                flow = self.new_flow(role, started[role], rng)
                started[role] += 1
                req = advance(flow, None)
                if req is None:  # no link left
                    self.no_request += 1
                    continue
                entry = (flow, req)
            self.dispatched += 1
            self.executor.submit(self.job, role, *entry, due)

    def job(self, role: str, flow: Flow, req: Req, due: float) -> None:
        try:
            sent = time.perf_counter()
            problem, text = perform(self.pool, req)
            self.records.append((req.kind, due, time.perf_counter() - due, problem))
            self.late.append((due, sent - due))
            with self.lock:
                self.answered += 1
            following = advance(flow, text)
            if following is not None:
                with self.lock:
                    self.ready[role].append((flow, following))
        except Exception as exc:  # a bug of this generator: reported, fails the run
            self.crashed.append(repr(exc))

    def join(self) -> dict:
        self.dispatcher.join(10)
        self.executor.shutdown(wait=True)
        late = sorted(s for due, s in self.late if self.window.start <= due < self.window.stop)
        return {"links_ran_out": self.links.ran_out, "visits": self.tally.visits,
                "rate": self.rate, "arrivals": self.args.arrivals,
                "dispatched": self.dispatched, "answered": self.answered,
                "unanswered": self.dispatched - self.answered - len(self.crashed),
                "generator_crashes": self.crashed[:5],
                "threads": self.args.stress_threads,
                "sent_late_ms": {f"p{q}": round(1000 * percentile(late, q / 100), 1)
                                 for q in (50, 99)} | {"max": round(1000 * late[-1], 1)}
                if late else {}}


def configuration(clinic: Clinic, databases: Databases, folder: Path, args, label: dict,
                  sign_ins: int, load, warmup: float, seconds: float) -> dict:
    """One measured configuration: a fresh copy of the clinic, its server, ``sign_ins``
    therapists signed in, ``load`` started, the digest ``--digest-at`` seconds into the
    measured time, which lasts ``seconds`` and at least until the digest has ended."""
    url = databases.copy()
    port = free_port()
    server, log = serve(url, folder, port, args.workers)
    pool = Pool(port)
    try:
        signed, sign_in_s = [], []
        for n in range(sign_ins):
            email, codes = clinic.staff[n]
            before = time.perf_counter()
            cookies = sign_in(port, net_address(n), email, clinic.password)
            sign_in_s.append(time.perf_counter() - before)
            signed.append((Agent({"X-Forwarded-For": net_address(n)}, dict(cookies)), codes))
        load_before = os.getloadavg()
        window = Window(time.perf_counter(), warmup)
        load.start(pool, signed, window)
        time.sleep(max(0.0, window.start - time.perf_counter()))
        server_before, own_cpu = scheduled(server.pid), time.process_time()
        busy_before = machine_busy()
        time.sleep(max(0.0, window.start + args.digest_at - time.perf_counter()))
        digest = Digest(url, folder, clinic.week)
        digest.start()
        time.sleep(max(0.0, window.start + seconds - time.perf_counter()))
        digest.join(900)
        window.stop = time.perf_counter()
        server_cpu, server_wait = (b - a for a, b in zip(server_before, scheduled(server.pid),
                                                          strict=True))
        own_cpu = time.process_time() - own_cpu
        busy, total = (b - a for a, b in zip(busy_before, machine_busy(), strict=True))
        load_after = os.getloadavg()
        window.stopping.set()
        extra = load.join()
    finally:
        pool.close()
        server.terminate()
        server.wait(timeout=30)
    if extra["links_ran_out"] and label["model"] != "stress":  # a stress step fails
        raise RuntimeError(f"all {len(clinic.links)} links were used before the time was "
                           "up: build a larger clinic (--clients-per-therapist)")
    measured = window.stop - window.start
    logged = log.read_text(errors="replace")
    digesting = max(0.001, min(digest.ended, window.stop) - max(digest.started, window.start))
    records = [r for r in load.records if window.start <= r[1] < window.stop]
    sign_in_s.sort()
    return {**label, "workers": args.workers, "warmup_s": warmup,
            "seconds": round(measured, 1),
            "kinds": summarise(records, measured),
            "overall": summarise(records, measured, overall=True),
            # Requests sent while the digest process ran, and the others.
            "during_digest": summarise([r for r in records if digest.started <= r[1]
                                        < digest.ended], digesting, overall=True),
            "outside_digest": summarise([r for r in records if not digest.started <= r[1]
                                         < digest.ended], measured - digesting, overall=True),
            **extra,
            "failures": dict(Counter(f"{kind}: {problem}" for kind, _, _, problem in records
                                     if problem).most_common(8)),
            "sign_ins": {"count": len(sign_in_s), "note": "before the clock, one at a time",
                         **({"p50_ms": round(1000 * percentile(sign_in_s, 0.5), 1),
                             "max_ms": round(1000 * sign_in_s[-1], 1)} if sign_in_s else {})},
            "digest": digest.result(clinic.shape["supervisors"], window.start),
            "server_cpu_cores": round(server_cpu / measured, 2),
            "server_waiting_for_cpu": round(server_wait / measured, 2),
            "load_generator_cpu_cores": round(own_cpu / measured, 2),
            "machine_busy_cores": round(busy / total * (os.cpu_count() or 1), 2),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in load_after],
            **pool.figures(),
            "server_log": {line: logged.count(line) for line in BAD_LOG_LINES}}


def summarise(records: list[Record], seconds: float, overall: bool = False) -> dict:
    groups: dict[str, list] = {}
    for kind, _start, elapsed, problem in records:
        groups.setdefault("all" if overall else kind, []).append((elapsed, problem))
    out = {}
    for kind in ("all",) if overall else [k for k in KINDS if k in groups]:
        rows = groups.get(kind, [])
        times = sorted(elapsed for elapsed, _ in rows)
        errors = sum(problem is not None for _, problem in rows)
        out[kind] = {"count": len(rows), "rps": round(len(rows) / max(seconds, 1e-3), 1),
                     "errors": errors,
                     "error_pct": round(100 * errors / len(rows), 3) if rows else 0.0,
                     **{f"p{q}_ms": round(1000 * percentile(times, q / 100), 1) if times
                        else None for q in (50, 95, 99)},
                     "max_ms": round(1000 * times[-1], 1) if times else None}
    return out["all"] if overall else out


def meets(run: dict) -> bool:
    o = run["overall"]
    return (o["count"] > 0 and o["p99_ms"] < TARGET_P99_MS
            and o["error_pct"] < TARGET_ERROR_PCT and not run.get("unanswered")
            and not run.get("generator_crashes") and not run.get("links_ran_out"))


# -- the models ------------------------------------------------------------------------


def think_model(clinic, databases, folder, args, pauses: bool = True) -> list[dict]:
    runs = []
    for users in args.users:
        counts = mix(users)
        if counts["therapist"] > len(clinic.staff):
            raise RuntimeError(f"{counts['therapist']} therapists take part but the clinic "
                               f"has {len(clinic.staff)}")
        rates = expected_rates(counts, args) if pauses else {}
        expected = sum(rates.values())
        if args.seconds:
            seconds = args.seconds
        elif pauses:
            seconds = max(args.min_seconds, math.ceil(args.requests / expected))
        else:
            seconds = args.min_seconds
        label = {"model": "think" if pauses else "closed", "users": counts,
                 "expected_rps": round(expected, 1) if pauses else None,
                 "think_s": {"client": args.client_think, "therapist": args.therapist_think,
                             "api": args.api_think} if pauses else None}
        runs.append(configuration(clinic, databases, folder, args, label, counts["therapist"],
                                  ThinkLoad(clinic, counts, args, pauses),
                                  args.warmup if pauses else min(args.warmup, 5.0), seconds))
        say(args, f"  {label['model']}, {users} users: {summary_line(runs[-1])}")
    return runs


def stress_model(clinic, databases, folder, args) -> dict:
    """Steps up the arrival rate, then bisects: the highest rate that meets the target."""
    base = mix(50)
    rates = expected_rates(base, args)
    weights = {role: rate / sum(rates.values()) for role, rate in rates.items()}
    steps: list[dict] = []

    def step(rate: float) -> bool:
        label = {"model": "stress", "shares": {k: round(v, 3) for k, v in weights.items()}}
        run = configuration(clinic, databases, folder, args, label,
                            min(base["therapist"], len(clinic.staff)),
                            StressLoad(clinic, args, rate, weights),
                            args.step_warmup, max(args.step_seconds, args.step_requests / rate))
        run["passed"] = meets(run)
        steps.append(run)
        say(args, f"  stress, {rate:g}/s: {summary_line(run)}")
        return run["passed"]

    passing, failing = None, None
    rate = args.rate_start
    while rate <= args.rate_max + 1e-9:
        if step(rate):
            passing = rate
            rate = round(rate * args.rate_factor, 1)
        else:
            failing = rate
            break
    for _ in range(args.bisect if passing is not None and failing is not None else 0):
        middle = round((passing + failing) / 2, 1)  # type: ignore[operator]
        if middle in (passing, failing):
            break
        if step(middle):
            passing = middle
        else:
            failing = middle
    return {"steps": steps, "highest_passing_rps": passing, "lowest_failing_rps": failing,
            "shares": weights, "step_seconds": args.step_seconds,
            "step_warmup": args.step_warmup, "arrivals": args.arrivals}


def say(args, text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def summary_line(run: dict) -> str:
    o = run["overall"]
    return (f"{o['count']} requests ({o['rps']}/s), p50 {o['p50_ms']} ms, p99 {o['p99_ms']} "
            f"ms, errors {o['error_pct']} %, digest {run['digest']['wall_s']} s, load "
            f"{run['load_average_before'][0]:.2f}, target "
            f"{'met' if meets(run) else 'MISSED'}"
            + (f"; failures {run['failures']}" if run["failures"] else ""))


# -- the command -----------------------------------------------------------------------


def pair(text: str) -> float:
    return float(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="+", choices=("think", "stress", "closed"),
                        default=["think", "stress"])
    parser.add_argument("--db", nargs="+", choices=("sqlite", "postgresql"),
                        default=["sqlite"])
    parser.add_argument("--postgres-url",
                        default=os.environ.get("OUTCOME_TEST_POSTGRES_URL", DEFAULT_POSTGRES),
                        help="with --db postgresql: a server where this user may create "
                        "databases (the benchmark's own, dropped afterwards)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    group = parser.add_argument_group("think and closed models")
    group.add_argument("--users", type=int, nargs="+", default=[50, 200])
    group.add_argument("--client-think", type=pair, nargs=2, default=(5.0, 20.0),
                       metavar=("MIN", "MAX"))
    group.add_argument("--therapist-think", type=pair, nargs=2, default=(10.0, 30.0),
                       metavar=("MIN", "MAX"))
    group.add_argument("--api-think", type=pair, nargs=2, default=(10.0, 30.0),
                       metavar=("MIN", "MAX"))
    group.add_argument("--requests", type=int, default=1000,
                       help="think: measure long enough to expect this many requests")
    group.add_argument("--min-seconds", type=float, default=60.0,
                       help="think: measured seconds at least; closed: measured seconds")
    group.add_argument("--seconds", type=float, default=None,
                       help="measured seconds (overrides --requests and --min-seconds)")
    group.add_argument("--warmup", type=float, default=20.0,
                       help="before measuring (think; closed uses at most 5)")
    group = parser.add_argument_group("stress model")
    group.add_argument("--rate-start", type=float, default=10.0, help="requests a second")
    group.add_argument("--rate-factor", type=float, default=1.5)
    group.add_argument("--rate-max", type=float, default=400.0)
    group.add_argument("--bisect", type=int, default=2)
    group.add_argument("--arrivals", choices=("poisson", "even"), default="poisson")
    group.add_argument("--step-seconds", type=float, default=20.0)
    group.add_argument("--step-requests", type=int, default=500,
                       help="a step lasts long enough to expect this many requests, so that "
                       "its p99 is not its maximum")
    group.add_argument("--step-warmup", type=float, default=3.0)
    group.add_argument("--stress-threads", type=int, default=256)
    parser.add_argument("--digest-at", type=float, default=5.0,
                        help="seconds into the measured time when the digest run starts")
    parser.add_argument("--supervisors", type=int, default=20)
    parser.add_argument("--therapists-per-supervisor", type=int, default=5)
    parser.add_argument("--clients-per-therapist", type=int, default=20)
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--no-idle-digest", action="store_true",
                        help="skip timing the digest alone on an idle copy (smoke test)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary folder (and PostgreSQL databases)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--json-out", type=Path, help="also write the JSON figures here")
    args = parser.parse_args()
    smallest = mix(min(args.users))
    if (min(args.users) < 3 or smallest["client"] < 1 or smallest["therapist"] < 1
            or args.rate_start <= 0 or args.rate_factor <= 1 or args.digest_at < 0):
        parser.error("need --users >= 3, --rate-start > 0, --rate-factor > 1, --digest-at "
                     ">= 0")
    sign_ins = max(mix(u)["therapist"] for u in [*args.users, 50])
    started = time.perf_counter()
    backends = {}
    for db in args.db:
        backends[db] = backend(db, args, sign_ins)
    figures = {"benchmark": "clinic_day", "command": " ".join(sys.argv[1:]),
               "arguments": {k: v if isinstance(v, (int, float, str, list, tuple, type(None)))
                             else str(v) for k, v in vars(args).items()},
               "machine_cpus": os.cpu_count(), "total_s": round(time.perf_counter() - started),
               "targets": {"p99_ms_below": TARGET_P99_MS, "error_pct_below": TARGET_ERROR_PCT},
               "backends": backends}
    if args.json_out:
        args.json_out.write_text(json.dumps(figures, indent=1))
    if args.json:
        print(json.dumps(figures))
    else:
        report(figures)
    failed = [f"{db} {run['model']}: {run['digest']['failed']}" for db, b in backends.items()
              for run in all_runs(b) if run["digest"]["failed"]]
    if failed:
        sys.exit(f"the digest run failed under load: {failed}")


def backend(db: str, args, sign_ins: int) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="outcome-bench-"))
    databases = Databases(db, folder, args.postgres_url)
    out: dict = {"backend": db}
    try:
        say(args, f"{db}: building the clinic")
        clinic = prepare(databases.url, args, sign_ins)
        out.update(clinic=clinic.shape, week=clinic.week)
        out["digest_alone"] = None
        if not args.no_idle_digest:  # what the load adds to it
            alone = Digest(databases.copy(), folder, clinic.week)
            alone.run()
            out["digest_alone"] = alone.result(clinic.shape["supervisors"], alone.started)
        if out["digest_alone"] and out["digest_alone"]["failed"]:
            raise RuntimeError(f"the digest run failed on an idle copy: "
                               f"{out['digest_alone']['failed']}")
        for model in args.model:
            if model == "stress":
                out["stress"] = stress_model(clinic, databases, folder, args)
            else:
                out[model] = think_model(clinic, databases, folder, args,
                                         pauses=model == "think")
    finally:
        if args.keep:
            print(f"kept {folder}", file=sys.stderr)
        else:
            databases.drop()
            shutil.rmtree(folder, ignore_errors=True)
    return out


def all_runs(b: dict) -> list[dict]:
    return [*b.get("think", []), *b.get("closed", []), *b.get("stress", {}).get("steps", [])]


def report(figures: dict) -> None:
    print(f"clinic day (bench/clinic_day.py {figures['command']}), {figures['machine_cpus']} "
          f"CPUs, {figures['total_s']} s in all; targets: p99 < 800 ms, errors < 0.1 %")
    for db, b in figures["backends"].items():
        shape = b["clinic"]
        print()
        print(f"== {db}: {shape['supervisors']} supervisors, {shape['therapists']} therapists,"
              f" {shape['clients']:,} clients, {shape['administrations']:,} administrations "
              f"(built in {shape['prepared_s']} s); digest alone (idle copy): "
              + (f"{b['digest_alone']['digests']} digests in {b['digest_alone']['wall_s']} s"
                 if b["digest_alone"] else "not timed"))
        for run in b.get("think", []) + b.get("closed", []):
            u = run["users"]
            print()
            if run["model"] == "think":
                t = run["think_s"]
                print(f"think model, {sum(u.values())} users ({u['client']} clients, "
                      f"{u['therapist']} therapists, {u['api']} API readers); pauses "
                      f"client {t['client'][0]:g}-{t['client'][1]:g} s, therapist "
                      f"{t['therapist'][0]:g}-{t['therapist'][1]:g} s, API "
                      f"{t['api'][0]:g}-{t['api'][1]:g} s; expected {run['expected_rps']} "
                      f"requests/s")
            else:
                print(f"closed model (no pauses), {sum(u.values())} users ({u['client']} "
                      f"clients, {u['therapist']} therapists, {u['api']} API readers)")
            table(run)
        if "stress" in b:
            s = b["stress"]
            print()
            print(f"stress model: open loop, {s['arrivals']} arrivals, request shares "
                  + ", ".join(f"{k} {100 * v:.0f} %" for k, v in s["shares"].items())
                  + f"; steps of {s['step_seconds']:g} s after {s['step_warmup']:g} s")
            for run in s["steps"]:
                print()
                print(f"stress step at {run['rate']:g} requests/s: "
                      f"{'PASSED' if run['passed'] else 'failed'}; {run['dispatched']} sent, "
                      f"{run['answered']} answered, requests sent late by "
                      f"{run['sent_late_ms']} ms")
                table(run)
            print()
            print(f"stress {db}: highest passing rate {s['highest_passing_rps']} requests/s"
                  f" (lowest failing {s['lowest_failing_rps']})")
    print()
    for db, b in figures["backends"].items():
        for run in b.get("think", []) + b.get("closed", []):
            print(f"summary {db} {run['model']} {sum(run['users'].values())} users: "
                  f"{summary_line(run)}")
        if "stress" in b:
            print(f"summary {db} stress: highest rate with p99 < 800 ms and errors < 0.1 %:"
                  f" {b['stress']['highest_passing_rps']} requests/s")


def table(run: dict) -> None:
    print(f"  measured {run['seconds']} s after {run['warmup_s']:g} s; gunicorn "
          f"{run['workers']} workers; load average before {run['load_average_before'][0]:.2f}"
          f" (5 min {run['load_average_before'][1]:.2f}), after "
          f"{run['load_average_after'][0]:.2f}")
    print(f"  {'request':20}{'count':>8}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}"
          f"{'p99 ms':>9}{'max ms':>9}{'errors':>8}{'err %':>8}")
    rows = [*run["kinds"].items(), ("overall", run["overall"]),
            ("  while digesting", run["during_digest"]), ("  the rest", run["outside_digest"])]
    for kind, s in rows:
        if s["count"]:
            print(f"  {kind:20}{s['count']:>8}{s['rps']:>8.1f}{s['p50_ms']:>9.1f}"
                  f"{s['p95_ms']:>9.1f}{s['p99_ms']:>9.1f}{s['max_ms']:>9.1f}"
                  f"{s['errors']:>8}{s['error_pct']:>8.3f}")
    d = run["digest"]
    if d["failed"]:
        print(f"  DIGEST RUN FAILED: {d['failed']}")
    print(f"  client visits completed: {run['visits']}; digest run: {d['digests']} digests in "
          f"{d['wall_s']} s (CPU {d['cpu_s']} s), {d['started_at_s']} to {d['ended_at_s']} s "
          f"into the measured time; sign-ins before it: {run['sign_ins']}")
    print(f"  CPU cores used: server {run['server_cpu_cores']} (waited "
          f"{run['server_waiting_for_cpu']} s a second for a free CPU), load generator "
          f"{run['load_generator_cpu_cores']} ({run['threads']} threads); whole machine "
          f"{run['machine_busy_cores']} of {os.cpu_count()}; connections opened "
          f"{run['connections_opened']}, reused {run['connections_reused']}, retried "
          f"{run['retried_on_closed_connection']}")
    if run["failures"]:
        print(f"  failures: {run['failures']}")
    if run["links_ran_out"]:
        print("  LINKS RAN OUT: the step fails; build a larger clinic (--clients-per-therapist)")
    bad = {k: v for k, v in run["server_log"].items() if v}
    if bad:
        print(f"  server log: {bad}")


if __name__ == "__main__":
    main()
