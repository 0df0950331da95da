"""The support check's rules as data: domains, measures, cutoffs and suggested steps.

``rules.yaml`` beside this file says, for each domain of a support check
(../shared/design/support.md, "The four domains"), which instruments may measure it in
preference order, the cutoff rule that flags it (with its ``source`` and whether it was
``verified`` in two public sources), and the suggested next steps for a flagged domain,
for "formulation" (none flagged) and "risk" (a critical item endorsed), each with a
stable id, English and Russian text and a ``source``.

:func:`load_rules` reads and checks the file once (cached); a malformed file raises
:class:`RulesError` naming the file, the line and the key. Pure: imports no Flask or
SQLAlchemy.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from outcome.core.support import DOMAINS
from outcome.core.support import EXTRA_DOMAINS
from questionnaires.loader import DefinitionError
from questionnaires.loader import _StrictLoader
from questionnaires.loader import read_yaml

RULES_FILE = Path(__file__).parent / "rules.yaml"
OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}
LANGUAGES = ("en", "ru")


class RulesError(DefinitionError):
    """The rules file is wrong. ``problems`` are (where, what is wrong) pairs; ``where``
    names the key path and, when known, the line. Reported like a definition file's
    problems (:class:`questionnaires.loader.DefinitionError`)."""


@dataclass(frozen=True)
class FlagRule:
    """What flags a domain on one measure: its total ``op`` ``value`` (e.g. ``<=`` 8)."""

    op: str
    value: float

    def flags(self, score: float) -> bool:
        """Whether ``score`` meets the rule (NaN never does)."""
        if math.isnan(score):
            return False
        return bool(OPS[self.op](score, self.value))


@dataclass(frozen=True)
class MeasureRule:
    """One candidate measure of a domain, with the rule that flags the domain on it.

    ``flag`` is None when the rules give no cutoff for it (an alliance measure is then
    judged by the definition's own cutoff, if any, and the episode's rupture status).
    """

    instrument: str
    flag: FlagRule | None
    source: str
    verified: bool


@dataclass(frozen=True)
class SuggestionRule:
    """One suggested next step: stable id, heading, English and Russian text, source."""

    id: str
    domain: str
    text: dict[str, str]   # language code -> text ("en", "ru")
    source: str


@dataclass(frozen=True)
class DomainRules:
    """A domain's candidate measures in preference order; for the alliance, the source
    of the rupture rule (the episode's own series)."""

    domain: str
    measures: tuple[MeasureRule, ...]
    rupture_source: str | None = None
    rupture_verified: bool = False

    @property
    def instruments(self) -> tuple[str, ...]:
        """The candidate instrument ids, most preferred first."""
        return tuple(m.instrument for m in self.measures)

    def measure(self, instrument_id: str) -> MeasureRule | None:
        """The rule for ``instrument_id``, or None when it is not a candidate."""
        return next((m for m in self.measures if m.instrument == instrument_id), None)


@dataclass(frozen=True)
class SupportRules:
    """The whole rules file: domains in order, suggestions by heading, the item budget."""

    domains: dict[str, DomainRules]
    suggestions: dict[str, tuple[SuggestionRule, ...]]
    max_items: int
    max_items_source: str
    source_file: str = ""

    def domain(self, name: str) -> DomainRules:
        """The rules of domain ``name`` (one of :data:`DOMAINS`)."""
        return self.domains[name]

    def suggestion(self, suggestion_id: str) -> SuggestionRule | None:
        """The suggestion with this stable id, or None."""
        return next((s for heading in self.suggestions.values() for s in heading
                     if s.id == suggestion_id), None)


# --- reading and checking ----------------------------------------------------------------


def _lines(path: Path) -> dict[tuple[str, ...], int]:
    """Key path -> 1-based line of every mapping key and list entry in the file."""
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=_StrictLoader)  # nosec B506
    except yaml.YAMLError:  # read_yaml reports these
        return {}
    found: dict[tuple[str, ...], int] = {}

    def walk(node: yaml.Node, where: tuple[str, ...]) -> None:
        found.setdefault(where, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                here = (*where, str(key.value))
                found[here] = key.start_mark.line + 1
                walk(value, here)
        elif isinstance(node, yaml.SequenceNode):
            for index, value in enumerate(node.value):
                walk(value, (*where, f"[{index}]"))

    if root is not None:
        walk(root, ())
    return found


class _Checker:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines = _lines(path)
        self.problems: list[tuple[str, str]] = []

    def add(self, where: tuple[str, ...], what: str) -> None:
        name = "".join(p if p.startswith("[") else f".{p}" for p in where).lstrip(".")
        line = next((self.lines[where[:n]] for n in range(len(where), -1, -1)
                     if where[:n] in self.lines), None)
        self.problems.append((f"line {line}: {name or '(top level)'}" if line else
                              (name or "(top level)"), what))

    def mapping(self, value: Any, where: tuple[str, ...], required: tuple[str, ...],
                optional: tuple[str, ...] = ()) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.add(where, f"must be a mapping; got {value!r}")
            return None
        for key in required:
            if key not in value:
                self.add(where, f"missing required key {key!r}")
        extra = sorted(set(map(str, value)) - set(required) - set(optional))
        if extra:
            self.add(where, f"unknown key {', '.join(map(repr, extra))}")
        return value

    def text(self, value: Any, where: tuple[str, ...]) -> str:
        if not isinstance(value, str) or not value.strip():
            self.add(where, f"must be non-empty text; got {value!r}")
            return ""
        return value

    def boolean(self, value: Any, where: tuple[str, ...]) -> bool:
        if not isinstance(value, bool):
            self.add(where, f"must be true or false; got {value!r}")
            return False
        return value


def _flag(check: _Checker, raw: Any, where: tuple[str, ...]) -> FlagRule | None:
    data = check.mapping(raw, where, ("op", "value"))
    if data is None or "op" not in data or "value" not in data:
        return None
    if data["op"] not in OPS:
        check.add((*where, "op"), f"must be one of {', '.join(OPS)}; got {data['op']!r}")
        return None
    value = data["value"]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        check.add((*where, "value"), f"must be a number; got {value!r}")
        return None
    return FlagRule(op=data["op"], value=float(value))


def _measure(check: _Checker, raw: Any, where: tuple[str, ...]) -> MeasureRule | None:
    data = check.mapping(raw, where, ("instrument", "source", "verified"), ("flag",))
    if data is None:
        return None
    instrument = check.text(data.get("instrument"), (*where, "instrument"))
    flag = _flag(check, data["flag"], (*where, "flag")) if "flag" in data else None
    source = check.text(data.get("source"), (*where, "source"))
    verified = check.boolean(data.get("verified"), (*where, "verified"))
    return MeasureRule(instrument=instrument, flag=flag, source=source, verified=verified)


def _domain(check: _Checker, name: str, raw: Any) -> DomainRules:
    where = ("domains", name)
    optional = ("rupture",) if name == "alliance" else ()
    data = check.mapping(raw, where, ("measures",), optional) or {}
    measures_raw = data.get("measures")
    measures: list[MeasureRule] = []
    if not isinstance(measures_raw, list) or not measures_raw:
        if "measures" in data:
            check.add((*where, "measures"), "must be a non-empty list of measures")
    else:
        for index, item in enumerate(measures_raw):
            measure = _measure(check, item, (*where, "measures", f"[{index}]"))
            if measure is not None:
                measures.append(measure)
        ids = [m.instrument for m in measures]
        for repeated in sorted({i for i in ids if ids.count(i) > 1}):
            check.add((*where, "measures"), f"instrument {repeated!r} is listed twice")
    rupture_source, rupture_verified = None, False
    if name == "alliance":
        rupture = check.mapping(data.get("rupture"), (*where, "rupture"),
                                ("source", "verified"))
        if rupture is not None:
            rupture_source = check.text(rupture.get("source"), (*where, "rupture", "source"))
            rupture_verified = check.boolean(rupture.get("verified"),
                                             (*where, "rupture", "verified"))
    return DomainRules(domain=name, measures=tuple(measures), rupture_source=rupture_source,
                       rupture_verified=rupture_verified)


def _suggestions(check: _Checker, heading: str, raw: Any) -> tuple[SuggestionRule, ...]:
    where = ("suggestions", heading)
    if not isinstance(raw, list) or not raw:
        check.add(where, "must be a non-empty list of suggestions")
        return ()
    out = []
    for index, item in enumerate(raw):
        here = (*where, f"[{index}]")
        data = check.mapping(item, here, ("id", "source", *LANGUAGES))
        if data is None:
            continue
        suggestion_id = check.text(data.get("id"), (*here, "id"))
        if suggestion_id and not suggestion_id.startswith(f"{heading}."):
            check.add((*here, "id"), f"must start with {heading + '.'!r}; got {suggestion_id!r}")
        texts = {code: check.text(data.get(code), (*here, code)) for code in LANGUAGES}
        out.append(SuggestionRule(id=suggestion_id, domain=heading, text=texts,
                                  source=check.text(data.get("source"), (*here, "source"))))
    return tuple(out)


def parse_rules(path: Path) -> SupportRules:
    """Read and check one rules file; raise :class:`RulesError` listing every problem
    (a YAML syntax error names its line and column)."""
    try:
        data = read_yaml(path)
    except DefinitionError as exc:
        raise RulesError(path, exc.problems) from None
    check = _Checker(path)
    check.mapping(data, (), ("version", "max_items", "domains", "suggestions"),
                  ("max_items_source",))
    if "version" in data and data["version"] != 1:
        check.add(("version",), f"must be 1; got {data['version']!r}")
    max_items = data.get("max_items")
    if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 1:
        if "max_items" in data:
            check.add(("max_items",), f"must be a whole number of at least 1; got {max_items!r}")
        max_items = 20
    domains: dict[str, DomainRules] = {}
    raw_domains = check.mapping(data.get("domains", {}), ("domains",), DOMAINS) or {}
    for name in DOMAINS:
        if name in raw_domains:
            domains[name] = _domain(check, name, raw_domains[name])
    suggestions: dict[str, tuple[SuggestionRule, ...]] = {}
    headings = (*DOMAINS, *EXTRA_DOMAINS)
    raw_suggestions = check.mapping(data.get("suggestions", {}), ("suggestions",),
                                    headings) or {}
    for heading in headings:
        if heading in raw_suggestions:
            suggestions[heading] = _suggestions(check, heading, raw_suggestions[heading])
    ids = [s.id for heading in suggestions.values() for s in heading if s.id]
    for repeated in sorted({i for i in ids if ids.count(i) > 1}):
        check.add(("suggestions",), f"suggestion id {repeated!r} is used twice")
    if check.problems:
        raise RulesError(path, check.problems)
    source = data.get("max_items_source")
    return SupportRules(domains=domains, suggestions=suggestions, max_items=max_items,
                        max_items_source=source if isinstance(source, str) else "",
                        source_file=str(path))


@cache
def _load(path: Path) -> SupportRules:
    return parse_rules(path)


def load_rules(path: Path | None = None) -> SupportRules:
    """The support check's rules from ``path`` (default: ``rules.yaml`` beside this
    module), checked on load and cached per path. Raises :class:`RulesError` naming the
    file, line and key of every problem."""
    return _load((path or RULES_FILE).resolve())


__all__ = ["DOMAINS", "EXTRA_DOMAINS", "RULES_FILE", "DomainRules", "FlagRule",
           "MeasureRule", "RulesError", "SuggestionRule", "SupportRules", "load_rules",
           "parse_rules"]
