"""A therapist's care page for one client: sessions, goals, sharing progress, links.

Routes stay thin: scoping through ``visible_clients`` (a client outside it is a 404,
never a 403), everything else through the appointment, goal and link services. Only
the client's own therapist may act here.
"""

from __future__ import annotations

import datetime as dt
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
from flask_login import login_required
from sqlalchemy import select
from werkzeug.wrappers import Response

from outcome.core.inputs import InputError
from outcome.core.inputs import ascii_int
from outcome.core.inputs import local_time
from outcome.extensions import instrument_library
from outcome.models import Appointment
from outcome.models import Client
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models.care import MAX_GOALS
from outcome.services.appointments import BookingError
from outcome.services.appointments import book_weekly_series
from outcome.services.appointments import session_number
from outcome.services.goals import GoalError
from outcome.services.goals import TooManyGoals
from outcome.services.goals import add_goal as add_goal_service
from outcome.services.goals import episode_goals
from outcome.services.goals import goals_rated
from outcome.services.goals import open_goal
from outcome.services.goals import retire_goal as retire_goal_service
from outcome.services.goals import set_goals
from outcome.services.links import CollectionStopped
from outcome.services.links import NothingToAsk
from outcome.services.links import issue_link
from outcome.services.links import revoke_unused
from outcome.web.clock import now
from outcome.web.confirm import require_confirmation
from outcome.web.database import db_session
from outcome.web.database import discard_changes
from outcome.web.scoping import own_client
from reports.qr import link_qr_svg

bp = Blueprint("care", __name__, url_prefix="/clients")


@bp.route("/<code>/care")
@login_required
def page(code: str) -> str:
    client, episode, clinic = own_client(code, "client.care.view")
    return _page(client, episode, clinic)


def _page(client: Client, episode: Episode | None, clinic: Clinic,
          issued: dict | None = None) -> str:
    """The care page of a client already looked up (and audited) by the request."""
    store = db_session()
    tz = zoneinfo.ZoneInfo(clinic.timezone)
    appointments = []
    if episode is not None:
        for appointment in store.scalars(select(Appointment).where(
                Appointment.episode_id == episode.id,
                Appointment.starts_dt >= now() - dt.timedelta(days=14))
                .order_by(Appointment.starts_dt)):
            appointments.append((appointment, session_number(store, appointment),
                                 appointment.starts_dt.astimezone(tz)))
    goal_rows = episode_goals(store, episode.id) if episode else []
    open_goals = [g for g in goal_rows if g.closed_dt is None]
    return render_template("care/page.html", client=client, episode=episode,
                           appointments=appointments, goals=[g.description for g in open_goals],
                           open_goals=open_goals,
                           retired_goals=[g for g in goal_rows if g.closed_dt is not None],
                           goals_rated=bool(episode and goals_rated(store, episode.id)),
                           issued=issued, timezone=clinic.timezone, now=now(),
                           today=now().astimezone(tz).date())


@bp.route("/<code>/appointments", methods=["POST"])
@login_required
def book(code: str) -> Response:
    client, episode, _clinic = own_client(code, "appointment.book")
    if episode is None:
        abort(404)
    try:
        # ASCII digits and the years 1900 to 2999 (InputError is a ValueError): int() and
        # strptime() read other scripts' digits, and a series near 9999 overflows.
        when = local_time(request.form.get("date", ""), request.form.get("time", ""))
        count = ascii_int(request.form.get("weekly") or "1", maximum=52)
        if count is None:
            raise InputError("weekly", "format")
        booked = book_weekly_series(db_session(), episode, when, count=count, now=now())
    except ValueError as exc:  # BookingError is a ValueError
        discard_changes()
        message = _(exc.message, **exc.params) if isinstance(exc, BookingError) else _(
            "Please give a date and a time, and a number of weekly sessions from 1 to 52.")
        flash(message, "error")
    else:
        flash(_("Booked %(count)s session(s).", count=len(booked)), "info")
    return redirect(url_for(".page", code=client.code))


@bp.route("/<code>/goals", methods=["POST"])
@login_required
def goals(code: str) -> Response:
    client, episode, _clinic = own_client(code, "goals.set")
    if episode is None:
        abort(404)
    texts = [t for t in request.form.getlist("goal") if t.strip()]
    try:
        set_goals(db_session(), episode, texts, now())
    except GoalError as exc:
        discard_changes()
        flash(str(exc), "error")
    else:
        flash(_("Goals saved."), "info")
    return redirect(url_for(".page", code=client.code))


def _goal_position() -> int:
    """The form's goal position, 1 to 3; anything else is a 400 with a clear message."""
    raw = request.form.get("position", "")
    if raw not in {str(n) for n in range(1, MAX_GOALS + 1)}:
        abort(400, description=_("Name the goal by its number, 1 to %(most)s.", most=MAX_GOALS))
    return int(raw)


@bp.route("/<code>/goals/retire", methods=["POST"])
@login_required
def retire_goal(code: str) -> Response | str:
    """Retire a goal (after a confirmation page) and, optionally, put a new one in its
    place. The retired goal keeps its ratings; the client is no longer asked it."""
    client, episode, _clinic = own_client(code, "goal.retire")
    if episode is None:
        abort(404)
    position = _goal_position()
    goal = open_goal(db_session(), episode.id, position)
    if goal is None:
        flash(_("There is no open goal %(n)s.", n=position), "error")
        return redirect(url_for(".page", code=client.code))
    if request.form.get("confirm") != "yes":
        return render_template("care/retire_goal.html", client=client, goal=goal)
    replacement = request.form.get("replacement", "")
    try:
        _old, new = retire_goal_service(db_session(), episode, position, now(),
                                        replacement=replacement)
    except GoalError:
        discard_changes()
        flash(_("A goal has at most 500 characters."), "error")
    else:
        flash(_("Goal %(n)s retired; its ratings are kept.", n=position)
              + (" " + _("The new goal is asked from the next link on.") if new else ""),
              "info")
    return redirect(url_for(".page", code=client.code))


@bp.route("/<code>/goals/add", methods=["POST"])
@login_required
def add_goal(code: str) -> Response:
    """Add a goal at the first free position (at most three open)."""
    client, episode, _clinic = own_client(code, "goal.add")
    if episode is None:
        abort(404)
    try:
        add_goal_service(db_session(), episode, request.form.get("description", ""), now())
    except TooManyGoals:
        discard_changes()
        flash(_("There are three open goals already; retire one first."), "error")
    except GoalError:
        discard_changes()
        flash(_("Please write the goal in the words the client used (at most 500 "
                "characters)."), "error")
    else:
        flash(_("Goal added."), "info")
    return redirect(url_for(".page", code=client.code))


@bp.route("/<code>/sharing", methods=["POST"])
@login_required
def sharing(code: str) -> Response:
    client, _episode, _clinic = own_client(code, "client.sharing.change")
    client.is_progress_shared = request.form.get("share") == "yes"
    flash(_("Saved."), "info")
    return redirect(url_for(".page", code=client.code))


@bp.route("/<code>/links/revoke", methods=["POST"])
@login_required
def revoke_links(code: str) -> Response:
    client, episode, _clinic = own_client(code, "link.revoke")
    if episode is None:
        abort(404)
    require_confirmation()
    count = revoke_unused(db_session(), episode, now())
    flash(_("%(count)s unused link(s) withdrawn.", count=count), "info")
    return redirect(url_for(".page", code=client.code))


@bp.route("/<code>/appointments/<int:appointment_id>/link", methods=["POST"])
@login_required
def link(code: str, appointment_id: int) -> str:
    appointment = db_session().get(Appointment, appointment_id)

    def bookable(client: Client) -> bool:
        """The appointment is a scheduled one of this client's open episode."""
        episode = db_session().scalar(select(Episode).where(
            Episode.client_id == client.id, Episode.closed_on.is_(None)))
        return (episode is not None and appointment is not None
                and appointment.episode_id == episode.id
                and appointment.status == "scheduled")

    # One request, one audit record: this lookup's; the page below is shown without
    # looking the client up (and recording a view) again.
    client, episode, clinic = own_client(code, "link.issue", check=bookable)
    assert episode is not None and appointment is not None
    purpose = "post" if request.form.get("purpose") == "post" else "pre"
    try:
        issued_link, token = issue_link(db_session(), episode=episode, purpose=purpose,
                                        now=now(), library=instrument_library(current_app),
                                        appointment=appointment)
    except CollectionStopped:
        flash(_("No link was made: the client declined or withdrew consent to "
                "questionnaires."), "error")
        return _page(client, episode, clinic)
    except NothingToAsk as exc:
        flash(_("No link was made: there is nothing to ask the client after the session "
                "(no post-session questionnaire is available).") if exc.purpose == "post"
              else _("No link was made: there is nothing to ask the client before the "
                     "session (no questionnaire is available)."), "error")
        return _page(client, episode, clinic)
    url = f"{current_app.config['BASE_URL'].rstrip('/')}/q/{token}"
    # The token exists only in this response (it is stored as a hash): show it now.
    return _page(client, episode, clinic, issued={
        "url": url, "qr": link_qr_svg(url), "battery": issued_link.battery,
        "purpose": purpose})
