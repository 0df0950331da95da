"""The therapist's scheduled reports (issue 18): their archive, the download of one, the
refresh of today's brief, and every user's choices about their reports.

A brief or weekly report names clients and holds clinical content, so it is read here,
signed in, by the therapist it was produced for and nobody else: anybody else, and an
unknown id, get the same 404, and every download (allowed or denied) is audited.
"""

from __future__ import annotations

import zoneinfo

from flask import Blueprint
from flask import abort
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_login import login_required
from werkzeug.wrappers import Response

from outcome.extensions import instrument_library
from outcome.models import Clinic
from outcome.models import User
from outcome.services.therapist_reports import preferences
from outcome.services.therapist_reports.archive import archived_report
from outcome.services.therapist_reports.archive import own_run
from outcome.services.therapist_reports.archive import report_archive
from outcome.services.therapist_reports.preferences import BRIEF_KIND
from outcome.services.therapist_reports.production import refresh_brief
from outcome.web.clock import now
from outcome.web.database import audit_event
from outcome.web.database import db_session
from outcome.web.database import discard_changes
from outcome.web.scoping import archived_download
from outcome.web.scoping import role_only

bp = Blueprint("reports", __name__)

KIND_NAMES = {"therapist_brief": _l("Pre-session brief"),
              "therapist_weekly": _l("Weekly caseload report"),
              "supervisor_digest": _l("Weekly supervision digest")}
STATUS_NAMES = {"pending": _l("waiting"), "running": _l("being produced"),
                "succeeded": _l("ready"), "failed": _l("failed, will be retried")}
WEEKDAYS = (_l("Monday"), _l("Tuesday"), _l("Wednesday"), _l("Thursday"), _l("Friday"),
            _l("Saturday"), _l("Sunday"))


def _me() -> User:
    return current_user._get_current_object()


def _clinic_today() -> tuple[zoneinfo.ZoneInfo, str]:
    clinic = db_session().get(Clinic, current_user.clinic_id)
    assert clinic is not None
    tz = zoneinfo.ZoneInfo(clinic.timezone)
    return tz, now().astimezone(tz).date().isoformat()


def _therapist_only(action: str, **fields) -> None:
    role_only(current_user.is_therapist, action, **fields)


@bp.route("/reports")
@login_required
def index() -> str:
    """The signed-in therapist's briefs and weekly reports, newest first."""
    _therapist_only("reports.view")
    _tz, today = _clinic_today()
    return render_template("reports/index.html", runs=report_archive(db_session(), _me()),
                           today=today, kind_names=KIND_NAMES, status_names=STATUS_NAMES,
                           brief_kind=BRIEF_KIND)


@bp.route("/reports/<int:run_id>.pdf")
@login_required
def download(run_id: int) -> Response:
    """The archived report, for the therapist it was produced for and nobody else."""
    _therapist_only("reports.download", object_type="report_run", object_id=run_id)
    return archived_download(archived_report(db_session(), _me(), run_id),
                             "reports.download", run_id)


@bp.route("/reports/<int:run_id>/refresh", methods=["POST"])
@login_required
def refresh(run_id: int) -> Response:
    """Render today's brief again with the answers that came in since it was produced."""
    _therapist_only("reports.refresh", object_type="report_run", object_id=run_id)
    store = db_session()
    run = own_run(store, _me(), run_id)
    if run is None:
        audit_event(action="reports.refresh", outcome="denied", actor_user_id=current_user.id,
                    clinic_id=current_user.clinic_id, object_type="report_run",
                    object_id=run_id, even_if_failed=True)
        abort(404)
    _tz, today = _clinic_today()
    if run.kind != BRIEF_KIND or run.period != today or run.status != "succeeded":
        audit_event(action="reports.refresh", outcome="error", actor_user_id=current_user.id,
                    clinic_id=current_user.clinic_id, object_type="report_run",
                    object_id=run_id, even_if_failed=True)
        flash(_("Only today's brief, once produced, can be refreshed."), "error")
        return redirect(url_for(".index"), 303)
    try:
        refresh_brief(store, run, _me(), instrument_library(current_app), now())
    except Exception:  # the archived brief stays as it was; the failure is logged
        discard_changes()
        current_app.logger.exception("refresh of report run %s failed", run_id)
        audit_event(action="reports.refresh", outcome="error", actor_user_id=current_user.id,
                    clinic_id=current_user.clinic_id, object_type="report_run",
                    object_id=run_id, even_if_failed=True)
        flash(_("The brief could not be refreshed; the one produced earlier is kept."),
              "error")
        return redirect(url_for(".index"), 303)
    audit_event(action="reports.refresh", outcome="allowed", actor_user_id=current_user.id,
                clinic_id=current_user.clinic_id, object_type="report_run", object_id=run_id)
    flash(_("Your brief is refreshed with the answers received until now."), "info")
    back = url_for("home.index") if request.form.get("next") == "home" else url_for(".index")
    return redirect(back, 303)


def _field_error(field: str) -> str:
    """The sentence shown at a refused field ("therapist_brief_time"), naming it."""
    kind, _sep, part = field.rpartition("_")
    report = KIND_NAMES.get(kind, kind)
    if part == "time":
        return _("%(report)s: the time must be written HH:MM, from 00:00 to 23:59. "
                 "Nothing was saved.", report=report)
    return _("%(report)s: the day must be one of Monday to Sunday. Nothing was saved.",
             report=report)


@bp.route("/account/reports", methods=["GET", "POST"])
@login_required
def choices() -> tuple[str, int] | Response:
    """The signed-in user's choices about each report their roles get: whether it is
    produced, whether a notice is e-mailed, and when."""
    store, me = db_session(), _me()
    error: tuple[str, str] | None = None
    if request.method == "POST":
        try:
            changes = preferences.parse_form(me, request.form)
            preferences.save(store, me, changes, now())
        except preferences.PreferenceError as exc:
            discard_changes()
            error = (exc.field, _field_error(exc.field))
            audit_event(action="account.reports", outcome="error", actor_user_id=me.id,
                        clinic_id=me.clinic_id, object_type="user", object_id=me.id,
                        even_if_failed=True)
        else:
            audit_event(action="account.reports", outcome="allowed", actor_user_id=me.id,
                        clinic_id=me.clinic_id, object_type="user", object_id=me.id)
            flash(_("Your report choices are saved."), "info")
            return redirect(url_for(".choices"), 303)
    return render_template("reports/choices.html", choices=preferences.choices(store, me),
                           error=error, form=request.form if error else None,
                           kind_names=KIND_NAMES, weekdays=WEEKDAYS), (400 if error else 200)
