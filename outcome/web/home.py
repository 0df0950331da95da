"""The signed-in landing page: who you are, and the caseload you can see."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint
from flask import current_app
from flask import render_template
from flask import request
from flask_login import current_user
from flask_login import login_required
from sqlalchemy import func
from sqlalchemy import select

from outcome.models import Appointment
from outcome.models import Clinic
from outcome.models import Episode
from outcome.services.access import visible_clients
from outcome.services.caseload import COLOURS
from outcome.services.caseload import CaseloadFilter
from outcome.services.caseload import caseload
from outcome.services.caseload import sparkline_points
from outcome.web.auditing import record_now
from outcome.web.clock import now
from outcome.web.database import db_session

bp = Blueprint("home", __name__)


@bp.route("/")
@login_required
def index() -> str:
    store = db_session()
    user = current_user
    clients = visible_clients(user).subquery()
    open_episodes = (select(Episode.id).join(clients, Episode.client_id == clients.c.id)
                     .where(Episode.closed_on.is_(None)))
    start = now()
    week_ahead = (select(func.count()).select_from(Appointment)
                  .where(Appointment.episode_id.in_(open_episodes),
                         Appointment.status == "scheduled",
                         Appointment.starts_dt >= start,
                         Appointment.starts_dt < start + dt.timedelta(days=7)))
    summary = {
        "clients": store.scalar(select(func.count()).select_from(clients)) or 0,
        "open_episodes": store.scalar(select(func.count()).select_from(
            open_episodes.subquery())) or 0,
        "appointments_week": store.scalar(week_ahead) or 0,
    }
    clinic = store.get(Clinic, user.clinic_id)
    from outcome.app import instrument_library  # app.py imports this module

    library = instrument_library(current_app)
    names = {i.id: i.short_name for i in library}
    scales = {i.id: i.primary_range for i in library}
    filters = caseload_filter(request.args)
    rows = (caseload(store, user, filters=filters, scales=scales, now=start)
            if user.is_therapist else [])
    if user.is_therapist:
        # The caseload shows many clients' signals: one record for the view as a whole.
        record_now(action="caseload.view", outcome="allowed", actor_user_id=user.id,
                   clinic_id=user.clinic_id, object_type="user", object_id=user.id)
    return render_template("home.html", user=user, clinic=clinic, summary=summary,
                           caseload=rows, instrument_names=names, scales=scales,
                           filters=filters, sparkline=sparkline_points)


def caseload_filter(args) -> CaseloadFilter:
    """Filters from the query string: ``colour`` (repeatable), ``attention=1``, ``q``."""
    return CaseloadFilter(
        colours=tuple(c for c in args.getlist("colour") if c in COLOURS),
        needs_attention=args.get("attention") == "1",
        search=(args.get("q") or "")[:100])
