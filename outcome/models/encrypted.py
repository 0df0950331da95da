"""Column types that encrypt at rest under the process's key ring (:mod:`outcome.encryption`).

:class:`EncryptedText` stores text as ``enc:1:<key id>:<base64>`` when a key is configured
and as plaintext otherwise; :class:`EncryptedJSON` keeps the column's JSON (JSONB) type and
stores ``{"enc": "enc:1:..."}`` when encrypted (plaintext that would look like either is
stored escaped behind ``enc:0:``, see :mod:`outcome.encryption`). Both read plaintext and
ciphertext alike, so switching encryption on and rotating keys work on mixed data. Each
column names its ``table.column`` as the ciphertext's associated data: a value copied
elsewhere fails.

Comparisons against these columns bind their literals as plain text (never encrypted), so
a ``WHERE name = ...`` cannot match a ciphertext: search goes through ``clients.name_search``
(:func:`outcome.services.client_search.name_matches`), ordering happens in Python.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import JSON
from sqlalchemy import Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

from outcome import encryption

# Every encrypted column, (table, column, is_json): the rotation and status commands walk it.
ENCRYPTED_COLUMNS: list[tuple[str, str, bool]] = []


class EncryptedText(TypeDecorator[str]):
    """Text encrypted under the current key when encryption is on (TEXT in the database)."""

    impl = Text
    cache_ok = True

    def __init__(self, context: str) -> None:
        super().__init__()
        self.context = context
        table, _, column = context.partition(".")
        if (table, column, False) not in ENCRYPTED_COLUMNS:
            ENCRYPTED_COLUMNS.append((table, column, False))

    def process_bind_param(self, value: str | None, dialect) -> str | None:
        if value is None:
            return None
        return encryption.active().encrypt(value, self.context)

    def process_result_value(self, value: str | None, dialect) -> str | None:
        if value is None:
            return None
        return encryption.active().decrypt(value, self.context)

    def coerce_compared_value(self, op, value):
        return Text()


class EncryptedJSON(TypeDecorator[Any]):
    """JSON (JSONB on PostgreSQL), stored as ``{"enc": ...}`` when encryption is on."""

    impl = JSON
    cache_ok = True

    def __init__(self, context: str) -> None:
        super().__init__()
        self.context = context
        table, _, column = context.partition(".")
        if (table, column, True) not in ENCRYPTED_COLUMNS:
            ENCRYPTED_COLUMNS.append((table, column, True))

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())

    def process_bind_param(self, value: Any, dialect) -> Any:
        if value is None:
            return None
        return stored_json(value, encryption.active(), self.context)

    def process_result_value(self, value: Any, dialect) -> Any:
        return loaded_json(value, encryption.active(), self.context)

    def coerce_compared_value(self, op, value):
        return JSON()


def is_envelope(value: Any) -> bool:
    """True for a stored encrypted JSON value, ``{"enc": "enc:1:..."}``, or an escaped
    plaintext one, ``{"enc": "enc:0:<JSON>"}``."""
    if not (isinstance(value, dict) and len(value) == 1):
        return False
    inner = value.get("enc")
    return isinstance(inner, str) and (encryption.is_ciphertext(inner)
                                       or inner.startswith(encryption.PLAIN_PREFIX))


def stored_json(value: Any, ring: encryption.KeyRing, context: str) -> Any:
    """The JSON to store for ``value``: ``{"enc": <ciphertext>}`` with encryption on;
    otherwise ``value`` itself, or ``{"enc": "enc:0:<JSON>"}`` when ``value`` is a dict
    whose only key is ``enc`` (so that it cannot be taken for an envelope)."""
    if ring.enabled or (isinstance(value, dict) and set(value) == {"enc"}):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        return {"enc": ring.encrypt(text, context) if ring.enabled
                else encryption.PLAIN_PREFIX + text}
    return value


def loaded_json(stored: Any, ring: encryption.KeyRing, context: str) -> Any:
    """The value a stored JSON column holds (the inverse of :func:`stored_json`)."""
    if not is_envelope(stored):
        return stored
    return json.loads(ring.decrypt(stored["enc"], context))
