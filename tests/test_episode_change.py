"""An episode's change: the primary measure's category, or the NHS Talking Therapies
paired result (domain.md section 3). Pure core: no database."""

from __future__ import annotations

import pytest

from outcome.core.episode_change import ANXIETY_MEASURES
from outcome.core.episode_change import MeasureReading
from outcome.core.episode_change import anxiety_measure
from outcome.core.episode_change import episode_change
from outcome.core.episode_change import primary_measure
from outcome.services.explanations import render_explanation as render

NAMES = {"phq9": "PHQ-9", "gad7": "GAD-7", "who5": "WHO-5"}


def phq(first: float, last: float, count: int = 6, category: str | None = None
        ) -> MeasureReading:
    return MeasureReading("phq9", "PHQ-9", first, last, count, category, 10, 6)


def gad(first: float, last: float, count: int = 6, category: str | None = None
        ) -> MeasureReading:
    return MeasureReading("gad7", "GAD-7", first, last, count, category, 8, 4)


def both(p: MeasureReading, g: MeasureReading) -> dict[str, MeasureReading]:
    return {"phq9": p, "gad7": g}


def test_primary_measure_is_the_episodes_choice_else_the_clinics():
    assert primary_measure(None, "phq9") == "phq9"
    assert primary_measure("who5", "phq9") == "who5"


def test_without_paired_rules_the_primary_measures_category_is_the_episodes():
    # Finding 1: PHQ-9 recovered, GAD-7 (alphabetically first) unchanged. The episode is
    # PHQ-9's, and says so.
    result = episode_change("phq9", both(phq(18, 6, category="recovered"),
                                         gad(9, 8, category="unchanged")),
                            paired_rules=False)
    assert (result.category, result.measure, result.pair) == ("recovered", "phq9", None)
    assert render(result.label(NAMES).as_json(), "en") == "PHQ-9"


def test_the_therapists_primary_measure_wins_over_the_clinics():
    measures = {**both(phq(18, 6, category="recovered"), gad(9, 8, category="unchanged")),
                "who5": MeasureReading("who5", "WHO-5", 40, 44, 5, "unchanged")}
    result = episode_change(primary_measure("who5", "phq9"), measures, paired_rules=True)
    assert (result.category, result.measure, result.pair) == ("unchanged", "who5", None)


def test_no_primary_measure_scores_no_category():
    result = episode_change("phq9", {"gad7": gad(15, 3, category="recovered")},
                            paired_rules=False)
    assert result.category is None and result.measure == "phq9"


@pytest.mark.parametrize(("p", "g", "category", "flags"), [
    # Reliable recovery: a case, both below caseness at the end, PHQ-9 down 6.
    ((15, 8), (9, 7), "recovered", {"recovered": True, "reliably_improved": True}),
    # Reliable improvement on GAD-7 alone (down 4), PHQ-9 still a case: improved.
    ((15, 14), (12, 8), "improved", {"recovered": False, "reliably_improved": True}),
    # Recovery without reliable improvement: not "recovered"; no reliable change.
    ((11, 9), (9, 7), "unchanged", {"recovered": True, "reliably_improved": False}),
    # PHQ-9 rises 6: deteriorated (the paired rules have no "harmed").
    ((4, 10), (3, 3), "deteriorated", {"reliably_deteriorated": True, "at_caseness": False}),
    # One improves reliably, the other deteriorates: neither counts.
    ((18, 12), (5, 9), "unchanged", {"reliably_improved": False,
                                     "reliably_deteriorated": False}),
    # Not a case at the start: recovery not assessed, improvement still is.
    ((9, 2), (7, 2), "improved", {"at_caseness": False, "recovered": False}),
    # Thresholds are inclusive: GAD-7 down exactly 4, PHQ-9 exactly 10 at the start.
    ((10, 9), (8, 4), "recovered", {"at_caseness": True, "recovered": True,
                                   "reliably_recovered": True}),
])
def test_paired_rules(p, g, category, flags):
    result = episode_change("phq9", both(phq(*p, category="unchanged"),
                                         gad(*g, category="unchanged")), paired_rules=True)
    assert result.category == category
    assert result.pair == ("phq9", "gad7") and result.stand_in_for is None
    assert result.paired is not None
    for name, value in flags.items():
        assert result.paired[name] is value, name
    assert render(result.label(NAMES).as_json(), "en") == "PHQ-9 + GAD-7, NHS Talking Therapies"


def test_paired_explanation_names_both_measures_and_why():
    result = episode_change("phq9", both(phq(11, 9), gad(9, 7)), paired_rules=True)
    assert result.explanation is not None
    text = render(result.explanation.as_json(), "en")
    # The category's own words belong to the wording of change.category.* (not tested here).
    assert text.endswith(
        " by the NHS Talking Therapies paired rules: PHQ-9 from 11 to 9 (-2), GAD-7 from 9 "
        "to 7 (-2); below caseness on both measures at the end (recovery), but without "
        "reliable improvement.")


def test_paired_rules_need_two_sessions_of_each_half():
    result = episode_change("phq9", both(phq(15, 8, category="improved"), gad(9, 9, count=1)),
                            paired_rules=True)
    assert (result.category, result.pair) == ("improved", None)


def test_paired_rules_only_when_phq9_is_primary():
    measures = {**both(phq(15, 8), gad(9, 7)),
                "who5": MeasureReading("who5", "WHO-5", 40, 44, 5, "unchanged")}
    result = episode_change("who5", measures, paired_rules=True)
    assert (result.category, result.pair) == ("unchanged", None)


def test_descriptors_choose_the_anxiety_measure():
    installed = frozenset({"phq9", "gad7", "spin"})
    assert anxiety_measure(None, installed) == ("gad7", None)
    for descriptor in ("depression", "generalised_anxiety", "mixed", "none"):
        assert anxiety_measure(descriptor, installed) == ("gad7", None)
    assert anxiety_measure("social_anxiety", installed) == ("spin", None)
    # Not installed: GAD-7 stands in, and says for which. PCL-5 is no stand-in for IES-R.
    assert anxiety_measure("ptsd", installed | {"pcl5"}) == ("gad7", "iesr")
    expected = {"agoraphobia": "mi", "panic": "pdss", "ocd": "oci", "health_anxiety": "hai",
                "social_anxiety": "spin", "ptsd": "iesr"}
    for descriptor, wanted in expected.items():
        assert ANXIETY_MEASURES[descriptor] == wanted
        assert anxiety_measure(descriptor, frozenset({"phq9", "gad7"})) == ("gad7", wanted)


def test_gad7_standing_in_says_so():
    result = episode_change("phq9", both(phq(15, 8), gad(9, 7)), paired_rules=True,
                            descriptor="social_anxiety", installed=frozenset({"phq9", "gad7"}))
    assert result.category == "recovered" and result.stand_in_for == "spin"
    assert render(result.label(NAMES).as_json(), "en") == (
        "PHQ-9 + GAD-7, NHS Talking Therapies; GAD-7 standing in for SPIN")
    assert result.explanation is not None
    assert "GAD-7 stands in for SPIN, which is not installed" in render(
        result.explanation.as_json(), "en")
    assert result.as_json(NAMES)["stand_in"] is True


def test_an_installed_disorder_specific_measure_is_the_anxiety_half():
    spin = MeasureReading("spin", "SPIN", 40, 20, 6, "recovered", 19, 10)
    measures = {"phq9": phq(12, 11), "gad7": gad(9, 9), "spin": spin}
    result = episode_change("phq9", measures, paired_rules=True, descriptor="social_anxiety",
                            installed=frozenset({"phq9", "gad7", "spin"}))
    # SPIN falls 20 (reliable at 10), PHQ-9 ends 11 (still a case): improved, not recovered.
    assert (result.category, result.pair, result.stand_in_for) == (
        "improved", ("phq9", "spin"), None)
    # Installed but not given: no pair, the primary measure decides.
    result = episode_change("phq9", {"phq9": phq(12, 11, category="unchanged"),
                                     "gad7": gad(9, 2)}, paired_rules=True,
                            descriptor="social_anxiety",
                            installed=frozenset({"phq9", "gad7", "spin"}))
    assert (result.category, result.pair) == ("unchanged", None)


def test_russian_labels_render():
    result = episode_change("phq9", both(phq(15, 8), gad(9, 7)), paired_rules=True,
                            descriptor="ptsd", installed=frozenset({"phq9", "gad7"}))
    assert result.explanation is not None
    assert "вместо IES-R" in render(result.label(NAMES).as_json(), "ru")
    assert "NHS Talking Therapies" in render(result.explanation.as_json(), "ru")


def test_thresholds_come_from_the_definitions():
    # A clinic overlay with PHQ-9 caseness 12: 11 at the start is no case.
    strict = MeasureReading("phq9", "PHQ-9", 11, 9, 6, None, 12, 6)
    result = episode_change("phq9", both(strict, gad(7, 7)), paired_rules=True)
    assert result.paired is not None and result.paired["at_caseness"] is False
    # Without thresholds in the definition, the programme's published ones.
    bare = MeasureReading("phq9", "PHQ-9", 11, 9, 6, None)
    result = episode_change("phq9", both(bare, gad(7, 7)), paired_rules=True)
    assert result.paired is not None and result.paired["at_caseness"] is True
