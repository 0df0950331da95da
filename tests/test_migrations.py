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


def test_upgrading_a_database_with_data(fresh_engine):
    # Each revision must apply to a database that already holds rows, not only an empty one.
    import datetime as dt

    schema.upgrade(fresh_engine, "0003")
    now = dt.datetime(2026, 11, 1, tzinfo=dt.UTC).replace(tzinfo=None)
    with fresh_engine.begin() as conn:
        conn.execute(text("INSERT INTO clinics (slug, name, timezone, settings, created_dt) "
                          "VALUES ('c', 'C', 'UTC', '{}', :now)"), {"now": now})
        conn.execute(text("INSERT INTO users (clinic_id, email, display_name, is_admin, "
                          "is_supervisor, is_therapist, is_active, session_version, created_dt)"
                          " VALUES (1, 't@example.org', 'T', false, false, true, true, 1, :now)"),
                     {"now": now})
        conn.execute(text("INSERT INTO clients (clinic_id, code, name, locale, therapist_id, "
                          "is_progress_shared, created_dt) VALUES (1, 'C-AAAAAA', 'X', 'en', 1,"
                          " false, :now)"), {"now": now})
        conn.execute(text("INSERT INTO episodes (clinic_id, client_id, therapist_id, opened_on,"
                          " created_dt) VALUES (1, 1, 1, '2026-10-01', :now)"), {"now": now})
        conn.execute(text("INSERT INTO questionnaire_links (episode_id, purpose, token_hash, "
                          "valid_from_dt, valid_until_dt, created_dt) VALUES (1, 'pre', :h, "
                          ":now, :later, :now)"),
                     {"h": "a" * 64, "now": now, "later": now + dt.timedelta(days=1)})
    schema.upgrade(fresh_engine)
    with fresh_engine.connect() as conn:
        battery = conn.execute(text("SELECT battery FROM questionnaire_links")).scalar()
    assert battery in ([], "[]")
