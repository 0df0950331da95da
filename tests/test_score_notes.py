"""Notes beside a score, said the same way on the client page, the PDF and the API.

- PHQ-9 item 9 (the safety question) left blank: the total is prorated as the definition
  allows (max_missing 1), never silently: every place it is shown says "prorated; item 9
  (the safety question) unanswered", and the critical-unanswered alert is raised.
- The PCL-5 DSM-5 provisional rule in its three states; "cannot be determined (3 items
  blank)" arises where a clinic's definition lets the PCL-5 be prorated (max_missing 3).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io

import pytest
from fhir.resources.R4B.observation import Observation
from pypdf import PdfReader
from sqlalchemy import select

from outcome.core.answers import Answers
from outcome.core.answers import parse_answers
from outcome.core.score_notes import score_notes
from outcome.core.scoring import score_answers
from outcome.models import Administration
from outcome.models import Alert
from outcome.services.explanations import render
from outcome.services.exports import administration_resources
from outcome.services.exports import patient_reference
from outcome.services.submissions import submit_administration
from tests.helpers import LIB
from tests.helpers import T0
from tests.helpers import flat

PHQ, PCL5 = LIB.get("phq9"), LIB.get("pcl5")
# A clinic definition that prorates the PCL-5 over up to 3 blanks (the built-in allows 0).
PCL5_PRORATED = dataclasses.replace(PCL5, max_missing=3)
PRORATED_NOTE = "prorated; item 9 (the safety question) unanswered"
UNDETERMINED = "Probable PTSD by the DSM-5 rule: cannot be determined (3 items blank)"
MET = "Probable PTSD by the DSM-5 rule: yes"
NOT_MET = "Probable PTSD by the DSM-5 rule: no"


def texts(instrument, values, locale="en"):
    parsed = parse_answers(instrument, values, allow_incomplete=True)
    assert isinstance(parsed, Answers), parsed
    scores = score_answers(instrument, parsed).as_json()
    return [render(m.id, m.as_json()["params"], locale) for m in score_notes(instrument, scores)]


def phq(item9: int | None, blank: tuple[int, ...] = ()) -> dict:
    values = {f"phq9_{i}": 2 for i in range(1, 9) if i not in blank}
    if item9 is not None:
        values["phq9_9"] = item9
    return values


def pcl(endorsed: set[int], blank: tuple[int, ...] = ()) -> dict:
    return {f"pcl5_{i}": (3 if i in endorsed else 1) for i in range(1, 21) if i not in blank}


ALL_CLUSTERS = {1, 6, 8, 9, 15, 16}


# --- the notes, from stored scores -------------------------------------------------------

def test_a_blank_safety_question_is_named_with_the_prorated_total():
    assert texts(PHQ, phq(0)) == []
    assert texts(PHQ, phq(None)) == [PRORATED_NOTE]
    # Two blanks: no valid total to qualify, but the blank safety question is still said.
    assert texts(PHQ, phq(None, blank=(1,))) == ["item 9 (the safety question) unanswered"]
    # Another item blank, item 9 answered: prorated, and no safety note.
    assert texts(PHQ, phq(0, blank=(1,))) == []


def test_the_rule_in_three_states_in_english_and_russian():
    assert texts(PCL5, pcl(ALL_CLUSTERS)) == [MET]
    assert texts(PCL5, pcl(ALL_CLUSTERS - {9})) == [NOT_MET]
    assert texts(PCL5, pcl(ALL_CLUSTERS - {9}, blank=(10, 11, 12))) == [UNDETERMINED]
    assert texts(PCL5, pcl(ALL_CLUSTERS - {9}, blank=(12,)), "ru") == [
        "Probable PTSD by the DSM-5 rule: невозможно определить (1 пункт без ответа)"]
    assert texts(PHQ, phq(None), "ru") == [
        "пересчитано пропорционально; пункт 9 (вопрос о безопасности) без ответа"]  # noqa: RUF001


def test_scores_stored_before_the_rule_had_three_states_still_read():
    old = {"valid": True, "prorated": False, "n_missing": 0, "rules": {"dsm5_provisional": True}}
    assert [m.id for m in score_notes(PCL5, old)] == ["score.rule_met"]
    assert score_notes(PCL5, None) == [] and score_notes(PHQ, {}) == []


# --- a stored record: the page, the PDF, the API and FHIR --------------------------------

def store(db_session, episode, instrument, values, week):
    parsed = parse_answers(instrument, values, allow_incomplete=True)
    assert isinstance(parsed, Answers), parsed
    when = T0 + dt.timedelta(weeks=week)
    row, _ = submit_administration(
        db_session, episode=episode, instrument=instrument, answers=parsed,
        completed_dt=when, idempotency_key=f"{episode.id}:{instrument.id}:{week}",
        library=LIB, now=when)
    return row


@pytest.fixture
def noted(db_session, make_user, make_client, make_episode):
    therapist = make_user()
    person = make_client(therapist, name="Noted Client")
    episode = make_episode(person)
    store(db_session, episode, PHQ, phq(1), 0)
    blank9 = store(db_session, episode, PHQ, phq(None), 1)  # 16 of 8 items -> 18
    store(db_session, episode, PCL5_PRORATED, pcl(ALL_CLUSTERS - {9}, blank=(10, 11, 12)), 1)
    store(db_session, episode, PCL5, pcl(ALL_CLUSTERS), 2)
    db_session.commit()
    return therapist, person, episode, blank9


def test_the_total_is_prorated_and_marked_and_the_alert_raised(db_session, noted):
    _therapist, _person, episode, blank9 = noted
    assert (blank9.is_valid, blank9.is_prorated, blank9.total) == (True, True, 18)
    assert blank9.scores["critical_unanswered"] == ["phq9_9"]
    kinds = db_session.scalars(select(Alert.kind).where(Alert.episode_id == episode.id,
                                                        Alert.administration_id == blank9.id))
    assert "critical_unanswered" in set(kinds)


def test_client_page_says_it(auth, client, noted):
    therapist, person, _episode, _blank9 = noted
    auth.login(therapist.email)
    html = flat(client.get(f"/clients/{person.code}").get_data(as_text=True))
    # In the notes under the outcome charts (shared with the supervisor's page)...
    assert f"PHQ-9, Sep 8, 2026, score 18: {PRORATED_NOTE}" in html
    # 27 over 17 answered items, prorated to 20: 31.76 -> 32; undetermined, not "no".
    assert f"PCL-5, Sep 8, 2026, score 32: {UNDETERMINED}" in html
    assert f"PCL-5, Sep 15, 2026, score 32: {MET}" in html
    # ...and on the questionnaire's own line, once, without the vaguer generic note.
    line = html[html.index("score 18 (moderately severe) ·"):][:300]
    assert PRORATED_NOTE in line and "some items unanswered" not in line


def test_progress_pdf_says_it(auth, client, noted):
    therapist, person, _episode, _blank9 = noted
    auth.login(therapist.email)
    body = client.get(f"/clients/{person.code}/report.pdf").get_data()
    text = flat(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(body)).pages))
    assert "Notes on scores" in text
    assert PRORATED_NOTE in text and UNDETERMINED in text and MET in text


def test_api_says_it(api, noted):
    therapist, person, _episode, _blank9 = noted
    items = api(therapist).get(f"/api/v1/clients/{person.code}/administrations").get_json()[
        "items"]
    by_key = {(a["instrument"], a["completed_at"][:10]): a for a in items}
    phq_blank = by_key[("phq9", "2026-09-08")]
    assert phq_blank["is_prorated"] and phq_blank["critical_unanswered"] == ["phq9_9"]
    assert [n["text"] for n in phq_blank["notes"]] == [PRORATED_NOTE]
    assert phq_blank["notes"][0]["message"] == "score.prorated_critical_blank"
    undetermined = by_key[("pcl5", "2026-09-08")]
    assert undetermined["rules"] == {"dsm5_provisional": None}
    assert undetermined["n_missing"] == 3
    assert [n["text"] for n in undetermined["notes"]] == [UNDETERMINED]
    assert by_key[("pcl5", "2026-09-15")]["rules"] == {"dsm5_provisional": True}
    assert by_key[("phq9", "2026-09-01")]["notes"] == []


def test_fhir_observation_says_it(db_session, noted):
    _therapist, person, _episode, blank9 = noted
    resources = administration_resources(blank9, LIB, patient_reference(person.code))
    assert resources is not None and resources.observation is not None
    assert resources.observation["note"] == [{"text": PRORATED_NOTE}]
    Observation.model_validate(resources.observation)
    pcl_row = db_session.scalar(select(Administration).where(
        Administration.episode_id == blank9.episode_id, Administration.instrument_id == "pcl5",
        Administration.is_prorated.is_(True)))
    observation = administration_resources(pcl_row, LIB, patient_reference(person.code))
    assert observation is not None and observation.observation is not None
    assert observation.observation["note"] == [{"text": UNDETERMINED}]


def test_client_csv_export_says_it(db_session, noted):
    import csv

    from outcome.services.exports import episodes_csv

    _therapist, person, episode, blank9 = noted
    rows = list(csv.DictReader(io.StringIO(episodes_csv(db_session, person, [episode], LIB))))
    by_id = {int(r["administration_id"]): r for r in rows}
    assert by_id[blank9.id]["critical_unanswered"] == "phq9_9"
    assert by_id[blank9.id]["notes"] == PRORATED_NOTE and by_id[blank9.id]["is_prorated"] == "1"
    assert {r["notes"] for r in rows if r["instrument"] == "pcl5"} == {UNDETERMINED, MET}


def test_the_chart_table_and_its_text_say_it(db_session, noted):
    from outcome.services.client_record import client_record

    _therapist, _person, episode, _blank9 = noted
    record = client_record(db_session, episode, LIB, full=False)
    [chart] = [c for c in record.outcome_charts if c.instrument_id == "phq9"]
    assert [(s, v, words) for s, _day, v, words in chart.rows] == [
        (1, 17.0, ""), (2, 18.0, PRORATED_NOTE)]
    assert chart.description.endswith(f"Session 2: {PRORATED_NOTE}.")
    [pcl_chart] = [c for c in record.outcome_charts if c.instrument_id == "pcl5"]
    assert all(words == "" for *_rest, words in pcl_chart.rows)  # rules go to the notes
