"""Licence attestations: a clinic admin confirms the clinic holds an instrument's licence."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from outcome.models.base import Base
from outcome.models.base import utcnow


class InstrumentAttestation(Base):
    """An admin's statement that the clinic may use an instrument under its licence.

    Instruments whose definition requires attestation stay disabled for a clinic until
    an attestation exists; revoking keeps the row (with ``revoked_dt``) for the record.
    """

    __tablename__ = "instrument_attestations"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    instrument_id: Mapped[str] = mapped_column(String(64))
    # The licence as the admin saw it when attesting.
    licence_name: Mapped[str] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    attested_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    attested_dt: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_dt: Mapped[dt.datetime | None]
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    __table_args__ = (
        CheckConstraint("(revoked_dt IS NULL) = (revoked_by_id IS NULL)",
                        name="revocation_complete"),
        Index("uq_instrument_attestations_active", "clinic_id", "instrument_id", unique=True,
              sqlite_where=text("revoked_dt IS NULL"),
              postgresql_where=text("revoked_dt IS NULL")),
    )
