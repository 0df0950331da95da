"""The staff pages in headless Chromium, with axe-core, the CSP and the charts checked on each.

A real server (threaded werkzeug on a loopback port, as in ``test_browser_client``) runs
against a fresh, migrated database of the run's backend holding the demo clinic
(:mod:`outcome.services.demo`: six therapists, 150 clients, months of PHQ-9, GAD-7 and
session check answers, critical answers, ruptures and goals). Therapist, supervisor and admin
sign in through the real login form and walk their pages.

On every page: axe-core (WCAG 2.0/2.1 A and AA rules) finds nothing; no console error,
no uncaught script error and no Content-Security-Policy violation (the policy is
enforced: axe and the CSP listener come in as init scripts, which the policy does not
govern); every chart ``<svg role="img">`` carries a ``<title>`` and a ``<desc>``; a
full-page screenshot goes to ``test-artifacts/dashboard/`` for people to look at.
Problems are collected per test and reported together, one line per finding.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import expect
from playwright.sync_api import sync_playwright
from sqlalchemy import select
from werkzeug.serving import make_server

from outcome.db import transaction
from outcome.extensions import database
from outcome.models import Alert
from outcome.models import Client
from outcome.models import Episode
from outcome.models import ReportRun
from outcome.models import SupervisorAssignment
from outcome.models import User
from tests.helpers import DEMO_NOW
from tests.helpers import DEMO_PASSWORD
from tests.helpers import DEMO_TODAY
from tests.helpers import artifacts
from tests.helpers import full_page_screenshot

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = artifacts("dashboard")
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
PASSWORD = DEMO_PASSWORD
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

pytestmark = pytest.mark.browser

# Runs in every document before the page's own scripts; CSP does not apply to it.
CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'}`
    + ` at ${e.sourceFile || e.documentURI}:${e.lineNumber}`
    + (e.sample ? ` (${e.sample})` : ''));
});
"""

AXE_RUN = """async (tags) => {
  const result = await axe.run(document, {runOnly: {type: 'tag', values: tags},
                                          resultTypes: ['violations']});
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => ({html: n.html, target: n.target.join(' '),
                                summary: n.failureSummary}))}));
}"""

OPEN_DETAILS = """() => document.querySelectorAll('details:not([open])').forEach((d) => {
  d.open = true;
  d.dataset.openedForAxe = '';
})"""
CLOSE_DETAILS = """() => document.querySelectorAll('details[data-opened-for-axe]').forEach((d) => {
  d.open = false;
  delete d.dataset.openedForAxe;
})"""

# Charts (reports.charts.to_svg) must carry <title> and <desc>, referenced by
# aria-labelledby. Caseload sparklines (svg.spark) are named by aria-label instead.
SVG_CHECK = """() => {
  const problems = [];
  for (const svg of document.querySelectorAll('svg[role="img"]')) {
    const snippet = svg.outerHTML.slice(0, 160);
    if (svg.classList.contains('spark')) {
      if (!(svg.getAttribute('aria-label') || '').trim()) {
        problems.push(`sparkline without an aria-label: ${snippet}`);
      }
      continue;
    }
    const title = svg.querySelector(':scope > title');
    const desc = svg.querySelector(':scope > desc');
    if (!title || !title.textContent.trim()) problems.push(`chart without <title>: ${snippet}`);
    if (!desc || !desc.textContent.trim()) problems.push(`chart without <desc>: ${snippet}`);
    const named = (svg.getAttribute('aria-labelledby') || '').split(/\\s+/);
    if (title && title.id && !named.includes(title.id)) {
      problems.push(`chart <title> not in aria-labelledby: ${snippet}`);
    }
  }
  return problems;
}"""

# Either the page does not scroll sideways, or the caseload table sits in a container
# that scrolls (and that container fits the viewport).
OVERFLOW_CHECK = """() => {
  const table = document.querySelector('table.caseload');
  const page = {scrollWidth: document.documentElement.scrollWidth, innerWidth: innerWidth,
                tableWidth: table ? Math.round(table.getBoundingClientRect().width) : null};
  if (page.scrollWidth <= innerWidth) return {ok: true, ...page};
  for (let node = table && table.parentElement; node; node = node.parentElement) {
    const overflow = getComputedStyle(node).overflowX;
    if ((overflow === 'auto' || overflow === 'scroll')
        && node.getBoundingClientRect().right <= innerWidth) {
      return {ok: true, container: node.tagName + '.' + node.className, ...page};
    }
  }
  const wide = [...document.querySelectorAll('main *')]
    .filter((el) => el.getBoundingClientRect().right > innerWidth + 1)
    .slice(0, 5).map((el) => el.outerHTML.slice(0, 100));
  return {ok: false, widest: wide, ...page};
}"""


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


@dataclass(frozen=True)
class LiveClinic:
    """The running demo clinic, and who and what the tests visit in it."""

    base: str
    therapist: str  # e-mail of a therapist with an open critical-answer alert
    client_code: str  # that therapist's client with the critical answer
    supervisor: str
    supervisee_id: int  # the therapist above, supervised by the supervisor
    admin: str
    staff_user_id: int  # for the admin's user detail page


@pytest.fixture(scope="module")
def clinic(demo_databases, tmp_path_factory, app_factory) -> Iterator[LiveClinic]:
    url = demo_databases.new_url()
    folder = tmp_path_factory.mktemp("instruments")  # no installed wording
    app = app_factory(url, SECRET_KEY=None, INSTRUMENTS_DIR=str(folder),
                      clock=lambda: DEMO_NOW)
    today = DEMO_TODAY
    with app.app_context(), transaction(database(app).session_factory) as session:
        picked = _pick(session)
        # Two digests in the supervisor's archive, so the page shows its table.
        for weeks, status in ((1, "succeeded"), (0, "pending")):
            year, week, _ = (today - dt.timedelta(weeks=weeks)).isocalendar()
            session.add(ReportRun(
                kind="supervisor_digest", period=f"{year}-W{week:02d}",
                recipient_user_id=picked["supervisor_id"], status=status,
                finished_dt=DEMO_NOW if status == "succeeded" else None,
                content_sha256="0" * 64 if status == "succeeded" else None))
        emails = dict(session.execute(select(User.id, User.email)).all())
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield LiveClinic(base=f"http://127.0.0.1:{server.server_port}",
                 therapist=emails[picked["therapist_id"]], client_code=picked["client_code"],
                 supervisor=emails[picked["supervisor_id"]],
                 supervisee_id=picked["therapist_id"],
                 admin=emails[picked["admin_id"]], staff_user_id=picked["therapist_id"])
    server.shutdown()
    database(app).engine.dispose()


def _pick(session) -> dict:
    """The therapist whose open episodes have the most kinds of open alert, among those
    with an open critical-answer alert, and their client with the most open alerts."""
    rows = session.execute(
        select(Client.therapist_id, Client.code, Alert.kind)
        .join(Episode, Episode.id == Alert.episode_id).join(Client, Client.id == Episode.client_id)
        .where(Alert.status == "open", Episode.closed_on.is_(None))).all()
    critical = {r.therapist_id for r in rows if r.kind == "critical_item"}
    assert critical, "the demo clinic has no open critical answer"
    kinds = {t: {r.kind for r in rows if r.therapist_id == t} for t in critical}
    therapist_id = max(sorted(critical), key=lambda t: len(kinds[t]))
    with_critical = {r.code for r in rows
                     if r.therapist_id == therapist_id and r.kind == "critical_item"}
    alerts = Counter(r.code for r in rows if r.code in with_critical)
    client_code = max(sorted(alerts), key=lambda code: alerts[code])
    supervisor_id = session.scalar(select(SupervisorAssignment.supervisor_id).where(
        SupervisorAssignment.therapist_id == therapist_id))
    admin_id = session.scalar(select(User.id).where(User.is_admin).order_by(User.id))
    return {"therapist_id": therapist_id, "client_code": client_code,
            "supervisor_id": supervisor_id, "admin_id": admin_id}


class Inspector:
    """One browser context with the CSP enforced; checks each page it is shown."""

    def __init__(self, browser, base: str, viewport=DESKTOP) -> None:
        self.base = base
        self.context = browser.new_context(viewport=viewport)
        self.context.add_init_script(CSP_LISTENER)
        self.context.add_init_script(path=str(AXE))
        self.page = self.context.new_page()
        # (page address, message, address of the resource or script it concerns)
        self.console: list[tuple[str, str, str]] = []
        self.page.on("console", lambda m: self.console.append(
            (self.page.url, m.text, m.location.get("url", ""))) if m.type == "error" else None)
        self.page.on("pageerror", lambda error: self.console.append(
            (self.page.url, f"uncaught {error}", "")))
        self.findings: list[str] = []
        self.pages: list[str] = []

    def goto(self, path: str, status: int = 200):
        response = self.page.goto(self.base + path)
        assert response is not None and response.status == status, (path, response)
        return self.page

    def check(self, name: str, *, document_status: int = 200) -> None:
        """axe, console, CSP and chart checks on the current page; then a screenshot.

        Closed ``<details>`` (score tables, answers) are opened while axe runs, so their
        contents are checked too, and closed again for the screenshot.
        """
        page = self.page
        page.wait_for_load_state("load")
        where = f"{name} ({page.url.removeprefix(self.base)})"
        self.pages.append(where)
        page.evaluate(OPEN_DETAILS)
        for violation in page.evaluate(AXE_RUN, WCAG_TAGS):
            for node in violation["nodes"]:
                summary = (node["summary"] or "").replace("\n", "\n      ")
                self.findings.append(
                    f"{where}: axe {violation['id']} ({violation['impact']}): "
                    f"{violation['help']}\n    at {node['target']}: {node['html'][:300]}"
                    f"\n    {summary}")
        page.evaluate(CLOSE_DETAILS)
        for text in page.evaluate("() => window.__cspViolations"):
            self.findings.append(f"{where}: CSP violation: {text}")
        for address, text, resource in self.console:
            # Chromium logs a document's own error status (the 404 page) as an error.
            if (document_status != 200 and resource == address
                    and f"status of {document_status}" in text):
                continue
            self.findings.append(f"{where}: console error on {address.removeprefix(self.base)}"
                                 f": {text} [{resource.removeprefix(self.base)}]")
        self.console.clear()
        for text in page.evaluate(SVG_CHECK):
            self.findings.append(f"{where}: {text}")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        full_page_screenshot(page, ARTIFACTS / f"{name}.png")

    def sign_in(self, email: str) -> None:
        page = self.goto("/login")
        page.get_by_label("E-mail").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(self.base + "/")

    def close(self) -> None:
        self.context.close()
        assert not self.findings, (
            f"{len(self.findings)} finding(s) on {len(self.pages)} page(s):\n"
            + "\n".join(self.findings))


@pytest.fixture
def inspector(browser, clinic):
    made: list[Inspector] = []

    def make(viewport=DESKTOP) -> Inspector:
        made.append(Inspector(browser, clinic.base, viewport))
        return made[-1]

    yield make
    for one in made:
        one.context.close()


def test_therapist_pages(inspector, clinic):
    view = inspector()
    view.sign_in(clinic.therapist)
    page = view.page
    assert page.locator("table.caseload tbody tr").count() >= 10
    assert page.locator("table.caseload svg.spark").count() > 0
    view.check("therapist-1-caseload")

    # A filter through the form: only clients with open alerts.
    page.get_by_label("Only with open alerts").check()
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**/?*attention=1*")
    rows = page.locator("table.caseload tbody tr")
    assert 0 < rows.count() < 20
    assert page.locator("table.caseload .alert").count() >= rows.count()
    view.check("therapist-2-caseload-filtered")

    view.goto(f"/clients/{clinic.client_code}")
    assert page.locator("figure.chart svg[role=img]").count() >= 3  # PHQ-9, GAD-7, alliance
    assert page.get_by_role("heading", name="Critical answer").count() >= 1
    view.check("therapist-3-client")

    # Acknowledge the critical answer through its form, typing a note.
    alert = page.locator("article.alert-item.status-open").filter(has_text="Critical answer")
    alert.first.get_by_label("What was done (required)").fill(
        "Discussed in session; safety plan reviewed with the client.")
    alert.first.get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_role("status")).to_have_text("Alert acknowledged.")
    expect(page.get_by_text("safety plan reviewed with the client")).to_be_visible()
    view.check("therapist-4-alert-acknowledged")

    view.goto(f"/clients/{clinic.client_code}/care")
    expect(page.get_by_role("heading", name="Sessions")).to_be_visible()
    view.check("therapist-5-care")

    view.goto("/account/password")
    view.check("therapist-6-password")
    page.get_by_label("Current password").fill("not the current password at all")
    page.locator("input[name=new_password]").fill("a brand new passphrase for today")
    page.locator("input[name=confirm]").fill("a brand new passphrase for today")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#current_password-error")).to_be_visible()
    view.check("therapist-7-password-error")
    view.close()


def test_supervisor_pages(inspector, clinic):
    view = inspector()
    view.sign_in(clinic.supervisor)
    page = view.page
    view.check("supervisor-1-home")

    view.goto("/supervision/")
    assert page.locator("table#supervisees tbody tr").count() >= 1
    view.check("supervisor-2-overview")

    view.goto(f"/supervision/therapists/{clinic.supervisee_id}")
    assert page.locator("table.caseload tbody tr").count() >= 10
    assert page.locator("table.caseload", has_text="@").count() == 0
    view.check("supervisor-3-caseload")

    view.goto(f"/supervision/clients/{clinic.client_code}")
    expect(page.get_by_role("heading", name=f"Client {clinic.client_code}")).to_be_visible()
    assert page.locator("figure.chart svg[role=img]").count() >= 3
    view.check("supervisor-4-client")

    view.goto("/supervision/digests")
    assert page.locator("main table tbody tr").count() == 2
    view.check("supervisor-5-digests")
    view.close()


ADMIN_PAGES = (("1-overview", "/admin/"), ("2-users", "/admin/users"),
               ("4-assignments", "/admin/assignments"), ("5-clients", "/admin/clients"),
               ("6-settings", "/admin/settings"), ("7-instruments", "/admin/instruments"),
               ("8-audit", "/admin/audit"), ("9-approvals", "/admin/approvals"),
               ("10-tokens", "/admin/tokens"), ("11-deliveries", "/admin/deliveries"))


def test_admin_pages(inspector, clinic):
    view = inspector()
    view.sign_in(clinic.admin)
    for name, path in ADMIN_PAGES:
        view.goto(path)
        assert view.page.locator("nav.admin-nav [aria-current=page]").count() == 1, path
        view.check(f"admin-{name}")
    view.goto(f"/admin/users/{clinic.staff_user_id}")
    expect(view.page.get_by_role("heading", level=1)).to_be_visible()
    view.check("admin-3-user")
    view.close()


def test_a_therapist_makes_a_personal_token_on_a_phone(inspector, clinic):
    # Issue 16: tokens that read client data are made by the person they act for.
    view = inspector(PHONE)
    view.sign_in(clinic.therapist)
    page = view.goto("/account/tokens")
    expect(page.get_by_role("heading", name="Your API tokens")).to_be_visible()
    view.check("phone-account-tokens")
    page.get_by_label("Name (which system uses it)").fill("Practice EHR")
    with page.expect_navigation():
        page.get_by_role("button", name="Create token").click()
    secret = page.locator("#new-token-secret")
    expect(secret).to_be_visible()
    assert (secret.input_value() or secret.inner_text()).startswith("oc_")
    view.check("phone-account-token-created")
    layout = page.evaluate(OVERFLOW_CHECK)
    view.goto("/admin/tokens", status=404)
    view.close()
    assert layout["ok"], f"the tokens page overflows a phone sideways: {layout['widest']}"


def test_login_and_error_pages(inspector, clinic):
    view = inspector()
    page = view.goto("/login")
    view.check("login")
    page.get_by_label("E-mail").fill(clinic.therapist)
    page.get_by_label("Password").fill("not the right password, sorry")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("do not match")
    view.check("login-error")
    view.goto("/no/such/page", status=404)
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    view.check("error-404", document_status=404)
    view.sign_in(clinic.therapist)
    view.goto("/clients/C-NOSUCH/care", status=404)
    view.check("error-404-signed-in", document_status=404)
    view.close()


def test_caseload_fits_a_phone(inspector, clinic):
    view = inspector(PHONE)
    view.sign_in(clinic.therapist)
    view.check("phone-caseload")
    layout = view.page.evaluate(OVERFLOW_CHECK)
    view.close()
    assert layout["ok"], (
        f"the caseload overflows a {PHONE['width']} px screen sideways: page scrollWidth "
        f"{layout['scrollWidth']} px, table {layout['tableWidth']} px, not in a scrolling "
        f"container; widest elements: {layout['widest']}")


if os.environ.get("OUTCOME_SKIP_BROWSER") == "1":  # pragma: no cover - local escape hatch
    pytestmark = [pytest.mark.browser, pytest.mark.skip(reason="OUTCOME_SKIP_BROWSER=1")]
