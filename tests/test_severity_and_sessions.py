"""A severity band beside every score, and one meaning of "session" (issue 15, findings 8
and 9; domain.md sections 2 and 3).

- every score of a measure with bands shows its band, in the reader's language, on the
  caseload, the client page, the progress PDF and the client's own view;
- "session" is the episode's treatment session (the appointment's number) everywhere; a
  measure's own count reads "the 15th GAD-7".
"""

from __future__ import annotations

import datetime as dt
import io
import math
import re

import pytest
from pypdf import PdfReader

from outcome.core.answers import parse_answers
from outcome.core.severity import severity
from outcome.services.caseload import caseload
from outcome.services.client_record import client_record
from outcome.services.explanations import band_name
from outcome.services.explanations import measure_count
from outcome.services.explanations import ordinal
from outcome.services.explanations import scored_text
from outcome.services.progress_view import client_progress
from outcome.services.submissions import submit_administration
from tests.helpers import LIB
from tests.helpers import flat
from tests.helpers import submit

PHQ, GAD = LIB.get("phq9"), LIB.get("gad7")


def pdf_text(body: bytes) -> str:
    return flat(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(body)).pages))


# --- the pure function, at every band edge --------------------------------------------

@pytest.mark.parametrize(("instrument", "edges"), [
    ("phq9", [(0, "minimal"), (4, "minimal"), (5, "mild"), (9, "mild"), (10, "moderate"),
              (14, "moderate"), (15, "moderately severe"), (16, "moderately severe"),
              (19, "moderately severe"), (20, "severe"), (27, "severe")]),
    ("gad7", [(0, "minimal"), (4, "minimal"), (5, "mild"), (9, "mild"), (10, "moderate"),
              (14, "moderate"), (15, "severe"), (21, "severe")]),
    ("k10", [(10, "likely to be well"), (19, "likely to be well"), (20, "mild"),
             (24, "mild"), (25, "moderate"), (29, "moderate"), (30, "severe"),
             (50, "severe")]),
    # The probable-PTSD cutoff (33 by default; US National Center for PTSD: 31-33).
    ("pcl5", [(0, "below the probable PTSD cutoff"), (32, "below the probable PTSD cutoff"),
              (33, "probable PTSD"), (80, "probable PTSD")]),
    # WHO-5 index (raw x 4, higher is better).
    ("who5", [(0, "likely depression"), (28, "likely depression"),
              (29, "poor well-being"), (32, "poor well-being"), (50, "poor well-being"),
              (51, "adequate well-being"), (52, "adequate well-being"),
              (100, "adequate well-being")]),
])
def test_the_band_at_every_edge(instrument, edges):
    for score, label in edges:
        band = severity(LIB.get(instrument), score)
        assert band is not None and band.label == label, (instrument, score)
        assert band.minimum <= score <= band.maximum


def test_the_band_agrees_with_the_stored_scoring_band():
    # The scorer stores a band with each administration: the display never disagrees.
    for instrument in LIB:
        if not instrument.bands:
            continue
        low, high = instrument.primary_range
        for band in instrument.bands:
            for score in (band.minimum, band.maximum):
                assert severity(instrument, score).label == band.label
        assert severity(instrument, low - 1) is None and severity(instrument, high + 1) is None


def test_range_and_phq9_intake_of_16():
    band = severity(PHQ, 16)
    assert (band.label, band.minimum, band.maximum) == ("moderately severe", 15, 19)
    assert band.range_text == "15\u201319"
    assert scored_text("PHQ-9", 16, band) == "PHQ-9 16 (moderately severe)"
    assert scored_text("PHQ-9", 16, band, "ru") == "PHQ-9 16 (умеренно тяжёлая)"


@pytest.mark.parametrize("instrument", ["ors_vas", "srs_vas", "wai_sr", "gbo", "oq45"])
def test_no_band_is_made_up(instrument):
    ins = LIB.get(instrument)
    assert not ins.bands
    low, high = ins.primary_range
    for score in (low, (low + high) / 2, high):
        assert severity(ins, score) is None
    assert scored_text(ins.short_name, high, severity(ins, high)) == f"{ins.short_name} {high:g}"


def test_missing_scores_have_no_band():
    assert severity(PHQ, None) is None and severity(PHQ, math.nan) is None


def test_every_band_name_is_translated():
    for instrument in LIB:
        for band in instrument.bands:
            found = severity(instrument, band.minimum)
            english, russian = band_name(found, "en"), band_name(found, "ru")
            assert english == band.label
            assert russian and russian != english, band.label
            assert re.search("[\u0430-\u044f]", russian), band.label  # Cyrillic
    assert band_name(severity(PHQ, 16), "ru") == "умеренно тяжёлая"
    assert band_name(None, "ru") is None


# --- ordinals -------------------------------------------------------------------------

@pytest.mark.parametrize(("n", "english"), [
    (1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"), (10, "10th"), (11, "11th"),
    (12, "12th"), (13, "13th"), (14, "14th"), (15, "15th"), (16, "16th"), (21, "21st"),
    (22, "22nd"), (23, "23rd"), (24, "24th"), (101, "101st"), (111, "111th"),
    (112, "112th"), (113, "113th"), (121, "121st")])
def test_english_ordinals(n, english):
    assert ordinal(n, "en") == english


@pytest.mark.parametrize(("n", "russian"), [(1, "1-й"), (2, "2-й"), (3, "3-й"),
                                             (11, "11-й"), (16, "16-й"), (21, "21-й")])
def test_russian_ordinals(n, russian):
    assert ordinal(n, "ru") == russian


def test_a_measure_count_reads_as_an_ordinal():
    assert measure_count(15, "GAD-7") == "the 15th GAD-7"
    assert measure_count(1, "PHQ-9") == "the 1st PHQ-9"
    assert measure_count(15, "GAD-7", "ru") == "15-й GAD-7"


# --- an intake PHQ-9 of 16 shows "moderately severe" everywhere ------------------------

def _phq(total: int) -> dict:
    # Items 1-8 sum to ``total`` (at most 24), item 9 is 0.
    values = {f"phq9_{i}": 0 for i in range(1, 10)}
    for i in range(total):
        values[f"phq9_{i % 8 + 1}"] += 1
    return values


def test_an_intake_phq9_of_16_shows_its_band(auth, client, db_session, make_user,
                                             make_client, make_episode):
    therapist = make_user()
    person = make_client(therapist, name="Intake Person", is_progress_shared=True)
    episode = make_episode(person)
    administration, _ = submit(db_session, episode, PHQ, _phq(16), 0)
    assert administration.scores["primary"] == 16
    db_session.commit()
    auth.login(therapist.email)

    # The caseload: the first measure has no colour yet, but the score says what it is.
    home = client.get("/").get_data(as_text=True)
    assert "Grey: no colour yet" in home
    assert re.search(r"PHQ-9 16</span> <span class=\"severity\"[^>]*>\(moderately severe\)", home)
    assert "band 15\u201319" in home

    # The client page: the latest score, the table and the list of questionnaires.
    page = client.get(f"/clients/{person.code}").get_data(as_text=True)
    assert "Latest: PHQ-9 16 (moderately severe) at session 1, the 1st PHQ-9." in page
    assert "<td>16 (moderately severe)</td>" in page
    assert "score 16 (moderately severe)" in page

    # In Russian.
    russian = client.get(f"/clients/{person.code}",
                         headers={"Accept-Language": "ru"}).get_data(as_text=True)
    assert '<html lang="ru">' in russian
    assert "Последний результат: PHQ-9 16 (умеренно тяжёлая) на встрече 1, 1-й PHQ-9." in russian

    # The progress report, parsed back.
    text = pdf_text(client.get(f"/clients/{person.code}/report.pdf").get_data())
    assert "Latest: PHQ-9 16 (moderately severe) at session 1, the 1st PHQ-9." in text
    assert "16 (moderately severe)" in text and "session 1: 16 (moderately severe)" in text


def test_the_client_sees_the_band_of_their_latest_score(db_session, make_user, make_client,
                                                        make_episode):
    # The client's own view (the thanks page's chart, when the therapist shares it).
    person = make_client(make_user(), is_progress_shared=True)
    episode = make_episode(person)
    submit(db_session, episode, PHQ, _phq(16), 0)
    submit(db_session, episode, PHQ, _phq(12), 1)
    [chart] = client_progress(db_session, episode, LIB)
    assert chart.latest == "Latest: PHQ-9 12 (moderate) at session 2, the 2nd PHQ-9."
    [russian] = client_progress(db_session, episode, LIB, "ru")
    assert russian.latest == ("Последний результат: PHQ-9 12 (умеренная) на встрече 2, "
                              "2-й PHQ-9.")


# --- one meaning of "session" ---------------------------------------------------------

FIRST = dt.datetime(2026, 6, 1, 9, tzinfo=dt.UTC)
MISSED = 8  # the session without a GAD-7


def _gad(total: int) -> dict:
    values = {f"gad7_{i}": 0 for i in range(1, 8)}
    for i in range(total):
        values[f"gad7_{i % 7 + 1}"] += 1
    return values


@pytest.fixture
def sixteen_sessions(db_session, make_user, make_client, make_episode, make_appointment):
    """16 attended weekly sessions (and one cancelled between them); a GAD-7 before each
    but the 8th: 15 GAD-7s, the last at session 16."""
    therapist = make_user()
    person = make_client(therapist, name="Sixteen Sessions", is_progress_shared=True)
    episode = make_episode(person, opened_on=FIRST.date())
    make_appointment(episode, starts_dt=FIRST + dt.timedelta(days=3), status="cancelled")
    for k in range(16):
        starts = FIRST + dt.timedelta(weeks=k)
        appointment = make_appointment(episode, starts_dt=starts, status="attended")
        if k + 1 == MISSED:
            continue
        answers = parse_answers(GAD, _gad(max(16 - k, 3)))
        completed = starts - dt.timedelta(hours=1)
        submit_administration(db_session, episode=episode, instrument=GAD, answers=answers,
                              completed_dt=completed, idempotency_key=f"gad:{k}", library=LIB,
                              now=completed, appointment_id=appointment.id)
    db_session.commit()
    return therapist, person, episode


def test_sessions_are_treatment_sessions_and_counts_are_ordinals(
        auth, client, db_session, sixteen_sessions):
    therapist, person, episode = sixteen_sessions

    rows = caseload(db_session, therapist, now=FIRST + dt.timedelta(weeks=20), library=LIB)
    [row] = rows
    [gad] = row.outcomes
    assert row.session == 16 and gad.session == 16  # the same session, not the 15th form
    assert gad.latest == 3 and gad.severity == "minimal"

    record = client_record(db_session, episode, LIB, full=True)
    [chart] = record.outcome_charts
    sessions = [r[0] for r in chart.rows]
    assert sessions == [s for s in range(1, 17) if s != MISSED]
    assert chart.data.sessions == tuple(sessions)
    assert chart.latest == "Latest: GAD-7 3 (minimal) at session 16, the 15th GAD-7."
    assert "session 16: 3 (minimal" in chart.description
    assert {a.session for a in record.administrations} == set(sessions)

    auth.login(therapist.email)
    home = client.get("/").get_data(as_text=True)
    row_html = home[home.index("Sixteen Sessions"):]
    row_html = row_html[:row_html.index("</tr>")]
    assert re.search(r"<td class=\"session\"[^>]*>16</td>", row_html)  # the Session column
    measure = row_html[row_html.index('<span class="measure">'):]
    assert "GAD-7 3" in measure and "(minimal)" in measure
    assert "(session 16" in measure and "session 15" not in measure

    page = client.get(f"/clients/{person.code}").get_data(as_text=True)
    assert "at session 16, the 15th GAD-7" in page
    assert f"session {MISSED}:" not in page  # no GAD-7 at the missed session

    text = pdf_text(client.get(f"/clients/{person.code}/report.pdf").get_data())
    assert "at session 16, the 15th GAD-7" in text
    assert "session 16: 3 (minimal" in text

    [mine] = client_progress(db_session, episode, LIB)
    assert mine.data.sessions == tuple(sessions)
    assert mine.latest.endswith("at session 16, the 15th GAD-7.")


def test_signal_explanations_name_the_same_session(db_session, sixteen_sessions):
    therapist, _, episode = sixteen_sessions
    record = client_record(db_session, episode, LIB, full=True)
    [row] = caseload(db_session, therapist, now=FIRST + dt.timedelta(weeks=20), library=LIB)
    assert "at session 16" in row.progress_text
    assert all("session 15" not in e["text"] for e in record.explanations)
