"""Refresh the advisory snapshot in .ci/advisories/ for every locked package (`make
advisories`; the only step of the audit that needs the network).

Sources, in order:

1. The PyPA advisory database (github.com/pypa/advisory-database), the OSV records that
   PyPI and pip-audit use. Its archive is downloaded and, for each locked package, the
   files under vulns/<package>/ are copied verbatim to .ci/advisories/<package>/. These
   cover every version of the package ("versions": "all" in index.json).
2. Where GitHub cannot be reached: PyPI's JSON API, whose "vulnerabilities" list (from
   the same OSV data) is given only for a project's latest release. Each entry is written
   as an OSV record naming that release; the package counts as covered for that version
   only, so the audit refuses a locked version the snapshot does not cover rather than
   pass it unchecked (unless docs/reliability.md lists it, with a reason, under "Locked
   versions outside the snapshot").

index.json records the source, the date and the versions each package's data covers.
Usage: python .ci/refresh_advisories.py [--source auto|pypa|pypi]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import shutil
import sys
import tarfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from packaging.utils import canonicalize_name

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dependency_audit import SNAPSHOT
from dependency_audit import locked_packages

PYPA_ARCHIVE = ("https://github.com/pypa/advisory-database/archive/refs/heads/main.tar.gz")
PYPI_JSON = "https://pypi.org/pypi/{name}/json"
TIMEOUT = 60


def _get(url: str) -> bytes:
    if not url.startswith("https://"):
        raise ValueError(f"not an https URL: {url}")
    request = urllib.request.Request(url, headers={"User-Agent": "outcome-advisories"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
        body: bytes = response.read()
    return body


def from_pypa(names: set[str], out: Path) -> dict[str, Any]:
    """Copy vulns/<package>/*.yaml of the PyPA database for `names` into `out`."""
    covered: dict[str, Any] = {name: {"versions": "all"} for name in names}
    with tarfile.open(fileobj=io.BytesIO(_get(PYPA_ARCHIVE)), mode="r:gz") as archive:
        for member in archive.getmembers():
            parts = Path(member.name).parts  # advisory-database-main/vulns/<package>/<id>.yaml
            if len(parts) != 4 or parts[1] != "vulns" or not member.isfile():
                continue
            name = canonicalize_name(parts[2])
            if name not in names or not parts[3].endswith((".yaml", ".yml")):
                continue
            source = archive.extractfile(member)
            if source is None:
                continue
            (out / name).mkdir(exist_ok=True)
            (out / name / parts[3]).write_bytes(source.read())
    return covered


def from_pypi(pins: set[tuple[str, str]], out: Path) -> dict[str, Any]:
    """OSV records for each package's latest release from PyPI's JSON API."""
    covered: dict[str, Any] = {}
    older = 0
    for name in sorted({n for n, _ in pins}):
        data = json.loads(_get(PYPI_JSON.format(name=name)))
        latest = data["info"]["version"]
        covered[name] = {"versions": [latest]}
        locked = sorted(v for n, v in pins if n == name)
        if locked != [latest]:
            print(f"  {name}: locked {', '.join(locked)}, PyPI's data covers {latest} only")
            older += 1
        for vuln in data.get("vulnerabilities") or []:
            record = {
                "id": vuln["id"],
                "aliases": vuln.get("aliases") or [],
                "summary": vuln.get("summary") or "",
                "details": vuln.get("details") or "",
                "withdrawn": vuln.get("withdrawn"),
                "affected": [{"package": {"ecosystem": "PyPI", "name": name},
                              "versions": [latest]}],
                "references": [{"type": "ADVISORY", "url": vuln["link"]}]
                if vuln.get("link") else [],
                "database_specific": {"source": "PyPI JSON API, latest release only",
                                      "fixed_in": vuln.get("fixed_in") or []},
            }
            (out / name).mkdir(exist_ok=True)
            (out / name / f"{vuln['id']}.yaml").write_text(
                yaml.safe_dump(record, sort_keys=False, allow_unicode=True), encoding="utf-8")
    if older:
        print(f"advisories: {older} packages have a locked version older than their latest "
              f"release, which PyPI's data does not describe: `make lock UPGRADE=1 "
              f"advisories` moves the lock to the latest releases, or list the versions the "
              f"lock must keep in docs/reliability.md (\"Locked versions outside the "
              f"snapshot\")")
    return covered


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", choices=["auto", "pypa", "pypi"], default="auto")
    args = parser.parse_args()
    pins = locked_packages()
    if not pins:
        print("advisories: no locked package found; run `make lock` first")
        return 1
    names = {name for name, _ in pins}
    staging = SNAPSHOT.with_name(SNAPSHOT.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    source = ""
    covered: dict[str, Any] = {}
    if args.source in ("auto", "pypa"):
        try:
            covered = from_pypa(names, staging)
            source = "PyPA advisory database (github.com/pypa/advisory-database, main)"
        except (urllib.error.URLError, OSError, tarfile.TarError) as error:
            print(f"advisories: the PyPA advisory database is unreachable ({error})")
            if args.source == "pypa":
                return 1
            shutil.rmtree(staging)
            staging.mkdir()
    if not source:
        covered = from_pypi(pins, staging)
        source = "PyPI JSON API (OSV data for each package's latest release)"
    packages = ",\n".join(f"  {json.dumps(name)}: {json.dumps(entry)}"
                          for name, entry in sorted(covered.items()))
    (staging / "index.json").write_text(
        f'{{\n "source": {json.dumps(source)},\n'
        f' "refreshed": "{dt.datetime.now(dt.UTC).date().isoformat()}",\n'
        f' "packages": {{\n{packages}\n }}\n}}\n', encoding="utf-8")
    shutil.rmtree(SNAPSHOT, ignore_errors=True)
    staging.rename(SNAPSHOT)
    count = sum(1 for _ in SNAPSHOT.glob("*/*.yaml"))
    print(f"advisories: {count} advisories for {len(covered)} packages from {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
