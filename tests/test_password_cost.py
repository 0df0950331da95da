"""Production's argon2id parameters (issue 21).

The test processes hash with cheap parameters (tests/conftest.py, ``PRODUCTION_HASHER``);
the application keeps argon2-cffi's RFC 9106 low-memory profile, checked here in a fresh
process that the suite's conftest never touched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from argon2.profiles import RFC_9106_LOW_MEMORY

from tests.conftest import PRODUCTION_HASHER
from tests.helpers import ROOT

CHILD = """
import json
from outcome.services import passwords
literal = passwords._DUMMY_HASH
stored = passwords.hash_password("a long enough passphrase")
dummy = passwords._dummy_hash()
h = passwords._hasher
print(json.dumps({"stored": stored, "dummy": dummy, "literal": literal,
                  "dummy_verifies": h.verify(dummy, passwords._EQUALISER_TEXT),
                  "unknown_account": passwords.verify_password(None, "x" * 20),
                  "time_cost": h.time_cost,
                  "memory_cost": h.memory_cost, "parallelism": h.parallelism,
                  "verifies": passwords.verify_password(stored, "a long enough passphrase"),
                  "rehash": passwords.needs_rehash(stored)}))
"""

PREFIX = (f"$argon2id$v=19$m={RFC_9106_LOW_MEMORY.memory_cost},"
          f"t={RFC_9106_LOW_MEMORY.time_cost},p={RFC_9106_LOW_MEMORY.parallelism}$")


def test_the_application_hashes_with_the_rfc_9106_low_memory_profile():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                            env=env, cwd=ROOT, timeout=120, check=True)
    child = json.loads(result.stdout)
    assert (child["time_cost"], child["memory_cost"], child["parallelism"]) == (
        RFC_9106_LOW_MEMORY.time_cost, RFC_9106_LOW_MEMORY.memory_cost,
        RFC_9106_LOW_MEMORY.parallelism) == (3, 65536, 4)
    assert child["stored"].startswith(PREFIX), child["stored"]
    # The unknown-account check costs what a real account's does.
    assert child["dummy"].startswith(PREFIX), child["dummy"]
    # ...and is the literal kept in the module (no hash made at import), a real hash of
    # the fixed string.
    assert child["dummy"] == child["literal"] and child["dummy_verifies"]
    assert child["unknown_account"] is False
    assert child["verifies"] and not child["rehash"]


def test_the_suite_kept_the_production_hasher_aside():
    assert PRODUCTION_HASHER.hash("a long enough passphrase").startswith(PREFIX)
