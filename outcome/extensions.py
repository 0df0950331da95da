"""The application's shared objects: the database, the instrument library, the clock and
the rate limiter.

Each lives on the app (``app.extensions``) and is reached through a function here, so
web views, CLI commands and scheduler jobs find them without importing
:mod:`outcome.app`: only the entry points (``wsgi.py`` and the CLI group) build an app,
and no module imports the module that assembles them all (no import circle).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flask import Flask
from flask import current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from outcome import encryption
from outcome.config import ConfigError
from outcome.db import check_connection
from outcome.db import make_engine
from outcome.db import make_session_factory
from outcome.models.base import utcnow
from outcome.ratelimit_storage import SQLiteStorage
from questionnaires.loader import DefinitionError
from questionnaires.loader import InstrumentLibrary
from questionnaires.loader import load_library

DATABASE_KEY = "outcome.db"
LIBRARY_KEY = "outcome.instruments"
CLOCK_KEY = "outcome.clock"

# Login attempts, questionnaire links and integration tokens are limited per key (see
# outcome.web.auth, outcome.web.questionnaire and outcome.web.api.access); the storage is
# chosen per app by RATELIMIT_STORAGE_URI (sqlite:/// is registered by SQLiteStorage).
RATE_LIMIT_STORES = (SQLiteStorage,)
limiter = Limiter(key_func=get_remote_address, default_limits=[])


@dataclass
class Database:
    """The app's engine and session factory (tests may swap the factory for one bound to a
    connection held in a rolled-back transaction)."""

    engine: Engine
    session_factory: sessionmaker[Session]


def init_database(app: Flask) -> None:
    """Create the engine from ``DATABASE_URL`` and check that the database answers.

    Raises :class:`outcome.config.ConfigError` in one sentence when it does not.
    """
    engine = make_engine(app.config["DATABASE_URL"],
                         sqlite_busy_timeout_ms=app.config["SQLITE_BUSY_TIMEOUT_MS"],
                         pool_pre_ping=True)
    check_connection(engine)
    app.extensions[DATABASE_KEY] = Database(engine, make_session_factory(engine))
    # Encryption at rest: the configured keys become the process's key ring (no keys,
    # encryption off). A malformed, unreadable or world-readable key stops start-up here
    # with a ConfigError naming the setting (outcome.encryption imports outcome.config,
    # so the check cannot sit in load_config without an import circle).
    encryption.install(encryption.key_ring_from_config(app.config))


def init_instruments(app: Flask) -> None:
    """Load the built-in instruments plus the clinic's files in ``INSTRUMENTS_DIR``.

    A broken clinic file stops start-up with a :class:`ConfigError` naming the file.
    """
    folder = Path(app.config["INSTRUMENTS_DIR"])
    try:
        app.extensions[LIBRARY_KEY] = load_library(folder)
    except DefinitionError as exc:
        raise ConfigError(f"an instrument file in {folder} is broken (OUTCOME_INSTRUMENTS_DIR): "
                          f"{exc}") from None


def database(app: Flask | None = None) -> Database:
    """The :class:`Database` of ``app`` (default: the current app)."""
    found: Database = (app or current_app).extensions[DATABASE_KEY]
    return found


def instrument_library(app: Flask | None = None) -> InstrumentLibrary:
    """The instruments loaded at start-up (default: of the current app)."""
    found: InstrumentLibrary = (app or current_app).extensions[LIBRARY_KEY]
    return found


def clock(app: Flask | None = None) -> Callable[[], dt.datetime]:
    """The app's clock: aware UTC ``now``. Tests replace it with a frozen one."""
    found: Callable[[], dt.datetime] = (app or current_app).extensions.get(CLOCK_KEY, utcnow)
    return found
