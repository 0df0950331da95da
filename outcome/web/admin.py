"""Clinic administration: staff accounts, supervision, client transfers, settings,
instrument licences, API tokens and the audit log.

Only active admins use these pages. Anybody else who is signed in gets a 404 (never a
403) and a ``denied`` audit record; a visitor who is not signed in is sent to the login
page, as on every staff page. An object of another clinic is a 404 too.

Admins see clients by code only: these pages never load a client's name, contacts or
answers, whether or not the admin is also a clinician (the clinician sees names on
their own pages). Clients are listed through ``administered_clients``, the access
module's one rule for administration.

Every change is audited with identifiers only: ``allowed`` when it happened, ``error``
when the input was refused (nothing changed), ``denied`` when the object is outside the
admin's clinic. Routes stay thin: the rules live in :mod:`outcome.services.staff`,
:mod:`outcome.services.clinic_settings`, :mod:`outcome.services.instruments` and
:mod:`outcome.services.api_tokens`.
"""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from typing import Any

from flask import Blueprint
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
from sqlalchemy.orm import aliased
from werkzeug.wrappers import Response

from outcome.app import instrument_library
from outcome.models import ApiToken
from outcome.models import AuditEvent
from outcome.models import Client
from outcome.models import Clinic
from outcome.models import OutboundEmail
from outcome.models import ReportRun
from outcome.models import SupervisorAssignment
from outcome.models import User
from outcome.models.audit import AUDIT_OUTCOMES
from outcome.models.clinic import ROLES
from outcome.services import api_tokens
from outcome.services import audit
from outcome.services import clinic_settings
from outcome.services import instruments
from outcome.services import staff
from outcome.services.access import administered_clients
from outcome.web.auditing import record_now
from outcome.web.clock import now
from outcome.web.database import db_session

bp = Blueprint("admin", __name__, url_prefix="/admin")

AUDIT_PAGE_SIZE = 50

ROLE_LABELS = {"admin": _l("Admin"), "supervisor": _l("Supervisor"),
               "therapist": _l("Therapist")}
OUTCOME_LABELS = {"allowed": _l("allowed"), "denied": _l("denied"), "error": _l("error")}
STATUS_LABELS = {"available": _l("Available"),
                 "needs attestation": _l("Needs licence attestation"),
                 "wording not installed": _l("Wording not installed")}
SCOPE_LABELS = {"read": _l("read"), "write": _l("write")}
WEEKDAYS = (_l("Monday"), _l("Tuesday"), _l("Wednesday"), _l("Thursday"), _l("Friday"),
            _l("Saturday"), _l("Sunday"))

# The settings form: sections of (key, label, help, widget). Keys not listed here (a
# setting added later) appear under "Other settings" with their English description.
SETTINGS_SECTIONS: tuple[tuple[Any, tuple[tuple[str, Any, Any, str], ...]], ...] = (
    (_l("Time zone and weekly digest"), (
        ("timezone", _l("Time zone"), _l("Appointments, e-mails and the audit log use "
                                         "this clinic time."), "timezone"),
        ("digest_weekday", _l("Digest day"), _l("The day supervisors receive their weekly "
                                                "digest."), "weekday"),
        ("digest_time", _l("Digest time"), _l("The local time the digest is sent."), "time"),
    )),
    (_l("Questionnaires"), (
        ("pre_battery", _l("Questionnaires before each session"),
         _l('A JSON list such as [{"instrument": "phq9", "every": "session"}]; "every" is '
            'session, month (the first session of each 4) or intake.'), "json"),
        ("post_instrument", _l("Alliance measure after each session"),
         _l("Asked at the end of each session; choose none to ask nothing."), "instrument"),
    )),
    (_l("Links and reminders"), (
        ("link_opens_hours", _l("Link opens (hours before the session)"),
         _l("From 1 to 336."), "int"),
        ("link_closes_hours", _l("Link closes (hours after the session)"),
         _l("From 1 to 336."), "int"),
        ("link_email_hours", _l("Link e-mailed (hours before the session)"),
         _l("From 1 to 168."), "int"),
        ("reminder_hours", _l("Reminder (hours before the session)"),
         _l("One reminder if the questionnaires are not done yet; 0 for none."), "int"),
    )),
    (_l("Crisis support"), (
        ("crisis_text", _l("Crisis text"),
         _l("Shown to a client at once after a critical answer: the clinic's own crisis "
            "contacts. 20 to 2000 characters."), "textarea"),
    )),
    (_l("Progress colours and rules"), (
        ("colour_green_max", _l("Green up to percentile"),
         _l("Progress is green (on track) up to this residual percentile, between 0 and 1."),
         "decimal"),
        ("colour_yellow_max", _l("Yellow up to percentile"),
         _l("Progress is yellow up to this percentile and red above it; above the green "
            "value and below 1."), "decimal"),
        ("model_min_episodes", _l("Completed episodes before expected curves"),
         _l("Expected recovery curves replace the simple rules after this many completed "
            "episodes (at least 10)."), "int"),
        ("rational_from_session", _l("Simple rules: from session"),
         _l("The session from which too little improvement is yellow (at least 2)."),
         "int"),
        ("rational_fraction", _l("Simple rules: share of reliable change"),
         _l("Yellow below this share of the reliable-change threshold (above 0, at most "
            "1)."), "decimal"),
        ("repair_window", _l("Sessions to repair a rupture"),
         _l("A rupture not repaired within this many sessions counts as unrepaired (1 to "
            "10)."), "int"),
        ("discrepancy_points", _l("Alliance discrepancy (points)"),
         _l("How much higher the therapist's alliance rating must be than the client's to "
            "flag a discrepancy (above 0)."), "decimal"),
    )),
    (_l("Staff sessions"), (
        ("staff_idle_minutes", _l("Sign out after inactivity (minutes)"),
         _l("From 5 to 240."), "int"),
        ("staff_session_hours", _l("Sign in again after (hours)"),
         _l("However active; from 1 to 24."), "int"),
    )),
)
# Changing these changes stored progress colours only after a recomputation.
RECOMPUTE_KEYS = frozenset({"colour_green_max", "colour_yellow_max", "model_min_episodes",
                            "rational_from_session", "rational_fraction", "repair_window",
                            "discrepancy_points"})


# --- access ------------------------------------------------------------------------------


@bp.before_request
def _admins_only() -> Response | None:
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
    if not (current_user.is_admin and current_user.is_active):
        record_now(action="admin.view", outcome="denied", actor_user_id=current_user.id,
                   clinic_id=current_user.clinic_id, object_type="page",
                   object_id=request.endpoint)
        abort(404)
    return None


def _admin() -> User:
    return current_user._get_current_object()


def _clinic() -> Clinic:
    clinic = db_session().get(Clinic, current_user.clinic_id)
    assert clinic is not None
    return clinic


def _record(action: str, outcome: str = "allowed", **fields: Any) -> None:
    """Add an audit record to the request's transaction (committed with the change)."""
    audit.record(db_session(), action=action, outcome=outcome, now=now(),
                 actor_user_id=current_user.id, clinic_id=current_user.clinic_id,
                 ip_address=request.remote_addr, **fields)


def _refused(action: str, exc: staff.StaffError | clinic_settings.SettingError
             | instruments.AttestationError, **fields: Any) -> None:
    """Undo the request's changes, audit the refusal and show why."""
    db_session().rollback()
    record_now(action=action, outcome="error", actor_user_id=current_user.id,
               clinic_id=current_user.clinic_id, **fields)
    flash(message(exc), "error")


def message(exc: Exception) -> str:
    """The error's sentence in the user's language (services mark theirs with ``N_``)."""
    if isinstance(exc, staff.StaffError):
        return _(exc.message, **exc.params)
    return str(exc)


def _staff_member(user_id: int, action: str) -> User:
    """A user of the admin's clinic, or a 404 (and a ``denied`` record)."""
    user = db_session().get(User, user_id)
    if user is None or user.clinic_id != current_user.clinic_id:
        record_now(action=action, outcome="denied", actor_user_id=current_user.id,
                   clinic_id=current_user.clinic_id, object_type="user", object_id=user_id)
        abort(404)
    return user


def _tz() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(_clinic().timezone)


def _local(moment: dt.datetime | None, tz: zoneinfo.ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M") if moment else ""


# --- overview ----------------------------------------------------------------------------


@bp.route("/")
def index() -> str:
    store = db_session()
    clinic = _clinic()
    statuses = instruments.instrument_statuses(store, clinic.id,
                                               instrument_library(current_app))
    counts = {
        "users": store.scalar(select(func.count()).select_from(User).where(
            User.clinic_id == clinic.id, User.is_active.is_(True))) or 0,
        "disabled": store.scalar(select(func.count()).select_from(User).where(
            User.clinic_id == clinic.id, User.is_active.is_(False))) or 0,
        "unattested": sum(1 for s in statuses if s.status == "needs attestation"),
    }
    return render_template("admin/index.html", clinic=clinic, counts=counts)


# --- staff -------------------------------------------------------------------------------


def _clinic_users() -> list[User]:
    return list(db_session().scalars(select(User).where(
        User.clinic_id == current_user.clinic_id).order_by(
        User.is_active.desc(), func.lower(User.display_name), User.id)))


@bp.route("/users")
def users(form: dict | None = None, errors: dict | None = None) -> str:
    return render_template("admin/users.html", users=_clinic_users(), tz=_tz(), local=_local,
                           role_labels=ROLE_LABELS, form=form or {"roles": ["therapist"]},
                           errors=errors or {})


@bp.route("/users", methods=["POST"])
def create_user() -> str | Response:
    form = request.form
    roles = form.getlist("role")
    generate = form.get("password_choice") != "set"
    password = staff.generate_password() if generate else form.get("password", "")
    kept = {"email": form.get("email", ""), "display_name": form.get("display_name", ""),
            "roles": roles, "password_choice": "generate" if generate else "set"}
    if not generate and password != form.get("password_confirm", ""):
        flash(_("The two passwords differ."), "error")
        return users(form=kept, errors={"password": _("The two passwords differ.")})
    try:
        user = staff.create_user(db_session(), _clinic(), form.get("email", ""),
                                 form.get("display_name", ""), roles, password, now())
    except staff.StaffError as exc:
        _refused("user.create", exc, object_type="user")
        return users(form=kept, errors={exc.field or "form": message(exc)})
    _record("user.create", object_type="user", object_id=user.id)
    db_session().commit()
    flash(_("Account created for %(name)s.", name=user.display_name), "info")
    if generate:
        return user_page(user.id, generated=password)
    return redirect(url_for(".user_page", user_id=user.id))


@bp.route("/users/<int:user_id>")
def user_page(user_id: int, generated: str | None = None) -> str:
    user = _staff_member(user_id, "user.view")
    store = db_session()
    supervisor = aliased(User)
    therapist = aliased(User)
    pairs = store.execute(
        select(supervisor.display_name, therapist.display_name)
        .select_from(SupervisorAssignment)
        .join(supervisor, supervisor.id == SupervisorAssignment.supervisor_id)
        .join(therapist, therapist.id == SupervisorAssignment.therapist_id)
        .where(SupervisorAssignment.clinic_id == user.clinic_id,
               (SupervisorAssignment.supervisor_id == user.id)
               | (SupervisorAssignment.therapist_id == user.id))
        .order_by(supervisor.display_name, therapist.display_name)).all()
    return render_template("admin/user.html", user=user, tz=_tz(), local=_local,
                           roles=ROLES, role_labels=ROLE_LABELS, generated=generated,
                           clients=staff.client_count(store, user), pairs=pairs,
                           is_self=user.id == current_user.id)


@bp.route("/users/<int:user_id>/roles", methods=["POST"])
def set_roles(user_id: int) -> Response:
    user = _staff_member(user_id, "user.roles.change")
    try:
        staff.set_roles(db_session(), user, request.form.getlist("role"))
    except staff.StaffError as exc:
        _refused("user.roles.change", exc, object_type="user", object_id=user_id)
        return redirect(url_for(".user_page", user_id=user_id))
    _record("user.roles.change", object_type="user", object_id=user_id)
    db_session().commit()
    flash(_("Roles saved."), "info")
    if user.id == current_user.id and not user.is_admin:
        return redirect(url_for("home.index"))  # no longer an admin: these pages are gone
    return redirect(url_for(".user_page", user_id=user_id))


@bp.route("/users/<int:user_id>/disable", methods=["POST"])
def disable_user(user_id: int) -> Response:
    user = _staff_member(user_id, "user.disable")
    if user.id == current_user.id:
        record_now(action="user.disable", outcome="error", actor_user_id=current_user.id,
                   clinic_id=current_user.clinic_id, object_type="user", object_id=user_id)
        flash(_("You cannot disable your own account; ask another admin."), "error")
        return redirect(url_for(".user_page", user_id=user_id))
    try:
        clients = staff.disable_user(db_session(), user)
    except staff.StaffError as exc:
        _refused("user.disable", exc, object_type="user", object_id=user_id)
        return redirect(url_for(".user_page", user_id=user_id))
    _record("user.disable", object_type="user", object_id=user_id)
    db_session().commit()
    flash(_("%(name)s is disabled and signed out everywhere.", name=user.display_name), "info")
    if clients:
        flash(_("%(name)s still has %(count)s client(s): transfer them to another therapist "
                "on the clients page.", name=user.display_name, count=clients), "error")
        return redirect(url_for(".clients", therapist=user.id))
    return redirect(url_for(".user_page", user_id=user_id))


@bp.route("/users/<int:user_id>/enable", methods=["POST"])
def enable_user(user_id: int) -> Response:
    user = _staff_member(user_id, "user.enable")
    try:
        staff.enable_user(db_session(), user)
    except staff.StaffError as exc:
        _refused("user.enable", exc, object_type="user", object_id=user_id)
    else:
        _record("user.enable", object_type="user", object_id=user_id)
        db_session().commit()
        flash(_("%(name)s can sign in again.", name=user.display_name), "info")
    return redirect(url_for(".user_page", user_id=user_id))


@bp.route("/users/<int:user_id>/password", methods=["POST"])
def reset_password(user_id: int) -> str | Response:
    user = _staff_member(user_id, "user.password.reset")
    if user.id == current_user.id:
        record_now(action="user.password.reset", outcome="error",
                   actor_user_id=current_user.id, clinic_id=current_user.clinic_id,
                   object_type="user", object_id=user_id)
        flash(_("Change your own password on your account page."), "error")
        return redirect(url_for("account.password"))
    generate = request.form.get("password_choice") != "set"
    password = staff.generate_password() if generate else request.form.get("password", "")
    if not generate and password != request.form.get("password_confirm", ""):
        flash(_("The two passwords differ."), "error")
        return redirect(url_for(".user_page", user_id=user_id))
    try:
        staff.reset_password(db_session(), user, password, now())
    except staff.StaffError as exc:
        _refused("user.password.reset", exc, object_type="user", object_id=user_id)
        return redirect(url_for(".user_page", user_id=user_id))
    _record("user.password.reset", object_type="user", object_id=user_id)
    db_session().commit()
    flash(_("Password set for %(name)s; their sessions have ended.", name=user.display_name),
          "info")
    if generate:
        return user_page(user_id, generated=password)
    return redirect(url_for(".user_page", user_id=user_id))


# --- supervision -------------------------------------------------------------------------


@bp.route("/assignments")
def assignments() -> str:
    store = db_session()
    rows = store.scalars(select(SupervisorAssignment).where(
        SupervisorAssignment.clinic_id == current_user.clinic_id)).all()
    people = {u.id: u for u in _clinic_users()}
    pairs = sorted(((row, people[row.supervisor_id], people[row.therapist_id]) for row in rows),
                   key=lambda p: (p[1].display_name.lower(), p[2].display_name.lower()))
    active = [u for u in people.values() if u.is_active]
    return render_template(
        "admin/assignments.html", pairs=pairs,
        supervisors=[u for u in active if u.is_supervisor],
        therapists=[u for u in active if u.is_therapist])


def _form_user(name: str, action: str) -> User:
    raw = request.form.get(name, "")
    if not raw.isdigit():
        record_now(action=action, outcome="denied", actor_user_id=current_user.id,
                   clinic_id=current_user.clinic_id, object_type="user", object_id=raw[:64])
        abort(404)
    return _staff_member(int(raw), action)


@bp.route("/assignments", methods=["POST"])
def create_assignment() -> Response:
    supervisor = _form_user("supervisor_id", "assignment.create")
    therapist = _form_user("therapist_id", "assignment.create")
    try:
        row = staff.assign_supervisor(db_session(), supervisor, therapist, now())
    except staff.StaffError as exc:
        _refused("assignment.create", exc, object_type="user", object_id=therapist.id)
    else:
        _record("assignment.create", object_type="assignment", object_id=row.id)
        db_session().commit()
        flash(_("%(supervisor)s now supervises %(therapist)s.",
                supervisor=supervisor.display_name, therapist=therapist.display_name), "info")
    return redirect(url_for(".assignments"))


@bp.route("/assignments/<int:assignment_id>/delete", methods=["POST"])
def delete_assignment(assignment_id: int) -> Response:
    store = db_session()
    row = store.get(SupervisorAssignment, assignment_id)
    if row is None or row.clinic_id != current_user.clinic_id:
        record_now(action="assignment.delete", outcome="denied", actor_user_id=current_user.id,
                   clinic_id=current_user.clinic_id, object_type="assignment",
                   object_id=assignment_id)
        abort(404)
    supervisor = store.get(User, row.supervisor_id)
    therapist = store.get(User, row.therapist_id)
    assert supervisor is not None and therapist is not None
    staff.unassign_supervisor(store, supervisor, therapist)
    _record("assignment.delete", object_type="assignment", object_id=assignment_id)
    store.commit()
    flash(_("%(supervisor)s no longer supervises %(therapist)s.",
            supervisor=supervisor.display_name, therapist=therapist.display_name), "info")
    return redirect(url_for(".assignments"))


# --- clients (by code only) --------------------------------------------------------------


@bp.route("/clients")
def clients() -> str:
    store = db_session()
    admin = _admin()
    # Only the code and the therapist: never the name, contacts or answers.
    query = (administered_clients(admin)
             .with_only_columns(Client.code, Client.therapist_id).order_by(Client.code))
    chosen = request.args.get("therapist", "")
    if chosen.isdigit():
        query = query.where(Client.therapist_id == int(chosen))
    rows = store.execute(query).all()
    people = {u.id: u for u in _clinic_users()}
    record_now(action="admin.clients.view", outcome="allowed", actor_user_id=admin.id,
               clinic_id=admin.clinic_id, object_type="page", object_id="admin.clients")
    return render_template(
        "admin/clients.html", rows=rows, people=people,
        therapists=[u for u in people.values() if u.is_active and u.is_therapist],
        filter_options=[u for u in people.values() if u.is_therapist],
        chosen=int(chosen) if chosen.isdigit() else None)


@bp.route("/clients/<code>/transfer", methods=["POST"])
def transfer(code: str) -> Response:
    store = db_session()
    person = store.scalar(administered_clients(_admin()).where(Client.code == code))
    if person is None:
        record_now(action="client.transfer", outcome="denied", actor_user_id=current_user.id,
                   clinic_id=current_user.clinic_id, object_type="client", object_id=code[:64])
        abort(404)
    target = _form_user("therapist_id", "client.transfer")
    try:
        staff.transfer_client(store, person, target, now())
    except staff.StaffError as exc:
        _refused("client.transfer", exc, client_id=person.id, object_type="user",
                 object_id=target.id)
    else:
        _record("client.transfer", client_id=person.id, object_type="user",
                object_id=target.id)
        store.commit()
        flash(_("%(code)s is now with %(name)s.", code=code, name=target.display_name),
              "info")
    back = request.form.get("back_therapist", "")
    return redirect(url_for(".clients", therapist=back) if back.isdigit()
                    else url_for(".clients"))


# --- clinic settings ---------------------------------------------------------------------


def _shown(value: Any) -> str:
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else str(value)


def _settings_sections() -> list[tuple[Any, list[tuple[str, Any, Any, str]]]]:
    sections = [(title, list(fields)) for title, fields in SETTINGS_SECTIONS]
    listed = {key for _title, fields in SETTINGS_SECTIONS for key, *_rest in fields}
    others = [(s.key, s.key, s.doc, "text") for s in clinic_settings.CLINIC_SETTINGS
              if s.key not in listed]
    if others:
        sections.append((_l("Other settings"), others))
    return [(title, [f for f in fields if f[0] == "timezone"
                     or f[0] in clinic_settings.BY_KEY]) for title, fields in sections]


def _instrument_problems(values: dict[str, Any]) -> dict[str, str]:
    """Batteries must name instruments that this installation knows."""
    known = {i.id for i in instrument_library(current_app)}
    found = {}
    battery = values.get("pre_battery")
    if isinstance(battery, list):
        unknown = sorted({e["instrument"] for e in battery if isinstance(e, dict)
                          and isinstance(e.get("instrument"), str)} - known)
        if unknown:
            found["pre_battery"] = _("Unknown instrument: %(ids)s.", ids=", ".join(unknown))
    post = values.get("post_instrument")
    if isinstance(post, str) and post and post not in known:
        found["post_instrument"] = _("Unknown instrument: %(ids)s.", ids=post)
    return found


@bp.route("/settings", methods=["GET", "POST"])
def settings() -> str | Response:
    store = db_session()
    clinic = _clinic()
    values = clinic_settings.current(clinic)
    shown = {key: _shown(value) for key, value in values.items()}
    shown["timezone"] = clinic.timezone
    errors: dict[str, str] = {}
    if request.method == "POST":
        parsed: dict[str, Any] = {}
        for setting in clinic_settings.CLINIC_SETTINGS:
            raw = request.form.get(setting.key)
            if raw is None:
                continue
            raw = raw.replace("\r\n", "\n").strip()
            shown[setting.key] = raw
            try:
                parsed[setting.key] = clinic_settings.parse(setting.key, raw)
            except clinic_settings.SettingError as exc:
                errors[setting.key] = str(exc)
        timezone = (request.form.get("timezone") or clinic.timezone).strip()
        shown["timezone"] = timezone
        errors.update({k: v for k, v in clinic_settings.problems(clinic, parsed).items()
                       if k not in errors})
        errors.update({k: v for k, v in _instrument_problems(parsed).items()
                       if k not in errors})
        changes = {k: v for k, v in parsed.items() if k not in errors and v != values[k]}
        moved = timezone != clinic.timezone
        if moved:
            try:
                clinic_settings.set_timezone(store, clinic, timezone)
            except clinic_settings.SettingError as exc:
                errors["timezone"] = str(exc)
        if not errors:
            clinic_settings.update(store, clinic, changes)  # checked above: cannot refuse
        if errors:
            store.rollback()
            record_now(action="clinic.settings.change", outcome="error",
                       actor_user_id=current_user.id, clinic_id=current_user.clinic_id,
                       object_type="clinic", object_id=clinic.id)
            flash(_("Nothing was saved: correct the fields marked below."), "error")
        else:
            if changes or moved:
                _record("clinic.settings.change", object_type="clinic", object_id=clinic.id)
            store.commit()
            flash(_("Settings saved.") if changes or moved else _("Nothing changed."), "info")
            if RECOMPUTE_KEYS & changes.keys():
                flash(_("Stored progress colours follow the new rules after "
                        "`outcome signals recompute` is run."), "info")
            return redirect(url_for(".settings"))
    library = sorted(instrument_library(current_app), key=lambda i: i.id)
    return render_template(
        "admin/settings.html", sections=_settings_sections(), shown=shown, errors=errors,
        weekdays=WEEKDAYS, timezones=sorted(zoneinfo.available_timezones()),
        instrument_ids=sorted({i.id: i for i in library}.items()))


# --- instrument licences -----------------------------------------------------------------


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
        record_now(action=action, outcome="denied", actor_user_id=current_user.id,
                   clinic_id=current_user.clinic_id, object_type="instrument",
                   object_id=instrument_id[:64])
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
        db_session().commit()
        flash(_("%(name)s is attested and can be used.", name=instrument.short_name), "info")
    return redirect(url_for(".instrument_list"))


@bp.route("/instruments/<instrument_id>/revoke", methods=["POST"])
def revoke(instrument_id: str) -> Response:
    instrument = _instrument(instrument_id, "instrument.revoke")
    try:
        instruments.revoke(db_session(), clinic=_clinic(), instrument_id=instrument.id,
                           admin=_admin(), now=now())
    except instruments.AttestationError as exc:
        _refused("instrument.revoke", exc, object_type="instrument", object_id=instrument.id)
    else:
        _record("instrument.revoke", object_type="instrument", object_id=instrument.id)
        db_session().commit()
        flash(_("The attestation for %(name)s is withdrawn; new links no longer ask for it.",
                name=instrument.short_name), "info")
    return redirect(url_for(".instrument_list"))


# --- API tokens --------------------------------------------------------------------------


@bp.route("/tokens")
def tokens(form: dict | None = None, errors: dict | None = None,
           created: tuple[ApiToken, str] | None = None) -> str:
    """The clinic's API tokens (never their secrets) and the form that creates one.

    ``created`` is the token just made and its secret, shown once on this response.
    """
    people = _clinic_users()
    return render_template(
        "admin/tokens.html", tokens=api_tokens.clinic_tokens(db_session(), _clinic()),
        people={u.id: u for u in people}, active=[u for u in people if u.is_active],
        status=api_tokens.token_status, at=now(), tz=_tz(), local=_local,
        scope_labels=SCOPE_LABELS,
        form=form or {"scopes": ["read"], "days": str(api_tokens.DEFAULT_DAYS)},
        errors=errors or {}, created=created, max_days=api_tokens.MAX_DAYS,
        name_max=api_tokens.NAME_MAX)


@bp.route("/tokens", methods=["POST"])
def create_token() -> str:
    """Create a token and show its secret on this response only (200, never a redirect:
    the secret must not travel through the session or a URL)."""
    form = request.form
    raw_days = (form.get("days") or "").strip()
    kept = {"name": form.get("name", ""), "user_id": form.get("user_id", ""),
            "scopes": form.getlist("scope"), "days": raw_days}
    user = _form_user("user_id", "api_token.create")  # another clinic's user: 404
    # Not a whole number (or absurdly long): 0, which the service refuses for the field.
    days = int(raw_days) if raw_days.isdecimal() and len(raw_days) <= 4 else 0
    try:
        token, secret = api_tokens.create_token(
            db_session(), clinic=_clinic(), user=user, name=form.get("name", ""),
            scopes=kept["scopes"], created_by=_admin(), now=now(), days=days)
    except api_tokens.TokenError as exc:
        _refused("api_token.create", exc, object_type="api_token")
        return tokens(form=kept, errors={exc.field or "form": message(exc)})
    _record("api_token.create", object_type="api_token", object_id=token.id)
    db_session().commit()
    flash(_("API token %(name)s created for %(user)s.", name=token.name,
            user=user.display_name), "info")
    return tokens(created=(token, secret))


@bp.route("/tokens/<int:token_id>/revoke", methods=["POST"])
def revoke_token(token_id: int) -> Response:
    """Revoke a token of the admin's clinic at once (another clinic's is a 404)."""
    store = db_session()
    token = store.get(ApiToken, token_id)
    if token is None or token.clinic_id != current_user.clinic_id:
        record_now(action="api_token.revoke", outcome="denied", actor_user_id=current_user.id,
                   clinic_id=current_user.clinic_id, object_type="api_token",
                   object_id=token_id)
        abort(404)
    name = token.name
    try:
        api_tokens.revoke_token(store, token, _admin(), now())
    except api_tokens.TokenError as exc:
        _refused("api_token.revoke", exc, object_type="api_token", object_id=token_id)
    else:
        _record("api_token.revoke", object_type="api_token", object_id=token_id)
        store.commit()
        flash(_("API token %(name)s is revoked; its next request is refused.", name=name),
              "info")
    return redirect(url_for(".tokens"))


# --- the audit log (read-only) -----------------------------------------------------------


def _day(raw: str, errors: dict[str, str], field: str) -> dt.date | None:
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        errors[field] = _("Give a date as YYYY-MM-DD.")
        return None


@bp.route("/audit")
def audit_log() -> str:
    store = db_session()
    clinic = _clinic()
    tz = zoneinfo.ZoneInfo(clinic.timezone)
    args = request.args
    errors: dict[str, str] = {}
    filters = {key: (args.get(key) or "").strip()
               for key in ("action", "outcome", "user", "client", "from", "to")}
    filters["client"] = filters["client"].upper()
    actor = aliased(User)
    query = (select(AuditEvent, actor.display_name, actor.email, Client.code)
             .outerjoin(actor, actor.id == AuditEvent.actor_user_id)
             .outerjoin(Client, Client.id == AuditEvent.client_id)
             .where(AuditEvent.clinic_id == clinic.id))
    if filters["action"]:
        query = query.where(AuditEvent.action == filters["action"])
    if filters["outcome"] in AUDIT_OUTCOMES:
        query = query.where(AuditEvent.outcome == filters["outcome"])
    if filters["user"].isdigit():
        query = query.where(AuditEvent.actor_user_id == int(filters["user"]))
    if filters["client"]:
        client_id = store.scalar(administered_clients(_admin())
                                 .with_only_columns(Client.id)
                                 .where(Client.code == filters["client"]))
        if client_id is None:
            errors["client"] = _("No client of this clinic has that code.")
        query = query.where(AuditEvent.client_id == (client_id or -1))
    start = _day(filters["from"], errors, "from")
    end = _day(filters["to"], errors, "to")
    if start:
        query = query.where(AuditEvent.occurred_dt >= dt.datetime.combine(
            start, dt.time(), tz).astimezone(dt.UTC))
    if end:
        query = query.where(AuditEvent.occurred_dt < dt.datetime.combine(
            end + dt.timedelta(days=1), dt.time(), tz).astimezone(dt.UTC))
    page = args.get("page", "1")
    page_number = max(int(page), 1) if page.isdigit() else 1
    rows = store.execute(query.order_by(AuditEvent.occurred_dt.desc(), AuditEvent.id.desc())
                         .limit(AUDIT_PAGE_SIZE + 1)
                         .offset((page_number - 1) * AUDIT_PAGE_SIZE)).all()
    has_more = len(rows) > AUDIT_PAGE_SIZE
    actions = store.scalars(select(AuditEvent.action).where(
        AuditEvent.clinic_id == clinic.id).distinct().order_by(AuditEvent.action)).all()
    record_now(action="audit.view", outcome="allowed", actor_user_id=current_user.id,
               clinic_id=clinic.id, object_type="page", object_id=page_number)
    kept = {k: v for k, v in filters.items() if v}
    return render_template(
        "admin/audit.html", rows=rows[:AUDIT_PAGE_SIZE], tz=tz, filters=filters,
        errors=errors, actions=actions, outcomes=AUDIT_OUTCOMES, outcome_labels=OUTCOME_LABELS,
        users=_clinic_users(), page=page_number, has_more=has_more, kept=kept,
        timezone=clinic.timezone)


# --- scheduled reports and e-mail ----------------------------------------------------------


@bp.route("/deliveries")
def deliveries() -> str:
    """Digest runs and e-mail of this clinic: what went out, what is retrying, what failed.

    Recipients are staff; no client data is shown (e-mail subjects carry none).
    """
    store = db_session()
    clinic = _clinic()
    runs = store.execute(
        select(ReportRun, User.display_name).join(User, User.id == ReportRun.recipient_user_id)
        .where(User.clinic_id == clinic.id)
        .order_by(ReportRun.created_dt.desc(), ReportRun.id.desc()).limit(100)).all()
    emails = store.scalars(
        select(OutboundEmail).where(OutboundEmail.clinic_id == clinic.id,
                                    OutboundEmail.status != "sent")
        .order_by(OutboundEmail.created_dt.desc()).limit(100)).all()
    return render_template("admin/deliveries.html", runs=runs, emails=emails, tz=_tz(),
                           local=_local)
