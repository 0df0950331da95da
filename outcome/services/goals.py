"""Goals agreed at intake, in the client's own words, rated each session with the GBO."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import exists
from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.models import Administration
from outcome.models import Episode
from outcome.models import Goal
from outcome.models.care import MAX_GOALS


class GoalError(ValueError):
    """Goals that cannot be set; the message says why."""


def set_goals(session: Session, episode: Episode, descriptions: list[str],
              now: dt.datetime) -> list[Goal]:
    """Set the episode's goals (1 to 3, in the client's words); flush.

    Goals can be reworded until the first rating; after that the ratings would no longer
    match their goal, so a change is refused.
    """
    texts = [d.strip() for d in descriptions]
    if not 1 <= len(texts) <= MAX_GOALS or any(not t for t in texts):
        raise GoalError(f"give 1 to {MAX_GOALS} goals, none empty")
    if any(len(t) > 500 for t in texts):
        raise GoalError("a goal has at most 500 characters")
    rated = session.scalar(select(exists().where(Administration.episode_id == episode.id,
                                                 Administration.instrument_id == "gbo")))
    if rated:
        raise GoalError("these goals have been rated already; rewording them would change "
                        "what the ratings mean")
    for goal in list(episode.goals):
        session.delete(goal)
    session.flush()
    goals = [Goal(episode_id=episode.id, position=n, description=text, created_dt=now)
             for n, text in enumerate(texts, start=1)]
    session.add_all(goals)
    session.flush()
    session.expire(episode, ["goals"])
    return goals


def goal_texts(session: Session, episode_id: int) -> dict[str, str]:
    """GBO item id (gbo_1..gbo_3) to the client's goal text, for open goals."""
    goals = session.scalars(select(Goal).where(Goal.episode_id == episode_id,
                                               Goal.closed_dt.is_(None))
                            .order_by(Goal.position))
    return {f"gbo_{g.position}": g.description for g in goals}
