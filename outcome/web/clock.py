"""The edge's clock. The core never reads a clock; edges pass ``now`` in.

Tests replace ``app.extensions["outcome.clock"]`` with a frozen callable instead of
sleeping.
"""

from __future__ import annotations

import datetime as dt

from flask import current_app

from outcome.models.base import utcnow

EXTENSION_KEY = "outcome.clock"


def now() -> dt.datetime:
    """The current time, aware UTC, from the app's clock."""
    return current_app.extensions.get(EXTENSION_KEY, utcnow)()
