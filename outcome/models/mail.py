"""The e-mail outbox: every message is stored before it is sent, and never lost silently."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from outcome.models.base import Base
from outcome.models.base import in_
from outcome.models.base import utcnow
from outcome.models.encrypted import EncryptedText

EMAIL_STATUSES = ("pending", "sent", "failed")


class OutboundEmail(Base):
    """One message to send. ``dedupe_key`` makes queueing idempotent (one link e-mail per
    appointment, however often the job runs). Bodies carry links, never clinical content."""

    __tablename__ = "outbound_emails"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    dedupe_key: Mapped[str] = mapped_column(String(128), unique=True)
    # Encrypted at rest (issue 20; TEXT since migration 0026): the outbox holds clients'
    # addresses. Never compared in SQL: match a client's rows by their dedupe keys, or by
    # the decrypted address in Python (services.erasure).
    to_address: Mapped[str] = mapped_column(EncryptedText("outbound_emails.to_address"))
    subject: Mapped[str] = mapped_column(String(200))
    body_text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_dt: Mapped[dt.datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_dt: Mapped[dt.datetime | None]
    created_dt: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # The nonce a questionnaire link's token is derived from (services.mail.link_token);
    # the body holds a slot, never the token. Cleared once sent or given up.
    link_nonce: Mapped[str | None] = mapped_column(String(64))
    # Not used since issue 16 (digests stay in the app; the e-mail is a notice): kept so
    # that older rows keep their meaning.
    attachment_document_id: Mapped[int | None] = mapped_column(
        ForeignKey("report_documents.id", ondelete="SET NULL"))

    __table_args__ = (
        CheckConstraint(in_("status", EMAIL_STATUSES), name="status_known"),
        CheckConstraint("status <> 'sent' OR sent_dt IS NOT NULL", name="sent_dated"),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        Index("ix_outbound_emails_due", "status", "next_attempt_dt"),
    )
