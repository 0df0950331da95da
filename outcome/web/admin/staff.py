"""Staff accounts: create, roles, disable and enable, passwords set by an admin.

The rules live in :mod:`outcome.services.staff`; an admin cannot disable their own
account or reset their own password here (the account page does that).
"""

from __future__ import annotations

from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import aliased
from werkzeug.wrappers import Response

from outcome.models import SupervisorAssignment
from outcome.models import User
from outcome.models.clinic import ROLES
from outcome.services import access_requests
from outcome.services import staff
from outcome.services import two_factor
from outcome.web.admin.blueprint import _admin
from outcome.web.admin.blueprint import _asked
from outcome.web.admin.blueprint import _clinic
from outcome.web.admin.blueprint import _clinic_users
from outcome.web.admin.blueprint import _local
from outcome.web.admin.blueprint import _record
from outcome.web.admin.blueprint import _refused
from outcome.web.admin.blueprint import _staff_member
from outcome.web.admin.blueprint import _tz
from outcome.web.admin.blueprint import bp
from outcome.web.admin.blueprint import message
from outcome.web.clock import now
from outcome.web.confirm import require_confirmation
from outcome.web.database import audit_event
from outcome.web.database import db_session

ROLE_LABELS = {"admin": _l("Admin"), "supervisor": _l("Supervisor"),
               "therapist": _l("Therapist")}


@bp.route("/users")
def users(form: dict | None = None, errors: dict | None = None) -> str:
    return render_template("admin/users.html", users=_clinic_users(), tz=_tz(), local=_local,
                           role_labels=ROLE_LABELS, form=form or {"roles": ["therapist"]},
                           errors=errors or {})


@bp.route("/users", methods=["POST"])
def create_user() -> str | Response:
    form = request.form
    roles = form.getlist("role")
    generate = form.get("password_choice") != "set"
    password = staff.generate_password() if generate else form.get("password", "")
    kept = {"email": form.get("email", ""), "display_name": form.get("display_name", ""),
            "roles": roles, "password_choice": "generate" if generate else "set"}
    if not generate and password != form.get("password_confirm", ""):
        flash(_("The two passwords differ."), "error")
        return users(form=kept, errors={"password": _("The two passwords differ.")})
    try:
        user = staff.create_user(db_session(), _clinic(), form.get("email", ""),
                                 form.get("display_name", ""), roles, password, now())
    except staff.StaffError as exc:
        _refused("user.create", exc, object_type="user")
        return users(form=kept, errors={exc.field or "form": message(exc)})
    _record("user.create", object_type="user", object_id=user.id)
    flash(_("Account created for %(name)s.", name=user.display_name), "info")
    if generate:
        return user_page(user.id, generated=password)
    return redirect(url_for(".user_page", user_id=user.id))


@bp.route("/users/<int:user_id>")
def user_page(user_id: int, generated: str | None = None) -> str:
    user = _staff_member(user_id, "user.view")
    store = db_session()
    supervisor = aliased(User)
    therapist = aliased(User)
    pairs = store.execute(
        select(supervisor.display_name, therapist.display_name)
        .select_from(SupervisorAssignment)
        .join(supervisor, supervisor.id == SupervisorAssignment.supervisor_id)
        .join(therapist, therapist.id == SupervisorAssignment.therapist_id)
        .where(SupervisorAssignment.clinic_id == user.clinic_id,
               (SupervisorAssignment.supervisor_id == user.id)
               | (SupervisorAssignment.therapist_id == user.id))
        .order_by(supervisor.display_name, therapist.display_name)).all()
    return render_template("admin/user.html", user=user, tz=_tz(), local=_local,
                           roles=ROLES, role_labels=ROLE_LABELS, generated=generated,
                           clients=staff.client_count(store, user), pairs=pairs,
                           is_self=user.id == current_user.id,
                           second_factor=two_factor.status(store, user))


@bp.route("/users/<int:user_id>/roles", methods=["POST"])
def set_roles(user_id: int) -> Response:
    user = _staff_member(user_id, "user.roles.change")
    try:
        asked = access_requests.change_roles(db_session(), _admin(), user,
                                             request.form.getlist("role"), now(),
                                             base_url=current_app.config["BASE_URL"])
    except staff.StaffError as exc:
        _refused("user.roles.change", exc, object_type="user", object_id=user_id)
        return redirect(url_for(".user_page", user_id=user_id))
    if asked is not None:
        _asked(asked)
        return redirect(url_for(".user_page", user_id=user_id))
    _record("user.roles.change", object_type="user", object_id=user_id)
    flash(_("Roles saved."), "info")
    if user.id == current_user.id and not user.is_admin:
        return redirect(url_for("home.index"))  # no longer an admin: these pages are gone
    return redirect(url_for(".user_page", user_id=user_id))


@bp.route("/users/<int:user_id>/disable", methods=["POST"])
def disable_user(user_id: int) -> Response:
    user = _staff_member(user_id, "user.disable")
    if user.id == current_user.id:
        audit_event(action="user.disable", outcome="error", actor_user_id=current_user.id,
                    clinic_id=current_user.clinic_id, object_type="user", object_id=user_id,
                    even_if_failed=True)
        flash(_("You cannot disable your own account; ask another admin."), "error")
        return redirect(url_for(".user_page", user_id=user_id))
    require_confirmation()
    try:
        clients = staff.disable_user(db_session(), user)
    except staff.StaffError as exc:
        _refused("user.disable", exc, object_type="user", object_id=user_id)
        return redirect(url_for(".user_page", user_id=user_id))
    _record("user.disable", object_type="user", object_id=user_id)
    flash(_("%(name)s is disabled and signed out everywhere.", name=user.display_name), "info")
    if clients:
        flash(_("%(name)s still has %(count)s client(s): transfer them to another therapist "
                "on the clients page.", name=user.display_name, count=clients), "error")
        return redirect(url_for(".clients", therapist=user.id))
    return redirect(url_for(".user_page", user_id=user_id))


@bp.route("/users/<int:user_id>/enable", methods=["POST"])
def enable_user(user_id: int) -> Response:
    user = _staff_member(user_id, "user.enable")
    try:
        staff.enable_user(db_session(), user)
    except staff.StaffError as exc:
        _refused("user.enable", exc, object_type="user", object_id=user_id)
    else:
        _record("user.enable", object_type="user", object_id=user_id)
        flash(_("%(name)s can sign in again.", name=user.display_name), "info")
    return redirect(url_for(".user_page", user_id=user_id))


@bp.route("/users/<int:user_id>/password", methods=["POST"])
def reset_password(user_id: int) -> str | Response:
    user = _staff_member(user_id, "user.password.reset")
    if user.id == current_user.id:
        audit_event(action="user.password.reset", outcome="error", actor_user_id=current_user.id,
                    clinic_id=current_user.clinic_id, object_type="user", object_id=user_id,
                    even_if_failed=True)
        flash(_("Change your own password on your account page."), "error")
        return redirect(url_for("account.password"))
    generate = request.form.get("password_choice") != "set"
    password = staff.generate_password() if generate else request.form.get("password", "")
    if not generate and password != request.form.get("password_confirm", ""):
        flash(_("The two passwords differ."), "error")
        return redirect(url_for(".user_page", user_id=user_id))
    try:
        staff.reset_password(db_session(), user, password, now(), by=_admin().display_name)
    except staff.StaffError as exc:
        _refused("user.password.reset", exc, object_type="user", object_id=user_id)
        return redirect(url_for(".user_page", user_id=user_id))
    _record("user.password.reset", object_type="user", object_id=user_id)
    flash(_("Password set for %(name)s; their sessions have ended and they are told by "
            "e-mail.", name=user.display_name), "info")
    if generate:
        return user_page(user_id, generated=password)
    return redirect(url_for(".user_page", user_id=user_id))


# issue 20: two-factor sign-in
@bp.route("/users/<int:user_id>/two-factor/reset", methods=["POST"])
def reset_two_factor(user_id: int) -> Response:
    """Delete the staff member's authenticator app, recovery codes and passkeys (a lost
    phone), and end their sessions; audited with the admin as actor and the user as
    object. Their next sign-in takes the password alone, or leads to setting up a new
    second factor where the clinic requires one."""
    user = _staff_member(user_id, "two_factor.reset")
    if user.id == current_user.id:  # that would skip the re-check the account page asks
        audit_event(action="two_factor.reset", outcome="error", actor_user_id=current_user.id,
                    clinic_id=current_user.clinic_id, object_type="user", object_id=user_id,
                    even_if_failed=True)
        flash(_("Change your own second factors on your two-factor page; another admin can "
                "reset them."), "error")
        return redirect(url_for("account.two_factor"), 303)
    require_confirmation()
    two_factor.reset(db_session(), user)
    _record("two_factor.reset", object_type="user", object_id=user_id)
    flash(_("The second factors of %(name)s are removed and their sessions have ended.",
            name=user.display_name), "info")
    return redirect(url_for(".user_page", user_id=user_id), 303)
