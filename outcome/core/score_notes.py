"""What a reader must be told beside a score, as messages (:mod:`outcome.core.messages`).

Computed from an administration's stored ``scores`` (:meth:`outcome.core.scoring.Score.
as_json`), so that the client page, the progress PDF and the API say the same thing:

- each count rule of the instrument in its three states (domain.md section 2; PCL-5
  "Probable PTSD by the DSM-5 rule: yes", "no", or "cannot be determined (3 items blank)"
  when blank items could change it). A rule is never shown as "no" because of blanks;
- a critical item left blank (domain.md section 6: never read as 0). When the total was
  prorated over it, the note says so: "prorated; item 9 (the safety question)
  unanswered". The rule (docs/signals.md, "A blank critical item"): the total is
  prorated as the definition allows, because refusing it would lose the depression score
  of the clients who skip the most often skipped item; but it is never shown without
  this note, and the critical-unanswered alert is raised as for any blank critical item
  (:func:`outcome.core.signals.explain_unanswered_critical`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from outcome.core.instruments import Instrument
from outcome.core.messages import Message


def item_number(instrument: Instrument, item_id: str) -> int:
    """The item's number on the form (1-based, in definition order: PHQ-9 item 9)."""
    return next(n for n, item in enumerate(instrument.items, start=1) if item.id == item_id)


def rule_note(label: str, state: bool | None, n_blank: int) -> Message:
    """A count rule's state: yes, no, or cannot be determined with ``n_blank`` blanks."""
    if state is None:
        return Message("score.rule_undetermined", {"rule": label, "blank": n_blank})
    return Message("score.rule_met" if state else "score.rule_not_met", {"rule": label})


def critical_blank_notes(instrument: Instrument, scores: Mapping[str, Any]) -> list[Message]:
    """One note per critical item left blank; "prorated; ..." when the total was prorated."""
    known = {c.item for c in instrument.critical_items}
    prorated = bool(scores.get("prorated")) and bool(scores.get("valid"))
    return [Message("score.prorated_critical_blank" if prorated else "score.critical_blank",
                    {"number": item_number(instrument, item_id)})
            for item_id in scores.get("critical_unanswered", []) if item_id in known]


def score_notes(instrument: Instrument, scores: Mapping[str, Any] | None) -> list[Message]:
    """Every note for an administration with stored ``scores``: critical blanks first,
    then each rule of the instrument that the scores carry (see the module doc)."""
    if not scores:
        return []
    notes = critical_blank_notes(instrument, scores)
    rules = scores.get("rules") or {}
    for rule in instrument.rules:
        if rule.id in rules:
            notes.append(rule_note(rule.label, rules[rule.id], int(scores.get("n_missing", 0))))
    return notes


__all__ = ["critical_blank_notes", "item_number", "rule_note", "score_notes"]
