"""Benchmark: the ``outcome`` command line as operators start it (issue 21).

What production runs is the ``outcome`` console script (``outcome.cli.main:cli``) in a new
process each time, so that is what is timed here, as a child process (its wall time, CPU
time and peak memory from ``os.wait4``), with ``PYTHONPATH`` set to this checkout:

- ``outcome --help``: best of ``--runs``; it lists every command from the static table
  of :mod:`outcome.cli.commands` and must not load Flask or the app (target < 0.3 s);
- ``outcome analyse`` on a generated long-format CSV of ``--ids`` ids (pre and post rows;
  1 % of ids without a post score, dropped), with ``-o`` writing one row per id: best of
  ``--runs``, against the same work called as functions in this (warm) process:
  :func:`outcome.clinical_significance.read_pairs`, :func:`outcome.core.change.
  individual_change`, :func:`~outcome.clinical_significance.per_id_rows` written to a file
  and :func:`~outcome.clinical_significance.summary`. Targets: the whole process at most
  1.2 x the in-process time, peak RSS < 100 MB.

Wall times on a shared machine mostly measure the other work; CPU times (user + system)
are printed beside them, and the ratio is given for both. Exits non-zero only on a
functional failure (help not listing a command, a different per-id file or summary), not
on a missed target. Run: ``make bench`` or ``.venv/bin/python -m bench.cli [--json]``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HELP_TARGET_S = 0.3
RATIO_TARGET = 1.2
RSS_TARGET_MB = 100
ANALYSE_OPTIONS = ["--id", "id", "--time", "time", "--score", "score", "--pre", "pre",
                   "--post", "post", "--reliability", "0.84", "--direction",
                   "lower-is-better", "--cutoff", "c", "--functional-mean", "5",
                   "--functional-sd", "4"]


class BenchFailure(Exception):
    """The command did not do its job: its figures mean nothing."""


def outcome_command() -> list[str]:
    """The console script beside this interpreter (what `pip install` makes), else the
    same entry point run by this interpreter."""
    script = Path(sys.executable).parent / "outcome"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from outcome.cli.main import cli; cli()"]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def run(args: list[str], out: Path) -> dict:
    """Run ``outcome ARGS`` (stdout to ``out``): exit code, wall, CPU and peak RSS."""
    with out.open("wb") as stdout, open(os.devnull, "wb") as devnull:
        start = time.perf_counter()
        process = subprocess.Popen([*outcome_command(), *args], stdout=stdout,
                                   stderr=devnull, env=child_env(), cwd=ROOT)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    return {"code": process.returncode, "wall_s": wall,
            "cpu_s": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024}


def best(runs: list[dict]) -> dict:
    """The fastest run (by wall time), with the least CPU time and the largest RSS seen."""
    fastest = min(runs, key=lambda r: r["wall_s"])
    return {**fastest, "cpu_s": min(r["cpu_s"] for r in runs),
            "rss_mb": max(r["rss_mb"] for r in runs)}


def write_scores(path: Path, ids: int) -> None:
    """A long-format CSV: id, time (pre/post), score 0-27 (PHQ-9-like); 1 % lack a post."""
    rng = random.Random(21)
    with path.open("w", newline="", encoding="utf-8") as fh:
        fh.write("id,time,score\n")
        for n in range(ids):
            pre = rng.randint(6, 27)
            post = min(27, max(0, pre + rng.randint(-16, 8)))
            fh.write(f"c{n:06d},pre,{pre}\n")
            fh.write(f"c{n:06d},post,{'' if n % 100 == 99 else post}\n")


def in_process(scores: Path, output: Path) -> tuple[dict, float, float]:
    """The analysis as functions, in this process: summary, wall and CPU seconds."""
    from outcome.clinical_significance import per_id_rows
    from outcome.clinical_significance import read_pairs
    from outcome.clinical_significance import summary
    from outcome.core.change import individual_change

    wall, cpu = time.perf_counter(), time.process_time()
    with scores.open(encoding="utf-8-sig", newline="") as fh:
        pairs = read_pairs(fh, id_col="id", time_col="time", score_col="score", pre="pre",
                           post="post")
    result = individual_change(pairs.pre, pairs.post, direction="higher_is_worse",
                               method="jt", reliability=0.84, critical_value=1.96,
                               cutoff_type="c", functional_mean=5.0, functional_sd=4.0)
    with output.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(per_id_rows(result, pairs))
    data = summary(result, pairs)
    return data, time.perf_counter() - wall, time.process_time() - cpu


def measure(ids: int, runs: int) -> dict:
    from outcome.cli.commands import COMMANDS
    from outcome.cli.commands import FLASK_COMMANDS

    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        folder = Path(tmp)
        help_runs = [run(["--help"], folder / "help.txt") for _ in range(runs)]
        text = (folder / "help.txt").read_text()
        missing = [n for n in [*COMMANDS, *FLASK_COMMANDS] if f"\n  {n} " not in text]
        if any(r["code"] for r in help_runs) or missing:
            raise BenchFailure(f"outcome --help failed or lacks {missing}: {text[-2000:]}")

        scores = folder / "scores.csv"
        write_scores(scores, ids)
        expected = folder / "expected.csv"
        in_runs = [in_process(scores, expected) for _ in range(runs)]
        data = in_runs[0][0]
        analyse_runs = []
        for _ in range(runs):
            analyse_runs.append(run(["analyse", str(scores), *ANALYSE_OPTIONS, "-o",
                                     str(folder / "rows.csv")], folder / "analyse.txt"))
            if analyse_runs[-1]["code"]:
                raise BenchFailure("outcome analyse failed: "
                                   + (folder / "analyse.txt").read_text()[-2000:])
            if (folder / "rows.csv").read_bytes() != expected.read_bytes():
                raise BenchFailure("outcome analyse -o wrote other rows than per_id_rows")
        printed = (folder / "analyse.txt").read_text()
        dropped = ids // 100
        if (data["n"], data["n_dropped"]) != (ids - dropped, dropped) or not printed.startswith(
                f"{data['n']} ids analysed, {dropped} dropped"):
            raise BenchFailure(f"outcome analyse printed another summary: {printed}")
        for count in data["categories"].values():
            if f" {count:>5}  " not in printed:
                raise BenchFailure(f"outcome analyse printed other counts: {printed}")

    help_best, analyse_best = best(help_runs), best(analyse_runs)
    in_wall = min(r[1] for r in in_runs)
    in_cpu = min(r[2] for r in in_runs)
    return {
        "ids": ids, "runs": runs, "categories": data["categories"],
        "help": help_best,
        "analyse": analyse_best,
        "in_process": {"wall_s": in_wall, "cpu_s": in_cpu},
        "ratio_wall": analyse_best["wall_s"] / in_wall,
        "ratio_cpu": analyse_best["cpu_s"] / in_cpu,
        "targets": {"help_s": HELP_TARGET_S, "ratio": RATIO_TARGET, "rss_mb": RSS_TARGET_MB},
        "met": {"help": help_best["wall_s"] < HELP_TARGET_S,
                "ratio": analyse_best["wall_s"] / in_wall <= RATIO_TARGET,
                "rss": analyse_best["rss_mb"] < RSS_TARGET_MB},
    }


def report(f: dict) -> str:
    h, a, i = f["help"], f["analyse"], f["in_process"]

    def mark(key: str) -> str:
        return "met" if f["met"][key] else "MISSED"

    return "\n".join([
        f"outcome --help (best of {f['runs']}): {h['wall_s']:.3f} s wall, {h['cpu_s']:.3f} s "
        f"CPU, {h['rss_mb']:.0f} MB peak RSS; target < {HELP_TARGET_S} s wall: "
        f"{mark('help')}",
        f"outcome analyse, {f['ids']:,} ids, -o (best of {f['runs']}): {a['wall_s']:.3f} s "
        f"wall, {a['cpu_s']:.3f} s CPU, {a['rss_mb']:.0f} MB peak RSS; target < "
        f"{RSS_TARGET_MB} MB: {mark('rss')}",
        f"same work in process: {i['wall_s']:.3f} s wall, {i['cpu_s']:.3f} s CPU",
        f"whole process / in process: {f['ratio_wall']:.2f} x wall, {f['ratio_cpu']:.2f} x "
        f"CPU; target <= {RATIO_TARGET} x wall: {mark('ratio')}",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ids", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")
    args = parser.parse_args(argv)
    try:
        figures = measure(args.ids, args.runs)
    except BenchFailure as exc:
        print(f"bench.cli: FAILED: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(figures, indent=1) if args.json else report(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
