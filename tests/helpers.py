"""Helpers shared by the test modules: one place for app creation and for storing answers.

Test modules import these (``from tests.helpers import submit``) instead of from each other
or from ``conftest``. App creation goes through conftest's ``make_app`` and
``app_factory`` fixtures; :func:`new_app` is what they call, and the one call of
``create_app`` in the tests (a child process that cannot use fixtures calls it too).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import re
import shutil
import socket
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import MetaData
from sqlalchemy import create_engine
from sqlalchemy import select
from sqlalchemy.exc import SAWarning

from outcome.app import create_app
from outcome.core.answers import parse_answers
from outcome.services.submissions import submit_administration
from questionnaires.loader import builtin_library

ROOT = Path(__file__).resolve().parent.parent
LIB = builtin_library()
PHQ = LIB.get("phq9")
# The first session of the answer helpers; week n is n weeks later.
T0 = dt.datetime(2026, 9, 1, 9, tzinfo=dt.UTC)
TEST_SECRET_KEY = "test-secret-key-" + "x" * 32
# Markup in stored text (a client's goal, a note): pages and PDFs must show it as text.
CANARY = "<img src=x onerror=alert(1)>"
# The demo clinic the suite shares (conftest's ``demo_databases``): seeded once per run for
# this Sunday (its last week is 2026-W47), in Berlin so a week's bounds are not midnight
# UTC; pages that show it run on a clock frozen at DEMO_NOW.
DEMO_TODAY = dt.date(2026, 11, 22)
DEMO_TIMEZONE = "Europe/Berlin"
DEMO_PASSWORD = "demo password for tests"
DEMO_NOW = dt.datetime(2026, 11, 22, 9, 0, tzinfo=dt.UTC)


def new_app(database_url: str, **config):
    """A test app on ``database_url``: ENV test, a fixed secret key and rate limits off
    (tests that need limits pass ``RATELIMIT_ENABLED=True``); ``config`` overrides."""
    return create_app({"ENV": "test", "DATABASE_URL": database_url,
                       "SECRET_KEY": TEST_SECRET_KEY, "RATELIMIT_ENABLED": False, **config})


def submit(store, episode, instrument, values, week, key=None):
    """Store ``values`` (item id -> value) for ``instrument`` as answered ``week`` weeks
    after :data:`T0`, through the production submission service; returns its result
    ``(administration, created)``. The idempotency key defaults to episode, instrument
    and week, so sending the same week twice is a repeat."""
    answers = parse_answers(instrument, values)
    assert not isinstance(answers, list), answers
    when = T0 + dt.timedelta(weeks=week)
    return submit_administration(
        store, episode=episode, instrument=instrument, answers=answers, completed_dt=when,
        idempotency_key=key or f"{episode.id}:{instrument.id}:{week}", library=LIB, now=when)


def answer(store, episode, levels, item9=0):
    """PHQ-9 once a week from :data:`T0`, every item but the last at ``levels[week]``; the
    last answer has ``item9`` on the critical item 9 (non-zero raises an alert)."""
    for week, level in enumerate(levels):
        values = {f"phq9_{i}": level for i in range(1, 9)}
        values["phq9_9"] = item9 if week == len(levels) - 1 else 0
        submit(store, episode, PHQ, values, week, key=f"{episode.id}:{week}")


def artifacts(name: str) -> Path:
    """``test-artifacts/<name>``, where tests leave screenshots and pages for people to
    look at. The PostgreSQL run writes under ``test-artifacts/postgresql/`` so that the two
    runs of ``make test``, side by side, never overwrite each other's files."""
    backend = os.environ.get("OUTCOME_TEST_RUN_DB", "sqlite")
    base = ROOT / "test-artifacts"
    return base / name if backend == "sqlite" else base / backend / name


# The size Playwright's ``page.screenshot(full_page=True)`` captures: the largest of the
# document's and the body's scroll, offset and client sizes (after the fonts are ready).
_FULL_PAGE_SIZE = """async () => {
  await document.fonts.ready;
  const [d, b] = [document.documentElement, document.body || document.documentElement];
  return {width: Math.max(b.scrollWidth, d.scrollWidth, b.offsetWidth, d.offsetWidth,
                          b.clientWidth, d.clientWidth),
          height: Math.max(b.scrollHeight, d.scrollHeight, b.offsetHeight, d.offsetHeight,
                           b.clientHeight, d.clientHeight),
          viewWidth: innerWidth, viewHeight: innerHeight};
}"""


def full_page_screenshot(page, path: Path | str) -> None:
    """A full-page PNG of ``page`` at ``path``, for people to look at: the picture
    ``page.screenshot(path=..., full_page=True)`` takes (the same size and pixels, but for
    a focused field's text caret, which Playwright hides), through
    Chromium's own ``Page.captureScreenshot`` with ``optimizeForSpeed``, which compresses
    the PNG less hard. Measured on 5 December 2026 (tests/test_browser_pages.py), a third
    less CPU a picture than Playwright's, and the browser tests take hundreds of them."""
    size = page.evaluate(_FULL_PAGE_SIZE)
    beyond = size["width"] > size["viewWidth"] or size["height"] > size["viewHeight"]
    cdp = page.context.new_cdp_session(page)
    try:
        data = cdp.send("Page.captureScreenshot", {
            "format": "png", "optimizeForSpeed": True, "captureBeyondViewport": beyond,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"],
                     "scale": 1}})["data"]
    finally:
        cdp.detach()
    Path(path).write_bytes(base64.b64decode(data))


def free_port() -> int:
    """A free TCP port on loopback, for a server a test starts (parallel runs each get
    their own)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def flat(text: str) -> str:
    """``text`` with every run of whitespace made one space (PDF text wraps anywhere)."""
    return " ".join(text.split())


def save_pngs(pdf: bytes, name: str) -> list[Path]:
    """Render each page to ``test-artifacts/reports/<name>-<n>.png`` (60 dpi)."""
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed: `make browser-tools` "
                    "installs it; the PNG pages were not rendered")
    folder = artifacts("reports")
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(f"{name}-*.png"):
        old.unlink()
    source = folder / f"{name}.pdf"
    source.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "60", "-png", str(source), str(folder / name)],
                   check=True, timeout=60)
    return sorted(folder.glob(f"{name}-*.png"))


def simulated(beta0=-1.0, beta1=-0.15, episodes=400, sessions=12, noise=2.0, seed=3):
    """Scores of ``episodes`` simulated PHQ-9 courses on a log-linear recovery curve
    (intake 10-25; ``mean = x0 + (beta0 + beta1 * x0) * ln(session)``; normal noise of SD
    ``noise``): arrays of episode index, session number and score."""
    rng = np.random.default_rng(seed)
    ep, t, y = [], [], []
    for e in range(episodes):
        x0 = rng.uniform(10, 25)
        for s in range(1, sessions + 1):
            mean = x0 + (beta0 + beta1 * x0) * np.log(s)
            ep.append(e)
            t.append(s)
            y.append(x0 if s == 1 else mean + rng.normal(0, noise))
    return np.array(ep), np.array(t), np.array(y)


# --- wording: what no reader may see (tests/test_wording.py, issue 15) ---------------------

# What no reader may see, in either language: English plurals after 1, doubled words
# ("(unverified) (unverified)", "red Red:"), internal ids ("phq9_9", "harmed"), template
# leftovers, a command line, a missing value's repr, Russian plural forms after 1, 2, 5.
FORBIDDEN = [
    (re.compile(r"(?<![\d.,])1 (points|sessions|episodes|clients|items|scores)\b"),
     "an English plural after 1"),
    (re.compile(r"\b([^\W\d_]+)[\s()]+\1\b", re.IGNORECASE), "a doubled word"),
    (re.compile(r"\b([^\W\d_]+(?: [^\W\d_]+)+)[\s():;,]+\1\b", re.IGNORECASE),
     "a doubled phrase"),
    (re.compile(r"\b[a-z0-9]+_\d+\b"), "an internal item id"),
    (re.compile(r"\bharmed\b", re.IGNORECASE), "the internal category 'harmed'"),
    (re.compile("\\b\u0412\u0440\u0435\u0434\\b"), "'harmed' in Russian (Vred)"),
    (re.compile(r"[{}]"), "a brace"),
    (re.compile(r"\b(by|down|up|на) [-\u2212]\d|[-\u2212]\d[\d.,]* points? (below|above)"),
     "a negative amount"),
    (re.compile(r"%\("), "a placeholder"),
    (re.compile(r"`"), "a backtick"),
    (re.compile(r"\b(nan|None)\b"), "a missing value's repr"),
    (re.compile(r"(?<![\d,])1 (баллов|балла|встреч|встречи|курсов)\b"), "a Russian plural after 1"),
    (re.compile(r"(?<![\d,])(2|22) баллов\b"), "a Russian plural after 2"),
    (re.compile(r"(?<![\d,])(5|25) (балла|балл)\b"), "a Russian plural after 5"),
]


def faults(text: str) -> list[str]:
    """What of :data:`FORBIDDEN` ``text`` holds (the first of each kind), in words."""
    return [f"{why}: {m.group(0)!r}" for pattern, why in FORBIDDEN
            for m in [pattern.search(text)] if m]


def consent_given(session, client, now):
    """The client agreed to the clinic's consent text (issue 20), as on the consent page
    of their first link: for tests about later visits in a clinic that asks online."""
    from outcome.models import Clinic
    from outcome.services import consent

    text = consent.current_text(session, session.get(Clinic, client.clinic_id), client.locale,
                                now)
    return consent.record_decision(session, client=client, text=text, decision="agreed",
                                   channel="link", now=now)


def independent_figures(url: str) -> dict[str, tuple[int, str]]:
    """Per table: row count and a SHA-256 of its rows as stored (encrypted columns as their
    ciphertext), sorted as text; computed by reflection, independently of outcome.ops, to
    compare a restored database with its source (tests/test_backup.py, test_encryption.py)."""
    engine = create_engine(url)
    try:
        metadata = MetaData()
        with warnings.catch_warnings():  # expression indexes are not reflected; no matter
            warnings.simplefilter("ignore", SAWarning)
            metadata.reflect(engine)
        figures = {}
        with engine.connect() as conn:
            # By name: a reflected schema loses use_alter, so the cycle alerts -> plans ->
            # checks -> alerts (issue 19) cannot be sorted by dependency, nor need it be.
            for _name, table in sorted(metadata.tables.items()):
                rows = sorted(repr(tuple(row)) for row in conn.execute(select(table)))
                figures[table.name] = (len(rows),
                                       hashlib.sha256("\n".join(rows).encode()).hexdigest())
        return figures
    finally:
        engine.dispose()
