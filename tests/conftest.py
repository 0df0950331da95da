"""Shared fixtures.

The database is real: a SQLite file (``--db=sqlite``, the default) or the PostgreSQL
server (``--db=postgresql``; URL from ``--postgres-url`` or ``OUTCOME_TEST_POSTGRES_URL``).
Each PostgreSQL run works in a schema of its own, created empty and dropped at the
end, so runs never see each other's rows. The schema is built by the real migrations.

Each test runs inside an outer transaction that is rolled back afterwards; code under
test commits to a SAVEPOINT (SQLAlchemy's "join an external transaction" recipe).

Runs in parallel (pytest-xdist, ``-n``) are safe: every worker makes its own databases
(SQLite files in its own temporary folder, PostgreSQL schemas named by its pid), and the
servers that tests start listen on free ports. Tests that use no database fixture are
marked ``no_database`` here and run in the SQLite run only (see
``pytest_collection_modifyitems``), and so do those marked ``one_backend`` (the rule is
above that hook). Shared helpers live in ``tests/helpers.py``.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import itertools
import json
import os
import re
import secrets
import shutil
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Connection
from sqlalchemy import Engine
from sqlalchemy import create_engine
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from outcome import extensions as _extensions
from outcome import schema
from outcome.cli.commands import all_commands
from outcome.db import make_engine
from outcome.extensions import database
from outcome.models import Appointment
from outcome.models import Client
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import SupervisorAssignment
from outcome.models import User
from outcome.services import passwords
from outcome.services.client_codes import allocate_client_code
from outcome.services.demo import seed_demo
from outcome.services.passwords import hash_password
from questionnaires import loader as _loader
from tests.helpers import CANARY
from tests.helpers import DEMO_PASSWORD
from tests.helpers import DEMO_TIMEZONE
from tests.helpers import DEMO_TODAY
from tests.helpers import LIB
from tests.helpers import T0
from tests.helpers import answer
from tests.helpers import free_port
from tests.helpers import new_app
from tests.helpers import submit

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TEST_PASSWORD = "correct horse battery staple 42"

# Issue 21: cheap argon2id in the test processes. Production's parameters (argon2-cffi's
# RFC 9106 low-memory profile: 64 MiB, 3 passes, 4 lanes) cost ~0.2 CPU-s a hash or
# check here, and the suite signs in, sets and resets passwords thousands of times.
# Tests run with the same algorithm and code paths on 1 MiB, 1 pass, 1 lane (~1 ms);
# the unknown-account check uses a hash of these parameters too, so it costs what a
# wrong password does, as in production. The processes tests start (the ``outcome``
# command, gunicorn) keep production's parameters, and tests/test_password_cost.py
# checks them in a fresh process. A hash is checked with the parameters written in it,
# so hashes of either kind verify anywhere. OUTCOME_TEST_PRODUCTION_HASHES=1 runs the
# suite with production's parameters.
PRODUCTION_HASHER = passwords._hasher
if os.environ.get("OUTCOME_TEST_PRODUCTION_HASHES") != "1":
    passwords._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    passwords._DUMMY_HASH = passwords._hasher.hash(passwords._EQUALISER_TEXT)
# The factories share one hash.
_TEST_PASSWORD_HASH = hash_password(TEST_PASSWORD)


# Issue 21: each test makes an app, and loading the instrument library (YAML and a JSON
# Schema check of every built-in definition) was a third of an app's making (~40 ms).
# An app whose instruments folder holds no definition of the clinic's gets the built-in
# library loaded once per process (``builtin_library``: the same immutable instruments
# ``load_library`` builds); a folder with files is loaded as in production.
def _load_library_once(clinic_dir=None, builtin_dir=_loader.BUILTIN_DIR):
    if builtin_dir == _loader.BUILTIN_DIR and (
            clinic_dir is None or not clinic_dir.is_dir()
            or not any(p.suffix in (".yaml", ".yml") for p in clinic_dir.iterdir())):
        return _loader.builtin_library()
    return _loader.load_library(clinic_dir, builtin_dir)


_extensions.load_library = _load_library_once  # type: ignore[assignment]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--db", choices=("sqlite", "postgresql"),
                     default=os.environ.get("OUTCOME_TEST_DB", "sqlite"),
                     help="database backend for the run")
    parser.addoption("--postgres-url",
                     default=os.environ.get("OUTCOME_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL),
                     help="PostgreSQL server for --db=postgresql")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only: runs only in the SQLite run")
    config.addinivalue_line("markers", "no_database: uses no database fixture, so it runs "
                            "only in the SQLite run (added to such tests automatically)")
    config.addinivalue_line("markers", "one_backend: uses the database but checks nothing "
                            "of it, so runs only in the SQLite run (rule: tests/conftest.py)")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")
    config.addinivalue_line("markers", "browser: drives headless Chromium")
    config.addinivalue_line("markers", "vas: the live clinic asks for a visual-analogue measure")
    # Read by tests.helpers.artifacts, so the two runs of `make test` (side by side) write
    # their screenshots to folders of their own; xdist workers inherit it.
    os.environ["OUTCOME_TEST_RUN_DB"] = config.getoption("--db")


# Every database fixture depends on this one, so a test whose fixtures do not include it
# never touches the run's backend.
DATABASE_FIXTURE = "databases"


# The rule for ``one_backend`` (issue 18: the suite's time). A test that needs a database
# but whose assertions are about something else, a page's layout and axe-core findings in
# Chromium, or a command's output, runs in the SQLite run only, on these conditions:
# it writes nothing that a test on both backends does not write the same way, and every
# query it makes is made on both backends by other tests (each route by the access matrix
# and its page tests; the demo's seeding by ``demo_databases``). A test about SQL,
# transactions, locking, concurrency, migrations, backups or the data a page shows stays
# on both backends. Each use says why it qualifies.
ONE_BACKEND = "one_backend"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests that use no database ``no_database``; the PostgreSQL run deselects
    them and those marked ``one_backend`` (the SQLite run has them: every test runs at least
    once per ``make test``) and skips those marked ``sqlite_only``."""
    for item in items:
        if DATABASE_FIXTURE not in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.no_database)
    if config.getoption("--db") == "sqlite":
        return
    once = [i for i in items if "no_database" in i.keywords or ONE_BACKEND in i.keywords]
    if once:
        config.hook.pytest_deselected(items=once)
        skipped = {id(item) for item in once}
        items[:] = [item for item in items if id(item) not in skipped]
    skip = pytest.mark.skip(reason="SQLite-specific; covered by the SQLite run")
    for item in items:
        if "sqlite_only" in item.keywords:
            item.add_marker(skip)


def pytest_report_header(config: pytest.Config) -> str:
    return f"outcome test database: {config.getoption('--db')}"


# --- databases ---------------------------------------------------------------------------


class DatabaseProvider:
    """Makes empty databases of the run's backend: SQLite files, or PostgreSQL schemas."""

    def __init__(self, backend: str, postgres_url: str, tmp_dir) -> None:
        self.backend = backend
        self.postgres_url = postgres_url
        self.tmp_dir = tmp_dir
        self._schemas: list[str] = []
        self._admin: Engine | None = None

    def new_url(self) -> str:
        """The URL of a new, empty database."""
        if self.backend == "sqlite":
            return f"sqlite:///{self.tmp_dir / f'{uuid.uuid4().hex}.sqlite3'}"
        name = f"outcome_test_{os.getpid()}_{secrets.token_hex(4)}"
        with self._admin_engine().begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
        self._schemas.append(name)
        separator = "&" if "?" in self.postgres_url else "?"
        return f"{self.postgres_url}{separator}options={quote(f'-csearch_path={name}')}"

    def _admin_engine(self) -> Engine:
        if self._admin is None:
            self._admin = create_engine(self.postgres_url)
        return self._admin

    def drop_all(self) -> None:
        if self._admin is None:
            return
        # One transaction per schema: dropping them all in one would need a lock per
        # table of every schema at once (PostgreSQL's max_locks_per_transaction).
        for name in self._schemas:
            with self._admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        self._admin.dispose()


@pytest.fixture(scope="session")
def databases(pytestconfig: pytest.Config, tmp_path_factory) -> Iterator[DatabaseProvider]:
    provider = DatabaseProvider(pytestconfig.getoption("--db"),
                                pytestconfig.getoption("--postgres-url"),
                                tmp_path_factory.mktemp("databases"))
    yield provider
    provider.drop_all()


class DemoDatabases:
    """Copies of the demo clinic's database, seeded once per run and backend.

    Seeding the demo (150 clients, ~6,000 answers through the real services) is the
    costliest fixture of the suite, and six modules need it. The first worker that asks
    for a (today, timezone) pair seeds a template under a file lock shared by the run's
    xdist workers; every module then gets a copy of its own: a file copy on SQLite, and
    ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL. A copy is a database like any other,
    so a module may commit to it freely.

    The template is seeded in two steps, as a demo clinic made before answers existed
    would be: ``seed_demo`` without the instrument library (clients, episodes and
    appointments), then again with it (the answers; the same rows as one call with the
    library, which ``outcome demo`` makes). :meth:`seeding` gives the summaries of both
    steps, which ``test_demo.py`` checks, so the path costs no demo of its own.
    """

    SCHEMA = "outcome_demo"

    def __init__(self, provider: DatabaseProvider, run_dir) -> None:
        self.provider = provider
        self.run_dir = run_dir
        self._copies: list[str] = []

    @staticmethod
    def template_prefix(run_dir) -> str:
        digest = hashlib.sha256(str(run_dir).encode()).hexdigest()[:10]
        return f"outcome_demo_{digest}_"

    def _template_url(self, today: dt.date, timezone: str) -> str:
        key = self._key(today, timezone)
        done = self.run_dir / f"demo-{key}.url"
        with open(self.run_dir / f"demo-{key}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not done.exists():
                if self.provider.backend == "sqlite":
                    url = f"sqlite:///{self.run_dir / f'demo-{key}.sqlite3'}"
                else:
                    name = self.template_prefix(self.run_dir) + key
                    with self.provider._admin_engine().execution_options(
                            isolation_level="AUTOCOMMIT").connect() as conn:
                        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                        conn.execute(text(f'CREATE DATABASE "{name}"'))
                    plain = self._database_url(name, schema=None)
                    plain_engine = create_engine(plain)
                    with plain_engine.begin() as conn:
                        conn.execute(text(f'CREATE SCHEMA "{self.SCHEMA}"'))
                    plain_engine.dispose()
                    url = self._database_url(name)
                engine = make_engine(url)
                schema.upgrade(engine)
                with sessionmaker(bind=engine, expire_on_commit=False)() as session:
                    steps = [seed_demo(session, today=today, password=DEMO_PASSWORD,
                                       timezone=timezone, library=library)
                             for library in (None, LIB)]
                    session.commit()
                engine.dispose()
                self._summaries_path(key).write_text(json.dumps(
                    [{name: getattr(step, name) for name in self.COUNTS} for step in steps]))
                done.write_text(url)
            return done.read_text()

    COUNTS = ("created", "clients", "episodes", "appointments", "administrations")

    @staticmethod
    def _key(today: dt.date, timezone: str) -> str:
        return f"{today:%Y%m%d}_{re.sub(r'[^A-Za-z0-9]', '_', timezone).lower()}"

    def _summaries_path(self, key: str):
        return self.run_dir / f"demo-{key}.json"

    def seeding(self, *, today: dt.date = DEMO_TODAY,
                timezone: str = DEMO_TIMEZONE) -> tuple[dict, dict]:
        """What ``seed_demo`` returned when the template was seeded (:data:`COUNTS` of its
        summary): first without the instrument library, then with it."""
        self._template_url(today, timezone)
        before, after = json.loads(self._summaries_path(self._key(today, timezone)).read_text())
        return before, after

    def new_url(self, *, today: dt.date = DEMO_TODAY, timezone: str = DEMO_TIMEZONE) -> str:
        """The URL of a new database holding the demo clinic seeded for ``today``."""
        template = self._template_url(today, timezone)
        if self.provider.backend == "sqlite":
            path = self.provider.tmp_dir / f"{uuid.uuid4().hex}.sqlite3"
            shutil.copyfile(make_url(template).database or "", path)
            return f"sqlite:///{path}"
        name = f"outcome_democopy_{os.getpid()}_{secrets.token_hex(4)}"
        with self.provider._admin_engine().execution_options(
                isolation_level="AUTOCOMMIT").connect() as conn:
            conn.execute(text(
                f'CREATE DATABASE "{name}" TEMPLATE "{make_url(template).database}"'))
        self._copies.append(name)
        return self._database_url(name)

    def _database_url(self, name: str, schema: str | None = SCHEMA) -> str:
        """The server's URL for database ``name``; in its ``schema`` (as the run's other
        PostgreSQL databases are: a backup of one is then a schema's, not a server's)."""
        url = make_url(self.provider.postgres_url).set(database=name)
        if schema is not None:
            url = url.update_query_dict({"options": f"-csearch_path={schema}"})
        return url.render_as_string(hide_password=False)

    def drop_copies(self) -> None:
        if not self._copies:
            return
        with self.provider._admin_engine().execution_options(
                isolation_level="AUTOCOMMIT").connect() as conn:
            for name in self._copies:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _run_dir(tmp_path_factory):
    """The folder every xdist worker of this run shares (the run's base folder)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def demo_databases(databases: DatabaseProvider, tmp_path_factory) -> Iterator[DemoDatabases]:
    """``demo_databases.new_url(today=..., timezone=...)``: a fresh copy of the demo."""
    demos = DemoDatabases(databases, _run_dir(tmp_path_factory))
    yield demos
    demos.drop_copies()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Drop the run's PostgreSQL demo templates (in the xdist controller, or a plain run)."""
    config = session.config
    if hasattr(config, "workerinput") or config.getoption("--db") != "postgresql":
        return
    prefix = DemoDatabases.template_prefix(config._tmp_path_factory.getbasetemp())  # type: ignore[attr-defined]
    engine = create_engine(config.getoption("--postgres-url"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            names = conn.execute(text("SELECT datname FROM pg_database WHERE datname LIKE :p"),
                                 {"p": prefix.replace("_", r"\_") + "%"}).scalars().all()
            for name in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def database_url(databases: DatabaseProvider) -> str:
    """The run's shared database, migrated to head once."""
    url = databases.new_url()
    engine = make_engine(url)
    schema.upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture
def fresh_database_url(databases: DatabaseProvider) -> str:
    """An empty database of the run's backend, for tests of migrations and the CLI."""
    return databases.new_url()


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that is rolled back after the test."""
    conn = engine.connect()
    outer = conn.begin()
    yield conn
    if outer.is_active:
        outer.rollback()
    conn.close()


@pytest.fixture
def session_factory(connection: Connection) -> sessionmaker[Session]:
    return sessionmaker(bind=connection, join_transaction_mode="create_savepoint",
                        expire_on_commit=False)


@pytest.fixture
def db_session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    session = session_factory()
    yield session
    session.close()


# --- the application -------------------------------------------------------------------


class FrozenClock:
    """A clock for the edges that only moves when a test says so."""

    def __init__(self, start: dt.datetime) -> None:
        self.current = start

    def __call__(self) -> dt.datetime:
        return self.current

    def advance(self, **kwargs: float) -> None:
        self.current += dt.timedelta(**kwargs)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(dt.datetime(2026, 11, 16, 9, 0, tzinfo=dt.UTC))


def _build_app(database_url: str, *, instance_path=None, session_factory=None, clock=None,
               **config):
    app = new_app(database_url, **config)
    if instance_path is not None:
        app.instance_path = str(instance_path)
    if session_factory is not None:
        database(app).session_factory = session_factory
    if clock is not None:
        app.extensions["outcome.clock"] = clock
    return app


@pytest.fixture(scope="session")
def app_factory() -> Iterator[Callable[..., object]]:
    """``app_factory(database_url, *, instance_path=None, session_factory=None, clock=None,
    **config)``: an app for module- and session-scoped fixtures (``make_app`` for tests).
    The engines of the apps it made are disposed at the end of the run."""
    made = []

    def make(database_url: str, **kwargs):
        app = _build_app(database_url, **kwargs)
        made.append(app)
        return app

    yield make
    for app in made:
        database(app).engine.dispose()


@pytest.fixture
def make_app(database_url: str, tmp_path) -> Iterator[Callable[..., object]]:
    """``make_app(*, database_url=<the run's>, instance_path=<tmp>, session_factory=None,
    clock=None, **config)``: a test app (``tests.helpers.new_app``: ENV test, a fixed key,
    rate limits off unless ``RATELIMIT_ENABLED=True``); its engine is disposed after the
    test. Pass the test's ``session_factory`` to share its rolled-back transaction."""
    made = []

    def make(*, database_url: str = database_url, instance_path=None, **kwargs):
        path = instance_path or tmp_path / f"instance-{len(made)}"
        app = _build_app(database_url, instance_path=path, **kwargs)
        made.append(app)
        return app

    yield make
    for app in made:
        database(app).engine.dispose()


@pytest.fixture
def app(make_app, session_factory: sessionmaker[Session], clock: FrozenClock, tmp_path):
    """The app on the run's database; its requests share the test's rolled-back transaction."""
    # Rate limits count real time across every app of the run; tests that need them
    # switch them on themselves (tests/test_sessions.py).
    return make_app(instance_path=tmp_path / "instance", session_factory=session_factory,
                    clock=clock)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    """The ``outcome`` commands run against the test app (as ``flask --app wsgi`` does)."""
    for command in all_commands():
        app.cli.add_command(command)
    return app.test_cli_runner()


CSRF_PATTERN = re.compile(r'name="csrf_token"[^>]*?value="([^"]+)"')


def csrf_token(html: str) -> str:
    """The CSRF token of the first form in ``html``."""
    match = CSRF_PATTERN.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


class AuthActions:
    """Sign in and out through the real forms, CSRF token included (as flaskr's ``auth``)."""

    def __init__(self, client) -> None:
        self._client = client

    def login(self, email: str, password: str = TEST_PASSWORD, **kwargs):
        token = csrf_token(self._client.get("/login").get_data(as_text=True))
        return self._client.post("/login", data={"csrf_token": token, "email": email,
                                                 "password": password}, **kwargs)

    def logout(self):
        token = csrf_token(self._client.get("/").get_data(as_text=True))
        return self._client.post("/logout", data={"csrf_token": token})


@pytest.fixture
def auth(client) -> AuthActions:
    return AuthActions(client)


# --- factories (indico style: fixtures that return functions) ---------------------------

_sequence = itertools.count(1)


@pytest.fixture
def make_clinic(db_session: Session) -> Callable[..., Clinic]:
    def make(**kwargs) -> Clinic:
        n = next(_sequence)
        kwargs.setdefault("slug", f"clinic-{n}")
        kwargs.setdefault("name", f"Test Clinic {n}")
        # Issue 20: the real default asks each client for consent on their first link
        # page; the generic test clinic records consent another way (consent_online off),
        # so tests about other things meet the questionnaire itself. Consent tests turn
        # it on (tests/test_consent.py).
        kwargs["settings"] = {"consent_online": False, **(kwargs.get("settings") or {})}
        clinic = Clinic(**kwargs)
        db_session.add(clinic)
        db_session.flush()
        return clinic

    return make


@pytest.fixture
def clinic(make_clinic) -> Clinic:
    return make_clinic()


@pytest.fixture
def make_user(db_session: Session, clinic: Clinic) -> Callable[..., User]:
    def make(role: str = "therapist", **kwargs) -> User:
        n = next(_sequence)
        kwargs.setdefault("clinic_id", clinic.id)
        kwargs.setdefault("email", f"{role}{n}@example.org")
        kwargs.setdefault("display_name", f"{role.title()} {n}")
        kwargs.setdefault("password_hash", _TEST_PASSWORD_HASH)
        for flag in ("admin", "supervisor", "therapist"):
            kwargs.setdefault(f"is_{flag}", flag == role)
        user = User(**kwargs)
        db_session.add(user)
        db_session.flush()
        return user

    return make


@pytest.fixture
def assign(db_session: Session) -> Callable[[User, User], SupervisorAssignment]:
    def make(supervisor: User, therapist: User) -> SupervisorAssignment:
        row = SupervisorAssignment(clinic_id=supervisor.clinic_id, supervisor_id=supervisor.id,
                                   therapist_id=therapist.id)
        db_session.add(row)
        db_session.flush()
        return row

    return make


@pytest.fixture
def make_client(db_session: Session, clinic: Clinic) -> Callable[..., Client]:
    def make(therapist: User | None = None, **kwargs) -> Client:
        n = next(_sequence)
        kwargs.setdefault("clinic_id", therapist.clinic_id if therapist else clinic.id)
        kwargs.setdefault("name", f"Client Person {n}")
        kwargs.setdefault("code", allocate_client_code(db_session))
        client = Client(therapist_id=therapist.id if therapist else None, **kwargs)
        db_session.add(client)
        db_session.flush()
        return client

    return make


@pytest.fixture
def make_episode(db_session: Session) -> Callable[..., Episode]:
    def make(client: Client, therapist: User | None = None, **kwargs) -> Episode:
        kwargs.setdefault("opened_on", dt.date(2026, 9, 1))
        episode = Episode(clinic_id=client.clinic_id, client_id=client.id,
                          therapist_id=(therapist.id if therapist else client.therapist_id),
                          **kwargs)
        db_session.add(episode)
        db_session.flush()
        return episode

    return make


@pytest.fixture
def make_appointment(db_session: Session) -> Callable[..., Appointment]:
    def make(episode: Episode, **kwargs) -> Appointment:
        kwargs.setdefault("starts_dt", dt.datetime(2026, 11, 17, 10, 0, tzinfo=dt.UTC))
        appointment = Appointment(episode_id=episode.id, **kwargs)
        db_session.add(appointment)
        db_session.flush()
        return appointment

    return make


# --- a small supervised team, shared by the supervision and digest tests ---------------

TEAM_CLIENT_NAME, TEAM_CLIENT_GOAL = "Private Person", "Call my sister every week"


@pytest.fixture
def team(db_session, make_user, make_client, make_episode, make_appointment, assign, clock):
    """Supervisor S of therapists A (two clients: one red, one recovered and ended) and B
    (one white client); therapist C is not S's supervisee."""
    from outcome.services.goals import set_goals

    s = make_user("supervisor", display_name="Sam Supervisor")
    a = make_user(display_name="Alex Therapist")
    b = make_user(display_name="Bea Therapist")
    c = make_user(display_name="Cal Elsewhere")
    assign(s, a)
    assign(s, b)
    red = make_client(a, name=TEAM_CLIENT_NAME)
    red_episode = make_episode(red)
    set_goals(db_session, red_episode, [TEAM_CLIENT_GOAL], clock())
    # Four sessions held, each form answered just after its session began (the session
    # t of a form without an appointment is the number of sessions held by then).
    for week in range(4):
        make_appointment(red_episode, starts_dt=T0 + dt.timedelta(weeks=week, hours=-1))
    answer(db_session, red_episode, [1, 1, 2, 2])
    done = make_client(a, name="Done Client")
    done_episode = make_episode(done)
    answer(db_session, done_episode, [3, 3, 1, 0])
    done_episode.closed_on, done_episode.end_reason = dt.date(2026, 11, 1), "completed"
    white = make_client(b, name="White Client")
    answer(db_session, make_episode(white), [1, 1])
    hidden = make_client(c, name="Hidden Client")
    make_episode(hidden)
    db_session.commit()
    return {"s": s, "a": a, "b": b, "c": c, "red": red, "done": done, "hidden": hidden}


# --- the integration API -----------------------------------------------------------------


class ApiClient:
    """The app's test client with an API token on every request (JSON in, JSON out)."""

    def __init__(self, client, secret: str) -> None:
        self._client = client
        self.secret = secret

    def _headers(self, headers: dict | None) -> dict:
        return {"Authorization": f"Bearer {self.secret}", **(headers or {})}

    def get(self, path: str, headers: dict | None = None, **kwargs):
        return self._client.get(path, headers=self._headers(headers), **kwargs)

    def post(self, path: str, json=None, headers: dict | None = None, **kwargs):
        return self._client.post(path, json=json, headers=self._headers(headers), **kwargs)


@pytest.fixture
def make_token(db_session: Session, clock: FrozenClock):
    """``make_token(user, scopes=("read", "write"), days=90, kind="personal") -> secret``:
    a token acting for ``user`` and made by them (a personal token; an ``integration``
    token is an admin's, read-only)."""
    from outcome.services.api_tokens import create_token

    def make(user: User, scopes=("read", "write"), days: int = 90, name: str = "EHR",
             kind: str = "personal") -> str:
        _token, secret = create_token(db_session, user=user, name=name, kind=kind,
                                      scopes=scopes, created_by=user, now=clock(), days=days)
        db_session.commit()
        return secret

    return make


@pytest.fixture
def api(client, make_token, make_user) -> Callable[..., ApiClient]:
    """``api(user=None, scopes=...)``: an :class:`ApiClient` acting for ``user`` (default:
    a new therapist)."""

    def make(user: User | None = None, scopes=("read", "write")) -> ApiClient:
        return ApiClient(client, make_token(user or make_user(), scopes=scopes))

    return make


# --- a client with a record (client record and progress report tests) -------------------


@pytest.fixture
def case(db_session, make_user, make_client, make_episode):
    """A client whose PHQ-9 improves 17 -> 2 with item 1 staying high, an SRS rupture at
    session 3 repaired at 4, two goals rated, and a critical answer at session 2."""
    from outcome.services.goals import set_goals

    phq, srs, gbo = LIB.get("phq9"), LIB.get("srs_vas"), LIB.get("gbo")
    therapist = make_user()
    person = make_client(therapist, name="Ada Lovelace")
    episode = make_episode(person)
    set_goals(db_session, episode, ["Sleep through the night", CANARY], T0)
    for week, (level, item1, item9) in enumerate([(2, 3, 0), (2, 3, 1), (1, 3, 0),
                                                  (1, 2, 0), (0, 2, 0)]):
        values = {f"phq9_{i}": level for i in range(2, 9)}
        values.update(phq9_1=item1, phq9_9=item9)
        submit(db_session, episode, phq, values, week)
    for week, value in enumerate([9.5, 9.6, 7.0, 9.5, 9.6]):
        submit(db_session, episode, srs, {f"srs_{i}": value for i in range(1, 5)}, week)
    for week, (a, b) in enumerate([(2, 1), (4, 3), (6, 5)]):
        submit(db_session, episode, gbo, {"gbo_1": a, "gbo_2": b}, week)
    db_session.commit()
    return therapist, person, episode


# --- a real SMTP server on loopback (e-mail and digest tests) -----------------------------


class Inbox:
    """aiosmtpd handler that keeps every message it is sent."""

    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp(app):
    """A real SMTP server (aiosmtpd) on a free loopback port, and the app set to send
    there; yields its :class:`Inbox`."""
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_SECURITY="none",
                      MAIL_FROM="clinic@example.org")
    yield inbox
    controller.stop()


# --- issue 20: encryption at rest -------------------------------------------------------


@pytest.fixture(autouse=True)
def _key_ring() -> Iterator[None]:
    """The process's encryption key ring for each test: none (encryption off, as in
    production by default), or the keys of ``OUTCOME_ENCRYPTION_KEYS`` when the run sets
    it, so that any test file can be run with encryption on (docs/operators.md). Apps made
    by the test install their own configured ring; it is reset afterwards."""
    from outcome import encryption
    ring = encryption.key_ring_from_config(
        {"ENCRYPTION_KEYS": os.environ.get("OUTCOME_ENCRYPTION_KEYS", "")})
    encryption.install(ring)
    yield
    encryption.install(ring)
