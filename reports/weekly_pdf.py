"""The weekly caseload report as PDF (issue 18): interface stub, filled by its owner."""

from __future__ import annotations

from reports.weekly import WeeklyReport


def render_weekly(report: WeeklyReport) -> bytes:
    """The report as PDF bytes (the same report always gives the same bytes)."""
    raise NotImplementedError
