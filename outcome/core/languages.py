"""The languages the interface and questionnaires are offered in: the one list.

Every place that accepts or offers a language (the client's record, the API, the staff
account, the language switch on client pages, the explanation catalogues) reads
:data:`SUPPORTED_LOCALES`, so adding a language is one edit here plus its catalogue.
Pure: no Flask, no SQLAlchemy.
"""

from __future__ import annotations

SUPPORTED_LOCALES: tuple[str, ...] = ("en", "ru")
DEFAULT_LOCALE = "en"
# Each language named in itself: a reader who does not know the page's language can
# still find their own on a switch.
LANGUAGE_NAMES: dict[str, str] = {"en": "English", "ru": "Русский"}


def is_supported(code: object) -> bool:
    """True for a code in :data:`SUPPORTED_LOCALES` (exactly: "ru", not "ru-RU")."""
    return isinstance(code, str) and code in SUPPORTED_LOCALES
