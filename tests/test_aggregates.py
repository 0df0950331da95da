"""Aggregates: Wilson intervals, effect sizes, SAES and per-group summaries."""

from __future__ import annotations

import numpy as np
import pytest

from outcome.core.aggregates import pre_post_effect_size
from outcome.core.aggregates import rate
from outcome.core.aggregates import severity_adjusted
from outcome.core.aggregates import summarise_groups
from outcome.core.aggregates import wilson_interval


def test_wilson_interval_known_values():
    # Wilson (1927); e.g. Newcombe (1998) Table I: 81 of 263 -> 0.2553 to 0.3662.
    low, high = wilson_interval(81, 263)
    assert (low, high) == (pytest.approx(0.2553, abs=1e-4), pytest.approx(0.3662, abs=1e-4))
    low, high = wilson_interval(0, 10)
    assert low == 0 and high == pytest.approx(0.2775, abs=1e-4)
    assert wilson_interval(0, 0) is None
    assert wilson_interval(10, 10)[1] == 1


def test_rates_describe_themselves_and_label_small_samples():
    assert rate(7, 20).describe() == "7 of 20 (35 %, 95 % CI 18-57 %)"
    assert rate(3, 4).describe().endswith(", small sample")
    assert rate(0, 0).describe() == "none yet"


def test_pre_post_effect_size():
    # Lower is better (d = -1): changes 4, 2, 6 -> mean 4; SD of pre (10, 14, 18) = 4.
    assert pre_post_effect_size([10, 14, 18], [6, 12, 12], -1) == pytest.approx(1.0)
    assert pre_post_effect_size([10], [5], -1) is None
    assert pre_post_effect_size([10, 10], [5, 6], -1) is None


def test_saes_adjusts_for_harder_cases():
    # Change depends on intake (harder cases improve more in points). Therapist 2 sees
    # only severe cases: raw mean change is higher, but the residuals say equal skill.
    rng = np.random.default_rng(0)
    intake = np.concatenate([rng.uniform(10, 15, 40), rng.uniform(20, 25, 40)])
    change = 0.5 * intake + rng.normal(0, 0.5, 80)
    last = intake - change  # lower is better
    groups = np.array([1] * 40 + [2] * 40)
    result = severity_adjusted(intake, last, groups, d=-1)
    assert result.slope == pytest.approx(0.5, abs=0.05)
    assert result.saes[1] == pytest.approx(result.saes[2], abs=0.05)
    raw = {g: np.mean(change[groups == g]) for g in (1, 2)}
    assert raw[2] > raw[1] + 3


def test_saes_hidden_below_ten_episodes():
    intake = np.arange(20.0)
    result = severity_adjusted(intake, intake - 3, np.array([1] * 15 + [2] * 5), d=-1)
    assert result.saes[1] is not None and result.saes[2] is None


def test_summarise_groups():
    # Two therapists; colours 0 grey 1 white 2 green 3 yellow 4 red.
    summary = summarise_groups(
        group=np.array([1, 1, 1, 2, 2]), active=np.array([1, 1, 0, 1, 0], dtype=bool),
        sessions=np.array([10, 8, 6, 4, 12]), sessions_measured=np.array([9, 8, 3, 2, 12]),
        colour=np.array([4, 2, 2, 1, 0]), colour_names=("grey", "white", "green", "yellow",
                                                         "red"),
        ruptures=np.array([1, 0, 2, 0, 1]), repaired=np.array([1, 0, 1, 0, 0]),
        unrepaired=np.array([0, 0, 1, 0, 1]), ended=np.array([0, 0, 1, 0, 1], dtype=bool),
        category=np.array([-1, -1, 0, -1, 3]), intake=np.array([20, 18, 16, 12, 14.0]),
        last=np.array([22, 12, 6, 10, 20.0]), d=-1)
    one, two = summary[1], summary[2]
    assert one.active_episodes == 2 and one.completion.describe().startswith("20 of 24")
    assert (one.colours["red"].count, one.colours["green"].count) == (1, 1)
    assert (one.ruptures, one.ruptures_repaired.count, one.ruptures_unrepaired) == (3, 2, 1)
    assert one.ruptures_repaired.n == 3 and one.ruptures_open == 0
    assert (one.ended, one.recovered.count, one.deteriorated.count) == (1, 1, 0)
    assert (two.ended, two.deteriorated.count, two.colours["white"].count) == (1, 1, 1)
    assert one.is_small and one.saes is None


def test_repair_share_leaves_out_ruptures_still_in_their_window():
    # Review finding: 1 repaired, 0 unrepaired, 2 open is "1 of 1", not "1 of 3".
    summary = summarise_groups(
        group=np.array([1]), active=np.array([True]), sessions=np.array([8]),
        sessions_measured=np.array([8]), colour=np.array([2]),
        colour_names=("grey", "white", "green", "yellow", "red"), ruptures=np.array([3]),
        repaired=np.array([1]), unrepaired=np.array([0]), ended=np.array([False]),
        category=np.array([-1]), intake=np.array([20.0]), last=np.array([15.0]), d=-1)[1]
    assert (summary.ruptures_repaired.count, summary.ruptures_repaired.n) == (1, 1)
    assert summary.ruptures_open == 2
