"""Benchmark: the full signal pipeline on 100,000 episodes x 10 sessions.

One call (``outcome.core.pipeline.run_pipeline``) scores 1,000,000 PHQ-9 and 1,000,000
SRS-type administrations, classifies change since intake, colours progress, flags
alliance ruptures and aggregates per therapist. Compared, in one run, with:

- the scoring floor of bench/scoring: a plain int8 row sum over the PHQ-9 matrix;
- a per-episode loop that calls the same engine functions once per episode (what
  handling episodes one at a time costs), timed on a subset and compared per episode.

Targets (issue 4): within 25x of the floor, at least 50x faster than the loop, and
peak memory under 2 GB. Run: ``make bench`` or ``.venv/bin/python -m bench.signals``.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np

from outcome.core.alliance import REPAIRED
from outcome.core.alliance import UNREPAIRED
from outcome.core.alliance import AllianceSettings
from outcome.core.alliance import default_min_sd
from outcome.core.alliance import detect_ruptures
from outcome.core.change import individual_change
from outcome.core.pipeline import run_pipeline
from outcome.core.scoring import score
from outcome.core.signals import first_and_last
from outcome.core.signals import reliable_change_rule
from outcome.core.trajectory import progress_colours
from questionnaires.loader import builtin_library

SESSIONS = 10


def make_batch(episodes: int, seed: int = 7):
    """PHQ-9 items (int8, -1 missing) and SRS-type items (tenths) for each session."""
    rng = np.random.default_rng(seed)
    intake = rng.uniform(6, 24, episodes)
    slope = rng.choice([-1.2, -0.6, 0.0, 0.6], size=episodes, p=[0.4, 0.3, 0.2, 0.1])
    t = np.arange(SESSIONS)
    totals = np.clip(intake[:, None] + slope[:, None] * t + rng.normal(0, 1.5,
                                                                       (episodes, SESSIONS)),
                     0, 27)
    p = (totals / 27).reshape(-1, 1)
    phq = rng.binomial(3, np.repeat(p, 10, axis=1)).astype(np.int8)
    phq[rng.random(phq.shape) < 0.01] = -1
    level = rng.uniform(34, 39.5, episodes)
    alliance = level[:, None] + rng.normal(0, 0.6, (episodes, SESSIONS))
    srs = np.round(np.clip(np.repeat(alliance.reshape(-1, 1) / 4, 4, axis=1)
                           + rng.normal(0, 0.1, (episodes * SESSIONS, 4)), 0, 10), 1)
    therapist = rng.integers(0, 500, episodes)
    ended = rng.random(episodes) < 0.3
    return phq, srs, therapist, ended


def per_episode_loop(phq_ins, srs_ins, phq, srs, therapist, ended, episodes):
    """The same engine, one episode at a time."""
    rule = reliable_change_rule(phq_ins)
    settings = AllianceSettings(drop_points=srs_ins.rupture_drop_points,
                                min_sd=default_min_sd(*srs_ins.primary_range))
    sessions = np.arange(1, SESSIONS + 1)[np.newaxis, :]
    out = []
    for e in range(episodes):
        rows = slice(e * SESSIONS, (e + 1) * SESSIONS)
        totals = score(phq_ins, phq[rows]).primary[np.newaxis, :]
        alliance = score(srs_ins, srs[rows]).primary[np.newaxis, :]
        intake, latest, session, count = first_and_last(totals, sessions)
        change = individual_change(np.where(count >= 2, intake, np.nan), latest,
                                   direction=phq_ins.direction, points=rule.threshold,
                                   cutoff=phq_ins.cutoff)
        colour = progress_colours(direction=phq_ins.direction, cutoff=phq_ins.cutoff,
                                  rule=rule, intake=intake, latest=latest, session=session,
                                  model=None)
        ruptures = detect_ruptures(alliance, cutoff=srs_ins.cutoff, settings=settings)
        out.append((int(change.category[0]), int(colour.colour[0]), int(ruptures.ruptures[0]),
                    int(ruptures.count(REPAIRED)[0]), int(ruptures.count(UNREPAIRED)[0])))
    return out


def best_of(repeats: int, fn):
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=100_000)
    parser.add_argument("--loop-episodes", type=int, default=2_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    library = builtin_library()
    phq_ins, srs_ins = library.get("phq9"), library.get("srs_vas")
    phq, srs, therapist, ended = make_batch(args.episodes)
    floor, _ = best_of(5, lambda: phq.sum(axis=1))
    pipeline_s, result = best_of(3, lambda: run_pipeline(
        outcome=phq_ins, outcome_items=phq, alliance=srs_ins, alliance_items=srs,
        sessions_per_episode=SESSIONS, therapist=therapist, ended=ended))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    n_loop = min(args.loop_episodes, args.episodes)
    loop_s, loop = best_of(1, lambda: per_episode_loop(phq_ins, srs_ins, phq, srs, therapist,
                                                       ended, n_loop))
    loop_s *= args.episodes / n_loop
    # Both paths must agree, episode by episode, before their speeds mean anything.
    for e, (category, colour, ruptures, repaired, unrepaired) in enumerate(loop):
        assert category == result.category[e], e
        assert colour == result.colours.colour[e], e
        assert ruptures == result.alliance.ruptures[e], e
        assert repaired == result.alliance.count(REPAIRED)[e], e
        assert unrepaired == result.alliance.count(UNREPAIRED)[e], e

    figures = {
        "episodes": args.episodes, "administrations": args.episodes * SESSIONS * 2,
        "floor_s": round(floor, 4), "pipeline_s": round(pipeline_s, 3),
        "loop_s_estimated": round(loop_s, 1),
        "pipeline_over_floor": round(pipeline_s / floor, 1),
        "loop_over_pipeline": round(loop_s / pipeline_s, 1),
        "peak_rss_mb": round(peak_mb),
        "therapists": len(result.groups),
    }
    if args.json:
        print(json.dumps(figures))
        return
    print(f"{args.episodes:,} episodes x {SESSIONS} sessions "
          f"({figures['administrations']:,} administrations: PHQ-9 and SRS-type)")
    print(f"  scoring floor (int8 row sum)  {floor * 1000:9.1f} ms")
    print(f"  full pipeline, one call       {pipeline_s * 1000:9.1f} ms  "
          f"= {figures['pipeline_over_floor']}x the floor (target <= 25x)")
    print(f"  per-episode loop              {loop_s * 1000:9.1f} ms  (from {n_loop:,} "
          f"episodes)  = {figures['loop_over_pipeline']}x slower (target >= 50x)")
    print(f"  peak memory (RSS)             {peak_mb:9.0f} MB  (target < 2048 MB)")
    print(f"  aggregates for {figures['therapists']} therapists")


if __name__ == "__main__":
    main()
