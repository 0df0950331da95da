"""The setup page of a fresh installation: the first clinic and its first admin.

Reachable only while no clinic exists, and only with the one-time token that ``outcome
serve`` prints (:mod:`outcome.services.setup`). Like a questionnaire link, the token is
exchanged at ``/setup/<token>`` for a mark in the session (the token's digest), and the
browser is sent on to ``/setup``, so the token does not stay in the address bar or
history. A wrong or missing token is a 403 page; once a clinic exists the pages are a
404 and the token is gone. Creating the clinic removes the token: it works once.
"""

from __future__ import annotations

import zoneinfo

from flask import Blueprint
from flask import abort
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from outcome.extensions import limiter
from outcome.services import setup
from outcome.services.passwords import MIN_LENGTH
from outcome.web.clock import now
from outcome.web.database import audit_event
from outcome.web.database import count_denial
from outcome.web.database import db_session
from outcome.web.database import discard_changes

bp = Blueprint("setup", __name__, url_prefix="/setup")
SESSION_KEY = "setup_digest"
# Per address: a token is 43 random characters, but a flood of guesses is still refused.
TOKEN_LIMIT = "10 per minute;50 per hour"  # noqa: S105 (a rate, not a secret)
FIELDS = ("name", "timezone", "admin_name", "email")


def _failed(response: Response) -> bool:
    return response.status_code >= 400


def _forbidden() -> tuple[str, int]:
    return render_template(
        "error.html", title=_("Setup needs its one-time address"),
        message=_("This page works only from the one-time setup address that `outcome "
                  "serve` printed on the server when it started. Open that whole address, "
                  "or ask whoever runs the server; `outcome clinic create` on the server "
                  "does the same.")), 403


def _gone_if_set_up() -> None:
    """Once a clinic exists there is no setup page (and no token)."""
    if setup.has_clinic(db_session()):
        setup.discard_setup_token(current_app.instance_path)
        abort(404)


@bp.route("/<token>")
@limiter.limit(TOKEN_LIMIT, deduct_when=_failed)
def open_token(token: str) -> Response | tuple[str, int]:
    _gone_if_set_up()
    digest = setup.check_setup_token(current_app.instance_path, token)
    if digest is None:
        count_denial("setup.open")
        return _forbidden()
    session.clear()  # nothing of a staff or client session goes with it
    session[SESSION_KEY] = digest
    return redirect(url_for(".form"), 303)


def _message(exc: setup.SetupError) -> str:
    return _(exc.message, **exc.params)


@bp.route("", methods=["GET", "POST"])
@limiter.limit(TOKEN_LIMIT, methods=["POST"], deduct_when=_failed)
def form() -> Response | str | tuple[str, int]:
    _gone_if_set_up()
    digest = session.get(SESSION_KEY)
    if not digest or digest != setup.setup_token_digest(current_app.instance_path):
        count_denial("setup.view")
        return _forbidden()
    values = {"timezone": current_app.config.get("TIMEZONE") or "UTC"}
    errors: dict[str, str] = {}
    if request.method == "POST":
        values = {key: request.form.get(key, "").strip()[:300] for key in FIELDS}
        password = request.form.get("password", "")
        if password != request.form.get("password_confirm", ""):
            errors["password"] = _("The two passwords differ.")
        elif (claim := setup.claim_setup_token(current_app.instance_path, digest)) is None:
            return _forbidden()  # a second request at the same moment: the first creates
        else:
            try:
                clinic, admin = setup.create_clinic(
                    db_session(), name=values["name"], timezone=values["timezone"],
                    admin_email=values["email"], admin_name=values["admin_name"],
                    password=password, now=now())
            except setup.SetupError as exc:
                discard_changes()
                setup.release_setup_token(claim)
                errors[exc.field or "name"] = _message(exc)
            else:
                for action, object_type, object_id in (
                        ("clinic.create", "clinic", clinic.id), ("user.create", "user",
                                                                 admin.id)):
                    audit_event(action=action, outcome="allowed", actor_kind="system",
                                actor_label="setup page", clinic_id=clinic.id,
                                object_type=object_type, object_id=object_id)
                claim.unlink(missing_ok=True)  # used: it works once
                session.clear()
                flash(_("The clinic %(name)s is ready. Sign in as its admin with the e-mail "
                        "and password you gave; you will then choose a new password.",
                        name=clinic.name), "info")
                return redirect(url_for("auth.login"), 303)
    return render_template(
        "setup/form.html", values=values, errors=errors,
        timezones=sorted(zoneinfo.available_timezones()),
        min_length=MIN_LENGTH), (422 if errors else 200)
