"""Stored engine output: each episode's current signals, and fitted expectation models."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import CheckConstraint
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from outcome.models.base import Base
from outcome.models.base import in_
from outcome.models.base import utcnow
from outcome.models.encrypted import EncryptedJSON

COLOURS = ("grey", "white", "green", "yellow", "red")


class EpisodeSignal(Base):
    """The engine's current reading of one episode (rebuilt by `outcome signals recompute`).

    ``urgency`` orders a caseload: 0 unacknowledged critical answer, 1 red, 2 unrepaired
    rupture, 3 new rupture, 4 yellow, 5 green, 6 white, 7 nothing to show yet.
    """

    __tablename__ = "episode_signals"

    episode_id: Mapped[int] = mapped_column(ForeignKey("episodes.id", ondelete="CASCADE"),
                                            primary_key=True)
    colour: Mapped[str] = mapped_column(String(8))
    urgency: Mapped[int]
    change_category: Mapped[str | None] = mapped_column(String(16))
    ruptures: Mapped[int] = mapped_column(default=0)
    ruptures_repaired: Mapped[int] = mapped_column(default=0)
    ruptures_unrepaired: Mapped[int] = mapped_column(default=0)
    # Every signal with its explanation (rule, numbers, plain words). Encrypted at rest:
    # ``state["critical"]`` holds critical answers and their labels (read in Python only).
    state: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON("episode_signals.state"))
    computed_dt: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint(in_("colour", COLOURS), name="colour_known"),
        CheckConstraint("urgency BETWEEN 0 AND 7", name="urgency_range"),
        Index("ix_episode_signals_urgency", "urgency"),
    )


class TrajectoryFit(Base):
    """An expected-response model: fitted on a clinic's own episodes, or imported."""

    __tablename__ = "trajectory_fits"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"))
    instrument_id: Mapped[str] = mapped_column(String(64))
    fitted_dt: Mapped[dt.datetime]
    n_episodes: Mapped[int]
    n_observations: Mapped[int]
    parameters: Mapped[dict[str, Any]]
    # Where an imported fit came from (a publication or another clinic's export); None for
    # a fit on the clinic's own episodes.
    source: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (
        Index("ix_trajectory_fits_latest", "clinic_id", "instrument_id", "fitted_dt"),
        CheckConstraint("n_episodes >= 0 AND n_observations >= 0", name="counts_non_negative"),
    )
