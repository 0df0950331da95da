"""Issue 17's acceptance test: day one to discharge in a browser, no command line but one.

``outcome clinic create`` runs as a real process on a fresh, migrated database of the
run's backend and prints the first admin's one-time password. Everything after that is
done in headless Chromium against the app on a loopback port, with a real SMTP server
(aiosmtpd) on loopback receiving the clinic's mail:

1. The admin signs in, changes the first password, sets the crisis contacts and the
   reading hours, creates a therapist and a supervisor and pairs them.
2. The therapist signs in, changes their first password, registers a Russian-speaking
   client with an e-mail address and books a weekly series.
3. The scheduler's jobs (the functions ``outcome.jobs`` registers, called as the
   scheduler calls them) send the link; the client opens it from the e-mail the SMTP
   server received, on a 390-pixel phone, sees the PHQ-9 in its checked Russian wording
   and the notice that the GAD-7 has no checked Russian version, and answers with a
   thought of self-harm (PHQ-9 item 9): the crisis contacts are shown at once. Before
   the last session the client answers again, much better.
4. The therapist sees the critical answer on the caseload, cancels one session (on its
   confirmation page), marks the others attended and ends the episode as completed
   (confirmed on a second page).
5. The supervisor (first sign-in, first password changed) sees the ended episode on the
   supervision page: completed, recovered.

The app's clock is one the test moves (to the days of the sessions). Every page visited
gets a full-page screenshot in ``test-artifacts/day-one/`` and an axe-core run (no
serious or critical finding) with the Content-Security-Policy enforced (axe comes in as
an init script, which the policy does not govern); each of the client's phone pages is
checked not to scroll sideways.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import os
import re
import subprocess
import sys
import threading
import zoneinfo
from pathlib import Path
from typing import ClassVar

import pytest
import yaml
from playwright.sync_api import expect
from werkzeug.serving import make_server

from outcome import jobs
from outcome import schema
from outcome.db import make_engine
from outcome.extensions import database
from tests.helpers import artifacts
from tests.helpers import free_port
from tests.test_browser_client import AXE
from tests.test_browser_client import CHROMIUM
from tests.test_browser_client import PHONE
from tests.test_browser_client import browser  # noqa: F401 (the module's browser fixture)

ROOT = Path(__file__).resolve().parent.parent
OUTCOME = str(Path(sys.executable).parent / "outcome")
ARTIFACTS = artifacts("day-one")
DESKTOP = {"width": 1280, "height": 900}
TIMEZONE = "Europe/London"
CLINIC = "Riverside Therapy"
ADMIN = ("ada@example.org", "a lantern by the quiet harbour")
THERAPIST = ("tom@example.org", "Tom Therapist", "seven grey herons over the weir")
SUPERVISOR = ("sue@example.org", "Sue Supervisor", "an old bridge under autumn rain")
CLIENT_NAME, CLIENT_EMAIL = "Анна Смирнова", "anna@example.org"
RU_PHQ9 = yaml.safe_load((ROOT / "questionnaires" / "definitions" / "phq9.yaml")
                         .read_text(encoding="utf-8"))["translations"]["ru"]

pytestmark = [pytest.mark.browser, pytest.mark.slow]

AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} at `
                + v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', '));
}"""


class Walk:
    """The pages seen by one person in one browser context: each is photographed and
    checked (axe; on a phone, no sideways scrolling); findings are kept for the end."""

    count: ClassVar[int] = 0
    findings: ClassVar[list[str]] = []

    def __init__(self, chromium, base: str, who: str, viewport=DESKTOP) -> None:
        self.base, self.who, self.viewport = base, who, viewport
        self.context = chromium.new_context(viewport=viewport)
        self.context.add_init_script(path=str(AXE))
        self.page = self.context.new_page()

    def check(self, name: str) -> None:
        page = self.page
        page.wait_for_load_state("load")
        Walk.count += 1
        label = f"{Walk.count:02d}-{self.who}-{name}"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{label}.png"), full_page=True)
        where = f"{label} ({page.url.removeprefix(self.base)})"
        Walk.findings.extend(f"{where}: axe {text}" for text in page.evaluate(AXE_RUN))
        if self.viewport == PHONE:
            width = page.evaluate("document.documentElement.scrollWidth")
            if width > PHONE["width"]:
                Walk.findings.append(f"{where}: {width}px wide on a {PHONE['width']}px phone")

    def goto(self, path: str) -> None:
        response = self.page.goto(self.base + path)
        assert response is not None and response.ok, (path, response and response.status)

    def press(self, name: str, *, within=None, exact: bool = False) -> None:
        """Press the button (or a link styled as one) called ``name`` and wait for the
        page it leads to."""
        scope = within if within is not None else self.page
        with self.page.expect_navigation():
            scope.get_by_role("button", name=name, exact=exact).click()

    def follow(self, name: str, *, exact: bool = False) -> None:
        with self.page.expect_navigation():
            self.page.get_by_role("link", name=name, exact=exact).click()

    def sign_in(self, address: str, password: str) -> None:
        self.goto("/login")
        self.check("sign-in")
        self.page.fill("input[name=email]", address)
        self.page.fill("input[name=password]", password)
        self.press("Sign in")

    def first_password(self, given: str, own: str) -> None:
        """The forced change of a password somebody else chose; ends on the start page."""
        assert self.page.url == f"{self.base}/account/password", self.page.url
        expect(self.page.get_by_text("chosen by somebody else")).to_be_visible()
        self.check("first-password")
        self.page.fill("input[name=current_password]", given)
        self.page.fill("input[name=new_password]", own)
        self.page.fill("input[name=confirm]", own)
        self.press("Change password")
        assert self.page.url == f"{self.base}/", self.page.url

    def close(self) -> None:
        self.context.close()


class Clock:
    """The app's clock: it moves only when the test moves it."""

    def __init__(self, start: dt.datetime) -> None:
        self.current = start

    def __call__(self) -> dt.datetime:
        return self.current


def day_one() -> dt.datetime:
    """The first Monday after today, 08:00 UTC: the clinic is created before it."""
    today = dt.datetime.now(dt.UTC).date()
    monday = today + dt.timedelta(days=7 - today.weekday())
    return dt.datetime.combine(monday, dt.time(8, 0), tzinfo=dt.UTC)


class Inbox:
    """aiosmtpd handler that keeps every message it is sent."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content,
                                                      policy=email.policy.default))
        return "250 OK"


@pytest.fixture
def live(fresh_database_url, tmp_path, app_factory):
    """The clinic created by ``outcome clinic create``; the app on a loopback port with its
    clock and an SMTP server on loopback. Yields (base, app, clock, inbox, admin password)."""
    from aiosmtpd.controller import Controller

    assert Path(CHROMIUM).exists() and AXE.exists()
    engine = make_engine(fresh_database_url)
    schema.upgrade(engine)
    engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTCOME_")}
    env.update(OUTCOME_INSTANCE_PATH=str(tmp_path / "instance"),
               OUTCOME_DATABASE_URL=fresh_database_url, OUTCOME_SECRET_KEY="s" * 40,
               PYTHONPATH=str(ROOT))
    created = subprocess.run([OUTCOME, "clinic", "create", "--name", CLINIC, "--timezone",
                              TIMEZONE, "--admin-email", ADMIN[0], "--admin-name", "Ada Admin"],
                             env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert created.returncode == 0, created.stdout + created.stderr
    printed = re.search(r"One-time password .*: (\S+)", created.stdout)
    assert printed, created.stdout

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    clock = Clock(day_one())
    app = app_factory(fresh_database_url, instance_path=tmp_path / "instance", clock=clock,
                      SECRET_KEY="s" * 40, SMTP_HOST="127.0.0.1", SMTP_PORT=controller.port,
                      SMTP_SECURITY="none", MAIL_FROM="clinic@example.org")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    app.config["BASE_URL"] = base
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base, app, clock, inbox, printed.group(1)
    finally:
        server.shutdown()
        controller.stop()
        database(app).engine.dispose()


def scheduler(app, clock) -> None:
    """What the scheduler process does at this moment: queue links, deliver the outbox."""
    jobs.send_links(app, now=clock())
    _sent, retrying, failed = jobs.deliver_mail(app, now=clock())
    assert (retrying, failed) == (0, 0)


def link_from(message) -> str:
    body = message.get_content()
    found = re.search(r"http://127\.0\.0\.1:\d+/q/[A-Za-z0-9_-]{43}", body)
    assert found, body
    return found.group()


def local(when: dt.datetime) -> dt.datetime:
    return when.astimezone(zoneinfo.ZoneInfo(TIMEZONE))


def test_day_one_to_discharge(browser, live):  # noqa: F811
    base, app, clock, inbox, one_time = live
    Walk.count, Walk.findings = 0, []
    for old in ARTIFACTS.glob("*.png") if ARTIFACTS.exists() else ():
        old.unlink()

    # --- 1. The admin: first password, crisis contacts and hours, staff, supervision ---
    admin = Walk(browser, base, "admin")
    admin.sign_in(ADMIN[0], one_time)
    admin.first_password(one_time, ADMIN[1])
    page = admin.page
    expect(page.get_by_role("heading", name="Setup is not finished")).to_be_visible()
    admin.check("checklist")
    admin.follow("Set crisis contacts and reading hours")
    page.fill("#contact-1-label", "Crisis line")
    page.fill("#contact-1-phone", "+44 800 123 4567")
    page.fill("#contact-1-note", "24 hours, free")
    for day in range(5):  # Monday to Friday, 09:00 to 17:00
        page.check(f"input[name=hours-{day}-open]")
        page.fill(f"#hours-{day}-opens", "09:00")
        page.fill(f"#hours-{day}-closes", "17:00")
    admin.check("crisis-form")
    admin.press("Save crisis contacts and hours")
    expect(page.get_by_text("Crisis contacts and reading hours saved.")).to_be_visible()
    admin.check("crisis-saved")
    admin.goto("/")
    expect(page.get_by_role("heading", name="Setup is not finished")).to_have_count(0)

    passwords = {}
    for address, name, _own in (THERAPIST, SUPERVISOR):
        admin.goto("/admin/users")
        page.fill("#new-email", address)
        page.fill("#new-name", name)
        role = "therapist" if address == THERAPIST[0] else "supervisor"
        page.set_checked("input[name=role][value=therapist]", role == "therapist")
        page.set_checked("input[name=role][value=supervisor]", role == "supervisor")
        admin.check(f"new-{role}")
        admin.press("Add account")
        expect(page.get_by_text(f"Account created for {name}.")).to_be_visible()
        passwords[address] = page.input_value("#generated-password")
        admin.check(f"{role}-created")
    admin.goto("/admin/assignments")
    page.select_option("#pair-supervisor", label=SUPERVISOR[1])
    page.select_option("#pair-therapist", label=THERAPIST[1])
    admin.check("assignments")
    admin.press("Add", exact=True)
    expect(page.get_by_text(f"{SUPERVISOR[1]} now supervises {THERAPIST[1]}.")).to_be_visible()
    admin.check("paired")
    admin.close()

    # --- 2. The therapist: first password, a Russian-speaking client, a weekly series ---
    therapist = Walk(browser, base, "therapist")
    therapist.sign_in(THERAPIST[0], passwords[THERAPIST[0]])
    therapist.first_password(passwords[THERAPIST[0]], THERAPIST[2])
    page = therapist.page
    therapist.check("caseload-empty")
    therapist.follow("Register a client")
    page.fill("#name", CLIENT_NAME)
    page.fill("#email", CLIENT_EMAIL)
    page.select_option("#locale", "ru")
    therapist.check("register")
    therapist.press("Register")
    code = re.fullmatch(rf"{re.escape(base)}/clients/([^/?]+)", page.url).group(1)
    expect(page.get_by_text(f"{CLIENT_NAME} is registered ({code})")).to_be_visible()
    therapist.check("client-record")
    therapist.follow("Sessions, goals and links")
    first = local(clock()).replace(hour=10, minute=0) + dt.timedelta(days=1)  # Tuesday
    page.fill("input[name=date]", first.strftime("%Y-%m-%d"))
    page.fill("input[name=time]", "10:00")
    page.fill("input[name=weekly]", "4")
    therapist.check("care-booking")
    therapist.press("Book", exact=True)
    expect(page.get_by_text("Booked 4 session(s).")).to_be_visible()
    sessions = page.locator("table a[href*='/sessions/']")
    expect(sessions).to_have_count(4)
    appointment_paths = [sessions.nth(i).get_attribute("href") for i in range(4)]
    therapist.check("care-booked")
    therapist.close()

    # --- 3. The link e-mail, and the client's answers in Russian on a phone ---
    clock.current += dt.timedelta(hours=4)  # Monday noon: within a day of the session
    scheduler(app, clock)
    assert [m["To"] for m in inbox.messages] == [CLIENT_EMAIL]
    [message] = inbox.messages
    assert message["Subject"] == f"Перед вашей встречей в {CLINIC}"  # in her language
    assert message.get_content().startswith("Здравствуйте!")
    for clinical in ("PHQ", "GAD", "depress", "anxi", "score"):
        assert clinical not in message.get_content()  # a link, never clinical content
    link = link_from(message)
    clock.current += dt.timedelta(hours=7)  # Monday evening, at home
    client = Walk(browser, base, "client", viewport=PHONE)
    client.page.goto(link)
    page = client.page
    # Issue 20: her first link asks for consent first, in her language.
    assert page.url == f"{base}/q/consent"  # the token left the address bar
    expect(page.get_by_text("Что собирается", exact=False)).to_be_visible()
    client.check("consent-russian")
    client.press(re.compile("Согласиться|Agree"))
    assert page.url == f"{base}/q/"
    assert page.locator("html").get_attribute("lang") == "ru"
    expect(page.get_by_text(RU_PHQ9["stem"])).to_be_visible()
    expect(page.get_by_text(RU_PHQ9["items"]["phq9_9"])).to_be_visible()
    expect(page.get_by_text("Little interest or pleasure")).to_have_count(0)
    # The GAD-7 has no checked Russian version: said before starting.
    expect(page.locator(".language-notice")).to_contain_text("GAD-7")
    client.check("phq9-russian")
    for item in range(1, 9):
        page.check(f"input[name=phq9_{item}][value='2']")
    page.check("input[name=phq9_9][value='1']")  # a thought of self-harm: critical
    client.press(re.compile("Далее|Next"))
    assert page.url == f"{base}/q/support", page.url
    expect(page.get_by_text("+44 800 123 4567")).to_be_visible()
    client.check("support")
    with page.expect_navigation():
        page.get_by_role("link", name=re.compile("Продолжить|Continue")).click()
    expect(page.get_by_role("heading", name=re.compile("GAD-7|anxiety", re.I))).to_be_visible()
    expect(page.locator(".language-notice")).to_contain_text("GAD-7")
    assert page.locator("h1").get_attribute("lang") == "en"  # marked as English
    client.check("gad7-in-english")
    for item in range(1, 8):
        page.check(f"input[name=gad7_{item}][value='2']")
    client.press(re.compile("Готово|Завершить|Finish"))
    client.check("thanks")
    client.close()

    # --- 4a. Session 1: the therapist sees the signal, marks it, cancels session 3 ---
    clock.current = dt.datetime.combine(first.date(), dt.time(11, 0),
                                        tzinfo=first.tzinfo).astimezone(dt.UTC)
    therapist = Walk(browser, base, "therapist")
    therapist.sign_in(THERAPIST[0], THERAPIST[2])
    page = therapist.page
    row = page.locator("table.caseload tbody tr").filter(has_text=CLIENT_NAME)
    signal = row.locator(".attention .alert-critical_item")
    expect(signal).to_contain_text("self-harm were reported (PHQ-9 item 9)")
    expect(signal).to_contain_text("Answer: 1 (Several days)")
    expect(signal).to_contain_text("(open 1 day)")  # given yesterday evening
    therapist.check("caseload-signal")
    # In the session: the critical answer is talked through and acknowledged.
    with page.expect_navigation():
        row.get_by_role("link", name=CLIENT_NAME).click()
    # The record says which language each form was answered in: the GAD-7 in English.
    answered = page.locator("details.administration summary")
    expect(answered.filter(has_text="PHQ-9")).to_contain_text("score 17")
    expect(answered.filter(has_text="PHQ-9")).to_contain_text("answered in Russian")
    expect(answered.filter(has_text="GAD-7")).to_contain_text("answered in English")
    alert = page.locator("article.alert-item.status-open").filter(has_text="PHQ-9 item 9")
    alert.get_by_label("What was done (required)").fill(
        "Talked through in session; safety plan made together.")
    therapist.press("Acknowledge", within=alert)
    expect(page.get_by_text("Alert acknowledged.")).to_be_visible()
    expect(page.locator("article.alert-item.status-open")).to_have_count(0)
    therapist.check("alert-acknowledged")
    therapist.goto(appointment_paths[0])
    therapist.press("Attended")
    expect(page.get_by_role("status").or_(page.locator(".flash"))).to_contain_text("Saved.")
    therapist.check("session-1-attended")
    therapist.goto(appointment_paths[2])
    therapist.follow("Cancel this appointment…")
    expect(page.get_by_role("heading", name="Cancel this appointment?")).to_be_visible()
    therapist.check("session-3-confirm-cancel")
    therapist.press("Yes, cancel it")
    expect(page.get_by_text("The appointment was cancelled.")).to_be_visible()
    therapist.check("session-3-cancelled")
    therapist.close()

    # --- 3b. Before the last session the client answers again, much better ---
    last = first + dt.timedelta(weeks=3)
    clock.current = (last - dt.timedelta(hours=22)).astimezone(dt.UTC)
    scheduler(app, clock)
    assert [m["To"] for m in inbox.messages] == [CLIENT_EMAIL] * 2
    client = Walk(browser, base, "client", viewport=PHONE)
    page = client.page
    page.goto(link_from(inbox.messages[1]))
    expect(page.get_by_text(RU_PHQ9["items"]["phq9_1"])).to_be_visible()
    client.check("phq9-again")
    for item in range(1, 10):
        page.check(f"input[name=phq9_{item}][value='0']")
    client.press(re.compile("Далее|Next"))
    for item in range(1, 8):
        page.check(f"input[name=gad7_{item}][value='0']")
    client.check("gad7-again")
    client.press(re.compile("Готово|Завершить|Finish"))
    client.check("thanks-again")
    client.close()

    # --- 4b. After the last session: the others attended, the episode ends ---
    clock.current = dt.datetime.combine(last.date(), dt.time(11, 0),
                                        tzinfo=last.tzinfo).astimezone(dt.UTC)
    therapist = Walk(browser, base, "therapist")
    therapist.sign_in(THERAPIST[0], THERAPIST[2])
    page = therapist.page
    for number in (2, 4):
        therapist.goto(appointment_paths[number - 1])
        therapist.press("Attended")
        expect(page.get_by_text("Saved.")).to_be_visible()
        therapist.check(f"session-{number}-attended")
    therapist.goto(f"/clients/{code}/sessions")
    therapist.check("sessions-history")
    therapist.goto(f"/clients/{code}")
    therapist.follow("End the episode")
    page.check("input[name=reason][value=completed]")
    therapist.check("end-episode")
    therapist.press("Continue")
    expect(page.get_by_role("heading", name="Confirm: end the episode")).to_be_visible()
    therapist.check("end-episode-confirm")
    therapist.press("End the episode")
    expect(page.get_by_text("The episode has ended (")).to_be_visible()
    therapist.check("episode-ended")
    therapist.close()

    # --- 5. The supervisor: the week's figures show the ended episode by reason ---
    supervisor = Walk(browser, base, "supervisor")
    supervisor.sign_in(SUPERVISOR[0], passwords[SUPERVISOR[0]])
    supervisor.first_password(passwords[SUPERVISOR[0]], SUPERVISOR[2])
    page = supervisor.page
    supervisor.goto("/supervision/")
    reasons = page.locator("#end-reasons tbody tr")
    expect(reasons).to_have_count(1)
    cells = reasons.first.locator("th, td")
    # Completed as planned: 1 ended, and 1 recovered (PHQ-9 17 at intake, 0 at the end).
    assert cells.all_inner_texts() == ["Completed as planned", "1", "1", "0", "0", "0", "0",
                                       "0"], cells.all_inner_texts()
    expect(page.locator("#supervisees")).to_contain_text(THERAPIST[1])
    figures = page.locator("#supervisees tbody tr").filter(has_text=THERAPIST[1])
    expect(figures).to_contain_text("1 ended, 1 with a change score")
    expect(figures.locator("td").nth(3)).to_have_text("0")  # no open alert left
    supervisor.check("supervision")
    supervisor.close()

    assert not Walk.findings, (f"{len(Walk.findings)} finding(s) on {Walk.count} pages:\n"
                               + "\n".join(Walk.findings))
