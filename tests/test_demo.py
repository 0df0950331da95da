"""The demo clinic: its shape, determinism and idempotency."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from sqlalchemy import func
from sqlalchemy import select

from outcome.db import make_engine
from outcome.models import Administration
from outcome.models import Appointment
from outcome.models import Client
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import SupervisorAssignment
from outcome.models import User
from outcome.services import demo
from outcome.services.client_codes import is_client_code
from outcome.services.passwords import verify_password

TODAY = dt.date(2026, 11, 22)


def test_demo_has_the_promised_shape(db_session):
    summary = demo.seed_demo(db_session, today=TODAY, password="demo password for tests",
                             timezone="Europe/London")
    assert summary.created
    roles = Counter(role for login in summary.logins for role in login.roles)
    assert roles == {"admin": 1, "supervisor": 2, "therapist": 6}
    assert summary.clients == 150  # 120 in care or recently ended, 30 past clients

    clinic = db_session.scalar(select(Clinic).where(Clinic.slug == demo.DEMO_SLUG))
    therapists = db_session.scalars(select(User).where(User.clinic_id == clinic.id,
                                                       User.is_therapist)).all()
    per_therapist = Counter(db_session.scalars(select(Client.therapist_id)
                                               .where(Client.clinic_id == clinic.id)))
    assert set(per_therapist.values()) == {25}
    supervised = Counter(db_session.scalars(select(SupervisorAssignment.supervisor_id)))
    assert sorted(supervised.values()) == [3, 3]
    assert {a.therapist_id for a in db_session.scalars(select(SupervisorAssignment))} == {
        t.id for t in therapists}

    codes = db_session.scalars(select(Client.code).where(Client.clinic_id == clinic.id)).all()
    assert all(is_client_code(code) for code in codes)

    user = db_session.scalar(select(User).where(User.clinic_id == clinic.id))
    assert verify_password(user.password_hash, "demo password for tests")


def test_demo_calendar_spans_months_and_respects_today(db_session):
    demo.seed_demo(db_session, today=TODAY, password="demo password for tests",
                   timezone="Europe/London")
    starts = db_session.scalars(select(Episode.opened_on)).all()
    assert min(starts) <= TODAY - dt.timedelta(weeks=20)  # several months of history
    open_count = db_session.scalar(select(func.count()).select_from(Episode)
                                   .where(Episode.closed_on.is_(None)))
    closed_count = db_session.scalar(select(func.count()).select_from(Episode)
                                     .where(Episode.closed_on.is_not(None)))
    assert open_count >= 80 and closed_count >= 15
    now = dt.datetime.combine(TODAY, dt.time(0), tzinfo=dt.UTC)
    future = db_session.scalars(select(Appointment.status)
                                .where(Appointment.starts_dt > now + dt.timedelta(days=1))).all()
    past = db_session.scalars(select(Appointment.status)
                              .where(Appointment.starts_dt < now - dt.timedelta(days=1))).all()
    assert set(future) == {"scheduled"}
    assert "scheduled" not in past and Counter(past)["attended"] > 0.8 * len(past)
    # Closed episodes have no appointment after their end.
    late = db_session.scalar(
        select(func.count()).select_from(Appointment).join(Episode)
        .where(Episode.closed_on.is_not(None),
               func.date(Appointment.starts_dt) > Episode.closed_on))
    assert late == 0


def test_demo_is_idempotent(db_session):
    first = demo.seed_demo(db_session, today=TODAY, password="demo password for tests")
    again = demo.seed_demo(db_session, today=TODAY + dt.timedelta(days=30),
                           password="another password entirely")
    assert not again.created
    assert (again.clients, again.episodes, again.appointments) == (
        first.clients, first.episodes, first.appointments)
    assert db_session.scalar(select(func.count()).select_from(Clinic)) == 1


def test_demo_is_deterministic_for_a_seed(db_session):
    def snapshot() -> list[tuple]:
        savepoint = db_session.begin_nested()
        demo.seed_demo(db_session, today=TODAY, password="demo password for tests")
        rows = db_session.execute(
            select(Client.code, Client.name, Episode.opened_on, Appointment.starts_dt,
                   Appointment.status)
            .join(Episode, Episode.client_id == Client.id)
            .join(Appointment, Appointment.episode_id == Episode.id)
            .order_by(Client.code, Appointment.starts_dt)).all()
        savepoint.rollback()
        return [tuple(row) for row in rows]

    first, second = snapshot(), snapshot()
    assert len(first) > 1000
    assert first == second


def test_a_demo_created_before_answers_existed_gets_them(demo_databases):
    # The shared demo clinic (conftest's demo_databases) is seeded this way: seed_demo
    # first without the instrument library, then with it; seeding a third demo here
    # cost 78 s on SQLite and 172 s on PostgreSQL under load (issue 18).
    before, after = demo_databases.seeding()
    assert before["created"] and before["administrations"] == 0
    assert not after["created"] and after["administrations"] > 4000
    assert [after[n] for n in ("clients", "episodes", "appointments")] == [
        before[n] for n in ("clients", "episodes", "appointments")]
    engine = make_engine(demo_databases.new_url())
    try:
        with engine.connect() as connection:
            stored = connection.scalar(select(func.count()).select_from(Administration))
    finally:
        engine.dispose()
    assert stored == after["administrations"]
