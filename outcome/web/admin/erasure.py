"""Erasing a client from the admin pages, and the retention policy's page (issue 20).

An admin reaches a client by code only (``administered_clients``): the erasure page
shows the code, the therapist, whether the client's CSV and FHIR exports were downloaded
(from the audit trail) and, to a user who may see the client (the admin who is also
the client's therapist), the download links. Anyone else is told that the client's
therapist can download them from the client's record first. The erasure asks for the
code typed again; a wrong or missing code is a 400 that says so, and nothing changes.

The Retention page shows the clinic's setting, the latest dry run (codes and the day
each client's care ended) and the day each listed client may be erased.
"""

from __future__ import annotations

from flask import abort
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from outcome.models import Client
from outcome.models import User
from outcome.services import erasure
from outcome.services import retention
from outcome.services.access import administered_clients
from outcome.services.access import sees_client_names
from outcome.web.admin.blueprint import _admin
from outcome.web.admin.blueprint import _clinic
from outcome.web.admin.blueprint import _record
from outcome.web.admin.blueprint import bp
from outcome.web.clock import now
from outcome.web.database import audit_event
from outcome.web.database import db_session
from outcome.web.database import discard_changes

CONFIRM_CODE_FIELD = "confirm_code"


def _administered(code: str, action: str) -> Client:
    """The admin's clinic's client ``code`` (erased or not), or a 404 audited as denied."""
    person = db_session().scalar(administered_clients(_admin()).where(Client.code == code))
    if person is None:
        audit_event(action=action, outcome="denied", actor_user_id=current_user.id,
                    clinic_id=current_user.clinic_id, object_type="client",
                    object_id=code[:64], even_if_failed=True)
        abort(404)
    return person


def _page(person: Client, error: str | None = None) -> str:
    therapist = (db_session().get(User, person.therapist_id)
                 if person.therapist_id is not None else None)
    return render_template(
        "admin/erase.html", person=person, therapist=therapist,
        exports=erasure.last_exports(db_session(), person),
        may_download=person.erased_dt is None and sees_client_names(_admin(), person),
        error=error, field=CONFIRM_CODE_FIELD)


@bp.route("/clients/<code>/erase")
def erase_page(code: str) -> str:
    person = _administered(code, "admin.client.erase.view")
    _record("admin.client.erase.view", client_id=person.id, object_type="client",
            object_id=person.code, even_if_failed=True)
    return _page(person)


@bp.route("/clients/<code>/erase", methods=["POST"])
def erase(code: str) -> Response | tuple[str, int]:
    store = db_session()
    person = _administered(code, erasure.ERASE_ACTION)
    typed = (request.form.get(CONFIRM_CODE_FIELD) or "").strip()
    problem = None
    if person.erased_dt is not None:
        problem = _("%(code)s was already erased on %(date)s: there is nothing left to erase.",
                    code=person.code, date=f"{person.erased_dt:%Y-%m-%d}")
    elif typed.upper() != person.code.upper():
        problem = _("Nothing was erased: type the client code %(code)s exactly to confirm.",
                    code=person.code)
    if problem is None:
        try:
            erasure.erase_client(store, person, "request", _admin(), now())
        except erasure.ErasureError as exc:
            problem = str(exc)
    if problem is not None:
        discard_changes()
        audit_event(action=erasure.ERASE_ACTION, outcome="denied", actor_user_id=current_user.id,
                    clinic_id=current_user.clinic_id, client_id=person.id, object_type="client",
                    object_id=person.code, even_if_failed=True)
        return _page(person, problem), 409 if person.erased_dt is not None else 400
    flash(_("%(code)s is erased. Only the code stays: on the tombstone, in the audit trail "
            "and in supervisor digests already made.", code=person.code), "info")
    return redirect(url_for(".erase_page", code=person.code))


@bp.route("/retention")
def retention_page() -> str:
    store = db_session()
    clinic = _clinic()
    years, notice_days = retention.settings(clinic)
    today = retention.clinic_today(clinic, now())
    latest = retention.latest_dry_run(store, clinic)
    erase_on = retention.erase_on(store, clinic, today)
    erased = erasure.erased_codes(store, clinic.id)
    due_count = len(retention.due_clients(store, clinic, today))
    _record("admin.retention.view", object_type="page", object_id="admin.retention",
            even_if_failed=True)
    return render_template("admin/retention.html", years=years, notice_days=notice_days,
                           latest=latest, erase_on=erase_on, erased=erased[-50:],
                           erased_total=len(erased), today=today, due_count=due_count)
