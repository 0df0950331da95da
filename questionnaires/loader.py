"""Loading instrument definitions: YAML files, checked against a schema and for meaning.

Instruments are data. Each file in ``questionnaires/definitions`` (and in a clinic's
own folder) describes one instrument and version; ``definition.schema.json`` checks its
shape and :func:`build_instrument` checks what a schema cannot (items referred to
exist, bands cover the score range, a cutoff's clinical side agrees with the
direction...). A broken file fails at load with the file, the field and what is wrong.

A clinic *overlay* (a file with ``overlay_for: wai_sr@1``) installs licensed wording and
additions (subscales, critical items, bands, norms) into a built-in definition whose
text we may not ship.

Pure: reads files, imports no Flask or SQLAlchemy.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from functools import cache
from pathlib import Path
from typing import Any
from typing import cast

import jsonschema
import yaml

from outcome.core.instruments import Band
from outcome.core.instruments import CriticalItem
from outcome.core.instruments import Cutoff
from outcome.core.instruments import EndorsementRule
from outcome.core.instruments import Instrument
from outcome.core.instruments import Item
from outcome.core.instruments import ItemType
from outcome.core.instruments import Licence
from outcome.core.instruments import Norms
from outcome.core.instruments import Option
from outcome.core.instruments import ReliableChange
from outcome.core.instruments import Subscale
from outcome.core.instruments import Transform
from outcome.core.instruments import Translation

PACKAGE_DIR = Path(__file__).parent
BUILTIN_DIR = PACKAGE_DIR / "definitions"
VAS_DEFAULTS = {"min": 0.0, "max": 10.0, "decimals": 1}


class DefinitionError(Exception):
    """A definition or overlay file is wrong. ``problems`` are (field, what is wrong) pairs."""

    def __init__(self, file: str | Path, problems: list[tuple[str, str]]) -> None:
        self.file = str(file)
        self.problems = problems
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(f"{self.file}: {where}: {what}" for where, what in self.problems)


# --- reading -----------------------------------------------------------------------------


# libyaml's parser where PyYAML was built with it (about 10x faster), the same safe
# constructors either way.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_SafeLoader):  # type: ignore[misc,valid-type]
    """SafeLoader that refuses duplicate keys (PyYAML silently keeps the last one)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False
                       ) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    mapping: dict[Any, Any] = loader.construct_mapping(node, deep=deep)
    return mapping


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
# YAML 1.2 booleans: only true/false. Under YAML 1.1 an answer label such as Yes, No, On
# or Off silently becomes a boolean (the "Norway problem").
_BOOL_TAG = "tag:yaml.org,2002:bool"
_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def read_yaml(path: Path) -> dict[str, Any]:
    """Parse one YAML file into a mapping, or raise DefinitionError naming line and column."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DefinitionError(path, [("(file)", f"cannot be read: {exc}")]) from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506  # nosec B506 (SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        problem = getattr(exc, "problem", None) or str(exc)
        raise DefinitionError(path, [(where, f"not valid YAML: {problem}")]) from None
    if not isinstance(data, dict):
        raise DefinitionError(path, [("(file)", "must be a mapping of fields")])
    return data


@cache
def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((PACKAGE_DIR / name).read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def _path(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _describe(error: jsonschema.ValidationError) -> tuple[str, str]:
    where = _path(error.absolute_path)
    kind = error.validator
    if kind == "required":
        missing = error.message.split("'")[1]
        return where, f"missing required field {missing!r}"
    if kind == "additionalProperties":
        properties = cast("dict[str, Any]", error.schema).get("properties", {})  # an object's
        extra = sorted(set(cast("dict[str, Any]", error.instance)) - set(properties))
        return where, f"unknown field {', '.join(map(repr, extra))}"
    if kind == "enum":
        choices = ", ".join(map(str, cast("list[Any]", error.validator_value)))
        return where, f"must be one of {choices}; got {error.instance!r}"
    if kind == "type":
        names = {"string": "text", "integer": "a whole number", "number": "a number",
                 "boolean": "true or false", "object": "a mapping", "array": "a list"}
        wanted = error.validator_value
        wanted = " or ".join(names.get(w, w) for w in ([wanted] if isinstance(wanted, str)
                                                        else cast("list[str]", wanted)))
        return where, f"must be {wanted}; got {error.instance!r}"
    if kind == "pattern":
        return where, f"{error.instance!r} is not in the expected form ({error.validator_value})"
    return where, error.message


def _check_schema(path: Path, data: dict[str, Any], schema_name: str) -> None:
    errors = sorted(_validator(schema_name).iter_errors(data),
                    key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        raise DefinitionError(path, [_describe(e) for e in errors])


# --- building ----------------------------------------------------------------------------


@dataclass
class _Problems:
    items: list[tuple[str, str]] = field(default_factory=list)

    def add(self, where: str, what: str) -> None:
        self.items.append((where, what))


def _options(raw: list[dict[str, Any]]) -> tuple[Option, ...]:
    return tuple(Option(value=o["value"], label=o.get("label"), loinc_answer=o.get("loinc"))
                 for o in raw)


def _build_item(index: int, raw: dict[str, Any], default_options: list[dict[str, Any]] | None,
                problems: _Problems) -> Item:
    where = f"items[{index}]"
    options_raw = raw.get("options", default_options)
    kind: ItemType = raw.get("type") or ("likert" if options_raw else "text")
    scored = raw.get("scored", kind != "text")
    if kind == "text":
        if scored:
            problems.add(f"{where}.scored", "a free-text item is never scored")
        if raw.get("options") or raw.get("reverse"):
            problems.add(where, "a free-text item has no options and no reverse key")
        return Item(id=raw["id"], type="text", text=raw.get("text"), is_scored=False,
                    label=raw.get("label"), max_length=raw.get("max_length", 2000))
    if kind == "vas":
        if raw.get("options"):
            problems.add(f"{where}.options", "a visual-analogue item has no options")
        low = float(raw.get("min", VAS_DEFAULTS["min"]))
        high = float(raw.get("max", VAS_DEFAULTS["max"]))
        decimals = int(raw.get("decimals", VAS_DEFAULTS["decimals"]))
        if not low < high:
            problems.add(where, f"min ({low:g}) must be below max ({high:g})")
        return Item(id=raw["id"], type="vas", text=raw.get("text"), minimum=low, maximum=high,
                    decimals=decimals, is_scored=scored, is_reverse=raw.get("reverse", False),
                    loinc=raw.get("loinc"), label=raw.get("label"))
    # likert and goal: a fixed set of whole-number options
    if not options_raw:
        problems.add(f"{where}.options", f"a {kind} item needs options (here or at the top level)")
        return Item(id=raw["id"], type=kind, text=raw.get("text"))
    options = _options(options_raw)
    values = [o.value for o in options]
    if len(set(values)) != len(values):
        problems.add(f"{where}.options", f"option values repeat: {values}")
    for key in ("min", "max", "decimals"):
        if key in raw:
            problems.add(f"{where}.{key}", "only visual-analogue items take min, max, decimals")
    return Item(id=raw["id"], type=kind, text=raw.get("text"), options=options,
                minimum=float(min(values)), maximum=float(max(values)), decimals=0,
                is_scored=scored, is_reverse=raw.get("reverse", False), loinc=raw.get("loinc"),
                label=raw.get("label"))


def build_instrument(data: dict[str, Any], source_file: str = "") -> Instrument:
    """Turn a schema-valid definition mapping into an :class:`Instrument`, checking meaning.

    Raises :class:`DefinitionError` listing every problem found.
    """
    problems = _Problems()
    default_options = data.get("options")
    items = tuple(_build_item(i, raw, default_options, problems)
                  for i, raw in enumerate(data["items"]))
    by_id: dict[str, Item] = {}
    item: Item | None  # an Item here; below, a lookup by id that may miss
    for index, item in enumerate(items):
        if item.id in by_id:
            problems.add(f"items[{index}].id", f"item id {item.id!r} is used twice")
        by_id[item.id] = item
    scored = [item for item in items if item.is_scored]
    if not scored:
        problems.add("items", "at least one item must be scored")

    texts = [item.text for item in items]
    has_wording = all(t is not None for t in texts)
    if not has_wording and any(t is not None for t in texts):
        first = next(i for i, t in enumerate(texts) if t is None)
        problems.add(f"items[{first}].text",
                     "missing while other items have wording (give all items text, or none)")

    scoring = data["scoring"]
    method = scoring["method"]
    max_missing = scoring.get("max_missing", 0)
    if scored and max_missing >= len(scored):
        problems.add("scoring.max_missing",
                     f"{max_missing} would allow every one of the {len(scored)} scored items "
                     "to be missing")

    subscales = []
    for index, raw in enumerate(data.get("subscales", [])):
        where = f"subscales[{index}]"
        for item_id in raw["items"]:
            if item_id not in by_id:
                problems.add(f"{where}.items", f"unknown item {item_id!r}")
            elif not by_id[item_id].is_scored:
                problems.add(f"{where}.items", f"item {item_id!r} is not scored")
        if raw.get("max_missing", 0) >= len(raw["items"]):
            problems.add(f"{where}.max_missing", "would allow every item to be missing")
        subscales.append(Subscale(id=raw["id"], name=raw["name"], items=tuple(raw["items"]),
                                  max_missing=raw.get("max_missing", 0)))
    subscale_ids = [s.id for s in subscales]
    if len(set(subscale_ids)) != len(subscale_ids):
        problems.add("subscales", f"subscale ids repeat: {subscale_ids}")
    reserved = {"total", "band", "valid", "prorated", "critical", "id"}
    for clash in reserved & set(subscale_ids):
        problems.add("subscales", f"subscale id {clash!r} is reserved")

    transform = None
    if "transform" in data:
        t = data["transform"]
        transform = Transform(id=t["id"], label=t["label"], multiplier=float(t["multiplier"]),
                              offset=float(t.get("offset", 0.0)))
    primary = data.get("primary_score", "total")
    if primary == "transformed" and transform is None:
        problems.add("primary_score", "is 'transformed' but there is no transform")

    licence_raw = data["licence"]
    licence = Licence(name=licence_raw["name"], attribution=licence_raw["attribution"],
                      url=licence_raw.get("url"),
                      is_attestation_required=licence_raw.get("attestation_required", False),
                      is_non_commercial=licence_raw.get("non_commercial", False))

    rc_raw = data.get("reliable_change")
    reliable_change = None
    if rc_raw is not None:
        if "points" not in rc_raw and "reliability" not in rc_raw:
            problems.add("reliable_change", "give either points or reliability")
        reliable_change = ReliableChange(points=rc_raw.get("points"),
                                         reliability=rc_raw.get("reliability"),
                                         sd=rc_raw.get("sd"),
                                         is_verified=rc_raw.get("verified", True),
                                         source=rc_raw.get("source", ""))

    norms = None
    if "norms" in data:
        n = data["norms"]
        norms = Norms(clinical_mean=n.get("clinical_mean"), clinical_sd=n.get("clinical_sd"),
                      functional_mean=n.get("functional_mean"),
                      functional_sd=n.get("functional_sd"), source=n.get("source", ""))

    critical = []
    for index, raw in enumerate(data.get("critical_items", [])):
        where = f"critical_items[{index}]"
        item = by_id.get(raw["item"])
        if item is None:
            problems.add(f"{where}.item", f"unknown item {raw['item']!r}")
        elif not item.is_numeric:
            problems.add(f"{where}.item", f"item {raw['item']!r} has no numeric answer")
        elif not item.minimum < raw["threshold"] <= item.maximum:
            problems.add(f"{where}.threshold",
                         f"{raw['threshold']:g} is outside the answers of {item.id} "
                         f"({item.minimum:g}-{item.maximum:g}); no answer could reach it, "
                         "or every answer would")
        critical.append(CriticalItem(item=raw["item"], threshold=float(raw["threshold"]),
                                     urgency=raw["urgency"],
                                     client_message=raw["client_message"].strip(),
                                     clinician_message=raw["clinician_message"].strip()))

    rules = []
    for index, raw in enumerate(data.get("rules", [])):
        where = f"rules[{index}]"
        for sub_id, count in raw["minimum_endorsed"].items():
            sub = next((s for s in subscales if s.id == sub_id), None)
            if sub is None:
                problems.add(f"{where}.minimum_endorsed", f"unknown subscale {sub_id!r}")
            elif count > len(sub.items):
                problems.add(f"{where}.minimum_endorsed",
                             f"{sub_id} has {len(sub.items)} items; {count} cannot be endorsed")
        rules.append(EndorsementRule(id=raw["id"], label=raw["label"],
                                     endorsed_at=float(raw["endorsed_at"]),
                                     minimum_endorsed=tuple(raw["minimum_endorsed"].items()),
                                     source=raw.get("source", "")))

    translations = []
    for language, raw in data.get("translations", {}).items():
        where = f"translations.{language}"
        for key in ("items", "options", "not_translated"):
            for item_id in raw.get(key, {}):
                if item_id not in by_id:
                    problems.add(f"{where}.{key}", f"unknown item {item_id!r}")
        for item_id in set(raw.get("items", {})) & set(raw.get("not_translated", {})):
            problems.add(f"{where}.not_translated",
                         f"{item_id!r} has a translation and is listed as not translated")
        if raw.get("verified") and len(raw.get("sources", [])) < 2:
            problems.add(f"{where}.sources",
                         "a verified translation names at least two independent sources")
        for item_id, labels in raw.get("options", {}).items():
            if item_id not in by_id:
                continue  # said above
            known = {str(value) for value in by_id[item_id].option_values}
            for value in labels:
                if value not in known:
                    problems.add(f"{where}.options.{item_id}", f"no answer option {value}")
        default_values = {str(o["value"]) for o in (default_options or [])}
        for value in raw.get("default_options", {}):
            if value not in default_values:
                problems.add(f"{where}.default_options", f"no answer option {value}")
        translations.append(Translation(
            language=language, stem=raw.get("stem"),
            items=tuple(raw.get("items", {}).items()),
            options=tuple((item_id, tuple((int(v), label) for v, label in labels.items()
                                          if v.lstrip("-").isdigit()))
                          for item_id, labels in raw.get("options", {}).items()),
            default_options=tuple((int(v), label)
                                  for v, label in raw.get("default_options", {}).items()
                                  if v.lstrip("-").isdigit()),
            is_verified=bool(raw.get("verified", False) or raw.get("authored", False)),
            not_translated=tuple(raw.get("not_translated", {}).items())))

    loinc = data.get("loinc", {})
    instrument = Instrument(
        id=data["id"], version=data["version"], name=data["name"],
        short_name=data["short_name"], role=data["role"], direction=data["direction"],
        items=items, licence=licence, stem=data.get("stem"),
        languages=tuple(data.get("languages", ["en"])), scoring_method=method,
        max_missing=max_missing, precision=scoring.get("precision", 0),
        subscales=tuple(subscales), transform=transform, primary_score=primary,
        bands=tuple(Band(float(b["min"]), float(b["max"]), b["label"])
                    for b in data.get("bands", [])),
        cutoff=(Cutoff(float(data["cutoff"]["value"]), data["cutoff"]["clinical"],
                       data["cutoff"].get("source", "")) if "cutoff" in data else None),
        reliable_change=reliable_change, norms=norms, critical_items=tuple(critical),
        rules=tuple(rules), rupture_drop_points=data.get("alliance", {}).get("drop_points"),
        alliance_sd=data.get("alliance", {}).get("sd"),
        alliance_reliability=data.get("alliance", {}).get("reliability"),
        loinc_panel=loinc.get("panel"), loinc_total=loinc.get("total"),
        is_wording_installed=has_wording, is_validated=data.get("validated", True),
        translations=tuple(translations),
        source_file=source_file,
    )
    if scored and not problems.items:
        _check_score_semantics(instrument, problems)
    if problems.items:
        raise DefinitionError(source_file or data.get("id", "?"), problems.items)
    return instrument


def _check_score_semantics(instrument: Instrument, problems: _Problems) -> None:
    """Bands, cutoff and direction against the primary score's range."""
    low, high = instrument.primary_range
    finest = max(item.decimals for item in instrument.scored_items)
    if instrument.scoring_method == "sum" and instrument.precision < finest:
        problems.add("scoring.precision", f"{instrument.precision} is coarser than the items' "
                                          f"{finest} decimal(s); a sum would be rounded")
    step = 10.0 ** -instrument.precision
    if instrument.primary_score == "transformed" and instrument.transform:
        step *= abs(instrument.transform.multiplier)
    bands = instrument.bands
    for index, band in enumerate(bands):
        if band.minimum > band.maximum:
            problems.add(f"bands[{index}]", f"min {band.minimum:g} is above max {band.maximum:g}")
    if bands:
        if not math.isclose(bands[0].minimum, low) or not math.isclose(bands[-1].maximum, high):
            problems.add("bands", f"must run from {low:g} to {high:g} (the score range); they "
                                  f"run from {bands[0].minimum:g} to {bands[-1].maximum:g}")
        for index, (prev, nxt) in enumerate(itertools.pairwise(bands), start=1):
            if nxt.minimum <= prev.maximum:
                problems.add(f"bands[{index}]", f"overlaps the band before it at {nxt.minimum:g}")
            elif nxt.minimum - prev.maximum > step + 1e-9:
                problems.add(f"bands[{index}]", f"leaves a gap after {prev.maximum:g}")
    cutoff = instrument.cutoff
    if cutoff is not None:
        if not low <= cutoff.value <= high:
            problems.add("cutoff.value", f"{cutoff.value:g} is outside the score range "
                                         f"{low:g}-{high:g}")
        worse_high = instrument.direction == "higher_is_worse"
        if (cutoff.clinical_side in (">=", ">")) != worse_high:
            problems.add("cutoff.clinical", f"{cutoff.clinical_side!r} disagrees with "
                                            f"direction {instrument.direction}")


# --- overlays ----------------------------------------------------------------------------


def apply_overlay(base: dict[str, Any], overlay: dict[str, Any], path: Path) -> dict[str, Any]:
    """Merge a clinic overlay into a built-in definition mapping (a new mapping)."""
    merged: dict[str, Any] = json.loads(json.dumps(base))  # a deep copy of plain data
    item_ids = {item["id"] for item in merged["items"]}
    problems = _Problems()
    for key, target in (("items", "text"), ("item_labels", "label")):
        for item_id, value in overlay.get(key, {}).items():
            if item_id not in item_ids:
                problems.add(f"{key}.{item_id}", f"{base['id']} has no item {item_id!r}")
                continue
            next(i for i in merged["items"] if i["id"] == item_id)[target] = value
    if "stem" in overlay:
        merged["stem"] = overlay["stem"]
    labels = overlay.get("options", {})
    option_lists = [merged.get("options", [])] + [i.get("options", []) for i in merged["items"]]
    for option_list in option_lists:
        for option in option_list:
            if str(option["value"]) in labels:
                option["label"] = labels[str(option["value"])]
    known_values = {str(o["value"]) for o in merged.get("options", [])}
    for value in labels:
        if value not in known_values:
            problems.add(f"options.{value}", f"{base['id']} has no answer option {value}")
    if "max_missing" in overlay:
        merged["scoring"]["max_missing"] = overlay["max_missing"]
    for key in ("subscales", "critical_items", "bands", "norms", "translations"):
        if key in overlay:
            merged[key] = overlay[key]
    if problems.items:
        raise DefinitionError(path, problems.items)
    return merged


# --- the library -------------------------------------------------------------------------


@dataclass(frozen=True)
class InstrumentLibrary:
    """Every loaded instrument, by id and version."""

    instruments: tuple[Instrument, ...]

    def __iter__(self) -> Iterator[Instrument]:
        return iter(sorted(self.instruments, key=lambda i: (i.id, i.version)))

    def __len__(self) -> int:
        return len(self.instruments)

    def get(self, instrument_id: str, version: str | None = None) -> Instrument:
        """The instrument ``id`` at ``version`` (default: its newest version).

        Raises KeyError with a message listing the known ids.
        """
        matches = [i for i in self.instruments if i.id == instrument_id
                   and (version is None or i.version == version)]
        if not matches:
            known = ", ".join(sorted({i.id for i in self.instruments}))
            wanted = instrument_id if version is None else f"{instrument_id}@{version}"
            raise KeyError(f"unknown instrument {wanted!r}; known instruments: {known}")
        return max(matches, key=lambda i: _version_key(i.version))


def _version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    parts = version.replace("-", ".").split(".")
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)


def load_definition(path: Path) -> Instrument:
    """Read, check and build one definition file."""
    data = read_yaml(path)
    if "overlay_for" in data:
        raise DefinitionError(path, [("overlay_for", "this is an overlay, not a definition")])
    _check_schema(path, data, "definition.schema.json")
    return build_instrument(data, str(path))


def check_file(path: Path, builtin_dir: Path = BUILTIN_DIR) -> Instrument:
    """Check one clinic file, a definition or an overlay, as loading would.

    An overlay is applied to its built-in and the result checked. Returns the
    instrument the file defines or completes; raises :class:`DefinitionError`.
    """
    data = read_yaml(path)
    if "overlay_for" not in data:
        return load_definition(path)
    _check_schema(path, data, "overlay.schema.json")
    for base_path in sorted(builtin_dir.glob("*.yaml")):
        base = read_yaml(base_path)
        if f"{base.get('id')}@{base.get('version')}" == data["overlay_for"]:
            try:
                return build_instrument(apply_overlay(base, data, path), str(path))
            except DefinitionError as exc:
                raise DefinitionError(path, exc.problems) from None
    raise DefinitionError(path, [("overlay_for",
                                  f"no built-in instrument {data['overlay_for']!r}")])


def load_library(clinic_dir: Path | None = None, builtin_dir: Path = BUILTIN_DIR
                 ) -> InstrumentLibrary:
    """Load the built-in definitions, then a clinic's own definitions and overlays.

    Files in ``clinic_dir`` with ``overlay_for`` install wording into a built-in; any
    other ``*.yaml`` there is a complete definition of the clinic's own and goes
    through the same schema and checks. Raises :class:`DefinitionError` on the first
    broken file.
    """
    raw: dict[str, tuple[dict[str, Any], Path]] = {}
    for path in sorted(builtin_dir.glob("*.yaml")):
        data = read_yaml(path)
        _check_schema(path, data, "definition.schema.json")
        key = f"{data['id']}@{data['version']}"
        if key in raw:
            raise DefinitionError(path, [("id", f"{key} is also defined in {raw[key][1]}")])
        raw[key] = (data, path)
    builtin_keys = set(raw)
    overlays: list[tuple[dict[str, Any], Path]] = []
    if clinic_dir is not None and clinic_dir.is_dir():
        for path in sorted([*clinic_dir.glob("*.yaml"), *clinic_dir.glob("*.yml")]):
            data = read_yaml(path)
            if "overlay_for" in data:
                _check_schema(path, data, "overlay.schema.json")
                overlays.append((data, path))
                continue
            _check_schema(path, data, "definition.schema.json")
            key = f"{data['id']}@{data['version']}"
            if key in raw:
                raise DefinitionError(path, [("version", f"{key} is already defined in "
                                                         f"{raw[key][1].name}; give this "
                                                         "definition another id or version")])
            raw[key] = (data, path)
    sources = {key: str(path) for key, (_, path) in raw.items()}
    for overlay, path in overlays:
        key = overlay["overlay_for"]
        if key not in builtin_keys:
            known = ", ".join(sorted(builtin_keys))
            raise DefinitionError(path, [("overlay_for", f"no built-in instrument {key!r}; "
                                                         f"known: {known}")])
        raw[key] = (apply_overlay(raw[key][0], overlay, path), raw[key][1])
        sources[key] = f"{sources[key]} + {path}"
    instruments = []
    for key, (data, path) in raw.items():
        try:
            instruments.append(build_instrument(data, sources[key]))
        except DefinitionError as exc:
            # An overlay may have broken a valid built-in: blame the overlay file.
            exc.file = sources[key].split(" + ")[-1] if " + " in sources[key] else str(path)
            raise
    return InstrumentLibrary(tuple(instruments))


@cache
def builtin_library() -> InstrumentLibrary:
    """The built-in instruments alone (cached; definitions are immutable)."""
    return load_library(None)
