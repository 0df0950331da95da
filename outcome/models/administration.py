"""Completed questionnaires. An administration is never overwritten: a correction is a new row."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean
from sqlalchemy import CheckConstraint
from sqlalchemy import Float
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from outcome.models.base import Base
from outcome.models.base import in_
from outcome.models.base import utcnow
from outcome.models.encrypted import EncryptedJSON

RESPONDENTS = ("client", "therapist")


class Administration(Base):
    """One completed questionnaire: instrument and version, respondent, time, answers, scores."""

    __tablename__ = "administrations"

    id: Mapped[int] = mapped_column(primary_key=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("episodes.id", ondelete="CASCADE"))
    appointment_id: Mapped[int | None] = mapped_column(
        ForeignKey("appointments.id", ondelete="SET NULL"), index=True)
    link_id: Mapped[int | None] = mapped_column(
        ForeignKey("questionnaire_links.id", ondelete="SET NULL"), index=True)
    instrument_id: Mapped[str] = mapped_column(String(64))
    instrument_version: Mapped[str] = mapped_column(String(32))
    respondent: Mapped[str] = mapped_column(String(16), default="client")
    respondent_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Validated answers keyed by item id (missing items absent, never 0).
    answers: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON("administrations.answers"))
    # Total, subscales, band, critical hits... as computed by the scoring engine.
    scores: Mapped[dict[str, Any]] = mapped_column(default=dict)
    total: Mapped[float | None] = mapped_column(Float)
    is_valid: Mapped[bool] = mapped_column(Boolean)
    is_prorated: Mapped[bool] = mapped_column(Boolean, default=False)
    completed_dt: Mapped[dt.datetime]
    # The language the questionnaire's wording was shown in ("en", "ru"): the client's
    # language where the measure has a verified translation, else the original's. None
    # where it was not recorded (entered by staff, imported, or stored before 0019).
    language: Mapped[str | None] = mapped_column(String(16))
    # A retry or double click carries the same key and stores nothing new.
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    supersedes_id: Mapped[int | None] = mapped_column(
        ForeignKey("administrations.id"), unique=True)
    created_dt: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_administrations_episode_instrument", "episode_id", "instrument_id",
              "completed_dt"),
        CheckConstraint(in_("respondent", RESPONDENTS), name="respondent_known"),
        CheckConstraint("respondent <> 'therapist' OR respondent_user_id IS NOT NULL",
                        name="therapist_named"),
        CheckConstraint("is_valid OR total IS NULL", name="invalid_has_no_total"),
        CheckConstraint("supersedes_id IS NULL OR supersedes_id <> id", name="not_self"),
    )
