"""Clinical significance of exported data (`outcome analyse`): read a long CSV, classify.

Mirrors the core of the clinicalsignificance R package (Claus): a long-format table
with an id, a time and a score column; the pre and post time points are named; ids
missing either point (or with an empty score there) are dropped and counted. The
classification is :func:`outcome.core.change.individual_change`.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from outcome.core.change import CATEGORIES
from outcome.core.change import ChangeResult
from outcome.core.spreadsheet import exact_number


class AnalysisInputError(ValueError):
    """The input cannot be analysed; the message names the line and column."""


@dataclass(frozen=True)
class Pairs:
    ids: list[str]
    pre: np.ndarray
    post: np.ndarray
    n_dropped: int


def read_pairs(lines: Iterable[str], *, id_col: str, time_col: str, score_col: str, pre: str,
               post: str) -> Pairs:
    """Pre and post scores per id from long-format CSV text."""
    reader = csv.reader(lines)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise AnalysisInputError("the file is empty") from None
    missing = [c for c in (id_col, time_col, score_col) if c not in header]
    if missing:
        raise AnalysisInputError(f"the header has no column {', '.join(map(repr, missing))} "
                                 f"(columns: {', '.join(header)})")
    col = {name: header.index(name) for name in (id_col, time_col, score_col)}
    values: dict[str, dict[str, float | None]] = {}
    order: list[str] = []
    seen_times: set[str] = set()
    for line, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise AnalysisInputError(f"line {line}: has {len(row)} cells; the header has "
                                     f"{len(header)}")
        ident, time, raw = (row[col[id_col]].strip(), row[col[time_col]].strip(),
                            row[col[score_col]].strip())
        seen_times.add(time)
        if time not in (pre, post):
            continue
        if ident not in values:
            values[ident] = {}
            order.append(ident)
        if time in values[ident]:
            raise AnalysisInputError(f"line {line}: id {ident!r} has a second row for time "
                                     f"{time!r}")
        if raw in ("", "NA", "NaN", "nan"):
            values[ident][time] = None
            continue
        try:
            score = float(raw)
        except ValueError:
            raise AnalysisInputError(f"line {line}, column {score_col}: {raw!r} is not a "
                                     "number") from None
        if not math.isfinite(score):
            raise AnalysisInputError(f"line {line}, column {score_col}: {raw!r} is not a "
                                     "finite number")
        values[ident][time] = score
    for point, name in ((pre, "--pre"), (post, "--post")):
        if point not in seen_times:
            raise AnalysisInputError(f"{name} {point!r} does not occur in column {time_col} "
                                     f"(it has {', '.join(sorted(seen_times)[:10])})")
    complete = [i for i in order if values[i].get(pre) is not None
                and values[i].get(post) is not None]
    return Pairs(complete, np.array([values[i][pre] for i in complete], dtype=float),
                 np.array([values[i][post] for i in complete], dtype=float),
                 len(order) - len(complete))


def summary(result: ChangeResult, pairs: Pairs) -> dict[str, Any]:
    """The JSON summary printed by ``outcome analyse --json``."""
    return {"n": len(pairs.ids), "n_dropped": pairs.n_dropped, "method": result.method,
            "cutoff": result.cutoff, "s_diff": result.s_diff, "categories": result.counts()}


def per_id_rows(result: ChangeResult, pairs: Pairs) -> Iterable[list[str]]:
    """Header and one row per id for ``-o``; numbers to full precision
    (:func:`exact_number`: whole numbers as integers, the rest round-trip exactly)."""
    yield ["id", "pre", "post", "index", "reliably_improved", "reliably_deteriorated",
           "clinical_pre", "functional_post", "category"]
    for i, ident in enumerate(pairs.ids):
        def flag(array: np.ndarray | None, i: int = i) -> str:
            return "" if array is None else ("true" if array[i] else "false")

        yield [ident, exact_number(pairs.pre[i]), exact_number(pairs.post[i]),
               exact_number(result.index[i]),
               flag(result.reliably_improved), flag(result.reliably_deteriorated),
               flag(result.clinical_pre), flag(result.functional_post),
               result.label(i) or ""]


__all__ = ["CATEGORIES", "AnalysisInputError", "Pairs", "per_id_rows", "read_pairs", "summary"]
