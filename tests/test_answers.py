"""parse_answers: the one validation path. Every rule, and nothing coerced silently."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from outcome.core.answers import AnswerError
from outcome.core.answers import Answers
from outcome.core.answers import parse_answers
from questionnaires.loader import builtin_library

LIB = builtin_library()
PHQ = LIB.get("phq9")
SRS = LIB.get("srs_vas")
COMPLETE = {f"phq9_{i}": 1 for i in range(1, 10)}


def errors_of(instrument, mapping):
    result = parse_answers(instrument, mapping)
    assert isinstance(result, list), result
    return [(e.item, e.code) for e in result]


def test_form_strings_and_json_integers_are_read_alike():
    from_form = parse_answers(PHQ, {k: str(v) for k, v in COMPLETE.items()})
    from_json = parse_answers(PHQ, COMPLETE)
    assert isinstance(from_form, Answers) and from_form.values == from_json.values


@pytest.mark.parametrize(("raw", "code"), [
    (4, "not_an_option"), (-1, "not_an_option"), ("4", "not_an_option"),
    (1.0, "wrong_type"), ("1.0", "wrong_type"), ("one", "wrong_type"), (True, "wrong_type"),
    ([1], "wrong_type"), (" 1", "wrong_type"),
])
def test_likert_values_must_be_options(raw, code):
    assert errors_of(PHQ, COMPLETE | {"phq9_3": raw}) == [("phq9_3", code)]


def test_unknown_items_are_named():
    assert errors_of(PHQ, COMPLETE | {"phq9_11": 1}) == [("phq9_11", "unknown_item")]


def test_empty_and_none_are_missing_not_zero():
    result = parse_answers(PHQ, COMPLETE | {"phq9_4": "", "phq9_10": None})
    assert isinstance(result, Answers)
    assert result.missing == ("phq9_4",)
    assert "phq9_4" not in result.values


def test_missing_beyond_max_missing_names_each_item():
    errors = parse_answers(PHQ, {f"phq9_{i}": 0 for i in range(1, 8)})
    assert [(e.item, e.code) for e in errors] == [("phq9_8", "missing"), ("phq9_9", "missing")]
    assert errors[0].message == ("phq9_8: not answered; at most 1 of the 9 questions may be "
                                 "left out.")


def test_allow_incomplete_keeps_partial_administrations():
    result = parse_answers(PHQ, {"phq9_1": 2}, allow_incomplete=True)
    assert isinstance(result, Answers) and len(result.missing) == 8
    assert result.missing_critical == ("phq9_9",)


@pytest.mark.parametrize(("raw", "code"), [
    (10.5, "out_of_range"), (-0.1, "out_of_range"), ("11", "out_of_range"),
    (9.55, "too_many_decimals"), ("9.55", "too_many_decimals"), ("abc", "wrong_type"),
    (float("nan"), "wrong_type"), (float("inf"), "wrong_type"), (False, "wrong_type"),
    ("1e1", "wrong_type"),
])
def test_vas_values(raw, code):
    good = {"srs_1": 9, "srs_2": 9, "srs_3": 9, "srs_4": 9}
    assert errors_of(SRS, good | {"srs_2": raw}) == [("srs_2", code)]


@pytest.mark.parametrize("raw", [0, 10, "7.5", 7.5, "10.0", 3])
def test_vas_accepts(raw):
    result = parse_answers(SRS, {"srs_1": raw, "srs_2": 1, "srs_3": 1, "srs_4": 1})
    assert isinstance(result, Answers)


def test_messages_are_plain_words():
    [error] = parse_answers(SRS, {"srs_1": "9.55", "srs_2": 1, "srs_3": 1, "srs_4": 1})
    assert error.message == "srs_1: 9.55 has too many decimal places; use at most 1 decimal."


def test_as_json_keeps_whole_numbers_whole():
    result = parse_answers(SRS, {"srs_1": "7.5", "srs_2": 1, "srs_3": 1, "srs_4": 10})
    assert result.as_json() == {"srs_1": 7.5, "srs_2": 1, "srs_3": 1, "srs_4": 10}


anything = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(), children,
                                                                        max_size=3),
    max_leaves=5)


@settings(max_examples=300, deadline=None)
@given(instrument_id=st.sampled_from(sorted(i.id for i in LIB)),
       mapping=st.dictionaries(st.text(max_size=12) | st.sampled_from(
           [f"phq9_{i}" for i in range(1, 11)] + ["srs_1", "gbo_1", "who5_2"]), anything,
           max_size=12))
@pytest.mark.slow
def test_parse_answers_never_raises(instrument_id, mapping):
    result = parse_answers(LIB.get(instrument_id), mapping)
    assert isinstance(result, Answers) or (
        result and all(isinstance(e, AnswerError) and e.message for e in result))
