"""Searching clients by name, with encryption at rest on or off (issue 20).

With encryption off the name is matched as before: a case-insensitive substring. With it
on, the name column holds ciphertext, so each search token must equal one of the keyed
hashes in ``clients.name_search`` (a whole name token, or a prefix of 3+ letters of one,
see :meth:`outcome.encryption.KeyRing.name_search`); names not yet encrypted (switched on
but not yet rotated) still match as plaintext. Ordering by name happens in Python after
the rows are read (:func:`name_order`), since the database cannot order ciphertext.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement
from sqlalchemy import and_
from sqlalchemy import false
from sqlalchemy import func
from sqlalchemy import not_
from sqlalchemy import or_

from outcome import encryption
from outcome.models import Client


def like_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, its wildcards escaped (escape ``\\``)."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def name_matches(text: str) -> ColumnElement[bool]:
    """A condition: the client's name matches the search ``text`` (already stripped)."""
    plain = func.lower(Client.name).like(like_pattern(text.lower()), escape="\\")
    ring = encryption.active()
    if not ring.enabled:
        return plain
    tokens = ring.term_hashes(text)
    if not tokens:
        return false()
    hashed = and_(*(or_(*(Client.name_search.like(f"% {digest} %") for digest in digests))
                    for digests in tokens))
    still_plain = and_(Client.name_search.is_(None),
                       not_(Client.name.like(encryption.PREFIX + "%")), plain)
    return or_(hashed, still_plain)


def name_order(name: str | None) -> str:
    """The key ordering clients by name in Python (case-insensitive, accents kept)."""
    return (name or "").casefold()
