"""Licence attestation: who may attest, and what it enables."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import exc as sa_exc

from outcome.models import InstrumentAttestation
from outcome.services.instruments import AttestationError
from outcome.services.instruments import attest
from outcome.services.instruments import instrument_statuses
from outcome.services.instruments import revoke
from questionnaires.loader import builtin_library

LIB = builtin_library()
NOW = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)


def status(db_session, clinic, instrument_id):
    return next(s.status for s in instrument_statuses(db_session, clinic.id, LIB)
                if s.instrument.id == instrument_id)


def test_free_instruments_are_available_and_licensed_ones_wait(db_session, clinic):
    assert status(db_session, clinic, "phq9") == "available"
    assert status(db_session, clinic, "who5") == "needs attestation"
    assert status(db_session, clinic, "srs_vas") == "wording not installed"


def test_admin_attests_and_revokes(db_session, clinic, make_user):
    admin = make_user("admin")
    row = attest(db_session, clinic=clinic, instrument=LIB.get("who5"), admin=admin, now=NOW,
                 note="Non-commercial research use")
    assert row.licence_name.startswith("CC BY-NC-SA 3.0 IGO")
    assert status(db_session, clinic, "who5") == "available"
    with pytest.raises(AttestationError, match="already attested"):
        attest(db_session, clinic=clinic, instrument=LIB.get("who5"), admin=admin, now=NOW)
    revoke(db_session, clinic=clinic, instrument_id="who5", admin=admin, now=NOW)
    assert status(db_session, clinic, "who5") == "needs attestation"
    attest(db_session, clinic=clinic, instrument=LIB.get("who5"), admin=admin, now=NOW)
    assert db_session.query(InstrumentAttestation).count() == 2  # history kept


@pytest.mark.parametrize("role", ["therapist", "supervisor"])
def test_only_admins_attest(db_session, clinic, make_user, role):
    with pytest.raises(AttestationError, match="not an active admin"):
        attest(db_session, clinic=clinic, instrument=LIB.get("k10"), admin=make_user(role),
               now=NOW)


def test_admin_of_another_clinic_cannot_attest(db_session, clinic, make_clinic, make_user):
    other_admin = make_user("admin", clinic_id=make_clinic().id)
    with pytest.raises(AttestationError, match="not an active admin"):
        attest(db_session, clinic=clinic, instrument=LIB.get("k10"), admin=other_admin,
               now=NOW)


def test_free_instruments_need_no_attestation(db_session, clinic, make_user):
    with pytest.raises(AttestationError, match="needs no attestation"):
        attest(db_session, clinic=clinic, instrument=LIB.get("phq9"),
               admin=make_user("admin"), now=NOW)


def test_database_allows_one_active_attestation(db_session, clinic, make_user):
    admin = make_user("admin")
    for _ in range(2):
        db_session.add(InstrumentAttestation(clinic_id=clinic.id, instrument_id="k10",
                                             licence_name="x", attested_by_id=admin.id))
    with pytest.raises(sa_exc.IntegrityError):
        db_session.flush()
    db_session.rollback()
