"""Scale-out (issue 21): two application hosts behind HAProxy share PostgreSQL and Redis.

The slow test runs ``bench.scale`` (``make scale``) with small sizes, as
docs/operators.md's "Several application hosts" recipe sets the hosts up: rate limits
counted once over both hosts, a session valid on either host, no acknowledged submission
lost or duplicated when a host is killed under load, and one digest per supervisor and
week with two schedulers. The other tests show that each of those checks fails when what
it checks is wrong.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from bench import scale


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.slow
def test_two_hosts_behind_haproxy_share_the_database_limits_sessions_and_digests(
        pytestconfig, databases):
    if databases.backend != "postgresql":
        pytest.skip("several application hosts share one PostgreSQL server: this test "
                    "runs in the PostgreSQL run (--db=postgresql)")
    if scale.haproxy_binary() is None:
        pytest.skip("haproxy is not installed (`make browser-tools` installs it)")
    if not _redis_up():
        pytest.skip("no Redis at 127.0.0.1:6379 (the hosts count rate limits in it)")
    from outcome import encryption

    keys_before, ring_before = os.environ.get("OUTCOME_ENCRYPTION_KEYS"), encryption.active()
    figures = scale.run(databases.postgres_url, users=6, seconds=4.0, workers=1,
                        clients=60, therapists=2, supervisors=2)
    print(figures)
    # The hosts' key stays theirs: the next test on this worker must not encrypt with it.
    assert os.environ.get("OUTCOME_ENCRYPTION_KEYS") == keys_before
    assert encryption.active() is ring_before
    failed = {name: found for name, found in figures["problems"].items() if found}
    assert not failed
    assert figures["submissions"]["acknowledged"] > 0
    assert figures["both_hosts"]["by_host"].get("hosta")
    assert figures["both_hosts"]["by_host"].get("hostb")
    assert set(figures["one_host_after_settling"]["by_host"]) == {"hosta"}
    assert figures["digests"]["runs"] == figures["digests"]["emails"] > 0


def test_a_job_runs_in_one_scheduler_at_a_time(make_app, databases):
    """Two schedulers (two apps, as on two hosts): while one runs a job, the other skips
    that job (on PostgreSQL) but runs the others; once it is done, the job runs again."""
    from outcome.jobs import exclusive

    first, second = make_app(), make_app()
    started, release = threading.Event(), threading.Event()
    ran: list[str] = []
    results: dict[str, object] = {}

    def slow(app) -> str:
        ran.append("first")
        started.set()
        release.wait(30)
        return "sent"

    thread = threading.Thread(target=lambda: results.setdefault(
        "first", exclusive(first, "deliver-mail", slow)))
    thread.start()
    try:
        assert started.wait(30)
        results["second"] = exclusive(second, "deliver-mail",
                                      lambda app: ran.append("second") or "sent too")
        results["other job"] = exclusive(second, "send-links", lambda app: 3)
    finally:
        release.set()
        thread.join(30)
    results["later"] = exclusive(second, "deliver-mail", lambda app: "sent later")
    if databases.backend == "postgresql":
        assert ran == ["first"]
        assert results == {"first": "sent", "second": None, "other job": 3,
                           "later": "sent later"}
    else:  # one host: the job runs (docs/operators.md: one scheduler on SQLite)
        assert ran == ["first", "second"]
        assert results["second"] == "sent too"


def test_the_job_lock_is_per_schema_and_a_lock_it_cannot_release_goes_with_its_connection(
        make_app, databases, monkeypatch):
    """Two deployments in schemas of one database do not skip each other's jobs; a lock
    whose release fails is not left on a pooled connection (the other schedulers would
    skip the job for as long as this process lives); the lock's session has a short
    server-side TCP keepalive, so a vanished host's lock goes within about a minute."""
    from outcome import jobs
    from outcome.extensions import database

    assert jobs._lock_key("tenant_a", "deliver-mail") != jobs._lock_key("tenant_b",
                                                                         "deliver-mail")
    assert jobs._lock_key("s", "deliver-mail") != jobs._lock_key("s", "send-links")
    if databases.backend != "postgresql":
        return
    app = make_app()
    engine = database(app).engine
    seen: dict[str, object] = {}
    with engine.connect() as probe:
        key = jobs._lock_key(probe.execute(jobs.text("SELECT current_schema()")).scalar(),
                             "deliver-mail")
    # pg_locks shows a bigint key as its two halves; only this job's lock is counted
    # (other test runs may hold their own).
    ours = jobs.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                     f"AND classid = {(key >> 32) & 0xFFFFFFFF} "
                     f"AND objid = {key & 0xFFFFFFFF} AND objsubid = 1")

    def job(app) -> str:
        with engine.connect() as probe:
            seen["locks"] = probe.execute(ours).scalar()
        return "ran"

    real = jobs._unlock

    def failing_unlock(conn, key, job_id):
        seen["idle"] = conn.execute(jobs.text("SHOW tcp_keepalives_idle")).scalar()
        conn.execute(jobs.text("SELECT pg_advisory_unlock(:key)"), {"key": key + 1})
        # The wrong key: pg_advisory_unlock says false, so the connection must go.
        return real(conn, key + 1, job_id)

    monkeypatch.setattr(jobs, "_unlock", failing_unlock)
    assert jobs.exclusive(app, "deliver-mail", job) == "ran"
    assert seen["locks"] == 1
    assert seen["idle"] in ("30", "30s")  # "0" (the system default) over a Unix socket
    monkeypatch.setattr(jobs, "_unlock", real)
    # The invalidated connection takes its lock with it, once the server has seen the
    # socket close: that is asynchronous, so the count is read until it drops (at most 10 s).
    deadline = time.monotonic() + 10
    with engine.connect() as probe:
        while (held := probe.execute(ours).scalar()) and time.monotonic() < deadline:
            probe.rollback()
            time.sleep(0.05)
    assert held == 0
    assert jobs.exclusive(make_app(), "deliver-mail", lambda app: "again") == "again"


def test_the_operators_guide_shows_the_balancer_config_the_scale_test_runs():
    """docs/operators.md, "Several application hosts": the same HAProxy configuration as
    bench.scale generates, with the production bind, hosts and socket."""
    guide = (Path(__file__).resolve().parent.parent / "docs" / "operators.md").read_text()
    shown = re.search(r"```haproxy\n(.*?)```", guide, re.DOTALL)
    assert shown is not None
    assert shown.group(1) == scale.haproxy_config_text(
        "*:443 ssl crt /etc/haproxy/outcome.pem", ["10.0.0.11:5000", "10.0.0.12:5000"],
        "/run/haproxy/admin.sock", as_nobody=False)


# --- each check can fail ----------------------------------------------------------------


def test_the_rate_limit_check_fails_when_each_host_counts_alone():
    limit = scale.LINK_FAILURE_LIMIT
    assert scale.rate_limit_problems([404] * limit + [429, 429]) == []
    assert scale.rate_limit_problems([404] * (limit + 2))  # 6 a host: never limited
    assert scale.rate_limit_problems([404] * 3 + [429] * (limit - 1))  # limited too soon


def test_the_session_check_fails_when_a_host_does_not_know_the_session():
    codes = {"C-S00001", "C-S00002"}
    assert scale.session_problems([("a", 200, codes), ("b", 200, codes | {"C-S00003"})],
                                  codes) == []
    assert scale.session_problems([("a", 200, codes), ("b", 302, set())], codes)
    assert scale.session_problems([("a", 200, codes), ("b", 200, {"C-S00001"})], codes)


def test_the_submission_check_fails_on_a_lost_a_duplicated_or_an_unsent_answer():
    answers = {"gad7_1": 1, "gad7_2": 0}
    sent = [scale.Sent(1, "gad7", answers, True), scale.Sent(2, "gad7", answers, False)]
    assert scale.submission_problems(sent, [(1, "gad7", answers)]) == []
    assert scale.submission_problems(sent, [(1, "gad7", answers), (2, "gad7", answers)]) == []
    lost = scale.submission_problems(sent, [])
    assert lost and "lost" in lost[0]
    twice = scale.submission_problems(sent, [(1, "gad7", answers)] * 2)
    assert twice and "duplicated" in twice[0]
    assert scale.submission_problems(sent, [(1, "gad7", answers), (3, "phq9", answers)])
    assert scale.submission_problems(sent, [(1, "gad7", {**answers, "gad7_1": 3})])


def test_the_digest_check_fails_on_a_second_digest_or_e_mail():
    weeks = [f"2026-W0{n}" for n in range(1, 1 + scale.DIGEST_MONDAYS)]
    runs = Counter({(7, w, "succeeded"): 1 for w in weeks})
    emails = Counter({(7, w): 1 for w in weeks})
    produced = [[len(weeks), 0, 0], [0, 0, 0]]
    assert scale.digest_problems(runs, emails, len(weeks), [7], produced) == []
    assert scale.digest_problems(runs, emails + Counter({(7, weeks[0]): 1}), len(weeks),
                                 [7], produced)
    assert scale.digest_problems(runs, emails, len(weeks) + 1, [7], produced)
    assert scale.digest_problems(runs, emails, len(weeks), [7], [[3, 0, 0], [3, 0, 0]])
    assert scale.digest_problems(runs + Counter({(7, weeks[0], "failed"): 1}), emails,
                                 len(weeks), [7], produced)
