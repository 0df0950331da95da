"""Migration 0015 (issue 17): the end reasons gain "mutual"; old rows and their children
are kept (on SQLite the table is not rebuilt, so nothing cascades), and the CHECK still
refuses a reason outside the list, before and after."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from outcome import schema
from outcome.models.care import END_REASONS
from tests.test_migrations import _an_episode
from tests.test_migrations import fresh_engine  # noqa: F401  (a fixture)

NOW = dt.datetime(2026, 11, 1)


def _end(conn, episode_id: int, reason: str) -> None:
    conn.execute(text("UPDATE episodes SET closed_on = '2026-10-30', end_reason = :r "
                      "WHERE id = :id"), {"r": reason, "id": episode_id})


def test_mutual_joins_the_end_reasons_and_old_rows_stay(fresh_engine):  # noqa: F811
    assert END_REASONS == ("completed", "mutual", "dropped_out", "referred", "other")
    schema.upgrade(fresh_engine, "0013")
    with fresh_engine.begin() as conn:
        _an_episode(conn, NOW)
        conn.execute(text("INSERT INTO episodes (clinic_id, client_id, therapist_id, "
                          "opened_on, closed_on, end_reason, created_dt) VALUES "
                          "(1, 1, 1, '2026-09-01', '2026-09-20', 'completed', :now)"),
                     {"now": NOW})
        conn.execute(text("INSERT INTO questionnaire_links (episode_id, purpose, token_hash, "
                          "battery, valid_from_dt, valid_until_dt, created_dt) VALUES "
                          "(2, 'pre', :h, '[]', :now, :later, :now)"),
                     {"h": "b" * 64, "now": NOW, "later": NOW + dt.timedelta(days=1)})
    with pytest.raises(sa_exc.IntegrityError), fresh_engine.begin() as conn:
        _end(conn, 1, "mutual")  # not yet a reason
    schema.upgrade(fresh_engine, "0015")
    with fresh_engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM questionnaire_links")).scalar() == 1
        assert conn.execute(text("SELECT end_reason FROM episodes WHERE id = 2")).scalar() \
            == "completed"
        _end(conn, 1, "mutual")
    with pytest.raises(sa_exc.IntegrityError), fresh_engine.begin() as conn:
        _end(conn, 2, "bored")
    schema.downgrade(fresh_engine, "0013")
    with fresh_engine.begin() as conn:
        reasons = dict(conn.execute(text("SELECT id, end_reason FROM episodes")).all())
        assert reasons == {1: "other", 2: "completed"}
        assert conn.execute(text("SELECT count(*) FROM questionnaire_links")).scalar() == 1
    with pytest.raises(sa_exc.IntegrityError), fresh_engine.begin() as conn:
        _end(conn, 1, "mutual")
