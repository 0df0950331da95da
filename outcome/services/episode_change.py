"""An episode's primary measure and problem descriptor: chosen by its therapist, read by
the engine (:mod:`outcome.core.episode_change`, domain.md section 3).

The episode's change category is stored with its signals (``episode_signals``:
``change_category``, and ``state["change"]`` for the measure or pair it belongs to);
changing either choice recomputes the episode's signals at once, so every page agrees.
Services flush; the caller commits.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from outcome.core.episode_change import PROBLEM_DESCRIPTORS
from outcome.models import Episode
from outcome.models import EpisodeSignal
from outcome.services.explanations import render_explanation
from outcome.services.signals import update_episode_signals
from questionnaires.loader import InstrumentLibrary


class EpisodeMeasureError(ValueError):
    """A primary measure or problem descriptor that cannot be used."""


def outcome_measures(library: InstrumentLibrary) -> list[tuple[str, str]]:
    """(id, short name) of every installed outcome measure, by short name."""
    return sorted(((i.id, i.short_name) for i in library if i.role == "outcome"),
                  key=lambda pair: (pair[1], pair[0]))


def check_episode_measures(primary: str | None, descriptor: str | None,
                           library: InstrumentLibrary) -> tuple[str | None, str | None]:
    """The primary measure and problem descriptor as stored ("" and None: not chosen), or
    :class:`EpisodeMeasureError` if either cannot be used. Stores nothing."""
    primary = primary or None
    descriptor = descriptor or None
    if primary is not None and primary not in dict(outcome_measures(library)):
        raise EpisodeMeasureError(f"primary measure must be an installed outcome measure; "
                                  f"got {primary!r}")
    if descriptor is not None and descriptor not in PROBLEM_DESCRIPTORS:
        raise EpisodeMeasureError(f"problem descriptor must be one of "
                                  f"{', '.join(PROBLEM_DESCRIPTORS)}; got {descriptor!r}")
    return primary, descriptor


def set_episode_measures(session: Session, episode: Episode, *, primary: str | None,
                         descriptor: str | None, library: InstrumentLibrary,
                         now: dt.datetime) -> EpisodeSignal:
    """Store the episode's primary measure (None: the clinic's) and problem descriptor
    (None: not recorded), then recompute its signals; flush."""
    primary, descriptor = check_episode_measures(primary, descriptor, library)
    episode.primary_instrument_id = primary
    episode.problem_descriptor = descriptor
    session.flush()
    return update_episode_signals(session, episode, library, now)


def change_words(state: dict[str, Any] | None, locale: str = "en"
                 ) -> tuple[str | None, str, str, str]:
    """From a stored signal's state: (category key, category words, measure or pair words,
    the explanation of the category). ("", "") words when nothing is stored yet."""
    change = (state or {}).get("change") or {}
    category = change.get("category")
    if not category:
        return None, "", render_explanation(change.get("label"), locale), ""
    explanation = change.get("explanation")
    if explanation is None:
        measure = (state or {}).get("outcomes", {}).get(change.get("measure"), {})
        explanation = measure.get("change")
    return (category, render_explanation({"message": f"change.category.{category}"}, locale),
            render_explanation(change.get("label"), locale),
            render_explanation(explanation, locale))
