"""Cursor pagination: ``?limit=`` (1 to 100, default 50) and ``?cursor=`` (treat as opaque).

Lists are ordered by id (the order things were stored) and read by keyset
(``WHERE id > last``), so a page never repeats or skips rows while others are added.
A cursor is only a position: the query it continues is scoped as always, so a forged
cursor reveals nothing. The response has ``items`` and ``next_cursor`` (null on the
last page), and a ``Link: <...>; rel="next"`` header.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import request
from flask import url_for
from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.orm import Session

from outcome.core.inputs import ascii_int
from outcome.web.api.problems import FieldError
from outcome.web.api.problems import Problem

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
# A position, versioned so its form can change; published as a pattern in the OpenAPI
# document, so that every cursor of the right form is one the API accepts.
CURSOR_PATTERN = r"^v1-[0-9]{1,10}$"
MAX_ID = 2**31 - 1  # ids are 32-bit in the database
_CURSOR = re.compile(CURSOR_PATTERN)


def encode_cursor(last_id: int) -> str:
    return f"v1-{last_id}"


def decode_cursor(cursor: str) -> int:
    """The id a cursor continues after; a Problem (400) naming ``cursor`` if malformed."""
    if not _CURSOR.match(cursor) or int(cursor[3:]) > MAX_ID:
        raise Problem(400, "The cursor is not one this API gave out.", errors=[FieldError(
            "Use next_cursor from the previous page, unchanged.", parameter="cursor",
            code="invalid_cursor")])
    return int(cursor[3:])


def page_arguments() -> tuple[int | None, int]:
    """``(after_id, limit)`` from the query string, or a Problem (400) naming the parameter."""
    raw_limit = request.args.get("limit")
    limit = DEFAULT_LIMIT
    if raw_limit is not None:
        # ASCII digits only: int() reads other scripts' digits, and fails past 4,300.
        value = ascii_int(raw_limit, maximum=MAX_LIMIT)
        if value is None or value < 1:
            raise Problem(400, "The limit is not valid.", errors=[FieldError(
                f"limit is a whole number from 1 to {MAX_LIMIT}; got {raw_limit[:20]!r}.",
                parameter="limit", code="out_of_range")])
        limit = value
    cursor = request.args.get("cursor")
    return (decode_cursor(cursor) if cursor is not None else None), limit


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None

    def as_json(self) -> dict[str, Any]:
        return {"items": self.items, "next_cursor": self.next_cursor}

    def link_header(self) -> dict[str, str]:
        if self.next_cursor is None:
            return {}
        args = {**(request.view_args or {}), **request.args.to_dict(), "cursor": self.next_cursor}
        assert request.endpoint is not None
        return {"Link": f'<{url_for(request.endpoint, **args)}>; rel="next"'}


def paginate(session: Session, query: Select, id_column: InstrumentedAttribute,
             to_json: Callable[[Any], dict[str, Any]]) -> Page:
    """One page of ``query`` (already scoped), ordered by ``id_column``."""
    after, limit = page_arguments()
    if after is not None:
        query = query.where(id_column > after)
    rows = list(session.scalars(query.order_by(id_column).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page([to_json(row) for row in rows],
                encode_cursor(rows[-1].id) if more and rows else None)
