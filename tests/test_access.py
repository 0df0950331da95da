"""The one scoping function: who sees which clients."""

from __future__ import annotations

import pytest

from outcome.services.access import sees_client_names
from outcome.services.access import visible_clients


@pytest.fixture
def world(make_clinic, make_user, make_client, assign):
    """Two therapists with a supervisor each, one dual-role user, an admin, another clinic."""
    t1, t2 = make_user(), make_user()
    s1, s_none = make_user("supervisor"), make_user("supervisor")
    assign(s1, t1)
    admin = make_user("admin")
    clinician_admin = make_user("admin", is_therapist=True)
    other_clinic = make_clinic()
    foreign_therapist = make_user(clinic_id=other_clinic.id)
    foreign_supervisor = make_user("supervisor", clinic_id=other_clinic.id)
    assign(foreign_supervisor, foreign_therapist)
    clients = {
        "t1": [make_client(t1), make_client(t1)],
        "t2": [make_client(t2)],
        "clinician_admin": [make_client(clinician_admin)],
        "foreign": [make_client(foreign_therapist)],
        "unassigned": [make_client(None)],
    }
    return locals()


def codes(db_session, user):
    return {c.code for c in db_session.scalars(visible_clients(user))}


def test_therapist_sees_own_clients_only(db_session, world):
    assert codes(db_session, world["t1"]) == {c.code for c in world["clients"]["t1"]}
    assert codes(db_session, world["t2"]) == {c.code for c in world["clients"]["t2"]}


def test_supervisor_sees_supervisees_clients(db_session, world):
    assert codes(db_session, world["s1"]) == {c.code for c in world["clients"]["t1"]}
    assert codes(db_session, world["s_none"]) == set()


def test_admin_sees_no_client_data_unless_also_a_clinician(db_session, world):
    assert codes(db_session, world["admin"]) == set()
    assert codes(db_session, world["clinician_admin"]) == {
        c.code for c in world["clients"]["clinician_admin"]}


def test_nobody_crosses_clinics(db_session, world):
    foreign = {c.code for c in world["clients"]["foreign"]}
    for who in ("t1", "t2", "s1", "s_none", "admin", "clinician_admin"):
        assert not codes(db_session, world[who]) & foreign
    assert codes(db_session, world["foreign_supervisor"]) == foreign


def test_disabled_accounts_see_nothing(db_session, world):
    world["t1"].is_active = False
    assert codes(db_session, world["t1"]) == set()


def test_only_the_own_therapist_sees_names(world):
    mine = world["clients"]["t1"][0]
    assert sees_client_names(world["t1"], mine)
    assert not sees_client_names(world["s1"], mine)
    assert not sees_client_names(world["t2"], mine)
    assert not sees_client_names(world["admin"], mine)
