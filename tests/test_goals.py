"""Goals in the client's words, and their ratings (GBO) on the questionnaire page."""

from __future__ import annotations

import pytest

from outcome.services.goals import GoalError
from outcome.services.goals import goal_texts
from outcome.services.goals import set_goals
from outcome.services.instruments import attest
from outcome.services.links import issue_link
from questionnaires.loader import builtin_library
from tests.conftest import csrf_token

LIB = builtin_library()


@pytest.fixture
def episode(make_user, make_client, make_episode):
    return make_episode(make_client(make_user()))


def test_goals_are_set_in_the_clients_words(db_session, clock, episode):
    set_goals(db_session, episode, ["  Sleep through the night ", "Go back to running"],
              clock())
    assert goal_texts(db_session, episode.id) == {"gbo_1": "Sleep through the night",
                                                  "gbo_2": "Go back to running"}
    with pytest.raises(GoalError, match="1 to 3 goals"):
        set_goals(db_session, episode, ["a", "b", "c", "d"], clock())
    with pytest.raises(GoalError, match="none empty"):
        set_goals(db_session, episode, ["a", " "], clock())


def test_gbo_is_asked_only_with_goals_and_shows_them(app, client, db_session, clinic, clock,
                                                     episode, make_user):
    attest(db_session, clinic=clinic, instrument=LIB.get("gbo"), admin=make_user("admin"),
           now=clock())
    link, _ = issue_link(db_session, episode=episode, purpose="pre", now=clock(), library=LIB)
    assert "gbo" not in link.battery  # no goals yet
    set_goals(db_session, episode, ["Feel calmer at work <b>really</b>"], clock())
    link, token = issue_link(db_session, episode=episode, purpose="pre", now=clock(),
                             library=LIB)
    assert link.battery == ["phq9", "gad7", "gbo"]
    db_session.commit()
    client.get(f"/q/{token}")
    for instrument, count in (("phq9", 9), ("gad7", 7)):
        page = client.get("/q/").get_data(as_text=True)
        client.post("/q/", data={"csrf_token": csrf_token(page), "instrument": instrument,
                                 **{f"{instrument}_{i}": "0" for i in range(1, count + 1)}})
    page = client.get("/q/").get_data(as_text=True)
    assert "Feel calmer at work &lt;b&gt;really&lt;/b&gt;" in page  # escaped, never markup
    assert page.count("<fieldset") == 1  # one goal, one rating
    response = client.post("/q/", data={"csrf_token": csrf_token(page), "instrument": "gbo",
                                        "gbo_1": "6"})
    assert response.status_code == 303
    with pytest.raises(GoalError, match="rated already"):
        set_goals(db_session, episode, ["Something else"], clock())
