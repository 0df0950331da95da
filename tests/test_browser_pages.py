"""Every staff and client page in Chromium at phone and desktop widths (issue 17).

A real server runs the demo clinic (:func:`outcome.services.demo.seed_demo`), with API
tokens, digests and a questionnaire link added, so each page shows its tables and charts.
Every GET route of the app is either visited here (:data:`PAGES`) or skipped with a reason
(:data:`SKIPPED`: downloads, the API, static files); a new route fails
:func:`test_every_page_is_listed` until it is added to one of them, one line each.

- At 390 px (a phone): the page does not scroll sideways
  (``document.documentElement.scrollWidth <= innerWidth``), and every text of a chart is
  at least 11 px as rendered: its font size times the scale the SVG is drawn at, and the
  height of its ``getBoundingClientRect``.
- At 1366 px: no table is wider than the card (or main column) it sits in.

Screenshots go to ``test-artifacts/pages/``.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import threading
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright
from sqlalchemy import select
from werkzeug.serving import make_server

from outcome import schema
from outcome.db import make_engine
from outcome.db import transaction
from outcome.extensions import database
from outcome.extensions import instrument_library
from outcome.models import Alert
from outcome.models import Client
from outcome.models import Episode
from outcome.models import ReportRun
from outcome.models import SupervisorAssignment
from outcome.models import User
from outcome.services.api_tokens import create_token
from outcome.services.demo import seed_demo
from outcome.services.links import issue_link
from tests.helpers import artifacts

ARTIFACTS = artifacts("pages")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}
PASSWORD = "demo password for the browser tests"
MIN_CHART_TEXT_PX = 11.0

pytestmark = pytest.mark.browser


@dataclass(frozen=True)
class World:
    """The running demo clinic and who and what the pages are about."""

    base: str
    emails: dict[str, str]  # role -> e-mail: therapist, supervisor, admin
    client_code: str  # a client of the therapist, with alerts and charts
    supervisee_id: int
    staff_user_id: int
    link_token: str  # a questionnaire link of that client


@dataclass(frozen=True)
class Page:
    """A page to visit: its name (for screenshots), who signs in (``None``: nobody, as a
    client), its endpoint and how to build its address from the world."""

    name: str
    who: str | None
    endpoint: str
    path: Callable[[World], str]


# One line per page. Other pages join here (the guard test below names any GET route
# that is neither here nor in SKIPPED).
PAGES: tuple[Page, ...] = (
    Page("login", None, "auth.login", lambda w: "/login"),
    Page("caseload", "therapist", "home.index", lambda w: "/"),
    Page("caseload-sorted", "therapist", "home.index", lambda w: "/?sort=next&dir=asc"),
    Page("client", "therapist", "record.page", lambda w: f"/clients/{w.client_code}"),
    Page("care", "therapist", "care.page", lambda w: f"/clients/{w.client_code}/care"),
    Page("password", "therapist", "account.password", lambda w: "/account/password"),
    Page("tokens", "therapist", "account.tokens", lambda w: "/account/tokens"),
    Page("supervisor-home", "supervisor", "home.index", lambda w: "/"),
    Page("supervision", "supervisor", "supervision.index", lambda w: "/supervision/"),
    Page("supervision-caseload", "supervisor", "supervision.therapist",
         lambda w: f"/supervision/therapists/{w.supervisee_id}"),
    Page("supervision-client", "supervisor", "supervision.client",
         lambda w: f"/supervision/clients/{w.client_code}"),
    Page("supervision-digests", "supervisor", "supervision.digests",
         lambda w: "/supervision/digests"),
    Page("admin", "admin", "admin.index", lambda w: "/admin/"),
    Page("admin-users", "admin", "admin.users", lambda w: "/admin/users"),
    Page("admin-user", "admin", "admin.user_page", lambda w: f"/admin/users/{w.staff_user_id}"),
    Page("admin-assignments", "admin", "admin.assignments", lambda w: "/admin/assignments"),
    Page("admin-clients", "admin", "admin.clients", lambda w: "/admin/clients"),
    Page("admin-settings", "admin", "admin.settings", lambda w: "/admin/settings"),
    Page("admin-instruments", "admin", "admin.instrument_list", lambda w: "/admin/instruments"),
    Page("admin-audit", "admin", "admin.audit_log", lambda w: "/admin/audit"),
    Page("admin-approvals", "admin", "admin.approvals", lambda w: "/admin/approvals"),
    Page("admin-tokens", "admin", "admin.tokens", lambda w: "/admin/tokens"),
    Page("admin-deliveries", "admin", "admin.deliveries", lambda w: "/admin/deliveries"),
    Page("questionnaire", None, "questionnaire.open_token", lambda w: f"/q/{w.link_token}"),
    Page("questionnaire-support", None, "questionnaire.support", lambda w: "/q/support"),
)

# GET routes that are not pages to look at, and why.
SKIPPED: dict[str, str] = {
    "static": "files",
    "health.healthz": "a probe, not a page",
    "questionnaire.page": "reached through questionnaire.open_token (a link opens it)",
    "record.export_csv": "download", "record.export_fhir": "download",
    "record.report_pdf": "download", "supervision.digest_pdf": "download",
}
SKIPPED_PREFIXES = ("api.", "fhir.")  # the integration API: JSON, not pages

# The widest element that makes a page scroll sideways, and the chart texts below 11 px.
PHONE_CHECK = """(minimum) => {
  const problems = [];
  const root = document.documentElement;
  if (root.scrollWidth > innerWidth) {
    const wide = [...document.querySelectorAll('body *')]
      .filter((el) => el.getBoundingClientRect().right > innerWidth + 1
              && !el.closest('.table-scroll, .chart-scroll'))
      .slice(0, 3).map((el) => el.outerHTML.slice(0, 120));
    problems.push(`scrolls sideways: scrollWidth ${root.scrollWidth} > ${innerWidth}; `
                  + `widest: ${wide.join(' | ')}`);
  }
  let texts = 0;
  for (const text of document.querySelectorAll('svg[role="img"]:not(.spark) text')) {
    if (!text.textContent.trim()) continue;
    texts += 1;
    const box = text.getBoundingClientRect();
    const m = text.getScreenCTM();
    const size = parseFloat(getComputedStyle(text).fontSize) * Math.hypot(m.c, m.d);
    if (size < minimum - 0.01 || box.height < minimum - 0.01) {
      problems.push(`chart text "${text.textContent.slice(0, 30)}" renders at `
                    + `${size.toFixed(1)} px (box ${box.height.toFixed(1)} px high)`);
    }
  }
  return {problems: problems.slice(0, 8), texts};
}"""

# Tables wider than their card (or the main column when not in a card).
DESKTOP_CHECK = """() => {
  const problems = [];
  for (const table of document.querySelectorAll('main table')) {
    const box = table.closest('.card') || table.closest('main');
    const style = getComputedStyle(box);
    const room = box.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const width = table.getBoundingClientRect().width;
    if (width > room + 1) {
      problems.push(`table ${Math.round(width)} px wide in a card with ${Math.round(room)} px: `
                    + table.outerHTML.slice(0, 100));
    }
  }
  return problems;
}"""


@pytest.fixture(scope="module")
def world(databases, tmp_path_factory, app_factory) -> Iterator[World]:
    url = databases.new_url()
    engine = make_engine(url)
    schema.upgrade(engine)
    engine.dispose()
    app = app_factory(url, SECRET_KEY=None,
                      INSTRUMENTS_DIR=str(tmp_path_factory.mktemp("instruments")))
    now = dt.datetime.now(dt.UTC)
    with app.app_context(), transaction(database(app).session_factory) as session:
        library = instrument_library(app)
        seed_demo(session, today=now.date(), password=PASSWORD, library=library)
        world = _pick(session)
        users = {u.id: u for u in session.scalars(select(User))}
        # Tokens with long names, so the token tables are as wide as they get.
        for user_id in (world["therapist_id"], world["admin_id"]):
            user = users[user_id]
            for name in ("Practice EHR nightly export to the regional data warehouse",
                         "Short"):
                create_token(session, user=user, name=name, scopes=("read",),
                             created_by=user, now=now)
        for weeks, status in ((1, "succeeded"), (0, "pending")):
            year, week, _ = (now.date() - dt.timedelta(weeks=weeks)).isocalendar()
            session.add(ReportRun(
                kind="supervisor_digest", period=f"{year}-W{week:02d}",
                recipient_user_id=world["supervisor_id"], status=status,
                finished_dt=now if status == "succeeded" else None,
                content_sha256="0" * 64 if status == "succeeded" else None))
        episode = session.scalar(select(Episode).join(Client).where(
            Client.code == world["client_code"], Episode.closed_on.is_(None)))
        _, token = issue_link(session, episode=episode, purpose="pre", now=now,
                              library=library)
        emails = {role: users[world[f"{role}_id"]].email
                  for role in ("therapist", "supervisor", "admin")}
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield World(base=f"http://127.0.0.1:{server.server_port}", emails=emails,
                client_code=world["client_code"], supervisee_id=world["therapist_id"],
                staff_user_id=world["therapist_id"], link_token=token)
    server.shutdown()
    database(app).engine.dispose()


def _pick(session) -> dict:
    """A therapist with an open critical answer and a supervisor, their client with the
    most open alerts, and the first admin."""
    rows = session.execute(
        select(Client.therapist_id, Client.code, Alert.kind)
        .join(Episode, Episode.id == Alert.episode_id).join(Client, Client.id == Episode.client_id)
        .where(Alert.status == "open", Episode.closed_on.is_(None))).all()
    critical = sorted({r.therapist_id for r in rows if r.kind == "critical_item"})
    assert critical, "the demo clinic has no open critical answer"
    therapist_id = max(critical, key=lambda t: len({r.kind for r in rows
                                                    if r.therapist_id == t}))
    codes = [r.code for r in rows if r.therapist_id == therapist_id]
    client_code = max(sorted(set(codes)), key=codes.count)
    supervisor_id = session.scalar(select(SupervisorAssignment.supervisor_id).where(
        SupervisorAssignment.therapist_id == therapist_id))
    admin_id = session.scalar(select(User.id).where(User.is_admin).order_by(User.id))
    return {"therapist_id": therapist_id, "client_code": client_code,
            "supervisor_id": supervisor_id, "admin_id": admin_id}


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed; `make test` installs Debian's chromium package")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _visit(browser, world: World, viewport: dict, check: Callable) -> tuple[list[str], int]:
    """Visit every page of :data:`PAGES` at ``viewport``, each role in its own browser
    context; ``check(page, where)`` returns the page's problems."""
    problems: list[str] = []
    visited = 0
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for who in (None, "therapist", "supervisor", "admin"):
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        try:
            if who is not None:
                page.goto(world.base + "/login")
                page.get_by_label("E-mail").fill(world.emails[who])
                page.get_by_label("Password").fill(PASSWORD)
                page.get_by_role("button", name="Sign in").click()
                page.wait_for_url(world.base + "/")
            for entry in (p for p in PAGES if p.who == who):
                response = page.goto(world.base + entry.path(world))
                status = response.status if response else None
                where = f"{entry.name} ({entry.path(world)}, {viewport['width']} px)"
                if status != 200:
                    problems.append(f"{where}: status {status}")
                    continue
                visited += 1
                problems += [f"{where}: {p}" for p in check(page)]
                page.screenshot(path=str(ARTIFACTS / f"{entry.name}-{viewport['width']}.png"),
                                full_page=True)
        finally:
            context.close()
    return problems, visited


def test_every_page_is_listed(tmp_path):
    from tests.helpers import new_app

    app = new_app(f"sqlite:///{tmp_path}/routes.db")
    listed = {p.endpoint for p in PAGES}
    missing = sorted(
        rule.endpoint for rule in app.url_map.iter_rules()
        if "GET" in (rule.methods or ()) and rule.endpoint not in listed
        and rule.endpoint not in SKIPPED and not rule.endpoint.startswith(SKIPPED_PREFIXES))
    assert not missing, (f"GET routes neither checked nor skipped: {missing}; add a Page "
                         "to PAGES (or a reason to SKIPPED) in tests/test_browser_pages.py")


def test_every_page_fits_a_phone_and_its_charts_stay_readable(browser, world):
    charts = []

    def check(page) -> list[str]:
        result = page.evaluate(PHONE_CHECK, MIN_CHART_TEXT_PX)
        charts.append(result["texts"])
        return result["problems"]

    problems, visited = _visit(browser, world, PHONE, check)
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems)
    assert visited == len(PAGES)
    assert sum(charts) > 50, "no chart text was measured: the client page lost its charts?"


def test_no_table_is_wider_than_its_card_on_a_laptop(browser, world):
    problems, visited = _visit(browser, world, DESKTOP,
                               lambda page: page.evaluate(DESKTOP_CHECK))
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems)
    assert visited == len(PAGES)


FIRST_CLIENT = """() => {
  const row = document.querySelector('table.caseload tbody tr');
  const box = (el) => el ? el.getBoundingClientRect() : null;
  const parts = {name: box(row.querySelector('td.client a')),
                 colour: box(row.querySelector('.badge')),
                 reason: box(row.querySelector('td.attention .alert'))};
  return Object.fromEntries(Object.entries(parts).map(([k, b]) => [k, b && {
    top: b.top, bottom: b.bottom, left: b.left, right: b.right}]));
}"""


def test_the_first_client_and_their_most_urgent_reason_fit_a_phone_screen(browser, world):
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    try:
        page.goto(world.base + "/login")
        page.get_by_label("E-mail").fill(world.emails["therapist"])
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(world.base + "/")
        parts = page.evaluate(FIRST_CLIENT)
        page.screenshot(path=str(ARTIFACTS / "caseload-first-screen-390.png"))
    finally:
        context.close()
    # The demo's most urgent client has an open alert: its reason is shown first.
    assert parts["reason"] is not None, parts
    for name, box in parts.items():
        assert box["left"] >= 0 and box["right"] <= PHONE["width"], (name, box)
    # Name and colour on the first screen, and the reason begins on it.
    assert parts["name"]["bottom"] <= PHONE["height"], parts
    assert parts["colour"]["bottom"] <= PHONE["height"], parts
    assert parts["reason"]["top"] < PHONE["height"], parts


if os.environ.get("OUTCOME_SKIP_BROWSER") == "1":  # pragma: no cover - local escape hatch
    pytestmark = [pytest.mark.browser, pytest.mark.skip(reason="OUTCOME_SKIP_BROWSER=1")]
