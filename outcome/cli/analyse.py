"""``outcome analyse``: reliable and clinically significant change of a CSV file.

It needs neither Flask nor the database, so this module imports only what the analysis
uses (csv, json, numpy via :mod:`outcome.clinical_significance` and
:mod:`outcome.core.change`, and the category names from :mod:`outcome.core.messages`):
100,000 ids take little more as a whole process than the same work called in a warm
process (docs/reliability.md, "Command line (issue 21)"; ``python -m bench.cli``).
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import click

from outcome.clinical_significance import AnalysisInputError
from outcome.clinical_significance import per_id_rows
from outcome.clinical_significance import read_pairs
from outcome.clinical_significance import summary
from outcome.core.change import CATEGORIES
from outcome.core.change import METHODS
from outcome.core.change import ChangeError
from outcome.core.change import CutoffType
from outcome.core.change import Method
from outcome.core.change import individual_change
from outcome.core.messages import TEMPLATES

DATA_ERROR = 2

# The user-facing names of the categories, in English: the templates' own wording, which is
# what outcome.services.explanations.render gives in English (it loads Babel for the other
# languages; tests/test_cli_analyse.py checks the two agree).
CATEGORY_LABELS: dict[str, str] = {
    name: TEMPLATES[f"change.category.{name}"].singular for name in CATEGORIES}


@click.command("analyse")
@click.argument("input_path", metavar="INPUT.csv",
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--id", "id_col", required=True, help="Column naming the person.")
@click.option("--time", "time_col", required=True, help="Column naming the time point.")
@click.option("--score", "score_col", required=True, help="Column with the score.")
@click.option("--pre", required=True, help="Value of the time column at pre.")
@click.option("--post", required=True, help="Value of the time column at post.")
@click.option("--reliability", type=float, help="Reliability of the measure (0 to 1).")
@click.option("--direction", required=True,
              type=click.Choice(["lower-is-better", "higher-is-better"]))
@click.option("--method", type=click.Choice(METHODS), default="jt", show_default=True)
@click.option("--cutoff", "cutoff_type", type=click.Choice(["a", "b", "c"]))
@click.option("--functional-mean", type=float)
@click.option("--functional-sd", type=float)
@click.option("--critical", type=float, default=1.96, show_default=True)
@click.option("--reliability-post", type=float, help="Post reliability (NK method).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write one row per id here.")
def analyse_command(input_path: Path, id_col: str, time_col: str, score_col: str, pre: str,
                    post: str, reliability: float | None, direction: str, method: Method,
                    cutoff_type: CutoffType | None, functional_mean: float | None,
                    functional_sd: float | None, critical: float,
                    reliability_post: float | None, as_json: bool,
                    output: Path | None) -> None:
    """Reliable and clinically significant change (Jacobson & Truax and variants).

    Reads a long-format CSV (one row per id and time point) and classifies each id as
    recovered, reliably improved, no reliable change, reliably deteriorated, or reliably
    deteriorated into the clinical range (Jacobson & Truax's "harmed": the keys of --json).
    """
    try:
        with input_path.open(encoding="utf-8-sig", newline="") as fh:
            pairs = read_pairs(fh, id_col=id_col, time_col=time_col, score_col=score_col,
                               pre=pre, post=post)
        result = individual_change(
            pairs.pre, pairs.post,
            direction="higher_is_worse" if direction == "lower-is-better" else "higher_is_better",
            method=method, reliability=reliability, reliability_post=reliability_post,
            critical_value=critical, cutoff_type=cutoff_type, functional_mean=functional_mean,
            functional_sd=functional_sd)
    except (AnalysisInputError, ChangeError) as exc:
        click.echo(f"error: {input_path}: {exc}", err=True)
        sys.exit(DATA_ERROR)
    if output:
        with output.open("w", encoding="utf-8", newline="") as fh:
            csv.writer(fh, lineterminator="\n").writerows(per_id_rows(result, pairs))
    data = summary(result, pairs)
    if as_json:
        click.echo(json.dumps(data))
        return
    click.echo(f"{data['n']} ids analysed, {data['n_dropped']} dropped (missing {pre!r} or "
               f"{post!r}); method {method.upper()}, critical value {critical}")
    if result.sd is not None:
        click.echo(f"SD of pre scores {result.sd:.4g}; reliability {reliability}")
    if result.s_diff is not None:
        click.echo(f"S_diff {result.s_diff:.4f} (reliable change: more than "
                   f"{critical * result.s_diff:.2f} points)")
    if result.cutoff is not None:
        click.echo(f"cutoff {result.cutoff:.4f} ({result.cutoff_source})")
    for name in CATEGORIES:  # the user-facing names; --json and -o keep the keys
        count = data["categories"][name]
        share = 100 * count / data["n"] if data["n"] else 0
        label = CATEGORY_LABELS[name]
        click.echo(f"  {label:<46} {count:>5}  {share:5.1f} %")
