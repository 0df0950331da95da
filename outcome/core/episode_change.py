"""An episode's change since intake: its primary measure's category, or the NHS Talking
Therapies paired result (domain.md section 3, "What an episode's change is, on screen").

- Every episode has one **primary outcome measure**: the episode's own choice
  (``episodes.primary_instrument_id``) or the clinic's ``primary_measure`` setting
  (default PHQ-9). The episode's category is that measure's Jacobson-Truax category
  (Jacobson & Truax 1991; fixed points where the definition gives them), as the engine
  computes it per instrument. It is never chosen by comparing measures, nor by sorting
  their names.
- When the clinic turns the paired rules on (``paired_rules``), the primary measure is
  PHQ-9 and both halves of the pair have at least two valid scores, the category is the
  paired result (:func:`outcome.core.talking_therapies.talking_therapies`; NHS Talking
  Therapies Manual, 2024: caseness PHQ-9 >= 10 or GAD-7 >= 8, reliable change 6 and 4
  points, recovery only for cases).
- The anxiety half depends on the episode's problem descriptor (GAD-7 for depression,
  generalised anxiety, mixed or none recorded; SPIN for social anxiety, IES-R for PTSD,
  MI for agoraphobia, PDSS for panic, OCI for OCD, HAI for health anxiety). Where the
  disorder-specific measure is not installed, GAD-7 stands in and the result says so.
  PCL-5 is *not* substituted for IES-R: the manual names IES-R, and PCL-5's caseness and
  reliable-change points differ.

The paired result is stored under the existing category keys: reliable recovery is
``recovered``; reliable improvement without recovery ``improved``; reliable deterioration
``deteriorated``; everything else ``unchanged`` (including "recovery" without reliable
improvement, which the explanation names). The paired rules have no *harmed* category.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from outcome.core.messages import Message
from outcome.core.talking_therapies import talking_therapies

DEPRESSION_MEASURE = "phq9"
DEFAULT_ANXIETY_MEASURE = "gad7"
# The problem descriptor chooses the anxiety half of the pair (NHS Talking Therapies
# Manual, "paired outcome measures"; domain.md section 3). Keys are stored in
# episodes.problem_descriptor (at most 32 characters).
ANXIETY_MEASURES: dict[str, str] = {
    "depression": "gad7",
    "generalised_anxiety": "gad7",
    "mixed": "gad7",
    "none": "gad7",
    "social_anxiety": "spin",
    "ptsd": "iesr",
    "agoraphobia": "mi",
    "panic": "pdss",
    "ocd": "oci",
    "health_anxiety": "hai",
}
PROBLEM_DESCRIPTORS = tuple(ANXIETY_MEASURES)
# Names of measures that may not be installed, for saying which one GAD-7 stands in for.
MEASURE_NAMES = {"spin": "SPIN", "iesr": "IES-R", "mi": "MI", "pdss": "PDSS", "oci": "OCI",
                 "hai": "HAI", "gad7": "GAD-7", "phq9": "PHQ-9"}
MINIMUM_SESSIONS = 2
# Caseness and reliable-change points of the pair as the programme publishes them (NHS
# Talking Therapies Manual; domain.md section 3), used where a definition lacks them.
PROGRAMME_DEFAULTS: dict[str, tuple[float, float]] = {"phq9": (10, 6), "gad7": (8, 4)}


@dataclass(frozen=True)
class MeasureReading:
    """One outcome measure of one episode: first and last valid scores and the engine's
    per-instrument category (None before two valid scores or without a rule)."""

    instrument_id: str
    short_name: str
    first: float
    last: float
    count: int
    category: str | None
    caseness: float | None = None  # the cutoff, for a measure whose clinical side is >=
    reliable_points: float | None = None  # a fixed reliable-change threshold, if any


@dataclass(frozen=True)
class EpisodeChange:
    """The episode's change category and the measure (or pair) it belongs to."""

    category: str | None
    measure: str
    pair: tuple[str, str] | None = None
    stand_in_for: str | None = None  # the disorder-specific measure GAD-7 stands in for
    explanation: Message | None = None
    paired: dict[str, bool] | None = None  # the NHS TT flags, when the pair decided

    def label(self, names: Mapping[str, str]) -> Message:
        """Which measure (or pair) the category belongs to, as a message."""
        return measure_label(self.measure, self.pair, self.stand_in_for, names)

    def as_json(self, names: Mapping[str, str]) -> dict[str, Any]:
        return {"category": self.category, "measure": self.measure,
                "pair": list(self.pair) if self.pair else None,
                "stand_in": self.stand_in_for is not None,
                "stand_in_for": self.stand_in_for,
                "label": self.label(names).as_json(),
                "explanation": self.explanation.as_json() if self.explanation else None,
                "paired": self.paired}


def measure_label(measure: str, pair: tuple[str, str] | list[str] | None,
                  stand_in_for: str | None, names: Mapping[str, str]) -> Message:
    """"PHQ-9", "PHQ-9 + GAD-7, NHS Talking Therapies" or "... GAD-7 standing in for SPIN"."""
    def name(instrument_id: str) -> str:
        return names.get(instrument_id) or MEASURE_NAMES.get(instrument_id, instrument_id)
    if not pair:
        return Message("episode_change.measure", {"measure": name(measure)})
    params = {"depression": name(pair[0]), "anxiety": name(pair[1])}
    if stand_in_for:
        return Message("episode_change.pair_stand_in",
                       {**params, "wanted": name(stand_in_for)})
    return Message("episode_change.pair", params)


def anxiety_measure(descriptor: str | None, installed: set[str] | frozenset[str]
                    ) -> tuple[str, str | None]:
    """The anxiety half for ``descriptor`` and, when GAD-7 stands in, the measure it
    stands in for (not installed)."""
    wanted = ANXIETY_MEASURES.get(descriptor or "none", DEFAULT_ANXIETY_MEASURE)
    if wanted == DEFAULT_ANXIETY_MEASURE or wanted in installed:
        return wanted, None
    return DEFAULT_ANXIETY_MEASURE, wanted


def primary_measure(episode_choice: str | None, clinic_default: str) -> str:
    """The episode's own primary measure, else the clinic's."""
    return episode_choice or clinic_default


def episode_change(primary: str, measures: Mapping[str, MeasureReading], *,
                   paired_rules: bool, descriptor: str | None = None,
                   installed: set[str] | frozenset[str] = frozenset()) -> EpisodeChange:
    """The episode's change: the primary measure's category, or the paired result."""
    if paired_rules and primary == DEPRESSION_MEASURE:
        anxiety, stand_in_for = anxiety_measure(descriptor, installed)
        depression_half, anxiety_half = measures.get(primary), measures.get(anxiety)
        if (depression_half is not None and anxiety_half is not None
                and min(depression_half.count, anxiety_half.count) >= MINIMUM_SESSIONS):
            return _paired(depression_half, anxiety_half, stand_in_for)
    reading = measures.get(primary)
    return EpisodeChange(reading.category if reading else None, primary)


def _paired(phq: MeasureReading, anxiety: MeasureReading,
            stand_in_for: str | None) -> EpisodeChange:
    """Apply the NHS Talking Therapies paired rules to one episode."""
    def one(value: float) -> np.ndarray:
        return np.array([value], dtype=float)
    # Each half's caseness and reliable change come from its definition (PHQ-9 10 and 6,
    # GAD-7 8 and 4 as shipped); the programme's published values where one lacks them.
    phq_caseness, phq_reliable = PROGRAMME_DEFAULTS[DEPRESSION_MEASURE]
    anxiety_caseness, anxiety_reliable = PROGRAMME_DEFAULTS[DEFAULT_ANXIETY_MEASURE]
    if anxiety.instrument_id != DEFAULT_ANXIETY_MEASURE and (
            anxiety.caseness is None or anxiety.reliable_points is None):
        # A disorder-specific measure must bring its own caseness and reliable change.
        return EpisodeChange(phq.category, phq.instrument_id)
    result = talking_therapies(
        one(phq.first), one(phq.last), one(anxiety.first), one(anxiety.last),
        np.array([min(phq.count, anxiety.count)]),
        phq_caseness=_or(phq.caseness, phq_caseness),
        phq_reliable=_or(phq.reliable_points, phq_reliable),
        gad_caseness=_or(anxiety.caseness, anxiety_caseness),
        gad_reliable=_or(anxiety.reliable_points, anxiety_reliable),
        minimum_sessions=MINIMUM_SESSIONS)
    flags = {name: bool(getattr(result, name)[0]) for name in (
        "at_caseness", "recovered", "reliably_improved", "reliably_deteriorated",
        "reliably_recovered")}
    if flags["reliably_recovered"]:
        category = "recovered"
    elif flags["reliably_improved"]:
        category = "improved"
    elif flags["reliably_deteriorated"]:
        category = "deteriorated"
    else:
        category = "unchanged"
    notes: list[Message] = []
    if not flags["at_caseness"]:
        notes.append(Message("episode_change.note.not_a_case"))
    elif flags["recovered"] and not flags["reliably_improved"]:
        notes.append(Message("episode_change.note.recovery_not_reliable"))
    if stand_in_for is not None:
        notes.append(Message("episode_change.note.stand_in", {
            "anxiety": anxiety.short_name,
            "wanted": MEASURE_NAMES.get(stand_in_for, stand_in_for)}))
    params: dict[str, Any] = {
        "category": Message(f"change.category.{category}"),
        "depression": phq.short_name, "d_intake": phq.first, "d_observed": phq.last,
        "d_change": {"signed": phq.last - phq.first},
        "anxiety": anxiety.short_name, "a_intake": anxiety.first, "a_observed": anxiety.last,
        "a_change": {"signed": anxiety.last - anxiety.first}, "notes": notes}
    message_id = "episode_change.paired_notes" if notes else "episode_change.paired"
    return EpisodeChange(category, phq.instrument_id, (phq.instrument_id, anxiety.instrument_id),
                         stand_in_for, Message(message_id, params), flags)


def _or(value: float | None, default: float) -> float:
    return default if value is None else value
