"""The supervisor's pages: supervisee figures, de-identified caseloads and clients, digests.

Supervisors see client codes, never names, contact details, item answers or goal
wording. Anyone who is not a supervisor, and any therapist or client outside the
supervisor's supervisees, gets 404 (with a denied audit record).
"""

from __future__ import annotations

from flask import Blueprint
from flask import abort
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from flask_login import login_required
from sqlalchemy import select
from werkzeug.wrappers import Response

from outcome.core.inputs import InputError
from outcome.core.inputs import parse_date
from outcome.extensions import instrument_library
from outcome.models import ActionPlan
from outcome.models import Clinic
from outcome.models import User
from outcome.services.caseload import basis_notices
from outcome.services.caseload import caseload
from outcome.services.caseload import past_clients
from outcome.services.caseload import rule_based_notices
from outcome.services.client_record import client_record
from outcome.services.digests.archive import archived_digest
from outcome.services.digests.archive import digest_archive
from outcome.services.fidelity import FEW_CASES
from outcome.services.fidelity import PERIOD_WEEKS
from outcome.services.fidelity import fidelity
from outcome.services.fidelity import last_weeks
from outcome.services.supervision import ended_by_reason
from outcome.services.supervision import is_supervisee
from outcome.services.supervision import overview
from outcome.services.supervision import supervisees
from outcome.services.supervision_agenda import FOLLOW_UP_MAX_DAYS
from outcome.services.supervision_agenda import NOTE_MAX
from outcome.services.supervision_agenda import ReviewError
from outcome.services.supervision_agenda import agenda
from outcome.services.supervision_agenda import clinic_today
from outcome.services.supervision_agenda import record_review
from outcome.services.supervision_agenda import reviewable_episode
from outcome.web.clock import now
from outcome.web.database import audit_event
from outcome.web.database import db_session
from outcome.web.database import discard_changes
from outcome.web.home import caseload_filter
from outcome.web.home import caseload_sort
from outcome.web.home import sort_links
from outcome.web.notices import supervisor_notices
from outcome.web.record import chart_svgs
from outcome.web.record import chosen_episode
from outcome.web.record import episode_in_url
from outcome.web.scoping import archived_download
from outcome.web.scoping import attempted_client_id
from outcome.web.scoping import client_episodes
from outcome.web.scoping import role_only
from outcome.web.scoping import supervised_client
from outcome.web.support import DOMAIN_LABELS

bp = Blueprint("supervision", __name__, url_prefix="/supervision")


def _supervisor_only(action: str, **fields) -> None:
    role_only(current_user.is_supervisor, action, **fields)


def _supervisor_page(action: str) -> None:
    """A supervisor's own page (nothing about one client): refused as 404 for any other
    role, and the reading audited as ``action`` allowed."""
    _supervisor_only(action)
    audit_event(action=action, outcome="allowed", actor_user_id=current_user.id,
                clinic_id=current_user.clinic_id, even_if_failed=True)


@bp.route("/")
@login_required
def index() -> str:
    _supervisor_page("supervision.view")
    store = db_session()
    figures = overview(store, current_user, instrument_library(current_app), now())
    return render_template("supervision/index.html", overview=figures,
                           ended_reasons=ended_by_reason(store, current_user),
                           **supervisor_notices(store, current_user, now()))


@bp.route("/therapists/<int:therapist_id>")
@login_required
def therapist(therapist_id: int) -> str:
    _supervisor_only("supervision.caseload.view", object_type="user", object_id=therapist_id)
    store = db_session()
    if not is_supervisee(store, current_user, therapist_id):
        audit_event(action="supervision.caseload.view", outcome="denied",
                    actor_user_id=current_user.id, clinic_id=current_user.clinic_id,
                    object_type="user", object_id=therapist_id, even_if_failed=True)
        abort(404)
    audit_event(action="supervision.caseload.view", outcome="allowed",
                actor_user_id=current_user.id, clinic_id=current_user.clinic_id, object_type="user",
                object_id=therapist_id, even_if_failed=True)
    supervisee = store.get(User, therapist_id)
    library = instrument_library(current_app)
    filters = caseload_filter(request.args)
    sort = caseload_sort(request.args)
    scales = {i.id: i.primary_range for i in library}
    rows = (caseload(store, current_user, therapist_id=therapist_id, filters=filters,
                     sort=sort, scales=scales, now=now(), locale=str(get_locale()),
                     library=library)
            if filters.shows_current else [])
    ended = (past_clients(store, current_user, therapist_id=therapist_id,
                          search=filters.search, locale=str(get_locale()))
             if filters.shows_ended else None)
    names = {i.id: i.short_name for i in library}
    return render_template("supervision/caseload.html", supervisee=supervisee,
                           caseload=rows, filters=filters, scales=scales,
                           past_clients=ended, episode_filter=True,
                           instrument_names=names, sorting=sort_links(request.args, sort),
                           notices=rule_based_notices((m for r in rows for m in r.rule_based),
                                                      names, str(get_locale()))
                           + basis_notices(rows))


@bp.route("/clients/<code>")
@login_required
def client(code: str) -> str:
    _supervisor_only("supervision.client.view", object_type="client", object_id=code,
                     client_id=attempted_client_id(code))
    store = db_session()
    ids = [p.id for p in supervisees(store, current_user)]
    person = supervised_client(code, "supervision.client.view", ids, check=episode_in_url)
    episodes = client_episodes(person)
    episode = chosen_episode(episodes)
    record = (client_record(store, episode, instrument_library(current_app), full=False,
                            locale=str(get_locale()))
              if episode else None)
    therapist_name = store.scalar(select(User.display_name).where(
        User.id == person.therapist_id))
    return render_template("supervision/client.html", person=person, episodes=episodes,
                           episode=episode, record=record, therapist_name=therapist_name,
                           therapist_id=person.therapist_id,
                           charts=chart_svgs(record) if record else None)


@bp.route("/digests")
@login_required
def digests() -> str:
    _supervisor_only("supervision.digests.view")
    store = db_session()
    clinic = store.get(Clinic, current_user.clinic_id)
    return render_template("supervision/digests.html",
                           runs=digest_archive(store, current_user), clinic=clinic)


@bp.route("/digests/<int:run_id>.pdf")
@login_required
def digest_pdf(run_id: int) -> Response:
    """The archived digest, for the supervisor it was produced for and nobody else."""
    _supervisor_only("supervision.digest.download", object_type="report_run",
                     object_id=run_id)
    return archived_download(archived_digest(db_session(), current_user, run_id),
                             "supervision.digest.download", run_id)


# --- issue 19: the agenda and the fidelity figures ----------------------------------------


def _review_messages() -> dict[str, str]:
    """A refused review's message for the field it names, in the reader's language."""
    return {
        "plan": _("This plan is not an open plan of this case."),
        "plan_agreed": _("There is no plan to agree: this case has none yet."),
        "follow_up_on": _("The follow-up date must be after today and at most %(days)s "
                          "days ahead.", days=FOLLOW_UP_MAX_DAYS),
        "follow_up_required": _("This plan\u2019s review date has come: give a follow-up date, "
                                "so the plan comes back to your agenda while it stays "
                                "open."),
        "note": _("The note is longer than %(n)s characters.", n=NOTE_MAX),
    }


def _agenda_page(entered: dict[str, str] | None = None, errors: dict[str, str] | None = None,
                 row_key: str | None = None) -> str:
    store = db_session()
    rows = agenda(store, current_user, now())
    clinic = store.get(Clinic, current_user.clinic_id)
    assert clinic is not None
    return render_template("supervision/agenda.html", rows=rows, entered=entered or {},
                           errors=errors or {}, row_key=row_key, note_max=NOTE_MAX,
                           domain_labels=DOMAIN_LABELS,
                           today=clinic_today(clinic, now()))


@bp.route("/agenda")
@login_required
def agenda_page() -> str:
    """The supervisor's agenda by client code, each row with a form to record a review."""
    _supervisor_page("supervision.agenda.view")
    return _agenda_page()


@bp.route("/agenda/<int:episode_id>/review", methods=["POST"])
@login_required
def review(episode_id: int) -> Response | tuple[str, int]:
    """Record a review of a case on the agenda: discussed, plan agreed, follow-up date,
    a short note. Refused input: the agenda again with the input kept (400, nothing
    stored). A case that is not the supervisor's: 404."""
    _supervisor_only("supervision.review.record", object_type="episode",
                     object_id=episode_id)
    store = db_session()
    episode = reviewable_episode(store, current_user, episode_id)
    audit_event(action="supervision.review.record",
                outcome="allowed" if episode else "denied", actor_user_id=current_user.id,
                clinic_id=current_user.clinic_id, object_type="episode",
                object_id=episode_id, client_id=episode.client_id if episode else None,
                even_if_failed=True)
    if episode is None:
        abort(404)
    form = request.form
    entered = {k: form.get(k, "") for k in ("plan_id", "discussed", "plan_agreed",
                                            "follow_up_on", "note")}
    row_key = f"{episode_id}:{entered['plan_id']}"
    errors: dict[str, str] = {}
    choice = {"yes": True, "no": False}
    for name in ("discussed", "plan_agreed"):
        if entered[name] not in choice:
            errors[name] = _("Choose yes or no.")
    plan = None
    if entered["plan_id"]:
        plan_id = int(entered["plan_id"]) if entered["plan_id"].isdigit() \
            and len(entered["plan_id"]) < 12 else None
        plan = store.get(ActionPlan, plan_id) if plan_id else None
        if plan is None or plan.episode_id != episode.id:
            errors["plan"] = _review_messages()["plan"]
    follow_up = None
    if entered["follow_up_on"].strip():
        try:
            follow_up = parse_date(entered["follow_up_on"].strip())
        except InputError:
            errors["follow_up_on"] = _("Give a date as YYYY-MM-DD, from 1900 to 2999.")
    if not errors:
        try:
            record_review(store, supervisor=current_user, episode=episode, plan=plan,
                          discussed=choice[entered["discussed"]],
                          plan_agreed=choice[entered["plan_agreed"]],
                          follow_up_on=follow_up, note=entered["note"], now=now())
        except ReviewError as exc:
            errors[exc.field] = _review_messages().get(exc.key, str(exc))
    if errors:
        discard_changes()
        return _agenda_page(entered, errors, row_key), 400
    flash(_("Review recorded."), "info")
    return redirect(url_for(".agenda_page"))


@bp.route("/fidelity")
@login_required
def fidelity_page() -> str:
    """Measurement-based-care fidelity per supervisee over the last twelve weeks."""
    _supervisor_page("supervision.fidelity.view")
    start, end = last_weeks(now())
    rows = fidelity(db_session(), current_user, instrument_library(current_app),
                    start=start, end=end)
    return render_template("supervision/fidelity.html", rows=rows, start=start, end=end,
                           few=FEW_CASES, weeks=PERIOD_WEEKS)
