"""Benchmark: vectorised scoring of 1,000,000 PHQ-9 administrations.

Compares, in one run on one machine:

- the floor: a plain numpy row sum over the same int8 matrix (``matrix.sum(axis=1)``);
- ``outcome.core.scoring.score`` on that matrix (totals, prorating, validity, bands,
  critical items);
- a straightforward per-row Python scorer doing the same work from the same definition
  (reverse keys, prorating with half-up rounding, subscales, transform, bands, critical
  items, rules), timed on a subset and compared per row;
- for transparency, a hand-specialised PHQ-9 loop that skips the definition (no reverse
  keys, subscales or rules to look at): the fastest plain Python can be for this one
  instrument.

Targets (issue 3): within 10x of the floor, and at least 50x faster than per-row Python.
Run: ``make bench`` or ``.venv/bin/python -m bench.scoring [--rows N]``.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from outcome.core.scoring import score
from questionnaires.loader import builtin_library


def make_matrix(rows: int, seed: int = 1) -> np.ndarray:
    """PHQ-9 answers (10 columns: 9 scored + difficulty) as int8, -1 = missing (~1 %)."""
    rng = np.random.default_rng(seed)
    matrix = rng.integers(0, 4, size=(rows, 10), dtype=np.int8)
    matrix[rng.random((rows, 10)) < 0.01] = -1
    return matrix


def python_score(instrument, rows: list[list[int]]) -> list[dict]:
    """The straightforward per-row scorer: the definition-driven rules, one row at a time."""
    ids = [item.id for item in instrument.items if item.is_numeric]
    position = {item_id: j for j, item_id in enumerate(ids)}

    def aggregate(values, item_ids, max_missing):
        answered = [values[i] for i in item_ids if values[i] is not None]
        missing = len(item_ids) - len(answered)
        if not answered or missing > max_missing:
            return None, missing
        n = len(item_ids) if instrument.scoring_method == "sum" else 1
        factor = 10 ** instrument.precision
        return (2 * sum(answered) * n * factor + len(answered)) // (2 * len(answered)) \
            / factor, missing

    out = []
    for row in rows:
        values = {}
        for item in instrument.items:
            if not item.is_numeric:
                continue
            v = row[position[item.id]]
            if v < 0:
                values[item.id] = None
            elif item.is_reverse:
                values[item.id] = int(item.minimum + item.maximum) - v
            else:
                values[item.id] = v
        scored = [item.id for item in instrument.scored_items]
        total, missing = aggregate(values, scored, instrument.max_missing)
        result = {"total": total, "valid": total is not None,
                  "prorated": total is not None and missing > 0,
                  "subscales": {s.id: aggregate(values, s.items, s.max_missing)[0]
                                for s in instrument.subscales}}
        primary = total
        if instrument.transform is not None and total is not None:
            primary = total * instrument.transform.multiplier + instrument.transform.offset
        result["band"] = None
        for band in instrument.bands:
            if primary is not None and band.minimum <= primary:
                result["band"] = band.label
        result["critical"] = [c.item for c in instrument.critical_items
                              if row[position[c.item]] >= c.threshold]
        result["critical_unanswered"] = [c.item for c in instrument.critical_items
                                         if row[position[c.item]] < 0]
        out.append(result)
    return out


def phq9_loop(rows: list[list[int]], bands: list[tuple[int, int, str]]) -> list[tuple]:
    """A loop written for the PHQ-9 alone, reading no definition."""
    out = []
    for row in rows:
        answered = [v for v in row[:9] if v >= 0]
        missing = 9 - len(answered)
        if missing > 1:
            out.append((None, None, False, False, row[8] >= 1))
            continue
        total = sum(answered)
        if missing:
            total = (2 * total * 9 + len(answered)) // (2 * len(answered))  # half up
        band = next(label for low, high, label in bands if low <= total <= high)
        out.append((total, band, True, missing > 0, row[8] >= 1))
    return out


def best_of(repeats: int, fn) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--python-rows", type=int, default=100_000,
                        help="rows for the per-row Python scorer (compared per row)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    phq = builtin_library().get("phq9")
    matrix = make_matrix(args.rows)
    floor = best_of(5, lambda: matrix.sum(axis=1))
    vectorised = best_of(5, lambda: score(phq, matrix))

    subset = matrix[: args.python_rows].tolist()
    bands = [(int(b.minimum), int(b.maximum), b.label) for b in phq.bands]
    scale = args.rows / args.python_rows
    python = best_of(1, lambda: python_score(phq, subset)) * scale
    specialised = best_of(1, lambda: phq9_loop(subset, bands)) * scale

    # The implementations must agree before their speeds mean anything.
    table = score(phq, matrix[: args.python_rows])
    reference = python_score(phq, subset)
    loop = phq9_loop(subset, bands)
    for i in range(args.python_rows):
        got = None if np.isnan(table.total[i]) else float(table.total[i])
        assert got == reference[i]["total"] == loop[i][0], (i, got, reference[i], loop[i])
        assert table.band_label(i) == reference[i]["band"]

    result = {
        "rows": args.rows,
        "floor_s": round(floor, 4),
        "vectorised_s": round(vectorised, 4),
        "python_s_estimated": round(python, 2),
        "vectorised_over_floor": round(vectorised / floor, 1),
        "python_over_vectorised": round(python / vectorised, 1),
        "specialised_loop_s_estimated": round(specialised, 2),
        "specialised_over_vectorised": round(specialised / vectorised, 1),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"{args.rows:,} PHQ-9 administrations")
    print(f"  floor (int8 row sum)     {floor * 1000:9.1f} ms")
    print(f"  vectorised score()       {vectorised * 1000:9.1f} ms  "
          f"= {result['vectorised_over_floor']}x the floor (target <= 10x)")
    print(f"  per-row Python           {python * 1000:9.1f} ms  (from {args.python_rows:,} rows)"
          f"  = {result['python_over_vectorised']}x slower than vectorised (target >= 50x)")
    print(f"  PHQ-9-only Python loop   {specialised * 1000:9.1f} ms  "
          f"= {result['specialised_over_vectorised']}x slower (reads no definition; "
          "for reference)")


if __name__ == "__main__":
    main()
