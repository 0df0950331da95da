"""Alliance ruptures and repair on hand-worked series (SRS-type: cutoff < 36, drop 1)."""

from __future__ import annotations

import numpy as np
import pytest

from outcome.core.alliance import OPEN
from outcome.core.alliance import POSSIBLE
from outcome.core.alliance import REPAIRED
from outcome.core.alliance import RUPTURE
from outcome.core.alliance import UNREPAIRED
from outcome.core.alliance import AllianceSettings
from outcome.core.alliance import between_client_sd
from outcome.core.alliance import detect_ruptures
from outcome.core.alliance import standard_error
from outcome.core.instruments import Cutoff

SRS = Cutoff(36, "<")
SETTINGS = AllianceSettings(drop_points=1.0, repair_window=2)


def run(series, **kwargs):
    settings = kwargs.pop("settings", SETTINGS)
    return detect_ruptures(np.array([series], dtype=float), cutoff=SRS, settings=settings,
                           **kwargs)


def test_absolute_rule_is_strict_below_36():
    result = run([36.0, 35.9, 38, 39])
    assert list(result.absolute[0]) == [False, True, False, False]


def test_drop_of_exactly_one_point_is_flagged():
    result = run([38.0, 37.0, 36.1, 36.1])
    assert list(result.drop[0]) == [False, True, False, False]  # 37 -> 36.1 is -0.9


def test_person_relative_needs_three_earlier_sessions():
    # Earlier 38, 39, 40: mean 39, SD 1. Possible rupture below 38, rupture below 37.
    result = run([38, 39, 40, 37.5])
    assert result.personal_mean[0, 3] == pytest.approx(39)
    assert result.personal_sd_used[0, 3] == pytest.approx(1)
    assert (result.possible[0, 3], result.rupture[0, 3]) == (True, False)
    result = run([38, 39, 40, 36.9])
    assert (result.possible[0, 3], result.rupture[0, 3]) == (True, True)
    assert not run([38, 39, 37.5]).possible.any()  # only two earlier sessions


def test_constant_series_uses_the_between_client_sd():
    # Personal SD 0: any dip would be a "rupture". With a between-client SD of 1.5 the
    # threshold for a possible rupture is 38 - 1.5 = 36.5.
    steady = [38, 38, 38, 37]
    assert run(steady, settings=AllianceSettings()).possible[0, 3]
    floored = run(steady, settings=AllianceSettings(between_client_sd=1.5))
    assert not floored.possible[0, 3]
    assert not run([38, 38, 38, 38]).start.any()  # a constant series has no rupture


def test_repaired_within_the_window():
    # Rupture at session 4 (drop of 5); personal mean before it is 38; session 5 is back.
    result = run([38, 38, 38, 33, 38.5, 38])
    assert result.start[0, 3] and result.status[0, 3] == REPAIRED
    assert result.repaired_at[0, 3] == 4
    assert list(result.count(REPAIRED)) == [1]


def test_unrepaired_after_the_window():
    result = run([38, 38, 38, 33, 34, 35, 37])
    assert result.status[0, 3] == UNREPAIRED
    assert list(result.count(UNREPAIRED)) == [1]
    assert result.start.sum() == 1  # one rupture, not one per low session


def test_open_while_the_window_runs():
    result = run([38, 38, 38, 33, 34])
    assert result.status[0, 3] == OPEN


def test_repair_with_no_earlier_session_means_leaving_the_clinical_range():
    result = run([33, 36.5, 37])
    assert result.status[0, 0] == REPAIRED


def test_discrepancy_with_the_therapists_rating():
    client = np.array([[38, 30, 37]], dtype=float)
    therapist = np.array([[38, 38, 37]], dtype=float)
    result = detect_ruptures(client, cutoff=SRS, therapist_scores=therapist,
                             settings=AllianceSettings(discrepancy_points=5))
    assert list(result.discrepancy[0]) == [False, True, False]


def test_many_episodes_at_once_with_padding():
    scores = np.array([[38, 38, 38, 33, 38.5, np.nan],
                       [38, 38, 38, 33, 34, 35],
                       [37, 37.5, np.nan, np.nan, np.nan, np.nan]])
    result = detect_ruptures(scores, cutoff=SRS, settings=SETTINGS)
    assert list(result.last) == [4, 5, 1]
    assert list(result.count(REPAIRED)) == [1, 0, 0]
    assert list(result.count(UNREPAIRED)) == [0, 1, 0]
    assert list(result.latest(result.absolute)) == [False, True, False]


def test_between_client_sd():
    assert between_client_sd(np.array([[36, 38], [38, 40], [np.nan, np.nan]])) == \
        pytest.approx(np.std([37, 39], ddof=1))


def test_one_decimal_boundaries_are_exact():
    # Review finding: 32.8 -> 31.8 is a drop of exactly 1 point (binary rounding aside).
    assert run([32.8, 31.8]).drop[0, 1]
    client = np.array([[31.8]])
    therapist = np.array([[36.8]])
    result = detect_ruptures(client, cutoff=SRS, therapist_scores=therapist,
                             settings=AllianceSettings(discrepancy_points=5))
    assert result.discrepancy[0, 0]


def test_the_sd_floor_before_a_refit():
    from outcome.core.alliance import default_min_sd

    floored = run([40, 40, 40, 39.9], settings=AllianceSettings(min_sd=default_min_sd(0, 40)))
    assert not floored.possible.any() and not floored.rupture.any()
    assert run([40, 40, 40, 38.5], settings=AllianceSettings(
        min_sd=default_min_sd(0, 40))).possible[0, 3]


# Possible rupture vs rupture (domain.md section 5, issue 15 finding 4).

def test_a_one_point_drop_alone_is_a_possible_rupture_only():
    # Earlier 37, 38, 39, 38.5: mean 38.125, own SD 0.85, floored at an SEM of 1: 37.5
    # is not below 38.125 - 1, so only the drop rule (38.5 -> 37.5) holds.
    settings = AllianceSettings(drop_points=1.0, sem=1.0)
    result = run([37, 38, 39, 38.5, 37.5], settings=settings)
    assert result.drop[0, 4] and not result.possible[0, 4] and not result.rupture[0, 4]
    assert list(result.kind[0]) == [0, 0, 0, 0, POSSIBLE]
    assert list(result.ruptures) == [0] and list(result.possible_ruptures) == [1]
    # With too little history for the person-relative rule, a drop is possible too.
    assert list(run([39, 38]).kind[0]) == [0, POSSIBLE]


def test_person_relative_k1_is_possible_and_k2_a_rupture():
    # Earlier 38, 39, 40: mean 39, SD 1. 37.5 is below 39 - 1 (k = 1) only; 36.9 is
    # below 39 - 2 (k = 2). Both are drops as well; neither is below the cutoff.
    assert run([38, 39, 40, 37.5]).kind[0, 3] == POSSIBLE
    assert run([38, 39, 40, 36.9]).kind[0, 3] == RUPTURE
    # Exactly at mean - 2s is not below it.
    assert run([38, 39, 40, 37.0]).kind[0, 3] == POSSIBLE


def test_absolute_and_discrepancy_are_ruptures():
    assert list(run([38, 35.5]).kind[0]) == [0, RUPTURE]  # newly below the cutoff
    assert list(run([35]).kind[0]) == [RUPTURE]  # below the cutoff at intake
    assert list(run([35, 34]).kind[0]) == [RUPTURE, 0]  # still below: the same rupture
    result = detect_ruptures(np.array([[38, 37.5]]), cutoff=SRS,
                             therapist_scores=np.array([[38, 39]]),
                             settings=AllianceSettings(discrepancy_points=1.5))
    assert list(result.kind[0]) == [0, RUPTURE]


def test_a_possible_rupture_that_deepens_becomes_a_rupture():
    # 38.5 drops 1.5 (possible); 36.2 is below mean 38.875 - 2 * 0.854 (rupture).
    result = run([38, 39, 40, 38.5, 36.2])
    assert list(result.kind[0]) == [0, 0, 0, POSSIBLE, RUPTURE]


def test_own_sd_is_floored_at_the_standard_error_of_measurement():
    sem = standard_error(4.0, 0.84)
    assert sem == pytest.approx(1.6)
    assert standard_error(None, 0.84) is None and standard_error(4.0, None) is None
    settings = AllianceSettings(drop_points=1.0, sem=sem, between_client_sd=3.0, min_sd=1.0)
    steady = run([38, 38.5, 39, 38.5], settings=settings)  # own SD 0.41 -> the SEM
    assert steady.personal_sd_used[0, 3] == pytest.approx(1.6)
    noisy = run([34, 38, 40, 36], settings=settings)  # own SD 3.06 is larger
    assert noisy.personal_sd_used[0, 3] == pytest.approx(np.std([34, 38, 40], ddof=1))
    # Without an SEM the between-client SD is the floor (Gumz et al. 2012), and
    # before a clinic fit the last-resort floor.
    assert run([38, 38.5, 39, 38.5], settings=AllianceSettings(
        between_client_sd=3.0, min_sd=1.0)).personal_sd_used[0, 3] == pytest.approx(3.0)
    assert run([38, 38.5, 39, 38.5], settings=AllianceSettings(
        min_sd=1.0)).personal_sd_used[0, 3] == pytest.approx(1.0)
    degenerate = AllianceSettings(between_client_sd=0.0, min_sd=1.0)  # a fit of one client
    assert run([38, 38, 38, 37.5], settings=degenerate).personal_sd_used[0, 3] == 1.0


def test_repair_is_within_half_an_sd_of_the_personal_mean():
    # Finding: 36.6 against a personal mean of 36.77 stayed unrepaired. With s = 0.5
    # the repair level is 36.77 - 0.25 = 36.52. No cutoff, so only the mean counts.
    settings = AllianceSettings(sem=0.5)
    series = [36.77, 36.77, 36.77, 35.5]
    result = detect_ruptures(np.array([[*series, 36.6]]), cutoff=None, settings=settings)
    assert result.kind[0, 3] == RUPTURE and result.personal_sd_used[0, 3] == 0.5
    assert result.status[0, 3] == REPAIRED and result.repaired_at[0, 3] == 4
    short = detect_ruptures(np.array([[*series, 36.5, 36.5]]), cutoff=None,
                            settings=settings)
    assert short.status[0, 3] == UNREPAIRED  # 36.5 < 36.52 twice: not repaired


def test_repair_at_or_above_the_cutoff():
    # Mean 39, s 1: the repair level is 38.5; 36 (at the cutoff) repairs all the same.
    result = run([38, 39, 40, 35.9, 36.0])
    assert result.kind[0, 3] == RUPTURE and result.status[0, 3] == REPAIRED


def test_unrepaired_possible_ruptures_are_not_unrepaired_ruptures():
    # Mean 39, s 1: back means 38.5 or more (no cutoff here, so only the mean counts).
    result = detect_ruptures(np.array([[38, 39, 40, 37.5, 37.6, 37.7]]), cutoff=None,
                             settings=AllianceSettings(drop_points=1.0, sem=0.5))
    assert result.kind[0, 3] == POSSIBLE and result.status[0, 3] == UNREPAIRED
    assert list(result.count(UNREPAIRED)) == [0]
    assert list(result.count(UNREPAIRED, POSSIBLE)) == [1]


def test_a_definition_with_norm_sd_and_reliability_floors_s_at_its_sem(tmp_path):
    from pathlib import Path

    from outcome.core.signals import alliance_settings
    from questionnaires.loader import BUILTIN_DIR
    from questionnaires.loader import DefinitionError
    from questionnaires.loader import load_definition

    text = Path(BUILTIN_DIR, "srs_vas.yaml").read_text()
    assert "  drop_points: 1\n" in text
    norms = "  drop_points: 1\n  sd: 4.0\n  reliability: 0.84\n  norms_source: a test\n"
    path = tmp_path / "srs_norms.yaml"
    path.write_text(text.replace("  drop_points: 1\n", norms))
    instrument = load_definition(path)
    assert alliance_settings(instrument).sem == pytest.approx(1.6)  # 4 * sqrt(.16)
    builtin = load_definition(Path(BUILTIN_DIR, "srs_vas.yaml"))
    assert alliance_settings(builtin).sem is None  # no published SD: Gumz floor instead
    assert alliance_settings(builtin).min_sd == pytest.approx(1.0)
    path.write_text(text.replace("  drop_points: 1\n", "  drop_points: 1\n  reliability: 1.2\n"))
    with pytest.raises(DefinitionError, match=r"alliance\.reliability"):
        load_definition(path)
