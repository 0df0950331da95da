"""The Flask application factory."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from outcome.config import ConfigError
from outcome.config import load_config
from outcome.web import auth
from outcome.web import database
from outcome.web import health
from outcome.web import home
from outcome.web import i18n
from outcome.web import security
from outcome.web.api.access import rate_limit
from outcome.web.api.access import rate_limit_key
from questionnaires.loader import DefinitionError
from questionnaires.loader import InstrumentLibrary
from questionnaires.loader import load_library

INSTANCE_PATH_VAR = "OUTCOME_INSTANCE_PATH"
LIBRARY_KEY = "outcome.instruments"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the web application.

    Settings come from defaults, the instance file, ``OUTCOME_*`` variables and finally
    ``config`` (see :mod:`outcome.config`). Raises :class:`outcome.config.ConfigError`
    with one sentence when the configuration cannot work (missing secret key in
    production, unreachable database, unknown time zone...).
    """
    app = Flask(__name__, instance_path=instance_path(), template_folder="web/templates",
                static_folder="web/static")
    app.config.update(load_config(app.instance_path, overrides=config))
    app.config.update(
        TESTING=app.config["ENV"] == "test" or app.config.get("TESTING", False),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=app.config["BASE_URL"].startswith("https://"),
        MAX_CONTENT_LENGTH=1024 * 1024,
    )
    if not app.config["SECRET_KEY"]:  # development and test only; production refused above
        app.config["SECRET_KEY"] = os.urandom(32).hex()
    _configure_logging(app)
    app.extensions[LIBRARY_KEY] = _load_instruments(Path(app.config["INSTRUMENTS_DIR"]))
    database.init_app(app)
    security.init_app(app)
    i18n.init_app(app)
    auth.init_app(app)
    app.register_blueprint(home.bp)
    app.register_blueprint(health.bp)
    from outcome.web import account
    from outcome.web import admin
    from outcome.web import care  # these pages use the app's services
    from outcome.web import questionnaire
    from outcome.web import record
    from outcome.web import supervision
    from outcome.web.api import errors as api_errors
    from outcome.web.api import fhir
    from outcome.web.api import routes as api_routes

    app.register_blueprint(questionnaire.bp)
    app.register_blueprint(care.bp)
    app.register_blueprint(record.bp)
    app.register_blueprint(supervision.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(account.bp)
    # Integrations authenticate with tokens, not cookies: no CSRF token to send.
    for integration in (api_routes.bp, fhir.bp):
        security.csrf.exempt(integration)
        auth.limiter.limit(rate_limit, key_func=rate_limit_key)(integration)
        app.register_blueprint(integration)
    api_errors.init_app(app)
    _register_cli(app)
    return app


def instance_path() -> str | None:
    """``OUTCOME_INSTANCE_PATH``, or None for Flask's default (``./instance`` in a checkout)."""
    return os.environ.get(INSTANCE_PATH_VAR) or None


def instrument_library(app: Flask) -> InstrumentLibrary:
    """The instruments loaded at start-up: built-ins plus the clinic's files and overlays."""
    return app.extensions[LIBRARY_KEY]


def _load_instruments(folder: Path) -> InstrumentLibrary:
    try:
        return load_library(folder)
    except DefinitionError as exc:
        raise ConfigError(f"an instrument file in {folder} is broken (OUTCOME_INSTRUMENTS_DIR): "
                          f"{exc}") from None


def _configure_logging(app: Flask) -> None:
    app.logger.setLevel(app.config["LOG_LEVEL"])
    logging.getLogger("outcome").setLevel(app.config["LOG_LEVEL"])


def _register_cli(app: Flask) -> None:
    # The same command objects serve `outcome ...` and `flask --app wsgi ...`.
    from outcome.cli.commands import COMMANDS

    for command in COMMANDS:
        app.cli.add_command(command)
