"""Questionnaire answers for the demo clinic: believable courses of care, all fictional.

Each demo client follows one course, chosen at random with fixed shares:

| course | share | PHQ-9 over sessions |
|---|---|---|
| recovering | 35 % | falls steadily to about a third of intake |
| early responder | 15 % | falls fast into the functional range |
| slow | 20 % | falls a little |
| flat | 20 % | stays where it started |
| deteriorating | 10 % | rises |

GAD-7 follows PHQ-9 loosely. Item answers are drawn to add up to the session's total,
and about 3 % of administrations leave one item out (prorated). A few clients report
thoughts of self-harm (PHQ-9 item 9) at one session. Clients in a trauma-focused course
fill the PCL-5 every fourth session; clients with agreed goals rate them (GBO) each
session.

After each session the client answers the clinic's post-session measure, the project's
own *session check* (four 0-10 ratings, total 0-40; not a validated measure). Its answers
are noisy like real ones and go in through the same submission service a client's link
uses (:func:`outcome.services.submissions.submit`, with the key a link would set), in the
order they were given, so every alliance signal and alert is computed by the engine, none
is seeded:

- each client has a personal level, drawn from N(33.5, 3.5) clipped to 24-38, so the
  SD between clients is about 3.5 points (:data:`ALLIANCE_BETWEEN_SD`), and varies from
  session to session with SD 2 points (:data:`ALLIANCE_WITHIN_SD`). These are the sizes
  reported for the 0-40 Session Rating Scale (between clients about 3-5 points, within a
  client about 1.5-3; issue 15's brief, unverified against a primary source): the session
  check has no norms of its own, so the demo borrows the size, not the measure;
- some clients with six or more sessions have a planted V-shaped dip: a small one (5-6
  points, a *possible rupture*), or a deep one (10-13 points) that is *repaired* (back
  at their level the next session) or *unrepaired* (they stay 8-10 points down);
- a quarter of therapists rate the sessions too (same questions, respondent therapist),
  a little higher and without noticing the dips (the discrepancy rule).

Generation is deterministic for a seed, so demo screenshots and tests are repeatable.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.core.answers import numeric_item_ids
from outcome.core.instruments import Instrument
from outcome.core.scoring import score
from outcome.models import Administration
from outcome.models import Appointment
from outcome.models import Client
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import Goal
from outcome.models import QuestionnaireLink
from outcome.services import clinic_settings
from outcome.services.fits import refit_models
from outcome.services.submissions import Submission
from outcome.services.submissions import link_key
from outcome.services.submissions import submit
from questionnaires.loader import InstrumentLibrary

COURSES = ("recovering", "early_responder", "slow", "flat", "deteriorating")
COURSE_SHARES = (0.35, 0.15, 0.20, 0.20, 0.10)
GOALS = (
    "Feel less anxious when I go to work", "Sleep through most nights",
    "Go out with friends again", "Stop avoiding phone calls", "Argue less at home",
    "Get back to running twice a week", "Feel able to say no", "Go to the shops on my own",
    "Understand my panic and what sets it off", "Enjoy weekends again",
)

# Alliance noise on the 0-40 session check (module docstring for the source).
ALLIANCE_MEAN, ALLIANCE_BETWEEN_SD, ALLIANCE_WITHIN_SD = 33.5, 3.5, 2.0
REFIT_EVERY = dt.timedelta(weeks=4)
ALLIANCE_DIPS = ("none", "possible", "repaired", "unrepaired")
ALLIANCE_DIP_SHARES = (0.64, 0.12, 0.12, 0.12)


@dataclass(frozen=True)
class _Pending:
    """One administration waiting to be scored: where it belongs and its item values."""

    episode_id: int
    appointment_id: int
    completed_dt: dt.datetime
    purpose: str
    values: np.ndarray
    therapist_id: int | None = None  # set when the therapist is the respondent


def _spread(rng: np.random.Generator, total: int, n_items: int, top: int) -> np.ndarray:
    """``n_items`` answers in 0..top that add up to ``total`` (clipped to what fits)."""
    total = int(np.clip(total, 0, n_items * top))
    values = rng.binomial(top, total / (n_items * top), size=n_items)
    while values.sum() != total:
        j = rng.integers(n_items)
        if values.sum() < total and values[j] < top:
            values[j] += 1
        elif values.sum() > total and values[j] > 0:
            values[j] -= 1
    return values


def _phq_course(course: str, intake: float, t: np.ndarray) -> np.ndarray:
    s = t - 1
    if course == "recovering":
        return intake * (0.3 + 0.7 * np.exp(-s / 5))
    if course == "early_responder":
        return intake * (0.15 + 0.85 * np.exp(-s / 2.0))
    if course == "slow":
        return intake * (1 - 0.025 * s)
    if course == "flat":
        return np.full_like(t, intake, dtype=float)
    return np.minimum(intake + 0.7 * s, 27)


def fill_demo_answers(session: Session, clinic: Clinic, library: InstrumentLibrary, *,
                      seed: int = 20261122) -> int:
    """Add answers, scores and goals to the demo clinic's attended appointments; flush.

    Does nothing (returns 0) when the clinic already has administrations. Returns how
    many administrations were added.
    """
    has_any = session.scalar(
        select(func.count()).select_from(Administration).join(Episode)
        .where(Episode.clinic_id == clinic.id))
    if has_any:
        return 0
    rng = np.random.default_rng(seed)
    instruments = {key: library.get(key) for key in ("phq9", "gad7", "pcl5", "gbo")}
    pending: dict[str, list[_Pending]] = defaultdict(list)
    post_id = clinic_settings.current(clinic)["post_instrument"]
    post = library.get(post_id) if post_id else None

    episodes = session.scalars(
        select(Episode).join(Client).where(Episode.clinic_id == clinic.id)
        .order_by(Client.code, Episode.opened_on)).all()
    critical_clients = set(rng.choice(len(episodes), size=6, replace=False).tolist())
    for index, episode in enumerate(episodes):
        attended = session.scalars(
            select(Appointment).where(Appointment.episode_id == episode.id,
                                      Appointment.status == "attended")
            .order_by(Appointment.starts_dt)).all()
        if not attended:
            continue
        _episode_answers(rng, session, episode, attended, pending,
                         is_critical=index in critical_clients)

    # The alliance answers first, one by one as clients sent them (each updates its
    # episode's signals, which is what a submission costs); then the outcome answers in
    # one vectorised pass. The caller recomputes every signal from all of them at the end.
    added = 0
    if post is not None:
        added += _submit_alliance(session, clinic, post, pending["alliance"], library)
    for key, rows in pending.items():
        if key != "alliance":
            added += _store(session, instruments[key], rows)
    session.flush()
    return added


def _submit_alliance(session: Session, clinic: Clinic, instrument: Instrument,
                     rows: list[_Pending], library: InstrumentLibrary) -> int:
    """Store the alliance answers one by one, as clients sent them, through ``submit``.

    Each goes through every rule a link's page goes through (the link's battery, the
    clock, the appointment, ``parse_answers``, idempotency) with the key a post-session
    link of that appointment sets, and the episode's signals and alerts are updated as
    each arrives (``now`` is the moment it was sent).
    """
    episodes = {e.id: e for e in session.scalars(
        select(Episode).where(Episode.clinic_id == clinic.id))}
    ids = numeric_item_ids(instrument)
    next_refit: dt.datetime | None = None
    for row in sorted(rows, key=lambda r: (r.completed_dt, r.episode_id)):
        # The clinic's statistics are refitted as it goes (nightly in real use; every four weeks
        # here, to keep the demo quick), so each answer is read against the between-client
        # SD known at the time, as a real clinic's would be.
        if next_refit is None or row.completed_dt >= next_refit:
            if next_refit is not None:
                refit_models(session, clinic, library, row.completed_dt)
            next_refit = row.completed_dt + REFIT_EVERY
        answers = {item_id: str(int(v)) for item_id, v in zip(ids, row.values, strict=True)}
        if row.therapist_id is None:
            key = link_key(QuestionnaireLink(appointment_id=row.appointment_id,
                                             purpose="post"), instrument.id)
        else:
            key = f"therapist:{row.appointment_id}:{instrument.id}"
        submit(session, Submission(
            clinic_id=clinic.id, episode=episodes[row.episode_id],
            instrument_id=instrument.id, version=instrument.version,
            offered=[instrument.id], answers=answers, completed_dt=row.completed_dt,
            idempotency_key=key, appointment_id=row.appointment_id,
            respondent="therapist" if row.therapist_id else "client",
            respondent_user_id=row.therapist_id), library=library, now=row.completed_dt)
    return len(rows)


def _alliance_course(rng: np.random.Generator, n: int) -> tuple[float, np.ndarray]:
    """A client's level and session check totals over ``n`` sessions (module docstring)."""
    level = float(np.clip(rng.normal(ALLIANCE_MEAN, ALLIANCE_BETWEEN_SD), 24, 38))
    totals = level + rng.normal(0, ALLIANCE_WITHIN_SD, n)
    dip = ALLIANCE_DIPS[rng.choice(len(ALLIANCE_DIPS), p=ALLIANCE_DIP_SHARES)] if n >= 6 \
        else "none"
    if dip != "none":
        at = int(rng.integers(4, n - 1))  # three sessions of history at least, one after
        if dip == "possible":
            totals[at] = level - rng.uniform(5, 6)
        else:
            totals[at] = level - rng.uniform(10, 13)
            if dip == "repaired":
                totals[at + 1] = level + rng.uniform(0.5, 1.5)  # the V closes
            else:
                totals[at + 1:] = level - rng.uniform(8, 10) + rng.normal(
                    0, ALLIANCE_WITHIN_SD / 2, n - at - 1)
    return level, np.clip(np.rint(totals), 0, 40)


def _episode_answers(rng: np.random.Generator, session: Session, episode: Episode,
                     attended: Sequence[Appointment], pending: dict[str, list[_Pending]], *,
                     is_critical: bool) -> None:
    n = len(attended)
    t = np.arange(1, n + 1, dtype=float)
    course = COURSES[rng.choice(len(COURSES), p=COURSE_SHARES)]
    intake = rng.uniform(6, 10) if rng.random() < 0.1 else rng.uniform(11, 22)
    phq_mean = _phq_course(course, intake, t)
    phq_totals = np.clip(np.rint(phq_mean + rng.normal(0, 1.8, n)), 0, 27).astype(int)
    gad_totals = np.clip(np.rint(phq_mean * 0.62 + rng.normal(0, 1.6, n)), 0, 21).astype(int)
    critical_session = int(rng.integers(0, n)) if is_critical else -1

    # Alliance: a personal level, noise, and for some clients a planted dip.
    level, alliance = _alliance_course(rng, n)

    has_goals = rng.random() < 0.6
    n_goals = int(rng.integers(1, 4)) if has_goals else 0
    for position, text in enumerate(rng.choice(GOALS, size=n_goals, replace=False), start=1):
        session.add(Goal(episode_id=episode.id, position=position, description=str(text),
                         created_dt=attended[0].starts_dt))
    goal_start = rng.uniform(1, 3.5, n_goals)
    goal_gain = {"recovering": 5, "early_responder": 6, "slow": 2.5, "flat": 0.5,
                 "deteriorating": -0.5}[course]
    is_trauma = rng.random() < 0.15
    pcl_intake = rng.uniform(35, 60)
    # Some therapists rate each session themselves; they tend to rate it a little higher
    # and may not notice a rupture (the discrepancy rule).
    therapist_rates = rng.random() < 0.25

    for k, appointment in enumerate(attended):
        before = appointment.starts_dt - dt.timedelta(minutes=int(rng.integers(10, 120)))
        after = appointment.starts_dt + dt.timedelta(minutes=int(rng.integers(50, 180)))

        def add(key: str, values: np.ndarray, when: dt.datetime, purpose: str,
                appointment: Appointment = appointment) -> None:
            pending[key].append(_Pending(episode.id, appointment.id, when, purpose,
                                         values.astype(float)))

        item9 = int(rng.integers(1, 3)) if k == critical_session else 0
        phq = np.append(_spread(rng, phq_totals[k] - item9, 8, 3), item9).astype(float)
        if rng.random() < 0.03:
            phq[int(rng.integers(0, 8))] = np.nan  # one item left out: prorated
        difficulty = float(min(3, phq_totals[k] // 7))
        add("phq9", np.append(phq, difficulty), before, "pre")
        add("gad7", _spread(rng, gad_totals[k], 7, 3).astype(float), before, "pre")
        if is_trauma and k % 4 == 0:
            pcl = pcl_intake * (0.6 + 0.4 * np.exp(-k / 6)) if course != "flat" else pcl_intake
            add("pcl5", _spread(rng, round(pcl), 20, 4).astype(float), before, "pre")
        if n_goals:
            progress = goal_start + goal_gain * (1 - np.exp(-k / 5)) + rng.normal(0, 0.6,
                                                                                n_goals)
            ratings = np.full(3, np.nan)
            ratings[:n_goals] = np.clip(np.rint(progress), 0, 10)
            add("gbo", ratings, before, "pre")
        add("alliance", _spread(rng, int(alliance[k]), 4, 10).astype(float), after, "post")
        if therapist_rates:
            rated = np.clip(np.rint(level + rng.uniform(1, 3) + rng.normal(0, 1.5)), 0, 40)
            pending["alliance"].append(_Pending(
                episode.id, appointment.id, after + dt.timedelta(minutes=5), "therapist",
                _spread(rng, int(rated), 4, 10).astype(float),
                therapist_id=episode.therapist_id))


def _store(session: Session, instrument: Instrument, rows: list[_Pending]) -> int:
    """Score ``rows`` in one vectorised pass and add them as administrations."""
    if not rows:
        return 0
    matrix = np.vstack([row.values for row in rows])
    table = score(instrument, matrix)
    ids = numeric_item_ids(instrument)
    for index, row in enumerate(rows):
        result = table.row(index)
        answers = {item_id: (int(v) if float(v).is_integer() else float(v))
                   for item_id, v in zip(ids, row.values, strict=True) if not np.isnan(v)}
        session.add(Administration(
            episode_id=row.episode_id, appointment_id=row.appointment_id,
            instrument_id=instrument.id, instrument_version=instrument.version,
            respondent="therapist" if row.therapist_id else "client",
            respondent_user_id=row.therapist_id, answers=answers, scores=result.as_json(),
            total=result.total, is_valid=result.is_valid, is_prorated=result.is_prorated,
            completed_dt=row.completed_dt,
            idempotency_key=f"demo:{row.appointment_id}:{instrument.id}:{row.purpose}"))
    return len(rows)
