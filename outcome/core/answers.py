"""The one validation path for answers: :func:`parse_answers`.

The web form, the JSON API, FHIR import and CSV batch scoring all call it, so a rule
fixed here is fixed everywhere. Nothing is coerced silently: a Likert answer must be
one of the option values (a whole number; ``"2"`` from a form is read as 2, ``2.0``
is refused), a visual-analogue answer a number within range with no more decimals
than the item allows, and an unanswered item is *missing*, never 0. An unanswered
critical item (PHQ-9 item 9) is flagged in the result, whatever ``max_missing`` allows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from decimal import InvalidOperation
from typing import Any
from typing import Literal

import numpy as np

from outcome.core.instruments import Instrument
from outcome.core.instruments import Item

ErrorCode = Literal["unknown_item", "wrong_type", "not_an_option", "out_of_range",
                    "too_many_decimals", "too_long", "missing"]

# At most 18 digits: int() fails past 4,300, and no answer option is near that size.
_WHOLE = re.compile(r"[+-]?[0-9]{1,18}")
_DECIMAL = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")


@dataclass(frozen=True)
class AnswerError:
    """One problem with one answer, in words a client or integrator can act on."""

    item: str
    code: ErrorCode
    message: str


@dataclass(frozen=True)
class Answers:
    """Validated answers to one instrument.

    ``values`` holds numeric answers in the item's own units (reverse keying is applied
    by scoring, not here); ``texts`` holds free-text answers; ``missing`` lists scored
    items left unanswered; ``missing_critical`` the critical items among them.
    """

    instrument_id: str
    instrument_version: str
    values: Mapping[str, float]
    texts: Mapping[str, str]
    missing: tuple[str, ...]
    missing_critical: tuple[str, ...]

    def row(self, instrument: Instrument) -> np.ndarray:
        """The numeric answers as one row in :func:`numeric_item_ids` order (NaN = missing)."""
        return np.array([self.values.get(item_id, np.nan)
                         for item_id in numeric_item_ids(instrument)], dtype=np.float64)

    def as_json(self) -> dict[str, Any]:
        """Plain JSON for storage: whole numbers as int, free text as text, missing left out."""
        out: dict[str, Any] = {}
        for key, value in self.values.items():
            out[key] = int(value) if float(value).is_integer() else value
        out.update(self.texts)
        return out


def numeric_item_ids(instrument: Instrument) -> tuple[str, ...]:
    """Ids of the items with numeric answers, in definition order: the columns of a score matrix."""
    return tuple(item.id for item in instrument.items if item.is_numeric)


def _is_missing(raw: Any) -> bool:
    return raw is None or (isinstance(raw, str) and raw.strip() == "")


def _options_text(item: Item) -> str:
    return ", ".join(str(v) for v in sorted(item.option_values))


def _parse_choice(item: Item, raw: Any) -> float | AnswerError:
    if isinstance(raw, bool):
        return AnswerError(item.id, "wrong_type", f"{item.id}: expected one of "
                           f"{_options_text(item)}, not {raw!r}.")
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, str) and _WHOLE.fullmatch(raw):
        value = int(raw)
    else:
        return AnswerError(item.id, "wrong_type", f"{item.id}: expected a whole number, one "
                           f"of {_options_text(item)}; got {raw!r}.")
    if value not in item.option_values:
        return AnswerError(item.id, "not_an_option", f"{item.id}: {value} is not one of the "
                           f"answer options ({_options_text(item)}).")
    return float(value)


def _parse_vas(item: Item, raw: Any) -> float | AnswerError:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        return AnswerError(item.id, "wrong_type", f"{item.id}: expected a number from "
                           f"{item.minimum:g} to {item.maximum:g}; got {raw!r}.")
    if isinstance(raw, str) and not _DECIMAL.fullmatch(raw.strip()):
        return AnswerError(item.id, "wrong_type", f"{item.id}: expected a number from "
                           f"{item.minimum:g} to {item.maximum:g}; got {raw!r}.")
    if isinstance(raw, float) and not math.isfinite(raw):
        return AnswerError(item.id, "wrong_type", f"{item.id}: {raw!r} is not a number.")
    try:
        decimal = Decimal(raw.strip() if isinstance(raw, str) else repr(raw))
    except InvalidOperation:
        return AnswerError(item.id, "wrong_type", f"{item.id}: {raw!r} is not a number.")
    exponent = decimal.as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    if places > item.decimals:
        allowed = "no decimals" if item.decimals == 0 else f"at most {item.decimals} decimal"
        return AnswerError(item.id, "too_many_decimals", f"{item.id}: {raw} has too many "
                           f"decimal places; use {allowed}{'s' if item.decimals > 1 else ''}.")
    value = float(decimal)
    if not item.minimum <= value <= item.maximum:
        return AnswerError(item.id, "out_of_range", f"{item.id}: {raw} is outside the range "
                           f"{item.minimum:g} to {item.maximum:g}.")
    return value


def _parse_text(item: Item, raw: Any) -> str | AnswerError:
    if not isinstance(raw, str):
        return AnswerError(item.id, "wrong_type", f"{item.id}: expected text; got {raw!r}.")
    if len(raw) > item.max_length:
        return AnswerError(item.id, "too_long", f"{item.id}: the answer is {len(raw)} "
                           f"characters long; at most {item.max_length} fit.")
    return raw


def parse_answers(instrument: Instrument, mapping: Mapping[str, Any], *,
                  allow_incomplete: bool = False) -> Answers | list[AnswerError]:
    """Validate ``mapping`` (item id to raw answer) against ``instrument``.

    Returns :class:`Answers`, or a list of :class:`AnswerError` naming each item and
    problem: an unknown item, a wrong type, a value that is not an option, out of
    range, too many decimals, text too long, or (unless ``allow_incomplete``) more
    scored items unanswered than the instrument's ``max_missing`` allows (one error
    per unanswered item). ``None`` and empty strings count as unanswered.
    """
    items = {item.id: item for item in instrument.items}
    errors: list[AnswerError] = []
    values: dict[str, float] = {}
    texts: dict[str, str] = {}
    for key, raw in mapping.items():
        item = items.get(key) if isinstance(key, str) else None
        if item is None:
            errors.append(AnswerError(str(key), "unknown_item",
                                      f"{key}: {instrument.short_name} has no item {key!r}."))
            continue
        if _is_missing(raw):
            continue
        if item.type == "text":
            parsed_text = _parse_text(item, raw)
            if isinstance(parsed_text, AnswerError):
                errors.append(parsed_text)
            elif parsed_text.strip():
                texts[key] = parsed_text
            continue
        parsed = _parse_vas(item, raw) if item.type == "vas" else _parse_choice(item, raw)
        if isinstance(parsed, AnswerError):
            errors.append(parsed)
        else:
            values[key] = parsed

    missing = tuple(item.id for item in instrument.scored_items
                    if item.id not in values and not any(e.item == item.id for e in errors))
    if not allow_incomplete and len(missing) > instrument.max_missing:
        allowed = (f"at most {instrument.max_missing} of the {len(instrument.scored_items)} "
                   "questions may be left out" if instrument.max_missing
                   else "every question needs an answer")
        errors.extend(AnswerError(item_id, "missing", f"{item_id}: not answered; {allowed}.")
                      for item_id in missing)
    if errors:
        return errors
    critical_ids = {c.item for c in instrument.critical_items}
    return Answers(instrument_id=instrument.id, instrument_version=instrument.version,
                   values=values, texts=texts, missing=missing,
                   missing_critical=tuple(i for i in missing if i in critical_ids))
