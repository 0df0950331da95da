"""Reading request bodies: JSON only, checked against the schema the OpenAPI document
publishes, so the document and the checks cannot drift apart.

A body that is not JSON, or nests deeper than 64 levels, is a 400 naming the line and
column; a body of another media type a 415; a body that breaks the schema a 422 with
one error per field, each with a JSON pointer. Values no field can hold (a NUL, a lone
UTF-16 surrogate, an integer of more than 20 digits, a number past a float's range) are
a 422 pointing at them (:func:`outcome.core.inputs.load_json`). Semantic checks (dates,
answers, booking rules) follow in the services.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from flask import request
from jsonschema import Draft202012Validator

from outcome.core import inputs
from outcome.web.api.problems import FieldError
from outcome.web.api.problems import Problem
from outcome.web.api.problems import pointer

JSON_TYPES = ("application/json",)


@functools.cache
def _validator(schema_name: str) -> Draft202012Validator:
    from outcome.web.api.openapi import document

    doc = document()
    root = {"$ref": f"#/components/schemas/{schema_name}", "components": doc["components"]}
    return Draft202012Validator(root)


def read_json(media_types: tuple[str, ...] = JSON_TYPES) -> Any:
    """The parsed JSON body, or a Problem (415 for another media type, 400 if not JSON)."""
    if request.mimetype not in media_types:
        raise Problem(415, f"Send the body as {' or '.join(media_types)} (got "
                           f"{request.mimetype or 'no Content-Type'}).")
    raw = request.get_data(cache=True)
    try:
        body = inputs.load_json(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise Problem(400, "The body is not UTF-8 text.") from None
    except inputs.InputError as exc:
        if exc.where is None:  # not JSON, or nested too deep: the message says where
            raise Problem(400, exc.message) from None
        raise Problem(422, "A field holds a value no field accepts.", errors=[FieldError(
            exc.message, _location(exc.where), code=exc.code)]) from None
    if b"\\u0000" in raw and (where := _nul_at(body)) is not None:
        # PostgreSQL cannot store a NUL in text or JSON; no real input carries one.
        raise Problem(422, "A field contains a NUL character.", errors=[FieldError(
            "Contains a NUL character (\\u0000), which no field accepts.", _location(where),
            code="nul_character")])
    return body


def _location(where: tuple[str | int, ...]) -> str:
    """Where in the body: a FHIR path on ``/fhir/``, else a JSON pointer."""
    return _fhir_path(where) if request.path.startswith("/fhir/") else pointer(*where)


def _nul_at(value: Any, path: tuple[str | int, ...] = ()) -> tuple[str | int, ...] | None:
    """Where the first string (key or value) with a NUL character is, if any."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                return (*path, key)
            if (found := _nul_at(item, (*path, key))) is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            if (found := _nul_at(item, (*path, index))) is not None:
                return found
    return None


def _fhir_path(parts: tuple[str | int, ...]) -> str:
    """``("item", 2, "answer")`` as the FHIR path ``item[2].answer``."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def json_body(schema_name: str) -> dict[str, Any]:
    """The body as a dict that conforms to ``components.schemas[schema_name]`` (422 if not)."""
    body = read_json()
    errors = []
    for error in sorted(_validator(schema_name).iter_errors(body), key=lambda e: e.path):
        path = list(error.absolute_path)
        if error.validator == "required":
            missing = next((p for p in error.validator_value
                            if isinstance(error.instance, dict) and p not in error.instance),
                           None)
            if missing is not None:
                path.append(missing)
                errors.append(FieldError(f"{missing} is required.", pointer(*path),
                                         code="required"))
                continue
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = set(error.schema.get("properties", {}))
            for extra in sorted(set(error.instance) - allowed):
                errors.append(FieldError(f"{extra} is not a field of this request.",
                                         pointer(*path, extra), code="unknown_field"))
            continue
        where = pointer(*path) if path else "#"
        errors.append(FieldError(f"{'/'.join(map(str, path)) or 'The body'}: {error.message}",
                                 where, code=str(error.validator)))
    if errors:
        raise Problem(422, "The request body does not match the schema; see errors.",
                      errors=errors)
    return body


def parse_datetime(value: str, *path: str | int) -> dt.datetime:
    """An RFC 3339 time with its offset (``2026-12-01T10:00:00+00:00`` or ``...Z``) in
    the years 1900 to 2999, in UTC (:func:`outcome.core.inputs.parse_timestamp`)."""
    try:
        return inputs.parse_timestamp(value)
    except inputs.InputError as exc:
        raise Problem(422, "A time is not valid.", errors=[FieldError(
            exc.message, pointer(*path), code=exc.code)]) from None


def parse_date(value: str, *path: str | int) -> dt.date:
    """A calendar date ``YYYY-MM-DD`` in the years 1900 to 2999."""
    try:
        return inputs.parse_date(value)
    except inputs.InputError as exc:
        raise Problem(422, "A date is not valid.", errors=[FieldError(
            exc.message, pointer(*path), code=exc.code)]) from None
