"""The waiting-room kiosk (issue 17): a tablet enrolled by an admin, where a client types
the short code their therapist gave them for today's appointment and answers that
appointment's questionnaires.

- ``/kiosk/setup/<token>``: the setup link an admin is shown once; opened on the tablet,
  a button makes it the clinic's kiosk (a long-lived, HttpOnly cookie holding the
  device's secret). Any staff sign-in on that browser ends.
- ``/kiosk/``: the code entry screen. A valid code (rate-limited per address; single use;
  expires at the end of the clinic's day) starts a client session on the appointment's
  link and sends the browser to the usual questionnaire pages (``/q/``). When the last
  questionnaire is stored the kiosk goes back to this screen (no thank-you chart: the
  tablet is shared); it does so too after ten minutes without a page.
- A browser with the kiosk cookie reaches nothing else: every other page is a 404 (no
  staff page, no link of another client, no sign-in).
- ``/clients/<code>/appointments/<id>/kiosk-code``: the client's therapist makes the
  code (shown once) for a scheduled appointment today.

The kiosk shows no names: the code screen is the same for everybody, and the
questionnaire pages never show one.
"""

from __future__ import annotations

import zoneinfo

from flask import Blueprint
from flask import Flask
from flask import abort
from flask import current_app
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_login import login_required
from flask_login import logout_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from outcome.extensions import instrument_library
from outcome.extensions import limiter
from outcome.models import Appointment
from outcome.models import Client
from outcome.models import Episode
from outcome.models import KioskDevice
from outcome.services import kiosk as kiosks
from outcome.services.links import CollectionStopped
from outcome.services.links import NothingToAsk
from outcome.services.links import hash_token
from outcome.web.clock import now
from outcome.web.database import audit_event
from outcome.web.database import count_denial
from outcome.web.database import db_session
from outcome.web.database import writes
from outcome.web.scoping import own_client

bp = Blueprint("kiosk", __name__, url_prefix="/kiosk")
staff_bp = Blueprint("kiosk_codes", __name__, url_prefix="/clients")

COOKIE = "outcome_kiosk"
COOKIE_DAYS = 365
# Wrong codes from one address (a kiosk or a guesser): a typo or two, never a search.
CODE_LIMIT = "20 per minute;200 per hour"
CODE_FAILURE_LIMIT = "5 per minute;30 per hour"
SETUP_LIMIT = "10 per minute"
# Endpoints a browser with the kiosk cookie may reach.
KIOSK_ENDPOINTS = frozenset({"kiosk.entry", "kiosk.setup", "questionnaire.page",
                             "questionnaire.support", "questionnaire.consent",
                             "questionnaire.consent_declined", "questionnaire.withdraw",
                             "static"})
IDLE_SECONDS = 600  # the questionnaire pages return to the code screen after this


def init_app(app: Flask) -> None:
    app.before_request(_kiosk_reaches_nothing_else)
    app.register_blueprint(bp)
    app.register_blueprint(staff_bp)


def _kiosk_reaches_nothing_else() -> None:
    if COOKIE in request.cookies and request.endpoint not in KIOSK_ENDPOINTS:
        abort(404)


def _key() -> bytes:
    return str(current_app.config["SECRET_KEY"]).encode()


def _failed(response: Response) -> bool:
    return response.status_code >= 400


def _device() -> KioskDevice | None:
    return kiosks.device_for_token(db_session(), request.cookies.get(COOKIE))


# --- setup -------------------------------------------------------------------------------


def _setup_device(token: str) -> KioskDevice:
    store = db_session()
    device = store.scalar(select(KioskDevice).where(KioskDevice.token_hash == hash_token(
        token))) if len(token) <= 128 else None
    if device is None or device.revoked_dt is not None or device.enrolled_dt is not None:
        count_denial("kiosk.setup")
        abort(404)
    return device


@bp.route("/setup/<token>", methods=["GET", "POST"])
@limiter.limit(SETUP_LIMIT)
def setup(token: str) -> str | Response:
    device = _setup_device(token)
    if request.method == "GET":
        return render_template("kiosk/setup.html", name=device.name)
    kiosks.enrol(db_session(), device, now())
    audit_event(action="kiosk.enrol", outcome="allowed", actor_kind="anonymous",
                actor_label=f"kiosk {device.id}",
                clinic_id=device.clinic_id, object_type="kiosk", object_id=device.id)
    logout_user()  # the kiosk browser is nobody's: no staff sign-in survives
    session.clear()
    response = redirect(url_for(".entry"), 303)
    response.set_cookie(COOKIE, token, max_age=COOKIE_DAYS * 86400, httponly=True,
                        samesite="Lax", path="/",
                        secure=current_app.config["BASE_URL"].startswith("https://"))
    return response


# --- the code screen ---------------------------------------------------------------------


@bp.route("/", methods=["GET", "POST"])
@limiter.limit(CODE_LIMIT, methods=["POST"])
@limiter.limit(CODE_FAILURE_LIMIT, methods=["POST"], deduct_when=_failed)
@writes  # a used code, the device's last use
def entry() -> str | Response | tuple[str, int]:
    device = _device()
    if device is None:
        count_denial("kiosk.view")
        response = current_app.make_response((render_template(
            "error.html", title=_("Page not found"),
            message=_("There is nothing at this address.")), 404))
        response.delete_cookie(COOKIE, path="/")  # a revoked kiosk is an ordinary browser
        return response
    done = session.pop("kiosk_done", False)
    session.pop("client_link", None)  # whoever was answering here has gone
    if request.method == "GET":
        return render_template("kiosk/entry.html", done=done, error=None)
    link = kiosks.redeem(db_session(), device=device, raw=request.form.get("code", ""),
                         now=now(), key=_key())
    if link is None:
        audit_event(action="kiosk.code.use", outcome="denied", actor_kind="anonymous",
                    actor_label=f"kiosk {device.id}",
                    clinic_id=device.clinic_id, object_type="kiosk", object_id=device.id,
                    even_if_failed=True)
        return render_template("kiosk/entry.html", done=False, error=_(
            "This code does not work. Check it and try again, or ask at reception.")), 400
    episode = db_session().get_one(Episode, link.episode_id)
    audit_event(action="kiosk.code.use", outcome="allowed", actor_kind="client",
                actor_label=f"kiosk {device.id}",
                clinic_id=device.clinic_id, client_id=episode.client_id,
                object_type="link", object_id=link.id)
    session.clear()  # the client session carries this one link, and the kiosk mark
    session["client_link"] = link.id
    session["client_seen"] = session["client_started"] = now().timestamp()
    session["kiosk"] = True
    return redirect(url_for("questionnaire.page"), 303)


def finish_client_session() -> Response:
    """The last questionnaire is stored: back to the code screen (called by the
    questionnaire pages for a kiosk session)."""
    session.clear()
    session["kiosk_done"] = True
    return redirect(url_for("kiosk.entry"), 303)


# --- the therapist's code ----------------------------------------------------------------


@staff_bp.route("/<code>/appointments/<int:appointment_id>/kiosk-code", methods=["POST"])
@login_required
def make_code(code: str, appointment_id: int) -> str | tuple[str, int]:
    appointment = db_session().get(Appointment, appointment_id)

    def bookable(client: Client) -> bool:
        episode = db_session().scalar(select(Episode).where(
            Episode.client_id == client.id, Episode.closed_on.is_(None)))
        return (episode is not None and appointment is not None
                and appointment.episode_id == episode.id)

    client, _episode, clinic = own_client(code, "kiosk.code.create", check=bookable)
    assert appointment is not None
    try:
        row, secret = kiosks.make_code(db_session(), appointment=appointment,
                                       therapist=current_user._get_current_object(),
                                       now=now(), library=instrument_library(current_app),
                                       key=_key())
    except (kiosks.KioskError, NothingToAsk) as exc:
        reason = exc.reason if isinstance(exc, kiosks.KioskError) else (
            "consent" if isinstance(exc, CollectionStopped) else "nothing")
        message = {
            "not_today": _("A kiosk code is made on the day of the appointment."),
            "not_scheduled": _("A kiosk code is made for a scheduled appointment only."),
            "consent": _("No code was made: the client declined or withdrew consent to "
                         "questionnaires."),
        }.get(reason, _("No code was made: there is nothing to ask the client before the "
                        "session (no questionnaire is available)."))
        audit_event(action="kiosk.code.create", outcome="error", even_if_failed=True,
                    actor_user_id=current_user.id, clinic_id=clinic.id,
                    client_id=client.id, object_type="appointment", object_id=appointment.id)
        return render_template("kiosk/code.html", client=client, error=message,
                               code=None, expires=None, timezone=clinic.timezone), 400
    audit_event(action="kiosk.code.create", outcome="allowed", actor_user_id=current_user.id,
                clinic_id=clinic.id, client_id=client.id, object_type="appointment",
                object_id=appointment.id)
    expires = row.expires_dt.astimezone(zoneinfo.ZoneInfo(clinic.timezone))
    return render_template("kiosk/code.html", client=client, error=None,
                           code=f"{secret[:3]} {secret[3:]}", expires=expires,
                           timezone=clinic.timezone)
