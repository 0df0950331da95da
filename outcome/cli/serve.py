"""``outcome serve``: the production web server (gunicorn) on this app."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import with_appcontext
from gunicorn import glogging
from gunicorn.app.base import BaseApplication
from gunicorn.config import Config

from outcome import schema
from outcome.cli.application import build_app
from outcome.extensions import database
from outcome.log_redaction import install as redact_every_log_record
from outcome.log_redaction import redact


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


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes. Above 1, rate limits need Redis (see docs/operators.md).")
@with_appcontext
def serve_command(host: str, port: int, workers: int) -> None:
    """Serve the web application with gunicorn.

    Refuses to start when the database schema is not current, with the command to fix it.
    """
    from flask import current_app

    engine = database().engine
    current, head = schema.current_revision(engine), schema.head_revision()
    if current != head:
        raise click.ClickException(
            f"database schema is at {current or 'empty'}, this version needs {head}; "
            "run `outcome db upgrade` first.")
    engine.dispose()  # the workers open their own connections
    click.echo(f"Listening on http://{host}:{port} with {workers} workers "
               f"(public address {current_app.config['BASE_URL']}). Stop with Ctrl-C.")
    _Server({"bind": f"{host}:{port}", "workers": workers, "accesslog": "-",
             "logger_class": RedactingLogger, "graceful_timeout": 10,
             # gunicorn 24+ opens a control socket at one path per user by default: two
             # servers of one user (two sites, parallel tests) would take it from each
             # other, and it would let anyone with the user's rights reconfigure the server.
             "control_socket_disable": True}).run()
