"""The pre-session battery as a form (issue 17): which questionnaires, in what order,
how often (every session, every n-th, at intake and end, at intake), and links that
honour it (session numbers -> instruments asked)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from outcome.core.battery import entry_problem
from outcome.core.battery import is_asked
from outcome.models import AuditEvent
from outcome.services import clinic_settings
from outcome.services.appointments import book_weekly_series
from outcome.services.links import issue_link
from questionnaires.loader import builtin_library
from tests.conftest import csrf_token

LIB = builtin_library()
MONDAY_10 = dt.datetime(2026, 11, 2, 10, tzinfo=dt.UTC)


@pytest.mark.no_database
@pytest.mark.parametrize("entry, sessions", [
    ({"instrument": "x"}, [1, 2, 3, 4, 5, 6, 7, 8]),
    ({"instrument": "x", "every": "session"}, [1, 2, 3, 4, 5, 6, 7, 8]),
    ({"instrument": "x", "every": "nth", "n": 3}, [1, 4, 7]),
    ({"instrument": "x", "every": "nth", "n": 2}, [1, 3, 5, 7]),
    ({"instrument": "x", "every": "month"}, [1, 5]),  # as before issue 17
    ({"instrument": "x", "every": "intake"}, [1]),
])
def test_session_numbers_to_questionnaires_asked(entry, sessions):
    assert entry_problem(entry) is None
    assert [n for n in range(1, 9) if is_asked(entry, n)] == sessions


@pytest.mark.no_database
def test_intake_and_end_is_the_first_and_the_last_booked_session():
    entry = {"instrument": "x", "every": "intake_and_end"}
    assert [n for n in range(1, 9) if is_asked(entry, n, is_last=n == 8)] == [1, 8]
    assert [n for n in range(1, 9) if is_asked(entry, n)] == [1]


@pytest.mark.no_database
@pytest.mark.parametrize("entry", [
    {"instrument": "x", "every": "nth"}, {"instrument": "x", "every": "nth", "n": 1},
    {"instrument": "x", "every": "nth", "n": 53}, {"instrument": "x", "every": "nth",
                                                    "n": True},
    {"instrument": "x", "every": "nth", "n": "3"}, {"instrument": "x", "every": "weekly"},
    {"every": "session"}, "phq9",
])
def test_bad_entries_are_refused(entry):
    assert entry_problem(entry)


def test_old_settings_stay_valid(db_session, clinic):
    old = [{"instrument": "phq9", "every": "session"}, {"instrument": "pcl5", "every": "month"},
           {"instrument": "gad7", "every": "intake"}, {"instrument": "gbo"}]
    assert clinic_settings.problems(clinic, {"pre_battery": old}) == {}
    assert "pre_battery" in clinic_settings.problems(
        clinic, {"pre_battery": [{"instrument": "phq9", "every": "nth", "n": 1}]})


@pytest.fixture
def episode(make_user, make_client, make_episode):
    return make_episode(make_client(make_user()))


def test_links_honour_the_battery(db_session, clinic, episode):
    clinic_settings.update(db_session, clinic, {"pre_battery": [
        {"instrument": "gad7", "every": "session"},
        {"instrument": "phq9", "every": "nth", "n": 3},
        {"instrument": "pcl5", "every": "intake_and_end"}]})
    series = book_weekly_series(db_session, episode, dt.datetime(2026, 11, 2, 10), count=7)
    batteries = [issue_link(db_session, episode=episode, purpose="pre", now=MONDAY_10,
                            library=LIB, appointment=a)[0].battery for a in series]
    assert batteries == [
        ["gad7", "phq9", "pcl5"],  # 1: intake
        ["gad7"], ["gad7"],
        ["gad7", "phq9"],  # 4 = 1 + 3
        ["gad7"], ["gad7"],
        ["gad7", "phq9", "pcl5"],  # 7: every 3rd, and the last booked
    ]
    # Booking one more session moves the end: session 7 is no longer the last.
    book_weekly_series(db_session, episode, dt.datetime(2026, 12, 21, 10), count=1)
    assert issue_link(db_session, episode=episode, purpose="pre", now=MONDAY_10,
                      library=LIB, appointment=series[6])[0].battery == ["gad7", "phq9"]


# --- the form -------------------------------------------------------------------------


@pytest.fixture
def admin(make_user, db_session):
    user = make_user("admin")
    db_session.commit()
    return user


def _post(client, **fields):
    token = csrf_token(client.get("/admin/battery").get_data(as_text=True))
    return client.post("/admin/battery", data={"csrf_token": token, **fields})


def test_the_form_shows_the_default_battery_in_order(auth, client, admin):
    auth.login(admin.email)
    html = client.get("/admin/battery").get_data(as_text=True)
    assert html.index('id="include-phq9"') < html.index('id="include-gad7"')
    assert 'name="include-phq9" value="yes" checked' in html
    assert 'id="include-k10"' not in html  # licence not attested: not offered
    assert 'id="include-session_check"' not in html  # alliance: after the session


def test_the_form_saves_order_and_frequency(auth, client, db_session, clinic, admin):
    auth.login(admin.email)
    response = _post(client, **{
        "include-gad7": "yes", "position-gad7": "1", "every-gad7": "session",
        "include-phq9": "yes", "position-phq9": "2", "every-phq9": "nth", "n-phq9": "3",
        "include-pcl5": "yes", "position-pcl5": "3", "every-pcl5": "intake_and_end",
        "position-gbo": "4"})  # gbo not ticked: dropped
    assert response.status_code == 302
    db_session.expire_all()
    assert clinic_settings.current(clinic)["pre_battery"] == [
        {"instrument": "gad7", "every": "session"},
        {"instrument": "phq9", "every": "nth", "n": 3},
        {"instrument": "pcl5", "every": "intake_and_end"}]
    assert db_session.scalars(select(AuditEvent.outcome).where(
        AuditEvent.action == "clinic.battery.change")).all() == ["allowed"]


def test_an_old_month_entry_is_shown_as_every_fourth(auth, client, db_session, clinic, admin):
    clinic_settings.update(db_session, clinic, {"pre_battery": [
        {"instrument": "phq9", "every": "month"}]})
    db_session.commit()
    auth.login(admin.email)
    html = client.get("/admin/battery").get_data(as_text=True)
    assert 'id="n-phq9" name="n-phq9" value="4"' in html
    assert '<option value="nth" selected>' in html


@pytest.mark.parametrize("fields, problem", [
    ({"include-phq9": "yes", "every-phq9": "nth", "n-phq9": "1"},
     "a whole number from 2 to 52"),
    ({"include-phq9": "yes", "every-phq9": "nth", "n-phq9": "٣"},
     "a whole number from 2 to 52"),
    ({"include-phq9": "yes", "position-phq9": "first"}, "the position must be"),
    ({"include-phq9": "yes", "every-phq9": "weekly"}, "choose how often"),
])
def test_bad_rows_are_a_400_and_nothing_is_saved(auth, client, db_session, clinic, admin,
                                                 fields, problem):
    before = clinic_settings.current(clinic)["pre_battery"]
    auth.login(admin.email)
    response = _post(client, **fields)
    assert response.status_code == 400
    assert problem in response.get_data(as_text=True)
    db_session.expire_all()
    assert clinic_settings.current(clinic)["pre_battery"] == before


def test_an_unavailable_questionnaire_already_in_the_battery_cannot_be_kept(
        auth, client, db_session, clinic, admin):
    clinic_settings.update(db_session, clinic, {"pre_battery": [{"instrument": "k10"}]})
    db_session.commit()
    auth.login(admin.email)
    html = client.get("/admin/battery").get_data(as_text=True)
    assert 'id="include-k10"' in html and "Not available now" in html
    response = _post(client, **{"include-k10": "yes"})
    assert response.status_code == 400
    assert "cannot be asked" in response.get_data(as_text=True)
