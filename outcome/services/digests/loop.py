"""The supervisor's digest with the agenda and the fidelity figures (issue 19).

:func:`build_supervisor_digest` is :func:`~outcome.services.digests.figures.build_digest`
plus, from the same definitions as the supervision pages, the supervisor's agenda as at
production (:mod:`outcome.services.supervision_agenda`: client codes and states) and the
fidelity figures of the twelve weeks ending with the digest's week
(:mod:`outcome.services.fidelity`). Kept apart from ``figures`` because the fidelity
figures read through its :class:`~outcome.services.digests.figures.WeekReader`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy.orm import Session

from outcome.models import Clinic
from outcome.models import User
from outcome.services.digests.figures import TREND_WEEKS
from outcome.services.digests.figures import Week
from outcome.services.digests.figures import build_digest
from outcome.services.fidelity import fidelity
from outcome.services.supervision_agenda import agenda
from questionnaires.loader import InstrumentLibrary
from reports.digest import AgendaEntry
from reports.digest import Digest


def build_supervisor_digest(session: Session, supervisor: User, week: str,
                            library: InstrumentLibrary, now: dt.datetime) -> Digest:
    """The digest of ``supervisor`` for ISO ``week`` (produced at ``now``) with the agenda
    at ``now`` and the fidelity figures of the :data:`TREND_WEEKS` weeks ending with
    ``week`` (Monday of the first to the end of ``week``, clinic time). Raises
    :class:`~outcome.services.digests.figures.DigestError` as ``build_digest`` does."""
    digest = build_digest(session, supervisor, week, library, now)
    clinic = session.get(Clinic, supervisor.clinic_id)
    assert clinic is not None
    this = Week.of(week, clinic.timezone)
    first = this.back(TREND_WEEKS - 1, clinic.timezone)
    return dataclasses.replace(
        digest,
        agenda=tuple(AgendaEntry(
            row.code, row.therapist_name, row.state, row.days, row.alert_kind, row.review_on,
            row.last_review.reviewed_on if row.last_review else None)
            for row in agenda(session, supervisor, now)),
        fidelity=tuple(fidelity(session, supervisor, library, start=first.start,
                                end=this.end)),
        fidelity_starts=first.monday)
