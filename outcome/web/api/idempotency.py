"""``Idempotency-Key`` on every POST of the integration API.

A POST may carry ``Idempotency-Key`` (1 to 255 visible ASCII characters; a UUID is
usual). Its first successful response is stored with a hash of the request (method,
path and body, the body compared as JSON so key order and spacing do not matter), in
the same transaction as the change itself:

- the same key and request again returns the stored status and body
  (``Idempotent-Replayed: true``), and changes nothing, if the token may still reach
  the client the request was about (stored with the result); if access has ended
  since (a transfer), the replay is a 404 audited with the client, as a new request
  would be;
- the same key with another request is a 409;
- a request that failed (4xx) stores nothing, so it can be corrected and sent again
  with the same key;
- two identical requests at once: both may do the work, but only one can store the
  key (a unique constraint), and the loser's transaction rolls back whole and answers
  with the winner's result. Nothing is stored twice.

The request's transaction is committed by the edge (:mod:`outcome.web.database`), with
the change, its idempotency record and its audit records together.

Keys are kept for 24 hours (the scheduler's hourly ``forget-idempotency-keys`` job).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from typing import Any

from flask import Response
from flask import request
from sqlalchemy import exc as sa_exc
from sqlalchemy import select

from outcome.core.inputs import InputError
from outcome.core.inputs import load_json
from outcome.models import ApiIdempotencyRecord
from outcome.web.api.access import current_token
from outcome.web.api.problems import FieldError
from outcome.web.api.problems import Problem
from outcome.web.clock import now
from outcome.web.database import audit_event
from outcome.web.database import db_session
from outcome.web.database import discard_changes
from outcome.web.scoping import actor_fields
from outcome.web.scoping import recheck_client
from outcome.web.scoping import scoped_client_id

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"


def request_fingerprint() -> str:
    """SHA-256 of method, path and body (JSON bodies canonicalised)."""
    raw = request.get_data(cache=True)
    try:
        body = json.dumps(load_json(raw.decode("utf-8")), sort_keys=True,
                          separators=(",", ":")).encode()
    except (UnicodeDecodeError, InputError):
        body = raw  # not JSON we accept: the view refuses it (4xx), and nothing is stored
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.path}\n".encode())
    digest.update(body)
    return digest.hexdigest()


def _key() -> str | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= 255 or not all(33 <= ord(ch) <= 126 for ch in key):
        raise Problem(400, "The Idempotency-Key is not valid.", errors=[FieldError(
            "Idempotency-Key is 1 to 255 visible ASCII characters (a UUID, say).",
            parameter=HEADER, code="invalid_key")])
    return key


def _stored(token_id: int, key: str) -> ApiIdempotencyRecord | None:
    return db_session().scalar(select(ApiIdempotencyRecord).where(
        ApiIdempotencyRecord.token_id == token_id, ApiIdempotencyRecord.key == key))


def _replay(record: ApiIdempotencyRecord, fingerprint: str) -> Response:
    if record.request_sha256 != fingerprint:
        raise Problem(409, "This Idempotency-Key was already used for a different request "
                           "(another path or body). Use a new key for a new request.",
                      kind="idempotency-key-reused", errors=[FieldError(
                          "Reused for a different request.", parameter=HEADER,
                          code="key_reused")])
    token = current_token()
    if record.client_id is not None:
        # Access is checked again: the stored body is the client's data.
        recheck_client(record.client_id, "api.replay", object_type="idempotency_record",
                       object_id=record.id)
    else:
        audit_event(action="api.replay", outcome="allowed", clinic_id=token.clinic_id,
                    object_type="idempotency_record", object_id=record.id,
                    even_if_failed=True, **actor_fields())
    fhir = request.path.startswith("/fhir/")
    response = Response(json.dumps(record.body), status=record.status_code,
                        mimetype="application/fhir+json" if fhir else "application/json")
    response.headers[REPLAYED] = "true"
    if record.location:
        response.headers["Location"] = record.location
    return response


def idempotent_write(view: Callable[..., Response]) -> Callable[..., Response]:
    """Run a POST view; store its result under the request's Idempotency-Key, if any, in
    the change's own transaction (which the edge commits), or replay a stored result."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        store = db_session()
        key = _key()
        token = current_token()
        fingerprint = request_fingerprint() if key else ""
        if key and (record := _stored(token.id, key)) is not None:
            return _replay(record, fingerprint)
        response = view(*args, **kwargs)
        if not key or not 200 <= response.status_code < 300:
            return response  # a failure (4xx) is rolled back by the edge: nothing stored
        try:
            with store.begin_nested():
                store.add(ApiIdempotencyRecord(
                    token_id=token.id, key=key, request_sha256=fingerprint,
                    status_code=response.status_code, body=response.get_json(),
                    location=response.headers.get("Location"),
                    client_id=scoped_client_id(), created_dt=now()))
        except sa_exc.IntegrityError:
            # The same key was stored meanwhile by an identical request that ran at the
            # same time: keep none of this one's work and answer with the winner's result.
            discard_changes()
            if (record := _stored(token.id, key)) is not None:
                return _replay(record, fingerprint)
            raise
        return response

    return wrapper
