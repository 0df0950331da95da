"""Supply-chain checks for `make test` and `make audit`: bandit, and every locked package
against the advisory snapshot in the repository.

bandit: no finding of medium or high severity in our code.

Advisories: every package pinned in the lock files (requirements/run.txt and
requirements/test.txt) is checked, offline, against the snapshot of vulnerability data in
.ci/advisories/ (OSV records, refreshed by `make advisories`; see
.ci/refresh_advisories.py). A package is affected when its locked version falls in an
advisory's `versions` or in one of its ECOSYSTEM ranges (OSV's rule: sorted events,
`introduced` opens, `fixed` closes before, `last_affected` closes after; PEP 440 order
via `packaging`). The check fails when

- a locked version is affected by an advisory that docs/reliability.md does not list
  under "Accepted advisories" with a reason;
- the snapshot has no data for a locked package, or its data covers other versions than
  the locked one (refresh the snapshot after changing the lock) and docs/reliability.md
  does not list that version, with a reason, under "Locked versions outside the snapshot";
- a lock file is missing, or no package was checked at all (an empty or unreadable lock
  is a failure, never a pass).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CODE = ["outcome", "questionnaires", "reports"]
LOCKS = [ROOT / "requirements" / "run.txt", ROOT / "requirements" / "test.txt"]
SNAPSHOT = ROOT / ".ci" / "advisories"
EXCEPTIONS_DOC = ROOT / "docs" / "reliability.md"
EXCEPTIONS_HEADING = "Accepted advisories"
UNCOVERED_HEADING = "Locked versions outside the snapshot"

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


@dataclass(frozen=True)
class Finding:
    package: str
    version: str
    advisory: str
    aliases: tuple[str, ...]
    summary: str


def locked_packages(locks: Iterable[Path] = LOCKS) -> set[tuple[str, str]]:
    """(canonical name, version) of every `name==version` pin in the lock files.

    A universal lock may pin two versions of one package (one per Python version marker);
    both are returned.
    """
    pins: set[tuple[str, str]] = set()
    for lock in locks:
        if not lock.exists():
            continue
        for line in lock.read_text(encoding="utf-8").splitlines():
            match = _PIN.match(line.strip())
            if match:
                pins.add((canonicalize_name(match[1]), match[2]))
    return pins


def version_affected(version: str, affected: dict[str, Any]) -> bool:
    """Whether `version` falls in one OSV `affected` entry (its versions or its ranges)."""
    if version in {str(v) for v in affected.get("versions") or []}:
        return True
    try:
        target = Version(version)
    except InvalidVersion:
        return False
    for range_ in affected.get("ranges") or []:
        if range_.get("type") != "ECOSYSTEM":
            continue  # GIT ranges name commits, not releases
        if _in_range(target, range_.get("events") or []):
            return True
    return False


def _event_key(event: dict[str, Any]) -> Version:
    value = next(iter(event.values()))
    return Version("0") if str(value) == "0" else Version(str(value))


def _in_range(target: Version, events: list[dict[str, Any]]) -> bool:
    affected = False
    usable = [e for e in events if set(e) & {"introduced", "fixed", "last_affected"}]
    try:
        ordered = sorted(usable, key=_event_key)
    except InvalidVersion:
        return False
    for event in ordered:
        bound = _event_key(event)
        if "introduced" in event:
            affected = affected or target >= bound
        elif ("fixed" in event and target >= bound) or (
                "last_affected" in event and target > bound):
            affected = False
    return affected


def load_index(snapshot: Path = SNAPSHOT) -> dict[str, Any]:
    path = snapshot / "index.json"
    if not path.exists():
        return {}
    index: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return index


def advisories_for(name: str, snapshot: Path = SNAPSHOT) -> list[dict[str, Any]]:
    folder = snapshot / name
    if not folder.is_dir():
        return []
    return [yaml.safe_load(p.read_text(encoding="utf-8"))
            for p in sorted(folder.iterdir()) if p.suffix in (".yaml", ".yml", ".json")]


def findings_for(name: str, version: str,
                 snapshot: Path = SNAPSHOT) -> list[Finding]:
    """Advisories of the snapshot (withdrawn ones aside) that affect `name` `version`."""
    found = []
    for advisory in advisories_for(name, snapshot):
        if not isinstance(advisory, dict) or advisory.get("withdrawn"):
            continue
        for affected in advisory.get("affected") or []:
            package = affected.get("package") or {}
            if package.get("ecosystem", "PyPI") != "PyPI":
                continue
            if canonicalize_name(str(package.get("name", name))) != name:
                continue
            if version_affected(version, affected):
                text = str(advisory.get("summary") or advisory.get("details") or "").strip()
                found.append(Finding(name, version, str(advisory.get("id")),
                                     tuple(advisory.get("aliases") or ()),
                                     text.splitlines()[0][:100] if text else ""))
                break
    return found


def _table(doc: Path, heading: str) -> list[list[str]]:
    """The body rows of the first Markdown table under `heading` in `doc`, as cells."""
    if not doc.exists():
        return []
    rows: list[list[str]] = []
    in_section = header_seen = False
    for line in doc.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            in_section = line.lstrip("#").strip().lower() == heading.lower()
            header_seen = False
            continue
        if not in_section or not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not header_seen:  # the header row, then the |---| row
            header_seen = True
            continue
        if all(set(c) <= set("-: ") for c in cells):
            continue
        rows.append(cells)
    return rows


def accepted_advisories(doc: Path = EXCEPTIONS_DOC) -> dict[tuple[str, str], str]:
    """{(canonical package, advisory id or alias): reason} from the doc's "Accepted
    advisories" table, whose rows are `| advisory | package | reason |`.

    A row without a reason is no exception.
    """
    accepted: dict[tuple[str, str], str] = {}
    for cells in _table(doc, EXCEPTIONS_HEADING):
        if len(cells) >= 3 and all(cells[:3]):
            accepted[(canonicalize_name(cells[1].strip("`")), cells[0].strip("`").upper())] = (
                cells[2])
    return accepted


def uncovered_versions(doc: Path = EXCEPTIONS_DOC) -> dict[tuple[str, str], str]:
    """{(canonical package, version): reason} from the doc's "Locked versions outside the
    snapshot" table, whose rows are `| package | version | reason |`: versions the
    snapshot's source has no data for, accepted unchecked for the stated reason.
    """
    accepted: dict[tuple[str, str], str] = {}
    for cells in _table(doc, UNCOVERED_HEADING):
        if len(cells) >= 3 and all(cells[:3]):
            accepted[(canonicalize_name(cells[0].strip("`")), cells[1].strip("`"))] = cells[2]
    return accepted


def audit(locks: Iterable[Path] = LOCKS, snapshot: Path = SNAPSHOT,
          doc: Path = EXCEPTIONS_DOC) -> tuple[int, list[str]]:
    """Check every locked package against the snapshot; (exit status, report lines)."""
    lines: list[str] = []
    locks = list(locks)
    pins = locked_packages(locks)
    index = load_index(snapshot)
    covered = index.get("packages", {})
    accepted = accepted_advisories(doc)
    uncovered = uncovered_versions(doc)
    status = 0
    unchecked = 0
    if not index:
        lines.append(f"advisories: no snapshot at {snapshot} (run `make advisories`)")
        status = 1
    for lock in locks:
        if not lock.exists():
            lines.append(f"advisories: lock file {lock} is missing (run `make lock`)")
            status = 1
    if not pins:
        lines.append("advisories: 0 locked packages found in "
                     + ", ".join(str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)
                                 for p in locks) + ": nothing was checked")
        return 1, lines
    checked = 0
    for name, version in sorted(pins):
        entry = covered.get(name)
        if entry is None:
            lines.append(f"advisories: {name} {version} is locked but the snapshot has no "
                         f"data for it (run `make advisories`)")
            status = 1
            continue
        versions = entry.get("versions", "all")
        if versions != "all" and version not in versions:
            reason = uncovered.get((name, version))
            if reason:
                lines.append(f"advisories: {name} {version} not checked (the snapshot's data "
                             f"covers {', '.join(versions)}): accepted in "
                             f"docs/reliability.md: {reason}")
                unchecked += 1
            else:
                lines.append(f"advisories: the snapshot's data covers {name} "
                             f"{', '.join(versions)}, the lock has {version} (run `make "
                             f"advisories` where GitHub is reachable, or document it)")
                status = 1
            continue
        checked += 1
        for finding in findings_for(name, version, snapshot):
            ids = {finding.advisory.upper(), *(a.upper() for a in finding.aliases)}
            reason = next((accepted[(name, i)] for i in sorted(ids) if (name, i) in accepted),
                          None)
            label = f"{name} {version}: {finding.advisory}"
            if finding.aliases:
                label += f" ({', '.join(finding.aliases)})"
            if reason:
                lines.append(f"advisories: {label}: accepted in docs/reliability.md: {reason}")
            else:
                lines.append(f"advisories: {label}: {finding.summary}")
                status = 1
    refreshed = index.get("refreshed", "?")
    source = index.get("source", "?")
    lines.append(f"advisories: checked {checked} of {len(pins)} locked package versions "
                 f"against the snapshot of {refreshed} ({source}); {unchecked} "
                 f"documented as outside it")
    if checked == 0:
        lines.append("advisories: 0 packages checked: failing")
        status = 1
    elif status == 0:
        lines.append("advisories: no known vulnerability outside the accepted ones")
    return status, lines


def bandit() -> int:
    result = subprocess.run([str(BIN / "bandit"), "-q", "-r", *CODE, "--severity-level",
                             "medium", "-f", "txt"], capture_output=True, text=True,
                            cwd=ROOT)
    if result.returncode != 0:
        print(result.stdout or result.stderr)
        print("bandit: findings of medium or high severity (see above)")
        return 1
    print("bandit: no medium or high severity finding in", ", ".join(CODE))
    return 0


def advisories() -> int:
    status, lines = audit()
    print("\n".join(lines))
    return status


if __name__ == "__main__":
    sys.exit(bandit() | advisories())
