"""The client's visit (issue 17): the welcome line, Back between questionnaires, a second
chance for a blank critical item, and the 0-10 goal scale's markup."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from outcome.models import Administration
from outcome.models import Alert
from outcome.models import AuditEvent
from outcome.services.goals import set_goals
from outcome.services.instruments import attest
from outcome.services.links import issue_link
from outcome.services.links import visit_minutes
from questionnaires.loader import builtin_library
from tests.conftest import csrf_token

LIB = builtin_library()


@pytest.fixture
def issued(db_session, clock, clinic, make_user, make_client, make_episode):
    therapist = make_user(display_name="Dr Ada Moss")
    clinic.name = "Riverside Clinic"
    episode = make_episode(make_client(therapist))
    link, token = issue_link(db_session, episode=episode, purpose="pre", now=clock(),
                             library=LIB)
    db_session.commit()
    return link, token


def phq(level, item9=0):
    data = {f"phq9_{i}": str(level) for i in range(1, 9)}
    data["phq9_9"] = "" if item9 is None else str(item9)
    return data


def gad(level):
    return {f"gad7_{i}": str(level) for i in range(1, 8)}


def post(client, instrument, answers, **extra):
    token = csrf_token(client.get("/q/").get_data(as_text=True))
    return client.post("/q/", data={"csrf_token": token, "instrument": instrument,
                                    **answers, **extra})


# --- 1. the welcome line --------------------------------------------------------------------


def test_visit_minutes_is_ten_seconds_an_item_rounded_up():
    assert visit_minutes(0) == 1  # never "about 0 minutes"
    assert visit_minutes(6) == 1
    assert visit_minutes(7) == 2
    assert visit_minutes(16) == 3  # PHQ-9 and GAD-7: 160 seconds


def test_the_first_page_names_therapist_clinic_count_and_time(client, issued):
    _, token = issued
    client.get(f"/q/{token}")
    html = client.get("/q/").get_data(as_text=True)
    assert ("Before your session with Dr Ada Moss at Riverside Clinic: 2 short "
            "questionnaires, about 3 minutes.") in html
    post(client, "phq9", phq(0))
    second = client.get("/q/").get_data(as_text=True)
    assert "Before your session" not in second  # the first page only


def test_the_welcome_line_in_russian(client, db_session, issued):
    link, token = issued
    from outcome.models import Client
    from outcome.models import Episode

    episode = db_session.get(Episode, link.episode_id)
    db_session.get(Client, episode.client_id).locale = "ru"
    db_session.commit()
    client.get(f"/q/{token}")
    html = client.get("/q/").get_data(as_text=True)
    assert ("Перед встречей с Dr Ada Moss (Riverside Clinic): 2 коротких опросника, "  # noqa: RUF001
            "примерно 3 минуты.") in html


# --- 2. Back ----------------------------------------------------------------------------------


def test_back_shows_the_previous_answers_and_a_change_is_rescored(client, db_session,
                                                                  issued):
    _, token = issued
    client.get(f"/q/{token}")
    assert post(client, "phq9", phq(1)).status_code == 303
    page = client.get("/q/").get_data(as_text=True)
    assert "Questionnaire 2 of 2" in page and 'value="back"' in page
    response = post(client, "gad7", {"gad7_1": "2"}, go="back")
    assert response.status_code == 303
    back = client.get("/q/").get_data(as_text=True)
    assert "Questionnaire 1 of 2" in back
    assert re.search(r'name="phq9_1" value="1"\s+checked', back)  # the stored answer
    assert "Before your session" in back
    stored = db_session.scalar(select(Administration))
    assert stored.total == 8
    assert post(client, "phq9", phq(2)).status_code == 303  # changed
    db_session.expire_all()
    rows = db_session.scalars(select(Administration)).all()
    assert len(rows) == 1 and rows[0].total == 16 and rows[0].answers["phq9_1"] == 2
    nxt = client.get("/q/").get_data(as_text=True)
    assert "Questionnaire 2 of 2" in nxt
    # The unsent answer on the page the client went back from is kept too.
    assert re.search(r'name="gad7_1" value="2"\s+checked', nxt)
    assert post(client, "gad7", gad(0)).status_code == 303
    assert "Thank you" in client.get("/q/").get_data(as_text=True)
    actions = db_session.scalars(select(AuditEvent.action)).all()
    assert "questionnaire.back" in actions and "questionnaire.amend" in actions


def test_back_with_an_unchanged_page_changes_nothing(client, db_session, issued):
    _, token = issued
    client.get(f"/q/{token}")
    post(client, "phq9", phq(1))
    post(client, "gad7", {}, go="back")
    assert post(client, "phq9", phq(1)).status_code == 303
    assert "Questionnaire 2 of 2" in client.get("/q/").get_data(as_text=True)
    assert len(db_session.scalars(select(Administration)).all()) == 1


def test_no_back_on_the_first_questionnaire(client, issued):
    _, token = issued
    client.get(f"/q/{token}")
    assert 'value="back"' not in client.get("/q/").get_data(as_text=True)
    response = post(client, "phq9", phq(1), go="back")  # sent anyway: nothing to go back to
    assert response.status_code == 303
    assert "Questionnaire 1 of 2" in client.get("/q/").get_data(as_text=True)


def test_a_changed_answer_that_becomes_critical_alerts(client, db_session, issued):
    _, token = issued
    client.get(f"/q/{token}")
    post(client, "phq9", phq(0))
    post(client, "gad7", {}, go="back")
    response = post(client, "phq9", phq(0, item9=1))
    assert response.headers["Location"] == "/q/support"
    assert db_session.scalar(select(Alert.kind)) == "critical_item"


# --- 3. a second chance for a blank critical item ------------------------------------------


def test_a_blank_item_9_gets_a_gentle_second_chance_first(client, db_session, issued):
    _, token = issued
    client.get(f"/q/{token}")
    response = post(client, "phq9", phq(1, item9=None))
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "You left one question unanswered" in html
    assert "You do not have to answer it" in html
    assert "Thoughts that you would be better off dead" in html
    assert html.count("<fieldset") == 1  # only that question
    assert ">Answer</button>" in html and ">Continue without answering</button>" in html
    assert db_session.scalar(select(Administration.id)) is None  # nothing stored yet
    # The other answers travel in the form, so nothing is lost.
    assert 'type="hidden" name="phq9_1" value="1"' in html


def test_continue_without_answering_stores_it_unanswered_and_flagged(client, db_session,
                                                                     issued):
    _, token = issued
    client.get(f"/q/{token}")
    response = post(client, "phq9", phq(1, item9=None), critical="skip")
    assert response.status_code == 303 and response.headers["Location"] == "/q/"
    row = db_session.scalar(select(Administration))
    assert "phq9_9" not in row.answers
    assert row.scores["critical_unanswered"] == ["phq9_9"]
    assert db_session.scalar(select(Alert.kind)) == "critical_unanswered"
    assert "Questionnaire 2 of 2" in client.get("/q/").get_data(as_text=True)


def test_answering_on_the_second_chance_stores_the_answer(client, db_session, issued):
    _, token = issued
    client.get(f"/q/{token}")
    post(client, "phq9", phq(1, item9=None))
    response = post(client, "phq9", phq(1, item9=0), critical="answer")
    assert response.status_code == 303
    row = db_session.scalar(select(Administration))
    assert row.answers["phq9_9"] == 0 and not row.scores.get("critical_unanswered")
    assert db_session.scalar(select(Alert.id)) is None


def test_answer_pressed_with_nothing_chosen_asks_again_kindly(client, db_session, issued):
    _, token = issued
    client.get(f"/q/{token}")
    response = post(client, "phq9", phq(1, item9=None), critical="answer")
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Please choose an answer, or continue without answering." in html
    assert db_session.scalar(select(Administration.id)) is None


def test_a_critical_answer_chosen_is_never_dropped(client, db_session, issued):
    """An answer chosen on the second chance is kept whichever button was pressed."""
    _, token = issued
    client.get(f"/q/{token}")
    response = post(client, "phq9", phq(0, item9=2), critical="skip")
    assert response.headers["Location"] == "/q/support"
    assert db_session.scalar(select(Administration)).answers["phq9_9"] == 2


# --- 4. the goal scale ------------------------------------------------------------------------


def test_the_goal_scale_asks_its_question_once_per_goal(client, db_session, clinic, clock,
                                                        make_user, make_client,
                                                        make_episode):
    episode = make_episode(make_client(make_user()))
    attest(db_session, clinic=clinic, instrument=LIB.get("gbo"), admin=make_user("admin"),
           now=clock())
    set_goals(db_session, episode, ["Sleep through the night", "Go back to running"],
              clock())
    clinic.settings = {**clinic.settings, "pre_battery": [{"instrument": "gbo"}]}
    _, token = issue_link(db_session, episode=episode, purpose="pre", now=clock(),
                          library=LIB)
    db_session.commit()
    client.get(f"/q/{token}")
    html = client.get("/q/").get_data(as_text=True)
    assert html.count("Today I would rate progress to this goal:") == 2  # once per goal
    assert html.count("<fieldset") == 2 and html.count("<legend") == 2
    assert html.count('class="options scale"') == 2
    # Each option shows its number; the anchor words are in its accessible name.
    assert re.search(r'<span class="value">0</span>\s*<span class="visually-hidden">'
                     r' Goal not at all met</span>', html)


def test_the_second_chance_is_not_asked_again_after_going_back(client, db_session, issued):
    _, token = issued
    client.get(f"/q/{token}")
    post(client, "phq9", phq(1, item9=None), critical="skip")
    post(client, "gad7", {}, go="back")
    response = post(client, "phq9", phq(2, item9=None))  # changed, item 9 still blank
    assert response.status_code == 303
    row = db_session.scalar(select(Administration))
    db_session.refresh(row)
    assert row.total is not None and row.answers["phq9_1"] == 2
    assert row.scores["critical_unanswered"] == ["phq9_9"]


def test_the_second_chance_in_russian(client, db_session, issued):
    link, token = issued
    from outcome.models import Client
    from outcome.models import Episode

    episode = db_session.get(Episode, link.episode_id)
    db_session.get(Client, episode.client_id).locale = "ru"
    db_session.commit()
    client.get(f"/q/{token}")
    html = post(client, "phq9", phq(1, item9=None)).get_data(as_text=True)
    assert "Вы не ответили на один вопрос" in html
    assert ">Ответить</button>" in html and ">Продолжить без ответа</button>" in html
    assert "Назад" not in html  # the first questionnaire: nothing to go back to
