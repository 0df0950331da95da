"""The layering rules of docs/architecture: which layers may import which frameworks.

Each check runs in a fresh interpreter, so modules imported by other tests cannot hide
a forbidden import.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# (packages whose every module is imported, frameworks that must stay out)
APPLICATION = ["outcome.models", "outcome.services", "outcome.web", "outcome.cli",
               "outcome.app", "outcome.extensions", "outcome.db"]
RULES = [
    # The pure core and the instrument library: stdlib, numpy and the definitions' own
    # parsers only (Flask keeps the same rule for its sansio layer): no web framework, no
    # database, no models, no use cases.
    (["outcome.core", "questionnaires"],
     ["flask", "sqlalchemy", "werkzeug", "jinja2", *APPLICATION]),
    # Reports turn plain data into bytes: no web, no database.
    (["reports"], ["flask", "sqlalchemy", "werkzeug", "outcome.web", "outcome.app"]),
    # The package root, configuration, persistence, services and ops (backup and restore)
    # run without Flask, so the CLI, the scheduler and tests use them directly.
    (["outcome.config", "outcome.encryption", "outcome.db", "outcome.models", "outcome.schema",
      "outcome.services",
      "outcome.ops"],
     ["flask", "werkzeug", "outcome.web", "outcome.cli", "outcome.app"]),
]


@pytest.mark.parametrize(("packages", "forbidden"), RULES, ids=lambda v: ",".join(v))
def test_layer_does_not_import(packages, forbidden):
    script = textwrap.dedent(f"""
        import importlib, pkgutil, sys
        imported = []
        for name in {packages!r}:
            module = importlib.import_module(name)
            imported.append(name)
            for info in pkgutil.walk_packages(getattr(module, "__path__", []), name + "."):
                importlib.import_module(info.name)
                imported.append(info.name)
        bad = [m for m in {forbidden!r} if m in sys.modules]
        print(len(imported))
        if bad:
            sys.exit("imports " + ", ".join(bad))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr or result.stdout
    assert int(result.stdout.strip()) >= len(packages)
