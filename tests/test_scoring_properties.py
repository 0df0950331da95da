"""Properties of the vectorised scorer, checked on generated item matrices (hypothesis).

An independent, per-row oracle with exact fractions stands beside the numpy code: the
two must agree on every generated administration, prorated or not.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP
from decimal import Decimal
from fractions import Fraction

import numpy as np
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from outcome.core.answers import numeric_item_ids
from outcome.core.scoring import score
from questionnaires.loader import builtin_library

LIB = builtin_library()
INSTRUMENTS = sorted(LIB, key=lambda i: i.id)


def item_values(item):
    if item.type == "vas":
        steps = round((item.maximum - item.minimum) * 10 ** item.decimals)
        return st.integers(0, steps).map(lambda k: item.minimum + k / 10 ** item.decimals)
    return st.sampled_from(item.option_values).map(float)


@st.composite
def matrices(draw, instrument, missing=True, max_rows=12):
    items = [instrument.item(i) for i in numeric_item_ids(instrument)]
    n = draw(st.integers(1, max_rows))
    rows = []
    for _ in range(n):
        row = []
        for item in items:
            if missing and draw(st.integers(0, 9)) == 0:
                row.append(np.nan)
            else:
                row.append(draw(item_values(item)))
        rows.append(row)
    return np.array(rows, dtype=np.float64)


def oracle_total(instrument, row):
    """Score one row the slow, obvious way, with exact fractions."""
    ids = numeric_item_ids(instrument)
    values = []
    for item in instrument.scored_items:
        v = row[ids.index(item.id)]
        if np.isnan(v):
            continue
        v = Fraction(Decimal(repr(float(v))))
        if item.is_reverse:
            v = Fraction(Decimal(repr(item.minimum + item.maximum))) - v
        values.append(v)
    n_items, n_answered = len(instrument.scored_items), len(values)
    if n_answered == 0 or n_items - n_answered > instrument.max_missing:
        return None
    raw = sum(values) * n_items / n_answered if instrument.scoring_method == "sum" \
        else sum(values) / n_answered
    quantum = Decimal(1).scaleb(-instrument.precision)
    exact = Decimal(raw.numerator) / Decimal(raw.denominator)
    return float(exact.quantize(quantum, rounding=ROUND_HALF_UP))


@settings(max_examples=60, deadline=None)
@given(data=st.data(), instrument=st.sampled_from(INSTRUMENTS))
def test_vectorised_agrees_with_the_per_row_oracle(data, instrument):
    matrix = data.draw(matrices(instrument))
    table = score(instrument, matrix)
    for i, row in enumerate(matrix):
        expected = oracle_total(instrument, row)
        got = None if np.isnan(table.total[i]) else float(table.total[i])
        assert got == expected, (instrument.id, row)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), instrument=st.sampled_from(INSTRUMENTS))
def test_valid_totals_lie_within_the_scale(data, instrument):
    table = score(instrument, data.draw(matrices(instrument)))
    low, high = instrument.total_range
    totals = table.total[table.valid]
    assert ((totals >= low) & (totals <= high)).all()
    assert np.isnan(table.total[~table.valid]).all()
    primary_low, primary_high = instrument.primary_range
    primaries = table.primary[table.valid]
    assert ((primaries >= primary_low) & (primaries <= primary_high)).all()
    if instrument.bands:
        assert (table.band[table.valid] >= 0).all()
        assert (table.band[~table.valid] == -1).all()


@settings(max_examples=40, deadline=None)
@given(data=st.data(), instrument=st.sampled_from(INSTRUMENTS))
def test_permuting_administrations_permutes_results(data, instrument):
    matrix = data.draw(matrices(instrument))
    order = data.draw(st.permutations(range(len(matrix))))
    plain, permuted = score(instrument, matrix), score(instrument, matrix[list(order)])
    np.testing.assert_array_equal(plain.total[list(order)], permuted.total)
    np.testing.assert_array_equal(plain.band[list(order)], permuted.band)
    np.testing.assert_array_equal(plain.critical_hits[list(order)], permuted.critical_hits)
    for key in plain.subscales:
        np.testing.assert_array_equal(plain.subscales[key][list(order)],
                                      permuted.subscales[key])


@settings(max_examples=40, deadline=None)
@given(data=st.data(), instrument=st.sampled_from(INSTRUMENTS))
def test_complete_rows_are_exact_and_never_prorated(data, instrument):
    matrix = data.draw(matrices(instrument, missing=False))
    table = score(instrument, matrix)
    assert table.valid.all() and not table.prorated.any()
    if instrument.scoring_method == "sum":
        ids = numeric_item_ids(instrument)
        expected = np.zeros(len(matrix))
        for item in instrument.scored_items:
            column = matrix[:, ids.index(item.id)]
            expected += (item.minimum + item.maximum - column) if item.is_reverse else column
        np.testing.assert_allclose(table.total, expected, rtol=0, atol=1e-9)


@settings(max_examples=30, deadline=None)
@given(data=st.data(), instrument=st.sampled_from(INSTRUMENTS))
def test_integer_and_float_matrices_agree(data, instrument):
    if any(instrument.item(i).type == "vas" for i in numeric_item_ids(instrument)):
        return
    matrix = data.draw(matrices(instrument))
    as_int = np.where(np.isnan(matrix), -1, matrix).astype(np.int8)
    a, b = score(instrument, matrix), score(instrument, as_int)
    np.testing.assert_array_equal(a.total, b.total)
    np.testing.assert_array_equal(a.critical_unanswered, b.critical_unanswered)


def test_single_administration_goes_through_the_batch_path():
    phq = LIB.get("phq9")
    table = score(phq, np.array([[1, 1, 1, 1, 1, 1, 1, 1, 1, np.nan]]))
    assert len(table) == 1 and table.row(0).total == 9.0


def test_wrong_matrix_shape_is_a_clear_error():
    import pytest

    with pytest.raises(ValueError, match=r"phq9@1 needs a matrix with 10 columns"):
        score(LIB.get("phq9"), np.zeros((2, 9)))
