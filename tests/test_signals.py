"""Signals explain themselves: rule, numbers, plain words."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from outcome.core.signals import alliance_settings
from outcome.core.signals import alliance_signals
from outcome.core.signals import change_markers
from outcome.core.signals import explain_critical
from outcome.core.signals import explain_unanswered_critical
from outcome.core.signals import first_and_last
from outcome.core.signals import outcome_signals
from outcome.core.signals import reliable_change_rule
from outcome.core.trajectory import fit_trajectory
from outcome.services.explanations import render_explanation
from questionnaires.loader import builtin_library

LIB = builtin_library()
PHQ = LIB.get("phq9")
NAN = np.nan


def text(explanation):
    """The explanation's sentence in English, as pages and PDFs show it."""
    return render_explanation(explanation.as_json(), "en")


def series(rows):
    width = max(len(r) for r in rows)
    scores = np.array([r + [NAN] * (width - len(r)) for r in rows], dtype=float)
    sessions = np.tile(np.arange(1, width + 1), (len(rows), 1))
    return scores, sessions


def test_first_and_last_skip_missing_scores():
    scores, sessions = series([[NAN, 14, 12, NAN], [20], [NAN]])
    intake, latest, session, count = first_and_last(scores, sessions)
    assert list(intake[:2]) == [14, 20] and np.isnan(intake[2])
    # Sessions count valid scores: the intake (14) is session 1, so 12 is session 2.
    assert list(latest[:2]) == [12, 20] and list(session) == [2, 1, 0]
    assert list(count) == [2, 1, 0]


def test_rational_red_explains_itself():
    scores, sessions = series([[12, 14, 16, 19]])
    signals = outcome_signals(PHQ, scores, sessions)
    progress = signals.explain_progress(0)
    assert progress.level == "red" and progress.rule == \
        "progress.reliable_deterioration_since_intake"
    assert text(progress).startswith("Red: PHQ-9 19 at session 4, 12 at intake: worse by 7 "
                                    "points; reliable change is 6 points, NHS Talking Therapies")
    assert "Rule-based colours: the clinic has 0 of the 50 completed episodes" in text(progress)
    assert progress.numbers["default_expectations"] is True
    change = signals.explain_change(0)
    assert change.level == "deteriorated"
    assert text(change) == ("Deteriorated: PHQ-9 from 12 to 19 (+7); reliable change is 6 "
                           "points, NHS Talking Therapies; clinical range >= 10.")


def test_recovered_and_white():
    scores, sessions = series([[18, 14, 11, 8]])
    signals = outcome_signals(PHQ, scores, sessions)
    assert signals.explain_progress(0).level == "white"
    assert "functional range" in text(signals.explain_progress(0))
    assert signals.explain_change(0).level == "recovered"


def test_empirical_yellow_names_expected_percentile_and_sample():
    rng = np.random.default_rng(1)
    ep, t, y = [], [], []
    for e in range(80):
        x0 = rng.uniform(12, 22)
        for s in range(1, 9):
            ep.append(e)
            t.append(s)
            y.append(x0 - 0.8 * np.log(s) * x0 / 4 + (rng.normal(0, 1.5) if s > 1 else 0))
    model = fit_trajectory("phq9", "higher_is_worse", np.array(ep), np.array(t), np.array(y),
                           now=dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
    expected = float(model.expected(np.array([20.0]), np.array([6]))[0])
    band_edge = np.interp(0.85, np.arange(1, 100) / 100, model.quantiles[4])
    scores, sessions = series([[20, 19, 18, 18, 17, round(expected + band_edge, 1)]])
    signals = outcome_signals(PHQ, scores, sessions, model=model)
    progress = signals.explain_progress(0)
    assert progress.level == "yellow"
    assert progress.numbers["sample_size"] == 80
    assert 0.75 < progress.numbers["percentile"] <= 0.90
    assert "worse than 8" in text(progress) and "curve from 80 completed episodes" in \
        text(progress)
    assert progress.numbers["default_expectations"] is False


def test_reliable_change_rule_sources():
    assert reliable_change_rule(PHQ).source == "6 points, NHS Talking Therapies"
    k10 = LIB.get("k10")
    assert reliable_change_rule(k10) is None  # no SD anywhere yet
    rule = reliable_change_rule(k10, intake_sd=7.0, n_intake=120)
    assert rule.threshold == pytest.approx(1.96 * np.sqrt(2) * 7 * np.sqrt(0.07))
    assert "clinic's intake SD 7 (n = 120)" in rule.source and "(unverified)" in rule.source


def test_alliance_explanations():
    srs = LIB.get("srs_vas")
    scores, sessions = series([[38, 38, 38, 33, 38.5], [38, 38, 38, 33, 34, 35]])
    signals = alliance_signals(srs, scores, sessions)
    [repaired] = signals.explain(0)
    assert repaired.level == "repaired"
    # Own SD 0, floored at 1 point before a clinic fit: the text says so.
    assert text(repaired) == ("Rupture at session 4: SRS-type 33; 5 below the personal mean "
                             "38; more than 2 x 1 (the least SD the rule uses; the "
                             "client's own is smaller); down 5 from 38 last session; below "
                             "36. Repaired at session 5 (38.5).")
    [unrepaired] = signals.explain(1)
    assert unrepaired.level == "unrepaired" and "supervisor's attention" in text(unrepaired)
    # A possible rupture beyond the client's own SD; a discrepancy names both ratings.
    scores, sessions = series([[38, 39, 40, 37.5]])
    [possible] = alliance_signals(srs, scores, sessions).explain(0)
    assert possible.level == "possible" and possible.numbers["kind"] == "possible_rupture"
    assert text(possible) == ("Possible rupture at session 4: SRS-type 37.5; 1.5 below the "
                              "personal mean 39; more than 1 x the client's own SD 1; down "
                              "2.5 from 40 last session. Shown, not alerted: watch the "
                              "next sessions.")
    scores, sessions = series([[38, 37.5]])
    gap = alliance_signals(srs, scores, sessions, therapist_scores=np.array([[38, 43]]),
                           settings=alliance_settings(srs, discrepancy_points=5))
    [noticed] = gap.explain(0)
    assert noticed.numbers["kind"] == "rupture" and noticed.numbers["therapist"] == 43
    assert "the therapist rated the session 5.5 higher (43)" in text(noticed)


def test_critical_explanations_carry_no_more_than_needed():
    critical = explain_critical(PHQ, "phq9_9", 2)
    assert critical.level == "urgent"
    assert text(critical).endswith("Answer: 2 (More than half the days).")
    unanswered = explain_unanswered_critical(PHQ, "phq9_9")
    assert "left unanswered" in text(unanswered)


def test_explanations_are_strict_json_even_without_a_valid_score():
    import json

    scores, sessions = series([[NAN, NAN]])
    progress = outcome_signals(PHQ, scores, sessions).explain_progress(0)
    stored = json.dumps(progress.as_json(), allow_nan=False)  # raises on NaN
    assert '"intake": null' in stored


def test_change_markers_mark_each_session_against_intake():
    # PHQ-9: reliable change is 6 points inclusive (NHS Talking Therapies), caseness >= 10.
    scores = [18, 14, 12, NAN, 8, 24, 25]
    marks = change_markers(PHQ, np.array(scores, dtype=float))
    # 18 -> 12 is exactly 6 (inclusive): improved; 8 is also below the cutoff: recovered.
    # 24 is worse by 6 (deteriorated); 25 is worse by 7.
    assert marks == [None, None, "improved", None, "recovered", "deteriorated",
                     "deteriorated"]


def test_change_markers_need_a_rule_and_an_intake():
    assert change_markers(PHQ, np.array([NAN, NAN], dtype=float)) == [None, None]
    wai = LIB.get("wai_sr")
    if wai.reliable_change is None:
        assert change_markers(wai, np.array([40, 20], dtype=float)) == [None, None]


def test_little_improvement_wording_says_worse_when_worse():
    # PHQ-9 18 -> 21 at session 4: in the clinical range, not reliably worse (3 < 6),
    # short of the expected 3 points (half of 6): yellow under rule-based colours.
    scores, sessions = series([[18, 20, 20, 21], [18, 17, 16, 15]])
    signals = outcome_signals(PHQ, scores, sessions)
    worse, better = signals.explain_progress(0), signals.explain_progress(1)
    assert "worse by 3 points" in text(worse) and "improved by -" not in text(worse)
    assert "improved by 3 points" not in text(better)  # 3 reaches the expected 3
    assert "an improvement of 3 points is expected (50 % of the reliable change of 6)" in (
        text(worse))
