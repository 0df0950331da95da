"""docs/api.md is true: its walk-through runs as written against a real server.

The test creates a clinic with a therapist and an admin, makes a token with the
command the server's operator would use (``outcome tokens create --user``), starts gunicorn
(``outcome serve``) on loopback, and runs the walk-through's shell block with bash,
curl and jq, exactly as an integrator would copy it from the page.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome import schema
from outcome.db import make_engine
from outcome.models import Administration
from outcome.models import Clinic
from outcome.models import User
from tests.helpers import free_port

# One backend (conftest's one_backend rule): this checks that the documented walkthrough
# runs as written; every request in it is made on both backends by tests/test_api*.py.
pytestmark = pytest.mark.one_backend

ROOT = Path(__file__).resolve().parent.parent
OUTCOME = str(Path(sys.executable).parent / "outcome")
DOC = ROOT / "docs" / "api.md"


def walkthrough() -> str:
    """The shell block after the one that sets BASE and TOKEN, in the first-session part."""
    text = DOC.read_text(encoding="utf-8")
    part = text[text.index("## A first session"):]
    blocks = re.findall(r"```sh\n(.*?)```", part, flags=re.S)
    assert blocks[0].strip().startswith("BASE="), "the first block sets BASE and TOKEN"
    return blocks[1]


@pytest.mark.slow
def test_the_walkthrough_runs_as_written(tmp_path, fresh_database_url):
    for tool in ("bash", "curl", "jq"):
        assert subprocess.run(["which", tool], capture_output=True).returncode == 0, \
            f"{tool} is needed (make test installs it)"
    engine = make_engine(fresh_database_url)
    schema.upgrade(engine)
    with Session(engine) as store:
        clinic = Clinic(slug="docs", name="Docs Clinic", timezone="Europe/London")
        store.add(clinic)
        store.flush()
        store.add_all([User(clinic_id=clinic.id, email="admin@docs.example",
                            display_name="Admin", is_admin=True),
                       User(clinic_id=clinic.id, email="therapist@docs.example",
                            display_name="Therapist", is_therapist=True)])
        store.commit()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTCOME_")}
    env.update(OUTCOME_INSTANCE_PATH=str(tmp_path / "instance"),
               OUTCOME_DATABASE_URL=fresh_database_url, OUTCOME_SECRET_KEY="s" * 40,
               OUTCOME_TIMEZONE="Europe/London")
    made = subprocess.run([OUTCOME, "tokens", "create", "--user", "therapist@docs.example",
                           "--name", "EHR", "--scope", "read", "--scope", "write"],
                          env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    token = re.search(r"oc_[A-Za-z0-9_-]{20,}", made.stdout).group(0)
    port = free_port()
    server = subprocess.Popen([OUTCOME, "serve", "--host", "127.0.0.1", "--port", str(port),
                               "--workers", "1"], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise AssertionError("the server did not start") from None
                time.sleep(0.2)
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", walkthrough()],
                                env={**env, "BASE": base, "TOKEN": token},
                                capture_output=True, text=True, timeout=60)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert re.search(r"client C-[0-9A-Z]{6}", out)
    assert re.search(r"appointment \d+", out)
    assert '"total": 11' in out and '"band": "moderate"' in out and '"urgency": 0' in out
    assert "critical_item" in out and "PHQ-9 item 9" in out
    with Session(engine) as store:
        stored = store.scalars(select(Administration)).all()
        assert [(a.instrument_id, a.total) for a in stored] == [("phq9", 11)]
        assert stored[0].appointment_id is not None
        assert stored[0].completed_dt <= dt.datetime.now(dt.UTC)
    engine.dispose()
