"""Passkeys in headless Chromium (issue 20), with a CDP virtual authenticator (a platform
authenticator with user verification, as a laptop's fingerprint reader).

WebAuthn needs a secure context and an RP ID that is a host name: the browser goes to
``http://localhost:<port>`` (localhost is a secure context; an IP address is no RP ID).

- ``test_a_passkey_is_added_with_the_account_slot``: the account page's slot
  (``account/_passkeys.html``, rendered for the signed-in user) and ``passkeys.js`` add a
  passkey through the JSON endpoints; no inline script, so no CSP violation.
- ``test_a_browser_without_webauthn_is_told_so``: the slot says the browser cannot.
- ``test_sign_in_with_password_and_passkey``: the whole flow, on the second step of
  sign-in (``auth.second_factor``, which includes ``auth/_passkey_option.html``); it runs
  once that page is in the application.
"""

from __future__ import annotations

import re
import shutil
import threading
from pathlib import Path

import pytest
from flask import render_template
from flask_login import login_user
from playwright.sync_api import expect
from sqlalchemy import select
from werkzeug.serving import make_server

from outcome import schema
from outcome.db import make_engine
from outcome.db import transaction
from outcome.extensions import database
from outcome.models import Clinic
from outcome.models import Passkey
from outcome.models import User
from outcome.services.passwords import hash_password
from outcome.web.database import db_session
from tests.helpers import artifacts

ARTIFACTS = artifacts("passkeys")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PASSWORD = "passkey password for the browser tests"
EMAIL = "t@example.org"

pytestmark = pytest.mark.browser

# Runs in every document before the page's own scripts; CSP does not apply to it.
CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'}`);
});
"""


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed; `make test` installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def live(databases, tmp_path, make_app):
    """The app on a loopback port, reached as ``localhost``: a clinic and a therapist."""
    url = databases.new_url()
    engine = make_engine(url)
    schema.upgrade(engine)
    engine.dispose()
    app = make_app(database_url=url, SECRET_KEY=None, RATELIMIT_ENABLED=True)
    with app.app_context(), transaction(database(app).session_factory) as session:
        clinic = Clinic(slug="keys", name="Key Clinic", timezone="UTC")
        session.add(clinic)
        session.flush()
        session.add(User(clinic_id=clinic.id, email=EMAIL, display_name="T",
                         is_therapist=True, password_hash=hash_password(PASSWORD)))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://localhost:{server.server_port}"
    app.config["BASE_URL"] = base
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app, base
    server.shutdown()
    database(app).engine.dispose()


def authenticator(context, page) -> tuple[object, str]:
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    made = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True}})
    return cdp, made["authenticatorId"]


def password_step(page, base: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("E-mail").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def show_account_slot(app, page) -> None:
    """The account page's passkeys slot, as the two-factor page includes it, put on the
    page the user is on (with that page's CSRF token), and its script loaded."""
    with app.test_request_context("/"):
        user = db_session().scalars(select(User).where(User.email == EMAIL)).one()
        login_user(user)
        html = render_template("account/_passkeys.html")
    html = re.sub(r"<script[^>]*></script>", "", html)
    token = page.locator("input[name=csrf_token]").first.input_value()
    html = re.sub(r'data-csrf="[^"]*"', f'data-csrf="{token}"', html)
    page.evaluate("html => document.querySelector('main').insertAdjacentHTML('beforeend', html)",
                  html)
    page.add_script_tag(url="/static/passkeys.js")


def add_passkey(app, page, name: str) -> None:
    show_account_slot(app, page)
    page.get_by_label("Name of the new passkey").fill(name)
    with page.expect_navigation():  # the script reloads the page once it is stored
        page.get_by_role("button", name="Add a passkey").click()
    expect(page.get_by_text(f"Passkey {name} is added")).to_be_visible()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def stored(app) -> list[tuple[str, int]]:
    with app.app_context(), transaction(database(app).session_factory) as session:
        return [(p.name, p.sign_count) for p in session.scalars(select(Passkey))]


def test_a_passkey_is_added_with_the_account_slot(browser, live):
    app, base = live
    context = browser.new_context()
    context.add_init_script(CSP_LISTENER)
    page = context.new_page()
    cdp, auth_id = authenticator(context, page)
    password_step(page, base)
    page.wait_for_url(base + "/")
    add_passkey(app, page, "Work laptop")
    shot(page, "1-added")
    assert [name for name, _count in stored(app)] == ["Work laptop"]
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": auth_id})
    assert len(credentials["credentials"]) == 1
    assert credentials["credentials"][0]["rpId"] == "localhost"
    # The same authenticator again: excluded, so nothing is added and the slot says so.
    show_account_slot(app, page)
    page.get_by_label("Name of the new passkey").fill("Again")
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.locator("[data-passkey-message]").last).to_contain_text("No passkey was added")
    assert len(stored(app)) == 1
    assert page.evaluate("() => window.__cspViolations") == []
    context.close()


def test_a_browser_without_webauthn_is_told_so(browser, live):
    app, base = live
    context = browser.new_context()
    context.add_init_script("delete window.PublicKeyCredential;")
    page = context.new_page()
    password_step(page, base)
    page.wait_for_url(base + "/")
    show_account_slot(app, page)
    expect(page.get_by_text("This browser cannot use passkeys")).to_be_visible()
    expect(page.get_by_role("button", name="Add a passkey")).to_be_hidden()
    context.close()


def test_sign_in_with_password_and_passkey(browser, live):
    app, base = live
    if "auth.second_factor" not in app.view_functions:
        pytest.skip("the second step of sign-in (auth.second_factor) is not in this branch")
    context = browser.new_context()
    context.add_init_script(CSP_LISTENER)
    page = context.new_page()
    authenticator(context, page)
    password_step(page, base)
    page.wait_for_url(base + "/")
    add_passkey(app, page, "Work laptop")
    with page.expect_navigation():
        page.get_by_role("button", name="Sign out").click()
    password_step(page, base)
    button = page.get_by_role("button", name="Sign in with a passkey")
    expect(button).to_be_visible()  # the second step, with the passkey slot
    shot(page, "2-second-step")
    with page.expect_navigation(url=base + "/"):
        button.click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    assert [name for name, _count in stored(app)] == ["Work laptop"]
    assert page.evaluate("() => window.__cspViolations") == []
    context.close()
