"""The episode's treatment session number: what "session" means to the engine.

domain.md sections 3-4: "session" is the episode's treatment session, the appointment's
number among the sessions held, not a count of questionnaires. A session counts when its
appointment is attended or still scheduled (pre-session questionnaires are answered
before the appointment is marked attended); cancelled and missed (no-show) appointments
take no number, so a missed appointment does not advance t.

An administration's session number ``t``:

- linked to a counted appointment: that appointment's number;
- linked to none, or to a cancelled or missed one: the number of counted appointments
  that had started by its completion time, at least 1 (a form between sessions 3 and 4
  belongs to session 3: three sessions of treatment so far);
- in an episode with no counted appointment at all (a clinic that sends questionnaires
  only through the API): the n-th administration of the measure is session n, the only
  order there is.

Read-only; no flush.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Iterable
from collections.abc import Sequence

from sqlalchemy import Select
from sqlalchemy import bindparam
from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.models import Administration
from outcome.models import Appointment
from outcome.models.care import SESSION_STATUSES

COUNTED = SESSION_STATUSES  # statuses that take a session number: one list, in models


class SessionClock:
    """Counted appointments of some episodes: numbers and start times, in order."""

    def __init__(self, rows: Sequence[tuple[int, int, dt.datetime]]) -> None:
        self.number: dict[int, int] = {}
        self.starts: dict[int, list[dt.datetime]] = defaultdict(list)
        for appointment_id, episode_id, starts_dt in rows:
            self.starts[episode_id].append(starts_dt)
            self.number[appointment_id] = len(self.starts[episode_id])

    def session_numbers(self, episode_id: int,
                        administered: Sequence[tuple[int | None, dt.datetime]]) -> list[int]:
        """``t`` for each (appointment id or None, completion time) of one measure in
        ``episode_id``, in the order given (oldest first)."""
        starts = self.starts.get(episode_id)
        if not starts:
            return list(range(1, len(administered) + 1))
        out = []
        for appointment_id, completed in administered:
            number = self.number.get(appointment_id) if appointment_id else None
            out.append(number if number is not None
                       else max(1, bisect.bisect_right(starts, completed)))
        return out


def session_clock(session: Session, episode_ids: Sequence[int]) -> SessionClock:
    """The counted appointments of ``episode_ids`` (one query)."""
    rows = session.execute(_clock_statement(), {"episode_ids": list(episode_ids)}).all()
    return SessionClock([(int(a), int(e), s) for a, e, s in rows])


@functools.cache
def _clock_statement() -> Select:
    """:func:`session_clock`'s statement, built once (issue 21: every submission runs it)."""
    return (select(Appointment.id, Appointment.episode_id, Appointment.starts_dt)
            .where(Appointment.episode_id.in_(bindparam("episode_ids", expanding=True)),
                   Appointment.status.in_(COUNTED))
            .order_by(Appointment.episode_id, Appointment.starts_dt, Appointment.id))


def appointment_numbers(session: Session, episode_id: int) -> dict[int, int]:
    """Appointment id to session number (scheduled and attended appointments, in order)."""
    return dict(session_clock(session, [episode_id]).number)


class EpisodeClock:
    """One episode's view of the engine's :class:`SessionClock`, for pages: the session of
    one administration, or of one measure's series (the same rule, in one place)."""

    def __init__(self, clock: SessionClock, episode_id: int) -> None:
        self._clock, self._episode_id = clock, episode_id
        self.numbers = clock.number  # appointment id to session number
        self.starts = tuple(clock.starts.get(episode_id, ()))  # held sessions' starts

    def of(self, appointment_id: int | None, completed: dt.datetime) -> int:
        """The session of one administration: its appointment's number; without one (or
        with a cancelled one), the last session started by ``completed``, at least 1."""
        return self._clock.session_numbers(self._episode_id, [(appointment_id, completed)])[0]

    def series(self, rows: Iterable[Administration]) -> tuple[int, ...]:
        """The sessions of one measure's administrations, oldest first; without any
        appointment in the episode, 1, 2, 3... (the measure's own order)."""
        return tuple(self._clock.session_numbers(
            self._episode_id, [(row.appointment_id, row.completed_dt) for row in rows]))


def episode_clocks(session: Session, episode_ids: Iterable[int]) -> dict[int, EpisodeClock]:
    """The :class:`EpisodeClock` of each episode in ``episode_ids`` (one query)."""
    ids = list(episode_ids)
    engine = session_clock(session, ids)
    return {e: EpisodeClock(engine, e) for e in ids}
