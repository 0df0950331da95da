"""Issue 18: the "review together" page in Chromium, at 390 px (a phone) and 1366 px.

The demo clinic of tests/test_browser_pages.py (its ``world`` and ``browser`` fixtures):
the therapist opens a client's review page from the record, in the client's language and
previewed in Russian with the language control. No sideways scroll on a phone, chart text
at least 11 px, no table wider than its card, axe-core finds nothing serious or critical.
Screenshots go to test-artifacts/client-report/.
"""

from __future__ import annotations

import pytest

from tests.helpers import artifacts
from tests.test_browser_pages import DESKTOP
from tests.test_browser_pages import DESKTOP_CHECK
from tests.test_browser_pages import MIN_CHART_TEXT_PX
from tests.test_browser_pages import PHONE
from tests.test_browser_pages import PHONE_CHECK
from tests.test_browser_pages import _context
from tests.test_browser_pages import axe_findings
from tests.test_browser_pages import browser  # noqa: F401  (a fixture)
from tests.test_browser_pages import world  # noqa: F401  (a fixture)

ARTIFACTS = artifacts("client-report")


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390px", "1366px"])
def test_review_page_from_the_record_in_both_languages(browser, world, viewport):  # noqa: F811
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context, page, base = _context(browser, world, "therapist", viewport)
    width = viewport["width"]
    problems: list[str] = []

    def check(name: str) -> None:
        if width == PHONE["width"]:
            problems.extend(f"{name}: {p}" for p in
                            page.evaluate(PHONE_CHECK, MIN_CHART_TEXT_PX)["problems"])
        else:
            problems.extend(f"{name}: {p}" for p in page.evaluate(DESKTOP_CHECK))
        problems.extend(f"{name}: {p}" for p in axe_findings(page))
        page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)

    try:
        page.goto(f"{base}/clients/{world.client_code}")
        page.get_by_role("link", name="Review progress together with the client").click()
        page.wait_for_load_state()
        assert "/review" in page.url
        assert page.locator("article.client-report svg[role=img]").count() >= 1
        assert page.get_by_text("Nothing is sent to the client automatically").count() == 1
        pdf_link = page.get_by_role("link", name="Download PDF to give to the client")
        assert "/review.pdf" in (pdf_link.get_attribute("href") or "")
        check("review")
        page.locator("select[name=lang]").select_option("ru")
        page.get_by_role("button", name="Show").first.click()
        page.wait_for_load_state()
        assert "lang=ru" in page.url
        assert page.locator("article.client-report[lang=ru] h2").inner_text() == "Ваш прогресс"
        assert "lang=ru" in (pdf_link.get_attribute("href") or "")
        check("review-ru")
        with page.expect_download() as download:
            pdf_link.click()
        assert download.value.suggested_filename.endswith("-for-client.pdf")
    finally:
        context.close()
    assert not problems, "\n".join(problems)
