"""Individual change against published results.

Sources (data in ../shared/data/clinical-significance/):

- Jacobson, N. S., & Truax, P. (1991). Clinical significance: a statistical approach to
  defining meaningful change in psychotherapy research. J Consult Clin Psychol 59:12-19.
  Data: Jacobson et al. (1989), couples, Global Distress Scale (GDS, lower is better),
  via the R package clinicalsignificance (B. Claus), data set ``jacobson_1989``.
  Published: n = 26, Recovered 10, Improved 4, Unchanged 12, Deteriorated 0, Harmed 0
  (JT method, r = 0.80, cutoff a from the sample).
- Claus, Scherbaum & Bonnet (2020), Psychother Psychosom 89:258; data set ``claus_2020``
  of the same package. Published in the package's own tests
  (tests/testthat/_snaps/cs_distribution.md and cs_combined.md, commit 280c5da):
  HAMD (lower is better), time 1 vs 4, reliability 0.80.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from outcome.core.change import individual_change

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "clinical-significance"
pytestmark = pytest.mark.skipif(not DATA.exists(), reason="shared/data not beside the project")


def pairs(filename, id_col, time_col, score_col, pre, post):
    by_id: dict[str, dict[str, float]] = {}
    with (DATA / filename).open() as fh:
        for row in csv.DictReader(fh):
            if row[score_col] == "":
                continue
            by_id.setdefault(row[id_col], {})[row[time_col]] = float(row[score_col])
    complete = [(v[pre], v[post]) for v in by_id.values() if pre in v and post in v]
    x = np.array(complete)
    return x[:, 0], x[:, 1]


def test_jacobson_1989_gds_published_result():
    pre, post = pairs("jacobson_1989.csv", "subject", "time", "gds", "pre", "post")
    assert len(pre) == 26  # subjects with a missing value are dropped
    result = individual_change(pre, post, direction="higher_is_worse", reliability=0.80,
                               cutoff_type="a")
    assert result.counts() == {"recovered": 10, "improved": 4, "unchanged": 12,
                               "deteriorated": 0, "harmed": 0}


CLAUS_DISTRIBUTION = {  # improved, unchanged, deteriorated
    "jt": (29, 10, 1), "en": (32, 5, 3), "hll": (12, 16, 12), "gln": (29, 10, 1),
    "nk": (28, 11, 1),
}


@pytest.mark.parametrize("method", sorted(CLAUS_DISTRIBUTION))
def test_claus_2020_hamd_distribution_based(method):
    pre, post = pairs("claus_2020.csv", "id", "time", "hamd", "1", "4")
    assert len(pre) == 40
    result = individual_change(pre, post, direction="higher_is_worse", reliability=0.80,
                               reliability_post=0.5 if method == "nk" else None, method=method)
    counts = result.counts()
    assert (counts["improved"], counts["unchanged"], counts["deteriorated"]) == \
        CLAUS_DISTRIBUTION[method]
    assert counts["recovered"] == counts["harmed"] == 0  # no cutoff given


CLAUS_COMBINED = {  # recovered, improved, unchanged, deteriorated, harmed
    "jt": (26, 3, 10, 1, 0), "en": (26, 6, 5, 3, 0), "hll": (12, 0, 16, 11, 1),
    "gln": (26, 3, 10, 1, 0), "nk": (26, 2, 11, 1, 0),
}


@pytest.mark.parametrize("method", sorted(CLAUS_COMBINED))
def test_claus_2020_hamd_combined_cutoff_c(method):
    pre, post = pairs("claus_2020.csv", "id", "time", "hamd", "1", "4")
    result = individual_change(pre, post, direction="higher_is_worse", reliability=0.80,
                               reliability_post=0.5 if method == "nk" else None, method=method,
                               cutoff_type="c", functional_mean=8, functional_sd=8)
    counts = result.counts()
    assert tuple(counts[k] for k in ("recovered", "improved", "unchanged", "deteriorated",
                                     "harmed")) == CLAUS_COMBINED[method]
