"""Issue 19: the demo shows support checks and action plans in every state, each told
truly: a plan's baseline is the main measure's score at its date with the colour that
score had, and its follow-up is the engine's reading since (outcome/services/demo_support.py).
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.db import make_engine
from outcome.models import ActionPlan
from outcome.models import Alert
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import SupportCheck
from outcome.services import support
from outcome.services.demo import DEMO_SLUG
from outcome.services.signals import colour_history
from tests.helpers import DEMO_NOW
from tests.helpers import DEMO_TODAY
from tests.helpers import LIB


@pytest.fixture(scope="module")
def demo(demo_databases):
    engine = make_engine(demo_databases.new_url())
    with Session(engine) as session:
        yield session
    engine.dispose()


def test_every_state_is_there_for_the_demo_therapists(demo):
    clinic = demo.scalar(select(Clinic).where(Clinic.slug == DEMO_SLUG))
    checks = demo.scalars(select(SupportCheck).join(Episode).where(
        Episode.clinic_id == clinic.id)).all()
    plans = demo.scalars(select(ActionPlan).join(Episode).where(
        Episode.clinic_id == clinic.id)).all()
    planned = {p.episode_id for p in plans}
    # A check sent, not yet answered; a check answered with flagged domains, no plan yet.
    sent = [c for c in checks if c.status == "sent"]
    answered = [c for c in checks if c.status == "answered" and c.episode_id not in planned]
    assert len(sent) == 1 and len(answered) == 1
    reading = support.view_check(demo, answered[0], LIB).reading
    assert set(reading.flagged_domains) >= {"motivation", "life_events"}
    # An open plan before review, one past review (follow-up due), a closed plan back on
    # track, a revised plan.
    today = DEMO_TODAY
    open_plans = [p for p in plans if p.status == "open"]
    assert any(p.review_on > today and p.revised_from_id is None for p in open_plans)
    assert any(p.review_on <= today for p in open_plans)
    [closed] = [p for p in plans if p.status == "closed"]
    assert closed.outcome["back_on_track"] is True
    [revised] = [p for p in plans if p.status == "revised"]
    assert any(p.revised_from_id == revised.id and p.status == "open" for p in plans)
    therapists = {demo.get(Episode, e).therapist_id for e in
                  {c.episode_id for c in checks} | planned}
    # Spread over the demo therapists, those without a case first where their caseload
    # has a fitting story (in this demo one therapist's has none left).
    assert len(therapists) >= 5


def test_the_demo_plans_tell_their_numbers_truly(demo):
    clinic = demo.scalar(select(Clinic).where(Clinic.slug == DEMO_SLUG))
    plans = demo.scalars(select(ActionPlan).join(Episode).where(
        Episode.clinic_id == clinic.id)).all()
    assert plans
    for plan in plans:
        episode = demo.get(Episode, plan.episode_id)
        history = colour_history(demo, episode, plan.baseline["instrument"], LIB)
        then = [h for h in history if h.completed_dt <= plan.created_dt][-1]
        # Every plan was made while the client was red, on the score it names.
        assert plan.baseline["colour"] == then.colour == "red"
        assert plan.baseline["score"] == then.score
        assert plan.baseline["administration"] == then.administration_id
        follow = support.follow_up(demo, plan, LIB, DEMO_NOW)
        after = [h for h in history if plan.created_dt < h.completed_dt <= DEMO_NOW]
        assert follow.sessions_since == len(after)
        if plan.status == "open":
            # The plan is the response: no not-on-track alert is open beside it.
            assert demo.scalar(select(Alert).where(
                Alert.episode_id == episode.id, Alert.status == "open",
                Alert.kind.in_(support.PLAN_KINDS))) is None
            assert plan.review_on <= (plan.created_dt + dt.timedelta(days=365)).date()
