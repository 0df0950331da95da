"""The audit log, read-only: the request's filters in, one page out.

The query (filters, local days, pagination) is :func:`outcome.services.audit_log.audit_page`;
this view reads the query string, words the errors and records that the log was viewed.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from flask import render_template
from flask import request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from outcome.models.audit import AUDIT_OUTCOMES
from outcome.services import audit_log as audit_log_service
from outcome.web.admin.blueprint import _admin
from outcome.web.admin.blueprint import _clinic
from outcome.web.admin.blueprint import _clinic_users
from outcome.web.admin.blueprint import bp
from outcome.web.clock import now
from outcome.web.database import audit_event
from outcome.web.database import db_session

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
    start = _day(filters["from"], errors, "from")
    end = _day(filters["to"], errors, "to")
    page = args.get("page", "1")
    found = audit_log_service.audit_page(
        store, _admin(), tz=tz, action=filters["action"] or None,
        # An unknown outcome or a user that is not a number is ignored, not an error.
        outcome=filters["outcome"] if filters["outcome"] in AUDIT_OUTCOMES else None,
        actor_user_id=int(filters["user"]) if filters["user"].isdigit() else None,
        client_code=filters["client"] or None, start=start, end=end,
        page=int(page) if page.isdigit() else 1)
    if found.unknown_client:
        errors["client"] = _("No client of this clinic has that code.")
    # Refused anonymous requests: over the days shown, or the last 24 hours.
    denials = audit_log_service.denial_summary(store, _admin(), tz=tz, now=now(),
                                               start=start, end=end)
    audit_event(action="audit.view", outcome="allowed", actor_user_id=current_user.id,
                clinic_id=clinic.id, object_type="page", object_id=found.page, even_if_failed=True)
    kept = {k: v for k, v in filters.items() if v}
    return render_template(
        "admin/audit.html", rows=found.lines, tz=tz, filters=filters,
        errors=errors, actions=found.actions, outcomes=AUDIT_OUTCOMES,
        outcome_labels=OUTCOME_LABELS, users=_clinic_users(), page=found.page,
        has_more=found.has_more, kept=kept, timezone=clinic.timezone, denials=denials,
        denials_span=bool(start or end))
