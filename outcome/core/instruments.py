"""Instrument definitions as immutable values (domain.md section 2).

A definition is data: the loader in ``questionnaires.loader`` reads a YAML file,
validates it and builds these objects. Nothing here reads files or knows about Flask
or a database.

Conventions:

- item values are numbers on the item's own scale; "missing" is never 0;
- ``direction`` is ``higher_is_worse`` or ``higher_is_better`` and ``d`` is -1 or +1
  accordingly (Jacobson & Truax 1991 sign convention);
- a cutoff names its clinical side explicitly (``>=`` for PHQ-9 caseness at 10), so
  published wording such as "caseness >= 10" or "< 36" is kept as written.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Literal

ItemType = Literal["likert", "vas", "text", "goal"]
Direction = Literal["higher_is_worse", "higher_is_better"]
# "support": a support check's measure (issue 19, outcome/core/support.py); never in the
# clinic's pre/post battery and never a source of outcome or alliance signals.
Role = Literal["outcome", "alliance", "goal", "screening", "support"]
ClinicalSide = Literal[">=", ">", "<=", "<"]


@dataclass(frozen=True)
class Option:
    """One answer option of a Likert item: its value, label and LOINC answer code."""

    value: int
    label: str | None
    loinc_answer: str | None = None


@dataclass(frozen=True)
class Item:
    """One question.

    ``text`` is None when the wording is licensed and not installed (structure-only
    instruments); forms then show a "wording not installed" label. ``minimum``,
    ``maximum`` and ``decimals`` describe the admissible values: for a Likert item they
    follow from its options; a VAS item is 0-10 with one decimal by default.
    """

    id: str
    type: ItemType
    text: str | None
    options: tuple[Option, ...] = ()
    minimum: float = 0.0
    maximum: float = 0.0
    decimals: int = 0
    is_scored: bool = True
    is_reverse: bool = False
    loinc: str | None = None
    label: str | None = None
    max_length: int = 2000

    @property
    def option_values(self) -> tuple[int, ...]:
        return tuple(option.value for option in self.options)

    @property
    def is_numeric(self) -> bool:
        return self.type != "text"


@dataclass(frozen=True)
class Subscale:
    """A named subset of items, scored like the total (sum or mean, with its own max_missing)."""

    id: str
    name: str
    items: tuple[str, ...]
    max_missing: int = 0


@dataclass(frozen=True)
class Band:
    """A severity band on the primary score, inclusive at both ends (PHQ-9 10-14 "moderate")."""

    minimum: float
    maximum: float
    label: str


@dataclass(frozen=True)
class Cutoff:
    """The clinical cutoff on the primary score and which side of it is clinical."""

    value: float
    clinical_side: ClinicalSide
    source: str = ""

    def is_clinical(self, score: float) -> bool:
        """Whether ``score`` lies in the clinical range (NaN is never clinical)."""
        if math.isnan(score):
            return False
        return bool(_SIDES[self.clinical_side](score, self.value))

    def clinical(self, scores: Any) -> Any:
        """``is_clinical`` for a numpy array at once (NaN is never clinical)."""
        return _SIDES[self.clinical_side](scores, self.value)


_SIDES = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}


@dataclass(frozen=True)
class ReliableChange:
    """How much change is reliable: a fixed number of points, or reliability and SD.

    With ``points`` (PHQ-9: 6, NHS Talking Therapies) change of at least that many
    points in the good direction is reliable improvement. Otherwise the RCI uses
    ``SE = sd * sqrt(1 - reliability)`` (Jacobson & Truax 1991).
    """

    points: float | None = None
    reliability: float | None = None
    sd: float | None = None
    is_verified: bool = True
    source: str = ""


@dataclass(frozen=True)
class Norms:
    """Published population means and SDs for computed cutoffs (Jacobson & Truax a, b, c)."""

    clinical_mean: float | None = None
    clinical_sd: float | None = None
    functional_mean: float | None = None
    functional_sd: float | None = None
    source: str = ""


@dataclass(frozen=True)
class CriticalItem:
    """An answer that needs attention today (PHQ-9 item 9 >= 1)."""

    item: str
    threshold: float
    urgency: Literal["urgent", "high"]
    client_message: str
    clinician_message: str


@dataclass(frozen=True)
class EndorsementRule:
    """A count rule over subscales, such as the PCL-5 DSM-5 provisional diagnosis.

    An item counts as endorsed at ``endorsed_at`` or above; the rule holds when every
    subscale in ``minimum_endorsed`` has at least that many endorsed items.
    """

    id: str
    label: str
    endorsed_at: float
    minimum_endorsed: tuple[tuple[str, int], ...]
    source: str = ""


@dataclass(frozen=True)
class Transform:
    """A linear transformed scale of the total, ``total * multiplier + offset`` (WHO-5 x4)."""

    id: str
    label: str
    multiplier: float
    offset: float = 0.0


@dataclass(frozen=True)
class Licence:
    """Licence text and attribution, shown with the form, and whether a clinic must attest."""

    name: str
    attribution: str
    url: str | None = None
    is_attestation_required: bool = False
    is_non_commercial: bool = False


@dataclass(frozen=True)
class Translation:
    """Verbatim wording in another language (never machine-translated)."""

    language: str
    stem: str | None
    items: tuple[tuple[str, str], ...]
    options: tuple[tuple[str, tuple[tuple[int, str], ...]], ...] = ()
    # The shared answer labels, for every item without its own entry in ``options``.
    default_options: tuple[tuple[int, str], ...] = ()
    # Only a verified translation (every text found word for word in two independent
    # sources, named in the definition) is ever shown to a client.
    is_verified: bool = False
    # Items deliberately left in the original language, with the reason.
    not_translated: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Instrument:
    """A questionnaire and how to score and read it."""

    id: str
    version: str
    name: str
    short_name: str
    role: Role
    direction: Direction
    items: tuple[Item, ...]
    licence: Licence
    stem: str | None = None
    languages: tuple[str, ...] = ("en",)
    scoring_method: Literal["sum", "mean"] = "sum"
    max_missing: int = 0
    precision: int = 0
    subscales: tuple[Subscale, ...] = ()
    transform: Transform | None = None
    primary_score: Literal["total", "transformed"] = "total"
    bands: tuple[Band, ...] = ()
    cutoff: Cutoff | None = None
    reliable_change: ReliableChange | None = None
    norms: Norms | None = None
    critical_items: tuple[CriticalItem, ...] = ()
    rules: tuple[EndorsementRule, ...] = ()
    # Alliance measures: a drop of at least this many points since the last session is a
    # rupture signal (SRS-type: 1 point).
    rupture_drop_points: float | None = None
    # Alliance measures: the published norm SD and reliability r_xx of the total, from
    # which the SEM floors the client's own SD in the person-relative rule (domain.md 5).
    alliance_sd: float | None = None
    alliance_reliability: float | None = None
    loinc_panel: str | None = None
    loinc_total: str | None = None
    is_wording_installed: bool = True
    # False for a question set that is not a validated measure (the project's own session
    # check): no published norms, cutoff or reliability; pages and reports say so.
    is_validated: bool = True
    translations: tuple[Translation, ...] = ()
    source_file: str = field(default="", compare=False)

    @property
    def key(self) -> str:
        """``id@version``, unique in a library."""
        return f"{self.id}@{self.version}"

    @property
    def d(self) -> int:
        """+1 when higher is better, -1 when higher is worse (Jacobson & Truax sign)."""
        return 1 if self.direction == "higher_is_better" else -1

    @property
    def scored_items(self) -> tuple[Item, ...]:
        return tuple(item for item in self.items if item.is_scored)

    def item(self, item_id: str) -> Item:
        """The item with ``item_id``; KeyError if there is none."""
        for item in self.items:
            if item.id == item_id:
                return item
        raise KeyError(item_id)

    @property
    def total_range(self) -> tuple[float, float]:
        """Lowest and highest possible total (before any transform)."""
        scored = self.scored_items
        if self.scoring_method == "mean":
            return (min(i.minimum for i in scored), max(i.maximum for i in scored))
        return (sum(i.minimum for i in scored), sum(i.maximum for i in scored))

    @property
    def primary_range(self) -> tuple[float, float]:
        """Range of the score that bands, cutoff and reliable change refer to."""
        low, high = self.total_range
        if self.primary_score == "transformed" and self.transform is not None:
            t = self.transform
            ends = sorted((low * t.multiplier + t.offset, high * t.multiplier + t.offset))
            return ends[0], ends[1]
        return low, high
