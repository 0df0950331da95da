"""Staff accounts, supervision and transfers: the service rules and every refusal."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from outcome.models import Episode
from outcome.models import SupervisorAssignment
from outcome.services import staff
from outcome.services.access import administered_clients
from outcome.services.access import visible_clients
from outcome.services.passwords import verify_password
from outcome.services.staff import StaffError
from tests.conftest import TEST_PASSWORD

NEW_PASSWORD = "a lantern by the quiet harbour"


def test_create_user_normalises_the_email_and_hashes_the_password(db_session, clinic, clock):
    user = staff.create_user(db_session, clinic, "  Robin.Field@Example.ORG ", " Robin Field ",
                             ["therapist", "supervisor"], NEW_PASSWORD, clock())
    assert (user.email, user.display_name) == ("robin.field@example.org", "Robin Field")
    assert user.roles == ("supervisor", "therapist")
    assert user.is_active and user.session_version == 1
    assert user.password_changed_dt == clock()
    assert verify_password(user.password_hash, NEW_PASSWORD)
    assert NEW_PASSWORD not in user.password_hash


def test_create_user_without_password_cannot_sign_in_yet(db_session, clinic, clock):
    user = staff.create_user(db_session, clinic, "new@example.org", "New", ["admin"], None,
                             clock())
    assert user.password_hash is None and user.password_changed_dt is None


@pytest.mark.parametrize(("email", "name", "roles", "password", "message", "field"), [
    ("not-an-address", "A", ["therapist"], None, "is not an e-mail address", "email"),
    ("a b@example.org", "A", ["therapist"], None, "is not an e-mail address", "email"),
    ("x@example.org", "  ", ["therapist"], None, "Give the person's name", "display_name"),
    ("x@example.org", "A" * 201, ["therapist"], None, "at most 200 characters",
     "display_name"),
    ("x@example.org", "A", [], None, "at least one role", "roles"),
    ("x@example.org", "A", ["owner"], None, "Unknown role owner", "roles"),
    ("x@example.org", "A", ["therapist"], "short", "at least 15 characters", "password"),
    ("x@example.org", "A", ["therapist"], "passwordpassword", "too common", "password"),
    ("robinfield@example.org", "A", ["therapist"], "robinfield and some more words",
     "e-mail name", "password"),
])
def test_create_user_refusals(db_session, clinic, clock, email, name, roles, password,
                              message, field):
    with pytest.raises(StaffError, match=message) as caught:
        staff.create_user(db_session, clinic, email, name, roles, password, clock())
    assert caught.value.field == field


def test_email_is_unique_case_insensitively_across_clinics(db_session, clinic, make_clinic,
                                                           make_user, clock):
    make_user(email="taken@example.org")
    with pytest.raises(StaffError, match="already an account with the e-mail taken@"):
        staff.create_user(db_session, clinic, "TAKEN@example.org", "B", ["therapist"],
                          None, clock())
    # Another clinic cannot have it either, and is not told that an account exists
    # (issue 16, finding 12: no cross-clinic enumeration).
    with pytest.raises(StaffError) as caught:
        staff.create_user(db_session, make_clinic(), "TAKEN@example.org", "B", ["therapist"],
                          None, clock())
    assert caught.value.message == staff.NEUTRAL_EMAIL_REFUSAL
    assert caught.value.field == "email"
    assert "account with" not in str(caught.value)


def test_error_messages_are_translatable_templates():
    error = StaffError("%(name)s is disabled.", name="Robin")
    assert str(error) == "Robin is disabled."
    assert (error.message, error.params) == ("%(name)s is disabled.", {"name": "Robin"})


def test_set_roles(db_session, make_user):
    user = make_user("therapist")
    staff.set_roles(db_session, user, ["admin", "therapist", "supervisor"])
    assert user.roles == ("admin", "supervisor", "therapist")
    with pytest.raises(StaffError, match="at least one role"):
        staff.set_roles(db_session, user, [])


def test_the_last_active_admin_keeps_the_role(db_session, make_user):
    admin = make_user("admin")
    make_user("admin", is_active=False)  # a disabled admin does not count
    with pytest.raises(StaffError, match="last active admin; make someone else"):
        staff.set_roles(db_session, admin, ["therapist"])
    assert admin.is_admin and not admin.is_therapist
    make_user("admin")
    staff.set_roles(db_session, admin, ["therapist"])
    assert admin.roles == ("therapist",)


def test_the_therapist_role_stays_while_the_therapist_has_clients(db_session, make_user,
                                                                  make_client):
    therapist = make_user("therapist")
    make_client(therapist)
    with pytest.raises(StaffError, match=r"still has 1 client.*transfer them"):
        staff.set_roles(db_session, therapist, ["supervisor"])
    assert therapist.is_therapist


def test_supervision_pairs_must_go_before_the_roles(db_session, make_user, assign):
    supervisor, therapist = make_user("supervisor"), make_user("therapist")
    assign(supervisor, therapist)
    with pytest.raises(StaffError, match="still supervises therapists"):
        staff.set_roles(db_session, supervisor, ["therapist"])
    with pytest.raises(StaffError, match="still supervised as a therapist"):
        staff.set_roles(db_session, therapist, ["supervisor"])


def test_disable_ends_sessions_and_reports_clients_to_transfer(db_session, make_user,
                                                               make_client):
    therapist = make_user("therapist")
    make_client(therapist)
    make_client(therapist)
    assert staff.disable_user(db_session, therapist) == 2
    assert not therapist.is_active and therapist.session_version == 2
    # The clients stay with the therapist, but a disabled user sees nothing.
    assert db_session.scalars(visible_clients(therapist)).all() == []
    with pytest.raises(StaffError, match="already disabled"):
        staff.disable_user(db_session, therapist)
    staff.enable_user(db_session, therapist)
    assert therapist.is_active
    with pytest.raises(StaffError, match="already active"):
        staff.enable_user(db_session, therapist)


def test_the_last_active_admin_cannot_be_disabled(db_session, make_user):
    admin = make_user("admin")
    with pytest.raises(StaffError, match="last active admin and cannot be disabled"):
        staff.disable_user(db_session, admin)
    assert admin.is_active and admin.session_version == 1
    other = make_user("admin")
    assert staff.disable_user(db_session, admin) == 0
    with pytest.raises(StaffError, match="last active admin"):
        staff.disable_user(db_session, other)


def test_reset_password_bumps_the_session_version(db_session, make_user, clock):
    user = make_user()
    staff.reset_password(db_session, user, NEW_PASSWORD, clock())
    assert verify_password(user.password_hash, NEW_PASSWORD)
    assert user.session_version == 2 and user.password_changed_dt == clock()
    with pytest.raises(StaffError, match="at least 15 characters"):
        staff.reset_password(db_session, user, "too short", clock())
    assert user.session_version == 2


def test_change_password_checks_the_current_one(db_session, make_user, clock):
    user = make_user()
    with pytest.raises(StaffError, match="current password is not right") as caught:
        staff.change_password(db_session, user, "not my password", NEW_PASSWORD, clock())
    assert caught.value.field == "current_password"
    with pytest.raises(StaffError, match="same as the current one"):
        staff.change_password(db_session, user, TEST_PASSWORD, TEST_PASSWORD, clock())
    with pytest.raises(StaffError, match="too common"):
        staff.change_password(db_session, user, TEST_PASSWORD, "a" * 20, clock())
    assert user.session_version == 1
    staff.change_password(db_session, user, TEST_PASSWORD, NEW_PASSWORD, clock())
    assert verify_password(user.password_hash, NEW_PASSWORD)
    assert user.session_version == 2 and user.password_changed_dt == clock()


def test_generated_passwords_pass_the_policy_and_differ():
    from outcome.services.passwords import password_problems

    passwords = {staff.generate_password() for _ in range(20)}
    assert len(passwords) == 20
    assert all(password_problems(p, "someone@example.org") == [] for p in passwords)


def test_assign_and_unassign_a_supervisor(db_session, make_user, clock):
    supervisor, therapist = make_user("supervisor"), make_user("therapist")
    row = staff.assign_supervisor(db_session, supervisor, therapist, clock())
    assert (row.supervisor_id, row.therapist_id) == (supervisor.id, therapist.id)
    with pytest.raises(StaffError, match="already supervises"):
        staff.assign_supervisor(db_session, supervisor, therapist, clock())
    staff.unassign_supervisor(db_session, supervisor, therapist)
    assert db_session.scalars(select(SupervisorAssignment)).all() == []
    with pytest.raises(StaffError, match="does not supervise"):
        staff.unassign_supervisor(db_session, supervisor, therapist)


def test_assignment_refusals(db_session, make_clinic, make_user, clock):
    supervisor, therapist = make_user("supervisor"), make_user("therapist")
    foreign = make_user("therapist", clinic_id=make_clinic().id)
    both = make_user("supervisor", is_therapist=True)
    disabled = make_user("therapist", is_active=False)
    cases = [
        (supervisor, foreign, "same clinic"),
        (both, both, "Nobody can supervise themselves"),
        (therapist, therapist, "Nobody can supervise themselves"),
        (therapist, both, "does not have the supervisor role"),
        (supervisor, make_user("admin"), "does not have the therapist role"),
        (supervisor, disabled, "is disabled"),
    ]
    for left, right, message in cases:
        with pytest.raises(StaffError, match=message):
            staff.assign_supervisor(db_session, left, right, clock())
    assert db_session.scalars(select(SupervisorAssignment)).all() == []


def test_transfer_moves_the_client_and_the_open_episode(db_session, make_user, make_client,
                                                        make_episode, make_appointment,
                                                        clock):
    old, new = make_user("therapist"), make_user("therapist")
    person = make_client(old)
    closed = make_episode(person, closed_on=dt.date(2026, 9, 30), end_reason="completed")
    episode = make_episode(person, opened_on=dt.date(2026, 10, 1))
    appointment = make_appointment(episode)
    moved = staff.transfer_client(db_session, person, new, clock())
    assert moved is episode and episode.therapist_id == new.id
    assert person.therapist_id == new.id
    assert closed.therapist_id == old.id  # history keeps who treated it
    assert appointment.episode_id == episode.id
    assert person in db_session.scalars(visible_clients(new)).all()
    assert person not in db_session.scalars(visible_clients(old)).all()
    assert db_session.get(Episode, episode.id).therapist_id == new.id


def test_transfer_refusals(db_session, make_clinic, make_user, make_client, clock):
    therapist = make_user("therapist")
    person = make_client(therapist)
    cases = [
        (make_user("therapist", clinic_id=make_clinic().id), "their own clinic"),
        (make_user("supervisor"), "not an active therapist"),
        (make_user("therapist", is_active=False), "not an active therapist"),
        (therapist, "is already with"),
    ]
    for target, message in cases:
        with pytest.raises(StaffError, match=message):
            staff.transfer_client(db_session, person, target, clock())
        assert person.therapist_id == therapist.id


def test_administered_clients_are_for_active_admins_of_the_clinic(db_session, make_clinic,
                                                                  make_user, make_client):
    admin = make_user("admin")
    mine = make_client(make_user())
    other_clinic = make_clinic()
    make_client(make_user(clinic_id=other_clinic.id), clinic_id=other_clinic.id)
    assert db_session.scalars(administered_clients(admin)).all() == [mine]
    assert db_session.scalars(administered_clients(make_user("therapist"))).all() == []
    admin.is_active = False
    assert db_session.scalars(administered_clients(admin)).all() == []
