"""Which instruments a clinic may use: licence attestation and installed wording.

An instrument is *available* to a clinic when its wording is installed (built-in text,
or a clinic overlay for structure-only measures) and, if its licence requires it, a
clinic admin has attested that the clinic holds the licence.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.core.instruments import Instrument
from outcome.models import Clinic
from outcome.models import InstrumentAttestation
from outcome.models import User
from questionnaires.loader import InstrumentLibrary

Status = Literal["available", "needs attestation", "wording not installed"]


@dataclass(frozen=True)
class InstrumentStatus:
    instrument: Instrument
    status: Status
    attestation: InstrumentAttestation | None

    @property
    def is_available(self) -> bool:
        return self.status == "available"


class AttestationError(Exception):
    """An attestation that cannot be made; the message says why."""


def _active(session: Session, clinic_id: int) -> dict[str, InstrumentAttestation]:
    rows = session.scalars(select(InstrumentAttestation).where(
        InstrumentAttestation.clinic_id == clinic_id,
        InstrumentAttestation.revoked_dt.is_(None)))
    return {row.instrument_id: row for row in rows}


def instrument_statuses(session: Session, clinic_id: int, library: InstrumentLibrary
                        ) -> list[InstrumentStatus]:
    """Every instrument of the library (newest version of each) with its status for the clinic."""
    attested = _active(session, clinic_id)
    newest = {i.id: library.get(i.id) for i in library}
    out = []
    for instrument in sorted(newest.values(), key=lambda i: i.id):
        attestation = attested.get(instrument.id)
        if not instrument.is_wording_installed:
            status: Status = "wording not installed"
        elif instrument.licence.is_attestation_required and attestation is None:
            status = "needs attestation"
        else:
            status = "available"
        out.append(InstrumentStatus(instrument, status, attestation))
    return out


def attest(session: Session, *, clinic: Clinic, instrument: Instrument, admin: User,
           now: dt.datetime, note: str | None = None) -> InstrumentAttestation:
    """Record that ``admin`` attests the clinic's licence for ``instrument``; flush.

    Only an active admin of the same clinic may attest; attesting twice is refused.
    """
    if not (admin.is_admin and admin.is_active and admin.clinic_id == clinic.id):
        raise AttestationError(f"{admin.email} is not an active admin of {clinic.name}.")
    if not instrument.licence.is_attestation_required:
        raise AttestationError(f"{instrument.short_name} needs no attestation "
                               f"({instrument.licence.name}).")
    if instrument.id in _active(session, clinic.id):
        raise AttestationError(f"{instrument.short_name} is already attested for "
                               f"{clinic.name}.")
    row = InstrumentAttestation(clinic_id=clinic.id, instrument_id=instrument.id,
                                licence_name=instrument.licence.name, note=note,
                                attested_by_id=admin.id, attested_dt=now)
    session.add(row)
    session.flush()
    return row


def revoke(session: Session, *, clinic: Clinic, instrument_id: str, admin: User,
           now: dt.datetime) -> InstrumentAttestation:
    """Withdraw the clinic's active attestation for ``instrument_id``; flush."""
    if not (admin.is_admin and admin.is_active and admin.clinic_id == clinic.id):
        raise AttestationError(f"{admin.email} is not an active admin of {clinic.name}.")
    row = _active(session, clinic.id).get(instrument_id)
    if row is None:
        raise AttestationError(f"{instrument_id} has no active attestation for {clinic.name}.")
    row.revoked_dt = now
    row.revoked_by_id = admin.id
    session.flush()
    return row
