"""Slow clients cannot stall ``outcome serve`` (issue 16, finding 13).

With gunicorn's two sync workers, three slowloris connections (a header byte a second,
never finished) held both workers until the 30 s worker timeout, round after round.
``outcome serve`` now runs threaded workers that give a request head at most
``HEADER_SECONDS`` (``--header-timeout``). The figures at full size: ``python -m
bench.slow_clients``.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from bench.slow_clients import SlowClient
from bench.slow_clients import measure
from outcome import schema
from outcome.cli.serve import THREADS
from outcome.db import make_engine
from outcome.db import make_session_factory
from outcome.db import transaction
from outcome.models import Clinic
from tests.test_concurrency import Server
from tests.test_concurrency import setup_clinic  # noqa: F401 (a fixture used below)

# One backend (conftest's one_backend rule): these are about the server's threads and
# its deadline for a request head; the pages they load are read on both backends by the
# access matrix and the page tests.
pytestmark = pytest.mark.one_backend

# The deadline for a request head on the server of the last two tests, which wait for it
# to pass (once and twice): shorter than the default HEADER_SECONDS (10 s), so they take
# seconds, and still far longer than a normal client takes to send its head.
HEAD_SECONDS = 3.0


@pytest.fixture(scope="module")
def one_worker(databases, tmp_path_factory) -> Iterator[Server]:
    """One server (one worker) for the last two tests: each leaves no connection open,
    and a clinic with nobody in it is all they need (what the first test's clinic has)."""
    url = databases.new_url()
    engine = make_engine(url)
    schema.upgrade(engine)
    with transaction(make_session_factory(engine)) as session:
        session.add(Clinic(slug="slow", name="Slow Clinic"))
    engine.dispose()
    with Server(url, tmp_path_factory.mktemp("slow-server"), workers=1,
                serve_args=("--header-timeout", str(HEAD_SECONDS))) as server:
        assert server.request("GET", "/login").status == 200  # its templates are compiled
        yield server
        server.assert_clean_log()


@pytest.mark.slow
def test_three_slow_clients_do_not_stall_the_site(setup_clinic, tmp_path):  # noqa: F811
    setup = setup_clinic(clients=0)
    with Server(setup.url, tmp_path / "server", workers=2) as server:
        figures = measure("127.0.0.1", server.port, slow=3, seconds=6, timeout=5)
        assert figures.no_answer == 0, figures
        assert figures.max_s < 2.0, figures
        assert figures.requests > 20, figures
        server.assert_clean_log()


@pytest.mark.slow
def test_a_slow_request_head_is_cut_off(one_worker):
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", one_worker.port), timeout=30) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        closed = None
        while closed is None and time.monotonic() - started < 25:
            try:
                sock.sendall(b"a")
                sock.settimeout(1.0)
                if sock.recv(1024) == b"":
                    closed = time.monotonic() - started
            except TimeoutError:
                continue
            except OSError:
                closed = time.monotonic() - started
    assert closed is not None and closed < HEAD_SECONDS + 3, closed


@pytest.mark.slow
def test_more_slow_clients_than_threads_only_delay_others(one_worker):
    slow = [SlowClient("127.0.0.1", one_worker.port) for _ in range(THREADS + 4)]
    for client in slow:
        client.start()
    try:
        # Until each has connected and sent its first bytes (not for a fixed time).
        deadline = time.monotonic() + 30
        while (time.monotonic() < deadline
               and not all(client.connections >= 1 for client in slow)):
            time.sleep(0.05)
        assert all(client.connections >= 1 for client in slow)
        # Every thread is held by a slow client; each is cut off after HEAD_SECONDS
        # and queues again behind the normal request, which is then answered.
        figures = measure("127.0.0.1", one_worker.port, slow=0, seconds=1,
                          timeout=2 * HEAD_SECONDS + 5)
    finally:
        for client in slow:
            client.stop.set()
        for client in slow:
            client.join(5)  # their connections closed: the next test finds the threads free
    assert figures.no_answer == 0 and figures.requests >= 1, figures
    assert figures.max_s < 2 * HEAD_SECONDS + 2, figures
