"""The clinic's settings form: time zone, digest, questionnaires, links, crisis text,
progress rules and staff sessions. Values are parsed and checked by
:mod:`outcome.services.clinic_settings`; nothing is saved while any field is wrong.
"""

from __future__ import annotations

import json
import zoneinfo
from typing import Any

from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from outcome.extensions import instrument_library
from outcome.models.clinic import ROLES
from outcome.models.clinic import Clinic
from outcome.services import clinic_settings
from outcome.services import retention
from outcome.web.admin.blueprint import _clinic
from outcome.web.admin.blueprint import _record
from outcome.web.admin.blueprint import bp
from outcome.web.admin.staff import ROLE_LABELS
from outcome.web.clock import now
from outcome.web.database import audit_event
from outcome.web.database import db_session
from outcome.web.database import discard_changes

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
            'session, nth (with "n" from 2 to 52), intake_and_end, intake or month (as nth '
            'with n 4). The form linked at the top of this page is easier.'), "json"),
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
        ("model_min_episodes", _l("Episodes before expected curves"),
         _l("Expected recovery curves replace the simple rules after this many episodes "
            "with three or more measures, ongoing ones included (at least 10)."), "int"),
        ("rational_from_session", _l("Simple rules: from session"),
         _l("The session from which too little improvement is yellow (at least 2)."),
         "int"),
        ("rational_fraction", _l("Simple rules: share of reliable change"),
         _l("Yellow below this share of the reliable-change threshold (above 0, at most "
            "1)."), "decimal"),
        ("rational_red_session", _l("Simple rules: red from session"),
         _l("From this session, a client still in the clinical range without reliable "
            "improvement is red (at least 2; project default 8, unverified)."), "int"),
        ("repair_window", _l("Sessions to repair a rupture"),
         _l("A rupture not repaired within this many sessions counts as unrepaired (1 to "
            "10)."), "int"),
        ("discrepancy_points", _l("Alliance discrepancy (points)"),
         _l("How much higher the therapist's alliance rating must be than the client's to "
            "flag a discrepancy (above 0)."), "decimal"),
    )),
    (_l("Change since intake"), (
        ("primary_measure", _l("Primary outcome measure"),
         _l("An episode's change since intake is this measure's category (a therapist may "
            "choose another for one episode)."), "instrument"),
        ("paired_rules", _l("NHS Talking Therapies paired rules"),
         _l("On: with PHQ-9 as the primary measure, an episode's change is the paired "
            "result of PHQ-9 and its anxiety measure (GAD-7 unless the episode's problem "
            "names another)."), "boolean"),
    )),
    (_l("Staff sessions"), (
        ("staff_idle_minutes", _l("Sign out after inactivity (minutes)"),
         _l("From 5 to 240."), "int"),
        ("staff_session_hours", _l("Sign in again after (hours)"),
         _l("However active; from 1 to 24."), "int"),
    )),
    # issue 17: mail and escalation
    (_l("Urgent answers"), (
        ("urgent_escalation_hours", _l("Escalate an unacknowledged urgent answer after "
                                       "(hours)"),
         _l("The therapist is reminded after this many hours; after twice as long, their "
            "supervisors are told (the admins when there is none). From 1 to 168."), "int"),
    )),
    # issue 19: after the signal
    (_l("After a signal"), (
        ("support_check_auto", _l("Send support checks automatically"),
         _l("On: when an episode turns red, reliably deteriorates or has an unrepaired "
            "alliance rupture, a support check is e-mailed to the client (when they have an "
            "address). Off: the therapist starts it."), "boolean"),
        ("support_alliance_recent_days", _l("Reuse an alliance score up to (days old)"),
         _l("A support check does not ask about the alliance again when the episode has "
            "an alliance score this recent. From 0 to 90."), "int"),
        ("plan_review_days", _l("Review an action plan after (days)"),
         _l("The review date a new plan is given unless the therapist chooses another. "
            "From 7 to 90."), "int"),
        ("plan_overdue_days", _l("Supervisor's agenda: no plan after (days)"),
         _l("A not-on-track or unrepaired-rupture case with no action plan this many days "
            "after its alert goes on the supervisor's agenda. From 1 to 60."), "int"),
    )),
    # issue 20: erasure and retention
    (_l("Retention"), (
        ("retention_years", _l("Keep client data after care ends (years)"),
         _l("A client's personal data and answers are erased this many years after their "
            "last episode ended, after a dry-run notice to admins; 0 keeps them until "
            "erased by hand. From 0 to 100."), "int"),
        ("retention_notice_days", _l("Notice before retention erases (days)"),
         _l("A client is erased only this many days after a dry run first listed them on "
            "the Retention page. From 1 to 90."), "int"),
    )),
    # issue 20: consent
    (_l("Client consent"), (
        ("consent_online", _l("Ask for consent on the client's phone"),
         _l("On: before their first questionnaire each client reads the clinic's consent "
            "text (edited under Consent text) and agrees or declines; nothing is stored "
            "without an agreement. Off only where the clinic records consent another way "
            "(a decision recorded on paper can be entered on the client's page)."),
         "boolean"),
    )),
)
# issue 20: two-factor. A list of roles, edited as checkboxes (widget "roles").
SETTINGS_SECTIONS += (
    (_l("Sign-in"), (
        ("two_factor_roles", _l("Roles that must use a second factor"),
         _l("After their password, staff with a ticked role sign in with a code from an "
            "authenticator app or a passkey; without one yet, they set it up at their next "
            "sign-in before any other page opens. An admin can reset a lost one on the "
            "staff member's page."), "roles"),
    )),
)
# Settings whose value is a list of roles, sent as checkboxes with a marker field
# ``<key>__shown`` (an unticked checkbox sends nothing, so "none ticked" needs it).
ROLE_LIST_KEYS = frozenset({"two_factor_roles"})

# Edited on their own form (outcome.web.admin.crisis), not as text here.
CRISIS_FORM_KEYS = frozenset({"crisis_contacts", "reading_hours"})
# Changing these changes stored progress colours only after a recomputation.
RECOMPUTE_KEYS = frozenset({"colour_green_max", "colour_yellow_max", "model_min_episodes",
                            "rational_from_session", "rational_fraction",
                            "rational_red_session", "repair_window",
                            "discrepancy_points", "primary_measure", "paired_rules"})


def _shown(value: Any) -> str:
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else str(value)


def _settings_sections() -> list[tuple[Any, list[tuple[str, Any, Any, str]]]]:
    sections = [(title, list(fields)) for title, fields in SETTINGS_SECTIONS]
    listed = {key for _title, fields in SETTINGS_SECTIONS for key, *_rest in fields}
    others = [(s.key, s.key, s.doc, "text") for s in clinic_settings.CLINIC_SETTINGS
              if s.key not in listed and s.key not in CRISIS_FORM_KEYS]
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
    primary = values.get("primary_measure")
    if isinstance(primary, str) and primary:
        role = next((i.role for i in instrument_library(current_app) if i.id == primary), None)
        if role is None:
            found["primary_measure"] = _("Unknown instrument: %(ids)s.", ids=primary)
        elif role != "outcome":
            found["primary_measure"] = _("%(id)s is not an outcome measure.", id=primary)
    post = values.get("post_instrument")
    if isinstance(post, str) and post and post not in known:
        found["post_instrument"] = _("Unknown instrument: %(ids)s.", ids=post)
    elif isinstance(post, str) and post:
        role = next(i.role for i in instrument_library(current_app) if i.id == post)
        if role != "alliance":  # a support check's measure is asked only in a check
            found["post_instrument"] = _("%(id)s is not an alliance measure.", id=post)
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
            if setting.key in ROLE_LIST_KEYS:
                sent = request.form.get(f"{setting.key}__shown") is not None
                raw = json.dumps(request.form.getlist(setting.key)) if sent else None
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
            discard_changes()
            audit_event(action="clinic.settings.change", outcome="error",
                        actor_user_id=current_user.id, clinic_id=current_user.clinic_id,
                        object_type="clinic", object_id=clinic.id, even_if_failed=True)
            flash(_("Nothing was saved: correct the fields marked below."), "error")
        else:
            if changes or moved:
                _record("clinic.settings.change", object_type="clinic", object_id=clinic.id)
            flash(_("Settings saved.") if changes or moved else _("Nothing changed."), "info")
            if RECOMPUTE_KEYS & changes.keys():
                flash(_("Stored progress colours follow the new rules after "
                        "`outcome signals recompute` is run."), "info")
            return redirect(url_for(".settings"))
    library = sorted(instrument_library(current_app), key=lambda i: i.id)
    return render_template(
        "admin/settings.html", sections=_settings_sections(), shown=shown, errors=errors,
        roles=ROLES, role_labels=ROLE_LABELS,
        weekdays=WEEKDAYS, timezones=sorted(zoneinfo.available_timezones()),
        instrument_ids=sorted({i.id: i for i in library}.items()),
        retention_due=_retention_due(store, clinic))


def _retention_due(store: Session, clinic: Clinic) -> int | None:
    """How many clients the clinic's saved retention setting makes due today (issue 20),
    or None when retention is off."""
    if retention.settings(clinic)[0] <= 0:
        return None
    return len(retention.due_clients(store, clinic, retention.clinic_today(clinic, now())))
