"""Scale-out: two application hosts behind HAProxy, one PostgreSQL, one Redis (issue 21).

A clinic that outgrows one server runs ``outcome serve`` on several hosts behind a load
balancer (docs/operators.md, "Several application hosts"). This driver builds that on one
machine and proves the hosts work together:

- a fresh PostgreSQL database (created here, dropped at the end) with a small clinic:
  supervisors, therapists who sign in, clients in care with one questionnaire link each;
- two application hosts, each ``outcome serve`` (gunicorn) on a loopback address of its
  own (127.0.0.2 and 127.0.0.3, one port), each with an instance folder of its own (as two
  machines have), and the same secret key, encryption key and Redis rate-limit store
  (database 5, flushed first);
- HAProxy in front (config generated into a temporary folder, run in the foreground as an
  unprivileged user), round robin, health checks on ``/healthz`` every second (0.5 s
  after a failure), a host out after 2 failed checks; it adds ``X-Forwarded-For`` (the
  hosts run with ``OUTCOME_PROXY_HOPS=1``) and names the host that answered in ``X-Served-By``;
- two ``outcome scheduler`` processes running all the while.

Checks, each a list of problems (empty: passed):

1. rate limits are shared: a dozen openings of an unknown link from one address, sent
   alternately to host A and host B directly, meet the link-failure limit (10 a minute)
   at the 11th: each host alone saw 6;
2. a session signed in through host A directly is valid on host B directly: both show the
   therapist's caseload;
3. a clinic day through the balancer: ``--users`` threads in a closed loop, each with a
   source address of its own (127.0.x.y; each client's visit from an address of its own,
   as real clients open one link each), 70 % clients (open a fresh link, answer every
   questionnaire page, see the thanks) and 30 % therapists (caseload, a client's page);
   ``--seconds`` with both hosts, then host B's gunicorn (master and workers) is killed
   with SIGKILL and the load goes on ``--seconds`` with host A alone. Every POST that got
   its 303 must be stored exactly once with the answers sent; nothing is stored twice or
   that no client sent;
4. the weekly digest with two schedulers: two processes built as ``outcome scheduler``
   builds its app run the digest job at the same chosen moments (three Mondays, after a
   barrier); exactly one digest run, one archived document and one e-mail per supervisor
   and week;
5. the two ``outcome scheduler`` processes are still running, and no host or scheduler
   logged a traceback.

Figures: requests per second through the balancer with both hosts and with one, the CPU
seconds the hosts' gunicorn processes used (master and workers, ``/proc/*/schedstat``),
hence how many cores they kept busy and the requests per core-second, and the load
average (other work on the machine moves every figure). Exits non-zero when a check
fails. Run: ``make scale`` or ``.venv/bin/python -m bench.scale --postgres-url URL``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import multiprocessing
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.clinic_day import scheduled
from bench.forms import CSRF
from bench.forms import Browser
from bench.forms import free_port

DEFAULT_POSTGRES = os.environ.get("OUTCOME_TEST_POSTGRES_URL",
                                  "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = "redis://127.0.0.1:6379/5"  # issue 21's Redis database
HOST_ADDRESSES = ("127.0.0.2", "127.0.0.3")
OUTCOME = str(Path(sys.executable).parent / "outcome")
TIMEOUT = 30.0
BAD_LOG_LINES = ("Traceback", "[CRITICAL]", "WORKER TIMEOUT")
INSTRUMENT = re.compile(r'name="instrument" value="([^"]+)"')
CODE = re.compile(r"C-S\d{5}")
LINK_FAILURE_LIMIT = 10  # outcome.web.questionnaire.LINK_FAILURE_LIMIT, per minute
DIGEST_MONDAYS = 3


def haproxy_binary() -> str | None:
    return shutil.which("haproxy") or next(
        (p for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if os.access(p, os.X_OK)),
        None)


# -- the clinic ------------------------------------------------------------------------


@dataclass
class Clinic:
    password: str
    links: list[tuple[str, int]]  # (token, link id), one unused link per client
    staff: list[tuple[str, list[str]]]  # (e-mail, codes in care) of each therapist
    supervisors: list[int]


def prepare(url: str, *, supervisors: int, therapists: int, clients: int) -> Clinic:
    """Migrate the empty database at ``url`` and commit the clinic (module docstring).

    The staff accounts date from ten days ago, so last week's digest is due."""
    from sqlalchemy import select

    from outcome import schema
    from outcome.db import make_engine
    from outcome.db import make_session_factory
    from outcome.db import transaction
    from outcome.models import Clinic as ClinicRow
    from outcome.models import SupervisorAssignment
    from outcome.models import User
    from outcome.services import consent
    from outcome.services.clients import register_client
    from outcome.services.links import issue_link
    from outcome.services.passwords import hash_password
    from questionnaires.loader import builtin_library

    engine = make_engine(url)
    schema.upgrade(engine)
    library = builtin_library()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=5)
    created = now - dt.timedelta(days=10)
    password = secrets.token_urlsafe(16)
    hashed = hash_password(password)
    links, staff, heads = [], [], []
    with transaction(make_session_factory(engine)) as session:
        clinic = ClinicRow(slug="scale", name="Scale-out Clinic")
        session.add(clinic)
        session.flush()
        people = []
        for s in range(supervisors):
            head = User(clinic_id=clinic.id, email=f"sup{s}@scale.example.org",
                        display_name=f"Supervisor {s}", is_supervisor=True,
                        created_dt=created)
            session.add(head)
            session.flush()
            heads.append(head.id)
        for t in range(therapists):
            person = User(clinic_id=clinic.id, email=f"ther{t}@scale.example.org",
                          display_name=f"Therapist {t}", is_therapist=True,
                          created_dt=created, password_hash=hashed)
            session.add(person)
            session.flush()
            people.append(person)
            if heads:
                session.add(SupervisorAssignment(clinic_id=clinic.id,
                                                 supervisor_id=heads[t % len(heads)],
                                                 therapist_id=person.id))
        caseloads: dict[int, list[str]] = {p.id: [] for p in people}
        for n in range(clients):
            therapist = people[n % len(people)]
            client, episode = register_client(session, therapist, name=f"Client {n}",
                                              opened_on=created.date())
            client.code = f"C-S{n:05d}"
            session.flush()
            caseloads[therapist.id].append(client.code)
            # The client agreed to the consent text at an earlier visit, so the link opens
            # on the questionnaire (the production check of consent still runs each time).
            if consent.needs_asking(session, client):
                consent.record_decision(
                    session, client=client, decision="agreed", channel="link", now=now,
                    text=consent.current_text(session, clinic, client.locale, now))
            link, token = issue_link(session, episode=episode, purpose="pre", now=now,
                                     library=library)
            links.append((token, link.id))
        staff = [(p.email, caseloads[p.id]) for p in people]
        assert session.scalar(select(ClinicRow.id)) == clinic.id
    engine.dispose()
    return Clinic(password, links, staff, heads)


class Database:
    """A database of its own on the PostgreSQL server, created empty, dropped after."""

    def __init__(self, server_url: str) -> None:
        from sqlalchemy.engine import make_url

        self.server = make_url(server_url)
        self.name = f"i21scale_{os.getpid()}_{secrets.token_hex(3)}"
        self._admin(f'CREATE DATABASE "{self.name}"')
        self.url = self.server.set(database=self.name).render_as_string(hide_password=False)

    def _admin(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(host=self.server.host, port=self.server.port or 5432,
                             user=self.server.username, password=self.server.password,
                             dbname=self.server.database, autocommit=True) as conn:
            conn.execute(statement)

    def drop(self) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


# -- the processes ---------------------------------------------------------------------


def shared_environment(url: str) -> dict[str, str]:
    """What every host and scheduler shares: database, secret key, encryption key, Redis."""
    from outcome.encryption import new_key_line

    return {**os.environ, "OUTCOME_ENV": "production", "OUTCOME_DATABASE_URL": url,
            "OUTCOME_SECRET_KEY": secrets.token_urlsafe(40),
            "OUTCOME_ENCRYPTION_KEYS": new_key_line("scale1"),
            "OUTCOME_RATELIMIT_STORAGE_URL": REDIS_URL, "OUTCOME_PROXY_HOPS": "1",
            "OUTCOME_BASE_URL": "https://outcome.scale.example",
            "OUTCOME_SMTP_HOST": "127.0.0.1", "OUTCOME_SMTP_PORT": "9",  # nothing listens
            "OUTCOME_LOG_LEVEL": "WARNING"}


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL the process group: gunicorn's master and all its workers at once."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(10)

    def stop(self) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def bad_lines(self) -> list[str]:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return [line for line in text.splitlines() if any(b in line for b in BAD_LOG_LINES)]


def start(name: str, argv: list[str], env: dict[str, str], folder: Path) -> Process:
    log = folder / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True)  # its own group: killpg
    return Process(name, popen, log)


def wait_healthy(address: str, port: int, process: Process, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection(address, port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        if not process.alive():
            break
        time.sleep(0.2)
    raise RuntimeError(f"{process.name} did not start: "
                       f"{process.log.read_text(errors='replace')[-2000:]}")


def haproxy_config_text(listen: str, hosts: list[str], socket: str, as_nobody: bool) -> str:
    """The balancer: round robin over the hosts, health checks on /healthz.

    docs/operators.md ("Several application hosts") shows this text for two hosts (a
    test compares them)."""
    servers = "\n".join(f"    server host{'abcdefgh'[n]} {host} check"
                        for n, host in enumerate(hosts))
    drop = "    user nobody\n    group nogroup\n" if as_nobody else ""
    return f"""global
{drop}    maxconn 2000
    stats socket {socket} mode 600 level admin

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 10s
    # A request that could not reach a host (refused, dead) goes to another one; a
    # request already sent is never sent twice.
    retries 2
    option redispatch
    # The whole request is read before a host sees it: slow clients wait here.
    timeout http-request 10s
    option http-buffer-request
    option forwardfor

frontend clinic
    bind {listen}
    http-request set-header X-Forwarded-Proto https if {{ ssl_fc }}
    http-request set-header X-Forwarded-Proto http if !{{ ssl_fc }}
    http-request set-header X-Forwarded-Host %[req.hdr(host)]
    default_backend hosts

backend hosts
    balance roundrobin
    option httpchk GET /healthz
    http-check expect status 200
    # A dead host refuses at once: out after 2 checks (about 1.5 s). A busy host may
    # take a while to answer: 3 s before a check counts as failed.
    timeout check 3s
    default-server inter 1s fastinter 500ms fall 2 rise 2
    http-response set-header X-Served-By %s
{servers}
"""


def haproxy_config(folder: Path, port: int, host_port: int) -> Path:
    path = folder / "haproxy.cfg"
    path.write_text(haproxy_config_text(
        f"127.0.0.1:{port}", [f"{address}:{host_port}" for address in HOST_ADDRESSES],
        str(folder / "haproxy.sock"), as_nobody=os.geteuid() == 0))
    return path


# -- HTTP ------------------------------------------------------------------------------


class Agent(Browser):
    """bench.forms' Browser (cookies, keep-alive), from a source address of its own."""

    def __init__(self, host: str, port: int, source: str | None = None,
                 **headers: str) -> None:
        super().__init__(port)
        self.host, self.port, self.source, self.extra = host, port, source, headers
        self.served_by = ""
        self.conn = self._connect()

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(
            self.host, self.port, timeout=TIMEOUT,
            source_address=(self.source, 0) if self.source else None)

    def request(self, method: str, path: str, body: str | None = None) -> tuple[int, str]:
        headers = dict(self.extra)
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items() if v)
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            data = response.read().decode()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = self._connect()
            raise
        self.served_by = response.getheader("X-Served-By") or ""
        for header in response.msg.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]
        if response.getheader("Connection", "").lower() == "close":
            self.conn.close()
        return response.status, data


def sign_in(agent: Agent, email: str, password: str) -> str | None:
    """Sign in through the login form; a problem, or None."""
    status, page = agent.request("GET", "/login")
    token = CSRF.search(page)
    if status != 200 or token is None:
        return f"login page: HTTP {status}"
    status, _ = agent.request("POST", "/login", urlencode(
        {"csrf_token": token.group(1), "email": email, "password": password}))
    return None if status == 302 else f"login of {email}: HTTP {status}"


# -- checks 1 and 2: rate limits and sessions across hosts ------------------------------


def check_rate_limit_shared(host_port: int) -> tuple[list[str], dict]:
    """Openings of an unknown link from one address, alternately on host A and host B."""
    statuses = []
    for n in range(LINK_FAILURE_LIMIT + 2):
        agent = Agent(HOST_ADDRESSES[n % 2], host_port,
                      **{"X-Forwarded-For": "192.0.2.77"})  # as the balancer sends it
        statuses.append(agent.request("GET", f"/q/{secrets.token_urlsafe(32)}")[0])
        agent.conn.close()
    return rate_limit_problems(statuses), {"statuses": statuses}


def rate_limit_problems(statuses: list[int]) -> list[str]:
    """The limit is met at the 11th opening, counted over both hosts (each saw half)."""
    problems = []
    refused = [n for n, status in enumerate(statuses) if status == 429]
    if any(status == 429 for status in statuses[:LINK_FAILURE_LIMIT]):
        problems.append(f"refused before the limit of {LINK_FAILURE_LIMIT}: {statuses}")
    if not refused or refused[0] != LINK_FAILURE_LIMIT:
        problems.append(f"the hosts count apart: {LINK_FAILURE_LIMIT + 2} failed openings "
                        f"over both hosts were not limited at the "
                        f"{LINK_FAILURE_LIMIT + 1}th: {statuses}")
    return problems


def check_session_on_both(host_port: int, clinic: Clinic) -> list[str]:
    """Sign in on host A directly; the same cookie on host B shows the caseload too."""
    email, codes = clinic.staff[0]
    a = Agent(HOST_ADDRESSES[0], host_port, **{"X-Forwarded-For": "192.0.2.10"})
    problem = sign_in(a, email, clinic.password)
    if problem:
        return [f"host A: {problem}"]
    pages = []
    for address in HOST_ADDRESSES:
        agent = Agent(address, host_port, **{"X-Forwarded-For": "192.0.2.10"})
        agent.cookies = dict(a.cookies)
        status, page = agent.request("GET", "/")
        pages.append((address, status, set(CODE.findall(page))))
    return session_problems(pages, set(codes))


def session_problems(pages: list[tuple[str, int, set[str]]], codes: set[str]) -> list[str]:
    return [f"host {address}: HTTP {status}, {len(codes - found)} of {len(codes)} clients "
            "not listed" for address, status, found in pages
            if status != 200 or not codes <= found]


# -- check 3: the clinic day -----------------------------------------------------------


@dataclass
class Sent:
    link_id: int
    instrument: str
    answers: dict[str, int]
    acknowledged: bool


@dataclass
class Day:
    stop: float
    links: list[tuple[str, int]]
    lock: threading.Lock = field(default_factory=threading.Lock)
    records: list[tuple[str, float, float, str | None, str]] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    visits: int = 0

    def take(self) -> tuple[str, int, str] | None:
        """The next client's link and the address that client comes from: each visit
        its own (real clients open one link each; one address opening a link every
        second or two would meet the per-address link limit, 30 a minute)."""
        with self.lock:
            if not self.links:
                return None
            self.visits += 1
            token, link_id = self.links.pop()
            return token, link_id, source_address(VISITOR_ADDRESSES + self.visits)


class Stop(Exception):
    pass


def call(day: Day, agent: Agent, kind: str, method: str, path: str, expect: int,
         body: str | None = None) -> str | None:
    if time.perf_counter() >= day.stop:
        raise Stop
    start = time.perf_counter()
    try:
        status, text = agent.request(method, path, body)
        problem = None if status == expect else f"HTTP {status}"
    except (OSError, http.client.HTTPException) as exc:
        text, problem = "", type(exc).__name__
    with day.lock:
        day.records.append((kind, start, time.perf_counter() - start, problem,
                            agent.served_by if problem is None else ""))
    return None if problem else text


def answers_for(instrument: str, rng: random.Random) -> dict[str, int]:
    from questionnaires.loader import builtin_library

    chosen = {}
    for item in builtin_library().get(instrument).items:
        values = [o.value for o in item.options] or [int(item.minimum)]
        chosen[item.id] = rng.choice(values)
    if "phq9_9" in chosen:
        chosen["phq9_9"] = 0  # no crisis page in this day (bench.clinic_day has them)
    return chosen


def client_user(day: Day, source: str, port: int, rng: random.Random) -> None:
    while (taken := day.take()) is not None:
        token, link_id, visitor = taken
        agent = Agent("127.0.0.1", port, visitor)
        try:
            if call(day, agent, "client.open", "GET", f"/q/{token}", 303) is None:
                continue
            for _ in range(6):
                page = call(day, agent, "client.page", "GET", "/q/", 200)
                if page is None:
                    break
                found, csrf = INSTRUMENT.search(page), CSRF.search(page)
                if found is None or csrf is None:
                    break  # the thank-you page
                answers = answers_for(found.group(1), rng)
                form = {"csrf_token": csrf.group(1), "instrument": found.group(1),
                        **{k: str(v) for k, v in answers.items()}}
                ok = call(day, agent, "client.submit", "POST", "/q/", 303,
                          urlencode(form)) is not None
                with day.lock:
                    day.sent.append(Sent(link_id, found.group(1), answers, ok))
                if not ok:
                    break  # the client gives up this visit
        except Stop:
            return
        finally:
            agent.conn.close()
    with contextlib.suppress(Stop):  # out of links: the user idles until the end
        while time.perf_counter() < day.stop:
            time.sleep(0.2)


def therapist_user(day: Day, source: str, port: int, email: str, codes: list[str],
                   password: str, rng: random.Random) -> None:
    agent = Agent("127.0.0.1", port, source)
    problem = sign_in(agent, email, password)
    if problem:
        with day.lock:
            day.records.append(("therapist.login", time.perf_counter(), 0.0, problem, ""))
        return
    expected = set(codes)
    with contextlib.suppress(Stop):
        while True:
            page = call(day, agent, "therapist.caseload", "GET", "/", 200)
            if page is not None and not expected <= set(CODE.findall(page)):
                with day.lock:
                    day.records.append(("therapist.caseload", time.perf_counter(), 0.0,
                                        "clients missing", ""))
            call(day, agent, "therapist.client", "GET", f"/clients/{rng.choice(codes)}", 200)


def submission_problems(sent: list[Sent], stored: list[tuple[int, str, dict]]) -> list[str]:
    """Every acknowledged POST stored exactly once, as sent; nothing stored twice or unsent."""
    problems = []
    by_key = Counter((link_id, instrument) for link_id, instrument, _ in stored)
    answers = {(link_id, instrument): a for link_id, instrument, a in stored}
    sent_keys = {(s.link_id, s.instrument) for s in sent}
    for s in sent:
        key = (s.link_id, s.instrument)
        if s.acknowledged and by_key[key] == 0:
            problems.append(f"lost: link {s.link_id} {s.instrument} was acknowledged, "
                            "not stored")
        elif s.acknowledged and {k: int(v) for k, v in answers[key].items()} != s.answers:
            problems.append(f"link {s.link_id} {s.instrument}: stored answers differ")
    problems += [f"duplicated: link {k[0]} {k[1]} stored {n} times"
                 for k, n in by_key.items() if n > 1]
    problems += [f"stored but never sent: link {k[0]} {k[1]}" for k in by_key
                 if k not in sent_keys]
    return problems


def stored_submissions(url: str, link_ids: list[int]) -> list[tuple[int, str, dict]]:
    from sqlalchemy import select

    from outcome.db import make_engine
    from outcome.db import make_session_factory
    from outcome.db import transaction
    from outcome.encryption import install
    from outcome.encryption import key_ring_from_config
    from outcome.models import Administration

    # The hosts' key, for this read only: the calling process (a test worker) keeps its own.
    previous = install(key_ring_from_config(
        {"ENCRYPTION_KEYS": os.environ["OUTCOME_ENCRYPTION_KEYS"]}))
    engine = make_engine(url)
    try:
        with transaction(make_session_factory(engine)) as session:
            rows = session.execute(select(Administration.link_id, Administration.instrument_id,
                                          Administration.answers)
                                   .where(Administration.link_id.in_(link_ids))).all()
            return [(r[0], r[1], dict(r[2])) for r in rows]
    finally:
        engine.dispose()
        install(previous)


# -- check 4: one digest per supervisor and week with two schedulers ------------------


def digest_process(environ: dict[str, str], mondays: list[dt.datetime], barrier,
                   answers) -> None:
    """A scheduler's app (as ``outcome scheduler`` builds it, from the same environment):
    at each chosen moment, after the other scheduler is there too, run the digest job."""
    try:
        os.environ.update(environ)
        from outcome.cli.application import build_app
        from outcome.jobs import send_digests

        app = build_app()
        produced = []
        for monday in mondays:
            barrier.wait(120)
            produced.append(send_digests(app, now=monday))
        answers.put(("done", produced))
    except BaseException:
        answers.put(("error", traceback.format_exc()))


def run_digests(env: dict[str, str], folder: Path) -> tuple[list[list[int]], list[str]]:
    today = dt.datetime.now(dt.UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    monday = today - dt.timedelta(days=today.weekday())
    mondays = [monday + dt.timedelta(weeks=n) for n in range(DIGEST_MONDAYS)]
    context = multiprocessing.get_context("spawn")
    barrier, answers = context.Barrier(2), context.Queue()
    environ = {k: v for k, v in env.items() if k.startswith("OUTCOME_")}
    processes = [context.Process(target=digest_process, daemon=True, args=(
        {**environ, "OUTCOME_INSTANCE_PATH": str(folder / f"digest{n}")}, mondays, barrier,
        answers)) for n in range(2)]
    for process in processes:
        process.start()
    results: list[list[int]] = []
    errors: list[str] = []
    try:
        for _ in processes:
            kind, value = answers.get(timeout=180)
            (results if kind == "done" else errors).append(value)
    finally:
        for process in processes:
            process.join(10)
            if process.is_alive():
                process.terminate()
    return results, errors


def digest_problems(runs: Counter, emails: Counter, documents: int,
                    supervisors: list[int], produced: list[list[int]]) -> list[str]:
    problems = []
    weeks = sorted({week for (_s, week, _status) in runs})
    if len(weeks) < DIGEST_MONDAYS:
        problems.append(f"digests for {len(weeks)} weeks, expected at least {DIGEST_MONDAYS}")
    expected = {(s, w, "succeeded"): 1 for s in supervisors for w in weeks}
    if runs != expected:
        extra = {k: n for k, n in runs.items() if expected.get(k) != n}
        problems.append(f"digest runs are not one per supervisor and week: {extra}")
    if emails != {(s, w): 1 for s in supervisors for w in weeks}:
        problems.append(f"digest e-mails are not one per supervisor and week: {emails}")
    if documents != len(supervisors) * len(weeks):
        problems.append(f"{documents} archived digests for {len(supervisors)} supervisors "
                        f"and {len(weeks)} weeks")
    if len(produced) == 2 and sum(map(sum, produced)) != len(supervisors) * len(weeks):
        problems.append(f"the schedulers together produced {produced} digests at the "
                        "chosen moments: not one per supervisor and week")
    return problems


def stored_digests(url: str) -> tuple[Counter, Counter, int]:
    from sqlalchemy import String
    from sqlalchemy import cast
    from sqlalchemy import func
    from sqlalchemy import literal
    from sqlalchemy import select

    from outcome.db import make_engine
    from outcome.db import make_session_factory
    from outcome.db import transaction
    from outcome.models import OutboundEmail
    from outcome.models import ReportDocument
    from outcome.models import ReportRun
    from outcome.services.digests.archive import DIGEST_KIND

    engine = make_engine(url)
    try:
        with transaction(make_session_factory(engine)) as session:
            digest = ReportRun.kind == DIGEST_KIND
            runs = Counter(session.execute(select(
                ReportRun.recipient_user_id, ReportRun.period, ReportRun.status)
                .where(digest)).all())
            emails = Counter(session.execute(
                select(ReportRun.recipient_user_id, ReportRun.period)
                .join(OutboundEmail, OutboundEmail.dedupe_key == literal("digest:").concat(
                    cast(ReportRun.id, String)))
                .where(OutboundEmail.kind == "digest")).all())
            documents = session.scalar(select(func.count()).select_from(ReportDocument)
                                       .join(ReportRun,
                                             ReportDocument.report_run_id == ReportRun.id)
                                       .where(digest))
    finally:
        engine.dispose()
    return runs, emails, int(documents or 0)


# -- the run ---------------------------------------------------------------------------


VISITOR_ADDRESSES = 1_000  # visitors' addresses start here, after the users' own


def source_address(n: int) -> str:
    return f"127.0.{1 + n // 250}.{n % 250 + 1}"


def host_cpu(processes: list[Process]) -> float:
    return sum(scheduled(p.popen.pid)[0] for p in processes if p.alive())


def phase_figures(records, start: float, stop: float, cpu_seconds: float) -> dict:
    inside = [r for r in records if start <= r[1] < stop]
    ok = [r for r in inside if r[3] is None]
    submitted = sum(r[0] == "client.submit" for r in ok)
    seconds = stop - start
    rps = len(ok) / seconds if seconds > 0 else 0.0
    cores = cpu_seconds / seconds if seconds > 0 else 0.0
    return {"seconds": round(seconds, 1), "requests": len(ok),
            "errors": len(inside) - len(ok), "requests_per_s": round(rps, 1),
            "host_cpu_s": round(cpu_seconds, 1), "host_cores_busy": round(cores, 2),
            "requests_per_core_s": round(len(ok) / cpu_seconds, 1) if cpu_seconds else None,
            "questionnaires": submitted,
            "questionnaires_per_s": round(submitted / seconds, 1) if seconds > 0 else 0.0,
            "questionnaires_per_core_s":
                round(submitted / cpu_seconds, 2) if cpu_seconds else None,
            "by_host": dict(Counter(r[4] for r in ok))}


def run(postgres_url: str, *, users: int = 24, seconds: float = 20.0, workers: int = 2,
        clients: int = 1200, therapists: int = 8, supervisors: int = 3,
        keep: bool = False) -> dict:
    """Build, drive and check the scaled-out clinic; the figures and ``problems``."""
    import redis

    haproxy = haproxy_binary()
    if haproxy is None:
        raise RuntimeError("haproxy is not installed (make browser-tools installs it)")
    redis.Redis.from_url(REDIS_URL).flushdb()
    folder = Path(tempfile.mkdtemp(prefix="outcome-scale-"))
    database = Database(postgres_url)
    processes: list[Process] = []
    figures: dict[str, Any] = {"problems": {}}
    problems = figures["problems"]
    timings = figures["timings_s"] = {}
    mark = time.perf_counter()
    # The hosts' encryption key is set in this process's environment while the run lasts
    # (the digest processes and the submission check read it), then taken away again: a
    # test worker that runs this must not go on encrypting with it (tests/test_crash.py
    # on the same worker once built its clinic under the leaked key).
    outer_keys = os.environ.get("OUTCOME_ENCRYPTION_KEYS")

    def lap(name: str) -> None:
        nonlocal mark
        timings[name] = round(time.perf_counter() - mark, 1)
        mark = time.perf_counter()

    try:
        clinic = prepare(database.url, supervisors=supervisors, therapists=therapists,
                         clients=clients)
        lap("prepare")
        env = shared_environment(database.url)
        os.environ["OUTCOME_ENCRYPTION_KEYS"] = env["OUTCOME_ENCRYPTION_KEYS"]
        host_port, lb_port = free_port(), free_port()
        hosts = []
        for n, address in enumerate(HOST_ADDRESSES):
            instance = folder / f"host{'ab'[n]}"
            instance.mkdir()
            hosts.append(start(f"host{'ab'[n]}", [
                OUTCOME, "serve", "--host", address, "--port", str(host_port),
                "--workers", str(workers)], {**env, "OUTCOME_INSTANCE_PATH": str(instance)},
                folder))
        schedulers = []
        for n in range(2):
            instance = folder / f"scheduler{n}"
            instance.mkdir()
            schedulers.append(start(f"scheduler{n}", [OUTCOME, "scheduler"],
                                    {**env, "OUTCOME_INSTANCE_PATH": str(instance)}, folder))
        processes += hosts + schedulers
        for host, address in zip(hosts, HOST_ADDRESSES, strict=True):
            wait_healthy(address, host_port, host)
        balancer = start("haproxy", [haproxy, "-db", "-f", str(haproxy_config(
            folder, lb_port, host_port))], dict(os.environ), folder)
        processes.append(balancer)
        wait_healthy("127.0.0.1", lb_port, balancer)
        time.sleep(2.5)  # both hosts pass their first health checks (rise 2, 1 s)
        lap("start")

        problems["rate_limit_shared"], figures["rate_limit"] = check_rate_limit_shared(
            host_port)
        figures["redis_keys"] = redis.Redis.from_url(REDIS_URL).dbsize()
        if not figures["redis_keys"]:
            problems["rate_limit_shared"].append("no counter in Redis database 5")
        problems["session_on_both_hosts"] = check_session_on_both(host_port, clinic)

        lap("rate_limit_and_session_checks")
        # The day: both hosts for `seconds`, kill host B, host A alone for `seconds`.
        settle = 3.0  # the balancer takes the dead host out within about 1.5 s
        warm_up = min(3.0, seconds / 2)  # therapists sign in, connections open
        begin = time.perf_counter() + warm_up
        day = Day(stop=begin + 2 * seconds + settle, links=list(reversed(clinic.links)))
        rng = random.Random(21)
        threads: list[threading.Thread] = []
        staff_users = max(1, round(users * 0.3))
        for n in range(users):
            if n < staff_users:
                email, codes = clinic.staff[n % len(clinic.staff)]
                threads.append(threading.Thread(target=therapist_user, daemon=True, args=(
                    day, source_address(n), lb_port, email, codes, clinic.password,
                    random.Random(rng.random()))))
            else:
                threads.append(threading.Thread(target=client_user, daemon=True, args=(
                    day, source_address(n), lb_port, random.Random(rng.random()))))
        load_before = os.getloadavg()
        for thread in threads:
            thread.start()
        time.sleep(max(0.0, begin - time.perf_counter()))
        cpu_start = host_cpu(hosts)
        time.sleep(max(0.0, begin + seconds - time.perf_counter()))
        killed_at = time.perf_counter()
        cpu_both = host_cpu(hosts) - cpu_start
        hosts[1].kill()
        cpu_a = host_cpu(hosts[:1])
        for thread in threads:
            thread.join(2 * seconds + settle + TIMEOUT + 10)
        end = time.perf_counter()
        cpu_one = host_cpu(hosts[:1]) - cpu_a
        load_after = os.getloadavg()
        # Host A's CPU during the settling seconds counts against the one-host phase.
        figures["both_hosts"] = phase_figures(day.records, begin, killed_at, cpu_both)
        figures["one_host"] = phase_figures(day.records, killed_at, end, cpu_one)
        figures["one_host_after_settling"] = phase_figures(day.records, killed_at + settle,
                                                           end, 0.0)
        figures["errors_by_kind"] = dict(Counter(
            f"{r[0]}: {r[3]}" for r in day.records if r[3] is not None))
        acknowledged = sum(s.acknowledged for s in day.sent)
        figures["submissions"] = {"sent": len(day.sent), "acknowledged": acknowledged,
                                  "links_left": len(day.links)}
        stored = stored_submissions(database.url, [link_id for _t, link_id in clinic.links])
        figures["submissions"]["stored"] = len(stored)
        problems["submissions"] = submission_problems(day.sent, stored)
        if not acknowledged:
            problems["submissions"].append("no submission was acknowledged")
        if figures["one_host_after_settling"]["errors"]:
            problems["submissions"].append(
                f"{figures['one_host_after_settling']['errors']} errors after the balancer "
                "had taken the dead host out")
        if not figures["both_hosts"]["by_host"].get("hostb"):
            problems["submissions"].append("host B served nothing: the balancer did not "
                                           "spread the load")

        lap("day")
        produced, errors = run_digests(env, folder)
        runs, emails, documents = stored_digests(database.url)
        problems["one_digest_per_week"] = [f"a scheduler failed: {e[-800:]}" for e in errors]
        problems["one_digest_per_week"] += digest_problems(runs, emails, documents,
                                                           clinic.supervisors, produced)
        lap("digests")
        figures["digests"] = {"runs": sum(runs.values()), "documents": documents,
                              "emails": sum(emails.values()), "produced_by_each":
                              [sum(p) for p in produced]}

        problems["processes"] = [f"{p.name} stopped (exit {p.popen.returncode})"
                                 for p in schedulers + hosts[:1] + [balancer] if not p.alive()]
        problems["processes"] += [f"{p.name}: {line[:200]}" for p in hosts + schedulers
                                  for line in p.bad_lines()]
        figures["setup"] = {"hosts": 2, "workers_per_host": workers,
                            "threads_per_worker": 8, "users": users, "clients": clients,
                            "therapists": therapists, "supervisors": supervisors,
                            "cpus_on_machine": os.cpu_count()}
        figures["load_average"] = {"before": [round(x, 2) for x in load_before],
                                   "after": [round(x, 2) for x in load_after]}
    finally:
        if outer_keys is None:
            os.environ.pop("OUTCOME_ENCRYPTION_KEYS", None)
        else:
            os.environ["OUTCOME_ENCRYPTION_KEYS"] = outer_keys
        for process in reversed(processes):
            process.stop()
        database.drop()
        if keep:
            print(f"logs kept in {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES)
    parser.add_argument("--users", type=int, default=24)
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="measured seconds with both hosts, and again with one")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per host")
    parser.add_argument("--clients", type=int, default=1200)
    parser.add_argument("--therapists", type=int, default=8)
    parser.add_argument("--keep", action="store_true", help="keep the logs' folder")
    args = parser.parse_args()
    figures = run(args.postgres_url, users=args.users, seconds=args.seconds,
                  workers=args.workers, clients=args.clients, therapists=args.therapists,
                  keep=args.keep)
    print(json.dumps(figures, indent=2))
    failed = {name: found for name, found in figures["problems"].items() if found}
    for name, found in failed.items():
        print(f"FAILED {name}: {found[:5]}", file=sys.stderr)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
