"""Crash safety (issue 9): the harness of bench/crash.py, small, on the run's backend.

``outcome serve`` (gunicorn, 2 workers) on a fresh database takes API submissions from
8 threads and is SIGKILLed four times (twice a worker, twice the master and every
worker); after each kill it is restarted and every acknowledged submission must be
stored exactly once, every unacknowledged one must succeed when retried with its same
``Idempotency-Key``, nothing may be half-written and the database must pass its own
checks. ``make crash`` runs the same with 200 kills on each backend.

Four kills (six until the suite's time was cut): each kind of kill is made twice, so each
is also made on a database that has already been through a kill and a restart, and the
kills cut requests off mid-write (a master kill every request in flight, and it refuses
those sent until the load stops; a worker kill those on that worker), which
``retried > 0`` checks. Further rounds repeat the same paths at a server start each; the
many-kill run is ``make crash``.

The second test shows that the checks are not blind: damage of the kinds a crash could
leave, made by hand, is reported.
"""

from __future__ import annotations

import sqlite3
import time

import pytest
from sqlalchemy import delete
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy import update
from sqlalchemy.engine import make_url

from bench import crash
from outcome.db import transaction
from outcome.models import Administration
from outcome.models import ApiIdempotencyRecord
from outcome.models import EpisodeSignal


@pytest.mark.slow
def test_sigkill_under_load_loses_duplicates_and_half_writes_nothing(fresh_database_url,
                                                                   tmp_path):
    report = crash.run(fresh_database_url, kills=4, folder=tmp_path, seed=9, clients=30,
                       threads=8, time_limit=300, log=print)
    figures = report.figures()
    print(f"\n[crash] {figures}\n[crash] {report.summary()}")
    problems = {name: sorted(getattr(report.findings, name))[:5]
                for name in crash.Findings.names()}
    assert report.findings.total() == 0, problems
    assert report.rounds_done == 4
    assert dict(report.kills) == {"worker": 2, "master": 2}
    assert report.respawned == 2  # gunicorn replaced every killed worker
    assert report.acknowledged_after_worker_kill > 0  # and kept serving meanwhile
    assert report.acknowledged > 0
    assert report.retried > 0  # the kills did cut requests off, and each was recovered
    assert report.recovered == report.retried
    assert report.administrations == report.sent
    assert report.server_5xx == 0 and report.server_tracebacks == 0


def _orphan_signal_row(url: str, backend: str, engine) -> bool:
    """Store a signals row for an episode that does not exist, past the foreign key."""
    values = ("INSERT INTO episode_signals (episode_id, colour, urgency, ruptures, "
              "ruptures_repaired, ruptures_unrepaired, state, computed_dt) "
              "VALUES (999999, 'grey', 7, 0, 0, 0, '{}', '2026-01-01 00:00:00')")
    if backend == "sqlite":
        raw = sqlite3.connect(make_url(url).database)  # foreign keys off by default
        with raw:
            raw.execute(values)
        raw.close()
        return True
    try:
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            conn.execute(text(values))
    except sa_exc.DBAPIError:  # not a superuser: foreign keys cannot be bypassed
        return False
    return True


@pytest.mark.slow
def test_the_checks_report_what_a_crash_could_leave(fresh_database_url, tmp_path):
    clinic = crash.prepare(fresh_database_url, clients=4)
    server = crash.Server(fresh_database_url, tmp_path / "server").start()
    try:
        with crash.Load(server, clinic, threads=2, seed=5, round_no=1) as load:
            # Until enough are acknowledged (8, 2 of them GAD-7), not for a fixed time: a
            # loaded machine answers fewer a second (bounded by the load's own deadline).
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                done = [s for results in load.results for s in list(results)
                        if s.acknowledged]
                if len(done) >= 8 and sum(s.instrument == "gad7" for s in done) >= 2:
                    break
                time.sleep(0.1)
            items = load.stop()
    finally:
        server.stop()
    try:
        acked = [s for s in items if s.acknowledged]
        gad7 = [s for s in acked if s.instrument == "gad7"]
        assert len(acked) >= 8 and len(gad7) >= 2, [(s.status, s.error) for s in items]

        def findings() -> crash.Findings:
            found = crash.Findings()
            crash.check_stored(clinic, items, found)
            crash.check_consistency(clinic, items, found)
            crash.check_integrity(clinic, found)
            return found

        assert findings().total() == 0, vars(findings())
        first, second = gad7[0], gad7[1]
        others = [s for s in acked if s.code not in (first.code, second.code)]
        # An administration committed without its idempotency record.
        with transaction(clinic.factory) as session:
            session.execute(delete(ApiIdempotencyRecord).where(
                ApiIdempotencyRecord.key == others[0].key))
        found = findings()
        assert found.half_written == {
            f"administration {others[0].administration_id}: no idempotency record"}
        # An acknowledged administration gone (its record and the signals still show it).
        with transaction(clinic.factory) as session:
            session.execute(delete(Administration).where(
                Administration.id == first.administration_id))
        found = findings()
        assert any(f"key {first.key}" in p and "missing" in p for p in found.lost)
        assert any("is not stored under its key" in p for p in found.half_written)
        assert any(f"episode {clinic.episodes[first.code]} gad7" in p
                   for p in found.half_written)
        # An administration under a key that no request sent.
        with transaction(clinic.factory) as session:
            session.execute(update(Administration).where(
                Administration.id == second.administration_id).values(
                idempotency_key="api:" + "0" * 60))
        found = findings()
        assert any("sent by nobody" in p for p in found.duplicated)
        assert any(f"key {second.key}" in p for p in found.lost)
        # Signals that missed a score.
        episode_id = clinic.episodes[others[-1].code]
        with transaction(clinic.factory) as session:
            row = session.get(EpisodeSignal, episode_id)
            state = dict(row.state)
            state["outcomes"] = {k: {**v, "series": v["series"][:-1]}
                                 for k, v in state["outcomes"].items()}
            row.state = state
        assert any(p.startswith(f"episode {episode_id} ") for p in findings().half_written)
        # A row past a foreign key.
        if _orphan_signal_row(fresh_database_url, clinic.backend, clinic.engine):
            assert any("episode_signals" in p for p in findings().integrity)
    finally:
        clinic.engine.dispose()
