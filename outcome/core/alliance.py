"""Alliance ruptures and their repair (domain.md section 5).

Input is a matrix of alliance totals, one row per episode and one column per rated
session in order (higher is better), padded with NaN at the end. For each session t:

1. **absolute**: a_t below the instrument's cutoff (SRS-type: < 36) when the previous
   session was at or above it, or at intake;
2. **drop**: a_t - a_{t-1} <= -drop_points (SRS-type: 1 point, as OpenFIT flags it);
3. **person-relative**: with at least 3 earlier sessions, a_t < mean(a_1..a_{t-1}) - k * s,
   k = 1 (Strauss et al. 2006) or k = 2 (Stiles et al. 2004). ``s`` is the client's own
   SD of those earlier sessions (n - 1), floored at the instrument's standard error of
   measurement ``SD * sqrt(1 - r_xx)`` (Jacobson & Truax 1991) where the instrument
   publishes a norm SD and a reliability; otherwise at the clinic's between-client SD
   (the stricter of the two, Gumz et al. 2012); before the clinic's first fit, at
   ``min_sd`` (see :func:`default_min_sd`);
4. **discrepancy** (optional): the therapist's rating of the session exceeds the
   client's by at least ``discrepancy_points`` (a rupture the therapist did not notice).

Two levels follow. A **rupture** is rule 1, rule 3 with k = 2, or rule 4; it opens an
alert. A **possible rupture** is a drop (rule 2) or rule 3 with k = 1 that is not a
rupture; it is shown, never alerted: on real, noisy ratings a 1-point drop of a 0-40
scale happens in about a third of sessions (see docs/signals.md, bench/ruptures.py).

A rupture *starts* at a rupture-level session unless a rupture is already running; it
runs until a session repairs it or its window is over. A possible rupture starts at a
possible-level session unless a rupture or a possible rupture is running, so a dip that
deepens is a possible rupture and then a rupture. Each start is **repaired** when a
session within the next ``repair_window`` (default 2) is at or above the personal mean
before the start minus s/2, or at or above the cutoff (section 5, rule 5);
**unrepaired** when the window has passed without that; **open** while the window is
still running. Unrepaired ruptures (not possible ones) go to the supervisor's attention.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from outcome.core.instruments import Cutoff

NONE, OPEN, REPAIRED, UNREPAIRED = range(4)
STATUSES = ("none", "open", "repaired", "unrepaired")
# Kinds of a start: a possible rupture (shown) or a rupture (alerted).
POSSIBLE, RUPTURE = 1, 2
KINDS = {POSSIBLE: "possible_rupture", RUPTURE: "rupture"}


@dataclass(frozen=True)
class AllianceSettings:
    drop_points: float | None = None
    repair_window: int = 2
    min_history: int = 3
    # Standard error of measurement of the instrument, SD * sqrt(1 - r_xx): the floor
    # of s where the instrument publishes both (see :func:`standard_error`).
    sem: float | None = None
    # The clinic's fitted between-client SD: the floor of s where the SEM is unknown.
    between_client_sd: float | None = None
    discrepancy_points: float | None = None
    # Last-resort floor of s while neither the SEM nor a fitted between-client SD is
    # known (see :func:`default_min_sd`).
    min_sd: float = 0.0

    @property
    def sd_floor(self) -> float:
        """The floor of s: the SEM, else the between-client SD, else ``min_sd``.

        A fitted between-client SD below ``min_sd`` (a fit over one or two clients can
        give 0) does not lower the floor.
        """
        if self.sem is not None:
            return self.sem
        if self.between_client_sd is not None:
            return max(self.between_client_sd, self.min_sd)
        return self.min_sd


def standard_error(sd: float | None, reliability: float | None) -> float | None:
    """SEM = SD * sqrt(1 - r_xx) (Jacobson & Truax 1991); None unless both are known."""
    if sd is None or reliability is None:
        return None
    return sd * math.sqrt(1 - reliability)


def default_min_sd(low: float, high: float) -> float:
    """2.5 % of the score range (SRS-type 0-40: 1 point): s's floor before a clinic fit.

    Used only while the instrument publishes no SEM and the clinic has no fitted
    between-client SD yet (its first nightly refit). A project default (unverified):
    it equals the 1-point drop OpenFIT uses on the SRS, and it keeps a client whose
    first three ratings were identical (personal SD 0) from a "rupture" at a dip of a
    tenth. The between-client SD that replaces it is larger on every published alliance
    sample we know of, so the floor errs towards flagging.
    """
    return 0.025 * (high - low)


# Scores carry at most two decimals; comparisons allow for binary rounding so that
# 32.8 -> 31.8 is a drop of exactly 1 point.
_EPS = 1e-9


@dataclass(frozen=True)
class AllianceResult:
    """Flags and rupture status per episode (rows) and rated session (columns)."""

    scores: np.ndarray
    absolute: np.ndarray  # below the cutoff (rule 1 holds where this starts)
    drop: np.ndarray
    possible: np.ndarray  # rule 3 with k = 1
    rupture: np.ndarray  # rule 3 with k = 2
    discrepancy: np.ndarray
    therapist: np.ndarray  # the therapist's rating of the same session (NaN: none)
    personal_mean: np.ndarray
    personal_sd: np.ndarray  # the client's own SD of the earlier sessions (NaN: < 2)
    personal_sd_used: np.ndarray  # s: that SD, floored
    start: np.ndarray
    kind: np.ndarray  # at a start: POSSIBLE or RUPTURE; 0 elsewhere
    status: np.ndarray
    repaired_at: np.ndarray
    last: np.ndarray

    def count(self, status: int, kind: int = RUPTURE) -> np.ndarray:
        """Starts of ``kind`` with ``status`` (OPEN, REPAIRED, UNREPAIRED) per episode."""
        return np.asarray(((self.status == status) & (self.kind == kind)).sum(axis=1))

    @property
    def ruptures(self) -> np.ndarray:
        """Ruptures started (alert level), per episode."""
        return np.asarray((self.kind == RUPTURE).sum(axis=1))

    @property
    def possible_ruptures(self) -> np.ndarray:
        """Possible ruptures started (shown, not alerted), per episode."""
        return np.asarray((self.kind == POSSIBLE).sum(axis=1))

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
    n_rows, n_cols = a.shape

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
    # fmax: with fewer than two earlier sessions there is no personal SD; the floor holds.
    sd_used = np.fmax(sd_before, settings.sd_floor)

    with np.errstate(invalid="ignore"):
        below = (present & cutoff.clinical(a)) if cutoff is not None else np.zeros(
            a.shape, dtype=bool)
    previous = _shift(a, -1)
    drop = np.zeros(a.shape, dtype=bool)
    if settings.drop_points is not None:
        drop = present & np.isfinite(previous) & (a - previous <= -settings.drop_points + _EPS)
    history = present & (count_before >= settings.min_history)
    with np.errstate(invalid="ignore"):
        possible = history & (a < mean_before - 1 * sd_used - _EPS)
        rupture = history & (a < mean_before - 2 * sd_used - _EPS)
    discrepancy = np.zeros(a.shape, dtype=bool)
    therapist = (np.full(a.shape, np.nan) if therapist_scores is None
                 else np.asarray(therapist_scores, dtype=float).reshape(a.shape))
    if therapist_scores is not None and settings.discrepancy_points is not None:
        discrepancy = present & np.isfinite(therapist) & (
            therapist - a >= settings.discrepancy_points - _EPS)

    onset = below & ~(_shift(below.astype(float), -1, 0.0) > 0)  # newly below, or intake
    rupture_level = onset | rupture | discrepancy
    possible_level = (drop | possible) & ~rupture_level

    # Starts, one column at a time for all episodes. A rupture runs from its start until
    # a session repairs it or its window is over; no new one starts meanwhile. A possible
    # rupture runs likewise, and a rupture may start while it runs (a deepening dip).
    last = np.where(present.any(axis=1), n_cols - 1 - np.argmax(present[:, ::-1], axis=1), -1)
    target = mean_before - sd_used / 2  # rule 5: back within half an SD of the mean
    with np.errstate(invalid="ignore"):
        above_cutoff = (present & ~cutoff.clinical(a) if cutoff is not None
                        else np.zeros(a.shape, dtype=bool))
    start = np.zeros(a.shape, dtype=bool)
    kind = np.zeros(a.shape, dtype=np.int8)
    repaired_at = np.full(a.shape, -1, dtype=np.int32)
    rows = np.arange(n_rows)
    # Per level (0: possible, 1: rupture): the column the running one started at (-1: none).
    running = np.full((2, n_rows), -1)
    for col in range(n_cols):
        for level in (0, 1):
            began = running[level]
            on = began >= 0
            over = on & (col - began > settings.repair_window)
            running[level, over] = -1
            on &= ~over
            with np.errstate(invalid="ignore"):
                back = on & (above_cutoff[:, col] | (
                    a[:, col] >= target[rows, np.where(on, began, 0)] - _EPS))
            repaired_at[rows[back], began[back]] = col
            running[level, back] = -1
        starts_rupture = rupture_level[:, col] & (running[1] < 0)
        starts_possible = possible_level[:, col] & (running[0] < 0) & (running[1] < 0)
        start[:, col] = starts_rupture | starts_possible
        kind[starts_rupture, col] = RUPTURE
        kind[starts_possible, col] = POSSIBLE
        running[1, starts_rupture] = col
        running[0, starts_possible] = col

    window_over = (np.arange(n_cols)[np.newaxis, :] + settings.repair_window) <= last[:, None]
    status = np.full(a.shape, NONE, dtype=np.int8)
    status[start] = OPEN
    status[start & window_over] = UNREPAIRED
    status[start & (repaired_at >= 0)] = REPAIRED

    return AllianceResult(scores=a, absolute=below, drop=drop, possible=possible,
                          rupture=rupture, discrepancy=discrepancy, therapist=therapist,
                          personal_mean=mean_before, personal_sd=sd_before,
                          personal_sd_used=sd_used, start=start,
                          kind=kind, status=status, repaired_at=repaired_at, last=last)


def between_client_sd(scores: np.ndarray) -> float:
    """SD of client means (n - 1), the floor for person-relative rules (Gumz et al. 2012)."""
    a = np.asarray(scores, dtype=float)
    means = np.array([np.nanmean(row) for row in a if np.isfinite(row).any()])
    return float(np.std(means, ddof=1)) if means.size > 1 else 0.0
