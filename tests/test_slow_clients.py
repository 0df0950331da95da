"""Slow clients cannot stall ``outcome serve`` (issue 16, finding 13).

With gunicorn's two sync workers, three slowloris connections (a header byte a second,
never finished) held both workers until the 30 s worker timeout, round after round.
``outcome serve`` now runs threaded workers that give a request head at most
``HEADER_SECONDS``. The figures at full size: ``python -m bench.slow_clients``.
"""

from __future__ import annotations

import socket
import time

import pytest

from bench.slow_clients import SlowClient
from bench.slow_clients import measure
from outcome.cli.serve import HEADER_SECONDS
from outcome.cli.serve import THREADS
from tests.test_concurrency import Server
from tests.test_concurrency import setup_clinic  # noqa: F401 (a fixture used below)

# One backend (conftest's one_backend rule): these are about the server's threads and
# its deadline for a request head; the pages they load are read on both backends by the
# access matrix and the page tests.
pytestmark = pytest.mark.one_backend


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
def test_a_slow_request_head_is_cut_off(setup_clinic, tmp_path):  # noqa: F811
    setup = setup_clinic(clients=0)
    with Server(setup.url, tmp_path / "server", workers=1) as server:
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
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
        assert closed is not None and closed < HEADER_SECONDS + 3, closed


@pytest.mark.slow
def test_more_slow_clients_than_threads_only_delay_others(setup_clinic, tmp_path):  # noqa: F811
    setup = setup_clinic(clients=0)
    with Server(setup.url, tmp_path / "server", workers=1) as server:
        slow = [SlowClient("127.0.0.1", server.port) for _ in range(THREADS + 4)]
        for client in slow:
            client.start()
        try:
            time.sleep(2)
            # Every thread is held by a slow client; each is cut off after HEADER_SECONDS
            # and queues again behind the normal request, which is then answered.
            figures = measure("127.0.0.1", server.port, slow=0, seconds=1,
                              timeout=2 * HEADER_SECONDS + 5)
        finally:
            for client in slow:
                client.stop.set()
        assert figures.no_answer == 0 and figures.requests >= 1, figures
        assert figures.max_s < 2 * HEADER_SECONDS + 2, figures
