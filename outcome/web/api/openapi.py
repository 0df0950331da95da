"""The OpenAPI 3.1 document of ``/api/v1`` and ``/fhir``, served at ``/api/v1/openapi.json``.

Written by hand as data, next to the routes, and kept true by tests: every route of
the app under ``/api/v1`` and ``/fhir`` is in it with its methods (and nothing else
is), request bodies are checked against its schemas (:mod:`outcome.web.api.bodies`),
and schemathesis checks every response against it.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from outcome.core.languages import SUPPORTED_LOCALES
from outcome.models.care import APPOINTMENT_STATUSES
from outcome.models.care import END_REASONS
from outcome.models.support import CHECK_REASONS
from outcome.models.support import CHECK_STATUSES
from outcome.models.support import PLAN_STATUSES
from outcome.models.support import STEP_DECISIONS
from outcome.web.api.pagination import CURSOR_PATTERN

VERSION = "1.0.0"

_REF = "#/components/schemas/"


def ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` or null (OpenAPI 3.1 / JSON Schema 2020-12 style)."""
    if "$ref" in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    kinds: Any = schema.get("type")
    out = dict(schema)
    out["type"] = [kinds, "null"] if isinstance(kinds, str) else [*kinds, "null"]
    if "enum" in out:
        out["enum"] = [*out["enum"], None]
    return out


DATE = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$", "examples": ["2026-12-01"]}
DATE_TIME = {"type": "string", "format": "date-time", "examples": ["2026-12-01T10:00:00Z"]}
CODE = {"type": "string", "description": "The client's pseudonymous code.",
        "examples": ["C-7F3K9Q"]}
# Ids are 32-bit in the database.
MAX_ID = 2**31 - 1
ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
FREE = {"type": "object", "additionalProperties": True}
NUMBER_OR_NULL = {"type": ["number", "null"]}


def _page(item: str) -> dict[str, Any]:
    return {"type": "object", "required": ["items", "next_cursor"],
            "additionalProperties": False,
            "properties": {"items": {"type": "array", "items": ref(item)},
                           "next_cursor": {"type": ["string", "null"],
                                           "description": "Pass as ?cursor= for the next "
                                                          "page; null on the last page."}}}


SCHEMAS: dict[str, Any] = {
    "Problem": {
        "type": "object", "required": ["type", "title", "status", "detail"],
        "description": "RFC 9457 problem details.",
        "properties": {
            "type": {"type": "string"}, "title": {"type": "string"},
            "status": {"type": "integer"}, "detail": {"type": "string"},
            "instance": {"type": "string"},
            "errors": {"type": "array", "items": {
                "type": "object", "required": ["detail"],
                "properties": {"detail": {"type": "string"},
                               "pointer": {"type": "string",
                                           "description": "JSON pointer into the body, "
                                                          "as a URI fragment (#/answers/x)."},
                               "parameter": {"type": "string"},
                               "code": {"type": "string"}}}}}},
    "Client": {
        "type": "object", "additionalProperties": False,
        "required": ["code", "name", "email", "phone", "locale", "therapist_id",
                     "open_episode_id", "created_at"],
        "description": "Name and contacts are null unless the token is a personal token "
                       "of the client's own therapist. An integration token (an admin's) "
                       "gets the code and therapist_id only; every other field is null.",
        "properties": {"code": CODE, "name": {"type": ["string", "null"]},
                       "email": {"type": ["string", "null"]},
                       "phone": {"type": ["string", "null"]},
                       "locale": {"type": ["string", "null"]},
                       "therapist_id": {"type": ["integer", "null"]},
                       "open_episode_id": {"type": ["integer", "null"]},
                       "created_at": nullable(DATE_TIME)}},
    "ClientCreate": {
        "type": "object", "additionalProperties": False, "required": ["name"],
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 200,
                     "examples": ["Robin Example"]},
            "email": {"type": ["string", "null"], "maxLength": 254,
                      "pattern": r"^[^@\s]+@[^@\s]+\.[^@\s]+$"},
            "phone": {"type": ["string", "null"], "pattern": r"^\+?[0-9 ()\-]{5,40}$"},
            "locale": {"type": "string", "enum": list(SUPPORTED_LOCALES), "default": "en"},
            "opened_on": {**DATE, "description": "Intake date; default today."}}},
    "ClientList": _page("Client"),
    "Episode": {
        "type": "object", "additionalProperties": False,
        "required": ["id", "therapist_id", "opened_on", "closed_on", "end_reason", "is_open"],
        "properties": {"id": ID, "therapist_id": {"type": "integer"}, "opened_on": DATE,
                       "closed_on": nullable(DATE),
                       "end_reason": nullable({"type": "string",
                                               "enum": list(END_REASONS)}),
                       "is_open": {"type": "boolean"}}},
    "EpisodeList": _page("Episode"),
    "EpisodeCreate": {
        "type": "object", "additionalProperties": False,
        "properties": {"opened_on": {**DATE, "description": "Default today."}}},
    "EpisodeClose": {
        "type": "object", "additionalProperties": False, "required": ["end_reason"],
        "properties": {"end_reason": {"type": "string", "enum": list(END_REASONS)},
                       "closed_on": {**DATE, "description": "Default today."}}},
    "Appointment": {
        "type": "object", "additionalProperties": False,
        "required": ["id", "episode_id", "starts_at", "duration_minutes", "status",
                     "session_number"],
        "properties": {"id": ID, "episode_id": ID, "starts_at": DATE_TIME,
                       "duration_minutes": {"type": "integer"},
                       "status": {"type": "string", "enum": list(APPOINTMENT_STATUSES),
                                  "description": "no_show: the client did not attend; "
                                                 "late_cancelled: called off at short "
                                                 "notice."},
                       "session_number": nullable({
                           "type": "integer", "minimum": 1,
                           "description": "The number among sessions held (attended); "
                                          "for a scheduled appointment, the number it "
                                          "will have if held as booked. Null when "
                                          "cancelled or not attended."})}},
    "AppointmentList": _page("Appointment"),
    "AppointmentCreate": {
        "type": "object", "additionalProperties": False, "required": ["starts_at"],
        "properties": {"starts_at": {**DATE_TIME, "description": "With its UTC offset."},
                       "duration_minutes": {"type": "integer", "minimum": 1,
                                            "maximum": 600, "default": 50}}},
    "Administration": {
        "type": "object", "additionalProperties": False,
        "required": ["id", "episode_id", "instrument", "instrument_version", "respondent",
                     "appointment_id", "completed_at", "answers", "total", "score", "band",
                     "is_valid", "is_prorated", "critical_items", "supersedes_id"],
        "properties": {
            "id": ID, "episode_id": ID, "instrument": {"type": "string"},
            "instrument_version": {"type": "string"},
            "respondent": {"type": "string", "enum": ["client", "therapist"]},
            "appointment_id": {"type": ["integer", "null"]}, "completed_at": DATE_TIME,
            "answers": {"type": "object", "additionalProperties": {
                "type": ["integer", "number", "string"]}},
            "language": {"type": ["string", "null"],
                         "description": "The language the questionnaire's wording was "
                                        "shown in (en, ru); null where not recorded."},
            "total": NUMBER_OR_NULL, "score": NUMBER_OR_NULL,
            "band": {"type": ["string", "null"]}, "is_valid": {"type": "boolean"},
            "is_prorated": {"type": "boolean"},
            "critical_items": {"type": "array", "items": {"type": "string"}},
            "critical_unanswered": {
                "type": "array", "items": {"type": "string"},
                "description": "Critical items left blank (never read as 0); the total may "
                               "still be prorated, and then a note says so."},
            "n_missing": {"type": ["integer", "null"]},
            "rules": {"type": "object", "additionalProperties": {"type": ["boolean", "null"]},
                      "description": "Count rules (PCL-5 dsm5_provisional): true, false, or "
                                     "null when blank items could change the result."},
            "notes": {"type": "array", "description": "What must be said beside the score "
                      "(a rule's state, a blank safety question), as explanations.",
                      "items": {"type": "object"}},
            "supersedes_id": {"type": ["integer", "null"]}}},
    "AdministrationList": _page("Administration"),
    "AdministrationCreate": {
        "type": "object", "additionalProperties": False, "required": ["instrument", "answers"],
        "properties": {
            "instrument": {"type": "string", "maxLength": 64, "examples": ["phq9"]},
            "version": {"type": "string", "maxLength": 32,
                        "description": "Default: the newest version."},
            "answers": {"type": "object", "maxProperties": 200,
                        "description": "Item id to answer: an option value, a number for "
                                       "visual-analogue items, text for text items; null or "
                                       "absent for unanswered.",
                        "additionalProperties": {
                            "type": ["integer", "number", "string", "null"]},
                        "examples": [{"phq9_1": 2, "phq9_2": 1}]},
            "completed_at": {**DATE_TIME, "description": "Default now."},
            "appointment_id": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_ID},
            "respondent": {"type": "string", "enum": ["client", "therapist"],
                           "default": "client"}}},
    "Submission": {
        "type": "object", "additionalProperties": False,
        "required": ["administration", "signals"],
        "properties": {"administration": ref("Administration"), "signals": ref("Signals")}},
    "Signals": {
        "type": "object", "additionalProperties": False,
        "required": ["episode_id", "colour", "urgency", "change_category", "change_measure",
                     "ruptures",
                     "ruptures_repaired", "ruptures_unrepaired", "computed_at", "outcomes",
                     "alliance", "critical"],
        "description": "The engine's reading of the episode: progress colour, urgency "
                       "(0 critical answer ... 7 nothing yet), change since intake, "
                       "ruptures, and every signal with its explanation. Each "
                       "explanation (`outcomes.*.progress`, `outcomes.*.change`, "
                       "`alliance.*.ruptures[]`, `critical[]`) holds `kind`, `level`, "
                       "`rule`, `numbers` and the fields of an Explanation: `message`, "
                       "`params` and the English `text`. For anyone but the client's "
                       "therapist a `critical[]` entry is `critical.answered`: the item "
                       "and its urgency, never the answer.",
        "properties": {
            "episode_id": ID,
            "colour": {"type": "string", "enum": ["grey", "white", "green", "yellow", "red"]},
            "urgency": {"type": "integer", "minimum": 0, "maximum": 7},
            "change_category": {"type": ["string", "null"]},
            "change_measure": {
                "type": ["object", "null"], "additionalProperties": False,
                "description": "The measure (or NHS Talking Therapies pair) "
                               "`change_category` belongs to; `text` names it in English, "
                               "e.g. \"PHQ-9 + GAD-7, NHS Talking Therapies\".",
                "required": ["measure", "pair", "stand_in_for", "text"],
                "properties": {"measure": {"type": "string"},
                               "pair": {"type": ["array", "null"],
                                        "items": {"type": "string"}},
                               "stand_in_for": {"type": ["string", "null"]},
                               "text": {"type": "string"}}},
            "ruptures": {"type": "integer"}, "ruptures_repaired": {"type": "integer"},
            "ruptures_unrepaired": {"type": "integer"}, "computed_at": nullable(DATE_TIME),
            "outcomes": FREE, "alliance": FREE,
            "critical": {"type": "array", "items": FREE}}},
    "Alert": {
        "type": "object", "additionalProperties": False,
        "required": ["id", "client_code", "episode_id", "kind", "status", "level", "message",
                     "explanation", "administration_id", "raised_at", "acknowledged_at",
                     "acknowledged_by_id", "note", "resolved_at"],
        "properties": {
            "id": ID, "client_code": CODE, "episode_id": ID,
            "kind": {"type": "string", "enum": ["critical_item", "critical_unanswered",
                                                "unrepaired_rupture", "not_on_track",
                                                "rupture"]},
            "status": {"type": "string", "enum": ["open", "acknowledged", "resolved"]},
            "level": {"type": ["string", "null"]},
            "message": {"type": ["string", "null"],
                        "description": "The explanation's text in English."},
            "explanation": nullable(ref("Explanation")),
            "administration_id": {"type": ["integer", "null"]}, "raised_at": DATE_TIME,
            "acknowledged_at": nullable(DATE_TIME),
            "acknowledged_by_id": {"type": ["integer", "null"]},
            "note": {"type": ["string", "null"],
                     "description": "Shown to the client's own therapist only."},
            "resolved_at": nullable(DATE_TIME)}},
    "AlertList": _page("Alert"),
    "Explanation": {
        "type": "object", "additionalProperties": False,
        "required": ["message", "params", "text"],
        "description": "Why a signal or alert was raised, as data and as English text. "
                       "`message` is a message id (e.g. `progress.explanation`, "
                       "`critical.unanswered`; null for an explanation stored before ids "
                       "existed); `params` its parameters: strings shown verbatim, numbers, "
                       "`{\"number\", \"digits\"}`, `{\"signed\"}`, nested "
                       "`{\"message\", \"params\"}` and lists of them. `text` is the "
                       "sentence in English; the same ids render in Russian in the web app.",
        "properties": {"message": {"type": ["string", "null"]},
                       "params": {"type": "object"},
                       "text": {"type": "string"}}},
    "AlertAcknowledge": {
        "type": "object", "additionalProperties": False, "required": ["note"],
        "properties": {"note": {"type": "string", "minLength": 1, "maxLength": 2000,
                                "examples": ["Discussed in session; safety plan updated."]}}},
    "InstrumentSummary": {
        "type": "object", "additionalProperties": False,
        "required": ["id", "version", "name", "short_name", "role", "direction", "status",
                     "score_range", "licence"],
        "properties": {
            "id": {"type": "string"}, "version": {"type": "string"},
            "name": {"type": "string"}, "short_name": {"type": "string"},
            "role": {"type": "string"}, "direction": {"type": "string"},
            "status": {"type": "string", "enum": ["available", "needs attestation",
                                                  "wording not installed"]},
            "score_range": {"type": "array", "items": {"type": "number"},
                            "minItems": 2, "maxItems": 2},
            "licence": {"type": "string"}}},
    "InstrumentList": _page("InstrumentSummary"),
    "Instrument": {
        "type": "object",
        "required": ["stem", "max_missing", "items", "cutoff", "critical_items",
                     "attribution"],
        "properties": {
            "stem": {"type": ["string", "null"]}, "max_missing": {"type": "integer"},
            "cutoff": NUMBER_OR_NULL, "attribution": {"type": "string"},
            "critical_items": {"type": "array", "items": {"type": "string"}},
            "items": {"type": "array", "items": {
                "type": "object",
                "required": ["id", "type", "text", "is_scored", "minimum", "maximum",
                             "decimals", "options", "max_length"],
                "properties": {
                    "id": {"type": "string"},
                    "type": {"type": "string", "enum": ["likert", "vas", "text", "goal"]},
                    "text": {"type": ["string", "null"],
                             "description": "Null when the licensed wording is not "
                                            "installed."},
                    "is_scored": {"type": "boolean"}, "minimum": {"type": "number"},
                    "maximum": {"type": "number"}, "decimals": {"type": "integer"},
                    "max_length": {"type": ["integer", "null"]},
                    "options": {"type": "array", "items": {
                        "type": "object", "required": ["value", "label"],
                        "properties": {"value": {"type": "integer"},
                                       "label": {"type": ["string", "null"]}}}}}}}}},
    # issue 19: api. Action plans and supervision reviews, read only.
    "Plan": {
        "type": "object", "additionalProperties": False,
        "required": ["id", "client_code", "episode_id", "status", "created_at",
                     "created_by_id", "review_on", "review_due", "steps", "note", "baseline",
                     "closed_at", "closed_by_id", "closing_note", "outcome", "revised_from_id",
                     "revised_by_id", "support_check", "resolved_alert_ids"],
        "description": "A therapist's action plan after a signal. For anyone but the "
                       "client's own therapist (a supervisor's token) the steps' text, "
                       "note and closing_note are null: a supervisor reads the plan's "
                       "state by client code.",
        "properties": {
            "id": ID, "client_code": CODE, "episode_id": ID,
            "status": {"type": "string", "enum": list(PLAN_STATUSES),
                       "description": "open; closed at review; revised: replaced by the "
                                      "plan in revised_by_id."},
            "created_at": DATE_TIME, "created_by_id": {"type": "integer"},
            "review_on": DATE,
            "review_due": {"type": "boolean",
                           "description": "Open, and review_on is today or past (the "
                                          "clinic's calendar)."},
            "steps": {"type": "array", "items": ref("PlanStep")},
            "note": {"type": ["string", "null"],
                     "description": "Shown to the client's own therapist only."},
            "baseline": {"type": ["object", "null"], "additionalProperties": True,
                         "description": "The episode's main measure when the plan was "
                                        "made: instrument, score, colour, session, "
                                        "administration."},
            "closed_at": nullable(DATE_TIME), "closed_by_id": {"type": ["integer", "null"]},
            "closing_note": {"type": ["string", "null"],
                             "description": "Shown to the client's own therapist only."},
            "outcome": {"type": ["object", "null"], "additionalProperties": True,
                        "description": "The follow-up read when the plan was closed: "
                                       "colour and change since the plan."},
            "revised_from_id": {"type": ["integer", "null"]},
            "revised_by_id": {"type": ["integer", "null"]},
            "support_check": nullable(ref("PlanCheck")),
            "resolved_alert_ids": {"type": "array", "items": ID}}},
    "PlanStep": {
        "type": "object", "additionalProperties": False,
        "required": ["domain", "suggestion_id", "decision", "text"],
        "properties": {
            "domain": {"type": ["string", "null"], "examples": ["alliance"]},
            "suggestion_id": {"type": ["string", "null"],
                              "description": "The suggestion taken or declined; null for "
                                             "a step of the therapist's own.",
                              "examples": ["alliance.metacommunication"]},
            "decision": nullable({"type": "string", "enum": list(STEP_DECISIONS)}),
            "text": {"type": ["string", "null"],
                     "description": "The step's words; the client's own therapist only."}}},
    "PlanCheck": {
        "type": "object", "additionalProperties": False,
        "required": ["id", "reason", "status", "started_at", "answered_at"],
        "description": "The support check the plan followed (never its answers).",
        "properties": {"id": ID,
                       "reason": {"type": "string", "enum": list(CHECK_REASONS)},
                       "status": {"type": "string", "enum": list(CHECK_STATUSES)},
                       "started_at": DATE_TIME, "answered_at": nullable(DATE_TIME)}},
    "PlanList": _page("Plan"),
    "Review": {
        "type": "object", "additionalProperties": False,
        "required": ["id", "client_code", "episode_id", "plan_id", "supervisor_id",
                     "reviewed_at", "discussed", "plan_agreed", "follow_up_on", "note"],
        "description": "A supervisor's record that a case was reviewed.",
        "properties": {
            "id": ID, "client_code": CODE, "episode_id": ID,
            "plan_id": {"type": ["integer", "null"],
                        "description": "Null: a case reviewed without a plan."},
            "supervisor_id": {"type": "integer"}, "reviewed_at": DATE_TIME,
            "discussed": {"type": "boolean"}, "plan_agreed": {"type": "boolean"},
            "follow_up_on": nullable(DATE),
            "note": {"type": ["string", "null"],
                     "description": "Shown to the supervisor who wrote it and the client's "
                                    "own therapist only."}}},
    "ReviewList": _page("Review"),
    "FhirResource": {"type": "object", "required": ["resourceType"],
                     "properties": {"resourceType": {"type": "string"}},
                     "additionalProperties": True},
}

# An instrument is its summary plus its items and scoring.
SCHEMAS["Instrument"]["required"] = [*SCHEMAS["InstrumentSummary"]["required"],
                                     *SCHEMAS["Instrument"]["required"]]
SCHEMAS["Instrument"]["properties"] = {**SCHEMAS["InstrumentSummary"]["properties"],
                                       **SCHEMAS["Instrument"]["properties"]}
SCHEMAS["Instrument"]["additionalProperties"] = False

_PROBLEM = {"application/problem+json": {"schema": ref("Problem")}}
_FHIR_ERROR = {"application/fhir+json": {"schema": ref("FhirResource")}}


def _errors(*statuses: int, fhir: bool = False) -> dict[str, Any]:
    words = {400: "Malformed request (bad JSON, cursor or parameter).",
             401: "No token, or an unknown, expired or revoked one.",
             403: "The token lacks the scope this method needs.",
             404: "Not found, or outside the token's reach.",
             409: "Conflict (state, or an Idempotency-Key reused for another request).",
             413: "The body is too large.", 415: "The body is not JSON.",
             422: "The input breaks a rule; errors name each field.",
             429: "Rate limit reached; see Retry-After."}
    content = _FHIR_ERROR if fhir else _PROBLEM
    return {str(s): {"description": words[s], "content": content} for s in statuses}


READ_ERRORS = (400, 401, 403, 404, 429)
WRITE_ERRORS = (400, 401, 403, 404, 409, 413, 415, 422, 429)


def _json(name: str, description: str, headers: dict | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description,
                           "content": {"application/json": {"schema": ref(name)}}}
    if headers:
        out["headers"] = headers
    return out


_CODE_PARAM = {"name": "code", "in": "path", "required": True, "schema": {"type": "string"}}
_PAGE_PARAMS = [
    {"name": "cursor", "in": "query", "required": False,
     "schema": {"type": "string", "pattern": CURSOR_PATTERN},
     "description": "next_cursor of the previous page, unchanged (treat it as opaque)."},
    {"name": "limit", "in": "query", "required": False,
     "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 50}},
]
_STATUS_PARAM = {"name": "status", "in": "query", "required": False,
                 "schema": {"type": "string", "enum": ["open", "acknowledged", "resolved",
                                                       "all"], "default": "open"}}
# issue 19: api
_PLAN_FILTERS = [
    {"name": "status", "in": "query", "required": False,
     "schema": {"type": "string", "enum": [*PLAN_STATUSES, "all"], "default": "open"}},
    {"name": "review_due", "in": "query", "required": False, "schema": {"type": "boolean"},
     "description": "true: open plans whose review date is today or past; false: the "
                    "others."},
    {"name": "updated_since", "in": "query", "required": False,
     "schema": {"type": "string", "format": "date-time"},
     "description": "Plans created, closed or revised at or after this time (RFC 3339, "
                    "with its offset)."},
]
_PLAN_ID_FILTER = {"name": "plan_id", "in": "query", "required": False, "schema": ID,
                   "description": "Only the reviews of this plan."}
_IDEMPOTENCY = {"name": "Idempotency-Key", "in": "header", "required": False,
                "schema": {"type": "string", "minLength": 1, "maxLength": 255,
                           "pattern": "^[!-~]+$"},
                "description": "Makes the POST safe to retry: the same key and body return "
                               "the stored result; the same key with another body is a 409."}
_LINK = {"Link": {"description": 'rel="next" URL of the next page, if any.',
                  "schema": {"type": "string"}}}
_LOCATION = {"Location": {"description": "Where the new resource is listed.",
                          "schema": {"type": "string"}}}


def _get(summary: str, response: dict, *, params: list | None = None, tag: str,
         errors: tuple[int, ...] = READ_ERRORS, op_id: str) -> dict[str, Any]:
    return {"get": {"summary": summary, "operationId": op_id, "tags": [tag],
                    "parameters": params or [],
                    "responses": {"200": response, **_errors(*errors)}}}


def _post(summary: str, body: str, status: str, response: dict, *, params: list | None = None,
          tag: str, op_id: str, errors: tuple[int, ...] = WRITE_ERRORS) -> dict[str, Any]:
    return {"post": {"summary": summary, "operationId": op_id, "tags": [tag],
                     "parameters": [*(params or []), _IDEMPOTENCY],
                     "requestBody": {"required": True, "content": {
                         "application/json": {"schema": ref(body)}}},
                     "responses": {status: response, **_errors(*errors)}}}


def _paths() -> dict[str, Any]:
    code = [_CODE_PARAM]
    episode = {"name": "episode_id", "in": "path", "required": True, "schema": ID}
    alert = {"name": "alert_id", "in": "path", "required": True, "schema": ID}
    instrument = {"name": "instrument_id", "in": "path", "required": True,
                  "schema": {"type": "string"}}
    paths: dict[str, Any] = {
        "/api/v1/openapi.json": {"get": {
            "summary": "This document", "operationId": "getOpenApi", "tags": ["meta"],
            "security": [], "responses": {"200": {"description": "OpenAPI 3.1", "content": {
                "application/json": {"schema": {"type": "object"}}}}}}},
        "/api/v1/instruments": _get(
            "Instruments of the clinic, with their status", _json("InstrumentList", "All"),
            tag="instruments", op_id="listInstruments", errors=(401, 403, 429)),
        "/api/v1/instruments/{instrument_id}": _get(
            "One instrument: items, options, scoring", _json("Instrument", "The instrument"),
            params=[instrument], tag="instruments", op_id="getInstrument",
            errors=(401, 403, 404, 429)),
        "/api/v1/clients": {
            **_get("Clients the token's staff member may see", _json(
                "ClientList", "A page of clients", _LINK), params=_PAGE_PARAMS,
                tag="clients", op_id="listClients", errors=(400, 401, 403, 429)),
            **_post("Register a client of the token's therapist, with an open episode",
                    "ClientCreate", "201", _json("Client", "Registered", _LOCATION),
                    tag="clients", op_id="createClient",
                    errors=(400, 401, 403, 409, 413, 415, 422, 429))},
        "/api/v1/clients/{code}": _get("One client", _json("Client", "The client"),
                                       params=code, tag="clients", op_id="getClient",
                                       errors=(401, 403, 404, 429)),
        "/api/v1/clients/{code}/episodes": {
            **_get("The client's episodes of care", _json("EpisodeList", "A page", _LINK),
                   params=[*code, *_PAGE_PARAMS], tag="episodes", op_id="listEpisodes"),
            **_post("Open a new episode", "EpisodeCreate", "201",
                    _json("Episode", "Opened", _LOCATION), params=code, tag="episodes",
                    op_id="openEpisode")},
        "/api/v1/clients/{code}/episodes/{episode_id}/close": _post(
            "End an episode", "EpisodeClose", "200", _json("Episode", "Ended"),
            params=[*code, episode], tag="episodes", op_id="closeEpisode"),
        "/api/v1/clients/{code}/appointments": {
            **_get("The client's appointments", _json("AppointmentList", "A page", _LINK),
                   params=[*code, *_PAGE_PARAMS], tag="appointments",
                   op_id="listAppointments"),
            **_post("Book an appointment in the open episode", "AppointmentCreate", "201",
                    _json("Appointment", "Booked", _LOCATION), params=code,
                    tag="appointments", op_id="bookAppointment")},
        "/api/v1/clients/{code}/administrations": {
            **_get("The client's completed questionnaires (own therapist only)",
                   _json("AdministrationList", "A page", _LINK),
                   params=[*code, *_PAGE_PARAMS], tag="administrations",
                   op_id="listAdministrations"),
            **_post("Submit answers; they are validated, scored and signalled at once",
                    "AdministrationCreate", "201",
                    _json("Submission", "Stored, with the episode's new signals",
                          _LOCATION), params=code, tag="administrations",
                    op_id="submitAdministration")},
        "/api/v1/clients/{code}/signals": _get(
            "The engine's signals for the open (else latest) episode",
            _json("Signals", "Signals"), params=code, tag="signals", op_id="getSignals",
            errors=(401, 403, 404, 429)),
        "/api/v1/alerts": _get(
            "Alerts of every client the token's staff member may see",
            _json("AlertList", "A page", _LINK), params=[_STATUS_PARAM, *_PAGE_PARAMS],
            tag="alerts", op_id="listAlerts", errors=(400, 401, 403, 429)),
        "/api/v1/clients/{code}/alerts": _get(
            "The client's alerts", _json("AlertList", "A page", _LINK),
            params=[*code, _STATUS_PARAM, *_PAGE_PARAMS], tag="alerts",
            op_id="listClientAlerts"),
        "/api/v1/clients/{code}/alerts/{alert_id}/acknowledge": _post(
            "Acknowledge an open alert with a note", "AlertAcknowledge", "200",
            _json("Alert", "Acknowledged"), params=[*code, alert], tag="alerts",
            op_id="acknowledgeAlert"),
        # issue 19: api
        "/api/v1/plans": _get(
            "Action plans of every client the token's staff member may see",
            _json("PlanList", "A page", _LINK), params=[*_PLAN_FILTERS, *_PAGE_PARAMS],
            tag="plans", op_id="listPlans", errors=(400, 401, 403, 429)),
        "/api/v1/plans/{plan_id}": _get(
            "One action plan", _json("Plan", "The plan"),
            params=[{"name": "plan_id", "in": "path", "required": True, "schema": ID}],
            tag="plans", op_id="getPlan", errors=(401, 403, 404, 429)),
        "/api/v1/clients/{code}/plans": _get(
            "The client's action plans", _json("PlanList", "A page", _LINK),
            params=[*code, *_PLAN_FILTERS, *_PAGE_PARAMS], tag="plans",
            op_id="listClientPlans"),
        "/api/v1/reviews": _get(
            "Supervision reviews of every client the token's staff member may see",
            _json("ReviewList", "A page", _LINK), params=[_PLAN_ID_FILTER, *_PAGE_PARAMS],
            tag="plans", op_id="listReviews", errors=(400, 401, 403, 429)),
        "/api/v1/clients/{code}/reviews": _get(
            "The client's supervision reviews", _json("ReviewList", "A page", _LINK),
            params=[*code, _PLAN_ID_FILTER, *_PAGE_PARAMS], tag="plans",
            op_id="listClientReviews"),
    }
    paths.update(_fhir_paths())
    return paths


def _fhir_json(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/fhir+json": {"schema": ref("FhirResource")}}}


def _fhir_paths() -> dict[str, Any]:
    return {
        "/fhir/metadata": {"get": {
            "summary": "CapabilityStatement", "operationId": "fhirCapabilities",
            "tags": ["fhir"], "security": [],
            "responses": {"200": _fhir_json("CapabilityStatement")}}},
        "/fhir/Questionnaire/{questionnaire_id}": {"get": {
            "summary": "An instrument as a FHIR R4 Questionnaire (phq9, or phq9-1)",
            "operationId": "fhirReadQuestionnaire", "tags": ["fhir"],
            "parameters": [{"name": "questionnaire_id", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "responses": {"200": _fhir_json("Questionnaire"),
                          **_errors(401, 403, 404, 429, fhir=True)}}},
        "/fhir/QuestionnaireResponse": {
            "get": {
                "summary": "Search a client's QuestionnaireResponses",
                "operationId": "fhirSearchQuestionnaireResponse", "tags": ["fhir"],
                "parameters": [{"name": "subject", "in": "query", "required": True,
                                "schema": {"type": "string"},
                                "description": "Patient/<code>, Patient/<uuid>, or the "
                                               "client code."}],
                "responses": {"200": _fhir_json("Bundle (searchset)"),
                              **_errors(400, 401, 403, 404, 429, fhir=True)}},
            "post": {
                "summary": "Import a completed QuestionnaireResponse",
                "operationId": "fhirCreateQuestionnaireResponse", "tags": ["fhir"],
                "parameters": [_IDEMPOTENCY],
                "requestBody": {"required": True, "content": {
                    "application/fhir+json": {"schema": ref("FhirResource")},
                    "application/json": {"schema": ref("FhirResource")}}},
                "responses": {"201": {**_fhir_json("Stored; the stored resource"),
                                      "headers": _LOCATION},
                              "200": {**_fhir_json("Already stored (same resource id); "
                                                   "the stored resource"),
                                      "headers": _LOCATION},
                              **_errors(*WRITE_ERRORS, fhir=True)}}},
        "/fhir/Observation": {"get": {
            "summary": "Search a client's total-score Observations (LOINC coded)",
            "operationId": "fhirSearchObservation", "tags": ["fhir"],
            "parameters": [{"name": "subject", "in": "query", "required": True,
                            "schema": {"type": "string"}},
                           {"name": "code", "in": "query", "required": False,
                            "schema": {"type": "string"},
                            "description": "http://loinc.org|44261-6, or 44261-6."}],
            "responses": {"200": _fhir_json("Bundle (searchset)"),
                          **_errors(400, 401, 403, 404, 429, fhir=True)}}},
    }


@functools.cache
def _document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "outcome integration API", "version": VERSION,
            "description": "Clients, episodes, appointments, questionnaire answers, signals, "
                           "alerts, action plans and supervision reviews for the clinic's "
                           "other systems. Every request but this "
                           "document needs 'Authorization: Bearer <token>'. A personal "
                           "token acts for the staff member who made it and sees exactly "
                           "what they see; an integration token (an admin's) sees client "
                           "codes and therapists only, and writes nothing. GET needs the "
                           "read scope, POST the write scope. Errors are RFC 9457 problem "
                           "details (FHIR endpoints: OperationOutcome). See docs/api.md.",
            "license": {"name": "Unlicensed (not yet chosen)"}},
        "servers": [{"url": "/"}],
        "security": [{"bearerToken": []}],
        "tags": [{"name": n} for n in ("clients", "episodes", "appointments",
                                       "administrations", "signals", "alerts",
                                       "plans", "instruments", "fhir", "meta")],
        "paths": _paths(),
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearerToken": {
                "type": "http", "scheme": "bearer",
                "description": "An API token (oc_...): a personal one from Your API "
                               "tokens, or an integration one from Admin > API tokens."}}},
    }


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document (a fresh copy each call, so callers cannot alter it)."""
    return copy.deepcopy(_document())
