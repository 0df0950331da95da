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
