"""The appointment pages (issue 17) in headless Chromium, at desktop and phone size.

A small clinic of its own (not the demo): one client with a weekly series of 25, the
older ones recorded (attended, missed, cancelled late). The therapist opens the paged
history, an appointment, and cancels the rest of the series through the confirmation
page, without JavaScript doing anything. Each page goes through the dashboard tests'
checks (axe-core, CSP, console) and must not scroll sideways on a 390 px screen.
"""

from __future__ import annotations

import datetime as dt
import threading
import zoneinfo
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect
from playwright.sync_api import sync_playwright
from werkzeug.serving import make_server

from outcome import schema
from outcome.db import make_engine
from outcome.db import transaction
from outcome.extensions import database
from outcome.models import Client
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import User
from outcome.services.appointments import book_weekly_series
from outcome.services.passwords import hash_password
from tests.test_browser_dashboard import AXE
from tests.test_browser_dashboard import CHROMIUM
from tests.test_browser_dashboard import CHROMIUM_ARGS
from tests.test_browser_dashboard import DESKTOP
from tests.test_browser_dashboard import PASSWORD
from tests.test_browser_dashboard import PHONE
from tests.test_browser_dashboard import Inspector

pytestmark = pytest.mark.browser

# The page does not scroll sideways, or what is wider sits in a container that scrolls.
FITS = """() => {
  if (document.documentElement.scrollWidth <= innerWidth) return {ok: true};
  const wide = [...document.querySelectorAll('main *')].filter((el) => {
    if (el.getBoundingClientRect().right <= innerWidth + 1) return false;
    for (let node = el.parentElement; node; node = node.parentElement) {
      const overflow = getComputedStyle(node).overflowX;
      if ((overflow === 'auto' || overflow === 'scroll')
          && node.getBoundingClientRect().right <= innerWidth) return false;
    }
    return true;
  });
  return {ok: wide.length === 0, scrollWidth: document.documentElement.scrollWidth,
          widest: wide.slice(0, 5).map((el) => el.outerHTML.slice(0, 100))};
}"""


def cells(page, text: str) -> int:
    """How many history cells say exactly ``text`` (a phone shows the rows as blocks)."""
    return page.evaluate("""(text) => [...document.querySelectorAll(
        'table.appointments-history td')].filter((td) => td.textContent.trim() === text)
        .length""", text)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed; `make test` installs Debian's chromium package")
    if not AXE.exists():
        pytest.fail("axe-core is not installed; `make test` runs npm ci")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def live(databases, make_app) -> Iterator[tuple[str, str, list[int]]]:
    url = databases.new_url()
    engine = make_engine(url)
    schema.upgrade(engine)
    engine.dispose()
    app = make_app(database_url=url, SECRET_KEY=None)
    tz = zoneinfo.ZoneInfo("Europe/Berlin")
    today = dt.datetime.now(tz).date()
    with app.app_context(), transaction(database(app).session_factory) as session:
        clinic = Clinic(slug="appts", name="Appointments Clinic", timezone="Europe/Berlin")
        session.add(clinic)
        session.flush()
        therapist = User(clinic_id=clinic.id, email="therapist@appts.example",
                         display_name="Therapist", is_therapist=True,
                         password_hash=hash_password(PASSWORD))
        session.add(therapist)
        session.flush()
        client = Client(clinic_id=clinic.id, code="C-APPT22", name="Rowan Example",
                        therapist_id=therapist.id)
        session.add(client)
        session.flush()
        episode = Episode(clinic_id=clinic.id, client_id=client.id, therapist_id=therapist.id,
                          opened_on=today - dt.timedelta(weeks=9))
        session.add(episode)
        session.flush()
        first = dt.datetime.combine(today - dt.timedelta(weeks=8), dt.time(10, 0))
        series = book_weekly_series(session, episode, first, count=25)
        for appointment, status in zip(series, ["attended"] * 3 + ["no_show", "attended",
                                                                   "late_cancelled",
                                                                   "attended"], strict=False):
            appointment.status = status
        ids = [a.id for a in series]
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", "therapist@appts.example", ids
    server.shutdown()
    database(app).engine.dispose()


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_history_manage_and_cancel_the_rest_of_a_series(browser, live, size):
    base, email, ids = live
    view = Inspector(browser, base, DESKTOP if size == "desktop" else PHONE)
    view.sign_in(email)
    page = view.goto("/clients/C-APPT22/sessions")
    expect(page.get_by_role("heading", name="Every session, newest first")).to_be_visible()
    assert page.locator("table.appointments-history tbody tr").count() == 20
    assert cells(page, "cancelled late") == 1
    view.check(f"appointments-{size}-1-history")
    layouts = [("history", page.evaluate(FITS))]
    page.get_by_role("link", name="Older").click()
    page.wait_for_url("**/sessions?page=2")
    assert page.locator("table.appointments-history tbody tr").count() == 5
    assert cells(page, "did not attend") == 1
    view.check(f"appointments-{size}-2-history-older")

    # The tenth appointment (in the future): expected session 8 (two took no number).
    page = view.goto(f"/clients/C-APPT22/sessions/{ids[9]}")
    expect(page.get_by_text("expected 8")).to_be_visible()
    view.check(f"appointments-{size}-3-manage")
    layouts.append(("manage", page.evaluate(FITS)))
    page.get_by_role("link", name="Cancel this and the rest of the series (16)…").click()
    expect(page.get_by_role("heading", name="16 appointments will be cancelled")).to_be_visible()
    view.check(f"appointments-{size}-4-confirm-series")
    layouts.append(("confirm", page.evaluate(FITS)))
    page.get_by_role("link", name="No, keep it").click()
    expect(page.get_by_role("heading", name="What happened")).to_be_visible()
    page.get_by_role("link", name="Cancel this and the rest of the series (16)…").click()
    page.get_by_role("button", name="Yes, cancel them").click()
    expect(page.get_by_role("status")).to_have_text("16 appointment(s) cancelled.")
    expect(page.get_by_text("Only a scheduled appointment")).to_have_count(0)
    view.check(f"appointments-{size}-5-cancelled")
    layouts.append(("cancelled", page.evaluate(FITS)))
    page = view.goto("/clients/C-APPT22/sessions")
    assert cells(page, "cancelled") == 16  # the 25th to the 10th
    view.close()
    for name, layout in layouts:
        assert layout["ok"], f"{name} overflows a {size} screen sideways: {layout}"
