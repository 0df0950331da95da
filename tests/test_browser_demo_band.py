"""The demo shows the expected-recovery band, live, in headless Chromium (finding 12).

The demo clinic (:mod:`outcome.services.demo`) has enough finished episodes for the
clinic's own fit, so a demo client's outcome chart on the therapist's page draws the
shaded expected range (``reports.charts``: a filled polygon in the band colour) and says
so in the chart's description.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright
from sqlalchemy import func
from sqlalchemy import select
from werkzeug.serving import make_server

from outcome.db import transaction
from outcome.extensions import database
from outcome.models import Administration
from outcome.models import Client
from outcome.models import Episode
from outcome.models import User
from reports.charts import BAND
from tests.helpers import DEMO_NOW
from tests.helpers import DEMO_PASSWORD
from tests.helpers import artifacts

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PASSWORD = DEMO_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# reportlab writes a fill as rgb(r%,g%,b%) with whole percentages.
BAND_FILL = "rgb({:.0f}%,{:.0f}%,{:.0f}%)".format(*(100 * c for c in BAND.rgb()))


@pytest.fixture(scope="module")
def live_demo(demo_databases, tmp_path_factory, app_factory) -> Iterator[tuple[str, str, str]]:
    """A server on the demo clinic; the address, a therapist's e-mail and a client of
    theirs in care with six or more PHQ-9 answers."""
    url = demo_databases.new_url()
    folder = tmp_path_factory.mktemp("instruments")  # no installed wording
    app = app_factory(url, SECRET_KEY=None, INSTRUMENTS_DIR=str(folder),
                      clock=lambda: DEMO_NOW)
    with app.app_context(), transaction(database(app).session_factory) as session:
        code, email = session.execute(
            select(Client.code, User.email).join(Episode, Episode.client_id == Client.id)
            .join(User, User.id == Client.therapist_id)
            .join(Administration, Administration.episode_id == Episode.id)
            .where(Episode.closed_on.is_(None), Administration.instrument_id == "phq9")
            .group_by(Client.code, User.email).having(func.count() >= 6)
            .order_by(Client.code)).first()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", email, code
    server.shutdown()
    database(app).engine.dispose()


def test_a_demo_clients_outcome_chart_draws_the_expected_band(live_demo):
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed")
    base, email, code = live_demo
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(base + "/login")
        page.get_by_label("E-mail").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(base + "/")
        response = page.goto(f"{base}/clients/{code}")
        assert response is not None and response.status == 200
        charts = page.locator("figure.chart svg[role=img]").filter(
            has=page.locator("title", has_text="PHQ-9"))
        assert charts.count() >= 1
        chart = charts.first
        band = chart.locator(f'polygon[fill="{BAND_FILL}"], [class~="band"]')
        assert band.count() == 1, chart.inner_html()[:2000]
        assert band.first.is_visible()
        description = chart.locator("desc").text_content() or ""
        assert "Expected range at the latest session" in description
        # For people to look at: the page at desktop and at phone size (390 px).
        folder = artifacts("demo")
        folder.mkdir(parents=True, exist_ok=True)
        page.set_viewport_size({"width": 1280, "height": 900})
        page.screenshot(path=str(folder / "client-desktop.png"), full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})
        page.screenshot(path=str(folder / "client-phone.png"), full_page=True)
        page.goto(base + "/")
        page.screenshot(path=str(folder / "caseload-phone.png"), full_page=True)
        page.set_viewport_size({"width": 1280, "height": 900})
        page.screenshot(path=str(folder / "caseload-desktop.png"), full_page=True)
        browser.close()
