"""A support check's domains, scored against their cutoffs, and the suggested next steps.

Pure: the rules come from ``questionnaires/support/rules.yaml`` (loaded by
:func:`questionnaires.support.load_rules`), the scores from the caller. Sources:
``../shared/design/support.md`` ("The four domains", "From results to suggested next
steps") and each rule's own ``source`` line.

INTERFACE (issue 19): implemented by the "support-core" helper.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from outcome.core.messages import Message

# The domains in the order the check asks them and the results list them.
DOMAINS = ("alliance", "motivation", "social_support", "life_events")
# Two more headings of suggestions: when none of the four explains the signal, and when a
# critical item was endorsed (support.md, "The four domains").
EXTRA_DOMAINS = ("formulation", "risk")


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
    answered). ``explanation`` says the rule, the numbers and the source in a message.
    """

    domain: str
    instrument_id: str | None
    score: float | None
    flagged: bool | None
    explanation: Message
    source: str
    reused: bool = False  # the alliance score came from the episode's own series
    numbers: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckReading:
    """A whole check: the four domains, the extra headings that apply, and suggestions."""

    results: tuple[DomainResult, ...]
    suggestions: tuple[Suggestion, ...]   # for flagged domains, "formulation" when none
                                          # is flagged, "risk" when a critical item was
    none_flagged: bool


def read_check(rules: Any, scores: Mapping[str, Mapping[str, Any]], *,
               alliance: Mapping[str, Any] | None, critical: bool) -> CheckReading:
    """Score each domain against its rule and gather the suggestions.

    ``scores``: instrument id -> that administration's stored scores (``{"total": ...,
    ...}``) for the check's instruments. ``alliance``: the reused alliance reading
    (``{"instrument", "score", "rupture": bool, ...}``) when the check did not ask it.
    ``critical``: a critical item is endorsed on the episode (open alert) -> "risk".
    """
    raise NotImplementedError
