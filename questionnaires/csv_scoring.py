"""Batch scoring of CSV files: one row per administration, one column per item.

Every row goes through :func:`outcome.core.answers.parse_answers` (the one validation
path); valid rows are scored in chunks by the vectorised scorer. Output is the input
columns plus ``total``, the transformed score (WHO-5 ``index``), each subscale,
``band``, ``valid``, ``prorated``, ``critical``, ``critical_unanswered`` (instruments
with critical items) and each rule (PCL-5 ``dsm5_provisional``: ``true``, ``false``, or
``undetermined`` when blank items could change it). Echoed text cells are made safe for
spreadsheets.

Pure apart from the text streams it is given; the CLI opens and replaces files.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from typing import IO

import numpy as np

from outcome.core.answers import Answers
from outcome.core.answers import numeric_item_ids
from outcome.core.answers import parse_answers
from outcome.core.instruments import Instrument
from outcome.core.scoring import ScoreTable
from outcome.core.scoring import score
from outcome.core.spreadsheet import safe_cell

CHUNK_ROWS = 20_000
# A rule's three states (outcome.core.scoring): undetermined is never written as false.
RULE_CELLS = {True: "true", False: "false", None: "undetermined"}


@dataclass(frozen=True)
class RowProblem:
    """One problem in the input: its line (1 = header), the row's id, the column, what."""

    line: int
    row_id: str | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f" (id {self.row_id})" if self.row_id else "")
        if self.column:
            where += f", column {self.column}"
        return f"{where}: {self.message}"


class HeaderError(Exception):
    """The header cannot be scored (no id column, missing item columns...)."""


@dataclass
class CsvResult:
    rows_read: int = 0
    rows_written: int = 0
    problems: list[RowProblem] = field(default_factory=list)

    @property
    def invalid_rows(self) -> int:
        return len({p.line for p in self.problems})


def output_columns(instrument: Instrument) -> list[str]:
    """Columns added to the input, in order."""
    columns = ["total"]
    if instrument.transform is not None:
        columns.append(instrument.transform.id)
    columns += [s.id for s in instrument.subscales]
    columns += ["band", "valid", "prorated", "critical"]
    if instrument.critical_items:
        # An unanswered critical item must be visible, never read as "not critical".
        columns.append("critical_unanswered")
    columns += [r.id for r in instrument.rules]
    return columns


def _check_header(instrument: Instrument, header: list[str]) -> None:
    if "id" not in header:
        raise HeaderError("the header has no 'id' column")
    duplicates = sorted({c for c in header if header.count(c) > 1})
    if duplicates:
        raise HeaderError(f"the header repeats {', '.join(duplicates)}")
    missing = [i.id for i in instrument.scored_items if i.id not in header]
    if missing:
        raise HeaderError(f"the header lacks item column(s) {', '.join(missing)} of "
                          f"{instrument.short_name}")
    clashes = [c for c in output_columns(instrument) if c in header]
    if clashes:
        raise HeaderError(f"the input already has column(s) {', '.join(clashes)}, which the "
                          "output adds; rename them")


def _format(value: float, precision: int) -> str:
    return "" if np.isnan(value) else f"{value:.{precision}f}"


def _score_columns(instrument: Instrument, table: ScoreTable, index: int) -> list[str]:
    p = instrument.precision
    cells = [_format(table.total[index], p)]
    if table.transformed is not None:
        cells.append(_format(table.transformed[index], p))
    cells += [_format(table.subscales[s.id][index], p) for s in instrument.subscales]
    cells.append(table.band_label(index) or "")
    cells += ["true" if table.valid[index] else "false",
              "true" if table.prorated[index] else "false",
              "true" if table.critical[index] else "false"]
    if instrument.critical_items:
        cells.append("true" if table.critical_unanswered[index] else "false")
    cells += [RULE_CELLS[table.rule_state(r.id, index)] for r in instrument.rules]
    return cells


def score_csv(instrument: Instrument, source: Iterable[str], out: IO[str], *,
              skip_invalid: bool = False, keep_incomplete: bool = False,
              on_line: Callable[[str], None] | None = None) -> CsvResult:
    """Score the CSV text ``source`` (lines) into ``out``.

    Without ``skip_invalid`` the caller must discard ``out`` when ``result.problems`` is
    not empty (every invalid row is reported, none is written). With it, invalid rows are
    reported and left out. ``keep_incomplete`` writes rows with too many unanswered items
    as invalid (empty total, ``valid`` false) instead of treating them as errors.
    ``on_line`` is called with each raw line read (for progress bars).
    """
    def lines() -> Iterator[str]:
        for line in source:
            if on_line:
                on_line(line)
            yield line

    reader = csv.reader(lines())
    try:
        header = next(reader)
    except StopIteration:
        raise HeaderError("the file is empty") from None
    header = [h.strip() for h in header]
    _check_header(instrument, header)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([safe_cell(h) for h in header] + output_columns(instrument))

    item_columns = [(header.index(i.id), i.id) for i in instrument.items if i.id in header]
    id_column = header.index("id")
    numeric_ids = numeric_item_ids(instrument)
    result = CsvResult()
    chunk_rows: list[list[str]] = []
    chunk_values: list[np.ndarray] = []

    def flush() -> None:
        if not chunk_rows:
            return
        table = score(instrument, np.vstack(chunk_values))
        if not result.problems or skip_invalid:
            for index, row in enumerate(chunk_rows):
                writer.writerow([safe_cell(c) for c in row]
                                + _score_columns(instrument, table, index))
        result.rows_written += len(chunk_rows)
        chunk_rows.clear()
        chunk_values.clear()

    for line_number, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        result.rows_read += 1
        row_id = row[id_column].strip() if id_column < len(row) else ""
        if len(row) != len(header):
            result.problems.append(RowProblem(line_number, row_id or None, None,
                                              f"has {len(row)} cells; the header has "
                                              f"{len(header)}"))
            continue
        if not row_id:
            result.problems.append(RowProblem(line_number, None, "id", "the id is empty"))
            continue
        mapping = {item_id: row[j].strip() for j, item_id in item_columns}
        parsed = parse_answers(instrument, mapping, allow_incomplete=keep_incomplete)
        if not isinstance(parsed, Answers):
            for error in parsed:
                message = error.message.removeprefix(f"{error.item}: ")
                result.problems.append(RowProblem(line_number, row_id, error.item, message))
            continue
        chunk_rows.append(row)
        chunk_values.append(np.array([parsed.values.get(i, np.nan) for i in numeric_ids]))
        if len(chunk_rows) >= CHUNK_ROWS:
            flush()
    flush()
    if result.problems and not skip_invalid:
        result.rows_written = 0
    return result
