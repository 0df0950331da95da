"""A clinic from nothing in headless Chromium at phone size (issue 17).

``outcome serve`` runs as a real process on a fresh, migrated database and prints the
one-time setup address; the browser opens it, creates the clinic and its admin, signs in,
is made to change the first password, fills in the crisis contacts and reading hours,
and the setup checklist is gone. Every page fits a 390-pixel phone without sideways
scrolling and has no serious axe-core finding. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect

from outcome import schema
from outcome.db import make_engine
from tests.helpers import artifacts
from tests.helpers import free_port
from tests.test_browser_client import AXE
from tests.test_browser_client import CHROMIUM
from tests.test_browser_client import PHONE
from tests.test_browser_client import browser  # noqa: F401 (the module's browser fixture)

ROOT = Path(__file__).resolve().parent.parent
OUTCOME = str(Path(sys.executable).parent / "outcome")
ARTIFACTS = artifacts("setup")
FIRST_PASSWORD = "seven quiet herons at dawn"
OWN_PASSWORD = "a lantern by the quiet harbour"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def served(databases, tmp_path):
    """``outcome serve`` on a fresh database: its address and the setup token it printed."""
    assert Path(CHROMIUM).exists() and AXE.exists()
    url = databases.new_url()
    engine = make_engine(url)
    schema.upgrade(engine)
    engine.dispose()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTCOME_")}
    env.update(OUTCOME_INSTANCE_PATH=str(tmp_path / "instance"), OUTCOME_DATABASE_URL=url,
               OUTCOME_SECRET_KEY="s" * 40, OUTCOME_BASE_URL=f"http://127.0.0.1:{port}",
               OUTCOME_TIMEZONE="Europe/London", PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen([OUTCOME, "serve", "--port", str(port), "--workers", "1"],
                                  env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise AssertionError("the server did not start: "
                                         + log.read_text()) from None
                time.sleep(0.2)
        printed = re.search(re.escape(base) + r"/setup/([A-Za-z0-9_-]{43})", log.read_text())
        assert printed, log.read_text()
        yield base, printed.group(1)
    finally:
        server.terminate()
        server.wait(timeout=30)
    # Printed once for the operator; the access log has it redacted.
    assert log.read_text().count(printed.group(1)) == 1, "the token reached the access log"


def fits_a_phone(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{name}: {width}px wide on a 390px phone"
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run()")
    serious = [f"{v['id']}: {v['help']}" for v in result["violations"]
               if v["impact"] in ("serious", "critical")]
    assert serious == [], f"{name}: {serious}"


def test_a_clinic_from_nothing_on_a_phone(browser, served):  # noqa: F811
    base, token = served
    context = browser.new_context(viewport=PHONE, bypass_csp=True)  # CSP off for axe only
    page = context.new_page()
    page.goto(f"{base}/login")
    expect(page.get_by_role("heading", name="No clinic yet")).to_be_visible()
    page.goto(f"{base}/setup")
    assert "one-time setup address" in page.content()

    page.goto(f"{base}/setup/{token}")
    page.wait_for_url(f"{base}/setup")
    fits_a_phone(page, "1-setup")
    page.fill("#setup-name", "Riverside Therapy")
    page.select_option("#setup-timezone", "Europe/London")
    page.fill("#setup-admin_name", "Ada Admin")
    page.fill("#setup-email", "ada@example.org")
    page.fill("#setup-password", FIRST_PASSWORD)
    page.fill("#setup-password_confirm", FIRST_PASSWORD)
    page.get_by_role("button", name="Create the clinic").click()
    page.wait_for_url(f"{base}/login")
    expect(page.get_by_text("The clinic Riverside Therapy is ready")).to_be_visible()

    page.fill("input[name=email]", "ada@example.org")
    page.fill("input[name=password]", FIRST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/account/password")
    expect(page.get_by_text("chosen by somebody else")).to_be_visible()
    fits_a_phone(page, "2-first-password")
    page.goto(f"{base}/admin/")  # nothing else opens yet
    page.wait_for_url(f"{base}/account/password")
    page.fill("input[name=current_password]", FIRST_PASSWORD)
    page.fill("input[name=new_password]", OWN_PASSWORD)
    page.fill("input[name=confirm]", OWN_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    page.wait_for_url(f"{base}/")
    expect(page.get_by_role("heading", name="Setup is not finished")).to_be_visible()
    fits_a_phone(page, "3-checklist")

    page.get_by_role("link", name="Set crisis contacts and reading hours").click()
    page.wait_for_url(f"{base}/admin/settings/crisis")
    fits_a_phone(page, "4-crisis-form")
    page.fill("#contact-1-label", "Crisis line")
    page.fill("#contact-1-phone", "+44 800 123 4567")
    page.fill("#contact-1-note", "24 hours, free")
    page.get_by_role("button", name="Save crisis contacts and hours").click()
    page.wait_for_url(f"{base}/admin/settings/crisis")
    expect(page.get_by_text("Crisis contacts and reading hours saved.")).to_be_visible()
    fits_a_phone(page, "5-crisis-saved")
    page.goto(f"{base}/")
    expect(page.get_by_role("heading", name="Setup is not finished")).to_have_count(0)
    page.goto(f"{base}/admin/")
    expect(page.get_by_role("heading", name="Setup is not finished")).to_have_count(0)
    page.goto(f"{base}/setup/{token}")  # used: gone
    assert "Page not found" in page.content()
    context.close()
