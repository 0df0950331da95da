"""The Flask application factory: a short list of ``init_app`` and ``register_blueprint``.

Only the entry points import this module (``wsgi.py`` and the ``outcome`` command group):
everything else reaches the app's shared objects through :mod:`outcome.extensions`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from flask import Flask

from outcome import extensions
from outcome import log_redaction
from outcome.config import instance_path
from outcome.config import load_config
from outcome.web import account
from outcome.web import admin
from outcome.web import appointments
from outcome.web import auth
from outcome.web import care
from outcome.web import clients
from outcome.web import database
from outcome.web import health
from outcome.web import home
from outcome.web import i18n
from outcome.web import inputs
from outcome.web import kiosk
from outcome.web import passkeys
from outcome.web import questionnaire
from outcome.web import record
from outcome.web import reports
from outcome.web import security
from outcome.web import setup
from outcome.web import supervision
from outcome.web import support
from outcome.web.api import errors as api_errors
from outcome.web.api import fhir
from outcome.web.api import routes as api_routes
from outcome.web.api.access import REFUSED_CALLER_LIMIT
from outcome.web.api.access import failed_token_key
from outcome.web.api.access import is_failed_authentication
from outcome.web.api.access import rate_limit
from outcome.web.api.access import rate_limit_key


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the web application.

    Settings come from defaults, the instance file, ``OUTCOME_*`` variables and finally
    ``config`` (see :mod:`outcome.config`). Raises :class:`outcome.config.ConfigError`
    with one sentence when the configuration cannot work (missing secret key in
    production, unreachable database, unknown time zone, a broken instrument file...).
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
    inputs.init_app(app)  # before any route is added: every <int:...> is an object id
    extensions.init_instruments(app)
    extensions.init_database(app)
    security.init_app(app)
    i18n.init_app(app)
    auth.init_app(app)
    # Registered last so that it runs first after a view: the response it may put in
    # place of the view's (503, nothing stored) still gets the security headers.
    database.init_app(app)
    for blueprint in (home.bp, health.bp, questionnaire.bp, care.bp, record.bp, supervision.bp,
                      admin.bp, account.bp, clients.bp, setup.bp):
        app.register_blueprint(blueprint)
    app.register_blueprint(appointments.bp)  # issue 17: a client's sessions
    app.register_blueprint(reports.bp)  # issue 18: the therapist's scheduled reports
    app.register_blueprint(support.bp)  # issue 19: support checks and action plans
    app.register_blueprint(passkeys.bp)  # issue 20: passkeys as a second factor
    kiosk.init_app(app)  # issue 17: the waiting-room kiosk and its day codes
    # Integrations authenticate with tokens, not cookies: no CSRF token to send.
    for integration in (api_routes.bp, fhir.bp):
        security.csrf.exempt(integration)
        extensions.limiter.limit(rate_limit, key_func=rate_limit_key)(integration)
        # One count for the API and FHIR together.
        extensions.limiter.shared_limit(REFUSED_CALLER_LIMIT, scope="integration-failures",
                                        key_func=failed_token_key,
                                        deduct_when=is_failed_authentication)(integration)
        app.register_blueprint(integration)
    api_errors.init_app(app)
    return app


def _configure_logging(app: Flask) -> None:
    # Link tokens and API secrets never reach a log line, whichever logger or handler.
    log_redaction.install()
    app.logger.setLevel(app.config["LOG_LEVEL"])
    logging.getLogger("outcome").setLevel(app.config["LOG_LEVEL"])
