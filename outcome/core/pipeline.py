"""The whole engine over a batch of episodes in one call: the vectorised path at scale.

Input: for an outcome instrument and an alliance instrument, item matrices with one
row per administration, laid out episode by episode with a fixed number of sessions
(missing sessions are rows of missing answers). Output: scores, each episode's change
category since intake, its progress colour, its rupture counts, and per-therapist
aggregates. This is what a nightly rebuild or a research export of a large clinic runs;
``bench/signals`` measures it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from outcome.core.aggregates import GroupSummary
from outcome.core.aggregates import summarise_groups
from outcome.core.alliance import REPAIRED
from outcome.core.alliance import UNREPAIRED
from outcome.core.alliance import AllianceResult
from outcome.core.alliance import AllianceSettings
from outcome.core.alliance import default_min_sd
from outcome.core.alliance import detect_ruptures
from outcome.core.change import individual_change
from outcome.core.instruments import Instrument
from outcome.core.scoring import score
from outcome.core.signals import first_and_last
from outcome.core.signals import reliable_change_rule
from outcome.core.trajectory import COLOURS
from outcome.core.trajectory import DEFAULT_COLOUR_SETTINGS
from outcome.core.trajectory import ColourResult
from outcome.core.trajectory import ColourSettings
from outcome.core.trajectory import TrajectoryModel
from outcome.core.trajectory import progress_colours


@dataclass(frozen=True)
class PipelineResult:
    totals: np.ndarray
    category: np.ndarray
    colours: ColourResult
    alliance: AllianceResult
    groups: dict[int, GroupSummary]


def run_pipeline(*, outcome: Instrument, outcome_items: np.ndarray, alliance: Instrument,
                 alliance_items: np.ndarray, sessions_per_episode: int,
                 therapist: np.ndarray, ended: np.ndarray,
                 model: TrajectoryModel | None = None,
                 colour_settings: ColourSettings = DEFAULT_COLOUR_SETTINGS) -> PipelineResult:
    """Score, classify, colour, flag and aggregate ``len(therapist)`` episodes at once."""
    n_episodes = therapist.shape[0]
    shape = (n_episodes, sessions_per_episode)
    outcome_scores = score(outcome, outcome_items)
    totals = outcome_scores.primary.reshape(shape)
    alliance_totals = score(alliance, alliance_items).primary.reshape(shape)
    sessions = np.broadcast_to(np.arange(1, sessions_per_episode + 1), shape)

    intake, latest, session, count = first_and_last(totals, sessions)
    rule = reliable_change_rule(outcome)
    assert rule is not None and rule.is_inclusive, "the pipeline expects a points threshold"
    change = individual_change(np.where(count >= 2, intake, np.nan), latest,
                               direction=outcome.direction, points=rule.threshold,
                               cutoff=outcome.cutoff)
    colours = progress_colours(direction=outcome.direction, cutoff=outcome.cutoff, rule=rule,
                               intake=intake, latest=latest, session=session, model=model,
                               settings=colour_settings)
    ruptures = detect_ruptures(alliance_totals, cutoff=alliance.cutoff,
                               settings=AllianceSettings(
                                   drop_points=alliance.rupture_drop_points,
                                   min_sd=default_min_sd(*alliance.primary_range)))
    groups = summarise_groups(
        group=therapist, active=~ended, sessions=np.full(n_episodes, sessions_per_episode),
        sessions_measured=count, colour=colours.colour, colour_names=COLOURS,
        ruptures=ruptures.ruptures, repaired=ruptures.count(REPAIRED),
        unrepaired=ruptures.count(UNREPAIRED), ended=ended, category=change.category,
        intake=intake, last=latest, d=outcome.d)
    return PipelineResult(totals=totals, category=change.category, colours=colours,
                          alliance=ruptures, groups=groups)
