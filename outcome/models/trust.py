"""Procurement-grade trust (issue 20): second factors, consent, and retention runs.

- Staff second factors: a TOTP secret (RFC 6238), ten single-use recovery codes (stored
  as hashes only) and passkeys (WebAuthn public-key credentials).
- Client consent: the clinic's consent text, versioned per language, and each decision a
  client made about it (agreed, refused, withdrawn), with the version and the time.
- Retention: one row per clinic, kind and day, so the nightly retention job runs exactly
  once per day however many schedulers fire it (security.md, APScheduler).

Erasure itself keeps the client row as a tombstone (``Client.erased_dt``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import CheckConstraint
from sqlalchemy import Date
from sqlalchemy import ForeignKey
from sqlalchemy import ForeignKeyConstraint
from sqlalchemy import Index
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from outcome.models.base import Base
from outcome.models.base import in_
from outcome.models.base import utcnow
from outcome.models.encrypted import EncryptedText

# What a client decided about the consent text: ``agreed`` lets answers be stored;
# ``refused`` (before anything was stored) and ``withdrawn`` (after agreeing) stop
# collection. The latest decision is the one in force.
CONSENT_DECISIONS = ("agreed", "refused", "withdrawn")
# Where the decision was made: the client's own link pages, the clinic's kiosk, or
# recorded by staff from a paper form.
CONSENT_CHANNELS = ("link", "kiosk", "staff")
# Why a client's personal data was erased: on request (an admin or ``outcome clients
# erase``), or by the clinic's retention policy.
ERASURE_REASONS = ("request", "retention")
# A retention run: ``dry_run`` lists the clients due (the report shown to admins first);
# ``erase`` erases those still due once the notice period has passed.
RETENTION_KINDS = ("dry_run", "erase")


class TotpSecret(Base):
    """A staff member's authenticator-app secret (RFC 6238: 6 digits, 30-second steps).

    ``confirmed_dt`` is None while enrolment waits for the first code; an unconfirmed
    secret never lets anyone sign in. ``last_step`` is the time step of the last accepted
    code, so a code seen once (over a shoulder, in a proxy log) is not accepted again.
    """

    __tablename__ = "totp_secrets"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         unique=True)
    # Base32 (RFC 4648), as authenticator apps take it.
    secret: Mapped[str] = mapped_column(EncryptedText("totp_secrets.secret"))
    confirmed_dt: Mapped[dt.datetime | None]
    last_step: Mapped[int | None]
    # Wrong codes in a row at the second step of sign-in, across days and addresses (the
    # login throttle forgets after an hour); reset by a right code, a recovery code, a
    # passkey or an admin's reset. At the limit the app's codes stop being accepted.
    failures: Mapped[int] = mapped_column(default=0, server_default="0")
    created_dt: Mapped[dt.datetime] = mapped_column(default=utcnow)


class RecoveryCode(Base):
    """One of a staff member's single-use recovery codes; only its hash is stored."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         index=True)
    code_hash: Mapped[str] = mapped_column(String(255))
    used_dt: Mapped[dt.datetime | None]
    created_dt: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Passkey(Base):
    """A WebAuthn credential (a passkey or security key) registered by a staff member.

    Identifiers and the COSE public key are stored base64url-encoded. ``sign_count`` is
    the authenticator's counter: a count that goes backwards marks a cloned key.
    """

    __tablename__ = "passkeys"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         index=True)
    credential_id: Mapped[str] = mapped_column(String(1400), unique=True)
    public_key: Mapped[str] = mapped_column(Text)
    sign_count: Mapped[int] = mapped_column(default=0)
    # The staff member's own label ("Laptop", "YubiKey").
    name: Mapped[str] = mapped_column(String(100))
    transports: Mapped[list[Any]] = mapped_column(default=list)
    created_dt: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used_dt: Mapped[dt.datetime | None]

    __table_args__ = (CheckConstraint("name <> ''", name="name_not_empty"),
                      CheckConstraint("sign_count >= 0", name="sign_count_not_negative"))


class ConsentText(Base):
    """One version of the clinic's consent text in one language. Never edited: an admin's
    change is a new version, so every decision names exactly the words it answered."""

    __tablename__ = "consent_texts"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id", ondelete="CASCADE"),
                                           index=True)
    language: Mapped[str] = mapped_column(String(16))
    version: Mapped[int]
    body: Mapped[str] = mapped_column(Text)
    created_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))
    created_dt: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("clinic_id", "language", "version"),
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint("body <> ''", name="body_not_empty"),
    )


class ConsentDecision(Base):
    """A client's decision about a consent text: agreed, refused or withdrawn, and when."""

    __tablename__ = "consent_decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    client_id: Mapped[int] = mapped_column(index=True)
    text_id: Mapped[int] = mapped_column(ForeignKey("consent_texts.id", ondelete="RESTRICT"))
    decision: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    # The link the client decided on, if any (a staff-recorded decision has none).
    link_id: Mapped[int | None] = mapped_column(
        ForeignKey("questionnaire_links.id", ondelete="SET NULL"))
    # The staff member who recorded it (channel ``staff``).
    recorded_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))
    decided_dt: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        ForeignKeyConstraint(["clinic_id", "client_id"], ["clients.clinic_id", "clients.id"],
                             name="fk_consent_decisions_client_clients", ondelete="CASCADE"),
        Index("ix_consent_decisions_client_decided", "client_id", "decided_dt"),
        CheckConstraint(in_("decision", CONSENT_DECISIONS), name="decision_known"),
        CheckConstraint(in_("channel", CONSENT_CHANNELS), name="channel_known"),
    )


class RetentionRun(Base):
    """One retention run for a clinic on one day (unique: the job runs exactly once).

    ``codes`` lists the pseudonymous codes of the clients it found due (``dry_run``) or
    erased (``erase``): never a name.
    """

    __tablename__ = "retention_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id", ondelete="CASCADE"),
                                           index=True)
    kind: Mapped[str] = mapped_column(String(16))
    run_on: Mapped[dt.date] = mapped_column(Date)
    codes: Mapped[list[Any]] = mapped_column(default=list)
    started_dt: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_dt: Mapped[dt.datetime | None]

    __table_args__ = (
        UniqueConstraint("clinic_id", "kind", "run_on"),
        CheckConstraint(in_("kind", RETENTION_KINDS), name="kind_known"),
    )
