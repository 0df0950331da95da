"""The PCL-5 DSM-5 provisional rule has three states (domain.md section 2).

An item rated 2 (Moderately) or higher is endorsed; the rule needs >= 1 of B (items
1-5), >= 1 of C (6-7), >= 2 of D (8-14) and >= 2 of E (15-20). With blank items it is
met when the answered items alone meet it, not met only when it could not be met even if
every blank were endorsed, and undetermined otherwise. Each case sits at a boundary.
"""

from __future__ import annotations

import numpy as np
import pytest

from outcome.core.answers import Answers
from outcome.core.answers import parse_answers
from outcome.core.scoring import score
from outcome.core.scoring import score_answers
from questionnaires.loader import builtin_library

PCL5 = builtin_library().get("pcl5")
MINIMAL = {1: 2, 6: 2, 8: 2, 9: 2, 15: 2, 16: 2}  # exactly the minimum in every cluster


def answers(endorsed: dict[int, int], blank: tuple[int, ...] = (), rest: int = 1) -> dict:
    """Item values: ``endorsed`` as given, ``blank`` left out, every other item ``rest``."""
    return {f"pcl5_{i}": endorsed.get(i, rest) for i in range(1, 21) if i not in blank}


def rule(values: dict) -> bool | None:
    parsed = parse_answers(PCL5, values, allow_incomplete=True)
    assert isinstance(parsed, Answers), parsed
    return score_answers(PCL5, parsed).rules["dsm5_provisional"]


@pytest.mark.parametrize(("endorsed", "blank", "expected"), [
    # Complete forms: the minimum in every cluster is met; one fewer anywhere is not.
    (MINIMAL, (), True),
    ({**MINIMAL, 1: 1}, (), False),   # B: 0 of 1
    ({**MINIMAL, 6: 1}, (), False),   # C: 0 of 1
    ({**MINIMAL, 9: 1}, (), False),   # D: 1 of 2
    ({**MINIMAL, 16: 1}, (), False),  # E: 1 of 2
    ({**MINIMAL, 1: 4}, (), True),    # "Extremely" counts like "Moderately"
    # Blanks that cannot change a met rule: met with the answered items alone.
    (MINIMAL, (2, 3, 7, 10, 20), True),
    # Blanks that could meet the missing cluster: undetermined, never "no".
    ({**MINIMAL, 1: 1}, (2,), None),             # B: 0 endorsed, item 2 blank
    ({**MINIMAL, 6: 1}, (7,), None),             # C: 0 endorsed, item 7 blank
    ({**MINIMAL, 9: 1}, (10,), None),            # D: 1 endorsed, one blank makes 2
    ({**MINIMAL, 8: 1, 9: 1}, (10, 11), None),   # D: 0 endorsed, two blanks make 2
    ({**MINIMAL, 16: 1}, (17,), None),           # E: 1 endorsed, one blank makes 2
    # Not met even if every blank were endorsed: "no", whatever else is blank.
    ({**MINIMAL, 8: 1, 9: 1}, (10,), False),     # D: 0 endorsed, one blank makes 1 of 2
    ({**MINIMAL, 1: 1}, (6, 7, 20), False),      # B complete at 0; blanks elsewhere
    ({**MINIMAL, 15: 1, 16: 1}, (17,), False),   # E: 0 endorsed, one blank makes 1 of 2
])
def test_rule_at_its_boundaries(endorsed, blank, expected):
    assert rule(answers(endorsed, blank)) is expected


def test_a_blank_is_never_read_as_not_endorsed_or_as_endorsed():
    # All answered at 1 (nothing endorsed) but cluster C entirely blank: still no (B, D
    # and E have nothing endorsed), so the blank alone does not make it undetermined.
    assert rule(answers({}, (6, 7))) is False
    # Everything endorsed except C, which is blank: undetermined, not yes.
    assert rule(answers({}, (6, 7), rest=3)) is None


def test_the_batch_scorer_gives_the_same_three_states():
    rows = []
    for endorsed, blank in [(MINIMAL, ()), ({**MINIMAL, 9: 1}, (10,)),
                            ({**MINIMAL, 8: 1, 9: 1}, (10,))]:
        values = answers(endorsed, blank)
        rows.append([values.get(f"pcl5_{i}", np.nan) for i in range(1, 21)])
    table = score(PCL5, np.array(rows, dtype=float))
    assert [table.rule_state("dsm5_provisional", i) for i in range(3)] == [True, None, False]
    # Integer input marks a blank with a negative number: the same answer.
    ints = np.nan_to_num(np.array(rows), nan=-1).astype(np.int8)
    assert [score(PCL5, ints).rule_state("dsm5_provisional", i) for i in range(3)] == [
        True, None, False]


def test_undetermined_is_stored_as_null_beside_the_count_of_blanks():
    parsed = parse_answers(PCL5, answers({**MINIMAL, 9: 1}, (10, 11, 12)),
                           allow_incomplete=True)
    assert isinstance(parsed, Answers)
    stored = score_answers(PCL5, parsed).as_json()
    assert stored["rules"] == {"dsm5_provisional": None}
    assert stored["n_missing"] == 3 and stored["valid"] is False  # PCL-5 max_missing 0


def test_csv_scoring_writes_undetermined_never_false():
    import csv
    import io

    from questionnaires.csv_scoring import score_csv

    header = "id," + ",".join(f"pcl5_{i}" for i in range(1, 21))
    lines = [header]
    for row_id, endorsed, blank in [("met", MINIMAL, (3,)), ("open", {**MINIMAL, 9: 1}, (10,)),
                                    ("no", {**MINIMAL, 8: 1, 9: 1}, (10,))]:
        values = answers(endorsed, blank)
        lines.append(row_id + "," + ",".join(str(values.get(f"pcl5_{i}", ""))
                                             for i in range(1, 21)))
    out = io.StringIO()
    result = score_csv(PCL5, [line + "\n" for line in lines], out, keep_incomplete=True)
    assert not result.problems
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(out.getvalue()))}
    assert {k: r["dsm5_provisional"] for k, r in rows.items()} == {
        "met": "true", "open": "undetermined", "no": "false"}
    assert rows["open"]["valid"] == "false" and rows["open"]["total"] == ""


def test_reliable_change_is_ten_points_from_the_definition_and_says_so():
    # The upper end of the 5-10 points of the US National Center for PTSD (unverified).
    change = PCL5.reliable_change
    assert change is not None and change.points == 10 and change.is_verified is False
    assert "National Center for PTSD" in change.source  # shown "(unverified)" beside it


def test_instruments_show_states_the_rule():
    from click.testing import CliRunner

    from outcome.cli.main import cli

    shown = CliRunner().invoke(cli, ["instruments", "show", "pcl5"]).output
    assert ("rule dsm5_provisional: Probable PTSD by the DSM-5 rule: item >= 2 endorsed; "
            "B >= 1, C >= 1, D >= 2, E >= 2; undetermined when blank items could change it"
            ) in shown
    assert "reliable change: 10 points (unverified)" in shown
