"""Two-factor sign-in in headless Chromium (issue 20), on a phone (390 px).

A therapist sets up an authenticator app on their account page (the secret is read off
the page and the QR code decoded with zbar's ``zbarimg``, which ``make browser-tools``
installs: the test fails without it; codes are computed with pyotp, as the app would),
saves the recovery codes, signs out, and signs in again: once
with a code from the app (after a wrong code is refused), once with a recovery code.
Neither page scrolls sideways, and axe-core finds nothing serious. Screenshots in
``test-artifacts/two-factor/``.

The server runs on the real clock, so codes are taken from the next 30-second step
(``at(now + 30)``): accepted within the window of one step, and always newer than the
step already used (no replay).
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs
from urllib.parse import unquote
from urllib.parse import urlsplit

import pyotp
import pytest
from playwright.sync_api import expect
from werkzeug.serving import make_server

from outcome import schema
from outcome.db import make_engine
from outcome.db import transaction
from outcome.extensions import database
from outcome.models import Clinic
from outcome.models import User
from outcome.services.passwords import hash_password
from tests.helpers import artifacts

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = artifacts("two-factor")
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PHONE = {"width": 390, "height": 844}
EMAIL = "robin@example.org"
PASSWORD = "two factor password for the browser"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed; `make test` installs Debian's chromium package")
    if not AXE.exists():
        pytest.fail("axe-core is not installed; `make test` runs npm ci")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def live(databases, tmp_path, make_app):
    """The app on a loopback port (real clock, rate limits on): a clinic and a therapist
    with a password and no second factor yet."""
    url = databases.new_url()
    engine = make_engine(url)
    schema.upgrade(engine)
    engine.dispose()
    app = make_app(database_url=url, SECRET_KEY=None, RATELIMIT_ENABLED=True)
    with app.app_context(), transaction(database(app).session_factory) as session:
        clinic = Clinic(slug="two-factor", name="Harbour Clinic", timezone="UTC")
        session.add(clinic)
        session.flush()
        session.add(User(clinic_id=clinic.id, email=EMAIL, display_name="Robin Field",
                         is_therapist=True, password_hash=hash_password(PASSWORD)))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    database(app).engine.dispose()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def fits_a_phone(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} scrolls sideways: {width} px"


def serious_axe_findings(page) -> list[str]:
    result = page.evaluate("async () => await axe.run()")
    return [f"{v['id']}: {v['help']}" for v in result["violations"]
            if v["impact"] in ("serious", "critical")]


def sign_in_with_password(page, base: str) -> None:
    page.goto(f"{base}/login")
    page.locator("input[name=email]").fill(EMAIL)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("main form button[type=submit]").click()


def sign_out(page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out.")).to_be_visible()


def next_code(totp: pyotp.TOTP) -> str:
    """The app's code for the next 30-second step (see the module docstring)."""
    return totp.at(time.time() + 30)


def decoded_qr(qr) -> dict[str, str]:
    """The QR code as a phone's camera reads it (zbarimg on a screenshot of the element):
    an ``otpauth://totp/`` URI's label, secret and issuer."""
    zbarimg = shutil.which("zbarimg")
    if zbarimg is None:
        pytest.fail("zbarimg is not installed: run `make browser-tools` (Debian's zbar-tools)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    qr.screenshot(path=str(ARTIFACTS / "qr.png"))
    decoded = subprocess.run([zbarimg, "--quiet", "--raw", str(ARTIFACTS / "qr.png")],
                             capture_output=True, text=True, timeout=30, check=True)
    uri = urlsplit(decoded.stdout.strip())
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp"), decoded.stdout
    query = parse_qs(uri.query)
    assert set(query) <= {"secret", "issuer", "digits", "period", "algorithm"}, query
    assert query.get("digits", ["6"]) == ["6"] and query.get("period", ["30"]) == ["30"]
    return {"label": unquote(uri.path.lstrip("/")), "secret": query["secret"][0],
            "issuer": query["issuer"][0]}


def test_enrol_then_sign_in_with_the_app_and_with_a_recovery_code(browser, live):
    base = live
    context = browser.new_context(viewport=PHONE)
    context.add_init_script(path=str(AXE))  # init scripts are not subject to the CSP
    page = context.new_page()
    sign_in_with_password(page, base)
    page.wait_for_url(f"{base}/")  # no second factor yet: the password alone

    # Set up the app: the secret typed by hand and the QR code name the same account.
    page.get_by_role("link", name="Two-factor sign-in").click()
    page.locator("#start-password").fill(PASSWORD)  # an open session alone is not enough
    page.get_by_role("button", name="Set up an authenticator app").click()
    secret = page.locator("#secret-key").inner_text().replace(" ", "")
    qr = page.locator("figure.qr svg")
    expect(qr).to_be_visible()
    fits_a_phone(page)
    assert serious_axe_findings(page) == []
    shot(page, "1-set-up-390")
    assert decoded_qr(qr) == {"label": f"Harbour Clinic:{EMAIL}", "secret": secret,
                              "issuer": "Harbour Clinic"}
    totp = pyotp.TOTP(secret)
    page.locator("#confirm-code").fill(totp.now())
    page.get_by_role("button", name="Confirm and turn on").click()
    expect(page.get_by_role("heading", name="Your recovery codes, shown only now")).to_be_visible()
    codes = page.locator("ol.codes code").all_inner_texts()
    assert len(codes) == 10
    expect(page.get_by_role("link", name="Download them as a text file")).to_have_attribute(
        "download", "outcome-recovery-codes.txt")
    fits_a_phone(page)
    shot(page, "2-recovery-codes-390")
    sign_out(page)

    # The password now leads to the second step; a wrong code is refused there.
    sign_in_with_password(page, base)
    page.wait_for_url(f"{base}/login/second-factor")
    assert page.locator("#code").get_attribute("inputmode") == "numeric"
    right = next_code(totp)
    wrong = "000000" if right != "000000" else "111111"
    page.locator("#code").fill(wrong)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.locator("#code-error")).to_contain_text("That code is not right")
    assert page.url == f"{base}/login/second-factor"
    fits_a_phone(page)
    assert serious_axe_findings(page) == []
    shot(page, "3-second-step-wrong-code-390")
    page.locator("#code").fill(right)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{base}/")
    expect(page.get_by_text("Welcome, Robin Field")).to_be_visible()
    sign_out(page)

    # A recovery code, typed as read off paper (capitals, spaces for hyphens).
    sign_in_with_password(page, base)
    page.wait_for_url(f"{base}/login/second-factor")
    page.get_by_text("No phone at hand? Use a recovery code").click()
    page.locator("#recovery_code").fill(codes[3].upper().replace("-", " "))
    page.get_by_role("button", name="Sign in with a recovery code").click()
    page.wait_for_url(f"{base}/")
    expect(page.get_by_text("9 codes are left")).to_be_visible()
    shot(page, "4-signed-in-with-a-recovery-code-390")
    sign_out(page)

    # The same recovery code again: refused.
    sign_in_with_password(page, base)
    page.wait_for_url(f"{base}/login/second-factor")
    page.get_by_text("No phone at hand? Use a recovery code").click()
    page.locator("#recovery_code").fill(codes[3])
    page.get_by_role("button", name="Sign in with a recovery code").click()
    expect(page.locator("#recovery_code-error")).to_contain_text("used already")
    fits_a_phone(page)
    context.close()
