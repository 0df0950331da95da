"""A rated goal is retired and replaced, keeping its history (issue 17)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from outcome.models import AuditEvent
from outcome.models import Goal
from outcome.services.client_record import client_record
from outcome.services.goals import GoalError
from outcome.services.goals import add_goal
from outcome.services.goals import goal_texts
from outcome.services.goals import retire_goal
from outcome.services.goals import set_goals
from outcome.services.instruments import attest
from outcome.services.links import issue_link
from questionnaires.loader import builtin_library
from tests.conftest import csrf_token
from tests.helpers import T0
from tests.helpers import submit

LIB = builtin_library()
GBO = LIB.get("gbo")


@pytest.fixture
def therapist(make_user):
    return make_user()


@pytest.fixture
def episode(db_session, therapist, make_client, make_episode, clock):
    episode = make_episode(make_client(therapist))
    set_goals(db_session, episode, ["Sleep through the night", "Go back to running"],
              T0 - dt.timedelta(days=1))
    submit(db_session, episode, GBO, {"gbo_1": 2, "gbo_2": 3}, 0)
    submit(db_session, episode, GBO, {"gbo_1": 4, "gbo_2": 5}, 1)
    db_session.flush()
    return episode


def test_a_rated_goal_is_retired_and_replaced_at_its_position(db_session, episode):
    when = T0 + dt.timedelta(weeks=1, days=2)
    old, new = retire_goal(db_session, episode, 1, when, replacement="  Cook a meal  ")
    assert old.closed_dt == when and old.description == "Sleep through the night"
    assert new is not None and (new.position, new.description) == (1, "Cook a meal")
    assert goal_texts(db_session, episode.id) == {"gbo_1": "Cook a meal",
                                                  "gbo_2": "Go back to running"}
    submit(db_session, episode, GBO, {"gbo_1": 1, "gbo_2": 6}, 2)
    record = client_record(db_session, episode, LIB, full=True)
    views = {(g.description, g.retired_dt is not None): g.ratings for g in record.goals}
    # The retired goal keeps its own two ratings; its replacement has only its own.
    assert [r for _, r in views[("Sleep through the night", True)]] == [2.0, 4.0]
    assert [r for _, r in views[("Cook a meal", False)]] == [1.0]
    assert [r for _, r in views[("Go back to running", False)]] == [3.0, 5.0, 6.0]


def test_retiring_without_a_replacement_stops_asking_it(db_session, clock, clinic, episode,
                                                        make_user):
    attest(db_session, clinic=clinic, instrument=GBO, admin=make_user("admin"), now=clock())
    retire_goal(db_session, episode, 1, clock())
    retire_goal(db_session, episode, 2, clock())
    link, _ = issue_link(db_session, episode=episode, purpose="pre", now=clock(), library=LIB)
    assert "gbo" not in link.battery  # no open goal: nothing to rate
    goal = add_goal(db_session, episode, "Walk the dog", clock())
    assert goal.position == 1
    assert goal_texts(db_session, episode.id) == {"gbo_1": "Walk the dog"}


def test_goal_rules(db_session, clock, episode):
    with pytest.raises(GoalError, match="no open goal 3"):
        retire_goal(db_session, episode, 3, clock())
    with pytest.raises(GoalError, match="at most 500"):
        retire_goal(db_session, episode, 1, clock(), replacement="x" * 501)
    assert db_session.scalar(select(Goal).where(Goal.closed_dt.is_not(None))) is None
    add_goal(db_session, episode, "Third", clock())
    with pytest.raises(GoalError, match="already has 3 open goals"):
        add_goal(db_session, episode, "Fourth", clock())
    with pytest.raises(GoalError, match="empty"):
        add_goal(db_session, episode, " ", clock())


def _care(client, code):
    return client.get(f"/clients/{code}/care").get_data(as_text=True)


def test_the_care_page_retires_with_confirmation_and_audits(app, client, db_session, clock,
                                                           episode, therapist, auth):
    auth.login(therapist.email)
    db_session.commit()
    code = episode.client.code
    page = _care(client, code)
    assert "Retire goal 1" in page and "Save goals" not in page  # rated: no rewording
    token = csrf_token(page)
    ask = client.post(f"/clients/{code}/goals/retire",
                      data={"csrf_token": token, "position": "1"})
    html = ask.get_data(as_text=True)
    assert ask.status_code == 200 and "Sleep through the night" in html
    assert "Its ratings stay on the record, marked as retired" in html
    assert db_session.scalar(select(Goal).where(Goal.closed_dt.is_not(None))) is None
    done = client.post(f"/clients/{code}/goals/retire",
                       data={"csrf_token": csrf_token(html), "position": "1",
                             "replacement": "Cook a meal", "confirm": "yes"})
    assert done.status_code == 302
    page = _care(client, code)
    assert "Goal 1 retired; its ratings are kept." in page
    assert "Cook a meal" in page and "retired" in page
    record = client.get(f"/clients/{code}").get_data(as_text=True)
    assert "Sleep through the night" in record and "(retired" in record
    actions = db_session.scalars(select(AuditEvent.action)).all()
    assert "goal.retire" in actions


def test_bad_retire_requests_are_4xx_and_change_nothing(client, db_session, episode,
                                                        therapist, auth):
    auth.login(therapist.email)
    db_session.commit()
    code = episode.client.code
    token = csrf_token(_care(client, code))
    bad = client.post(f"/clients/{code}/goals/retire",
                      data={"csrf_token": token, "position": "x", "confirm": "yes"})
    assert bad.status_code == 400
    missing = client.post(f"/clients/{code}/goals/retire",
                          data={"csrf_token": token, "position": "3", "confirm": "yes"})
    assert missing.status_code == 302
    assert "There is no open goal 3." in _care(client, code)
    assert db_session.scalar(select(Goal).where(Goal.closed_dt.is_not(None))) is None
    added = client.post(f"/clients/{code}/goals/add",
                        data={"csrf_token": token, "description": ""})
    assert added.status_code == 302
    assert "Please write the goal in the words the client used" in _care(client, code)
