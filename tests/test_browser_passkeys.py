"""Passkeys in headless Chromium (issue 20), with a CDP virtual authenticator (a platform
authenticator with user verification, as a laptop's fingerprint reader).

WebAuthn needs a secure context and an RP ID that is a host name: the browser goes to
``http://localhost:<port>`` (localhost is a secure context; an IP address is no RP ID).

The passkey is added as a user would: signed in with the password, the header's
"Two-factor sign-in" link to the real ``/account/two-factor`` page (its passkeys section,
``account/_passkeys.html``, driven by ``static/passkeys.js``), on a phone (390 px).

- ``test_a_passkey_is_added_on_the_two_factor_page``: added through the JSON endpoints,
  listed on the reloaded page; the same authenticator again is refused (excluded); no
  inline script, so no CSP violation.
- ``test_a_browser_without_webauthn_is_told_so``: the page says the browser cannot.
- ``test_sign_in_with_password_and_passkey``: the whole flow: added on the page, signed
  out, then the password and the passkey on the second step of sign-in
  (``auth.second_factor``, which includes ``auth/_passkey_option.html``).
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
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
from tests.helpers import artifacts

ARTIFACTS = artifacts("passkeys")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PHONE = {"width": 390, "height": 844}
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


def open_two_factor_page(page, base: str) -> None:
    """The account's two-factor page, reached as a user would: by its link in the header."""
    page.get_by_role("link", name="Two-factor sign-in").click()
    page.wait_for_url(base + "/account/two-factor")
    expect(page.get_by_role("heading", name="Passkeys")).to_be_visible()


def add_passkey(page, base: str, name: str) -> None:
    open_two_factor_page(page, base)
    page.get_by_label("Name of the new passkey").fill(name)
    with page.expect_navigation():  # the script reloads the page once it is stored
        page.get_by_role("button", name="Add a passkey").click()
    expect(page.get_by_text(f"Passkey {name} is added")).to_be_visible()
    assert page.url == base + "/account/two-factor"
    # The reloaded page lists it in the passkeys table.
    expect(page.get_by_role("cell", name=name, exact=True)).to_be_visible()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def stored(app) -> list[tuple[str, int]]:
    with app.app_context(), transaction(database(app).session_factory) as session:
        return [(p.name, p.sign_count) for p in session.scalars(select(Passkey))]


def fits_a_phone(page) -> None:
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]


def test_a_passkey_is_added_on_the_two_factor_page(browser, live):
    app, base = live
    context = browser.new_context(viewport=PHONE)
    context.add_init_script(CSP_LISTENER)
    page = context.new_page()
    cdp, auth_id = authenticator(context, page)
    password_step(page, base)
    page.wait_for_url(base + "/")
    add_passkey(page, base, "Work laptop")
    fits_a_phone(page)
    shot(page, "1-added-390")
    assert [name for name, _count in stored(app)] == ["Work laptop"]
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": auth_id})
    assert len(credentials["credentials"]) == 1
    assert credentials["credentials"][0]["rpId"] == "localhost"
    # The same authenticator again: excluded, so nothing is added and the page says so.
    page.get_by_label("Name of the new passkey").fill("Again")
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.locator("[data-passkey-message]")).to_contain_text("No passkey was added")
    assert len(stored(app)) == 1
    assert page.evaluate("() => window.__cspViolations") == []
    context.close()


def test_a_browser_without_webauthn_is_told_so(browser, live):
    _app, base = live
    context = browser.new_context(viewport=PHONE)
    context.add_init_script("delete window.PublicKeyCredential;")
    page = context.new_page()
    password_step(page, base)
    page.wait_for_url(base + "/")
    open_two_factor_page(page, base)
    expect(page.get_by_text("This browser cannot use passkeys")).to_be_visible()
    expect(page.get_by_role("button", name="Add a passkey")).to_be_hidden()
    context.close()


def test_sign_in_with_password_and_passkey(browser, live):
    app, base = live
    context = browser.new_context(viewport=PHONE)
    context.add_init_script(CSP_LISTENER)
    page = context.new_page()
    authenticator(context, page)
    password_step(page, base)
    page.wait_for_url(base + "/")
    add_passkey(page, base, "Work laptop")
    with page.expect_navigation():
        page.get_by_role("button", name="Sign out").click()
    password_step(page, base)
    button = page.get_by_role("button", name="Sign in with a passkey")
    expect(button).to_be_visible()  # the second step, with the passkey slot
    fits_a_phone(page)
    shot(page, "2-second-step-390")
    with page.expect_navigation(url=base + "/"):
        button.click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    assert [name for name, _count in stored(app)] == ["Work laptop"]
    assert page.evaluate("() => window.__cspViolations") == []
    context.close()
