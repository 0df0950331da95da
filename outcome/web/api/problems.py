"""Errors as ``application/problem+json`` (RFC 9457), each naming what is wrong and where.

A problem has a ``type`` (a URN per kind of problem), a ``title``, the HTTP ``status``,
a ``detail`` in words an integrator can act on, the ``instance`` (the request path),
and for invalid input an ``errors`` list: one entry per field, with a JSON ``pointer``
into the request body (``#/answers/phq9_3``) or a ``parameter`` name (``cursor``).
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from typing import Any

from flask import Response
from flask import json
from flask import request

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "urn:outcome:problem:"

TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Server error",
}
KINDS = {
    400: "bad-request", 401: "unauthenticated", 403: "forbidden", 404: "not-found",
    405: "method-not-allowed", 406: "not-acceptable", 409: "conflict",
    413: "too-large", 415: "unsupported-media-type", 422: "invalid-input",
    429: "rate-limited", 500: "server-error",
}


@dataclass(frozen=True)
class FieldError:
    """One problem with one input: where (``pointer`` into the body, or a ``parameter``)."""

    detail: str
    pointer: str | None = None
    parameter: str | None = None
    code: str | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"detail": self.detail}
        if self.pointer is not None:
            out["pointer"] = self.pointer
        if self.parameter is not None:
            out["parameter"] = self.parameter
        if self.code is not None:
            out["code"] = self.code
        return out


@dataclass
class Problem(Exception):
    """Raised anywhere in an API view; answered as problem details."""

    status: int
    detail: str
    kind: str | None = None
    errors: list[FieldError] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.detail}"


def pointer(*parts: str | int) -> str:
    """A JSON pointer (RFC 6901) as a URI fragment: ``pointer("answers", "x")`` is
    ``#/answers/x``."""
    escaped = (str(p).replace("~", "~0").replace("/", "~1") for p in parts)
    return "#/" + "/".join(escaped)


def problem_body(status: int, detail: str, *, kind: str | None = None,
                 errors: list[FieldError] | None = None) -> dict[str, Any]:
    """The problem document for ``status`` (without sending it)."""
    body: dict[str, Any] = {
        "type": TYPE_BASE + (kind or KINDS.get(status, "error")),
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": request.path,
    }
    if errors:
        body["errors"] = [e.as_json() for e in errors]
    return body


def problem_response(status: int, detail: str, *, kind: str | None = None,
                     errors: list[FieldError] | None = None,
                     headers: dict[str, str] | None = None) -> Response:
    """A problem+json response; ``Cache-Control: no-store`` like every API response."""
    response = Response(json.dumps(problem_body(status, detail, kind=kind, errors=errors)),
                        status=status, mimetype=MEDIA_TYPE)
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def from_exception(problem: Problem) -> Response:
    return problem_response(problem.status, problem.detail, kind=problem.kind,
                            errors=problem.errors, headers=problem.headers)


# FHIR R4 reports errors as an OperationOutcome, with these issue codes per status.
FHIR_MEDIA_TYPE = "application/fhir+json"
ISSUE_CODES = {400: "structure", 401: "login", 403: "forbidden", 404: "not-found",
               405: "not-supported", 409: "conflict", 413: "too-long", 415: "not-supported",
               422: "invalid", 429: "throttled"}


def operation_outcome(status: int, detail: str, errors: list[FieldError]) -> dict[str, Any]:
    """An OperationOutcome with one issue per error (or one for the whole request)."""
    code = ISSUE_CODES.get(status, "exception")
    issues = [{"severity": "error", "code": code, "diagnostics": e.detail,
               **({"expression": [e.pointer or e.parameter]} if (e.pointer or e.parameter)
                  else {})} for e in errors]
    if not issues:
        issues = [{"severity": "error", "code": code, "diagnostics": detail}]
    return {"resourceType": "OperationOutcome", "issue": issues}


def operation_outcome_response(status: int, detail: str, errors: list[FieldError],
                               headers: dict[str, str] | None = None) -> Response:
    """An error as an ``application/fhir+json`` OperationOutcome, ``no-store``."""
    response = Response(json.dumps(operation_outcome(status, detail, errors)), status=status,
                        mimetype=FHIR_MEDIA_TYPE)
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response
