"""Helpers shared by the test modules: one place for app creation and for storing answers.

Test modules import these (``from tests.helpers import submit``) instead of from each other
or from ``conftest``. App creation goes through conftest's ``make_app`` and
``app_factory`` fixtures; :func:`new_app` is what they call, and the one call of
``create_app`` in the tests (a child process that cannot use fixtures calls it too).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from outcome.app import create_app
from outcome.core.answers import parse_answers
from outcome.services.monitoring import submit_administration
from questionnaires.loader import builtin_library

ROOT = Path(__file__).resolve().parent.parent
LIB = builtin_library()
PHQ = LIB.get("phq9")
# The first session of the answer helpers; week n is n weeks later.
T0 = dt.datetime(2026, 9, 1, 9, tzinfo=dt.UTC)
TEST_SECRET_KEY = "test-secret-key-" + "x" * 32


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
