"""Reading untrusted text safely: JSON, whole numbers and times, with limits Python lacks.

Python's parsers accept inputs that later crash the code that uses them:

- ``json.loads`` recurses once per nesting level (a ``RecursionError`` deep inside a
  request), raises a plain ``ValueError`` for an integer of more than 4,300 digits
  (``sys.get_int_max_str_digits``), and keeps lone UTF-16 surrogates (``"\\ud800"``),
  which no database driver or UTF-8 encoder accepts; it also reads ``NaN`` and
  ``Infinity``, which are not JSON (RFC 8259) and no JSON column stores.
- ``int()`` and ``str.isdigit()`` accept digits of every script (Arabic-Indic three
  ``"\u0663"``, fullwidth three ``"\uff13"``; superscript two ``"\u00b2"`` passes
  ``isdigit`` and then fails ``int``), and numbers far beyond the database's 32-bit ids.
- ``datetime`` arithmetic overflows at the edges of the calendar:
  ``0001-01-01T00:00:00+01:00`` converted to UTC, or ``9999-12-31`` plus a day.

The functions here refuse such input with :class:`InputError`, which says what is wrong
and where (a JSON path, or the position in the text), so the edges can answer a 4xx that
names the field. Pure: no Flask, no database.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from typing import Any

# Nesting deeper than this is refused before parsing. Real bodies nest fewer than ten
# levels (a FHIR QuestionnaireResponse with item groups); the limit stays far below
# Python's recursion limit, so every recursive consumer (the JSON Schema check, the
# FHIR models) is safe too.
MAX_JSON_DEPTH = 64
# Integers in JSON are ids, answers and counts: 64-bit numbers have at most 19 digits.
MAX_INTEGER_DIGITS = 20
# Ids are 32-bit integers in the database (PostgreSQL ``integer``).
MAX_ID = 2**31 - 1
# Dates and times outside these years are typing errors or probes; within them, adding
# a year or an offset never leaves the calendar Python can represent (years 1 to 9999).
MIN_YEAR = 1900
MAX_YEAR = 2999

_SURROGATE = re.compile("[\ud800-\udfff]")
_STRUCTURE = re.compile(r'["\\\[\]{}]')
_ASCII_DIGITS = re.compile(r"[0-9]+")


class InputError(ValueError):
    """Input that cannot be used; ``where`` is a JSON path (a tuple of keys and indexes),
    or ``None`` for the text as a whole, and ``code`` a short machine-readable reason."""

    def __init__(self, message: str, code: str,
                 where: tuple[str | int, ...] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.where = where


class _LongInteger:
    """What :func:`load_json` puts in place of an over-long integer, to find its path."""

    def __init__(self, digits: int) -> None:
        self.digits = digits


def _integer(text: str) -> int | _LongInteger:
    digits = len(text.lstrip("-"))
    return _LongInteger(digits) if digits > MAX_INTEGER_DIGITS else int(text)


def _constant(name: str) -> None:
    raise InputError(f"{name} is not a JSON number; send a finite number.", "not_json")


def _nesting_offset(text: str, limit: int) -> int | None:
    """The offset of the first bracket that nests deeper than ``limit``, if any (brackets
    inside strings do not count). Linear: only quotes, backslashes and brackets are
    visited."""
    if text.count("[") + text.count("{") <= limit:
        return None
    depth, in_string, escaped_at = 0, False, -2
    for match in _STRUCTURE.finditer(text):
        char, at = match.group(), match.start()
        if in_string:
            if char == "\\" and escaped_at != at - 1:
                escaped_at = at
            elif char == '"' and escaped_at != at - 1:
                in_string = False
            continue
        if char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return at
        elif char in "]}":
            depth -= 1
    return None


def _position(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"line {line}, column {column}"


def load_json(text: str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``text`` parsed as JSON, or :class:`InputError`.

    Refused, with ``code``: invalid JSON or ``NaN``/``Infinity`` (``not_json``); arrays
    and objects nested deeper than ``max_depth`` (``too_deep``, before parsing); an
    integer of more than :data:`MAX_INTEGER_DIGITS` digits or a number too large for a
    float (``number_too_large``); a string or key holding a lone UTF-16 surrogate
    (``lone_surrogate``). The last two name the JSON path in ``where``.
    """
    deep = _nesting_offset(text, max_depth)
    if deep is not None:
        raise InputError(f"The JSON nests deeper than {max_depth} arrays and objects (at "
                         f"{_position(text, deep)}).", "too_deep")
    try:
        value = json.loads(text, parse_int=_integer, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise InputError(f"The body is not valid JSON: {exc.msg} at line {exc.lineno}, "
                         f"column {exc.colno}.", "not_json") from None
    except RecursionError:  # unreachable below the depth limit; kept as a backstop
        raise InputError("The JSON nests too deeply.", "too_deep") from None
    if (found := _unusable(value, ())) is not None:
        raise found
    return value


def _unusable(value: Any, path: tuple[str | int, ...]) -> InputError | None:
    """The first over-long integer, non-finite number or lone surrogate, with its path."""
    if isinstance(value, str):
        if _SURROGATE.search(value):
            return InputError("Contains a lone UTF-16 surrogate (such as \\ud800), which is "
                              "not a character.", "lone_surrogate", path)
        return None
    if isinstance(value, _LongInteger):
        return InputError(f"A number of {value.digits} digits; at most "
                          f"{MAX_INTEGER_DIGITS} are accepted.", "number_too_large", path)
    if isinstance(value, float):
        if not math.isfinite(value):
            return InputError("A number too large to represent.", "number_too_large", path)
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if _SURROGATE.search(key):
                # The object is named, not the key: it would be echoed back unusable.
                return InputError("A key contains a lone UTF-16 surrogate (such as \\ud800).",
                                  "lone_surrogate", path)
            if (found := _unusable(item, (*path, key))) is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if (found := _unusable(item, (*path, index))) is not None:
                return found
    return None


def has_surrogate(text: str) -> bool:
    """Whether ``text`` holds a lone UTF-16 surrogate (no encoder or database takes one)."""
    return _SURROGATE.search(text) is not None


def ascii_int(raw: str, *, maximum: int = MAX_ID) -> int | None:
    """``raw`` as a whole number from 0 to ``maximum`` written in ASCII digits 0-9, else
    ``None`` (other scripts' digits, signs, spaces, or a number out of range)."""
    if not _ASCII_DIGITS.fullmatch(raw) or len(raw.lstrip("0")) > len(str(maximum)):
        return None
    value = int(raw)
    return value if value <= maximum else None


def _in_range(moment: dt.date) -> bool:
    return MIN_YEAR <= moment.year <= MAX_YEAR


def parse_date(raw: str) -> dt.date:
    """A calendar date ``YYYY-MM-DD`` (ASCII digits) from :data:`MIN_YEAR` to
    :data:`MAX_YEAR`, or :class:`InputError` (``format`` or ``out_of_range``)."""
    if len(raw) != 10 or not raw.isascii():
        raise InputError(f"{raw[:40]!r} is not a date of the form YYYY-MM-DD.", "format")
    try:
        value = dt.date.fromisoformat(raw)
    except ValueError:
        raise InputError(f"{raw!r} is not a date of the form YYYY-MM-DD.", "format") from None
    if not _in_range(value):
        raise InputError(f"{raw} is outside the years {MIN_YEAR} to {MAX_YEAR}.",
                         "out_of_range")
    return value


def parse_timestamp(raw: str) -> dt.datetime:
    """An RFC 3339 date-time with its offset (``2026-12-01T10:00:00+01:00`` or ``...Z``),
    in UTC; :class:`InputError` (``format``, or ``out_of_range`` outside the years
    :data:`MIN_YEAR` to :data:`MAX_YEAR`, checked before the offset is applied)."""
    example = "e.g. 2026-12-01T10:00:00+00:00"
    if not raw.isascii() or len(raw) > 40:
        raise InputError(f"{raw[:40]!r} is not an RFC 3339 date-time with an offset, "
                         f"{example}.", "format")
    try:
        moment = dt.datetime.fromisoformat(raw)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None or moment.utcoffset() is None:
        raise InputError(f"{raw!r} is not an RFC 3339 date-time with an offset, {example}.",
                         "format")
    if not _in_range(moment):
        raise InputError(f"{raw} is outside the years {MIN_YEAR} to {MAX_YEAR}.",
                         "out_of_range")
    return moment.astimezone(dt.UTC)


def local_time(date: str, time: str) -> dt.datetime:
    """A naive local time from a form's ``YYYY-MM-DD`` and ``HH:MM`` (ASCII digits), with
    the date's range checked as :func:`parse_date`; :class:`InputError` otherwise."""
    day = parse_date(date)
    if not (len(time) == 5 and time[2] == ":" and time.isascii()):
        raise InputError(f"{time[:20]!r} is not a time of the form HH:MM.", "format")
    try:
        clock = dt.time.fromisoformat(time)
    except ValueError:
        raise InputError(f"{time!r} is not a time of the form HH:MM.", "format") from None
    return dt.datetime.combine(day, clock)
