"""The benchmarks still run and their implementations still agree (timings are not tested)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_scoring_benchmark_runs_and_agrees():
    result = subprocess.run(
        [sys.executable, "-m", "bench.scoring", "--rows", "5000", "--python-rows", "5000",
         "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr  # the script asserts agreement itself
    figures = json.loads(result.stdout)
    assert figures["rows"] == 5000 and figures["vectorised_s"] > 0


def test_signals_benchmark_runs_the_production_path_and_both_paths_agree():
    result = subprocess.run(
        [sys.executable, "-m", "bench.signals", "--episodes", "60", "--loop-episodes", "20",
         "--json"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr  # the script asserts agreement itself
    figures = json.loads(result.stdout)
    assert figures["episodes"] == 60 and figures["administrations"] == 60 * 10 * 3
    assert figures["batch_s"] > 0 and figures["alerts"] > 0


def test_forms_benchmark_runs_against_a_real_server():
    result = subprocess.run(
        [sys.executable, "-m", "bench.forms", "--clients", "40", "--concurrency", "4",
         "--json"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["page_bytes"] < 50_000 and figures["external_requests"] == 0
    assert figures["submissions_per_s"] > 0


def test_dashboard_benchmark_signs_in_and_lists_the_caseload():
    result = subprocess.run(
        [sys.executable, "-m", "bench.dashboard", "--clients", "6", "--small", "2000",
         "--large", "20000", "--seconds", "1", "--warmup", "0.3", "--concurrency", "4",
         "--rounds", "1", "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr  # every page was 200 with all 6 clients
    figures = json.loads(result.stdout)
    assert figures["small"]["administrations"] == 2000
    assert figures["large"]["administrations"] == 20000
    for run in (figures["small"], figures["large"]):
        assert run["dashboard_requests"] > 0 and run["trivial_rps"] > 0
    assert set(figures["targets_met"]) == {"dashboard_vs_trivial", "dashboard_p99",
                                           "large_slowdown"}


def test_digest_benchmark_produces_archives_and_queues_every_digest():
    result = subprocess.run(
        [sys.executable, "-m", "bench.digest", "--supervisors", "2",
         "--therapists-per-supervisor", "2", "--clients-per-therapist", "6", "--bare-pages",
         "4", "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr  # the script checks every digest itself
    figures = json.loads(result.stdout)
    assert (figures["digests"], figures["therapists"], figures["clients"]) == (2, 4, 24)
    assert figures["pages"] >= 2 * (1 + 2)  # a cover and a section per supervisee
    assert 0 < figures["render_s"] <= figures["total_s"]
    assert figures["bare_ms_per_page"] > 0
    assert set(figures["targets_met"]) == {"total_under_60s", "render_within_2x_bare"}
