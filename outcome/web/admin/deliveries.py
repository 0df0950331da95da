"""Scheduled reports and e-mail: what went out, what is retrying, what failed."""

from __future__ import annotations

from flask import render_template
from sqlalchemy import select

from outcome.models import OutboundEmail
from outcome.models import ReportRun
from outcome.models import User
from outcome.web.admin.blueprint import _clinic
from outcome.web.admin.blueprint import _local
from outcome.web.admin.blueprint import _tz
from outcome.web.admin.blueprint import bp
from outcome.web.database import db_session


@bp.route("/deliveries")
def deliveries() -> str:
    """Digest runs and e-mail of this clinic: what went out, what is retrying, what failed.

    Recipients are staff; no client data is shown (e-mail subjects carry none).
    """
    store = db_session()
    clinic = _clinic()
    runs = store.execute(
        select(ReportRun, User.display_name).join(User, User.id == ReportRun.recipient_user_id)
        .where(User.clinic_id == clinic.id)
        .order_by(ReportRun.created_dt.desc(), ReportRun.id.desc()).limit(100)).all()
    emails = store.scalars(
        select(OutboundEmail).where(OutboundEmail.clinic_id == clinic.id,
                                    OutboundEmail.status != "sent")
        .order_by(OutboundEmail.created_dt.desc()).limit(100)).all()
    return render_template("admin/deliveries.html", runs=runs, emails=emails, tz=_tz(),
                           local=_local)
