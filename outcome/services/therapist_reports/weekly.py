"""The weekly caseload report as plain data (issue 18): interface stub, filled by its owner."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from outcome.models import User
from questionnaires.loader import InstrumentLibrary
from reports.weekly import WeeklyReport


def build_weekly(session: Session, therapist: User, week: str, library: InstrumentLibrary,
                 now: dt.datetime, locale: str = "en") -> WeeklyReport:
    """``therapist``'s caseload report for ISO ``week`` ("2026-W47", Monday to Sunday in
    the clinic's time zone), as of ``now``; words in ``locale``. Reads only."""
    raise NotImplementedError
