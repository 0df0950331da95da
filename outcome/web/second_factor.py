"""The second step of staff sign-in (issue 20), shared by every kind of second factor.

After a correct password, a user with a second factor is not signed in yet: the session
holds only a *pending* sign-in (user id, session version, time and where to go next) for
:data:`PENDING_SECONDS`. The second step (an authenticator code or a recovery code:
``outcome.web.auth``; a passkey: ``outcome.web.passkeys``) calls :func:`complete` on
success, which signs the user in exactly as a password-only sign-in does.
"""

from __future__ import annotations

from flask import redirect
from flask import request
from flask import session
from flask import url_for
from flask_login import login_user
from werkzeug.wrappers import Response

from outcome.models import User
from outcome.services import two_factor
from outcome.web import login_throttle
from outcome.web.clock import now
from outcome.web.database import audit_event
from outcome.web.database import db_session

PENDING_KEY = "second_factor_pending"
# A pending sign-in lapses after five minutes: the password must be typed again.
PENDING_SECONDS = 300
# How the user proved who they are, recorded in the audit trail's object_id.
METHODS = ("password", "totp", "recovery_code", "passkey")


def begin(user: User, next_url: str) -> Response:
    """Hold a pending sign-in for ``user`` (password already checked) and send them to the
    second step. Nothing from before survives: the session is cleared first."""
    session.clear()
    session[PENDING_KEY] = {"user": user.id, "version": user.session_version,
                            "at": now().timestamp(), "next": next_url}
    return redirect(url_for("auth.second_factor"), 303)


def pending_user() -> User | None:
    """The user whose sign-in waits for a second step, if it has not lapsed and the account
    is still active with the same session version; otherwise None."""
    pending = session.get(PENDING_KEY)
    if not isinstance(pending, dict):
        return None
    try:
        user_id, version, at = int(pending["user"]), int(pending["version"]), float(pending["at"])
    except (KeyError, TypeError, ValueError):
        return None
    if now().timestamp() - at > PENDING_SECONDS:
        return None
    user = db_session().get(User, user_id)
    if user is None or not user.is_active or user.session_version != version:
        return None
    return user


def pending_next() -> str:
    """Where the user goes once signed in (already checked to be a same-site path)."""
    pending = session.get(PENDING_KEY)
    target = pending.get("next") if isinstance(pending, dict) else None
    return target if isinstance(target, str) and target else url_for("home.index")


def complete(user: User, method: str, next_url: str | None = None) -> Response:
    """Sign ``user`` in after every required step succeeded (``method`` the last one).

    Wipes the account's failed attempts (login throttling, and the count of wrong
    second-step codes of :func:`outcome.services.two_factor.reset_second_step_failures`,
    whichever factor succeeded), records the sign-in in the
    audit trail with its method, starts a fresh session with the idle and absolute
    timers, and redirects to ``next_url`` (or the pending sign-in's next page).
    """
    assert method in METHODS, method
    target = next_url or pending_next()
    user.last_login_dt = now()
    login_throttle.record_success(user.email.lower(), request.remote_addr or "")
    two_factor.reset_second_step_failures(db_session(), user)
    audit_event(action="login", outcome="allowed", actor_user_id=user.id,
                clinic_id=user.clinic_id, object_type="sign_in_method", object_id=method)
    session.clear()  # nothing from before the login survives it
    login_user(user)
    session["signed_in_at"] = session["seen_at"] = now().timestamp()
    return redirect(target)
