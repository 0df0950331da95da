"""Acknowledging alerts: who, when, and a note saying what was done.

Alerts are raised, added to and resolved as an episode's signals are stored
(:func:`outcome.services.signals.update_episode_signals`); acknowledging one recomputes
them, so this module sits above :mod:`outcome.services.signals`, not beside it.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from outcome.models import Alert
from outcome.models import Episode
from outcome.models import User
from outcome.services.signals import lock_episode
from outcome.services.signals import update_episode_signals
from outcome.services.support import PLAN_KINDS
from questionnaires.loader import InstrumentLibrary

NOTE_MAX = 2000


class AlertError(ValueError):
    """An acknowledgement that cannot be saved; the message says why."""


def acknowledge_alert(session: Session, alert: Alert, user: User, note: str,
                      now: dt.datetime, library: InstrumentLibrary) -> Alert:
    """Mark an open alert acknowledged by ``user`` with a required note; flush.

    The note (1 to 2,000 characters, e.g. "discussed in session, safety plan updated")
    is kept with the user and time. The episode's urgency is recomputed at once, so an
    acknowledged critical answer no longer heads the caseload. A condition that persists
    (still red) keeps its colour but is not alerted again while acknowledged.

    Not-on-track and rupture alerts (:data:`outcome.services.support.PLAN_KINDS`) are
    refused: an action plan resolves them (issue 19; support.md, "The loop", 4).
    """
    if alert.kind in PLAN_KINDS:
        raise AlertError("An action plan resolves this kind of alert, not a note: start a "
                         "support check or record an action plan on the client's page.")
    text = (note or "").strip()
    if not text:
        raise AlertError("Please write a note saying what was done (for example "
                         "\"discussed in session, safety plan updated\").")
    if len(text) > NOTE_MAX:
        raise AlertError(f"The note is too long: at most {NOTE_MAX} characters.")
    # The episode's lock first (see lock_episode), then the alert as committed now: a
    # concurrent submission may have added to it, another acknowledgement closed it.
    lock_episode(session, alert.episode_id)
    session.refresh(alert)
    if alert.status != "open":
        raise AlertError("This alert is no longer open; it was acknowledged or resolved "
                         "already.")
    alert.status = "acknowledged"
    alert.acknowledged_dt = now
    alert.acknowledged_by_id = user.id
    alert.acknowledgement_note = text
    session.flush()
    episode = session.get(Episode, alert.episode_id)
    assert episode is not None
    update_episode_signals(session, episode, library, now)
    return alert
