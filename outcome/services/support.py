"""After the signal (issue 19): support checks, action plans and their follow-up.

The loop of ``../shared/design/support.md``: a signal (red, reliable deterioration, an
unrepaired rupture) offers a support check; the client answers it through a link of
purpose ``support``; its domain results (:mod:`outcome.core.support`) suggest steps; the
therapist records an action plan, which resolves the signal's alerts; at the review date
the follow-up says whether the client came back on track, and the plan is closed or
revised. Functions flush; the edge commits.

- While an episode has an open plan, the *condition* it answered raises no new alert
  (red when it was made for red, the ruptures it resolved: the plan is the response; its
  follow-up says whether it worked); a red after a plan made when the client was not
  red, or a new rupture, still alerts (:func:`outcome.services.signals.plan_holds`).
  Closing the plan recomputes the episode's signals, so a condition that persists is
  alerted again. An unrepaired rupture is an *event*: a new one after the plan alerts.
- A support link carries the check's battery (the support measures by domain); the
  alliance domain is left out when the episode has an alliance score at most
  ``support_alliance_recent_days`` old (clinic setting, default 14), which is reused.
- Callers audit what they create, close or cancel (``support.check.start``,
  ``support.check.cancel``, ``support.plan.record``, ``support.plan.close``), as the other
  services' callers do; the scheduler's automatic checks are audited by the job.

INTERFACE (issue 19): implemented by the "support-services" helper. Signatures are the
contract other helpers code against; do not change them without saying so.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import asdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.core import support as core_support
from outcome.core.episode_change import primary_measure
from outcome.core.support import CheckReading
from outcome.core.trajectory import ON_TRACK_COLOURS
from outcome.models import ActionPlan
from outcome.models import Administration
from outcome.models import Alert
from outcome.models import Client
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import QuestionnaireLink
from outcome.models import SupportCheck
from outcome.models import User
from outcome.models.support import CHECK_REASONS
from outcome.models.support import STEP_DECISIONS
from outcome.services import audit
from outcome.services import clinic_settings
from outcome.services import consent
from outcome.services.explanations import say
from outcome.services.instruments import instrument_statuses
from outcome.services.links import CollectionStopped
from outcome.services.links import NothingToAsk
from outcome.services.links import check_link
from outcome.services.links import issue_link
from outcome.services.links import revoke
from outcome.services.mail import LINK_SLOT
from outcome.services.mail import link_token
from outcome.services.mail import new_link_nonce
from outcome.services.mail import queue_email
from outcome.services.reminders import HELLO
from outcome.services.reminders import ONLY_FOR_YOU
from outcome.services.signals import ScoreColour
from outcome.services.signals import colour_history
from outcome.services.signals import lock_episode
from outcome.services.signals import update_episode_signals
from outcome.services.staff import StaffError
from outcome.services.submissions import link_key_prefix
from questionnaires import support as support_rules
from questionnaires.loader import InstrumentLibrary

# The alert kinds an action plan resolves; a bare acknowledgement note is refused for them
# (support.md, "The loop", 4). Critical answers keep their acknowledgement.
PLAN_KINDS = ("not_on_track", "rupture", "unrepaired_rupture")
NOTE_MAX = 2000
STEP_TEXT_MAX = 500
SUGGESTION_ID_MAX = 100
REVIEW_MAX_DAYS = 90  # a plan is reviewed within about three months (support.md)
# The alert kinds that offer a check (support.md, "The loop", 1): red or reliable
# deterioration (both ``not_on_track``; the explanation's rule tells them apart), and an
# unrepaired rupture. A rupture still waiting for repair is not a reason yet.
OFFER_KINDS = ("not_on_track", "unrepaired_rupture")
DETERIORATION_RULE = "progress.reliable_deterioration_since_intake"


def N_(message: str) -> str:  # the gettext convention for "mark only"
    return message


# The client's e-mail for a check: no clinical content (no measure, no score, no reason).
CHECK_SUBJECT = N_("A few questions from %(clinic)s")
CHECK_FIRST = N_("Your therapist would like to hear how things are going for you. A few "
                 "short questions take a few minutes:")


class SupportError(StaffError):
    """A request about a check or a plan that cannot be done; the message says why.

    As :class:`~outcome.services.staff.StaffError`: ``message`` is the untranslated
    template (marked for translation), ``params`` its values, ``field`` the input at
    fault (``steps``, ``note``, ``review_on``), so an edge renders it in the reader's
    language: ``gettext(exc.message) % exc.params``.
    """


@dataclass(frozen=True)
class Offer:
    """Why a support check is offered for an episode now, or None from :func:`offer_for`."""

    reason: str            # one of models.support.CHECK_REASONS except "therapist"
    alert_id: int | None   # the open alert behind it


@dataclass(frozen=True)
class CheckView:
    """A check as the therapist sees it: its row, its state and (once answered) reading."""

    check: SupportCheck
    reading: CheckReading | None   # None until answered


@dataclass(frozen=True)
class FollowUp:
    """Whether the client came back on track since a plan (support.md, "The loop", 5).

    ``colour_then``/``colour_now``: the main measure's colour at the plan and now;
    ``score_then``/``score_now`` and ``change`` (now - then, in the measure's points);
    ``sessions_since``: scored sessions after the plan; ``back_on_track``: the colour
    now is on track, green or white (in the functional range), per
    :data:`outcome.core.trajectory.ON_TRACK_COLOURS` (domain.md section 4: yellow is
    less progress than expected, still off track); ``no_longer_red``: the plan's
    baseline colour was red and the colour now is not red (yellow included), False
    when the baseline was not red or the colour is still red. Both None when no score
    has come since the plan (or it has no colour).
    """

    instrument_id: str | None
    colour_then: str | None
    colour_now: str | None
    score_then: float | None
    score_now: float | None
    change: float | None
    sessions_since: int
    back_on_track: bool | None
    is_due: bool           # the review date has come
    no_longer_red: bool | None = None  # red at the plan and not red now (None: no score)


@dataclass(frozen=True)
class MailContext:
    """What e-mailing a check's link needs: the site's address and the app's secret key
    (the link's token is derived from it and the message's nonce, never stored)."""

    base_url: str
    secret_key: str


# --- helpers ------------------------------------------------------------------------------


def _clinic(session: Session, episode: Episode) -> Clinic:
    clinic = session.get(Clinic, episode.clinic_id)
    assert clinic is not None
    return clinic


def clinic_today(clinic: Clinic, now: dt.datetime) -> dt.date:
    """The clinic's calendar day at ``now`` (its time zone): review dates are days there."""
    return now.astimezone(zoneinfo.ZoneInfo(clinic.timezone)).date()


def _open_alerts(session: Session, episode_id: int, kinds: tuple[str, ...]) -> list[Alert]:
    return list(session.scalars(select(Alert).where(
        Alert.episode_id == episode_id, Alert.status == "open", Alert.kind.in_(kinds))
        .order_by(Alert.raised_dt, Alert.id)))


def _reason_of(alert: Alert) -> str:
    if alert.kind == "unrepaired_rupture":
        return "unrepaired_rupture"
    return "deterioration" if (alert.detail or {}).get("rule") == DETERIORATION_RULE else "red"


def waiting_check(session: Session, episode_id: int, now: dt.datetime) -> SupportCheck | None:
    """The episode's check still waiting for the client (sent, its link still usable)."""
    for check in session.scalars(select(SupportCheck).where(
            SupportCheck.episode_id == episode_id, SupportCheck.status == "sent")
            .order_by(SupportCheck.id.desc())):
        _expire_if_closed(session, check, now)
        if check.status == "sent":
            return check
    return None


def _expire_if_closed(session: Session, check: SupportCheck, now: dt.datetime) -> None:
    """A sent check whose link can no longer be answered (window closed, revoked) is
    ``expired``; flush."""
    if check.status != "sent":
        return
    link = session.get(QuestionnaireLink, check.link_id) if check.link_id else None
    if link is not None and link.used_dt is not None:
        return  # answered; marked by the link's last page
    if link is None or check_link(link, now) in ("expired", "revoked", "unknown"):
        check.status = "expired"
        session.flush()


def _available(session: Session, clinic: Clinic, library: InstrumentLibrary) -> set[str]:
    return {s.instrument.id for s in instrument_statuses(session, clinic.id, library)
            if s.is_available}


def _not_from_support(episode_id: int) -> Any:
    """A where-clause: the administration did not come through one of the episode's
    support links (those answers are the check's, not the episode's series, as in
    :func:`outcome.services.signals.load_series`)."""
    support_links = select(QuestionnaireLink.id).where(
        QuestionnaireLink.episode_id == episode_id, QuestionnaireLink.purpose == "support")
    return or_(Administration.link_id.is_(None), Administration.link_id.not_in(support_links))


def recent_alliance(session: Session, episode: Episode, library: InstrumentLibrary,
                    now: dt.datetime) -> Administration | None:
    """The episode's latest valid client alliance score of its own series at most
    ``support_alliance_recent_days`` days old (clinic setting, default 14), or None.
    An alliance answered through a support link is the check's, never reused."""
    days = int(clinic_settings.current(_clinic(session, episode))["support_alliance_recent_days"])
    alliance_ids = [i.id for i in library if i.role == "alliance"]
    if not alliance_ids:
        return None
    superseded = select(Administration.supersedes_id).where(
        Administration.supersedes_id.is_not(None))
    return session.scalar(select(Administration).where(
        Administration.episode_id == episode.id, Administration.respondent == "client",
        Administration.instrument_id.in_(alliance_ids), Administration.is_valid.is_(True),
        Administration.id.not_in(superseded), _not_from_support(episode.id),
        Administration.completed_dt >= now - dt.timedelta(days=days),
        Administration.completed_dt <= now)
        .order_by(Administration.completed_dt.desc(), Administration.id.desc()).limit(1))


def _battery(session: Session, clinic: Clinic, library: InstrumentLibrary,
             reuse_alliance: bool) -> list[dict[str, str]]:
    """The check's measures by domain (:func:`outcome.core.support.check_battery`): the
    clinic's own alliance measure (its post-session measure) when available, else the
    rules' candidates, within the rules' item budget."""
    available = _available(session, clinic, library)
    alliance = clinic_settings.current(clinic)["post_instrument"] or None
    counts = {i.id: len(i.items) for i in library if i.id in available}
    return [dict(entry) for entry in core_support.check_battery(
        support_rules.load_rules(), available, alliance, reuse_alliance, counts)]


# --- checks -------------------------------------------------------------------------------


def offer_for(session: Session, episode: Episode) -> Offer | None:
    """The reason a support check is offered for the episode now, or None.

    Offered for an open ``not_on_track`` alert (reason ``red``, or ``deterioration`` when
    its rule is reliable deterioration since intake) or an open ``unrepaired_rupture``
    alert, on an episode not ended, with no open plan and no check started since that
    alert was raised (one waiting, answered or otherwise; a cancelled or expired one
    does not count).
    """
    if episode.closed_on is not None or active_plan(session, episode.id) is not None:
        return None
    alerts = _open_alerts(session, episode.id, OFFER_KINDS)
    if not alerts:
        return None
    alert = alerts[0]
    since = session.scalar(select(SupportCheck.id).where(
        SupportCheck.episode_id == episode.id,
        SupportCheck.status.in_(("sent", "answered")),
        SupportCheck.started_dt >= alert.raised_dt).limit(1))
    if since is not None:
        return None
    return Offer(_reason_of(alert), alert.id)


def _started_since(session: Session, episode_id: int, alert_id: int | None) -> bool:
    """Whether any check (whatever its status) was started on the episode since the
    alert was raised."""
    alert = session.get(Alert, alert_id) if alert_id is not None else None
    if alert is None:
        return False
    return session.scalar(select(SupportCheck.id).where(
        SupportCheck.episode_id == episode_id,
        SupportCheck.started_dt >= alert.raised_dt).limit(1)) is not None


def start_check(session: Session, *, episode: Episode, user: User | None,
                now: dt.datetime, library: InstrumentLibrary, alert: Alert | None = None,
                reason: str | None = None, mail: MailContext | None = None
                ) -> tuple[SupportCheck, QuestionnaireLink, str]:
    """Create a check and its link (purpose ``support``); return the check, link and token.

    ``user`` None: offered automatically (clinic setting ``support_check_auto``); it
    needs an offer (:func:`offer_for`). A therapist may start one without a signal
    (reason ``therapist``). The alliance domain is left out when the episode has a
    recent alliance score (:func:`recent_alliance`), which is reused. ``mail``: also
    e-mail the link to the client when they have an address (the message names no
    measure and no reason; the token is derived from its nonce). The token is returned
    either way, to show or copy for a client without e-mail. Raises
    :class:`SupportError` when the episode is ended, a check is already waiting, or no
    support measure is available; nothing is stored then. Audited by the caller.
    """
    if episode.closed_on is not None:
        raise SupportError(N_("This episode has ended: a support check is for an episode "
                              "in progress."))
    lock_episode(session, episode.id)  # two starts at once: the second sees the first
    if waiting_check(session, episode.id, now) is not None:
        raise SupportError(N_("A support check is already waiting for the client's "
                              "answers; cancel it first to send a new one."))
    offer = offer_for(session, episode)
    if alert is not None and alert.episode_id != episode.id:
        raise SupportError(N_("That alert belongs to another episode."))
    if alert is not None and alert.kind not in OFFER_KINDS:
        raise SupportError(N_("A support check follows a not-on-track or unrepaired-rupture "
                              "alert, not this kind."))
    if reason is None:
        if alert is not None:
            reason = _reason_of(alert)
        elif offer is not None:
            reason = offer.reason
        else:
            reason = "therapist"
    if reason == "therapist" and user is None:
        raise SupportError(N_("No signal offers a support check for this episode now."))
    if alert is None and offer is not None and reason != "therapist":
        alert = session.get(Alert, offer.alert_id)
    if reason not in CHECK_REASONS:
        raise SupportError(N_("Unknown reason %(reason)s: one of %(known)s."),
                           reason=repr(reason), known=", ".join(CHECK_REASONS))
    clinic = _clinic(session, episode)
    reused = recent_alliance(session, episode, library, now)
    battery = _battery(session, clinic, library, reused is not None)
    if not battery:
        raise SupportError(N_("No support measure is available to this clinic (none is "
                              "installed, or its licence is not attested)."))
    client = session.get(Client, episode.client_id)
    nonce = new_link_nonce() if mail is not None and client is not None and client.email \
        else None
    try:
        link, token = issue_link(
            session, episode=episode, purpose="support", now=now, library=library,
            battery=[entry["instrument"] for entry in battery],
            token=link_token(mail.secret_key, nonce) if mail is not None and nonce else None)
    except CollectionStopped:
        raise SupportError(N_("No check was started: the client declined or withdrew "
                              "consent to questionnaires.")) from None
    except NothingToAsk:
        raise SupportError(N_("No support measure is available to this clinic (none is "
                              "installed, or its licence is not attested).")) from None
    check = SupportCheck(
        episode_id=episode.id, alert_id=alert.id if alert is not None else None,
        reason=reason, started_by_id=user.id if user is not None else None, started_dt=now,
        link_id=link.id, battery=[e for e in battery if e["instrument"] in link.battery],
        reused_alliance_id=reused.id if reused is not None else None, status="sent")
    session.add(check)
    session.flush()
    if mail is not None and nonce is not None and client is not None and client.email:
        queue_email(session, clinic_id=clinic.id, kind="support",
                    dedupe_key=f"support:{check.id}", to_address=client.email,
                    subject=say(CHECK_SUBJECT, client.locale, clinic=clinic.name),
                    body=_check_body(clinic, mail.base_url, client.locale), now=now,
                    link_nonce=nonce)
    return check, link, token


def _check_body(clinic: Clinic, base_url: str, locale: str | None) -> str:
    return (f"{say(HELLO, locale)}\n\n{say(CHECK_FIRST, locale)}\n\n"
            f"{base_url.rstrip('/')}/q/{LINK_SLOT}\n\n{say(ONLY_FOR_YOU, locale)}\n\n"
            f"{clinic.name}\n")


def check_scores(session: Session, check: SupportCheck) -> dict[str, dict[str, Any]]:
    """The stored scores of the check's answered instruments: instrument id -> scores."""
    link = session.get(QuestionnaireLink, check.link_id) if check.link_id else None
    if link is None:
        return {}
    rows = session.scalars(select(Administration).where(
        Administration.idempotency_key.startswith(link_key_prefix(link)))
        .order_by(Administration.id)).all()
    return {row.instrument_id: dict(row.scores or {}) for row in rows}


def _open_at(session: Session, episode_id: int, kinds: tuple[str, ...],
             moment: dt.datetime) -> list[Alert]:
    """The episode's alerts of ``kinds`` that were open at ``moment``, read from their
    timestamps: raised by then and not resolved or acknowledged before it."""
    return list(session.scalars(select(Alert).where(
        Alert.episode_id == episode_id, Alert.kind.in_(kinds), Alert.raised_dt <= moment,
        or_(Alert.resolved_dt.is_(None), Alert.resolved_dt >= moment),
        or_(Alert.acknowledged_dt.is_(None), Alert.acknowledged_dt >= moment))
        .order_by(Alert.raised_dt, Alert.id)))


def _series_alliance(session: Session, episode_id: int, library: InstrumentLibrary,
                     until: dt.datetime) -> Administration | None:
    """The episode's latest client alliance administration of its own series (not
    through a support link) up to ``until``, or None."""
    alliance_ids = [i.id for i in library if i.role == "alliance"]
    if not alliance_ids:
        return None
    return session.scalar(select(Administration).where(
        Administration.episode_id == episode_id, Administration.respondent == "client",
        Administration.instrument_id.in_(alliance_ids), _not_from_support(episode_id),
        Administration.completed_dt <= until)
        .order_by(Administration.completed_dt.desc(), Administration.id.desc()).limit(1))


def _alliance_reading(session: Session, check: SupportCheck,
                      library: InstrumentLibrary) -> dict[str, Any] | None:
    """The episode's alliance reading for :func:`outcome.core.support.read_check`, as it
    stood when the client answered (``answered_dt``).

    ``rupture``: a rupture or unrepaired-rupture alert was open then (from the alerts'
    timestamps, so a plan recorded later changes nothing), or the check was started for
    an unrepaired rupture (domain.md section 5). Always given when the episode has an
    alliance series or the check's reason is a rupture, so an alliance measure asked in
    the check is judged with the rupture too. ``score``/``administration``: the reused
    alliance score when the check reused one, else None (the asked measure's score is
    the domain's); ``instrument``: the reused or series measure. None when there is
    neither a series, nor a reused score, nor a rupture reason.
    """
    moment = check.answered_dt or check.started_dt
    row = session.get(Administration, check.reused_alliance_id) \
        if check.reused_alliance_id is not None else None
    series = row or _series_alliance(session, check.episode_id, library, moment)
    open_rupture = bool(_open_at(session, check.episode_id,
                                 ("rupture", "unrepaired_rupture"), moment))
    rupture = open_rupture or check.reason == "unrepaired_rupture"
    if series is None and not rupture:
        return None
    instrument = series.instrument_id if series is not None else None
    if instrument is None and check.alert_id is not None:
        # A rupture reason without a series read: the alert's administration names it.
        alert = session.get(Alert, check.alert_id)
        trigger = session.get(Administration, alert.administration_id) \
            if alert is not None and alert.administration_id is not None else None
        instrument = trigger.instrument_id if trigger is not None else None
    if row is None:
        return {"instrument": instrument, "score": None, "rupture": rupture,
                "administration": None, "completed": None}
    scores = row.scores or {}
    return {"instrument": row.instrument_id, "score": scores.get("primary", row.total),
            "rupture": rupture, "administration": row.id,
            "completed": row.completed_dt.isoformat()}


def view_check(session: Session, check: SupportCheck, library: InstrumentLibrary,
               now: dt.datetime | None = None) -> CheckView:
    """The check and, once answered, its domain results and suggestions.

    Read by :func:`outcome.core.support.read_check` from the check's stored scores, the
    episode's alliance reading (:func:`_alliance_reading`: the reused score, if any, and
    the rupture status) and whether a critical answer's alert was open on the episode
    (then the "risk" suggestions apply), both as they stood when the client answered
    (``answered_dt``, from the alerts' timestamps), so the results do not change after
    a plan or an acknowledgement. ``now``: a sent check whose link has closed is marked
    ``expired`` first. Each explanation names its measure by its short name (e.g.
    "Readiness (not validated)"), never its id.
    """
    if now is not None:
        _expire_if_closed(session, check, now)
    if check.status != "answered":
        return CheckView(check, None)
    # As the check's answers stood (answered_dt): a critical answer's alert open then.
    critical = bool(_open_at(session, check.episode_id, ("critical_item",),
                             check.answered_dt or check.started_dt))
    episode = session.get(Episode, check.episode_id)
    clinic = session.get(Clinic, episode.clinic_id) if episode is not None else None
    # The measures by their names (never an id on the page), each asked alliance measure
    # judged by its own cutoff (the SRS-type's < 36), and "not answered" told apart from
    # "no measure available".
    reading = core_support.read_check(
        support_rules.load_rules(), check_scores(session, check),
        alliance=_alliance_reading(session, check, library), critical=critical,
        alliance_instrument=(clinic_settings.current(clinic)["post_instrument"] or None
                             if clinic is not None else None),
        cutoffs={i.id: i.cutoff for i in library if i.cutoff is not None},
        battery=check.battery or None,
        names={i.id: i.short_name for i in library})
    return CheckView(check, reading)


def checks_for(session: Session, episode_id: int) -> list[SupportCheck]:
    """The episode's checks, newest first."""
    return list(session.scalars(select(SupportCheck).where(
        SupportCheck.episode_id == episode_id)
        .order_by(SupportCheck.started_dt.desc(), SupportCheck.id.desc())))


def cancel_check(session: Session, check: SupportCheck, user: User, now: dt.datetime) -> None:
    """Withdraw a check not yet answered; its link is revoked. Audited by the caller."""
    _expire_if_closed(session, check, now)
    if check.status != "sent":
        raise SupportError(N_("This check cannot be cancelled: it is %(status)s."),
                           status=check.status)
    check.status = "cancelled"
    link = session.get(QuestionnaireLink, check.link_id) if check.link_id else None
    if link is not None:
        revoke(session, link, now)
    session.flush()


# --- plans --------------------------------------------------------------------------------


def _steps(steps: Any) -> list[dict[str, Any]]:
    domains = core_support.DOMAINS + core_support.EXTRA_DOMAINS
    if not isinstance(steps, list) or not steps:
        raise SupportError(N_("A plan needs at least one step."), field="steps")
    out = []
    for n, step in enumerate(steps, start=1):
        if not isinstance(step, dict):
            raise SupportError(N_("Step %(n)s is not a step."), field="steps", n=n)
        domain = step.get("domain")
        if domain not in domains:
            raise SupportError(N_("Step %(n)s: unknown domain %(domain)s; one of %(known)s."),
                               field="steps", n=n, domain=repr(domain),
                               known=", ".join(domains))
        decision = step.get("decision")
        if decision not in STEP_DECISIONS:
            raise SupportError(N_("Step %(n)s: the decision must be one of %(known)s."),
                               field="steps", n=n, known=", ".join(STEP_DECISIONS))
        suggestion = step.get("suggestion")
        if suggestion is not None and (not isinstance(suggestion, str) or not suggestion
                                       or len(suggestion) > SUGGESTION_ID_MAX):
            raise SupportError(N_("Step %(n)s: the suggestion must be a suggestion's id."),
                               field="steps", n=n)
        if decision == "own" and suggestion is not None:
            raise SupportError(N_("Step %(n)s: a step of your own has no suggestion."),
                               field="steps", n=n)
        if decision != "own" and suggestion is None:
            raise SupportError(N_("Step %(n)s: an accepted, edited or declined step names "
                                  "the suggestion it comes from."), field="steps", n=n)
        text = step.get("text")
        text = text.strip() if isinstance(text, str) else ""
        if not text:
            raise SupportError(N_("Step %(n)s: please write what will be done."),
                               field="steps", n=n)
        if len(text) > STEP_TEXT_MAX:
            raise SupportError(N_("Step %(n)s: the text is too long: at most %(max)s "
                                  "characters."), field="steps", n=n, max=STEP_TEXT_MAX)
        out.append({"domain": domain, "suggestion": suggestion, "text": text,
                    "decision": decision})
    if all(step["decision"] == "declined" for step in out):
        raise SupportError(N_("A plan needs at least one step that is not declined."),
                           field="steps")
    return out


def _note(note: Any) -> str:
    text = (note or "").strip() if isinstance(note, str | None) else None
    if text is None:
        raise SupportError(N_("The note must be text."), field="note")
    if len(text) > NOTE_MAX:
        raise SupportError(N_("The note is too long: at most %(max)s characters."),
                           field="note", max=NOTE_MAX)
    return text


def main_measure(session: Session, episode: Episode) -> str:
    """The episode's main measure: its own primary measure, else the clinic's."""
    settings = clinic_settings.current(_clinic(session, episode))
    return primary_measure(episode.primary_instrument_id, str(settings["primary_measure"]))


def _history(session: Session, episode: Episode, instrument_id: str,
             library: InstrumentLibrary, until: dt.datetime) -> list[ScoreColour]:
    return [h for h in colour_history(session, episode, instrument_id, library)
            if h.completed_dt <= until]


def _latest(session: Session, episode: Episode, library: InstrumentLibrary,
            now: dt.datetime) -> dict[str, Any]:
    """The main measure's latest score up to ``now`` with the colour it had then
    (:func:`outcome.services.signals.colour_history`), its session and administration;
    score, colour, session and administration None before any score."""
    instrument_id = main_measure(session, episode)
    history = _history(session, episode, instrument_id, library, now)
    if not history:
        return {"instrument": instrument_id, "score": None, "colour": None, "session": None,
                "administration": None}
    last = history[-1]
    return {"instrument": instrument_id, "score": last.score, "colour": last.colour,
            "session": last.session, "administration": last.administration_id}


def record_plan(session: Session, *, episode: Episode, user: User,
                steps: list[dict[str, Any]], note: str, review_on: dt.date,
                now: dt.datetime, library: InstrumentLibrary,
                check: SupportCheck | None = None,
                revises: ActionPlan | None = None) -> ActionPlan:
    """Record an action plan; resolve the episode's open alerts of :data:`PLAN_KINDS`.

    ``steps``: ``{"domain", "suggestion" (id or None), "text", "decision"}`` each, with
    at least one step not declined; ``domain`` one of the check's domains or
    ``formulation``/``risk``; ``text`` 1 to 500 characters; ``decision`` one of
    ``STEP_DECISIONS`` (``own``: no suggestion; the others name theirs). ``note`` at most
    2,000 characters. ``review_on`` after today (the clinic's day) and at most 90 days
    ahead. ``revises``: the open plan it replaces (marked ``revised``); without it, an
    episode with an open plan is refused. The plan keeps the main measure's latest score,
    colour and session up to ``now`` as its ``baseline`` (the colour that score had).
    The episode's open alerts of :data:`PLAN_KINDS` are resolved with the plan's id.
    Nothing is stored when refused. Audited by the caller.
    """
    if episode.closed_on is not None:
        raise SupportError(N_("This episode has ended: a plan is for an episode in "
                              "progress."))
    clean_steps = _steps(steps)
    text = _note(note)
    today = clinic_today(_clinic(session, episode), now)
    if not isinstance(review_on, dt.date) or isinstance(review_on, dt.datetime):
        raise SupportError(N_("The review date must be a date."), field="review_on")
    if review_on <= today:
        raise SupportError(N_("The review date must be after today."), field="review_on")
    if review_on > today + dt.timedelta(days=REVIEW_MAX_DAYS):
        raise SupportError(N_("The review date must be within %(days)s days."),
                           field="review_on", days=REVIEW_MAX_DAYS)
    if check is not None and check.episode_id != episode.id:
        raise SupportError(N_("That support check belongs to another episode."))
    if check is not None and check.status in ("cancelled",):
        raise SupportError(N_("That support check was cancelled."))
    lock_episode(session, episode.id)
    current = active_plan(session, episode.id)
    if revises is not None:
        session.refresh(revises)
        if revises.episode_id != episode.id:
            raise SupportError(N_("The plan to revise belongs to another episode."))
        if revises.status != "open":
            raise SupportError(N_("Only an open plan can be revised; this one is %(status)s."),
                               status=revises.status)
    elif current is not None:
        raise SupportError(N_("This episode already has an open plan: revise it or close "
                              "it."))
    if revises is not None:
        revises.status, revises.closed_dt, revises.closed_by_id = "revised", now, user.id
        session.flush()
    plan = ActionPlan(
        episode_id=episode.id, support_check_id=check.id if check is not None else None,
        revised_from_id=revises.id if revises is not None else None,
        created_by_id=user.id, created_dt=now, steps=clean_steps, note=text,
        review_on=review_on, baseline=_latest(session, episode, library, now), status="open")
    session.add(plan)
    session.flush()
    for alert in _open_alerts(session, episode.id, PLAN_KINDS):
        alert.status, alert.resolved_dt, alert.plan_id = "resolved", now, plan.id
    session.flush()
    update_episode_signals(session, episode, library, now)
    return plan


def close_plan(session: Session, plan: ActionPlan, *, user: User, note: str,
               now: dt.datetime, library: InstrumentLibrary) -> ActionPlan:
    """Close an open plan with a note (at most 2,000 characters); keeps the follow-up
    read at closing in ``outcome``. The episode's signals are recomputed, so a condition
    that persists (still red) is alerted again. Audited by the caller."""
    text = _note(note)
    episode = session.get(Episode, plan.episode_id)
    assert episode is not None
    lock_episode(session, episode.id)
    session.refresh(plan)
    if plan.status != "open":
        raise SupportError(N_("Only an open plan can be closed; this one is %(status)s."),
                           status=plan.status)
    reading = follow_up(session, plan, library, now)
    plan.status, plan.closed_dt, plan.closed_by_id = "closed", now, user.id
    plan.closing_note = text or None
    plan.outcome = asdict(reading)
    session.flush()
    update_episode_signals(session, episode, library, now)
    return plan


def follow_up(session: Session, plan: ActionPlan, library: InstrumentLibrary,
              now: dt.datetime) -> FollowUp:
    """Colour and change on the main measure since the plan.

    ``then``: the plan's baseline; ``now``: the main measure's latest score up to ``now``
    and the colour it had (:func:`outcome.services.signals.colour_history`; today, the
    caseload's colour). ``sessions_since`` counts the main measure's valid client scores
    completed after the plan was recorded, up to ``now``; ``back_on_track`` is
    None until one has come, then True when the colour is green or white (in the
    functional range; :data:`~outcome.core.trajectory.ON_TRACK_COLOURS`, domain.md
    section 4) and False when it is yellow or red; ``no_longer_red`` is None until one
    has come, then True when the baseline was red and the colour now is not.
    ``change`` is now - then in the
    measure's points (negative is better on symptom measures). ``is_due``: the review
    date has come (the clinic's day).
    """
    episode = session.get(Episode, plan.episode_id)
    assert episode is not None
    base = plan.baseline or {}
    instrument_id = base.get("instrument") or main_measure(session, episode)
    history = _history(session, episode, instrument_id, library, now)
    current: dict[str, Any] = ({"score": history[-1].score, "colour": history[-1].colour}
                               if history else {"score": None, "colour": None})
    since = sum(1 for h in history if h.completed_dt > plan.created_dt)
    score_then, score_now = base.get("score"), current.get("score")
    colour_now = current.get("colour")
    change = (round(float(score_now) - float(score_then), 2)
              if score_then is not None and score_now is not None else None)
    back: bool | None
    no_longer_red: bool | None
    if since == 0 or colour_now not in ("red", "yellow", "green", "white"):
        back = no_longer_red = None  # no score since the plan, or no colour (grey)
    else:
        back = colour_now in ON_TRACK_COLOURS
        no_longer_red = base.get("colour") == "red" and colour_now != "red"
    return FollowUp(instrument_id=instrument_id, colour_then=base.get("colour"),
                    colour_now=colour_now, score_then=score_then, score_now=score_now,
                    change=change, sessions_since=since, back_on_track=back,
                    is_due=clinic_today(_clinic(session, episode), now) >= plan.review_on,
                    no_longer_red=no_longer_red)


def active_plan(session: Session, episode_id: int) -> ActionPlan | None:
    """The episode's open plan, if any (at most one is open)."""
    return session.scalar(select(ActionPlan).where(
        ActionPlan.episode_id == episode_id, ActionPlan.status == "open")
        .order_by(ActionPlan.id.desc()).limit(1))


def plans_for(session: Session, episode_id: int) -> list[ActionPlan]:
    """The episode's plans, newest first."""
    return list(session.scalars(select(ActionPlan).where(ActionPlan.episode_id == episode_id)
                                .order_by(ActionPlan.created_dt.desc(), ActionPlan.id.desc())))


# --- automatic offers ---------------------------------------------------------------------


def offer_automatically(session: Session, library: InstrumentLibrary, now: dt.datetime, *,
                        mail: MailContext) -> list[SupportCheck]:
    """Start and e-mail a check (``user`` None) for every episode of a clinic with
    ``support_check_auto`` on that has an offer (:func:`offer_for`: a red, reliably
    deteriorating or unrepaired-rupture alert open, no plan, no check since) and no
    check waiting; flush. One automatic check per alert: once any check was started
    since the alert was raised (cancelled or expired included), none is started
    automatically again for it (the therapist may still start one), so the client is
    not e-mailed again every time the job runs.

    Only clients with an e-mail address: a link's token is shown once, so a check made
    for a client without one could not be handed over; for them the offer stays on the
    client's page for the therapist to start (and show the link). Episodes whose clinic
    has no support measure available are skipped. Each check is audited here
    (``support.check.start`` by the scheduler), as the escalation steps are.
    """
    started: list[SupportCheck] = []
    clinics = [c for c in session.scalars(select(Clinic).order_by(Clinic.id))
               if clinic_settings.current(c)["support_check_auto"]]
    for clinic in clinics:
        episode_ids = session.scalars(
            select(Episode.id).join(Alert, Alert.episode_id == Episode.id)
            .join(Client, Client.id == Episode.client_id)
            .where(Episode.clinic_id == clinic.id, Episode.closed_on.is_(None),
                   Client.email.is_not(None), Alert.status == "open",
                   Alert.kind.in_(OFFER_KINDS))
            .distinct().order_by(Episode.id)).all()
        for episode_id in episode_ids:
            episode = session.get(Episode, episode_id)
            assert episode is not None
            offer = offer_for(session, episode)
            if offer is None or _started_since(session, episode.id, offer.alert_id):
                continue
            if not consent.may_collect(session, episode.client_id):
                continue  # declined or withdrawn: nothing is asked (issue 20)
            if waiting_check(session, episode.id, now) is not None:
                continue
            try:
                check, _link, _token = start_check(session, episode=episode, user=None,
                                                   now=now, library=library, mail=mail)
            except SupportError:
                continue
            audit.record(session, action="support.check.start", outcome="allowed", now=now,
                         actor_kind="system", actor_label="scheduler",
                         clinic_id=episode.clinic_id, client_id=episode.client_id,
                         object_type="support_check", object_id=check.id)
            started.append(check)
    return started
