"""A clinic from nothing (issue 17): ``outcome clinic create``, the one-time setup page,
and the password a new account must change at its first sign-in."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlalchemy import select

from outcome.models import AuditEvent
from outcome.models import Clinic
from outcome.models import User
from outcome.services import setup
from outcome.services import staff
from outcome.services.passwords import verify_password
from tests.conftest import TEST_PASSWORD
from tests.conftest import csrf_token

NEW_PASSWORD = "a lantern by the quiet harbour"
FIRST_PASSWORD = "seven quiet herons at dawn"


def count(db_session, model) -> int:
    db_session.expire_all()
    return db_session.scalar(select(func.count()).select_from(model)) or 0


# --- the service ---------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "slug"), [
    ("Riverside Therapy", "riverside-therapy"), ("  Clínica  Sur ", "clinica-sur"),
    ("Клиника", "clinic"), ("St. Mary's (North)", "st-mary-s-north"), ("x" * 90, "x" * 64),
])
@pytest.mark.no_database
def test_slug_from_the_name(name, slug):
    assert setup.slug_for(name) == slug


def test_create_clinic_and_its_admin(db_session, clock):
    clinic, admin = setup.create_clinic(
        db_session, name=" Riverside  Therapy ", timezone="Europe/London",
        admin_email="Ada@Example.org", admin_name="Ada Admin", password=FIRST_PASSWORD,
        now=clock())
    assert (clinic.name, clinic.slug, clinic.timezone) == (
        "Riverside Therapy", "riverside-therapy", "Europe/London")
    assert (admin.email, admin.roles, admin.clinic_id) == ("ada@example.org", ("admin",),
                                                           clinic.id)
    assert admin.must_change_password and verify_password(admin.password_hash, FIRST_PASSWORD)


@pytest.mark.parametrize(("changes", "field", "words"), [
    ({"timezone": "Mars/Olympus"}, "timezone", "is not a time zone"),
    ({"timezone": ""}, "timezone", "is not a time zone"),
    ({"name": "   "}, "name", "Give the clinic's name"),
    ({"name": "Riverside Therapy"}, "name", "already a clinic called"),
    ({"name": "RIVERSIDE-therapy!"}, "name", "already a clinic called"),  # the same slug
    ({"admin_email": "taken@example.org"}, "email", "cannot be used for a new account"),
    ({"admin_email": "not an address"}, "email", "is not an e-mail address"),
    ({"password": "short"}, "password", "at least 15 characters"),
    ({"admin_name": ""}, "admin_name", "Give the person's name"),
])
def test_create_clinic_refusals(db_session, clock, make_clinic, make_user, changes, field,
                                words):
    make_user(email="taken@example.org", clinic_id=make_clinic(
        name="Riverside Therapy", slug="riverside-therapy").id)
    fields = {"name": "New Clinic", "timezone": "Europe/London", "admin_email": "new@example.org",
              "admin_name": "New Admin", "password": FIRST_PASSWORD, **changes}
    with pytest.raises(setup.SetupError) as refused:  # (nothing kept: the CLI and page tests)
        setup.create_clinic(db_session, now=clock(), **fields)
    assert refused.value.field == field and words in str(refused.value)


def test_the_setup_token_is_stored_as_a_private_digest_and_checked(tmp_path):
    folder = tmp_path / "instance"
    token = setup.issue_setup_token(folder)
    stored = (folder / setup.SETUP_TOKEN_FILE).read_text()
    assert token not in stored and len(stored.strip()) == 64
    assert stat.S_IMODE(os.stat(folder / setup.SETUP_TOKEN_FILE).st_mode) == 0o600
    assert setup.check_setup_token(folder, token) == stored.strip()
    assert setup.check_setup_token(folder, token + "x") is None
    assert setup.check_setup_token(folder, "") is None
    newer = setup.issue_setup_token(folder)  # a restart replaces it
    assert setup.check_setup_token(folder, token) is None
    setup.discard_setup_token(folder)
    assert setup.check_setup_token(folder, newer) is None
    setup.discard_setup_token(folder)  # twice is fine


def test_a_token_is_claimed_by_one_request_at_a_time(tmp_path):
    folder = tmp_path / "instance"
    token = setup.issue_setup_token(folder)
    digest = setup.check_setup_token(folder, token)
    claim = setup.claim_setup_token(folder, digest)
    assert claim is not None and setup.claim_setup_token(folder, digest) is None  # a double click
    assert setup.check_setup_token(folder, token) is None
    setup.release_setup_token(claim)  # the form was refused: it may be sent again
    assert setup.check_setup_token(folder, token) == digest
    assert setup.claim_setup_token(folder, "0" * 64) is None


# --- outcome clinic create ------------------------------------------------------------------


def test_clinic_create_prints_a_one_time_password_and_audits(runner, db_session):
    result = runner.invoke(args=["clinic", "create", "--name", "Riverside Therapy",
                                 "--timezone", "Europe/London", "--admin-email",
                                 "ada@example.org", "--admin-name", "Ada Admin"])
    assert result.exit_code == 0, result.output
    assert "Created the clinic Riverside Therapy (riverside-therapy, Europe/London)" in (
        result.output)
    password = re.search(r"One-time password .*: (\S+)", result.output).group(1)
    db_session.expire_all()
    admin = db_session.scalar(select(User).where(User.email == "ada@example.org"))
    assert verify_password(admin.password_hash, password) and admin.must_change_password
    assert admin.display_name == "Ada Admin" and admin.is_admin
    events = db_session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert [(e.action, e.actor_kind, e.actor_label, e.clinic_id) for e in events] == [
        ("clinic.create", "system", "outcome clinic create", admin.clinic_id),
        ("user.create", "system", "outcome clinic create", admin.clinic_id)]


def test_clinic_create_refuses_with_nothing_written(runner, db_session, make_clinic,
                                                    make_user):
    make_user(email="taken@example.org", clinic_id=make_clinic(name="Riverside Therapy").id)
    db_session.commit()
    before = (count(db_session, Clinic), count(db_session, User), count(db_session, AuditEvent))
    for args, words in (
            (["--name", "Riverside Therapy", "--timezone", "UTC"], "already a clinic called"),
            (["--name", "Other", "--timezone", "Europe/Londn"], "is not a time zone"),
            (["--name", "Other", "--timezone", "UTC", "--admin-email", "taken@example.org"],
             "cannot be used for a new account")):
        if "--admin-email" not in args:
            args = [*args, "--admin-email", "new@example.org"]
        result = runner.invoke(args=["clinic", "create", *args])
        assert result.exit_code == 1, result.output
        assert words in result.output and "Traceback" not in result.output
        assert "password" not in result.output.lower()
    after = (count(db_session, Clinic), count(db_session, User), count(db_session, AuditEvent))
    assert after == before
    missing = runner.invoke(args=["clinic", "create", "--name", "X"])
    assert missing.exit_code == 2 and "--timezone" in missing.output


# --- the setup page --------------------------------------------------------------------------


@pytest.fixture
def token(app) -> str:
    return setup.issue_setup_token(app.instance_path)


def form(page: str, **changes) -> dict[str, str]:
    return {"csrf_token": csrf_token(page), "name": "Riverside Therapy",
            "timezone": "Europe/London", "admin_name": "Ada Admin", "email": "ada@example.org",
            "password": FIRST_PASSWORD, "password_confirm": FIRST_PASSWORD, **changes}


def test_a_fresh_installation_says_how_to_set_up(client):
    html = client.get("/login").get_data(as_text=True)
    assert "No clinic yet" in html and "outcome serve" in html


@pytest.mark.parametrize("path", ["/setup", "/setup/wrong-token", "/setup/" + "x" * 300])
def test_without_the_token_the_setup_page_is_forbidden(client, token, path):
    response = client.get(path)
    assert response.status_code == 403
    assert "one-time setup address" in response.get_data(as_text=True)


def test_the_setup_page_is_forbidden_when_no_token_was_issued(client):
    assert client.get("/setup").status_code == 403
    assert client.get("/setup/anything").status_code == 403


def test_setup_creates_the_clinic_and_its_admin_once(app, client, db_session, token):
    opened = client.get(f"/setup/{token}")
    assert opened.status_code == 303 and opened.headers["Location"] == "/setup"
    page = client.get("/setup")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and token not in html
    assert '<option selected>UTC</option>' in html  # the configured time zone
    done = client.post("/setup", data=form(html))
    assert done.status_code == 303 and done.headers["Location"] == "/login"
    db_session.expire_all()
    clinic = db_session.scalar(select(Clinic))
    admin = db_session.scalar(select(User))
    assert (clinic.slug, clinic.timezone) == ("riverside-therapy", "Europe/London")
    assert admin.is_admin and admin.must_change_password
    assert not (Path(app.instance_path) / setup.SETUP_TOKEN_FILE).exists()
    assert [(e.action, e.actor_kind, e.actor_label) for e in db_session.scalars(
        select(AuditEvent).order_by(AuditEvent.id))] == [
        ("clinic.create", "system", "setup page"), ("user.create", "system", "setup page")]
    # The token works once; and with a clinic there is no setup page at all.
    assert client.get(f"/setup/{token}").status_code == 404
    assert client.get("/setup").status_code == 404
    assert "No clinic yet" not in client.get("/login").get_data(as_text=True)


def test_a_token_dies_once_a_clinic_exists(app, client, db_session, token, clinic):
    db_session.commit()
    assert client.get(f"/setup/{token}").status_code == 404
    assert not (Path(app.instance_path) / setup.SETUP_TOKEN_FILE).exists()


def test_a_refused_setup_says_why_and_stores_nothing(client, db_session, token):
    client.get(f"/setup/{token}")
    html = client.get("/setup").get_data(as_text=True)
    for changes, words in (({"timezone": "Mars/Olympus"}, "is not a time zone"),
                           ({"password_confirm": "something else entirely"},
                            "The two passwords differ"),
                           ({"password": "short", "password_confirm": "short"},
                            "at least 15 characters"),
                           ({"email": "nope"}, "is not an e-mail address"),
                           ({"name": ""}, "Give the clinic")):
        response = client.post("/setup", data=form(html, **changes))
        assert response.status_code == 422, changes
        assert words in response.get_data(as_text=True)
    assert count(db_session, Clinic) == 0 and count(db_session, User) == 0
    missing_csrf = client.post("/setup", data={**form(html), "csrf_token": ""})
    assert missing_csrf.status_code == 400
    assert count(db_session, Clinic) == 0


def test_a_new_token_ends_a_session_opened_with_the_old_one(app, client, token):
    client.get(f"/setup/{token}")
    setup.issue_setup_token(app.instance_path)  # the server restarted
    assert client.get("/setup").status_code == 403


def test_the_setup_page_in_russian(client, token):
    client.get(f"/setup/{token}")
    html = client.get("/setup", headers={"Accept-Language": "ru"}).get_data(as_text=True)
    assert "Настройка клиники" in html and "Create the clinic" not in html


# --- the first password ----------------------------------------------------------------------


START_PAGES = {"therapist": ["/", "/account/tokens"], "supervisor": ["/", "/supervision/"],
               "admin": ["/", "/admin/", "/admin/users", "/admin/settings",
                         "/admin/settings/crisis"]}


@pytest.mark.parametrize("role", sorted(START_PAGES))
def test_a_new_account_changes_its_password_before_anything_else(client, db_session, auth,
                                                                 make_user, role):
    user = make_user(role, must_change_password=True)
    db_session.commit()
    signed_in = auth.login(user.email)
    assert signed_in.status_code == 302
    for path in START_PAGES[role]:
        response = client.get(path)
        assert response.status_code == 303, path
        assert response.headers["Location"] == "/account/password", path
    page = client.get("/account/password")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "chosen by somebody else" in html
    changed = client.post("/account/password", data={
        "csrf_token": csrf_token(html), "current_password": TEST_PASSWORD,
        "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert changed.status_code == 302
    db_session.expire_all()
    assert not db_session.get(User, user.id).must_change_password
    for path in START_PAGES[role]:
        assert client.get(path).status_code == 200, path


def test_signing_out_stays_possible_and_the_flag_is_kept(client, db_session, auth, make_user):
    user = make_user("therapist", must_change_password=True)
    db_session.commit()
    auth.login(user.email)
    token = csrf_token(client.get("/account/password").get_data(as_text=True))
    out = client.post("/logout", data={"csrf_token": token})
    assert out.status_code == 302 and out.headers["Location"] == "/login"
    db_session.expire_all()
    assert db_session.get(User, user.id).must_change_password


def test_a_post_elsewhere_is_refused_until_the_change(client, db_session, auth, make_user):
    user = make_user("admin", must_change_password=True)
    db_session.commit()
    auth.login(user.email)
    token = csrf_token(client.get("/account/password").get_data(as_text=True))
    response = client.post("/admin/settings", data={"csrf_token": token,
                                                    "staff_idle_minutes": "60"})
    assert response.status_code == 303 and response.headers["Location"] == "/account/password"


def test_accounts_made_or_reset_by_someone_else_must_change_their_password(db_session, clinic,
                                                                           clock, make_user):
    made = staff.create_user(db_session, clinic, "new@example.org", "New", ["therapist"],
                             FIRST_PASSWORD, clock())
    assert made.must_change_password
    own = make_user()
    assert not own.must_change_password  # an account from before this rule
    staff.reset_password(db_session, own, FIRST_PASSWORD, clock())
    assert own.must_change_password
    staff.change_password(db_session, own, FIRST_PASSWORD, NEW_PASSWORD, clock())
    assert not own.must_change_password


def test_the_admin_page_and_the_command_line_make_accounts_that_must_change(
        runner, client, db_session, clinic, auth, make_user):
    admin = make_user("admin")
    db_session.commit()
    result = runner.invoke(args=["users", "create", "cli@example.org", "--name", "Cli",
                                 "--role", "therapist", "--generate-password"])
    assert result.exit_code == 0 and "must change this password" in result.output
    auth.login(admin.email)
    page = client.get("/admin/users").get_data(as_text=True)
    made = client.post("/admin/users", data={
        "csrf_token": csrf_token(page), "email": "web@example.org", "display_name": "Web",
        "role": "therapist", "password_choice": "generate"}).get_data(as_text=True)
    assert "Web must change it at their first sign-in" in made
    db_session.expire_all()
    for email in ("cli@example.org", "web@example.org"):
        assert db_session.scalar(select(User.must_change_password).where(
            User.email == email)), email
