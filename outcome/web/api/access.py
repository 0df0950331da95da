"""Who is calling the API: bearer tokens, their scopes, request limits, rate-limit keys.

Every API request (but the OpenAPI document) carries ``Authorization: Bearer <token>``.
An unknown, expired or revoked token, or one whose staff member was disabled, is a 401
and is audited as a denied ``api.authenticate``. ``GET`` needs the ``read`` scope and
every other method ``write`` (403 ``insufficient_scope`` otherwise, RFC 6750). The
token then acts for its staff member through :mod:`outcome.web.scoping`.
"""

from __future__ import annotations

import hashlib

from flask import current_app
from flask import g
from flask import request
from flask_limiter.util import get_remote_address
from werkzeug.wrappers import Response

from outcome.models import ApiToken
from outcome.services import api_tokens
from outcome.web.api.problems import Problem
from outcome.web.clock import now
from outcome.web.database import after_reading
from outcome.web.database import audit_event
from outcome.web.database import count_denial
from outcome.web.database import db_session

PUBLIC_ENDPOINTS = frozenset({"api.openapi_document", "fhir.capability_statement"})
READ_METHODS = frozenset({"GET", "HEAD"})


def rate_limit() -> str:
    """The per-token limit (``API_RATE_LIMIT``), read per request so each app may differ."""
    return current_app.config["API_RATE_LIMIT"]


# Requests refused for want of a valid token, per address: a random token must not get a
# bucket of its own. Checked before the token is looked up; only 401s count.
REFUSED_CALLER_LIMIT = "10 per minute;100 per hour"


def failed_token_key() -> str:
    """The address, for :data:`REFUSED_CALLER_LIMIT`."""
    return "api-failures:" + (get_remote_address() or "")


def is_failed_authentication(response: Response) -> bool:
    """Whether the response refused the request's token (counts against the address)."""
    return response.status_code == 401


def rate_limit_key() -> str:
    """Count per token (by its hash, before the token is looked up); else per address.

    A made-up token is counted here too, but it never gets far: every 401 also counts
    against the address (:data:`REFUSED_CALLER_LIMIT`)."""
    secret = _bearer_secret()
    if secret:
        return "api-token:" + hashlib.sha256(secret.encode()).hexdigest()[:32]
    return "api-address:" + (get_remote_address() or "")


def _bearer_secret() -> str | None:
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return None
    return secret.strip()


def limit_body() -> None:
    """Refuse bodies over ``API_MAX_BODY_BYTES`` before reading them (413)."""
    limit = int(current_app.config["API_MAX_BODY_BYTES"])
    request.max_content_length = limit
    if request.content_length is not None and request.content_length > limit:
        raise Problem(413, f"The request body has {request.content_length} bytes; the API "
                           f"accepts at most {limit}.")


def authenticate() -> None:
    """Find the request's token (``g.api_token``) and check its scope; raise a Problem."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    secret = _bearer_secret()
    challenge = 'Bearer realm="outcome"'
    if secret is None:
        raise Problem(401, "Send the API token as 'Authorization: Bearer <token>'. Staff "
                           "create their own on the 'Your API tokens' page; an admin creates "
                           "integration tokens on Admin > API tokens.",
                      headers={"WWW-Authenticate": challenge})
    store = db_session()
    token = api_tokens.authenticate(store, secret, now(), record_use=False)
    if token is not None and api_tokens.is_stale(token, now()):
        # The last-use stamp is written once the request succeeded (a read request
        # writes it after its read, beside other readers).
        used, moment = token.id, now()
        after_reading(lambda session: api_tokens.touch(session, session.get_one(ApiToken, used),
                                                       moment))
    if token is None:
        count_denial("api.authenticate")  # nobody's token: a count per address and minute
        raise Problem(401, "The token is unknown, expired or revoked, or its staff member "
                           "was disabled. Create a new one on the 'Your API tokens' page (or "
                           "ask an admin for a new integration token).",
                      headers={"WWW-Authenticate": challenge + ', error="invalid_token"'})
    g.api_token = token
    needed = "read" if request.method in READ_METHODS else "write"
    if needed not in token.scopes:
        audit_event(action="api.authorize", outcome="denied", actor_kind="api_token",
                    actor_user_id=token.user_id, clinic_id=token.clinic_id,
                    actor_label=api_tokens.audit_label(token), object_type="api_scope",
                    object_id=needed, even_if_failed=True)
        raise Problem(403, f"This token has no '{needed}' scope; it has: "
                           f"{', '.join(token.scopes)}.", kind="insufficient-scope",
                      headers={"WWW-Authenticate": challenge + ', error="insufficient_scope"'
                                                   f', scope="{needed}"'})


def current_token() -> ApiToken:
    """The authenticated token of this request."""
    return g.api_token
