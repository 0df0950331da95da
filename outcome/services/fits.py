"""Expected-response models and clinic statistics, fitted on the clinic's own episodes.

The nightly refit (``outcome model fit``, the scheduler) stores a
:class:`~outcome.models.TrajectoryFit` per instrument; :func:`outcome.services.signals.
clinic_context` reads the latest ones, so colours and reliable change follow the newest
fit. Services flush; the caller commits.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.core.alliance import between_client_sd
from outcome.core.signals import first_and_last
from outcome.core.trajectory import TrajectoryError
from outcome.core.trajectory import fit_trajectory
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import TrajectoryFit
from outcome.services.signals import clinic_context
from outcome.services.signals import load_series
from questionnaires.loader import InstrumentLibrary


@dataclass(frozen=True)
class FitReport:
    """What one instrument's refit stored, and whether colours use it."""

    instrument_id: str
    n_episodes: int
    n_observations: int
    is_used: bool
    note: str


def refit_models(session: Session, clinic: Clinic, library: InstrumentLibrary,
                 now: dt.datetime) -> list[FitReport]:
    """Fit expected-response models and clinic statistics on completed episodes; flush.

    Every outcome instrument gets a new fit row (with the intake SD of all episodes);
    alliance instruments get the between-client SD. A model with fewer completed episodes
    than the clinic's minimum is stored but not used: rational rules stay in force.
    """
    context = clinic_context(session, clinic)
    episodes = session.scalars(select(Episode).where(Episode.clinic_id == clinic.id)).all()
    closed = {e.id for e in episodes if e.closed_on is not None}
    series = load_series(session, [e.id for e in episodes], library)
    reports = []
    for instrument_id, s in sorted(series.items()):
        instrument = s.instrument
        params: dict[str, Any] = {}
        note = ""
        if instrument.role == "outcome":
            intake = first_and_last(s.scores, s.sessions)[0]
            finite = intake[np.isfinite(intake)]
            if finite.size >= 2:
                params.update(intake_sd=float(np.std(finite, ddof=1)), n_intake=int(finite.size))
            rows = [i for e, i in s.rows.items() if e in closed]
            n_episodes = n_obs = 0
            if rows:
                episode_col = np.repeat(np.array(rows), s.scores.shape[1])
                try:
                    model = fit_trajectory(instrument_id, instrument.direction, episode_col,
                                           s.sessions[rows].ravel(), s.scores[rows].ravel(),
                                           now=now)
                    params.update(model.as_json())
                    n_episodes, n_obs = model.n_episodes, model.n_observations
                except TrajectoryError as exc:
                    note = str(exc)
            used = n_episodes >= context.colours.min_episodes
            if not note:
                note = ("used for colours" if used else
                        f"{n_episodes} of the {context.colours.min_episodes} completed "
                        "episodes needed; rational rules stay in use")
        elif instrument.role == "alliance":
            params["between_client_sd"] = between_client_sd(s.scores)
            n_episodes, n_obs, used = len(s.rows), int(np.isfinite(s.scores).sum()), True
            note = f"between-client SD {params['between_client_sd']:.2f}"
        else:
            continue
        session.add(TrajectoryFit(clinic_id=clinic.id, instrument_id=instrument_id,
                                  fitted_dt=now, n_episodes=n_episodes, n_observations=n_obs,
                                  parameters=params))
        reports.append(FitReport(instrument_id, n_episodes, n_obs, used, note))
    session.flush()
    return reports
