"""Numbers in addresses and query strings, read once and safely for every route.

- ``<int:...>`` in every route is :class:`ObjectIdConverter`: an id the database cannot
  hold (past 2**31 - 1, PostgreSQL's ``integer``), one written with other scripts'
  digits, or no number at all reaches the view as :data:`NO_OBJECT` (0, which no row
  has). The view then looks it up as usual and answers 404 after writing its audit
  record, so an attempt on another therapist's object is audited whatever the id; the
  router alone would answer 404 without one, and the database would fail with an
  overflow (a 500).
- :func:`arg_id` reads a number from the query string: ASCII digits within the id
  range, or a 400 that names the parameter (problem details on the integration paths).
"""

from __future__ import annotations

from typing import NoReturn

from flask import Flask
from flask import abort
from flask import request
from flask_babel import gettext as _
from werkzeug.routing import BaseConverter

from outcome.core.inputs import MAX_ID
from outcome.core.inputs import ascii_int
from outcome.web.api.errors import is_integration_request
from outcome.web.api.problems import FieldError
from outcome.web.api.problems import Problem

NO_OBJECT = 0  # ids start at 1 on both backends


class ObjectIdConverter(BaseConverter):
    """A path segment naming a row by id; anything but an id in range is :data:`NO_OBJECT`."""

    regex = r"[^/]+"
    weight = 50  # as werkzeug's int converter: static segments still win

    def to_python(self, value: str) -> int:
        found = ascii_int(value, maximum=MAX_ID)
        return NO_OBJECT if found is None else found

    def to_url(self, value: object) -> str:
        return str(int(value))  # type: ignore[call-overload]


def init_app(app: Flask) -> None:
    """Make ``int`` in every route an :class:`ObjectIdConverter` (before routes are added)."""
    app.url_map.converters["int"] = ObjectIdConverter


def bad_parameter(name: str, *, maximum: int = MAX_ID) -> NoReturn:
    """Refuse the request (400), naming the query parameter ``name``."""
    if is_integration_request():
        raise Problem(400, f"The {name} parameter is not valid.", errors=[FieldError(
            f"{name} is a whole number from 0 to {maximum}, in the digits 0-9.",
            parameter=name, code="invalid")])
    abort(400, description=_("The parameter “%(name)s” must be a whole number written "
                             "with the digits 0 to 9.", name=name))


def arg_id(name: str, *, maximum: int = MAX_ID) -> int | None:
    """The query parameter ``name`` as a whole number, ``None`` if absent or empty; a 400
    naming it if it is anything else (other digits, a sign, or past ``maximum``)."""
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    value = ascii_int(raw, maximum=maximum)
    if value is None:
        bad_parameter(name, maximum=maximum)
    return value
