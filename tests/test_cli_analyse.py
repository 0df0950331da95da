"""`outcome analyse` (issue 21): its light module agrees with the rest of the app, and the
reader's fast paths keep the reader's rules."""

from __future__ import annotations

import io

import numpy as np
import pytest

from outcome.cli.analyse import CATEGORY_LABELS
from outcome.clinical_significance import AnalysisInputError
from outcome.clinical_significance import exact_numbers
from outcome.clinical_significance import read_pairs
from outcome.core.change import CATEGORIES
from outcome.core.spreadsheet import exact_number
from outcome.services.explanations import render


def test_category_labels_are_what_render_gives_in_english():
    assert list(CATEGORY_LABELS) == list(CATEGORIES)
    for name, label in CATEGORY_LABELS.items():
        assert label == render(f"change.category.{name}", {})


def test_exact_numbers_is_exact_number_of_each():
    values = np.array([0.0, -0.0, 1.0, -3.0, 2.5, 1e-7, 2.0 ** 53, -(2.0 ** 53),
                       2.0 ** 53 - 1, 1e300, np.nan, np.inf, -np.inf, 0.1 + 0.2])
    assert exact_numbers(values) == [exact_number(v) for v in values]


def pairs(text: str, pre: str = "pre", post: str = "post"):
    return read_pairs(io.StringIO(text), id_col="id", time_col="t", score_col="s", pre=pre,
                      post=post)


def test_blank_rows_are_skipped_and_not_a_time():
    text = "id,t,s\n\n,,\n a ,pre, 3 \nb,post,1\n , , \nb,pre,NA\na,post,2\nc,mid,1\n"
    result = pairs(text)
    assert result.ids == ["a"] and result.pre.tolist() == [3.0]
    assert result.post.tolist() == [2.0] and result.n_dropped == 1
    with pytest.raises(AnalysisInputError, match=r"\(it has mid, post, pre\)"):
        pairs(text, post="after")


@pytest.mark.parametrize(("text", "message"), [
    ("id,t,s\na,pre,1\na,pre,2\n", "line 3: id 'a' has a second row for time 'pre'"),
    ("id,t,s\na,pre,1\nb,pre\n", "line 3: has 2 cells; the header has 3"),
    ("id,t,s\na,pre,x\n", "line 2, column s: 'x' is not a number"),
    ("id,t,s\na,pre,-NAN\n", "line 2, column s: '-NAN' is not a finite number"),
])
def test_bad_rows_are_named(text, message):
    with pytest.raises(AnalysisInputError, match=message):
        pairs(text)


def test_the_same_time_as_pre_and_post_is_a_second_row():
    with pytest.raises(AnalysisInputError, match="second row"):
        pairs("id,t,s\na,pre,1\na,pre,2\n", post="pre")
