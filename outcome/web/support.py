"""After the signal (issue 19): the therapist's support checks and action plans.

The loop of ``../shared/design/support.md`` on the client record: a check is offered
(or started by the therapist), its link reaches the client (e-mailed to their address
when they have one, and shown once to copy or scan); its results by domain, each with
its explanation, and the suggested steps, which the therapist accepts, edits or
declines; the action plan (steps, note, review date) that resolves the signal's alerts;
at the review date its follow-up, and closing or revising it.

Only the client's own therapist reaches these pages (:func:`outcome.web.scoping.
own_client`): anybody else, and any check or plan not of this client, is the same 404.
Each request writes one audit record about the client, allowed or denied. The services
(:mod:`outcome.services.support`) flush; the edge commits once per request.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import TypeVar

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
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user
from flask_login import login_required
from sqlalchemy import select
from werkzeug.wrappers import Response

from outcome.core.inputs import InputError
from outcome.core.inputs import ascii_int
from outcome.core.inputs import parse_date
from outcome.core.support import DOMAINS
from outcome.core.support import EXTRA_DOMAINS
from outcome.core.trajectory import ON_TRACK_COLOURS
from outcome.extensions import instrument_library
from outcome.models import ActionPlan
from outcome.models import Alert
from outcome.models import Client
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import EpisodeSignal
from outcome.models import SupportCheck
from outcome.models import User
from outcome.services import clinic_settings
from outcome.services import support
from outcome.services.explanations import format_number
from outcome.services.explanations import render
from outcome.services.explanations import render_explanation
from outcome.services.plan_marks import aware
from outcome.services.plan_marks import check_status
from outcome.services.plan_marks import clinic_today
from outcome.services.plan_marks import resolving_plans
from outcome.web.clock import now
from outcome.web.confirm import require_confirmation
from outcome.web.database import db_session
from outcome.web.database import discard_changes
from outcome.web.i18n import format_day
from outcome.web.scoping import own_client
from questionnaires.loader import InstrumentLibrary
from reports.qr import link_qr_svg

_Row = TypeVar("_Row", SupportCheck, ActionPlan)

bp = Blueprint("support", __name__, url_prefix="/clients")

DOMAIN_LABELS = {
    "alliance": _l("Alliance"), "motivation": _l("Motivation"),
    "social_support": _l("Social support"), "life_events": _l("Life events"),
    "formulation": _l("Formulation and treatment fit"), "risk": _l("Risk"),
}
STEP_MAX = 500  # characters of one step
OWN_STEPS = 3   # empty rows for the therapist's own steps


# --- reading ---------------------------------------------------------------------------------


def locale() -> str:
    return str(get_locale() or "en")


def said(message: Any) -> str:
    """A core :class:`~outcome.core.messages.Message` in the reader's language."""
    return render_explanation(message.as_json(), locale()) if message is not None else ""


def measure_name(library: InstrumentLibrary, instrument_id: str | None) -> str:
    if not instrument_id:
        return ""
    try:
        return library.get(instrument_id).short_name
    except KeyError:
        return instrument_id


def colour_word(colour: str | None) -> str:
    return render(f"colour.{colour}", {}, locale()) if colour else ""


def number(value: float | None, signed: bool = False) -> str:
    return "\u2013" if value is None else format_number(value, locale(), signed=signed)


def _signal_measure(episode: Episode, library: InstrumentLibrary, colour: str) -> str:
    """The measures whose progress colour is ``colour`` in the episode's stored signal."""
    signal = db_session().get(EpisodeSignal, episode.id)
    outcomes = (signal.state or {}).get("outcomes", {}) if signal else {}
    return ", ".join(measure_name(library, i) for i, data in outcomes.items()
                     if (data.get("progress") or {}).get("level") == colour)


def reason_text(reason: str, alert: Alert | None, episode: Episode,
                library: InstrumentLibrary) -> str:
    """Why a check is offered or was started, naming the measure and the signal."""
    numbers = (alert.detail or {}).get("numbers") or {} if alert is not None else {}
    measure = measure_name(library, numbers.get("instrument"))
    if reason in ("red", "deterioration") and not measure:
        measure = _signal_measure(episode, library, "red")
    if reason == "red":
        return (_("Red on %(measure)s: not on track.", measure=measure) if measure
                else _("Red: not on track."))
    if reason == "deterioration":
        return (_("Reliable deterioration on %(measure)s.", measure=measure) if measure
                else _("Reliable deterioration on the main measure."))
    if reason == "unrepaired_rupture":
        return (_("Unrepaired alliance rupture on %(measure)s.", measure=measure) if measure
                else _("Unrepaired alliance rupture."))
    return _("Started by the therapist, without a signal.")


def check_state(check: SupportCheck, status: str) -> str:
    """The check's state in words (``status``: as of now, :func:`check_status`)."""
    if status == "sent":
        return _("Sent %(when)s; waiting for the client\u2019s answers.",
                 when=_day(check.started_dt))
    if status == "answered":
        return _("Answered %(when)s.", when=_day(check.answered_dt))
    if status == "cancelled":
        return _("Cancelled.")
    return _("Expired: the link closed unanswered.")


def said_error(exc: support.SupportError) -> str:
    """A service's refusal in the reader's language (its template and parameters)."""
    return _(exc.message, **exc.params)


def _day(moment: dt.datetime | None) -> str:
    return format_day(moment)


@dataclass(frozen=True)
class ResultRow:
    """One domain of an answered check, as the results table shows it."""

    domain: str
    label: str
    measure: str
    score: str
    cutoff: str
    state: str        # flagged, clear, unmeasured
    state_text: str
    explanation: str
    source: str
    reused: bool


OPERATORS = {"<=": "\u2264", ">=": "\u2265", "<": "<", ">": ">"}


def result_rows(view: support.CheckView, library: InstrumentLibrary) -> list[ResultRow]:
    """The results table: each domain's measure, score, the cutoff that decides it
    (``numbers``' ``op`` and ``value``, as "\u2264 5") and its state: flagged, not flagged,
    not judged (a score but no cutoff decides it) or not measured."""
    rows: list[ResultRow] = []
    if view.reading is None:
        return rows
    words = {"flagged": _("Flagged"), "clear": _("Not flagged"),
             "undecided": _("Not judged: no cutoff"), "unmeasured": _("Not measured")}
    for r in view.reading.results:
        numbers = r.numbers or {}
        if r.flagged is not None:
            state = "flagged" if r.flagged else "clear"
        else:
            state = "undecided" if r.score is not None else "unmeasured"
        op, value = numbers.get("op"), numbers.get("value")
        cutoff = (f"{OPERATORS.get(op, op)} {number(value)}"
                  if op and isinstance(value, int | float) else "\u2013")
        rows.append(ResultRow(
            r.domain, str(DOMAIN_LABELS.get(r.domain, r.domain)),
            measure_name(library, r.instrument_id) or "\u2013", number(r.score), cutoff,
            state, words[state], said(r.explanation), r.source, r.reused))
    return rows


# --- the plan form -----------------------------------------------------------------------------


@dataclass
class StepRow:
    """One row of the plan form: a suggested step (``original``: its words) or one of the
    therapist's own (``original`` empty), with what was chosen and any message."""

    key: str
    domain: str
    suggestion: str | None
    original: str
    source: str = ""
    decision: str | None = None
    text: str = ""
    error: str | None = None

    @property
    def is_own(self) -> bool:
        return not self.original


@dataclass
class PlanForm:
    rows: list[StepRow]
    review_on: str
    note: str = ""
    check_id: int | None = None
    revises_id: int | None = None
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def kept(self) -> list[StepRow]:
        """The steps of the open plan this one replaces (prefilled, to keep or drop)."""
        return [row for row in self.rows if row.key.startswith("p")]

    @property
    def suggested(self) -> list[tuple[str, list[StepRow]]]:
        """The check's suggested rows by domain, in the domains' order."""
        groups: dict[str, list[StepRow]] = {}
        for row in self.rows:
            if row.key.startswith("s"):
                groups.setdefault(row.domain, []).append(row)
        order = [*DOMAINS, *EXTRA_DOMAINS]
        return sorted(groups.items(), key=lambda g: order.index(g[0]) if g[0] in order
                      else len(order))

    @property
    def own(self) -> list[StepRow]:
        return [row for row in self.rows if row.is_own]


def _own_rows(start: int = 0) -> list[StepRow]:
    return [StepRow(f"own{n}", "formulation", None, "") for n in range(start, start + OWN_STEPS)]


def default_review(episode: Episode) -> dt.date:
    """Today (the clinic's) plus the clinic's ``plan_review_days``."""
    store = db_session()
    clinic = store.get(Clinic, episode.clinic_id)
    assert clinic is not None
    days = clinic_settings.current(clinic)["plan_review_days"]
    return clinic_today(store, episode.clinic_id, now()) + dt.timedelta(days=days)


def new_form(episode: Episode, view: support.CheckView | None = None,
             revises: ActionPlan | None = None) -> PlanForm:
    """A blank form: the check's suggestions (if any), the revised plan's steps (if
    any), and rows for the therapist's own steps."""
    rows: list[StepRow] = []
    if view is not None and view.reading is not None:
        for n, s in enumerate(view.reading.suggestions):
            rows.append(StepRow(f"s{n}", s.domain, s.id, said(s.text), s.source,
                                text=said(s.text)))
    if revises is not None:
        for n, step in enumerate(revises.steps or []):
            if step.get("decision") == "declined":
                continue
            text = str(step.get("text") or "")
            rows.append(StepRow(f"p{n}", str(step.get("domain") or "formulation"),
                                step.get("suggestion"), text, decision="accepted", text=text))
    return PlanForm(rows + _own_rows(), default_review(episode).isoformat(),
                    note=revises.note if revises is not None else "",
                    check_id=view.check.id if view is not None else None,
                    revises_id=revises.id if revises is not None else None)


def read_form(form: PlanForm, data, today: dt.date) -> list[dict[str, Any]]:
    """Fill ``form`` from the posted ``data``; return the steps for
    :func:`outcome.services.support.record_plan`, with ``form.errors`` set for anything
    wrong (each beside its field)."""
    steps = []
    domains = {*DOMAINS, *EXTRA_DOMAINS}
    for row in form.rows:
        row.text = (data.get(f"{row.key}-text") or "").strip()
        if row.is_own:
            domain = data.get(f"{row.key}-domain", "")
            row.domain = domain if domain in domains else "formulation"
            if not row.text:
                continue
            if len(row.text) > STEP_MAX:
                row.error = _("A step has at most %(most)s characters.", most=STEP_MAX)
            else:
                steps.append({"domain": row.domain, "suggestion": None, "text": row.text,
                              "decision": "own"})
            continue
        decision = data.get(f"{row.key}-decision")
        row.decision = decision if decision in ("accepted", "edited", "declined") else None
        if row.decision is None:
            row.error = _("Choose accept, edit or decline.")
            continue
        if row.decision == "accepted" and row.text and row.text != row.original:
            row.decision = "edited"  # the words were changed: the therapist's own
        if row.decision in ("accepted", "declined"):
            text = row.original
        else:
            text = row.text
            if not text:
                row.error = _("Write the step in your own words, or accept it as it is.")
                continue
            if len(text) > STEP_MAX:
                row.error = _("A step has at most %(most)s characters.", most=STEP_MAX)
                continue
        if row.decision != "accepted":
            row.text = text
        decision = row.decision
        if row.suggestion is None:
            if decision == "declined":
                continue  # a step of the therapist's own, from the plan revised: dropped
            decision = "own"
        steps.append({"domain": row.domain, "suggestion": row.suggestion, "text": text,
                      "decision": decision})
    if any(row.error for row in form.rows):
        form.errors["steps"] = _("Some steps need your attention: see the messages beside "
                                 "them.")
    elif not any(s["decision"] != "declined" for s in steps):
        form.errors["steps"] = _("Choose at least one step: accept or edit a suggestion, "
                                 "or write a step of your own.")
    form.note = (data.get("note") or "").strip()
    if len(form.note) > support.NOTE_MAX:
        form.errors["note"] = _("The note has at most %(most)s characters.",
                                most=support.NOTE_MAX)
    form.review_on = (data.get("review_on") or "").strip()
    try:
        review = parse_date(form.review_on)
    except InputError:
        form.errors["review_on"] = _("Give the review date as a date (YYYY-MM-DD).")
    else:
        if review <= today:
            form.errors["review_on"] = _("The review date must be after today.")
    return steps


# --- follow-up -----------------------------------------------------------------------------------


def follow_up_sentences(fu: support.FollowUp, library: InstrumentLibrary) -> list[str]:
    """The follow-up in words: the main measure's score and colour at the plan and now,
    the change in its points with its direction, and what the colour now means.

    The colours are domain.md section 4's (white: the functional range; green: on track;
    yellow: less progress than expected; red: not on track). After a plan made on red
    (support.md, "The loop", 5): "Back on track" only when the service says so and the
    colour is one of :data:`~outcome.core.trajectory.ON_TRACK_COLOURS` (green, white);
    yellow is "No longer red" with its meaning; red is "Not back on track". A plan whose
    main measure was not red at the plan (e.g. one after an alliance rupture) was not off
    track on it: only the colour now and then. Nothing about the track before a score
    has come since the plan. The words follow the colours, so an outcome kept at closing
    under an older reading (yellow counted back) is still said truly.
    """
    measure = measure_name(library, fu.instrument_id)
    if not measure:
        return [_("The plan has no main measure to follow.")]
    out = [_("At the plan: %(measure)s %(score)s (%(colour)s).", measure=measure,
             score=number(fu.score_then), colour=colour_word(fu.colour_then))
           if fu.score_then is not None
           else _("At the plan: no %(measure)s score yet.", measure=measure)]
    if fu.score_now is None or fu.sessions_since == 0:
        out.append(_("No %(measure)s score since the plan yet.", measure=measure))
        return out
    out.append(ngettext(
        "Now: %(measure)s %(score)s (%(colour)s), %(num)s scored session since the plan.",
        "Now: %(measure)s %(score)s (%(colour)s), %(num)s scored sessions since the plan.",
        fu.sessions_since, measure=measure, score=number(fu.score_now),
        colour=colour_word(fu.colour_now)))
    if fu.change is not None:
        out.append(change_sentence(fu.change, fu.instrument_id, measure, library))
    colour = colour_word(fu.colour_now)
    if fu.colour_then == "red":
        if fu.back_on_track is True and fu.colour_now in ON_TRACK_COLOURS:
            out.append(_("Back on track: %(measure)s is %(colour)s now.", measure=measure,
                         colour=colour))
        elif fu.colour_now == "yellow":
            out.append(_("No longer red: %(measure)s is %(colour)s now (less progress than "
                         "expected).", measure=measure, colour=colour))
        elif fu.colour_now == "red":
            out.append(_("Not back on track: %(measure)s is %(colour)s now.",
                         measure=measure, colour=colour))
    elif fu.colour_now in COLOURS_SAID:
        out.append(_("%(measure)s is %(colour)s now (it was %(then)s at the plan).",
                     measure=measure, colour=colour, then=colour_word(fu.colour_then))
                   if fu.colour_then in COLOURS_SAID else
                   _("%(measure)s is %(colour)s now.", measure=measure, colour=colour))
    return out


COLOURS_SAID = ("white", "green", "yellow", "red")  # not grey: no valid score to colour


def change_sentence(change: float, instrument_id: str | None, measure: str,
                    library: InstrumentLibrary) -> str:
    """The change in the measure's points since the plan, named by the measure's direction
    (``higher_is_worse``: down is better; ``higher_is_better``: up is better); 0 is no
    change. A measure the library does not know gets the points without a direction."""
    try:
        direction = library.get(instrument_id or "").direction
    except KeyError:
        direction = None
    points = number(change, signed=change != 0)
    # The plural form by the number of points: 1 point, 2 points (a fraction as plural).
    count = int(abs(change)) if float(change).is_integer() else 2
    if change == 0:
        return ngettext("Change on %(measure)s since the plan: %(change)s point (no change).",
                        "Change on %(measure)s since the plan: %(change)s points (no change).",
                        count, measure=measure, change=points)
    if direction is None:
        return _("Change on %(measure)s since the plan: %(change)s points.",
                 measure=measure, change=points)
    if (change < 0) == (direction == "higher_is_worse"):
        return ngettext("Change on %(measure)s since the plan: %(change)s point (better).",
                        "Change on %(measure)s since the plan: %(change)s points (better).",
                        count, measure=measure, change=points)
    return ngettext("Change on %(measure)s since the plan: %(change)s point (worse).",
                    "Change on %(measure)s since the plan: %(change)s points (worse).",
                    count, measure=measure, change=points)


def rupture_sentences(plan: ActionPlan, library: InstrumentLibrary) -> list[str]:
    """Whether each alliance rupture the plan resolved (its alerts of kind ``rupture`` or
    ``unrepaired_rupture``, ``Alert.plan_id``) is repaired now, read from the episode's
    stored signals (``EpisodeSignal.state["alliance"]``: each rupture's status by the
    rules of domain.md section 5, as of the latest rating). A rupture the stored signals
    no longer show (e.g. re-read under other settings) is not spoken of: nothing unsure
    is said about the alliance."""
    store = db_session()
    alerts = store.scalars(select(Alert).where(
        Alert.plan_id == plan.id, Alert.kind.in_(("rupture", "unrepaired_rupture")))
        .order_by(Alert.id))
    signal = store.get(EpisodeSignal, plan.episode_id)
    alliance = ((signal.state or {}).get("alliance") or {}) if signal else {}
    out: list[str] = []
    seen: set[tuple[Any, Any]] = set()
    for alert in alerts:
        numbers = (alert.detail or {}).get("numbers") or {}
        key = (numbers.get("instrument"), numbers.get("session"))
        if None in key or key in seen:
            continue
        seen.add(key)
        readings = [(r.get("numbers") or {}) for r in
                    ((alliance.get(key[0]) or {}).get("ruptures") or [])]
        now_read = next((r for r in readings if r.get("session") == key[1]
                         and r.get("kind") == "rupture"), None)
        if now_read is None:
            continue
        measure, status = measure_name(library, key[0]), now_read.get("status")
        if status == "repaired" and now_read.get("repaired_session") is not None:
            out.append(_("Alliance: the rupture on %(measure)s at session %(session)s was "
                         "repaired at session %(repaired)s.", measure=measure,
                         session=key[1], repaired=now_read["repaired_session"]))
        elif status == "open":
            out.append(_("Alliance: the rupture on %(measure)s at session %(session)s is not "
                         "repaired yet.", measure=measure, session=key[1]))
        elif status == "unrepaired":
            out.append(_("Alliance: the rupture on %(measure)s at session %(session)s was "
                         "not repaired within the repair window.", measure=measure,
                         session=key[1]))
    return out


@dataclass(frozen=True)
class PlanView:
    plan: ActionPlan
    author: str
    follow: support.FollowUp | None
    sentences: list[str]
    closed_by: str = ""


def plan_view(plan: ActionPlan, library: InstrumentLibrary) -> PlanView:
    store = db_session()
    author = store.get(User, plan.created_by_id)
    closer = store.get(User, plan.closed_by_id) if plan.closed_by_id else None
    follow = sentences = None
    if plan.status == "open":
        follow = support.follow_up(store, plan, library, now())
        sentences = follow_up_sentences(follow, library) + rupture_sentences(plan, library)
    return PlanView(plan, author.display_name if author else "", follow, sentences or [],
                    closer.display_name if closer else "")


def outcome_sentences(plan: ActionPlan, library: InstrumentLibrary) -> list[str]:
    """The follow-up kept at closing, in words (None where nothing was kept)."""
    kept = plan.outcome or {}
    if not kept.get("instrument_id"):
        return []
    fields: dict[str, Any] = {k: kept.get(k) for k in support.FollowUp.__dataclass_fields__}
    fields["sessions_since"] = int(fields.get("sessions_since") or 0)
    fields["is_due"] = True
    return follow_up_sentences(support.FollowUp(**fields), library)


# --- the record page's part ------------------------------------------------------------------


def record_support(episode: Episode, library: InstrumentLibrary) -> dict[str, Any]:
    """What the client page shows of the loop for ``episode`` (template variables)."""
    store = db_session()
    is_open = episode.closed_on is None
    offer = support.offer_for(store, episode) if is_open else None
    checks = support.checks_for(store, episode.id)
    alerts = {a.id: a for a in store.scalars(select(Alert).where(Alert.episode_id == episode.id))}
    offer_text = (reason_text(offer.reason, alerts.get(offer.alert_id) if offer.alert_id
                              else None, episode, library) if offer else "")
    waiting = next((c for c in checks if check_status(store, c, now()) == "sent"), None) \
        if is_open else None
    plans = support.plans_for(store, episode.id)
    active = next((p for p in plans if p.status == "open"), None)
    # The latest answered check that no plan has followed yet: its results lead to one.
    planned = {p.support_check_id for p in plans}
    answered = next((c for c in checks if c.status == "answered" and c.id not in planned
                     and not any(aware(p.created_dt) > aware(c.started_dt) for p in plans)),
                    None)
    return {
        "offer": offer, "offer_text": offer_text, "waiting_check": waiting,
        "answered_check": answered,
        "checks": [(c, check_state(c, check_status(store, c, now())),
                    reason_text(c.reason, alerts.get(c.alert_id) if c.alert_id else None,
                                episode, library))
                   for c in checks],
        "active_plan": plan_view(active, library) if active else None,
        "plans": plans, "resolved_by": resolving_plans(store, episode.id),
        "plan_kinds": support.PLAN_KINDS,
        "today": clinic_today(store, episode.clinic_id, now()),
        "domain_labels": DOMAIN_LABELS,
    }


# --- lookups ------------------------------------------------------------------------------------


def _owned(episode_id: int | None):
    """A scoping check: the object's episode is one of this client's."""
    def check(client: Client) -> bool:
        episode = db_session().get(Episode, episode_id) if episode_id is not None else None
        return episode is not None and episode.client_id == client.id
    return check


def _form_id(name: str) -> int | None:
    """An optional id in the posted form: None when empty, a 400 naming it when not an id."""
    raw = (request.form.get(name) or "").strip()
    if not raw:
        return None
    found = ascii_int(raw)
    if found is None:
        abort(400, description=_("The field “%(name)s” must be a number.", name=name))
    return found


def _owned_row(model: type[_Row], code: str, row_id: int, action: str
               ) -> tuple[Client, _Row, Episode]:
    """A check or plan of the client ``code`` of the signed-in therapist, with its client
    and episode; another's, or one of another client under this code, is the same
    audited 404 as an unknown one (:func:`own_client`)."""
    store = db_session()
    row = store.get(model, row_id)
    client, _episode, _clinic = own_client(
        code, action, check=_owned(row.episode_id if row else None))
    assert row is not None
    episode = store.get(Episode, row.episode_id)
    assert episode is not None
    return client, row, episode


def _check_of(code: str, check_id: int, action: str) -> tuple[Client, SupportCheck, Episode]:
    return _owned_row(SupportCheck, code, check_id, action)


def _plan_of(code: str, plan_id: int, action: str) -> tuple[Client, ActionPlan, Episode]:
    return _owned_row(ActionPlan, code, plan_id, action)


# --- checks ---------------------------------------------------------------------------------------


@bp.route("/<code>/support-checks", methods=["POST"])
@login_required
def start(code: str) -> Response | str:
    """Start a support check for the client's open episode (``alert``: the alert it
    answers, optional). Its link is e-mailed when the client has an address and shown
    here once. Recorded as ``support.check.start``."""
    store = db_session()
    alert_id = None

    def check(client: Client) -> bool:
        nonlocal alert_id
        alert_id = _form_id("alert")
        if alert_id is None:
            return True
        alert = store.get(Alert, alert_id)
        return alert is not None and _owned(alert.episode_id)(client)

    client, episode, _clinic = own_client(code, "support.check.start", check=check)
    if episode is None:
        abort(404)
    library = instrument_library(current_app)
    alert = store.get(Alert, alert_id) if alert_id is not None else None
    mail = support.MailContext(base_url=current_app.config["BASE_URL"],
                               secret_key=current_app.config["SECRET_KEY"])
    try:
        made, _link, token = support.start_check(store, episode=episode, user=current_user,
                                                 now=now(), library=library, alert=alert,
                                                 mail=mail)
    except support.SupportError as exc:
        discard_changes()
        flash(said_error(exc), "error")
        return redirect(url_for("record.page", code=client.code) + "#support")
    url = f"{current_app.config['BASE_URL'].rstrip('/')}/q/{token}"
    return _check_page(client, made, episode, issued={
        "url": url, "qr": link_qr_svg(url), "emailed": bool(client.email)})


@bp.route("/<code>/support-checks/<int:check_id>")
@login_required
def check_page(code: str, check_id: int) -> str:
    """A check: its state, and once answered its results by domain and the plan form
    with its suggestions. Recorded as ``support.check.view``."""
    client, check, episode = _check_of(code, check_id, "support.check.view")
    return _check_page(client, check, episode)


def _check_page(client: Client, check: SupportCheck, episode: Episode, *,
                issued: dict | None = None, form: PlanForm | None = None,
                status: int = 200) -> Any:
    store = db_session()
    library = instrument_library(current_app)
    view = support.view_check(store, check, library)  # reads only (a GET may show it)
    state_now = check_status(store, check, now())
    alert = store.get(Alert, check.alert_id) if check.alert_id else None
    plan = store.scalar(select(ActionPlan).where(ActionPlan.support_check_id == check.id)
                        .order_by(ActionPlan.id.desc()))
    if form is None and view.reading is not None and plan is None \
            and episode.closed_on is None:
        form = new_form(episode, view, support.active_plan(store, episode.id))
    body = render_template(
        "record/support_check.html", client=client, episode=episode, check=check,
        reading=view.reading, results=result_rows(view, library),
        reason=reason_text(check.reason, alert, episode, library),
        state=check_state(check, state_now), status=state_now,
        issued=issued, form=form, plan=plan, domain_labels=DOMAIN_LABELS)
    return (body, status) if status != 200 else body


@bp.route("/<code>/support-checks/<int:check_id>/cancel", methods=["POST"])
@login_required
def cancel(code: str, check_id: int) -> Response:
    """Withdraw a check not yet answered (its link stops working). Recorded as
    ``support.check.cancel``."""
    client, check, _episode = _check_of(code, check_id, "support.check.cancel")
    require_confirmation()
    try:
        support.cancel_check(db_session(), check, current_user, now())
    except support.SupportError as exc:
        discard_changes()
        flash(said_error(exc), "error")
    else:
        flash(_("Support check cancelled; its link no longer works."), "info")
    return redirect(url_for(".check_page", code=client.code, check_id=check.id))


# --- plans --------------------------------------------------------------------------------------


@bp.route("/<code>/plans/new")
@login_required
def new_plan(code: str) -> str:
    """A plan without a check (from an alert, or at any time). Recorded as
    ``support.plan.form``."""
    client, episode, _clinic = own_client(code, "support.plan.form")
    if episode is None:
        abort(404)
    active = support.active_plan(db_session(), episode.id)
    return render_template("record/plan_form.html", client=client, episode=episode,
                           form=new_form(episode, revises=active), revises=active,
                           domain_labels=DOMAIN_LABELS)


@bp.route("/<code>/plans/<int:plan_id>/revise")
@login_required
def revise(code: str, plan_id: int) -> str:
    """A new plan prefilled from an open one, which it will replace. Recorded as
    ``support.plan.form``."""
    client, plan, episode = _plan_of(code, plan_id, "support.plan.form")
    if plan.status != "open" or episode.closed_on is not None:
        abort(404)
    return render_template("record/plan_form.html", client=client, episode=episode,
                           form=new_form(episode, revises=plan), revises=plan,
                           domain_labels=DOMAIN_LABELS)


@bp.route("/<code>/plans", methods=["POST"])
@login_required
def record_plan(code: str) -> Response | tuple[str, int]:
    """Record an action plan (``check``: the check it follows; ``revises``: the open plan
    it replaces). Refused input re-renders the form with the therapist's words and a
    message beside each field (400, nothing stored). Recorded as ``support.plan.record``."""
    store = db_session()
    ids: dict[str, int | None] = {}

    def check(client: Client) -> bool:
        ids["check"], ids["revises"] = _form_id("check"), _form_id("revises")
        found_check = store.get(SupportCheck, ids["check"]) if ids["check"] else None
        found_plan = store.get(ActionPlan, ids["revises"]) if ids["revises"] else None
        return all(row is not None and _owned(row.episode_id)(client)
                   for key, row in (("check", found_check), ("revises", found_plan))
                   if ids[key] is not None)

    client, episode, _clinic = own_client(code, "support.plan.record", check=check)
    if episode is None:
        abort(404)
    library = instrument_library(current_app)
    the_check = store.get(SupportCheck, ids["check"]) if ids["check"] else None
    revises = store.get(ActionPlan, ids["revises"]) if ids["revises"] else None
    if (the_check is not None and the_check.episode_id != episode.id) or (
            revises is not None and revises.episode_id != episode.id):
        abort(404)  # of an ended episode of this client
    view = (support.view_check(store, the_check, library) if the_check is not None
            else None)
    form = new_form(episode, view, revises)
    steps = read_form(form, request.form, clinic_today(store, episode.clinic_id, now()))
    if not form.errors:
        before = store.scalar(select(Alert.id).where(
            Alert.episode_id == episode.id, Alert.status == "open",
            Alert.kind.in_(support.PLAN_KINDS)).limit(1))
        try:
            plan = support.record_plan(store, episode=episode, user=current_user, steps=steps,
                                       note=form.note, review_on=parse_date(form.review_on),
                                       now=now(), library=library, check=the_check,
                                       revises=revises)
        except support.SupportError as exc:
            discard_changes()
            where = exc.field if exc.field in ("steps", "note", "review_on") else "form"
            form.errors[where] = said_error(exc)
        else:
            flash(_("Action plan recorded; the open alerts it answers are resolved.")
                  if before is not None else _("Action plan recorded."), "info")
            return redirect(url_for(".plan_page", code=client.code, plan_id=plan.id))
    if the_check is not None:
        return _check_page(client, the_check, episode, form=form, status=400)
    return render_template("record/plan_form.html", client=client, episode=episode,
                           form=form, revises=revises, domain_labels=DOMAIN_LABELS), 400


@bp.route("/<code>/plans/<int:plan_id>")
@login_required
def plan_page(code: str, plan_id: int) -> str:
    """A plan: its steps, note, review date and state; when its review date has come,
    the follow-up, with closing and revising it. Recorded as ``support.plan.view``."""
    client, plan, episode = _plan_of(code, plan_id, "support.plan.view")
    return _plan_page(client, plan, episode)


def _plan_page(client: Client, plan: ActionPlan, episode: Episode, *,
               close_note: str = "", error: str | None = None, status: int = 200) -> Any:
    store = db_session()
    library = instrument_library(current_app)
    newer = store.scalar(select(ActionPlan).where(ActionPlan.revised_from_id == plan.id))
    older = store.get(ActionPlan, plan.revised_from_id) if plan.revised_from_id else None
    body = render_template(
        "record/plan.html", client=client, episode=episode, view=plan_view(plan, library),
        kept=outcome_sentences(plan, library) if plan.status == "closed" else [],
        newer=newer, older=older, history=support.plans_for(store, episode.id),
        today=clinic_today(store, episode.clinic_id, now()), domain_labels=DOMAIN_LABELS,
        close_note=close_note, error=error)
    return (body, status) if status != 200 else body


@bp.route("/<code>/plans/<int:plan_id>/close", methods=["POST"])
@login_required
def close(code: str, plan_id: int) -> Response | tuple[str, int]:
    """Close an open plan with a note (required). Recorded as ``support.plan.close``."""
    client, plan, episode = _plan_of(code, plan_id, "support.plan.close")
    note = (request.form.get("note") or "").strip()
    error = None
    if not note:
        error = _("Please say why the plan is closed (for example: back on track; "
                  "continue as before).")
    elif len(note) > support.NOTE_MAX:
        error = _("The note has at most %(most)s characters.", most=support.NOTE_MAX)
    if error is None:
        try:
            support.close_plan(db_session(), plan, user=current_user, note=note, now=now(),
                               library=instrument_library(current_app))
        except support.SupportError as exc:
            discard_changes()
            error = said_error(exc)
        else:
            flash(_("Action plan closed."), "info")
            return redirect(url_for(".plan_page", code=client.code, plan_id=plan.id))
    return _plan_page(client, plan, episode, close_note=note, error=error, status=400)
