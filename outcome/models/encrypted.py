"""Column types that encrypt at rest under the process's key ring (:mod:`outcome.encryption`).

:class:`EncryptedText` stores text as ``enc:1:<key id>:<base64>`` when a key is configured
and as plaintext otherwise; :class:`EncryptedJSON` keeps the column's JSON (JSONB) type and
stores ``{"enc": "enc:1:..."}`` when encrypted. Both read plaintext and ciphertext alike,
so switching encryption on and rotating keys work on mixed data. Each column names its
``table.column`` as the ciphertext's associated data: a value copied elsewhere fails.

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
        ring = encryption.active()
        if not ring.enabled:
            return value
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        return {"enc": ring.encrypt(text, self.context)}

    def process_result_value(self, value: Any, dialect) -> Any:
        if not is_envelope(value):
            return value
        return json.loads(encryption.active().decrypt(value["enc"], self.context))

    def coerce_compared_value(self, op, value):
        return JSON()


def is_envelope(value: Any) -> bool:
    """True for a stored encrypted JSON value, ``{"enc": "enc:1:..."}``."""
    return (isinstance(value, dict) and len(value) == 1
            and encryption.is_ciphertext(value.get("enc")))
