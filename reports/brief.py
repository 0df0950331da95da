"""The pre-session brief as plain data (issue 18): interface stub, filled by its owner."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Brief:
    """One therapist's brief for one day."""

    clinic_name: str
    therapist_name: str
    day: dt.date
    produced: dt.datetime  # "as of": answers after this are not in it
    timezone: str
