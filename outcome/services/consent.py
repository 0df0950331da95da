"""Client consent (issue 20): the clinic's consent text and each client's decision.

- **Texts.** A clinic has one consent text per language, versioned: publishing a change
  adds a new version (:func:`publish`) and never edits an old one, so every decision names
  the exact words it answered. A clinic that has published nothing in a language gets
  version 1 from the shipped default (:data:`DEFAULT_TEXTS`, English and Russian) the
  first time it is needed (:func:`current_text`). A language with no text and no shipped
  default falls back to English. (Clinics have no default language of their own: the
  client's record carries the language.)
- **Decisions.** ``agreed``, ``refused`` (declined before agreeing) or ``withdrawn``
  (after agreeing), on the client's link pages, the clinic's kiosk or recorded by staff
  from a paper form (:func:`record_decision`). The latest decision is the one in force.
- **Collection.** :func:`may_collect` is asked wherever answers are stored
  (:func:`outcome.services.submissions.submit`) or requested (new links, reminders,
  support checks): after a refusal or a withdrawal nothing is collected. On the
  client's own pages (``from_link``), while the clinic's ``consent_online`` setting is on,
  an agreement is needed too. :func:`needs_asking` says when the link pages show the
  consent page first: no agreement in force, or an agreement to an older version of the
  text than the clinic's current one in that language (re-asked at the next
  questionnaire: a new version never stops collection by itself, since the client has
  not refused anything, but no answer is stored through the link pages until they agreed
  to the current words).
- **Withdrawal** revokes the client's unused links, forgets their unsent drafts, cancels
  their waiting support checks and queues an e-mail to their therapist that names no
  client and carries no clinical content (to the clinic's admins, by code, when the client
  has no active therapist) (:func:`outcome.services.consent_withdrawal.withdraw`; a module
  of its own, as it sends mail and the mail service imports the link service, which
  imports this one). A **refusal** does the same except the e-mail, and keeps the link it
  was made on usable so that the client can still agree there
  (:func:`outcome.services.consent_withdrawal.decline`).

Services flush; the edge commits and writes the audit record.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Integer
from sqlalchemy import Select
from sqlalchemy import bindparam
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm import aliased

from outcome.core.languages import DEFAULT_LOCALE
from outcome.core.languages import SUPPORTED_LOCALES
from outcome.models import Client
from outcome.models import Clinic
from outcome.models import ConsentDecision
from outcome.models import ConsentText
from outcome.models import QuestionnaireLink
from outcome.models import User
from outcome.models.trust import CONSENT_CHANNELS
from outcome.models.trust import CONSENT_DECISIONS
from outcome.services import clinic_settings

MAX_TEXT_CHARS = 20_000

# The shipped consent texts (outcome/consent_texts/<language>.txt, package data):
# version 1 for a clinic that has not written its own. Plain words, and only what the
# application actually does.
_TEXTS_DIR = Path(__file__).resolve().parent.parent / "consent_texts"
DEFAULT_TEXTS: dict[str, str] = {
    code: (_TEXTS_DIR / f"{code}.txt").read_text(encoding="utf-8")
    for code in SUPPORTED_LOCALES if (_TEXTS_DIR / f"{code}.txt").is_file()}


class ConsentError(ValueError):
    """A consent action that cannot be done; ``message`` says why. Nothing is stored."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ConsentStatus:
    """A client's consent as their therapist sees it.

    ``state`` is ``none`` (not yet asked), ``agreed``, ``refused`` or ``withdrawn``;
    ``version`` and ``language`` name the text decided on, ``decided_dt`` when.
    ``is_outdated``: agreed to a version older than the clinic's current one in that
    language (the client is asked again at their next questionnaire).
    """

    state: str
    version: int | None = None
    language: str | None = None
    decided_dt: dt.datetime | None = None
    channel: str | None = None
    is_outdated: bool = False


NOT_ASKED = ConsentStatus("none")


def text_language(language: str | None) -> str:
    """The language a consent text is kept in for a reader of ``language``: a supported
    one as it is, anything else English."""
    return language if language in SUPPORTED_LOCALES else DEFAULT_LOCALE


def _latest_text(session: Session, clinic_id: int, language: str) -> ConsentText | None:
    return session.scalar(select(ConsentText).where(
        ConsentText.clinic_id == clinic_id, ConsentText.language == language)
        .order_by(ConsentText.version.desc()).limit(1))


def current_text(session: Session, clinic: Clinic, language: str | None,
                 now: dt.datetime) -> ConsentText:
    """The clinic's current consent text for a reader of ``language``; flush.

    The clinic's latest version in that language; else, when the application ships a
    default in it, version 1 made from that default; else the same for English.
    Two first views at once both try to write version 1; the one that loses the race
    reads the winner's (a savepoint keeps the rest of its transaction).
    """
    for code in dict.fromkeys((text_language(language), DEFAULT_LOCALE)):
        text = _latest_text(session, clinic.id, code)
        if text is not None:
            return text
        if code in DEFAULT_TEXTS:
            text = _insert(session, ConsentText(clinic_id=clinic.id, language=code,
                                                version=1, body=DEFAULT_TEXTS[code],
                                                created_dt=now))
            if text is None:  # written meanwhile by a concurrent request
                text = _latest_text(session, clinic.id, code)
                assert text is not None
            return text
    raise AssertionError("an English default text is shipped")  # pragma: no cover


def _insert(session: Session, text: ConsentText) -> ConsentText | None:
    """Write ``text`` in a savepoint; None when its version number was taken meanwhile
    (the unique constraint), with the rest of the transaction kept."""
    try:
        with session.begin_nested():
            session.add(text)
            session.flush()
    except IntegrityError:
        return None
    return text


def _next_version(session: Session, clinic_id: int, language: str) -> int:
    """The number a new version of the clinic's text in ``language`` gets."""
    return (session.scalar(select(func.max(ConsentText.version)).where(
        ConsentText.clinic_id == clinic_id, ConsentText.language == language)) or 0) + 1


def history(session: Session, clinic_id: int, language: str) -> list[ConsentText]:
    """Every version of the clinic's text in ``language``, newest first."""
    return list(session.scalars(select(ConsentText).where(
        ConsentText.clinic_id == clinic_id, ConsentText.language == language)
        .order_by(ConsentText.version.desc())))


def paper_versions(session: Session, clinic_id: int,
                   language: str | None) -> list[ConsentText]:
    """The versions a paper decision may name for a reader of ``language``, newest (the
    current) first: those of the language :func:`current_text` gives them. Empty when
    that is still the shipped default, not yet stored (version 1, made when needed)."""
    for code in dict.fromkeys((text_language(language), DEFAULT_LOCALE)):
        versions = history(session, clinic_id, code)
        if versions or code in DEFAULT_TEXTS:
            return versions
    return []  # pragma: no cover (an English default text is shipped)


def publish(session: Session, *, clinic: Clinic, language: str, body: str, user: User,
            now: dt.datetime) -> ConsentText:
    """Publish a new version of the clinic's text in ``language`` (an admin's change);
    flush. Clients who agreed to an older version are asked again at their next
    questionnaire. Raises :class:`ConsentError` for an unknown language, an empty or
    too long text, or a text equal to the current one (no new version is needed). A
    number taken meanwhile by a concurrent publish is retried with the next one."""
    if language not in SUPPORTED_LOCALES:
        raise ConsentError(f"language must be one of {', '.join(SUPPORTED_LOCALES)}")
    cleaned = body.replace("\r\n", "\n").strip()
    if not cleaned:
        raise ConsentError("the consent text is empty")
    if len(cleaned) > MAX_TEXT_CHARS:
        raise ConsentError(f"the consent text is longer than {MAX_TEXT_CHARS} characters")
    if not user.is_admin or user.clinic_id != clinic.id:
        raise ConsentError("only an admin of the clinic publishes its consent text")
    current = current_text(session, clinic, language, now)
    if current.language == language and current.body.strip() == cleaned:
        raise ConsentError("the text is the same as the current version")
    for _attempt in range(3):  # another admin's publish may take the number meanwhile
        text = _insert(session, ConsentText(
            clinic_id=clinic.id, language=language,
            version=_next_version(session, clinic.id, language), body=cleaned,
            created_by_user_id=user.id, created_dt=now))
        if text is not None:
            return text
    raise ConsentError("the text was changed by someone else at the same time; "
                       "please try again")


def latest_decision(session: Session, client_id: int) -> ConsentDecision | None:
    """The client's decision in force (their latest), or None when never asked."""
    return session.scalar(_latest_statement(), {"client_id": client_id})


# The statements every client page and submission runs (issue 21), built once.
@functools.cache
def _latest_statement() -> Select:
    return (select(ConsentDecision)
            .where(ConsentDecision.client_id == bindparam("client_id", type_=Integer))
            .order_by(ConsentDecision.decided_dt.desc(), ConsentDecision.id.desc()).limit(1))


@functools.cache
def _status_statement() -> Select:
    """The client's latest decision with the version and language of the text it answered
    and the newest version in that language: :func:`status` in one statement."""
    newer = aliased(ConsentText)
    newest = (select(func.max(newer.version))
              .where(newer.clinic_id == ConsentText.clinic_id,
                     newer.language == ConsentText.language).scalar_subquery())
    return (select(ConsentDecision.decision, ConsentText.version, ConsentText.language,
                   ConsentDecision.decided_dt, ConsentDecision.channel, newest)
            .join(ConsentText, ConsentText.id == ConsentDecision.text_id)
            .where(ConsentDecision.client_id == bindparam("client_id", type_=Integer))
            .order_by(ConsentDecision.decided_dt.desc(), ConsentDecision.id.desc()).limit(1))


def never_agreed(session: Session, client: Client) -> bool:
    """Whether the client has never agreed (so no answer was stored through their link
    pages while the clinic asked online): what the declined page may promise."""
    return session.scalar(select(ConsentDecision.id).where(
        ConsentDecision.client_id == client.id, ConsentDecision.decision == "agreed")
        .limit(1)) is None


def _status_of(session: Session, decision: ConsentDecision | None) -> ConsentStatus:
    if decision is None:
        return NOT_ASKED
    text = session.get_one(ConsentText, decision.text_id)
    outdated = False
    if decision.decision == "agreed":
        newest = session.scalar(select(func.max(ConsentText.version)).where(
            ConsentText.clinic_id == text.clinic_id, ConsentText.language == text.language))
        outdated = newest is not None and newest > text.version
    return ConsentStatus(decision.decision, text.version, text.language, decision.decided_dt,
                         decision.channel, outdated)


def status(session: Session, client: Client) -> ConsentStatus:
    """The client's consent: not yet asked, agreed (which version, when), refused or
    withdrawn (when). One statement (issue 21: it was three)."""
    row = session.execute(_status_statement(), {"client_id": client.id}).first()
    if row is None:
        return NOT_ASKED
    decision, version, language, decided_dt, channel, newest = row
    outdated = decision == "agreed" and newest is not None and newest > version
    return ConsentStatus(decision, version, language, decided_dt, channel, outdated)


def statuses(session: Session, client_ids: Iterable[int]) -> dict[int, ConsentStatus]:
    """:func:`status` for many clients at once (a caseload); clients never asked are
    absent."""
    ids = list(client_ids)
    if not ids:
        return {}
    latest: dict[int, ConsentDecision] = {}
    for decision in session.scalars(select(ConsentDecision).where(
            ConsentDecision.client_id.in_(ids))
            .order_by(ConsentDecision.decided_dt, ConsentDecision.id)):
        latest[decision.client_id] = decision
    return {client_id: _status_of(session, decision) for client_id, decision in latest.items()}


def _client(session: Session, client: Client | int) -> Client:
    return client if isinstance(client, Client) else session.get_one(Client, client)


def _asks_online(session: Session, clinic_id: int) -> bool:
    clinic = session.get_one(Clinic, clinic_id)
    return asks_online(clinic)


def asks_online(clinic: Clinic) -> bool:
    """Whether the clinic asks its clients for consent on their link pages
    (``consent_online``)."""
    return bool(clinic_settings.current(clinic)["consent_online"])


@dataclass(frozen=True)
class Verdict:
    """What a client's consent allows (:func:`verdict`)."""

    may_collect: bool  # answers may be stored for (or asked of) the client
    needs_asking: bool  # the link pages show the consent page before a questionnaire


def verdict(state: ConsentStatus, *, online: bool, from_link: bool) -> Verdict:
    """The consent rule, from the client's decision in force (``state``, as
    :func:`status` reads it) and whether their clinic asks online (:func:`asks_online`):
    pure, so that a page that has read both decides as :func:`may_collect` and
    :func:`needs_asking` do, without reading them again.

    - Never collected after a refusal or a withdrawal; always after an agreement.
    - Not yet asked: collected, except ``from_link`` (answers the client gives on their
      own link pages or the kiosk) while the clinic asks online.
    - ``from_link`` while the clinic asks online: the consent page first unless an
      agreement to the current version is in force (``state.is_outdated``: an agreement
      to an older version is asked again, yet still allows collection meanwhile).
    """
    asked_here = from_link and online
    may = not asked_here if state.state == "none" else state.state == "agreed"
    return Verdict(may_collect=may,
                   needs_asking=asked_here and (state.state != "agreed" or state.is_outdated))


def may_collect(session: Session, client: Client | int, *, from_link: bool = False) -> bool:
    """Whether answers may be stored for (or asked of) ``client`` (:func:`verdict`).

    Never after a refusal or a withdrawal. ``from_link``: answers the client gives on
    their own link pages or the kiosk; while the clinic asks for consent online
    (``consent_online``) these need an agreement in force. Staff-entered answers and
    imports (the API) are refused only after a refusal or withdrawal: the clinic may have
    recorded consent another way.
    """
    row = _client(session, client)
    decision = latest_decision(session, row.id)
    # Collection needs the decision alone (not its text's version), and the clinic's
    # setting only when the client was never asked.
    state = ConsentStatus(decision.decision) if decision is not None else NOT_ASKED
    online = from_link and decision is None and _asks_online(session, row.clinic_id)
    return verdict(state, online=online, from_link=from_link).may_collect


def needs_asking(session: Session, client: Client | int) -> bool:
    """Whether the link pages show the consent page before a questionnaire: the clinic
    asks online and the client has no agreement in force to the current version
    (:func:`verdict`)."""
    row = _client(session, client)
    if not _asks_online(session, row.clinic_id):
        return False
    return verdict(status(session, row), online=True, from_link=True).needs_asking


def record_decision(session: Session, *, client: Client, text: ConsentText, decision: str,
                    channel: str, now: dt.datetime, link: QuestionnaireLink | None = None,
                    user: User | None = None) -> ConsentDecision:
    """Store one decision about ``text``; flush. Raises :class:`ConsentError` (nothing
    stored) for an unknown decision or channel, a text of another clinic, a withdrawal
    without an agreement in force, or a staff decision without the staff member."""
    if decision not in CONSENT_DECISIONS:
        raise ConsentError(f"decision must be one of {', '.join(CONSENT_DECISIONS)}")
    if channel not in CONSENT_CHANNELS:
        raise ConsentError(f"channel must be one of {', '.join(CONSENT_CHANNELS)}")
    if text.clinic_id != client.clinic_id:
        raise ConsentError("the text is not the client's clinic's")
    if (channel == "staff") != (user is not None):
        raise ConsentError("a staff member records a paper decision, and only then")
    if decision == "withdrawn" and status(session, client).state != "agreed":
        raise ConsentError("only an agreement can be withdrawn")
    row = ConsentDecision(clinic_id=client.clinic_id, client_id=client.id, text_id=text.id,
                          decision=decision, channel=channel,
                          link_id=link.id if link is not None else None,
                          recorded_by_user_id=user.id if user is not None else None,
                          decided_dt=now)
    session.add(row)
    session.flush()
    return row


def caseload_marks(session: Session, therapist_id: int) -> dict[str, str]:
    """The therapist's clients who declined or withdrew consent: client code to
    ``refused`` or ``withdrawn`` (the caseload's mark)."""
    # One query (issue 21): each client's latest decision is all a mark needs (the text's
    # version, which :func:`statuses` reads for every agreement, is not shown).
    latest: dict[str, str] = {}
    for code, decision in session.execute(
            select(Client.code, ConsentDecision.decision)
            .join(Client, Client.id == ConsentDecision.client_id)
            .where(Client.therapist_id == therapist_id)
            .order_by(ConsentDecision.decided_dt, ConsentDecision.id)):
        latest[code] = decision
    return {code: decision for code, decision in latest.items()
            if decision in ("refused", "withdrawn")}
