"""Aggregates for supervisors and the clinic (domain.md section 7).

Every rate comes with its count and denominator and a Wilson 95 % interval (Wilson
1927), so "3 of 4" is never shown as a bare 75 %. Effect sizes:

- pre-post ``ES = mean(d * (x2 - x1)) / SD(x1)`` (positive = improvement; SD n - 1);
- severity-adjusted ``SAES = (mean change of the clinic + mean residual of the
  therapist) / SD of intake``, with residuals from the clinic-wide least-squares
  regression of change (in the good direction) on intake score, so a therapist with
  harder cases is not penalised. Shown only with at least ``min_n`` (10) ended
  episodes; smaller groups are labelled as small and never ranked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SMALL_SAMPLE = 10
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Rate:
    """``count`` of ``n``, its proportion and Wilson interval; ``is_small`` when n < 10."""

    count: int
    n: int
    low: float | None
    high: float | None

    @property
    def proportion(self) -> float | None:
        return self.count / self.n if self.n else None

    @property
    def is_small(self) -> bool:
        return self.n < SMALL_SAMPLE

    def describe(self) -> str:
        """"7 of 20 (35 %, 95 % CI 18-57 %)", or "none yet" when n is 0."""
        if not self.n:
            return "none yet"
        assert self.low is not None and self.high is not None
        text = (f"{self.count} of {self.n} ({100 * self.count / self.n:.0f} %, 95 % CI "
                f"{100 * self.low:.0f}-{100 * self.high:.0f} %)")
        return text + (", small sample" if self.is_small else "")


def wilson_interval(count: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval for ``count`` successes of ``n`` (None when n is 0)."""
    if n <= 0:
        return None
    p = count / n
    denominator = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denominator
    # At 0 of n and n of n the interval ends exactly at 0 and 1; say so without rounding.
    low = 0.0 if count == 0 else max(0.0, centre - half)
    high = 1.0 if count == n else min(1.0, centre + half)
    return low, high


def rate(count: int, n: int) -> Rate:
    """A :class:`Rate` with its interval."""
    interval = wilson_interval(count, n)
    return Rate(int(count), int(n), *(interval or (None, None)))


def pre_post_effect_size(x1: np.ndarray, x2: np.ndarray, d: int) -> float | None:
    """``mean(d * (x2 - x1)) / SD(x1)``; None with fewer than 2 pairs or a zero SD."""
    x1, x2 = np.asarray(x1, dtype=float), np.asarray(x2, dtype=float)
    ok = np.isfinite(x1) & np.isfinite(x2)
    if ok.sum() < 2:
        return None
    sd = float(np.std(x1[ok], ddof=1))
    if sd == 0:
        return None
    return float(np.mean(d * (x2[ok] - x1[ok])) / sd)


@dataclass(frozen=True)
class SeverityAdjustment:
    """The clinic-wide regression of change on intake, and each group's SAES."""

    intercept: float
    slope: float
    clinic_mean_change: float
    intake_sd: float
    saes: dict[int, float | None]
    n: dict[int, int]


def severity_adjusted(intake: np.ndarray, last: np.ndarray, group: np.ndarray, d: int,
                      min_n: int = SMALL_SAMPLE) -> SeverityAdjustment | None:
    """SAES per group (see the module docstring); None for the clinic below 3 episodes."""
    intake, last = np.asarray(intake, dtype=float), np.asarray(last, dtype=float)
    group = np.asarray(group)
    ok = np.isfinite(intake) & np.isfinite(last)
    intake, last, group = intake[ok], last[ok], group[ok]
    if intake.size < 3 or np.std(intake) == 0:
        return None
    change = d * (last - intake)
    slope, intercept = np.polyfit(intake, change, 1)
    residual = change - (intercept + slope * intake)
    mean_change = float(change.mean())
    sd = float(np.std(intake, ddof=1))
    saes: dict[int, float | None] = {}
    counts: dict[int, int] = {}
    for g in np.unique(group):
        members = group == g
        counts[int(g)] = int(members.sum())
        saes[int(g)] = (float((mean_change + residual[members].mean()) / sd)
                        if members.sum() >= min_n else None)
    return SeverityAdjustment(float(intercept), float(slope), mean_change, sd, saes, counts)


@dataclass(frozen=True)
class GroupSummary:
    """One therapist's (or the clinic's) figures for a period."""

    group: int
    active_episodes: int
    completion: Rate
    colours: dict[str, Rate]
    ruptures: int
    ruptures_repaired: Rate
    ruptures_unrepaired: int
    ruptures_open: int
    ended: int
    ended_assessed: int
    reliably_improved: Rate
    recovered: Rate
    deteriorated: Rate
    effect_size: float | None
    saes: float | None

    @property
    def is_small(self) -> bool:
        """Fewer than 10 ended episodes with an outcome: label, never rank."""
        return self.ended_assessed < SMALL_SAMPLE


def summarise_groups(*, group: np.ndarray, active: np.ndarray, sessions: np.ndarray,
                     sessions_measured: np.ndarray, colour: np.ndarray,
                     colour_names: tuple[str, ...], ruptures: np.ndarray,
                     repaired: np.ndarray, unrepaired: np.ndarray, ended: np.ndarray,
                     category: np.ndarray, intake: np.ndarray, last: np.ndarray, d: int
                     ) -> dict[int, GroupSummary]:
    """Figures per group from per-episode arrays, in one pass of numpy bincounts.

    ``category`` uses :mod:`outcome.core.change` codes (0 recovered ... 4 harmed, -1 none);
    reliably improved counts recovered and improved. Colours count active episodes. The
    share of ruptures repaired is over ruptures whose repair window has passed (repaired
    or unrepaired); ruptures still within it are counted as open.
    """
    group = np.asarray(group)
    codes, inverse = np.unique(group, return_inverse=True)
    k = codes.size

    def per(values: np.ndarray) -> np.ndarray:
        return np.bincount(inverse, weights=np.asarray(values, dtype=float), minlength=k)

    active = np.asarray(active, dtype=bool)
    ended = np.asarray(ended, dtype=bool)
    category = np.asarray(category)
    n_active, n_sessions, n_measured = per(active), per(sessions), per(sessions_measured)
    colour_counts = {name: per(active & (np.asarray(colour) == code))
                     for code, name in enumerate(colour_names)}
    n_ruptures, n_repaired, n_unrepaired = per(ruptures), per(repaired), per(unrepaired)
    assessed = ended & (category >= 0)
    n_ended_all = per(ended)
    n_ended = per(assessed)
    improved = per(assessed & ((category == 0) | (category == 1)))
    recovered = per(assessed & (category == 0))
    deteriorated = per(assessed & ((category == 3) | (category == 4)))
    adjustment = severity_adjusted(np.asarray(intake)[assessed], np.asarray(last)[assessed],
                                   group[assessed], d)
    out = {}
    for j, g in enumerate(codes):
        members = assessed & (group == g)
        out[int(g)] = GroupSummary(
            group=int(g), active_episodes=int(n_active[j]),
            completion=rate(int(n_measured[j]), int(n_sessions[j])),
            colours={name: rate(int(c[j]), int(n_active[j])) for name, c in colour_counts.items()},
            ruptures=int(n_ruptures[j]),
            ruptures_repaired=rate(int(n_repaired[j]), int(n_repaired[j] + n_unrepaired[j])),
            ruptures_unrepaired=int(n_unrepaired[j]),
            ruptures_open=int(n_ruptures[j] - n_repaired[j] - n_unrepaired[j]),
            ended=int(n_ended_all[j]), ended_assessed=int(n_ended[j]),
            reliably_improved=rate(int(improved[j]), int(n_ended[j])),
            recovered=rate(int(recovered[j]), int(n_ended[j])),
            deteriorated=rate(int(deteriorated[j]), int(n_ended[j])),
            effect_size=pre_post_effect_size(np.asarray(intake)[members],
                                             np.asarray(last)[members], d),
            saes=adjustment.saes.get(int(g)) if adjustment else None)
    return out
