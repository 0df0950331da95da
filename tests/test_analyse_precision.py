"""`outcome analyse -o FILE` writes every number so that it reads back exactly."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from outcome.clinical_significance import per_id_rows
from outcome.clinical_significance import read_pairs
from outcome.core.change import individual_change
from outcome.core.spreadsheet import exact_number

ROOT = Path(__file__).resolve().parent.parent
OUTCOME = str(Path(sys.executable).parent / "outcome")
DATA = "id,t,s\n1,pre,12.345678901\n1,post,3\n2,pre,20\n2,post,7.0000001\n3,pre,15.5\n3,post,14\n"


@pytest.mark.parametrize(("value", "text"), [
    (12.345678901, "12.345678901"), (12.0, "12"), (-3.0, "-3"), (0.1 + 0.2, "0.30000000000000004"),
    (1e-07, "1e-07"), (123456789.125, "123456789.125"), (float("nan"), ""),
])
def test_exact_number_round_trips(value, text):
    assert exact_number(value) == text
    if text:
        assert float(text) == value


def _rows(text: str) -> dict[str, dict[str, str]]:
    return {r["id"]: r for r in csv.DictReader(io.StringIO(text))}


def test_per_id_rows_keep_full_precision():
    pairs = read_pairs(io.StringIO(DATA), id_col="id", time_col="t", score_col="s",
                       pre="pre", post="post")
    result = individual_change(pairs.pre, pairs.post, direction="higher_is_worse",
                               reliability=0.8)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(per_id_rows(result, pairs))
    rows = _rows(out.getvalue())
    assert rows["1"]["pre"] == "12.345678901" and float(rows["1"]["pre"]) == 12.345678901
    assert (rows["1"]["post"], rows["2"]["pre"]) == ("3", "20")  # integers stay integers
    assert rows["2"]["post"] == "7.0000001"  # 6 significant digits would say 7
    assert [float(rows[k]["index"]) for k in "123"] == list(result.index)


def test_analyse_output_file_round_trips(tmp_path):
    source, out = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_text(DATA)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTCOME_")}
    env["PYTHONPATH"] = str(ROOT)  # this checkout's code, whichever checkout installed it
    done = subprocess.run([OUTCOME, "analyse", str(source), "--id", "id", "--time", "t",
                           "--score", "s", "--pre", "pre", "--post", "post", "--reliability",
                           "0.8", "--direction", "lower-is-better", "-o", str(out)],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = _rows(out.read_text())
    assert float(rows["1"]["pre"]) == 12.345678901 and rows["1"]["pre"] == "12.345678901"
    assert rows["2"]["pre"] == "20" and rows["2"]["post"] == "7.0000001"
