"""Changes that wait for a second admin: an admin's request for client access of their own.

An admin cannot give themselves client access alone (issue 16, separation of duties):
adding the therapist or supervisor role to their own account, taking a client, or making
themselves a therapist's supervisor is stored here and carried out only when another
active admin of the clinic approves it (:mod:`outcome.services.access_requests`).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint
from sqlalchemy import ForeignKey
from sqlalchemy import ForeignKeyConstraint
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from outcome.models.base import Base
from outcome.models.base import in_
from outcome.models.base import utcnow

REQUEST_KINDS = ("roles", "transfer", "supervision")
REQUEST_STATUSES = ("pending", "approved", "declined", "cancelled")


class AccessRequest(Base):
    """One admin's request for client access of their own, and its decision.

    ``kind`` says what is asked, always for the requester themself:

    - ``roles``: their roles become ``roles_after`` (they were ``roles_before`` when asked;
      comma-separated, in the order admin, supervisor, therapist);
    - ``transfer``: client ``client_id`` becomes theirs;
    - ``supervision``: they supervise therapist ``therapist_id``.

    A request waits (``pending``) until ``expires_dt``; then it can no longer be approved.
    ``decided_by_id`` is the admin who approved or declined it (never the requester: the
    database refuses that) or the requester who cancelled it.
    """

    __tablename__ = "access_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    requester_id: Mapped[int] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(16))
    roles_before: Mapped[str | None] = mapped_column(String(64))
    roles_after: Mapped[str | None] = mapped_column(String(64))
    client_id: Mapped[int | None]
    therapist_id: Mapped[int | None]
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_dt: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_dt: Mapped[dt.datetime]
    decided_dt: Mapped[dt.datetime | None]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    __table_args__ = (
        # The requester, the client and the therapist all belong to the request's clinic.
        ForeignKeyConstraint(["clinic_id", "requester_id"], ["users.clinic_id", "users.id"],
                             name="fk_access_requests_requester_users", ondelete="CASCADE"),
        ForeignKeyConstraint(["clinic_id", "client_id"], ["clients.clinic_id", "clients.id"],
                             name="fk_access_requests_client_clients", ondelete="CASCADE"),
        ForeignKeyConstraint(["clinic_id", "therapist_id"], ["users.clinic_id", "users.id"],
                             name="fk_access_requests_therapist_users", ondelete="CASCADE"),
        CheckConstraint(in_("kind", REQUEST_KINDS), name="kind_known"),
        CheckConstraint(in_("status", REQUEST_STATUSES), name="status_known"),
        CheckConstraint("kind <> 'roles' OR roles_after IS NOT NULL", name="roles_named"),
        CheckConstraint("kind <> 'transfer' OR client_id IS NOT NULL", name="client_named"),
        CheckConstraint("kind <> 'supervision' OR therapist_id IS NOT NULL",
                        name="therapist_named"),
        CheckConstraint("(status = 'pending') = (decided_dt IS NULL)", name="decided_dated"),
        # Nobody approves or declines their own request.
        CheckConstraint("status NOT IN ('approved', 'declined') OR decided_by_id <> requester_id",
                        name="not_self_approved"),
        CheckConstraint("expires_dt > created_dt", name="expires_after_created"),
    )
