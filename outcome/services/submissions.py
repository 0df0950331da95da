"""One way in for answers: the client's web form, ``/api/v1`` and the FHIR import.

:func:`submit` checks a :class:`Submission` against the rules, in this order, and
stores it:

1. availability: the instrument is one of the clinic's and available to it (licence
   attested, wording installed), in the version asked for. A questionnaire link offers
   its battery instead, which was checked when the link was issued
   (:func:`outcome.services.links.battery_for`), so a client finishes what they were sent;
2. the clock: the completion time is at most :data:`CLOCK_SKEW` (5 minutes) ahead of
   the server's, since phones and devices drift;
3. the episode: there is one to store into (the API and the import take the client's
   open episode; a link its own, ended or not, for follow-up measures);
4. consent (issue 20): the client has not declined or withdrawn consent, and answers
   from their own link pages need an agreement in force while the clinic asks online
   (:func:`outcome.services.consent.may_collect`);
5. the appointment, when one is named, is a session of that episode;
6. the answers pass :func:`outcome.core.answers.parse_answers`;
7. idempotency (:func:`submit_administration`): the same key with the same answers
   returns the stored administration; with other answers it is an
   :class:`IdempotencyConflict`.

The administration, its scores and the episode's new signals and alerts are flushed
together, under the episode's lock, in the caller's transaction; the edge commits.

A refusal is a :class:`SubmissionError` that names the part of the submission at fault
(``field``) and why (``code``, as the API reports it); nothing is stored. The edges turn
it into a problem+json, a FHIR OperationOutcome or the page's per-item errors.

Idempotency keys, one scheme per source, each with its own prefix so sources never meet:

- a link: one administration per appointment, purpose and instrument, whichever link of
  that appointment sent it (:func:`link_key`);
- ``/api/v1``: from the request's ``Idempotency-Key`` and the token, else random
  (:func:`api_key`). The HTTP layer replays a key's response for 24 hours; this key keeps
  a late retry from storing the answers twice;
- the FHIR import: from the resource id and the client, so one resource is stored once
  per client however often it is sent, else as for the API (:func:`import_key`).
  :func:`previous_import` also finds a resource exported from here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import uuid
from collections.abc import Collection
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select
from sqlalchemy import String
from sqlalchemy import bindparam
from sqlalchemy import exc as sa_exc
from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.core.answers import AnswerError
from outcome.core.answers import Answers
from outcome.core.answers import parse_answers
from outcome.core.instruments import Instrument
from outcome.core.scoring import score_answers
from outcome.models import Administration
from outcome.models import Appointment
from outcome.models import Episode
from outcome.models import QuestionnaireLink
from outcome.services import consent
from outcome.services.exports import response_id
from outcome.services.instruments import instrument_statuses
from outcome.services.signals import update_episode_signals
from questionnaires.loader import InstrumentLibrary

# A submission may be dated a little ahead of the server's clock (phones and devices drift).
CLOCK_SKEW = dt.timedelta(minutes=5)


class SubmissionError(Exception):
    """A submission a rule refuses; nothing is stored.

    ``field`` names the part at fault (``instrument``, ``version``, ``completed``,
    ``episode``, ``appointment``, ``answers``, ``key`` or, for a FHIR resource, ``id``);
    ``code`` says why, in the API's words.
    """

    field = ""
    code = "rejected"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnknownInstrument(SubmissionError):
    """The clinic has no instrument of this id."""

    field, code = "instrument", "unknown_instrument"

    def __init__(self, instrument_id: str) -> None:
        super().__init__(f"{instrument_id!r} is not an instrument of this clinic.")
        self.instrument_id = instrument_id


class InstrumentUnavailable(SubmissionError):
    """The instrument is the clinic's but may not be used (``status`` says why)."""

    field, code = "instrument", "instrument_unavailable"

    def __init__(self, instrument_id: str, status: str) -> None:
        super().__init__(f"{instrument_id} is not available to this clinic ({status}).")
        self.instrument_id, self.status = instrument_id, status


class UnknownVersion(SubmissionError):
    """The instrument has no such version."""

    field, code = "version", "unknown_version"

    def __init__(self, instrument_id: str, version: str | None) -> None:
        super().__init__(f"{instrument_id} has no version {version!r}.")
        self.instrument_id, self.version = instrument_id, version


class CompletedInFuture(SubmissionError):
    """The completion time is more than :data:`CLOCK_SKEW` ahead of the server's clock."""

    field, code = "completed", "future"

    def __init__(self) -> None:
        super().__init__("The completion time is later than now.")


class NoOpenEpisode(SubmissionError):
    """There is no episode to store the answers in."""

    field, code = "episode", "no_open_episode"

    def __init__(self) -> None:
        super().__init__("The client has no open episode.")


class NoConsent(SubmissionError):
    """The client declined or withdrew consent (or, on their link pages, has not agreed
    while the clinic asks online): nothing of theirs is stored."""

    field, code = "client", "no_consent"

    def __init__(self) -> None:
        super().__init__("The client has not consented to questionnaires (declined, "
                         "withdrawn or not yet asked); nothing is stored.")


class UnknownAppointment(SubmissionError):
    """The appointment named is not a session of the episode."""

    field, code = "appointment", "unknown_appointment"

    def __init__(self, appointment_id: int) -> None:
        super().__init__(f"Appointment {appointment_id} is not one of this episode's "
                         "sessions.")
        self.appointment_id = appointment_id


class InvalidAnswers(SubmissionError):
    """Some answers do not pass ``parse_answers``; ``errors`` has one per item."""

    field, code = "answers", "invalid"

    def __init__(self, errors: list[AnswerError]) -> None:
        super().__init__("Some answers are not valid.")
        self.errors = errors


class IdempotencyConflict(SubmissionError):
    """The same idempotency key was used for different answers."""

    field, code = "key", "key_reused"


class ImportConflict(IdempotencyConflict):
    """A FHIR resource id already stored for the client with other answers."""

    field, code = "id", "conflict"

    def __init__(self) -> None:
        super().__init__("This resource id was already imported for this client with "
                         "other answers; send a correction under a new id.")


# --- idempotency keys ------------------------------------------------------------------------


def link_key_prefix(link: QuestionnaireLink) -> str:
    """What every key of ``link``'s administrations starts with: its appointment and
    purpose, or, without an appointment, its episode, purpose and day of issue; a support
    check's link (issue 19), the link itself: two checks on one day never share answers."""
    if link.purpose == "support":
        return f"episode:{link.episode_id}:support:{link.id}:"
    if link.appointment_id is None:
        return f"episode:{link.episode_id}:{link.purpose}:{link.valid_from_dt:%Y-%m-%d}:"
    return f"appointment:{link.appointment_id}:{link.purpose}:"


def link_key(link: QuestionnaireLink, instrument_id: str) -> str:
    """One administration per appointment, purpose and instrument, whichever link sent it.

    A link without an appointment counts per episode, purpose and day it was issued, so
    re-issuing it the same day never asks twice.
    """
    return link_key_prefix(link) + instrument_id


def _hashed(prefix: str, token_id: int, header: str) -> str:
    # Per token: two integrations may pick the same key for different requests.
    return prefix + hashlib.sha256(f"{token_id}:{header}".encode()).hexdigest()[:60]


def api_key(token_id: int, header: str | None) -> str:
    """An ``/api/v1`` administration's key: from the request's ``Idempotency-Key`` and
    the token, or random when the request has none."""
    if header:
        return _hashed("api:", token_id, header)
    return f"api:{uuid.uuid4().hex}"


def import_key(client_code: str, resource_id: str | None, token_id: int,
               header: str | None) -> str:
    """A FHIR import's key: from the resource id and the client (one resource is stored
    once per client), else from the request's ``Idempotency-Key``, else random."""
    if resource_id:
        return "fhir:" + hashlib.sha256(f"{client_code}:{resource_id}".encode()).hexdigest()
    if header:
        return _hashed("fhir-key:", token_id, header)
    return f"fhir:{uuid.uuid4().hex}"


def previous_import(session: Session, *, client_id: int, resource_id: str | None, key: str,
                    instrument: Instrument, answers: Answers) -> Administration | None:
    """The client's administration a FHIR resource already is, or None.

    That is one imported before under the same ``key`` (see :func:`import_key`), or one
    exported from here (a resource id is the administration's stable response id). It is
    checked before the other rules: a resource sent again is answered as before, even if
    the instrument or episode has changed since. Raises :class:`ImportConflict` when it
    holds other answers.
    """
    if not resource_id:
        return None
    rows = session.scalars(
        select(Administration).join(Episode, Episode.id == Administration.episode_id)
        .where(Episode.client_id == client_id).order_by(Administration.id))
    row = next((row for row in rows if row.idempotency_key == key
                or response_id(row.id) == resource_id), None)
    if row is not None and (row.instrument_id, row.answers) != (instrument.id,
                                                                answers.as_json()):
        raise ImportConflict()
    return row


# --- the rules --------------------------------------------------------------------------------


def available_instrument(session: Session, clinic_id: int, library: InstrumentLibrary,
                         instrument_id: str, version: str | None = None,
                         offered: Collection[str] | None = None) -> Instrument:
    """The instrument ``instrument_id`` (at ``version``, default the newest), if the
    clinic may use it now, or the link offers it (``offered``, a link's battery).

    Raises :class:`UnknownInstrument`, :class:`InstrumentUnavailable` (with the status:
    ``needs attestation``, ``wording not installed``...) or :class:`UnknownVersion`.
    """
    if offered is not None:
        if instrument_id not in offered:
            raise InstrumentUnavailable(instrument_id, "not part of this link")
    else:
        statuses = {s.instrument.id: s for s in
                    instrument_statuses(session, clinic_id, library)}
        status = statuses.get(instrument_id)
        if status is None:
            raise UnknownInstrument(instrument_id)
        if not status.is_available:
            raise InstrumentUnavailable(instrument_id, status.status)
    try:
        return library.get(instrument_id, version)
    except KeyError:
        raise UnknownVersion(instrument_id, version) from None


def check_completed(completed_dt: dt.datetime, now: dt.datetime) -> None:
    """Refuse a completion time more than :data:`CLOCK_SKEW` ahead of ``now``."""
    if completed_dt > now + CLOCK_SKEW:
        raise CompletedInFuture()


@dataclass(frozen=True)
class Submission:
    """One administration as an edge received it, before any rule is checked.

    ``answers`` are raw (item id to value, as a form or a JSON body has them) or already
    parsed. ``offered`` is a link's battery; None means the clinic's instruments.
    ``episode`` is None when the client has no open episode.
    """

    clinic_id: int
    episode: Episode | None
    instrument_id: str
    answers: Mapping[str, Any] | Answers
    completed_dt: dt.datetime
    idempotency_key: str
    version: str | None = None
    offered: Collection[str] | None = None
    appointment_id: int | None = None
    link_id: int | None = None
    respondent: str = "client"
    respondent_user_id: int | None = None
    # The language the wording was shown in (a questionnaire page knows it); None: unknown.
    language: str | None = None


@dataclass(frozen=True)
class Submitted:
    """The stored administration; ``created`` is False when the key replayed one."""

    administration: Administration
    created: bool
    instrument: Instrument


def submit(session: Session, submission: Submission, *, library: InstrumentLibrary,
           now: dt.datetime) -> Submitted:
    """Check ``submission`` against every rule (module docstring, in that order) and
    store it with the episode's new signals and alerts; flush.

    Raises a :class:`SubmissionError` subclass, having stored nothing, when a rule
    refuses it.
    """
    instrument = available_instrument(session, submission.clinic_id, library,
                                      submission.instrument_id, submission.version,
                                      submission.offered)
    check_completed(submission.completed_dt, now)
    episode = submission.episode
    if episode is None:
        raise NoOpenEpisode()
    if not consent.may_collect(session, episode.client_id,
                               from_link=submission.link_id is not None):
        raise NoConsent()
    if submission.appointment_id is not None:
        appointment = session.get(Appointment, submission.appointment_id)
        if appointment is None or appointment.episode_id != episode.id:
            raise UnknownAppointment(submission.appointment_id)
    answers = submission.answers
    if not isinstance(answers, Answers):
        parsed = parse_answers(instrument, answers)
        if not isinstance(parsed, Answers):
            raise InvalidAnswers(parsed)
        answers = parsed
    row, created = submit_administration(
        session, episode=episode, instrument=instrument, answers=answers,
        completed_dt=submission.completed_dt, idempotency_key=submission.idempotency_key,
        library=library, now=now, appointment_id=submission.appointment_id,
        link_id=submission.link_id, respondent=submission.respondent,
        respondent_user_id=submission.respondent_user_id, language=submission.language)
    return Submitted(row, created, instrument)


def submit_administration(session: Session, *, episode: Episode, instrument: Instrument,
                          answers: Answers, completed_dt: dt.datetime, idempotency_key: str,
                          library: InstrumentLibrary, now: dt.datetime,
                          appointment_id: int | None = None, link_id: int | None = None,
                          respondent: str = "client", respondent_user_id: int | None = None,
                          language: str | None = None) -> tuple[Administration, bool]:
    """Store one validated administration, its scores and the episode's new signals.

    The last step of :func:`submit`, which checks the other rules first; tests and the
    demo call it directly to store answers already known to be valid.

    Everything is flushed in the caller's transaction, so the administration, its
    signals and alerts commit together or not at all. The same ``idempotency_key`` with
    the same answers returns the stored administration (``created`` False); with other
    answers it raises :class:`IdempotencyConflict`.
    """
    def existing() -> Administration | None:
        return session.scalar(_by_key_statement(), {"key": idempotency_key})

    def same(row: Administration) -> Administration:
        if (row.episode_id, row.instrument_id, row.answers) != (
                episode.id, instrument.id, answers.as_json()):
            raise IdempotencyConflict(f"idempotency key {idempotency_key!r} was already used "
                                      "for a different submission")
        return row

    if (row := existing()) is not None:
        return same(row), False
    result = score_answers(instrument, answers)
    row = Administration(
        episode_id=episode.id, appointment_id=appointment_id, link_id=link_id,
        instrument_id=instrument.id, instrument_version=instrument.version,
        respondent=respondent, respondent_user_id=respondent_user_id,
        answers=answers.as_json(), scores=result.as_json(), total=result.total,
        is_valid=result.is_valid, is_prorated=result.is_prorated, completed_dt=completed_dt,
        idempotency_key=idempotency_key, created_dt=now, language=language)
    try:
        with _savepoint(session):
            session.add(row)
            session.flush()
    except sa_exc.IntegrityError:
        # A concurrent request with the same key won the race: return its result.
        if (winner := existing()) is not None:
            return same(winner), False
        raise
    # Another submission for the same episode (PHQ-9 and GAD-7 sent together) may raise
    # the same alert at the same moment; the unique index refuses the second. Re-read and
    # sync again rather than lose this submission.
    for attempt in range(3):
        try:
            with _savepoint(session):
                update_episode_signals(session, episode, library, now)
            break
        except sa_exc.IntegrityError:
            if attempt == 2:
                raise
            session.expire_all()
    return row, True


@functools.cache
def _by_key_statement() -> Select:
    """The administration stored under an idempotency key (built once: issue 21)."""
    return select(Administration).where(
        Administration.idempotency_key == bindparam("key", type_=String))


def _savepoint(session: Session) -> contextlib.AbstractContextManager[object]:
    """A savepoint around a write that a concurrent transaction can make fail (a unique
    index: the same key stored meanwhile, the same alert raised meanwhile), so that the
    rest of the transaction stands and the write can be retried: on PostgreSQL. On SQLite
    no other transaction writes between this one's reads and writes (a writing
    transaction begins IMMEDIATE, holding the write lock to its end: outcome.db), so no
    such failure can happen and no savepoint is sent (issue 21: four statements a
    submission)."""
    if session.get_bind().dialect.name == "sqlite":
        return contextlib.nullcontext()
    return session.begin_nested()


def amend_administration(session: Session, row: Administration, *, instrument: Instrument,
                         answers: Answers, library: InstrumentLibrary, now: dt.datetime
                         ) -> bool:
    """Replace a stored administration's answers and scores, then the episode's signals;
    flush. Returns False, changing nothing, when the answers are the same.

    Only for a client who goes Back before finishing their link (the link's pages are one
    visit). Alerts already raised stay: a critical answer once given is a clinician's to
    acknowledge, whatever it is changed to; a new critical answer alerts as usual.
    """
    if (row.instrument_id, row.answers) == (instrument.id, answers.as_json()):
        return False
    episode = session.get(Episode, row.episode_id)
    assert episode is not None
    result = score_answers(instrument, answers)
    row.instrument_version = instrument.version
    row.answers = answers.as_json()
    row.scores = result.as_json()
    row.total = result.total
    row.is_valid, row.is_prorated = result.is_valid, result.is_prorated
    row.completed_dt = now
    session.flush()
    for attempt in range(3):
        try:
            with _savepoint(session):
                update_episode_signals(session, episode, library, now)
            break
        except sa_exc.IntegrityError:
            if attempt == 2:
                raise
            session.expire_all()
    return True
