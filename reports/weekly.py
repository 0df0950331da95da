"""The weekly caseload report as plain data (issue 18): interface stub, filled by its owner."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class WeeklyReport:
    """One therapist's caseload report for one ISO week."""

    clinic_name: str
    therapist_name: str
    week: str
    starts: dt.date
    ends: dt.date
    produced: dt.datetime
    timezone: str
