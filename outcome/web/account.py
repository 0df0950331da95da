"""A staff member's own account: changing their password.

A successful change bumps the account's session version, so every other session (and
any copied cookie) ends at once. The browser that made the change is signed in again
with the new version, keeping its original sign-in time, so the clinic's absolute
session limit is not extended by a password change. Attempts are rate-limited like
logins (per address and per account), so a stolen session cannot guess the current
password quickly.
"""

from __future__ import annotations

from flask import Blueprint
from flask import flash
from flask import redirect
from flask import render_template
from flask import session
from flask import url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_login import login_required
from flask_login import login_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import PasswordField
from wtforms.validators import EqualTo
from wtforms.validators import InputRequired
from wtforms.validators import Length

from outcome.extensions import limiter
from outcome.models import User
from outcome.services import staff
from outcome.services.passwords import MAX_LENGTH
from outcome.services.passwords import MIN_LENGTH
from outcome.web.admin import message
from outcome.web.auth import ACCOUNT_LIMIT
from outcome.web.auth import ADDRESS_LIMIT
from outcome.web.clock import now
from outcome.web.database import audit_event
from outcome.web.database import db_session
from outcome.web.database import discard_changes

bp = Blueprint("account", __name__, url_prefix="/account")


def _account_key() -> str:
    return f"password:{current_user.id}" if current_user.is_authenticated else "password:-"


class PasswordChangeForm(FlaskForm):
    current_password = PasswordField(
        _l("Current password"), validators=[InputRequired(), Length(max=MAX_LENGTH)],
        render_kw={"autocomplete": "current-password"})
    new_password = PasswordField(
        _l("New password (at least %(count)s characters)", count=MIN_LENGTH),
        validators=[InputRequired(), Length(max=MAX_LENGTH)],
        render_kw={"autocomplete": "new-password"})
    confirm = PasswordField(
        _l("The new password again"),
        validators=[InputRequired(), EqualTo("new_password",
                                             message=_l("The two new passwords differ."))],
        render_kw={"autocomplete": "new-password"})


@bp.route("/password", methods=["GET", "POST"])
@login_required
@limiter.limit(ADDRESS_LIMIT, methods=["POST"])
@limiter.limit(ACCOUNT_LIMIT, methods=["POST"], key_func=_account_key)
def password() -> str | Response:
    form = PasswordChangeForm()
    if form.validate_on_submit():
        store = db_session()
        user: User = current_user._get_current_object()
        try:
            staff.change_password(store, user, form.current_password.data or "",
                                  form.new_password.data or "", now())
        except staff.StaffError as exc:
            wrong_current = exc.field == "current_password"
            audit_event(action="password.change", even_if_failed=True,
                        outcome="denied" if wrong_current else "error",
                        actor_user_id=user.id, clinic_id=user.clinic_id, object_type="user",
                        object_id=user.id)
            field = form.current_password if wrong_current else form.new_password
            field.errors = [*field.errors, message(exc)]
            discard_changes()  # whatever the refused change had begun
        else:
            audit_event(action="password.change", outcome="allowed", actor_user_id=user.id,
                        clinic_id=user.clinic_id, object_type="user", object_id=user.id)
            signed_in_at = session.get("signed_in_at")
            session.clear()  # the old identity (old session version) goes with it
            login_user(user)  # re-issued with the new session version
            session["signed_in_at"] = signed_in_at or now().timestamp()
            session["seen_at"] = now().timestamp()
            flash(_("Your password is changed. Any other session of yours has ended."), "info")
            return redirect(url_for("home.index"))
    return render_template("account/password.html", form=form)
