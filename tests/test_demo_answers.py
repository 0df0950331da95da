"""Demo answers: every kind of course a feedback system must make visible is present."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections import defaultdict

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from outcome.core.answers import parse_answers
from outcome.models import Administration
from outcome.models import Appointment
from outcome.services import demo
from outcome.services.instruments import instrument_statuses
from questionnaires.loader import builtin_library

# The demo clinic takes seconds of CPU to build; it is built once for the module.
pytestmark = pytest.mark.slow

LIB = builtin_library()
TODAY = dt.date(2026, 11, 22)


@pytest.fixture(scope="module")
def seeded(engine):
    """The demo clinic, built once for the module in a transaction rolled back at its
    end: its connection and the seeding's summary."""
    conn = engine.connect()
    outer = conn.begin()
    factory = sessionmaker(bind=conn, join_transaction_mode="create_savepoint",
                           expire_on_commit=False)
    with factory() as session:
        summary = demo.seed_demo(session, today=TODAY, password="demo password for tests",
                                 library=LIB)
        session.commit()
    yield conn, summary
    outer.rollback()
    conn.close()


@pytest.fixture
def connection(seeded):
    """The module's seeded connection, in a savepoint rolled back after each test (in place
    of conftest's fresh connection: on SQLite a second writer would wait for this one)."""
    conn, _summary = seeded
    savepoint = conn.begin_nested()
    yield conn
    if savepoint.is_active:
        savepoint.rollback()


@pytest.fixture
def demo_clinic(seeded):
    return seeded[1]


def series(db_session, instrument_id):
    out = defaultdict(list)
    rows = db_session.execute(
        select(Administration.episode_id, Administration.total)
        .where(Administration.instrument_id == instrument_id)
        .order_by(Administration.episode_id, Administration.completed_dt))
    for episode_id, total in rows:
        out[episode_id].append(total)
    return out


def test_every_course_is_represented(db_session, demo_clinic):
    assert demo_clinic.administrations > 4000
    courses = Counter()
    for totals in series(db_session, "phq9").values():
        if len(totals) < 2:
            continue
        change = totals[-1] - totals[0]  # PHQ-9: reliable change is 6 points
        if totals[0] >= 10 and totals[-1] < 10 and change <= -6:
            courses["reached the functional range"] += 1
        elif change <= -6:
            courses["improved"] += 1
        elif change >= 6:
            courses["deteriorated"] += 1
        else:
            courses["no reliable change"] += 1
    for course in ("reached the functional range", "improved", "deteriorated",
                   "no reliable change"):
        assert courses[course] >= 3, courses


def test_alliance_ruptures_repaired_and_not(db_session, demo_clinic):
    repaired = unrepaired = 0
    for scores in series(db_session, "srs_vas").values():
        for t in range(1, len(scores) - 2):
            if scores[t] - scores[t - 1] <= -3:
                before = sum(scores[:t]) / t
                if max(scores[t + 1:t + 3]) >= before - 1:
                    repaired += 1
                else:
                    unrepaired += 1
    assert repaired >= 3 and unrepaired >= 3


def test_a_few_critical_answers_and_prorated_administrations(db_session, demo_clinic):
    rows = db_session.scalars(select(Administration).where(
        Administration.instrument_id == "phq9")).all()
    critical = [r for r in rows if r.scores["critical_items"]]
    assert 3 <= len(critical) <= 10
    assert any(r.is_prorated for r in rows)


def test_stored_answers_pass_the_one_validation_path(db_session, demo_clinic):
    rows = db_session.scalars(select(Administration)).all()
    for row in rows[::37]:
        instrument = LIB.get(row.instrument_id, row.instrument_version)
        parsed = parse_answers(instrument, row.answers)
        assert not isinstance(parsed, list), (row.instrument_id, parsed)


def test_answers_only_for_attended_past_appointments(db_session, demo_clinic):
    statuses = set(db_session.scalars(
        select(Appointment.status).join(Administration,
                                        Administration.appointment_id == Appointment.id)))
    assert statuses == {"attended"}


def test_filling_again_adds_nothing(db_session, demo_clinic):
    again = demo.seed_demo(db_session, today=TODAY, password="x" * 20, library=LIB)
    assert again.administrations == demo_clinic.administrations


def test_demo_attests_what_it_uses(db_session, demo_clinic):
    from outcome.models import Clinic

    clinic = db_session.scalar(select(Clinic).where(Clinic.slug == demo.DEMO_SLUG))
    status = {s.instrument.id: s.status for s in instrument_statuses(db_session, clinic.id,
                                                                      LIB)}
    assert status["gbo"] == "available"
    assert status["who5"] == "needs attestation"
    assert status["wai_sr"] == "wording not installed"


def test_demo_shows_every_colour_and_rupture_kind(db_session, demo_clinic):
    from collections import Counter

    from outcome.models import Alert
    from outcome.models import Episode
    from outcome.models import EpisodeSignal

    signals = db_session.execute(select(EpisodeSignal, Episode.closed_on).join(
        Episode, Episode.id == EpisodeSignal.episode_id)).all()
    colours = Counter(s.colour for s, closed in signals if closed is None)
    assert set(colours) == {"grey", "white", "green", "yellow", "red"}, colours
    rules, statuses, discrepancies = Counter(), Counter(), 0
    for s, _ in signals:
        for alliance in s.state["alliance"].values():
            discrepancies += bool(alliance["discrepancy_sessions"])
            for rupture in alliance["ruptures"]:
                statuses[rupture["level"]] += 1
                rules.update(rupture["numbers"]["rules"])
    assert {"absolute", "drop", "possible_rupture", "rupture"} <= set(rules), rules
    assert {"open", "repaired", "unrepaired"} <= set(statuses), statuses
    assert discrepancies >= 1
    kinds = Counter(db_session.scalars(select(Alert.kind)))
    assert {"critical_item", "not_on_track", "rupture", "unrepaired_rupture"} <= set(kinds)
    # Alerts stay few enough to be read: no alert fatigue in the demo.
    assert sum(kinds.values()) < 60
