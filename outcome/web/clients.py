"""Clients and episodes in the browser (issue 17): register, edit, open and end episodes.

The same services as the API (:mod:`outcome.services.clients`): the rules live there
once, these views only turn a form into a call. A therapist registers clients for
themselves (an admin registers them for a therapist on the admin pages, by code only:
:mod:`outcome.web.admin.clients`); only the client's own therapist edits them, opens a
new episode or ends one. Each page or form about a client writes one audit record
through :func:`outcome.web.scoping.own_client`, allowed or denied; a registration writes
``client.create``. A refused form is a 400 with a message beside each field at fault,
and nothing is stored. Ending an episode is confirmed on a second page (no script
needed) before anything changes.
"""

from __future__ import annotations

import datetime as dt
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
from flask_login import login_required
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import Field
from wtforms import RadioField
from wtforms import SelectChoice  # type: ignore[attr-defined]  # wtforms 3.2+, newer than its stubs
from wtforms import SelectField
from wtforms import StringField
from wtforms.validators import Length

from outcome.core import inputs
from outcome.core.episode_change import PROBLEM_DESCRIPTORS
from outcome.extensions import instrument_library
from outcome.models import Client
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import User
from outcome.models.care import END_REASONS
from outcome.services import audit
from outcome.services.clients import EMAIL_MAX
from outcome.services.clients import END_REASON_LABELS
from outcome.services.clients import LOCALES
from outcome.services.clients import NAME_MAX
from outcome.services.clients import PHONE_MAX
from outcome.services.clients import CareError
from outcome.services.clients import close_episode
from outcome.services.clients import open_episode
from outcome.services.clients import register_client
from outcome.services.clients import update_client
from outcome.services.episode_change import outcome_measures
from outcome.services.episode_change import set_episode_measures
from outcome.services.staff import StaffError
from outcome.web.clock import now
from outcome.web.database import audit_event
from outcome.web.database import db_session
from outcome.web.database import discard_changes
from outcome.web.scoping import own_client

bp = Blueprint("clients", __name__, url_prefix="/clients")

LANGUAGE_LABELS = {"en": _l("English"), "ru": _l("Russian")}
DESCRIPTOR_LABELS = {
    "depression": _l("Depression"), "generalised_anxiety": _l("Generalised anxiety"),
    "mixed": _l("Mixed anxiety and depression"), "none": _l("Another problem, or unspecified"),
    "social_anxiety": _l("Social anxiety (SPIN)"), "ptsd": _l("PTSD (IES-R)"),
    "agoraphobia": _l("Agoraphobia (MI)"), "panic": _l("Panic (PDSS)"),
    "ocd": _l("OCD (OCI)"), "health_anxiety": _l("Health anxiety (HAI)")}
assert set(DESCRIPTOR_LABELS) == set(PROBLEM_DESCRIPTORS)


def end_reason_label(reason: str | None) -> str:
    """An episode's end reason in the reader's language ("" for an open episode)."""
    return _(END_REASON_LABELS[reason]) if reason in END_REASON_LABELS else (reason or "")


def clinic_today(clinic_id: int) -> dt.date:
    """Today in the clinic's calendar (intake and end dates default to it)."""
    clinic = db_session().get(Clinic, clinic_id)
    assert clinic is not None
    return now().astimezone(zoneinfo.ZoneInfo(clinic.timezone)).date()


# --- forms -----------------------------------------------------------------------------------


class ContactForm(FlaskForm):
    """A client's name, contacts and language; the service checks them
    (:func:`outcome.services.clients.update_client`), these only bound their length."""

    name = StringField(_l("Name"), validators=[Length(max=NAME_MAX)],
                       render_kw={"maxlength": NAME_MAX, "autocomplete": "off"})
    email = StringField(_l("E-mail (optional)"), validators=[Length(max=EMAIL_MAX)],
                        render_kw={"maxlength": EMAIL_MAX, "type": "email",
                                   "autocomplete": "off"})
    phone = StringField(_l("Phone (optional)"), validators=[Length(max=PHONE_MAX)],
                        render_kw={"maxlength": PHONE_MAX, "type": "tel",
                                   "autocomplete": "off"})
    locale = SelectField(_l("Language of the questionnaires and messages"),
                         choices=[SelectChoice(code, LANGUAGE_LABELS[code]) for code in LOCALES],
                         validate_choice=True)


class EpisodeForm(FlaskForm):
    """An episode's intake date, primary measure and problem descriptor."""

    opened_on = StringField(_l("Intake date (YYYY-MM-DD)"), render_kw={"type": "date"})
    primary = SelectField(_l("Primary outcome measure"), validate_choice=True)
    descriptor = SelectField(_l("Problem descriptor"), validate_choice=True,
                             choices=[SelectChoice("", _l("Not recorded")),
                                      *(SelectChoice(key, label)
                                        for key, label in DESCRIPTOR_LABELS.items())])

    def fill_measures(self) -> None:
        self.primary.choices = [SelectChoice("", _("The clinic's default")), *(
            SelectChoice(key, name)
            for key, name in outcome_measures(instrument_library(current_app)))]


class RegisterForm(ContactForm, EpisodeForm):
    """Registration: the contact fields and the first episode's."""


class EndEpisodeForm(FlaskForm):
    reason = RadioField(_l("Why the episode ended"), validate_choice=True,
                        choices=[SelectChoice(key, _l(END_REASON_LABELS[key]))
                                 for key in END_REASONS])
    closed_on = StringField(_l("Last day of the episode (YYYY-MM-DD)"),
                            render_kw={"type": "date"})


def field_date(field: Field, default: dt.date) -> dt.date | None:
    """The field's date (``default`` if blank), or None with a message on the field."""
    raw = (field.data or "").strip()
    if not raw:
        return default
    try:
        return inputs.parse_date(raw)
    except inputs.InputError:
        field.errors = [*field.errors, _("Give a date as YYYY-MM-DD, from 1900 to 2999.")]
        return None


def refuse(form: FlaskForm, exc: StaffError, fallback: str) -> None:
    """Put a service's refusal beside the field it names (``fallback`` if none)."""
    discard_changes()
    field = getattr(form, exc.field or fallback, None) or getattr(form, fallback)
    field.errors = [*field.errors, _(exc.message, **exc.params)]


def has_errors(form: FlaskForm) -> bool:
    return any(field.errors for field in form)


def _bad(template: str, **context: Any) -> tuple[str, int]:
    """The form again with its messages: a 400, nothing stored."""
    discard_changes()
    return render_template(template, **context), 400


# --- registering a client ----------------------------------------------------------------


@bp.route("/new", methods=["GET", "POST"])
@login_required
def register() -> str | Response | tuple[str, int]:
    """A therapist registers a client of their own; the first episode opens with it."""
    me: User = current_user._get_current_object()
    if not (me.is_active and me.is_therapist):
        audit_event(action="client.create", outcome="denied", actor_user_id=me.id,
                    clinic_id=me.clinic_id, object_type="page", object_id="clients.register",
                    even_if_failed=True)
        abort(404)
    form = RegisterForm()
    form.fill_measures()
    today = clinic_today(me.clinic_id)
    if request.method == "GET":
        form.opened_on.data = today.isoformat()
        return render_template("clients/register.html", form=form)
    form.validate()
    opened_on = field_date(form.opened_on, today)
    if not has_errors(form) and opened_on is not None:
        try:
            client, _episode = register_client(
                db_session(), me, by=me, name=form.name.data or "", opened_on=opened_on,
                email=form.email.data, phone=form.phone.data, locale=form.locale.data or "en",
                primary=form.primary.data or None, descriptor=form.descriptor.data or None,
                library=instrument_library(current_app), now=now())
        except CareError as exc:
            refuse(form, exc, "name")
        else:
            audit.record(db_session(), action="client.create", outcome="allowed", now=now(),
                         clinic_id=me.clinic_id, client_id=client.id, actor_user_id=me.id,
                         object_type="client", object_id=client.code,
                         ip_address=request.remote_addr)
            flash(_("%(name)s is registered (%(code)s) and their first episode is open.",
                    name=client.name, code=client.code), "info")
            return redirect(url_for("record.page", code=client.code))
    return _bad("clients/register.html", form=form)


# --- editing a client ------------------------------------------------------------------------


@bp.route("/<code>/edit", methods=["GET", "POST"])
@login_required
def edit(code: str) -> str | Response | tuple[str, int]:
    """The client's name, contacts and language; only their own therapist."""
    client, _episode, _clinic = own_client(
        code, "client.edit" if request.method == "POST" else "client.edit.view")
    form = ContactForm(obj=client if request.method == "GET" else None)
    if request.method == "GET":
        return render_template("clients/edit.html", form=form, client=client)
    form.validate()
    if not has_errors(form):
        try:
            changed = update_client(db_session(), client, name=form.name.data or "",
                                    email=form.email.data, phone=form.phone.data,
                                    locale=form.locale.data or "en")
        except CareError as exc:
            refuse(form, exc, "name")
        else:
            flash(_("Saved.") if changed else _("Nothing changed."), "info")
            return redirect(url_for("record.page", code=client.code))
    return _bad("clients/edit.html", form=form, client=client)


# --- a new episode -------------------------------------------------------------------------


@bp.route("/<code>/episodes/new", methods=["GET", "POST"])
@login_required
def new_episode(code: str) -> str | Response | tuple[str, int]:
    """Open a new episode for a client whose last episode has ended."""
    client, episode, clinic = own_client(
        code, "episode.open" if request.method == "POST" else "episode.open.view")
    form = EpisodeForm()
    form.fill_measures()
    today = clinic_today(clinic.id)
    context = {"form": form, "client": client, "open_episode": episode}
    if request.method == "GET":
        form.opened_on.data = today.isoformat()
        return render_template("clients/new_episode.html", **context)
    form.validate()
    opened_on = field_date(form.opened_on, today)
    if not has_errors(form) and opened_on is not None:
        try:
            new = open_episode(db_session(), client, opened_on)
        except CareError as exc:
            refuse(form, exc, "opened_on")
        else:
            if form.primary.data or form.descriptor.data:
                set_episode_measures(db_session(), new, primary=form.primary.data,
                                     descriptor=form.descriptor.data,
                                     library=instrument_library(current_app), now=now())
            flash(_("A new episode is open from %(date)s.", date=new.opened_on.isoformat()),
                  "info")
            return redirect(url_for("record.page", code=client.code))
    return _bad("clients/new_episode.html", **context)


# --- ending an episode -----------------------------------------------------------------------


def _episode_check(episode_id: int):
    def check(client: Client) -> bool:
        episode = db_session().get(Episode, episode_id)
        return episode is not None and episode.client_id == client.id
    return check


@bp.route("/<code>/episodes/<int:episode_id>/end", methods=["GET", "POST"])
@login_required
def end_episode(code: str, episode_id: int) -> str | Response | tuple[str, int]:
    """End an episode with a reason, in two steps: the form, then a page that asks to
    confirm (``confirm=yes`` ends it). Only the client's own therapist; an episode that
    has ended already is refused."""
    step = ("episode.end" if request.form.get("confirm") == "yes"
            else "episode.end.review" if request.method == "POST" else "episode.end.view")
    client, _open, clinic = own_client(code, step, check=_episode_check(episode_id))
    episode = db_session().get(Episode, episode_id)
    assert episode is not None
    form = EndEpisodeForm()
    today = clinic_today(clinic.id)
    context: dict[str, Any] = {"form": form, "client": client, "episode": episode}
    if episode.closed_on is not None:  # shown (GET), or refused with nothing stored (POST)
        form.reason.errors = [_("This episode has ended already (%(date)s).",
                                date=episode.closed_on.isoformat())]
        if request.method == "GET":
            return render_template("clients/end_episode.html", **context)
        return _bad("clients/end_episode.html", **context)
    if request.method == "GET":
        form.closed_on.data = today.isoformat()
        return render_template("clients/end_episode.html", **context)
    form.validate()
    closed_on = field_date(form.closed_on, today)
    if not form.reason.data:
        form.reason.errors = [_("Choose why the episode ended.")]
    if closed_on is not None and closed_on < episode.opened_on:
        form.closed_on.errors = [*form.closed_on.errors, _(
            "An episode cannot end before it opened (%(date)s).",
            date=episode.opened_on.isoformat())]
    if has_errors(form) or closed_on is None:
        return _bad("clients/end_episode.html", **context)
    if request.form.get("confirm") != "yes":
        return render_template("clients/end_confirm.html", reason=form.reason.data,
                               reason_label=end_reason_label(form.reason.data),
                               closed_on=closed_on, **context)
    try:
        close_episode(db_session(), episode, closed_on=closed_on, end_reason=form.reason.data,
                      library=instrument_library(current_app), now=now())
    except CareError as exc:
        refuse(form, exc, "reason")
        return _bad("clients/end_episode.html", **context)
    flash(_("The episode has ended (%(reason)s). Unused questionnaire links are withdrawn "
            "and later sessions cancelled.", reason=end_reason_label(episode.end_reason)),
          "info")
    return redirect(url_for("record.page", code=client.code))


@bp.app_template_global("end_reason_label")
def _end_reason_label(reason: str | None) -> str:
    return end_reason_label(reason)
