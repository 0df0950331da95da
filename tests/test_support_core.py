"""Reading a support check (issue 19): each domain against its rule, explained with its
numbers and source; unmeasured domains said so; suggestions for flagged domains,
"formulation" when none is flagged, "risk" when a critical item is endorsed; and the
battery a check asks.

Sources: ../shared/design/support.md; questionnaires/support/rules.yaml (each rule's own
source, pinned in tests/test_support_rules.py).
"""

from __future__ import annotations

import pytest

from outcome.core.instruments import Cutoff
from outcome.core.support import DOMAINS
from outcome.core.support import check_battery
from outcome.core.support import read_check
from outcome.services.explanations import render
from questionnaires.loader import builtin_library
from questionnaires.support import load_rules

RULES = load_rules()
LIB = builtin_library()
OUT_OF_THE_BOX = {"phq9", "gad7", "pcl5", "session_check", "readiness_check",
                  "support_people_check", "life_events_check"}
NAMES = {i.id: i.short_name for i in LIB}
COUNTS = {i.id: len(i.items) for i in LIB} | {"osss3": 3}


def _text(message, locale="en"):
    return render(message.id, message.as_json()["params"], locale)


def _scores(**totals):
    return {k: {"total": v} for k, v in totals.items()}


# --- the battery -------------------------------------------------------------------------


def test_out_of_the_box_the_check_asks_every_domain_in_order():
    battery = check_battery(RULES, OUT_OF_THE_BOX, "session_check", False, COUNTS)
    assert battery == [
        {"domain": "alliance", "instrument": "session_check"},
        {"domain": "motivation", "instrument": "readiness_check"},
        {"domain": "social_support", "instrument": "support_people_check"},
        {"domain": "life_events", "instrument": "life_events_check"},
    ]
    assert sum(COUNTS[b["instrument"]] for b in battery) == 14


def test_a_reused_alliance_is_not_asked():
    """support.md: use the episode's own alliance series where it exists; ask only what
    is missing."""
    battery = check_battery(RULES, OUT_OF_THE_BOX, "session_check", True)
    assert [b["domain"] for b in battery] == ["motivation", "social_support", "life_events"]


def test_the_clinics_alliance_measure_comes_first_and_none_available_is_omitted():
    available = OUT_OF_THE_BOX | {"srs_vas"}
    assert check_battery(RULES, available, "srs_vas", False)[0] == {
        "domain": "alliance", "instrument": "srs_vas"}
    # configured but not askable (wording not installed): the rules' first available
    assert check_battery(RULES, OUT_OF_THE_BOX, "wai_sr", False)[0]["instrument"] \
        == "session_check"
    without = OUT_OF_THE_BOX - {"session_check"}
    assert "alliance" not in [b["domain"] for b in check_battery(RULES, without, None, False)]


def test_installed_validated_measures_are_preferred():
    available = OUT_OF_THE_BOX | {"osss3", "lte"}
    battery = check_battery(RULES, available, "session_check", False, COUNTS)
    assert {b["domain"]: b["instrument"] for b in battery} == {
        "alliance": "session_check", "motivation": "readiness_check",
        "social_support": "osss3", "life_events": "lte"}
    assert sum(COUNTS[b["instrument"]] for b in battery) == 20  # support.md: about 20


def test_the_item_budget_switches_to_a_shorter_measure():
    """support.md: about 20 items at most. WAI-SR 12 + readiness 1 + OSSS-3 3 + LTE 12 =
    28: the LTE gives way to the six-question events check (22), the nearest fit."""
    available = OUT_OF_THE_BOX | {"osss3", "lte", "wai_sr"}
    battery = check_battery(RULES, available, "wai_sr", False, COUNTS)
    chosen = {b["domain"]: b["instrument"] for b in battery}
    assert chosen["life_events"] == "life_events_check"
    assert chosen["alliance"] == "wai_sr"
    # without item counts nothing is switched
    assert {b["instrument"] for b in check_battery(RULES, available, "wai_sr", False)} \
        >= {"lte", "osss3"}


def test_a_domain_without_any_measure_is_left_out():
    battery = check_battery(RULES, {"session_check"}, "session_check", False)
    assert battery == [{"domain": "alliance", "instrument": "session_check"}]


# --- reading: each domain against its rule -----------------------------------------------


def test_every_domain_has_a_result_in_order():
    reading = read_check(RULES, {}, alliance=None, critical=False)
    assert [r.domain for r in reading.results] == list(DOMAINS)
    assert all(r.flagged is None for r in reading.results)
    assert reading.suggestions == () and reading.none_flagged is False


@pytest.mark.parametrize(("total", "flagged"), [(8, True), (9, False)])
def test_osss3_poor_support_flags_social_support(total, flagged):
    """Kocalevent et al. 2018, BMC Psychology 6:31: OSSS-3 3-8 = poor social support."""
    reading = read_check(RULES, _scores(osss3=total), alliance=None, critical=False)
    result = reading.result("social_support")
    assert (result.instrument_id, result.score, result.flagged) == ("osss3", total, flagged)
    assert result.verified is True
    text = _text(result.explanation)
    relation = "is at or below 8" if flagged else "is not at or below 8"
    assert f"osss3 total {total} {relation}" in text
    assert "Kocalevent et al. 2018" in text and "unverified" not in text
    assert text.endswith("Flagged." if flagged else "Not flagged.")


def test_the_validated_measure_wins_over_the_fallback_when_both_are_answered():
    reading = read_check(RULES, _scores(osss3=12, support_people_check=3), alliance=None,
                         critical=False)
    assert reading.result("social_support").instrument_id == "osss3"
    assert reading.result("social_support").flagged is False


@pytest.mark.parametrize(("total", "flagged"), [(5, True), (6, False)])
def test_readiness_flags_motivation(total, flagged):
    """Project default (unverified): readiness <= 5 on the project's own 0-10 question."""
    reading = read_check(RULES, _scores(readiness_check=total), alliance=None,
                         critical=False, names=NAMES)
    result = reading.result("motivation")
    assert result.flagged is flagged and result.verified is False
    text = _text(result.explanation)
    assert f"Readiness (not validated) total {total}" in text
    assert "project default" in text and "unverified" in text


@pytest.mark.parametrize(("total", "flagged"), [(15, True), (16, False)])
def test_people_around_me_flags_social_support(total, flagged):
    """Project default (unverified): <= 15 of 30."""
    reading = read_check(RULES, _scores(support_people_check=total), alliance=None,
                         critical=False)
    assert reading.result("social_support").flagged is flagged


@pytest.mark.parametrize("instrument", ["lte", "life_events_check"])
@pytest.mark.parametrize(("total", "flagged"), [(0, False), (1, True)])
def test_one_event_flags_life_events(instrument, total, flagged):
    """Project default (unverified): one endorsed event or more (the LTE-Q has no
    published cutoff; Brugha et al. 1985)."""
    reading = read_check(RULES, {instrument: {"total": total}}, alliance=None,
                         critical=False)
    assert reading.result("life_events").flagged is flagged


def test_an_unanswered_domain_says_so():
    battery = [{"domain": "motivation", "instrument": "readiness_check"}]
    reading = read_check(RULES, _scores(readiness_check=None), alliance=None,
                         critical=False, battery=battery, names=NAMES)
    motivation = reading.result("motivation")
    assert motivation.flagged is None and motivation.score is None
    assert _text(motivation.explanation) == \
        "Not measured: Readiness (not validated) was not answered in this check."
    assert _text(reading.result("life_events").explanation) == \
        "Not measured: no measure of this domain can be asked at this clinic."
    plain = read_check(RULES, {}, alliance=None, critical=False)
    assert _text(plain.result("life_events").explanation) == \
        "Not measured: none of this domain's measures was answered in this check."


# --- the alliance ------------------------------------------------------------------------


def test_an_unrepaired_rupture_flags_the_alliance_from_the_episode_series():
    """domain.md section 5: an unrepaired rupture or alliance concern on the episode's
    own series; support.md: reuse the episode's series where it exists."""
    reading = read_check(RULES, {}, critical=False, names=NAMES, alliance={
        "instrument": "session_check", "score": 31, "rupture": True})
    result = reading.result("alliance")
    assert result.flagged is True and result.reused is True and result.score == 31
    text = _text(result.explanation)
    assert "Session check (not validated), from the episode's own series, total 31" in text
    assert "has an unrepaired rupture or alliance concern (the engine's rupture rules" in text
    assert text.endswith("Flagged.")
    assert [s.domain for s in reading.suggestions][:1] == ["alliance"]


def test_no_rupture_and_no_cutoff_is_not_flagged():
    """session_check has no cutoff (docs/instruments.md): the rupture status decides."""
    reading = read_check(RULES, _scores(session_check=30), critical=False, alliance={
        "instrument": "session_check", "score": 30, "rupture": False})
    result = reading.result("alliance")
    assert result.flagged is False and result.reused is False
    assert "no cutoff decides this domain" in _text(result.explanation)
    assert "no unrepaired rupture" in _text(result.explanation)


def test_a_session_check_without_rupture_status_is_not_judged():
    reading = read_check(RULES, _scores(session_check=12), alliance=None, critical=False)
    assert reading.result("alliance").flagged is None
    assert _text(reading.result("alliance").explanation).endswith("Not judged.")


@pytest.mark.parametrize(("total", "flagged"), [(35.9, True), (36, False)])
def test_an_asked_srs_type_uses_its_own_cutoff(total, flagged):
    """The srs_vas definition: below 36 is an alliance concern (domain.md section 5,
    absolute rule; SRS-type: < 36)."""
    cutoffs = {"srs_vas": LIB.get("srs_vas").cutoff}
    assert cutoffs["srs_vas"] == Cutoff(36, "<", "below 36: alliance concern")
    reading = read_check(RULES, _scores(srs_vas=total), alliance=None, critical=False,
                         alliance_instrument="srs_vas", cutoffs=cutoffs)
    result = reading.result("alliance")
    assert result.flagged is flagged and result.numbers["value"] == 36
    assert "below 36" in _text(result.explanation)


def test_a_rupture_flags_even_when_the_score_is_above_the_cutoff():
    cutoffs = {"srs_vas": LIB.get("srs_vas").cutoff}
    reading = read_check(RULES, _scores(srs_vas=38), critical=False, cutoffs=cutoffs,
                         alliance={"instrument": "srs_vas", "score": 38, "rupture": True})
    assert reading.result("alliance").flagged is True


# --- suggestions -------------------------------------------------------------------------


def _ids(reading):
    return [s.id for s in reading.suggestions]


def test_flagged_domains_bring_their_suggestions_in_domain_order():
    reading = read_check(RULES, _scores(readiness_check=2, support_people_check=5,
                                        life_events_check=0), alliance=None, critical=False)
    assert reading.flagged_domains == ("motivation", "social_support")
    assert _ids(reading) == [s.id for s in RULES.suggestions["motivation"]] + \
        [s.id for s in RULES.suggestions["social_support"]]
    assert reading.none_flagged is False


def test_none_flagged_brings_formulation():
    """support.md: when none of these explains it, re-assess formulation and fit."""
    reading = read_check(RULES, _scores(readiness_check=9, support_people_check=25,
                                        life_events_check=0), alliance=None, critical=False)
    assert reading.none_flagged is True
    assert _ids(reading) == [s.id for s in RULES.suggestions["formulation"]]


def test_nothing_measured_brings_no_formulation():
    assert read_check(RULES, {}, alliance=None, critical=False).suggestions == ()


def test_a_critical_item_brings_risk_first():
    """support.md: risk whenever a critical item was endorsed: safety assessment today."""
    reading = read_check(RULES, _scores(readiness_check=9, life_events_check=2),
                         alliance=None, critical=True)
    ids = _ids(reading)
    assert ids[:3] == ["risk.safety_assessment", "risk.safety_plan", "risk.crisis_pathway"]
    assert "life_events.address_event" in ids and reading.risk is True
    alone = read_check(RULES, {}, alliance=None, critical=True)
    assert _ids(alone) == ids[:3]


def test_suggestions_render_in_the_readers_language_with_their_source():
    reading = read_check(RULES, _scores(readiness_check=9), alliance=None, critical=True)
    first = reading.suggestions[0]
    assert _text(first.text) == "Assess safety today."
    assert _text(first.text, "ru") == "Оцените безопасность сегодня."
    assert _text(first.text, "de") == "Assess safety today."
    assert first.source == ("the project's default list (clinical support tools, "
                            "Barkham et al. 2023)")


def test_explanations_render_in_russian():
    reading = read_check(RULES, _scores(osss3=9), alliance=None, critical=False)
    text = _text(reading.result("social_support").explanation, "ru")
    assert text == ("Сумма osss3 9: правило «не выше 8» не выполнено (Kocalevent et al. "
                    "2018, BMC Psychology 6:31: OSSS-3 total 3-8 = poor social support). "
                    "Не отмечено.")  # noqa: RUF001


def test_explanations_are_plain_json():
    import json
    reading = read_check(RULES, _scores(readiness_check=2), critical=True, alliance={
        "instrument": "session_check", "score": 30, "rupture": True})
    for result in reading.results:
        json.dumps(result.explanation.as_json())
    for suggestion in reading.suggestions:
        json.dumps(suggestion.text.as_json())


def test_a_rupture_without_a_score_flags_the_alliance_without_claiming_a_reused_score():
    """Issue 19 review: the service always passes the episode's rupture status. When
    the check's alliance measure went unanswered and no score was reused, the rupture
    (domain.md section 5) still flags the domain, and the result does not say the
    episode's own score was used (there is none)."""
    reading = read_check(RULES, _scores(readiness_check=8), critical=False, names=NAMES,
                         alliance={"instrument": "srs_vas", "score": None, "rupture": True},
                         battery=[{"domain": "alliance", "instrument": "session_check"}])
    result = reading.result("alliance")
    assert result.flagged is True and result.reused is False and result.score is None
    assert "(SRS" in _text(result.explanation) and "unrepaired rupture" in _text(
        result.explanation)
    assert reading.none_flagged is False
    assert [s.domain for s in reading.suggestions][:1] == ["alliance"]


def test_an_asked_alliance_is_judged_with_the_rupture_status():
    """An asked session_check (no cutoff) with the episode's rupture passed: flagged by
    the rupture (domain.md section 5), the asked score shown as asked."""
    reading = read_check(RULES, _scores(session_check=30), critical=False, names=NAMES,
                         alliance={"instrument": "srs_vas", "score": None, "rupture": True})
    result = reading.result("alliance")
    assert result.flagged is True and result.reused is False and result.score == 30
    assert result.instrument_id == "session_check"
