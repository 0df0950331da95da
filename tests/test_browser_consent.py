"""Issue 20: the consent page in headless Chromium at phone size (390 px): agree, refuse,
withdraw. The app runs on a real loopback server against a fresh, migrated database of
the run's backend, in a clinic that asks for consent online (the real default)."""

from __future__ import annotations

import datetime as dt
import threading

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
from outcome.models import Client
from outcome.models import Clinic
from outcome.models import ConsentDecision
from outcome.models import Episode
from outcome.models import OutboundEmail
from outcome.models import QuestionnaireLink
from outcome.models import User
from outcome.services.links import issue_link
from tests.helpers import artifacts
from tests.test_browser_client import PHONE
from tests.test_browser_client import browser  # noqa: F401 (the module's Chromium)
from tests.test_browser_client import press
from tests.test_browser_client import serious_violations

ARTIFACTS = artifacts("consent")
pytestmark = pytest.mark.browser


@pytest.fixture
def live(databases, make_app):
    """A clinic asking online, a client with one link; yields the base address, the
    token and a session factory."""
    url = databases.new_url()
    engine = make_engine(url)
    schema.upgrade(engine)
    engine.dispose()
    app = make_app(database_url=url, SECRET_KEY=None, RATELIMIT_ENABLED=True)
    with app.app_context(), transaction(database(app).session_factory) as session:
        clinic = Clinic(slug="consent", name="Consent Clinic")  # consent_online: default
        session.add(clinic)
        session.flush()
        therapist = User(clinic_id=clinic.id, email="t@example.org", display_name="T",
                         is_therapist=True)
        session.add(therapist)
        session.flush()
        client = Client(clinic_id=clinic.id, code="C-CONS22", name="Rowan Example",
                        therapist_id=therapist.id)
        session.add(client)
        session.flush()
        episode = Episode(clinic_id=clinic.id, client_id=client.id,
                          therapist_id=therapist.id, opened_on=dt.date(2026, 11, 1))
        session.add(episode)
        session.flush()
        _, token = issue_link(session, episode=episode, purpose="pre",
                              now=dt.datetime.now(dt.UTC), library=instrument_library(app))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", token, database(app).session_factory
    server.shutdown()
    database(app).engine.dispose()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def fits(page) -> None:
    """Nothing wider than the phone: no sideways scrolling."""
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_agree_then_withdraw_on_a_phone(browser, live):  # noqa: F811
    base, token, factory = live
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(f"{base}/q/{token}")
    assert page.url == f"{base}/q/consent"
    expect(page.get_by_text("What is collected", exact=False)).to_be_visible()
    expect(page.get_by_text("Consent text, version 1")).to_be_visible()
    fits(page)
    shot(page, "consent-page")
    assert serious_violations(browser, page.url) == []
    press(page, "Agree and continue")
    assert page.url == f"{base}/q/"
    expect(page.get_by_text("Questionnaire 1 of", exact=False)).to_be_visible()
    with page.expect_navigation():
        page.get_by_role("link", name="Withdraw consent").click()
    assert page.url == f"{base}/q/withdraw"
    fits(page)
    shot(page, "withdraw-confirm")
    press(page, "Withdraw my consent")
    expect(page.get_by_role("heading", name="Consent withdrawn")).to_be_visible()
    shot(page, "withdrawn")
    context.close()
    with factory() as session:
        decisions = session.scalars(select(ConsentDecision.decision)
                                    .order_by(ConsentDecision.id)).all()
        assert decisions == ["agreed", "withdrawn"]
        assert all(link.revoked_dt is not None
                   for link in session.scalars(select(QuestionnaireLink)))
        notice = session.scalar(select(OutboundEmail).where(
            OutboundEmail.kind == "consent_withdrawn"))
        assert notice is not None and "Rowan" not in notice.body_text


def test_refuse_stores_nothing_and_the_same_link_can_agree_later(browser, live):  # noqa: F811
    base, token, factory = live
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(f"{base}/q/{token}")
    press(page, "Decline")
    assert page.url == f"{base}/q/consent/declined"
    expect(page.get_by_text("No answers have been stored", exact=False)).to_be_visible()
    fits(page)
    shot(page, "declined")
    page.goto(f"{base}/q/")  # the questionnaire is not shown
    assert page.url == f"{base}/q/consent"
    expect(page.get_by_text("You declined earlier", exact=False)).to_be_visible()
    with factory() as session:
        assert session.scalar(select(Administration.id)) is None
        assert session.scalars(select(ConsentDecision.decision)).all() == ["refused"]
    press(page, "Agree and continue")  # changed their mind on the same link
    expect(page.get_by_text("Questionnaire 1 of", exact=False)).to_be_visible()
    context.close()
