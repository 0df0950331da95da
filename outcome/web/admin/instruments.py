"""Instrument licences: which instruments the clinic may use, and the attestations that
a licence is held (see :mod:`outcome.services.instruments`)."""

from __future__ import annotations

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
from werkzeug.wrappers import Response

from outcome.extensions import instrument_library
from outcome.services import instruments
from outcome.web.admin.blueprint import _admin
from outcome.web.admin.blueprint import _clinic
from outcome.web.admin.blueprint import _clinic_users
from outcome.web.admin.blueprint import _local
from outcome.web.admin.blueprint import _record
from outcome.web.admin.blueprint import _refused
from outcome.web.admin.blueprint import _tz
from outcome.web.admin.blueprint import bp
from outcome.web.clock import now
from outcome.web.confirm import require_confirmation
from outcome.web.database import audit_event
from outcome.web.database import db_session

STATUS_LABELS = {"available": _l("Available"),
                 "needs attestation": _l("Needs licence attestation"),
                 "wording not installed": _l("Wording not installed")}


@bp.route("/instruments")
def instrument_list() -> str:
    store = db_session()
    clinic = _clinic()
    statuses = instruments.instrument_statuses(store, clinic.id,
                                               instrument_library(current_app))
    attesters = {u.id: u for u in _clinic_users()}
    return render_template("admin/instruments.html", statuses=statuses, tz=_tz(),
                           local=_local, attesters=attesters, status_labels=STATUS_LABELS)


def _instrument(instrument_id: str, action: str):
    try:
        return instrument_library(current_app).get(instrument_id)
    except KeyError:
        audit_event(action=action, outcome="denied", actor_user_id=current_user.id,
                    clinic_id=current_user.clinic_id, object_type="instrument",
                    object_id=instrument_id[:64], even_if_failed=True)
        abort(404)


@bp.route("/instruments/<instrument_id>/attest", methods=["POST"])
def attest(instrument_id: str) -> Response:
    instrument = _instrument(instrument_id, "instrument.attest")
    note = (request.form.get("note") or "").strip()[:500] or None
    try:
        instruments.attest(db_session(), clinic=_clinic(), instrument=instrument,
                           admin=_admin(), now=now(), note=note)
    except instruments.AttestationError as exc:
        _refused("instrument.attest", exc, object_type="instrument", object_id=instrument.id)
    else:
        _record("instrument.attest", object_type="instrument", object_id=instrument.id)
        flash(_("%(name)s is attested and can be used.", name=instrument.short_name), "info")
    return redirect(url_for(".instrument_list"))


@bp.route("/instruments/<instrument_id>/revoke", methods=["POST"])
def revoke(instrument_id: str) -> Response:
    instrument = _instrument(instrument_id, "instrument.revoke")
    require_confirmation()
    try:
        instruments.revoke(db_session(), clinic=_clinic(), instrument_id=instrument.id,
                           admin=_admin(), now=now())
    except instruments.AttestationError as exc:
        _refused("instrument.revoke", exc, object_type="instrument", object_id=instrument.id)
    else:
        _record("instrument.revoke", object_type="instrument", object_id=instrument.id)
        flash(_("The attestation for %(name)s is withdrawn; new links no longer ask for it.",
                name=instrument.short_name), "info")
    return redirect(url_for(".instrument_list"))
