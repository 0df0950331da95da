"""The pre-session brief as PDF (issue 18): interface stub, filled by its owner."""

from __future__ import annotations

from reports.brief import Brief


def render_brief(brief: Brief) -> bytes:
    """The brief as PDF bytes (the same brief always gives the same bytes)."""
    raise NotImplementedError
