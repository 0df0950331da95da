"""Connection safety settings, and clear errors for databases that cannot work."""

from __future__ import annotations

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from outcome.config import ConfigError
from outcome.db import check_connection
from outcome.db import make_engine


@pytest.mark.sqlite_only
def test_sqlite_connections_are_configured_for_durability(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'a.sqlite3'}", sqlite_busy_timeout_ms=1234)
    with engine.connect() as conn:
        pragma = lambda name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
        assert pragma("foreign_keys") == 1
        assert pragma("journal_mode") == "wal"
        assert pragma("synchronous") == 2  # FULL
        assert pragma("busy_timeout") == 1234
    engine.dispose()


@pytest.mark.sqlite_only
def test_sqlite_writers_take_the_lock_when_they_begin(tmp_path):
    # BEGIN IMMEDIATE: a second writer waits (then fails) at BEGIN, never half-way
    # through its work as a DEFERRED transaction upgrading its lock would.
    engine = make_engine(f"sqlite:///{tmp_path / 'b.sqlite3'}", sqlite_busy_timeout_ms=50)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    first, second = engine.connect(), engine.connect()
    first.begin()
    with pytest.raises(sa_exc.OperationalError, match="database is locked"):
        second.begin()
    first.rollback()
    with second.begin():  # free again
        second.execute(text("INSERT INTO t VALUES (1)"))
    first.close()
    second.close()
    engine.dispose()


@pytest.mark.sqlite_only
def test_sqlite_savepoints_work_inside_immediate_transactions(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'c.sqlite3'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        nested = conn.begin_nested()
        conn.execute(text("INSERT INTO t VALUES (1)"))
        nested.rollback()
        conn.execute(text("INSERT INTO t VALUES (2)"))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT x FROM t")).scalars().all() == [2]
    engine.dispose()


def test_sqlite_creates_the_folder_of_its_file(tmp_path):
    path = tmp_path / "deep" / "er" / "x.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    check_connection(engine)
    assert path.exists()
    engine.dispose()


def test_unreachable_server_is_one_clear_line():
    engine = make_engine("postgresql+psycopg://someone:pw@127.0.0.1:1/nothing",
                         connect_args={"connect_timeout": 2})
    with pytest.raises(ConfigError) as info:
        check_connection(engine)
    message = str(info.value)
    assert message.startswith("cannot connect to the database at "
                              "postgresql+psycopg://someone:***@127.0.0.1:1/nothing")
    assert "check OUTCOME_DATABASE_URL" in message
    assert "pw@" not in message and "\n" not in message


@pytest.mark.parametrize(("url", "expected"), [
    ("not a url", "is not a database URL"),
    ("mysql://u@h/db", "outcome supports sqlite and postgresql"),
    ("postgresql+nosuchdriver://u@h/db", "needs a driver that is not installed"),
])
def test_unusable_urls_are_config_errors(url, expected):
    with pytest.raises(ConfigError, match=expected):
        make_engine(url)


@pytest.mark.sqlite_only
def test_sqlite_readers_can_opt_out_of_the_write_lock(tmp_path):
    from outcome.db import SQLITE_BEGIN_OPTION

    engine = make_engine(f"sqlite:///{tmp_path / 'd.sqlite3'}", sqlite_busy_timeout_ms=50)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    writer = engine.connect()
    writer.begin()
    writer.execute(text("INSERT INTO t VALUES (1)"))
    with engine.connect().execution_options(**{SQLITE_BEGIN_OPTION: "DEFERRED"}) as reader:
        assert reader.execute(text("SELECT count(*) FROM t")).scalar() == 0  # not yet committed
    check_connection(engine)  # the start-up check reads too, so it does not wait either
    writer.commit()
    writer.close()
    engine.dispose()
