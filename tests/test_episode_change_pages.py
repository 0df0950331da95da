"""An episode's change on screen: the primary measure's category (or the paired result),
always named, and the therapist's choice of primary measure and problem (issue 15,
finding 1; domain.md section 3)."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from outcome.models import AuditEvent
from outcome.models import Clinic
from outcome.models import EpisodeSignal
from outcome.services import clinic_settings
from outcome.services.caseload import caseload
from outcome.services.signals import recompute_signals
from tests.conftest import csrf_token
from tests.helpers import LIB
from tests.helpers import PHQ
from tests.helpers import T0
from tests.helpers import flat
from tests.helpers import submit

GAD = LIB.get("gad7")
# PHQ-9 from 18 to 6: clinical at intake, functional at the end, down 12 (>= 6): recovered.
PHQ_TOTALS = [18, 15, 12, 9, 6]
# GAD-7 from 9 to 14: up 5 (>= 4) from the clinical range: deteriorated, and red. Its name
# sorts before PHQ-9's, and its colour is worse: the old engine showed its category.
GAD_TOTALS = [9, 10, 12, 13, 14]


def items(prefix: str, count: int, total: int) -> dict[str, int]:
    """``count`` items (the last of PHQ-9, item 9, left at 0) summing to ``total``."""
    scored = count - 1 if prefix == "phq9" else count
    values = {f"{prefix}_{i}": 0 for i in range(1, count + 1)}
    for n in range(total):
        key = f"{prefix}_{n % scored + 1}"
        values[key] += 1
    assert max(values.values()) <= 3 and sum(values.values()) == total
    return values


@pytest.fixture
def finding1(db_session, make_user, make_client, make_episode):
    therapist = make_user()
    person = make_client(therapist, name="Ada Paired")
    episode = make_episode(person)
    for week, (p, g) in enumerate(zip(PHQ_TOTALS, GAD_TOTALS, strict=True)):
        submit(db_session, episode, PHQ, items("phq9", 9, p), week)
        submit(db_session, episode, GAD, items("gad7", 7, g), week)
    db_session.commit()
    return therapist, person, episode


def set_paired(db_session, episode, on: bool) -> None:
    clinic = db_session.get(Clinic, episode.clinic_id)
    clinic_settings.update(db_session, clinic, {"paired_rules": on})
    recompute_signals(db_session, LIB, T0, clinic.id)
    db_session.commit()


def test_finding1_the_primary_measure_decides_and_is_named(auth, client, db_session,
                                                           finding1):
    therapist, person, episode = finding1
    signal = db_session.get(EpisodeSignal, episode.id)
    outcomes = signal.state["outcomes"]
    assert outcomes["gad7"]["change"]["level"] == "deteriorated"
    assert outcomes["phq9"]["change"]["level"] == "recovered"
    assert signal.colour == "red"  # the colour still comes from the worst measure
    assert signal.change_category == "recovered"
    assert signal.state["change"]["measure"] == "phq9"
    assert signal.state["change"]["pair"] is None

    row = caseload(db_session, therapist)[0]
    assert (row.change_category, row.change_measure) == ("recovered", "PHQ-9")
    auth.login(therapist.email)
    home = client.get("/").get_data(as_text=True)
    assert "since intake (PHQ-9):" in home
    page = client.get(f"/clients/{person.code}").get_data(as_text=True)
    assert "Since intake (PHQ-9): Recovered" in page
    # GAD-7 keeps its own category, with its name.
    assert "GAD-7 from 9 to 14" in page


def test_paired_rules_on_give_the_pair_named(auth, client, db_session, finding1):
    therapist, person, episode = finding1
    set_paired(db_session, episode, True)
    signal = db_session.get(EpisodeSignal, episode.id)
    # PHQ-9 falls 12 (reliable) but GAD-7 rises 5 (reliable): neither counts.
    assert signal.change_category == "unchanged"
    assert signal.state["change"]["pair"] == ["phq9", "gad7"]
    assert signal.state["change"]["paired"]["reliably_improved"] is False
    row = caseload(db_session, therapist)[0]
    assert row.change_measure == "PHQ-9 + GAD-7, NHS Talking Therapies"
    auth.login(therapist.email)
    page = client.get(f"/clients/{person.code}").get_data(as_text=True)
    assert "Since intake (PHQ-9 + GAD-7, NHS Talking Therapies):" in page
    assert "by the NHS Talking Therapies paired rules: PHQ-9 from 18 to 6" in page


def test_the_therapist_chooses_primary_measure_and_problem(auth, client, db_session,
                                                           finding1):
    therapist, person, episode = finding1
    set_paired(db_session, episode, True)
    auth.login(therapist.email)
    page = client.get(f"/clients/{person.code}").get_data(as_text=True)
    url = f"/clients/{person.code}/episodes/{episode.id}/measures"
    assert f'action="{url}"' in page

    # Social anxiety: SPIN is not installed, so GAD-7 stands in, and the page says so.
    client.post(url, data={"csrf_token": csrf_token(page), "primary": "",
                           "descriptor": "social_anxiety"})
    db_session.expire_all()
    assert episode.problem_descriptor == "social_anxiety"
    signal = db_session.get(EpisodeSignal, episode.id)
    assert signal.state["change"]["stand_in"] is True
    html = client.get(f"/clients/{person.code}").get_data(as_text=True)
    assert "GAD-7 standing in for SPIN" in html

    # GAD-7 as the primary measure: its own category, named GAD-7.
    client.post(url, data={"csrf_token": csrf_token(page), "primary": "gad7",
                           "descriptor": "social_anxiety"})
    db_session.expire_all()
    assert episode.primary_instrument_id == "gad7"
    signal = db_session.get(EpisodeSignal, episode.id)
    assert (signal.change_category, signal.state["change"]["measure"]) == ("deteriorated",
                                                                          "gad7")
    assert caseload(db_session, therapist)[0].change_measure == "GAD-7"

    # A measure that is not an outcome measure is refused; nothing changes.
    refused = client.post(url, data={"csrf_token": csrf_token(page), "primary": "srs_vas",
                                     "descriptor": ""}, follow_redirects=True)
    assert "must be an installed outcome measure" in refused.get_data(as_text=True)
    db_session.expire_all()
    assert episode.primary_instrument_id == "gad7"
    assert episode.problem_descriptor == "social_anxiety"
    events = db_session.scalars(select(AuditEvent.outcome).where(
        AuditEvent.action == "episode.measures.change")).all()
    assert events == ["allowed", "allowed", "allowed"]


def test_without_csrf_nothing_changes(auth, client, db_session, finding1):
    therapist, person, episode = finding1
    auth.login(therapist.email)
    response = client.post(f"/clients/{person.code}/episodes/{episode.id}/measures",
                           data={"primary": "gad7"})
    assert response.status_code == 400
    db_session.expire_all()
    assert episode.primary_instrument_id is None


def test_settings_validate():
    clinic = Clinic(slug="x", name="x", timezone="UTC", settings={})
    assert clinic_settings.current(clinic)["primary_measure"] == "phq9"
    assert clinic_settings.current(clinic)["paired_rules"] is False
    assert clinic_settings.parse("paired_rules", "on") is True
    assert clinic_settings.parse("paired_rules", "False") is False
    with pytest.raises(clinic_settings.SettingError, match="paired_rules must be true or "
                       "false; got 'maybe'"):
        clinic_settings.parse("paired_rules", "maybe")
    assert clinic_settings.problems(clinic, {"paired_rules": 1}) == {
        "paired_rules": "paired_rules must be true or false; got 1"}
    assert clinic_settings.problems(clinic, {"primary_measure": "phq 9!"}) == {
        "primary_measure": "primary_measure must be an instrument id such as phq9; "
                           "got 'phq 9!'"}
    assert clinic_settings.problems(clinic, {"primary_measure": "who5",
                                             "paired_rules": True}) == {}


def test_admin_settings_page_shows_and_checks_them(auth, client, db_session, make_user,
                                                   clinic):
    admin = make_user("admin")
    db_session.commit()
    auth.login(admin.email)
    html = client.get("/admin/settings").get_data(as_text=True)
    assert 'name="primary_measure"' in html and 'name="paired_rules"' in html
    assert "NHS Talking Therapies paired rules" in html
    form = {"csrf_token": csrf_token(html), "timezone": clinic.timezone}
    refused = client.post("/admin/settings", data={**form, "primary_measure": "srs_vas",
                                                   "paired_rules": "true"})
    assert refused.status_code == 200
    assert "srs_vas is not an outcome measure." in refused.get_data(as_text=True)
    db_session.refresh(clinic)
    assert "paired_rules" not in (clinic.settings or {})
    saved = client.post("/admin/settings", data={**form, "primary_measure": "phq9",
                                                 "paired_rules": "true"})
    assert saved.status_code == 302
    db_session.refresh(clinic)
    assert clinic.settings["paired_rules"] is True
    assert "primary_measure" not in clinic.settings  # unchanged from the default
    assert 'value="true" selected' in client.get("/admin/settings").get_data(as_text=True)


def test_progress_report_pdf_names_the_pair(auth, client, db_session, finding1):
    therapist, person, episode = finding1
    set_paired(db_session, episode, True)
    auth.login(therapist.email)
    body = client.get(f"/clients/{person.code}/report.pdf").data
    text = flat(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(body)).pages))
    assert "Since intake (PHQ-9 + GAD-7, NHS Talking Therapies):" in text
    assert "by the NHS Talking Therapies paired rules: PHQ-9 from 18 to 6" in text


def test_api_names_the_measure(api, db_session, finding1):
    therapist, person, episode = finding1
    set_paired(db_session, episode, True)
    signals = api(therapist).get(f"/api/v1/clients/{person.code}/signals").get_json()
    assert signals["change_category"] == "unchanged"
    assert signals["change_measure"] == {
        "measure": "phq9", "pair": ["phq9", "gad7"], "stand_in_for": None,
        "text": "PHQ-9 + GAD-7, NHS Talking Therapies"}


def test_supervisor_page_names_the_measure(auth, client, db_session, finding1, make_user,
                                           assign):
    therapist, person, _episode = finding1
    supervisor = make_user("supervisor")
    assign(supervisor, therapist)
    db_session.commit()
    auth.login(supervisor.email)
    page = client.get(f"/supervision/clients/{person.code}").get_data(as_text=True)
    assert "Since intake (PHQ-9): Recovered" in page
    assert "Primary measure of this episode" not in page  # the therapist's form only
