"""The waiting-room kiosk (issue 17): an admin enrols a device, a therapist makes a code
for today's appointment, the client types it at the kiosk, answers, and the kiosk goes
back to the code screen. Codes are hashed, single use, end with the clinic's day; the
kiosk browser reaches nothing else."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from outcome.models import Administration
from outcome.models import AuditEvent
from outcome.models import KioskCode
from outcome.models import KioskDevice
from outcome.services import kiosk as kiosks
from tests.conftest import csrf_token

CODE_SHOWN = re.compile(r'class="kiosk-code-shown code">([A-Z0-9]{3}) ([A-Z0-9]{3})<')


@pytest.fixture
def world(db_session, clinic, make_user, make_client, make_episode, make_appointment, clock):
    admin = make_user("admin")
    therapist = make_user("therapist")
    person = make_client(therapist, name="Rowan Kiosk")
    episode = make_episode(person)
    today = make_appointment(episode, starts_dt=clock() + dt.timedelta(hours=1))
    tomorrow = make_appointment(episode, starts_dt=clock() + dt.timedelta(days=1))
    db_session.commit()
    return {"admin": admin, "therapist": therapist, "client": person, "today": today,
            "tomorrow": tomorrow}


def _form(client, page: str, url: str, **data):
    html = client.get(page).get_data(as_text=True)
    return client.post(url, data={"csrf_token": csrf_token(html), **data})


def enrol(app, auth_for, admin) -> tuple[object, str]:
    """A new browser made a kiosk by ``admin``: (the kiosk's test client, setup url)."""
    staff = app.test_client()
    auth_for(staff).login(admin.email)
    html = _form(staff, "/admin/kiosks", "/admin/kiosks", name="Waiting room").get_data(
        as_text=True)
    url = re.search(r'readonly value="http://[^/]+(/kiosk/setup/[^"]+)"', html).group(1)
    device = app.test_client()
    assert device.get(url).status_code == 200
    response = _form(device, url, url)
    assert response.status_code == 303 and response.headers["Location"] == "/kiosk/"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("outcome_kiosk=") and "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie and "Max-Age=31536000" in cookie
    return device, url


@pytest.fixture
def auth_for():
    from tests.conftest import AuthActions

    return AuthActions


def make_code(app, auth_for, world) -> str:
    staff = app.test_client()
    auth_for(staff).login(world["therapist"].email)
    code = world["client"].code
    page = f"/clients/{code}/care"
    assert "Kiosk code" in staff.get(page).get_data(as_text=True)
    response = _form(staff, page, f"/clients/{code}/appointments/{world['today'].id}/kiosk-code")
    assert response.status_code == 200
    first, second = CODE_SHOWN.search(response.get_data(as_text=True)).groups()
    return first + second


def phq(level):
    return {f"phq9_{i}": str(level) for i in range(1, 10)}


def answer(device, instrument, values):
    html = device.get("/q/").get_data(as_text=True)
    return device.post("/q/", data={"csrf_token": csrf_token(html), "instrument": instrument,
                                    **values})


def test_a_client_answers_at_the_kiosk_and_it_returns_to_the_code_screen(
        app, auth_for, db_session, world):
    device, _url = enrol(app, auth_for, world["admin"])
    code = make_code(app, auth_for, world)
    assert set(code) <= set(kiosks.CODE_ALPHABET) and len(code) == 6
    stored = db_session.scalars(select(KioskCode)).one()
    assert code not in stored.code_hash  # only a keyed hash is kept
    screen = device.get("/kiosk/")
    assert screen.status_code == 200 and "Rowan" not in screen.get_data(as_text=True)
    # Typed in lower case with a space, as people do.
    response = _form(device, "/kiosk/", "/kiosk/", code=f"{code[:3].lower()} {code[3:]}")
    assert response.status_code == 303 and response.headers["Location"] == "/q/"
    page = device.get("/q/").get_data(as_text=True)
    assert "Questionnaire 1 of 2" in page and "Rowan" not in page
    assert 'http-equiv="refresh"' in page  # back to the code screen when left idle
    assert answer(device, "phq9", phq(1)).status_code == 303
    finished = answer(device, "gad7", {f"gad7_{i}": "0" for i in range(1, 8)})
    assert finished.status_code == 303
    done = device.get("/q/")
    assert done.status_code == 303 and done.headers["Location"] == "/kiosk/"
    html = device.get("/kiosk/").get_data(as_text=True)
    assert "your answers have been sent" in html and "Your code" in html
    db_session.expire_all()
    assert len(db_session.scalars(select(Administration)).all()) == 2
    # The session is gone: the questionnaire pages send the kiosk back to the code screen.
    assert device.get("/q/").headers["Location"] == "/kiosk/"
    actions = db_session.scalars(select(AuditEvent.action).where(
        AuditEvent.action.like("kiosk.%"), AuditEvent.outcome == "allowed")).all()
    assert {"kiosk.create", "kiosk.enrol", "kiosk.code.create", "kiosk.code.use"} <= set(
        actions)


def test_a_code_works_once_today_only_at_a_kiosk_of_its_clinic(
        app, auth_for, db_session, world, clock, make_clinic, make_user):
    device, _url = enrol(app, auth_for, world["admin"])
    code = make_code(app, auth_for, world)
    # Another clinic's kiosk: the code does not work there.
    other = make_clinic()
    other_admin = make_user("admin", clinic_id=other.id)
    db_session.commit()
    elsewhere, _ = enrol(app, auth_for, other_admin)
    refused = _form(elsewhere, "/kiosk/", "/kiosk/", code=code)
    assert refused.status_code == 400 and "does not work" in refused.get_data(as_text=True)
    assert _form(device, "/kiosk/", "/kiosk/", code=code).status_code == 303
    device.get("/kiosk/")  # walked away: the client session ends
    again = _form(device, "/kiosk/", "/kiosk/", code=code)
    assert again.status_code == 400
    late = make_code(app, auth_for, world)
    clock.advance(hours=15)  # 00:00 the next day (the clinic is on UTC)
    assert _form(device, "/kiosk/", "/kiosk/", code=late).status_code == 400
    assert _form(device, "/kiosk/", "/kiosk/", code="AAAAAA").status_code == 400
    assert db_session.scalars(select(AuditEvent.outcome).where(
        AuditEvent.action == "kiosk.code.use")).all().count("denied") == 4


def test_a_new_code_withdraws_the_previous_one(app, auth_for, world):
    device, _url = enrol(app, auth_for, world["admin"])
    first = make_code(app, auth_for, world)
    second = make_code(app, auth_for, world)
    assert _form(device, "/kiosk/", "/kiosk/", code=first).status_code == 400
    assert _form(device, "/kiosk/", "/kiosk/", code=second).status_code == 303


def test_a_code_is_made_only_for_today(app, auth_for, world):
    staff = app.test_client()
    auth_for(staff).login(world["therapist"].email)
    code = world["client"].code
    response = _form(staff, f"/clients/{code}/care",
                     f"/clients/{code}/appointments/{world['tomorrow'].id}/kiosk-code")
    assert response.status_code == 400
    assert "on the day of the appointment" in response.get_data(as_text=True)


def test_the_kiosk_reaches_nothing_else(app, auth_for, db_session, world):
    device, url = enrol(app, auth_for, world["admin"])
    code = world["client"].code
    for path in ("/", "/login", "/admin/", "/admin/kiosks", f"/clients/{code}/care",
                 "/account/tokens", "/q/some-other-clients-token", url):
        assert device.get(path).status_code == 404, path
    # The setup link worked once: a second browser cannot enrol with it.
    assert app.test_client().get(url).status_code == 404


def test_a_revoked_kiosk_shows_nothing(app, auth_for, db_session, world):
    device, _url = enrol(app, auth_for, world["admin"])
    staff = app.test_client()
    auth_for(staff).login(world["admin"].email)
    row = db_session.scalars(select(KioskDevice)).one()
    unconfirmed = _form(staff, "/admin/kiosks", f"/admin/kiosks/{row.id}/revoke")
    assert unconfirmed.status_code == 400
    assert _form(staff, "/admin/kiosks", f"/admin/kiosks/{row.id}/revoke",
                 confirm="yes").status_code == 302
    response = device.get("/kiosk/")
    assert response.status_code == 404
    assert "outcome_kiosk=;" in response.headers["Set-Cookie"]  # an ordinary browser again


def test_wrong_codes_are_rate_limited(make_app, session_factory, clock, auth_for, world):
    app = make_app(session_factory=session_factory, clock=clock, RATELIMIT_ENABLED=True)
    device, _url = enrol(app, auth_for, world["admin"])
    statuses = [_form(device, "/kiosk/", "/kiosk/", code="AAAAAA").status_code
                for _ in range(7)]
    assert statuses[:5] == [400] * 5 and statuses[-1] == 429


def test_a_device_without_the_cookie_sees_no_kiosk(client):
    assert client.get("/kiosk/").status_code == 404
    assert client.get("/kiosk/setup/nothing-here").status_code == 404
