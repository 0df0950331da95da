"""Errors on the integration paths: problem details under ``/api/``, OperationOutcome
under ``/fhir/``, whatever raised them (a view, the router's 404/405, the rate limiter,
the body-size limit). Pages keep their HTML error pages."""

from __future__ import annotations

from flask import Flask
from flask import Response
from flask import request
from werkzeug.exceptions import HTTPException

from outcome.web.api.problems import Problem
from outcome.web.api.problems import operation_outcome_response
from outcome.web.api.problems import problem_response

API_PREFIX = "/api/"
FHIR_PREFIX = "/fhir/"


def is_integration_request() -> bool:
    """Whether this request is to the JSON API or the FHIR endpoints."""
    return request.path.startswith((API_PREFIX, FHIR_PREFIX)) or request.path == "/fhir"


def respond(status: int, detail: str, problem: Problem | None = None,
            headers: dict[str, str] | None = None) -> Response:
    """The error in the format of the path: problem+json, or a FHIR OperationOutcome."""
    extra = dict(headers or {})
    if problem is not None:
        extra.update(problem.headers)
    if request.path.startswith(FHIR_PREFIX) or request.path == "/fhir":
        return operation_outcome_response(status, detail,
                                          problem.errors if problem else [], headers=extra)
    return problem_response(status, detail, kind=problem.kind if problem else None,
                            errors=problem.errors if problem else None, headers=extra)


HTTP_DETAILS = {
    404: "There is nothing at this address; the OpenAPI document at /api/v1/openapi.json "
         "lists every operation.",
    405: "This address does not accept the {method} method.",
    413: "The request body is larger than this API accepts.",
    429: "This token made too many requests; wait and retry (see Retry-After).",
}


def http_error(error: HTTPException) -> Response:
    """An HTTP error (404, 405, 413, 429...) on an integration path."""
    status = error.code or 500
    detail = HTTP_DETAILS.get(status, error.description or error.name).format(
        method=request.method)
    headers = {}
    valid_methods = getattr(error, "valid_methods", None)
    if status == 405 and valid_methods:
        headers["Allow"] = ", ".join(sorted(valid_methods))
    if status == 429:
        response = error.get_response()
        retry = response.headers.get("Retry-After")
        headers["Retry-After"] = retry or "60"
    return respond(status, detail, headers=headers)


def _problem(problem: Problem) -> Response:
    return respond(problem.status, problem.detail, problem)


def init_app(app: Flask) -> None:
    app.register_error_handler(Problem, _problem)
