"""The waiting-room kiosk (issue 17): devices an admin enrols, and one-day codes.

A ``KioskDevice`` is a tablet in the waiting room. Its secret (256 random bits, shown
once as a setup link) is kept by the device in a long-lived cookie and stored here only
as its SHA-256; an admin revokes it. A ``KioskCode`` is a short code a therapist makes
for a client's appointment today: typed at a kiosk of the clinic, it opens that
appointment's questionnaire link once. Only its keyed hash is stored; it expires at the
end of the clinic's day.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint
from sqlalchemy import ForeignKey
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from outcome.models.base import Base
from outcome.models.base import utcnow


class KioskDevice(Base):
    __tablename__ = "kiosk_devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_dt: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    enrolled_dt: Mapped[dt.datetime | None]
    last_used_dt: Mapped[dt.datetime | None]
    revoked_dt: Mapped[dt.datetime | None]


class KioskCode(Base):
    __tablename__ = "kiosk_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    appointment_id: Mapped[int] = mapped_column(
        ForeignKey("appointments.id", ondelete="CASCADE"), index=True)
    link_id: Mapped[int] = mapped_column(
        ForeignKey("questionnaire_links.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_dt: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    expires_dt: Mapped[dt.datetime]
    used_dt: Mapped[dt.datetime | None]
    used_by_device_id: Mapped[int | None] = mapped_column(
        ForeignKey("kiosk_devices.id", ondelete="SET NULL"))
    revoked_dt: Mapped[dt.datetime | None]

    __table_args__ = (
        CheckConstraint("expires_dt > created_dt", name="expires_after_created"),
    )
