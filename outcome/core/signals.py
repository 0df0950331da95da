"""Signals for many episodes at once, each one explaining itself.

This composes the engine: change since intake (:mod:`change`), the progress colour
(:mod:`trajectory`), alliance ruptures (:mod:`alliance`) and critical answers. Input is
per-instrument series as padded matrices (episodes x administrations, NaN padding at
the end); output holds arrays for dashboards and batch work, and
:class:`Explanation` objects for any one episode: the rule that fired, its numbers
(observed, expected, band, threshold, sample size, whether default expectations were
used) and its sentence as data: a message id with parameters (:mod:`messages`), which
:mod:`outcome.services.explanations` renders in the reader's language, the same
wherever the signal is shown.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import numpy as np

from outcome.core.alliance import KINDS
from outcome.core.alliance import OPEN
from outcome.core.alliance import REPAIRED
from outcome.core.alliance import STATUSES
from outcome.core.alliance import UNREPAIRED
from outcome.core.alliance import AllianceResult
from outcome.core.alliance import AllianceSettings
from outcome.core.alliance import default_min_sd
from outcome.core.alliance import detect_ruptures
from outcome.core.alliance import standard_error
from outcome.core.change import CATEGORIES
from outcome.core.change import ChangeResult
from outcome.core.change import individual_change
from outcome.core.instruments import Instrument
from outcome.core.messages import Message
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
    """One signal, explained: what kind, its level, the rule, its numbers, and its
    sentence as a message id with parameters (rendered outside the core)."""

    kind: str
    level: str
    rule: str
    message: Message
    numbers: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """Strict JSON: a missing number is null, never NaN (which is not JSON at all).

        ``message`` and ``params`` sit beside ``kind``, ``level``, ``rule`` and
        ``numbers``, so the stored explanation is itself a renderable message.
        """
        return {"kind": self.kind, "level": self.level, "rule": self.rule,
                **_json_safe(self.message.as_json()), "numbers": _json_safe(self.numbers)}


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


def _percent(fraction: float) -> dict[str, Any]:
    # Percentages are shown whole, as they always were ("worse than 92 % of ...").
    return {"number": 100 * fraction, "digits": 0}


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
    citation, verified = _citation(rc.source, rc.points)
    verified = verified and rc.is_verified
    note = "" if verified else " (unverified)"
    if rc.points is not None:
        return ReliableChangeRule(rc.points, True,
                                  f"{_fmt(rc.points, 2)} points, {citation or 'definition'}{note}")
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


def reliable_change_source(instrument: Instrument, intake_sd: float | None = None,
                           n_intake: int | None = None) -> Message | None:
    """Where the threshold of :func:`reliable_change_rule` comes from, as a message.

    The same three cases, in the same order: a fixed threshold in points (with the
    definition's citation), the RCI from the definition's SD and reliability, or the
    RCI from the clinic's intake SD (``n_intake`` intake scores); "(unverified)" when
    the definition's figures are not verified. None when there is no rule.
    """
    rc = instrument.reliable_change
    if rc is None:
        return None
    citation, verified = _citation(rc.source, rc.points)
    if rc.points is not None:
        # Points keep their own digits (GBO 2.45, not 2.5).
        points = {"number": rc.points, "digits": 2}
        source = (Message("reliable_change.points", {"points": points, "source": citation})
                  if citation else
                  Message("reliable_change.points_definition", {"points": points}))
    elif rc.sd is not None:
        # The RCI criterion says its points too: "more than 13.4 points (RCI from ...)".
        assert rc.reliability is not None
        source = Message("reliable_change.definition_sd_points", {
            "points": rule_from_rci(rc.sd, rc.reliability).threshold,
            "sd": rc.sd, "reliability": _exact(rc.reliability)})
    elif intake_sd is not None and intake_sd > 0:
        assert rc.reliability is not None
        source = Message("reliable_change.intake_sd_points", {
            "points": rule_from_rci(intake_sd, rc.reliability).threshold,
            "sd": intake_sd, "n": n_intake, "reliability": _exact(rc.reliability)})
    else:
        return None
    return source if rc.is_verified and verified else Message("reliable_change.unverified",
                                                              {"source": source})


_UNVERIFIED = re.compile(r"\s*\(unverified\)", re.IGNORECASE)
_LEADING_NUMBER = re.compile(r"\s*(\d+(?:\.\d+)?)\b")
_TRAILING_POINTS = re.compile(r"[,;]?\s*(\d+(?:\.\d+)?)\s+(?:index\s+)?points?\s*$")


def _citation(source: str, points: float | None) -> tuple[str, bool]:
    """A definition's reliable-change source as a citation, and whether it is verified.

    Sources written for people ("2.45 points (unverified)") would repeat what the message
    already says: "(unverified)" is taken out (the message adds it once), and a source that
    only restates the number of points ("10 index points") is no citation at all.
    """
    text = _UNVERIFIED.sub("", source or "").strip(" ;,")
    verified = text == (source or "").strip(" ;,")
    lead = _LEADING_NUMBER.match(text)
    if points is not None and lead and math.isclose(float(lead.group(1)), points):
        text = ""
    trail = _TRAILING_POINTS.search(text)
    if points is not None and trail and math.isclose(float(trail.group(1)), points):
        text = text[:trail.start()].strip(" ;,")
    return text, verified


def _side(side: str) -> str:
    # The side of a cutoff as a reader writes it: "clinical range ≥ 10", not ">= 10".
    return {">=": "\u2265", "<=": "\u2264"}.get(side, side)


def _exact(value: float | None) -> dict[str, Any]:
    # Reliabilities are shown with their own digits (0.84, never rounded to 0.8).
    return {"number": value, "digits": 6}


def first_and_last(scores: np.ndarray, sessions: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Intake score, latest score, the latest score's session, and count of valid scores.

    The session is the latest valid score's entry in ``sessions`` (the episode's
    treatment session number, :mod:`outcome.services.sessions`); the intake is the first
    valid score, so a series that starts with unusable forms is not mistaken for one
    already under way.
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
    sessions = np.broadcast_to(np.asarray(sessions), scores.shape)
    session = np.where(has, sessions[rows, last_col], 0).astype(np.int64)
    return intake, latest, session, count


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
    rule_source: Message | None = None

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
        # "since intake" needs two scores: a measure first answered at session 5 has its
        # one score there, not a second one "at intake".
        since = t > 1 and int(self.count[i]) > 1
        head = Message("progress.head_since_intake" if since else "progress.head",
                       {"colour": Message(f"colour.{colour}"), "instrument": ins.short_name,
                        "observed": xt, "session": t, **({"intake": x0} if since else {})})
        if not np.isfinite(xt):
            head = Message("progress.head_no_score", {"colour": Message(f"colour.{colour}"),
                                                      "instrument": ins.short_name})
        rule = self.rule_source or Message("reliable_change.not_defined")
        reason = self.colours.reason[i]
        if reason == "reliable deterioration since intake" and self.rule is not None:
            numbers["threshold"] = self.rule.threshold
            body = Message("progress.deterioration", {"points": abs(xt - x0), "rule": rule})
        elif reason == "in the functional range" and ins.cutoff is not None:
            numbers["cutoff"] = ins.cutoff.value
            body = Message("progress.functional_range",
                           {"side": _side(ins.cutoff.clinical_side), "cutoff": ins.cutoff.value})
        elif self.colours.method == "empirical" and np.isfinite(self.colours.percentile[i]):
            p = float(self.colours.percentile[i])
            expected = float(self.colours.expected[i])
            numbers.update(expected=expected, percentile=p,
                           green_max=self.settings.green_max,
                           yellow_max=self.settings.yellow_max,
                           sample_size=self.model.n_episodes if self.model else None)
            assert self.model is not None
            stratum = self.model.stratum_range(x0, t)
            fit = (Message("progress.fit.imported", {"source": self.model.source,
                                                     "episodes": self.model.n_episodes})
                   if self.model.source else
                   Message("progress.fit.clinic", {"episodes": self.model.n_episodes}))
            numbers["fit_source"] = self.model.source
            if stratum is None:
                body = Message("progress.expected_pooled", {
                    "expected": expected, "intake": x0, "percentile": _percent(p),
                    "green_max": _percent(self.settings.green_max),
                    "yellow_max": _percent(self.settings.yellow_max), "fit": fit})
            else:
                numbers.update(stratum_low=stratum[0], stratum_high=stratum[1],
                               stratum_residuals=stratum[2])
                body = Message("progress.expected_stratum", {
                    "expected": expected, "intake": x0, "percentile": _percent(p),
                    "low": stratum[0], "high": stratum[1],
                    "green_max": _percent(self.settings.green_max),
                    "yellow_max": _percent(self.settings.yellow_max), "fit": fit})
        elif reason == "little improvement by this session" and self.rule is not None:
            numbers.update(threshold=self.rule.threshold,
                           fraction=self.settings.rational_fraction)
            gain = ins.d * (xt - x0)
            moved = (Message("progress.moved.improved", {"points": gain}) if gain > 0 else
                     Message("progress.moved.unchanged") if gain == 0 else
                     Message("progress.moved.worse", {"points": -gain}))
            # "Still in the clinical range" only when the intake was in it too.
            cutoff = ins.cutoff
            body = Message(
                "progress.little_improvement_no_cutoff" if cutoff is None else
                "progress.little_improvement" if cutoff.is_clinical(x0) else
                "progress.little_improvement_now_clinical", {
                "moved": moved,
                "expected_gain": self.settings.rational_fraction * self.rule.threshold,
                "fraction": _percent(self.settings.rational_fraction),
                "threshold": self.rule.threshold})
        elif reason == "no reliable improvement by this session" and self.rule is not None:
            numbers.update(threshold=self.rule.threshold,
                           red_session=self.settings.rational_red_session)
            gain = ins.d * (xt - x0)
            moved = (Message("progress.moved.improved", {"points": gain}) if gain > 0 else
                     Message("progress.moved.unchanged") if gain == 0 else
                     Message("progress.moved.worse", {"points": -gain}))
            body = Message("progress.no_reliable_improvement", {
                "moved": moved, "rule": rule,
                "red_session": self.settings.rational_red_session})
        elif reason == "no reliable-change threshold yet":
            body = Message("progress.no_threshold")
        elif (reason == "first session: no colour yet" and colour == "white"
              and ins.cutoff is not None):
            body = Message("progress.first_session_functional",
                           {"side": _side(ins.cutoff.clinical_side), "cutoff": ins.cutoff.value})
        elif reason == "first session: no colour yet":
            body = Message("progress.first_session")
        elif reason == "no valid score":
            body = Message("progress.no_valid_score")
        else:
            body = Message("progress.on_track")
        if self.colours.method == "rational":
            # Said once above a list (rule_based_notice), not in every row.
            numbers.update(episodes_available=self.model.n_episodes if self.model else 0,
                           episodes_needed=self.settings.min_episodes)
        message = Message("progress.explanation", {"head": head, "body": body})
        return Explanation("progress", colour, f"progress.{reason.replace(' ', '_')}",
                           message, numbers)

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
        params: dict[str, Any] = {
            "category": Message(f"change.category.{label}"), "instrument": ins.short_name,
            "intake": x0, "observed": xt, "change": {"signed": xt - x0},
            "rule": self.rule_source or Message("reliable_change.not_defined")}
        if ins.cutoff is not None:
            params.update(side=_side(ins.cutoff.clinical_side), cutoff=ins.cutoff.value)
        return Explanation("change", label, f"change.{label}",
                           Message("change.explanation_cutoff" if ins.cutoff is not None
                                   else "change.explanation", params), numbers)


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
                          model, settings,
                          reliable_change_source(instrument, intake_sd, n_intake))


def rule_based_notice(instrument_short_name: str, available: int, needed: int) -> Message:
    """The one notice above a list whose colours for a measure come from rational rules
    (domain.md section 4: said once, not in every row)."""
    return Message("progress.rule_based_notice", {"instrument": instrument_short_name,
                                                  "available": available, "needed": needed})


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
        """Every rupture and possible rupture of episode ``i``, oldest first.

        A rupture's level is its repair status ("open", "repaired", "unrepaired"); a
        possible rupture's level is "possible" (shown, never alerted), its status in
        ``numbers["status"]``.
        """
        r, ins = self.result, self.instrument
        out = []
        for col in np.flatnonzero(r.start[i]):
            a = float(r.scores[i, col])
            session = int(self.sessions[i, col])
            mean = r.personal_mean[i, col]
            sd = r.personal_sd_used[i, col]
            rules = [name for name, flags in (("absolute", r.absolute), ("drop", r.drop),
                                              ("possible_rupture", r.possible),
                                              ("rupture", r.rupture),
                                              ("discrepancy", r.discrepancy)) if flags[i, col]]
            kind = KINDS[int(r.kind[i, col])]
            status = int(r.status[i, col])
            numbers: dict[str, Any] = {"instrument": ins.id, "session": session,
                                       "observed": a, "rules": rules, "kind": kind,
                                       "status": STATUSES[status],
                                       "personal_mean": None if np.isnan(mean) else float(mean),
                                       "personal_sd": None if np.isnan(sd) else float(sd),
                                       "cutoff": ins.cutoff.value if ins.cutoff else None}
            clauses = [Message("alliance.head", {
                "kind": Message(f"alliance.kind.{kind}"), "session": session,
                "instrument": ins.short_name, "observed": a})]
            if not np.isnan(mean) and float(mean) > a:  # "below" only when it is
                clauses.append(Message("alliance.below_mean",
                                       {"difference": float(mean) - a, "mean": float(mean)}))
            if "possible_rupture" in rules:
                own = float(r.personal_sd[i, col])
                floored = np.isnan(own) or own < sd
                clauses.append(Message("alliance.beyond_floor" if floored else
                                       "alliance.beyond_sd",
                                       {"k": 2 if "rupture" in rules else 1, "sd": float(sd)}))
            if "drop" in rules and col > 0:
                previous = float(r.scores[i, col - 1])
                clauses.append(Message("alliance.drop",
                                       {"difference": previous - a, "previous": previous}))
            if "absolute" in rules and ins.cutoff is not None:
                clauses.append(Message("alliance.below_cutoff", {"cutoff": ins.cutoff.value}))
            if "discrepancy" in rules:
                therapist = float(r.therapist[i, col])
                numbers["therapist"] = therapist
                clauses.append(Message("alliance.discrepancy",
                                       {"difference": therapist - a, "therapist": therapist}))
            if status == REPAIRED:
                at = int(r.repaired_at[i, col])
                state = Message("alliance.repaired", {"session": int(self.sessions[i, at]),
                                                      "score": float(r.scores[i, at])})
                numbers["repaired_session"] = int(self.sessions[i, at])
            elif kind == "possible_rupture":
                state = Message("alliance.possible_unrepaired" if status == UNREPAIRED
                                else "alliance.possible_open")
            elif status == UNREPAIRED:
                state = Message("alliance.unrepaired")
            else:
                state = Message("alliance.open")
            level = "possible" if kind == "possible_rupture" else {
                OPEN: "open", REPAIRED: "repaired", UNREPAIRED: "unrepaired"}[status]
            out.append(Explanation("rupture", level, f"alliance.{rules[0]}",
                                   Message("alliance.explanation",
                                           {"clauses": clauses, "state": state}), numbers))
        return out


def alliance_settings(instrument: Instrument, **overrides: Any) -> AllianceSettings:
    """The instrument's rupture settings: its drop threshold, its SEM where published,
    and the pre-fit floor of s (domain.md section 5); ``overrides`` from the clinic."""
    values: dict[str, Any] = {
        "drop_points": instrument.rupture_drop_points,
        "sem": standard_error(instrument.alliance_sd, instrument.alliance_reliability),
        "min_sd": default_min_sd(*instrument.primary_range)}
    values.update(overrides)
    return AllianceSettings(**values)


def alliance_signals(instrument: Instrument, scores: np.ndarray, sessions: np.ndarray, *,
                     settings: AllianceSettings | None = None,
                     therapist_scores: np.ndarray | None = None) -> AllianceSignals:
    """Ruptures and repair for many episodes of one alliance instrument."""
    settings = settings or alliance_settings(instrument)
    result = detect_ruptures(scores, cutoff=instrument.cutoff, settings=settings,
                             therapist_scores=therapist_scores)
    return AllianceSignals(instrument, result, np.asarray(sessions))


def explain_critical(instrument: Instrument, item_id: str, value: float) -> Explanation:
    """A critical answer: the definition's message to the clinician, and the answer."""
    critical = next(c for c in instrument.critical_items if c.item == item_id)
    item = instrument.item(item_id)
    label = next((o.label for o in item.options if o.value == value), None)
    params: dict[str, Any] = {"clinician_message": critical.clinician_message,
                              "answer": value}
    message = (Message("critical.answer_labelled", {**params, "label": label}) if label
               else Message("critical.answer", params))
    return Explanation("critical", critical.urgency, "critical.answer", message,
                       {"instrument": instrument.id, "item": item_id, "observed": value,
                        "threshold": critical.threshold})


def explain_unanswered_critical(instrument: Instrument, item_id: str) -> Explanation:
    """An unanswered critical item: flagged, never read as 0.

    The item is named as the form shows it, by its number and its own (verbatim) text, or
    by its number alone when the wording is not installed; never by its internal id.
    """
    return Explanation("critical", "high", "critical.unanswered",
                       Message("critical.unanswered_item",
                               {"instrument": instrument.short_name,
                                "item": item_name(instrument, item_id)}),
                       {"instrument": instrument.id, "item": item_id})


def item_name(instrument: Instrument, item_id: str) -> Message:
    """How a reader knows item ``item_id``: "item 9 (Thoughts that ...)" (its position
    on the form, from 1, and its text from the definition)."""
    number = next(n for n, item in enumerate(instrument.items, start=1) if item.id == item_id)
    text = instrument.item(item_id).text
    return (Message("item.numbered_text", {"number": number, "text": text}) if text
            else Message("item.numbered", {"number": number}))


__all__ = ["CATEGORIES", "COLOURS", "AllianceSignals", "Explanation", "OutcomeSignals",
           "alliance_settings", "alliance_signals", "explain_critical",
           "explain_unanswered_critical", "first_and_last", "item_name", "outcome_signals",
           "reliable_change_rule", "reliable_change_source", "rule_based_notice"]
