"""Waiting-room kiosks (issue 17): the admin creates a kiosk device (its setup link, with
a QR code, is shown once) and revokes it (after confirmation). See
:mod:`outcome.web.kiosk` for the kiosk itself."""

from __future__ import annotations

from flask import abort
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from outcome.models import KioskDevice
from outcome.services import kiosk as kiosks
from outcome.web.admin.blueprint import _admin
from outcome.web.admin.blueprint import _clinic
from outcome.web.admin.blueprint import _local
from outcome.web.admin.blueprint import _record
from outcome.web.admin.blueprint import _tz
from outcome.web.admin.blueprint import bp
from outcome.web.clock import now
from outcome.web.confirm import require_confirmation
from outcome.web.database import audit_event
from outcome.web.database import db_session
from outcome.web.database import discard_changes
from reports.qr import link_qr_svg


@bp.route("/kiosks")
def kiosk_list(created: dict | None = None, error: str | None = None,
               status: int = 200) -> tuple[str, int]:
    devices = db_session().scalars(select(KioskDevice).where(
        KioskDevice.clinic_id == current_user.clinic_id).order_by(
        KioskDevice.revoked_dt.is_not(None), KioskDevice.id)).all()
    return render_template("admin/kiosks.html", devices=devices, created=created,
                           error=error, tz=_tz(), local=_local,
                           max_name=kiosks.MAX_DEVICE_NAME), status


@bp.route("/kiosks", methods=["POST"])
def create_kiosk() -> tuple[str, int]:
    try:
        device, token = kiosks.create_device(db_session(), clinic=_clinic(), admin=_admin(),
                                             name=request.form.get("name", ""), now=now())
    except kiosks.KioskError:
        discard_changes()
        audit_event(action="kiosk.create", outcome="error", actor_user_id=current_user.id,
                    clinic_id=current_user.clinic_id, object_type="kiosk",
                    even_if_failed=True)
        return kiosk_list(error=_("Give the kiosk a name of 1 to %(max)s characters, such "
                                  "as “Waiting room tablet”.", max=kiosks.MAX_DEVICE_NAME),
                          status=400)
    _record("kiosk.create", object_type="kiosk", object_id=device.id)
    url = f"{current_app.config['BASE_URL'].rstrip('/')}/kiosk/setup/{token}"
    return kiosk_list(created={"name": device.name, "url": url, "qr": link_qr_svg(url)})


@bp.route("/kiosks/<int:device_id>/revoke", methods=["POST"])
def revoke_kiosk(device_id: int) -> Response:
    device = db_session().get(KioskDevice, device_id)
    if device is None or device.clinic_id != current_user.clinic_id:
        audit_event(action="kiosk.revoke", outcome="denied", actor_user_id=current_user.id,
                    clinic_id=current_user.clinic_id, object_type="kiosk",
                    object_id=device_id, even_if_failed=True)
        abort(404)
    require_confirmation()
    kiosks.revoke_device(db_session(), device, now())
    _record("kiosk.revoke", object_type="kiosk", object_id=device.id)
    flash(_("The kiosk %(name)s is revoked: it shows nothing from now on.", name=device.name),
          "info")
    return redirect(url_for(".kiosk_list"))
