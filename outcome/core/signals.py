"""Signals for many episodes at once, each one explaining itself.

This composes the engine: change since intake (:mod:`change`), the progress colour
(:mod:`trajectory`), alliance ruptures (:mod:`alliance`) and critical answers. Input is
per-instrument series as padded matrices (episodes x administrations, NaN padding at
the end); output holds arrays for dashboards and batch work, and
:class:`Explanation` objects for any one episode: the rule that fired, its numbers
(observed, expected, band, threshold, sample size, whether default expectations were
used) and a sentence in plain words, the same wherever the signal is shown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import numpy as np

from outcome.core.alliance import OPEN
from outcome.core.alliance import REPAIRED
from outcome.core.alliance import UNREPAIRED
from outcome.core.alliance import AllianceResult
from outcome.core.alliance import AllianceSettings
from outcome.core.alliance import default_min_sd
from outcome.core.alliance import detect_ruptures
from outcome.core.change import CATEGORIES
from outcome.core.change import ChangeResult
from outcome.core.change import individual_change
from outcome.core.instruments import Instrument
from outcome.core.trajectory import COLOURS
from outcome.core.trajectory import DEFAULT_COLOUR_SETTINGS
from outcome.core.trajectory import ColourResult
from outcome.core.trajectory import ColourSettings
from outcome.core.trajectory import ReliableChangeRule
from outcome.core.trajectory import TrajectoryModel
from outcome.core.trajectory import progress_colours
from outcome.core.trajectory import rule_from_rci


@dataclass(frozen=True)
class Explanation:
    """One signal, explained: what kind, its level, the rule, its numbers, in words."""

    kind: str
    level: str
    rule: str
    text: str
    numbers: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """Strict JSON: a missing number is null, never NaN (which is not JSON at all)."""
        return {"kind": self.kind, "level": self.level, "rule": self.rule, "text": self.text,
                "numbers": _json_safe(self.numbers)}


def _json_safe(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _fmt(value: float | None, precision: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    text = f"{value:.{precision}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def reliable_change_rule(instrument: Instrument, intake_sd: float | None = None,
                         n_intake: int | None = None) -> ReliableChangeRule | None:
    """The instrument's reliable-change threshold in points, and where it comes from.

    A fixed threshold in the definition wins (inclusive). Otherwise the RCI criterion
    from the definition's reliability and SD, or the clinic's intake SD (strict).
    """
    rc = instrument.reliable_change
    if rc is None:
        return None
    note = "" if rc.is_verified else " (unverified)"
    if rc.points is not None:
        return ReliableChangeRule(rc.points, True,
                                  f"{_fmt(rc.points)} points, {rc.source or 'definition'}{note}")
    assert rc.reliability is not None
    if rc.sd is not None:
        return rule_from_rci(rc.sd, rc.reliability,
                             source=f"RCI from the definition's SD {_fmt(rc.sd)} and "
                                    f"reliability {rc.reliability}{note}")
    if intake_sd is None or intake_sd <= 0:
        return None
    return rule_from_rci(intake_sd, rc.reliability,
                         source=f"RCI from the clinic's intake SD {_fmt(intake_sd)} "
                                f"(n = {n_intake}) and reliability {rc.reliability}{note}")


def first_and_last(scores: np.ndarray, sessions: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Intake score, latest score, the latest score's session, and count of valid scores.

    The session is counted over valid scores (the intake is session 1), so a series that
    starts with unusable forms is not mistaken for one already under way.
    """
    scores = np.asarray(scores, dtype=float)
    valid = np.isfinite(scores)
    count = valid.sum(axis=1)
    rows = np.arange(scores.shape[0])
    first_col = np.argmax(valid, axis=1)
    last_col = scores.shape[1] - 1 - np.argmax(valid[:, ::-1], axis=1)
    has = count > 0
    intake = np.where(has, scores[rows, first_col], np.nan)
    latest = np.where(has, scores[rows, last_col], np.nan)
    return intake, latest, count.astype(np.int64), count


@dataclass(frozen=True)
class OutcomeSignals:
    """Progress and change for one outcome instrument across many episodes."""

    instrument: Instrument
    intake: np.ndarray
    latest: np.ndarray
    session: np.ndarray
    count: np.ndarray
    colours: ColourResult
    change: ChangeResult | None
    rule: ReliableChangeRule | None
    model: TrajectoryModel | None
    settings: ColourSettings

    def explain_progress(self, i: int) -> Explanation:
        """The colour of episode ``i`` in plain words, with its numbers."""
        ins = self.instrument
        colour = self.colours.name(i)
        x0, xt, t = float(self.intake[i]), float(self.latest[i]), int(self.session[i])
        numbers: dict[str, Any] = {
            "instrument": ins.id, "intake": x0, "observed": xt, "session": t,
            "method": self.colours.method,
            "default_expectations": self.colours.method == "rational",
        }
        head = f"{colour.title()}: {ins.short_name} {_fmt(xt)} at session {t}"
        if t > 1:
            head += f", {_fmt(x0)} at intake"
        reason = self.colours.reason[i]
        if reason == "reliable deterioration since intake" and self.rule is not None:
            numbers["threshold"] = self.rule.threshold
            body = (f"worse by {_fmt(abs(xt - x0))} points; reliable change is "
                    f"{self.rule.source}.")
        elif reason == "in the functional range" and ins.cutoff is not None:
            numbers["cutoff"] = ins.cutoff.value
            body = (f"in the functional range (clinical is {ins.cutoff.clinical_side} "
                    f"{_fmt(ins.cutoff.value)}); consider maintenance or ending.")
        elif self.colours.method == "empirical" and np.isfinite(self.colours.percentile[i]):
            p = float(self.colours.percentile[i])
            expected = float(self.colours.expected[i])
            numbers.update(expected=expected, percentile=p,
                           green_max=self.settings.green_max,
                           yellow_max=self.settings.yellow_max,
                           sample_size=self.model.n_episodes if self.model else None)
            body = (f"expected {_fmt(expected)} for someone starting at {_fmt(x0)}; this "
                    f"is worse than {100 * p:.0f} % of past clients at this session "
                    f"(yellow above {100 * self.settings.green_max:.0f} %, red above "
                    f"{100 * self.settings.yellow_max:.0f} %; curve from "
                    f"{self.model.n_episodes if self.model else 0} completed episodes).")
        elif reason == "little improvement by this session" and self.rule is not None:
            numbers.update(threshold=self.rule.threshold,
                           fraction=self.settings.rational_fraction)
            gain = ins.d * (xt - x0)
            moved = (f"improved by {_fmt(gain)} points" if gain > 0 else
                     "no better than at intake" if gain == 0 else
                     f"worse by {_fmt(-gain)} points")
            body = (f"still in the clinical range and {moved}; by this session an "
                    f"improvement of "
                    f"{_fmt(self.settings.rational_fraction * self.rule.threshold)} points "
                    f"is expected ({100 * self.settings.rational_fraction:.0f} % of the "
                    f"reliable change of {_fmt(self.rule.threshold)}).")
        elif reason == "no reliable-change threshold yet":
            body = ("progress cannot be judged yet: the instrument has no reliable-change "
                    "threshold until the clinic's intake SD is known (`outcome model refit`).")
        elif reason == "first session: no colour yet":
            body = "first measure of this episode; colours start at the second."
        elif reason == "no valid score":
            body = "no valid score yet."
        else:
            body = "on track."
        if self.colours.method == "rational" and t > 1:
            needed = self.settings.min_episodes
            have = self.model.n_episodes if self.model else 0
            body += (f" Rule-based colours: the clinic has {have} of the {needed} completed "
                     "episodes needed for expected recovery curves.")
            numbers.update(episodes_available=have, episodes_needed=needed)
        return Explanation("progress", colour, f"progress.{reason.replace(' ', '_')}",
                           f"{head}: {body}", numbers)

    def explain_change(self, i: int) -> Explanation | None:
        """Change since intake in plain words (None before a second valid score)."""
        if self.change is None or int(self.count[i]) < 2:
            return None
        label = self.change.label(i)
        if label is None:
            return None
        x0, xt = float(self.intake[i]), float(self.latest[i])
        ins = self.instrument
        numbers = {"instrument": ins.id, "intake": x0, "observed": xt,
                   "change": xt - x0, "category": label,
                   "threshold": self.rule.threshold if self.rule else None,
                   "cutoff": ins.cutoff.value if ins.cutoff else None}
        text = (f"{label.title()}: {ins.short_name} from {_fmt(x0)} to {_fmt(xt)} "
                f"({'+' if xt >= x0 else ''}{_fmt(xt - x0)}); reliable change is "
                f"{self.rule.source if self.rule else 'not defined'}")
        if ins.cutoff is not None:
            text += f"; clinical range {ins.cutoff.clinical_side} {_fmt(ins.cutoff.value)}"
        return Explanation("change", label, f"change.{label}", text + ".", numbers)


def outcome_signals(instrument: Instrument, scores: np.ndarray, sessions: np.ndarray, *,
                    model: TrajectoryModel | None = None,
                    settings: ColourSettings = DEFAULT_COLOUR_SETTINGS,
                    intake_sd: float | None = None, n_intake: int | None = None
                    ) -> OutcomeSignals:
    """Progress colour and change category of every episode's latest score."""
    intake, latest, session, count = first_and_last(scores, sessions)
    rule = reliable_change_rule(instrument, intake_sd, n_intake)
    colours = progress_colours(direction=instrument.direction, cutoff=instrument.cutoff,
                               rule=rule, intake=intake, latest=latest, session=session,
                               model=model, settings=settings)
    change = None
    if rule is not None:
        assert instrument.reliable_change is not None  # a rule comes only from one
        change = individual_change(
            np.where(count >= 2, intake, np.nan), latest, direction=instrument.direction,
            points=rule.threshold if rule.is_inclusive else None,
            reliability=None if rule.is_inclusive else instrument.reliable_change.reliability,
            sd=None if rule.is_inclusive else (instrument.reliable_change.sd or intake_sd),
            sd_source="definition or clinic intake", cutoff=instrument.cutoff)
    return OutcomeSignals(instrument, intake, latest, session, count, colours, change, rule,
                          model, settings)


def change_markers(instrument: Instrument, scores: np.ndarray,
                   intake_sd: float | None = None, n_intake: int | None = None
                   ) -> list[str | None]:
    """Each score of one episode's series against its intake: the change category, or None.

    ``scores`` is the series in session order (NaN = no valid score); the intake is the
    first valid score. A score gets "recovered", "improved", "deteriorated" or "harmed"
    when its change since intake reaches the instrument's reliable-change threshold
    (:func:`reliable_change_rule`; Jacobson & Truax 1991 categories), and None when the
    change is not reliable, when it is the intake itself, or when there is no rule.
    These are the reliable-change markers of the outcome chart.
    """
    scores = np.asarray(scores, dtype=float)
    out: list[str | None] = [None] * scores.size
    rule = reliable_change_rule(instrument, intake_sd, n_intake)
    valid = np.flatnonzero(np.isfinite(scores))
    if rule is None or valid.size < 2:
        return out
    assert instrument.reliable_change is not None  # a rule comes only from one
    later = valid[1:]
    change = individual_change(
        np.full(later.size, scores[valid[0]]), scores[later], direction=instrument.direction,
        points=rule.threshold if rule.is_inclusive else None,
        reliability=None if rule.is_inclusive else instrument.reliable_change.reliability,
        sd=None if rule.is_inclusive else (instrument.reliable_change.sd or intake_sd),
        sd_source="definition or clinic intake", cutoff=instrument.cutoff)
    for k, position in enumerate(later):
        label = change.label(k)
        out[int(position)] = None if label in (None, "unchanged") else label
    return out


@dataclass(frozen=True)
class AllianceSignals:
    instrument: Instrument
    result: AllianceResult
    sessions: np.ndarray

    def explain(self, i: int) -> list[Explanation]:
        """Every rupture of episode ``i``, oldest first, with its status and numbers."""
        r, ins = self.result, self.instrument
        out = []
        for col in np.flatnonzero(r.start[i]):
            a = float(r.scores[i, col])
            session = int(self.sessions[i, col])
            mean = r.personal_mean[i, col]
            rules = [name for name, flags in (("absolute", r.absolute), ("drop", r.drop),
                                              ("possible_rupture", r.possible),
                                              ("rupture", r.rupture)) if flags[i, col]]
            kind = "rupture" if r.rupture[i, col] or r.drop[i, col] else (
                "possible rupture" if r.possible[i, col] else "alliance concern")
            status = int(r.status[i, col])
            numbers: dict[str, Any] = {"instrument": ins.id, "session": session,
                                       "observed": a, "rules": rules,
                                       "personal_mean": None if np.isnan(mean) else float(mean),
                                       "cutoff": ins.cutoff.value if ins.cutoff else None}
            parts = [f"{kind.title()} at session {session}: {ins.short_name} {_fmt(a)}"]
            if not np.isnan(mean):
                parts.append(f"{_fmt(float(mean) - a)} below the personal mean {_fmt(mean)}")
            if "drop" in rules and col > 0:
                previous = float(r.scores[i, col - 1])
                parts.append(f"down {_fmt(previous - a)} from {_fmt(previous)} last session")
            if "absolute" in rules and ins.cutoff is not None:
                parts.append(f"below {_fmt(ins.cutoff.value)}")
            if status == REPAIRED:
                at = int(r.repaired_at[i, col])
                state = (f"repaired at session {int(self.sessions[i, at])} "
                         f"({_fmt(float(r.scores[i, at]))})")
                numbers["repaired_session"] = int(self.sessions[i, at])
            elif status == UNREPAIRED:
                state = "not repaired: for the supervisor's attention"
            else:
                state = "watch the next sessions for repair"
            level = {OPEN: "open", REPAIRED: "repaired", UNREPAIRED: "unrepaired"}[status]
            out.append(Explanation("rupture", level, f"alliance.{rules[0]}",
                                   "; ".join(parts) + f". {state.capitalize()}.", numbers))
        return out


def alliance_signals(instrument: Instrument, scores: np.ndarray, sessions: np.ndarray, *,
                     settings: AllianceSettings | None = None,
                     therapist_scores: np.ndarray | None = None) -> AllianceSignals:
    """Ruptures and repair for many episodes of one alliance instrument."""
    settings = settings or AllianceSettings(
        drop_points=instrument.rupture_drop_points,
        min_sd=default_min_sd(*instrument.primary_range))
    result = detect_ruptures(scores, cutoff=instrument.cutoff, settings=settings,
                             therapist_scores=therapist_scores)
    return AllianceSignals(instrument, result, np.asarray(sessions))


def explain_critical(instrument: Instrument, item_id: str, value: float) -> Explanation:
    """A critical answer: the definition's message to the clinician, and the answer."""
    critical = next(c for c in instrument.critical_items if c.item == item_id)
    item = instrument.item(item_id)
    label = next((o.label for o in item.options if o.value == value), None)
    answer = f"{_fmt(value)}{f' ({label})' if label else ''}"
    return Explanation("critical", critical.urgency, "critical.answer",
                       f"{critical.clinician_message} Answer: {answer}.",
                       {"instrument": instrument.id, "item": item_id, "observed": value,
                        "threshold": critical.threshold})


def explain_unanswered_critical(instrument: Instrument, item_id: str) -> Explanation:
    """An unanswered critical item: flagged, never read as 0."""
    return Explanation("critical", "high", "critical.unanswered",
                       f"{instrument.short_name} {item_id} (a safety question) was left "
                       "unanswered; ask about it in session.",
                       {"instrument": instrument.id, "item": item_id})


__all__ = ["CATEGORIES", "COLOURS", "AllianceSignals", "Explanation", "OutcomeSignals",
           "alliance_signals", "explain_critical", "explain_unanswered_critical",
           "first_and_last", "outcome_signals", "reliable_change_rule"]
