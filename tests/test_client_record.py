"""The therapist's client page: charts, items, goals, answers, alerts and exports."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re

import pytest
from sqlalchemy import func
from sqlalchemy import select

from outcome.models import Alert
from outcome.models import AuditEvent
from outcome.models import EpisodeSignal
from questionnaires.fhir import validate_resource
from tests.conftest import csrf_token
from tests.helpers import CANARY
from tests.helpers import LIB
from tests.helpers import T0
from tests.helpers import simulated

PHQ, SRS, GBO = LIB.get("phq9"), LIB.get("srs_vas"), LIB.get("gbo")


def test_page_shows_charts_items_goals_answers_and_alerts(auth, client, case):
    therapist, person, _episode = case
    auth.login(therapist.email)
    response = client.get(f"/clients/{person.code}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    # Outcome chart: inline SVG with a text alternative that lists every score; the
    # 17 -> 10 is a reliable improvement (6 points or more) still at the cutoff of 10;
    # 9 is reliable and below it: recovered.
    assert html.count('<svg role="img"') >= 3  # PHQ-9, SRS, heat map
    assert ("PHQ-9 by session (lower is better): session 1: 17 (moderately severe); "
            "session 2: 18 (moderately severe); session 3: 10 (moderate; reliable "
            "improvement); session 4: 9 (mild; recovered)") in html
    assert "The clinical cutoff is 10." in html
    # Alliance chart: the drop at session 3 is a rupture; 38 at session 4 is at or above
    # the cutoff (and within half an SD of the personal mean 38.2): repaired there.
    assert re.search(r"session 3: 28 \(rupture\)", html)
    assert "session 4: 38 (repair); session 5: 38.4." in html
    # Heat map: item 1 stayed at 2 or more over the last three sessions.
    assert "Items high at each of the last three sessions: 1. Little interest" in html
    # Goals in the client's words (escaped), with their ratings.
    assert "Sleep through the night" in html and CANARY not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "session</span>" not in html  # no broken markup around ratings
    # Every administration, with answers and critical answers marked.
    assert html.count('<details class="administration">') == 13
    assert "(critical)" in html
    # The critical answer is an open alert with an acknowledge form that needs a note.
    assert "Critical answer" in html and 'name="note" required' in html


def test_acknowledge_needs_a_note_and_keeps_who_and_when(auth, client, case, db_session,
                                                         clock):
    therapist, person, episode = case
    alert = db_session.scalar(select(Alert).where(Alert.episode_id == episode.id,
                                                  Alert.kind == "critical_item"))
    assert db_session.get(EpisodeSignal, episode.id).urgency == 0
    auth.login(therapist.email)
    page = client.get(f"/clients/{person.code}").get_data(as_text=True)
    url = f"/clients/{person.code}/alerts/{alert.id}/acknowledge"
    response = client.post(url, data={"csrf_token": csrf_token(page), "note": "   "},
                           follow_redirects=True)
    assert "Please write a note" in response.get_data(as_text=True)
    db_session.expire_all()
    assert db_session.get(Alert, alert.id).status == "open"

    client.post(url, data={"csrf_token": csrf_token(page),
                           "note": "Discussed in session, safety plan updated"})
    db_session.expire_all()
    stored = db_session.get(Alert, alert.id)
    assert stored.status == "acknowledged" and stored.acknowledged_by_id == therapist.id
    assert stored.acknowledgement_note == "Discussed in session, safety plan updated"
    assert stored.acknowledged_dt is not None
    # The caseload no longer puts this client first for the critical answer.
    assert db_session.get(EpisodeSignal, episode.id).urgency > 0
    html = client.get(f"/clients/{person.code}").get_data(as_text=True)
    assert "Acknowledged by" in html and "safety plan updated" in html
    # Acknowledging twice is refused with a message, nothing changes.
    again = client.post(url, data={"csrf_token": csrf_token(page), "note": "again"},
                        follow_redirects=True)
    assert "no longer open" in again.get_data(as_text=True)
    events = db_session.scalars(select(AuditEvent.outcome).where(
        AuditEvent.action == "alert.acknowledge")).all()
    assert events == ["allowed", "allowed", "allowed"]


def test_another_clients_alert_is_not_found(auth, client, case, db_session, make_client,
                                            make_episode):
    therapist, _person, episode = case
    other = make_client(therapist, name="Other")
    make_episode(other)
    db_session.commit()
    alert = db_session.scalar(select(Alert).where(Alert.episode_id == episode.id))
    auth.login(therapist.email)
    page = client.get(f"/clients/{other.code}").get_data(as_text=True)
    response = client.post(f"/clients/{other.code}/alerts/{alert.id}/acknowledge",
                           data={"csrf_token": csrf_token(page), "note": "x"})
    assert response.status_code == 404


def test_csv_export_is_long_format_and_formula_safe(auth, client, case, db_session,
                                                    make_client, make_episode):
    therapist, person, _episode = case
    auth.login(therapist.email)
    response = client.get(f"/clients/{person.code}/export.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    phq_first = [r for r in rows if r["instrument"] == "phq9" and r["item"] == "phq9_1"]
    assert [r["answer"] for r in phq_first] == ["3", "3", "3", "2", "2"]
    assert phq_first[0]["score"] == "17" and phq_first[0]["client_code"] == person.code
    assert "Ada" not in response.get_data(as_text=True)  # the code, never the name
    events = db_session.scalars(select(AuditEvent).where(
        AuditEvent.action == "client.export.csv")).all()
    assert len(events) == 1 and events[0].client_id == person.id


def test_csv_export_neutralises_formulas_in_free_text(db_session, make_user, make_client,
                                                      make_episode):
    """A clinic's own instrument with a free-text item (OWASP CSV injection canary)."""
    from outcome.models import Administration
    from outcome.services.exports import episodes_csv

    person = make_client(make_user())
    episode = make_episode(person)
    db_session.add(Administration(
        episode_id=episode.id, instrument_id="clinic_notes", instrument_version="1",
        answers={"note": '=HYPERLINK("http://x")', "mood": -3, "other": "@SUM(A1)"},
        scores={}, total=None, is_valid=False, completed_dt=T0, idempotency_key="csv-1"))
    db_session.flush()
    rows = list(csv.DictReader(io.StringIO(episodes_csv(db_session, person, [episode], LIB))))
    answers = {r["item"]: r["answer"] for r in rows}
    assert answers == {"note": "\'=HYPERLINK(\"http://x\")", "mood": "-3",
                       "other": "\'@SUM(A1)"}


def test_fhir_bundle_validates_and_carries_no_name(auth, client, case):
    therapist, person, _episode = case
    auth.login(therapist.email)
    response = client.get(f"/clients/{person.code}/export.fhir.json")
    assert response.status_code == 200 and response.mimetype == "application/fhir+json"
    bundle = json.loads(response.get_data(as_text=True))
    assert validate_resource(bundle) == []
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds.count("Patient") == 1 and kinds.count("QuestionnaireResponse") == 13
    assert kinds.count("Observation") == 13
    assert "Ada" not in json.dumps(bundle)
    patient = bundle["entry"][0]["resource"]
    assert patient["identifier"][0]["value"] == person.code
    # Stable ids: a second export of the same data is identical apart from its time.
    again = json.loads(client.get(f"/clients/{person.code}/export.fhir.json")
                       .get_data(as_text=True))
    assert [e["fullUrl"] for e in again["entry"]] == [e["fullUrl"] for e in bundle["entry"]]


@pytest.mark.parametrize("path", ["", "/export.csv", "/export.fhir.json"])
def test_other_therapist_and_supervisor_get_404(auth, client, case, make_user, assign,
                                                 db_session, path):
    therapist, person, _episode = case
    supervisor = make_user("supervisor")
    assign(supervisor, therapist)
    other = make_user()
    db_session.commit()
    for user in (other, supervisor):
        auth.login(user.email)
        assert client.get(f"/clients/{person.code}{path}").status_code == 404
        auth.logout()
    denied = db_session.scalars(select(AuditEvent).where(
        AuditEvent.outcome == "denied", AuditEvent.client_id == person.id)).all()
    assert len(denied) == 2


def test_a_foreign_object_in_the_url_is_audited_as_denied(auth, client, case, db_session,
                                                          make_client, make_episode):
    therapist, person, episode = case
    other = make_client(therapist, name="Other")
    other_episode = make_episode(other)
    db_session.commit()
    alert = db_session.scalar(select(Alert).where(Alert.episode_id == episode.id))
    auth.login(therapist.email)
    page = client.get(f"/clients/{other.code}").get_data(as_text=True)
    before = db_session.scalar(select(func.max(AuditEvent.id)))
    client.post(f"/clients/{other.code}/alerts/{alert.id}/acknowledge",
                data={"csrf_token": csrf_token(page), "note": "x"})
    client.get(f"/clients/{person.code}?episode={other_episode.id}")
    events = db_session.execute(select(AuditEvent.action, AuditEvent.outcome,
                                       AuditEvent.client_id)
                                .where(AuditEvent.id > before)
                                .order_by(AuditEvent.id)).all()
    assert [tuple(e) for e in events] == [("alert.acknowledge", "denied", other.id),
                                          ("client.view", "denied", person.id)]


@pytest.mark.parametrize(("n_episodes", "band_shown"), [(49, False), (50, True)])
def test_expected_band_only_when_the_colours_use_the_curve(auth, client, case, db_session,
                                                           n_episodes, band_shown):
    """Below the clinic's model_min_episodes (50) colours are rule-based: no band either."""
    from outcome.core.trajectory import fit_trajectory
    from outcome.models import TrajectoryFit

    therapist, person, episode = case
    model = fit_trajectory("phq9", "higher_is_worse", *simulated(), now=T0)
    db_session.add(TrajectoryFit(
        clinic_id=episode.clinic_id, instrument_id="phq9", fitted_dt=T0,
        n_episodes=n_episodes, n_observations=model.n_observations,
        parameters={**model.as_json(), "n_episodes": n_episodes}))
    db_session.commit()
    auth.login(therapist.email)
    html = client.get(f"/clients/{person.code}").get_data(as_text=True)
    assert ("Expected range at the latest session" in html) is band_shown


def test_earlier_episodes_can_be_chosen(auth, client, case, db_session, make_episode):
    therapist, person, episode = case
    episode.closed_on, episode.end_reason = dt.date(2026, 10, 30), "completed"
    db_session.flush()
    newer = make_episode(person, opened_on=dt.date(2026, 11, 2))
    db_session.commit()
    auth.login(therapist.email)
    html = client.get(f"/clients/{person.code}").get_data(as_text=True)
    assert f'<option value="{newer.id}" selected>' in html
    assert f'<option value="{episode.id}" >' in html
    older = client.get(f"/clients/{person.code}?episode={episode.id}").get_data(as_text=True)
    assert "PHQ-9 by session" in older and "ended Oct 30, 2026" in older


def test_explanations_follow_the_readers_language(auth, client, case):
    # Stored as message ids: the same signal reads in English or Russian, as the page does.
    therapist, person, _episode = case
    auth.login(therapist.email)
    english = client.get(f"/clients/{person.code}").get_data(as_text=True)
    russian = client.get(f"/clients/{person.code}",
                         headers={"Accept-Language": "ru"}).get_data(as_text=True)
    assert "Recovered: PHQ-9 from 17 to 2 (-15)" in english
    assert "Выздоровление: PHQ-9 с 17 до 2 (-15)" in russian  # noqa: RUF001
    assert "Rupture at session 3: SRS-type 28" in english
    assert "Разрыв на встрече 3: SRS-type 28" in russian
    assert "Answer:" not in russian and "Ответ: 1" in russian  # the critical answer alert
