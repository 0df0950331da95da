"""``/fhir``: FHIR R4 endpoints for the EHR (Questionnaire, QuestionnaireResponse, Observation).

Same tokens, scoping and audit as ``/api/v1``; errors are ``OperationOutcome`` resources.
Every response is ``application/fhir+json`` with ``Cache-Control: no-store``.

- ``GET /fhir/metadata``: the CapabilityStatement (public, no token).
- ``GET /fhir/Questionnaire/<id>``: an instrument of the clinic's library, by instrument
  id (``phq9``, the newest version) or by exported id (``phq9-1``, ``wai-sr-1``).
- ``POST /fhir/QuestionnaireResponse``: import a completed response into the client's
  open episode, validated by :func:`questionnaires.fhir.answers_from_response` (FHIR
  R4B model, then :func:`outcome.core.answers.parse_answers`). A resource with an
  ``id`` is stored once per client, however often it is sent.
- ``GET /fhir/QuestionnaireResponse?subject=`` and ``GET /fhir/Observation?subject=
  [&code=]``: searchset Bundles of the client's responses and total-score Observations,
  built by :func:`outcome.services.exports.client_resources` (the same resources, with
  the same stable ids, as the Bundle export).

The client (``subject``) is ``Patient/<client code>``, ``Patient/<uuid>`` (the stable
Patient id of the exports, :func:`outcome.services.exports.patient_id`), a logical
reference ``{"identifier": {"system": "urn:outcome:client-code", "value": <code>}}``,
or (in searches) the bare code. Answers are clinical content, so only the client's own
therapist reads or writes them; anybody else gets a 404, as in ``/api/v1``.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import json
from flask import request
from flask import url_for
from werkzeug.exceptions import NotFound

from outcome.core.answers import AnswerError
from outcome.core.inputs import InputError
from outcome.core.inputs import parse_timestamp
from outcome.core.instruments import Instrument
from outcome.extensions import instrument_library
from outcome.models import Administration
from outcome.models import Client
from outcome.models import Episode
from outcome.services.exports import CODE_SYSTEM
from outcome.services.exports import AdministrationResources
from outcome.services.exports import administration_resources
from outcome.services.exports import client_resources
from outcome.services.exports import patient_id
from outcome.services.exports import patient_reference
from outcome.services.instruments import instrument_statuses
from outcome.services.submissions import IdempotencyConflict
from outcome.services.submissions import ImportConflict
from outcome.services.submissions import NoOpenEpisode
from outcome.services.submissions import Submission
from outcome.services.submissions import SubmissionError
from outcome.services.submissions import import_key
from outcome.services.submissions import previous_import
from outcome.services.submissions import submit
from outcome.web.api import access
from outcome.web.api.bodies import read_json
from outcome.web.api.idempotency import idempotent_write
from outcome.web.api.problems import FHIR_MEDIA_TYPE as MEDIA_TYPE
from outcome.web.api.problems import FieldError
from outcome.web.api.problems import Problem
from outcome.web.clock import now
from outcome.web.database import db_session
from outcome.web.scoping import client_episodes
from outcome.web.scoping import own_client
from outcome.web.scoping import reachable_clients
from questionnaires.fhir import ResponseError
from questionnaires.fhir import answers_from_response
from questionnaires.fhir import questionnaire

bp = Blueprint("fhir", __name__, url_prefix="/fhir")
BODY_TYPES = (MEDIA_TYPE, "application/json")
FHIR_VERSION = "4.0.1"

# "Patient/<id>", relative or at the end of an absolute URL (FHIR ids: 1-64 of [A-Za-z0-9-.]).
_PATIENT_REFERENCE = re.compile(r"^(?:.*/)?Patient/([A-Za-z0-9\-.]{1,64})\Z")
_INDEX = re.compile(r"\.(\d+)(?=\.|$)")


def fhir_response(resource: dict[str, Any], status: int = 200,
                  location: str | None = None) -> Response:
    """A resource as ``application/fhir+json``, ``Cache-Control: no-store``."""
    response = Response(json.dumps(resource), status=status, mimetype=MEDIA_TYPE)
    response.headers["Cache-Control"] = "no-store"
    if location:
        response.headers["Location"] = location
    return response


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _invalid(detail: str, expression: str, code: str = "invalid") -> Problem:
    """A 422 whose one issue points at ``expression`` (a FHIR path in the resource)."""
    return Problem(422, detail, errors=[FieldError(detail, pointer=expression, code=code)])


# --- the capability statement ---------------------------------------------------------------


def capability_statement_resource() -> dict[str, Any]:
    """The server's R4 CapabilityStatement: the resources, interactions and search
    parameters this blueprint serves (JSON only, bearer tokens)."""
    subject = {"name": "subject", "type": "reference",
               "documentation": "Patient/<client code>, Patient/<uuid> (the stable id of "
                                "the exports), or the client code."}
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": _utc(now()),
        "publisher": "outcome",
        "kind": "instance",
        "software": {"name": "outcome"},
        "implementation": {"description": "outcome routine outcome monitoring",
                           "url": request.url_root.rstrip("/") + (bp.url_prefix or "")},
        "fhirVersion": FHIR_VERSION,
        "format": [MEDIA_TYPE, "json"],
        "rest": [{
            "mode": "server",
            "documentation": "Send 'Authorization: Bearer <token>' (a personal token from "
                             "Your API tokens, or Admin > API tokens). "
                             "GET needs the read scope, POST the write scope.",
            "security": {"cors": False,
                         "description": "Bearer API tokens; a token acts for one staff "
                                        "member and sees what they see."},
            "resource": [
                {"type": "Questionnaire", "interaction": [{"code": "read"}]},
                {"type": "QuestionnaireResponse",
                 "interaction": [{"code": "create"}, {"code": "search-type"}],
                 "conditionalCreate": False, "searchParam": [subject]},
                {"type": "Observation", "interaction": [{"code": "search-type"}],
                 "searchParam": [subject, {
                     "name": "code", "type": "token",
                     "documentation": "The total score's LOINC code: "
                                      "http://loinc.org|44261-6 (PHQ-9), 70274-6 (GAD-7)."}]},
            ]}],
    }


@bp.get("/metadata")
def capability_statement() -> Response:
    """``GET /fhir/metadata``: the CapabilityStatement, without a token."""
    return fhir_response(capability_statement_resource())


# --- Questionnaire ---------------------------------------------------------------------------


def _known_instruments() -> list[Instrument]:
    """Every version, in the library, of the instruments the clinic knows."""
    library = instrument_library(current_app)
    known = {s.instrument.id for s in instrument_statuses(
        db_session(), access.current_token().clinic_id, library)}
    return [i for i in library if i.id in known]


@bp.get("/Questionnaire/<questionnaire_id>")
def read_questionnaire(questionnaire_id: str) -> Response:
    """An instrument as a Questionnaire: ``phq9`` (newest) or the exported id ``phq9-1``."""
    instruments = _known_instruments()
    newest = [i for i in instruments if questionnaire_id in (i.id, i.id.replace("_", "-"))]
    if newest:
        return fhir_response(questionnaire(instrument_library(current_app).get(newest[0].id)))
    for instrument in instruments:
        resource = questionnaire(instrument)
        if resource["id"] == questionnaire_id:
            return fhir_response(resource)
    raise Problem(404, f"There is no Questionnaire {questionnaire_id[:64]!r}; use an "
                       "instrument id (phq9) or an exported id (phq9-1).")


# --- finding the client ------------------------------------------------------------------------


def _is_uuid(value: str) -> bool:
    try:
        return len(value) == 36 and str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def _code_of(subject_id: str) -> str:
    """The client code a subject id names: a stable Patient uuid is looked up among the
    clients the token's user may see; anything else is taken as the code itself."""
    if not _is_uuid(subject_id):
        return subject_id
    wanted = subject_id.lower()
    codes = db_session().scalars(reachable_clients().with_only_columns(Client.code))
    # Unknown: the lookup records the denial under this id and answers 404.
    return next((code for code in codes if patient_id(code) == wanted), subject_id)


def _plain(value: str) -> bool:
    """Whether ``value`` could be a code or id at all: no control characters or spaces."""
    return value.isprintable() and not any(ch.isspace() for ch in value)


def _subject_from_resource(resource: dict[str, Any]) -> str:
    """The client code or Patient uuid a resource's ``subject`` names (422 if malformed)."""
    subject = resource.get("subject")
    if not isinstance(subject, dict):
        raise _invalid("subject is required: {\"reference\": \"Patient/<client code>\"}, or an "
                       f"identifier with system {CODE_SYSTEM}.", "subject", "required")
    reference = subject.get("reference")
    if reference is not None:
        match = _PATIENT_REFERENCE.match(reference) if isinstance(reference, str) else None
        if match is None:
            raise _invalid(f"subject.reference {str(reference)[:80]!r} is not a Patient "
                           "reference (Patient/<client code> or Patient/<uuid>).",
                           "subject.reference")
        return match.group(1)
    identifier = subject.get("identifier")
    if (isinstance(identifier, dict) and identifier.get("system") == CODE_SYSTEM
            and isinstance(identifier.get("value"), str) and identifier["value"]):
        if not _plain(identifier["value"]) or len(identifier["value"]) > 64:
            raise _invalid("subject.identifier.value is not a client code.",
                           "subject.identifier.value")
        return identifier["value"]
    raise _invalid(f"subject names no client: give a reference (Patient/<client code>) or "
                   f"an identifier with system {CODE_SYSTEM}.", "subject")


def _subject_from_parameter() -> str:
    """The client code or Patient uuid of the ``subject`` search parameter (400 if not)."""
    value = request.args.get("subject", "").strip()
    if not value:
        raise Problem(400, "The subject parameter is required.", errors=[FieldError(
            "subject is required: Patient/<client code>, Patient/<uuid> or the client code.",
            parameter="subject", code="required")])
    match = _PATIENT_REFERENCE.match(value)
    if match:
        return match.group(1)
    if "/" in value or len(value) > 64 or not _plain(value):
        raise Problem(400, "The subject parameter is not valid.", errors=[FieldError(
            f"subject {value[:80]!r} is not a Patient reference or a client code.",
            parameter="subject", code="invalid")])
    return value


def _own(subject_id: str, action: str) -> tuple[Client, Episode | None]:
    """The client, if the token's user is their therapist (one audit record; 404 if not)."""
    try:
        client, episode, _clinic = own_client(_code_of(subject_id), action)
    except NotFound:
        raise Problem(404, f"There is no client {subject_id[:64]!r} within this token's "
                           "reach (its staff member's own clients).") from None
    return client, episode


# --- QuestionnaireResponse: import ---------------------------------------------------------------


def _fhir_path(where: str) -> str:
    """``item.0.answer.0`` (the model's location) as the FHIR path ``item[0].answer[0]``."""
    return _INDEX.sub(r"[\1]", where)


def _answer_path(resource: dict[str, Any], item_id: str) -> str:
    """Where ``item_id`` is answered in the resource (``item[2].answer[0].valueCoding``),
    or the item id when the resource does not answer it."""
    for index, entry in enumerate(resource.get("item") or []):
        if isinstance(entry, dict) and entry.get("linkId") == item_id:
            answers = entry.get("answer") or []
            if not answers:
                return f"item[{index}]"
            keys = [k for k in answers[0] if k.startswith("value")]
            return f"item[{index}].answer[0]" + (f".{keys[0]}" if keys else "")
    return item_id


def _import_problem(resource: dict[str, Any], errors: list[ResponseError | AnswerError]
                    ) -> Problem:
    issues = []
    for error in errors:
        if isinstance(error, AnswerError):
            issues.append(FieldError(error.message, pointer=_answer_path(resource, error.item),
                                     code=error.code))
        else:
            issues.append(FieldError(f"{_fhir_path(error.where)}: {error.message}",
                                     pointer=_fhir_path(error.where), code="invalid"))
    return Problem(422, "The QuestionnaireResponse cannot be imported; see the issues.",
                   errors=issues)


def _authored(resource: dict[str, Any]) -> dt.datetime:
    value = resource.get("authored")
    if not isinstance(value, str):
        raise _invalid("authored is required: when the questionnaire was completed, a "
                       "dateTime with its offset (2026-11-16T09:30:00Z).", "authored",
                       "required")
    try:
        if "T" not in value:
            raise InputError(value, "format")
        return parse_timestamp(value)  # the years 1900 to 2999: no overflow at UTC
    except InputError as exc:
        if exc.code == "out_of_range":
            raise _invalid(f"authored: {exc.message}", "authored", exc.code) from None
        raise _invalid(f"authored {value[:40]!r} is not a date-time with an offset, e.g. "
                       "2026-11-16T09:30:00Z.", "authored", "format") from None


def _refused(exc: SubmissionError, instrument: Instrument) -> Problem:
    """A refused import as an OperationOutcome's issue, pointing into the resource."""
    if isinstance(exc, ImportConflict):
        return Problem(409, exc.message, kind="conflict", errors=[FieldError(
            "Already imported with other answers.", pointer="id", code="conflict")])
    if isinstance(exc, IdempotencyConflict):
        return Problem(409, str(exc), kind="idempotency-key-reused")
    if isinstance(exc, NoOpenEpisode):
        return Problem(409, "The client has no open episode; open one first "
                            "(POST /api/v1/clients/{code}/episodes).", kind="no-open-episode")
    if exc.field in ("instrument", "version"):
        status = getattr(exc, "status", None)
        return _invalid(f"{instrument.short_name} is not available to this clinic"
                        f"{f' ({status})' if status else ''}.", "questionnaire",
                        "instrument_unavailable")
    if exc.field == "completed":
        return _invalid("authored is later than now.", "authored", exc.code)
    return Problem(422, exc.message)


def _stored(row: Administration, client: Client) -> AdministrationResources:
    resources = administration_resources(row, instrument_library(current_app),
                                         patient_reference(client.code))
    assert resources is not None  # its instrument was just found in the library
    return resources


@bp.post("/QuestionnaireResponse")
@idempotent_write
def create_questionnaire_response() -> Response:
    """Import a completed QuestionnaireResponse: 201 with the stored resource, or 200
    with it when this resource was imported (or exported from here) before."""
    resource = read_json(BODY_TYPES)
    if not isinstance(resource, dict) or resource.get("resourceType") != "QuestionnaireResponse":
        raise _invalid("The body is not a QuestionnaireResponse resource.", "resourceType")
    client, episode = _own(_subject_from_resource(resource),
                           "fhir.questionnaire_response.create")
    library = instrument_library(current_app)
    result = answers_from_response(library, resource)
    if isinstance(result, list):
        raise _import_problem(resource, result)
    instrument, answers = result
    location = url_for(".search_questionnaire_responses",
                       subject=patient_reference(client.code))
    resource_id = resource.get("id") if isinstance(resource.get("id"), str) else None
    key = import_key(client.code, resource_id, access.current_token().id,
                     request.headers.get("Idempotency-Key"))
    try:
        row = previous_import(db_session(), client_id=client.id, resource_id=resource_id,
                              key=key, instrument=instrument, answers=answers)
        if row is not None:
            return fhir_response(_stored(row, client).questionnaire_response, 200, location)
        completed = _authored(resource)
        stored = submit(db_session(), Submission(
            clinic_id=access.current_token().clinic_id, episode=episode,
            instrument_id=instrument.id, version=instrument.version, answers=answers,
            completed_dt=completed, idempotency_key=key), library=library, now=now())
    except SubmissionError as exc:
        raise _refused(exc, instrument) from None
    return fhir_response(_stored(stored.administration, client).questionnaire_response,
                         201 if stored.created else 200, location)


# --- searches ------------------------------------------------------------------------------------


def _searchset(resources: list[dict[str, Any]]) -> Response:
    """A searchset Bundle of ``resources`` (all matches; a client's are few)."""
    return fhir_response({
        "resourceType": "Bundle", "type": "searchset", "timestamp": _utc(now()),
        "total": len(resources),
        "link": [{"relation": "self", "url": request.url}],
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r,
                   "search": {"mode": "match"}} for r in resources]})


def _client_resources(action: str) -> list[AdministrationResources]:
    client, _episode = _own(_subject_from_parameter(), action)
    return client_resources(db_session(), client, client_episodes(client),
                            instrument_library(current_app))


@bp.get("/QuestionnaireResponse")
def search_questionnaire_responses() -> Response:
    """The client's QuestionnaireResponses (superseded ones left out), oldest first."""
    found = _client_resources("fhir.questionnaire_responses.search")
    return _searchset([r.questionnaire_response for r in found])


def _code_filter() -> list[tuple[str | None, str]] | None:
    """The ``code`` parameter as (system or None, code) pairs; a comma means "or"."""
    value = request.args.get("code")
    if value is None:
        return None
    pairs = []
    for token in value.split(","):
        system, bar, code = token.strip().rpartition("|")
        if not code:
            raise Problem(400, "The code parameter is not valid.", errors=[FieldError(
                f"code {value[:80]!r} is not a token: http://loinc.org|44261-6, or 44261-6.",
                parameter="code", code="invalid")])
        pairs.append((system if bar and system else None, code))
    return pairs


def _matches(observation: dict[str, Any], wanted: list[tuple[str | None, str]]) -> bool:
    codings = observation["code"].get("coding", [])
    return any(c.get("code") == code and (system is None or c.get("system") == system)
               for c in codings for system, code in wanted)


@bp.get("/Observation")
def search_observations() -> Response:
    """The client's total-score Observations, LOINC coded where the instrument has a
    code (``code=http://loinc.org|44261-6`` PHQ-9, ``70274-6`` GAD-7)."""
    wanted = _code_filter()
    found = _client_resources("fhir.observations.search")
    observations = [r.observation for r in found if r.observation is not None]
    if wanted is not None:
        observations = [o for o in observations if _matches(o, wanted)]
    return _searchset(observations)


@bp.before_request
def _before() -> None:
    access.limit_body()
    access.authenticate()
