"""Issue 17 in headless Chromium at phone size (390 px): the admin's delivery page (plain
words, client codes, Retry now) and mail settings, the therapist's notices (a link not
e-mailed, an urgent answer escalated) and the supervisor's. On each page: no sideways
overflow, axe-core (WCAG 2.1 A/AA) finds nothing, no CSP violation or console error; a
screenshot goes to ``test-artifacts/mail/``."""

from __future__ import annotations

import datetime as dt
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from playwright.sync_api import expect
from playwright.sync_api import sync_playwright
from sqlalchemy import select
from werkzeug.serving import make_server

from outcome import schema
from outcome.db import make_engine
from outcome.db import transaction
from outcome.extensions import database
from outcome.models import Alert
from outcome.models import Appointment
from outcome.models import Client
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import OutboundEmail
from outcome.models import SupervisorAssignment
from outcome.models import User
from outcome.services.client_codes import allocate_client_code
from outcome.services.escalation import escalate_overdue
from outcome.services.passwords import hash_password
from tests.helpers import answer
from tests.helpers import artifacts
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = artifacts("mail")
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PHONE = {"width": 390, "height": 844}
PASSWORD = "mail pages in the browser 17"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
LONG_REFUSAL = ("SMTPRecipientsRefused: {'[address]': (550, b'5.1.1 <[address]>: Recipient "
                "address rejected: User unknown in virtual mailbox table; see "
                "https://mail.example.net/errors/550-5.1.1-recipient-unknown-for-details')}")

pytestmark = pytest.mark.browser

CSP_LISTENER = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(
  `${e.violatedDirective} blocked ${e.blockedURI || 'inline'}`));
"""
AXE_RUN = """async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags},
  resultTypes: ['violations']})).violations.map((v) => `${v.id}: ${v.help} at `
  + v.nodes.map((n) => n.target.join(' ')).join(', '))"""
OVERFLOW = """() => ({scrollWidth: document.documentElement.scrollWidth, innerWidth,
  widest: [...document.querySelectorAll('main *')]
    .filter((el) => el.getBoundingClientRect().right > innerWidth + 1)
    .slice(0, 3).map((el) => el.outerHTML.slice(0, 120))})"""


@pytest.fixture(scope="module")
def live(databases, app_factory) -> Iterator[SimpleNamespace]:
    url = databases.new_url()
    engine = make_engine(url)
    schema.upgrade(engine)
    engine.dispose()
    app = app_factory(url, SMTP_HOST="127.0.0.1", SMTP_PORT=free_port(),
                      SMTP_SECURITY="none", MAIL_FROM="clinic@example.org")
    now = dt.datetime.now(dt.UTC)
    secret = hash_password(PASSWORD)
    with app.app_context(), transaction(database(app).session_factory) as session:
        clinic = Clinic(slug="mail-17", name="Harbour Counselling", timezone="Europe/London")
        session.add(clinic)
        session.flush()
        people = {}
        for key, role in (("admin", "admin"), ("therapist", "therapist"),
                          ("supervisor", "supervisor")):
            people[key] = User(clinic_id=clinic.id, email=f"{key}@harbour.example.org",
                               display_name=f"{key.title()} Harbour", password_hash=secret,
                               is_admin=role == "admin", is_therapist=role == "therapist",
                               is_supervisor=role == "supervisor")
            session.add(people[key])
        session.flush()
        session.add(SupervisorAssignment(clinic_id=clinic.id,
                                         supervisor_id=people["supervisor"].id,
                                         therapist_id=people["therapist"].id))
        codes = []
        for n, name in enumerate(("Morgan Quill", "Robin Ashdown-Featherstonehaugh")):
            client = Client(clinic_id=clinic.id, therapist_id=people["therapist"].id,
                            code=allocate_client_code(session), name=name,
                            email=f"client{n}@example.org")
            session.add(client)
            session.flush()
            episode = Episode(clinic_id=clinic.id, client_id=client.id,
                              therapist_id=people["therapist"].id, opened_on=now.date())
            session.add(episode)
            session.flush()
            appointment = Appointment(episode_id=episode.id,
                                      starts_dt=now + dt.timedelta(hours=20 + n))
            session.add(appointment)
            session.flush()
            codes.append(client.code)
            session.add(OutboundEmail(
                clinic_id=clinic.id, kind="link", dedupe_key=f"link:{appointment.id}:pre",
                to_address=client.email, subject="s", status="failed", attempts=6,
                body_text="Hello,\n\nhttp://x/q/[removed after sending]\n",
                next_attempt_dt=now, created_dt=now - dt.timedelta(hours=6),
                last_error=LONG_REFUSAL if n else
                "ConnectionRefusedError: [Errno 111] Connection refused"))
            if n == 0:
                answer(session, episode, [2, 2], item9=2)
        session.add(OutboundEmail(
            clinic_id=clinic.id, kind="digest", dedupe_key="digest:pending", to_address="x@y.z",
            subject="s", body_text="b", status="pending", attempts=2, next_attempt_dt=now,
            created_dt=now, last_error="TimeoutError: timed out"))
        session.flush()
        alert = session.scalar(select(Alert).where(Alert.kind == "critical_item"))
        assert alert is not None
        alert.raised_dt = now - dt.timedelta(hours=50)
        escalate_overdue(session, now, base_url="http://127.0.0.1")
        emails = {k: u.email for k, u in people.items()}
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield SimpleNamespace(base=f"http://127.0.0.1:{server.server_port}", emails=emails,
                          codes=codes)
    server.shutdown()
    database(app).engine.dispose()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed; `make test` installs Debian's chromium package")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


class Phone:
    def __init__(self, browser, base: str) -> None:
        self.base = base
        self.context = browser.new_context(viewport=PHONE)
        self.context.add_init_script(CSP_LISTENER)
        self.context.add_init_script(path=str(AXE))
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text)
                     if m.type == "error" else None)
        self.findings: list[str] = []

    def sign_in(self, email: str) -> None:
        self.page.goto(self.base + "/login")
        self.page.get_by_label("E-mail").fill(email)
        self.page.get_by_label("Password").fill(PASSWORD)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(self.base + "/")

    def check(self, name: str, only: str | None = None) -> None:
        """axe, CSP, console, overflow (of the page, or of the ``only`` elements when the
        rest of the page is another area's), screenshot."""
        page = self.page
        page.wait_for_load_state("load")
        page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
        self.findings += [f"{name}: axe {v}" for v in page.evaluate(AXE_RUN, WCAG_TAGS)]
        self.findings += [f"{name}: CSP {v}" for v in page.evaluate("() => window.__csp")]
        self.findings += [f"{name}: console {e}" for e in self.errors]
        self.errors.clear()
        layout = page.evaluate(OVERFLOW)
        if only is not None:
            right = page.evaluate(
                "(s) => Math.max(...[...document.querySelectorAll(s)].map("
                "(el) => el.getBoundingClientRect().right))", only)
            if right > layout["innerWidth"] + 1:
                self.findings.append(f"{name}: {only} overflows sideways ({right} px)")
        elif layout["scrollWidth"] > layout["innerWidth"]:
            self.findings.append(f"{name}: overflows sideways ({layout['scrollWidth']} px): "
                                 f"{layout['widest']}")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()
        assert not self.findings, "\n".join(self.findings)


def test_the_admin_reads_and_retries_deliveries_on_a_phone(browser, live):
    phone = Phone(browser, live.base)
    phone.sign_in(live.emails["admin"])
    page = phone.page
    page.goto(live.base + "/admin/deliveries")
    expect(page.get_by_text("Could not be delivered: the mail server refused the connection")
           ).to_be_visible()
    expect(page.get_by_text(live.codes[0])).to_be_visible()
    expect(page.get_by_text("Waiting to retry (attempt 3 of 6)")).to_be_visible()
    assert "ConnectionRefusedError" not in page.content()
    phone.check("phone-deliveries")
    page.get_by_role("button", name="Retry now").first.click()
    page.wait_for_load_state("load")
    expect(page.locator(".flash").first).to_be_visible()
    phone.check("phone-deliveries-after-retry")
    page.goto(live.base + "/admin/mail")
    expect(page.get_by_role("heading", name="Mail server", level=1)).to_be_visible()
    phone.check("phone-mail-settings")
    page.get_by_role("button", name="Send a test e-mail").click()
    expect(page.get_by_text("The test e-mail could not be sent: the mail server refused "
                            "the connection.")).to_be_visible()
    phone.check("phone-mail-test-failed")
    page.goto(live.base + "/admin/")
    phone.check("phone-admin-overview")
    phone.close()


def test_the_therapist_and_supervisor_see_their_notices_on_a_phone(browser, live):
    phone = Phone(browser, live.base)
    phone.sign_in(live.emails["therapist"])
    page = phone.page
    expect(page.get_by_text("The urgent answer of Morgan Quill has not been acknowledged "
                            "for 50 hours.")).to_be_visible()
    expect(page.get_by_text("The questionnaire link for Robin Ashdown-Featherstonehaugh")
           ).to_be_visible()
    phone.check("phone-therapist-notices")
    phone.close()
    phone = Phone(browser, live.base)
    phone.sign_in(live.emails["supervisor"])
    expect(phone.page.get_by_text(f"Client {live.codes[0]} of Therapist Harbour")).to_be_visible()
    phone.check("phone-supervisor-home")
    phone.page.goto(live.base + "/supervision/")
    # The figures table is wider than a phone (the supervision page's own layout); the
    # notice above it fits.
    phone.check("phone-supervision", only=".notice, .notice *")
    phone.close()
