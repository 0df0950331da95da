"""``/api/v1``: clients, episodes, appointments, administrations, signals, alerts, instruments,
action plans and supervision reviews (read only; :mod:`outcome.web.api.plans`).

Routes stay thin: a client is found through :mod:`outcome.web.scoping` (the one
scoping function, one audit record per request, 404 outside the token's reach), the
work is done by the same services as the web pages, and a POST is made idempotent by
:func:`outcome.web.api.idempotency.idempotent_write` (the edge commits once).

What a personal token's staff member may do follows the web pages: their own clients'
data in full (names, answers, alert notes); a supervisor reads their supervisees'
clients by code, with signals, sessions and alerts but no answers or notes; writes are
for the client's own therapist. An integration token (an admin's) reads what the admin
pages show: the clinic's clients by code and therapist (``GET /clients`` and ``GET
/clients/{code}``, every other field null); every other client route is a 404 to it,
and its list of alerts is empty.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from flask import Blueprint
from flask import Response
from flask import abort
from flask import current_app
from flask import json
from flask import request
from flask import url_for
from sqlalchemy import select

from outcome.core.instruments import Instrument
from outcome.extensions import instrument_library
from outcome.models import ActionPlan
from outcome.models import Administration
from outcome.models import Alert
from outcome.models import Appointment
from outcome.models import Client
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import EpisodeSignal
from outcome.models import SupervisionReview
from outcome.models.care import SESSION_STATUSES
from outcome.services import audit
from outcome.services.alerts import AlertError
from outcome.services.alerts import acknowledge_alert
from outcome.services.appointments import BookingError
from outcome.services.appointments import book_appointment
from outcome.services.appointments import session_number
from outcome.services.client_record import administration_notes
from outcome.services.clients import CareError
from outcome.services.clients import close_episode
from outcome.services.clients import open_episode
from outcome.services.clients import register_client
from outcome.services.explanations import explanation_json
from outcome.services.explanations import render_explanation
from outcome.services.explanations import without_answers
from outcome.services.instruments import instrument_statuses
from outcome.services.submissions import IdempotencyConflict
from outcome.services.submissions import InvalidAnswers
from outcome.services.submissions import NoOpenEpisode
from outcome.services.submissions import Submission
from outcome.services.submissions import SubmissionError
from outcome.services.submissions import UnknownInstrument
from outcome.services.submissions import api_key
from outcome.services.submissions import submit as submit_answers
from outcome.services.support import PLAN_KINDS
from outcome.web.api import access
from outcome.web.api import plans as plan_views
from outcome.web.api.bodies import json_body
from outcome.web.api.bodies import parse_date
from outcome.web.api.bodies import parse_datetime
from outcome.web.api.idempotency import idempotent_write
from outcome.web.api.pagination import paginate
from outcome.web.api.problems import FieldError
from outcome.web.api.problems import Problem
from outcome.web.api.problems import pointer
from outcome.web.clock import now
from outcome.web.database import audit_event
from outcome.web.database import db_session
from outcome.web.scoping import acting_user
from outcome.web.scoping import actor_fields
from outcome.web.scoping import note_client
from outcome.web.scoping import own_client
from outcome.web.scoping import reachable_clients
from outcome.web.scoping import sees_names
from outcome.web.scoping import visible_client

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def ok(body: dict[str, Any], status: int = 200, location: str | None = None,
       headers: dict[str, str] | None = None) -> Response:
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    if location:
        response.headers["Location"] = location
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _utc(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


# --- representations ---------------------------------------------------------------------


def client_json(client: Client, open_episode_id: int | None) -> dict[str, Any]:
    own = sees_names(client)
    if access.current_token().kind == "integration":
        # What the admin pages show: the code and the therapist.
        return {"code": client.code, "name": None, "email": None, "phone": None,
                "locale": None, "therapist_id": client.therapist_id,
                "open_episode_id": None, "created_at": None}
    return {"code": client.code, "name": client.name if own else None,
            "email": client.email if own else None, "phone": client.phone if own else None,
            "locale": client.locale, "therapist_id": client.therapist_id,
            "open_episode_id": open_episode_id, "created_at": _utc(client.created_dt)}


def episode_json(episode: Episode) -> dict[str, Any]:
    return {"id": episode.id, "therapist_id": episode.therapist_id,
            "opened_on": episode.opened_on.isoformat(),
            "closed_on": episode.closed_on.isoformat() if episode.closed_on else None,
            "end_reason": episode.end_reason, "is_open": episode.closed_on is None}


def appointment_json(appointment: Appointment) -> dict[str, Any]:
    return {"id": appointment.id, "episode_id": appointment.episode_id,
            "starts_at": _utc(appointment.starts_dt),
            "duration_minutes": appointment.duration_minutes, "status": appointment.status,
            "session_number": (session_number(db_session(), appointment)
                               if appointment.status in SESSION_STATUSES else None)}


def administration_json(row: Administration) -> dict[str, Any]:
    scores = row.scores or {}
    return {"id": row.id, "episode_id": row.episode_id, "instrument": row.instrument_id,
            "instrument_version": row.instrument_version, "respondent": row.respondent,
            "appointment_id": row.appointment_id, "completed_at": _utc(row.completed_dt),
            "answers": row.answers, "total": row.total, "score": scores.get("primary"),
            "band": scores.get("band"), "is_valid": row.is_valid,
            "is_prorated": row.is_prorated,
            "critical_items": list(scores.get("critical_items", [])),
            # A blank critical item is never silently prorated over; a rule is true,
            # false, or null (undetermined: blank items could change it).
            "critical_unanswered": list(scores.get("critical_unanswered", [])),
            "n_missing": scores.get("n_missing"), "rules": dict(scores.get("rules") or {}),
            "notes": [explanation_json(m.as_json()) for m in
                      administration_notes(instrument_library(current_app), row)],
            "supersedes_id": row.supersedes_id,
            # The language the client was shown the wording in; null: not recorded.
            "language": row.language}


def signal_json(episode: Episode, signal: EpisodeSignal | None, *, answers: bool = True
                ) -> dict[str, Any]:
    """The episode's stored signal; without ``answers`` (a reader who is not the client's
    therapist) each critical answer names its item and urgency, not the answer."""
    if signal is None:
        return {"episode_id": episode.id, "colour": "grey", "urgency": 7,
                "change_category": None, "change_measure": None, "ruptures": 0,
                "ruptures_repaired": 0,
                "ruptures_unrepaired": 0, "computed_at": None,
                "outcomes": {}, "alliance": {}, "critical": []}
    state = signal.state or {}
    outcomes = {instrument: {**data, "progress": _explained(data.get("progress")),
                             "change": _explained(data.get("change"))}
                for instrument, data in state.get("outcomes", {}).items()}
    alliance = {instrument: {**data, "ruptures": [_explained(r)
                                                  for r in data.get("ruptures", [])]}
                for instrument, data in state.get("alliance", {}).items()}
    return {"episode_id": episode.id, "colour": signal.colour, "urgency": signal.urgency,
            "change_category": signal.change_category,
            "change_measure": _change_measure(state), "ruptures": signal.ruptures,
            "ruptures_repaired": signal.ruptures_repaired,
            "ruptures_unrepaired": signal.ruptures_unrepaired,
            "computed_at": _utc(signal.computed_dt), "outcomes": outcomes,
            "alliance": alliance,
            "critical": [_explained(c if answers else without_answers(
                c, instrument_library(current_app))) for c in state.get("critical", [])]}


def _change_measure(state: dict[str, Any]) -> dict[str, Any] | None:
    """The measure (or pair) change_category belongs to (domain.md section 3)."""
    change = state.get("change")
    if not change or not change.get("category"):
        return None
    return {"measure": change.get("measure"), "pair": change.get("pair"),
            "stand_in_for": change.get("stand_in_for"),
            "text": render_explanation(change.get("label"))}


def _explained(explanation: dict[str, Any] | None) -> dict[str, Any] | None:
    """A stored explanation with its English text beside its message id and parameters
    (the API speaks English; a client in another language renders the id itself)."""
    if explanation is None:
        return None
    return {**explanation, **explanation_json(explanation)}


def alert_json(alert: Alert, client: Client) -> dict[str, Any]:
    own = sees_names(client)
    # A critical answer's value is the therapist's alone (issue 16, finding 14).
    detail = (alert.detail if own else without_answers(alert.detail,
                                                       instrument_library(current_app))) or {}
    return {"id": alert.id, "client_code": client.code, "episode_id": alert.episode_id,
            "kind": alert.kind, "status": alert.status, "level": detail.get("level"),
            "message": render_explanation(detail) or None,
            "explanation": explanation_json(detail) if detail else None,
            "administration_id": alert.administration_id,
            "raised_at": _utc(alert.raised_dt), "acknowledged_at": _utc(alert.acknowledged_dt),
            "acknowledged_by_id": alert.acknowledged_by_id,
            "note": alert.acknowledgement_note if own else None,
            "resolved_at": _utc(alert.resolved_dt)}


def instrument_summary(instrument: Instrument, status: str) -> dict[str, Any]:
    low, high = instrument.primary_range
    return {"id": instrument.id, "version": instrument.version, "name": instrument.name,
            "short_name": instrument.short_name, "role": instrument.role,
            "direction": instrument.direction, "status": status,
            "score_range": [low, high], "licence": instrument.licence.name}


def instrument_detail(instrument: Instrument, status: str) -> dict[str, Any]:
    items = []
    for item in instrument.items:
        items.append({
            "id": item.id, "type": item.type, "text": item.text, "is_scored": item.is_scored,
            "minimum": item.minimum, "maximum": item.maximum, "decimals": item.decimals,
            "options": [{"value": o.value, "label": o.label} for o in item.options],
            "max_length": item.max_length if item.type == "text" else None})
    return {**instrument_summary(instrument, status), "stem": instrument.stem,
            "max_missing": instrument.max_missing, "items": items,
            "cutoff": instrument.cutoff.value if instrument.cutoff else None,
            "critical_items": [c.item for c in instrument.critical_items],
            "attribution": instrument.licence.attribution}


# --- helpers -------------------------------------------------------------------------------


def _today() -> dt.date:
    """Today in the clinic's calendar (intake and end dates default to it)."""
    clinic = db_session().get(Clinic, access.current_token().clinic_id)
    assert clinic is not None
    return now().astimezone(zoneinfo.ZoneInfo(clinic.timezone)).date()


def _date_or_today(body: dict[str, Any], field: str) -> dt.date:
    """The body's ``YYYY-MM-DD`` in ``field`` (422 naming it if malformed), else today."""
    return parse_date(body[field], field) if body.get(field) else _today()


def _open_episode(client: Client) -> Episode | None:
    return db_session().scalar(select(Episode).where(Episode.client_id == client.id,
                                                     Episode.closed_on.is_(None)))


def _own(code: str, action: str, check=None) -> tuple[Client, Episode | None]:
    client, episode, _clinic = own_client(code, action, check=check)
    return client, episode


def _no_open_episode() -> Problem:
    return Problem(409, "The client has no open episode; open one with POST .../episodes "
                        "first.", kind="no-open-episode")


def _require_open(episode: Episode | None) -> Episode:
    if episode is None:
        raise _no_open_episode()
    return episode


def _service_problem(exc: CareError | BookingError | AlertError, field: str | None = None
                     ) -> Problem:
    name = getattr(exc, "field", None) or field
    return Problem(422, str(exc), errors=[FieldError(str(exc), pointer(name) if name else None,
                                                     code="rejected")])


def _episode_of(client: Client, episode_id: int) -> Episode:
    """Checked by the lookup's ``check``: the episode belongs to the client."""
    episode = db_session().get(Episode, episode_id)
    assert episode is not None and episode.client_id == client.id
    return episode


def _belongs(model, object_id: int):
    def check(client: Client) -> bool:
        row = db_session().get(model, object_id)
        if row is None:
            return False
        episode_id = row.id if model is Episode else row.episode_id
        episode = db_session().get(Episode, episode_id)
        return episode is not None and episode.client_id == client.id
    return check


# --- instruments ---------------------------------------------------------------------------


@bp.get("/instruments")
def instruments() -> Response:
    token = access.current_token()
    statuses = instrument_statuses(db_session(), token.clinic_id,
                                   instrument_library(current_app))
    return ok({"items": [instrument_summary(s.instrument, s.status) for s in statuses],
               "next_cursor": None})


@bp.get("/instruments/<instrument_id>")
def instrument(instrument_id: str) -> Response:
    token = access.current_token()
    for status in instrument_statuses(db_session(), token.clinic_id,
                                      instrument_library(current_app)):
        if status.instrument.id == instrument_id:
            return ok(instrument_detail(status.instrument, status.status))
    raise Problem(404, f"There is no instrument {instrument_id[:64]!r}; GET "
                       "/api/v1/instruments lists them.")


# --- clients and episodes --------------------------------------------------------------------


@bp.get("/clients")
def clients() -> Response:
    viewer = acting_user()
    audit_event(action="api.clients.list", outcome="allowed", clinic_id=viewer.clinic_id,
                even_if_failed=True, **actor_fields())
    store = db_session()
    page = paginate(store, reachable_clients(codes_only=True), Client.id, lambda c: c)
    rows: list[Any] = page.items
    open_ids = dict(store.execute(select(Episode.client_id, Episode.id).where(
        Episode.client_id.in_([c.id for c in rows]), Episode.closed_on.is_(None))).all())
    items = [client_json(c, open_ids.get(c.id)) for c in rows]
    return ok({"items": items, "next_cursor": page.next_cursor}, headers=page.link_header())


@bp.post("/clients")
@idempotent_write
def create_client() -> Response:
    body = json_body("ClientCreate")
    viewer = acting_user()
    opened_on = _date_or_today(body, "opened_on")
    try:
        client, episode = register_client(
            db_session(), viewer, name=body["name"], opened_on=opened_on,
            email=body.get("email"), phone=body.get("phone"), locale=body.get("locale", "en"))
    except CareError as exc:
        raise _service_problem(exc) from None
    note_client(client)
    # Audited in the same transaction: the record stands or falls with the client.
    audit.record(db_session(), action="api.client.create", outcome="allowed", now=now(),
                 clinic_id=viewer.clinic_id, client_id=client.id, object_type="client",
                 object_id=client.code, ip_address=request.remote_addr, **actor_fields())
    return ok(client_json(client, episode.id), 201,
              location=url_for(".client", code=client.code))


@bp.get("/clients/<code>")
def client(code: str) -> Response:
    found = visible_client(code, "api.client.view", codes_only=True)
    episode = _open_episode(found)
    return ok(client_json(found, episode.id if episode else None))


@bp.get("/clients/<code>/episodes")
def episodes(code: str) -> Response:
    found = visible_client(code, "api.episodes.list")
    page = paginate(db_session(), select(Episode).where(Episode.client_id == found.id),
                    Episode.id, episode_json)
    return ok(page.as_json(), headers=page.link_header())


@bp.post("/clients/<code>/episodes")
@idempotent_write
def create_episode(code: str) -> Response:
    found, _episode = _own(code, "api.episode.open")
    body = json_body("EpisodeCreate")
    opened_on = _date_or_today(body, "opened_on")
    try:
        episode = open_episode(db_session(), found, opened_on)
    except CareError as exc:
        raise Problem(409, str(exc), kind="episode-conflict", errors=[FieldError(
            str(exc), pointer("opened_on"), code="rejected")]) from None
    return ok(episode_json(episode), 201,
              location=url_for(".episodes", code=found.code))


@bp.post("/clients/<code>/episodes/<int:episode_id>/close")
@idempotent_write
def end_episode(code: str, episode_id: int) -> Response:
    found, _episode = _own(code, "api.episode.close", check=_belongs(Episode, episode_id))
    episode = _episode_of(found, episode_id)
    body = json_body("EpisodeClose")
    closed_on = _date_or_today(body, "closed_on")
    try:
        close_episode(db_session(), episode, closed_on=closed_on,
                      end_reason=body["end_reason"], library=instrument_library(current_app),
                      now=now())
    except CareError as exc:
        raise _service_problem(exc) from None
    return ok(episode_json(episode))


# --- appointments --------------------------------------------------------------------------


@bp.get("/clients/<code>/appointments")
def appointments(code: str) -> Response:
    found = visible_client(code, "api.appointments.list")
    query = (select(Appointment).join(Episode, Episode.id == Appointment.episode_id)
             .where(Episode.client_id == found.id))
    page = paginate(db_session(), query, Appointment.id, appointment_json)
    return ok(page.as_json(), headers=page.link_header())


@bp.post("/clients/<code>/appointments")
@idempotent_write
def book(code: str) -> Response:
    found, episode = _own(code, "api.appointment.book")
    body = json_body("AppointmentCreate")
    starts = parse_datetime(body["starts_at"], "starts_at")
    episode = _require_open(episode)
    try:
        appointment = book_appointment(db_session(), episode, starts, now=now(),
                                       duration_minutes=body.get("duration_minutes", 50))
    except BookingError as exc:
        raise _service_problem(exc, "starts_at") from None
    return ok(appointment_json(appointment), 201,
              location=url_for(".appointments", code=found.code))


# --- administrations -------------------------------------------------------------------------


@bp.get("/clients/<code>/administrations")
def administrations(code: str) -> Response:
    found, _episode = _own(code, "api.administrations.list")
    query = (select(Administration).join(Episode, Episode.id == Administration.episode_id)
             .where(Episode.client_id == found.id))
    page = paginate(db_session(), query, Administration.id, administration_json)
    return ok(page.as_json(), headers=page.link_header())


# A refused submission's title, and where its error points (the rest is in the exception).
SUBMISSION_TITLES = {"instrument": "Instrument not available.",
                     "version": "Unknown instrument version.",
                     "completed": "The completion time is in the future.",
                     "appointment": "Unknown appointment.",
                     # issue 20: declined or withdrew consent
                     "client": "The client declined or withdrew consent to questionnaires."}
SUBMISSION_FIELDS = {"completed": "completed_at", "appointment": "appointment_id"}


def _submission_problem(exc: SubmissionError) -> Problem:
    """A refused submission as the API reports it."""
    if isinstance(exc, InvalidAnswers):
        return Problem(422, "Some answers are not valid; see errors.", errors=[
            FieldError(e.message, pointer("answers", e.item), code=e.code) for e in exc.errors])
    if isinstance(exc, IdempotencyConflict):
        return Problem(409, str(exc), kind="idempotency-key-reused")
    if isinstance(exc, NoOpenEpisode):
        return _no_open_episode()
    title, detail = SUBMISSION_TITLES[exc.field], exc.message
    if isinstance(exc, UnknownInstrument):
        title = "Unknown instrument."
        detail = (f"{exc.instrument_id!r} is not an instrument of this clinic; GET "
                  "/api/v1/instruments lists them.")
    elif exc.field == "completed":
        detail = "completed_at is later than now."
    name = SUBMISSION_FIELDS.get(exc.field, exc.field)
    return Problem(422, title, errors=[FieldError(detail, pointer(name), code=exc.code)])


@bp.post("/clients/<code>/administrations")
@idempotent_write
def submit(code: str) -> Response:
    found, episode = _own(code, "api.administration.submit")
    body = json_body("AdministrationCreate")
    completed = (parse_datetime(body["completed_at"], "completed_at")
                 if body.get("completed_at") else now())
    respondent = body.get("respondent", "client")
    viewer = acting_user()
    try:
        row = submit_answers(db_session(), Submission(
            clinic_id=access.current_token().clinic_id, episode=episode,
            instrument_id=body["instrument"], version=body.get("version"),
            answers=body["answers"], completed_dt=completed,
            idempotency_key=api_key(access.current_token().id,
                                    request.headers.get("Idempotency-Key")),
            appointment_id=body.get("appointment_id"), respondent=respondent,
            respondent_user_id=viewer.id if respondent == "therapist" else None),
            library=instrument_library(current_app), now=now()).administration
    except SubmissionError as exc:
        raise _submission_problem(exc) from None
    signal = db_session().get(EpisodeSignal, row.episode_id)
    assert episode is not None
    return ok({"administration": administration_json(row),
               "signals": signal_json(episode, signal)}, 201,
              location=url_for(".administrations", code=found.code))


# --- signals and alerts ----------------------------------------------------------------------


@bp.get("/clients/<code>/signals")
def signals(code: str) -> Response:
    found = visible_client(code, "api.signals.view")
    store = db_session()
    episode = store.scalar(select(Episode).where(Episode.client_id == found.id)
                           .order_by(Episode.closed_on.is_(None).desc(),
                                     Episode.opened_on.desc(), Episode.id.desc()))
    if episode is None:
        raise Problem(404, "The client has no episode yet.", kind="no-episode")
    return ok(signal_json(episode, store.get(EpisodeSignal, episode.id),
                          answers=sees_names(found)))


ALERT_STATUS_FILTER = ("open", "acknowledged", "resolved", "all")


def _status_filter() -> str:
    status = request.args.get("status", "open")
    if status not in ALERT_STATUS_FILTER:
        raise Problem(400, "The status filter is not valid.", errors=[FieldError(
            f"status is one of {', '.join(ALERT_STATUS_FILTER)}.", parameter="status",
            code="not_an_option")])
    return status


@bp.get("/alerts")
def alerts() -> Response:
    status = _status_filter()
    viewer = acting_user()
    audit_event(action="api.alerts.list", outcome="allowed", clinic_id=viewer.clinic_id,
                even_if_failed=True, **actor_fields())
    store = db_session()
    visible = reachable_clients().with_only_columns(Client.id)
    query = (select(Alert).join(Episode, Episode.id == Alert.episode_id)
             .where(Episode.client_id.in_(visible)))
    if status != "all":
        query = query.where(Alert.status == status)
    page = paginate(store, query, Alert.id, lambda a: a)
    rows: list[Any] = page.items
    episode_ids = {a.episode_id for a in rows}
    owners = {e.id: e.client_id for e in store.scalars(
        select(Episode).where(Episode.id.in_(episode_ids)))}
    by_id = {c.id: c for c in store.scalars(select(Client).where(
        Client.id.in_(set(owners.values()))))}
    items = [alert_json(a, by_id[owners[a.episode_id]]) for a in rows]
    return ok({"items": items, "next_cursor": page.next_cursor}, headers=page.link_header())


@bp.get("/clients/<code>/alerts")
def client_alerts(code: str) -> Response:
    status = _status_filter()
    found = visible_client(code, "api.alerts.view")
    query = (select(Alert).join(Episode, Episode.id == Alert.episode_id)
             .where(Episode.client_id == found.id))
    if status != "all":
        query = query.where(Alert.status == status)
    page = paginate(db_session(), query, Alert.id, lambda a: alert_json(a, found))
    return ok(page.as_json(), headers=page.link_header())


@bp.post("/clients/<code>/alerts/<int:alert_id>/acknowledge")
@idempotent_write
def acknowledge(code: str, alert_id: int) -> Response:
    found, _episode = _own(code, "api.alert.acknowledge", check=_belongs(Alert, alert_id))
    body = json_body("AlertAcknowledge")
    alert = db_session().get(Alert, alert_id)
    assert alert is not None
    try:
        acknowledge_alert(db_session(), alert, acting_user(), body["note"], now(),
                          instrument_library(current_app))
    except AlertError as exc:
        # A not-on-track or rupture alert is resolved by an action plan (issue 19): a
        # conflict with the alert's kind, not a fault in the note.
        status = 409 if alert.status != "open" or alert.kind in PLAN_KINDS else 422
        raise Problem(status, str(exc), errors=[FieldError(str(exc), pointer("note"),
                                                           code="rejected")]) from None
    return ok(alert_json(alert, found))


# --- action plans and supervision reviews (issue 19), read only ---------------------------------


def _page_of(query, id_column, to_json) -> Response:
    """One page of ``query`` (scoped), its rows shown by ``to_json`` (a whole page at once)."""
    page = paginate(db_session(), query, id_column, lambda row: row)
    rows: list[Any] = page.items
    return ok({"items": to_json(rows), "next_cursor": page.next_cursor},
              headers=page.link_header())


def _visible_ids():
    """The ids of the clients this request reaches with their data (none for an admin)."""
    return reachable_clients().with_only_columns(Client.id)


def _list_audited(action: str) -> None:
    viewer = acting_user()
    audit_event(action=action, outcome="allowed", clinic_id=viewer.clinic_id,
                even_if_failed=True, **actor_fields())


@bp.get("/plans")
def plans() -> Response:
    today = _today()
    query = plan_views.plans_query(_visible_ids(), today)  # a bad parameter: 400 first
    _list_audited("api.plans.list")
    return _page_of(query, ActionPlan.id, lambda rows: plan_views.plans_json(rows, today))


@bp.get("/plans/<int:plan_id>")
def plan(plan_id: int) -> Response:
    viewer = acting_user()
    code = plan_views.plan_owner_code(plan_id, viewer.clinic_id)
    if code is None:  # no such plan in this clinic: the same 404 as a foreign one
        audit_event(action="api.plan.view", outcome="denied", clinic_id=viewer.clinic_id,
                    object_type="action_plan", object_id=plan_id, even_if_failed=True,
                    **actor_fields())
        abort(404)
    visible_client(code, "api.plan.view", check=_belongs(ActionPlan, plan_id))
    row = db_session().get(ActionPlan, plan_id)
    assert row is not None
    return ok(plan_views.plans_json([row], _today())[0])


@bp.get("/clients/<code>/plans")
def client_plans(code: str) -> Response:
    today = _today()
    found: dict[str, Any] = {}

    def parameters_valid(client: Client) -> bool:  # a bad one: a 400, audited as denied
        found["query"] = plan_views.plans_query(select(Client.id).where(Client.id == client.id),
                                                today)
        return True

    visible_client(code, "api.plans.view", check=parameters_valid)
    return _page_of(found["query"], ActionPlan.id,
                    lambda rows: plan_views.plans_json(rows, today))


@bp.get("/reviews")
def reviews() -> Response:
    query = plan_views.reviews_query(_visible_ids())
    _list_audited("api.reviews.list")
    return _page_of(query, SupervisionReview.id, plan_views.reviews_json)


@bp.get("/clients/<code>/reviews")
def client_reviews(code: str) -> Response:
    found: dict[str, Any] = {}

    def parameters_valid(client: Client) -> bool:  # a bad one: a 400, audited as denied
        found["query"] = plan_views.reviews_query(select(Client.id).where(Client.id == client.id))
        return True

    visible_client(code, "api.reviews.view", check=parameters_valid)
    return _page_of(found["query"], SupervisionReview.id, plan_views.reviews_json)


# --- the document ----------------------------------------------------------------------------


@bp.get("/openapi.json")
def openapi_document() -> Response:
    from outcome.web.api.openapi import document

    return ok(document())


@bp.before_request
def _before() -> None:
    access.limit_body()
    access.authenticate()
