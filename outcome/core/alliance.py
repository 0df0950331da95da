"""Alliance ruptures and their repair (domain.md section 5).

Input is a matrix of alliance totals, one row per episode and one column per rated
session in order (higher is better), padded with NaN at the end. For each session t:

1. **absolute**: a_t below the instrument's cutoff (SRS-type: < 36);
2. **drop**: a_t - a_{t-1} <= -drop_points (SRS-type: 1 point);
3. **person-relative**: with at least 3 earlier sessions,
   a_t < mean(a_1..a_{t-1}) - k * SD(a_1..a_{t-1}); k = 1 is a *possible rupture*
   (Strauss et al. 2006), k = 2 a *rupture* (Stiles et al. 2004). When the personal SD
   is smaller than the between-client SD, the latter is used (Gumz et al. 2012), so a
   very steady client is not flagged for a trivial dip; until the clinic's
   between-client SD is fitted, a floor of 2.5 % of the scale range is used;
4. **discrepancy** (optional): the therapist's rating of the session exceeds the
   client's by at least ``discrepancy_points`` (a rupture the therapist did not notice).

A rupture *starts* at a session flagged by 1 (newly below the cutoff), 2 or 3 that
follows an unflagged session. It is **repaired** when a session within the next
``repair_window`` (default 2) is back at or above the personal mean before the rupture
(or, with no earlier sessions, no longer below the cutoff); **unrepaired** when the
window has passed without that; **open** while the window is still running.
Unrepaired ruptures go to the supervisor's attention.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from outcome.core.instruments import Cutoff

NONE, OPEN, REPAIRED, UNREPAIRED = range(4)
STATUSES = ("none", "open", "repaired", "unrepaired")


@dataclass(frozen=True)
class AllianceSettings:
    drop_points: float | None = None
    repair_window: int = 2
    min_history: int = 3
    between_client_sd: float | None = None
    discrepancy_points: float | None = None
    # Floor for the SD of person-relative rules until a between-client SD is fitted.
    min_sd: float = 0.0


def default_min_sd(low: float, high: float) -> float:
    """2.5 % of the score range (SRS-type 0-40: 1 point), the SD floor before a refit.

    A project default: a client whose alliance never moved has SD 0, and a dip of a
    tenth must not read as a rupture.
    """
    return 0.025 * (high - low)


# Scores carry at most two decimals; comparisons allow for binary rounding so that
# 32.8 -> 31.8 is a drop of exactly 1 point.
_EPS = 1e-9


@dataclass(frozen=True)
class AllianceResult:
    """Flags and rupture status per episode (rows) and rated session (columns)."""

    scores: np.ndarray
    absolute: np.ndarray
    drop: np.ndarray
    possible: np.ndarray
    rupture: np.ndarray
    discrepancy: np.ndarray
    personal_mean: np.ndarray
    personal_sd_used: np.ndarray
    start: np.ndarray
    status: np.ndarray
    repaired_at: np.ndarray
    last: np.ndarray

    def count(self, status: int) -> np.ndarray:
        """Ruptures with ``status`` (OPEN, REPAIRED, UNREPAIRED) per episode."""
        return np.asarray(((self.status == status) & self.start).sum(axis=1))

    @property
    def ruptures(self) -> np.ndarray:
        """Ruptures started, per episode."""
        return np.asarray(self.start.sum(axis=1))

    def latest(self, flags: np.ndarray) -> np.ndarray:
        """Whether ``flags`` holds at each episode's latest rated session."""
        rows = np.arange(flags.shape[0])
        has = self.last >= 0
        out = np.zeros(flags.shape[0], dtype=bool)
        out[has] = flags[rows[has], self.last[has]]
        return out


def _shift(matrix: np.ndarray, k: int, fill: float = np.nan) -> np.ndarray:
    """``matrix`` moved k columns left (k > 0: future values) or right (k < 0: past)."""
    out = np.full(matrix.shape, fill, dtype=float)
    if k > 0:
        out[:, :-k] = matrix[:, k:]
    elif k < 0:
        out[:, -k:] = matrix[:, :k]
    else:
        out[:] = matrix
    return out


def detect_ruptures(scores: np.ndarray, *, cutoff: Cutoff | None,
                    settings: AllianceSettings = AllianceSettings(),
                    therapist_scores: np.ndarray | None = None) -> AllianceResult:
    """Apply the rupture and repair rules to every episode at once (see module docstring)."""
    a = np.asarray(scores, dtype=float)
    if a.ndim == 1:
        a = a[np.newaxis, :]
    present = np.isfinite(a)
    n_cols = a.shape[1]

    # Running statistics of the sessions before each column (cumulative sums).
    filled = np.where(present, a, 0.0)
    count_before = np.cumsum(present, axis=1) - present
    sum_before = np.cumsum(filled, axis=1) - filled
    sq_before = np.cumsum(filled**2, axis=1) - filled**2
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_before = np.where(count_before > 0, sum_before / count_before, np.nan)
        var_before = np.where(count_before > 1, (sq_before - count_before * mean_before**2)
                              / (count_before - 1), np.nan)
    sd_before = np.sqrt(np.clip(var_before, 0, None))
    floor = settings.between_client_sd if settings.between_client_sd is not None else (
        settings.min_sd)
    sd_used = np.maximum(sd_before, floor)

    with np.errstate(invalid="ignore"):
        absolute = (present & cutoff.clinical(a)) if cutoff is not None else np.zeros(
            a.shape, dtype=bool)
    previous = _shift(a, -1)
    drop = np.zeros(a.shape, dtype=bool)
    if settings.drop_points is not None:
        drop = present & np.isfinite(previous) & (a - previous <= -settings.drop_points + _EPS)
    history = present & (count_before >= settings.min_history)
    possible = history & (a < mean_before - 1 * sd_used)
    rupture = history & (a < mean_before - 2 * sd_used)
    discrepancy = np.zeros(a.shape, dtype=bool)
    if therapist_scores is not None and settings.discrepancy_points is not None:
        therapist = np.asarray(therapist_scores, dtype=float).reshape(a.shape)
        discrepancy = present & np.isfinite(therapist) & (
            therapist - a >= settings.discrepancy_points - _EPS)

    absolute_onset = absolute & ~(_shift(absolute.astype(float), -1, 0.0) > 0)
    flagged = drop | possible | absolute_onset
    persisting = drop | possible | absolute
    start = flagged & ~(_shift(persisting.astype(float), -1, 0.0) > 0)

    # Repair: a later session within the window back at the personal mean before the
    # rupture (or out of the clinical range when there was no earlier session).
    last = np.where(present.any(axis=1), n_cols - 1 - np.argmax(present[:, ::-1], axis=1), -1)
    target = mean_before
    repaired_at = np.full(a.shape, -1, dtype=np.int32)
    for k in range(settings.repair_window, 0, -1):
        future = _shift(a, k)
        with np.errstate(invalid="ignore"):
            no_history_ok = (np.isfinite(future) & ~cutoff.clinical(future)
                             if cutoff is not None else np.zeros(a.shape, dtype=bool))
        back = np.where(np.isfinite(target), future >= target, no_history_ok)
        repaired_at = np.where(start & back, np.arange(n_cols)[np.newaxis, :] + k, repaired_at)
    window_over = (np.arange(n_cols)[np.newaxis, :] + settings.repair_window) <= last[:, None]
    status = np.full(a.shape, NONE, dtype=np.int8)
    status[start] = OPEN
    status[start & window_over] = UNREPAIRED
    status[start & (repaired_at >= 0)] = REPAIRED

    return AllianceResult(scores=a, absolute=absolute, drop=drop, possible=possible,
                          rupture=rupture, discrepancy=discrepancy,
                          personal_mean=mean_before, personal_sd_used=sd_used, start=start,
                          status=status, repaired_at=repaired_at, last=last)


def between_client_sd(scores: np.ndarray) -> float:
    """SD of client means (n - 1), the floor for person-relative rules (Gumz et al. 2012)."""
    a = np.asarray(scores, dtype=float)
    means = np.array([np.nanmean(row) for row in a if np.isfinite(row).any()])
    return float(np.std(means, ddof=1)) if means.size > 1 else 0.0
