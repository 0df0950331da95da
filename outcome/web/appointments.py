"""A client's sessions (issue 17): the whole history, paged, and what became of each one.

Only the client's own therapist: every route looks the client up through ``own_client``
(one audit record per request, allowed or denied; an appointment that is not the
client's is a 404). Cancelling one appointment or the rest of a series asks first: a GET
shows what will be cancelled and a form to confirm it (no JavaScript needed), the POST
does it. Marking an outcome and moving an appointment are undone as easily as done, so
they take one step. A refusal is said in the reader's language and nothing is stored.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from flask import Blueprint
from flask import abort
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import gettext as _
from flask_login import login_required
from werkzeug.wrappers import Response

from outcome.core.inputs import ascii_int
from outcome.core.inputs import local_time
from outcome.models import Appointment
from outcome.models import Client
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models.care import OUTCOME_STATUSES
from outcome.services.appointments import BookingError
from outcome.services.appointments import cancel_appointment
from outcome.services.appointments import cancel_rest_of_series
from outcome.services.appointments import record_outcome
from outcome.services.appointments import reschedule_appointment
from outcome.services.appointments import rest_of_series
from outcome.services.appointments import session_history
from outcome.services.sessions import appointment_numbers
from outcome.web.clock import now
from outcome.web.database import db_session
from outcome.web.database import discard_changes
from outcome.web.scoping import own_client

bp = Blueprint("appointments", __name__, url_prefix="/clients")


def _client(code: str, action: str, appointment_id: int
            ) -> tuple[Client, Appointment, Episode, Clinic]:
    """The client (own therapist only) and one of their appointments, or a 404."""
    appointment = db_session().get(Appointment, appointment_id)

    def theirs(client: Client) -> bool:
        if appointment is None:
            return False
        episode = db_session().get(Episode, appointment.episode_id)
        return episode is not None and episode.client_id == client.id

    client, _open, clinic = own_client(code, action, check=theirs)
    assert appointment is not None
    episode = db_session().get(Episode, appointment.episode_id)
    assert episode is not None
    return client, appointment, episode, clinic


def _refused(exc: BookingError) -> None:
    discard_changes()
    flash(_(exc.message, **exc.params), "error")


def _local(clinic: Clinic, when: dt.datetime) -> dt.datetime:
    return when.astimezone(zoneinfo.ZoneInfo(clinic.timezone))


@bp.route("/<code>/sessions")
@login_required
def history(code: str) -> str:
    raw = request.args.get("page", "1")
    number = ascii_int(raw) if raw else 1
    if number is None or number < 1:
        abort(400, description=_("The page number must be a whole number from 1."))
    client, episode, clinic = own_client(code, "appointment.history.view")
    found = session_history(db_session(), client.id, page=number)
    rows = [(row, _local(clinic, row.appointment.starts_dt)) for row in found.rows]
    return render_template("appointments/history.html", client=client, episode=episode,
                           history=found, rows=rows, timezone=clinic.timezone, now=now())


@bp.route("/<code>/sessions/<int:appointment_id>")
@login_required
def manage(code: str, appointment_id: int) -> str:
    client, appointment, episode, clinic = _client(code, "appointment.view", appointment_id)
    number = appointment_numbers(db_session(), episode.id).get(appointment.id)
    series = rest_of_series(db_session(), appointment) if appointment.series_id else []
    local = _local(clinic, appointment.starts_dt)
    return render_template("appointments/manage.html", client=client, episode=episode,
                           appointment=appointment, number=number, local=local,
                           series=series, timezone=clinic.timezone, now=now(),
                           outcomes=OUTCOME_STATUSES)


def _back(client: Client, appointment: Appointment) -> Response:
    return redirect(url_for(".manage", code=client.code, appointment_id=appointment.id),
                    303)


@bp.route("/<code>/sessions/<int:appointment_id>/status", methods=["POST"])
@login_required
def mark(code: str, appointment_id: int) -> Response:
    client, appointment, _episode, _clinic = _client(code, "appointment.mark",
                                                     appointment_id)
    status = request.form.get("status", "")
    try:
        record_outcome(db_session(), appointment, status, now())
    except BookingError as exc:
        _refused(exc)
    else:
        flash(_("Saved."), "info")
    return _back(client, appointment)


@bp.route("/<code>/sessions/<int:appointment_id>/reschedule", methods=["POST"])
@login_required
def reschedule(code: str, appointment_id: int) -> Response:
    client, appointment, _episode, clinic = _client(code, "appointment.reschedule",
                                                    appointment_id)
    try:
        when = local_time(request.form.get("date", ""), request.form.get("time", ""))
    except ValueError:
        flash(_("Please give a date and a time."), "error")
        return _back(client, appointment)
    starts = when.replace(tzinfo=zoneinfo.ZoneInfo(clinic.timezone)).astimezone(dt.UTC)
    try:
        reschedule_appointment(db_session(), appointment, starts, now())
    except BookingError as exc:
        _refused(exc)
    else:
        flash(_("The appointment was moved."), "info")
    return _back(client, appointment)


def _confirm(client: Client, appointment: Appointment, clinic: Clinic, *,
             whole_series: bool) -> str:
    chosen = (rest_of_series(db_session(), appointment) if whole_series
              else [appointment] if appointment.status == "scheduled" else [])
    return render_template("appointments/confirm_cancel.html", client=client,
                           appointment=appointment, whole_series=whole_series,
                           chosen=chosen,
                           timezone=clinic.timezone)


@bp.route("/<code>/sessions/<int:appointment_id>/cancel")
@login_required
def confirm_cancel(code: str, appointment_id: int) -> str:
    client, appointment, _episode, clinic = _client(code, "appointment.view",
                                                    appointment_id)
    return _confirm(client, appointment, clinic, whole_series=False)


@bp.route("/<code>/sessions/<int:appointment_id>/cancel", methods=["POST"])
@login_required
def cancel(code: str, appointment_id: int) -> Response | str:
    client, appointment, _episode, clinic = _client(code, "appointment.cancel",
                                                    appointment_id)
    if request.form.get("confirm") != "yes":
        return _confirm(client, appointment, clinic, whole_series=False)
    try:
        cancel_appointment(db_session(), appointment, now())
    except BookingError as exc:
        _refused(exc)
    else:
        flash(_("The appointment was cancelled."), "info")
    return _back(client, appointment)


@bp.route("/<code>/sessions/<int:appointment_id>/cancel-series")
@login_required
def confirm_cancel_series(code: str, appointment_id: int) -> str:
    client, appointment, _episode, clinic = _client(code, "appointment.view",
                                                    appointment_id)
    return _confirm(client, appointment, clinic, whole_series=True)


@bp.route("/<code>/sessions/<int:appointment_id>/cancel-series", methods=["POST"])
@login_required
def cancel_series(code: str, appointment_id: int) -> Response | str:
    client, appointment, _episode, clinic = _client(code, "appointment.cancel_series",
                                                    appointment_id)
    if request.form.get("confirm") != "yes":
        return _confirm(client, appointment, clinic, whole_series=True)
    try:
        cancelled = cancel_rest_of_series(db_session(), appointment, now())
    except BookingError as exc:
        _refused(exc)
    else:
        flash(_("%(count)s appointment(s) cancelled.", count=len(cancelled)), "info")
    return _back(client, appointment)
