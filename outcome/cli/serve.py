"""``outcome serve``: the production web server (gunicorn) on this app."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
from flask import Flask
from flask.cli import with_appcontext
from gunicorn import glogging
from gunicorn.app.base import BaseApplication
from gunicorn.config import Config
from gunicorn.http.message import Request
from gunicorn.workers import gthread

from outcome import schema
from outcome.cli.application import build_app
from outcome.extensions import database
from outcome.log_redaction import install as redact_every_log_record
from outcome.log_redaction import redact
from outcome.services import setup


class RedactingLogger(glogging.Logger):
    """Gunicorn's logger with link tokens and API secrets removed from every line.

    The access line's address, query and headers are cleaned here; every other record
    (the error log included) is cleaned where it is made (:mod:`outcome.log_redaction`),
    which this logger switches on too when gunicorn runs an app it did not build.
    """

    def __init__(self, cfg: Config) -> None:
        redact_every_log_record()
        super().__init__(cfg)

    def access(self, resp, req, environ, request_time):
        clean = {key: redact(value) if isinstance(value, str) else value
                 for key, value in environ.items()}
        super().access(resp, req, clean, request_time)


# Each worker serves this many requests at once on threads (gunicorn's gthread worker). A
# slow client holds a thread only while it sends its request line and headers, and for
# at most HEADER_SECONDS: then its connection is closed. The default two workers have 16
# threads: a few slow clients leave the others free, and more than that make the rest
# queue, for about HEADER_SECONDS a round, but never stall them for good (measured in
# bench/slow_clients.py). A buffering reverse proxy in front (docs/operators.md) takes
# slow clients off the workers altogether.
THREADS = 8
HEADER_SECONDS = 10.0


class ThreadWorker(gthread.ThreadWorker):
    """gunicorn's gthread worker, with a deadline for a request's line and headers.

    ``gunicorn --worker-class outcome.cli.serve.ThreadWorker --threads 8`` uses it too.
    A client that has not sent its whole request head ``header_seconds`` (HEADER_SECONDS
    unless ``outcome serve --header-timeout`` set it) after its thread took it (a slowloris
    sends a byte a second, forever) is disconnected, so it frees the thread. The body and
    the app's work are not bounded here.
    """

    header_seconds = HEADER_SECONDS  # set on the class before gunicorn forks the workers

    def init_process(self) -> None:
        self._heads: dict[gthread.TConn, float] = {}
        self._heads_lock = threading.Lock()
        super().init_process()

    def handle(self, conn: gthread.TConn) -> bool:
        with self._heads_lock:
            self._heads[conn] = time.monotonic() + self.header_seconds
        try:
            return super().handle(conn)
        finally:
            with self._heads_lock:
                self._heads.pop(conn, None)

    def handle_request(self, req: Request, conn: gthread.TConn) -> bool:
        with self._heads_lock:  # the head is complete: no deadline for the app's work
            self._heads.pop(conn, None)
        return super().handle_request(req, conn)

    def murder_keepalived(self, *args: Any, **kwargs: Any) -> None:
        """Runs on the worker's main loop about once a second: also end late heads."""
        super().murder_keepalived(*args, **kwargs)
        now = time.monotonic()
        with self._heads_lock:
            late = [conn for conn, deadline in self._heads.items() if deadline <= now]
            for conn in late:
                del self._heads[conn]
        for conn in late:
            self.log.debug("Closing a connection that sent no request in %.0f s",
                           self.header_seconds)
            # The thread's blocked read returns: the parser sees the client gone.
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)


class _Server(BaseApplication):
    """Gunicorn, embedded: each worker builds its own app (no engine shared across a fork)."""

    def __init__(self, options: dict[str, object]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:  # settings newer gunicorns added are skipped on older
                self.cfg.set(key, value)

    # Flask is a WSGI app; types-gunicorn's WSGI callable takes a plain start_response
    # callable where Flask's signature asks for the StartResponse protocol.
    def load(self) -> Flask:  # type: ignore[override]
        return build_app()


RATE_LIMIT_FILE = "ratelimits.sqlite3"


def rate_limit_storage(config: Mapping[str, Any], workers: int, instance_path: str) -> str:
    """The rate-limit store every worker of ``outcome serve`` counts in.

    One worker: the configured store, or its memory when none is set. Several workers
    share one store, or each would count on its own and every limit would be ``workers``
    times too high: the configured one (Redis: ``redis://127.0.0.1:6379``), or when none
    is set a SQLite file in the instance folder (:mod:`outcome.ratelimit_storage`). An
    explicit ``memory://`` with several workers is refused outside development (where it
    is only warned about), naming the setting.
    """
    configured = str(config.get("RATELIMIT_STORAGE_URL") or "")
    if workers <= 1:
        return configured or "memory://"
    if not configured:
        return f"sqlite:///{Path(instance_path).resolve() / RATE_LIMIT_FILE}"
    if configured.startswith("memory://"):
        problem = (f"OUTCOME_RATELIMIT_STORAGE_URL={configured} counts in each of the "
                   f"{workers} workers, so every rate limit would be {workers} times too high")
        if config.get("ENV") != "development":
            raise click.ClickException(
                f"{problem}; set OUTCOME_RATELIMIT_STORAGE_URL to redis://127.0.0.1:6379, "
                "or leave it unset for a shared file in the instance folder, or use "
                "--workers 1.")
        click.echo(f"Warning: {problem} (allowed in development only).", err=True)
    return configured


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes. Above 1, rate limits are counted in a shared store "
                   "(see docs/operators.md).")
@click.option("--threads", default=THREADS, show_default=True, type=click.IntRange(1, 256),
              help="Requests each worker serves at once.")
@click.option("--header-timeout", default=HEADER_SECONDS, show_default=True,
              type=click.FloatRange(0.5, 300),
              help="Seconds a client may take to send its request line and headers; then "
                   "its connection is closed (it would hold a thread).")
@with_appcontext
def serve_command(host: str, port: int, workers: int, threads: int,
                  header_timeout: float) -> None:
    """Serve the web application with gunicorn.

    Refuses to start when the database schema is not current, with the command to fix it.
    On a fresh installation (no clinic yet) prints the one-time address of the setup page.
    """
    from flask import current_app

    engine = database().engine
    current, head = schema.current_revision(engine), schema.head_revision()
    if current != head:
        raise click.ClickException(
            f"database schema is at {current or 'empty'}, this version needs {head}; "
            "run `outcome db upgrade` first.")
    # The workers build their apps from the environment: all count in this one store.
    os.environ["OUTCOME_RATELIMIT_STORAGE_URL"] = rate_limit_storage(
        current_app.config, workers, current_app.instance_path)
    with database().session_factory() as session:
        fresh = not setup.has_clinic(session)
    if fresh:  # a fresh installation: the setup page, with a token that works once
        token = setup.issue_setup_token(current_app.instance_path)
        click.echo("This installation has no clinic yet. Create it, and its first admin, at "
                   "this one-time address (it works until a clinic exists; a restart makes "
                   f"a new one):\n  {current_app.config['BASE_URL']}/setup/{token}\n"
                   "or on the server with `outcome clinic create`.")
    else:
        setup.discard_setup_token(current_app.instance_path)
    engine.dispose()  # the workers open their own connections
    ThreadWorker.header_seconds = header_timeout  # the workers are forked from this process
    click.echo(f"Listening on http://{host}:{port} with {workers} workers of {threads} threads "
               f"(public address {current_app.config['BASE_URL']}). Stop with Ctrl-C.")
    _Server({"bind": f"{host}:{port}", "workers": workers, "accesslog": "-",
             "worker_class": ThreadWorker, "threads": threads,
             "logger_class": RedactingLogger, "graceful_timeout": 10,
             # gunicorn 24+ opens a control socket at one path per user by default: two
             # servers of one user (two sites, parallel tests) would take it from each
             # other, and it would let anyone with the user's rights reconfigure the server.
             "control_socket_disable": True}).run()
