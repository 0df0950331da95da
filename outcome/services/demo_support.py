"""The demo's support checks and action plans (issue 19): one case in every state.

After the demo's answers and signals exist, each demo therapist gets one case where their
caseload has a fitting one (else another therapist's caseload is searched, those without
a case first):

1. a check sent, not yet answered (yesterday);
2. a check answered with flagged domains and no plan yet;
3. an open plan before its review date;
4. an open plan past its review date (follow-up due);
5. a closed plan: the client came back on track since it;
6. a revised plan: an earlier plan replaced by the open one.

Everything goes through the production services (:mod:`outcome.services.support`,
:func:`outcome.services.links.submit_page`), dated in the past where the story needs it.
A plan's baseline is the main measure's score at its date with the colour that score had
(:func:`outcome.services.signals.colour_history`), so every number the follow-up shows
is the engine's. A case needs a red score at the plan's date; "back on track" needs a
later score that is not red. Deterministic for a given demo.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.models import ActionPlan
from outcome.models import Alert
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import QuestionnaireLink
from outcome.models import SupportCheck
from outcome.models import User
from outcome.services import support
from outcome.services.links import submit_page
from outcome.services.signals import ScoreColour
from outcome.services.signals import colour_history
from outcome.services.signals import update_episode_signals
from questionnaires import support as support_rules
from questionnaires.loader import InstrumentLibrary

DAY = dt.timedelta(days=1)
STATES = ("check_sent", "check_answered", "plan_open", "plan_due", "plan_closed",
          "plan_revised")


def seed_demo_support(session: Session, clinic: Clinic, library: InstrumentLibrary,
                      now: dt.datetime) -> dict[str, int]:
    """Add one support case in each state of :data:`STATES` to the demo clinic; flush.

    Returns state -> episode id for the states a fitting case was found for. Does
    nothing when the clinic already has a check or a plan, or no support measure is
    available.
    """
    if session.scalar(select(SupportCheck.id).join(Episode).where(
            Episode.clinic_id == clinic.id).limit(1)) is not None:
        return {}
    therapists = list(session.scalars(select(User).where(
        User.clinic_id == clinic.id, User.is_therapist.is_(True)).order_by(User.id)))
    episodes = list(session.scalars(select(Episode).where(
        Episode.clinic_id == clinic.id, Episode.closed_on.is_(None)).order_by(Episode.id)))
    histories = {e.id: colour_history(session, e, support.main_measure(session, e), library)
                 for e in episodes}
    open_alerts: dict[int, list[Alert]] = {}
    for alert in session.scalars(select(Alert).where(
            Alert.episode_id.in_([e.id for e in episodes]), Alert.status == "open",
            Alert.kind.in_(support.PLAN_KINDS)).order_by(Alert.id)):
        open_alerts.setdefault(alert.episode_id, []).append(alert)
    used: set[int] = set()
    done: dict[str, int] = {}
    makers: dict[str, Callable[[Episode, User, list[ScoreColour]], bool]] = {
        "check_sent": lambda e, t, h: _check_sent(session, e, t, library, now, h),
        "check_answered": lambda e, t, h: _check_answered(session, e, t, library, now, h),
        "plan_open": lambda e, t, h: _plan_open(session, e, t, library, now, h, days=9),
        "plan_due": lambda e, t, h: _plan_open(session, e, t, library, now, h, days=35),
        "plan_closed": lambda e, t, h: _plan_closed(session, e, t, library, now, h),
        "plan_revised": lambda e, t, h: _plan_revised(session, e, t, library, now, h),
    }
    for index, state in enumerate(STATES):
        rotated = therapists[index:] + therapists[:index]
        busy = {e.therapist_id for e in episodes if e.id in used}
        order = [t for t in rotated if t.id not in busy] + [t for t in rotated if t.id in busy]
        for therapist in order:
            mine = [e for e in episodes if e.therapist_id == therapist.id and e.id not in used]
            for episode in mine:
                history = histories[episode.id]
                fits = _fits(state, history, open_alerts.get(episode.id, []), now)
                if fits and makers[state](episode, therapist, history):
                    used.add(episode.id)
                    done[state] = episode.id
                    break
            if state in done:
                break
    # Signals as of now again (the stories above were told at their own dates).
    for episode in episodes:
        if episode.id in used:
            update_episode_signals(session, episode, library, now)
    session.flush()
    return done


def _fits(state: str, history: list[ScoreColour], alerts: list[Alert],
          now: dt.datetime) -> bool:
    """Whether an episode's story fits ``state`` (red now with an open alert, or back on
    track after a red score at least five weeks ago)."""
    red_now = bool(history) and history[-1].colour == "red" and any(
        a.kind == "not_on_track" for a in alerts)
    if state in ("check_sent", "check_answered"):
        return red_now
    if state in ("plan_open", "plan_due", "plan_revised"):
        days = {"plan_open": 9, "plan_due": 35, "plan_revised": 40}[state]
        return red_now and _red_run_start(history, now - days * DAY) is not None
    if state == "plan_closed":
        return (not alerts and len(history) >= 3 and history[-1].colour in ("green", "white",
                                                                             "yellow")
                and _last_red_before(history, now - 35 * DAY) is not None)
    return False


def _red_run_start(history: list[ScoreColour], at: dt.datetime) -> ScoreColour | None:
    """The first score of the run of red scores that is still going on at ``at`` and
    lasts to the latest score, or None when the score at ``at`` was not red."""
    before = [h for h in history if h.completed_dt <= at]
    if not before or before[-1].colour != "red":
        return None
    if any(h.colour != "red" for h in history if h.completed_dt > at):
        return None
    start = before[-1]
    for h in reversed(before):
        if h.colour != "red":
            break
        start = h
    return start


def _last_red_before(history: list[ScoreColour], at: dt.datetime) -> ScoreColour | None:
    """The last red score on or before ``at`` followed only by scores that are not red."""
    reds = [k for k, h in enumerate(history) if h.colour == "red"]
    if not reds or history[reds[-1]].completed_dt > at or reds[-1] == len(history) - 1:
        return None
    return history[reds[-1]]


def _start(session: Session, episode: Episode, therapist: User, library: InstrumentLibrary,
           when: dt.datetime) -> tuple[SupportCheck, QuestionnaireLink] | None:
    try:
        check, link, _token = support.start_check(session, episode=episode, user=therapist,
                                                  now=when, library=library)
    except support.SupportError:
        return None
    return check, link


def _answer(session: Session, link: QuestionnaireLink, check: SupportCheck,
            library: InstrumentLibrary, when: dt.datetime, flag: tuple[str, ...]) -> None:
    """The client answers every page: the domains in ``flag`` so that their rule flags
    them, the others so that it does not (:func:`_form`)."""
    rules = support_rules.load_rules()
    for entry in check.battery:
        instrument = library.get(entry["instrument"])
        domain_rules = rules.domains.get(entry["domain"])
        measure = domain_rules.measure(instrument.id) if domain_rules else None
        rule = measure.flag if measure is not None else None
        form = _form(instrument, rule.op if rule else None, entry["domain"] in flag)
        submit_page(session, link=link, instrument=instrument, form=form, library=library,
                    now=when)


def _form(instrument: Any, op: str | None, flagged: bool) -> dict[str, str]:
    """Answers that make a total ``op`` cutoff true (``flagged``) or false: all items low
    for a "<=" rule, one item high for a ">=" rule (one event); an alliance measure
    without a rule is answered high (no concern)."""
    low_flags = op in ("<=", "<")
    values: dict[str, str] = {}
    scored = [item for item in instrument.items if item.type != "text"]
    for n, item in enumerate(scored):
        lowest = min(item.option_values) if item.options else item.minimum
        highest = max(item.option_values) if item.options else item.maximum
        if op is None:
            value = highest
        elif low_flags:
            value = lowest if flagged else highest
        else:
            value = highest if flagged and n == 0 else lowest
        values[item.id] = f"{value:g}"
    return values


def _steps(session: Session, check: SupportCheck | None, library: InstrumentLibrary,
           when: dt.datetime) -> list[dict[str, Any]]:
    """Steps from the check's suggestions (the first accepted, the second in the
    therapist's words, the third declined), else two of the "formulation" heading."""
    rules = support_rules.load_rules()
    suggestions: list[Any] = []
    if check is not None and check.status == "answered":
        reading = support.view_check(session, check, library, when).reading
        if reading is not None:
            suggestions = [s.id for s in reading.suggestions]
    if not suggestions:
        suggestions = [s.id for s in rules.suggestions.get("formulation", ())]
    chosen = [rules.suggestion(i) for i in suggestions[:3]]
    steps: list[dict[str, Any]] = []
    for n, rule in enumerate(c for c in chosen if c is not None):
        decision = ("accepted", "edited", "declined")[n]
        text = rule.text["en"] if decision != "edited" else \
            f"{rule.text['en'].rstrip('.')}, in the next two sessions."
        steps.append({"domain": rule.domain, "suggestion": rule.id, "text": text,
                      "decision": decision})
    if not any(s["decision"] != "declined" for s in steps):
        steps.append({"domain": "formulation", "suggestion": None,
                      "text": "Discuss the case in supervision this month.", "decision": "own"})
    return steps


def _plan(session: Session, episode: Episode, therapist: User, library: InstrumentLibrary,
          when: dt.datetime, *, with_check: bool, revises: ActionPlan | None = None,
          note: str = "Agreed with the client in session.") -> ActionPlan | None:
    check = None
    if with_check:
        # Sent after the alert was raised, answered before the plan.
        raised = min((a.raised_dt for a in session.scalars(select(Alert).where(
            Alert.episode_id == episode.id, Alert.status == "open",
            Alert.kind.in_(support.PLAN_KINDS)))), default=when - 2 * DAY)
        sent = max(raised + dt.timedelta(hours=1), when - 2 * DAY)
        started = _start(session, episode, therapist, library, sent)
        if started is None:
            return None
        check, link = started
        _answer(session, link, check, library, sent + (when - sent) / 2, flag=("motivation",))
    review = (when + 28 * DAY).date()
    return support.record_plan(session, episode=episode, user=therapist,
                               steps=_steps(session, check, library, when), note=note,
                               review_on=review, now=when, library=library, check=check,
                               revises=revises)


def _date_alert(session: Session, episode: Episode, start: ScoreColour) -> None:
    """The open not-on-track alert raised when the current red run began (the demo's
    signals were computed at once; in use it was raised then)."""
    for alert in session.scalars(select(Alert).where(
            Alert.episode_id == episode.id, Alert.status == "open",
            Alert.kind == "not_on_track")):
        alert.raised_dt = start.completed_dt


def _check_sent(session: Session, episode: Episode, therapist: User,
                library: InstrumentLibrary, now: dt.datetime,
                history: list[ScoreColour]) -> bool:
    return _start(session, episode, therapist, library, now - DAY) is not None


def _check_answered(session: Session, episode: Episode, therapist: User,
                    library: InstrumentLibrary, now: dt.datetime,
                    history: list[ScoreColour]) -> bool:
    started = _start(session, episode, therapist, library, now - 3 * DAY)
    if started is None:
        return False
    check, link = started
    _answer(session, link, check, library, now - 2 * DAY,
            flag=("motivation", "social_support", "life_events"))
    return check.status == "answered"


def _plan_open(session: Session, episode: Episode, therapist: User,
               library: InstrumentLibrary, now: dt.datetime, history: list[ScoreColour],
               *, days: int) -> bool:
    when = now - days * DAY
    start = _red_run_start(history, when)
    if start is None:
        return False
    _date_alert(session, episode, start)
    return _plan(session, episode, therapist, library, when, with_check=True) is not None


def _plan_closed(session: Session, episode: Episode, therapist: User,
                 library: InstrumentLibrary, now: dt.datetime,
                 history: list[ScoreColour]) -> bool:
    red = _last_red_before(history, now - 35 * DAY)
    if red is None:
        return False
    when = red.completed_dt + DAY
    plan = _plan(session, episode, therapist, library, when, with_check=False)
    if plan is None:
        return False
    closing = min(now, dt.datetime.combine(plan.review_on, dt.time(12), tzinfo=dt.UTC))
    support.close_plan(session, plan, user=therapist, now=closing, library=library,
                       note="Reviewed with the client; continue as before.")
    return True


def _plan_revised(session: Session, episode: Episode, therapist: User,
                  library: InstrumentLibrary, now: dt.datetime,
                  history: list[ScoreColour]) -> bool:
    start = _red_run_start(history, now - 40 * DAY)
    if start is None:
        return False
    _date_alert(session, episode, start)
    first = _plan(session, episode, therapist, library, now - 40 * DAY, with_check=False)
    if first is None:
        return False
    return _plan(session, episode, therapist, library, now - 10 * DAY, with_check=True,
                 revises=first, note="Still red at review: revised with the client.") \
        is not None

