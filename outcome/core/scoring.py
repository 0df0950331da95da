"""Vectorised scoring: many administrations of one instrument in one numpy pass.

Input is an item matrix, one row per administration and one column per numeric item in
definition order (:func:`outcome.core.answers.numeric_item_ids`). Missing answers are
NaN in a float matrix, or any negative number in an integer matrix (every built-in
item is scored from 0 or 1 upwards). A single administration goes through the same
code as a row of one.

Rules (domain.md section 2):

- reverse-keyed items are scored ``min + max - value``;
- ``sum``: total = sum of scored items. With k of N scored items missing and
  k <= ``max_missing``, the total is prorated: ``sum * N / (N - k)``, rounded half-up
  to the instrument's precision. Beyond ``max_missing`` the total is invalid (NaN),
  never zero;
- ``mean``: total = mean of the answered scored items, rounded half-up likewise;
- subscales follow the same rules with their own ``max_missing``;
- a transform gives ``total * multiplier + offset`` (WHO-5 index = raw x 4);
- bands, cutoff and reliable change refer to the primary score (total or transformed);
- a critical item is hit when its answer is at or above the threshold; an unanswered
  critical item is reported separately, never read as 0;
- a count rule (PCL-5 DSM-5 provisional diagnosis: an item at ``endorsed_at`` or above
  is endorsed; each subscale needs its minimum of endorsed items) has three states
  (domain.md section 2): **met** when the answered items alone meet it; **not met** only
  when it could not be met even if every blank item were endorsed; otherwise
  **undetermined** (blanks that could change it), never read as not met.

Arithmetic is exact: answers are scaled to integers (VAS to tenths), so prorating and
half-up rounding never depend on binary floating point (17 * 9 / 8 = 19.125 -> 19).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from outcome.core.answers import Answers
from outcome.core.answers import numeric_item_ids
from outcome.core.instruments import Instrument


@dataclass(frozen=True)
class ScoreTable:
    """Scores of n administrations; every array has length n (``critical_hits``: n x k)."""

    instrument_key: str
    total: np.ndarray
    transformed: np.ndarray | None
    primary: np.ndarray
    subscales: Mapping[str, np.ndarray]
    valid: np.ndarray
    prorated: np.ndarray
    n_missing: np.ndarray
    band: np.ndarray
    band_labels: tuple[str, ...]
    critical_hits: np.ndarray
    critical_items: tuple[str, ...]
    critical_unanswered_items: np.ndarray
    rules: Mapping[str, np.ndarray]  # met by the answered items alone
    rules_undetermined: Mapping[str, np.ndarray]  # not met yet, but blanks could meet it

    def __len__(self) -> int:
        return int(self.total.shape[0])

    @property
    def critical(self) -> np.ndarray:
        """Whether any critical item was hit, per administration."""
        return np.asarray(self.critical_hits.any(axis=1))

    @property
    def critical_unanswered(self) -> np.ndarray:
        """Whether any critical item was left unanswered, per administration."""
        return np.asarray(self.critical_unanswered_items.any(axis=1))

    def rule_state(self, rule_id: str, index: int) -> bool | None:
        """Rule ``rule_id`` for administration ``index``: True (met), False (not met even
        if every blank were endorsed) or None (undetermined)."""
        if self.rules[rule_id][index]:
            return True
        return None if self.rules_undetermined[rule_id][index] else False

    def band_label(self, index: int) -> str | None:
        """The severity band of administration ``index`` (None when invalid or unbanded)."""
        code = int(self.band[index])
        return None if code < 0 else self.band_labels[code]

    def row(self, index: int) -> Score:
        """Administration ``index`` as plain Python values."""
        def number(array: np.ndarray | None) -> float | None:
            if array is None:
                return None
            value = float(array[index])
            return None if np.isnan(value) else value

        return Score(
            instrument_key=self.instrument_key,
            total=number(self.total),
            transformed=number(self.transformed),
            primary=number(self.primary),
            subscales={k: number(v) for k, v in self.subscales.items()},
            is_valid=bool(self.valid[index]),
            is_prorated=bool(self.prorated[index]),
            n_missing=int(self.n_missing[index]),
            band=self.band_label(index),
            critical_items=tuple(item for j, item in enumerate(self.critical_items)
                                 if self.critical_hits[index, j]),
            critical_unanswered=tuple(
                item for j, item in enumerate(self.critical_items)
                if self.critical_unanswered_items[index, j]),
            rules={k: self.rule_state(k, index) for k in self.rules},
        )


@dataclass(frozen=True)
class Score:
    """One administration's scores, as stored with it and shown to clinicians."""

    instrument_key: str
    total: float | None
    transformed: float | None
    primary: float | None
    subscales: Mapping[str, float | None]
    is_valid: bool
    is_prorated: bool
    n_missing: int
    band: str | None
    critical_items: tuple[str, ...]
    critical_unanswered: tuple[str, ...]
    rules: Mapping[str, bool | None]  # None: undetermined (see the module doc)

    @property
    def is_critical(self) -> bool:
        return bool(self.critical_items)

    def as_json(self) -> dict[str, Any]:
        """Plain JSON for the administration's ``scores`` column."""
        return {
            "instrument": self.instrument_key, "total": self.total,
            "transformed": self.transformed, "primary": self.primary,
            "subscales": dict(self.subscales), "valid": self.is_valid,
            "prorated": self.is_prorated, "n_missing": self.n_missing, "band": self.band,
            "critical_items": list(self.critical_items),
            "critical_unanswered": list(self.critical_unanswered), "rules": dict(self.rules),
        }


def _round_half_up(numerator: np.ndarray, denominator: np.ndarray, precision: int) -> np.ndarray:
    """numerator / denominator rounded half-up to ``precision`` decimals, exactly.

    Both are non-negative integer arrays; a zero denominator gives NaN.
    """
    factor = 10 ** precision
    safe = np.where(denominator > 0, denominator, 1)
    quotient = (2 * numerator * factor + safe) // (2 * safe)
    result = quotient.astype(np.float64) / factor
    return np.where(denominator > 0, result, np.nan)


def _aggregate(scaled: np.ndarray, answered: np.ndarray, columns: list[int], *, method: str,
               max_missing: int, scale: int, precision: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Total, validity and missing count over ``columns`` of the scaled integer matrix.

    Missing cells of ``scaled`` are already 0, so the sum needs no mask.
    """
    n_items = len(columns)
    n_answered = answered[:, columns].sum(axis=1, dtype=np.int64)
    sums = scaled[:, columns].sum(axis=1, dtype=np.int64)
    n_missing = n_items - n_answered
    multiplier = n_items if method == "sum" else 1
    total = _round_half_up(sums * multiplier, n_answered * scale, precision)
    valid = (n_missing <= max_missing) & (n_answered > 0)
    return np.where(valid, total, np.nan), valid, n_missing


def score(instrument: Instrument, matrix: np.ndarray) -> ScoreTable:
    """Score every row of ``matrix`` (n x numeric items) for ``instrument``; see module doc."""
    ids = numeric_item_ids(instrument)
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[1] != len(ids):
        raise ValueError(f"{instrument.key} needs a matrix with {len(ids)} columns "
                         f"({', '.join(ids)}); got shape {matrix.shape}")
    items = [instrument.item(i) for i in ids]
    decimals = max(item.decimals for item in items)
    scale = 10 ** decimals
    # The narrowest integer type that holds every scaled answer keeps memory traffic low
    # (a million PHQ-9 rows are 10 MB as int8 input, 20 MB here).
    widest = max(abs(item.maximum) for item in items) * scale
    cell = np.int16 if widest < 2 ** 15 else np.int32
    if np.issubdtype(matrix.dtype, np.integer):
        answered = matrix >= 0
        scaled = np.maximum(matrix, 0).astype(cell)
        if scale != 1:
            scaled *= scale
    else:
        answered = ~np.isnan(matrix)
        scaled = np.rint(np.where(answered, matrix, 0) * scale).astype(cell)

    # Reverse keying, on the scaled integers: v' = min + max - v.
    reverse = [j for j, item in enumerate(items) if item.is_reverse]
    keyed = scaled
    if reverse:
        keyed = scaled.copy()
        for j in reverse:
            pivot = round((items[j].minimum + items[j].maximum) * scale)
            keyed[:, j] = np.where(answered[:, j], pivot - scaled[:, j], 0).astype(cell)

    index = {item_id: j for j, item_id in enumerate(ids)}
    scored_columns = [index[item.id] for item in instrument.scored_items]
    total, valid, n_missing = _aggregate(
        keyed, answered, scored_columns, method=instrument.scoring_method,
        max_missing=instrument.max_missing, scale=scale, precision=instrument.precision)
    prorated = valid & (n_missing > 0)

    subscales = {}
    for sub in instrument.subscales:
        subscales[sub.id] = _aggregate(
            keyed, answered, [index[i] for i in sub.items], method=instrument.scoring_method,
            max_missing=sub.max_missing, scale=scale, precision=instrument.precision)[0]

    transformed = None
    if instrument.transform is not None:
        transformed = total * instrument.transform.multiplier + instrument.transform.offset
    primary = transformed if (instrument.primary_score == "transformed"
                              and transformed is not None) else total

    band = np.full(total.shape[0], -1, dtype=np.int16)
    if instrument.bands:
        lows = np.array([b.minimum for b in instrument.bands])
        code = np.searchsorted(lows, np.nan_to_num(primary, nan=-np.inf), side="right") - 1
        band = np.where(np.isnan(primary), -1, code).astype(np.int16)

    critical_ids = tuple(c.item for c in instrument.critical_items)
    hits = np.zeros((total.shape[0], len(critical_ids)), dtype=bool)
    unanswered = np.zeros_like(hits)
    for k, critical in enumerate(instrument.critical_items):
        j = index[critical.item]
        threshold = round(critical.threshold * scale)
        hits[:, k] = answered[:, j] & (scaled[:, j] >= threshold)
        unanswered[:, k] = ~answered[:, j]

    rules, undetermined = {}, {}
    for rule in instrument.rules:
        threshold = round(rule.endorsed_at * scale)
        endorsed = answered & (scaled >= threshold)
        # The best case: every blank item endorsed.
        endorsable = endorsed | ~answered
        met = np.ones(total.shape[0], dtype=bool)
        possible = np.ones(total.shape[0], dtype=bool)
        for sub_id, minimum in rule.minimum_endorsed:
            sub = next(s for s in instrument.subscales if s.id == sub_id)
            columns = [index[i] for i in sub.items]
            met &= endorsed[:, columns].sum(axis=1) >= minimum
            possible &= endorsable[:, columns].sum(axis=1) >= minimum
        rules[rule.id] = met
        undetermined[rule.id] = possible & ~met

    return ScoreTable(
        instrument_key=instrument.key, total=total, transformed=transformed, primary=primary,
        subscales=subscales, valid=valid, prorated=prorated, n_missing=n_missing,
        band=band, band_labels=tuple(b.label for b in instrument.bands),
        critical_hits=hits, critical_items=critical_ids,
        critical_unanswered_items=unanswered, rules=rules, rules_undetermined=undetermined)


def score_answers(instrument: Instrument, answers: Answers) -> Score:
    """Score one validated administration (the same code path as a batch of one)."""
    if (answers.instrument_id, answers.instrument_version) != (instrument.id, instrument.version):
        raise ValueError(f"answers are for {answers.instrument_id}@{answers.instrument_version},"
                         f" not {instrument.key}")
    return score(instrument, answers.row(instrument)[np.newaxis, :]).row(0)
