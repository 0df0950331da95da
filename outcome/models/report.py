"""Report runs: one row per (kind, period, recipient) makes every scheduled job idempotent."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean
from sqlalchemy import CheckConstraint
from sqlalchemy import ForeignKey
from sqlalchemy import LargeBinary
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from outcome.models.base import Base
from outcome.models.base import in_
from outcome.models.base import utcnow

REPORT_RUN_STATUSES = ("pending", "running", "succeeded", "failed")


class ReportRun(Base):
    """One production of one report for one recipient and period (e.g. a weekly digest)."""

    __tablename__ = "report_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    # ISO week (2026-W47), month (2026-11) or day, depending on the kind.
    period: Mapped[str] = mapped_column(String(20))
    recipient_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    created_dt: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_dt: Mapped[dt.datetime | None]
    finished_dt: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    content_sha256: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        UniqueConstraint("kind", "period", "recipient_user_id"),
        CheckConstraint(in_("status", REPORT_RUN_STATUSES), name="status_known"),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        CheckConstraint("status <> 'succeeded' OR content_sha256 IS NOT NULL",
                        name="success_has_hash"),
    )


class ReportDocument(Base):
    """The archived copy of a run's document (a digest PDF), with its SHA-256.

    Kept so the recipient can download it again from the application; the hash shows
    that the archived bytes are the ones that were sent.
    """

    __tablename__ = "report_documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_run_id: Mapped[int] = mapped_column(
        ForeignKey("report_runs.id", ondelete="CASCADE"), unique=True)
    filename: Mapped[str] = mapped_column(String(200))
    media_type: Mapped[str] = mapped_column(String(100), default="application/pdf")
    content: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int]
    is_encrypted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_dt: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint("size_bytes > 0", name="not_empty"),
        CheckConstraint("length(sha256) = 64", name="sha256_length"),
    )


# The kinds of scheduled report a user may choose about (issue 18).
REPORT_KINDS = ("supervisor_digest", "therapist_brief", "therapist_weekly")


class ReportPreference(Base):
    """One user's choice about one kind of scheduled report (issue 18).

    No row: the report is produced at the clinic's time and announced by e-mail.
    ``is_enabled`` false: not produced at all. ``is_emailed`` false: produced and archived,
    no notice. ``time`` ("HH:MM", clinic time) and ``weekday`` (0 Monday ... 6 Sunday, for
    weekly kinds) override the clinic's setting; None keeps it.
    """

    __tablename__ = "report_preferences"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    is_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    is_emailed: Mapped[bool] = mapped_column(Boolean, default=True)
    time: Mapped[str | None] = mapped_column(String(5))
    weekday: Mapped[int | None]
    updated_dt: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("user_id", "kind"),
        CheckConstraint(in_("kind", REPORT_KINDS), name="kind_known"),
        CheckConstraint("weekday IS NULL OR (weekday BETWEEN 0 AND 6)", name="weekday_range"),
        CheckConstraint("time IS NULL OR length(time) = 5", name="time_shape"),
    )
