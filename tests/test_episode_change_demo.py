"""THE acceptance test of issue 15's episode-level change, on the demo clinic.

Every demo episode's shown change category, and the measure (or pair) it is shown with,
must equal an independent recomputation from domain.md section 3, written here in plain
Python over the stored scores. It deliberately does not call the engine's change,
talking_therapies or episode_change code: a shared mistake would pass unnoticed.

The rules, as domain.md states them:

- the primary measure is the episode's own choice, else the clinic's (default PHQ-9);
- per measure (PHQ-9: fixed 6 points, caseness >= 10), from the first and last valid
  client scores: reliably improved if x1 - x2 >= 6; deteriorated if x2 - x1 >= 6;
  clinical at pre x1 >= 10, functional at post x2 < 10; recovered = clinical, functional,
  improved; harmed = not clinical, not functional, deteriorated; else unchanged; no
  category before a second valid score;
- NHS Talking Therapies paired rules (when on; PHQ-9 primary; at least two sessions with
  scores of each half): caseness PHQ-9 >= 10 or GAD-7 >= 8; reliable improvement PHQ-9
  falls >= 6 or GAD-7 >= 4 and neither rises that much; deterioration the mirror;
  recovery (cases only) PHQ-9 < 10 and GAD-7 < 8 at the end; reliable recovery shows as
  recovered, reliable improvement as improved, deterioration as deteriorated, the rest
  as unchanged;
- the anxiety half is GAD-7, standing in (and saying so) for a disorder-specific measure
  that is not installed.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from outcome.db import make_engine
from outcome.models import Administration
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import EpisodeSignal
from outcome.models import User
from outcome.services import clinic_settings
from outcome.services import demo
from outcome.services.caseload import caseload
from outcome.services.signals import recompute_signals
from questionnaires.loader import builtin_library

pytestmark = pytest.mark.slow

LIB = builtin_library()
TODAY = dt.date(2026, 11, 22)
NOW = dt.datetime(2026, 11, 22, 8, tzinfo=dt.UTC)
# What the demo's measures are called on screen (their definitions' short names).
SHORT = {"phq9": "PHQ-9", "gad7": "GAD-7"}


@pytest.fixture(scope="module")
def seeded(demo_databases):
    engine = make_engine(demo_databases.new_url())
    conn = engine.connect()
    outer = conn.begin()
    factory = sessionmaker(bind=conn, join_transaction_mode="create_savepoint",
                           expire_on_commit=False)
    with factory() as session:
        demo.seed_demo(session, today=TODAY, password="demo password for tests",
                       timezone="Europe/Berlin", library=LIB)
        session.commit()
    yield conn
    outer.rollback()
    conn.close()
    engine.dispose()


@pytest.fixture
def connection(seeded):
    savepoint = seeded.begin_nested()
    yield seeded
    if savepoint.is_active:
        savepoint.rollback()


# --- the independent recomputation -------------------------------------------------------

def stored_scores(db_session, clinic_id):
    """episode id -> instrument id -> valid client totals, oldest first."""
    superseded = {row for row in db_session.scalars(
        select(Administration.supersedes_id).where(Administration.supersedes_id.is_not(None)))}
    rows = db_session.execute(
        select(Administration.episode_id, Administration.instrument_id, Administration.id,
               Administration.is_valid, Administration.scores)
        .join(Episode, Episode.id == Administration.episode_id)
        .where(Episode.clinic_id == clinic_id, Administration.respondent == "client")
        .order_by(Administration.episode_id, Administration.completed_dt, Administration.id))
    out: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for episode_id, instrument_id, row_id, valid, scores in rows:
        total = (scores or {}).get("primary")
        if valid and total is not None and row_id not in superseded:
            out[episode_id][instrument_id].append(float(total))
    return out


def jacobson_truax_phq9(scores):
    if len(scores) < 2:
        return None
    x1, x2 = scores[0], scores[-1]
    improved, deteriorated = x1 - x2 >= 6, x2 - x1 >= 6
    clinical_pre, functional_post = x1 >= 10, x2 < 10
    if clinical_pre and functional_post and improved:
        return "recovered"
    if improved:
        return "improved"
    if not clinical_pre and not functional_post and deteriorated:
        return "harmed"
    if deteriorated:
        return "deteriorated"
    return "unchanged"


def paired_nhs_tt(phq, gad):
    p1, p2, g1, g2 = phq[0], phq[-1], gad[0], gad[-1]
    down = p1 - p2 >= 6 or g1 - g2 >= 4
    up = p2 - p1 >= 6 or g2 - g1 >= 4
    case = p1 >= 10 or g1 >= 8
    recovery = case and p2 < 10 and g2 < 8
    if down and not up:
        return "recovered" if recovery else "improved"
    if up and not down:
        return "deteriorated"
    return "unchanged"


WANTED = {"social_anxiety": "SPIN", "ptsd": "IES-R", "panic": "PDSS"}


def expected(episode, scores, paired_on):
    """(category, measure words) as domain.md says they must be shown."""
    primary = episode.primary_instrument_id or "phq9"
    phq, gad = scores.get("phq9", []), scores.get("gad7", [])
    if paired_on and primary == "phq9" and len(phq) >= 2 and len(gad) >= 2:
        words = "PHQ-9 + GAD-7, NHS Talking Therapies"
        if episode.problem_descriptor in WANTED:
            words += f"; GAD-7 standing in for {WANTED[episode.problem_descriptor]}"
        return paired_nhs_tt(phq, gad), words
    assert primary == "phq9", "the demo's episodes keep the clinic's primary measure"
    return jacobson_truax_phq9(phq), SHORT[primary]


# --- the test -------------------------------------------------------------------------------

def check_demo(db_session, clinic, paired_on):
    scores = stored_scores(db_session, clinic.id)
    episodes = db_session.scalars(select(Episode).where(Episode.clinic_id == clinic.id)
                                  .order_by(Episode.id)).all()
    signals = {s.episode_id: s for s in db_session.scalars(select(EpisodeSignal))}
    shown = {}
    for therapist in db_session.scalars(select(User).where(User.clinic_id == clinic.id,
                                                           User.is_therapist)):
        for row in caseload(db_session, therapist):
            shown[row.code] = (row.change_category, row.change_measure)
    checked_rows = 0
    categories: dict[str | None, int] = defaultdict(int)
    for episode in episodes:
        category, words = expected(episode, scores[episode.id], paired_on)
        signal = signals[episode.id]
        assert signal.change_category == category, (episode.id, dict(scores[episode.id]))
        if category is not None:
            assert signal.state["change"]["measure"] == "phq9"
        categories[category] += 1
        if episode.closed_on is None:
            code = episode.client.code
            if category is not None:
                assert shown[code] == (category, words), (episode.id,
                                                          dict(scores[episode.id]))
                checked_rows += 1
    assert len(episodes) > 100 and checked_rows > 30
    return dict(categories)


def test_demo_episodes_show_the_primary_measures_category(db_session):
    clinic = db_session.scalar(select(Clinic).where(Clinic.slug == demo.DEMO_SLUG))
    categories = check_demo(db_session, clinic, paired_on=False)
    assert len(categories) >= 3, categories  # the demo has courses of several kinds


def test_demo_episodes_with_paired_rules_and_stand_ins(db_session):
    clinic = db_session.scalar(select(Clinic).where(Clinic.slug == demo.DEMO_SLUG))
    clinic_settings.update(db_session, clinic, {"paired_rules": True})
    episodes = db_session.scalars(select(Episode).where(Episode.clinic_id == clinic.id)
                                  .order_by(Episode.id)).all()
    # Some problems whose disorder-specific measure the demo does not install.
    descriptors = ["social_anxiety", "ptsd", "panic", "depression", None]
    for n, episode in enumerate(episodes):
        episode.problem_descriptor = descriptors[n % len(descriptors)]
    db_session.flush()
    recompute_signals(db_session, LIB, NOW, clinic.id)
    db_session.flush()
    paired = check_demo(db_session, clinic, paired_on=True)
    assert len(paired) >= 3, paired
