"""Clients by code only, and their transfer to another therapist.

Clients come from ``administered_clients``, the access module's one rule for
administration; these pages never load a client's name, contacts or answers.
"""

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
from werkzeug.wrappers import Response

from outcome.core.inputs import ascii_int
from outcome.models import Client
from outcome.services import access_requests
from outcome.services import staff
from outcome.services.access import administered_clients
from outcome.web.admin.blueprint import _admin
from outcome.web.admin.blueprint import _asked
from outcome.web.admin.blueprint import _clinic_users
from outcome.web.admin.blueprint import _form_user
from outcome.web.admin.blueprint import _record
from outcome.web.admin.blueprint import _refused
from outcome.web.admin.blueprint import bp
from outcome.web.clock import now
from outcome.web.confirm import require_confirmation
from outcome.web.database import audit_event
from outcome.web.database import db_session
from outcome.web.inputs import arg_id


@bp.route("/clients")
def clients() -> str:
    store = db_session()
    admin = _admin()
    # Only the code and the therapist: never the name, contacts or answers.
    query = (administered_clients(admin)
             .with_only_columns(Client.code, Client.therapist_id).order_by(Client.code))
    chosen = arg_id("therapist")  # a 400 naming it unless an id in ASCII digits
    if chosen is not None:
        query = query.where(Client.therapist_id == chosen)
    rows = store.execute(query).all()
    people = {u.id: u for u in _clinic_users()}
    audit_event(action="admin.clients.view", outcome="allowed", actor_user_id=admin.id,
                clinic_id=admin.clinic_id, object_type="page", object_id="admin.clients",
                even_if_failed=True)
    return render_template(
        "admin/clients.html", rows=rows, people=people,
        therapists=[u for u in people.values() if u.is_active and u.is_therapist],
        filter_options=[u for u in people.values() if u.is_therapist],
        chosen=chosen)


@bp.route("/clients/<code>/transfer", methods=["POST"])
def transfer(code: str) -> Response:
    store = db_session()
    person = store.scalar(administered_clients(_admin()).where(Client.code == code))
    if person is None:
        audit_event(action="client.transfer", outcome="denied", actor_user_id=current_user.id,
                    clinic_id=current_user.clinic_id, object_type="client", object_id=code[:64],
                    even_if_failed=True)
        abort(404)
    require_confirmation()
    target = _form_user("therapist_id", "client.transfer")
    try:
        asked = access_requests.transfer_client(store, _admin(), person, target, now(),
                                                base_url=current_app.config["BASE_URL"])
    except staff.StaffError as exc:
        _refused("client.transfer", exc, client_id=person.id, object_type="user",
                 object_id=target.id)
    else:
        if asked is not None:
            _asked(asked)
        else:
            _record("client.transfer", client_id=person.id, object_type="user",
                    object_id=target.id)
            flash(_("%(code)s is now with %(name)s.", code=code, name=target.display_name),
                  "info")
    back = ascii_int(request.form.get("back_therapist", ""))
    return redirect(url_for(".clients", therapist=back) if back is not None
                    else url_for(".clients"))
