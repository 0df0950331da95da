"""The admin blueprint and what its views share: the admins-only guard, the audit helpers,
the clinic's staff, and the lookups that turn a foreign object into a 404.

The helpers keep their leading underscore: they are private to the ``outcome.web.admin``
package, used by its view modules and nobody else (except :func:`message`, which the
account pages use too).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from flask import Blueprint
from flask import abort
from flask import current_app
from flask import flash
from flask import request
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func
from sqlalchemy import select
from werkzeug.wrappers import Response

from outcome.core.inputs import ascii_int
from outcome.models import AccessRequest
from outcome.models import Clinic
from outcome.models import User
from outcome.services import clinic_settings
from outcome.services import instruments
from outcome.services import staff
from outcome.web.database import audit_event
from outcome.web.database import db_session
from outcome.web.database import discard_changes
from outcome.web.i18n import format_moment

bp = Blueprint("admin", __name__, url_prefix="/admin")


# --- access ------------------------------------------------------------------------------


@bp.before_request
def _admins_only() -> Response | None:
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
    if not (current_user.is_admin and current_user.is_active):
        audit_event(action="admin.view", outcome="denied", actor_user_id=current_user.id,
                    clinic_id=current_user.clinic_id, object_type="page",
                    object_id=request.endpoint, even_if_failed=True)
        abort(404)
    return None


def _admin() -> User:
    return current_user._get_current_object()


def _clinic() -> Clinic:
    clinic = db_session().get(Clinic, current_user.clinic_id)
    assert clinic is not None
    return clinic


def _record(action: str, outcome: str = "allowed", **fields: Any) -> None:
    """Add an audit record to the request's transaction (committed with the change)."""
    audit_event(action=action, outcome=outcome, actor_user_id=current_user.id,
                clinic_id=current_user.clinic_id, **fields)


def _refused(action: str, exc: staff.StaffError | clinic_settings.SettingError
             | instruments.AttestationError, **fields: Any) -> None:
    """Undo the request's changes, audit the refusal and show why."""
    discard_changes()
    audit_event(action=action, outcome="error", actor_user_id=current_user.id,
                clinic_id=current_user.clinic_id, even_if_failed=True, **fields)
    flash(message(exc), "error")


def _asked(asked: AccessRequest) -> None:
    """Audit a stored request for the admin's own client access, and say it waits."""
    _record("access_request.create", object_type="access_request", object_id=asked.id,
            client_id=asked.client_id)
    flash(_("Your request awaits the approval of another admin of the clinic; they see it "
            "under Approvals. Nothing has changed yet."), "info")


def message(exc: Exception) -> str:
    """The error's sentence in the user's language (services mark theirs with ``N_``)."""
    if isinstance(exc, staff.StaffError):
        return _(exc.message, **exc.params)
    return str(exc)


def _staff_member(user_id: int, action: str) -> User:
    """A user of the admin's clinic, or a 404 (and a ``denied`` record)."""
    user = db_session().get(User, user_id)
    if user is None or user.clinic_id != current_user.clinic_id:
        audit_event(action=action, outcome="denied", actor_user_id=current_user.id,
                    clinic_id=current_user.clinic_id, object_type="user", object_id=user_id,
                    even_if_failed=True)
        abort(404)
    return user


def _tz() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(_clinic().timezone)


def _local(moment: dt.datetime | None, tz: zoneinfo.ZoneInfo) -> str:
    # One date-and-time style on every page (issue 17); ``tz`` is the clinic's, which
    # the page's Babel time zone already is.
    return format_moment(moment.astimezone(tz)) if moment else ""



def _clinic_users() -> list[User]:
    return list(db_session().scalars(select(User).where(
        User.clinic_id == current_user.clinic_id).order_by(
        User.is_active.desc(), func.lower(User.display_name), User.id)))


def _form_user(name: str, action: str) -> User:
    raw = request.form.get(name, "")
    user_id = ascii_int(raw)  # other scripts' digits, or past the database's ids: none
    if user_id is None:
        audit_event(action=action, outcome="denied", actor_user_id=current_user.id,
                    clinic_id=current_user.clinic_id, object_type="user", object_id=raw[:64],
                    even_if_failed=True)
        abort(404)
    return _staff_member(user_id, action)
