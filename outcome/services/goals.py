"""Goals agreed at intake, in the client's own words, rated each session with the GBO.

A goal is asked as GBO item ``gbo_<position>``. Once rated it is never reworded: it can be
retired (``closed_dt``; it keeps its ratings and is no longer asked) and a new goal take
its position. A rating belongs to the goal open at that position when it was given.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import exists
from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.models import Administration
from outcome.models import Episode
from outcome.models import Goal
from outcome.models.care import MAX_GOALS


class GoalError(ValueError):
    """Goals that cannot be set; the message says why."""


class TooManyGoals(GoalError):
    """Three goals are open already: one must be retired before another is added."""


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
    if goals_rated(session, episode.id):
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


def goals_rated(session: Session, episode_id: int) -> bool:
    """Whether any goal of the episode has been rated (then goals are retired, not
    reworded)."""
    return bool(session.scalar(select(exists().where(Administration.episode_id == episode_id,
                                                     Administration.instrument_id == "gbo"))))


def _text(description: str) -> str:
    text = description.strip()
    if not text:
        raise GoalError("a goal cannot be empty")
    if len(text) > 500:
        raise GoalError("a goal has at most 500 characters")
    return text


def open_goal(session: Session, episode_id: int, position: int) -> Goal | None:
    """The open goal at ``position``, if there is one."""
    return session.scalar(select(Goal).where(Goal.episode_id == episode_id,
                                             Goal.position == position,
                                             Goal.closed_dt.is_(None)))


def retire_goal(session: Session, episode: Episode, position: int, now: dt.datetime,
                replacement: str | None = None) -> tuple[Goal, Goal | None]:
    """Retire the open goal at ``position`` and, with ``replacement`` text, put a new goal
    in its place; flush. The retired goal keeps its ratings; it is no longer asked."""
    goal = open_goal(session, episode.id, position)
    if goal is None:
        raise GoalError(f"there is no open goal {position}")
    text = _text(replacement) if replacement is not None and replacement.strip() else None
    goal.closed_dt = now
    session.flush()
    new = None
    if text is not None:
        new = Goal(episode_id=episode.id, position=position, description=text, created_dt=now)
        session.add(new)
        session.flush()
    session.expire(episode, ["goals"])
    return goal, new


def add_goal(session: Session, episode: Episode, description: str,
             now: dt.datetime) -> Goal:
    """A new goal at the first free position (at most three open); flush."""
    text = _text(description)
    taken = set(session.scalars(select(Goal.position).where(Goal.episode_id == episode.id,
                                                           Goal.closed_dt.is_(None))))
    free = [p for p in range(1, MAX_GOALS + 1) if p not in taken]
    if not free:
        raise TooManyGoals(f"the episode already has {MAX_GOALS} open goals; retire one first")
    goal = Goal(episode_id=episode.id, position=free[0], description=text, created_dt=now)
    session.add(goal)
    session.flush()
    session.expire(episode, ["goals"])
    return goal


def episode_goals(session: Session, episode_id: int) -> list[Goal]:
    """Every goal of the episode, open and retired, by position then age."""
    return list(session.scalars(select(Goal).where(Goal.episode_id == episode_id)
                                .order_by(Goal.position, Goal.id)))


def goal_for_rating(goals: Sequence[Goal], position: int,
                    completed_dt: dt.datetime) -> Goal | None:
    """The goal a rating of ``gbo_<position>`` given at ``completed_dt`` belongs to: the
    oldest goal at that position not yet retired then."""
    for goal in sorted((g for g in goals if g.position == position), key=lambda g: g.id):
        if goal.closed_dt is None or completed_dt < goal.closed_dt:
            return goal
    return None
