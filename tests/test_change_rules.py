"""Boundaries of the change rules, computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from outcome.core.change import ChangeError
from outcome.core.change import compute_cutoff
from outcome.core.change import cronbach_alpha
from outcome.core.change import individual_change
from outcome.core.instruments import Cutoff
from outcome.core.talking_therapies import talking_therapies

WORSE = "higher_is_worse"
BETTER = "higher_is_better"


def test_rci_is_strict_at_the_critical_value():
    # SD 10, r = 0.8: SE = 10 * sqrt(0.2) = 4.4721, S_diff = sqrt(2) * SE = 6.3246.
    first = individual_change([30], [20], direction=WORSE, reliability=0.8, sd=10)
    assert first.s_diff == pytest.approx(6.32456, abs=1e-5)
    rci = float(first.index[0])
    assert rci == pytest.approx(-10 / 6.32456, abs=1e-5)
    at = individual_change([30], [20], direction=WORSE, reliability=0.8, sd=10,
                           critical_value=abs(rci))
    just_below = individual_change([30], [20], direction=WORSE, reliability=0.8, sd=10,
                                   critical_value=abs(rci) - 1e-9)
    assert (at.label(0), just_below.label(0)) == ("unchanged", "improved")


def test_direction_is_mirrored():
    worse = individual_change([20, 20], [10, 30], direction=WORSE, reliability=0.8, sd=5)
    better = individual_change([20, 20], [10, 30], direction=BETTER, reliability=0.8, sd=5)
    assert [worse.label(0), worse.label(1)] == ["improved", "deteriorated"]
    assert [better.label(0), better.label(1)] == ["deteriorated", "improved"]


def test_fixed_points_threshold_is_inclusive():
    # PHQ-9: reliable improvement is a fall of at least 6 points.
    result = individual_change([15, 15, 15, 15], [9, 10, 21, 20], direction=WORSE, points=6)
    assert [result.label(i) for i in range(4)] == [
        "improved", "unchanged", "deteriorated", "unchanged"]
    assert result.method == "points" and result.s_diff is None


def test_published_cutoff_keeps_its_clinical_side():
    # PHQ-9 caseness >= 10: 10 is clinical, 9 is functional.
    phq = Cutoff(10, ">=")
    result = individual_change([16, 16, 12, 4], [9, 10, 18, 10], direction=WORSE, points=6,
                               cutoff=phq)
    # 16 -> 9: reliable fall into the functional range: recovered.
    # 16 -> 10: reliable fall, but 10 is still clinical: improved.
    # 12 -> 18: reliable rise within the clinical range: deteriorated.
    # 4 -> 10: reliable rise from functional into clinical: harmed.
    assert [result.label(i) for i in range(4)] == [
        "recovered", "improved", "deteriorated", "harmed"]


def test_computed_cutoff_at_exactly_the_cutoff_is_neither_side():
    # Cutoff a with clinical mean 20 and SD 5 (higher is worse): a = 20 - 2 * 5 = 10.
    result = individual_change([25, 25], [10, 9.99], direction=WORSE, reliability=0.8,
                               sd=5, cutoff_type="a", clinical_mean=20, clinical_sd=5)
    assert result.cutoff == 10
    assert list(result.functional_post) == [False, True]
    assert [result.label(0), result.label(1)] == ["improved", "recovered"]


def test_category_order_recovered_before_improved_harmed_before_deteriorated():
    result = individual_change([30, 5], [5, 30], direction=WORSE, reliability=0.9, sd=5,
                               cutoff=Cutoff(15, ">="))
    assert [result.label(0), result.label(1)] == ["recovered", "harmed"]


def test_missing_values_and_single_pairs():
    result = individual_change([20, np.nan, 20], [10, 10, np.nan], direction=WORSE, points=6)
    assert [result.label(i) for i in range(3)] == ["improved", None, None]
    assert sum(result.counts().values()) == 1
    with pytest.raises(ChangeError, match="at least two scores"):
        individual_change([20], [10], direction=WORSE, reliability=0.8)  # sample SD of one
    single = individual_change([20], [10], direction=WORSE, reliability=0.8, sd=4)
    assert single.label(0) == "improved"


def test_constant_pre_scores_cannot_give_an_rci():
    with pytest.raises(ChangeError, match="SD of the pre scores is 0"):
        individual_change([10, 10, 10], [5, 6, 7], direction=WORSE, reliability=0.8)


def test_sources_are_reported():
    result = individual_change([10, 14, 18], [8, 12, 20], direction=WORSE, reliability=0.85)
    assert result.sd == pytest.approx(4.0)
    assert result.sd_source == "sample SD of pre scores (n = 3)"
    assert result.reliability_source == "given"


def test_nk_needs_post_reliability_and_methods_are_checked():
    with pytest.raises(ChangeError, match="post reliability"):
        individual_change([1, 5, 9], [2, 3, 4], direction=WORSE, reliability=0.8, method="nk")
    with pytest.raises(ChangeError, match="unknown method"):
        individual_change([1, 5, 9], [2, 3, 4], direction=WORSE, reliability=0.8,
                          method="xyz")


def test_cutoff_formulas():
    # Clinical 30 (SD 6), functional 10 (SD 4), higher is worse (d = -1).
    assert compute_cutoff("a", -1, clinical_mean=30, clinical_sd=6) == 18
    assert compute_cutoff("b", -1, clinical_mean=30, clinical_sd=6, functional_mean=10) == 22
    assert compute_cutoff("c", -1, clinical_mean=30, clinical_sd=6, functional_mean=10,
                          functional_sd=4) == pytest.approx((6 * 10 + 4 * 30) / 10)
    with pytest.raises(ChangeError, match="functional mean and SD"):
        compute_cutoff("c", -1, clinical_mean=30, clinical_sd=6)


def test_cronbach_alpha_known_value():
    # Three items, perfectly parallel except for one point: hand-computed alpha.
    items = np.array([[1, 1, 1], [2, 2, 2], [3, 3, 2], [4, 4, 4]], dtype=float)
    k = 3
    item_var = items.var(axis=0, ddof=1).sum()
    total_var = items.sum(axis=1).var(ddof=1)
    assert cronbach_alpha(items) == pytest.approx(k / (k - 1) * (1 - item_var / total_var))
    assert cronbach_alpha(np.vstack([items, [np.nan, 1, 1]])) == cronbach_alpha(items)


# --- NHS Talking Therapies -----------------------------------------------------------------

def tt(p1, p2, g1, g2, sessions=2, **kwargs):
    result = talking_therapies([p1], [p2], [g1], [g2], [sessions], **kwargs)
    return {k: bool(getattr(result, k)[0]) for k in (
        "assessed", "at_caseness", "recovered", "reliably_improved", "reliably_deteriorated",
        "reliably_recovered")}


def test_tt_reliable_recovery():
    assert tt(16, 8, 12, 6) == {"assessed": True, "at_caseness": True, "recovered": True,
                                "reliably_improved": True, "reliably_deteriorated": False,
                                "reliably_recovered": True}


def test_tt_recovery_needs_both_below_caseness_and_caseness_at_start():
    assert not tt(16, 9, 12, 8)["recovered"]  # GAD-7 8 is still caseness
    assert not tt(9, 3, 7, 2)["recovered"]  # never at caseness: recovery not assessed
    assert tt(10, 9, 5, 5)["recovered"] and not tt(10, 9, 5, 5)["reliably_recovered"]


def test_tt_boundaries_of_reliable_change():
    assert tt(15, 9, 5, 5)["reliably_improved"]  # PHQ-9 falls exactly 6
    assert not tt(15, 10, 5, 5)["reliably_improved"]  # falls 5
    assert tt(5, 5, 10, 6)["reliably_improved"]  # GAD-7 falls exactly 4
    assert tt(5, 11, 5, 5)["reliably_deteriorated"]


def test_tt_mixed_change_is_neither():
    mixed = tt(20, 12, 5, 10)  # PHQ-9 improves reliably, GAD-7 deteriorates reliably
    assert not mixed["reliably_improved"] and not mixed["reliably_deteriorated"]


def test_tt_needs_two_sessions_with_measures():
    assert tt(16, 8, 12, 6, sessions=1) == dict.fromkeys(
        ("assessed", "at_caseness", "recovered", "reliably_improved",
         "reliably_deteriorated", "reliably_recovered"), False)


def test_reliability_from_items_says_so():
    rng = np.random.default_rng(4)
    trait = rng.normal(0, 1, 200)
    items = trait[:, None] + rng.normal(0, 0.8, (200, 6))
    pre = items.sum(axis=1)
    post = pre - 3
    result = individual_change(pre, post, direction=WORSE, items_pre=items)
    assert result.reliability == pytest.approx(cronbach_alpha(items))
    assert result.reliability_source == ("Cronbach's alpha of the pre items "
                                         "(n = 200 complete administrations)")
    with pytest.raises(ChangeError, match="needs a reliability"):
        individual_change(pre, post, direction=WORSE)


def test_computed_cutoff_uses_the_samples_own_sd_not_a_norm_sd():
    # Review finding: with a norm SD for the RCI, cutoff a must still come from the sample.
    pre = np.array([15.0, 20, 25])  # mean 20, SD 5 -> a = 20 - 2 * 5 = 10
    result = individual_change(pre, pre - 8, direction=WORSE, reliability=0.8, sd=8,
                               cutoff_type="a")
    assert result.cutoff == pytest.approx(10)
