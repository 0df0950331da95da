"""After the signal (issue 19): support checks, action plans and supervision reviews.

The loop (``../shared/design/support.md``, "The loop"): a signal (red, reliable
deterioration, an unrepaired rupture) offers a *support check*, a short questionnaire the
client answers through the usual link; its domain results and suggestions lead to an
*action plan* (chosen steps, a note, a review date) that resolves the signal's alerts; at
the review date the plan is closed or revised; a supervisor records a *review* of cases
on their agenda.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean
from sqlalchemy import CheckConstraint
from sqlalchemy import Date
from sqlalchemy import ForeignKey
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from outcome.models.base import Base
from outcome.models.base import in_
from outcome.models.base import utcnow
from outcome.models.encrypted import EncryptedJSON
from outcome.models.encrypted import EncryptedText

# Why a support check was offered or started (support.md, "The loop", 1): the episode
# turned red on its main measure; it reliably deteriorated; an alliance rupture went
# unrepaired; or the therapist started one without a signal.
CHECK_REASONS = ("red", "deterioration", "unrepaired_rupture", "therapist")
# ``sent``: the link is out, nothing answered yet; ``answered``: the client finished it;
# ``cancelled``: withdrawn by the therapist (its link revoked); ``expired``: the link
# closed unanswered.
CHECK_STATUSES = ("sent", "answered", "cancelled", "expired")
# ``open``: in force, its review date not yet reached or reached and not yet acted on;
# ``closed``: the therapist closed it at or after review; ``revised``: replaced by a newer
# plan (``ActionPlan.revised_from_id`` on the newer one points back).
PLAN_STATUSES = ("open", "closed", "revised")
# What the therapist decided for each suggested step (support.md, "From results to
# suggested next steps"): taken as written, taken with their own words, or declined; a
# step of their own has no suggestion.
STEP_DECISIONS = ("accepted", "edited", "declined", "own")


class SupportCheck(Base):
    """A support check sent to a client: the link it went by and why it was offered."""

    __tablename__ = "support_checks"

    id: Mapped[int] = mapped_column(primary_key=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("episodes.id", ondelete="CASCADE"),
                                            index=True)
    # The alert that offered it, if any (a therapist may start one without an alert). No
    # foreign key: an alert names the plan that resolved it and a plan names its check, so
    # a key here would close a cycle and the tables could no longer be put in order (for a
    # backup's restore). Alerts are deleted only with their episode, as checks are.
    alert_id: Mapped[int | None]
    reason: Mapped[str] = mapped_column(String(24))
    # None when the clinic's setting offered it automatically.
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    started_dt: Mapped[dt.datetime] = mapped_column(default=utcnow)
    link_id: Mapped[int | None] = mapped_column(
        ForeignKey("questionnaire_links.id", ondelete="SET NULL"))
    # The instruments asked, in order, by domain: [{"domain": ..., "instrument": ...}].
    # The alliance domain is absent from it when a recent alliance score was reused.
    battery: Mapped[list[Any]] = mapped_column(default=list)
    # A recent alliance administration reused instead of asking again (or None).
    reused_alliance_id: Mapped[int | None] = mapped_column(
        ForeignKey("administrations.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default="sent")
    answered_dt: Mapped[dt.datetime | None]

    __table_args__ = (
        CheckConstraint(in_("reason", CHECK_REASONS), name="reason_known"),
        CheckConstraint(in_("status", CHECK_STATUSES), name="status_known"),
        CheckConstraint("status <> 'answered' OR answered_dt IS NOT NULL",
                        name="answer_dated"),
    )


class ActionPlan(Base):
    """A therapist's plan after a signal: the chosen steps, a note and a review date.

    ``steps`` is a list of ``{"domain", "suggestion" (id or None), "text", "decision"}``,
    ``decision`` one of :data:`STEP_DECISIONS`. ``baseline`` holds the episode's main
    measure at the time of the plan (``{"instrument", "score", "colour", "session",
    "administration"}``), so the follow-up can say what changed since.
    """

    __tablename__ = "action_plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("episodes.id", ondelete="CASCADE"),
                                            index=True)
    support_check_id: Mapped[int | None] = mapped_column(
        ForeignKey("support_checks.id", ondelete="SET NULL"))
    # The plan this one replaces, when it is a revision.
    revised_from_id: Mapped[int | None] = mapped_column(
        ForeignKey("action_plans.id", ondelete="SET NULL"))
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_dt: Mapped[dt.datetime] = mapped_column(default=utcnow)
    steps: Mapped[list[Any]] = mapped_column(EncryptedJSON("action_plans.steps"), default=list)
    note: Mapped[str] = mapped_column(EncryptedText("action_plans.note"), default="")
    review_on: Mapped[dt.date] = mapped_column(Date)
    baseline: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="open")
    closed_dt: Mapped[dt.datetime | None]
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Why it was closed (e.g. "back on track; continue as before").
    closing_note: Mapped[str | None] = mapped_column(EncryptedText("action_plans.closing_note"))
    # The follow-up read at closing: colour and change since the plan, so the record keeps
    # what the therapist saw when they decided.
    outcome: Mapped[dict[str, Any] | None]

    __table_args__ = (
        CheckConstraint(in_("status", PLAN_STATUSES), name="status_known"),
        CheckConstraint("status = 'open' OR (closed_dt IS NOT NULL AND closed_by_id IS NOT NULL)",
                        name="closing_recorded"),
    )


class SupervisionReview(Base):
    """A supervisor's record that a case on their agenda was reviewed.

    Holds no clinical content beyond the plan it refers to: whether it was discussed,
    whether the plan was agreed, a follow-up date and a short note.
    """

    __tablename__ = "supervision_reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("episodes.id", ondelete="CASCADE"),
                                            index=True)
    plan_id: Mapped[int | None] = mapped_column(
        ForeignKey("action_plans.id", ondelete="SET NULL"), index=True)
    supervisor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    reviewed_dt: Mapped[dt.datetime] = mapped_column(default=utcnow)
    discussed: Mapped[bool] = mapped_column(Boolean, default=True)
    plan_agreed: Mapped[bool] = mapped_column(Boolean, default=False)
    follow_up_on: Mapped[dt.date | None] = mapped_column(Date)
    note: Mapped[str] = mapped_column(EncryptedText("supervision_reviews.note"), default="")
