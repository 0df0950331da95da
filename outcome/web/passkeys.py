"""Passkeys on the web (issue 20): registering and removing them on the account's
two-factor page, and using one on the second step of sign-in.

The ceremonies are JSON endpoints driven by ``static/passkeys.js``; they are POSTs with
the page's CSRF token in the ``X-CSRFToken`` header (Flask-WTF checks it as it checks a
form's field). Removing a passkey is an ordinary form with a confirmation box.

Each challenge lives in the signed session for :data:`TIMEOUT_SECONDS`, tied to its
purpose and user, and is taken out when answered. A session cookie is kept by the
browser, so a copy of an older cookie would still hold it: every answered challenge is
also remembered (as a hash, in the rate limiter's store, or this process's memory when
rate limiting is off) until it has expired, and a second answer to it is refused.

Failures are 4xx JSON ``{"error": "..."}`` in the user's language, never a 500. The
sign-in step counts failures like the password (the address limit ``ADDRESS_LIMIT`` and
the account's back-off of :mod:`outcome.web.login_throttle`), and every registration,
removal, and successful or failed use is audited.

The RP ID and origin come from ``PASSKEY_RP_ID`` and ``PASSKEY_ORIGIN``; left empty they
are the request's host name and scheme-and-host (docs/operators.md).
"""

from __future__ import annotations

import hashlib
from typing import Any

from flask import Blueprint
from flask import abort
from flask import current_app
from flask import flash
from flask import g
from flask import jsonify
from flask import redirect
from flask import request
from flask import session
from flask_babel import gettext as _
from flask_login import current_user
from flask_login import login_required
from limits.storage import Storage
from webauthn.helpers import base64url_to_bytes
from webauthn.helpers import bytes_to_base64url
from werkzeug.exceptions import TooManyRequests
from werkzeug.wrappers import Response

from outcome.extensions import limiter
from outcome.models import Clinic
from outcome.models import Passkey
from outcome.models import User
from outcome.ratelimit_storage import MemoryStorage
from outcome.services import passkeys
from outcome.web import login_throttle
from outcome.web import second_factor
from outcome.web.account import current_code_ok
from outcome.web.account import two_factor_key
from outcome.web.admin import message
from outcome.web.auth import ACCOUNT_LIMIT
from outcome.web.auth import ADDRESS_LIMIT
from outcome.web.auth import _safe_next
from outcome.web.clock import now
from outcome.web.confirm import require_confirmation
from outcome.web.database import audit_event
from outcome.web.database import db_session
from outcome.web.database import discard_changes

bp = Blueprint("passkeys", __name__)

CHALLENGE_KEY = "passkey_challenge"
TIMEOUT_SECONDS = passkeys.TIMEOUT_SECONDS
_USED_STORE = "outcome_passkey_challenges"

JsonResponse = tuple[Response, int] | Response


class ChallengeProblem(Exception):
    """No usable challenge for this answer (none, another purpose or user, expired, used)."""


# --- the relying party and the challenges ---------------------------------------------------


def relying_party() -> passkeys.RelyingParty:
    """The RP ID and origin from the configuration, or else from this request."""
    rp_id = current_app.config.get("PASSKEY_RP_ID") or (request.host.rpartition(":")[0]
                                                         if _has_port(request.host)
                                                         else request.host)
    origin = current_app.config.get("PASSKEY_ORIGIN") or f"{request.scheme}://{request.host}"
    return passkeys.RelyingParty(id=rp_id.strip("[]").lower(), origin=origin.rstrip("/"))


def _has_port(host: str) -> bool:
    name, colon, port = host.rpartition(":")
    return bool(colon) and port.isdigit() and not name.endswith(":")


def _keep_challenge(purpose: str, user: User, challenge: bytes) -> None:
    session[CHALLENGE_KEY] = {"purpose": purpose, "user": user.id, "at": now().timestamp(),
                              "challenge": bytes_to_base64url(challenge)}


def _take_challenge(purpose: str, user: User) -> bytes:
    """The challenge issued to ``user`` for ``purpose``, taken out of the session: it
    answers once. Raises :class:`ChallengeProblem` if there is none to answer."""
    kept = session.pop(CHALLENGE_KEY, None)
    if not isinstance(kept, dict) or kept.get("purpose") != purpose \
            or kept.get("user") != user.id:
        raise ChallengeProblem
    try:
        issued, challenge = float(kept["at"]), base64url_to_bytes(str(kept["challenge"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ChallengeProblem from exc
    if now().timestamp() - issued > TIMEOUT_SECONDS:
        raise ChallengeProblem
    key = "passkey:challenge:" + hashlib.sha256(challenge).hexdigest()[:40]
    if _used_challenges().incr(key, 2 * TIMEOUT_SECONDS) > 1:
        raise ChallengeProblem
    return challenge


def _used_challenges() -> Storage:
    if current_app.config.get("RATELIMIT_ENABLED", True):
        return limiter.storage
    store: Storage = current_app.extensions.setdefault(_USED_STORE, MemoryStorage())
    return store


def _credential_body() -> dict[str, Any]:
    """The JSON object the script sent, or a 400."""
    body = request.get_json(silent=True) if request.is_json else None
    if not isinstance(body, dict):
        raise _Refusal(400, _("The request was not understood. Reload the page and try "
                              "again."))
    return body


class _Refusal(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


@bp.errorhandler(_Refusal)
def _refused(error: _Refusal) -> tuple[Response, int]:
    return jsonify(error=error.text), error.status


@bp.errorhandler(429)
def _too_many(_error: TooManyRequests) -> tuple[Response, int]:
    return jsonify(error=_("For your safety, signing in is paused for a while after "
                           "several attempts. Please wait a few minutes and try again.")), 429


# --- the account: register and remove ----------------------------------------------------------


def _me() -> User:
    user: User = current_user._get_current_object()
    return user


@bp.route("/account/passkeys/options", methods=["POST"])
@login_required
def registration_options() -> Response:
    """Options for ``navigator.credentials.create``; the challenge is kept in the session."""
    me = _me()
    options, challenge = passkeys.registration_options(db_session(), me, relying_party())
    _keep_challenge("register", me, challenge)
    return current_app.response_class(options, mimetype="application/json")


@bp.route("/account/passkeys", methods=["POST"])
@login_required
def register() -> JsonResponse:
    """Store the new passkey (JSON ``{"name": ..., "credential": ...}``); 201 on success,
    4xx JSON with the reason otherwise (nothing stored)."""
    me = _me()
    body = _credential_body()
    try:
        passkeys.clean_name(body.get("name"))  # a wrong name keeps the challenge for a retry
    except passkeys.PasskeyError as exc:
        raise _Refusal(400, message(exc)) from None
    try:
        challenge = _take_challenge("register", me)
    except ChallengeProblem:
        raise _Refusal(400, _("This request has expired. Please try again.")) from None
    try:
        passkey = passkeys.register(db_session(), me, relying_party(), body.get("credential"),
                                    challenge, body.get("name"), now())
    except passkeys.PasskeyError as exc:
        discard_changes()
        audit_event(action="passkey.register", outcome="denied", actor_user_id=me.id,
                    clinic_id=me.clinic_id, object_type="passkey", even_if_failed=True)
        raise _Refusal(400, message(exc)) from None
    audit_event(action="passkey.register", outcome="allowed", actor_user_id=me.id,
                clinic_id=me.clinic_id, object_type="passkey", object_id=passkey.id)
    flash(_("Passkey %(name)s is added: you can use it at your next sign-in.",
            name=passkey.name), "info")
    return jsonify(message=_("Passkey added."), id=passkey.id), 201


@bp.route("/account/passkeys/<int(max=2147483647):passkey_id>/delete", methods=["POST"])
@login_required
@limiter.limit(ADDRESS_LIMIT, methods=["POST"])
@limiter.limit(ACCOUNT_LIMIT, methods=["POST"], key_func=two_factor_key)
def delete(passkey_id: int) -> Response:
    """Remove one of the signed-in staff member's passkeys (a form with a confirmation
    box, and the password or a current code from the authenticator app, so an open
    session alone cannot weaken the account); anybody else's, or an unknown one, is a
    404. Throttled with the account's other two-factor checks and audited. Back to the
    page the form was on."""
    store = db_session()
    me = _me()
    passkey = store.get(Passkey, passkey_id)
    if passkey is None or passkey.user_id != me.id:
        audit_event(action="passkey.delete", outcome="denied", actor_user_id=me.id,
                    clinic_id=me.clinic_id, object_type="passkey",
                    object_id=passkey_id, even_if_failed=True)
        abort(404)
    require_confirmation()
    if not current_code_ok(password_allowed=True):
        discard_changes()
        audit_event(action="passkey.delete", outcome="denied", actor_user_id=me.id,
                    clinic_id=me.clinic_id, object_type="passkey", object_id=passkey_id,
                    even_if_failed=True)
        flash(_("Nothing was removed: type your password (or a current code from your "
                "authenticator app) to remove a passkey."), "error")
        return redirect(_safe_next(request.form.get("next")), 303)
    name = passkey.name
    try:
        passkeys.delete_passkey(store, me, passkey, store.get_one(Clinic, me.clinic_id))
    except passkeys.PasskeyError as exc:
        discard_changes()
        audit_event(action="passkey.delete", outcome="denied", actor_user_id=me.id,
                    clinic_id=me.clinic_id, object_type="passkey", object_id=passkey_id,
                    even_if_failed=True)
        flash(message(exc), "error")
    else:
        audit_event(action="passkey.delete", outcome="allowed", actor_user_id=me.id,
                    clinic_id=me.clinic_id, object_type="passkey", object_id=passkey_id)
        flash(_("Passkey %(name)s is removed.", name=name), "info")
    return redirect(_safe_next(request.form.get("next")), 303)


# --- the second step of sign-in -----------------------------------------------------------------


def _sign_in_failed(_response: Response) -> bool:
    return bool(g.get("passkey_failed"))


def _pending() -> User:
    user = second_factor.pending_user()
    if user is None:
        raise _Refusal(401, _("Your sign-in has expired. Please sign in again with your "
                              "password."))
    return user


@bp.route("/login/passkey/options", methods=["POST"])
@limiter.limit(ADDRESS_LIMIT, methods=["POST"], deduct_when=_sign_in_failed)
def sign_in_options() -> Response:
    """Options for ``navigator.credentials.get`` allowing the pending user's passkeys."""
    user = _pending()
    try:
        options, challenge = passkeys.authentication_options(db_session(), user,
                                                             relying_party())
    except passkeys.PasskeyError as exc:
        raise _Refusal(400, message(exc)) from None
    _keep_challenge("sign_in", user, challenge)
    return current_app.response_class(options, mimetype="application/json")


@bp.route("/login/passkey", methods=["POST"])
@limiter.limit(ADDRESS_LIMIT, methods=["POST"], deduct_when=_sign_in_failed)
def sign_in() -> JsonResponse:
    """Check the pending user's passkey (JSON ``{"credential": ...}``). Success signs
    them in and answers ``{"redirect": url}``; a failure is a 4xx with the reason and
    counts towards the sign-in limits."""
    user = _pending()
    email, address = user.email.lower(), request.remote_addr or ""
    wait = login_throttle.retry_after(email, address, now())
    if wait:  # before anything is checked, and not counted
        response = _too_many(TooManyRequests())[0]
        response.headers["Retry-After"] = str(wait)
        return response, 429
    try:
        body = _credential_body()
        try:
            challenge = _take_challenge("sign_in", user)
        except ChallengeProblem:
            raise _Refusal(400, _("This sign-in request has expired or was already used. "
                                  "Please try again.")) from None
        try:
            passkeys.authenticate(db_session(), user, relying_party(), body.get("credential"),
                                  challenge, now())
        except passkeys.PasskeyError as exc:
            raise _Refusal(400, message(exc)) from None
    except _Refusal:
        discard_changes()
        g.passkey_failed = True
        login_throttle.record_failure(email, address, now())
        audit_event(action="login", outcome="denied", even_if_failed=True,
                    actor_user_id=user.id, clinic_id=user.clinic_id,
                    object_type="sign_in_method", object_id="passkey")
        raise
    target = second_factor.complete(user, "passkey").location
    return jsonify(redirect=target)


# --- what the two template slots need ----------------------------------------------------------


@bp.app_template_global()
def own_passkeys() -> list[Passkey]:
    """The signed-in staff member's passkeys (account/_passkeys.html)."""
    if not current_user.is_authenticated:
        return []
    return passkeys.passkeys_of(db_session(), _me())


@bp.app_template_global()
def pending_user_has_passkey() -> bool:
    """Whether the user on the second step of sign-in can use a passkey
    (auth/_passkey_option.html)."""
    user = second_factor.pending_user()
    return user is not None and bool(passkeys.passkeys_of(db_session(), user))
