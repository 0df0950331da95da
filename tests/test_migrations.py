"""Migrations build the schema the models describe, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import warnings

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import inspect
from sqlalchemy import text

from outcome import schema
from outcome.db import make_engine
from outcome.models import AuditEvent
from outcome.models import Base


@pytest.fixture
def fresh_engine(fresh_database_url):
    engine = make_engine(fresh_database_url)
    yield engine
    engine.dispose()


def _quiet(fn, *args):
    with warnings.catch_warnings():
        # SQLite cannot reflect the lower(email) index, so it is skipped from the comparison
        # there; PostgreSQL compares it.
        warnings.filterwarnings("ignore", message=".*expression-based index")
        return fn(*args)


def test_upgrade_from_empty_matches_the_models(fresh_engine):
    assert schema.current_revision(fresh_engine) is None
    schema.upgrade(fresh_engine)
    assert schema.current_revision(fresh_engine) == schema.head_revision()
    assert _quiet(schema.pending_model_changes, fresh_engine) == []
    tables = set(inspect(fresh_engine).get_table_names())
    assert set(Base.metadata.tables) <= tables


def test_upgrade_is_idempotent_and_downgrade_round_trips(fresh_engine):
    schema.upgrade(fresh_engine)
    schema.upgrade(fresh_engine)  # already at head: nothing to do, no error
    assert schema.is_up_to_date(fresh_engine)
    schema.downgrade(fresh_engine, "base")
    assert schema.current_revision(fresh_engine) is None
    assert set(inspect(fresh_engine).get_table_names()) <= {"alembic_version"}
    schema.upgrade(fresh_engine)
    assert _quiet(schema.pending_model_changes, fresh_engine) == []


def test_audit_trail_is_append_only_in_the_database(db_session):
    import datetime as dt

    event = AuditEvent(action="login", outcome="allowed", actor_kind="anonymous",
                       occurred_dt=dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
    db_session.add(event)
    db_session.flush()
    for statement in (f"UPDATE audit_events SET action = 'x' WHERE id = {event.id}",
                      f"DELETE FROM audit_events WHERE id = {event.id}"):
        savepoint = db_session.begin_nested()
        with pytest.raises(sa_exc.DatabaseError, match="append-only"):
            db_session.execute(text(statement))
        savepoint.rollback()
