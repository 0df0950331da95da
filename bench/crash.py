"""Crash safety: SIGKILL the web server under API load, restart it, and check the data.

On a fresh database (SQLite file or a PostgreSQL schema of its own) with one clinic, a
therapist with an API token and ``--clients`` clients in care, each of ``--kills``
rounds

1. has ``outcome serve`` (gunicorn, 2 workers of 8 threads) running on a free loopback port;
2. drives a submission load: ``--threads`` threads post PHQ-9 or GAD-7 answers
   (random, with the odd critical PHQ-9 item 9) for random clients to
   ``/api/v1/clients/{code}/administrations``, each request with a fresh
   ``Idempotency-Key``, and record what came back: 2xx (acknowledged, with its body),
   another status, or no answer at all;
3. at a random moment (0.1 to 1.5 s into the load) SIGKILLs a random *worker*
   (gunicorn respawns it; the load goes on a little, now partly on the new worker) or
   the *master* and then every worker (the whole service dies, as in a power cut);
4. stops the load and the server, starts a new server, and checks:

   a. every acknowledged submission is stored exactly once: the administration id of
      the response, with the idempotency key derived from the request's
      (``"api:" + sha256(f"{token_id}:{key}")[:60]``), the client's episode, the
      instrument and the answers sent; this is checked again after every later round;
   b. every request that was not acknowledged, sent again with its same
      ``Idempotency-Key`` (a client retrying after the crash), now succeeds: replayed
      if it had been committed before the kill (its answer was lost), stored now if
      not; either way exactly one administration for the key;
   c. nothing is half-written: every API administration has its idempotency record
      (with this administration in its stored body) and every record its
      administration; each client has at least as many audited submissions as
      administrations; every episode with administrations has a signals row whose
      series (last 20 valid scores per instrument, oldest first), latest score and
      session count agree with its administrations; every critical answer is in
      exactly one critical alert; the urgency is 0 exactly when one is open;
   d. the database is sound: SQLite ``PRAGMA integrity_check`` is ``ok`` and
      ``PRAGMA foreign_key_check`` empty; on both backends, no row breaks a foreign
      key or a unique constraint of the model (partial indexes included), and on
      PostgreSQL every index of the schema is valid.

Lost, duplicated, half-written, integrity failures and unrecovered retries must all be
0: any other count exits non-zero. SIGKILL kills processes, not the machine: pages the
kernel already holds still reach the disk, so this shows that what the application
acknowledges is committed and that no crash leaves a partial write; it does not test
the disk's flush (``synchronous=FULL`` on SQLite, fsync on PostgreSQL).

Linux only (worker processes are found in /proc). Run: ``make crash`` or
``.venv/bin/python -m bench.crash --kills 200 --db sqlite|postgresql [--seed N]
[--postgres-url URL]``. Each server's logs are kept in the run's folder.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import http.client
import json
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
import uuid
from collections import Counter
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench.forms import free_port

ROOT = Path(__file__).resolve().parent.parent
OUTCOME = str(Path(sys.executable).parent / "outcome")
DEFAULT_POSTGRES_URL = os.environ.get("OUTCOME_TEST_POSTGRES_URL",
                                      "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SERIES_KEPT = 20  # outcome.services.signals.SERIES_KEPT
KILL_WINDOW = (0.1, 1.5)  # seconds into the load
AFTER_WORKER_KILL = (0.2, 0.6)  # load kept up after the respawned worker is there
REQUEST_TIMEOUT = 15.0
MAX_REQUESTS_PER_THREAD = 1000  # per round
ROUND_SECONDS = 60.0  # no load goes on longer than this in one round
RETRY_ATTEMPTS = 4
SERVER_ERROR = re.compile(r'^.*" 5\d\d .*$', re.MULTILINE)
INSTRUMENTS = {"phq9": 9, "gad7": 7}


def derived_key(token_id: int, key: str) -> str:
    """The administration's idempotency key for a request's ``Idempotency-Key``
    (outcome.web.api.routes._service_key)."""
    return "api:" + hashlib.sha256(f"{token_id}:{key}".encode()).hexdigest()[:60]


# --- the clinic ------------------------------------------------------------------------------


@dataclass
class Clinic:
    """A migrated database with a clinic, a therapist with an API token, and clients."""

    url: str
    backend: str
    engine: Any
    factory: Any
    secret: str
    token_id: int
    episodes: dict[str, int]  # client code -> open episode id
    clients: dict[str, int]  # client code -> client id

    @property
    def codes(self) -> list[str]:
        return sorted(self.episodes)


def prepare(url: str, clients: int) -> Clinic:
    """Migrate the empty database at ``url`` and commit the clinic."""
    from outcome import schema
    from outcome.db import make_engine
    from outcome.db import make_session_factory
    from outcome.db import transaction
    from outcome.models import Clinic as ClinicRow
    from outcome.models import User
    from outcome.services.api_tokens import create_token
    from outcome.services.clients import register_client

    engine = make_engine(url)
    schema.upgrade(engine)
    factory = make_session_factory(engine)
    now = dt.datetime.now(dt.UTC)
    episodes, client_ids = {}, {}
    with transaction(factory) as session:
        clinic = ClinicRow(slug="crash", name="Crash Clinic")
        session.add(clinic)
        session.flush()
        admin = User(clinic_id=clinic.id, email="admin@crash.example.org",
                     display_name="Ada Admin", is_admin=True)
        therapist = User(clinic_id=clinic.id, email="t@crash.example.org",
                         display_name="Theo Therapist", is_therapist=True)
        session.add_all([admin, therapist])
        session.flush()
        token, secret = create_token(session, user=therapist, name="EHR",
                                     scopes=("read", "write"), created_by=therapist, now=now)
        for n in range(clients):
            client, episode = register_client(session, therapist, name=f"Client {n}",
                                              opened_on=now.date())
            episodes[client.code] = episode.id
            client_ids[client.code] = client.id
        token_id = token.id
    return Clinic(url, engine.dialect.name, engine, factory, secret, token_id, episodes,
                  client_ids)


# --- the server ------------------------------------------------------------------------------


def _stat(pid: int) -> list[bytes] | None:
    """Fields of /proc/<pid>/stat after the command name (state, ppid, ...)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None


def alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] not in (b"Z", b"X")


def children(pid: int) -> list[int]:
    """Live processes whose parent is ``pid``."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and int(fields[1]) == pid and fields[0] not in (b"Z", b"X"):
                found.append(int(entry.name))
    return sorted(found)


def wait_for(condition: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Server:
    """``outcome serve`` on a free loopback port, in a process group of its own.

    The master is the process started here (gunicorn runs inside ``outcome serve``);
    its workers are its children. Logs go to ``folder``; gunicorn's control socket too
    (``XDG_RUNTIME_DIR``), so runs never share ``~/.gunicorn/gunicorn.ctl``.
    """

    def __init__(self, url: str, folder: Path, workers: int = 2) -> None:
        self.folder = folder
        self.workers = workers
        self.port = free_port()
        folder.mkdir(parents=True, exist_ok=True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("OUTCOME_")}
        self.env.update(OUTCOME_DATABASE_URL=url, OUTCOME_INSTANCE_PATH=str(folder),
                        OUTCOME_SECRET_KEY=secrets.token_urlsafe(40),
                        OUTCOME_API_RATE_LIMIT="1000000 per minute",
                        XDG_RUNTIME_DIR=str(folder))
        self.process: subprocess.Popen | None = None
        self.boot_s = 0.0

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> Server:
        started = time.monotonic()
        with (self.folder / "stdout.log").open("wb") as out, \
                (self.folder / "stderr.log").open("wb") as err:
            self.process = subprocess.Popen(
                [OUTCOME, "serve", "--host", "127.0.0.1", "--port", str(self.port),
                 "--workers", str(self.workers)],
                env=self.env, cwd=ROOT, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                start_new_session=True)
        deadline = started + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"outcome serve exited with {self.process.returncode}:\n"
                                   f"{self.log()[-3000:]}")
            try:
                if (self.request("GET", "/healthz", timeout=2).status == 200
                        and self.log().count("Booting worker") >= self.workers
                        and len(self.worker_pids()) >= self.workers):
                    self.boot_s = time.monotonic() - started
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        self.power_cut()
        raise RuntimeError(f"outcome serve did not answer /healthz in 60 s:\n{self.log()}")

    def worker_pids(self) -> list[int]:
        return children(self.pid)

    def kill_worker(self, pid: int) -> None:
        assert pid in self.worker_pids()
        os.kill(pid, signal.SIGKILL)

    def power_cut(self) -> None:
        """SIGKILL the master, then every process left in its group (the workers)."""
        if self.process is None or self.process.returncode is not None:
            return
        workers = self.worker_pids()
        os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)  # its own group: start_new_session
        self.process.wait(timeout=30)
        if not wait_for(lambda: not any(alive(pid) for pid in workers), 30):
            raise RuntimeError(f"workers {workers} survived SIGKILL")

    def stop(self) -> None:
        """A graceful stop (SIGTERM), after the load has ended."""
        if self.process is None or self.process.poll() is not None:
            return
        workers = self.worker_pids()
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.power_cut()
        wait_for(lambda: not any(alive(pid) for pid in workers), 30)

    def log(self) -> str:
        return (self.folder / "stderr.log").read_text(errors="replace")

    def access_log(self) -> str:
        return (self.folder / "stdout.log").read_text(errors="replace")

    def request(self, method: str, path: str, body: str | None = None,
                headers: dict[str, str] | None = None,
                timeout: float = REQUEST_TIMEOUT) -> Reply:
        """One request on a new connection (as separate clients would)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            data = response.read()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()},
                         data)
        finally:
            conn.close()


# --- the load ------------------------------------------------------------------------------


@dataclass
class Submission:
    """One request of the load, and what became of it."""

    key: str  # the Idempotency-Key sent
    code: str
    instrument: str
    answers: dict[str, int]
    round: int
    sent: float = 0.0  # time.monotonic()
    done: float = 0.0
    status: int | None = None  # None: no answer (connection refused, reset, timeout)
    error: str | None = None
    administration_id: int | None = None  # from the 2xx body
    committed_unacknowledged: bool = False  # stored although no 2xx came back
    retry_status: int | None = None
    retry_replayed: bool = False

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def path(self) -> str:
        return f"/api/v1/clients/{self.code}/administrations"

    @property
    def body(self) -> str:
        return json.dumps({"instrument": self.instrument, "answers": self.answers})


def random_submission(rng: random.Random, codes: list[str], round_no: int) -> Submission:
    instrument = rng.choice(sorted(INSTRUMENTS))
    answers = {f"{instrument}_{i}": rng.randint(0, 3)
               for i in range(1, INSTRUMENTS[instrument] + 1)}
    if instrument == "phq9" and rng.random() < 0.85:
        answers["phq9_9"] = 0  # the critical item, answered now and then
    key = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    return Submission(key, rng.choice(codes), instrument, answers, round_no)


def send(server: Server, clinic: Clinic, item: Submission) -> Reply:
    headers = {"Authorization": f"Bearer {clinic.secret}",
               "Content-Type": "application/json", "Idempotency-Key": item.key}
    return server.request("POST", item.path, item.body, headers)


class Load:
    """``threads`` threads posting submissions until stopped (bounded in count and time)."""

    def __init__(self, server: Server, clinic: Clinic, threads: int, seed: int,
                 round_no: int) -> None:
        self.server, self.clinic, self.round = server, clinic, round_no
        self.stopping = threading.Event()
        self.deadline = time.monotonic() + ROUND_SECONDS
        self.results: list[list[Submission]] = [[] for _ in range(threads)]
        self.threads = [threading.Thread(target=self._run, args=(n, seed * 1000 + n),
                                         daemon=True) for n in range(threads)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def _run(self, n: int, seed: int) -> None:
        rng = random.Random(seed)
        codes = self.clinic.codes
        for _ in range(MAX_REQUESTS_PER_THREAD):
            if self.stopping.is_set() or time.monotonic() > self.deadline:
                return
            item = random_submission(rng, codes, self.round)
            item.sent = time.monotonic()
            try:
                reply = send(self.server, self.clinic, item)
                item.status = reply.status
                if item.acknowledged:
                    item.administration_id = reply.json()["administration"]["id"]
            except (OSError, http.client.HTTPException, ValueError, KeyError) as exc:
                item.error = type(exc).__name__
            item.done = time.monotonic()
            self.results[n].append(item)
            if item.status is None:
                time.sleep(0.02)  # the server is down: do not spin

    def stop(self) -> list[Submission]:
        self.stopping.set()
        for thread in self.threads:
            thread.join(REQUEST_TIMEOUT + 10)
        if any(thread.is_alive() for thread in self.threads):
            raise RuntimeError("a load thread hung")
        return sorted((s for results in self.results for s in results), key=lambda s: s.sent)

    def __exit__(self, *exc_info) -> None:
        self.stop()


# --- the checks ------------------------------------------------------------------------------


@dataclass
class Findings:
    """Problems found, each named once (a problem seen again in a later round is one)."""

    lost: set[str] = field(default_factory=set)
    duplicated: set[str] = field(default_factory=set)
    half_written: set[str] = field(default_factory=set)
    integrity: set[str] = field(default_factory=set)
    unrecovered: set[str] = field(default_factory=set)

    def total(self) -> int:
        return sum(len(getattr(self, name)) for name in self.names())

    @staticmethod
    def names() -> tuple[str, ...]:
        return ("lost", "duplicated", "half_written", "integrity", "unrecovered")


def _stored_by_key(session, keys: list[str]) -> dict[str, list[Any]]:
    from sqlalchemy import select

    from outcome.models import Administration

    found: dict[str, list[Any]] = defaultdict(list)
    for start in range(0, len(keys), 500):
        for row in session.execute(select(
                Administration.id, Administration.idempotency_key, Administration.episode_id,
                Administration.instrument_id, Administration.answers).where(
                Administration.idempotency_key.in_(keys[start:start + 500]))):
            found[row.idempotency_key].append(row)
    return found


def check_stored(clinic: Clinic, ledger: list[Submission], findings: Findings) -> None:
    """(a) and (b): each acknowledged or recovered submission stored once, as sent; no
    API administration that no request asked for."""
    from sqlalchemy import select

    from outcome.db import transaction
    from outcome.models import Administration

    by_derived = {derived_key(clinic.token_id, s.key): s for s in ledger}
    with transaction(clinic.factory) as session:
        api_rows = session.execute(select(
            Administration.id, Administration.idempotency_key, Administration.episode_id,
            Administration.instrument_id, Administration.answers).where(
            Administration.idempotency_key.like("api:%"))).all()
    stored: dict[str, list[Any]] = defaultdict(list)
    for row in api_rows:
        stored[row.idempotency_key].append(row)
    for key, rows in stored.items():
        if key not in by_derived:
            findings.duplicated.add(f"administration {rows[0].id}: key {key} sent by nobody")
        elif len(rows) > 1:
            findings.duplicated.add(f"key {by_derived[key].key}: administrations "
                                    f"{sorted(r.id for r in rows)}")
    for derived, item in by_derived.items():
        expected = item.administration_id
        if expected is None:
            continue  # neither acknowledged nor recovered (counted as unrecovered)
        rows = stored.get(derived, [])
        label = "acknowledged" if item.acknowledged else "recovered"
        if not rows:
            findings.lost.add(f"{label} key {item.key} (administration {expected}): missing")
            continue
        row = rows[0]
        if row.id != expected:
            findings.lost.add(f"{label} key {item.key}: administration {expected} answered, "
                              f"{row.id} stored")
        elif (row.episode_id, row.instrument_id, row.answers) != (
                clinic.episodes[item.code], item.instrument, item.answers):
            findings.lost.add(f"{label} key {item.key}: administration {row.id} is not "
                              "what was sent")


def check_consistency(clinic: Clinic, ledger: list[Submission], findings: Findings) -> None:
    """(c): nothing half-written."""
    from sqlalchemy import func
    from sqlalchemy import select

    from outcome.db import transaction
    from outcome.models import Administration
    from outcome.models import Alert
    from outcome.models import ApiIdempotencyRecord
    from outcome.models import AuditEvent
    from outcome.models import Episode
    from outcome.models import EpisodeSignal

    by_derived = {derived_key(clinic.token_id, s.key): s for s in ledger}
    with transaction(clinic.factory) as session:
        administrations = session.scalars(select(Administration).order_by(
            Administration.episode_id, Administration.completed_dt, Administration.id)).all()
        records = {r.key: r for r in session.scalars(select(ApiIdempotencyRecord).where(
            ApiIdempotencyRecord.token_id == clinic.token_id))}
        signals = {s.episode_id: s for s in session.scalars(select(EpisodeSignal))}
        alerts = session.scalars(select(Alert)).all()
        audited = dict(session.execute(
            select(AuditEvent.client_id, func.count()).where(
                AuditEvent.action == "api.administration.submit",
                AuditEvent.outcome == "allowed").group_by(AuditEvent.client_id)).all())
        client_of = dict(session.execute(select(Episode.id, Episode.client_id)).all())
    by_id = {a.id: a for a in administrations}
    # Every API administration has its idempotency record, and each record its row.
    for row in administrations:
        if not row.idempotency_key.startswith("api:"):
            continue
        item = by_derived.get(row.idempotency_key)
        record = records.get(item.key) if item else None
        if record is None:
            findings.half_written.add(f"administration {row.id}: no idempotency record")
        elif (record.status_code, (record.body.get("administration") or {}).get("id")) != (
                201, row.id):
            findings.half_written.add(f"administration {row.id}: its idempotency record "
                                      f"{record.id} answers something else")
        if (row.scores or {}).get("primary") is None and row.is_valid:
            findings.half_written.add(f"administration {row.id}: valid but not scored")
    for key, record in records.items():
        admin_id = (record.body.get("administration") or {}).get("id")
        row = by_id.get(admin_id)
        if row is None or row.idempotency_key != derived_key(clinic.token_id, key):
            findings.half_written.add(f"idempotency record {record.id}: administration "
                                      f"{admin_id} is not stored under its key")
    # Each submission was audited (in its own, earlier transaction).
    per_client = Counter(client_of[a.episode_id] for a in administrations
                         if a.idempotency_key.startswith("api:"))
    for client_id, count in per_client.items():
        if audited.get(client_id, 0) < count:
            findings.half_written.add(f"client {client_id}: {count} API administrations, "
                                      f"{audited.get(client_id, 0)} audited submissions")
    # Signals agree with the administrations.
    superseded = {a.supersedes_id for a in administrations if a.supersedes_id}
    series: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in administrations:
        if row.respondent != "client" or row.id in superseded:
            continue
        scores = series[row.episode_id][row.instrument_id]
        primary = (row.scores or {}).get("primary")
        if row.is_valid and primary is not None:
            scores.append(float(primary))
    for episode_id, instruments in series.items():
        signal_row = signals.get(episode_id)
        if signal_row is None:
            findings.half_written.add(f"episode {episode_id}: administrations, no signals row")
            continue
        outcomes = (signal_row.state or {}).get("outcomes", {})
        if set(outcomes) != set(instruments):
            findings.half_written.add(f"episode {episode_id}: signals for {sorted(outcomes)}, "
                                      f"administrations of {sorted(instruments)}")
        for instrument_id, scores in instruments.items():
            got = outcomes.get(instrument_id)
            if got is None:
                continue
            if ([float(v) for v in got.get("series", [])] != scores[-SERIES_KEPT:]
                    or got.get("session") != len(scores)
                    or (scores and got.get("latest") != scores[-1])):
                findings.half_written.add(
                    f"episode {episode_id} {instrument_id}: signals series "
                    f"{got.get('series')} (session {got.get('session')}), administrations "
                    f"{scores[-SERIES_KEPT:]} ({len(scores)})")
    # Every critical answer is in exactly one critical alert; urgency 0 while one is open.
    triggers: dict[int, Counter] = defaultdict(Counter)
    open_critical = set()
    for alert in alerts:
        if alert.kind in ("critical_item", "critical_unanswered"):
            for trigger in (alert.detail or {}).get("triggers", []):
                triggers[alert.episode_id][(alert.kind, trigger)] += 1
                if by_id.get(trigger) is None or by_id[trigger].episode_id != alert.episode_id:
                    findings.half_written.add(f"alert {alert.id}: trigger {trigger} is not "
                                              "an administration of its episode")
            if alert.status == "open":
                open_critical.add(alert.episode_id)
    for row in administrations:
        scores = row.scores or {}
        for kind, items in (("critical_item", scores.get("critical_items")),
                            ("critical_unanswered", scores.get("critical_unanswered"))):
            if items and triggers[row.episode_id][(kind, row.id)] != 1:
                findings.half_written.add(
                    f"administration {row.id}: critical answer in "
                    f"{triggers[row.episode_id][(kind, row.id)]} {kind} alerts")
    for episode_id, signal_row in signals.items():
        if (signal_row.urgency == 0) != (episode_id in open_critical):
            findings.half_written.add(f"episode {episode_id}: urgency {signal_row.urgency} "
                                      f"with{'' if episode_id in open_critical else ' no'} "
                                      "open critical alert")


def check_integrity(clinic: Clinic, findings: Findings) -> None:
    """(d): the database's own checks, and every foreign key and unique constraint of the
    model checked row by row."""
    from sqlalchemy import and_
    from sqlalchemy import exists
    from sqlalchemy import func
    from sqlalchemy import select
    from sqlalchemy import text

    from outcome.db import SQLITE_BEGIN_OPTION
    from outcome.models import Base
    from outcome.models import load_all

    load_all()
    with clinic.engine.connect().execution_options(**{SQLITE_BEGIN_OPTION: "DEFERRED"}) as conn:
        if clinic.backend == "sqlite":
            result = [row[0] for row in conn.exec_driver_sql("PRAGMA integrity_check")]
            if result != ["ok"]:
                findings.integrity.add(f"integrity_check: {result[:5]}")
            for row in conn.exec_driver_sql("PRAGMA foreign_key_check"):
                findings.integrity.add(f"foreign_key_check: {tuple(row)}")
        else:
            for (name,) in conn.execute(text(
                    "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = current_schema() "
                    "AND NOT (i.indisvalid AND i.indisready AND i.indislive)")):
                findings.integrity.add(f"index {name} is not valid")
        for table in Base.metadata.sorted_tables:
            for fk in table.foreign_key_constraints:
                child, parent = table.alias("child"), fk.referred_table.alias("parent")
                pairs = [(child.c[element.parent.name], parent.c[element.column.name])
                         for element in fk.elements]
                orphans = conn.scalar(select(func.count()).select_from(child).where(
                    *[c.is_not(None) for c, _ in pairs],
                    ~exists().where(and_(*[p == c for c, p in pairs]))))
                if orphans:
                    findings.integrity.add(f"{table.name}: {orphans} rows break {fk.name}")
            uniques: list[tuple[str, list[Any], Any]] = []
            if table.primary_key.columns:
                uniques.append(("primary key", list(table.primary_key.columns), None))
            for constraint in table.constraints:
                if constraint.__class__.__name__ == "UniqueConstraint":
                    uniques.append((constraint.name, list(constraint.columns), None))
            for index in table.indexes:
                if index.unique:
                    where = index.dialect_kwargs.get(f"{clinic.backend}_where")
                    uniques.append((index.name, list(index.expressions), where))
            for name, columns, where in uniques:
                query = (select(*columns).where(*[c.is_not(None) for c in columns])
                         .group_by(*columns).having(func.count() > 1))
                if where is not None:
                    query = query.where(where)
                duplicates = conn.execute(query).all()
                if duplicates:
                    findings.integrity.add(f"{table.name}: {len(duplicates)} values repeated "
                                           f"in {name}")
        conn.rollback()


def stored_now(clinic: Clinic, items: list[Submission]) -> set[str]:
    """The request keys among ``items`` whose administration is stored."""
    from outcome.db import transaction

    keys = {derived_key(clinic.token_id, s.key): s.key for s in items}
    with transaction(clinic.factory) as session:
        return {keys[k] for k in _stored_by_key(session, list(keys))}


def retry(server: Server, clinic: Clinic, items: list[Submission], threads: int,
          findings: Findings) -> None:
    """(b): send each unacknowledged request again with its same Idempotency-Key."""
    todo = list(items)
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                if not todo:
                    return
                item = todo.pop()
            reply = None
            for attempt in range(RETRY_ATTEMPTS):
                try:
                    reply = send(server, clinic, item)
                    if 200 <= reply.status < 300 or 400 <= reply.status < 500:
                        break
                except (OSError, http.client.HTTPException):
                    reply = None
                time.sleep(0.2 * (attempt + 1))
            if reply is None:
                item.retry_status = None
            else:
                item.retry_status = reply.status
                item.retry_replayed = reply.headers.get("idempotent-replayed") == "true"
                if 200 <= reply.status < 300:
                    item.administration_id = reply.json()["administration"]["id"]

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(RETRY_ATTEMPTS * (REQUEST_TIMEOUT + 1) * (len(items) // threads + 1))
    if any(thread.is_alive() for thread in pool):
        raise RuntimeError("a retry hung")
    for item in items:
        if item.administration_id is None:
            findings.unrecovered.add(f"key {item.key}: retry answered {item.retry_status}")
        elif item.retry_replayed != item.committed_unacknowledged:
            # Stored before the kill: the retry must replay it; not stored: store it now.
            findings.half_written.add(
                f"key {item.key}: {'stored' if item.committed_unacknowledged else 'not stored'}"
                f" before the retry, which was {'' if item.retry_replayed else 'not '}replayed")


# --- the rounds ------------------------------------------------------------------------------


@dataclass
class Report:
    backend: str
    kills: Counter = field(default_factory=Counter)
    respawned: int = 0
    sent: int = 0
    acknowledged: int = 0
    acknowledged_after_worker_kill: int = 0
    no_answer: int = 0
    other_status: Counter = field(default_factory=Counter)
    committed_unacknowledged: int = 0
    retried: int = 0
    recovered: int = 0
    replayed: int = 0
    server_5xx: int = 0
    server_tracebacks: int = 0
    administrations: int = 0
    restart_s: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    rounds_done: int = 0
    rounds_planned: int = 0
    findings: Findings = field(default_factory=Findings)

    @property
    def violations(self) -> int:
        return self.findings.total() + (self.rounds_done != self.rounds_planned)

    def figures(self) -> dict[str, Any]:
        return {
            "backend": self.backend, "kills": self.rounds_done,
            "worker_kills": self.kills["worker"], "master_kills": self.kills["master"],
            "workers_respawned": self.respawned, "sent": self.sent,
            "acknowledged": self.acknowledged,
            "acknowledged_after_worker_kill": self.acknowledged_after_worker_kill,
            "unacknowledged": self.sent - self.acknowledged, "no_answer": self.no_answer,
            "other_status": dict(self.other_status),
            "committed_unacknowledged": self.committed_unacknowledged,
            "retried": self.retried, "recovered": self.recovered, "replayed": self.replayed,
            **{name: len(getattr(self.findings, name)) for name in Findings.names()},
            "server_5xx": self.server_5xx, "server_tracebacks": self.server_tracebacks,
            "administrations": self.administrations,
            "restart_s_mean": round(sum(self.restart_s) / max(1, len(self.restart_s)), 2),
            "wall_s": round(self.wall_s, 1), "violations": self.violations}

    def summary(self) -> str:
        f = self.findings
        return (f"crash safety ({self.backend}): {self.rounds_done} SIGKILLs "
                f"({self.kills['worker']} worker, {self.kills['master']} master with all "
                f"workers) under API load: {self.sent} submissions sent, {self.acknowledged} "
                f"acknowledged, {len(f.lost)} lost, {len(f.duplicated)} duplicated, "
                f"{len(f.half_written)} half-written, {len(f.integrity)} integrity failures; "
                f"{self.retried} unacknowledged retried with the same Idempotency-Key, "
                f"{self.recovered} recovered ({self.replayed} replayed: committed before the "
                f"kill); {self.server_5xx} 5xx; {self.wall_s:.0f} s")


def plan(kills: int, rng: random.Random) -> list[str]:
    """Half worker kills, half master kills (the odd one a worker), in seeded order."""
    kinds = ["worker"] * (kills - kills // 2) + ["master"] * (kills // 2)
    rng.shuffle(kinds)
    return kinds


def run(url: str, kills: int, *, folder: Path, seed: int = 1, clients: int = 30,
        threads: int = 8, workers: int = 2, time_limit: float = 4 * 3600,
        log: Callable[[str], None] | None = None) -> Report:
    """The whole harness on the empty database at ``url``; logs kept under ``folder``."""
    started = time.monotonic()
    rng = random.Random(seed)
    clinic = prepare(url, clients)
    report = Report(clinic.backend, rounds_planned=kills)
    ledger: list[Submission] = []
    server = Server(url, folder / "server-000", workers).start()
    servers = [server]
    try:
        for round_no, kind in enumerate(plan(kills, rng), start=1):
            if time.monotonic() - started > time_limit:
                if log:
                    log(f"time limit of {time_limit:.0f} s reached after {round_no - 1} rounds")
                break
            kill_at = rng.uniform(*KILL_WINDOW)
            after = rng.uniform(*AFTER_WORKER_KILL)
            with Load(server, clinic, threads, rng.getrandbits(32), round_no) as load:
                time.sleep(kill_at)
                killed_at = time.monotonic()
                if kind == "worker":
                    victims = server.worker_pids()
                    victim = rng.choice(victims)
                    server.kill_worker(victim)
                    # gunicorn notices (SIGCHLD) and forks a new worker.
                    if wait_for(lambda s=server, v=victim: len(
                            [p for p in s.worker_pids() if p != v]) >= workers, 30):
                        report.respawned += 1
                    time.sleep(after)
                    items = load.stop()
                    server.stop()
                else:
                    server.power_cut()
                    items = load.stop()
            report.kills[kind] += 1
            server = Server(url, folder / f"server-{round_no:03d}", workers).start()
            servers.append(server)
            report.restart_s.append(server.boot_s)
            ledger.extend(items)
            unacknowledged = [s for s in items if not s.acknowledged]
            stored = stored_now(clinic, unacknowledged)
            for item in unacknowledged:
                item.committed_unacknowledged = item.key in stored
            retry(server, clinic, unacknowledged, threads, report.findings)
            check_stored(clinic, ledger, report.findings)
            check_consistency(clinic, ledger, report.findings)
            check_integrity(clinic, report.findings)
            acked = sum(s.acknowledged for s in items)
            report.sent += len(items)
            report.acknowledged += acked
            if kind == "worker":
                report.acknowledged_after_worker_kill += sum(
                    s.acknowledged and s.sent > killed_at for s in items)
            report.no_answer += sum(s.status is None for s in items)
            report.other_status.update(s.status for s in items
                                       if s.status is not None and not s.acknowledged)
            report.committed_unacknowledged += len(stored)
            report.retried += len(unacknowledged)
            report.recovered += sum(s.administration_id is not None for s in unacknowledged)
            report.replayed += sum(s.retry_replayed for s in unacknowledged)
            report.rounds_done = round_no
            if log:
                log(f"[crash] {round_no}/{kills} {kind} killed at {kill_at:.2f} s: "
                    f"{len(items)} sent, {acked} acknowledged, {len(unacknowledged)} retried "
                    f"({len(stored)} committed before the kill); restart "
                    f"{server.boot_s:.1f} s; problems so far {report.findings.total()}")
    finally:
        server.stop()
        for each in servers:
            report.server_5xx += len(SERVER_ERROR.findall(each.access_log()))
            report.server_tracebacks += each.log().count("Traceback")
        report.administrations = sum(s.administration_id is not None for s in ledger)
        clinic.engine.dispose()
        report.wall_s = time.monotonic() - started
    return report


# --- the command -----------------------------------------------------------------------------


def _postgres_schema(postgres_url: str) -> tuple[str, Callable[[], None]]:
    """A new, empty schema on the server; its URL and how to drop it."""
    from sqlalchemy import create_engine
    from sqlalchemy import text

    name = f"outcome_crash_{os.getpid()}_{secrets.token_hex(4)}"
    admin = create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    separator = "&" if "?" in postgres_url else "?"

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        admin.dispose()

    return f"{postgres_url}{separator}options={quote(f'-csearch_path={name}')}", drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--clients", type=int, default=30)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--time-limit", type=float, default=4 * 3600,
                        help="seconds; rounds not started by then count as a failure")
    parser.add_argument("--keep", action="store_true",
                        help="keep the database and the servers' logs")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.kills < 1:
        parser.error("--kills must be at least 1")

    folder = Path(tempfile.mkdtemp(prefix="outcome-crash-"))
    drop = None
    if args.db == "sqlite":
        url = f"sqlite:///{folder / 'crash.sqlite3'}"
    else:
        url, drop = _postgres_schema(args.postgres_url)
    try:
        report = run(url, args.kills, folder=folder, seed=args.seed, clients=args.clients,
                     threads=args.threads, time_limit=args.time_limit,
                     log=None if args.json else lambda line: print(line, flush=True))
    finally:
        if drop is not None and not args.keep:
            drop()
    if args.json:
        print(json.dumps(report.figures()))
    else:
        for name in Findings.names():
            for problem in sorted(getattr(report.findings, name))[:10]:
                print(f"{name}: {problem}")
        print(json.dumps(report.figures()))
        print(report.summary())
    if args.keep:
        print(f"database and logs kept in {folder}" + (f" ({url})" if drop else ""),
              file=sys.stderr)
    elif not report.violations:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        print(f"logs kept in {folder}", file=sys.stderr)
    sys.exit(1 if report.violations else 0)


if __name__ == "__main__":
    main()
