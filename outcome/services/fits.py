"""Expected-response models and clinic statistics: fitted on the clinic's own episodes,
or imported.

The nightly refit (``outcome model refit``, the scheduler) stores a
:class:`~outcome.models.TrajectoryFit` per instrument; :func:`outcome.services.signals.
clinic_context` reads the latest ones, so colours and reliable change follow the newest
fit. Fits use every episode with at least three valid administrations, ongoing ones
included (domain.md section 4), at the episode's treatment session numbers, with bands
by intake severity (the instrument's severity bands).

**Import and export** (``outcome fits export`` / ``outcome fits import``,
domain.md section 4: a new clinic need not wait months for its own curve): a fit file is
JSON, :data:`FIT_FORMAT`, holding the model (parameters, band table, strata), its
``source`` and sample size. An imported fit is stored like an own fit, with its
``source``, and is used like one when its sample size reaches ``model_min_episodes``.
The refit replaces it only when the clinic's own fit has at least ``model_min_episodes``
episodes; until then the refit keeps the imported model in force (and stores the
clinic statistics beside it). Services flush; the caller commits.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.core.alliance import between_client_sd
from outcome.core.instruments import Instrument
from outcome.core.signals import first_and_last
from outcome.core.trajectory import LEVELS
from outcome.core.trajectory import MODEL_VERSION
from outcome.core.trajectory import TrajectoryError
from outcome.core.trajectory import TrajectoryModel
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


def severity_strata(instrument: Instrument) -> tuple[tuple[float, float], ...]:
    """The instrument's severity bands as intake strata ``(minimum, maximum)``."""
    return tuple(sorted((float(b.minimum), float(b.maximum)) for b in instrument.bands))


def refit_models(session: Session, clinic: Clinic, library: InstrumentLibrary,
                 now: dt.datetime) -> list[FitReport]:
    """Fit expected-response models and clinic statistics on the clinic's episodes; flush.

    Every outcome instrument gets a new fit row (with the intake SD of all episodes);
    alliance instruments get the between-client SD. Every episode with three or more
    valid administrations counts, ongoing ones included. A model with fewer episodes
    than the clinic's minimum is stored but not used: rational rules stay in force, or
    an imported fit, which is carried over into the new row until the clinic's own fit
    is big enough to replace it.
    """
    context = clinic_context(session, clinic)
    episodes = session.scalars(select(Episode.id).where(Episode.clinic_id == clinic.id)).all()
    series = load_series(session, list(episodes), library)
    reports = []
    for instrument_id, s in sorted(series.items()):
        instrument = s.instrument
        params: dict[str, Any] = {}
        note = ""
        source = None
        if instrument.role == "outcome":
            intake = first_and_last(s.scores, s.sessions)[0]
            finite = intake[np.isfinite(intake)]
            if finite.size >= 2:
                params.update(intake_sd=float(np.std(finite, ddof=1)), n_intake=int(finite.size))
            rows = list(s.rows.values())
            n_episodes = n_obs = 0
            if rows:
                episode_col = np.repeat(np.array(rows), s.scores.shape[1])
                try:
                    model = fit_trajectory(instrument_id, instrument.direction, episode_col,
                                           s.sessions[rows].ravel(), s.scores[rows].ravel(),
                                           now=now, strata=severity_strata(instrument))
                    params.update(model.as_json())
                    n_episodes, n_obs = model.n_episodes, model.n_observations
                except TrajectoryError as exc:
                    note = str(exc)
            used = n_episodes >= context.colours.min_episodes
            imported = context.models.get(instrument_id)
            if not used and imported is not None and imported.source:
                # The imported fit stays in force until the clinic's own is big enough.
                params.update(imported.as_json())
                source = imported.source
                n_episodes, n_obs = imported.n_episodes, imported.n_observations
                note = (f"own fit too small; the imported fit ({imported.source}, "
                        f"{imported.n_episodes} episodes) stays in use")
                used = n_episodes >= context.colours.min_episodes
            if not note:
                note = ("used for colours" if used else
                        f"{n_episodes} of the {context.colours.min_episodes} episodes "
                        "(three or more measures) needed; rational rules stay in use")
        elif instrument.role == "alliance":
            params["between_client_sd"] = between_client_sd(s.scores)
            n_episodes, n_obs, used = len(s.rows), int(np.isfinite(s.scores).sum()), True
            note = f"between-client SD {params['between_client_sd']:.2f}"
        else:
            continue
        session.add(TrajectoryFit(clinic_id=clinic.id, instrument_id=instrument_id,
                                  fitted_dt=now, n_episodes=n_episodes, n_observations=n_obs,
                                  parameters=params, source=source))
        reports.append(FitReport(instrument_id, n_episodes, n_obs, used, note))
    session.flush()
    return reports


FIT_FORMAT = "outcome-trajectory-fit"
FIT_FORMAT_VERSION = 1
MAX_SOURCE = 500


class FitFileError(ValueError):
    """A fit file that cannot be imported; the message names the field."""


def export_fits(session: Session, clinic: Clinic, library: InstrumentLibrary,
                instrument_id: str | None = None) -> dict[str, Any]:
    """The clinic's latest expected-response model per outcome instrument, as a fit file.

    Each fit carries the model (parameters, band table, strata), its source (the clinic's
    own: "<clinic name>, own episodes"; an imported one keeps its source) and sample size.
    """
    context = clinic_context(session, clinic)
    fits = []
    for iid, model in sorted(context.models.items()):
        if instrument_id and iid != instrument_id:
            continue
        try:
            version = library.get(iid).version
        except KeyError:
            version = None
        fits.append({"instrument_id": iid, "instrument_version": version,
                     "source": model.source or f"{clinic.name}, own episodes",
                     "n_episodes": model.n_episodes, "n_observations": model.n_observations,
                     "model": model.as_json()})
    return {"format": FIT_FORMAT, "format_version": FIT_FORMAT_VERSION, "fits": fits}


def import_fits(session: Session, clinic: Clinic, library: InstrumentLibrary, data: Any,
                *, source: str, now: dt.datetime) -> list[FitReport]:
    """Validate a fit file and store each fit for ``clinic`` with ``source``; flush.

    Everything is checked before anything is stored: a bad file raises
    :class:`FitFileError` naming the field, and nothing is added.
    """
    source = (source or "").strip()
    if not source:
        raise FitFileError("--source: say where the fit comes from (a publication or a "
                           "clinic's export)")
    if len(source) > MAX_SOURCE:
        raise FitFileError(f"--source: at most {MAX_SOURCE} characters")
    if not isinstance(data, dict):
        raise FitFileError("the file must hold one JSON object")
    if data.get("format") != FIT_FORMAT:
        raise FitFileError(f"format: expected {FIT_FORMAT!r}, got {data.get('format')!r}")
    if data.get("format_version") != FIT_FORMAT_VERSION:
        raise FitFileError(f"format_version: expected {FIT_FORMAT_VERSION}, got "
                           f"{data.get('format_version')!r}")
    entries = data.get("fits")
    if not isinstance(entries, list) or not entries:
        raise FitFileError("fits: expected a non-empty list")
    context = clinic_context(session, clinic)
    models = [_validated(library, entry, f"fits[{n}]", source)
              for n, entry in enumerate(entries)]
    seen = [m.instrument_id for m in models]
    if len(set(seen)) != len(seen):
        raise FitFileError("fits: one fit per instrument")
    reports = []
    for model in models:
        params = model.as_json()
        sd = context.intake_sd.get(model.instrument_id)
        if sd:
            params.update(intake_sd=sd[0], n_intake=sd[1])
        session.add(TrajectoryFit(clinic_id=clinic.id, instrument_id=model.instrument_id,
                                  fitted_dt=now, n_episodes=model.n_episodes,
                                  n_observations=model.n_observations, parameters=params,
                                  source=source))
        used = model.n_episodes >= context.colours.min_episodes
        reports.append(FitReport(model.instrument_id, model.n_episodes, model.n_observations,
                                 used, "used for colours" if used else
                                 f"{model.n_episodes} of the {context.colours.min_episodes} "
                                 "episodes needed; rational rules stay in use"))
    session.flush()
    return reports


def _validated(library: InstrumentLibrary, entry: Any, where: str,
               source: str) -> TrajectoryModel:
    """One fit of a fit file as a model, or :class:`FitFileError` naming the field."""
    if not isinstance(entry, dict):
        raise FitFileError(f"{where}: expected an object")
    model = entry.get("model")
    if not isinstance(model, dict):
        raise FitFileError(f"{where}.model: expected an object")
    iid = model.get("instrument_id")
    if entry.get("instrument_id") != iid:
        raise FitFileError(f"{where}.instrument_id: does not match model.instrument_id")
    try:
        instrument = library.get(str(iid))
    except KeyError:
        raise FitFileError(f"{where}.model.instrument_id: unknown instrument {iid!r}") from None
    if instrument.role != "outcome":
        raise FitFileError(f"{where}.model.instrument_id: {iid!r} is not an outcome measure")
    if model.get("direction") != instrument.direction:
        raise FitFileError(f"{where}.model.direction: {iid} is {instrument.direction}, the "
                           f"file says {model.get('direction')!r}")
    version = model.get("version", 1)
    if version not in (1, MODEL_VERSION):
        raise FitFileError(f"{where}.model.version: expected 1 or {MODEL_VERSION}")
    for key in ("beta0", "beta1"):
        if not _finite(model.get(key)):
            raise FitFileError(f"{where}.model.{key}: expected a finite number")
    for key in ("n_episodes", "n_observations"):
        value = model.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise FitFileError(f"{where}.model.{key}: expected a whole number of at least 1")
    if entry.get("n_episodes") not in (None, model["n_episodes"]):
        raise FitFileError(f"{where}.n_episodes: does not match model.n_episodes")
    sessions = model.get("sessions")
    if (not isinstance(sessions, list) or not sessions
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 2
                       for s in sessions)
            or sessions != sorted(set(sessions))):
        raise FitFileError(f"{where}.model.sessions: expected increasing session numbers "
                           "from 2")
    _table(model.get("quantiles"), len(sessions), f"{where}.model.quantiles")
    strata = model.get("strata", [])
    if strata:
        if (not isinstance(strata, list)
                or not all(isinstance(s, list) and len(s) == 2 and all(map(_finite, s))
                           and s[0] <= s[1] for s in strata)):
            raise FitFileError(f"{where}.model.strata: expected [minimum, maximum] pairs")
        if [s[0] for s in strata] != sorted(s[0] for s in strata):
            raise FitFileError(f"{where}.model.strata: expected in score order")
        rows = model.get("stratum_quantiles")
        if not isinstance(rows, list) or len(rows) != len(sessions):
            raise FitFileError(f"{where}.model.stratum_quantiles: expected one row per "
                               "session")
        for r, row in enumerate(rows):
            _table(row, len(strata), f"{where}.model.stratum_quantiles[{r}]")
        for key in ("stratum_groups", "stratum_counts"):
            value = model.get(key)
            if (not isinstance(value, list) or len(value) != len(sessions)
                    or not all(isinstance(v, list) and len(v) == len(strata)
                               and all(isinstance(x, int) and x >= 0 for x in v)
                               for v in value)):
                raise FitFileError(f"{where}.model.{key}: expected one row of "
                                   f"{len(strata)} whole numbers per session")
        if any(g >= len(strata) for row in model["stratum_groups"] for g in row):
            raise FitFileError(f"{where}.model.stratum_groups: stratum out of range")
    try:
        dt.datetime.fromisoformat(str(model.get("fitted_dt")))
    except ValueError:
        raise FitFileError(f"{where}.model.fitted_dt: expected an ISO date and time") from None
    return TrajectoryModel.from_json(model, source=source)


def _finite(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and bool(np.isfinite(value)))


def _table(value: Any, rows: int, where: str) -> None:
    """A band table: ``rows`` rows of the 99 residual percentiles, non-decreasing."""
    if not isinstance(value, list) or len(value) != rows:
        raise FitFileError(f"{where}: expected {rows} rows")
    for r, row in enumerate(value):
        if (not isinstance(row, list) or len(row) != LEVELS.size
                or not all(map(_finite, row))):
            raise FitFileError(f"{where}[{r}]: expected {LEVELS.size} finite numbers (the "
                               "1st to 99th percentiles)")
        if any(b < a for a, b in itertools.pairwise(row)):
            raise FitFileError(f"{where}[{r}]: percentiles must not decrease")
