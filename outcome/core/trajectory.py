"""Expected treatment response and progress colours (domain.md section 4).

**Model.** For intake score x0, the expected score at session t >= 1 is
``y(t) = x0 + (b0 + b1 * x0) * ln(t)`` (the log-session recovery curve of Finch,
Lambert & Schaalje 2001), fitted by least squares on the clinic's episodes with at least
three administrations, **ongoing ones included** (fitting on completed episodes alone
keeps only the clients who stayed, and biases the curve). t is the episode's treatment
session number (the appointment's number among attended sessions, computed by
:mod:`outcome.services.sessions`), not a count of questionnaires. Session 1 carries no
information (ln 1 = 0).

**Tolerance bands conditioned on intake severity.** Residuals are stored in the *worse*
direction (positive = worse than expected) as percentiles 1..99, so one code serves both
directions. At each session the residuals of that session (neighbouring sessions pooled
in until at least ``min_per_session`` are in hand) are split by the intake's stratum, the
instrument's own severity bands (PHQ-9 0-4, 5-9, 10-14, 15-19, 20-27); a stratum with
fewer than ``min_per_session`` (30) residuals is merged with a neighbour
(:func:`merge_strata`). Pooling every intake severity into one band makes mild clients
look off track and severe ones on track (domain.md section 4). A model stored before
strata existed (version 1) has pooled bands only and is read as one stratum.

**Colours** of each episode's latest administration, in this order:

1. session 1: white when in the functional range, otherwise grey (no colour yet);
2. red: reliable deterioration since intake (given precedence even in the functional
   range, because a client getting worse is what this signal exists to show);
3. white: in the functional range;
4. with a model (at least ``min_episodes`` episodes): green when the residual's
   percentile p <= 0.75, yellow when 0.75 < p <= 0.90, red when p > 0.90;
5. otherwise the rational rules (Lambert's group used them before the empirical
   algorithm): from session ``rational_red_session`` (8) on, still in the clinical range
   without reliable improvement: red; from session ``rational_from_session`` (4) on,
   still in the clinical range and improved by less than ``rational_fraction`` (half) of
   the reliable-change threshold: yellow; else green. Without a reliable-change
   threshold (K10 before the clinic's intake SD is known) progress is grey, "cannot be
   judged yet", rather than a guess. The sessions and the fraction are project defaults
   (unverified) and clinic settings.

Percentiles, the sessions and the fraction are clinic settings. No curve parameters are
invented: without enough episodes (or an imported fit) the rational rules apply and
every signal says so.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from outcome.core.instruments import Cutoff
from outcome.core.instruments import Direction

LEVELS = np.arange(1, 100) / 100.0
GREY, WHITE, GREEN, YELLOW, RED = range(5)
COLOURS = ("grey", "white", "green", "yellow", "red")
# "Back on track" after a plan (support.md, "The loop", 5): on track (green) or in the
# functional range (white), domain.md section 4. Yellow is "less progress than expected",
# part of Lambert's not-on-track signal, so it is "no longer red", not back on track.
ON_TRACK_COLOURS = ("white", "green")
# The expected band drawn on charts: past clients' residuals between these percentiles (in
# the worse direction), so BAND_HIGH - BAND_LOW of them lie inside it and 1 - BAND_LOW are
# worse than its better edge. The client report's words are derived from them.
BAND_LOW, BAND_HIGH = 0.25, 0.90
# Version 2: intake-severity strata beside version 1's pooled tables.
MODEL_VERSION = 2


class TrajectoryError(ValueError):
    """Too little data, or data that cannot be fitted; the message says what is missing."""


@dataclass(frozen=True)
class ColourSettings:
    """Clinic settings for progress colours (defaults from domain.md section 4)."""

    green_max: float = 0.75
    yellow_max: float = 0.90
    min_episodes: int = 50
    rational_from_session: int = 4
    rational_fraction: float = 0.5
    rational_red_session: int = 8


DEFAULT_COLOUR_SETTINGS = ColourSettings()


@dataclass(frozen=True)
class ReliableChangeRule:
    """Reliable change in points: ``d * change >= threshold`` (inclusive) or ``>`` (strict).

    Inclusive for a published fixed threshold (PHQ-9: 6 points); strict for one derived
    from an RCI (``1.96 * S_diff``), matching the RCI's strict inequality.
    """

    threshold: float
    is_inclusive: bool
    source: str

    def improved(self, change_good: np.ndarray) -> np.ndarray:
        return change_good >= self.threshold if self.is_inclusive else (
            change_good > self.threshold)

    def deteriorated(self, change_good: np.ndarray) -> np.ndarray:
        return change_good <= -self.threshold if self.is_inclusive else (
            change_good < -self.threshold)


def rule_from_rci(sd: float, reliability: float, critical: float = 1.96,
                  source: str = "") -> ReliableChangeRule:
    """The RCI criterion as points: ``critical * sqrt(2) * SD * sqrt(1 - r)`` (strict)."""
    threshold = critical * math.sqrt(2) * sd * math.sqrt(1 - reliability)
    return ReliableChangeRule(threshold, False, source or
                              f"RCI: {critical} x S_diff, SD {sd:g}, r {reliability:g}")


@dataclass(frozen=True)
class TrajectoryModel:
    """A fitted expected-response model for one instrument.

    ``quantiles[row]`` is the residual table of session ``sessions[row]`` pooled over
    every intake (version 1, and the fallback of a model without strata).
    ``strata`` are the instrument's intake-severity bands ``(minimum, maximum)`` in score
    order; ``stratum_quantiles[row][k]`` is the residual table for intakes in stratum k at
    that session, ``stratum_groups[row][k]`` the first stratum of the merged group it was
    taken from and ``stratum_counts[row][k]`` how many residuals that group held.
    ``source`` names an imported fit's origin (None for the clinic's own fit).
    """

    instrument_id: str
    direction: Direction
    beta0: float
    beta1: float
    sessions: tuple[int, ...]
    quantiles: tuple[tuple[float, ...], ...]
    n_episodes: int
    n_observations: int
    fitted_dt: dt.datetime
    strata: tuple[tuple[float, float], ...] = ()
    stratum_quantiles: tuple[tuple[tuple[float, ...], ...], ...] = ()
    stratum_groups: tuple[tuple[int, ...], ...] = ()
    stratum_counts: tuple[tuple[int, ...], ...] = ()
    source: str | None = None

    def as_json(self) -> dict[str, Any]:
        """Version 2: version 1's keys (read by older code as a pooled model) plus strata."""
        return {"version": MODEL_VERSION, "instrument_id": self.instrument_id,
                "direction": self.direction,
                "beta0": self.beta0, "beta1": self.beta1, "sessions": list(self.sessions),
                "quantiles": [list(q) for q in self.quantiles],
                "n_episodes": self.n_episodes, "n_observations": self.n_observations,
                "fitted_dt": self.fitted_dt.isoformat(),
                "strata": [list(s) for s in self.strata],
                "stratum_quantiles": [[list(q) for q in row] for row in self.stratum_quantiles],
                "stratum_groups": [list(g) for g in self.stratum_groups],
                "stratum_counts": [list(c) for c in self.stratum_counts]}

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str | None = None) -> TrajectoryModel:
        """Versions 1 (no ``version`` key: pooled bands) and 2 (intake-severity strata)."""
        return cls(instrument_id=data["instrument_id"], direction=data["direction"],
                   beta0=float(data["beta0"]), beta1=float(data["beta1"]),
                   sessions=tuple(int(s) for s in data["sessions"]),
                   quantiles=tuple(tuple(float(v) for v in q) for q in data["quantiles"]),
                   n_episodes=int(data["n_episodes"]),
                   n_observations=int(data["n_observations"]),
                   fitted_dt=dt.datetime.fromisoformat(data["fitted_dt"]),
                   strata=tuple((float(lo), float(hi)) for lo, hi in data.get("strata", ())),
                   stratum_quantiles=tuple(
                       tuple(tuple(float(v) for v in q) for q in row)
                       for row in data.get("stratum_quantiles", ())),
                   stratum_groups=tuple(tuple(int(g) for g in row)
                                        for row in data.get("stratum_groups", ())),
                   stratum_counts=tuple(tuple(int(c) for c in row)
                                        for row in data.get("stratum_counts", ())),
                   source=source)

    @property
    def is_stratified(self) -> bool:
        return bool(self.strata) and bool(self.stratum_quantiles)

    def _worse_sign(self) -> int:
        return 1 if self.direction == "higher_is_worse" else -1

    def _rows(self, t: np.ndarray) -> np.ndarray:
        sessions = np.asarray(self.sessions)
        clipped = np.clip(t, sessions[0], sessions[-1])
        return np.asarray(np.searchsorted(sessions, clipped))

    def stratum(self, x0: np.ndarray) -> np.ndarray:
        """The intake-severity stratum of each intake score (0 without strata)."""
        x0 = np.asarray(x0, dtype=float)
        if not self.is_stratified:
            return np.zeros(x0.shape, dtype=np.int64)
        edges = np.array([lo for lo, _ in self.strata[1:]])
        return np.asarray(np.searchsorted(edges, np.nan_to_num(x0), side="right"))

    def _table(self, row: int, stratum: int) -> tuple[float, ...]:
        if self.is_stratified:
            return self.stratum_quantiles[row][stratum]
        return self.quantiles[row]

    def stratum_range(self, x0: float, t: int) -> tuple[float, float, int] | None:
        """The intake range whose residuals give the band at session ``t`` for intake
        ``x0`` (the stratum, or the strata merged with it), and how many residuals."""
        if not self.is_stratified:
            return None
        row = int(self._rows(np.array([t]))[0])
        k = int(self.stratum(np.array([x0]))[0])
        group = self.stratum_groups[row]
        members = [j for j, g in enumerate(group) if g == group[k]]
        return (self.strata[members[0]][0], self.strata[members[-1]][1],
                int(self.stratum_counts[row][k]))

    def expected(self, x0: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Expected score at session ``t`` for intake ``x0`` (vectorised)."""
        x0 = np.asarray(x0, dtype=float)
        t = np.asarray(t, dtype=float)
        return np.asarray(x0 + (self.beta0 + self.beta1 * x0) * np.log(np.maximum(t, 1)))

    def percentile(self, x0: np.ndarray, t: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Where each observed score lies among past residuals at its session (0..1),
        among past clients of the same intake-severity stratum.

        0.5 is as expected; above 0.9 is worse than nine past observations in ten.
        NaN for session 1 and missing scores.
        """
        t = np.asarray(t, dtype=float)
        worse = self._worse_sign() * (np.asarray(y, dtype=float) - self.expected(x0, t))
        rows = self._rows(np.nan_to_num(t, nan=1).astype(int))
        strata = self.stratum(x0)
        keys = rows * (len(self.strata) or 1) + strata
        p = np.full(worse.shape, np.nan)
        # One interpolation per (session, stratum) table (a few dozen), not per episode.
        for key in np.unique(keys):
            members = keys == key
            row, k = divmod(int(key), len(self.strata) or 1)
            p[members] = np.interp(worse[members], self._table(row, k), LEVELS,
                                   left=0.0, right=1.0)
        return np.where((t >= 2) & np.isfinite(worse), p, np.nan)

    def band(self, x0: np.ndarray, t: np.ndarray, low: float = BAND_LOW,
             high: float = BAND_HIGH) -> tuple[np.ndarray, np.ndarray]:
        """Scores between the ``low`` and ``high`` residual percentiles, for charts.

        Returned as (better edge, worse edge) in score units, from the table of the
        intake's stratum at each session.
        """
        t = np.asarray(t, dtype=float)
        x0 = np.broadcast_to(np.asarray(x0, dtype=float), t.shape)
        rows = self._rows(t.astype(int))
        strata = self.stratum(x0)
        lo = np.array([np.interp(low, LEVELS, self._table(int(r), int(k)))
                       for r, k in zip(rows.ravel(), strata.ravel(), strict=True)])
        hi = np.array([np.interp(high, LEVELS, self._table(int(r), int(k)))
                       for r, k in zip(rows.ravel(), strata.ravel(), strict=True)])
        expected = self.expected(x0, t)
        sign = self._worse_sign()
        return (expected + sign * lo.reshape(t.shape), expected + sign * hi.reshape(t.shape))


def merge_strata(counts: list[int], minimum: int) -> list[int]:
    """Merge intake-severity strata with a neighbour until each group holds ``minimum``.

    ``counts`` are residuals per stratum (in score order); returns, per stratum, the
    index of the first stratum of its group. The smallest group is merged first, with
    whichever neighbour holds fewer residuals (the lower one on a tie), so sparse
    extremes join the band next to them and well-filled strata stay apart.
    """
    groups = [[k] for k in range(len(counts))]
    size = list(counts)
    while len(groups) > 1 and min(size) < minimum:
        g = min(range(len(groups)), key=lambda i: (size[i], i))
        if g == 0:
            other = 1
        elif g == len(groups) - 1:
            other = g - 1
        else:
            other = g - 1 if size[g - 1] <= size[g + 1] else g + 1
        a, b = sorted((g, other))
        groups[a:b + 1] = [groups[a] + groups[b]]
        size[a:b + 1] = [size[a] + size[b]]
    out = [0] * len(counts)
    for group in groups:
        for k in group:
            out[k] = group[0]
    return out


def fit_trajectory(instrument_id: str, direction: Direction, episode: np.ndarray,
                   session: np.ndarray, score: np.ndarray, *, now: dt.datetime,
                   strata: tuple[tuple[float, float], ...] = (),
                   min_administrations: int = 3, min_per_session: int = 30,
                   max_session: int = 30) -> TrajectoryModel:
    """Fit the log-session model on every episode with enough administrations.

    ``episode``, ``session`` (the attended treatment session number, >= 1) and
    ``score`` are parallel arrays, one entry per valid administration; the intake is
    each episode's earliest valid score. Episodes with fewer than
    ``min_administrations`` are left out; ongoing episodes are included (domain.md
    section 4: fitting on completed episodes alone keeps only those who stayed).

    Bands: at each session the residuals of sessions within a window (widened until it
    holds ``min_per_session``) give the pooled table; with ``strata`` (the instrument's
    severity bands, ``(minimum, maximum)`` in score order) the same residuals are split
    by the intake's stratum, and a stratum with fewer than ``min_per_session`` is merged
    with a neighbour (:func:`merge_strata`). Raises :class:`TrajectoryError` when
    nothing can be fitted.
    """
    episode = np.asarray(episode)
    session = np.asarray(session, dtype=float)
    score = np.asarray(score, dtype=float)
    keep = np.isfinite(score) & (session >= 1)
    episode, session, score = episode[keep], session[keep], score[keep]
    if episode.size == 0:
        raise TrajectoryError("no administrations to fit")
    # Stable by episode, then session; within a session the given (completion) order.
    order = np.lexsort((np.arange(episode.size), session, episode))
    episode, session, score = episode[order], session[order], score[order]
    _, first, counts = np.unique(episode, return_index=True, return_counts=True)
    enough = counts >= min_administrations
    if not enough.any():
        raise TrajectoryError(f"no episode has {min_administrations} or more "
                              "administrations")
    intake_of = np.repeat(score[first], counts)
    use = np.repeat(enough, counts) & (session >= 2)
    if not use.any():
        raise TrajectoryError("no administration after session 1 to fit")
    x0, t, y = intake_of[use], session[use], score[use]
    log_t = np.log(t)
    design = np.column_stack([log_t, x0 * log_t])
    (beta0, beta1), *_ = np.linalg.lstsq(design, y - x0, rcond=None)
    worse_sign = 1 if direction == "higher_is_worse" else -1
    residual = worse_sign * (y - (x0 + (beta0 + beta1 * x0) * log_t))
    strata = tuple(sorted((float(lo), float(hi)) for lo, hi in strata))
    edges = np.array([lo for lo, _ in strata[1:]])
    stratum_of = np.searchsorted(edges, x0, side="right") if strata else np.zeros(x0.size)

    top = int(min(max_session, t.max()))
    sessions, quantiles = [], []
    by_stratum, groups, group_counts = [], [], []
    for s in range(2, top + 1):
        width = 0
        while True:
            window = np.abs(t - s) <= width
            if window.sum() >= min_per_session or width > top:
                break
            width += 1
        pooled = residual[window]
        if pooled.size == 0:
            continue
        sessions.append(s)
        quantiles.append(_quantiles(pooled))
        if not strata:
            continue
        in_window = stratum_of[window]
        counts_k = [int((in_window == k).sum()) for k in range(len(strata))]
        group = merge_strata(counts_k, min_per_session)
        tables, sizes = [], []
        for k in range(len(strata)):
            members = np.isin(in_window, [j for j, g in enumerate(group) if g == group[k]])
            tables.append(_quantiles(pooled[members]))
            sizes.append(int(members.sum()))
        by_stratum.append(tuple(tables))
        groups.append(tuple(group))
        group_counts.append(tuple(sizes))
    return TrajectoryModel(instrument_id=instrument_id, direction=direction,
                           beta0=float(beta0), beta1=float(beta1), sessions=tuple(sessions),
                           quantiles=tuple(quantiles), n_episodes=int(enough.sum()),
                           n_observations=int(y.size), fitted_dt=now, strata=strata,
                           stratum_quantiles=tuple(by_stratum), stratum_groups=tuple(groups),
                           stratum_counts=tuple(group_counts))


def _quantiles(values: np.ndarray) -> tuple[float, ...]:
    return tuple(float(v) for v in np.quantile(values, LEVELS))


@dataclass(frozen=True)
class ColourResult:
    """Colour of each episode's latest administration, with what decided it."""

    colour: np.ndarray
    method: str
    percentile: np.ndarray
    expected: np.ndarray
    reason: tuple[str, ...]

    def name(self, index: int) -> str:
        return COLOURS[int(self.colour[index])]


def progress_colours(*, direction: Direction, cutoff: Cutoff | None,
                     rule: ReliableChangeRule | None, intake: np.ndarray, latest: np.ndarray,
                     session: np.ndarray, model: TrajectoryModel | None,
                     settings: ColourSettings = DEFAULT_COLOUR_SETTINGS) -> ColourResult:
    """Progress colours for many episodes at once (see the module docstring).

    ``intake`` and ``latest`` are the first and latest valid scores of each episode;
    ``session`` is the latest one's session number.
    """
    intake = np.asarray(intake, dtype=float)
    latest = np.asarray(latest, dtype=float)
    session = np.asarray(session, dtype=int)
    d = 1 if direction == "higher_is_better" else -1
    change_good = d * (latest - intake)
    with np.errstate(invalid="ignore"):
        functional = (np.isfinite(latest) & ~cutoff.clinical(latest)
                      if cutoff is not None else np.zeros(latest.shape, dtype=bool))
    clinical = ~functional if cutoff is not None else np.ones(latest.shape, dtype=bool)
    deteriorated = (rule.deteriorated(change_good) if rule is not None
                    else np.zeros(latest.shape, dtype=bool))
    empirical = model is not None and model.n_episodes >= settings.min_episodes

    n = latest.shape[0]
    colour = np.full(n, GREEN, dtype=np.int8)
    reason = np.full(n, "on track", dtype=object)
    percentile = np.full(n, np.nan)
    expected = np.full(n, np.nan)
    if empirical:
        assert model is not None
        percentile = model.percentile(intake, session, latest)
        expected = model.expected(intake, session)
        colour[:] = RED
        reason[:] = "worse than expected"
        colour[percentile <= settings.yellow_max] = YELLOW
        reason[percentile <= settings.yellow_max] = "less progress than expected"
        colour[percentile <= settings.green_max] = GREEN
        reason[percentile <= settings.green_max] = "on track"
    elif rule is None:
        # Without a reliable-change threshold the rational rules cannot judge progress;
        # claiming "on track" would be a guess.
        colour[:] = GREY
        reason[:] = "no reliable-change threshold yet"
    else:
        slow = ((session >= settings.rational_from_session) & clinical
                & (change_good < settings.rational_fraction * rule.threshold))
        colour[slow] = YELLOW
        reason[slow] = "little improvement by this session"
        # No reliable improvement by session N while still clinical: not on track. Only
        # with a cutoff: without one, "still in the clinical range" cannot be said.
        stuck = ((session >= settings.rational_red_session) & clinical
                 & ~rule.improved(change_good) & (cutoff is not None))
        colour[stuck] = RED
        reason[stuck] = "no reliable improvement by this session"
    colour[functional] = WHITE
    reason[functional] = "in the functional range"
    colour[deteriorated] = RED
    reason[deteriorated] = "reliable deterioration since intake"
    first = session <= 1
    colour[first] = np.where(functional[first], WHITE, GREY)
    reason[first] = "first session: no colour yet"
    missing = ~np.isfinite(latest)
    colour[missing] = GREY
    reason[missing] = "no valid score"
    return ColourResult(colour=colour, method="empirical" if empirical else "rational",
                        percentile=percentile, expected=expected, reason=tuple(reason))
