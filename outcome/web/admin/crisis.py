"""The clinic's crisis contacts and reading hours: a form, and the setup checklist.

The rules are in :mod:`outcome.services.crisis`; nothing is saved while any field is
wrong. Until both are set, the admin's start pages show a checklist that links here
(``setup_checklist`` in templates).
"""

from __future__ import annotations

from typing import Any

from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from werkzeug.wrappers import Response

from outcome.models import Clinic
from outcome.services import crisis
from outcome.web.admin.blueprint import _clinic
from outcome.web.admin.blueprint import _record
from outcome.web.admin.blueprint import bp
from outcome.web.database import audit_event
from outcome.web.database import db_session
from outcome.web.database import discard_changes

WEEKDAYS = (_l("Monday"), _l("Tuesday"), _l("Wednesday"), _l("Thursday"), _l("Friday"),
            _l("Saturday"), _l("Sunday"))
DEFAULT_HOURS = ("09:00", "17:00")


def _message(exc: crisis.CrisisError) -> str:
    return _(exc.message, **exc.params)


@bp.app_context_processor
def _checklist() -> dict[str, Any]:
    def setup_checklist() -> dict[str, bool] | None:
        """What the signed-in admin's clinic still lacks, or None (nothing, or no admin)."""
        if not (current_user.is_authenticated and current_user.is_admin):
            return None
        clinic = db_session().get(Clinic, current_user.clinic_id)
        if clinic is None or crisis.crisis_setup_complete(clinic):
            return None
        return {"contacts": bool(crisis.crisis_contacts(clinic)),
                "hours": bool(crisis.reading_hours(clinic))}
    return {"setup_checklist": setup_checklist}


def _shown(clinic: Clinic) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    contacts = [{"label": c.label, "phone": c.phone, "note": c.note}
                for c in crisis.crisis_contacts(clinic)]
    contacts += [{"label": "", "phone": "", "note": ""}] * (crisis.MAX_CONTACTS - len(contacts))
    stored = {h.weekday: h for h in crisis.reading_hours(clinic)}
    hours = []
    for weekday in range(7):
        day = stored.get(weekday)
        if day is not None:
            hours.append({"open": True, "opens": f"{day.opens:%H:%M}",
                          "closes": f"{day.closes:%H:%M}"})
        else:  # a new clinic is offered Monday to Friday, 9 to 5
            hours.append({"open": not stored and weekday < 5, "opens": DEFAULT_HOURS[0],
                          "closes": DEFAULT_HOURS[1]})
    return contacts, hours


def _from_form() -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    form = request.form
    contacts = [{key: form.get(f"contact-{n}-{key}", "").strip()[:300]
                 for key in ("label", "phone", "note")}
                for n in range(1, crisis.MAX_CONTACTS + 1)]
    hours = [{"open": form.get(f"hours-{d}-open") == "on",
              "opens": form.get(f"hours-{d}-opens", "").strip()[:10],
              "closes": form.get(f"hours-{d}-closes", "").strip()[:10]} for d in range(7)]
    return contacts, hours


@bp.route("/settings/crisis", methods=["GET", "POST"])
def crisis_settings() -> str | Response | tuple[str, int]:
    clinic = _clinic()
    errors: dict[str, str] = {}
    general: list[str] = []
    if request.method == "POST":
        contacts, hours = _from_form()
        given = [c for c in contacts if any(c.values())]
        days = [[h["opens"], h["closes"]] if h["open"] else None for h in hours]
        found = crisis.problems(given, days)
        if not found:
            crisis.save(db_session(), clinic, given, days)
            _record("clinic.settings.change", object_type="clinic", object_id=clinic.id)
            flash(_("Crisis contacts and reading hours saved.") if crisis.crisis_setup_complete(
                clinic) else _("Saved."), "info")
            return redirect(url_for(".crisis_settings"))
        discard_changes()
        audit_event(action="clinic.settings.change", outcome="error",
                    actor_user_id=current_user.id, clinic_id=current_user.clinic_id,
                    object_type="clinic", object_id=clinic.id, even_if_failed=True)
        for problem in found:
            if problem.field and problem.field not in errors:
                errors[problem.field] = _message(problem)
            elif not problem.field:
                general.append(_message(problem))
        # Rows moved up when blanks were dropped: show them where the errors point.
        contacts = given + [{"label": "", "phone": "", "note": ""}] * (
            crisis.MAX_CONTACTS - len(given))
    else:
        contacts, hours = _shown(clinic)
    return render_template("admin/crisis.html", contacts=contacts, hours=hours,
                           weekdays=WEEKDAYS, errors=errors, general=general,
                           clinic=clinic), (422 if errors or general else 200)
