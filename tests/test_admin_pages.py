"""The admin pages: admins only (everyone else 404), codes never names, every change audited."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from outcome.models import AuditEvent
from outcome.models import Episode
from outcome.models import InstrumentAttestation
from outcome.models import SupervisorAssignment
from outcome.models import User
from outcome.services import audit
from outcome.services.passwords import verify_password
from tests.conftest import csrf_token

CANARY = "Zebediah Canaryname"
NEW_PASSWORD = "a lantern by the quiet harbour"


@pytest.fixture
def world(db_session, make_user, make_client, make_episode, assign):
    """An admin (not a clinician), two therapists, a supervisor and a client with a canary name."""
    admin = make_user("admin", display_name="Ada Admin")
    therapist = make_user("therapist", display_name="Theo Therapist")
    other = make_user("therapist", display_name="Olga Other")
    supervisor = make_user("supervisor", display_name="Sam Supervisor")
    assign(supervisor, therapist)
    person = make_client(therapist, name=CANARY)
    make_episode(person)
    db_session.commit()
    return {"admin": admin, "therapist": therapist, "other": other,
            "supervisor": supervisor, "client": person}


def token(client) -> str:
    return csrf_token(client.get("/admin/").get_data(as_text=True))


def post(client, url, **data):
    return client.post(url, data={"csrf_token": token(client), **data})


def events(db_session, action):
    return db_session.scalars(select(AuditEvent).where(AuditEvent.action == action)
                              .order_by(AuditEvent.id)).all()


def admin_urls(app, world) -> list[tuple[str, str]]:
    """Every admin route with real arguments; fails for a route this test does not know."""
    values = {"user_id": world["therapist"].id, "code": world["client"].code,
              "instrument_id": "who5", "assignment_id": 1, "token_id": 1,
              "request_id": 1, "email_id": 1, "device_id": 1}
    urls = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("admin."):
            continue
        unknown = set(rule.arguments) - values.keys()
        assert not unknown, f"{rule} needs a test value for {unknown}"
        path = rule.rule
        for name in rule.arguments:
            path = re.sub(rf"<(?:\w+:)?{name}>", str(values[name]), path)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            urls.append((method, path))
    return urls


# --- access ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["therapist", "supervisor", "anonymous"])
def test_everyone_but_admins_gets_404_on_every_admin_route(app, auth, client, db_session,
                                                          world, make_user, role):
    urls = admin_urls(app, world)
    assert len(urls) >= 19
    if role != "anonymous":
        user = make_user(role, is_therapist=True)
        db_session.commit()
        auth.login(user.email)
        csrf = csrf_token(client.get("/").get_data(as_text=True))
    for method, path in urls:
        if role == "anonymous":
            response = client.open(path, method=method)
            assert response.status_code in (302, 400), path  # login, or CSRF first
            if response.status_code == 302:
                assert "/login" in response.headers["Location"]
            continue
        response = client.open(path, method=method, data={"csrf_token": csrf})
        assert response.status_code == 404, (method, path)
        assert CANARY not in response.get_data(as_text=True)
    if role != "anonymous":
        denied = events(db_session, "admin.view")
        assert len(denied) == len(urls)
        assert {e.outcome for e in denied} == {"denied"}
        assert {e.actor_user_id for e in denied} == {user.id}
    # Nothing changed: the client is still with their therapist.
    db_session.refresh(world["client"])
    assert world["client"].therapist_id == world["therapist"].id


def test_an_admin_of_another_clinic_gets_404_for_this_clinics_objects(auth, client, db_session,
                                                                     world, make_clinic,
                                                                     make_user):
    stranger = make_user("admin", clinic_id=make_clinic().id)
    db_session.commit()
    auth.login(stranger.email)
    assert client.get(f"/admin/users/{world['therapist'].id}").status_code == 404
    assert post(client, f"/admin/users/{world['therapist'].id}/disable",
                confirm="yes").status_code == 404
    assert post(client, f"/admin/clients/{world['client'].code}/transfer", confirm="yes",
                therapist_id=world["other"].id).status_code == 404
    row = db_session.scalar(select(SupervisorAssignment))
    assert post(client, f"/admin/assignments/{row.id}/delete").status_code == 404
    page = client.get("/admin/clients").get_data(as_text=True)
    assert world["client"].code not in page
    assert world["therapist"].display_name not in client.get("/admin/users").get_data(
        as_text=True)
    db_session.refresh(world["therapist"])
    assert world["therapist"].is_active
    assert [e.outcome for e in events(db_session, "user.disable")] == ["denied"]


@pytest.mark.parametrize("clinician", [False, True])
def test_admin_pages_never_show_a_client_name(app, auth, client, db_session, world,
                                             clinician):
    admin = world["admin"]
    if clinician:  # even the client's own therapist sees codes on the admin pages
        world["therapist"].is_admin = True
        admin = world["therapist"]
    db_session.add(AuditEvent(occurred_dt=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
                              action="client.care.view", outcome="allowed", actor_kind="user",
                              actor_user_id=world["therapist"].id,
                              clinic_id=world["client"].clinic_id,
                              client_id=world["client"].id))
    db_session.commit()
    auth.login(admin.email)
    pages = [path for method, path in admin_urls(app, world) if method == "GET"]
    pages += [f"/admin/clients?therapist={world['therapist'].id}",
              f"/admin/audit?client={world['client'].code}"]
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
        assert CANARY not in response.get_data(as_text=True), path
    assert world["client"].code in client.get("/admin/clients").get_data(as_text=True)


def test_overview_links_every_section(auth, client, world):
    auth.login(world["admin"].email)
    html = client.get("/admin/").get_data(as_text=True)
    for path in ("/admin/users", "/admin/assignments", "/admin/clients", "/admin/settings",
                 "/admin/instruments", "/admin/audit", "/account/password"):
        assert f'href="{path}"' in html


# --- staff -------------------------------------------------------------------------------


def test_list_shows_staff_with_roles_status_and_last_login(auth, client, db_session, world,
                                                          clock):
    world["other"].is_active = False
    world["therapist"].last_login_dt = dt.datetime(2026, 11, 2, 8, 30, tzinfo=dt.UTC)
    world["admin"].clinic.timezone = "Europe/Berlin"
    db_session.commit()
    auth.login(world["admin"].email)
    html = client.get("/admin/users").get_data(as_text=True)
    for user in world["therapist"], world["other"], world["supervisor"]:
        assert user.display_name in html and user.email in html
    assert "Nov 2, 2026, 9:30\u202fAM" in html  # clinic time, the one date-and-time style
    assert "Disabled" in html and "Never" in html


def test_admin_creates_an_account_with_a_generated_password(app, auth, client, db_session,
                                                           world):
    auth.login(world["admin"].email)
    response = post(client, "/admin/users", email="New.Person@Example.org",
                    display_name="New Person", role=["therapist", "supervisor"],
                    password_choice="generate")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "shown only now" in html
    password = re.search(r'id="generated-password" readonly value="([^"]+)"', html).group(1)
    user = db_session.scalar(select(User).where(User.email == "new.person@example.org"))
    assert user.roles == ("supervisor", "therapist")
    assert verify_password(user.password_hash, password)
    assert response.headers["Cache-Control"] == "no-store"
    [event] = events(db_session, "user.create")
    assert (event.outcome, event.actor_user_id, event.object_id) == (
        "allowed", world["admin"].id, str(user.id))
    # The new person signs in with it.
    other_browser = app.test_client()
    from tests.conftest import AuthActions

    assert AuthActions(other_browser).login(user.email, password).status_code == 302


def test_admin_creates_an_account_with_a_typed_password(auth, client, db_session, world):
    auth.login(world["admin"].email)
    response = post(client, "/admin/users", email="typed@example.org", display_name="Typed",
                    role="admin", password_choice="set", password=NEW_PASSWORD,
                    password_confirm=NEW_PASSWORD)
    user = db_session.scalar(select(User).where(User.email == "typed@example.org"))
    assert response.status_code == 302
    assert response.headers["Location"] == f"/admin/users/{user.id}"
    assert verify_password(user.password_hash, NEW_PASSWORD)
    assert NEW_PASSWORD not in client.get(response.headers["Location"]).get_data(as_text=True)


@pytest.mark.parametrize(("data", "message"), [
    ({"email": "nope", "display_name": "X", "role": "therapist"}, "is not an e-mail address"),
    ({"email": "x@example.org", "display_name": "X"}, "Choose at least one role"),
    ({"email": "x@example.org", "display_name": "X", "role": "therapist",
      "password_choice": "set", "password": "short", "password_confirm": "short"},
     "at least 15 characters"),
    ({"email": "x@example.org", "display_name": "X", "role": "therapist",
      "password_choice": "set", "password": NEW_PASSWORD, "password_confirm": "other"},
     "The two passwords differ"),
])
def test_a_refused_account_shows_why_and_saves_nothing(auth, client, db_session, world, data,
                                                      message):
    auth.login(world["admin"].email)
    before = len(db_session.scalars(select(User)).all())
    response = post(client, "/admin/users", **data)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and message in html
    assert re.search(r'aria-describedby="\w+-error"', html)
    assert len(db_session.scalars(select(User)).all()) == before


def test_duplicate_email_is_refused_and_audited_as_an_error(auth, client, db_session, world):
    auth.login(world["admin"].email)
    html = post(client, "/admin/users", email=world["therapist"].email.upper(),
                display_name="Dup", role="therapist").get_data(as_text=True)
    assert "already an account" in html
    assert [e.outcome for e in events(db_session, "user.create")] == ["error"]


def test_another_clinics_address_gets_a_neutral_refusal(auth, client, db_session, world,
                                                        make_clinic, make_user):
    """Issue 16, finding 12: an admin cannot tell which addresses exist at another clinic.

    An address of this clinic may be named as taken; another clinic's gets a neutral
    sentence that names no account, and nothing is created."""
    elsewhere = make_user("therapist", clinic_id=make_clinic().id,
                          email="someone@elsewhere.example")
    db_session.commit()
    before = len(db_session.scalars(select(User)).all())
    auth.login(world["admin"].email)
    html = post(client, "/admin/users", email=elsewhere.email.upper(),
                display_name="Probe", role="therapist").get_data(as_text=True)
    assert "already" not in html and "account with" not in html
    assert "cannot be used for a new account here" in html
    assert len(db_session.scalars(select(User)).all()) == before
    assert [e.outcome for e in events(db_session, "user.create")] == ["error"]


def test_roles_change_and_the_last_admin_is_kept(auth, client, db_session, world):
    auth.login(world["admin"].email)
    therapist = world["therapist"]
    post(client, f"/admin/users/{therapist.id}/roles", role=["therapist", "admin"])
    db_session.refresh(therapist)
    assert therapist.roles == ("admin", "therapist")
    response = post(client, f"/admin/users/{therapist.id}/roles", role=["supervisor"])
    assert response.status_code == 302
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "still has 1 client(s); transfer them" in html
    # Trading the admin role for a clinical one is asking for client access: it waits
    # for another admin (tests/test_separation_of_duties.py).
    response = post(client, f"/admin/users/{world['admin'].id}/roles", role=["supervisor"])
    assert "awaits the approval of another admin" in client.get(
        response.headers["Location"]).get_data(as_text=True)
    db_session.refresh(world["admin"])
    assert world["admin"].roles == ("admin",)
    # Once a supervisor (approved), giving up the admin role while another admin
    # exists is allowed, and the pages close.
    world["admin"].is_supervisor = True
    db_session.commit()
    response = post(client, f"/admin/users/{world['admin'].id}/roles", role=["supervisor"])
    assert response.headers["Location"] == "/"
    assert client.get("/admin/").status_code == 404
    outcomes = [e.outcome for e in events(db_session, "user.roles.change")]
    assert outcomes == ["allowed", "error", "allowed"]


def test_the_last_admin_cannot_drop_the_role(auth, client, db_session, world):
    auth.login(world["admin"].email)
    response = post(client, f"/admin/users/{world['admin'].id}/roles", role=["therapist"])
    assert "last active admin" in client.get(response.headers["Location"]).get_data(
        as_text=True)
    db_session.refresh(world["admin"])
    assert world["admin"].is_admin


def test_disabling_ends_the_users_sessions_and_points_to_their_clients(app, auth, client,
                                                                       db_session, world):
    from tests.conftest import AuthActions

    therapist = world["therapist"]
    their_browser = app.test_client()
    AuthActions(their_browser).login(therapist.email)
    assert their_browser.get("/").status_code == 200
    auth.login(world["admin"].email)
    response = post(client, f"/admin/users/{therapist.id}/disable", confirm="yes")
    assert response.headers["Location"] == f"/admin/clients?therapist={therapist.id}"
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "still has 1 client(s): transfer them" in html
    assert world["client"].code in html
    assert their_browser.get("/").status_code == 302  # signed out at once
    assert "do not match" in AuthActions(app.test_client()).login(therapist.email).get_data(
        as_text=True)
    post(client, f"/admin/users/{therapist.id}/enable")
    db_session.refresh(therapist)
    assert therapist.is_active
    assert AuthActions(app.test_client()).login(therapist.email).status_code == 302
    assert [e.action for e in db_session.scalars(select(AuditEvent).where(
        AuditEvent.action.like("user.%"), AuditEvent.outcome == "allowed")
        .order_by(AuditEvent.id))] == ["user.disable", "user.enable"]


def test_an_admin_cannot_disable_or_reset_themselves_here(auth, client, db_session, world,
                                                         make_user):
    make_user("admin")
    db_session.commit()
    auth.login(world["admin"].email)
    response = post(client, f"/admin/users/{world['admin'].id}/disable", confirm="yes")
    assert "cannot disable your own account" in client.get(
        response.headers["Location"]).get_data(as_text=True)
    response = post(client, f"/admin/users/{world['admin'].id}/password")
    assert response.headers["Location"] == "/account/password"
    db_session.refresh(world["admin"])
    assert world["admin"].is_active and world["admin"].session_version == 1


def test_password_reset_ends_captured_cookies(app, auth, client, db_session, world):
    from tests.conftest import AuthActions

    therapist = world["therapist"]
    their_browser = app.test_client()
    AuthActions(their_browser).login(therapist.email)
    captured = their_browser.get_cookie("session").value
    auth.login(world["admin"].email)
    response = post(client, f"/admin/users/{therapist.id}/password", password_choice="set",
                    password=NEW_PASSWORD, password_confirm=NEW_PASSWORD)
    assert response.status_code == 302
    replay = app.test_client()
    replay.set_cookie("session", captured)
    assert replay.get("/").status_code == 302
    assert AuthActions(app.test_client()).login(therapist.email, NEW_PASSWORD
                                                ).status_code == 302
    # A generated one is shown once, and is not in the audit trail.
    html = post(client, f"/admin/users/{therapist.id}/password",
                password_choice="generate").get_data(as_text=True)
    password = re.search(r'id="generated-password" readonly value="([^"]+)"', html).group(1)
    db_session.refresh(therapist)
    assert verify_password(therapist.password_hash, password)
    resets = events(db_session, "user.password.reset")
    assert [e.outcome for e in resets] == ["allowed", "allowed"]
    assert all(password not in (e.object_id or "") for e in resets)
    bad = post(client, f"/admin/users/{therapist.id}/password", password_choice="set",
               password="short", password_confirm="short")
    assert "at least 15 characters" in client.get(bad.headers["Location"]).get_data(
        as_text=True)


# --- supervision -------------------------------------------------------------------------


def test_admin_adds_and_removes_supervision(auth, client, db_session, world):
    auth.login(world["admin"].email)
    html = client.get("/admin/assignments").get_data(as_text=True)
    assert "Sam Supervisor" in html and "Theo Therapist" in html
    response = post(client, "/admin/assignments", supervisor_id=world["supervisor"].id,
                    therapist_id=world["other"].id)
    assert response.status_code == 302
    assert "now supervises Olga Other" in client.get("/admin/assignments").get_data(
        as_text=True)
    duplicate = post(client, "/admin/assignments", supervisor_id=world["supervisor"].id,
                     therapist_id=world["other"].id)
    assert "already supervises" in client.get(duplicate.headers["Location"]).get_data(
        as_text=True)
    wrong_role = post(client, "/admin/assignments", supervisor_id=world["therapist"].id,
                      therapist_id=world["other"].id)
    assert "does not have the supervisor role" in client.get(
        wrong_role.headers["Location"]).get_data(as_text=True)
    rows = db_session.scalars(select(SupervisorAssignment).order_by(
        SupervisorAssignment.id)).all()
    assert len(rows) == 2
    post(client, f"/admin/assignments/{rows[1].id}/delete")
    assert [r.therapist_id for r in db_session.scalars(select(SupervisorAssignment))] == [
        world["therapist"].id]
    assert [e.outcome for e in events(db_session, "assignment.create")] == [
        "allowed", "error", "error"]
    assert [e.object_id for e in events(db_session, "assignment.delete")] == [str(rows[1].id)]


def test_a_foreign_user_in_the_assignment_form_is_a_404(auth, client, db_session, world,
                                                       make_clinic, make_user):
    foreign = make_user("therapist", clinic_id=make_clinic().id)
    db_session.commit()
    auth.login(world["admin"].email)
    assert post(client, "/admin/assignments", supervisor_id=world["supervisor"].id,
                therapist_id=foreign.id).status_code == 404
    assert post(client, "/admin/assignments", supervisor_id="x",
                therapist_id=foreign.id).status_code == 404


# --- clients -----------------------------------------------------------------------------


def test_transfer_moves_the_client_to_the_new_therapist(app, auth, client, db_session, world):
    from tests.conftest import AuthActions

    person, old, new = world["client"], world["therapist"], world["other"]
    auth.login(world["admin"].email)
    response = post(client, f"/admin/clients/{person.code}/transfer",
                    confirm="yes", therapist_id=new.id)
    assert response.status_code == 302
    assert f"{person.code} is now with Olga Other" in client.get(
        response.headers["Location"]).get_data(as_text=True)
    db_session.expire_all()
    assert person.therapist_id == new.id
    assert db_session.scalar(select(Episode).where(Episode.client_id == person.id)
                             ).therapist_id == new.id
    new_browser, old_browser = app.test_client(), app.test_client()
    AuthActions(new_browser).login(new.email)
    AuthActions(old_browser).login(old.email)
    assert new_browser.get(f"/clients/{person.code}/care").status_code == 200
    assert CANARY in new_browser.get("/").get_data(as_text=True)
    assert old_browser.get(f"/clients/{person.code}/care").status_code == 404
    assert CANARY not in old_browser.get("/").get_data(as_text=True)
    [event] = events(db_session, "client.transfer")
    assert (event.client_id, event.object_type, event.object_id) == (
        person.id, "user", str(new.id))


def test_transfer_refusals_show_why(auth, client, db_session, world, make_user):
    supervisor_only = world["supervisor"]
    auth.login(world["admin"].email)
    code = world["client"].code
    response = post(client, f"/admin/clients/{code}/transfer", confirm="yes",
                    therapist_id=supervisor_only.id)
    assert "not an active therapist" in client.get(response.headers["Location"]).get_data(
        as_text=True)
    response = post(client, f"/admin/clients/{code}/transfer", confirm="yes",
                    therapist_id=world["therapist"].id)
    assert "is already with Theo Therapist" in client.get(
        response.headers["Location"]).get_data(as_text=True)
    assert post(client, "/admin/clients/C-NOSUCH/transfer", confirm="yes",
                therapist_id=world["other"].id).status_code == 404
    assert [e.outcome for e in events(db_session, "client.transfer")] == [
        "error", "error", "denied"]


# --- settings ----------------------------------------------------------------------------


def settings_form(client, **changes):
    html = client.get("/admin/settings").get_data(as_text=True)
    data = {"csrf_token": csrf_token(html)}
    for name, value in re.findall(r'<input type="text"[^>]*?name="(\w+)" value="([^"]*)"',
                                  html):
        data[name] = value
    for name, value in re.findall(r'<textarea [^>]*?name="(\w+)"[^>]*>([^<]*)</textarea>',
                                  html):
        data[name] = value.replace("&#34;", '"').replace("&quot;", '"')
    data.update({"timezone": "UTC", "digest_weekday": "0", "digest_time": "07:00",
                 "post_instrument": "session_check"})
    data.update(changes)
    return data


def test_settings_are_saved_and_audited(auth, client, db_session, world):
    clinic = world["admin"].clinic
    auth.login(world["admin"].email)
    response = client.post("/admin/settings", data=settings_form(
        client, timezone="Europe/Berlin", digest_weekday="4", digest_time="16:30",
        link_opens_hours="72", colour_green_max="0.7",
        crisis_text="Call the clinic line 0123 456 789, or 112 in an emergency."))
    assert response.status_code == 302
    page = client.get("/admin/settings").get_data(as_text=True)
    assert "Settings saved" in page and "outcome signals recompute" in page
    db_session.refresh(clinic)
    assert clinic.timezone == "Europe/Berlin"
    assert clinic.settings == {
        "consent_online": False,  # the test world's clinic (tests/conftest.py, issue 20)
        "digest_weekday": 4, "digest_time": "16:30", "link_opens_hours": 72,
        "colour_green_max": 0.7,
        "crisis_text": "Call the clinic line 0123 456 789, or 112 in an emergency."}
    [event] = events(db_session, "clinic.settings.change")
    assert (event.outcome, event.object_id) == ("allowed", str(clinic.id))
    # Saving the same values again changes nothing.
    client.post("/admin/settings", data=settings_form(client, timezone="Europe/Berlin",
                                                      digest_weekday="4",
                                                      digest_time="16:30"))
    assert "Nothing changed" in client.get("/admin/settings").get_data(as_text=True)


@pytest.mark.parametrize(("changes", "field", "reason"), [
    ({"link_opens_hours": "lots"}, "link_opens_hours", "must be a whole number"),
    ({"repair_window": "0"}, "repair_window", "must be from 1 to 10"),
    ({"colour_green_max": "0.95"}, "colour_green_max", "must be below colour_yellow_max"),
    ({"colour_yellow_max": "nan"}, "colour_yellow_max", "must be between 0 and 1"),
    ({"digest_time": "25:00"}, "digest_time", "a time from 00:00 to 23:59"),
    ({"digest_weekday": "7"}, "digest_weekday", "0 (Monday) to 6 (Sunday)"),
    ({"timezone": "Mars/Olympus"}, "timezone", "IANA time zone"),
    ({"pre_battery": "[{"}, "pre_battery", "must be a JSON list"),
    ({"pre_battery": '[{"instrument": "nosuch"}]'}, "pre_battery", "Unknown instrument"),
    ({"post_instrument": "nosuch"}, "post_instrument", "Unknown instrument"),
    ({"post_instrument": "phq9"}, "post_instrument", "phq9 is not an alliance measure"),
    ({"plan_review_days": "3"}, "plan_review_days", "7 to 90 days"),  # issue 19
    ({"crisis_text": "Call us"}, "crisis_text", "20 to 2000 characters"),
])
def test_a_bad_setting_names_the_field_and_saves_nothing(auth, client, db_session, world,
                                                        changes, field, reason):
    clinic = world["admin"].clinic
    auth.login(world["admin"].email)
    response = client.post("/admin/settings", data=settings_form(
        client, staff_idle_minutes="45", **changes))
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Nothing was saved" in html
    error = re.search(rf'<p class="error" id="setting-{field}-error">([^<]*)</p>', html)
    assert error and reason in error.group(1).replace("&#39;", "'"), html
    assert f'href="#setting-{field}"' in html
    db_session.refresh(clinic)
    assert clinic.settings == {"consent_online": False} and clinic.timezone == "UTC"
    assert [e.outcome for e in events(db_session, "clinic.settings.change")] == ["error"]


# --- instruments -------------------------------------------------------------------------


def test_admin_attests_and_revokes_a_licence(auth, client, db_session, world):
    auth.login(world["admin"].email)
    html = client.get("/admin/instruments").get_data(as_text=True)
    assert "Needs licence attestation" in html
    post(client, "/admin/instruments/who5/attest", note="Agreement 42")
    row = db_session.scalar(select(InstrumentAttestation))
    assert (row.instrument_id, row.note, row.attested_by_id) == (
        "who5", "Agreement 42", world["admin"].id)
    assert "Attested" in client.get("/admin/instruments").get_data(as_text=True)
    again = post(client, "/admin/instruments/who5/attest")
    assert "already attested" in client.get(again.headers["Location"]).get_data(as_text=True)
    post(client, "/admin/instruments/who5/revoke", confirm="yes")
    db_session.refresh(row)
    assert row.revoked_dt is not None
    assert post(client, "/admin/instruments/nosuch/attest").status_code == 404
    assert [(e.action, e.outcome, e.object_id) for e in db_session.scalars(
        select(AuditEvent).where(AuditEvent.object_type == "instrument")
        .order_by(AuditEvent.id))] == [
        ("instrument.attest", "allowed", "who5"), ("instrument.attest", "error", "who5"),
        ("instrument.revoke", "allowed", "who5"), ("instrument.attest", "denied", "nosuch")]
    assert "Agreement 42" not in str([e.object_id for e in db_session.scalars(
        select(AuditEvent))])


# --- the audit log -----------------------------------------------------------------------


def test_audit_log_is_newest_first_paginated_filtered_and_this_clinic_only(
        auth, client, db_session, world, make_clinic, make_user):
    clinic = world["admin"].clinic
    clinic.timezone = "Europe/Berlin"
    start = dt.datetime(2026, 10, 1, 12, tzinfo=dt.UTC)
    for n in range(60):
        audit.record(db_session, action="client.care.view", outcome="allowed",
                     now=start + dt.timedelta(hours=n), actor_user_id=world["therapist"].id,
                     clinic_id=clinic.id, client_id=world["client"].id,
                     object_type="client", object_id=world["client"].code,
                     ip_address="10.0.0.7")
    audit.record(db_session, action="login", outcome="denied", now=start,
                 actor_user_id=world["other"].id, clinic_id=clinic.id, ip_address="10.0.0.8")
    foreign = make_clinic()
    audit.record(db_session, action="secret.foreign.action", outcome="allowed", now=start,
                 actor_user_id=make_user("admin", clinic_id=foreign.id).id,
                 clinic_id=foreign.id)
    db_session.commit()
    auth.login(world["admin"].email)
    first = client.get("/admin/audit?action=client.care.view").get_data(as_text=True)
    assert first.count("<td>client.care.view</td>") == 50
    newest = start + dt.timedelta(hours=59)
    # Berlin time (CET in November), in the audit log's date style (to the second).
    shown = newest.astimezone(dt.timezone(dt.timedelta(hours=1)))
    hour = shown.hour % 12 or 12
    assert f"{shown:%b} {shown.day}, {shown:%Y}, {hour}:{shown:%M:%S}\u202f{shown:%p}" in first
    assert world["client"].code in first and CANARY not in first
    assert "10.0.0.7" in first and "Theo Therapist" in first
    assert "page=2" in first and "action=client.care.view" in first
    second = client.get("/admin/audit?action=client.care.view&page=2").get_data(as_text=True)
    assert second.count("<td>client.care.view</td>") == 10
    assert "Older events" not in second and "Newer events" in second
    everything = client.get("/admin/audit").get_data(as_text=True)
    assert "secret.foreign.action" not in everything
    denied = client.get("/admin/audit?outcome=denied").get_data(as_text=True)
    assert "<td>login</td>" in denied and "<td>client.care.view</td>" not in denied
    by_user = client.get(f"/admin/audit?user={world['other'].id}").get_data(as_text=True)
    assert "<td>login</td>" in by_user and "<td>client.care.view</td>" not in by_user
    by_client = client.get(f"/admin/audit?client={world['client'].code.lower()}"
                           ).get_data(as_text=True)
    assert by_client.count("<td>client.care.view</td>") == 50 and "<td>login</td>" not in by_client
    unknown = client.get("/admin/audit?client=C-NOSUCH").get_data(as_text=True)
    assert "No client of this clinic has that code" in unknown and "No events match" in unknown
    # 2026-10-01 12:00 UTC + n hours; Berlin (CEST) day 2026-10-02 is n = 10..33.
    one_day = client.get("/admin/audit?action=client.care.view&from=2026-10-02&to=2026-10-02"
                         ).get_data(as_text=True)
    assert one_day.count("<td>client.care.view</td>") == 24
    bad = client.get("/admin/audit?from=yesterday").get_data(as_text=True)
    assert "Give a date as YYYY-MM-DD" in bad
    assert {e.outcome for e in events(db_session, "audit.view")} == {"allowed"}


def test_the_audit_log_cannot_be_changed_through_the_web(app):
    audit_rules = [r for r in app.url_map.iter_rules() if "audit" in r.rule]
    assert audit_rules and all(r.methods <= {"GET", "HEAD", "OPTIONS"} for r in audit_rules)
