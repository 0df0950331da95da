"""Cells that are safe to open in a spreadsheet (formula injection, OWASP).

A text cell that starts with ``= + - @``, a tab or a carriage return is read as a
formula by Excel, LibreOffice and Google Sheets; prefixing ``'`` makes it text. Numbers
(``-3``, ``+2.5``) are left alone so that data stays numeric.
"""

from __future__ import annotations

import re

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


def safe_cell(value: str) -> str:
    """``value`` with a leading ``'`` when a spreadsheet would read it as a formula."""
    if value.startswith(_TRIGGERS) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def exact_number(value: float) -> str:
    """``value`` as text that reads back as the same float: a whole number without a
    decimal point (``12``), anything else as Python's shortest round-trip form
    (``repr``: ``12.345678901``, ``1e-07``); "" for NaN. Never rounded to a display
    precision, so a file written for further analysis loses nothing."""
    value = float(value)
    if value != value:  # NaN
        return ""
    if value.is_integer() and abs(value) < 2 ** 53:
        return str(int(value))
    return repr(value)
