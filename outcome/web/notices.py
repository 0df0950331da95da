"""Notices at the top of staff pages (issue 17): a questionnaire link that could not be
e-mailed (the therapist's caseload), and an urgent answer left unacknowledged (the
therapist's caseload, the supervisor's start pages, and the admins' overview when the
therapist has no supervisor). The rules live in :mod:`outcome.services.mail_status` and
:mod:`outcome.services.escalation`; this module only shapes them for the templates.

What each reader sees follows the access rules: the therapist their own client's name,
a supervisor the client's code and the therapist, an admin the therapist alone.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from babel.dates import format_datetime
from flask_babel import get_locale
from sqlalchemy.orm import Session

from outcome.models import Clinic
from outcome.models import User
from outcome.services import escalation
from outcome.services import mail_status


def _when(moment: dt.datetime, clinic: Clinic | None) -> str:
    local = moment.astimezone(zoneinfo.ZoneInfo(clinic.timezone if clinic else "UTC"))
    return format_datetime(local, "d MMM y, HH:mm", locale=str(get_locale()))


def caseload_notices(store: Session, user: User, clinic: Clinic | None,
                     moment: dt.datetime) -> dict[str, Any]:
    """What ``_mail_notice.html`` and ``_urgent_notice.html`` show on the start page."""
    notices: dict[str, Any] = {"undelivered_links": [], "urgent_overdue": [],
                               "urgent_supervised": []}
    if user.is_therapist:
        notices["undelivered_links"] = [
            {"code": u.client_code, "name": u.client_name, "when": _when(u.starts_dt, clinic)}
            for u in mail_status.undelivered_links(store, user, moment)]
        notices["urgent_overdue"] = escalation.overdue_for_therapist(store, user, moment)
    if user.is_supervisor:
        notices["urgent_supervised"] = escalation.overdue_for_supervisor(store, user, moment)
    return notices


def supervisor_notices(store: Session, user: User, moment: dt.datetime) -> dict[str, Any]:
    return {"urgent_supervised": escalation.overdue_for_supervisor(store, user, moment)}


def admin_notices(store: Session, clinic_id: int, moment: dt.datetime) -> dict[str, Any]:
    return {"urgent_unsupervised": escalation.overdue_without_supervisor(store, clinic_id,
                                                                         moment)}
