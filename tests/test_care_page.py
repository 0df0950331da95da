"""The therapist's care page: only the client's own therapist; everyone else gets 404."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from outcome.models import Appointment
from outcome.models import AuditEvent
from outcome.models import Goal
from tests.conftest import csrf_token


@pytest.fixture
def setup(db_session, make_user, make_client, make_episode, assign):
    therapist = make_user()
    person = make_client(therapist, name="<img src=x onerror=alert(1)>")
    make_episode(person)
    supervisor = make_user("supervisor")
    assign(supervisor, therapist)
    db_session.commit()
    return therapist, person, supervisor


def form(client, code, **data):
    token = csrf_token(client.get(f"/clients/{code}/care").get_data(as_text=True))
    return {"csrf_token": token, **data}


def test_therapist_books_sets_goals_shares_and_shows_a_qr(auth, client, db_session, setup):
    therapist, person, _ = setup
    auth.login(therapist.email)
    page = client.get(f"/clients/{person.code}/care").get_data(as_text=True)
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "<img src=x" not in page
    response = client.post(f"/clients/{person.code}/appointments", data=form(
        client, person.code, date="2026-11-23", time="10:00", weekly="3"))
    assert response.status_code == 302
    assert len(db_session.scalars(select(Appointment)).all()) == 3
    client.post(f"/clients/{person.code}/goals", data=form(
        client, person.code, goal=["Sleep better", "", "Walk daily"]))
    assert [g.description for g in db_session.scalars(select(Goal).order_by(Goal.position))] \
        == ["Sleep better", "Walk daily"]
    client.post(f"/clients/{person.code}/sharing", data=form(client, person.code, share="yes"))
    db_session.refresh(person)
    assert person.is_progress_shared
    appointment = db_session.scalars(select(Appointment)).first()
    shown = client.post(f"/clients/{person.code}/appointments/{appointment.id}/link",
                        data=form(client, person.code, purpose="pre"))
    html = shown.get_data(as_text=True)
    assert shown.status_code == 200 and "<svg" in html and "/q/" in html
    assert shown.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("who", ["other therapist", "supervisor", "admin", "anonymous"])
def test_nobody_else_reaches_the_page(auth, client, db_session, make_user, setup, who):
    _, person, supervisor = setup
    if who != "anonymous":
        user = {"other therapist": make_user(), "supervisor": supervisor,
                "admin": make_user("admin")}[who]
        db_session.commit()
        auth.login(user.email)
    response = client.get(f"/clients/{person.code}/care")
    if who == "anonymous":
        assert response.status_code == 302  # to the login page
        return
    assert response.status_code == 404
    assert person.name not in response.get_data(as_text=True)
    denied = db_session.scalar(select(AuditEvent).where(AuditEvent.outcome == "denied",
                                                         AuditEvent.action == "client.care.view"))
    assert denied is not None and denied.client_id == person.id


def test_unknown_client_is_404(auth, client, setup):
    therapist, _, _ = setup
    auth.login(therapist.email)
    assert client.get("/clients/C-NOPE99/care").status_code == 404


def test_bad_booking_input_is_explained(auth, client, setup):
    therapist, person, _ = setup
    auth.login(therapist.email)
    response = client.post(f"/clients/{person.code}/appointments", data=form(
        client, person.code, date="tomorrow", time="10", weekly="3"), follow_redirects=True)
    assert "Please give a date and a time" in response.get_data(as_text=True)


def test_withdrawing_unused_links(auth, client, db_session, clock, setup):
    from outcome.services.links import issue_link
    from outcome.services.links import open_link
    from questionnaires.loader import builtin_library

    therapist, person, _ = setup
    episode = person.episodes[0]
    _, token = issue_link(db_session, episode=episode, purpose="pre", now=clock(),
                          library=builtin_library())
    db_session.commit()
    auth.login(therapist.email)
    page = client.get(f"/clients/{person.code}/care").get_data(as_text=True)
    response = client.post(f"/clients/{person.code}/links/revoke",
                           data={"csrf_token": csrf_token(page), "confirm": "yes"},
                           follow_redirects=True)
    assert "1 unused link(s) withdrawn." in response.get_data(as_text=True)
    assert open_link(db_session, token, clock())[1] == "revoked"


def test_no_post_session_link_without_a_usable_alliance_measure(auth, client, db_session,
                                                                 clinic, setup):
    from outcome.models import QuestionnaireLink
    from outcome.services import clinic_settings

    therapist, person, _ = setup
    auth.login(therapist.email)
    client.post(f"/clients/{person.code}/appointments", data=form(
        client, person.code, date="2026-11-23", time="10:00", weekly="1"))
    appointment = db_session.scalars(select(Appointment)).one()
    clinic_settings.update(db_session, clinic, {"post_instrument": "srs_vas"})  # no wording
    db_session.commit()
    shown = client.post(f"/clients/{person.code}/appointments/{appointment.id}/link",
                        data=form(client, person.code, purpose="post"))
    html = shown.get_data(as_text=True)
    assert shown.status_code == 200 and "/q/" not in html
    assert "No link was made: there is nothing to ask the client after the session" in html
    assert db_session.scalars(select(QuestionnaireLink)).all() == []
