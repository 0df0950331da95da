"""Issue 19's acceptance test: after the signal, the whole loop in a browser.

The demo clinic (conftest's ``demo_databases``) on a loopback port, its clock moved by the
test, with a real SMTP server (aiosmtpd) on loopback receiving the clinic's mail; headless
Chromium, one browser and one server for the module:

1. A demo client with an e-mail address, not red, without a plan or a check, answers
   the PHQ-9 badly through a questionnaire link on a 390-pixel phone: the episode turns
   red, and the caseload and the record say so, naming the PHQ-9.
2. The therapist (desktop) starts the offered support check from the record; the
   outbox's own send function (:func:`outcome.jobs.deliver_mail`) e-mails the link; the
   client opens it from that e-mail on a phone and answers each page.
3. The results: each domain's numbers, its rule's sentence with its source, and the
   suggestions, against the answers given.
4. The plan: one suggestion accepted, one edited, one declined, a note and a review date;
   the not-on-track alert is resolved by the plan and gone from the open alerts.
5. The supervisor's agenda shows the case by code (the client's name on none of the
   supervisor's pages) with its plan state; a review is recorded; on its follow-up date
   the row shows it.
6. Fidelity: "red cases with an action plan within 7 days" for that therapist goes from
   n/N to (n+1)/(N+1) with the plan (the new alert is inside its 7 days, so it is not
   counted until a plan comes); "plans reviewed" does not move (the new plan's review
   date is ahead).

Each page gets a full-page screenshot in ``test-artifacts/support-loop/`` and axe-core
(WCAG A/AA, as tests/test_browser_pages.py runs it: nothing serious or critical); the
client's phone pages must not scroll sideways. The data the pages show is the point, so
this runs on both backends.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from werkzeug.serving import make_server

from outcome import jobs
from outcome.db import transaction
from outcome.extensions import database
from outcome.extensions import instrument_library
from outcome.models import Alert
from outcome.models import Client
from outcome.models import Episode
from outcome.models import SupervisorAssignment
from outcome.models import SupportCheck
from outcome.models import User
from outcome.services import support
from outcome.services.links import issue_link
from outcome.services.signals import colour_history
from tests.helpers import DEMO_NOW
from tests.helpers import DEMO_PASSWORD
from tests.helpers import artifacts
from tests.helpers import free_port
from tests.test_browser_day_one import Clock
from tests.test_browser_day_one import Inbox
from tests.test_browser_day_one import Walk
from tests.test_browser_day_one import link_from
from tests.test_browser_pages import DESKTOP
from tests.test_browser_pages import PHONE
from tests.test_browser_pages import axe_findings
from tests.test_browser_pages import browser  # noqa: F401  (a fixture)
from tests.test_support_pages import ANSWERS

ARTIFACTS = artifacts("support-loop")

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@dataclass(frozen=True)
class Loop:
    """The running demo clinic and the case the loop follows."""

    base: str
    app: object
    clock: Clock
    inbox: Inbox
    code: str
    name: str
    email: str
    therapist: str  # e-mail
    therapist_name: str
    supervisor: str  # e-mail
    token: str  # a questionnaire link of the client (PHQ-9 in it)


class Step(Walk):
    """:class:`tests.test_browser_day_one.Walk` with this test's folder and axe-core run
    as tests/test_browser_pages.py runs it (WCAG 2.0/2.1 A and AA tags)."""

    count: ClassVar[int] = 0
    findings: ClassVar[list[str]] = []

    def check(self, name: str) -> None:
        page = self.page
        page.wait_for_load_state("load")
        Step.count += 1
        label = f"{Step.count:02d}-{self.who}-{name}-{self.viewport['width']}"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{label}.png"), full_page=True)
        where = f"{label} ({page.url.removeprefix(self.base)})"
        Step.findings.extend(f"{where}: {text}" for text in axe_findings(page))
        if self.viewport == PHONE:
            width = page.evaluate("document.documentElement.scrollWidth")
            if width > PHONE["width"]:
                Step.findings.append(f"{where}: {width}px wide on a {PHONE['width']}px phone")

    def sign_in(self, address: str, password: str = DEMO_PASSWORD) -> None:
        self.goto("/login")
        self.page.fill("input[name=email]", address)
        self.page.fill("input[name=password]", password)
        self.press("Sign in")


def _pick(session, library, now: dt.datetime) -> dict:
    """An open episode on the PHQ-9 whose client has an e-mail address and whose therapist
    has a supervisor; with three or more scores, the last not red, no open alert a plan
    and no open alert, check or plan; and a questionnaire link of it asking the PHQ-9."""
    for episode, client in session.execute(
            select(Episode, Client).join(Client, Client.id == Episode.client_id)
            .where(Episode.closed_on.is_(None), Client.email.is_not(None))
            .order_by(Client.code)).all():
        supervisor_id = session.scalar(select(SupervisorAssignment.supervisor_id).where(
            SupervisorAssignment.therapist_id == episode.therapist_id))
        if supervisor_id is None or support.main_measure(session, episode) != "phq9":
            continue
        if session.scalar(select(SupportCheck.id).where(
                SupportCheck.episode_id == episode.id)) is not None \
                or support.plans_for(session, episode.id):
            continue
        if session.scalar(select(Alert.id).where(
                Alert.episode_id == episode.id, Alert.status == "open")) is not None:
            continue
        history = colour_history(session, episode, "phq9", library)
        if len(history) < 3 or history[-1].colour == "red":
            continue
        link, token = issue_link(session, episode=episode, purpose="pre", now=now,
                                 library=library)
        if "phq9" not in link.battery:
            continue
        therapist = session.get_one(User, episode.therapist_id)
        return {"code": client.code, "name": client.name, "email": client.email,
                "therapist": therapist.email, "therapist_name": therapist.display_name,
                "supervisor": session.get_one(User, supervisor_id).email, "token": token}
    raise AssertionError("no demo client fits the loop")


@pytest.fixture(scope="module")
def loop(databases, demo_databases, tmp_path_factory, app_factory) -> Iterator[Loop]:
    """A copy of the demo clinic served on loopback, on a clock the test moves (from
    ``DEMO_NOW``), its mail going to an SMTP server on loopback."""
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    clock = Clock(DEMO_NOW)
    app = app_factory(demo_databases.new_url(), clock=clock,
                      instance_path=tmp_path_factory.mktemp("loop-instance"),
                      SECRET_KEY="s" * 40, SMTP_HOST="127.0.0.1", SMTP_PORT=controller.port,
                      SMTP_SECURITY="none", MAIL_FROM="clinic@example.org")
    with app.app_context(), transaction(database(app).session_factory) as session:
        case = _pick(session, instrument_library(app), clock())
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    app.config["BASE_URL"] = base
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield Loop(base=base, app=app, clock=clock, inbox=inbox, **case)
    finally:
        server.shutdown()
        controller.stop()


def _answer_pages(client: Step, values: dict[str, dict[str, int]]) -> list[str]:
    """Answer each page of a questionnaire link (``values``: instrument -> item -> value;
    items not given get their first choice) until the thanks page; the instruments asked."""
    page = client.page
    asked = []
    for _ in range(12):
        names = page.locator("main form input[type=radio]").evaluate_all(
            "(els) => [...new Set(els.map((e) => e.name))]")
        if not names:
            break
        instrument = next((i for i in values if any(n in values[i] for n in names)), "")
        asked.append(instrument or names[0])
        client.check(f"page-{len(asked)}")
        for name in names:
            value = values.get(instrument, {}).get(name)
            group = page.locator(f"main form input[type=radio][name='{name}']")
            (group.first if value is None else
             page.locator(f"main form input[type=radio][name='{name}'][value='{value}']")
             ).check()
            assert group.count() > 0
        client.press(re.compile("Next|Finish|Done|Send", re.I))
    return asked


def _fidelity(walk: Step, therapist_name: str) -> dict[str, str]:
    """The supervisor's fidelity figures of one therapist: figure name -> its text."""
    walk.goto("/supervision/fidelity")
    card = walk.page.locator("section.fidelity").filter(
        has=walk.page.get_by_role("heading", name=therapist_name, exact=True))
    expect(card).to_have_count(1)
    names = card.locator("dt").all_inner_texts()
    values = card.locator("dd").all_inner_texts()
    return dict(zip(names, values, strict=True))


def _share(text: str) -> tuple[int, int]:
    found = re.search(r"\((\d+)/(\d+)\)", text)
    assert found, text
    return int(found.group(1)), int(found.group(2))



def _day(value: dt.date) -> str:
    """A date as the pages write it in English ("Dec 6, 2026")."""
    return f"{value:%b} {value.day}, {value.year}"

PLAN_WITHIN = "Red cases (episodes with a not-on-track alert) with an action plan within 7 days"
REVIEWED = "Action plans reviewed (closed or revised on or after their review date)"


def test_red_to_plan_to_supervision(browser, loop):  # noqa: F811
    Step.count, Step.findings = 0, []
    for old in ARTIFACTS.glob("*.png") if ARTIFACTS.exists() else ():
        old.unlink()

    supervisor = Step(browser, loop.base, "supervisor", DESKTOP)
    supervisor.sign_in(loop.supervisor)

    # --- 1. The client answers the PHQ-9 badly on a phone: the episode turns red ---
    client = Step(browser, loop.base, "client", PHONE)
    client.goto(f"/q/{loop.token}")
    phq9 = {f"phq9_{i}": 3 for i in range(1, 9)} | {"phq9_9": 0}  # 24, no self-harm
    asked = _answer_pages(client, {"phq9": phq9})
    assert "phq9" in asked, asked
    client.check("thanks")
    client.close()

    therapist = Step(browser, loop.base, "therapist", DESKTOP)
    therapist.sign_in(loop.therapist)
    page = therapist.page
    row = page.locator("table.caseload tbody tr").filter(has_text=loop.code)
    expect(row.locator("td").nth(1)).to_contain_text("Red: not on track")
    expect(row.locator("td").nth(1)).to_contain_text("(PHQ-9)")
    expect(row).to_contain_text(re.compile(r"Red: PHQ-9 24 at session \d+, \d+ at intake"))
    therapist.check("caseload-red")
    therapist.goto(f"/clients/{loop.code}")
    alert = page.locator("#alerts article.alert-item.status-open")
    expect(alert).to_have_count(1)
    expect(alert.get_by_role("heading")).to_contain_text("Not on track")
    expect(alert).to_contain_text(re.compile(r"Red: PHQ-9 24 at session \d+"))
    therapist.check("record-red")

    # --- 2. The therapist starts the support check; the client answers it by e-mail ---
    loop.clock.current += dt.timedelta(minutes=5)
    offer = page.locator("#support .offer")
    expect(offer).to_contain_text("PHQ-9")
    therapist.press("Start the support check", within=offer)
    expect(page.get_by_text("The link has been e-mailed to the client\u2019s address.")
           ).to_be_visible()
    therapist.check("check-started")
    jobs.deliver_mail(loop.app, now=loop.clock())
    [message] = [m for m in loop.inbox.messages if m["To"] == loop.email]
    body = message.get_content()
    for clinical in ("PHQ", "Red", "track", "deteriorat", "score", "support", "plan",
                     loop.name):
        assert clinical not in body + message["Subject"], body  # a link, nothing clinical
    loop.clock.current += dt.timedelta(minutes=5)
    client = Step(browser, loop.base, "client", PHONE)
    client.page.goto(link_from(message))
    asked = _answer_pages(client, ANSWERS)
    assert asked == ["readiness_check", "support_people_check", "life_events_check"], asked
    client.check("check-thanks")
    client.close()

    # --- 3. The results: each domain's numbers, rule, source and verdict ---
    loop.clock.current += dt.timedelta(minutes=5)
    therapist.goto(f"/clients/{loop.code}")
    with page.expect_navigation():
        page.locator("#support").get_by_role(
            "link", name="Support check answered: see its results").click()
    cells = {r.locator("th").inner_text(): r.locator("td").all_inner_texts()
             for r in page.locator("table.support-results tbody tr").all()}
    why = dict(zip(page.locator("dl.explanations dt").all_inner_texts(),
                   page.locator("dl.explanations dd").all_inner_texts(), strict=True))
    # The answers of tests/test_support_pages.ANSWERS against questionnaires/support/
    # rules.yaml: readiness 3 on the 0-10 question, flagged at <= 5 (project default);
    # people around me 8 + 8 + 8 = 24, flagged at <= 15 (project default); one life
    # event, flagged at >= 1 (project default). The alliance is the episode's own recent
    # session check, not asked again, judged by the rupture rules (no open rupture).
    assert cells["Motivation"] == ["Readiness (not validated)", "3", "\u2264 5", "Flagged"]
    assert why["Motivation"] == (
        "Readiness (not validated) total 3 is at or below 5 (project default, the middle "
        "of the 0-10 scale; unverified). Flagged.")
    assert cells["Social support"] == ["People around me (not validated)", "24",
                                       "\u2264 15", "Not flagged"]
    assert why["Social support"] == (
        "People around me (not validated) total 24 is not at or below 15 (project "
        "default, half of the 0-30 range; unverified). Not flagged.")
    assert cells["Life events"] == ["Life events (not validated)", "1", "\u2265 1",
                                    "Flagged"]
    assert why["Life events"] == (
        "Life events (not validated) total 1 is at or above 1 (project default, any "
        "event; unverified). Flagged.")
    measure, score, cutoff, verdict = cells["Alliance"]
    assert measure == ("Session check (not validated) (the episode\u2019s own score, not "
                       "asked again)") and (cutoff, verdict) == ("\u2013", "Not flagged")
    assert why["Alliance"] == (
        f"Session check (not validated), from the episode's own series, total {score}: no "
        "cutoff decides this domain on this measure (not a validated measure, no cutoff: "
        "judged by the rupture rules; unverified). The episode's own alliance series "
        "(Session check (not validated)) has no unrepaired rupture or alliance concern "
        "(the engine's rupture rules (Stiles et al. 2004; Eubanks, "
        "Muran & Safran 2018); unverified). Not flagged.")
    steps = page.locator("form.plan-form fieldset.step")
    suggested = [legend.strip() for legend in steps.locator("legend").all_inner_texts()]
    assert suggested == [
        "Explore ambivalence about change with motivational interviewing.",
        "Re-agree goals that the client owns.",
        "Match the work to the client's stage of change.",
        "Address the event directly in the sessions.",
        "Work through the practical problems it brings (problem-solving).",
        "Review the crisis plan if risk rises."]
    expect(steps.nth(0).locator(".source")).to_have_text(
        "Source: Miller & Rollnick (motivational interviewing)")
    expect(steps.nth(3).locator(".source")).to_have_text(
        "Source: clinical support tools (Whipple et al. 2003); the project's default list")
    therapist.check("results")

    # --- 6 (before the plan). Fidelity as the plan is about to be recorded ---
    before = _fidelity(supervisor, loop.therapist_name)
    supervisor.check("fidelity-before-plan")

    # --- 4. The plan: accept one, edit one, decline the rest, a note, a review date ---
    edited = "Agree two goals the client names as their own."
    steps.nth(0).get_by_label("Accept", exact=True).check()
    steps.nth(1).get_by_label("Edit", exact=True).check()
    steps.nth(1).locator("textarea").fill(edited)
    for n in range(2, 6):
        steps.nth(n).get_by_label("Decline", exact=True).check()
    page.fill("#plan-note", "Weekly sessions for now; readiness first.")
    review_on = DEMO_NOW.date() + dt.timedelta(days=14)
    page.fill("#review-on", review_on.isoformat())
    therapist.check("plan-form")
    therapist.press("Record the action plan")
    expect(page.get_by_text("Action plan recorded; the open alerts it answers are "
                            "resolved.")).to_be_visible()
    plan_steps = page.locator("main ol.plan-steps li").all_inner_texts()
    assert plan_steps == [
        "Motivation: Explore ambivalence about change with motivational interviewing. "
        "(suggested, accepted)",
        f"Motivation: {edited} (suggested, in your words)"], plan_steps
    expect(page.get_by_text("4 suggestions declined")).to_be_visible()
    expect(page.get_by_text("Note: Weekly sessions for now; readiness first.")).to_be_visible()
    expect(page.get_by_text(f"Open; review on {review_on:%b} {review_on.day}, "
                            f"{review_on.year}.")).to_be_visible()
    therapist.check("plan")
    therapist.goto(f"/clients/{loop.code}")
    expect(page.locator("#alerts article.alert-item.status-open")).to_have_count(0)
    resolved = page.locator("#alerts article.alert-item").filter(
        has_text=re.compile(r"Red: PHQ-9 24 at session \d+"))
    expect(resolved.get_by_role("heading")).to_contain_text("Not on track · resolved")
    expect(resolved).to_contain_text("Resolved by an action plan.")
    therapist.check("record-planned")
    therapist.goto("/")
    row = page.locator("table.caseload tbody tr").filter(has_text=loop.code)
    expect(row).to_contain_text(f"Plan: review on {review_on:%b} {review_on.day}, "
                                f"{review_on.year}")
    expect(row.locator(".attention")).not_to_contain_text("PHQ-9 24")  # no open alert
    therapist.check("caseload-planned")
    therapist.close()

    # --- 6 (after). The plan came within 7 days of the alert: both counts grow by one ---
    loop.clock.current += dt.timedelta(minutes=5)
    after = _fidelity(supervisor, loop.therapist_name)
    supervisor.check("fidelity-after")
    count, n = _share(before[PLAN_WITHIN])
    assert _share(after[PLAN_WITHIN]) == (count + 1, n + 1), (before, after)
    # Its review date is ahead, so "plans reviewed" does not count it yet.
    assert _share(after[REVIEWED]) == _share(before[REVIEWED]), (before, after)
    seen = [supervisor.page.content()]

    # --- 5. The supervisor's agenda: the case by code, its plan state; a review ---
    supervisor.goto("/supervision/agenda")
    case = supervisor.page.locator("section.agenda-row").filter(has_text=loop.code)
    expect(case).to_have_count(1)
    expect(case.get_by_role("heading")).to_have_text(f"{loop.code} · {loop.therapist_name}")
    expect(case.locator(".agenda-state")).to_have_text(
        f"New action plan, not yet reviewed: recorded today, review date {_day(review_on)}")
    supervisor.check("agenda")
    seen.append(supervisor.page.content())
    follow_up = DEMO_NOW.date() + dt.timedelta(days=7)
    case.locator("summary").click()
    case.locator("input[name=discussed][value=yes]").check()
    case.locator("input[name=plan_agreed][value=yes]").check()
    case.locator("input[name=follow_up_on]").fill(follow_up.isoformat())
    case.locator("textarea[name=note]").fill("Agreed: readiness first; look again in a week.")
    supervisor.check("agenda-review-form")
    supervisor.press("Record the review", within=case)
    expect(supervisor.page.get_by_text("Review recorded.")).to_be_visible()
    # Reviewed, the case leaves the agenda until its follow-up date.
    expect(case).to_have_count(0)
    supervisor.check("agenda-reviewed")
    seen.append(supervisor.page.content())
    loop.clock.current = DEMO_NOW + dt.timedelta(days=7)
    supervisor.sign_in(loop.supervisor)  # a week later
    supervisor.goto("/supervision/agenda")
    expect(case.locator(".agenda-state")).to_have_text(
        f"Your follow-up date has come: {_day(follow_up)}")
    assert case.locator("p.muted").inner_text() == (
        f"Your last review: {_day(DEMO_NOW.date())} · discussed · plan agreed · follow-up "
        f"{_day(follow_up)}\nAgreed: readiness first; look again in a week.")
    supervisor.check("agenda-follow-up")
    seen.append(supervisor.page.content())
    supervisor.goto(f"/supervision/clients/{loop.code}")
    supervisor.check("supervision-client")
    seen.append(supervisor.page.content())
    for html in seen:  # supervisors see codes and plan states, never names
        assert loop.name not in html and loop.email not in html
    supervisor.close()
    assert not Step.findings, "\n".join(Step.findings)
