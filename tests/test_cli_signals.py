"""`outcome analyse`, `outcome signals recompute` and `outcome model refit`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OUTCOME = str(Path(sys.executable).parent / "outcome")
DATA = ROOT.parent / "shared" / "data" / "clinical-significance"


def run(*args, env=None):
    env = env or {k: v for k, v in os.environ.items() if not k.startswith("OUTCOME_")}
    return subprocess.run([OUTCOME, *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.skipif(not DATA.exists(), reason="shared/data not beside the project")
def test_analyse_reproduces_jacobson_truax_as_json_and_per_id(tmp_path):
    # Jacobson & Truax (1991): GDS, r = 0.80, cutoff a: 10 / 4 / 12 / 0 / 0 of 26.
    out = tmp_path / "ids.csv"
    result = run("analyse", str(DATA / "jacobson_1989.csv"), "--id", "subject", "--time",
                 "time", "--score", "gds", "--pre", "pre", "--post", "post", "--reliability",
                 "0.8", "--direction", "lower-is-better", "--cutoff", "a", "--json", "-o",
                 str(out))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["n"] == 26 and data["n_dropped"] == 4 and data["method"] == "jt"
    assert data["categories"] == {"recovered": 10, "improved": 4, "unchanged": 12,
                                  "deteriorated": 0, "harmed": 0}
    assert data["s_diff"] == pytest.approx(3.859, abs=1e-3)
    lines = out.read_text().splitlines()
    assert lines[0].startswith("id,pre,post,index") and len(lines) == 27


@pytest.mark.skipif(not DATA.exists(), reason="shared/data not beside the project")
def test_analyse_without_cutoff_has_no_recovered_or_harmed():
    result = run("analyse", str(DATA / "claus_2020.csv"), "--id", "id", "--time", "time",
                 "--score", "hamd", "--pre", "1", "--post", "4", "--reliability", "0.8",
                 "--direction", "lower-is-better", "--method", "hll", "--json")
    data = json.loads(result.stdout)
    assert data["categories"] == {"recovered": 0, "improved": 12, "unchanged": 16,
                                  "deteriorated": 12, "harmed": 0}
    assert data["cutoff"] is None and data["s_diff"] is None


@pytest.mark.parametrize(("content", "args", "message"), [
    ("pid,t,s\n1,pre,10\n", [], "the header has no column 'id'"),
    ("id,t,s\n1,pre,x\n1,post,5\n", [], "line 2, column s: 'x' is not a number"),
    ("id,t,s\n1,pre,4\n1,pre,5\n", [], "line 3: id '1' has a second row for time 'pre'"),
    ("id,t,s\n1,before,4\n1,post,5\n", [], "--pre 'pre' does not occur in column t"),
    ("id,t,s\n1,pre,4\n1,post,5\n2,pre,6\n2,post,2\n", ["--method", "nk"],
     "the NK method needs the post reliability"),
])
def test_analyse_bad_input_exits_2_with_a_location(tmp_path, content, args, message):
    path = tmp_path / "in.csv"
    path.write_text(content)
    result = run("analyse", str(path), "--id", "id", "--time", "t", "--score", "s", "--pre",
                 "pre", "--post", "post", "--reliability", "0.8", "--direction",
                 "lower-is-better", *args)
    assert result.returncode == 2
    assert message in result.stderr


def test_recompute_and_refit_commands(runner, db_session, clinic, make_user, make_client,
                                      make_episode):
    import datetime as dt

    from outcome.core.answers import parse_answers
    from outcome.services.submissions import submit_administration
    from questionnaires.loader import builtin_library

    library = builtin_library()
    phq = library.get("phq9")
    episode = make_episode(make_client(make_user()), closed_on=dt.date(2026, 12, 1),
                           end_reason="completed")
    for week, level in enumerate([3, 2, 2, 1]):
        answers = parse_answers(phq, {f"phq9_{i}": level for i in range(1, 10)})
        when = dt.datetime(2026, 9, 1, tzinfo=dt.UTC) + dt.timedelta(weeks=week)
        submit_administration(db_session, episode=episode, instrument=phq, answers=answers,
                              completed_dt=when, idempotency_key=f"k{week}", library=library,
                              now=when)
    db_session.commit()
    result = runner.invoke(args=["signals", "recompute", "--clinic", clinic.slug])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Recomputed signals for 1 episodes")
    result = runner.invoke(args=["model", "refit", "--clinic", clinic.slug])
    assert result.exit_code == 0, result.output
    assert "phq9" in result.output
    assert "1 of the 50 episodes (three or more measures) needed" in result.output
    assert "no clinic 'nope'" in runner.invoke(args=["model", "refit", "--clinic",
                                                     "nope"]).output
