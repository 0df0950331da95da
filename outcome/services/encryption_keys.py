"""Encryption keys at work on the stored data (issue 20): what is under which key, rotation.

:func:`key_census` counts, per encrypted column, the values under each key id and those
still plaintext. :func:`rotate_batch` re-encrypts one batch of one column under the
current key (or, with ``decrypt=True``, back to plaintext); the edge commits each batch in
its own short transaction, so a rotation runs beside the application and, interrupted,
continues where it stopped (values already in the target form are skipped). The clients'
name-search hashes are recomputed with their names.

Values are read and written as raw column text here (a plain ``Text``/``JSON`` view of the
table), so nothing is decrypted outside this module's loop and nothing reaches a log.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from sqlalchemy import JSON
from sqlalchemy import Column
from sqlalchemy import Integer
from sqlalchemy import MetaData
from sqlalchemy import Table
from sqlalchemy import Text
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from outcome import encryption
from outcome.models.encrypted import ENCRYPTED_COLUMNS
from outcome.models.encrypted import loaded_json
from outcome.models.encrypted import stored_json

PLAINTEXT = "(plaintext)"


@dataclass
class RotationCounts:
    """What a rotation did: values rewritten, and values already in the target form."""

    rewritten: int = 0
    skipped: int = 0
    by_column: Counter[str] = field(default_factory=Counter)

    def add(self, other: RotationCounts) -> None:
        self.rewritten += other.rewritten
        self.skipped += other.skipped
        self.by_column.update(other.by_column)


def _raw_table(table: str, column: str, is_json: bool, with_search: bool = False) -> Table:
    json_type = JSON().with_variant(JSONB(), "postgresql")
    columns: list[Column[Any]] = [Column(_key_column(table), Integer, primary_key=True),
                                  Column(column, json_type if is_json else Text)]
    if with_search:
        columns.append(Column("name_search", Text))
    return Table(table, MetaData(), *columns)


def _key_column(table: str) -> str:
    """The name of ``table``'s (single, integer) primary key: ``id``, or e.g. ``episode_id``
    for ``episode_signals``."""
    from outcome.models.base import Base
    (key,) = Base.metadata.tables[table].primary_key.columns
    return key.name


def encrypted_columns() -> list[tuple[str, str, bool]]:
    """Every encrypted (table, column, is_json), in a stable order."""
    import outcome.models  # noqa: F401  (registers every model's encrypted columns)
    return sorted(ENCRYPTED_COLUMNS)


def key_census(session: Session) -> dict[str, Counter[str]]:
    """``table.column`` to a count of values per key id (``(plaintext)`` for plaintext);
    NULLs are not counted."""
    census: dict[str, Counter[str]] = {}
    for table, column, is_json in encrypted_columns():
        raw = _raw_table(table, column, is_json)
        counts: Counter[str] = Counter()
        for (value,) in session.execute(select(raw.c[column]).where(raw.c[column].is_not(None))):
            counts[encryption.stored_key_id(value) or PLAINTEXT] += 1
        census[f"{table}.{column}"] = counts
    return census


def _target(value: Any, context: str, is_json: bool, ring: encryption.KeyRing,
            decrypt: bool) -> Any:
    target_ring = encryption.KeyRing() if decrypt else ring
    if is_json:
        return stored_json(loaded_json(value, ring, context), target_ring, context)
    return target_ring.encrypt(ring.decrypt(value, context), context)


def rotate_batch(session: Session, table: str, column: str, is_json: bool, *,
                 after_id: int, limit: int, decrypt: bool = False
                 ) -> tuple[int | None, RotationCounts]:
    """Rewrite up to ``limit`` rows of ``table.column`` with ids above ``after_id`` under the
    current key (plaintext with ``decrypt``); flush. Returns the last id seen (None when no
    row was left) and the counts. Raises :class:`encryption.EncryptionError` when a value's
    key is missing: nothing of the batch is written (the edge rolls it back)."""
    ring = encryption.active()
    context = f"{table}.{column}"
    with_search = table == "clients" and column == "name"
    raw = _raw_table(table, column, is_json, with_search)
    # FOR UPDATE (PostgreSQL): a page saving one of these rows waits for this short
    # transaction instead of having its newer value overwritten by the old one re-encrypted.
    # SQLite's writer lock (BEGIN IMMEDIATE) does the same there.
    key = raw.c[_key_column(table)]
    query = (select(*raw.c).where(key > after_id).order_by(key).limit(limit)
             .with_for_update())
    rows = session.execute(query).all()
    counts = RotationCounts()
    for row in rows:
        value = row[1]
        if value is None:
            counts.skipped += 1
            continue
        done = (encryption.stored_key_id(value) is None if decrypt or not ring.enabled
                else ring.is_current(value))
        changes: dict[str, Any] = {}
        if done:
            counts.skipped += 1
            new_value = value
        else:
            new_value = changes[column] = _target(value, context, is_json, ring, decrypt)
            counts.rewritten += 1
            counts.by_column[context] += 1
        if with_search:
            wanted = (None if decrypt or not ring.enabled
                      else ring.name_search(ring.decrypt(new_value, context)))
            if wanted != row[2]:
                changes["name_search"] = wanted
        if changes:
            session.execute(update(raw).where(key == row[0]).values(**changes))
    session.flush()
    return (rows[-1][0] if rows else None), counts
