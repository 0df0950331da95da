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

from outcome.core.inputs import InputError
from outcome.core.inputs import parse_date
from outcome.models.audit import AUDIT_OUTCOMES
from outcome.services import audit_log as audit_log_service
from outcome.web.admin.blueprint import _admin
from outcome.web.admin.blueprint import _clinic
from outcome.web.admin.blueprint import _clinic_users
from outcome.web.admin.blueprint import bp
from outcome.web.clock import now
from outcome.web.database import audit_event
from outcome.web.database import db_session
from outcome.web.inputs import arg_id

OUTCOME_LABELS = {"allowed": _l("allowed"), "denied": _l("denied"), "error": _l("error")}


def _day(raw: str, errors: dict[str, str], field: str) -> dt.date | None:
    if not raw:
        return None
    try:
        return parse_date(raw)  # ASCII digits, 1900 to 2999: a day after it still exists
    except InputError:
        errors[field] = _("Give a date as YYYY-MM-DD, from 1900 to 2999.")
        return None


@bp.route("/audit")
def audit_log() -> tuple[str, int]:
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
    # Not an id or page number written in ASCII digits: a 400 naming the parameter.
    actor_user_id = arg_id("user")
    page = arg_id("page") or 1
    found = audit_log_service.audit_page(
        store, _admin(), tz=tz, action=filters["action"] or None,
        # An unknown outcome is ignored, not an error.
        outcome=filters["outcome"] if filters["outcome"] in AUDIT_OUTCOMES else None,
        actor_user_id=actor_user_id, client_code=filters["client"] or None, start=start,
        end=end, page=page)
    if found.unknown_client:
        errors["client"] = _("No client of this clinic has that code.")
    # Refused anonymous requests: over the days shown, or the last 24 hours.
    denials = audit_log_service.denial_summary(store, _admin(), tz=tz, now=now(),
                                               start=start, end=end)
    audit_event(action="audit.view", outcome="allowed", actor_user_id=current_user.id,
                clinic_id=clinic.id, object_type="page", object_id=found.page, even_if_failed=True)
    kept = {k: v for k, v in filters.items() if v}
    # A malformed date is a 400 (the form shows why beside the field); an unknown client
    # code is an answer (no such client), not an error.
    status = 400 if errors.keys() - {"client"} else 200
    return render_template(
        "admin/audit.html", rows=found.lines, tz=tz, filters=filters,
        errors=errors, actions=found.actions, outcomes=AUDIT_OUTCOMES,
        outcome_labels=OUTCOME_LABELS, users=_clinic_users(), page=found.page,
        has_more=found.has_more, kept=kept, timezone=clinic.timezone, denials=denials,
        denials_span=bool(start or end)), status
