"""Clients and episodes in headless Chromium (issue 17): a therapist registers a client,
edits them, ends their episode (confirmed on its own page, no script needed) and finds
them under "Ended", at desktop size and on a 390 px phone.

On every page: no sideways scrolling (``scrollWidth <= innerWidth``), and axe-core finds
no serious or critical problem. Screenshots go to ``test-artifacts/clients/``.
"""

from __future__ import annotations

import threading

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
from tests.test_browser_client import AXE
from tests.test_browser_client import browser  # noqa: F401  (a fixture)

ARTIFACTS = artifacts("clients")
PASSWORD = "a browser test password for the clinic"
SIZES = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}

pytestmark = pytest.mark.browser


@pytest.fixture
def live(databases, make_app):
    url = databases.new_url()
    engine = make_engine(url)
    schema.upgrade(engine)
    engine.dispose()
    app = make_app(database_url=url, SECRET_KEY=None)
    with app.app_context(), transaction(database(app).session_factory) as session:
        clinic = Clinic(slug="live", name="Live Clinic")
        session.add(clinic)
        session.flush()
        session.add(User(clinic_id=clinic.id, email="t@example.org", display_name="Therapist T",
                         is_therapist=True, password_hash=hash_password(PASSWORD)))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    database(app).engine.dispose()


def check(page, name: str, problems: list[str]) -> None:
    """No sideways overflow, no serious axe finding; a screenshot."""
    width = page.evaluate("() => document.documentElement.scrollWidth")
    inner = page.evaluate("() => innerWidth")
    if width > inner:
        problems.append(f"{name}: scrollWidth {width} > {inner}")
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run()")
    problems += [f"{name}: {v['id']}: {v['help']}" for v in result["violations"]
                 if v["impact"] in ("serious", "critical")]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def press(page, name: str) -> None:
    with page.expect_navigation():
        page.get_by_role("button", name=name).click()


def follow(page, name: str) -> None:
    """Click a link and wait for the next page, so no check reads a page mid-load."""
    with page.expect_navigation():
        page.get_by_role("link", name=name).click()


@pytest.mark.parametrize("size", SIZES)
def test_register_edit_end_and_find_among_ended(browser, live, size):  # noqa: F811
    # bypass_csp only so that axe can be injected; the app's pages run no script.
    context = browser.new_context(viewport=SIZES[size], bypass_csp=True,
                                  java_script_enabled=True)
    page = context.new_page()
    problems: list[str] = []
    page.goto(f"{live}/login")
    page.fill("input[name=email]", "t@example.org")
    page.fill("input[name=password]", PASSWORD)
    press(page, "Sign in")
    expect(page.locator("h1")).to_have_text("Your caseload")
    check(page, f"{size}-1-caseload", problems)

    follow(page, "Register a client")
    press(page, "Register")  # nothing filled in: refused beside the name
    expect(page.locator("#name-error")).to_contain_text("name is required")
    check(page, f"{size}-2-register-refused", problems)
    page.fill("input[name=name]", "Rowan Example")
    page.fill("input[name=email]", "rowan@example.org")
    page.select_option("select[name=locale]", "ru")
    page.select_option("select[name=descriptor]", "mixed")
    press(page, "Register")
    expect(page.locator("h1")).to_contain_text("Rowan Example")
    code = page.locator("h1 .muted").inner_text().strip()
    check(page, f"{size}-3-client", problems)

    follow(page, "Edit client details")
    check(page, f"{size}-4-edit", problems)
    page.fill("input[name=name]", "Rowan Renamed")
    press(page, "Save")
    expect(page.locator("h1")).to_contain_text("Rowan Renamed")

    follow(page, "End the episode")
    page.check("input[name=reason][value=completed]")
    check(page, f"{size}-5-end", problems)
    press(page, "Continue")
    expect(page.locator("h1")).to_contain_text("Confirm: end the episode")
    check(page, f"{size}-6-confirm", problems)
    press(page, "End the episode")
    expect(page.locator(".end-reason")).to_have_text("Completed as planned")
    expect(page.get_by_role("link", name="Open a new episode")).to_be_visible()

    page.goto(f"{live}/")
    expect(page.locator("body")).not_to_contain_text("Rowan Renamed")
    page.check("input[name=episodes][value=ended]")
    page.fill("input[name=q]", "renamed")
    press(page, "Apply")
    row = page.locator("table.past-clients tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Rowan Renamed")
    expect(row).to_contain_text(code)
    expect(row).to_contain_text("Completed as planned")
    check(page, f"{size}-7-ended", problems)
    context.close()
    assert problems == []
