"""A therapist's caseload, ordered by who needs attention first.

Urgency (stored with each episode's signals): unacknowledged critical answer, red,
unrepaired rupture, new rupture, yellow, green, white, nothing to show yet. Rows come
only from the one scoping function, and only the therapist's own clients are listed
here (supervisors get their own, de-identified view).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.models import Alert
from outcome.models import Client
from outcome.models import Episode
from outcome.models import EpisodeSignal
from outcome.models import User
from outcome.services.access import visible_clients

NOTHING_YET = 7


@dataclass(frozen=True)
class CaseloadRow:
    code: str
    name: str
    colour: str
    urgency: int
    change_category: str | None
    latest: tuple[tuple[str, float | None, int], ...]
    alerts: tuple[tuple[str, str], ...]
    progress_text: str


def caseload(session: Session, therapist: User) -> list[CaseloadRow]:
    """The therapist's clients with an open episode, most urgent first, then by name."""
    visible = visible_clients(therapist).where(Client.therapist_id == therapist.id).subquery()
    rows = session.execute(
        select(Client.code, Client.name, Episode.id, EpisodeSignal)
        .join(visible, Client.id == visible.c.id)
        .join(Episode, (Episode.client_id == Client.id) & Episode.closed_on.is_(None))
        .outerjoin(EpisodeSignal, EpisodeSignal.episode_id == Episode.id)
        .order_by(func.coalesce(EpisodeSignal.urgency, NOTHING_YET), Client.name)).all()
    alerts: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for episode_id, kind, detail in session.execute(
            select(Alert.episode_id, Alert.kind, Alert.detail)
            .where(Alert.episode_id.in_([r[2] for r in rows]), Alert.status == "open")
            .order_by(Alert.raised_dt)):
        alerts[episode_id].append((kind, detail.get("text", "")))
    out = []
    for code, name, episode_id, signal in rows:
        state = signal.state if signal else {}
        outcomes = state.get("outcomes", {})
        latest = tuple((instrument, data.get("latest"), data.get("session", 0))
                       for instrument, data in sorted(outcomes.items()))
        worst = next((data["progress"]["text"] for data in outcomes.values()
                      if signal and data["progress"]["level"] == signal.colour), "")
        out.append(CaseloadRow(code=code, name=name,
                               colour=signal.colour if signal else "grey",
                               urgency=signal.urgency if signal else NOTHING_YET,
                               change_category=signal.change_category if signal else None,
                               latest=latest, alerts=tuple(alerts[episode_id]),
                               progress_text=worst))
    return out
