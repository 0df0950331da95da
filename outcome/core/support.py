"""A support check's domains, scored against their cutoffs, and the suggested next steps.

Pure: the rules come from ``questionnaires/support/rules.yaml`` (loaded by
:func:`questionnaires.support.load_rules`), the scores from the caller. Sources:
``../shared/design/support.md`` ("The four domains", "From results to suggested next
steps") and each rule's own ``source`` line.

Two functions: :func:`check_battery` chooses which instrument asks each domain (the
clinic's own alliance measure, else the rules' candidates in preference order, within
the item budget), and :func:`read_check` scores each domain against its rule, explains it
as a message (rule, numbers, source; "unverified" where the cutoff is a project
default), and gathers the suggestions: those of each flagged domain, "formulation" when
none of the four is flagged (at least one measured), and "risk" when a critical item is
endorsed on the episode.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any

from outcome.core.messages import Message

if TYPE_CHECKING:
    from outcome.core.instruments import Cutoff
    from questionnaires.support import DomainRules
    from questionnaires.support import MeasureRule
    from questionnaires.support import SupportRules

# The domains in the order the check asks them and the results list them.
DOMAINS = ("alliance", "motivation", "social_support", "life_events")
# Two more headings of suggestions: when none of the four explains the signal, and when a
# critical item was endorsed (support.md, "The four domains").
EXTRA_DOMAINS = ("formulation", "risk")
# Message ids of the comparison words, by operator.
RELATIONS = {"<=": "support.relation.le", "<": "support.relation.lt",
             ">=": "support.relation.ge", ">": "support.relation.gt"}


@dataclass(frozen=True)
class Suggestion:
    """One suggested next step for a flagged domain, with the source it comes from."""

    id: str            # stable, e.g. "alliance.metacommunication"
    domain: str
    text: Message      # rendered in the reader's language
    source: str        # e.g. "Safran & Muran 2000"


@dataclass(frozen=True)
class DomainResult:
    """One domain of a check: its measure, score, cutoff and whether it is flagged.

    ``flagged`` is None when the domain was not measured (no available measure, or not
    answered) or no rule decides it. ``explanation`` says the rule, the numbers and the
    source in a message.
    """

    domain: str
    instrument_id: str | None
    score: float | None
    flagged: bool | None
    explanation: Message
    source: str
    reused: bool = False  # the alliance score came from the episode's own series
    numbers: dict[str, Any] = field(default_factory=dict)
    verified: bool = False  # the deciding cutoff was verified in two public sources


@dataclass(frozen=True)
class CheckReading:
    """A whole check: the four domains, the extra headings that apply, and suggestions."""

    results: tuple[DomainResult, ...]
    suggestions: tuple[Suggestion, ...]   # "risk" first when a critical item is endorsed,
                                          # then each flagged domain's in domain order,
                                          # then "formulation" when none is flagged
    none_flagged: bool                    # at least one domain measured, none flagged
    risk: bool = False

    def result(self, domain: str) -> DomainResult:
        """The result of ``domain`` (one of :data:`DOMAINS`)."""
        return next(r for r in self.results if r.domain == domain)

    @property
    def flagged_domains(self) -> tuple[str, ...]:
        """The flagged domains in domain order."""
        return tuple(r.domain for r in self.results if r.flagged)


# --- choosing the battery ------------------------------------------------------------------


def check_battery(rules: SupportRules, available: set[str] | frozenset[str],
                  alliance_instrument: str | None, reuse_alliance: bool,
                  item_counts: Mapping[str, int] | None = None) -> list[dict[str, str]]:
    """The instruments a support check asks: ``[{"domain", "instrument"}]`` in domain order.

    ``available``: instrument ids the clinic can ask now (wording installed, licence
    attested). Alliance: omitted when ``reuse_alliance`` (the episode's own recent series
    answers it); otherwise the clinic's configured ``alliance_instrument`` when
    available, else the first available alliance candidate of the rules; omitted when
    none is available. Every other domain: its first available candidate in the rules'
    preference order; a domain with none is left out (its result says "not measured").
    ``item_counts`` (instrument id -> number of items), when given, keeps the check
    within ``rules.max_items`` (support.md: about 20 items at most) by switching later
    domains to a shorter available candidate while the total is over the budget.
    """
    chosen: dict[str, str] = {}
    for domain in DOMAINS:
        if domain not in rules.domains:
            continue
        candidates = [i for i in rules.domains[domain].instruments if i in available]
        if domain == "alliance":
            if reuse_alliance:
                continue
            if alliance_instrument is not None and alliance_instrument in available:
                chosen[domain] = alliance_instrument
                continue
        if candidates:
            chosen[domain] = candidates[0]
    if item_counts is not None:
        _fit_budget(rules, available, chosen, item_counts)
    return [{"domain": d, "instrument": chosen[d]} for d in DOMAINS if d in chosen]


def _fit_budget(rules: SupportRules, available: Iterable[str], chosen: dict[str, str],
                item_counts: Mapping[str, int]) -> None:
    def total() -> int:
        return sum(item_counts.get(i, 0) for i in chosen.values())

    usable = set(available)
    for domain in reversed(DOMAINS[1:]):  # the alliance measure is the clinic's own
        if total() <= rules.max_items:
            return
        if domain not in chosen:
            continue
        shorter = [i for i in rules.domains[domain].instruments
                   if i in usable and item_counts.get(i, 0) < item_counts.get(chosen[domain], 0)]
        if shorter:
            chosen[domain] = min(shorter, key=lambda i: item_counts.get(i, 0))


# --- reading a check ---------------------------------------------------------------------


def _total(entry: Mapping[str, Any] | None) -> float | None:
    if not entry:
        return None
    value = entry.get("total")
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _source(text: str, verified: bool) -> Any:
    return text if verified else Message("support.source.unverified", {"source": text})


def _verdict(flagged: bool | None, parts: list[Message]) -> Message:
    kind = {True: "flagged", False: "not_flagged", None: "undecided"}[flagged]
    return Message(f"support.verdict.{kind}", {"parts": parts})


def _rule_part(instrument: Any, score: float, op: str, value: float, source: str,
               verified: bool, met: bool) -> Message:
    return Message("support.rule.met" if met else "support.rule.not_met", {
        "instrument": instrument, "score": score,
        "relation": Message(RELATIONS[op]), "value": value,
        "source": _source(source, verified)})


def _not_measured(domain: str, candidates: Sequence[str],
                  battery: Sequence[Mapping[str, Any]] | None, names: Mapping[str, str]
                  ) -> DomainResult:
    asked = None if battery is None else next(
        (b.get("instrument") for b in battery if b.get("domain") == domain), None)
    if asked is not None:
        message = Message("support.result.not_answered",
                          {"instrument": names.get(asked, asked)})
    elif battery is not None:
        message = Message("support.result.no_measure")
    else:
        message = Message("support.result.no_answers")
    return DomainResult(domain=domain, instrument_id=asked, score=None, flagged=None,
                        explanation=message, source="",
                        numbers={"candidates": list(candidates)})


def _measured(domain_rules: DomainRules, scores: Mapping[str, Mapping[str, Any]]
              ) -> tuple[MeasureRule, float] | tuple[None, None]:
    for measure in domain_rules.measures:
        total = _total(scores.get(measure.instrument))
        if total is not None:
            return measure, total
    return None, None


def _domain(domain_rules: DomainRules, scores: Mapping[str, Mapping[str, Any]],
            battery: Sequence[Mapping[str, Any]] | None, names: Mapping[str, str]
            ) -> DomainResult:
    domain = domain_rules.domain
    measure, score = _measured(domain_rules, scores)
    if measure is None or score is None:
        return _not_measured(domain, domain_rules.instruments, battery, names)
    numbers: dict[str, Any] = {"score": score}
    shown = names.get(measure.instrument, measure.instrument)
    if measure.flag is None:
        part = Message("support.rule.none", {
            "instrument": shown, "score": score,
            "source": _source(measure.source, measure.verified)})
        return DomainResult(domain=domain, instrument_id=measure.instrument, score=score,
                            flagged=None, explanation=_verdict(None, [part]),
                            source=measure.source, numbers=numbers,
                            verified=measure.verified)
    flagged = measure.flag.flags(score)
    numbers.update(op=measure.flag.op, value=measure.flag.value)
    part = _rule_part(shown, score, measure.flag.op, measure.flag.value,
                      measure.source, measure.verified, flagged)
    return DomainResult(domain=domain, instrument_id=measure.instrument, score=score,
                        flagged=flagged, explanation=_verdict(flagged, [part]),
                        source=measure.source, numbers=numbers, verified=measure.verified)


def _alliance(domain_rules: DomainRules, scores: Mapping[str, Mapping[str, Any]],
              alliance: Mapping[str, Any] | None, alliance_instrument: str | None,
              cutoffs: Mapping[str, Cutoff] | None,
              battery: Sequence[Mapping[str, Any]] | None, names: Mapping[str, str]
              ) -> DomainResult:
    candidates = [alliance_instrument] if alliance_instrument else []
    candidates += [i for i in domain_rules.instruments if i not in candidates]
    asked = next((i for i in candidates if _total(scores.get(i)) is not None), None)
    # Reused: the domain's score is the episode's own (no alliance answered in the check,
    # a recent series score given); a rupture status alone is not a reused score.
    reused = asked is None and alliance is not None and alliance.get("score") is not None
    instrument = asked if asked is not None else (alliance or {}).get("instrument")
    score = _total(scores.get(asked)) if asked is not None else _total(
        {"total": (alliance or {}).get("score")})
    rupture = (alliance or {}).get("rupture")
    rupture = rupture if isinstance(rupture, bool) else None
    if instrument is None or (score is None and rupture is None):
        return _not_measured("alliance", candidates, battery, names)

    parts: list[Message] = []
    verdicts: list[bool] = []
    sources: list[str] = []
    verified: list[bool] = []
    numbers: dict[str, Any] = {"score": score, "rupture": rupture}
    shown: Any = names.get(instrument, instrument)
    if reused:
        shown = Message("support.alliance.series", {"instrument": shown})
    measure = domain_rules.measure(instrument)
    cutoff = cutoffs.get(instrument) if cutoffs else None
    rule: tuple[str, float, str, bool] | None = None
    if measure is not None and measure.flag is not None:
        rule = (measure.flag.op, measure.flag.value, measure.source, measure.verified)
    elif cutoff is not None:
        rule = (cutoff.clinical_side, float(cutoff.value),
                cutoff.source or f"the {instrument} definition's cutoff", False)
    if score is not None and rule is not None:
        op, value, source, is_verified = rule
        met = _compare(op, score, value)
        parts.append(_rule_part(shown, score, op, value, source, is_verified, met))
        verdicts.append(met)
        sources.append(source)
        verified.append(is_verified)
        numbers.update(op=op, value=value)
    elif score is not None and measure is not None:
        parts.append(Message("support.rule.none", {
            "instrument": shown, "score": score,
            "source": _source(measure.source, measure.verified)}))
    if rupture is not None:
        series = (alliance or {}).get("instrument") or instrument
        source = domain_rules.rupture_source or "the engine's rupture rules"
        parts.append(Message("support.alliance.rupture" if rupture else
                             "support.alliance.no_rupture", {
                                 "instrument": names.get(series, series),
                                 "source": _source(source, domain_rules.rupture_verified)}))
        verdicts.append(rupture)
        sources.append(source)
        verified.append(domain_rules.rupture_verified)
    flagged: bool | None = any(verdicts) if verdicts else None
    return DomainResult(domain="alliance", instrument_id=instrument, score=score,
                        flagged=flagged, explanation=_verdict(flagged, parts),
                        source="; ".join(sources), reused=reused, numbers=numbers,
                        verified=bool(verified) and all(verified))


def _compare(op: str, score: float, value: float) -> bool:
    return {"<=": score <= value, "<": score < value, ">=": score >= value,
            ">": score > value}[op]


def _suggestions(rules: SupportRules, heading: str) -> list[Suggestion]:
    return [Suggestion(id=s.id, domain=heading,
                       text=Message("support.suggestion", {"text": {"texts": dict(s.text)}}),
                       source=s.source)
            for s in rules.suggestions.get(heading, ())]


def read_check(rules: SupportRules, scores: Mapping[str, Mapping[str, Any]], *,
               alliance: Mapping[str, Any] | None, critical: bool,
               alliance_instrument: str | None = None,
               cutoffs: Mapping[str, Cutoff] | None = None,
               battery: Sequence[Mapping[str, Any]] | None = None,
               names: Mapping[str, str] | None = None) -> CheckReading:
    """Score each domain against its rule and gather the suggestions.

    ``scores``: instrument id -> that administration's stored scores (``{"total": ...,
    ...}``) for the check's instruments. A domain is read from its first candidate (rules
    order) with a total; its rule compares that total with the rule's value (e.g. OSSS-3
    total <= 8 = poor social support, Kocalevent et al. 2018; LTE >= 1 event, project
    default). ``alliance``: the episode's alliance reading (``{"instrument", "score",
    "rupture": bool, ...}``); when the check did not ask the alliance (or it went
    unanswered) and ``score`` is given, it is the domain's score (``reused``); its
    ``rupture`` (an unrepaired rupture or alliance concern, domain.md section 5) flags
    the domain whenever true, asked or not (``score`` None: the rupture status alone).
    An asked alliance measure is judged by the rules' cutoff for it, else by its
    definition's own cutoff from ``cutoffs`` (instrument id -> Cutoff; the SRS-type's
    < 36), and by the rupture status. ``alliance_instrument``: the clinic's configured
    alliance measure (tried first). ``critical``: a critical item is endorsed on the
    episode -> "risk". ``battery``: what :func:`check_battery` chose, to tell "no
    measure available" from "not answered" in an unmeasured domain's message.
    ``names``: instrument id -> its short name, as the explanations name each measure
    (default: the id).

    A domain is flagged True/False, or None when not measured or no rule decides it.
    Suggestions: "risk" first when ``critical``, then each flagged domain's in domain
    order, then "formulation" when none of the four is flagged and at least one was
    measured (support.md, "From results to suggested next steps").
    """
    results: list[DomainResult] = []
    for domain in DOMAINS:
        domain_rules = rules.domains[domain]
        if domain == "alliance":
            results.append(_alliance(domain_rules, scores, alliance, alliance_instrument,
                                     cutoffs, battery, names or {}))
        else:
            results.append(_domain(domain_rules, scores, battery, names or {}))
    decided = [r for r in results if r.flagged is not None]
    none_flagged = bool(decided) and not any(r.flagged for r in decided)
    suggestions: list[Suggestion] = []
    if critical:
        suggestions += _suggestions(rules, "risk")
    for result in results:
        if result.flagged:
            suggestions += _suggestions(rules, result.domain)
    if none_flagged:
        suggestions += _suggestions(rules, "formulation")
    return CheckReading(results=tuple(results), suggestions=tuple(suggestions),
                        none_flagged=none_flagged, risk=critical)
