"""The client-facing questionnaire pages: link, pages, support, thanks.

Routes stay thin: the link and page logic is in :mod:`outcome.services.links`; this
module turns HTTP into those calls and templates. A client has no account: opening a
link exchanges its token for a short client session, and the browser is redirected to
``/q/`` so the token never stays in the address bar, history or a Referer.
"""

from __future__ import annotations

import datetime as dt
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
from flask_babel import refresh
from werkzeug.wrappers import Response

from outcome.extensions import instrument_library
from outcome.extensions import limiter
from outcome.models import Client
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import QuestionnaireLink
from outcome.services import clinic_settings
from outcome.services.goals import goal_texts
from outcome.services.links import check_link
from outcome.services.links import open_link
from outcome.services.links import steps
from outcome.services.links import submit_page
from outcome.services.progress_view import client_progress
from outcome.services.submissions import IdempotencyConflict
from outcome.web.clock import now
from outcome.web.database import audit_event
from outcome.web.database import count_denial
from outcome.web.database import db_session
from outcome.web.database import discard_changes
from outcome.web.database import writes
from questionnaires.wording import instrument_wording
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
    link, problem = open_link(store, token, now())
    if link is not None:
        _use_client_language(link)
        episode = store.get_one(Episode, link.episode_id)
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
    link = db_session().get(QuestionnaireLink, link_id)
    ended = (link is None or link.revoked_dt is not None or moment > link.valid_until_dt
             or moment.timestamp() - float(seen) > CLIENT_IDLE.total_seconds()
             or moment.timestamp() - float(started) > CLIENT_MAX.total_seconds()
             or (link.used_dt is not None and moment - link.used_dt > THANKS_GRACE))
    if ended or link is None:  # (no link has ended it already; said for the type checker)
        session.clear()
        return None
    session["client_seen"] = moment.timestamp()
    _use_client_language(link)
    return link


def _use_client_language(link: QuestionnaireLink) -> None:
    episode = db_session().get(Episode, link.episode_id)
    client = db_session().get(Client, episode.client_id) if episode else None
    g.client_locale = client.locale if client else None
    refresh()


@bp.route("/", methods=["GET", "POST"])
@limiter.limit(PAGE_LIMIT)
def page() -> Response | str | tuple[str, int]:
    link = _current_link()
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
    if not pending:
        audit_event(action="questionnaire.thanks.view", outcome="allowed", even_if_failed=True,
                    **client_fields)
        charts = [(chart, scrolling_chart(to_svg(trajectory_drawing(chart.data),
                                                 chart.data.title, chart.summary, key=str(n)),
                                          str(n)))
                  for n, chart in enumerate(client_progress(store, episode,
                                                            instrument_library(current_app),
                                                            str(get_locale())))]
        return render_template("questionnaires/thanks.html", charts=charts)
    instrument = library.get(pending[0].instrument_id)
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    if request.method == "POST":
        if request.form.get("instrument") != instrument.id:
            return redirect(url_for(".page"), 303)  # an old page resent: show the current one
        values = {item.id: request.form.get(item.id, "").strip() for item in instrument.items}
        if instrument.role == "goal":  # only the client's own goals are asked
            shown = goal_texts(store, link.episode_id)
            values = {k: v for k, v in values.items() if k in shown}
        try:
            result = submit_page(store, link=link, instrument=instrument, form=values,
                                 library=library, now=now())
        except IdempotencyConflict:
            # The same page sent twice at once with different answers: the first stands.
            discard_changes()
            return redirect(url_for(".page"), 303)
        if not result.errors:
            audit_event(action="questionnaire.submit", outcome="allowed", **client_fields)
            if result.is_critical:
                return redirect(url_for(".support"), 303)
            return redirect(url_for(".page"), 303)
        # Answered with a 422 below: the edge keeps nothing of the refused page.
        errors = {e.item: _plain(e.code, e.message) for e in result.errors}
    if request.method == "GET":
        audit_event(action="questionnaire.view", outcome="allowed", even_if_failed=True,
                    **client_fields)
    position = len(all_steps) - len(pending) + 1
    goals = goal_texts(store, link.episode_id) if instrument.role == "goal" else {}
    wording = instrument_wording(instrument, g.get("client_locale") or "en")
    return render_template("questionnaires/page.html", instrument=instrument, values=values,
                           errors=errors, position=position, total=len(all_steps),
                           goals=goals, wording=wording), (422 if errors else 200)


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
    crisis = clinic_settings.current(clinic)["crisis_text"]
    audit_event(action="questionnaire.support.view", outcome="allowed", even_if_failed=True,
                actor_kind="client", clinic_id=episode.clinic_id, client_id=episode.client_id,
                object_type="link", object_id=link.id)
    return render_template("questionnaires/support.html", crisis=crisis)
