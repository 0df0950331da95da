"""Invariants held by the database itself, whatever code writes to it."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import select

from outcome.models import Alert
from outcome.models import Client
from outcome.models import Episode
from outcome.models import Goal
from outcome.models import SupervisorAssignment
from outcome.models import User


@pytest.fixture
def refused(db_session):
    """Assert that flushing ``obj`` violates a constraint, and roll back only that."""

    def check(obj) -> None:
        savepoint = db_session.begin_nested()
        db_session.add(obj)
        with pytest.raises(sa_exc.IntegrityError):
            db_session.flush()
        savepoint.rollback()

    return check


def test_a_client_cannot_have_a_therapist_from_another_clinic(make_clinic, make_user, refused):
    other = make_clinic()
    foreign_therapist = make_user(clinic_id=other.id)
    home = make_clinic()
    refused(Client(clinic_id=home.id, code="C-AAAAAA", name="X Y",
                   therapist_id=foreign_therapist.id))


def test_supervision_stays_within_a_clinic(make_clinic, make_user, refused):
    therapist = make_user()
    supervisor = make_user("supervisor", clinic_id=make_clinic().id)
    refused(SupervisorAssignment(clinic_id=therapist.clinic_id, supervisor_id=supervisor.id,
                                 therapist_id=therapist.id))


def test_nobody_supervises_themselves(make_user, refused):
    both = make_user("supervisor", is_therapist=True)
    refused(SupervisorAssignment(clinic_id=both.clinic_id, supervisor_id=both.id,
                                 therapist_id=both.id))


def test_episode_therapist_must_share_the_clients_clinic(make_clinic, make_user, make_client,
                                                         refused):
    client = make_client(make_user())
    outsider = make_user(clinic_id=make_clinic().id)
    refused(Episode(clinic_id=client.clinic_id, client_id=client.id,
                    therapist_id=outsider.id, opened_on=dt.date(2026, 1, 1)))


def test_one_open_episode_per_client(make_user, make_client, make_episode, refused):
    client = make_client(make_user())
    make_episode(client, opened_on=dt.date(2025, 1, 1), closed_on=dt.date(2025, 3, 1),
                 end_reason="completed")
    make_episode(client, opened_on=dt.date(2026, 1, 1))
    refused(Episode(clinic_id=client.clinic_id, client_id=client.id,
                    therapist_id=client.therapist_id, opened_on=dt.date(2026, 2, 1)))


@pytest.mark.parametrize(("closed_on", "end_reason"), [
    (dt.date(2025, 12, 31), "completed"),  # before it opened
    (dt.date(2026, 3, 1), None),  # closed without a reason
    (None, "completed"),  # a reason while open
    (dt.date(2026, 3, 1), "bored"),  # unknown reason
])
def test_episode_end_must_be_consistent(make_user, make_client, refused, closed_on, end_reason):
    client = make_client(make_user())
    refused(Episode(clinic_id=client.clinic_id, client_id=client.id,
                    therapist_id=client.therapist_id, opened_on=dt.date(2026, 1, 1),
                    closed_on=closed_on, end_reason=end_reason))


def test_only_one_open_alert_per_kind_and_episode(db_session, make_user, make_client,
                                                  make_episode, refused):
    episode = make_episode(make_client(make_user()))
    db_session.add(Alert(episode_id=episode.id, kind="critical_item"))
    db_session.flush()
    refused(Alert(episode_id=episode.id, kind="critical_item"))
    # A different kind, or a resolved one of the same kind, is fine.
    db_session.add(Alert(episode_id=episode.id, kind="red"))
    db_session.add(Alert(episode_id=episode.id, kind="critical_item", status="resolved",
                         resolved_dt=dt.datetime(2026, 11, 1, tzinfo=dt.UTC)))
    db_session.flush()


def test_acknowledging_an_alert_needs_who_when_and_a_note(make_user, make_client,
                                                          make_episode, refused):
    therapist = make_user()
    episode = make_episode(make_client(therapist))
    refused(Alert(episode_id=episode.id, kind="red", status="acknowledged",
                  acknowledged_by_id=therapist.id,
                  acknowledged_dt=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
                  acknowledgement_note=""))


def test_at_most_three_goals(make_user, make_client, make_episode, refused):
    episode = make_episode(make_client(make_user()))
    refused(Goal(episode_id=episode.id, position=4, description="Sleep better"))


def test_a_user_has_at_least_one_role(clinic, refused):
    refused(User(clinic_id=clinic.id, email="nobody@example.org", display_name="No Role"))


def test_emails_are_unique_regardless_of_case(make_user, clinic, refused):
    make_user(email="Sam@Example.org")
    refused(User(clinic_id=clinic.id, email="sam@example.ORG", display_name="Sam Again",
                 is_therapist=True))


def test_times_round_trip_as_aware_utc(db_session, make_user, make_client, make_episode,
                                       make_appointment):
    plus_two = dt.timezone(dt.timedelta(hours=2))
    local = dt.datetime(2026, 11, 17, 12, 0, tzinfo=plus_two)
    appointment = make_appointment(make_episode(make_client(make_user())), starts_dt=local)
    db_session.expire_all()
    stored = db_session.get(type(appointment), appointment.id).starts_dt
    assert stored == local
    assert stored.tzinfo == dt.UTC
    assert stored.hour == 10


def test_naive_datetimes_are_refused(db_session, make_user, make_client, make_episode):
    episode = make_episode(make_client(make_user()))
    from outcome.models import Appointment

    db_session.add(Appointment(episode_id=episode.id, starts_dt=dt.datetime(2026, 11, 17, 10)))
    with pytest.raises(sa_exc.StatementError, match="naive datetime"):
        db_session.flush()
    db_session.rollback()


def test_deleting_an_episode_removes_its_appointments(db_session, make_user, make_client,
                                                      make_episode, make_appointment):
    episode = make_episode(make_client(make_user()))
    appointment_id = make_appointment(episode).id
    db_session.delete(episode)
    db_session.flush()
    db_session.expunge_all()
    from outcome.models import Appointment

    assert db_session.scalar(select(Appointment).where(Appointment.id == appointment_id)) is None
