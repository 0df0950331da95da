"""The client flow in headless Chromium at phone size, with axe-core on every page.

The app runs on a real loopback server against a fresh, migrated database of the run's
backend. Chromium is Debian's package (Playwright's own browser download is not used);
screenshots are saved to ``test-artifacts/`` for people to look at.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import threading
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy.engine import make_url
from werkzeug.serving import make_server

from outcome import schema
from outcome.db import make_engine
from outcome.db import transaction
from outcome.extensions import database
from outcome.models import Client
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import User
from outcome.services.links import issue_link
from tests.helpers import artifacts
from tests.helpers import consent_given
from tests.helpers import full_page_screenshot

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = artifacts("client-flow")
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PHONE = {"width": 390, "height": 844}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.browser

# Every rule axe runs by default. Only violations are read, so axe describes only them
# node by node (``resultTypes``: passes and the rest keep one node each, which spares
# building a selector for every element that passes; the violations are the same).
AXE_RUN = "async () => await axe.run(document, {resultTypes: ['violations']})"


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


@pytest.fixture(scope="module")
def migrated_sqlite(databases) -> str | None:
    """On SQLite, one empty database migrated to head for the module, which each test
    copies (as ``demo_databases`` copies the demo): the migrations cost seconds of
    fsyncs a database, and every test here migrated its own. ``None`` on PostgreSQL,
    where each test migrates a schema of its own, as before."""
    if databases.backend != "sqlite":
        return None
    url = databases.new_url()
    engine = make_engine(url)
    schema.upgrade(engine)
    engine.dispose()
    return make_url(url).database


@pytest.fixture
def live(databases, migrated_sqlite, tmp_path, request, make_app):
    """The app on a loopback port, with a fresh database of its own (migrated to head)
    holding a clinic, a client and an issued link.

    With ``@pytest.mark.vas`` the clinic has installed SRS-type wording, attested it,
    and asks for it before each session.
    """
    url = databases.new_url()
    if migrated_sqlite is not None:
        shutil.copyfile(migrated_sqlite, make_url(url).database or "")
    else:
        engine = make_engine(url)
        schema.upgrade(engine)
        engine.dispose()
    folder = tmp_path / "instruments"
    folder.mkdir()
    vas = request.node.get_closest_marker("vas") is not None
    if vas:
        (folder / "srs.yaml").write_text(
            'overlay_for: srs_vas@1\nitems: {srs_1: "How well did we work together today?", '
            'srs_2: "Did we talk about what you wanted?", srs_3: "Did the approach fit you?", '
            'srs_4: "Overall, how was today?"}\n')
    app = make_app(database_url=url, SECRET_KEY=None, RATELIMIT_ENABLED=True,
                   INSTRUMENTS_DIR=str(folder))
    with app.app_context(), transaction(database(app).session_factory) as session:
        clinic = Clinic(slug="live", name="Live Clinic",
                        settings={"pre_battery": [{"instrument": "srs_vas"}]} if vas else {})
        session.add(clinic)
        session.flush()
        therapist = User(clinic_id=clinic.id, email="t@example.org", display_name="T",
                         is_therapist=True, is_admin=True)
        session.add(therapist)
        session.flush()
        if vas:
            from outcome.extensions import instrument_library
            from outcome.services.instruments import attest

            attest(session, clinic=clinic, instrument=instrument_library(app).get("srs_vas"),
                   admin=therapist, now=dt.datetime.now(dt.UTC))
        client = Client(clinic_id=clinic.id, code="C-LIVE22", name="Rowan Example",
                        therapist_id=therapist.id)
        session.add(client)
        session.flush()
        episode = Episode(clinic_id=clinic.id, client_id=client.id,
                          therapist_id=therapist.id, opened_on=dt.date(2026, 11, 1))
        session.add(episode)
        session.flush()
        consent_given(session, client, dt.datetime.now(dt.UTC))  # agreed on an earlier link
        from outcome.extensions import instrument_library

        _, token = issue_link(session, episode=episode, purpose="pre",
                              now=dt.datetime.now(dt.UTC), library=instrument_library(app))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", token
    server.shutdown()
    database(app).engine.dispose()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    full_page_screenshot(page, ARTIFACTS / f"{name}.png")


def serious_violations(browser, url: str) -> list[str]:
    """axe-core's serious and critical findings for ``url`` (CSP bypassed for axe only)."""
    context = browser.new_context(viewport=PHONE, bypass_csp=True)
    page = context.new_page()
    page.goto(url)
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(AXE_RUN)
    context.close()
    return [f"{v['id']}: {v['help']}" for v in result["violations"]
            if v["impact"] in ("serious", "critical")]


def answer(page, prefix: str, count: int, value: str, skip=()) -> None:
    for i in range(1, count + 1):
        if i not in skip:
            page.check(f"input[name={prefix}_{i}][value='{value}']")


def press(page, name: str) -> None:
    """Press a form button and wait for the page it submits to."""
    with page.expect_navigation():
        page.get_by_role("button", name=name).click()


def test_a_client_completes_the_flow_on_a_phone(browser, live):
    base, token = live
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(f"{base}/q/{token}")
    assert page.url == f"{base}/q/"  # the token left the address bar
    expect(page.get_by_text("Questionnaire 1 of 2")).to_be_visible()
    shot(page, "1-phq9")

    answer(page, "phq9", 8, "1", skip=(4, 5))
    page.check("input[name=phq9_9][value='0']")
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_text("Some answers need your attention (2)")).to_be_visible()
    expect(page.locator(".error")).to_have_count(2)
    assert page.is_checked("input[name=phq9_1][value='1']")  # kept
    shot(page, "2-phq9-errors")

    page.check("input[name=phq9_4][value='0']")
    page.check("input[name=phq9_5][value='2']")
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_text("Questionnaire 2 of 2")).to_be_visible()
    shot(page, "3-gad7")

    answer(page, "gad7", 7, "0")
    page.keyboard.press("Tab")  # radio groups work by keyboard too
    page.get_by_role("button", name="Finish").click()
    expect(page.get_by_role("heading", name="Thank you")).to_be_visible()
    shot(page, "4-thank-you")

    page.goto(f"{base}/q/{token}")
    expect(page.get_by_role("heading", name="Already completed")).to_be_visible()
    shot(page, "5-used-link")
    context.close()


def test_crisis_text_after_a_critical_answer(browser, live):
    base, token = live
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(f"{base}/q/{token}")
    answer(page, "phq9", 8, "0")
    page.check("input[name=phq9_9][value='2']")
    page.get_by_role("button", name="Next").click()
    page.wait_for_url(f"{base}/q/support")
    expect(page.get_by_text("call your local emergency number")).to_be_visible()
    shot(page, "6-support")
    context.close()


def test_the_pages_work_with_javascript_off(browser, live):
    base, token = live
    context = browser.new_context(viewport=PHONE, java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{base}/q/{token}")
    answer(page, "phq9", 9, "0")
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_text("Questionnaire 2 of 2")).to_be_visible()
    context.close()


def test_no_serious_accessibility_violations(browser, live):
    base, token = live
    # Each client page: the questionnaire, one with errors, support, thanks, a bad link.
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(f"{base}/q/{token}")
    cookies = context.cookies()
    context.close()
    findings = {}
    for name, path in (("bad link", "/q/" + "x" * 43),):
        findings[name] = serious_violations(browser, base + path)
    context = browser.new_context(viewport=PHONE, bypass_csp=True)
    context.add_cookies(cookies)
    page = context.new_page()
    for name, act in (
        ("questionnaire", lambda p: None),
        ("with errors", lambda p: press(p, "Next")),
        ("support", lambda p: (answer(p, "phq9", 8, "0"),
                               p.check("input[name=phq9_9][value='1']"),
                               press(p, "Next"))),
        ("next questionnaire", lambda p: p.goto(f"{base}/q/")),
        ("thank you", lambda p: (answer(p, "gad7", 7, "0"),
                                 press(p, "Finish"))),
    ):
        if name == "questionnaire":
            page.goto(f"{base}/q/")
        act(page)
        page.add_script_tag(path=str(AXE))
        result = page.evaluate(AXE_RUN)
        findings[name] = [f"{v['id']}: {v['help']}" for v in result["violations"]
                          if v["impact"] in ("serious", "critical")]
    context.close()
    assert findings == {name: [] for name in findings}, findings


def test_page_weight_has_no_external_requests(browser, live):
    base, token = live
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{base}/q/{token}")
    assert all(url.startswith(base) for url in requested), requested
    html_size = len(page.content().encode())
    assert html_size < 50_000, html_size
    context.close()


@pytest.mark.vas
def test_visual_analogue_items_slider_and_number(browser, live):
    base, token = live
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(f"{base}/q/{token}")
    sliders = page.locator("input.vas-slider")
    expect(sliders).to_have_count(4)  # JavaScript added a slider beside each number field
    sliders.nth(0).fill("7.5")  # moving the slider fills the number field
    assert page.input_value("input[name=srs_1]") == "7.5"
    for name, value in (("srs_2", "8"), ("srs_3", "9.9"), ("srs_4", "10")):
        page.fill(f"input[name={name}]", value)
    shot(page, "7-vas")
    # By keyboard: after a full-page screenshot Chromium's scroll position shifts between
    # mouse down and up on a button below the fold, and the click misses it.
    page.get_by_role("button", name="Finish").press("Enter")
    expect(page.get_by_role("heading", name="Thank you")).to_be_visible()
    context.close()
    no_js = browser.new_context(viewport=PHONE, java_script_enabled=False)
    page = no_js.new_page()
    page.goto(f"{base}/q/{token}")
    expect(page.get_by_role("heading", name="Already completed")).to_be_visible()
    no_js.close()


@pytest.mark.vas
def test_visual_analogue_items_work_without_javascript(browser, live):
    base, token = live
    context = browser.new_context(viewport=PHONE, java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{base}/q/{token}")
    assert page.locator("input.vas-slider").count() == 0
    for name in ("srs_1", "srs_2", "srs_3", "srs_4"):
        page.fill(f"input[name={name}]", "9.5")
    page.fill("input[name=srs_4]", "9.55")  # too many decimals
    page.get_by_role("button", name="Finish").click()
    expect(page.get_by_text("Please use at most one decimal place.")).to_be_visible()
    page.fill("input[name=srs_4]", "9.5")
    page.get_by_role("button", name="Finish").click()
    expect(page.get_by_role("heading", name="Thank you")).to_be_visible()
    context.close()


def test_link_qr_code_decodes_to_the_link(browser, tmp_path):
    import subprocess

    from reports.qr import link_qr_svg

    url = "http://127.0.0.1:5000/q/" + "Zx9_" * 10 + "abc"
    svg = tmp_path / "qr.svg"
    svg.write_text(link_qr_svg(url))
    context = browser.new_context(viewport={"width": 320, "height": 320})
    page = context.new_page()
    page.goto(svg.as_uri())
    png = tmp_path / "qr.png"
    page.screenshot(path=str(png))
    context.close()
    shutil.copy(png, ARTIFACTS / "link-qr.png") if ARTIFACTS.exists() else None
    decoded = subprocess.run(["zbarimg", "-q", "--raw", str(png)], capture_output=True,
                             text=True, timeout=30)
    assert decoded.stdout.strip() == url


if os.environ.get("OUTCOME_SKIP_BROWSER") == "1":  # pragma: no cover - local escape hatch
    pytestmark = [pytest.mark.browser, pytest.mark.skip(reason="OUTCOME_SKIP_BROWSER=1")]
