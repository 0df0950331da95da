"""`outcome score` and `outcome instruments`.

A few tests run the command as a real process (``run``): the console script, its exit
status, standard output and error as an operator sees them, and the instance folder read
from the environment; one such test per command family and outcome (written file, exit 2,
exit 1). The others check what the command does with its input and run it in this process
(``invoke``, click's runner on the same ``outcome`` group, the same environment): the same
code path without a Python start and its imports (about 0.5 s of CPU a call).
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from questionnaires.fhir import validate_resource
from tests.inprocess import invoke_raising as invoke

ROOT = Path(__file__).resolve().parent.parent
OUTCOME = str(Path(sys.executable).parent / "outcome")
HEADER = "id," + ",".join(f"phq9_{i}" for i in range(1, 10)) + ",note\n"


@pytest.fixture
def env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTCOME_")}
    env["OUTCOME_INSTANCE_PATH"] = str(tmp_path / "instance")
    return env


def run(env, *args):
    return subprocess.run([OUTCOME, *args], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def write_csv(tmp_path, body: str, name="in.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + body)
    return path


@pytest.mark.slow
def test_score_writes_totals_bands_and_flags(env, tmp_path):
    source = write_csv(tmp_path, "P1,3,2,3,2,1,2,2,2,,first\nP2,0,0,0,0,0,0,0,0,1,"
                                 "=HYPERLINK(\"http://x\")\n")
    out = tmp_path / "out.csv"
    result = run(env, "score", str(source), "--instrument", "phq9", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "Scored 2 rows with phq9@1" in result.stderr
    rows = list(csv.DictReader(out.open()))
    assert [(r["id"], r["total"], r["band"], r["valid"], r["prorated"], r["critical"],
             r["critical_unanswered"]) for r in rows] == [
        ("P1", "19", "moderately severe", "true", "true", "false", "true"),
        ("P2", "1", "minimal", "true", "false", "true", "false")]
    assert rows[1]["note"] == "'=HYPERLINK(\"http://x\")"  # formula injection defused


def test_invalid_row_exits_2_names_line_column_problem_and_writes_nothing(env, tmp_path):
    source = write_csv(tmp_path, "P1,1,1,1,1,1,1,1,1,1,\nP2,1,1,7,1,1,1,1,1,1,\n")
    out = tmp_path / "out.csv"
    out.write_text("previous results\n")
    result = run(env, "score", str(source), "-i", "phq9", "-o", str(out))
    assert result.returncode == 2
    assert (f"error: {source}: line 3 (id P2), column phq9_3: 7 is not one of the answer "
            "options (0, 1, 2, 3).") in result.stderr
    assert "No output written: 1 of 2 rows are invalid" in result.stderr
    assert out.read_text() == "previous results\n"  # nothing already stored is lost
    assert not list(tmp_path.glob("*.partial"))


def test_skip_invalid_writes_the_valid_rows(env, tmp_path):
    source = write_csv(tmp_path, "P1,1,1,1,1,1,1,1,1,1,\nP2,1,1,x,1,1,1,1,1,1,\n"
                                 "P3,0,0,0,0,0,0,0,0,0,\n")
    result = invoke(env, "score", str(source), "-i", "phq9", "--skip-invalid")
    assert result.returncode == 0, result.stderr
    ids = [r["id"] for r in csv.DictReader(io.StringIO(result.stdout))]
    assert ids == ["P1", "P3"]
    assert "skipped: " in result.stderr and "line 3 (id P2), column phq9_3" in result.stderr
    assert "skipped 1 invalid" in result.stderr


def test_keep_incomplete_writes_invalid_rows_as_such(env, tmp_path):
    source = write_csv(tmp_path, "P1,1,1,1,1,1,1,1,,,\n")
    result = invoke(env, "score", str(source), "-i", "phq9", "--keep-incomplete")
    assert result.returncode == 0, result.stderr
    [row] = list(csv.DictReader(io.StringIO(result.stdout)))
    assert (row["total"], row["valid"], row["band"]) == ("", "false", "")


@pytest.mark.parametrize(("header", "message"), [
    ("who,phq9_1\n", "the header has no 'id' column"),
    ("id,phq9_1,phq9_2\n", "lacks item column(s) phq9_3"),
    (HEADER.replace(",note", ",total"), "already has column(s) total"),
])
def test_header_problems(env, tmp_path, header, message):
    path = tmp_path / "h.csv"
    path.write_text(header + "1,1,1\n")
    result = invoke(env, "score", str(path), "-i", "phq9")
    assert result.returncode == 2
    assert message in result.stderr


def test_unknown_instrument_lists_known_ones(env, tmp_path):
    result = invoke(env, "score", str(write_csv(tmp_path, "")), "-i", "phq8")
    assert result.returncode == 2
    assert "unknown instrument 'phq8'" in result.stderr and "phq9" in result.stderr


def test_ragged_and_id_less_rows(env, tmp_path):
    result = invoke(env, "score", str(write_csv(tmp_path, "P1,1,1\n,0,0,0,0,0,0,0,0,0,\n")),
                   "-i", "phq9")
    assert result.returncode == 2
    assert "line 2 (id P1): has 3 cells; the header has 11" in result.stderr
    assert "line 3, column id: the id is empty" in result.stderr


def test_who5_and_pcl5_columns(env, tmp_path):
    path = tmp_path / "who.csv"
    path.write_text("id,who5_1,who5_2,who5_3,who5_4,who5_5\nW1,3,3,2,2,2\n")
    [row] = list(csv.DictReader(io.StringIO(invoke(env, "score", str(path), "-i",
                                                   "who5").stdout)))
    assert (row["total"], row["index"], row["band"]) == ("12", "48", "poor well-being")
    path = tmp_path / "pcl.csv"
    path.write_text("id," + ",".join(f"pcl5_{i}" for i in range(1, 21)) + "\nT1,"
                    + ",".join(["2"] * 20) + "\n")
    [row] = list(csv.DictReader(io.StringIO(invoke(env, "score", str(path), "-i",
                                                   "pcl5").stdout)))
    assert (row["total"], row["B"], row["dsm5_provisional"]) == ("40", "10", "true")


@pytest.mark.slow
def test_instruments_list_show_and_export(env, tmp_path):
    listing = invoke(env, "instruments", "list")
    assert listing.returncode == 0, listing.stderr
    assert "wai_sr" in listing.stdout and "wording not installed" in listing.stdout
    show = invoke(env, "instruments", "show", "phq9")
    assert "Little interest or pleasure in doing things" in show.stdout
    assert "critical: phq9_9 >= 1 (urgent)" in show.stdout
    out = tmp_path / "phq9.json"
    export = invoke(env, "instruments", "export-fhir", "phq9", "-o", str(out))
    assert export.returncode == 0, export.stderr
    assert validate_resource(json.loads(out.read_text())) == []


@pytest.mark.slow
def test_validate_reports_every_problem_with_exit_2(env, tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("id: mine\nversion: 1\nname: x\nrole: outcome\n")
    result = invoke(env, "instruments", "validate", str(path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert f"{path}: version: must be text; got 1" in lines
    assert any("missing required field 'items'" in line for line in lines)
    good = tmp_path / "overlay.yaml"
    good.write_text("overlay_for: srs_vas@1\nitems: {srs_1: A, srs_2: B, srs_3: C, srs_4: D}\n")
    result = invoke(env, "instruments", "validate", str(good))
    assert result.returncode == 0, result.stderr
    assert "ok: srs_vas@1, 4 items, wording installed" in result.stdout


def test_clinic_overlay_folder_is_used(env, tmp_path):
    folder = tmp_path / "instance" / "instruments"
    folder.mkdir(parents=True)
    (folder / "srs.yaml").write_text("overlay_for: srs_vas@1\nitems: {srs_1: Alpha, srs_2: B, "
                                     "srs_3: C, srs_4: D}\n")
    assert "srs_1      Alpha" in run(env, "instruments", "show", "srs_vas").stdout
    (folder / "broken.yaml").write_text("overlay_for: srs_vas@1\nitems: {srs_9: x}\n")
    result = run(env, "instruments", "list")
    assert result.returncode == 1
    assert "broken.yaml: items.srs_9: srs_vas has no item 'srs_9'" in result.stderr


def test_the_app_refuses_to_start_with_a_broken_clinic_file(tmp_path, make_app):
    from outcome.config import ConfigError

    folder = tmp_path / "defs"
    folder.mkdir()
    (folder / "x.yaml").write_text("overlay_for: nope@1\n")
    with pytest.raises(ConfigError, match=r"x\.yaml: overlay_for: no built-in instrument"):
        make_app(INSTRUMENTS_DIR=str(folder))
