"""Smoke test of the benchmarks: each module under ``bench/`` starts, runs on a tiny size
and produces its report (its own checks of agreement and completeness included).

Timings are not tested, and the sizes here say nothing about performance: ``make bench``
measures at full size. The crash harness (``bench/crash.py``) has its own tests in
``tests/test_crash.py``. Each benchmark makes its own SQLite database, so these run once,
in the SQLite run (``no_database``).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import ROOT


def bench(module: str, *args: str, timeout: int = 180) -> dict:
    """Run ``python -m bench.<module> ARGS --json``; its figures (it exited 0)."""
    result = subprocess.run([sys.executable, "-m", f"bench.{module}", *args, "--json"],
                            cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout)


# Every module under bench/ but the crash harness, each with a test below.
# bench/ruptures.py is smoke-tested, seeded, in tests/test_ruptures_bench.py.
SMOKE_TESTED = {"scoring", "signals", "forms", "dashboard", "digest", "clinic_day",
                "ruptures", "audit_flood", "slow_clients", "briefs",
                "cli"}  # issue 21: the command line


def test_every_benchmark_module_has_a_smoke_test():
    # bench.encryption runs the forms, dashboard and digest benches (each smoke-tested
    # here) with and without a key; its own run takes minutes (make bench-encryption).
    # bench.scale (make scale) is run, small, by tests/test_scale.py.
    modules = ({path.stem for path in (ROOT / "bench").glob("*.py")}
               - {"__init__", "crash", "encryption", "scale"})
    assert modules == SMOKE_TESTED


def test_audit_flood_benchmark_counts_rows_before_and_after():
    figures = bench("audit_flood", "--seconds", "1")
    assert figures["before"]["requests"] > 0 and figures["after"]["requests"] > 0
    assert 0 < figures["after_rows_per_minute"] <= 24  # MAX_AUDIT_ROWS_PER_MINUTE


@pytest.mark.slow
def test_slow_clients_benchmark_runs_against_a_real_server():
    # (tests/test_slow_clients.py holds the regression tests of issue 16, finding 13.)
    figures = bench("slow_clients", "--slow", "0", "3", "--seconds", "2")
    assert [f["slow"] for f in figures] == [0, 3]
    assert all(f["requests"] > 0 and f["no_answer"] == 0 for f in figures)


def test_scoring_benchmark_runs_and_agrees():
    figures = bench("scoring", "--rows", "500", "--python-rows", "500")
    assert figures["rows"] == 500 and figures["vectorised_s"] > 0  # agreement: the script


def test_signals_benchmark_runs_the_production_path_and_both_paths_agree():
    figures = bench("signals", "--episodes", "60", "--loop-episodes", "20")
    assert figures["episodes"] == 60 and figures["administrations"] == 60 * 10 * 3
    assert figures["batch_s"] > 0 and figures["alerts"] > 0


@pytest.mark.slow
def test_forms_benchmark_runs_against_a_real_server():
    figures = bench("forms", "--clients", "6", "--concurrency", "2",
                    "--trivial-seconds", "0.5", "--cpu-clients", "3")
    assert figures["page_bytes"] < 50_000 and figures["external_requests"] == 0
    assert figures["submissions_per_s"] > 0 and figures["post_p99_ms"] > 0
    # issue 21: the in-process pass (CPU time and statements per request)
    assert figures["cpu_ratio"] > 0 and figures["statements"]["post"] > 0


@pytest.mark.slow
def test_dashboard_benchmark_signs_in_and_lists_the_caseload():
    figures = bench("dashboard", "--clients", "4", "--sessions", "2", "--small", "200",
                    "--large", "1000", "--seconds", "0.3", "--warmup", "0.1",
                    "--concurrency", "2", "--rounds", "1")
    assert figures["small"]["administrations"] == 200  # every page was 200 with all clients
    assert figures["large"]["administrations"] == 1000
    for run in (figures["small"], figures["large"]):
        assert run["dashboard_requests"] > 0 and run["trivial_rps"] > 0
        # issue 21: measured in process too, one audit record per request
        assert run["audit_rows_per_request"] == 1 and 0 < run["statements_per_request"] < 20
        assert 0 < run["cpu_ratio"] < 1
    assert set(figures["targets_met"]) == {"dashboard_vs_trivial", "dashboard_p99",
                                           "large_slowdown"}


def test_digest_benchmark_produces_archives_and_queues_every_digest():
    figures = bench("digest", "--supervisors", "1", "--therapists-per-supervisor", "2",
                    "--clients-per-therapist", "2", "--bare-pages", "2")
    assert (figures["digests"], figures["therapists"], figures["clients"]) == (1, 2, 4)
    assert figures["pages"] >= 1 + 2  # a cover and a section per supervisee
    assert 0 < figures["render_s"] <= figures["total_s"]
    assert figures["bare_ms_per_page"] > 0
    assert set(figures["targets_met"]) == {"total_under_60s", "render_within_2x_bare"}


def test_briefs_benchmark_builds_and_renders_every_therapists_brief():
    figures = bench("briefs", "--therapists", "2", "--appointments", "3", "--bare-pages", "2")
    assert (figures["briefs"], figures["sections"], figures["clients"]) == (2, 6, 6)
    assert figures["produced"] == 2 and figures["production_s"] > 0
    assert figures["pages"] >= 2 * (1 + 3)  # the day's list and a page per client
    assert 0 < figures["render_s"] <= figures["total_s"]
    assert figures["bare_ms_per_page"] > 0
    assert set(figures["targets_met"]) == {"total_under_60s", "production_under_60s",
                                           "render_within_2x_bare"}


@pytest.mark.slow
def test_clinic_day_benchmark_runs_a_short_day():
    # Both models of issue 21 on a tiny clinic: the think model with short pauses (3 s, so
    # that its two clients finish a visit even on a loaded machine), one
    # stress step. Enough clients that the load does not use up every link.
    figures = bench("clinic_day", "--model", "think", "stress", "--users", "4",
                    "--seconds", "3", "--warmup", "0.5", "--digest-at", "0",
                    "--client-think", "0.05", "0.2", "--therapist-think", "0.05", "0.2",
                    "--api-think", "0.05", "0.2", "--step-seconds", "1.5", "--step-requests", "1",
                    "--step-warmup", "0.5", "--rate-start", "8", "--rate-max", "8",
                    "--supervisors", "1", "--therapists-per-supervisor", "2",
                    "--clients-per-therapist", "40", "--workers", "1", "--no-idle-digest",
                    timeout=300)
    assert figures["arguments"]["model"] == ["think", "stress"]
    [sqlite] = figures["backends"].values()
    assert sqlite["backend"] == "sqlite" and sqlite["digest_alone"] is None
    [think] = sqlite["think"]
    stress = sqlite["stress"]
    [step] = stress["steps"]
    assert think["users"] == {"client": 2, "therapist": 1, "api": 1}
    assert step["rate"] == 8 and stress["highest_passing_rps"] in (8, None)
    flows = {"client.open", "client.page", "client.submit", "client.thanks",
             "therapist.caseload", "therapist.client", "api.signals", "api.alerts"}
    # Every kind of request in the think model (one user of each kind); the stress step's
    # few seconds hold at least the start of a client's visit (79 % of its requests are
    # clients'). The think model's client finishes visits (the thank-you page is among its
    # kinds); the stress step is 1.5 s, in which a visit's six requests in a row need not
    # all come back on a loaded machine (a fresh-clone run once saw none finish).
    assert think["visits"] > 0
    assert flows <= set(think["kinds"]), set(think["kinds"])
    assert {"client.open", "client.page", "client.submit"} <= set(step["kinds"]) <= flows | {
        "client.support"}
    for run in (think, step):
        # Every request answered as the flow expects (statuses, pages, the whole caseload);
        # the digest ran during the measured time.
        assert run["overall"]["count"] > 0 and run["overall"]["errors"] == 0, run["failures"]
        assert sum(k["count"] for k in run["kinds"].values()) == run["overall"]["count"]
        assert not run["digest"]["failed"]
        # A thank-you page answered is a whole visit counted.
        assert run["visits"] > 0 or "client.thanks" not in run["kinds"]
        assert 0 <= run["digest"]["started_at_s"] < run["seconds"]
        assert {"p50_ms", "p95_ms", "p99_ms", "max_ms", "error_pct"} <= set(run["overall"])
        assert run["load_generator_cpu_cores"] >= 0 and run["load_average_before"]
    assert step["dispatched"] == step["answered"] and step["unanswered"] == 0
    assert not step["generator_crashes"] and step["sent_late_ms"]["max"] >= 0
    assert step["connections_reused"] > 0  # keep-alive


# issue 21: the command line
def test_cli_benchmark_runs_help_and_analyse_as_processes():
    figures = bench("cli", "--ids", "300", "--runs", "1")
    assert figures["ids"] == 300 and sum(figures["categories"].values()) == 297
    assert figures["help"]["code"] == 0 and figures["analyse"]["code"] == 0
    assert figures["analyse"]["rss_mb"] > 0 and figures["in_process"]["cpu_s"] >= 0
