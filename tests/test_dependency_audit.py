"""The dependency audit (.ci/dependency_audit.py, run by `make test` and `make audit`):
every locked package is checked offline against the advisory snapshot in .ci/advisories/,
a known vulnerability fails unless docs/reliability.md accepts it with a reason, and the
check can never pass having checked nothing (issue 16, finding 16: pip-audit "passed"
having audited 0 of 96 packages).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / ".ci" / "dependency_audit.py"

_spec = importlib.util.spec_from_file_location("dependency_audit", SCRIPT)
assert _spec and _spec.loader
audit_module = importlib.util.module_from_spec(_spec)
sys.modules["dependency_audit"] = audit_module
_spec.loader.exec_module(audit_module)

HASH = "    --hash=sha256:" + "0" * 64


def _lock(tmp_path: Path, *pins: str) -> Path:
    lock = tmp_path / "test.txt"
    lock.write_text("# a lock file\n" + "".join(f"{pin} \\\n{HASH}\n" for pin in pins))
    return lock


def _snapshot(tmp_path: Path, covered: dict[str, object],
              advisories: dict[str, list[dict]] | None = None,
              folder: str = "advisories") -> Path:
    snapshot = tmp_path / folder
    snapshot.mkdir()
    index = {"source": "fabricated", "refreshed": "2026-12-04",
             "packages": {name: {"versions": versions} for name, versions in covered.items()}}
    (snapshot / "index.json").write_text(json.dumps(index))
    for name, records in (advisories or {}).items():
        (snapshot / name).mkdir()
        for record in records:
            (snapshot / name / f"{record['id']}.json").write_text(json.dumps(record))
    return snapshot


def _doc(tmp_path: Path, accepted: str = "", uncovered: str = "") -> Path:
    doc = tmp_path / "reliability.md"
    doc.write_text(
        "# Reliability\n\nText.\n\n### Accepted advisories\n\n"
        "| advisory | package | reason |\n|---|---|---|\n" + accepted + "\n"
        "### Locked versions outside the snapshot\n\n"
        "| package | version | reason |\n|---|---|---|\n" + uncovered + "\n"
        "## Next section\n\n| a | b | c |\n|---|---|---|\n| X-1 | flask | not this table |\n")
    return doc


def _advisory(advisory_id: str, package: str, *events: dict[str, str],
              versions: tuple[str, ...] = (), **extra: object) -> dict:
    affected: dict = {"package": {"ecosystem": "PyPI", "name": package}}
    if events:
        affected["ranges"] = [{"type": "ECOSYSTEM", "events": list(events)}]
    if versions:
        affected["versions"] = list(versions)
    return {"id": advisory_id, "aliases": ["CVE-2099-0001"], "summary": "fabricated hole",
            "affected": [affected], **extra}


def _run(tmp_path: Path, lock: Path, snapshot: Path, doc: Path | None = None):
    return audit_module.audit([lock], snapshot, doc or _doc(tmp_path))


def test_fabricated_advisory_for_a_locked_version_fails(tmp_path):
    lock = _lock(tmp_path, "flask==3.1.3", "jinja2==3.1.6")
    snapshot = _snapshot(tmp_path, {"flask": "all", "jinja2": "all"}, {
        "flask": [_advisory("PYSEC-2099-1", "flask", {"introduced": "0"}, {"fixed": "3.1.4"})]})
    status, lines = _run(tmp_path, lock, snapshot)
    assert status == 1
    assert any("flask 3.1.3: PYSEC-2099-1 (CVE-2099-0001): fabricated hole" in line
               for line in lines), lines
    assert "checked 2 of 2 locked package versions" in lines[-1]


def test_an_advisory_for_other_versions_passes(tmp_path):
    lock = _lock(tmp_path, "flask==3.1.3")
    snapshot = _snapshot(tmp_path, {"flask": "all"}, {"flask": [
        _advisory("PYSEC-2099-1", "flask", {"introduced": "0"}, {"fixed": "3.1.3"}),
        _advisory("PYSEC-2099-2", "flask", {"introduced": "3.2.0"}),
        _advisory("PYSEC-2099-3", "flask", versions=("3.1.2",)),
        _advisory("PYSEC-2099-4", "flask", {"introduced": "0"}, withdrawn="2026-01-01"),
    ]})
    status, lines = _run(tmp_path, lock, snapshot)
    assert status == 0, lines
    assert lines[-1] == "advisories: no known vulnerability outside the accepted ones"


def test_a_documented_exception_is_honoured_and_one_without_reason_is_not(tmp_path):
    lock = _lock(tmp_path, "flask==3.1.3")
    snapshot = _snapshot(tmp_path, {"flask": "all"}, {
        "flask": [_advisory("PYSEC-2099-1", "flask", versions=("3.1.3",))]})
    accepted = _doc(tmp_path, accepted="| PYSEC-2099-1 | Flask | we never call it |\n")
    status, lines = _run(tmp_path, lock, snapshot, accepted)
    assert status == 0, lines
    assert any("accepted in docs/reliability.md: we never call it" in line for line in lines)
    by_alias = _doc(tmp_path, accepted="| `CVE-2099-0001` | flask | by its alias |\n")
    assert _run(tmp_path, lock, snapshot, by_alias)[0] == 0
    no_reason = _doc(tmp_path, accepted="| PYSEC-2099-1 | flask |  |\n")
    assert _run(tmp_path, lock, snapshot, no_reason)[0] == 1
    other_package = _doc(tmp_path, accepted="| PYSEC-2099-1 | jinja2 | wrong package |\n")
    assert _run(tmp_path, lock, snapshot, other_package)[0] == 1


def test_checking_zero_packages_fails(tmp_path):
    snapshot = _snapshot(tmp_path, {"flask": "all"})
    status, lines = _run(tmp_path, _lock(tmp_path), snapshot)
    assert status == 1
    assert "0 locked packages" in lines[-1]
    status, lines = audit_module.audit([tmp_path / "missing.txt"], snapshot, _doc(tmp_path))
    assert status == 1
    assert any("missing.txt is missing" in line for line in lines)
    lock = _lock(tmp_path, "flask==3.1.3")
    status, lines = audit_module.audit([lock, tmp_path / "missing.txt"], snapshot,
                                       _doc(tmp_path))
    assert status == 1
    # Every locked version documented as outside the snapshot: still nothing checked.
    lock = _lock(tmp_path, "flask==3.1.3")
    only = _snapshot(tmp_path, {"flask": ["3.1.4"]}, folder="other")
    doc = _doc(tmp_path, uncovered="| flask | 3.1.3 | a reason |\n")
    status, lines = audit_module.audit([lock], only, doc)
    assert status == 1
    assert "0 packages checked" in lines[-1]


def test_a_locked_package_missing_from_the_snapshot_fails(tmp_path):
    lock = _lock(tmp_path, "flask==3.1.3", "jinja2==3.1.6")
    status, lines = _run(tmp_path, lock, _snapshot(tmp_path, {"flask": "all"}))
    assert status == 1
    assert any("jinja2 3.1.6 is locked but the snapshot has no data" in line for line in lines)
    status, lines = _run(tmp_path, lock, tmp_path / "no-snapshot")
    assert status == 1
    assert any("no snapshot" in line for line in lines)


def test_a_locked_version_the_snapshot_does_not_cover_fails_unless_documented(tmp_path):
    lock = _lock(tmp_path, "flask==3.1.3", "numpy==2.4.6 ; python_full_version < '3.12'",
                 "numpy==2.5.5 ; python_full_version >= '3.12'")
    snapshot = _snapshot(tmp_path, {"flask": ["3.1.3"], "numpy": ["2.5.5"]})
    status, lines = _run(tmp_path, lock, snapshot)
    assert status == 1
    assert any("covers numpy 2.5.5, the lock has 2.4.6" in line for line in lines), lines
    doc = _doc(tmp_path, uncovered="| numpy | 2.4.6 | the last numpy for Python 3.11 |\n")
    status, lines = _run(tmp_path, lock, snapshot, doc)
    assert status == 0, lines
    assert "checked 2 of 3 locked package versions" in lines[-2]
    assert "1 documented as outside it" in lines[-2]


@pytest.mark.parametrize(("version", "events", "affected"), [
    ("1.0", [{"introduced": "0"}, {"fixed": "1.0"}], False),
    ("0.9", [{"introduced": "0"}, {"fixed": "1.0"}], True),
    ("1.0rc1", [{"introduced": "0"}, {"fixed": "1.0"}], True),  # PEP 440: rc1 < 1.0
    ("1.0.post1", [{"introduced": "0"}, {"fixed": "1.0"}], False),
    ("2.0", [{"introduced": "1.0"}, {"last_affected": "2.0"}], True),
    ("2.0.1", [{"introduced": "1.0"}, {"last_affected": "2.0"}], False),
    # Two ranges in one event list, given out of order.
    ("3.5", [{"fixed": "4.0"}, {"introduced": "3.0"}, {"fixed": "2.0"}, {"introduced": "1.0"}],
     True),
    ("2.5", [{"fixed": "4.0"}, {"introduced": "3.0"}, {"fixed": "2.0"}, {"introduced": "1.0"}],
     False),
    ("10.0", [{"introduced": "9.0"}], True),
    ("10.0", [{"introduced": "9.0"}, {"limit": "9.5"}], True),
])
def test_osv_ecosystem_ranges(version, events, affected):
    entry = {"ranges": [{"type": "ECOSYSTEM", "events": events}]}
    assert audit_module.version_affected(version, entry) is affected


def test_git_ranges_and_explicit_versions():
    assert not audit_module.version_affected(
        "1.0", {"ranges": [{"type": "GIT", "events": [{"introduced": "0"}]}]})
    assert audit_module.version_affected("1.0", {"versions": ["0.9", "1.0"]})


def test_the_real_snapshot_passes_with_every_locked_package_checked():
    status, lines = audit_module.audit()
    pins = audit_module.locked_packages()
    documented = audit_module.uncovered_versions()
    assert status == 0, "\n".join(lines)
    assert len(pins) > 50
    assert (f"checked {len(pins) - len(documented)} of {len(pins)} locked package versions"
            in lines[-2]), lines
    # Each documented gap is a locked version, with a reason.
    assert set(documented) <= pins
    assert all(documented.values())


def test_the_lock_files_pin_every_declared_dependency_with_hashes():
    """The lock was regenerated after the last change to pyproject.toml (`make lock`)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    run = audit_module.locked_packages([ROOT / "requirements" / "run.txt"])
    test = audit_module.locked_packages([ROOT / "requirements" / "test.txt"])
    assert run <= test
    extras = project["optional-dependencies"]
    for lock, declared in ((run, project["dependencies"] + extras["postgres"] + extras["redis"]),
                           (test, project["dependencies"] + extras["test"])):
        for text in declared:
            requirement = Requirement(text)
            name = canonicalize_name(requirement.name)
            versions = [v for n, v in lock if n == name]
            assert versions, f"{name} is declared in pyproject.toml but not locked"
            assert all(requirement.specifier.contains(v, prereleases=True)
                       for v in versions), (name, versions, str(requirement.specifier))
    for path in ("run.txt", "test.txt", "uv.txt"):
        text = (ROOT / "requirements" / path).read_text()
        blocks = [b for b in text.split("\n") if "==" in b and not b.lstrip().startswith("#")]
        assert blocks and text.count("--hash=sha256:") >= len(blocks), path
    names = {n for n, _ in test}
    assert {"setuptools", "pip", "uv"} <= names
    setuptools = [v for n, v in test if n == "setuptools"]
    assert all(int(v.split(".")[0]) >= 80 for v in setuptools), setuptools


@pytest.mark.slow
def test_the_audit_script_reports_how_many_packages_it_checked():
    """As `make test` runs it: bandit, then the snapshot check, exit 0, a count above 0."""
    result = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                            cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    checked = [line for line in result.stdout.splitlines() if " checked " in line]
    assert checked and " checked 0 " not in checked[0], result.stdout


def _refresh_module():
    spec = importlib.util.spec_from_file_location(
        "refresh_advisories", ROOT / ".ci" / "refresh_advisories.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_refresh_from_pypi_writes_records_the_audit_reads(tmp_path, monkeypatch):
    """PyPI's JSON API describes the latest release only: the records name that version,
    and the snapshot covers that version alone."""
    refresh = _refresh_module()
    vulnerable = {"info": {"version": "3.1.3"}, "vulnerabilities": [{
        "id": "PYSEC-2099-7", "aliases": ["CVE-2099-7"], "details": "a hole\nmore",
        "summary": None, "fixed_in": [], "link": "https://osv.dev/vulnerability/PYSEC-2099-7",
        "source": "osv", "withdrawn": None}]}
    clean = {"info": {"version": "3.1.7"}, "vulnerabilities": []}
    monkeypatch.setattr(refresh, "_get", lambda url: json.dumps(
        vulnerable if "/flask/" in url else clean).encode())
    snapshot = tmp_path / "advisories"
    snapshot.mkdir()
    covered = refresh.from_pypi({("flask", "3.1.3"), ("jinja2", "3.1.6")}, snapshot)
    assert covered == {"flask": {"versions": ["3.1.3"]}, "jinja2": {"versions": ["3.1.7"]}}
    (snapshot / "index.json").write_text(json.dumps({"packages": covered}))
    lock = _lock(tmp_path, "flask==3.1.3", "jinja2==3.1.6")
    status, lines = _run(tmp_path, lock, snapshot)
    assert status == 1
    assert any("flask 3.1.3: PYSEC-2099-7 (CVE-2099-7): a hole" in line for line in lines)
    assert any("covers jinja2 3.1.7, the lock has 3.1.6" in line for line in lines)


def test_refresh_from_the_pypa_database_copies_each_locked_package(tmp_path, monkeypatch):
    import io
    import tarfile

    refresh = _refresh_module()
    buffer = io.BytesIO()
    record = _advisory("PYSEC-2099-8", "Flask", {"introduced": "0"}, {"fixed": "4.0"})
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in ("advisory-database-main/vulns/Flask/PYSEC-2099-8.yaml",
                     "advisory-database-main/vulns/django/PYSEC-2099-9.yaml"):
            data = json.dumps(record).encode()  # JSON is YAML
            info = tarfile.TarInfo(path)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    monkeypatch.setattr(refresh, "_get", lambda url: buffer.getvalue())
    snapshot = tmp_path / "advisories"
    snapshot.mkdir()
    covered = refresh.from_pypa({"flask", "jinja2"}, snapshot)
    assert covered == {"flask": {"versions": "all"}, "jinja2": {"versions": "all"}}
    assert [p.name for p in snapshot.glob("*/*")] == ["PYSEC-2099-8.yaml"]
    (snapshot / "index.json").write_text(json.dumps({"packages": covered}))
    lock = _lock(tmp_path, "flask==3.1.3", "jinja2==3.1.6")
    status, lines = _run(tmp_path, lock, snapshot)
    assert status == 1
    assert any("flask 3.1.3: PYSEC-2099-8" in line for line in lines)
