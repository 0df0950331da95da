"""Integration access: API tokens, and the stored results of idempotent API requests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import CheckConstraint
from sqlalchemy import ForeignKey
from sqlalchemy import ForeignKeyConstraint
from sqlalchemy import String
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from outcome.models.base import Base
from outcome.models.base import in_
from outcome.models.base import utcnow
from outcome.models.clinic import User
from outcome.models.encrypted import EncryptedJSON

API_SCOPES = ("read", "write")
# personal: made by the staff member it acts for, with their access; integration: made
# by an admin, sees what the admin pages show (client codes), read-only.
TOKEN_KINDS = ("personal", "integration")


class ApiToken(Base):
    """A credential for one integration (an EHR, a scheduling system...).

    A token acts for the staff member who created it (``user``, always ``created_by``)
    and can never see or do more than that person: the same scoping function decides.
    ``kind`` says how much: a ``personal`` token has its person's access; an
    ``integration`` token (an admin's) sees client codes only, as the admin pages do.
    ``scopes`` narrows it further (``read``, ``write``). Only the SHA-256 of the secret
    is stored; the secret is shown once, when the token is created. ``prefix`` (the
    first characters of the secret) lets people tell tokens apart without revealing them.
    """

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    user_id: Mapped[int] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_dt: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_dt: Mapped[dt.datetime]
    revoked_dt: Mapped[dt.datetime | None]
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    last_used_dt: Mapped[dt.datetime | None]

    user: Mapped[User] = relationship(primaryjoin="User.id == ApiToken.user_id",
                                      foreign_keys=[user_id], viewonly=True)

    __table_args__ = (
        # The acting user belongs to the token's clinic.
        ForeignKeyConstraint(["clinic_id", "user_id"], ["users.clinic_id", "users.id"],
                             name="fk_api_tokens_user_users", ondelete="CASCADE"),
        CheckConstraint("length(token_hash) = 64", name="token_hash_sha256"),
        CheckConstraint("name <> ''", name="name_not_empty"),
        CheckConstraint("expires_dt > created_dt", name="expires_after_created"),
        CheckConstraint(in_("kind", TOKEN_KINDS), name="kind_known"),
        # Nobody holds a secret that acts for someone else.
        CheckConstraint("user_id = created_by_id", name="acts_for_its_creator"),
    )

    def is_usable(self, now: dt.datetime) -> bool:
        """Not revoked, not expired, and its user still active."""
        return self.revoked_dt is None and now < self.expires_dt and self.user.is_active


class ApiIdempotencyRecord(Base):
    """The stored result of a POST made with an ``Idempotency-Key``.

    The same key with the same request (method, path and body) replays this response;
    the same key with another request is refused (409). Keys belong to one token, so two
    integrations cannot collide. ``client_id`` is the client the request was about, so
    that a replay re-checks that the token may still reach them (404 otherwise). Records
    older than a day are deleted by an hourly job.
    """

    __tablename__ = "api_idempotency_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    request_sha256: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int]
    # The response replayed, which may hold a client's name or answers: encrypted at rest.
    body: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON("api_idempotency_records.body"))
    location: Mapped[str | None] = mapped_column(String(500))
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    created_dt: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)

    __table_args__ = (
        UniqueConstraint("token_id", "key"),
        CheckConstraint("status_code BETWEEN 200 AND 299", name="success_only"),
    )
