"""Alliance ruptures on simulated SRS-type series: alert rate and sensitivity, before/after.

Issue 15 (finding 4): on realistic, noisy alliance ratings any 1-point drop of a 0-40
score opened a rupture alert. This benchmark simulates alliance series with realistic
within-client variability, plants V-shaped ruptures in half of the episodes, and runs
the rupture rules of ``outcome.core.alliance`` on them:

- the OLD rules, read from git (``--before``, default the commit this work started
  from) into a temporary module, with the settings production used (drop 1 point, SD
  floor 1 point before a clinic fit, the fitted between-client SD after one);
- the NEW rules of this checkout (domain.md section 5), called as production calls them
  (``alliance_signals``, as :mod:`outcome.services.signals` does for an alliance
  measure) with ``alliance_settings`` of the built-in SRS-type definition and the clinic
  settings' defaults (repair window, discrepancy points; no therapist ratings).

Each is run before the clinic's first fit (no between-client SD) and after it (the
between-client SD of the simulated sample, as the nightly refit stores it).

Simulation (all numbers are assumptions of this benchmark, see docs/signals.md):

- 12 rated sessions per episode, VAS totals 0-40 rounded to 0.1;
- the SRS's test-retest reliability r_tt = .64, the middle of the .54-.70 that a
  narrative review found in four clinical studies (The Psychometric Properties of the
  Session Rating Scale: A Narrative Review, J. Evidence-Based Social Work 2020,
  doi:10.1080/26408066.2020.1729281); no published SD of SRS totals was found, so a
  total SD of 3.0 points is ASSUMED. Then the client's true level has SD
  3.0 * sqrt(.64) = 2.4 around 36.5 and the session-to-session (within-client) SD is
  3.0 * sqrt(1 - .64) = 1.8 points on average, drawn per client from a log-normal
  (spread 0.35) so that some clients are steadier than others;
- ruptures: in half of the episodes one V at a session from 5 to 10: the score falls by
  D = 2.5-4 times the client's own within-SD (a drop the client's noise rarely makes;
  Stiles et al. 2004 call 2 SD a rupture), the next session recovers half of it, the
  one after is back at the client's level.

Reported per 100 rated sessions: alerts (ruptures started, "rupture" alerts; of them,
those at a session newly below the cutoff, rule 1), possible
ruptures (shown, not alerted; the old rules had no such level), unrepaired ruptures
(supervisor alerts), alerts in episodes without a planted rupture (false alarms), and the
share of planted ruptures with an alert at the planted session or the next
(sensitivity). Run: ``make bench-ruptures`` or ``.venv/bin/python -m bench.ruptures``.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from outcome.core import alliance as new_rules
from outcome.core.signals import alliance_settings
from outcome.core.signals import alliance_signals
from outcome.services.clinic_settings import BY_KEY as CLINIC_DEFAULTS
from questionnaires.loader import builtin_library

ROOT = Path(__file__).resolve().parent.parent
# main when this work started (issue 15): the rules before possible ruptures.
BEFORE = "c289bda"
SESSIONS = 12
MEAN, TOTAL_SD, RETEST = 36.5, 3.0, 0.64
WITHIN_SD = TOTAL_SD * (1 - RETEST) ** 0.5  # 1.8 points
BETWEEN_SD = TOTAL_SD * RETEST ** 0.5  # 2.4 points
WITHIN_SPREAD = 0.35  # log-normal sigma of the per-client within-SD
DEPTH = (2.5, 4.0)  # planted drop, in the client's own within-SDs
PLANTED_AT = (4, 9)  # column of the planted low session (session 5 to 10)


@dataclass(frozen=True)
class Simulation:
    scores: np.ndarray
    planted: np.ndarray  # column of the planted rupture, -1 for none

    @property
    def sessions(self) -> int:
        return int(np.isfinite(self.scores).sum())


def simulate(seed: int = 15, episodes: int = 2000, share: float = 0.5) -> Simulation:
    """Alliance series with realistic noise and V-shaped ruptures in ``share`` of them."""
    rng = np.random.default_rng(seed)
    level = rng.normal(MEAN, BETWEEN_SD, episodes)
    within = WITHIN_SD * rng.lognormal(-WITHIN_SPREAD**2 / 2, WITHIN_SPREAD, episodes)
    raw = level[:, None] + within[:, None] * rng.standard_normal((episodes, SESSIONS))
    planted = np.where(rng.random(episodes) < share,
                       rng.integers(PLANTED_AT[0], PLANTED_AT[1] + 1, episodes), -1)
    depth = rng.uniform(*DEPTH, episodes) * within
    rows = np.flatnonzero(planted >= 0)
    raw[rows, planted[rows]] -= depth[rows]
    raw[rows, planted[rows] + 1] -= depth[rows] / 2
    return Simulation(np.round(np.clip(raw, 0, 40), 1), planted)


def load_before(ref: str = BEFORE) -> ModuleType:
    """``outcome/core/alliance.py`` as it was at ``ref``, as a module of its own."""
    git = shutil.which("git")
    if git is None:
        raise SystemExit("the old rules are read with git, which is not installed")
    source = subprocess.run([git, "show", f"{ref}:outcome/core/alliance.py"], cwd=ROOT,
                            check=True, capture_output=True, text=True).stdout
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as handle:
        handle.write(source)
    spec = importlib.util.spec_from_file_location("alliance_before", handle.name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["alliance_before"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    Path(handle.name).unlink()
    return module


def measure(result: Any, sim: Simulation, *, alerted: np.ndarray,
            possible: np.ndarray) -> dict[str, float]:
    """Rates per 100 rated sessions and the share of planted ruptures alerted."""
    per100 = 100 / sim.sessions
    unplanted = sim.planted < 0
    unplanted_sessions = np.isfinite(sim.scores[unplanted]).sum()
    rows = np.flatnonzero(sim.planted >= 0)
    found = alerted[rows, sim.planted[rows]] | alerted[rows, sim.planted[rows] + 1]
    unrepaired = alerted & (result.status == new_rules.UNREPAIRED)
    below = np.asarray(result.absolute)
    newly_below = below & ~np.pad(below, ((0, 0), (1, 0)))[:, :-1]
    return {"alerts": alerted.sum() * per100, "possible": possible.sum() * per100,
            "cutoff_alerts": (alerted & newly_below).sum() * per100,
            "unrepaired": unrepaired.sum() * per100,
            "false_alerts": alerted[unplanted].sum() * 100 / unplanted_sessions,
            "sensitivity": float(found.mean()) if rows.size else float("nan")}


def run_new(sim: Simulation, *, fitted: bool) -> dict[str, float]:
    """The rules as production runs them: the call :mod:`outcome.services.signals` makes
    for an alliance measure (``alliance_signals``), with the clinic settings' defaults, the
    between-client SD as the nightly refit stores it once fitted, and no therapist ratings
    (the simulated episodes have none)."""
    srs = builtin_library().get("srs_vas")
    settings = alliance_settings(
        srs, repair_window=int(CLINIC_DEFAULTS["repair_window"].default),
        between_client_sd=new_rules.between_client_sd(sim.scores) if fitted else None,
        discrepancy_points=float(CLINIC_DEFAULTS["discrepancy_points"].default))
    sessions = np.tile(np.arange(1, SESSIONS + 1), (sim.scores.shape[0], 1))
    result = alliance_signals(srs, sim.scores, sessions, settings=settings,
                              therapist_scores=None).result
    return measure(result, sim, alerted=result.kind == new_rules.RUPTURE,
                   possible=result.kind == new_rules.POSSIBLE)


def run_old(sim: Simulation, before: ModuleType, *, fitted: bool) -> dict[str, float]:
    srs = builtin_library().get("srs_vas")
    settings = before.AllianceSettings(
        drop_points=srs.rupture_drop_points, min_sd=before.default_min_sd(0, 40),
        between_client_sd=before.between_client_sd(sim.scores) if fitted else None)
    result = before.detect_ruptures(sim.scores, cutoff=srs.cutoff, settings=settings)
    # Every start opened a "rupture" alert; there was no possible level.
    return measure(result, sim, alerted=result.start,
                   possible=np.zeros(result.start.shape, dtype=bool))


def table(seed: int = 15, episodes: int = 2000, ref: str = BEFORE) -> list[tuple[str, dict]]:
    sim = simulate(seed, episodes)
    before = load_before(ref)
    return [("old, before a clinic fit", run_old(sim, before, fitted=False)),
            ("old, after a fit", run_old(sim, before, fitted=True)),
            ("new, before a clinic fit", run_new(sim, fitted=False)),
            ("new, after a fit", run_new(sim, fitted=True))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--episodes", type=int, default=2000)
    parser.add_argument("--before", default=BEFORE, help="git ref of the old rules")
    args = parser.parse_args(argv)
    sim = simulate(args.seed, args.episodes)
    own_sd = np.nanstd(sim.scores, axis=1, ddof=1)
    print(f"{args.episodes} episodes x {SESSIONS} sessions, seed {args.seed}; "
          f"median within-client SD {np.median(own_sd):.2f}, between-client SD "
          f"{new_rules.between_client_sd(sim.scores):.2f}; "
          f"{(sim.planted >= 0).sum()} planted ruptures")
    print("| rules | alerts /100 sessions | of which newly below 36 | possible /100 "
          "| unrepaired /100 | alerts /100 without a plant | sensitivity |")
    print("|---|---|---|---|---|---|---|")
    for name, m in table(args.seed, args.episodes, args.before):
        possible = "-" if name.startswith("old") else f"{m['possible']:.1f}"
        print(f"| {name} | {m['alerts']:.1f} | {m['cutoff_alerts']:.1f} | {possible} "
              f"| {m['unrepaired']:.1f} "
              f"| {m['false_alerts']:.1f} | {m['sensitivity']:.0%} |")


if __name__ == "__main__":
    main()
