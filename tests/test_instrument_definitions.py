"""Definition files: the built-ins load and say what they should; broken files say where."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from questionnaires.loader import DefinitionError
from questionnaires.loader import builtin_library
from questionnaires.loader import load_definition
from questionnaires.loader import load_library

SHARED = Path(__file__).resolve().parents[2] / "shared" / "instruments" / "instruments.json"
LIB = builtin_library()


def test_every_builtin_loads():
    assert {i.id for i in LIB} == {"phq9", "gad7", "pcl5", "who5", "k10", "gbo", "wai_sr",
                                   "srs_vas", "ors_vas", "oq45", "session_check",
                                   # issue 19: the support check's measures (role support)
                                   "readiness_check", "support_people_check",
                                   "life_events_check", "lte"}


@pytest.mark.parametrize(("instrument_id", "attestation", "wording"), [
    ("phq9", False, True), ("gad7", False, True), ("pcl5", False, True),
    ("who5", True, True), ("k10", True, True), ("gbo", True, True),
    ("wai_sr", True, False), ("srs_vas", True, False), ("ors_vas", True, False),
    ("oq45", True, False),
])
def test_licence_decisions(instrument_id, attestation, wording):
    instrument = LIB.get(instrument_id)
    assert instrument.licence.is_attestation_required is attestation
    assert instrument.is_wording_installed is wording
    assert instrument.licence.attribution


@pytest.mark.skipif(not SHARED.exists(), reason="shared/instruments not beside the project")
@pytest.mark.parametrize("instrument_id", ["phq9", "gad7", "pcl5", "who5", "k10"])
def test_item_texts_are_verbatim_from_the_cross_checked_sources(instrument_id):
    # Source: shared/instruments/instruments.json (cross-checked against two public sources).
    record = next(r for r in json.loads(SHARED.read_text()) if r["id"] == instrument_id)
    expected = {i["id"]: i["text"] for i in record["items"] if i.get("text")}
    instrument = LIB.get(instrument_id)
    for item in instrument.items:
        assert item.text == expected[item.id], item.id
    if record.get("stem") and instrument_id != "gad7":
        assert instrument.stem == record["stem"]


def test_no_known_wrong_copies():
    texts = " ".join(filter(None, [o.label for i in LIB for it in i.items for o in it.options]
                            + [it.text for i in LIB for it in i.items]))
    for wrong in ("Not at all sure", "Over half the days", "could gave noticed",
                  "or thoughts of hurting yourself"):
        assert wrong not in texts


def test_phq9_structure_and_codes():
    phq = LIB.get("phq9")
    assert (phq.loinc_panel, phq.loinc_total) == ("44249-1", "44261-6")
    assert [o.loinc_answer for o in phq.item("phq9_1").options] == [
        "LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9"]
    assert phq.item("phq9_6").text.count("\u2014") == 1  # the em dash, as on the form
    assert not phq.item("phq9_10").is_scored
    assert phq.reliable_change.points == 6
    assert (phq.cutoff.value, phq.cutoff.clinical_side) == (10, ">=")
    assert [c.item for c in phq.critical_items] == ["phq9_9"]


def test_gad7_uses_the_correct_answer_code_at_value_2():
    gad = LIB.get("gad7")
    assert gad.item("gad7_2").options[2].loinc_answer == "LA6570-1"  # not LA18938-3


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


MINIMAL = """\
id: mine
version: "1"
name: My measure
short_name: Mine
role: outcome
direction: higher_is_worse
licence: {name: Own, attribution: Ours}
options: [{value: 0, label: No}, {value: 1, label: Yes}]
items:
  - {id: m1, text: One}
  - {id: m2, text: Two}
scoring: {method: sum, max_missing: 0}
"""


def test_a_clinic_definition_goes_through_the_same_checks(tmp_path):
    write(tmp_path, "mine.yaml", MINIMAL)
    library = load_library(tmp_path)
    mine = library.get("mine")
    assert mine.total_range == (0, 2)
    # YAML 1.2 booleans: the labels Yes and No stay text (not True/False as in YAML 1.1).
    assert [o.label for o in mine.item("m1").options] == ["No", "Yes"]


@pytest.mark.parametrize(("change", "where", "what"), [
    (("scoring: {method: sum, max_missing: 0}", "scoring: {method: median}"),
     "scoring.method", "must be one of sum, mean; got 'median'"),
    (("version: \"1\"", "version: 1"), "version", "must be text; got 1"),
    (("short_name: Mine\n", ""), "(top level)", "missing required field 'short_name'"),
    (("role: outcome", "role: outcome\ncolour: blue"), "(top level)", "unknown field 'colour'"),
    (("- {id: m2, text: Two}", "- {id: m1, text: Two}"), "items[1].id", "used twice"),
    (("scoring: {method: sum, max_missing: 0}",
      "scoring: {method: sum, max_missing: 0}\nsubscales: [{id: s, name: S, items: [m9]}]"),
     "subscales[0].items", "unknown item 'm9'"),
    (("scoring: {method: sum, max_missing: 0}",
      "scoring: {method: sum, max_missing: 0}\ncutoff: {value: 1, clinical: '<'}"),
     "cutoff.clinical", "disagrees with direction higher_is_worse"),
    (("scoring: {method: sum, max_missing: 0}",
      "scoring: {method: sum, max_missing: 0}\nbands: [{min: 0, max: 0, label: a}, "
      "{min: 2, max: 2, label: b}]"), "bands[1]", "leaves a gap after 0"),
    (("scoring: {method: sum, max_missing: 0}",
      "scoring: {method: sum, max_missing: 0}\ncritical_items: [{item: m1, threshold: 5, "
      "urgency: urgent, client_message: x, clinician_message: y}]"),
     "critical_items[0].threshold", "outside the answers of m1"),
    (("- {id: m2, text: Two}", "- {id: m2}"), "items[1].text", "missing while other items"),
    (("scoring: {method: sum, max_missing: 0}", "scoring: {method: sum, max_missing: 2}"),
     "scoring.max_missing", "every one of the 2 scored items"),
])
def test_broken_definitions_name_file_field_and_problem(tmp_path, change, where, what):
    old, new = change
    assert old in MINIMAL
    path = write(tmp_path, "broken.yaml", MINIMAL.replace(old, new, 1))
    with pytest.raises(DefinitionError) as info:
        load_definition(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {where}: "), message
    assert what in message


def test_yaml_errors_and_duplicate_keys_give_a_line(tmp_path):
    path = write(tmp_path, "dup.yaml", MINIMAL + "name: Again\n")
    with pytest.raises(DefinitionError, match=r"line \d+, column \d+: not valid YAML: "
                                              r"duplicate key 'name'"):
        load_definition(path)
    path = write(tmp_path, "bad.yaml", "id: [unclosed\n")
    with pytest.raises(DefinitionError, match="not valid YAML"):
        load_definition(path)


def test_overlay_installs_licensed_wording(tmp_path):
    texts = {f"wai_sr_{i}": f"Clinic wording {i}" for i in range(1, 13)}
    overlay = {"overlay_for": "wai_sr@1", "stem": "Thinking about today's session:",
               "items": texts, "options": {"1": "Seldom", "5": "Always"}}
    (tmp_path / "wai.yaml").write_text(json.dumps(overlay))
    wai = load_library(tmp_path).get("wai_sr")
    assert wai.is_wording_installed
    assert wai.item("wai_sr_3").text == "Clinic wording 3"
    assert wai.item("wai_sr_3").options[0].label == "Seldom"
    assert "wai.yaml" in wai.source_file


def test_overlay_adds_oq45_subscales_and_critical_items(tmp_path):
    overlay = {"overlay_for": "oq45@1",
               "subscales": [{"id": "sd", "name": "Symptom distress",
                              "items": [f"oq45_{i}" for i in (2, 3, 5)]}],
               "critical_items": [{"item": "oq45_8", "threshold": 1, "urgency": "urgent",
                                   "client_message": "c", "clinician_message": "k"}]}
    (tmp_path / "oq.yaml").write_text(json.dumps(overlay))
    oq = load_library(tmp_path).get("oq45")
    assert [s.id for s in oq.subscales] == ["sd"]
    assert [c.item for c in oq.critical_items] == ["oq45_8"]
    assert not oq.is_wording_installed  # no wording given yet


def test_broken_overlay_blames_the_overlay_file(tmp_path):
    overlay = {"overlay_for": "oq45@1",
               "critical_items": [{"item": "oq45_99", "threshold": 1, "urgency": "urgent",
                                   "client_message": "c", "clinician_message": "k"}]}
    path = tmp_path / "oq.yaml"
    path.write_text(json.dumps(overlay))
    with pytest.raises(DefinitionError) as info:
        load_library(tmp_path)
    assert str(info.value) == f"{path}: critical_items[0].item: unknown item 'oq45_99'"


def test_overlay_for_an_unknown_instrument(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text(json.dumps({"overlay_for": "nope@1", "stem": "x"}))
    with pytest.raises(DefinitionError, match="no built-in instrument 'nope@1'"):
        load_library(tmp_path)


def test_a_clinic_file_cannot_silently_replace_a_builtin(tmp_path):
    write(tmp_path, "phq.yaml", MINIMAL.replace("id: mine", "id: phq9"))
    with pytest.raises(DefinitionError, match=r"phq9@1 is already defined in phq9\.yaml"):
        load_library(tmp_path)


def test_unknown_instrument_lists_the_known_ones():
    with pytest.raises(KeyError, match="unknown instrument 'phq8'; known instruments: gad7"):
        LIB.get("phq8")


def test_the_session_check_is_the_projects_own_and_says_it_is_not_validated():
    """Finding 11: an alliance measure collectable as shipped, honest about what it is."""
    check = LIB.get("session_check")
    assert check.role == "alliance" and check.direction == "higher_is_better"
    assert check.is_wording_installed and not check.licence.is_attestation_required
    assert not check.is_validated
    assert "not a validated measure" in check.name
    assert "not validated" in check.short_name
    assert "not a validated measure" in check.licence.attribution
    assert "project's own licence" in check.licence.name
    # Never named after a licensed measure, and no borrowed norms: no cutoff, no reliable
    # change, no drop threshold (the absolute and drop rupture rules stay off).
    for text in (check.id, check.name, check.short_name):
        assert "SRS" not in text and "WAI" not in text and "Session Rating" not in text
    assert check.cutoff is None and check.reliable_change is None
    assert check.rupture_drop_points is None
    assert check.total_range == (0, 40)
    assert {t.language for t in check.translations} == {"ru"}
    assert all(LIB.get(i).is_validated for i in ("phq9", "srs_vas", "wai_sr"))
