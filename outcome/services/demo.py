"""The demo clinic: staff, 150 fictional clients (120 in care or recently ended, 30 past),
episodes and months of appointments.

Everything here is generated; no real person is described. Generation is
deterministic for a given seed and ``today``, so a demo week can be reproduced in
tests and screenshots. Answers to the questionnaires come from
:mod:`outcome.services.demo_answers`.
"""

from __future__ import annotations

import datetime as dt
import random
import zoneinfo
from dataclasses import dataclass

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.models import Administration
from outcome.models import Alert
from outcome.models import Appointment
from outcome.models import Client
from outcome.models import Clinic
from outcome.models import ConsentDecision
from outcome.models import Episode
from outcome.models import SupervisorAssignment
from outcome.models import User
from outcome.services import consent
from outcome.services.client_codes import allocate_client_code
from outcome.services.demo_answers import fill_demo_answers
from outcome.services.demo_support import seed_demo_support
from outcome.services.fits import refit_models
from outcome.services.instruments import attest
from outcome.services.instruments import instrument_statuses
from outcome.services.passwords import hash_password
from outcome.services.signals import recompute_signals
from questionnaires.loader import InstrumentLibrary

DEMO_SLUG = "demo"
DEMO_DOMAIN = "demo.example.org"
CLIENTS_PER_THERAPIST = 20
# Past clients per therapist: one finished course 6-12 months ago each. With the recently
# ended episodes they give the expected-recovery fit at least 50 finished episodes per
# outcome measure (the clinic's default minimum), so the demo shows the band.
PAST_CLIENTS_PER_THERAPIST = 5
THERAPISTS_PER_SUPERVISOR = 3

FIRST_NAMES = (
    "Amara", "Ben", "Chloe", "Dmitri", "Elif", "Farah", "Gareth", "Hana", "Ines", "Jonah",
    "Kavya", "Liam", "Maya", "Nikolai", "Olu", "Priya", "Quinn", "Rosa", "Sami", "Tomas",
    "Una", "Vera", "Wes", "Xenia", "Yusuf", "Zara", "Aiden", "Bea", "Cal", "Dara",
)
LAST_NAMES = (
    "Abbott", "Brennan", "Castillo", "Dimitrov", "Eze", "Fischer", "Gallagher", "Haddad",
    "Ivanova", "Jensen", "Kowalski", "Lindqvist", "Moreau", "Nakamura", "Okafor", "Petrov",
    "Quigley", "Rahman", "Santos", "Thornton", "Umarov", "Varga", "Whitfield", "Yilmaz",
)
STAFF = (
    ("admin", "Alex Morgan", (True, False, False)),
    ("supervisor1", "Dr. Sofia Reyes", (False, True, False)),
    ("supervisor2", "Dr. Henrik Olsen", (False, True, False)),
    ("therapist1", "Jamie Clarke", (False, False, True)),
    ("therapist2", "Noor Aziz", (False, False, True)),
    ("therapist3", "Pavel Sokolov", (False, False, True)),
    ("therapist4", "Grace Mensah", (False, False, True)),
    ("therapist5", "Lucía Ortega", (False, False, True)),
    ("therapist6", "Owen Price", (False, False, True)),
)


@dataclass(frozen=True)
class DemoLogin:
    email: str
    display_name: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class DemoSummary:
    """What the demo clinic holds; ``created`` is False when it already existed."""

    created: bool
    clinic_name: str
    logins: tuple[DemoLogin, ...]
    clients: int
    episodes: int
    appointments: int
    administrations: int


def seed_demo(
    session: Session,
    *,
    today: dt.date,
    password: str,
    timezone: str = "UTC",
    seed: int = 20261122,
    library: InstrumentLibrary | None = None,
) -> DemoSummary:
    """Create the demo clinic unless it exists, and flush; return what it holds.

    ``today`` anchors the calendar: episodes opened up to 26 weeks before it, weekly
    appointments up to it (attended, cancelled or missed) and two weeks beyond it
    (scheduled). ``password`` is set on every demo account. With a ``library``, attended
    appointments get questionnaire answers (also added to a demo clinic created before
    answers existed). Running it again changes nothing else.
    """
    clinic = session.scalar(select(Clinic).where(Clinic.slug == DEMO_SLUG))
    if clinic is not None:
        _add_consents(session, clinic)
        if library is not None:
            _add_answers(session, clinic, library, today, seed)
        return summarise(session, clinic, created=False)

    rng = random.Random(seed)  # noqa: S311 (reproducible demo data, not secrets)
    tz = zoneinfo.ZoneInfo(timezone)
    clinic = Clinic(slug=DEMO_SLUG, name="Riverside Psychotherapy (demo)", timezone=timezone)
    session.add(clinic)
    session.flush()

    password_hash = hash_password(password)
    staff: dict[str, User] = {}
    for handle, name, (is_admin, is_supervisor, is_therapist) in STAFF:
        user = User(clinic_id=clinic.id, email=f"{handle}@{DEMO_DOMAIN}", display_name=name,
                    password_hash=password_hash, is_admin=is_admin,
                    is_supervisor=is_supervisor, is_therapist=is_therapist)
        session.add(user)
        staff[handle] = user
    session.flush()

    therapists = [staff[f"therapist{i}"] for i in range(1, 7)]
    for index, therapist in enumerate(therapists):
        supervisor = staff[f"supervisor{index // THERAPISTS_PER_SUPERVISOR + 1}"]
        session.add(SupervisorAssignment(clinic_id=clinic.id, supervisor_id=supervisor.id,
                                         therapist_id=therapist.id))

    names = _unique_names(rng, (CLIENTS_PER_THERAPIST + PAST_CLIENTS_PER_THERAPIST)
                          * len(therapists))
    current = CLIENTS_PER_THERAPIST * len(therapists)
    for index, name in enumerate(names[:current]):
        therapist = therapists[index % len(therapists)]
        _add_client(session, rng, clinic, therapist, name, today, tz)
    for index, name in enumerate(names[current:]):
        _add_client(session, rng, clinic, therapists[index % len(therapists)], name, today, tz,
                    past=True)
    session.flush()
    _add_consents(session, clinic)
    if library is not None:
        _add_answers(session, clinic, library, today, seed)
    return summarise(session, clinic, created=True)


def _add_answers(session: Session, clinic: Clinic, library: InstrumentLibrary,
                 today: dt.date, seed: int) -> None:
    """Attest the licences the demo uses (fictional clinic, non-commercial), then answers.

    The post-session measure is the clinic default, the project's own session check,
    which needs no licence; the SRS-compatible scales are not used (no wording).
    """
    admin = session.scalar(select(User).where(User.clinic_id == clinic.id, User.is_admin))
    now = dt.datetime.combine(today, dt.time(8), tzinfo=dt.UTC)
    for status in instrument_statuses(session, clinic.id, library):
        instrument = status.instrument
        if (instrument.id == "gbo" and status.attestation is None
                and admin is not None):
            attest(session, clinic=clinic, instrument=instrument, admin=admin, now=now,
                   note="Demo clinic with fictional data (non-commercial demonstration).")
    if fill_demo_answers(session, clinic, library, seed=seed):
        refit_models(session, clinic, library, now)
        recompute_signals(session, library, now, clinic.id)
        backdate_demo_alerts(session, clinic)
        seed_demo_support(session, clinic, library, now)


def _add_consents(session: Session, clinic: Clinic) -> None:
    """Every demo client agreed to the clinic's consent text (the shipped English
    version 1) on the link page before their first questionnaire, the morning their first
    episode opened (issue 20). Clients with a decision already are left as they are."""
    first_day = dict(session.execute(
        select(Episode.client_id, func.min(Episode.opened_on))
        .where(Episode.clinic_id == clinic.id).group_by(Episode.client_id)).all())
    if not first_day:
        return
    decided = set(session.scalars(select(ConsentDecision.client_id).where(
        ConsentDecision.clinic_id == clinic.id)))
    earliest = dt.datetime.combine(min(first_day.values()), dt.time(7), tzinfo=dt.UTC)
    text = consent.current_text(session, clinic, "en", earliest)
    for client in session.scalars(select(Client).where(Client.clinic_id == clinic.id)
                                  .order_by(Client.id)):
        if client.id in decided or client.id not in first_day:
            continue
        consent.record_decision(
            session, client=client, text=text, decision="agreed", channel="link",
            now=dt.datetime.combine(first_day[client.id], dt.time(8), tzinfo=dt.UTC))


def _unique_names(rng: random.Random, count: int) -> list[str]:
    pairs = [(f, last) for f in FIRST_NAMES for last in LAST_NAMES]
    rng.shuffle(pairs)
    return [f"{first} {last}" for first, last in pairs[:count]]


def _add_client(session: Session, rng: random.Random, clinic: Clinic, therapist: User,
                name: str, today: dt.date, tz: zoneinfo.ZoneInfo, *, past: bool = False
                ) -> None:
    first = name.split()[0].lower()
    client = Client(
        clinic_id=clinic.id,
        code=allocate_client_code(session, rng),
        name=name,
        email=f"{first}.{rng.randrange(100, 999)}@{DEMO_DOMAIN}",
        phone=f"+44 7700 900{rng.randrange(0, 1000):03d}",  # Ofcom's drama range
        therapist_id=therapist.id,
    )
    session.add(client)
    session.flush()

    if past:  # a past client: one course that ended 6 to 12 months ago
        weeks = rng.randint(8, 16)
        start = today - dt.timedelta(weeks=weeks + rng.randint(26, 52))
        reason = rng.choices(["completed", "dropped_out"], [0.85, 0.15])[0]
        _add_episode(session, rng, client, therapist, start, weeks=weeks, today=today, tz=tz,
                     end_reason=reason)
        return

    # A few clients came back for a second course: an earlier, finished episode.
    if rng.random() < 0.08:
        start = today - dt.timedelta(weeks=rng.randint(44, 52))
        _add_episode(session, rng, client, therapist, start, weeks=rng.randint(8, 14),
                     today=today, tz=tz, end_reason="completed")

    roll = rng.random()
    if roll < 0.22:  # ended in the last two months
        weeks = rng.randint(6, 20)
        start = today - dt.timedelta(weeks=weeks + rng.randint(1, 8))
        reason = rng.choices(["completed", "dropped_out", "referred"], [0.7, 0.2, 0.1])[0]
        _add_episode(session, rng, client, therapist, start, weeks=weeks, today=today, tz=tz,
                     end_reason=reason)
    else:  # in care now; a few just started
        weeks_ago = rng.randint(0, 3) if roll > 0.9 else rng.randint(4, 26)
        start = today - dt.timedelta(weeks=weeks_ago, days=rng.randint(0, 6))
        _add_episode(session, rng, client, therapist, start, weeks=None, today=today, tz=tz)


def _add_episode(session: Session, rng: random.Random, client: Client, therapist: User,
                 start: dt.date, *, weeks: int | None, today: dt.date,
                 tz: zoneinfo.ZoneInfo, end_reason: str | None = None) -> None:
    closed_on = None if weeks is None else start + dt.timedelta(weeks=weeks - 1)
    episode = Episode(clinic_id=client.clinic_id, client_id=client.id,
                      therapist_id=therapist.id, opened_on=start, closed_on=closed_on,
                      end_reason=end_reason if closed_on else None)
    session.add(episode)
    session.flush()

    hour = rng.choice([9, 10, 11, 13, 14, 15, 16, 17])
    last_day = closed_on or today + dt.timedelta(weeks=2)
    day = start
    while day <= last_day:
        local = dt.datetime.combine(day, dt.time(hour, 0), tzinfo=tz)
        if day < today or (closed_on is not None):
            status = rng.choices(["attended", "cancelled", "no_show"], [0.86, 0.08, 0.06])[0]
        else:
            status = "scheduled"
        session.add(Appointment(episode_id=episode.id, starts_dt=local.astimezone(dt.UTC),
                                duration_minutes=50, status=status))
        day += dt.timedelta(weeks=1)


def summarise(session: Session, clinic: Clinic, *, created: bool) -> DemoSummary:
    """Counts and logins of an existing demo clinic."""
    users = session.scalars(select(User).where(User.clinic_id == clinic.id)
                            .order_by(User.id)).all()
    episode_ids = select(Episode.id).where(Episode.clinic_id == clinic.id)
    return DemoSummary(
        created=created,
        clinic_name=clinic.name,
        logins=tuple(DemoLogin(u.email, u.display_name, u.roles) for u in users),
        clients=session.scalar(select(func.count()).select_from(Client)
                               .where(Client.clinic_id == clinic.id)) or 0,
        episodes=session.scalar(select(func.count()).select_from(Episode)
                                .where(Episode.clinic_id == clinic.id)) or 0,
        appointments=session.scalar(select(func.count()).select_from(Appointment)
                                    .where(Appointment.episode_id.in_(episode_ids))) or 0,
        administrations=session.scalar(
            select(func.count()).select_from(Administration)
            .where(Administration.episode_id.in_(episode_ids))) or 0,
    )


def demo_exists(session: Session) -> bool:
    """Whether the demo clinic has been created."""
    return session.scalar(select(Clinic.id).where(Clinic.slug == DEMO_SLUG)) is not None


def database_is_empty(session: Session) -> bool:
    """Whether no clinic exists yet (``make run`` seeds the demo only then)."""
    return session.scalar(select(func.count()).select_from(Clinic)) == 0


def backdate_demo_alerts(session: Session, clinic: Clinic) -> None:
    """Date the demo's alerts when their answers came in, not when the demo was built.

    In real use an alert is raised as the answers are submitted; the demo computes six
    months of answers at once, so without this every alert would be from today and the
    digest's week-by-week figures would be empty. An alert with a triggering answer
    takes its time; a condition (not on track, rupture) takes the episode's latest answer.
    """
    latest = dict(session.execute(
        select(Administration.episode_id, func.max(Administration.completed_dt))
        .join(Episode, Episode.id == Administration.episode_id)
        .where(Episode.clinic_id == clinic.id).group_by(Administration.episode_id)).all())
    for alert in session.scalars(select(Alert).join(Episode, Episode.id == Alert.episode_id)
                                 .where(Episode.clinic_id == clinic.id)):
        trigger = session.get(Administration, alert.administration_id) \
            if alert.administration_id else None
        when = trigger.completed_dt if trigger else latest.get(alert.episode_id)
        if when is not None:
            alert.raised_dt = when
    session.flush()
