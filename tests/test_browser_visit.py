"""The client's visit at phone size (390 px) in headless Chromium (issue 17): the welcome
line, Back that keeps answers, the second chance for a blank item 9, and a 0-10 goal scale
that fits the screen. Debian's chromium; screenshots in ``test-artifacts/client-visit/``.
"""

from __future__ import annotations

import datetime as dt
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
from outcome.extensions import instrument_library
from outcome.models import Administration
from outcome.models import Alert
from outcome.models import Client
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import User
from outcome.services.goals import set_goals
from outcome.services.instruments import attest
from outcome.services.links import issue_link
from outcome.services.passwords import hash_password
from tests.helpers import artifacts
from tests.helpers import consent_given

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = artifacts("client-visit")
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PHONE = {"width": 390, "height": 844}
PASSWORD = "a therapist's passphrase for the visit tests"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.browser


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
    """The app on a loopback port: a client with two goals and a link for PHQ-9, GAD-7
    and the goal ratings; yields the base address, the token and a session factory."""
    url = databases.new_url()
    engine = make_engine(url)
    schema.upgrade(engine)
    engine.dispose()
    app = make_app(database_url=url, SECRET_KEY=None, RATELIMIT_ENABLED=True)
    now = dt.datetime.now(dt.UTC)
    with app.app_context(), transaction(database(app).session_factory) as session:
        library = instrument_library(app)
        clinic = Clinic(slug="visit", name="Riverside Clinic")
        session.add(clinic)
        session.flush()
        therapist = User(clinic_id=clinic.id, email="t@example.org", display_name="Dr Ada Moss",
                         is_therapist=True, is_admin=True,
                         password_hash=hash_password(PASSWORD))
        session.add(therapist)
        session.flush()
        attest(session, clinic=clinic, instrument=library.get("gbo"), admin=therapist,
               now=now)
        client = Client(clinic_id=clinic.id, code="C-VISIT2", name="Rowan Example",
                        therapist_id=therapist.id)
        session.add(client)
        session.flush()
        episode = Episode(clinic_id=clinic.id, client_id=client.id,
                          therapist_id=therapist.id, opened_on=dt.date(2026, 11, 1))
        session.add(episode)
        session.flush()
        consent_given(session, client, now)  # agreed on an earlier link (issue 20)
        set_goals(session, episode, ["Sleep through the night without waking at four",
                                     "Go back to running with my sister"], now)
        link, token = issue_link(session, episode=episode, purpose="pre", now=now,
                                 library=library)
        assert link.battery == ["phq9", "gad7", "gbo"]
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", token, database(app).session_factory
    server.shutdown()
    database(app).engine.dispose()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def axe_findings(page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run()")
    return [f"{v['id']}: {v['help']}" for v in result["violations"]
            if v["impact"] in ("serious", "critical")]


def answer(page, prefix: str, count: int, value: str, skip=()) -> None:
    for i in range(1, count + 1):
        if i not in skip:
            page.check(f"input[name={prefix}_{i}][value='{value}']")


def press(page, name: str) -> None:
    with page.expect_navigation():
        page.get_by_role("button", name=name, exact=True).click()


def no_sideways_scroll(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], width


def test_a_visit_on_a_phone(browser, live):
    base, token, sessions = live
    context = browser.new_context(viewport=PHONE, bypass_csp=True)  # CSP bypassed for axe
    page = context.new_page()
    page.goto(f"{base}/q/{token}")
    # 1. The first line: who, where, how many, how long (10 + 7 + 2 goals: 19 questions).
    expect(page.get_by_text("Before your session with Dr Ada Moss at Riverside Clinic: "
                            "3 short questionnaires, about 4 minutes.")).to_be_visible()
    expect(page.get_by_role("button", name="Back to the previous questionnaire")
           ).to_have_count(0)
    no_sideways_scroll(page)
    shot(page, "1-welcome")

    # 3. Item 9 left blank: a second chance, only that question, never forced.
    answer(page, "phq9", 8, "1")
    press(page, "Next")
    expect(page.get_by_role("heading", name="You left one question unanswered")).to_be_visible()
    expect(page.locator("fieldset")).to_have_count(1)
    expect(page.get_by_text("Thoughts that you would be better off dead")).to_be_visible()
    assert axe_findings(page) == []
    no_sideways_scroll(page)
    shot(page, "2-second-chance")
    press(page, "Continue without answering")
    expect(page.get_by_text("Questionnaire 2 of 3")).to_be_visible()

    # 2. Back keeps the answers both ways: the stored page, and the unsent one.
    page.check("input[name=gad7_1][value='2']")
    press(page, "Back to the previous questionnaire")
    expect(page.get_by_text("Questionnaire 1 of 3")).to_be_visible()
    assert page.is_checked("input[name=phq9_1][value='1']")
    assert not page.is_checked("input[name=phq9_9][value='0']")
    shot(page, "3-back-to-phq9")
    page.check("input[name=phq9_1][value='3']")  # a changed answer
    press(page, "Next")
    expect(page.get_by_text("Questionnaire 2 of 3")).to_be_visible()
    assert page.is_checked("input[name=gad7_1][value='2']")
    answer(page, "gad7", 7, "0", skip=(1,))
    press(page, "Next")

    # 4. The goal scale fits 390 px: no sideways scroll, each label inside its box.
    expect(page.get_by_text("Questionnaire 3 of 3")).to_be_visible()
    expect(page.locator("fieldset")).to_have_count(2)
    expect(page.get_by_text("Today I would rate progress to this goal:")).to_have_count(2)
    no_sideways_scroll(page)
    outside = page.evaluate("""() => [...document.querySelectorAll('label.option')].flatMap(
        (box) => { const b = box.getBoundingClientRect();
          return [...box.querySelectorAll('span:not(.visually-hidden), input')].filter((el) => {
            const r = el.getBoundingClientRect();
            return r.left < b.left - 0.5 || r.right > b.right + 0.5 || r.top < b.top - 0.5
              || r.bottom > b.bottom + 0.5 || b.right > window.innerWidth; })
          .map((el) => box.textContent.trim()); })""")
    assert outside == []
    heights = page.evaluate("""() => [...document.querySelectorAll('label.option')].map(
        (box) => box.getBoundingClientRect().height)""")
    assert min(heights) >= 44  # touch targets
    assert axe_findings(page) == []
    shot(page, "4-goals")
    page.get_by_role("radio", name="7", exact=True).first.check()
    page.locator("input[name=gbo_2][value='10']").check()
    press(page, "Finish")
    expect(page.get_by_role("heading", name="Thank you")).to_be_visible()
    shot(page, "5-thanks")
    context.close()

    with sessions() as session:
        rows = {row.instrument_id: row for row in session.scalars(select(Administration))}
        assert rows["phq9"].answers["phq9_1"] == 3 and "phq9_9" not in rows["phq9"].answers
        assert rows["phq9"].scores["critical_unanswered"] == ["phq9_9"]
        assert rows["gad7"].answers["gad7_1"] == 2
        assert rows["gbo"].answers == {"gbo_1": 7, "gbo_2": 10}
        assert "critical_unanswered" in set(session.scalars(select(Alert.kind)))


def test_back_and_the_second_chance_work_without_javascript(browser, live):
    base, token, _sessions = live
    context = browser.new_context(viewport=PHONE, java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{base}/q/{token}")
    answer(page, "phq9", 8, "0")
    press(page, "Next")
    page.check("input[name=phq9_9][value='0']")
    press(page, "Answer")
    expect(page.get_by_text("Questionnaire 2 of 3")).to_be_visible()
    press(page, "Back to the previous questionnaire")
    assert page.is_checked("input[name=phq9_9][value='0']")
    context.close()


def test_a_therapist_retires_a_rated_goal_on_a_phone(browser, live):
    from outcome.db import transaction as write
    from tests.helpers import LIB
    from tests.helpers import submit

    base, _token, sessions = live
    with write(sessions) as session:  # the goals have been rated once
        episode = session.scalar(select(Episode))
        submit(session, episode, LIB.get("gbo"), {"gbo_1": 3, "gbo_2": 5}, 0)
    context = browser.new_context(viewport=PHONE, bypass_csp=True)  # CSP bypassed for axe
    page = context.new_page()
    page.goto(f"{base}/login")
    page.get_by_label("E-mail").fill("t@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    press(page, "Sign in")
    page.goto(f"{base}/clients/C-VISIT2/care")
    expect(page.get_by_role("button", name="Add goal")).to_be_visible()
    no_sideways_scroll(page)
    shot(page, "6-care-goals")
    press(page, "Retire goal 1…")
    expect(page.get_by_text("Its ratings stay on the record, marked as retired.")).to_be_visible()
    no_sideways_scroll(page)
    assert axe_findings(page) == []
    shot(page, "7-retire-confirm")
    page.get_by_label("A new goal in its place").fill("Cook a meal for friends")
    press(page, "Retire this goal")
    expect(page.get_by_text("Goal 1 retired; its ratings are kept.")).to_be_visible()
    expect(page.get_by_text("Cook a meal for friends")).to_be_visible()
    page.goto(f"{base}/clients/C-VISIT2")
    expect(page.get_by_text("(retired ")).to_be_visible()
    no_sideways_scroll(page)
    shot(page, "8-record-retired-goal")
    context.close()
