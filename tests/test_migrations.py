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
        _an_episode(conn, now)
        conn.execute(text("INSERT INTO questionnaire_links (episode_id, purpose, token_hash, "
                          "valid_from_dt, valid_until_dt, created_dt) VALUES (1, 'pre', :h, "
                          ":now, :later, :now)"),
                     {"h": "a" * 64, "now": now, "later": now + dt.timedelta(days=1)})
    schema.upgrade(fresh_engine)
    with fresh_engine.connect() as conn:
        battery = conn.execute(text("SELECT battery FROM questionnaire_links")).scalar()
    assert battery in ([], "[]")


def _an_episode(conn, now):
    """A clinic, a therapist, a client and their episode (id 1 each), in raw SQL."""
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


def test_stored_explanations_become_message_ids_and_back(fresh_engine):
    # 0008 keeps each old English sentence as message legacy.text (it still shows until
    # `outcome signals recompute`); its downgrade puts `text` back, rendering new messages.
    import datetime as dt

    from sqlalchemy import JSON
    from sqlalchemy import column
    from sqlalchemy import insert
    from sqlalchemy import select
    from sqlalchemy import table
    from sqlalchemy.dialects.postgresql import JSONB

    from outcome.services.explanations import render_explanation

    json_type = JSON().with_variant(JSONB(), "postgresql")
    signals = table("episode_signals", column("episode_id"), column("colour"),
                    column("urgency"), column("change_category"), column("ruptures"),
                    column("ruptures_repaired"), column("ruptures_unrepaired"),
                    column("state", json_type), column("computed_dt"))
    alerts = table("alerts", column("id"), column("episode_id"), column("kind"),
                   column("status"), column("detail", json_type), column("raised_dt"))
    old = {"kind": "progress", "level": "red", "rule": "progress.on_track",
           "text": "Red: PHQ-9 19 at session 4: on track.", "numbers": {"observed": 19}}
    state = {"outcomes": {"phq9": {"latest": 19, "progress": old, "change": None}},
             "alliance": {"srs": {"ruptures": [{**old, "kind": "rupture"}]}},
             "critical": [{**old, "kind": "critical", "administration": 3}]}
    schema.upgrade(fresh_engine, "0007")
    now = dt.datetime(2026, 11, 1, tzinfo=dt.UTC).replace(tzinfo=None)
    with fresh_engine.begin() as conn:
        _an_episode(conn, now)
        conn.execute(insert(signals).values(
            episode_id=1, colour="red", urgency=1, change_category=None, ruptures=1,
            ruptures_repaired=0, ruptures_unrepaired=0, state=state, computed_dt=now))
        conn.execute(insert(alerts).values(episode_id=1, kind="not_on_track", status="open",
                                           detail={**old, "triggers": [3]}, raised_dt=now))
    schema.upgrade(fresh_engine)
    with fresh_engine.connect() as conn:
        new_state = conn.execute(select(signals.c.state)).scalar_one()
        detail = conn.execute(select(alerts.c.detail)).scalar_one()
    stored = [new_state["outcomes"]["phq9"]["progress"],
              new_state["alliance"]["srs"]["ruptures"][0], new_state["critical"][0], detail]
    for explanation in stored:
        assert "text" not in explanation and explanation["message"] == "legacy.text"
        assert render_explanation(explanation, "ru") == old["text"]
    assert new_state["outcomes"]["phq9"]["change"] is None
    assert detail["triggers"] == [3] and new_state["critical"][0]["administration"] == 3
    # A signal recomputed after the upgrade holds a real message id: downgrade renders it.
    recomputed = {**old, "message": "progress.explanation", "params": {
        "head": {"message": "progress.head", "params": {
            "colour": {"message": "colour.red"}, "instrument": "PHQ-9", "observed": 19,
            "session": 4}},
        "body": {"message": "progress.on_track"}}}
    del recomputed["text"]
    with fresh_engine.begin() as conn:
        conn.execute(signals.update().values(
            state={**new_state, "outcomes": {"phq9": {"progress": recomputed}}}))
    schema.downgrade(fresh_engine, "0007")
    with fresh_engine.connect() as conn:
        old_state = conn.execute(select(signals.c.state)).scalar_one()
        detail = conn.execute(select(alerts.c.detail)).scalar_one()
    assert old_state["outcomes"]["phq9"]["progress"] == old
    assert old_state["critical"][0] == {**old, "kind": "critical", "administration": 3}
    assert detail == {**old, "triggers": [3]}


def test_rebuilding_a_table_loses_no_row_that_refers_to_it(fresh_engine):
    # Issue 17: on SQLite a batch migration copies a table and drops the old one; with
    # foreign keys enforced the DROP deleted every questionnaire link of every
    # appointment (ON DELETE CASCADE) and emptied the answers' appointment (SET NULL)
    # when 0014 rebuilt `appointments`. Every row must survive every migration.
    schema.upgrade(fresh_engine, "0013")
    when = "2026-02-01 09:00:00"
    rows = {
        "clinics": "(id, slug, name, timezone, settings, created_dt) VALUES "
                   "(1, 'c', 'C', 'UTC', '{}', :when)",
        "users": "(id, clinic_id, email, display_name, is_admin, is_supervisor, is_therapist,"
                 " is_active, session_version, created_dt) VALUES "
                 "(1, 1, 't@example.org', 'T', false, false, true, true, 1, :when)",
        "clients": "(id, clinic_id, code, name, locale, therapist_id, is_progress_shared, "
                   "created_dt) VALUES (1, 1, 'C-AAAAAA', 'P', 'en', 1, false, :when)",
        "episodes": "(id, clinic_id, client_id, therapist_id, opened_on, created_dt) VALUES "
                    "(1, 1, 1, 1, '2026-01-01', :when)",
        "goals": "(id, episode_id, position, description, created_dt) VALUES "
                 "(1, 1, 1, 'Sleep better', :when)",
        "appointments": "(id, episode_id, starts_dt, duration_minutes, status, created_dt) "
                        "VALUES (1, 1, :when, 50, 'attended', :when)",
        "questionnaire_links": "(id, episode_id, appointment_id, purpose, token_hash, battery,"
                               " valid_from_dt, valid_until_dt, created_dt) VALUES "
                               f"(1, 1, 1, 'pre', '{'a' * 64}', '[]', :when, "
                               "'2026-03-01 09:00:00', :when)",
        "administrations": "(id, episode_id, appointment_id, link_id, instrument_id, "
                           "instrument_version, respondent, answers, scores, total, is_valid,"
                           " is_prorated, completed_dt, idempotency_key, created_dt) VALUES "
                           "(1, 1, 1, 1, 'phq9', '1', 'client', '{}', '{}', 3, true, false, "
                           ":when, 'k1', :when)",
    }
    with fresh_engine.begin() as conn:
        for table, values in rows.items():
            conn.execute(text(f"INSERT INTO {table} {values}"), {"when": when})
    schema.upgrade(fresh_engine)
    with fresh_engine.connect() as conn:
        for table in rows:
            assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar() == 1, table
        assert conn.execute(text("SELECT appointment_id, link_id FROM administrations")
                            ).one() == (1, 1)
        assert conn.execute(text("SELECT appointment_id FROM questionnaire_links")
                            ).scalar() == 1
