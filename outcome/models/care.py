"""Clients and their care: episodes, goals, appointments and questionnaire links."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean
from sqlalchemy import CheckConstraint
from sqlalchemy import Date
from sqlalchemy import ForeignKey
from sqlalchemy import ForeignKeyConstraint
from sqlalchemy import Index
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy import event
from sqlalchemy import false
from sqlalchemy import text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from outcome import encryption
from outcome.models.base import Base
from outcome.models.base import in_
from outcome.models.base import utcnow
from outcome.models.clinic import User
from outcome.models.encrypted import EncryptedJSON
from outcome.models.encrypted import EncryptedText

# Why an episode ended, defined once (the CHECK below, migration 0015, the services,
# the API schema and the pages' labels all read it): completed as planned; ended by
# mutual agreement; the client ended without agreement; referred on; other.
END_REASONS = ("completed", "mutual", "dropped_out", "referred", "other")
# An appointment's status, the one list (issue 17). ``scheduled``: booked, not yet
# recorded; ``attended``: the session took place; ``no_show``: the client did not attend
# (shown as "did not attend"; the stored value predates issue 17 and is the API's);
# ``cancelled``: called off in good time; ``late_cancelled``: called off at short notice.
APPOINTMENT_STATUSES = ("scheduled", "attended", "no_show", "cancelled", "late_cancelled")
# The statuses that take a session number (services.sessions): held, or still to be held.
SESSION_STATUSES = ("scheduled", "attended")
# What a therapist records once a scheduled appointment's time has come (or, for a late
# cancellation, before): each can be corrected into another of these.
OUTCOME_STATUSES = ("attended", "no_show", "late_cancelled")
# ``support``: a support check after a signal (issue 19, models.support).
LINK_PURPOSES = ("pre", "post", "support")
MAX_GOALS = 3


class Client(Base):
    """A person in therapy. Outside their own therapist's screens they appear by ``code`` only."""

    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    # Pseudonymous, non-guessable (C-7F3K9Q); see outcome.services.client_codes.
    code: Mapped[str] = mapped_column(String(16), unique=True)
    # Personal data, encrypted at rest when keys are configured (outcome.encryption).
    name: Mapped[str] = mapped_column(EncryptedText("clients.name"))
    email: Mapped[str | None] = mapped_column(EncryptedText("clients.email"))
    phone: Mapped[str | None] = mapped_column(EncryptedText("clients.phone"))
    # With encryption on: keyed hashes of the name's tokens, so search works without the
    # name (kept by an ORM event, services.client_search); None with encryption off.
    name_search: Mapped[str | None] = mapped_column(Text)
    locale: Mapped[str] = mapped_column(String(16), default="en")
    # The therapist currently responsible; changes on transfer.
    therapist_id: Mapped[int | None] = mapped_column(index=True)
    # The therapist's choice: may the client see their own progress after submitting?
    is_progress_shared: Mapped[bool] = mapped_column(Boolean, default=False,
                                                     server_default=false())
    created_dt: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Set when the client's personal data and answers were erased (issue 20): the row
    # stays as a tombstone holding the code, the clinic and these two fields only.
    erased_dt: Mapped[dt.datetime | None]
    # ``request`` or ``retention`` (outcome.models.trust.ERASURE_REASONS).
    erasure_reason: Mapped[str | None] = mapped_column(String(16))

    therapist: Mapped[User | None] = relationship(
        primaryjoin="User.id == Client.therapist_id", foreign_keys=[therapist_id],
        viewonly=True)
    episodes: Mapped[list[Episode]] = relationship(
        back_populates="client", order_by="Episode.opened_on",
        primaryjoin="Client.id == Episode.client_id", foreign_keys="Episode.client_id",
        cascade="all, delete-orphan", passive_deletes=True)

    __table_args__ = (
        ForeignKeyConstraint(["clinic_id", "therapist_id"], ["users.clinic_id", "users.id"],
                             name="fk_clients_therapist_users"),
        UniqueConstraint("clinic_id", "id"),
        CheckConstraint("code LIKE 'C-%'", name="code_shape"),
        CheckConstraint("name <> ''", name="name_not_empty"),
        CheckConstraint("(erased_dt IS NULL) = (erasure_reason IS NULL)",
                        name="erasure_reason_iff_erased"),
        CheckConstraint("erasure_reason IS NULL OR erasure_reason IN ('request', 'retention')",
                        name="erasure_reason_known"),
    )


class Episode(Base):
    """One course of care, intake to end. Change is measured within an episode."""

    __tablename__ = "episodes"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    client_id: Mapped[int] = mapped_column(index=True)
    therapist_id: Mapped[int] = mapped_column(index=True)
    opened_on: Mapped[dt.date] = mapped_column(Date)
    closed_on: Mapped[dt.date | None] = mapped_column(Date)
    end_reason: Mapped[str | None] = mapped_column(String(32))
    # The episode's primary outcome measure (domain.md section 3); None: the clinic's default.
    primary_instrument_id: Mapped[str | None] = mapped_column(String(64))
    # The presenting problem, which chooses the anxiety half of the NHS Talking Therapies
    # pair (e.g. "depression", "social_anxiety", "ptsd"); None: not recorded.
    problem_descriptor: Mapped[str | None] = mapped_column(String(32))
    created_dt: Mapped[dt.datetime] = mapped_column(default=utcnow)

    client: Mapped[Client] = relationship(
        back_populates="episodes", primaryjoin="Client.id == Episode.client_id",
        foreign_keys=[client_id])
    therapist: Mapped[User] = relationship(
        primaryjoin="User.id == Episode.therapist_id", foreign_keys=[therapist_id],
        viewonly=True)
    # The database cascades deletes (ON DELETE CASCADE); the ORM must not null the keys.
    appointments: Mapped[list[Appointment]] = relationship(
        back_populates="episode", order_by="Appointment.starts_dt",
        cascade="all, delete-orphan", passive_deletes=True)
    goals: Mapped[list[Goal]] = relationship(
        back_populates="episode", order_by="Goal.position",
        cascade="all, delete-orphan", passive_deletes=True)

    __table_args__ = (
        # The client and the therapist must both belong to the episode's clinic.
        ForeignKeyConstraint(["clinic_id", "client_id"], ["clients.clinic_id", "clients.id"],
                             name="fk_episodes_client_clients", ondelete="CASCADE"),
        ForeignKeyConstraint(["clinic_id", "therapist_id"], ["users.clinic_id", "users.id"],
                             name="fk_episodes_therapist_users"),
        CheckConstraint("closed_on IS NULL OR closed_on >= opened_on", name="closed_after_open"),
        CheckConstraint("(closed_on IS NULL) = (end_reason IS NULL)", name="end_reason_iff_closed"),
        CheckConstraint("end_reason IS NULL OR " + in_("end_reason", END_REASONS),
                        name="end_reason_known"),
        # At most one open episode per client.
        Index("uq_episodes_open_per_client", "client_id", unique=True,
              sqlite_where=text("closed_on IS NULL"),
              postgresql_where=text("closed_on IS NULL")),
    )

    @property
    def is_open(self) -> bool:
        return self.closed_on is None


class Goal(Base):
    """A goal agreed at intake, in the client's own words; rated 0-10 each session (GBO)."""

    __tablename__ = "goals"

    id: Mapped[int] = mapped_column(primary_key=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("episodes.id", ondelete="CASCADE"),
                                            index=True)
    position: Mapped[int]
    description: Mapped[str] = mapped_column(EncryptedText("goals.description"))
    created_dt: Mapped[dt.datetime] = mapped_column(default=utcnow)
    closed_dt: Mapped[dt.datetime | None]

    episode: Mapped[Episode] = relationship(back_populates="goals")

    __table_args__ = (
        # One open goal per position (GBO item gbo_<position>); a retired goal keeps its
        # position and its ratings, and its replacement takes the same position.
        Index("uq_goals_open_position", "episode_id", "position", unique=True,
              sqlite_where=text("closed_dt IS NULL"),
              postgresql_where=text("closed_dt IS NULL")),
        CheckConstraint(f"position BETWEEN 1 AND {MAX_GOALS}", name="position_range"),
        CheckConstraint("description <> ''", name="description_not_empty"),
    )


class Appointment(Base):
    """One meeting within an episode. Its session number is derived from the order, not stored."""

    __tablename__ = "appointments"

    id: Mapped[int] = mapped_column(primary_key=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("episodes.id", ondelete="CASCADE"))
    starts_dt: Mapped[dt.datetime]
    duration_minutes: Mapped[int] = mapped_column(default=50)
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    # The first appointment of the weekly series this one was booked in (its own id for
    # the first); None: booked alone, or before issue 17 recorded series.
    series_id: Mapped[int | None]
    created_dt: Mapped[dt.datetime] = mapped_column(default=utcnow)

    episode: Mapped[Episode] = relationship(back_populates="appointments")

    __table_args__ = (
        Index("ix_appointments_episode_starts", "episode_id", "starts_dt"),
        CheckConstraint("duration_minutes BETWEEN 1 AND 600", name="duration_range"),
        CheckConstraint(in_("status", APPOINTMENT_STATUSES), name="status_known"),
    )


class QuestionnaireLink(Base):
    """A single-use link sent to a client. Only a hash of the token is stored."""

    __tablename__ = "questionnaire_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("episodes.id", ondelete="CASCADE"),
                                            index=True)
    appointment_id: Mapped[int | None] = mapped_column(
        ForeignKey("appointments.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(8))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The instruments this link asks for, fixed when it is issued, in order.
    battery: Mapped[list[Any]] = mapped_column(default=list)
    valid_from_dt: Mapped[dt.datetime]
    valid_until_dt: Mapped[dt.datetime]
    opened_dt: Mapped[dt.datetime | None]
    used_dt: Mapped[dt.datetime | None]
    revoked_dt: Mapped[dt.datetime | None]
    created_dt: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Answers on a page the client left with Back, not yet sent (instrument id to item id
    # to the raw answer); emptied when the link is used up.
    draft: Mapped[dict[str, Any] | None] = mapped_column(
        EncryptedJSON("questionnaire_links.draft"))

    __table_args__ = (
        CheckConstraint(in_("purpose", LINK_PURPOSES), name="purpose_known"),
        CheckConstraint("valid_until_dt > valid_from_dt", name="window_positive"),
        CheckConstraint("length(token_hash) = 64", name="token_hash_sha256"),
    )


@event.listens_for(Client, "before_insert")
@event.listens_for(Client, "before_update")
def _keep_name_search(_mapper, _connection, client: Client) -> None:
    """Keep ``clients.name_search`` in step with the name whoever sets it (services, CLI,
    erasure, rotation): the name's token hashes under the current key, None when off."""
    client.name_search = encryption.active().name_search(client.name)
