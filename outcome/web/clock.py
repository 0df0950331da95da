"""The edge's clock. The core never reads a clock; edges pass ``now`` in.

Tests replace the app's clock (:func:`outcome.extensions.clock`) with a frozen callable instead of
sleeping.
"""

from __future__ import annotations

import datetime as dt

from outcome.extensions import clock


def now() -> dt.datetime:
    """The current time, aware UTC, from the app's clock."""
    return clock()()
