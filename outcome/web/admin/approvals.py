"""Approvals: an admin's requests for client access of their own, decided by another admin.

The rules live in :mod:`outcome.services.access_requests`. The page lists the clinic's
waiting requests and those decided in the last 30 days; another active admin approves
(the change is made in this request's transaction) or declines, the requester cancels.
Each decision is audited as ``access_request.<approve|decline|cancel>``; an approval also
records the change itself under its usual action (``user.roles.change``,
``client.transfer`` or ``assignment.create``) with the approving admin as the actor.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import abort
from flask import flash
from flask import redirect
from flask import render_template
from flask import url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from outcome.models import AccessRequest
from outcome.services import access_requests
from outcome.services import staff
from outcome.web.admin.blueprint import _admin
from outcome.web.admin.blueprint import _local
from outcome.web.admin.blueprint import _record
from outcome.web.admin.blueprint import _refused
from outcome.web.admin.blueprint import _tz
from outcome.web.admin.blueprint import bp
from outcome.web.admin.staff import ROLE_LABELS
from outcome.web.clock import now
from outcome.web.database import audit_event
from outcome.web.database import db_session


@bp.route("/approvals")
def approvals() -> str:
    return render_template(
        "admin/approvals.html", lines=access_requests.requests_for(db_session(), _admin(),
                                                                   now()),
        me=current_user.id, tz=_tz(), local=_local, role_labels=ROLE_LABELS,
        days=access_requests.REQUEST_DAYS)


def _request(request_id: int, action: str) -> AccessRequest:
    """A request of the admin's clinic, or a 404 (and a ``denied`` record)."""
    row = db_session().get(AccessRequest, request_id)
    if row is None or row.clinic_id != current_user.clinic_id:
        audit_event(action=action, outcome="denied", actor_user_id=current_user.id,
                    clinic_id=current_user.clinic_id, object_type="access_request",
                    object_id=request_id, even_if_failed=True)
        abort(404)
    return row


def _decide(request_id: int, action: str, decide: Callable[..., object],
            done: str) -> Response:
    row = _request(request_id, action)
    try:
        carried = decide(db_session(), row, _admin(), now())
    except staff.StaffError as exc:
        _refused(action, exc, object_type="access_request", object_id=request_id,
                 client_id=row.client_id)
        return redirect(url_for(".approvals"))
    _record(action, object_type="access_request", object_id=request_id,
            client_id=row.client_id)
    if isinstance(carried, access_requests.Carried):
        _record(carried.action, object_type=carried.object_type, object_id=carried.object_id,
                client_id=carried.client_id)
    flash(done, "info")
    return redirect(url_for(".approvals"))


@bp.route("/approvals/<int:request_id>/approve", methods=["POST"])
def approve_request(request_id: int) -> Response:
    return _decide(request_id, "access_request.approve", access_requests.approve,
                   _("Approved: the change is made."))


@bp.route("/approvals/<int:request_id>/decline", methods=["POST"])
def decline_request(request_id: int) -> Response:
    return _decide(request_id, "access_request.decline", access_requests.decline,
                   _("Declined: nothing has changed."))


@bp.route("/approvals/<int:request_id>/cancel", methods=["POST"])
def cancel_request(request_id: int) -> Response:
    return _decide(request_id, "access_request.cancel", access_requests.cancel,
                   _("Your request is cancelled."))
