"""The pre-session brief as plain data (issue 18): interface stub, filled by its owner."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from outcome.models import User
from questionnaires.loader import InstrumentLibrary
from reports.brief import Brief


def build_brief(session: Session, therapist: User, day: dt.date, library: InstrumentLibrary,
                now: dt.datetime, locale: str = "en") -> Brief:
    """The brief of ``therapist``'s appointments on ``day`` (clinic-local date), as of
    ``now``; words in ``locale``. Reads only."""
    raise NotImplementedError
