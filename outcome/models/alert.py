"""Alerts raised by signals: critical answers, poor progress, ruptures."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import CheckConstraint
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import String
from sqlalchemy import text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from outcome.models.base import Base
from outcome.models.base import in_
from outcome.models.base import utcnow
from outcome.models.encrypted import EncryptedJSON
from outcome.models.encrypted import EncryptedText

ALERT_STATUSES = ("open", "acknowledged", "resolved")


class Alert(Base):
    """An alert on an episode. At most one open alert per kind and episode."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("episodes.id", ondelete="CASCADE"),
                                            index=True)
    administration_id: Mapped[int | None] = mapped_column(
        ForeignKey("administrations.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), default="open")
    # The rule that fired and its numbers, so the alert explains itself. Encrypted at rest:
    # a critical item's alert holds the answer and its label (nothing in SQL reads into it).
    detail: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON("alerts.detail"),
                                                   default=dict)
    raised_dt: Mapped[dt.datetime] = mapped_column(default=utcnow)
    acknowledged_dt: Mapped[dt.datetime | None]
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    acknowledgement_note: Mapped[str | None] = mapped_column(
        EncryptedText("alerts.acknowledgement_note"))
    resolved_dt: Mapped[dt.datetime | None]
    # Escalation of an urgent alert left open (services.escalation): 0 none, 1 the
    # therapist reminded, 2 their supervisors (or, without one, the admins) told. Each
    # level is reached once; acknowledging stops it.
    escalation_level: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    escalated_dt: Mapped[dt.datetime | None]
    # The action plan that resolved it (issue 19): a not-on-track or rupture alert is
    # resolved by a plan, not by a bare note (services.support).
    plan_id: Mapped[int | None] = mapped_column(
        ForeignKey("action_plans.id", ondelete="SET NULL"))

    __table_args__ = (
        CheckConstraint(in_("status", ALERT_STATUSES), name="status_known"),
        CheckConstraint(
            "status <> 'acknowledged' OR (acknowledged_dt IS NOT NULL AND "
            "acknowledged_by_id IS NOT NULL AND acknowledgement_note IS NOT NULL AND "
            "acknowledgement_note <> '')",
            name="acknowledgement_complete"),
        CheckConstraint("status <> 'resolved' OR resolved_dt IS NOT NULL",
                        name="resolution_dated"),
        Index("uq_alerts_open_per_kind", "episode_id", "kind", unique=True,
              sqlite_where=text("status = 'open'"), postgresql_where=text("status = 'open'")),
    )
