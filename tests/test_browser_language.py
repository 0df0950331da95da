"""Issue 17: the language switch on a phone (390 px): Russian for this visit, the verified
Russian PHQ-9, the notice that the GAD-7 stays in English; axe-core finds nothing serious
and nothing overflows sideways. Screenshots in test-artifacts/language/."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.helpers import artifacts
from tests.test_browser_client import PHONE
from tests.test_browser_client import browser  # noqa: F401  (a fixture)
from tests.test_browser_client import live  # noqa: F401  (a fixture)
from tests.test_browser_client import migrated_sqlite  # noqa: F401  (live's fixture)

ARTIFACTS = artifacts("language")
pytestmark = pytest.mark.browser


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_a_client_switches_to_russian_on_a_phone(browser, live):  # noqa: F811
    base, token = live
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(f"{base}/q/{token}")
    expect(page.get_by_text("Little interest or pleasure in doing things")).to_be_visible()
    shot(page, "1-english")
    with page.expect_navigation():
        page.get_by_role("button", name="Русский").click()
    assert page.locator("html").get_attribute("lang") == "ru"
    expect(page.get_by_text("Вам не хотелось ничего делать")).to_be_visible()
    expect(page.locator(".language-notice")).to_contain_text("GAD-7")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "2-russian")
    cookies = context.cookies()
    context.close()
    # axe on the Russian page, in a context carrying the same client session.
    check = browser.new_context(viewport=PHONE, bypass_csp=True)
    check.add_cookies(cookies)
    page = check.new_page()
    page.goto(f"{base}/q/")
    from tests.test_browser_client import AXE
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run()")
    found = [f"{v['id']}: {v['help']}" for v in result["violations"]
             if v["impact"] in ("serious", "critical")]
    check.close()
    assert found == []
