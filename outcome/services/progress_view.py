"""What a client may see of their own progress: their scores over time, nothing else.

Shown only when their therapist has chosen to share it (``Client.is_progress_shared``).
Never other clients, never comparisons; words are gentle, and the cutoff is a
conversation starter, not a label. The latest score is shown with its severity band
where the questionnaire defines bands, in the questionnaire's own words ("PHQ-9 16
(moderately severe)"), as the client's therapist sees it. "Session" is the treatment
session (the appointment's number), as on every other page.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.core.severity import severity
from outcome.models import Administration
from outcome.models import Client
from outcome.models import Clinic
from outcome.models import Episode
from outcome.services.client_report import band_note
from outcome.services.explanations import measure_count
from outcome.services.explanations import render
from outcome.services.explanations import scored_text
from outcome.services.sessions import episode_clocks
from outcome.services.signals import clinic_context
from questionnaires.loader import InstrumentLibrary
from reports.charts import TrajectoryData


@dataclass(frozen=True)
class ClientChart:
    data: TrajectoryData
    is_lower_better: bool
    summary: str
    latest: str = ""  # "Latest: PHQ-9 16 (moderately severe) at session 3, the 3rd PHQ-9."
    # What the shaded band is, from its percentiles (as on the client report); "" without.
    band_note: str = ""


def client_progress(session: Session, episode: Episode, library: InstrumentLibrary,
                    locale: str = "en") -> list[ClientChart]:
    """Charts of the episode's outcome measures, if the client may see them; words in
    ``locale``."""
    client = session.get(Client, episode.client_id)
    if client is None or not client.is_progress_shared:
        return []
    clinic = session.get(Clinic, episode.clinic_id)
    context = clinic_context(session, clinic) if clinic else None
    # Only a curve that the colours also use (fitted on enough episodes) is shown.
    models = ({k: m for k, m in context.models.items()
               if m.n_episodes >= context.colours.min_episodes} if context else {})
    rows = session.scalars(select(Administration).where(
        Administration.episode_id == episode.id, Administration.respondent == "client",
        Administration.is_valid).order_by(Administration.completed_dt)).all()
    clock = episode_clocks(session, [episode.id])[episode.id]
    by_instrument: dict[str, list[float]] = {}
    administered: dict[str, list[Administration]] = {}
    for row in rows:
        by_instrument.setdefault(row.instrument_id, []).append(row.scores["primary"])
        administered.setdefault(row.instrument_id, []).append(row)
    charts = []
    for instrument_id, scores in sorted(by_instrument.items()):
        instrument = library.get(instrument_id)
        if instrument.role != "outcome" or len(scores) < 2:
            continue
        sessions = clock.series(administered[instrument_id])
        low, high = instrument.primary_range
        band_low = band_high = None
        model = models.get(instrument_id)
        if model is not None:
            edges = model.band(np.full(len(sessions), scores[0]), np.array(sessions))
            band_low, band_high = tuple(map(float, edges[0])), tuple(map(float, edges[1]))
        listing = ", ".join(f"{s}: {v:g}" for s, v in zip(sessions, scores, strict=True))
        charts.append(ClientChart(
            TrajectoryData(title=instrument.short_name, sessions=sessions,
                           scores=tuple(scores), y_min=low, y_max=high,
                           cutoff=instrument.cutoff.value if instrument.cutoff else None,
                           cutoff_label="a usual dividing line" if instrument.cutoff else "",
                           band_low=band_low, band_high=band_high),
            instrument.direction == "higher_is_worse",
            f"{instrument.short_name}: {listing}.",
            render("measure.latest", {
                "scored": scored_text(instrument.short_name, scores[-1],
                                      severity(instrument, scores[-1]), locale),
                "session": sessions[-1],
                "count": measure_count(len(scores), instrument.short_name, locale)},
                locale),
            band_note(instrument, locale) if band_low is not None else ""))
    return charts
