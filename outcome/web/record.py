"""The therapist's client page: progress, alliance, items, goals, answers, alerts, exports.

Only the client's own therapist reaches it (supervisors have a de-identified page in
:mod:`outcome.web.supervision`). Every view, export and acknowledgement writes one audit
record, allowed or denied.
"""

from __future__ import annotations

import functools
import json

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

from outcome.core.languages import LANGUAGE_NAMES
from outcome.core.languages import SUPPORTED_LOCALES
from outcome.core.languages import is_supported
from outcome.extensions import instrument_library
from outcome.models import Alert
from outcome.models import Client
from outcome.models import Episode
from outcome.services import clinic_settings
from outcome.services import consent as consents
from outcome.services import consent_withdrawal
from outcome.services.alerts import AlertError
from outcome.services.alerts import acknowledge_alert
from outcome.services.client_record import client_record
from outcome.services.client_report import client_report
from outcome.services.client_report import client_report_pdf
from outcome.services.client_report import screen_words
from outcome.services.episode_change import EpisodeMeasureError
from outcome.services.episode_change import outcome_measures
from outcome.services.episode_change import set_episode_measures
from outcome.services.exports import episodes_bundle
from outcome.services.exports import episodes_csv
from outcome.services.progress_report import progress_report_pdf
from outcome.web.clock import now
from outcome.web.database import audit_event
from outcome.web.database import db_session
from outcome.web.database import discard_changes
from outcome.web.inputs import arg_id
from outcome.web.scoping import client_episodes
from outcome.web.scoping import own_client
from outcome.web.support import DOMAIN_LABELS
from outcome.web.support import record_support
from reports.charts import HeatmapData
from reports.charts import TrajectoryData
from reports.charts import heatmap_drawing
from reports.charts import scrolling_chart
from reports.charts import to_svg
from reports.charts import trajectory_drawing

bp = Blueprint("record", __name__, url_prefix="/clients")


@functools.lru_cache(maxsize=256)
def _svg(data: TrajectoryData | HeatmapData, description: str, key: str) -> str:
    # reportlab's SVG renderer costs about 0.1 s for a 20-session heat map; the same
    # data always draws the same chart, so each process keeps the recent ones.
    drawing = (heatmap_drawing(data) if isinstance(data, HeatmapData)
               else trajectory_drawing(data))
    return scrolling_chart(to_svg(drawing, data.title, description, key=key), key)


def chart_svgs(record) -> dict[str, list]:
    """Inline SVG for every chart of a record, keyed so ids stay unique on the page."""
    return {
        "outcome": [(c, _svg(c.data, c.description, f"o-{c.instrument_id}"))
                    for c in record.outcome_charts],
        "alliance": [(c, _svg(c.data, c.description, f"a-{c.instrument_id}"))
                     for c in record.alliance_charts],
        "heatmaps": [(h, _svg(h.data, h.description, f"h-{h.instrument_id}"))
                     for h in record.heatmaps],
    }


def episode_in_url(client: Client) -> bool:
    """Whether the ``episode`` query parameter, if any, names one of the client's episodes
    (a 400 naming it if it is not an id at all)."""
    wanted = arg_id("episode")
    return wanted is None or any(e.id == wanted for e in client_episodes(client))


def chosen_episode(episodes: list[Episode]) -> Episode | None:
    """The episode named in the URL (checked by :func:`episode_in_url`), else the newest."""
    wanted = arg_id("episode")
    return next((e for e in episodes if e.id == wanted),
                episodes[0] if episodes and wanted is None else None)


def tombstone(code: str) -> tuple[str, int] | None:
    """The page of an erased client of the viewer's clinic (issue 20), with status 410
    Gone: the code, the date and the reason, nothing else; None for any other code. The
    view is audited as ``client.view`` denied (nothing of the client was shown)."""
    person = db_session().scalar(select(Client).where(
        Client.code == code, Client.clinic_id == current_user.clinic_id,
        Client.erased_dt.is_not(None)))
    if person is None:
        return None
    audit_event(action="client.view", outcome="denied", actor_user_id=current_user.id,
                clinic_id=current_user.clinic_id, client_id=person.id, object_type="client",
                object_id=person.code, even_if_failed=True)
    return render_template("record/erased.html", person=person), 410


@bp.route("/<code>")
@login_required
def page(code: str) -> str | tuple[str, int]:
    erased = tombstone(code)
    if erased is not None:
        return erased
    client, _episode, _clinic = own_client(code, "client.view", check=episode_in_url)
    episodes = client_episodes(client)
    episode = chosen_episode(episodes)
    record = (client_record(db_session(), episode, instrument_library(current_app), full=True,
                            locale=str(get_locale()))
              if episode else None)
    return render_template("record/page.html", client=client, episodes=episodes,
                           episode=episode, record=record,
                           charts=chart_svgs(record) if record else None,
                           outcome_measures=outcome_measures(instrument_library(current_app)),
                           # issue 19: the support check and action plan of the episode
                           support=(record_support(episode, instrument_library(current_app))
                                    if episode else None),
                           domain_labels=DOMAIN_LABELS,
                           # issue 20: the client's consent
                           consent=consents.status(db_session(), client),
                           consent_versions=consents.paper_versions(
                               db_session(), client.clinic_id, client.locale),
                           consent_online=clinic_settings.current(_clinic)["consent_online"])


@bp.route("/<code>/consent", methods=["POST"])
@login_required
def consent_paper(code: str) -> Response:
    """Record the client's decision on the clinic's paper consent form (channel
    ``staff``), about the version of the text in the client's language chosen on the
    form (``text``; the current one when none is stored yet): ``agreed``, or
    ``declined`` (a refusal, or a withdrawal when they had agreed). Audited as
    ``consent.record``."""
    client, _episode, clinic = own_client(code, "consent.record")
    store = db_session()
    choice = request.form.get("decision", "")
    if choice not in ("agreed", "declined"):
        discard_changes()
        flash(_("Choose agreed or declined."), "error")
        return redirect(url_for(".page", code=client.code) + "#consent")
    chosen = request.form.get("text", "")
    if chosen:  # the version on the form the client signed
        versions = {str(t.id): t
                    for t in consents.paper_versions(store, clinic.id, client.locale)}
        if chosen not in versions:
            discard_changes()
            flash(_("Choose a version of the clinic's consent text in the client's "
                    "language."), "error")
            return redirect(url_for(".page", code=client.code) + "#consent")
        text = versions[chosen]
    else:  # none stored yet: the current one (version 1, from the shipped text)
        text = consents.current_text(store, clinic, client.locale, now())
    user = current_user._get_current_object()
    if choice == "agreed":
        consents.record_decision(store, client=client, text=text, decision="agreed",
                                 channel="staff", now=now(), user=user)
    else:
        consent_withdrawal.decline(store, client=client, text=text, channel="staff",
                                   now=now(), user=user, base_url=current_app.config["BASE_URL"])
    # Audited by own_client above ("consent.record": one event per request).
    flash(_("Consent decision recorded."), "info")
    return redirect(url_for(".page", code=client.code) + "#consent")


@bp.route("/<code>/alerts/<int:alert_id>/acknowledge", methods=["POST"])
@login_required
def acknowledge(code: str, alert_id: int) -> Response:
    store = db_session()
    alert = store.get(Alert, alert_id)
    episode = store.get(Episode, alert.episode_id) if alert else None
    client, _episode, _clinic = own_client(
        code, "alert.acknowledge",
        check=lambda c: episode is not None and episode.client_id == c.id)
    assert alert is not None and episode is not None
    try:
        acknowledge_alert(store, alert, current_user, request.form.get("note", ""), now(),
                          instrument_library(current_app))
    except AlertError as exc:
        discard_changes()
        flash(str(exc), "error")
    else:
        flash(_("Alert acknowledged."), "info")
    return redirect(url_for(".page", code=client.code, episode=episode.id) + "#alerts")


@bp.route("/<code>/episodes/<int:episode_id>/measures", methods=["POST"])
@login_required
def episode_measures(code: str, episode_id: int) -> Response:
    """The episode's primary measure and problem descriptor (domain.md section 3); its
    change since intake is recomputed at once. Recorded as ``episode.measures.change``."""
    store = db_session()
    episode = store.get(Episode, episode_id)
    client, _episode, _clinic = own_client(
        code, "episode.measures.change",
        check=lambda c: episode is not None and episode.client_id == c.id)
    assert episode is not None
    try:
        set_episode_measures(store, episode, primary=request.form.get("primary", "").strip(),
                             descriptor=request.form.get("descriptor", "").strip(),
                             library=instrument_library(current_app), now=now())
    except EpisodeMeasureError as exc:
        discard_changes()
        flash(str(exc), "error")
    else:
        flash(_("Primary measure and problem saved; the change since intake is "
                "recomputed."), "info")
    return redirect(url_for(".page", code=client.code, episode=episode.id) + "#change")


@bp.route("/<code>/export.csv")
@login_required
def export_csv(code: str) -> Response:
    client, _episode, _clinic = own_client(code, "client.export.csv")
    body = episodes_csv(db_session(), client, client_episodes(client),
                        instrument_library(current_app))
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{client.code}.csv"',
        "Cache-Control": "no-store"})


@bp.route("/<code>/export.fhir.json")
@login_required
def export_fhir(code: str) -> Response:
    client, _episode, _clinic = own_client(code, "client.export.fhir")
    bundle = episodes_bundle(db_session(), client, client_episodes(client),
                             instrument_library(current_app), now())
    return Response(json.dumps(bundle, indent=1), mimetype="application/fhir+json", headers={
        "Content-Disposition": f'attachment; filename="{client.code}.fhir.json"',
        "Cache-Control": "no-store"})


@bp.route("/<code>/report.pdf")
@login_required
def report_pdf(code: str) -> Response:
    """The progress report of the episode on the page (``?episode=``, else the newest)."""
    client, _episode, _clinic = own_client(code, "client.report.pdf", check=episode_in_url)
    body = progress_report_pdf(db_session(), client, chosen_episode(client_episodes(client)),
                               instrument_library(current_app), now(),
                               locale=str(get_locale()))  # the reader's language
    return Response(body, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{client.code}-progress.pdf"',
        "Cache-Control": "no-store"})


# --- issue 18: the client report, reviewed together -------------------------------------


def review_language(client: Client) -> str:
    """The language of the client report: ``?lang=`` if given (a 400 naming the parameter
    for anything but a supported code), else the client's own language."""
    wanted = request.args.get("lang", "").strip()
    if not wanted:
        return client.locale if is_supported(client.locale) else SUPPORTED_LOCALES[0]
    if not is_supported(wanted):
        abort(400, description=_("The parameter “%(name)s” must be one of: %(codes)s.",
                                 name="lang", codes=", ".join(SUPPORTED_LOCALES)))
    return wanted


def _review_check(client: Client) -> bool:
    """The episode and language in the URL (a 400 naming a malformed one, audited)."""
    review_language(client)
    return episode_in_url(client)


@bp.route("/<code>/review")
@login_required
def review(code: str) -> str:
    """The client report on screen, to review with the client (issue 18): their charts
    with the expected band, what changed and their goals, in the client's language (the
    therapist may preview another). Never sent; recorded as ``client.review``."""
    client, _episode, _clinic = own_client(code, "client.review", check=_review_check)
    locale = review_language(client)
    episodes = client_episodes(client)
    episode = chosen_episode(episodes)
    report = client_report(db_session(), client, episode, instrument_library(current_app),
                           now(), locale)
    svgs = [_svg(m.chart, m.description, f"r-{n}") if m.chart is not None else None
            for n, m in enumerate(report.measures)]
    return render_template("record/review.html", client=client, episodes=episodes,
                           episode=episode, report=report,
                           measures=list(zip(report.measures, svgs, strict=True)),
                           words=screen_words(report), locale=locale,
                           client_locale=client.locale, languages=LANGUAGE_NAMES,
                           supported=SUPPORTED_LOCALES)


@bp.route("/<code>/review.pdf")
@login_required
def review_pdf(code: str) -> Response:
    """The client report as a one-page PDF for the therapist to give the client (issue
    18), in the language on the review page. Recorded as ``client.review.pdf``."""
    client, _episode, _clinic = own_client(code, "client.review.pdf", check=_review_check)
    body = client_report_pdf(db_session(), client, chosen_episode(client_episodes(client)),
                             instrument_library(current_app), now(),
                             review_language(client))
    return Response(body, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{client.code}-for-client.pdf"',
        "Cache-Control": "no-store"})
