"""The audit log, read-only: filtered by action, outcome, staff member, client code and
local days, newest first, 50 events a page."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from flask import render_template
from flask import request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import aliased

from outcome.models import AuditEvent
from outcome.models import Client
from outcome.models import User
from outcome.models.audit import AUDIT_OUTCOMES
from outcome.services.access import administered_clients
from outcome.web.admin.blueprint import _admin
from outcome.web.admin.blueprint import _clinic
from outcome.web.admin.blueprint import _clinic_users
from outcome.web.admin.blueprint import bp
from outcome.web.auditing import record_now
from outcome.web.database import db_session

AUDIT_PAGE_SIZE = 50

OUTCOME_LABELS = {"allowed": _l("allowed"), "denied": _l("denied"), "error": _l("error")}


def _day(raw: str, errors: dict[str, str], field: str) -> dt.date | None:
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        errors[field] = _("Give a date as YYYY-MM-DD.")
        return None


@bp.route("/audit")
def audit_log() -> str:
    store = db_session()
    clinic = _clinic()
    tz = zoneinfo.ZoneInfo(clinic.timezone)
    args = request.args
    errors: dict[str, str] = {}
    filters = {key: (args.get(key) or "").strip()
               for key in ("action", "outcome", "user", "client", "from", "to")}
    filters["client"] = filters["client"].upper()
    actor = aliased(User)
    query = (select(AuditEvent, actor.display_name, actor.email, Client.code)
             .outerjoin(actor, actor.id == AuditEvent.actor_user_id)
             .outerjoin(Client, Client.id == AuditEvent.client_id)
             .where(AuditEvent.clinic_id == clinic.id))
    if filters["action"]:
        query = query.where(AuditEvent.action == filters["action"])
    if filters["outcome"] in AUDIT_OUTCOMES:
        query = query.where(AuditEvent.outcome == filters["outcome"])
    if filters["user"].isdigit():
        query = query.where(AuditEvent.actor_user_id == int(filters["user"]))
    if filters["client"]:
        client_id = store.scalar(administered_clients(_admin())
                                 .with_only_columns(Client.id)
                                 .where(Client.code == filters["client"]))
        if client_id is None:
            errors["client"] = _("No client of this clinic has that code.")
        query = query.where(AuditEvent.client_id == (client_id or -1))
    start = _day(filters["from"], errors, "from")
    end = _day(filters["to"], errors, "to")
    if start:
        query = query.where(AuditEvent.occurred_dt >= dt.datetime.combine(
            start, dt.time(), tz).astimezone(dt.UTC))
    if end:
        query = query.where(AuditEvent.occurred_dt < dt.datetime.combine(
            end + dt.timedelta(days=1), dt.time(), tz).astimezone(dt.UTC))
    page = args.get("page", "1")
    page_number = max(int(page), 1) if page.isdigit() else 1
    rows = store.execute(query.order_by(AuditEvent.occurred_dt.desc(), AuditEvent.id.desc())
                         .limit(AUDIT_PAGE_SIZE + 1)
                         .offset((page_number - 1) * AUDIT_PAGE_SIZE)).all()
    has_more = len(rows) > AUDIT_PAGE_SIZE
    actions = store.scalars(select(AuditEvent.action).where(
        AuditEvent.clinic_id == clinic.id).distinct().order_by(AuditEvent.action)).all()
    record_now(action="audit.view", outcome="allowed", actor_user_id=current_user.id,
               clinic_id=clinic.id, object_type="page", object_id=page_number)
    kept = {k: v for k, v in filters.items() if v}
    return render_template(
        "admin/audit.html", rows=rows[:AUDIT_PAGE_SIZE], tz=tz, filters=filters,
        errors=errors, actions=actions, outcomes=AUDIT_OUTCOMES, outcome_labels=OUTCOME_LABELS,
        users=_clinic_users(), page=page_number, has_more=has_more, kept=kept,
        timezone=clinic.timezone)
