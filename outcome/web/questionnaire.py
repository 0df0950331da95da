"""The client-facing questionnaire pages: link, pages, support, thanks.

Routes stay thin: the link and page logic is in :mod:`outcome.services.links`; this
module turns HTTP into those calls and templates. A client has no account: opening a
link exchanges its token for a short client session, and the browser is redirected to
``/q/`` so the token never stays in the address bar, history or a Referer.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any

from flask import Blueprint
from flask import abort
from flask import current_app
from flask import g
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_babel import refresh
from markupsafe import Markup
from sqlalchemy import Integer
from sqlalchemy import Select
from sqlalchemy import String
from sqlalchemy import bindparam
from sqlalchemy import select
from werkzeug.wrappers import Response

from outcome.core.languages import is_supported
from outcome.extensions import instrument_library
from outcome.extensions import limiter
from outcome.models import Client
from outcome.models import Clinic
from outcome.models import ConsentText
from outcome.models import Episode
from outcome.models import QuestionnaireLink
from outcome.models import User
from outcome.services import consent as consents
from outcome.services import consent_withdrawal
from outcome.services.crisis import link_had_critical_answer
from outcome.services.goals import goal_texts
from outcome.services.links import amend_page
from outcome.services.links import battery_items
from outcome.services.links import check_link
from outcome.services.links import draft_answers
from outcome.services.links import hash_token
from outcome.services.links import mark_opened
from outcome.services.links import save_draft
from outcome.services.links import steps
from outcome.services.links import stored_page_answers
from outcome.services.links import submit_page
from outcome.services.links import unanswered_critical
from outcome.services.links import visit_minutes
from outcome.services.progress_view import client_progress
from outcome.services.submissions import IdempotencyConflict
from outcome.services.submissions import NoConsent
from outcome.web import kiosk
from outcome.web.clock import now
from outcome.web.crisis_block import crisis_block
from outcome.web.database import audit_event
from outcome.web.database import count_denial
from outcome.web.database import db_session
from outcome.web.database import discard_changes
from outcome.web.database import writes
from questionnaires.wording import instrument_wording
from questionnaires.wording import shown_language
from reports.charts import scrolling_chart
from reports.charts import to_svg
from reports.charts import trajectory_drawing

bp = Blueprint("questionnaire", __name__, url_prefix="/q")
CLIENT_IDLE = dt.timedelta(minutes=60)
CLIENT_MAX = dt.timedelta(hours=2)  # a client session never outlives this, or its link
THANKS_GRACE = dt.timedelta(minutes=15)  # the thank-you page (and chart) after finishing
PROBLEM_PAGES = {
    "unknown": (404, _l("This link does not work"),
                _l("Please check that you opened the whole link from your message, or ask "
                   "your therapist for a new one.")),
    "not_yet_open": (410, _l("This questionnaire is not open yet"),
                     _l("Your link opens shortly before your session. Please try again "
                        "then.")),
    "expired": (410, _l("This link has expired"),
                _l("The time for this questionnaire has passed. Your therapist can send you "
                   "a new link if needed.")),
    "used": (410, _l("Already completed"),
             _l("Thank you: these questionnaires have been answered. You can close this "
                "page.")),
    "revoked": (410, _l("This link is no longer valid"),
                _l("A newer link may have been sent to you. Please use the most recent "
                   "one.")),
}


# Per address, checked before the token is looked up: links opened at all, and links that
# fail (unknown, expired, used, revoked), which only a guess or a flood makes many of.
# Clients of one clinic may share an address (the waiting room's network).
LINK_OPEN_LIMIT = "30 per minute;300 per hour"
LINK_FAILURE_LIMIT = "10 per minute;100 per hour"
# The questionnaire pages, per address: a client answers a page in seconds at best.
PAGE_LIMIT = "120 per minute"


def _failed(response: Response) -> bool:
    return response.status_code >= 400


def _problem(kind: str) -> tuple[str, int]:
    status, title, message = PROBLEM_PAGES[kind]
    return render_template("questionnaires/message.html", title=title, message=message), status


@bp.route("/<token>")
@limiter.limit(LINK_OPEN_LIMIT)
@limiter.limit(LINK_FAILURE_LIMIT, deduct_when=_failed)
@writes  # opening a link marks it opened
def open_token(token: str) -> Response | tuple[str, int]:
    store = db_session()
    visit = _load_visit(store, token=token)  # the link with its visit's rows: one statement
    link = visit.link if visit is not None else None
    problem = mark_opened(store, link, now())
    if visit is not None and link is not None:
        episode = visit.episode
        _use_client_language(link)
        audit_event(action="link.open", outcome="denied" if problem else "allowed",
                    even_if_failed=True, actor_kind="client", clinic_id=episode.clinic_id,
                    client_id=episode.client_id, object_type="link", object_id=link.id)
    else:  # nobody's link: a count per address and minute
        count_denial("link.open")
    if problem:
        return _problem(problem)
    assert link is not None
    session.clear()  # a client session carries nothing else
    session["client_link"] = link.id
    session["client_seen"] = session["client_started"] = now().timestamp()
    return redirect(url_for(".page"), 303)


def _current_link() -> QuestionnaireLink | None:
    """The client session's link, while the session may still be used.

    A client session ends after an hour idle, two hours in all, when its link is revoked
    or its window closes, and a quarter of an hour after the last questionnaire: a
    browser left open must not keep showing the client's answers.
    """
    link_id, seen = session.get("client_link"), session.get("client_seen")
    started = session.get("client_started")
    if link_id is None or seen is None or started is None:
        return None
    moment = now()
    visit = _load_visit(db_session(), link_id)
    link = visit.link if visit is not None else None
    ended = (link is None or link.revoked_dt is not None or moment > link.valid_until_dt
             or moment.timestamp() - float(seen) > (
                 kiosk.IDLE_SECONDS if session.get("kiosk") else CLIENT_IDLE.total_seconds())
             or moment.timestamp() - float(started) > CLIENT_MAX.total_seconds()
             or (link.used_dt is not None and moment - link.used_dt > THANKS_GRACE))
    if ended or link is None:  # (no link has ended it already; said for the type checker)
        session.clear()
        return None
    session["client_seen"] = moment.timestamp()
    _use_client_language(link)
    return link


@dataclass(frozen=True)
class _Visit:
    """The rows every client page reads: the link, its episode, client and clinic."""

    link: QuestionnaireLink
    episode: Episode
    client: Client
    clinic: Clinic
    therapist_name: str | None  # the episode's therapist's, for the first page's welcome


def _load_visit(store: Any, link: QuestionnaireLink | int | None = None, *,
                token: str | None = None) -> _Visit | None:
    """The visit's rows in one statement (issue 21: they were read one by one, some
    twice), kept on ``g`` for the request: the session's identity map holds rows only
    while something refers to them, so later ``store.get`` calls find them there instead
    of asking the database again. Of ``link`` (or its id), or of the link of ``token``."""
    if token is not None:
        row = store.execute(_visit_statement(by_token=True),
                            {"token_hash": hash_token(token)}).one_or_none()
    else:
        assert link is not None
        link_id = link if isinstance(link, int) else link.id
        row = store.execute(_visit_statement(), {"link_id": link_id}).one_or_none()
    visit = _Visit(*row) if row is not None else None
    g.client_visit = visit
    return visit


@functools.cache
def _visit_statement(*, by_token: bool = False) -> Select:
    """:func:`_load_visit`'s statement, built once (issue 21: every client page runs it):
    by the link's id, or by its token's hash."""
    return (select(QuestionnaireLink, Episode, Client, Clinic, User.display_name)
            .join(Episode, Episode.id == QuestionnaireLink.episode_id)
            .join(Client, Client.id == Episode.client_id)
            .join(Clinic, Clinic.id == Episode.clinic_id)
            .outerjoin(User, User.id == Episode.therapist_id)
            .where(QuestionnaireLink.token_hash == bindparam("token_hash", type_=String)
                   if by_token else
                   QuestionnaireLink.id == bindparam("link_id", type_=Integer)))


def _visit() -> _Visit:
    """The visit loaded by :func:`_current_link` (or the link's opening) this request."""
    visit: _Visit | None = g.get("client_visit")
    assert visit is not None
    return visit


def _use_client_language(link: QuestionnaireLink) -> None:
    """The language of this visit: the one the client chose with the switch (kept in the
    client session, so it lasts for this visit only), else the one their therapist set
    on their record."""
    visit: _Visit | None = g.get("client_visit")
    if visit is None or visit.link is not link:
        visit = _load_visit(db_session(), link)
    client = visit.client if visit is not None else None
    chosen = session.get("client_language") if session.get("client_link") == link.id else None
    g.client_locale = chosen if is_supported(chosen) else (client.locale if client else None)
    refresh()


@bp.route("/visit/language", methods=["POST"])
@limiter.limit(PAGE_LIMIT)
def language() -> Response | tuple[str, int]:
    """The language switch on the client pages: for this visit only; the client's record
    (their therapist's setting) is left as it is."""
    link = _current_link()
    if link is None:
        return render_template("questionnaires/message.html",
                               title=_("Please open your link"),
                               message=_("For your privacy this page closes after a while. "
                                         "Open the link from your message again to "
                                         "continue; your answers so far are kept.")), 401
    chosen = request.form.get("language", "")
    if not is_supported(chosen):
        return render_template("questionnaires/message.html",
                               title=_("This language is not offered"),
                               message=_("Please choose one of the languages shown.")), 400
    session["client_language"] = chosen
    return redirect(url_for(".page"), 303)


@bp.route("/", methods=["GET", "POST"])
@limiter.limit(PAGE_LIMIT)
def page() -> Response | str | tuple[str, int]:
    link = _current_link()
    if link is None and kiosk.COOKIE in request.cookies:
        return redirect(url_for("kiosk.entry"), 303)  # the kiosk: back to the code screen
    if link is None:
        return render_template("questionnaires/message.html",
                               title=_("Please open your link"),
                               message=_("For your privacy this page closes after a while. "
                                         "Open the link from your message again to "
                                         "continue; your answers so far are kept.")), 401
    problem = check_link(link, now())
    if problem and problem != "used":
        return _problem(problem)
    store = db_session()
    library = instrument_library(current_app)
    episode = store.get_one(Episode, link.episode_id)
    client_fields: dict[str, Any] = {"actor_kind": "client", "clinic_id": episode.clinic_id,
                     "client_id": episode.client_id, "object_type": "link",
                     "object_id": link.id}
    all_steps = steps(store, link)
    if not all_steps:
        # A link that asks nothing (issued before links with an empty battery were
        # refused): say so, and never thank the client for answers they were not asked.
        audit_event(action="questionnaire.empty.view", outcome="allowed", even_if_failed=True,
                    **client_fields)
        return render_template("questionnaires/message.html",
                               title=_("There is nothing to fill in for this link"),
                               message=_("No questionnaire was set for this link, so nothing "
                                         "has been sent to your therapist. You can close "
                                         "this page."))
    pending = [s for s in all_steps if not s.is_done]
    visit = _visit()
    consent_state = consents.status(store, visit.client)  # read once for the request
    if pending:
        gate = _consent_gate(visit.clinic, consent_state)
        if gate is not None:
            return gate
    can_withdraw = consent_state.state == "agreed"
    if not pending:
        audit_event(action="questionnaire.thanks.view", outcome="allowed", even_if_failed=True,
                    **client_fields)
        if session.get("kiosk"):  # a shared tablet: no chart, back to the code screen
            return kiosk.finish_client_session()
        charts = [(chart, scrolling_chart(to_svg(trajectory_drawing(chart.data),
                                                 chart.data.title, chart.summary, key=str(n)),
                                          str(n)))
                  for n, chart in enumerate(client_progress(store, episode,
                                                            instrument_library(current_app),
                                                            str(get_locale())))]
        clinic = store.get_one(Clinic, episode.clinic_id)
        return render_template("questionnaires/thanks.html", charts=charts, crisis=crisis_block(
            clinic, now()) if link_had_critical_answer(store, link) else None,
            can_withdraw=can_withdraw)
    reader = str(get_locale() or "en")
    # The page shown: the first unanswered questionnaire, or an earlier one the client
    # went Back to (the session holds only its position in the battery).
    first_pending = all_steps.index(pending[0])
    back_to = session.get("client_at")
    index = back_to if isinstance(back_to, int) and 0 <= back_to < first_pending \
        else first_pending
    is_done = all_steps[index].is_done
    instrument = library.get(all_steps[index].instrument_id)
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    if request.method == "POST":
        if request.form.get("instrument") != instrument.id:
            return redirect(url_for(".page"), 303)  # an old page resent: show the current one
        values = {item.id: request.form.get(item.id, "").strip() for item in instrument.items}
        if instrument.role == "goal":  # only the client's own goals are asked
            shown = goal_texts(store, link.episode_id)
            values = {k: v for k, v in values.items() if k in shown}
        if request.form.get("go") == "back":
            if index > 0:
                if not is_done:  # kept for when the client comes forward again
                    save_draft(link, instrument, values)
                    store.flush()
                session["client_at"] = index - 1
                audit_event(action="questionnaire.back", outcome="allowed", **client_fields)
            return redirect(url_for(".page"), 303)
        choice = request.form.get("critical")
        blank = unanswered_critical(instrument, values) if choice != "skip" else []
        if blank and is_done:  # asked once: not again for an item already left blank
            stored = stored_page_answers(store, link, instrument.id)
            blank = [item_id for item_id in blank if item_id in stored]
        if blank:
            # A critical item left blank: asked once more, gently, before anything is
            # stored; "Continue without answering" stores it blank (flagged).
            errors = ({item_id: _("Please choose an answer, or continue without answering.")
                       for item_id in blank} if choice == "answer" else {})
            audit_event(action="questionnaire.second_chance.view", outcome="allowed",
                        even_if_failed=True, **client_fields)
            wording = instrument_wording(instrument, reader)
            return render_template("questionnaires/second_chance.html",
                                   instrument=instrument, values=values, errors=errors,
                                   blank=blank, wording=wording), (422 if errors else 200)
        try:
            page_result = (amend_page if is_done else submit_page)(
                store, link=link, instrument=instrument, form=values, library=library,
                now=now(), language=shown_language(instrument, reader))
        except IdempotencyConflict:
            # The same page sent twice at once with different answers: the first stands.
            discard_changes()
            return redirect(url_for(".page"), 303)
        except NoConsent:  # decided meanwhile in another tab: nothing is stored
            discard_changes()
            return redirect(url_for(".consent"), 303)
        if not page_result.errors:
            audit_event(action="questionnaire.amend" if is_done else "questionnaire.submit",
                        outcome="allowed", **client_fields)
            session["client_at"] = index + 1
            if page_result.is_critical:
                return redirect(url_for(".support"), 303)
            return redirect(url_for(".page"), 303)
        # Answered with a 422 below: the edge keeps nothing of the refused page.
        errors = {e.item: _plain(e.code, e.message) for e in page_result.errors}
    if request.method == "GET":
        audit_event(action="questionnaire.view", outcome="allowed", even_if_failed=True,
                    **client_fields)
        values = stored_page_answers(store, link, instrument.id) if is_done \
            else draft_answers(link, instrument.id)
    goals = goal_texts(store, link.episode_id) if instrument.role == "goal" else {}
    wording = instrument_wording(instrument, reader)
    welcome = _welcome(store, link, episode, library) if index == 0 else ""
    # Told before starting: the measures of this visit that have no verified translation
    # into the client's language, on the first page and on each such measure's own page.
    in_original = [m.short_name for m in (library.get(s.instrument_id) for s in pending)
                   if shown_language(m, reader) != reader
                   and (index == 0 or m.id == instrument.id)]
    items_html = None if values or errors or goals else _blank_items(instrument, wording,
                                                                      reader)
    return render_template("questionnaires/page.html", instrument=instrument, values=values,
                           errors=errors, position=index + 1, total=len(all_steps),
                           goals=goals, wording=wording, welcome=welcome,
                           in_original=in_original, can_withdraw=can_withdraw,
                           can_go_back=index > 0, items_html=items_html), (422 if errors else 200)


# A questionnaire's questions with nothing filled in, by measure and language (issue 21:
# rendering them was a third of a page's time). Kept per process, by the measure's
# ``id@version`` and the language, with the measure object and the wording it was
# rendered from: an entry serves only the same (immutable) measure object with an equal
# wording. A wording installed by an admin (outcome/web/admin/wording.py) is loaded into
# a new library, of new measure objects, when the site restarts (in the same process
# too: a new app), so it replaces the entry instead of being served from it.
_BLANK_ITEMS: dict[tuple[str, str], tuple[Any, dict[str, Any], Markup]] = {}


def _blank_items(instrument: Any, wording: dict[str, Any], language: str) -> Markup:
    """The page's questions with no answer, error or goal: the same for every client who
    sees ``instrument`` in ``language`` (``wording`` is its wording in that language)."""
    key = (instrument.key, language)
    cached = _BLANK_ITEMS.get(key)
    if cached is not None and cached[0] is instrument and cached[1] == wording:
        return cached[2]
    untranslated = "" if wording["original"] == language else f" lang={wording['original']}"
    # (Markup: the output of an autoescaping template, every value in it escaped.)
    html = Markup(render_template(  # noqa: S704  # nosec B704 (rendered, escaped HTML)
        "questionnaires/_items.html", instrument=instrument,
        wording=wording, values={}, errors={}, goals={}, untranslated=untranslated))
    _BLANK_ITEMS[key] = (instrument, wording, html)
    return html


def _welcome(store: Any, link: QuestionnaireLink, episode: Episode,
             library: Any) -> str:
    """The first page's first line: whose session, where, how many questionnaires and
    about how long they take (ten seconds a question, rounded up to minutes)."""
    clinic = store.get_one(Clinic, episode.clinic_id)
    visit = _visit()  # (the therapist's name read with the visit's rows: issue 21)
    therapist = visit.therapist_name if episode.therapist_id else None
    count = len(link.battery)
    minutes = visit_minutes(battery_items(store, link, library))
    questionnaires = ngettext("%(num)d short questionnaire", "%(num)d short questionnaires",
                              count)
    time = ngettext("about %(num)d minute", "about %(num)d minutes", minutes)
    if link.purpose == "support":  # a support check (issue 19): no session behind it
        if therapist is None:
            return _("A few questions from %(clinic)s: %(questionnaires)s, %(time)s.",
                     clinic=clinic.name, questionnaires=questionnaires, time=time)
        return _("A few questions from %(therapist)s at %(clinic)s about how things are "
                 "going: %(questionnaires)s, %(time)s.", therapist=therapist,
                 clinic=clinic.name, questionnaires=questionnaires, time=time)
    if therapist is None:
        if link.purpose == "post":
            return _("After your session at %(clinic)s: %(questionnaires)s, %(time)s.",
                     clinic=clinic.name, questionnaires=questionnaires, time=time)
        return _("Before your session at %(clinic)s: %(questionnaires)s, %(time)s.",
                 clinic=clinic.name, questionnaires=questionnaires, time=time)
    if link.purpose == "post":
        return _("After your session with %(therapist)s at %(clinic)s: %(questionnaires)s, "
                 "%(time)s.", therapist=therapist, clinic=clinic.name,
                 questionnaires=questionnaires, time=time)
    return _("Before your session with %(therapist)s at %(clinic)s: %(questionnaires)s, "
             "%(time)s.", therapist=therapist, clinic=clinic.name,
             questionnaires=questionnaires, time=time)


def _plain(code: str, message: str) -> str:
    """Error text for a client: plain words, no item ids."""
    return str({"missing": _("Please choose an answer."),
            "not_an_option": _("Please choose one of the answers shown."),
            "wrong_type": _("Please choose one of the answers shown."),
            "out_of_range": _("Please give a number within the range shown."),
            "too_many_decimals": _("Please use at most one decimal place."),
            "too_long": _("This answer is too long.")}.get(code, message.split(": ", 1)[-1]))


@bp.route("/support")
@limiter.limit(PAGE_LIMIT)
def support() -> str | tuple[str, int]:
    link = _current_link()
    if link is None:
        abort(404)
    episode = db_session().get_one(Episode, link.episode_id)
    clinic = db_session().get_one(Clinic, episode.clinic_id)
    audit_event(action="questionnaire.support.view", outcome="allowed", even_if_failed=True,
                actor_kind="client", clinic_id=episode.clinic_id, client_id=episode.client_id,
                object_type="link", object_id=link.id)
    return render_template("questionnaires/support.html", crisis=crisis_block(clinic, now()))


# --- consent (issue 20) ------------------------------------------------------------------


def _closed() -> tuple[str, int]:
    return render_template("questionnaires/message.html",
                           title=_("Please open your link"),
                           message=_("For your privacy this page closes after a while. "
                                     "Open the link from your message again to "
                                     "continue; your answers so far are kept.")), 401


def _consent_gate(clinic: Clinic, state: consents.ConsentStatus
                  ) -> Response | tuple[str, int] | None:
    """Before a questionnaire: the consent page when the client has no agreement in force
    to the clinic's current text (and the clinic asks online); a plain page when they
    declined or withdrew and the clinic records consent another way; else None.

    From the client's consent ``state`` (:func:`outcome.services.consent.status`), read
    once for the request, by the consent service's own rule
    (:func:`outcome.services.consent.verdict`).
    """
    verdict = consents.verdict(state, online=consents.asks_online(clinic), from_link=True)
    if verdict.needs_asking:
        return redirect(url_for(".consent"), 303)
    if not verdict.may_collect:
        return render_template("questionnaires/message.html",
                               title=_("No questionnaires for now"),
                               message=_("Your clinic has a note that you do not wish to "
                                         "answer questionnaires, so nothing is asked or "
                                         "stored. If you change your mind, please tell "
                                         "your therapist.")), 403
    return None


def _client_fields(episode: Episode, link: QuestionnaireLink) -> dict[str, Any]:
    return {"actor_kind": "client", "clinic_id": episode.clinic_id,
            "client_id": episode.client_id, "object_type": "link", "object_id": link.id}


@bp.route("/consent", methods=["GET", "POST"])
@limiter.limit(PAGE_LIMIT)
@writes  # the clinic's first text in a language is made from the shipped default
def consent() -> Response | str | tuple[str, int]:
    """The consent page: the clinic's current text in the client's language, with Agree
    and Decline. Agree records the agreement and goes on to the questionnaires; Decline
    records a refusal (a withdrawal, if they had agreed to an earlier version) and stores
    nothing else."""
    link = _current_link()
    if link is None:
        return _closed()
    problem = check_link(link, now())
    if problem:
        return _problem(problem)
    store = db_session()
    episode = store.get_one(Episode, link.episode_id)
    client = store.get_one(Client, episode.client_id)
    clinic = store.get_one(Clinic, episode.clinic_id)
    text = _visit_text(store, clinic)
    state = consents.status(store, client)
    fields = _client_fields(episode, link)
    if request.method == "GET":
        audit_event(action="consent.view", outcome="allowed", even_if_failed=True, **fields)
        return render_template("questionnaires/consent.html", text=text, state=state,
                               error=None)
    choice = request.form.get("decision", "")
    if choice not in ("agree", "decline"):
        return render_template("questionnaires/consent.html", text=text, state=state,
                               error=_("Please choose Agree or Decline.")), 400
    if request.form.get("text") != str(text.id):  # the clinic published a new version
        return redirect(url_for(".consent"), 303)
    channel = "kiosk" if session.get("kiosk") else "link"
    if choice == "agree":
        if state.state == "agreed" and not consents.verdict(
                state, online=consents.asks_online(clinic), from_link=True).needs_asking:
            return redirect(url_for(".page"), 303)  # a second click: already recorded
        decision = consents.record_decision(store, client=client, text=text, decision="agreed",
                                           channel=channel, now=now(), link=link)
        audit_event(action="consent.agree", outcome="allowed", **{
            **fields, "object_type": "consent", "object_id": decision.id})
        return redirect(url_for(".page"), 303)
    if state.state not in ("refused", "withdrawn"):
        decision = consent_withdrawal.decline(
            store, client=client, text=text, channel=channel, now=now(), link=link,
            base_url=current_app.config["BASE_URL"])
        audit_event(action=f"consent.{'refuse' if decision.decision == 'refused' else 'withdraw'}",
                    outcome="allowed",
                    **{**fields, "object_type": "consent", "object_id": decision.id})
        if decision.decision == "withdrawn":  # as /q/withdraw: its links are revoked
            return _withdrawn_page()
    return redirect(url_for(".consent_declined"), 303)


def _withdrawn_page() -> str:
    """End the client's visit after a withdrawal and say what it did."""
    was_kiosk = bool(session.get("kiosk"))
    session.clear()  # nothing more is asked on this visit
    return render_template("questionnaires/withdrawn.html", was_kiosk=was_kiosk)


def _visit_text(store: Any, clinic: Clinic) -> ConsentText:
    """The clinic's current consent text in this visit's language."""
    return consents.current_text(store, clinic, str(get_locale() or "en"), now())


@bp.route("/consent/declined")
@limiter.limit(PAGE_LIMIT)
def consent_declined() -> str | tuple[str, int]:
    """After Decline: nothing was stored, and how to change their mind."""
    link = _current_link()
    if link is None:
        return _closed()
    store = db_session()
    episode = store.get_one(Episode, link.episode_id)
    client = store.get_one(Client, episode.client_id)
    state = consents.status(store, client)
    audit_event(action="consent.declined.view", outcome="allowed", even_if_failed=True,
                **_client_fields(episode, link))
    return render_template("questionnaires/consent_declined.html", state=state,
                           link_open=check_link(link, now()) is None,
                           first_refusal=consents.never_agreed(store, client))


@bp.route("/withdraw", methods=["GET", "POST"])
@limiter.limit(PAGE_LIMIT)
def withdraw() -> Response | str | tuple[str, int]:
    """Withdraw consent: a confirmation page, then the withdrawal (the client's open links
    are revoked and their therapist is told, without content)."""
    link = _current_link()
    if link is None:
        return _closed()
    store = db_session()
    episode = store.get_one(Episode, link.episode_id)
    client = store.get_one(Client, episode.client_id)
    latest = consents.latest_decision(store, client.id)
    fields = _client_fields(episode, link)
    if latest is None or latest.decision != "agreed":
        return redirect(url_for(".page"), 303)
    if request.method == "GET":
        audit_event(action="consent.withdraw.view", outcome="allowed", even_if_failed=True,
                    **fields)
        return render_template("questionnaires/withdraw.html")
    text = store.get_one(ConsentText, latest.text_id)
    decision = consent_withdrawal.withdraw(
        store, client=client, text=text, channel="kiosk" if session.get("kiosk") else "link",
        now=now(), link=link, base_url=current_app.config["BASE_URL"])
    audit_event(action="consent.withdraw", outcome="allowed",
                **{**fields, "object_type": "consent", "object_id": decision.id})
    return _withdrawn_page()
