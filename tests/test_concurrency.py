"""Real concurrency on a real database of the run's backend (issue 9).

Not the rolled-back shared connection of the other tests: the module migrates a fresh
database of its own once, each test commits a clinic of its own in it, and then

- many threads send requests at once to a real gunicorn (``outcome serve`` with two or
  more worker processes on a free loopback port), or
- two scheduler processes run the digest job at the same moment, week after week.

What must hold: an API submission sent many times at once (same ``Idempotency-Key``)
or a questionnaire page double-submitted is stored once, and every caller gets the one
result; submissions for different clients, and a client's two questionnaires sent
together, are all stored with none lost and signals that include both; an alert
acknowledged as a new critical answer arrives leaves that answer alerted and the
urgency agreeing with the open alerts (no deadlock between the two); two
schedulers produce exactly one digest and one e-mail per supervisor and week. No
request fails with a 5xx, and the server logs no "database is locked" or traceback.

Each test prints its figures (``-s`` shows them; docs/reliability.md quotes them).

The server tests share one 4-worker server and one database (booting gunicorn's workers
and migrating cost more than most tests' requests): each test counts only its own
clinic's rows and reads only the server's log lines written since it began. The test
of 40 clients starts its own 2-worker server on that database (the default of
``outcome serve``); the schedulers get a database of their own (the digest job reads
every clinic).
"""

from __future__ import annotations

import datetime as dt
import functools
import http.client
import json
import logging
import multiprocessing
import os
import queue
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from signal import SIGKILL
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import String
from sqlalchemy import cast
from sqlalchemy import func
from sqlalchemy import literal
from sqlalchemy import select

from outcome import schema
from outcome.db import make_engine
from outcome.db import make_session_factory
from outcome.db import transaction
from outcome.models import Administration
from outcome.models import Alert
from outcome.models import ApiIdempotencyRecord
from outcome.models import Client
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import EpisodeSignal
from outcome.models import OutboundEmail
from outcome.models import ReportDocument
from outcome.models import ReportRun
from outcome.models import SupervisorAssignment
from outcome.models import User
from outcome.services.api_tokens import create_token
from outcome.services.clients import register_client
from outcome.services.links import issue_link
from questionnaires.loader import builtin_library
from tests.helpers import consent_given

ROOT = Path(__file__).resolve().parent.parent
OUTCOME = str(Path(sys.executable).parent / "outcome")
LIB = builtin_library()
CSRF = re.compile(r'name="csrf_token"[^>]*?value="([^"]+)"')
BAD_LOG_LINES = ("database is locked", "Traceback", "deadlock detected", "[ERROR]")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def phq9(level: int, item9: int = 0) -> dict[str, int]:
    return {**{f"phq9_{i}": level for i in range(1, 9)}, "phq9_9": item9}


def gad7(level: int) -> dict[str, int]:
    return {f"gad7_{i}": level for i in range(1, 8)}


# --- the clinic, committed --------------------------------------------------------------


@dataclass
class Setup:
    """One test's clinic, committed: a therapist with an API token, and clients."""

    url: str
    factory: Any
    secret: str
    codes: list[str]
    clinic_id: int
    token_id: int
    episode_ids: list[int]
    link_tokens: list[str] = field(default_factory=list)

    def count(self, model, *where) -> int:
        """Rows of ``model`` of this clinic (the database holds other tests' clinics)."""
        mine = (model.token_id == self.token_id if model is ApiIdempotencyRecord
                else model.episode_id.in_(self.episode_ids))
        with transaction(self.factory) as session:
            return session.scalar(select(func.count()).select_from(model).where(mine, *where))


@pytest.fixture(scope="module")
def shared_database(databases) -> Iterator[tuple[str, Any]]:
    """The module's database, migrated once, and a session factory on it."""
    url = databases.new_url()
    engine = make_engine(url)
    schema.upgrade(engine)
    yield url, make_session_factory(engine)
    engine.dispose()


def build_clinic(url: str, factory: Any, clients: int, links: bool = False,
                 intake: Callable[[int], dict[str, dict]] | None = None) -> Setup:
    """Commit a clinic of its own in the database at ``url``; ``intake(n)``:
    {instrument: answers} stored for client ``n`` before the test."""
    from outcome.core.answers import parse_answers
    from outcome.services.submissions import submit_administration

    now = dt.datetime.now(dt.UTC)
    slug = f"concurrency-{uuid.uuid4().hex[:12]}"  # a clinic per test
    codes, tokens, episodes = [], [], []
    with transaction(factory) as session:
        clinic = Clinic(slug=slug, name="Concurrency Clinic")
        session.add(clinic)
        session.flush()
        admin = User(clinic_id=clinic.id, email=f"admin@{slug}.example.org",
                     display_name="Ada Admin", is_admin=True)
        therapist = User(clinic_id=clinic.id, email=f"t@{slug}.example.org",
                         display_name="Theo Therapist", is_therapist=True)
        session.add_all([admin, therapist])
        session.flush()
        token, secret = create_token(session, user=therapist, name="EHR",
                                     scopes=("read", "write"), created_by=therapist, now=now)
        for n in range(clients):
            client, episode = register_client(session, therapist, name=f"Client {n}",
                                              opened_on=now.date())
            codes.append(client.code)
            episodes.append(episode.id)
            consent_given(session, client, now)  # agreed before (issue 20)
            for instrument_id, answers in (intake(n) if intake else {}).items():
                instrument = LIB.get(instrument_id)
                submit_administration(
                    session, episode=episode, instrument=instrument,
                    answers=parse_answers(instrument, answers),
                    completed_dt=now - dt.timedelta(days=7),
                    idempotency_key=f"intake:{slug}:{n}:{instrument_id}", library=LIB,
                    now=now - dt.timedelta(days=7))
            if links:
                tokens.append(issue_link(session, episode=episode, purpose="pre",
                                         now=now, library=LIB)[1])
        session.flush()
        clinic_id, token_id = clinic.id, token.id
    return Setup(url, factory, secret, codes, clinic_id, token_id, episodes, tokens)


@pytest.fixture
def setup_clinic(fresh_database_url) -> Iterator[Callable[..., Setup]]:
    """``setup_clinic(clients, links=, intake=)``: a fresh migrated database with one
    clinic (for the server tests of other modules, which import it)."""
    engines = []

    def build(clients: int, links: bool = False,
              intake: Callable[[int], dict[str, dict]] | None = None) -> Setup:
        engine = make_engine(fresh_database_url)
        engines.append(engine)
        schema.upgrade(engine)
        return build_clinic(fresh_database_url, make_session_factory(engine), clients,
                            links, intake)

    yield build
    for engine in engines:
        engine.dispose()


@pytest.fixture
def shared_clinic(shared_database) -> Callable[..., Setup]:
    """``shared_clinic(clients, links=, intake=)``: a clinic of its own in the module's
    database (this module's tests)."""
    url, factory = shared_database
    return functools.partial(build_clinic, url, factory)


# --- a real server and real clients ---------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Server:
    """``outcome serve`` (gunicorn) on a free loopback port; its output kept in files."""

    def __init__(self, url: str, folder: Path, workers: int, kill: bool = False,
                 serve_args: tuple[str, ...] = ()) -> None:
        """``kill``: :meth:`stop` kills master and workers at once (this module's tests,
        which read the logs before) instead of stopping gunicorn gracefully.
        ``serve_args``: more options for ``outcome serve`` (e.g. ``--header-timeout``)."""
        self.port = free_port()
        self.kill = kill
        self.serve_args = serve_args
        self.folder = folder
        self.workers = workers
        folder.mkdir(parents=True, exist_ok=True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("OUTCOME_")}
        # Rate limits are not what is tested here (and count per worker with memory://).
        self.env.update(OUTCOME_DATABASE_URL=url, OUTCOME_INSTANCE_PATH=str(folder),
                        OUTCOME_SECRET_KEY=secrets.token_urlsafe(40),
                        OUTCOME_API_RATE_LIMIT="100000 per minute")
        # This checkout's code, not another one the venv's editable install may point at.
        self.env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        self._out = (self.folder / "stdout.log").open("wb")
        self._err = (self.folder / "stderr.log").open("wb")
        self.process = subprocess.Popen(
            [OUTCOME, "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", str(self.workers), *self.serve_args],
            env=self.env, cwd=ROOT, stdout=self._out, stderr=self._err,
            start_new_session=True)  # its own process group: master and workers
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"outcome serve exited with {self.process.returncode}:\n"
                                   f"{self.log()}")
            try:
                # Each worker builds its own app; wait until all have booted.
                if (self.request("GET", "/healthz", timeout=2).status == 200
                        and self.log().count("Booting worker") >= self.workers):
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"outcome serve did not answer /healthz in 60 s:\n{self.log()}")

    def stop(self) -> None:
        """Stop gunicorn gracefully, or with ``kill`` kill its process group at once: this
        module's tests read the logs before, and a graceful stop is not what they test
        (it waits for each worker's interpreter to wind down: about 0.4 s of CPU a
        worker, seconds on a busy machine)."""
        if self.process is not None and self.process.poll() is None:
            if self.kill:
                os.killpg(self.process.pid, SIGKILL)
                self.process.wait(timeout=30)
            else:
                self.process.terminate()
                try:
                    self.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=10)
        for handle in (self._out, self._err):
            handle.close()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def mark(self) -> tuple[int, int]:
        """Where the logs end now, in bytes: a test reads only what the server wrote after."""
        return len(self._bytes("stderr.log", self._err)), len(self._bytes("stdout.log", self._out))

    def _bytes(self, name: str, handle) -> bytes:
        if not handle.closed:
            handle.flush()
        return (self.folder / name).read_bytes()

    def log(self, since: tuple[int, int] = (0, 0)) -> str:
        """What gunicorn and the app wrote to stderr (boot, errors, tracebacks)."""
        return self._bytes("stderr.log", self._err)[since[0]:].decode(errors="replace")

    def access_log(self, since: tuple[int, int] = (0, 0)) -> str:
        return self._bytes("stdout.log", self._out)[since[1]:].decode(errors="replace")

    def request(self, method: str, path: str, body: str | bytes | None = None,
                headers: dict[str, str] | None = None, timeout: float = 120) -> Reply:
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

    def assert_clean_log(self, since: tuple[int, int] = (0, 0)) -> None:
        text = self.log(since)
        for bad in BAD_LOG_LINES:
            assert bad not in text, f"{bad!r} in the server's log:\n{text[-5000:]}"
        errors = re.findall(r'^.*" 5\d\d .*$', self.access_log(since), re.MULTILINE)
        assert not errors, errors[:5]


@pytest.fixture(scope="module")
def shared_server(shared_database, tmp_path_factory) -> Iterator[Server]:
    """``outcome serve`` with 4 workers on the module's database, for the tests that
    need one of 4 workers (each reads the logs from its own :meth:`Server.mark`)."""
    with Server(shared_database[0], tmp_path_factory.mktemp("server"), workers=4,
                kill=True) as server:
        yield server


def api_headers(secret: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}", "Content-Type": "application/json", **extra}


def run_together(tasks: list[Callable[[], Any]], threads: int | None = None) -> list[Any]:
    """Run ``tasks`` on ``threads`` threads (default: one each) that start together at a
    barrier; results in task order (an exception is returned in place of its result)."""
    count = min(threads or len(tasks), len(tasks))
    barrier = threading.Barrier(count)
    todo: queue.Queue[int] = queue.Queue()
    for index in range(len(tasks)):
        todo.put(index)
    results: list[Any] = [None] * len(tasks)

    def worker() -> None:
        barrier.wait()
        while True:
            try:
                index = todo.get_nowait()
            except queue.Empty:
                return
            try:
                results[index] = tasks[index]()
            except Exception as exc:  # reported by the test, with the others
                results[index] = exc

    pool = [threading.Thread(target=worker) for _ in range(count)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(300)
    assert not any(thread.is_alive() for thread in pool), "a request hung"
    return results


def replies(results: list[Any]) -> list[Reply]:
    errors = [r for r in results if not isinstance(r, Reply)]
    assert not errors, f"{len(errors)} requests failed to complete: {errors[:3]}"
    return results


def figures(name: str, **values: Any) -> None:
    print(f"\n[concurrency] {name}: " + ", ".join(f"{k}={v}" for k, v in values.items()))


# --- 1. the same submission many times at once -------------------------------------------


@pytest.mark.slow
def test_one_api_submission_sent_100_times_at_once_is_stored_once(shared_clinic,
                                                                  shared_server):
    setup = shared_clinic(clients=1)
    path = f"/api/v1/clients/{setup.codes[0]}/administrations"
    body = json.dumps({"instrument": "phq9", "answers": phq9(2, item9=1)})
    headers = api_headers(setup.secret, **{"Idempotency-Key": str(uuid.uuid4())})
    server, since = shared_server, shared_server.mark()
    start = time.perf_counter()
    results = replies(run_together(
        [lambda: server.request("POST", path, body, headers)] * 100))
    wall = time.perf_counter() - start
    server.assert_clean_log(since)
    statuses = Counter(r.status for r in results)
    replayed = sum(r.headers.get("idempotent-replayed") == "true" for r in results)
    figures("identical API submissions", requests=100, workers=4, statuses=dict(statuses),
            replayed=replayed, administrations=setup.count(Administration),
            idempotency_records=setup.count(ApiIdempotencyRecord), wall_s=round(wall, 2))
    assert statuses == {201: 100}
    assert len({json.dumps(r.json(), sort_keys=True) for r in results}) == 1
    assert replayed == 99  # only the one that stored the key answered first-hand
    assert {r.headers["location"] for r in results} == {path}
    assert setup.count(Administration) == 1
    assert setup.count(ApiIdempotencyRecord) == 1
    assert setup.count(Alert) == 1  # the critical answer alerts once, not per request
    assert results[0].json()["administration"]["total"] == 17


@pytest.mark.slow
def test_a_questionnaire_page_double_submitted_at_once_is_stored_once(shared_clinic,
                                                                      shared_server):
    setup = shared_clinic(clients=1, links=True)
    server, since = shared_server, shared_server.mark()
    opened = server.request("GET", f"/q/{setup.link_tokens[0]}")
    assert opened.status == 303
    cookie = opened.headers["set-cookie"].split(";", 1)[0]
    page = server.request("GET", "/q/", headers={"Cookie": cookie})
    assert page.status == 200 and "Questionnaire 1 of 2" in page.body.decode()
    cookie = page.headers.get("set-cookie", cookie).split(";", 1)[0]
    form = urlencode({"csrf_token": CSRF.search(page.body.decode()).group(1),
                      "instrument": "phq9", **phq9(1)})
    headers = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
    start = time.perf_counter()
    results = replies(run_together(
        [lambda: server.request("POST", "/q/", form, headers)] * 30))
    wall = time.perf_counter() - start
    after = server.request("GET", "/q/", headers={"Cookie": cookie})
    server.assert_clean_log(since)
    statuses = Counter(r.status for r in results)
    figures("questionnaire page double-submit", requests=30, workers=4,
            statuses=dict(statuses), administrations=setup.count(Administration),
            wall_s=round(wall, 2))
    assert statuses == {303: 30}
    assert {r.headers["location"] for r in results} == {"/q/"}
    assert setup.count(Administration) == 1
    assert "Questionnaire 2 of 2" in after.body.decode()  # the next page, not PHQ-9 again


# --- 2. many clients at once, and one client's questionnaires together -------------------


@pytest.mark.slow
def test_submissions_for_40_clients_at_once_are_all_stored(shared_clinic, tmp_path):
    setup = shared_clinic(clients=40)
    # The default of `outcome serve`: 2 workers (the shared server has 4).
    with Server(setup.url, tmp_path / "server", workers=2, kill=True) as server:
        tasks = [(lambda code=code, n=n: server.request(
                     "POST", f"/api/v1/clients/{code}/administrations",
                     json.dumps({"instrument": "phq9", "answers": phq9(n % 4)}),
                     api_headers(setup.secret)))
                 for n, code in enumerate(setup.codes)]
        start = time.perf_counter()
        results = replies(run_together(tasks, threads=16))
        wall = time.perf_counter() - start
        server.assert_clean_log()
    statuses = Counter(r.status for r in results)
    figures("40 clients at once", requests=40, threads=16, workers=2,
            statuses=dict(statuses), administrations=setup.count(Administration),
            wall_s=round(wall, 2), per_s=round(40 / wall, 1))
    assert statuses == {201: 40}
    assert setup.count(Administration) == 40
    with transaction(setup.factory) as session:
        stored = dict(session.execute(
            select(Client.code, func.count(Administration.id))
            .join(Episode, Episode.client_id == Client.id)
            .join(Administration, Administration.episode_id == Episode.id)
            .where(Client.clinic_id == setup.clinic_id)
            .group_by(Client.code)).all())
        totals = dict(session.execute(
            select(Client.code, Administration.total)
            .join(Episode, Episode.client_id == Client.id)
            .join(Administration, Administration.episode_id == Episode.id)
            .where(Client.clinic_id == setup.clinic_id)).all())
    assert stored == dict.fromkeys(setup.codes, 1)
    assert totals == {code: 8 * (n % 4) for n, code in enumerate(setup.codes)}
    assert setup.count(EpisodeSignal) == 40


@pytest.mark.slow
def test_a_clients_two_questionnaires_sent_together_both_reach_the_signals(shared_clinic,
                                                                           shared_server):
    """PHQ-9 and GAD-7 of one session, posted at the same moment (as an EHR does).

    Each client already has an intake (stored signals), so both requests update the same
    signals row: the one that commits last must have seen the other's answers, or the
    signals lose a score and the critical answer's urgency.
    """
    clients = 24
    setup = shared_clinic(clients=clients, intake=lambda n: {"phq9": phq9(1), "gad7": gad7(1)})
    server, since = shared_server, shared_server.mark()
    tasks = []
    for code in setup.codes:
        path = f"/api/v1/clients/{code}/administrations"
        for payload in ({"instrument": "phq9", "answers": phq9(2, item9=1)},
                        {"instrument": "gad7", "answers": gad7(2)}):
            body = json.dumps(payload)
            tasks.append(lambda path=path, body=body: server.request(
                "POST", path, body, api_headers(setup.secret)))
    start = time.perf_counter()
    results = replies(run_together(tasks, threads=16))
    wall = time.perf_counter() - start
    server.assert_clean_log(since)
    statuses = Counter(r.status for r in results)
    with transaction(setup.factory) as session:
        signals = {c.code: s for c, s in session.execute(
            select(Client, EpisodeSignal).join(Episode, Episode.client_id == Client.id)
            .join(EpisodeSignal, EpisodeSignal.episode_id == Episode.id)
            .where(Client.clinic_id == setup.clinic_id)).all()}
        open_alerts = Counter(session.scalars(
            select(Client.code).join(Episode, Episode.client_id == Client.id)
            .join(Alert, Alert.episode_id == Episode.id)
            .where(Client.clinic_id == setup.clinic_id,
                   Alert.status == "open", Alert.kind == "critical_item")).all())
    seen = {code: (s.state["outcomes"].get("phq9", {}).get("latest"),
                   s.state["outcomes"].get("gad7", {}).get("latest"), s.urgency)
            for code, s in signals.items()}
    stale = {code: got for code, got in sorted(seen.items()) if got != (17, 14, 0)}
    figures("one client's PHQ-9 and GAD-7 together", clients=clients,
            requests=len(tasks), threads=16, workers=4, statuses=dict(statuses),
            administrations=setup.count(Administration), stale_signals=len(stale),
            wall_s=round(wall, 2))
    assert statuses == {201: 2 * clients}
    assert setup.count(Administration) == 4 * clients
    assert open_alerts == dict.fromkeys(setup.codes, 1)
    # (PHQ-9 latest, GAD-7 latest, urgency) where a request's signals missed the other's
    assert not stale, f"signals missing a score or the critical urgency: {stale}"


@pytest.mark.slow
def test_an_alert_acknowledged_while_a_new_critical_answer_arrives(shared_clinic,
                                                                   shared_server):
    """The therapist acknowledges a critical answer as the client sends another one.

    Both commit (no deadlock, no 5xx); the new answer is alerted (in the open alert the
    acknowledgement then covers, or in a new open one); and the stored urgency agrees with
    the alerts left open.
    """
    clients = 24
    setup = shared_clinic(clients=clients, intake=lambda n: {"phq9": phq9(1, item9=1)})
    with transaction(setup.factory) as session:
        alerts = dict(session.execute(
            select(Client.code, Alert.id).join(Episode, Episode.client_id == Client.id)
            .join(Alert, Alert.episode_id == Episode.id)
            .where(Client.clinic_id == setup.clinic_id)).all())
    assert len(alerts) == clients
    server, since = shared_server, shared_server.mark()
    tasks = []
    for code in setup.codes:
        tasks.append(lambda code=code: server.request(
            "POST", f"/api/v1/clients/{code}/alerts/{alerts[code]}/acknowledge",
            json.dumps({"note": "Phoned; safety plan reviewed."}),
            api_headers(setup.secret)))
        tasks.append(lambda code=code: server.request(
            "POST", f"/api/v1/clients/{code}/administrations",
            json.dumps({"instrument": "phq9", "answers": phq9(2, item9=2)}),
            api_headers(setup.secret)))
    start = time.perf_counter()
    results = replies(run_together(tasks, threads=16))
    wall = time.perf_counter() - start
    log = server.log(since)
    statuses = Counter(r.status for r in results)
    with transaction(setup.factory) as session:
        rows = session.execute(
            select(Client.code, Alert, EpisodeSignal)
            .join(Episode, Episode.client_id == Client.id)
            .join(Alert, Alert.episode_id == Episode.id)
            .join(EpisodeSignal, EpisodeSignal.episode_id == Episode.id)
            .where(Client.clinic_id == setup.clinic_id)).all()
        latest = dict(session.execute(
            select(Client.code, func.max(Administration.id))
            .join(Episode, Episode.client_id == Client.id)
            .join(Administration, Administration.episode_id == Episode.id)
            .where(Client.clinic_id == setup.clinic_id)
            .group_by(Client.code)).all())
    by_client: dict[str, list] = {}
    for code, alert, signal in rows:
        by_client.setdefault(code, []).append((alert, signal))
    unalerted, inconsistent = {}, {}
    for code, pairs in by_client.items():
        critical = [alert for alert, _ in pairs if alert.kind == "critical_item"]
        triggers = [t for alert in critical for t in alert.detail.get("triggers", [])]
        if triggers.count(latest[code]) != 1:
            unalerted[code] = [(a.id, a.status, a.detail.get("triggers")) for a in critical]
        is_open = any(alert.status == "open" for alert in critical)
        if (pairs[0][1].urgency == 0) != is_open:
            inconsistent[code] = (pairs[0][1].urgency, [(a.id, a.status) for a in critical])
    new_alerts = sum(alert.kind == "critical_item" and alert.status == "open"
                     for _code, alert, _signal in rows)
    figures("acknowledge while a critical answer arrives", clients=clients,
            requests=len(tasks), statuses=dict(statuses), new_open_alerts=new_alerts,
            unalerted=len(unalerted), urgency_inconsistent=len(inconsistent),
            deadlocks=log.count("deadlock detected"), wall_s=round(wall, 2))
    assert statuses == {200: clients, 201: clients}, log[-3000:]
    for bad in BAD_LOG_LINES:
        assert bad not in log, log[-3000:]
    assert not unalerted, f"new critical answers in no alert: {unalerted}"
    assert not inconsistent, f"urgency disagrees with the open alerts: {inconsistent}"


# --- 3. two schedulers, 52 weeks ------------------------------------------------------------


SUPERVISORS = 3
WEEKS = 52
FIRST_MONDAY = dt.datetime(2026, 1, 12, 8, 0, tzinfo=dt.UTC)  # after 2026-W02


def _digest_clinic(url: str) -> list[int]:
    """Supervisors (created in 2026-W02), each with a therapist and two clients in care
    with a PHQ-9 every fortnight of the year; returns the supervisors' ids."""
    from outcome.core.answers import parse_answers
    from outcome.services.submissions import submit_administration

    engine = make_engine(url)
    schema.upgrade(engine)
    created = dt.datetime(2026, 1, 7, 9, 0, tzinfo=dt.UTC)
    phq = LIB.get("phq9")
    with transaction(make_session_factory(engine)) as session:
        clinic = Clinic(slug="digest", name="Digest Clinic", timezone="Europe/London")
        session.add(clinic)
        session.flush()
        ids = []
        for s in range(SUPERVISORS):
            supervisor = User(clinic_id=clinic.id, email=f"sup{s}@digest.example.org",
                              display_name=f"Supervisor {s}", is_supervisor=True,
                              created_dt=created)
            therapist = User(clinic_id=clinic.id, email=f"ther{s}@digest.example.org",
                             display_name=f"Therapist {s}", is_therapist=True,
                             created_dt=created)
            session.add_all([supervisor, therapist])
            session.flush()
            ids.append(supervisor.id)
            session.add(SupervisorAssignment(clinic_id=clinic.id, supervisor_id=supervisor.id,
                                             therapist_id=therapist.id))
            for c in range(2):
                _client, episode = register_client(session, therapist, name=f"Client {s}{c}",
                                                   opened_on=created.date())
                for week in range(0, WEEKS, 2):
                    moment = created + dt.timedelta(weeks=week, days=1)
                    submit_administration(
                        session, episode=episode, instrument=phq,
                        answers=parse_answers(phq, phq9(max(0, 3 - week // 12))),
                        completed_dt=moment, idempotency_key=f"d:{s}:{c}:{week}",
                        library=LIB, now=moment)
    engine.dispose()
    return ids


def _stand_in_pdf(digest) -> bytes:
    """The digest's PDF, for the schedulers: distinct bytes per supervisor and week."""
    return f"%PDF-stand-in {digest.week} {digest.supervisor_name}".encode()


def scheduler_process(url: str, instance: str, commands, answers, barrier) -> None:
    """A scheduler of its own (own app, engine and connections): for each ``now`` it is
    sent, wait for the other scheduler, run the digest job, answer what it did.

    It starts (imports) while the test seeds the clinic, and builds its app once sent
    "seeded"."""
    os.environ["OUTCOME_INSTANCE_PATH"] = instance
    try:
        from outcome.jobs import send_digests
        from tests.helpers import new_app

        problems: list[str] = []

        class Collect(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                problems.append(self.format(record))

        logging.getLogger("outcome").addHandler(Collect(logging.WARNING))
        # What the schedulers race on is the run's claim, the digest's reads and the
        # archive and e-mail's write, all real here; drawing the PDF was two thirds of the
        # job's time (156 PDFs) and its pages are tested in tests/test_digest_pdf.py, so a
        # stand-in draws it (the job still calls it between the claim and the archive).
        import reports.digest_pdf
        reports.digest_pdf.render_digest = _stand_in_pdf
        assert commands.get() == "seeded"
        # A child process has no fixtures: the helper behind conftest's make_app.
        app = new_app(url, SECRET_KEY="k" * 40, BASE_URL="https://outcome.example")
        answers.put(("ready", os.getpid()))
        while (now := commands.get()) is not None:
            barrier.wait(60)
            start = time.perf_counter()
            done = send_digests(app, now=now)
            answers.put(("done", done, time.perf_counter() - start, problems[:]))
            problems.clear()
    except BaseException:
        answers.put(("error", traceback.format_exc()))
        raise


@pytest.mark.slow
def test_two_schedulers_give_one_digest_per_supervisor_and_week_for_a_year(
        fresh_database_url, tmp_path):
    context = multiprocessing.get_context("spawn")  # fresh processes, no forked engines
    barrier = context.Barrier(2)
    channels = [(context.Queue(), context.Queue()) for _ in range(2)]
    processes = [context.Process(target=scheduler_process, daemon=True,
                                 args=(fresh_database_url, str(tmp_path / f"instance{n}"),
                                       commands, answers, barrier))
                 for n, (commands, answers) in enumerate(channels)]

    def answer(answers) -> tuple:
        reply = answers.get(timeout=120)
        assert reply[0] != "error", reply[1]
        return reply

    produced, problems, seconds = [[], []], [], []
    try:
        for process in processes:
            process.start()
        supervisors = _digest_clinic(fresh_database_url)
        for commands, _answers in channels:
            commands.put("seeded")
        for _commands, answers in channels:
            assert answer(answers)[0] == "ready"
        start = time.perf_counter()
        for week in range(WEEKS):
            now = FIRST_MONDAY + dt.timedelta(weeks=week)
            for commands, _answers in channels:
                commands.put(now)
            for n, (_commands, answers) in enumerate(channels):
                _, done, elapsed, logged = answer(answers)
                produced[n].append(done)
                problems.extend(logged)
                seconds.append(elapsed)
        wall = time.perf_counter() - start
        for commands, _answers in channels:
            commands.put(None)
        for process in processes:
            process.join(30)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join(10)

    engine = make_engine(fresh_database_url)
    try:
        with transaction(make_session_factory(engine)) as session:
            runs = Counter(session.execute(
                select(ReportRun.recipient_user_id, ReportRun.period, ReportRun.status)).all())
            emails = Counter(session.execute(
                select(ReportRun.recipient_user_id, ReportRun.period)
                .join(ReportDocument, ReportDocument.report_run_id == ReportRun.id)
                # The notice's dedupe key is its run (issue 16: no attachment any more).
                .join(OutboundEmail, OutboundEmail.dedupe_key == literal("digest:").concat(
                    cast(ReportRun.id, String)))
                .where(OutboundEmail.kind == "digest")).all())
            email_count = session.scalar(select(func.count()).select_from(OutboundEmail))
            documents = session.scalar(select(func.count()).select_from(ReportDocument))
    finally:
        engine.dispose()
    weeks = sorted({period for (_s, period, _status) in runs})
    figures("two schedulers, 52 weeks", supervisors=len(supervisors), weeks=len(weeks),
            runs=sum(runs.values()), documents=documents, emails=email_count,
            produced_by_each=[sum(p) for p in produced],
            weeks_both_produced=sum(a > 0 and b > 0 for a, b in zip(*produced, strict=True)),
            problems=len(problems), job_max_s=round(max(seconds), 2), wall_s=round(wall, 1))
    assert not problems, problems[:3]
    assert [a + b for a, b in zip(*produced, strict=True)] == [len(supervisors)] * WEEKS
    assert len(weeks) == WEEKS and weeks[0] == "2026-W02"
    expected = {(s, w, "succeeded"): 1 for s in supervisors for w in weeks}
    assert runs == expected
    assert emails == {(s, w): 1 for s in supervisors for w in weeks}
    assert email_count == documents == len(supervisors) * WEEKS
