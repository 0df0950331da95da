"""Single-use questionnaire links: issued, opened, answered page by page, revoked.

A link's token is 256 random bits, shown once and stored only as its SHA-256. A link
is valid in a window around its appointment (clinic settings, default 48 hours before
to 24 hours after), is used up when the last questionnaire of its battery is stored,
and can be revoked. Issuing a new link for the same appointment and purpose revokes
the previous unused one. Each page is its own transaction, so a client who stops half
way resumes where they left off while the link is valid.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any
from typing import Literal

from sqlalchemy import Integer
from sqlalchemy import Select
from sqlalchemy import String
from sqlalchemy import bindparam
from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.core.answers import AnswerError
from outcome.core.answers import Answers
from outcome.core.answers import parse_answers
from outcome.core.battery import is_asked
from outcome.core.instruments import Instrument
from outcome.models import Administration
from outcome.models import Appointment
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import QuestionnaireLink
from outcome.models import SupportCheck
from outcome.services import clinic_settings
from outcome.services import consent
from outcome.services.appointments import is_last_booked
from outcome.services.appointments import session_number
from outcome.services.goals import goal_texts
from outcome.services.instruments import instrument_statuses
from outcome.services.submissions import InvalidAnswers
from outcome.services.submissions import NoConsent
from outcome.services.submissions import Submission
from outcome.services.submissions import amend_administration
from outcome.services.submissions import link_key
from outcome.services.submissions import link_key_prefix
from outcome.services.submissions import submit
from questionnaires.loader import InstrumentLibrary

Problem = Literal["unknown", "not_yet_open", "expired", "used", "revoked"]


def hash_token(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def battery_for(session: Session, clinic: Clinic, library: InstrumentLibrary, *,
                purpose: str, session_no: int, episode_id: int | None = None,
                is_last: bool = False, wanted: list[str] | None = None) -> list[str]:
    """The instruments a link asks for: the clinic's battery, available ones only, in
    the battery's order, each as often as its entry says (:mod:`outcome.core.battery`;
    ``is_last``: the session is the episode's last booked one).

    ``support``: the support check's own measures (``wanted``, from
    :func:`outcome.services.support.start_check`) instead of the clinic's battery.
    Goal ratings (GBO) are asked only when the episode has goals.
    """
    settings = clinic_settings.current(clinic)
    available = {s.instrument.id for s in instrument_statuses(session, clinic.id, library)
                 if s.is_available}
    if purpose == "support":
        wanted = list(wanted or [])
    elif purpose == "post":
        wanted = [settings["post_instrument"]] if settings["post_instrument"] else []
    else:
        wanted = [entry["instrument"] for entry in settings["pre_battery"]
                  if is_asked(entry, session_no, is_last=is_last)]
    has_goals = episode_id is not None and bool(goal_texts(session, episode_id))
    return [instrument_id for instrument_id in wanted if instrument_id in available
            and (library.get(instrument_id).role != "goal" or has_goals)]


class NothingToAsk(ValueError):
    """No link is issued: none of the clinic's questionnaires for ``purpose`` can be asked.

    For ``post``: no alliance measure is configured, or the one configured has no wording
    installed or no licence attested. A client must never open a link that asks nothing
    and be thanked for answers they were not asked for.
    """

    def __init__(self, purpose: str) -> None:
        what = ("no post-session questionnaire is available (none is configured, or its "
                "wording is not installed or its licence not attested)" if purpose == "post"
                else "no questionnaire before this session is available")
        super().__init__(f"No link issued: {what}.")
        self.purpose = purpose


class CollectionStopped(NothingToAsk):
    """No link: the client declined or withdrew consent to questionnaires (issue 20)."""

    def __init__(self, purpose: str) -> None:
        ValueError.__init__(self, "No link issued: the client declined or withdrew consent "
                                  "to questionnaires.")
        self.purpose = purpose


def issue_link(session: Session, *, episode: Episode, purpose: str, now: dt.datetime,
               library: InstrumentLibrary, appointment: Appointment | None = None,
               token: str | None = None, battery: list[str] | None = None
               ) -> tuple[QuestionnaireLink, str]:
    """A new link and its token (shown once; only the hash is stored); flush.

    ``purpose`` ``support`` (a support check, issue 19): ``battery`` is the check's
    measures, asked instead of the clinic's (available ones only, in its order).
    ``token``, when given, is the token to use (an e-mailed link's, derived from its
    message's nonce: :func:`outcome.services.mail.link_token`); by default 256 random
    bits. Raises :class:`NothingToAsk`, changing nothing, when the battery would be empty,
    and :class:`CollectionStopped` when the client declined or withdrew consent.
    """
    if purpose not in ("pre", "post", "support"):
        raise ValueError(f"purpose must be pre, post or support; got {purpose!r}")
    if (battery is not None) != (purpose == "support"):
        raise ValueError("a battery is given for a support link, and only then")
    if not consent.may_collect(session, episode.client_id):
        raise CollectionStopped(purpose)
    clinic = session.get(Clinic, episode.clinic_id)
    assert clinic is not None
    settings = clinic_settings.current(clinic)
    opens = dt.timedelta(hours=settings["link_opens_hours"])
    closes = dt.timedelta(hours=settings["link_closes_hours"])
    if appointment is not None:
        start, end = appointment.starts_dt - opens, appointment.starts_dt + closes
        number = session_number(session, appointment)
        is_last = is_last_booked(session, appointment)
    else:
        start, end = now, now + opens + closes
        number = 1 + len(session.scalars(select(Appointment.id).where(
            Appointment.episode_id == episode.id, Appointment.status == "attended")).all())
        is_last = False  # no appointment: the end of the episode is not known
    battery = battery_for(session, clinic, library, purpose=purpose, session_no=number,
                          episode_id=episode.id, is_last=is_last, wanted=battery)
    if not battery:
        raise NothingToAsk(purpose)
    for old in session.scalars(select(QuestionnaireLink).where(
            QuestionnaireLink.episode_id == episode.id, QuestionnaireLink.purpose == purpose,
            QuestionnaireLink.appointment_id == (appointment.id if appointment else None),
            QuestionnaireLink.used_dt.is_(None), QuestionnaireLink.revoked_dt.is_(None))):
        old.revoked_dt = now
    token = token or secrets.token_urlsafe(32)
    link = QuestionnaireLink(
        episode_id=episode.id, appointment_id=appointment.id if appointment else None,
        purpose=purpose, token_hash=hash_token(token), battery=battery,
        valid_from_dt=start, valid_until_dt=end, created_dt=now)
    session.add(link)
    session.flush()
    return link, token


def check_link(link: QuestionnaireLink | None, now: dt.datetime) -> Problem | None:
    """Why a link cannot be used now, or None when it can."""
    if link is None:
        return "unknown"
    if link.revoked_dt is not None:
        return "revoked"
    if link.used_dt is not None:
        return "used"
    if now < link.valid_from_dt:
        return "not_yet_open"
    if now > link.valid_until_dt:
        return "expired"
    return None


def open_link(session: Session, token: str, now: dt.datetime
              ) -> tuple[QuestionnaireLink | None, Problem | None]:
    """Find the link of ``token`` and say whether it can be used; flush."""
    link = session.scalar(_statements().by_token, {"token_hash": hash_token(token)})
    return link, mark_opened(session, link, now)


def mark_opened(session: Session, link: QuestionnaireLink | None, now: dt.datetime
                ) -> Problem | None:
    """Whether ``link``, found by its token (None: no link has it), can be used now; one
    that can is marked opened, the first time; flush. (:func:`open_link` after the
    lookup, for a page that read the link with its visit's rows: issue 21.)"""
    problem = check_link(link, now)
    if problem is None and link is not None and link.opened_dt is None:
        link.opened_dt = now
        session.flush()
    return problem


@dataclass(frozen=True)
class Step:
    instrument_id: str
    is_done: bool


def steps(session: Session, link: QuestionnaireLink) -> list[Step]:
    """The link's questionnaires in order, each with whether it is answered.

    Answered: by an administration that counts for this link, of any link of the same
    appointment and purpose (a reminder re-issues the link; progress made on the old one
    carries over), or without an appointment by one stored under this link's keys."""
    statements = _statements()
    if link.appointment_id is None:
        found = session.scalars(statements.answered_by_prefix,
                                {"prefix": link_key_prefix(link)})
    else:
        found = session.scalars(statements.answered_for_appointment,
                                {"appointment_id": link.appointment_id,
                                 "purpose": link.purpose})
    done = set(found)
    return [Step(i, i in done) for i in link.battery]


@dataclass(frozen=True)
class _Statements:
    """The statements every client page runs, built once (issue 21)."""

    by_token: Select
    answered_by_prefix: Select
    answered_for_appointment: Select


@functools.cache
def _statements() -> _Statements:
    answered = select(Administration.instrument_id)
    same = select(QuestionnaireLink.id).where(
        QuestionnaireLink.appointment_id == bindparam("appointment_id", type_=Integer),
        QuestionnaireLink.purpose == bindparam("purpose", type_=String))
    return _Statements(
        by_token=select(QuestionnaireLink).where(
            QuestionnaireLink.token_hash == bindparam("token_hash", type_=String)),
        answered_by_prefix=answered.where(Administration.idempotency_key.startswith(
            bindparam("prefix", type_=String))),
        answered_for_appointment=answered.where(Administration.link_id.in_(same)))


@dataclass(frozen=True)
class PageResult:
    errors: list[AnswerError]
    is_critical: bool = False
    is_finished: bool = False


def submit_page(session: Session, *, link: QuestionnaireLink, instrument: Instrument,
                form: dict[str, Any], library: InstrumentLibrary, now: dt.datetime,
                language: str | None = None) -> PageResult:
    """Validate and store one page of a link (one instrument); flush.

    Stored by :func:`outcome.services.submissions.submit`, which offers the link's
    battery only. Answers that fail ``parse_answers`` come back as the page's errors and
    nothing is stored. A resend of the same page stores nothing new (one key per
    appointment, purpose and instrument); the same page resent with other answers raises
    :class:`~outcome.services.submissions.IdempotencyConflict`. The link is used up when
    its last questionnaire is stored. ``language`` is the language the page's wording
    was shown in, stored with the administration for the therapist to see.
    """
    episode = session.get(Episode, link.episode_id)
    assert episode is not None
    try:
        row = submit(session, Submission(
            clinic_id=episode.clinic_id, episode=episode, instrument_id=instrument.id,
            version=instrument.version, offered=link.battery, answers=form,
            completed_dt=now, idempotency_key=link_key(link, instrument.id),
            appointment_id=link.appointment_id, link_id=link.id, language=language),
            library=library, now=now).administration
    except InvalidAnswers as exc:
        return PageResult(errors=exc.errors)
    finished = all(step.is_done for step in steps(session, link))
    if finished and link.used_dt is None:
        link.used_dt = now
        if link.purpose == "support":  # the check is answered (issue 19)
            check = session.scalar(select(SupportCheck).where(
                SupportCheck.link_id == link.id, SupportCheck.status == "sent"))
            if check is not None:
                check.status, check.answered_dt = "answered", now
    forget_draft(link, instrument.id, everything=finished)
    session.flush()
    return PageResult(errors=[], is_critical=bool(row.scores.get("critical_items")),
                      is_finished=finished)


def amend_page(session: Session, *, link: QuestionnaireLink, instrument: Instrument,
                form: dict[str, Any], library: InstrumentLibrary, now: dt.datetime,
                language: str | None = None) -> PageResult:
    """Change the answers of a questionnaire of ``link`` already stored, when the client
    went Back to it before finishing; re-scored with the episode's signals; flush.

    Answers that fail ``parse_answers`` come back as the page's errors, changing nothing.
    Raises :class:`~outcome.services.submissions.NoConsent`, changing nothing, when the
    client declined or withdrew meanwhile (as :func:`submit_page` does).
    """
    episode = session.get(Episode, link.episode_id)
    assert episode is not None
    if not consent.may_collect(session, episode.client_id, from_link=True):
        raise NoConsent()
    row = session.scalar(select(Administration).where(
        Administration.idempotency_key == link_key(link, instrument.id)))
    if row is None or link.used_dt is not None:
        return submit_page(session, link=link, instrument=instrument, form=form,
                           library=library, now=now, language=language)
    parsed = parse_answers(instrument, form)
    if not isinstance(parsed, Answers):
        return PageResult(errors=parsed)
    amend_administration(session, row, instrument=instrument, answers=parsed,
                         library=library, now=now)
    forget_draft(link, instrument.id)
    session.flush()
    return PageResult(errors=[], is_critical=bool(row.scores.get("critical_items")))


def stored_page_answers(session: Session, link: QuestionnaireLink, instrument_id: str
                        ) -> dict[str, str]:
    """The answers stored for one of the link's questionnaires, as its form has them."""
    row = session.scalar(select(Administration).where(
        Administration.idempotency_key == link_key(link, instrument_id)))
    if row is None:
        return {}
    return {k: (f"{v:g}" if isinstance(v, float) else str(v)) for k, v in row.answers.items()}


def unanswered_critical(instrument: Instrument, form: dict[str, Any]) -> list[str]:
    """The critical items left blank on a page whose other answers would be stored.

    The client is asked these once more, gently, before the page is stored (never
    forced: a critical item stored blank is flagged, never read as 0).
    """
    if not instrument.critical_items:
        return []
    parsed = parse_answers(instrument, form)
    return list(parsed.missing_critical) if isinstance(parsed, Answers) else []


def visit_minutes(items: int, seconds_per_item: int = 10) -> int:
    """The time a visit of ``items`` questions takes, said to the client: about ten
    seconds a question, rounded up to whole minutes, and never less than one."""
    return max(1, -(-items * seconds_per_item // 60))


def battery_items(session: Session, link: QuestionnaireLink,
                  library: InstrumentLibrary) -> int:
    """How many questions the link's questionnaires ask (a goal rating: one per open goal)."""
    measures = [library.get(i) for i in link.battery]
    # The goals are read only when a goal rating is asked (issue 21: one statement less
    # on every first page).
    goals = len(goal_texts(session, link.episode_id)) if any(
        m.role == "goal" for m in measures) else 0
    return sum(goals if m.role == "goal" else len(m.items) for m in measures)


def save_draft(link: QuestionnaireLink, instrument: Instrument,
               form: dict[str, Any]) -> None:
    """Keep the unsent answers of a page the client leaves with Back (its own items only,
    each cut to what the item allows); the caller flushes."""
    kept = {item.id: str(form[item.id])[:item.max_length if item.type == "text" else 32]
            for item in instrument.items if str(form.get(item.id) or "").strip()}
    draft = dict(link.draft or {})
    if kept:
        draft[instrument.id] = kept
    else:
        draft.pop(instrument.id, None)
    link.draft = draft or None


def draft_answers(link: QuestionnaireLink, instrument_id: str) -> dict[str, str]:
    """The unsent answers kept for a page (empty when there are none)."""
    value = (link.draft or {}).get(instrument_id)
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def forget_draft(link: QuestionnaireLink, instrument_id: str, *,
                 everything: bool = False) -> None:
    """Drop a page's unsent answers once it is stored (all of them when the link is
    used up); the caller flushes."""
    if everything or not link.draft:
        link.draft = None
        return
    draft = {k: v for k, v in link.draft.items() if k != instrument_id}
    link.draft = draft or None


def revoke_unused(session: Session, episode: Episode, now: dt.datetime) -> int:
    """Withdraw every unused link of an episode (a link sent to the wrong address); flush."""
    links = session.scalars(select(QuestionnaireLink).where(
        QuestionnaireLink.episode_id == episode.id, QuestionnaireLink.used_dt.is_(None),
        QuestionnaireLink.revoked_dt.is_(None))).all()
    for link in links:
        link.revoked_dt = now
    session.flush()
    return len(links)


def revoke(session: Session, link: QuestionnaireLink, now: dt.datetime) -> None:
    """Make the link unusable from now on; flush."""
    if link.revoked_dt is None:
        link.revoked_dt = now
        session.flush()


STALE_LINK_DAYS = 90


def delete_stale_links(session: Session, now: dt.datetime,
                       keep_days: int = STALE_LINK_DAYS) -> int:
    """Delete links never used whose window closed more than ``keep_days`` ago; flush.

    They can no longer open anything, and an unused link says nothing clinical. Used
    links stay: their administrations point at them. Returns how many went.
    """
    cutoff = now - dt.timedelta(days=keep_days)
    stale = session.scalars(select(QuestionnaireLink).where(
        QuestionnaireLink.used_dt.is_(None), QuestionnaireLink.valid_until_dt < cutoff)).all()
    for link in stale:
        session.delete(link)
    session.flush()
    return len(stale)
