"""Expected treatment response: fitting, percentiles and colours."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from outcome.core.instruments import Cutoff
from outcome.core.trajectory import ColourSettings
from outcome.core.trajectory import ReliableChangeRule
from outcome.core.trajectory import TrajectoryError
from outcome.core.trajectory import TrajectoryModel
from outcome.core.trajectory import fit_trajectory
from outcome.core.trajectory import progress_colours
from outcome.core.trajectory import rule_from_rci
from tests.helpers import simulated

NOW = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)
PHQ_CUTOFF = Cutoff(10, ">=")
PHQ_RULE = ReliableChangeRule(6, True, "PHQ-9: 6 points")


def test_fit_recovers_known_curve_parameters():
    model = fit_trajectory("phq9", "higher_is_worse", *simulated(), now=NOW)
    assert model.beta0 == pytest.approx(-1.0, abs=0.15)
    assert model.beta1 == pytest.approx(-0.15, abs=0.01)
    assert model.n_episodes == 400 and model.n_observations == 400 * 11
    assert model.sessions[0] == 2
    # Residuals are N(0, 2): the 90th percentile is about 1.2816 * 2.
    p90 = np.interp(0.9, np.arange(1, 100) / 100, model.quantiles[3])
    assert p90 == pytest.approx(2.563, abs=0.3)


def test_expected_is_the_log_session_curve():
    model = TrajectoryModel("phq9", "higher_is_worse", -1.0, -0.1, (2,), ((0.0,) * 99,), 1, 1,
                            NOW)
    # x0 = 20: y(t) = 20 + (-1 - 2) ln t.
    np.testing.assert_allclose(model.expected([20, 20], [1, np.e]), [20, 17])


def test_percentile_direction_and_bounds():
    model = fit_trajectory("phq9", "higher_is_worse", *simulated(), now=NOW)
    x0 = np.array([20.0, 20.0, 20.0, 20.0])
    t = np.array([6, 6, 6, 1])
    expected = model.expected(x0, t)
    p = model.percentile(x0, t, expected + np.array([0, 10, -10, 0]))
    assert p[0] == pytest.approx(0.5, abs=0.06)
    assert p[1] == 1.0 and p[2] == 0.0  # beyond every past residual
    assert np.isnan(p[3])  # session 1 has no percentile


def test_higher_is_better_is_mirrored():
    ep, t, y = simulated(beta0=1.0, beta1=0.05)
    model = fit_trajectory("who5", "higher_is_better", ep, t, y, now=NOW)
    x0, s = np.array([50.0]), np.array([6])
    worse = model.expected(x0, s) - 10  # lower is worse here
    assert model.percentile(x0, s, worse)[0] > 0.9


def test_sparse_sessions_pool_neighbours():
    ep, t, y = simulated(episodes=40, sessions=8)
    model = fit_trajectory("phq9", "higher_is_worse", ep, t, y, now=NOW, min_per_session=100)
    assert len(model.sessions) == 7  # every session gets a band, pooled


def test_too_little_data():
    with pytest.raises(TrajectoryError, match="3 or more administrations"):
        fit_trajectory("phq9", "higher_is_worse", [1, 1, 2], [1, 2, 1], [10, 9, 8], now=NOW)


def test_model_round_trips_as_json():
    model = fit_trajectory("phq9", "higher_is_worse", *simulated(episodes=60), now=NOW)
    assert TrajectoryModel.from_json(model.as_json()) == model


def colours(latest, session, intake=None, model=None, **kwargs):
    latest = np.asarray(latest, dtype=float)
    intake = np.full(latest.shape, 18.0) if intake is None else np.asarray(intake, float)
    result = progress_colours(direction="higher_is_worse", cutoff=PHQ_CUTOFF, rule=PHQ_RULE,
                              intake=intake, latest=latest, session=np.asarray(session),
                              model=model, **kwargs)
    return [result.name(i) for i in range(len(latest))], result


def test_rational_rules():
    # Intake 18; half the reliable-change threshold is 3 points.
    names, result = colours([18, 9, 24, 16, 15, 16, 18], [1, 5, 5, 4, 4, 3, 6])
    assert result.method == "rational"
    assert names == ["grey", "white", "red", "yellow", "green", "green", "yellow"]
    # 16 at session 4: improved 2 < 3 -> yellow; 15: improved exactly 3 -> green;
    # session 3 is before the rational rule applies.


def test_red_for_deterioration_wins_even_in_the_functional_range():
    names, result = colours([8], [5], intake=[2])
    assert names == ["red"]
    assert result.reason[0] == "reliable deterioration since intake"


def test_first_session_is_white_or_grey():
    names, _ = colours([5, 15], [1, 1], intake=[5, 15])
    assert names == ["white", "grey"]


def test_empirical_percentiles_decide_with_enough_episodes():
    model = fit_trajectory("phq9", "higher_is_worse", *simulated(), now=NOW)
    intake = np.array([20.0, 20.0, 20.0])
    expected = model.expected(intake, np.array([6, 6, 6]))
    p75 = np.interp(0.80, np.arange(1, 100) / 100, model.quantiles[4])
    p95 = np.interp(0.97, np.arange(1, 100) / 100, model.quantiles[4])
    names, result = colours(expected + np.array([0, p75, p95]), [6, 6, 6], intake=intake,
                            model=model)
    assert result.method == "empirical"
    assert names == ["green", "yellow", "red"]
    # With a higher minimum, the same model is not trusted: rational rules apply.
    _, fallback = colours([15.0], [6], model=model,
                          settings=ColourSettings(min_episodes=1000))
    assert fallback.method == "rational"


def test_rule_from_rci():
    rule = rule_from_rci(sd=7.5, reliability=0.93)
    assert rule.threshold == pytest.approx(1.96 * np.sqrt(2) * 7.5 * np.sqrt(0.07))
    assert not rule.is_inclusive
    assert rule.deteriorated(np.array([-rule.threshold]))[0] == np.False_


def test_without_a_threshold_progress_is_not_judged():
    # Review finding: K10 before a refit has no reliable-change threshold; it must not be
    # called yellow (or "on track") by the rational rules.
    result = progress_colours(direction="higher_is_worse", cutoff=Cutoff(20, ">="), rule=None,
                              intake=np.array([35.0]), latest=np.array([21.0]),
                              session=np.array([4]), model=None)
    assert result.name(0) == "grey" and result.reason[0] == "no reliable-change threshold yet"


# Issue 15: bands conditioned on intake severity (domain.md section 4).
PHQ_BANDS = ((0, 4), (5, 9), (10, 14), (15, 19), (20, 27))


def severity_dependent(episodes=600, sessions=8, seed=5):
    """PHQ-9 courses whose spread around the curve depends on the intake: SD 1 for
    intakes below 15, SD 4 from 15 up (a pooled band fits neither)."""
    rng = np.random.default_rng(seed)
    ep, t, y = [], [], []
    for e in range(episodes):
        x0 = float(rng.integers(5, 28))
        noise = 1.0 if x0 < 15 else 4.0
        for s in range(1, sessions + 1):
            ep.append(e)
            t.append(s)
            y.append(x0 if s == 1 else x0 + (-1.0 - 0.1 * x0) * np.log(s)
                     + rng.normal(0, noise))
    return np.array(ep), np.array(t), np.array(y)


def test_merge_strata_joins_small_strata_with_their_smaller_neighbour():
    from outcome.core.trajectory import merge_strata
    assert merge_strata([5, 40, 40, 3, 50], 30) == [0, 0, 2, 2, 4]
    assert merge_strata([30, 31, 32], 30) == [0, 1, 2]  # all big enough: none merged
    assert merge_strata([1, 2, 3], 30) == [0, 0, 0]  # never enough: one group
    assert merge_strata([0, 35, 0, 0, 40], 30) == [0, 0, 0, 0, 4]


def test_bands_are_conditioned_on_intake_severity():
    ep, t, y = severity_dependent()
    model = fit_trajectory("phq9", "higher_is_worse", ep, t, y, now=NOW, strata=PHQ_BANDS)
    pooled = fit_trajectory("phq9", "higher_is_worse", ep, t, y, now=NOW)
    assert model.is_stratified and not pooled.is_stratified
    x0, s = np.array([12.0, 22.0]), np.array([6, 6])
    worse = model.expected(x0, s) + 3.0  # 3 points worse than expected
    p = model.percentile(x0, s, worse)
    # Mild-to-moderate intakes vary little: 3 points worse is far off track (3 SD)...
    assert p[0] > 0.97
    # ...severe ones vary a lot: the same 3 points is well within their usual spread.
    assert p[1] < 0.85
    # The pooled band gets both wrong in opposite directions.
    q = pooled.percentile(x0, s, pooled.expected(x0, s) + 3.0)
    assert q[0] < p[0] and q[1] > p[1]
    # The chart band follows the stratum too: wider for the severe intake.
    lo, hi = model.band(x0, s)
    assert (hi - lo)[1] > 2 * (hi - lo)[0]


def test_a_sparse_stratum_is_merged_with_a_neighbour():
    ep, t, y = severity_dependent(episodes=300)
    # Only a few minimal intakes (0-4): too few residuals for a band of their own.
    rng = np.random.default_rng(9)
    extra_ep, extra_t, extra_y = [], [], []
    for e in range(4):
        x0 = float(rng.integers(2, 5))
        for s in range(1, 9):
            extra_ep.append(1000 + e)
            extra_t.append(s)
            extra_y.append(x0 if s == 1 else max(0.0, x0 - 0.2 * np.log(s)))
    model = fit_trajectory("phq9", "higher_is_worse", np.r_[ep, extra_ep], np.r_[t, extra_t],
                           np.r_[y, extra_y], now=NOW, strata=PHQ_BANDS)
    row = model.sessions.index(4)
    assert model.stratum_groups[row][0] == model.stratum_groups[row][1]  # merged with 5-9
    assert model.stratum_counts[row][0] >= 30
    assert model.stratum_groups[row][3] != model.stratum_groups[row][4]  # big ones apart
    low, high, n = model.stratum_range(3.0, 4)
    assert (low, high) == (0, 9) and n >= 30


def test_stored_version_1_models_still_load_as_pooled():
    model = fit_trajectory("phq9", "higher_is_worse", *simulated(episodes=60), now=NOW,
                           strata=PHQ_BANDS)
    stored = model.as_json()
    assert stored["version"] == 2
    assert TrajectoryModel.from_json(stored) == model
    v1 = {k: v for k, v in stored.items() if k in (
        "instrument_id", "direction", "beta0", "beta1", "sessions", "quantiles",
        "n_episodes", "n_observations", "fitted_dt")}
    old = TrajectoryModel.from_json(v1)
    assert not old.is_stratified
    x0, s = np.array([20.0]), np.array([5])
    assert 0 < old.percentile(x0, s, old.expected(x0, s))[0] < 1


def test_rational_red_without_reliable_improvement_by_session_8():
    # Intake 18 (clinical, PHQ-9 >= 10); reliable improvement is 6 points.
    names, result = colours([15, 12, 16, 15, 9], [8, 8, 7, 9, 8])
    assert names == ["red", "green", "yellow", "red", "white"]
    assert result.reason[0] == "no reliable improvement by this session"
    # Not clinical any more: no red for slow progress (white, functional range).
    names, _ = colours([9], [10], intake=[11])
    assert names == ["white"]
    # The session is a clinic setting.
    names, _ = colours([15], [8], settings=ColourSettings(rational_red_session=10))
    assert names == ["green"]
    # Without a cutoff "still in the clinical range" cannot be said: no such red.
    result = progress_colours(direction="higher_is_worse", cutoff=None, rule=PHQ_RULE,
                              intake=np.array([18.0]), latest=np.array([15.0]),
                              session=np.array([8]), model=None)
    assert result.name(0) != "red"
