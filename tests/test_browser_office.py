"""In the office, in headless Chromium: the care page's QR code scans to a working link,
and the waiting-room kiosk at phone size (390 px).

The app runs on a real loopback server against a fresh, migrated database of the run's
backend; Chromium is Debian's package, QR codes are decoded with zbar's ``zbarimg``.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from playwright.sync_api import expect
from werkzeug.serving import make_server

from outcome import schema
from outcome.db import make_engine
from outcome.db import transaction
from outcome.extensions import database
from outcome.models import Appointment
from outcome.models import Client
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import User
from outcome.services.passwords import hash_password
from tests.helpers import artifacts
from tests.helpers import consent_given

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = artifacts("office")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
PASSWORD = "office password for the browser tests"

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
    if shutil.which("zbarimg") is None:
        pytest.fail("zbarimg is not installed; `make test` installs Debian's zbar-tools")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def live(databases, tmp_path, make_app):
    """The app on a loopback port: a clinic, an admin, a therapist and their client with
    an appointment in an hour."""
    url = databases.new_url()
    engine = make_engine(url)
    schema.upgrade(engine)
    engine.dispose()
    folder = tmp_path / "instruments"
    folder.mkdir()
    app = make_app(database_url=url, SECRET_KEY=None, INSTRUMENTS_DIR=str(folder))
    now = dt.datetime.now(dt.UTC)
    with app.app_context(), transaction(database(app).session_factory) as session:
        clinic = Clinic(slug="office", name="Office Clinic", timezone="UTC")
        session.add(clinic)
        session.flush()
        therapist = User(clinic_id=clinic.id, email="t@example.org", display_name="T",
                         is_therapist=True, password_hash=hash_password(PASSWORD))
        admin = User(clinic_id=clinic.id, email="a@example.org", display_name="A",
                     is_admin=True, password_hash=hash_password(PASSWORD))
        session.add_all([therapist, admin])
        session.flush()
        client = Client(clinic_id=clinic.id, code="C-OFF123", name="Rowan Example",
                        therapist_id=therapist.id)
        session.add(client)
        session.flush()
        episode = Episode(clinic_id=clinic.id, client_id=client.id,
                          therapist_id=therapist.id, opened_on=now.date())
        session.add(episode)
        session.flush()
        consent_given(session, client, now)  # agreed on an earlier visit (issue 20)
        # Within today (UTC) whenever the test runs: now, rounded to the minute.
        session.add(Appointment(episode_id=episode.id, starts_dt=now.replace(
            second=0, microsecond=0), status="scheduled"))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    app.config["BASE_URL"] = base  # the links the page shows point at this server
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base
    server.shutdown()
    database(app).engine.dispose()


def sign_in(page, base: str, email: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(base + "/")


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_the_care_page_qr_code_scans_to_a_working_link(browser, live, tmp_path):
    context = browser.new_context(viewport=DESKTOP)
    context.add_init_script(CSP_LISTENER)
    page = context.new_page()
    sign_in(page, live, "t@example.org")
    page.goto(live + "/clients/C-OFF123/care")
    with page.expect_navigation():
        page.get_by_role("button", name="Before").first.click()
    figure = page.locator("figure.qr")
    expect(figure).to_be_visible()
    png = tmp_path / "qr.png"
    figure.screenshot(path=str(png))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(png, ARTIFACTS / "care-page-qr.png")
    assert page.evaluate("() => window.__cspViolations") == []
    decoded = subprocess.run(["zbarimg", "-q", "--raw", str(png)], capture_output=True,
                             text=True, timeout=30).stdout.strip()
    shown = page.locator("input[aria-label=Link]").input_value()
    assert decoded == shown and decoded.startswith(live + "/q/")
    context.close()
    # The client's phone: a new browser with no session opens the scanned link.
    phone = browser.new_context(viewport=PHONE)
    client_page = phone.new_page()
    response = client_page.goto(decoded)
    assert response is not None and response.status == 200
    expect(client_page.locator("form button[type=submit]").first).to_be_visible()
    shot(client_page, "scanned-link")
    phone.close()


def test_a_client_answers_at_the_kiosk_on_a_phone_sized_screen(browser, live):
    """The admin makes a kiosk and sets it up from its QR code's link, the therapist
    makes a code, the client types it at the kiosk (390 px), answers and the kiosk is
    back at the code screen; no name shows, no CSP violation, nothing wider than the
    screen, and staff pages are out of reach."""
    import re

    staff = browser.new_context(viewport=DESKTOP)
    page = staff.new_page()
    sign_in(page, live, "a@example.org")
    page.goto(live + "/admin/kiosks")
    page.get_by_label("Name").fill("Waiting room")
    with page.expect_navigation():
        page.get_by_role("button", name="Create the kiosk").click()
    setup_url = page.locator("input[aria-label='Setup link']").input_value()
    staff.close()
    therapist = browser.new_context(viewport=DESKTOP)
    page = therapist.new_page()
    sign_in(page, live, "t@example.org")
    page.goto(live + "/clients/C-OFF123/care")
    with page.expect_navigation():
        page.get_by_role("button", name="Kiosk code").first.click()
    code = page.locator(".kiosk-code-shown").inner_text().replace(" ", "")
    assert re.fullmatch(r"[A-Z0-9]{6}", code)
    therapist.close()

    kiosk = browser.new_context(viewport=PHONE)
    kiosk.add_init_script(CSP_LISTENER)
    tablet = kiosk.new_page()
    tablet.goto(setup_url)
    with tablet.expect_navigation():
        tablet.get_by_role("button", name="Make this device the kiosk").click()
    expect(tablet.get_by_label("Your code")).to_be_visible()
    shot(tablet, "kiosk-1-code")
    tablet.get_by_label("Your code").fill("WRONG1")
    with tablet.expect_navigation():
        tablet.get_by_role("button", name="Start").click()
    expect(tablet.get_by_text("This code does not work")).to_be_visible()
    tablet.get_by_label("Your code").fill(code.lower())
    with tablet.expect_navigation():
        tablet.get_by_role("button", name="Start").click()
    for step in range(2):
        expect(tablet.get_by_text(f"Questionnaire {step + 1} of 2")).to_be_visible()
        assert "Rowan" not in tablet.content()
        assert tablet.evaluate("() => document.documentElement.scrollWidth") <= 390
        shot(tablet, f"kiosk-{step + 2}-questionnaire")
        for group in tablet.locator("fieldset").all():
            group.locator("input[type=radio]").first.check()
        with tablet.expect_navigation():
            tablet.locator("form button.primary[type=submit]").click()
    expect(tablet.get_by_text("your answers have been sent")).to_be_visible()
    expect(tablet.get_by_label("Your code")).to_be_visible()
    shot(tablet, "kiosk-4-done")
    assert tablet.evaluate("() => window.__cspViolations") == []
    for path in ("/login", "/admin/", "/clients/C-OFF123/care"):
        response = tablet.goto(live + path)
        assert response is not None and response.status == 404, path
    kiosk.close()


if os.environ.get("OUTCOME_SKIP_BROWSER") == "1":  # pragma: no cover - local escape hatch
    pytestmark = [pytest.mark.browser, pytest.mark.skip(reason="OUTCOME_SKIP_BROWSER=1")]
