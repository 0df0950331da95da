"""The audit trail: who touched which client's data, when, from where, and with what outcome.

Append-only: database triggers (see the initial migration) refuse UPDATE and DELETE.
It holds no clinical content: no answers, scores, names or free text.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from outcome.models.base import Base
from outcome.models.base import in_
from outcome.models.base import utcnow

ACTOR_KINDS = ("user", "client", "api_token", "system", "anonymous")
AUDIT_OUTCOMES = ("allowed", "denied", "error")


class AuditEvent(Base):
    """One audited action."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_dt: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    clinic_id: Mapped[int | None] = mapped_column(ForeignKey("clinics.id"), index=True)
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    # A non-clinical label for actors that are not users ("scheduler", a token's name).
    actor_label: Mapped[str | None] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id"), index=True)
    object_type: Mapped[str | None] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    ip_address: Mapped[str | None] = mapped_column(String(45))
    request_id: Mapped[str | None] = mapped_column(String(36))

    __table_args__ = (
        CheckConstraint(in_("actor_kind", ACTOR_KINDS), name="actor_kind_known"),
        CheckConstraint(in_("outcome", AUDIT_OUTCOMES), name="outcome_known"),
        Index("ix_audit_events_clinic_occurred", "clinic_id", "occurred_dt"),
    )


class AuditDenialCount(Base):
    """Refused anonymous requests, counted per minute, address and action.

    A visitor who is nobody (an unknown link, API token or account, a signed-out request
    for a staff page) adds one to its minute's count instead of a row of its own, so a
    flood cannot grow the trail without bound: one row per (minute, address, action).
    Unlike :class:`AuditEvent` these rows are pruned by age (the scheduler's
    ``forget-denial-counts`` job, after :data:`outcome.services.audit.DENIAL_COUNT_DAYS`).
    """

    __tablename__ = "audit_denial_counts"

    minute: Mapped[dt.datetime] = mapped_column(primary_key=True)  # UTC, seconds zero
    address: Mapped[str] = mapped_column(String(45), primary_key=True)
    action: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(default=1)

    __table_args__ = (CheckConstraint("count > 0", name="count_positive"),)
