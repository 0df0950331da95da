"""Clinics and staff: the clinic, its users, and who supervises whom."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean
from sqlalchemy import CheckConstraint
from sqlalchemy import ForeignKey
from sqlalchemy import ForeignKeyConstraint
from sqlalchemy import Index
from sqlalchemy import String
from sqlalchemy import UniqueConstraint
from sqlalchemy import false
from sqlalchemy import func
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from outcome.models.base import Base
from outcome.models.base import utcnow

ROLES = ("admin", "supervisor", "therapist")


class Clinic(Base):
    """A practice. Everything else belongs to exactly one clinic; nobody sees another clinic."""

    __tablename__ = "clinics"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # Clinic settings (batteries, link window, crisis text, digest day, colour
    # percentiles...) are validated by the settings service; missing keys take defaults.
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_dt: Mapped[dt.datetime] = mapped_column(default=utcnow)

    users: Mapped[list[User]] = relationship(back_populates="clinic")

    __table_args__ = (CheckConstraint("slug <> ''", name="slug_not_empty"),)


class User(Base):
    """A staff member with a named account. Roles are flags: an admin may also be a clinician."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id", ondelete="RESTRICT"),
                                           index=True)
    email: Mapped[str] = mapped_column(String(254))
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    is_supervisor: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    is_therapist: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Bumped on logout and password change; a session cookie carrying an older
    # version is refused, so a captured cookie stops working.
    session_version: Mapped[int] = mapped_column(default=1)
    created_dt: Mapped[dt.datetime] = mapped_column(default=utcnow)
    password_changed_dt: Mapped[dt.datetime | None]
    # A password somebody else chose (an admin, the server's operator, the setup page):
    # after signing in, the user reaches only the change-password page until they choose
    # their own (outcome.web.auth).
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False,
                                                       server_default=false())
    last_login_dt: Mapped[dt.datetime | None]
    # The staff member's interface and PDF language ("en", "ru"); None follows the
    # browser's languages.
    locale: Mapped[str | None] = mapped_column(String(16))

    clinic: Mapped[Clinic] = relationship(back_populates="users")

    __table_args__ = (
        # E-mail is the login name: unique across the installation, case-insensitively.
        Index("uq_users_email_lower", func.lower(email), unique=True),
        CheckConstraint("is_admin OR is_supervisor OR is_therapist", name="has_role"),
        CheckConstraint("email LIKE '%_@_%'", name="email_shape"),
        CheckConstraint("session_version >= 1", name="session_version_positive"),
        # Target of composite foreign keys that keep clients, episodes and
        # assignments inside one clinic.
        UniqueConstraint("clinic_id", "id"),
    )

    # Flask-Login's user protocol, written out so the models need not import Flask.
    is_authenticated = True
    is_anonymous = False

    def get_id(self) -> str:
        """Session identity: id and session version, so a bumped version ends old sessions."""
        return f"{self.id}:{self.session_version}"

    @property
    def roles(self) -> tuple[str, ...]:
        """The user's roles, in the fixed order admin, supervisor, therapist."""
        flags = (self.is_admin, self.is_supervisor, self.is_therapist)
        return tuple(role for role, flag in zip(ROLES, flags, strict=True) if flag)


class SupervisorAssignment(Base):
    """A supervisor oversees a therapist (supervisee) of the same clinic."""

    __tablename__ = "supervisor_assignments"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    supervisor_id: Mapped[int] = mapped_column(index=True)
    therapist_id: Mapped[int] = mapped_column(index=True)
    created_dt: Mapped[dt.datetime] = mapped_column(default=utcnow)

    supervisor: Mapped[User] = relationship(
        foreign_keys=[supervisor_id], primaryjoin="User.id == SupervisorAssignment.supervisor_id",
        viewonly=True)
    therapist: Mapped[User] = relationship(
        foreign_keys=[therapist_id], primaryjoin="User.id == SupervisorAssignment.therapist_id",
        viewonly=True)

    __table_args__ = (
        ForeignKeyConstraint(["clinic_id", "supervisor_id"], ["users.clinic_id", "users.id"],
                             name="fk_supervisor_assignments_supervisor_users",
                             ondelete="CASCADE"),
        ForeignKeyConstraint(["clinic_id", "therapist_id"], ["users.clinic_id", "users.id"],
                             name="fk_supervisor_assignments_therapist_users",
                             ondelete="CASCADE"),
        UniqueConstraint("supervisor_id", "therapist_id"),
        CheckConstraint("supervisor_id <> therapist_id", name="not_self"),
    )
