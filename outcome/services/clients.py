"""Clients and episodes of care: registering a client, opening and ending episodes.

A client is registered by (or for) their therapist with a fresh pseudonymous code; an
episode runs from intake to its end. Ending an episode withdraws its unused
questionnaire links, cancels sessions still booked after the end, and recomputes its
signals (progress and rupture conditions resolve; critical answers still alert).
Services flush; the caller commits.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.core.languages import SUPPORTED_LOCALES
from outcome.models import Appointment
from outcome.models import Client
from outcome.models import Episode
from outcome.models import User
from outcome.models.care import END_REASONS
from outcome.services.access import may_register_for
from outcome.services.appointments import withdraw_unsent_mail
from outcome.services.client_codes import allocate_client_code
from outcome.services.episode_change import EpisodeMeasureError
from outcome.services.episode_change import check_episode_measures
from outcome.services.links import revoke_unused
from outcome.services.signals import update_episode_signals
from outcome.services.staff import N_
from outcome.services.staff import StaffError
from questionnaires.loader import InstrumentLibrary

NAME_MAX = 200
EMAIL_MAX = 254
PHONE_MAX = 40
LOCALES = SUPPORTED_LOCALES
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9 ()\-]{5,40}$")
# The words for each of END_REASONS (outcome.models.care, the one list), for the pages,
# the supervisor's figures and the digest; translated where they are shown.
END_REASON_LABELS: dict[str, str] = {
    "completed": N_("Completed as planned"),
    "mutual": N_("Ended early by mutual agreement"),
    "dropped_out": N_("The client ended without agreement"),
    "referred": N_("Referred on"),
    "other": N_("Other reason"),
}
assert tuple(END_REASON_LABELS) == END_REASONS


class CareError(StaffError):
    """A client or episode change that cannot be made; ``field`` names the input at fault."""


def _clean_contact(name: str, email: str | None, phone: str | None, locale: str
                   ) -> tuple[str, str | None, str | None, str]:
    clean_name = " ".join((name or "").split())
    if any(unicodedata.category(ch) == "Cc" for ch in clean_name):
        raise CareError(N_("The name contains control characters."), field="name")
    if not clean_name:
        raise CareError(N_("The client's name is required."), field="name")
    if len(clean_name) > NAME_MAX:
        raise CareError(N_("The name is too long: at most 200 characters."), field="name")
    clean_email = (email or "").strip() or None
    if clean_email is not None and (len(clean_email) > EMAIL_MAX
                                    or not _EMAIL.match(clean_email)):
        raise CareError(N_("%(value)s is not an e-mail address."), field="email",
                        value=clean_email[:60])
    clean_phone = (phone or "").strip() or None
    if clean_phone is not None and not _PHONE.match(clean_phone):
        raise CareError(N_("A phone number has 5 to 40 digits, spaces, brackets or dashes, "
                           "optionally starting with +."), field="phone")
    if locale not in LOCALES:
        raise CareError(N_("The language must be one of: %(choices)s."), field="locale",
                        choices=", ".join(LOCALES))
    return clean_name, clean_email, clean_phone, locale


def register_client(session: Session, therapist: User, *, name: str, opened_on: dt.date,
                    email: str | None = None, phone: str | None = None,
                    locale: str = "en", by: User | None = None,
                    primary: str | None = None, descriptor: str | None = None,
                    library: InstrumentLibrary | None = None,
                    now: dt.datetime | None = None) -> tuple[Client, Episode]:
    """Register a client of ``therapist`` with a new code and open their first episode.

    The therapist must be an active therapist; ``by`` (default: the therapist) must be
    allowed to register for them (:func:`outcome.services.access.may_register_for`: a
    therapist for themselves, an admin for a therapist of the clinic). ``opened_on`` is
    the intake date in the clinic's calendar. E-mail and phone are optional (links can be
    handed over in the room). The episode's primary measure and problem descriptor are
    optional (with ``library`` and ``now``; None: the clinic's default, not recorded).
    Everything is checked before anything is added. Flushes and returns the client and
    the open episode.
    """
    if not (therapist.is_active and therapist.is_therapist):
        raise CareError(N_("Clients are registered for an active therapist."),
                        field="therapist")
    if not may_register_for(by or therapist, therapist):
        raise CareError(N_("You may register clients for yourself only."), field="therapist")
    clean_name, clean_email, clean_phone, clean_locale = _clean_contact(name, email, phone,
                                                                        locale)
    if (primary or descriptor) and library is None:
        raise ValueError("a primary measure or problem descriptor needs the library")
    if library is not None:
        try:
            primary, descriptor = check_episode_measures(primary, descriptor, library)
        except EpisodeMeasureError:
            raise CareError(N_("Choose a primary measure and a problem from the lists."),
                            field="primary") from None
    client = Client(clinic_id=therapist.clinic_id, code=allocate_client_code(session),
                    name=clean_name, email=clean_email, phone=clean_phone,
                    locale=clean_locale, therapist_id=therapist.id)
    session.add(client)
    session.flush()
    episode = open_episode(session, client, opened_on)
    if primary or descriptor:
        assert library is not None
        episode.primary_instrument_id, episode.problem_descriptor = primary, descriptor
        session.flush()
        update_episode_signals(session, episode, library, now or dt.datetime.now(dt.UTC))
    return client, episode


def update_client(session: Session, client: Client, *, name: str, email: str | None,
                  phone: str | None, locale: str) -> list[str]:
    """Change a client's name, contacts and language (checked as at registration); flush.

    Returns the names of the fields that changed (for the audit record: which, never
    what), empty if nothing did.
    """
    clean = dict(zip(("name", "email", "phone", "locale"),
                     _clean_contact(name, email, phone, locale), strict=True))
    changed = [key for key, value in clean.items() if getattr(client, key) != value]
    for key in changed:
        setattr(client, key, clean[key])
    session.flush()
    return changed


def last_episode(session: Session, client: Client) -> Episode | None:
    """The client's open episode, else the one that ended last (None before any)."""
    return session.scalar(select(Episode).where(Episode.client_id == client.id)
                          .order_by(Episode.closed_on.is_(None).desc(),
                                    Episode.opened_on.desc(), Episode.id.desc()).limit(1))


def open_episode(session: Session, client: Client, opened_on: dt.date) -> Episode:
    """Open a new episode of care for ``client`` with their current therapist; flush.

    Refused while another episode is open (a client has at most one) or when the new
    one would start before the last one ended.
    """
    if client.therapist_id is None:
        raise CareError(N_("The client has no therapist; transfer them to one first."))
    episodes = session.scalars(select(Episode).where(Episode.client_id == client.id)).all()
    if any(e.closed_on is None for e in episodes):
        raise CareError(N_("The client already has an open episode; end it before opening "
                           "another."), field="opened_on")
    last_end = max((e.closed_on for e in episodes if e.closed_on), default=None)
    if last_end is not None and opened_on < last_end:
        raise CareError(N_("A new episode cannot start before the last one ended "
                           "(%(date)s)."), field="opened_on", date=last_end.isoformat())
    episode = Episode(clinic_id=client.clinic_id, client_id=client.id,
                      therapist_id=client.therapist_id, opened_on=opened_on)
    session.add(episode)
    session.flush()
    return episode


def close_episode(session: Session, episode: Episode, *, closed_on: dt.date, end_reason: str,
                  library: InstrumentLibrary, now: dt.datetime) -> Episode:
    """End ``episode`` on ``closed_on`` for ``end_reason``; flush.

    ``end_reason`` is one of :data:`outcome.models.care.END_REASONS`;
    ``closed_on`` is not before the episode opened. Unused links are withdrawn, sessions
    still booked after ``now`` are cancelled, and the signals are recomputed.
    """
    if episode.closed_on is not None:
        raise CareError(N_("This episode has ended already (%(date)s)."),
                        date=episode.closed_on.isoformat())
    if end_reason not in END_REASONS:
        raise CareError(N_("The reason must be one of: %(choices)s."), field="end_reason",
                        choices=", ".join(END_REASONS))
    if closed_on < episode.opened_on:
        raise CareError(N_("An episode cannot end before it opened (%(date)s)."),
                        field="closed_on", date=episode.opened_on.isoformat())
    episode.closed_on, episode.end_reason = closed_on, end_reason
    for appointment in session.scalars(select(Appointment).where(
            Appointment.episode_id == episode.id, Appointment.status == "scheduled",
            Appointment.starts_dt > now)):
        appointment.status = "cancelled"
        withdraw_unsent_mail(session, appointment)  # else the client is mailed a dead link
    session.flush()
    revoke_unused(session, episode, now)
    update_episode_signals(session, episode, library, now)
    return episode
