"""Known-answer tests for every built-in instrument, computed by hand.

Each case states the answers and the expected numbers; prorating cases show the
arithmetic (sum x N / answered, rounded half-up) in a comment.
"""

from __future__ import annotations

import math

import pytest

from outcome.core.answers import Answers
from outcome.core.answers import parse_answers
from outcome.core.scoring import score_answers
from questionnaires.loader import builtin_library

LIB = builtin_library()


def scored(instrument_id: str, values: dict, **kwargs):
    instrument = LIB.get(instrument_id)
    answers = parse_answers(instrument, values, **kwargs)
    assert isinstance(answers, Answers), answers
    return score_answers(instrument, answers)


def items(prefix: str, values: list, start: int = 1) -> dict:
    return {f"{prefix}_{i}": v for i, v in enumerate(values, start=start) if v is not None}


# --- PHQ-9 -------------------------------------------------------------------------------

@pytest.mark.parametrize(("answers", "total", "band"), [
    ([0] * 9, 0, "minimal"),
    ([1, 1, 1, 1, 0, 0, 0, 0, 0], 4, "minimal"),
    ([1, 1, 1, 1, 1, 0, 0, 0, 0], 5, "mild"),
    ([1] * 9, 9, "mild"),
    ([2, 1, 1, 1, 1, 1, 1, 1, 1], 10, "moderate"),
    ([2, 2, 2, 2, 2, 1, 1, 1, 1], 14, "moderate"),
    ([2, 2, 2, 2, 2, 2, 1, 1, 1], 15, "moderately severe"),
    ([3, 3, 3, 2, 2, 2, 2, 1, 1], 19, "moderately severe"),
    ([3, 3, 3, 3, 2, 2, 2, 1, 1], 20, "severe"),
    ([3] * 9, 27, "severe"),
])
def test_phq9_totals_and_every_band_edge(answers, total, band):
    result = scored("phq9", items("phq9", answers))
    assert (result.total, result.band, result.is_valid, result.is_prorated) == (
        total, band, True, False)


@pytest.mark.parametrize(("answers", "total", "band"), [
    ([3, 2, 3, 2, 1, 2, 2, 2, None], 19, "moderately severe"),  # 17 * 9/8 = 19.125 -> 19
    ([1, 1, 1, 1, 0, 0, 0, None, 0], 5, "mild"),  # 4 * 9/8 = 4.5 -> 5 (half up)
    ([2, 2, 2, 2, 2, 1, 1, None, 0], 14, "moderate"),  # 12 * 9/8 = 13.5 -> 14
    ([1, 1, 1, 0, 0, 0, 0, None, 0], 3, "minimal"),  # 3 * 9/8 = 3.375 -> 3
])
def test_phq9_prorates_one_missing_item(answers, total, band):
    result = scored("phq9", items("phq9", answers))
    assert (result.total, result.band, result.is_prorated, result.n_missing) == (
        total, band, True, 1)


def test_phq9_two_missing_items_are_invalid_never_zero():
    values = items("phq9", [1, 1, 1, 1, 1, 1, 1, None, None])
    instrument = LIB.get("phq9")
    errors = parse_answers(instrument, values)
    assert [(e.item, e.code) for e in errors] == [("phq9_8", "missing"), ("phq9_9", "missing")]
    result = scored("phq9", values, allow_incomplete=True)
    assert result.total is None and not result.is_valid and result.band is None
    assert result.critical_unanswered == ("phq9_9",)


def test_phq9_item_9_is_critical_at_1_and_unanswered_is_flagged():
    assert scored("phq9", items("phq9", [0] * 8 + [1])).critical_items == ("phq9_9",)
    assert scored("phq9", items("phq9", [3] * 8 + [0])).critical_items == ()
    unanswered = scored("phq9", items("phq9", [0] * 8 + [None]))
    assert unanswered.critical_items == () and unanswered.critical_unanswered == ("phq9_9",)
    assert unanswered.total == 0  # 0 * 9/8, prorated; item 9 was not read as 0


def test_phq9_difficulty_item_is_not_scored():
    result = scored("phq9", items("phq9", [0] * 9 + [3]))
    assert result.total == 0


# --- GAD-7 -------------------------------------------------------------------------------

@pytest.mark.parametrize(("answers", "total", "band"), [
    ([0] * 7, 0, "minimal"),
    ([1, 1, 1, 1, 0, 0, 0], 4, "minimal"),
    ([1, 1, 1, 1, 1, 0, 0], 5, "mild"),
    ([2, 2, 2, 1, 1, 1, 1], 10, "moderate"),
    ([3, 2, 2, 2, 2, 2, 2], 15, "severe"),
    ([3] * 7, 21, "severe"),
    ([1, 1, 1, 1, 1, 2, None], 8, "mild"),  # 7 * 7/6 = 8.17 -> 8
    ([1, 1, 1, 0, 0, 0, None], 4, "minimal"),  # 3 * 7/6 = 3.5 -> 4 (half up)
])
def test_gad7(answers, total, band):
    result = scored("gad7", items("gad7", answers))
    assert (result.total, result.band) == (total, band)


# --- PCL-5 -------------------------------------------------------------------------------

def test_pcl5_clusters_and_provisional_diagnosis():
    # Endorsed (>= 2): B item 1, C item 6, D items 8 and 9, E items 15 and 16; rest at 1.
    answers = [1] * 20
    for item in (1, 6, 8, 9, 15, 16):
        answers[item - 1] = 2
    result = scored("pcl5", items("pcl5", answers))
    assert result.total == 26
    assert result.subscales == {"B": 6, "C": 3, "D": 9, "E": 8}
    assert result.rules == {"dsm5_provisional": True}
    answers[8] = 1  # D now has one endorsed item: the rule fails
    assert scored("pcl5", items("pcl5", answers)).rules == {"dsm5_provisional": False}


def test_pcl5_range():
    assert scored("pcl5", items("pcl5", [4] * 20)).total == 80
    assert scored("pcl5", items("pcl5", [0] * 20)).rules == {"dsm5_provisional": False}


# --- WHO-5 (higher is better; index = raw x 4) -----------------------------------------

@pytest.mark.parametrize(("answers", "raw", "index", "band"), [
    ([5] * 5, 25, 100, "adequate well-being"),
    ([3, 3, 2, 2, 3], 13, 52, "adequate well-being"),
    ([3, 3, 2, 2, 2], 12, 48, "poor well-being"),
    ([1, 1, 1, 2, 2], 7, 28, "likely depression"),
    ([0] * 5, 0, 0, "likely depression"),
])
def test_who5_index(answers, raw, index, band):
    result = scored("who5", items("who5", answers))
    assert (result.total, result.transformed, result.primary, result.band) == (
        raw, index, index, band)
    instrument = LIB.get("who5")
    assert instrument.cutoff.is_clinical(result.primary) == (index <= 50)


# --- K10 (PMHC prorating: one missing, sum / 9 x 10) -------------------------------------

@pytest.mark.parametrize(("answers", "total", "band"), [
    ([1] * 10, 10, "likely to be well"),
    ([2] * 10, 20, "mild"),
    ([5] * 10, 50, "severe"),
    ([3] * 9 + [None], 30, "severe"),  # 27 * 10/9 = 30
    ([2, 2, 2, 2, 3, 3, 3, 3, 2, None], 24, "mild"),  # 22 * 10/9 = 24.4 -> 24
    ([3, 3, 3, 3, 3, 3, 3, 3, 2, None], 29, "moderate"),  # 26 * 10/9 = 28.9 -> 29
])
def test_k10(answers, total, band):
    result = scored("k10", items("k10", answers))
    assert (result.total, result.band) == (total, band)


# --- OQ-45.2 (reverse keys 1, 12, 13, 20, 21, 24, 31, 37, 43) ---------------------------

def test_oq45_reverse_keys():
    reverse = {1, 12, 13, 20, 21, 24, 31, 37, 43}
    assert scored("oq45", items("oq45", [0] * 45)).total == 4 * len(reverse)  # 36
    assert scored("oq45", items("oq45", [4] * 45)).total == 4 * (45 - len(reverse))  # 144
    answers = [4 if i in reverse else 0 for i in range(1, 46)]
    assert scored("oq45", items("oq45", answers)).total == 0
    answers = [0 if i in reverse else 4 for i in range(1, 46)]
    assert scored("oq45", items("oq45", answers)).total == 180


# --- GBO (mean of the goals rated, one decimal) ------------------------------------------

@pytest.mark.parametrize(("answers", "mean"), [
    ([3, 6, None], 4.5),
    ([7, 8, 8], 7.7),  # 23/3 = 7.67 -> 7.7
    ([2, 3, 3], 2.7),  # 8/3 = 2.67 -> 2.7
    ([4, None, None], 4.0),
    ([10, 10, 9], 9.7),  # 29/3 = 9.67
])
def test_gbo_mean(answers, mean):
    result = scored("gbo", items("gbo", answers))
    assert result.total == mean


def test_gbo_with_no_goal_rated_is_invalid():
    errors = parse_answers(LIB.get("gbo"), {})
    assert [e.code for e in errors] == ["missing"] * 3


# --- WAI-SR (mean, two decimals, three subscales) ----------------------------------------

def test_wai_sr_mean_and_subscales():
    # Task 1, 2, 10, 12; Bond 3, 5, 7, 9; Goal 4, 6, 8, 11.
    answers = {1: 5, 2: 4, 3: 5, 4: 3, 5: 5, 6: 3, 7: 4, 8: 3, 9: 5, 10: 4, 11: 2, 12: 3}
    result = scored("wai_sr", {f"wai_sr_{k}": v for k, v in answers.items()})
    assert result.total == 3.83  # 46/12 = 3.8333
    assert result.subscales == {"task": 4.0, "bond": 4.75, "goal": 2.75}


# --- VAS measures -------------------------------------------------------------------------

def test_srs_vas_sums_tenths_exactly():
    result = scored("srs_vas", items("srs", [9.5, 9.0, 8.7, 9.1]))
    assert result.total == 36.3
    assert not LIB.get("srs_vas").cutoff.is_clinical(result.total)
    low = scored("srs_vas", items("srs", ["8.0", "9", "9.0", "9.9"]))
    assert low.total == 35.9 and LIB.get("srs_vas").cutoff.is_clinical(low.total)


def test_ors_vas():
    result = scored("ors_vas", items("ors", [5.5, 6.0, 7.2, 5.0]))
    assert math.isclose(result.total, 23.7)
    assert LIB.get("ors_vas").cutoff.is_clinical(result.total)


def test_cutoff_sides():
    phq = LIB.get("phq9").cutoff
    assert phq.is_clinical(10) and not phq.is_clinical(9)
    assert not phq.is_clinical(float("nan"))
