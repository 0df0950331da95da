"""The sentences that explain a signal, as message ids with English templates.

The core never builds an explanation's words: it returns a message id and its
parameters (:class:`Message`), and a renderer outside the core
(:mod:`outcome.services.explanations`) turns them into text in the reader's language
with Babel's catalogues. This module is the catalogue of every id the core can produce
and its English template; the Russian wording is in ``outcome/translations``.

``pgettext`` and ``npgettext`` below are no-op markers, not translations: they carry
Babel's default keyword names so that ``pybabel extract`` finds every template (the
message id is the ``msgctxt``, the English template the ``msgid``) without extra
``-k`` options. Templates use Python's ``%(name)s`` placeholders.

Parameter values are plain JSON, so a stored explanation renders years later:

- a string is shown verbatim (an instrument's short name, a citation, a clinician
  message from a definition: wording from definitions is never machine-translated);
- a number is shown with at most one decimal (``None`` as "-");
- ``{"number": x, "digits": n}`` is shown with at most ``n`` decimals (reliabilities);
- ``{"signed": x}`` is shown with its sign, "+" included;
- ``{"message": id, "params": {...}}`` is another message, rendered in the same language;
- a list holds messages rendered and joined by :data:`SEPARATORS` (default "; ");
- ``{"texts": {"en": ..., "ru": ...}}`` is data's own wording in each language (a support
  check's suggestion from its rules file): the reader's language, else English.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from typing import Any


@dataclass(frozen=True)
class Template:
    """One message's English wording; ``count`` names the parameter that picks a plural."""

    id: str
    singular: str
    plural: str | None = None
    count: str | None = None


@dataclass(frozen=True)
class Message:
    """A message id and its parameters: an explanation as data, in no language yet."""

    id: str
    params: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """``{"message": id, "params": {...}}``, nested messages included."""
        return {"message": self.id, "params": {k: _as_json(v) for k, v in self.params.items()}}


def _as_json(value: Any) -> Any:
    if isinstance(value, Message):
        return value.as_json()
    if isinstance(value, list | tuple):
        return [_as_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_json(v) for k, v in value.items()}
    return value


def pgettext(context: str, message: str) -> Template:
    """Extraction marker: the template ``message`` of message id ``context``."""
    return Template(context, message)


def npgettext(context: str, singular: str, plural: str, count: str) -> Template:
    """Extraction marker: a template with a plural picked by parameter ``count``."""
    return Template(context, singular, plural, count)


_TEMPLATES = [
    # Words that start a sentence.
    pgettext("colour.red", "Red"),
    pgettext("colour.yellow", "Yellow"),
    pgettext("colour.green", "Green"),
    pgettext("colour.white", "White"),
    pgettext("colour.grey", "Grey"),
    pgettext("change.category.recovered", "Recovered"),
    # User-facing names of the change categories (domain.md section 3); the keys stay.
    pgettext("change.category.improved", "Reliably improved"),
    pgettext("change.category.unchanged", "No reliable change"),
    pgettext("change.category.deteriorated", "Reliably deteriorated"),
    pgettext("change.category.harmed", "Reliably deteriorated into the clinical range"),
    pgettext("alliance.kind.rupture", "Rupture"),
    pgettext("alliance.kind.possible_rupture", "Possible rupture"),
    pgettext("alliance.kind.concern", "Alliance concern"),
    # Where an instrument's reliable-change threshold comes from.
    npgettext("reliable_change.points", "%(points)s point, %(source)s",
              "%(points)s points, %(source)s", "points"),
    npgettext("reliable_change.points_definition",
              "%(points)s point, from the instrument's definition",
              "%(points)s points, from the instrument's definition", "points"),
    pgettext("reliable_change.definition_sd",
             "RCI from the definition's SD %(sd)s and reliability %(reliability)s"),
    pgettext("reliable_change.intake_sd",
             "RCI from the clinic's intake SD %(sd)s (n = %(n)s) and reliability "
             "%(reliability)s"),
    npgettext("reliable_change.definition_sd_points",
              "more than %(points)s point (RCI from the definition's SD %(sd)s and "
              "reliability %(reliability)s)",
              "more than %(points)s points (RCI from the definition's SD %(sd)s and "
              "reliability %(reliability)s)", "points"),
    npgettext("reliable_change.intake_sd_points",
              "more than %(points)s point (RCI from the clinic's intake SD %(sd)s, n = %(n)s, "
              "and reliability %(reliability)s)",
              "more than %(points)s points (RCI from the clinic's intake SD %(sd)s, "
              "n = %(n)s, and reliability %(reliability)s)", "points"),
    pgettext("reliable_change.unverified", "%(source)s (unverified)"),
    pgettext("reliable_change.not_defined", "not defined"),
    # Progress: "<head>: <body>", with a note while colours are rule-based.
    pgettext("progress.explanation", "%(head)s: %(body)s"),
    npgettext("progress.explanation_rule_based",
              "%(head)s: %(body)s Rule-based colours: the clinic has %(available)s of the "
              "%(needed)s completed episode needed for expected recovery curves.",
              "%(head)s: %(body)s Rule-based colours: the clinic has %(available)s of the "
              "%(needed)s completed episodes needed for expected recovery curves.",
              "needed"),
    pgettext("progress.head", "%(colour)s: %(instrument)s %(observed)s at session %(session)s"),
    pgettext("progress.head_no_score", "%(colour)s: %(instrument)s"),
    pgettext("progress.head_since_intake",
             "%(colour)s: %(instrument)s %(observed)s at session %(session)s, %(intake)s at "
             "intake"),
    npgettext("progress.deterioration",
              "worse by %(points)s point; reliable change is %(rule)s.",
              "worse by %(points)s points; reliable change is %(rule)s.", "points"),
    pgettext("progress.functional_range",
             "in the functional range (clinical range %(side)s %(cutoff)s); consider "
             "maintenance or ending."),
    npgettext("progress.expected",
              "expected %(expected)s for someone starting at %(intake)s; this is worse than "
              "%(percentile)s %% of past clients at this session (yellow above %(green_max)s "
              "%%, red above %(yellow_max)s %%; curve from %(episodes)s completed episode).",
              "expected %(expected)s for someone starting at %(intake)s; this is worse than "
              "%(percentile)s %% of past clients at this session (yellow above %(green_max)s "
              "%%, red above %(yellow_max)s %%; curve from %(episodes)s completed episodes).",
              "episodes"),
    npgettext("progress.little_improvement",
              "still in the clinical range and %(moved)s; by this session an improvement of "
              "%(expected_gain)s point is expected (%(fraction)s %% of the reliable change of "
              "%(threshold)s).",
              "still in the clinical range and %(moved)s; by this session an improvement of "
              "%(expected_gain)s points is expected (%(fraction)s %% of the reliable change of "
              "%(threshold)s).", "expected_gain"),
    npgettext("progress.little_improvement_now_clinical",
              "in the clinical range now, though not at intake, and %(moved)s; by this "
              "session an improvement of %(expected_gain)s point is expected (%(fraction)s %% "
              "of the reliable change of %(threshold)s).",
              "in the clinical range now, though not at intake, and %(moved)s; by this "
              "session an improvement of %(expected_gain)s points is expected (%(fraction)s "
              "%% of the reliable change of %(threshold)s).", "expected_gain"),
    npgettext("progress.little_improvement_no_cutoff",
              "%(moved)s; by this session an improvement of %(expected_gain)s point is "
              "expected (%(fraction)s %% of the reliable change of %(threshold)s).",
              "%(moved)s; by this session an improvement of %(expected_gain)s points is "
              "expected (%(fraction)s %% of the reliable change of %(threshold)s).",
              "expected_gain"),
    npgettext("progress.moved.improved", "improved by %(points)s point",
              "improved by %(points)s points", "points"),
    pgettext("progress.moved.unchanged", "no better than at intake"),
    npgettext("progress.moved.worse", "worse by %(points)s point", "worse by %(points)s points",
              "points"),
    pgettext("progress.no_threshold",
             "progress cannot be judged yet: this measure has no reliable-change threshold "
             "until the clinic's intake SD is known (it is computed when the clinic's "
             "expected recovery curves are next refitted)."),
    pgettext("progress.first_session",
             "first measure of this episode; colours start at the second."),
    pgettext("progress.first_session_functional",
             "first measure of this episode, in the functional range (clinical range "
             "%(side)s %(cutoff)s)."),
    pgettext("progress.no_valid_score", "no valid score yet."),
    pgettext("progress.on_track", "on track."),
    # Change since intake.
    pgettext("change.explanation",
             "%(category)s: %(instrument)s from %(intake)s to %(observed)s (%(change)s); "
             "reliable change is %(rule)s."),
    pgettext("change.explanation_cutoff",
             "%(category)s: %(instrument)s from %(intake)s to %(observed)s (%(change)s); "
             "reliable change is %(rule)s; clinical range %(side)s %(cutoff)s."),
    # Alliance ruptures: clauses joined by "; ", then the state of repair.
    pgettext("alliance.explanation", "%(clauses)s. %(state)s"),
    pgettext("alliance.head", "%(kind)s at session %(session)s: %(instrument)s %(observed)s"),
    npgettext("alliance.below_mean", "%(difference)s point below the personal mean %(mean)s",
              "%(difference)s points below the personal mean %(mean)s", "difference"),
    npgettext("alliance.drop", "down %(difference)s point from %(previous)s last session",
              "down %(difference)s points from %(previous)s last session", "difference"),
    pgettext("alliance.below_cutoff", "below the cutoff of %(cutoff)s"),
    pgettext("alliance.repaired", "Repaired at session %(session)s (%(score)s)."),
    pgettext("alliance.unrepaired", "Not repaired: for the supervisor's attention."),
    pgettext("alliance.open", "Watch the next sessions for repair."),
    # Possible ruptures (a drop alone, or below mean - 1 SD): shown, never alerted.
    pgettext("alliance.possible_open", "Shown, not alerted: watch the next sessions."),
    pgettext("alliance.possible_unrepaired",
             "Not back to the usual level; shown, not alerted (not a rupture)."),
    pgettext("alliance.beyond_sd", "more than %(k)s x the client's own SD %(sd)s"),
    pgettext("alliance.beyond_floor",
             "more than %(k)s x %(sd)s (the least SD the rule uses; the client's own is "
             "smaller)"),
    pgettext("alliance.discrepancy",
             "the therapist rated the session %(difference)s higher (%(therapist)s)"),
    # Critical answers. The clinician message and option label are the definition's own.
    pgettext("critical.answer", "%(clinician_message)s Answer: %(answer)s."),
    pgettext("critical.answer_labelled",
             "%(clinician_message)s Answer: %(answer)s (%(label)s)."),
    pgettext("critical.answers", "%(answers)s"),
    # What a supervisor reads of a critical answer: that it was given, which item and how
    # urgent it is; never the answer (issue 16, finding 14).
    pgettext("critical.answered", "Critical item answered (%(urgency)s): %(instrument)s "
             "%(item)s."),
    pgettext("critical.urgency.urgent", "urgent"),
    pgettext("critical.urgency.high", "high priority"),
    # Stored before items were named by number (``item`` is then the item's id).
    pgettext("critical.unanswered",
             "%(instrument)s %(item)s (a safety question) was left unanswered; ask about it "
             "in session."),
    # An item named as the reader knows it: its number on the form, and its own text.
    pgettext("critical.unanswered_item",
             "%(instrument)s %(item)s, a safety question, was left unanswered; ask about it "
             "in session."),
    pgettext("item.numbered", "item %(number)s"),
    pgettext("item.numbered_text", "item %(number)s (%(text)s)"),
    # Notes beside a score (outcome.core.score_notes): a count rule's three states, and a
    # critical item left blank.
    pgettext("score.rule_met", "%(rule)s: yes"),
    pgettext("score.rule_not_met", "%(rule)s: no"),
    npgettext("score.rule_undetermined", "%(rule)s: cannot be determined (%(blank)s item blank)",
              "%(rule)s: cannot be determined (%(blank)s items blank)", "blank"),
    pgettext("score.prorated_critical_blank",
             "prorated; item %(number)s (the safety question) unanswered"),
    pgettext("score.critical_blank", "item %(number)s (the safety question) unanswered"),
    # Issue 15 (trajectory): bands by intake severity, the fit they come from, the
    # rational red rule, and the rule-based notice shown once above a list.
    pgettext("progress.expected_stratum",
             "expected %(expected)s for someone starting at %(intake)s; this is worse than "
             "%(percentile)s %% of past clients with an intake of %(low)s to %(high)s at this "
             "session (yellow above %(green_max)s %%, red above %(yellow_max)s %%; %(fit)s)."),
    pgettext("progress.expected_pooled",
             "expected %(expected)s for someone starting at %(intake)s; this is worse than "
             "%(percentile)s %% of past clients at this session (yellow above %(green_max)s "
             "%%, red above %(yellow_max)s %%; %(fit)s)."),
    npgettext("progress.fit.clinic", "clinic fit, n = %(episodes)s episode",
              "clinic fit, n = %(episodes)s episodes", "episodes"),
    npgettext("progress.fit.imported", "imported fit: %(source)s, n = %(episodes)s episode",
              "imported fit: %(source)s, n = %(episodes)s episodes", "episodes"),
    pgettext("progress.no_reliable_improvement",
             "still in the clinical range and %(moved)s: no reliable improvement by session "
             "%(red_session)s (reliable change is %(rule)s)."),
    pgettext("progress.rule_based_notice",
             "%(instrument)s colours are rule-based until the clinic has enough episodes with "
             "three or more measures for an expected recovery curve: %(available)s of "
             "%(needed)s."),
    # Severity bands, by the definition's label (outcome.core.severity), and a measure's
    # own count ("the 5th PHQ-9"; the ordinal is formatted per language).
    pgettext("severity.minimal", "minimal"),
    pgettext("severity.mild", "mild"),
    pgettext("severity.moderate", "moderate"),
    pgettext("severity.moderately_severe", "moderately severe"),
    pgettext("severity.severe", "severe"),
    pgettext("severity.likely_to_be_well", "likely to be well"),
    pgettext("severity.likely_depression", "likely depression"),
    pgettext("severity.poor_well_being", "poor well-being"),
    pgettext("severity.adequate_well_being", "adequate well-being"),
    pgettext("severity.below_the_probable_ptsd_cutoff", "below the probable PTSD cutoff"),
    pgettext("severity.probable_ptsd", "probable PTSD"),
    pgettext("severity.score", "%(instrument)s %(score)s (%(band)s)"),
    pgettext("measure.ordinal", "the %(ordinal)s %(instrument)s"),
    pgettext("measure.latest", "Latest: %(scored)s at session %(session)s, %(count)s."),
    pgettext("measure.latest_no_session", "Latest: %(scored)s, %(count)s."),
    # Explanations stored before messages were data: their English text, shown as it is
    # until `outcome signals recompute` rebuilds them (migration 0008).
    pgettext("legacy.text", "%(text)s"),
    # An episode's change: which measure (or pair) it belongs to, and the paired result.
    pgettext("episode_change.measure", "%(measure)s"),
    pgettext("episode_change.pair", "%(depression)s + %(anxiety)s, NHS Talking Therapies"),
    pgettext("episode_change.pair_stand_in",
             "%(depression)s + %(anxiety)s, NHS Talking Therapies; %(anxiety)s standing in "
             "for %(wanted)s"),
    pgettext("episode_change.paired",
             "%(category)s by the NHS Talking Therapies paired rules: %(depression)s from "
             "%(d_intake)s to %(d_observed)s (%(d_change)s), %(anxiety)s from %(a_intake)s to "
             "%(a_observed)s (%(a_change)s)."),
    pgettext("episode_change.paired_notes",
             "%(category)s by the NHS Talking Therapies paired rules: %(depression)s from "
             "%(d_intake)s to %(d_observed)s (%(d_change)s), %(anxiety)s from %(a_intake)s to "
             "%(a_observed)s (%(a_change)s); %(notes)s."),
    pgettext("episode_change.note.not_a_case",
             "below caseness on both measures at the start, so recovery is not assessed"),
    pgettext("episode_change.note.recovery_not_reliable",
             "below caseness on both measures at the end (recovery), but without reliable "
             "improvement"),
    pgettext("episode_change.note.stand_in",
             "%(anxiety)s stands in for %(wanted)s, which is not installed"),
    # Issue 17: a list says the statistical basis of its colours once, above the rows;
    # each row keeps its own numbers (outcome.services.explanations.split_basis).
    pgettext("progress.expected_stratum_short",
             "expected %(expected)s for someone starting at %(intake)s; this is worse than "
             "%(percentile)s %% of past clients with an intake of %(low)s to %(high)s at this "
             "session."),
    pgettext("progress.expected_pooled_short",
             "expected %(expected)s for someone starting at %(intake)s; this is worse than "
             "%(percentile)s %% of past clients at this session."),
    pgettext("progress.basis",
             "%(instrument)s colours: yellow when a score is worse than %(green_max)s %% of "
             "past clients' at the same session, red when worse than %(yellow_max)s %% "
             "(%(fit)s)."),
    # Issue 19: a support check's domains (outcome.core.support). A verdict message holds
    # its parts (each a rule with its numbers and source), joined by a space.
    pgettext("support.domain.alliance", "Therapeutic alliance"),
    pgettext("support.domain.motivation", "Motivation and readiness for change"),
    pgettext("support.domain.social_support", "Social support"),
    pgettext("support.domain.life_events", "Life events"),
    pgettext("support.domain.formulation", "Formulation and treatment fit"),
    pgettext("support.domain.risk", "Risk"),
    pgettext("support.relation.le", "at or below"),
    pgettext("support.relation.lt", "below"),
    pgettext("support.relation.ge", "at or above"),
    pgettext("support.relation.gt", "above"),
    pgettext("support.source.unverified", "%(source)s; unverified"),
    pgettext("support.rule.met",
             "%(instrument)s total %(score)s is %(relation)s %(value)s (%(source)s)."),
    pgettext("support.rule.not_met",
             "%(instrument)s total %(score)s is not %(relation)s %(value)s (%(source)s)."),
    pgettext("support.rule.none",
             "%(instrument)s total %(score)s: no cutoff decides this domain on this measure "
             "(%(source)s)."),
    pgettext("support.alliance.series", "%(instrument)s, from the episode's own series,"),
    pgettext("support.alliance.rupture",
             "The episode's own alliance series (%(instrument)s) has an unrepaired rupture "
             "or alliance concern (%(source)s)."),
    pgettext("support.alliance.no_rupture",
             "The episode's own alliance series (%(instrument)s) has no unrepaired rupture "
             "or alliance concern (%(source)s)."),
    pgettext("support.verdict.flagged", "%(parts)s Flagged."),
    pgettext("support.verdict.not_flagged", "%(parts)s Not flagged."),
    pgettext("support.verdict.undecided", "%(parts)s Not judged."),
    pgettext("support.result.not_answered",
             "Not measured: %(instrument)s was not answered in this check."),
    pgettext("support.result.no_measure",
             "Not measured: no measure of this domain can be asked at this clinic."),
    pgettext("support.result.no_answers",
             "Not measured: none of this domain's measures was answered in this check."),
    # A suggested next step: its text comes from questionnaires/support/rules.yaml in the
    # reader's language ({"texts": {...}} parameter).
    pgettext("support.suggestion", "%(text)s"),
]

TEMPLATES: dict[str, Template] = {t.id: t for t in _TEMPLATES}
# How a list parameter's messages are joined, by message id (default "; ").
SEPARATORS: dict[str, str] = {"critical.answers": " ", "support.verdict.flagged": " ",
                              "support.verdict.not_flagged": " ",
                              "support.verdict.undecided": " "}

__all__ = ["SEPARATORS", "TEMPLATES", "Message", "Template"]
