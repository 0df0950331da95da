"""Clients by code only, their registration for a therapist, and their transfer.

Clients come from ``administered_clients``, the access module's one rule for
administration; these pages never load a client's name, contacts or answers. The list
is paged (:data:`PAGE_SIZE` a page) and searched by code. An admin may register a
client for an active therapist of the clinic (issue 17; who may register for whom is
:func:`outcome.services.access.may_register_for`): the form takes the name and
contacts as typed, stores them through the same service as the therapist's page and
the API, and from then on the admin sees the new client's code only.
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
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import func
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms import SelectChoice  # type: ignore[attr-defined]  # wtforms 3.2+, newer than its stubs
from wtforms import SelectField

from outcome.core.inputs import ascii_int
from outcome.extensions import instrument_library
from outcome.models import Client
from outcome.services import access_requests
from outcome.services import staff
from outcome.services.access import administered_clients
from outcome.services.clients import CareError
from outcome.services.clients import register_client as register_for
from outcome.web.admin.blueprint import _admin
from outcome.web.admin.blueprint import _asked
from outcome.web.admin.blueprint import _clinic_users
from outcome.web.admin.blueprint import _form_user
from outcome.web.admin.blueprint import _record
from outcome.web.admin.blueprint import _refused
from outcome.web.admin.blueprint import bp
from outcome.web.clients import ContactForm
from outcome.web.clients import EpisodeForm
from outcome.web.clients import clinic_today
from outcome.web.clients import field_date
from outcome.web.clients import has_errors
from outcome.web.clients import refuse
from outcome.web.clock import now
from outcome.web.confirm import require_confirmation
from outcome.web.database import audit_event
from outcome.web.database import db_session
from outcome.web.database import discard_changes
from outcome.web.inputs import arg_id

PAGE_SIZE = 25
CODE_SEARCH_MAX = 16


@bp.route("/clients")
def clients() -> str:
    store = db_session()
    admin = _admin()
    # Only the code and the therapist: never the name, contacts or answers.
    # Erased clients (tombstones) are listed on the Retention page, not here (issue 20).
    query = (administered_clients(admin).where(Client.erased_dt.is_(None))
             .with_only_columns(Client.code, Client.therapist_id).order_by(Client.code))
    chosen = arg_id("therapist")  # a 400 naming it unless an id in ASCII digits
    if chosen is not None:
        query = query.where(Client.therapist_id == chosen)
    search = (request.args.get("q") or "").strip()[:CODE_SEARCH_MAX]
    if search:
        escaped = search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(func.lower(Client.code).like(f"%{escaped}%", escape="\\"))
    total = store.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(arg_id("page") or 1, 1), pages)  # past the end: the last page
    rows = store.execute(query.limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()
    people = {u.id: u for u in _clinic_users()}
    audit_event(action="admin.clients.view", outcome="allowed", actor_user_id=admin.id,
                clinic_id=admin.clinic_id, object_type="page", object_id="admin.clients",
                even_if_failed=True)
    return render_template(
        "admin/clients.html", rows=rows, people=people,
        therapists=[u for u in people.values() if u.is_active and u.is_therapist],
        filter_options=[u for u in people.values() if u.is_therapist],
        chosen=chosen, search=search, page=page, pages=pages, total=total)


class AdminRegisterForm(ContactForm, EpisodeForm):
    """An admin's registration: the client, their therapist and the first episode's
    intake date and primary measure (the problem descriptor is the therapist's)."""

    therapist = SelectField(_l("Therapist"), coerce=int, validate_choice=True)


@bp.route("/clients/new", methods=["GET", "POST"])
def register_client() -> str | Response | tuple[str, int]:
    admin = _admin()
    form = AdminRegisterForm()
    form.fill_measures()
    del form.descriptor
    therapists = [u for u in _clinic_users() if u.is_active and u.is_therapist]
    form.therapist.choices = [SelectChoice(str(u.id), u.display_name) for u in therapists]
    today = clinic_today(admin.clinic_id)
    if request.method == "GET":
        form.opened_on.data = today.isoformat()
        return render_template("admin/client_new.html", form=form)
    form.validate()
    opened_on = field_date(form.opened_on, today)
    if not has_errors(form) and opened_on is not None:
        target = next(u for u in therapists if u.id == form.therapist.data)
        try:
            person, _episode = register_for(
                db_session(), target, by=admin, name=form.name.data or "",
                opened_on=opened_on, email=form.email.data, phone=form.phone.data,
                locale=form.locale.data or "en", primary=form.primary.data or None,
                library=instrument_library(current_app), now=now())
        except CareError as exc:
            refuse(form, exc, "name")
        else:
            _record("client.create", client_id=person.id, object_type="client",
                    object_id=person.code)
            flash(_("%(code)s is registered for %(name)s; their first episode is open.",
                    code=person.code, name=target.display_name), "info")
            return redirect(url_for(".clients", q=person.code))
    discard_changes()
    _record("client.create", outcome="error", object_type="page",
            object_id="admin.register_client", even_if_failed=True)
    return render_template("admin/client_new.html", form=form), 400


@bp.route("/clients/<code>/transfer", methods=["POST"])
def transfer(code: str) -> Response:
    store = db_session()
    person = store.scalar(administered_clients(_admin()).where(
        Client.code == code, Client.erased_dt.is_(None)))  # a tombstone is nobody's
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
