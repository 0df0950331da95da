"""Expected treatment response and progress colours (domain.md section 4).

**Model.** For intake score x0, the expected score at session t >= 1 is
``y(t) = x0 + (b0 + b1 * x0) * ln(t)`` (the log-session recovery curve of Finch,
Lambert & Schaalje 2001), fitted by least squares on the clinic's completed episodes
with at least three administrations. Session 1 carries no information (ln 1 = 0).
Tolerance comes from the empirical distribution of residuals at each session, pooled
over neighbouring sessions until at least ``min_per_session`` residuals are in hand.
Residuals are stored in the *worse* direction (positive = worse than expected) as
percentiles 1..99, so one code serves both directions.

**Colours** of each episode's latest administration, in this order:

1. session 1: white when in the functional range, otherwise grey (no colour yet);
2. red: reliable deterioration since intake (given precedence even in the functional
   range, because a client getting worse is what this signal exists to show);
3. white: in the functional range;
4. with a fitted model (at least ``min_episodes`` episodes): green when the residual's
   percentile p <= 0.75, yellow when 0.75 < p <= 0.90, red when p > 0.90;
5. otherwise the rational rules (Lambert's group used them before the empirical
   algorithm): from session 4 on, still in the clinical range and improved by less
   than half the reliable-change threshold: yellow; else green. Without a
   reliable-change threshold (K10 before the clinic's intake SD is known) progress is
   grey, "cannot be judged yet", rather than a guess.

Percentiles, the session and the fraction are clinic settings. No curve parameters are
invented: without enough completed episodes the rational rules apply and every signal
says so.
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
    """A fitted expected-response model for one instrument."""

    instrument_id: str
    direction: Direction
    beta0: float
    beta1: float
    sessions: tuple[int, ...]
    quantiles: tuple[tuple[float, ...], ...]
    n_episodes: int
    n_observations: int
    fitted_dt: dt.datetime

    def as_json(self) -> dict[str, Any]:
        return {"instrument_id": self.instrument_id, "direction": self.direction,
                "beta0": self.beta0, "beta1": self.beta1, "sessions": list(self.sessions),
                "quantiles": [list(q) for q in self.quantiles],
                "n_episodes": self.n_episodes, "n_observations": self.n_observations,
                "fitted_dt": self.fitted_dt.isoformat()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrajectoryModel:
        return cls(instrument_id=data["instrument_id"], direction=data["direction"],
                   beta0=float(data["beta0"]), beta1=float(data["beta1"]),
                   sessions=tuple(data["sessions"]),
                   quantiles=tuple(tuple(q) for q in data["quantiles"]),
                   n_episodes=int(data["n_episodes"]),
                   n_observations=int(data["n_observations"]),
                   fitted_dt=dt.datetime.fromisoformat(data["fitted_dt"]))

    def _worse_sign(self) -> int:
        return 1 if self.direction == "higher_is_worse" else -1

    def _rows(self, t: np.ndarray) -> np.ndarray:
        sessions = np.asarray(self.sessions)
        clipped = np.clip(t, sessions[0], sessions[-1])
        return np.asarray(np.searchsorted(sessions, clipped))

    def expected(self, x0: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Expected score at session ``t`` for intake ``x0`` (vectorised)."""
        x0 = np.asarray(x0, dtype=float)
        t = np.asarray(t, dtype=float)
        return np.asarray(x0 + (self.beta0 + self.beta1 * x0) * np.log(np.maximum(t, 1)))

    def percentile(self, x0: np.ndarray, t: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Where each observed score lies among past residuals at its session (0..1).

        0.5 is as expected; above 0.9 is worse than nine past observations in ten.
        NaN for session 1 and missing scores.
        """
        t = np.asarray(t, dtype=float)
        worse = self._worse_sign() * (np.asarray(y, dtype=float) - self.expected(x0, t))
        rows = self._rows(np.nan_to_num(t, nan=1).astype(int))
        p = np.full(worse.shape, np.nan)
        # One interpolation per session table (at most a few dozen), not per episode.
        for row in np.unique(rows):
            members = rows == row
            p[members] = np.interp(worse[members], self.quantiles[row], LEVELS,
                                   left=0.0, right=1.0)
        return np.where((t >= 2) & np.isfinite(worse), p, np.nan)

    def band(self, x0: np.ndarray, t: np.ndarray, low: float = 0.25, high: float = 0.90
             ) -> tuple[np.ndarray, np.ndarray]:
        """Scores between the ``low`` and ``high`` residual percentiles, for charts.

        Returned as (better edge, worse edge) in score units.
        """
        t = np.asarray(t, dtype=float)
        table = np.asarray(self.quantiles)
        per_row_lo = np.array([np.interp(low, LEVELS, q) for q in table])
        per_row_hi = np.array([np.interp(high, LEVELS, q) for q in table])
        rows = self._rows(t.astype(int))
        lo, hi = per_row_lo[rows], per_row_hi[rows]
        expected = self.expected(x0, t)
        sign = self._worse_sign()
        return expected + sign * lo, expected + sign * hi


def fit_trajectory(instrument_id: str, direction: Direction, episode: np.ndarray,
                   session: np.ndarray, score: np.ndarray, *, now: dt.datetime,
                   min_administrations: int = 3, min_per_session: int = 30,
                   max_session: int = 30) -> TrajectoryModel:
    """Fit the log-session model on completed episodes.

    ``episode``, ``session`` (1-based session number) and ``score`` are parallel arrays,
    one entry per valid administration. Episodes with fewer than ``min_administrations``
    are left out. Raises :class:`TrajectoryError` when nothing can be fitted.
    """
    episode = np.asarray(episode)
    session = np.asarray(session, dtype=float)
    score = np.asarray(score, dtype=float)
    keep = np.isfinite(score) & (session >= 1)
    episode, session, score = episode[keep], session[keep], score[keep]
    if episode.size == 0:
        raise TrajectoryError("no administrations to fit")
    order = np.lexsort((session, episode))
    episode, session, score = episode[order], session[order], score[order]
    _, first, counts = np.unique(episode, return_index=True, return_counts=True)
    enough = counts >= min_administrations
    if not enough.any():
        raise TrajectoryError(f"no completed episode has {min_administrations} or more "
                              "administrations")
    intake_of = np.repeat(score[first], counts)
    use = np.repeat(enough, counts) & (session >= 2)
    x0, t, y = intake_of[use], session[use], score[use]
    log_t = np.log(t)
    design = np.column_stack([log_t, x0 * log_t])
    (beta0, beta1), *_ = np.linalg.lstsq(design, y - x0, rcond=None)
    worse_sign = 1 if direction == "higher_is_worse" else -1
    residual = worse_sign * (y - (x0 + (beta0 + beta1 * x0) * log_t))

    top = int(min(max_session, t.max()))
    sessions, quantiles = [], []
    for s in range(2, top + 1):
        width = 0
        while True:
            pooled = residual[np.abs(t - s) <= width]
            if pooled.size >= min_per_session or width > top:
                break
            width += 1
        if pooled.size == 0:
            continue
        sessions.append(s)
        quantiles.append(tuple(float(v) for v in np.quantile(pooled, LEVELS)))
    return TrajectoryModel(instrument_id=instrument_id, direction=direction,
                           beta0=float(beta0), beta1=float(beta1), sessions=tuple(sessions),
                           quantiles=tuple(quantiles), n_episodes=int(enough.sum()),
                           n_observations=int(y.size), fitted_dt=now)


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
