"""The support check's rules file and measures (issue 19): every cutoff pinned with its
source, the suggestion lists as data, malformed files named by line and key, and the
support measures kept out of the clinic's normal battery and signals.

Sources: ../shared/design/support.md; docs/instruments.md, "Support check measures".
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pytest

from outcome.core.support import DOMAINS
from outcome.core.support import EXTRA_DOMAINS
from questionnaires.loader import builtin_library
from questionnaires.support import RULES_FILE
from questionnaires.support import RulesError
from questionnaires.support import load_rules
from questionnaires.support import parse_rules

RULES = load_rules()
LIB = builtin_library()
SUPPORT_IDS = {"readiness_check", "support_people_check", "life_events_check", "lte"}


def _rule(domain, instrument):
    measure = RULES.domain(domain).measure(instrument)
    assert measure is not None, (domain, instrument)
    return measure


# --- the rules as shipped ----------------------------------------------------------------


def test_the_rules_load_with_every_domain_and_heading_in_order():
    assert tuple(RULES.domains) == DOMAINS
    assert tuple(RULES.suggestions) == (*DOMAINS, *EXTRA_DOMAINS)
    assert load_rules() is RULES  # cached


def test_the_item_budget_is_about_twenty():
    """support.md: "Keep the check short: about 20 items at most"."""
    assert RULES.max_items == 20
    assert "support.md" in RULES.max_items_source


def test_candidates_in_preference_order():
    """The validated measure first where a clinic installs it; the project's own words
    as the fallback that works out of the box (docs/instruments.md)."""
    assert RULES.domain("alliance").instruments == ("session_check", "srs_vas", "wai_sr")
    assert RULES.domain("motivation").instruments == ("readiness_check",)
    assert RULES.domain("social_support").instruments == ("osss3", "support_people_check")
    assert RULES.domain("life_events").instruments == ("lte", "life_events_check")


def test_every_rule_has_a_source_and_a_verified_mark():
    for domain in RULES.domains.values():
        for measure in domain.measures:
            assert measure.source.strip()
            assert isinstance(measure.verified, bool)
    assert RULES.domain("alliance").rupture_source


@pytest.mark.parametrize(("score", "flagged"), [(3, True), (8, True), (8.5, False),
                                                (9, False), (14, False)])
def test_osss3_total_at_or_below_8_is_poor_support(score, flagged):
    """Kocalevent et al. 2018, BMC Psychology 6:31: OSSS-3 sum 3-8 = poor social support,
    9-11 moderate, 12-14 strong; read in two public sources (emerge.ucsd.edu measure page
    citing Kocalevent et al. 2018; sciensano.be: 3-8 "limited perceived quality of social
    support"). Verified."""
    rule = _rule("social_support", "osss3")
    assert rule.flag is not None and (rule.flag.op, rule.flag.value) == ("<=", 8)
    assert rule.verified is True and "Kocalevent et al. 2018" in rule.source
    assert rule.flag.flags(score) is flagged


@pytest.mark.parametrize(("score", "flagged"), [(0, True), (5, True), (6, False), (10, False)])
def test_readiness_at_or_below_5_flags_motivation(score, flagged):
    """Project default (unverified): the middle of the project's own 0-10 readiness
    question; no published cutoff exists for it (not a validated measure)."""
    rule = _rule("motivation", "readiness_check")
    assert rule.flag is not None and (rule.flag.op, rule.flag.value) == ("<=", 5)
    assert rule.verified is False and "project default" in rule.source
    assert rule.flag.flags(score) is flagged


@pytest.mark.parametrize(("score", "flagged"), [(0, True), (15, True), (16, False), (30, False)])
def test_people_around_me_at_or_below_15_flags_social_support(score, flagged):
    """Project default (unverified): half of the 0-30 range of the project's own
    three-question check."""
    rule = _rule("social_support", "support_people_check")
    assert rule.flag is not None and (rule.flag.op, rule.flag.value) == ("<=", 15)
    assert rule.verified is False and "project default" in rule.source
    assert rule.flag.flags(score) is flagged


@pytest.mark.parametrize("instrument", ["lte", "life_events_check"])
@pytest.mark.parametrize(("score", "flagged"), [(0, False), (1, True), (12, True)])
def test_any_event_flags_life_events(instrument, score, flagged):
    """Project default (unverified): one endorsed event or more. The LTE-Q has no
    published cutoff ("No definitive scoring system is described", CamCOPS
    documentation of Brugha & Cragg 1990); its score is the number endorsed (Rosmalen et
    al. 2012)."""
    rule = _rule("life_events", instrument)
    assert rule.flag is not None and (rule.flag.op, rule.flag.value) == (">=", 1)
    assert rule.verified is False and "project default" in rule.source
    assert rule.flag.flags(score) is flagged


def test_alliance_measures_have_no_cutoff_of_their_own_here():
    """The alliance is judged by the episode's rupture status (domain.md section 5) and
    an alliance measure's own definition cutoff (SRS-type: < 36); session_check has no
    cutoff (docs/instruments.md, "Session check") and none is invented here."""
    for measure in RULES.domain("alliance").measures:
        assert measure.flag is None
    assert "the engine's rupture rules" in (RULES.domain("alliance").rupture_source or "")


def test_nan_never_flags():
    rule = _rule("social_support", "osss3")
    assert rule.flag is not None and rule.flag.flags(math.nan) is False


# --- suggestions -------------------------------------------------------------------------

EXPECTED_SUGGESTIONS = {
    "alliance": ["alliance.metacommunication", "alliance.goals_tasks",
                 "alliance.markers_repair", "alliance.adjust_approach"],
    "motivation": ["motivation.explore_ambivalence", "motivation.client_goals",
                   "motivation.stage_of_change"],
    "social_support": ["social_support.map_people", "social_support.plan_contact",
                       "social_support.group_peer", "social_support.involve_family"],
    "life_events": ["life_events.address_event", "life_events.problem_solving",
                    "life_events.crisis_plan"],
    "formulation": ["formulation.reassess", "formulation.frequency",
                    "formulation.medication_referral", "formulation.supervision"],
    "risk": ["risk.safety_assessment", "risk.safety_plan", "risk.crisis_pathway"],
}


def test_suggestion_ids_are_stable():
    """Stored action plans refer to these ids: renaming one breaks old plans."""
    assert {h: [s.id for s in items] for h, items in RULES.suggestions.items()} \
        == EXPECTED_SUGGESTIONS


def test_every_suggestion_has_english_russian_and_a_source():
    for heading, items in RULES.suggestions.items():
        for s in items:
            assert s.domain == heading
            assert s.text["en"].strip() and s.text["ru"].strip()
            assert any("\u0400" <= ch <= "\u04ff" for ch in s.text["ru"]), s.id
            assert s.source.strip()


@pytest.mark.parametrize(("heading", "cited"), [
    ("alliance", "Safran & Muran 2000"),       # support.md: repair strategies
    ("motivation", "Miller & Rollnick"),       # support.md: motivational interviewing
    ("social_support", "Whipple et al. 2003"),   # support.md: the CST literature
    ("life_events", "Whipple et al. 2003"),
    ("formulation", "Delgadillo et al. 2018"),  # support.md: discuss in supervision
    ("risk", "Barkham et al. 2023"),
])
def test_suggestions_cite_what_support_md_cites(heading, cited):
    """support.md, "From results to suggested next steps": the table's actions and
    citations; where the list itself is the project's, the line says "the project's default
    list" beside the literature it follows (a clinician reads the source on the page)."""
    sources = [s.source for s in RULES.suggestions[heading]]
    assert any(cited in source for source in sources)
    for source in sources:
        assert ("the project's default list" in source) or ("Safran & Muran" in source) \
            or ("Miller & Rollnick" in source)


def test_the_alliance_suggestions_follow_support_md():
    """support.md: metacommunication; revisit goals and tasks; withdrawal or
    confrontation markers and repair (Safran & Muran 2000); adjust the approach."""
    texts = {s.id: s.text["en"] for s in RULES.suggestions["alliance"]}
    assert "metacommunication" in texts["alliance.metacommunication"]
    assert "goals and tasks" in texts["alliance.goals_tasks"]
    assert "withdrawal or confrontation" in texts["alliance.markers_repair"]
    assert RULES.suggestion("risk.safety_assessment") is not None
    assert RULES.suggestion("nosuch") is None


# --- malformed files ---------------------------------------------------------------------


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _shipped() -> str:
    return RULES_FILE.read_text(encoding="utf-8")


def test_a_yaml_syntax_error_names_its_line(tmp_path):
    path = _write(tmp_path, "version: 1\ndomains: [\n")
    with pytest.raises(RulesError) as info:
        parse_rules(path)
    assert "line" in str(info.value) and str(path) in str(info.value)


def test_a_wrong_operator_names_line_and_key(tmp_path):
    text = _shipped().replace('flag: {op: "<=", value: 8}', 'flag: {op: "=<", value: 8}')
    path = _write(tmp_path, text)
    line = next(n for n, row in enumerate(text.splitlines(), 1) if '"=<"' in row)
    with pytest.raises(RulesError) as info:
        parse_rules(path)
    message = str(info.value)
    assert "domains.social_support.measures[0].flag.op" in message
    assert f"line {line}" in message and "must be one of" in message


def test_a_missing_russian_text_is_named(tmp_path):
    text = _shipped().replace(
        '      ru: "Оцените безопасность сегодня."\n', "")
    with pytest.raises(RulesError) as info:
        parse_rules(_write(tmp_path, text))
    assert "suggestions.risk[0]" in str(info.value)
    assert "missing required key 'ru'" in str(info.value)


def test_a_repeated_suggestion_id_and_an_unknown_key_are_refused(tmp_path):
    text = _shipped().replace("id: risk.safety_plan", "id: risk.safety_assessment")
    text = text.replace("max_items: 20\n", "max_items: 20\nmax_itmes: 3\n")
    with pytest.raises(RulesError) as info:
        parse_rules(_write(tmp_path, text))
    message = str(info.value)
    assert "'risk.safety_assessment' is used twice" in message
    assert "unknown key 'max_itmes'" in message


def test_a_missing_domain_and_a_non_number_cutoff_are_refused(tmp_path):
    text = _shipped().replace('flag: {op: ">=", value: 1}', 'flag: {op: ">=", value: one}', 1)
    text = text.replace("  motivation:\n    measures:", "  motivatoin:\n    measures:", 1)
    with pytest.raises(RulesError) as info:
        parse_rules(_write(tmp_path, text))
    message = str(info.value)
    assert "missing required key 'motivation'" in message
    assert "domains.life_events.measures[0].flag.value: must be a number" in message


def test_a_suggestion_id_must_start_with_its_heading(tmp_path):
    text = _shipped().replace("id: risk.crisis_pathway", "id: crisis_pathway")
    with pytest.raises(RulesError, match=r"must start with 'risk\.'"):
        parse_rules(_write(tmp_path, text))


def test_load_rules_reads_another_file(tmp_path):
    path = _write(tmp_path, _shipped().replace("max_items: 20", "max_items: 15"))
    assert load_rules(path).max_items == 15


# --- the measures ------------------------------------------------------------------------


def test_support_measures_are_support_role_and_out_of_signals():
    """Role "support": services.signals and fits act only on "outcome" and "alliance"
    roles, so these never produce outcome or alliance signals."""
    for instrument_id in SUPPORT_IDS:
        assert LIB.get(instrument_id).role == "support"
    for domain in ("motivation", "social_support", "life_events"):
        for instrument_id in RULES.domain(domain).instruments:
            if instrument_id in {i.id for i in LIB}:
                assert LIB.get(instrument_id).role == "support"


@pytest.mark.parametrize(("instrument_id", "attestation", "wording", "validated"), [
    ("readiness_check", False, True, False),
    ("support_people_check", False, True, False),
    ("life_events_check", False, True, False),
    ("lte", True, False, True),
])
def test_licence_and_wording_decisions(instrument_id, attestation, wording, validated):
    """docs/instruments.md, "Support check measures": the project's own words ship with
    text (not validated); the LTE is structure only (non-commercial licence, wording not
    confirmed by two sources), installed by a clinic that holds the licence."""
    instrument = LIB.get(instrument_id)
    assert instrument.licence.is_attestation_required is attestation
    assert instrument.is_wording_installed is wording
    assert instrument.is_validated is validated


def test_the_lte_is_twelve_yes_no_categories_counted():
    """Brugha et al. 1985: 12 categories; yes/no; the score is the number endorsed
    (Rosmalen et al. 2012, via the CamCOPS documentation)."""
    lte = LIB.get("lte")
    assert [i.id for i in lte.items] == [f"lte_{n}" for n in range(1, 13)]
    assert all(i.text is None for i in lte.items)
    assert all([o.value for o in i.options] == [0, 1] for i in lte.items)
    assert lte.primary_range == (0.0, 12.0)
    assert lte.licence.is_non_commercial is True
    assert "Medical Research Council" in lte.licence.name


def test_no_osss3_or_readiness_ruler_wording_is_shipped():
    """No two public sources agreed word for word on the OSSS-3 items, and no licence
    was found for them or for the CASAA Readiness Ruler: none is shipped as text."""
    ids = {i.id for i in LIB}
    assert "osss3" not in ids
    texts = " ".join(filter(None, [it.text for i in LIB for it in i.items]))
    assert "count on them" not in texts
    assert "neighbo" not in texts


OWN_WORDS = {
    "readiness_check": {
        "stem": "Thinking about the changes you came to therapy for:",
        "items": {"readiness_now":
                  "How ready do you feel, right now, to work on these changes?"},
    },
    "support_people_check": {
        "stem": "How true is each sentence for you at the moment? (0 = not at all true, "
                "10 = completely true)",
        "items": {
            "people_turn_to": "There is someone I can turn to when things get hard.",
            "people_interest": "People close to me take an interest in how I am.",
            "people_practical": "If I needed practical help, I could get it.",
        },
    },
    "life_events_check": {
        "stem": "In the past 6 months, has any of the following happened to you?",
        "items": {
            "events_own_health": "You had a serious illness or injury, or were attacked.",
            "events_someone_close":
                "Someone close to you became seriously ill or injured, or died.",
            "events_relationship": "A marriage or close relationship ended, or you had a "
                                   "serious problem with someone close to you.",
            "events_work_money": "You lost your job or could not find work, or had a "
                                 "serious money crisis.",
            "events_law_loss": "You had serious trouble with the police or the courts, or "
                               "lost something valuable or had it stolen.",
            "events_other": "Something else happened that was very upsetting or "
                            "frightening for you.",
        },
    },
}


@pytest.mark.parametrize("instrument_id", sorted(OWN_WORDS))
def test_own_words_are_the_documented_text(instrument_id):
    """The project's own words, as docs/instruments.md lists them; each says it is not
    a validated measure in its name."""
    instrument = LIB.get(instrument_id)
    expected = OWN_WORDS[instrument_id]
    assert instrument.stem == expected["stem"]
    assert {i.id: i.text for i in instrument.items} == expected["items"]
    assert "not a validated measure" in instrument.name
    assert "not validated" in instrument.short_name
    docs = (Path(__file__).resolve().parents[1] / "docs" / "instruments.md").read_text()
    for text in expected["items"].values():
        assert text in docs, text


def test_own_words_have_an_authored_russian_version():
    for instrument_id in OWN_WORDS:
        ru = next(t for t in LIB.get(instrument_id).translations if t.language == "ru")
        assert ru.is_verified  # "authored": the project's own text, translated by it
        assert {item for item, _ in ru.items} == set(OWN_WORDS[instrument_id]["items"])


@pytest.mark.parametrize("instrument_id", sorted(SUPPORT_IDS))
def test_support_measures_fit_the_item_budget_together(instrument_id):
    """Out of the box: session check 4 + readiness 1 + people 3 + events 6 = 14; with the
    LTE installed 20 (support.md: about 20 at most)."""
    default = sum(len(LIB.get(i).items) for i in
                  ("session_check", "readiness_check", "support_people_check",
                   "life_events_check"))
    assert default == 14
    assert default - 6 + len(LIB.get("lte").items) == RULES.max_items


@pytest.fixture
def admin(make_user, db_session):
    user = make_user("admin")
    db_session.commit()
    return user


def test_the_battery_form_never_offers_a_support_measure(auth, client, admin):
    """Support measures are asked only in a support check, never in the pre battery."""
    auth.login(admin.email)
    html = client.get("/admin/battery").get_data(as_text=True)
    assert 'id="include-phq9"' in html
    for instrument_id in SUPPORT_IDS:
        assert f'id="include-{instrument_id}"' not in html


def test_the_rules_file_is_documented():
    docs = (Path(__file__).resolve().parents[1] / "docs" / "instruments.md").read_text()
    assert "## Support check measures" in docs
    for needle in ("Kocalevent", "Brugha", "CASAA", "questionnaires/support/rules.yaml"):
        assert needle in docs


def test_a_malformed_definition_is_still_caught_for_support_role(tmp_path):
    from questionnaires.loader import DefinitionError
    from questionnaires.loader import load_definition
    path = tmp_path / "x.yaml"
    path.write_text(textwrap.dedent("""
        id: x
        version: "1"
        name: X
        short_name: X
        role: supportive
        direction: higher_is_better
        licence: {name: n, attribution: a}
        items: [{id: a, options: [{value: 0}, {value: 1}]}]
        scoring: {method: sum}
    """))
    with pytest.raises(DefinitionError, match="role"):
        load_definition(path)
