"""The pre-session battery as a form (issue 17): which questionnaires are asked before a
session, in what order, and how often.

Instead of the raw JSON of the ``pre_battery`` setting, the admin sees one row per
questionnaire that can be asked before a session (installed wording, licence attested
where one is needed; alliance measures are asked after the session, elsewhere): a box
to ask it, its position, and how often (every session, every n-th session, at intake and
the last booked session, at intake only). The stored value stays the ``pre_battery``
setting, validated by :mod:`outcome.services.clinic_settings`; nothing is saved while a
row is wrong. An old ``month`` entry is shown, and saved, as every 4th session.
"""

from __future__ import annotations

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
from werkzeug.wrappers import Response

from outcome.core.battery import NTH_MAX
from outcome.core.battery import NTH_MIN
from outcome.core.inputs import ascii_int
from outcome.extensions import instrument_library
from outcome.services import clinic_settings
from outcome.services.instruments import instrument_statuses
from outcome.web.admin.blueprint import _clinic
from outcome.web.admin.blueprint import _record
from outcome.web.admin.blueprint import bp
from outcome.web.database import audit_event
from outcome.web.database import db_session
from outcome.web.database import discard_changes

FREQUENCY_LABELS = {
    "session": _l("Every session"),
    "nth": _l("Every n-th session (the first included)"),
    "intake_and_end": _l("At intake and at the last booked session"),
    "intake": _l("At intake only"),
}
MAX_POSITION = 99


def _rows() -> list[dict[str, Any]]:
    """One row per questionnaire the form offers: available ones that are not alliance
    measures, and any already in the battery (an unavailable one is marked). Support-check
    measures (role "support") are never offered."""
    clinic = _clinic()
    library = instrument_library(current_app)
    battery = clinic_settings.current(clinic)["pre_battery"]
    chosen: dict[str, tuple[int | None, dict[str, Any]]] = {
        entry["instrument"]: (index, entry) for index, entry in enumerate(battery)}
    rows = []
    for status in instrument_statuses(db_session(), clinic.id, library):
        instrument = status.instrument
        if instrument.role == "alliance" and instrument.id not in chosen:
            continue
        if instrument.role == "support":  # issue 19: asked only in a support check
            continue
        if not status.is_available and instrument.id not in chosen:
            continue
        index: int | None
        entry: dict[str, Any]
        index, entry = chosen.get(instrument.id, (None, {}))
        every = entry.get("every", "session")
        n = entry.get("n", 3)
        if every == "month":  # before issue 17: the first session of each four
            every, n = "nth", 4
        rows.append({"id": instrument.id, "name": instrument.short_name,
                     "title": instrument.name, "available": status.is_available,
                     "status": status.status, "included": index is not None,
                     "position": str(index + 1) if index is not None else "",
                     "every": every, "n": str(n), "order": index})
    rows.sort(key=lambda r: (r["order"] is None, r["order"] or 0, r["id"]))
    return rows


def _parse(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The battery the form asks for, and the problems by field id."""
    errors: dict[str, str] = {}
    chosen: list[tuple[int, int, dict[str, Any]]] = []
    for number, row in enumerate(rows):
        key = row["id"]
        row["included"] = request.form.get(f"include-{key}") == "yes"
        row["position"] = (request.form.get(f"position-{key}") or "").strip()[:8]
        row["every"] = request.form.get(f"every-{key}") or "session"
        row["n"] = (request.form.get(f"n-{key}") or "").strip()[:8]
        if not row["included"]:
            continue
        if not row["available"]:
            errors[f"include-{key}"] = _(
                "%(name)s cannot be asked: its wording is not installed or its licence "
                "not attested.", name=row["name"])
            continue
        position = ascii_int(row["position"], maximum=MAX_POSITION) if row["position"] \
            else number + 1
        if position is None or position < 1:
            errors[f"position-{key}"] = _(
                "%(name)s: the position must be a whole number from 1 to %(max)s.",
                name=row["name"], max=MAX_POSITION)
            continue
        if row["every"] not in FREQUENCY_LABELS:
            errors[f"every-{key}"] = _("%(name)s: choose how often it is asked.",
                                       name=row["name"])
            continue
        entry: dict[str, Any] = {"instrument": key, "every": row["every"]}
        if row["every"] == "nth":
            n = ascii_int(row["n"], maximum=NTH_MAX)
            if n is None or n < NTH_MIN:
                errors[f"n-{key}"] = _(
                    "%(name)s: every n-th session needs n, a whole number from %(min)s "
                    "to %(max)s.", name=row["name"], min=NTH_MIN, max=NTH_MAX)
                continue
            entry["n"] = n
        chosen.append((position, number, entry))
    return [entry for _p, _n, entry in sorted(chosen, key=lambda c: (c[0], c[1]))], errors


@bp.route("/battery", methods=["GET", "POST"])
def battery() -> str | Response | tuple[str, int]:
    clinic = _clinic()
    rows = _rows()
    errors: dict[str, str] = {}
    if request.method == "POST":
        value, errors = _parse(rows)
        if not errors:
            found = clinic_settings.problems(clinic, {"pre_battery": value})
            if found:
                errors["form"] = next(iter(found.values()))
        if errors:
            discard_changes()
            audit_event(action="clinic.battery.change", outcome="error",
                        actor_user_id=current_user.id, clinic_id=current_user.clinic_id,
                        object_type="clinic", object_id=clinic.id, even_if_failed=True)
            return render_template("admin/battery.html", rows=rows, errors=errors,
                                   labels=FREQUENCY_LABELS, nth_min=NTH_MIN,
                                   nth_max=NTH_MAX), 400
        if value != clinic_settings.current(clinic)["pre_battery"]:
            clinic_settings.update(db_session(), clinic, {"pre_battery": value})
            _record("clinic.battery.change", object_type="clinic", object_id=clinic.id)
            flash(_("The questionnaires before each session are saved; links made from now "
                    "on ask for them."), "info")
        else:
            flash(_("Nothing changed."), "info")
        return redirect(url_for(".battery"))
    return render_template("admin/battery.html", rows=rows, errors=errors,
                           labels=FREQUENCY_LABELS, nth_min=NTH_MIN, nth_max=NTH_MAX)
