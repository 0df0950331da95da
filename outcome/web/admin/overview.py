"""The administration start page: the clinic, its counts, the requests waiting for this
admin's approval, and the recent account security changes (from the audit log), so that
every admin sees what another admin did to accounts."""

from __future__ import annotations

from flask import current_app
from flask import render_template
from sqlalchemy import func
from sqlalchemy import select

from outcome.extensions import instrument_library
from outcome.models import User
from outcome.services import access_requests
from outcome.services import audit_log
from outcome.services import instruments
from outcome.web.admin.blueprint import _admin
from outcome.web.admin.blueprint import _clinic
from outcome.web.admin.blueprint import _local
from outcome.web.admin.blueprint import _tz
from outcome.web.admin.blueprint import bp
from outcome.web.clock import now
from outcome.web.database import db_session
from outcome.web.notices import admin_notices


@bp.route("/")
def index() -> str:
    store = db_session()
    clinic = _clinic()
    statuses = instruments.instrument_statuses(store, clinic.id,
                                               instrument_library(current_app))
    counts = {
        "users": store.scalar(select(func.count()).select_from(User).where(
            User.clinic_id == clinic.id, User.is_active.is_(True))) or 0,
        "disabled": store.scalar(select(func.count()).select_from(User).where(
            User.clinic_id == clinic.id, User.is_active.is_(False))) or 0,
        "unattested": sum(1 for s in statuses if s.status == "needs attestation"),
    }
    admin, moment = _admin(), now()
    counts["waiting"] = access_requests.waiting_for(store, admin, moment)
    return render_template("admin/index.html", clinic=clinic, counts=counts,
                           changes=audit_log.security_changes(store, admin, moment),
                           tz=_tz(), local=_local,
                           **admin_notices(store, clinic.id, moment))
