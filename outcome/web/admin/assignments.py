"""Supervisor assignments: which supervisor sees which therapist's caseload."""

from __future__ import annotations

from flask import abort
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from outcome.models import AccessRequest
from outcome.models import SupervisorAssignment
from outcome.models import User
from outcome.services import access_requests
from outcome.services import staff
from outcome.web.admin.blueprint import _admin
from outcome.web.admin.blueprint import _asked
from outcome.web.admin.blueprint import _clinic_users
from outcome.web.admin.blueprint import _form_user
from outcome.web.admin.blueprint import _record
from outcome.web.admin.blueprint import _refused
from outcome.web.admin.blueprint import bp
from outcome.web.clock import now
from outcome.web.database import audit_event
from outcome.web.database import db_session


@bp.route("/assignments")
def assignments() -> str:
    store = db_session()
    rows = store.scalars(select(SupervisorAssignment).where(
        SupervisorAssignment.clinic_id == current_user.clinic_id)).all()
    people = {u.id: u for u in _clinic_users()}
    pairs = sorted(((row, people[row.supervisor_id], people[row.therapist_id]) for row in rows),
                   key=lambda p: (p[1].display_name.lower(), p[2].display_name.lower()))
    active = [u for u in people.values() if u.is_active]
    return render_template(
        "admin/assignments.html", pairs=pairs,
        supervisors=[u for u in active if u.is_supervisor],
        therapists=[u for u in active if u.is_therapist])



@bp.route("/assignments", methods=["POST"])
def create_assignment() -> Response:
    supervisor = _form_user("supervisor_id", "assignment.create")
    therapist = _form_user("therapist_id", "assignment.create")
    try:
        row = access_requests.assign_supervisor(db_session(), _admin(), supervisor, therapist,
                                                now(), base_url=current_app.config["BASE_URL"])
    except staff.StaffError as exc:
        _refused("assignment.create", exc, object_type="user", object_id=therapist.id)
    else:
        if isinstance(row, AccessRequest):
            _asked(row)
            return redirect(url_for(".assignments"))
        _record("assignment.create", object_type="assignment", object_id=row.id)
        flash(_("%(supervisor)s now supervises %(therapist)s.",
                supervisor=supervisor.display_name, therapist=therapist.display_name), "info")
    return redirect(url_for(".assignments"))


@bp.route("/assignments/<int:assignment_id>/delete", methods=["POST"])
def delete_assignment(assignment_id: int) -> Response:
    store = db_session()
    row = store.get(SupervisorAssignment, assignment_id)
    if row is None or row.clinic_id != current_user.clinic_id:
        audit_event(action="assignment.delete", outcome="denied", actor_user_id=current_user.id,
                    clinic_id=current_user.clinic_id, object_type="assignment",
                    object_id=assignment_id, even_if_failed=True)
        abort(404)
    supervisor = store.get(User, row.supervisor_id)
    therapist = store.get(User, row.therapist_id)
    assert supervisor is not None and therapist is not None
    staff.unassign_supervisor(store, supervisor, therapist)
    _record("assignment.delete", object_type="assignment", object_id=assignment_id)
    flash(_("%(supervisor)s no longer supervises %(therapist)s.",
            supervisor=supervisor.display_name, therapist=therapist.display_name), "info")
    return redirect(url_for(".assignments"))
