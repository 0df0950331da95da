"""Issue 18: the client report, a one-page PDF and the "review together" page.

The clinical text first: every sentence must match the numbers (reliable change by the
measure's own rule, PHQ-9 6 points inclusive; the usual dividing line, PHQ-9 10; the band
only with a fitted curve). Then the page: one A4 page with the largest content, the same
bytes for the same data, escaped goals, Russian in DejaVu, PNGs in
test-artifacts/client-report/; and the routes: own therapist only, audited, a clear 400
for a bad ``?lang=``.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import shutil
import subprocess

import pytest
from pypdf import PdfReader
from sqlalchemy import func
from sqlalchemy import select

from outcome.core.answers import parse_answers
from outcome.models import AuditEvent
from outcome.services.client_report import client_report
from outcome.services.client_report import client_report_pdf
from outcome.services.goals import set_goals
from outcome.services.submissions import submit_administration
from reports.charts import TrajectoryData
from reports.client_report import ClientReport
from reports.client_report import GoalProgress
from reports.client_report import MeasureChange
from reports.client_report_pdf import render_client_report
from tests.helpers import CANARY
from tests.helpers import LIB
from tests.helpers import T0
from tests.helpers import artifacts
from tests.helpers import flat
from tests.test_access_matrix import normalised
from tests.test_trajectory_service import stored_fit

PHQ = LIB.get("phq9")
NOW = dt.datetime(2026, 11, 16, 9, 0, tzinfo=dt.UTC)
GOAL_MARKUP = '<b>x</b><img src="/etc/passwd"/>'
IMPROVED = "This is a clear improvement."
NOT_YET = "This is not yet a clear change."
HARDER = "Your score has moved in the harder direction"
BELOW = "Your latest score is below the usual dividing line of 10."
AT_OR_ABOVE = "Your latest score is at or above the usual dividing line of 10."
BAND = ("The shaded area shows where about two in three people who started with a similar "
        "score were at each session. Below it means doing better than most of them.")
NOT_ENOUGH = "There are not enough answers yet to show a change."


def pdf_text(body: bytes) -> str:
    return flat(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(body)).pages))


def pngs(body: bytes, name: str) -> list:
    """Each page of ``body`` as test-artifacts/client-report/<name>-<n>.png (80 dpi)."""
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    folder = artifacts("client-report")
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(f"{name}-*.png"):
        old.unlink()
    source = folder / f"{name}.pdf"
    source.write_bytes(body)
    subprocess.run(["pdftoppm", "-r", "80", "-png", str(source), str(folder / name)],
                   check=True, timeout=60)
    return sorted(folder.glob(f"{name}-*.png"))


def phq(store, episode, total: int, week: int) -> None:
    """A PHQ-9 totalling ``total`` (items 1-8; item 9 is 0), ``week`` weeks after T0."""
    base, extra = divmod(total, 8)
    values = {f"phq9_{i}": base + (1 if i <= extra else 0) for i in range(1, 9)}
    answers = parse_answers(PHQ, {**values, "phq9_9": 0})
    when = T0 + dt.timedelta(weeks=week)
    submit_administration(store, episode=episode, instrument=PHQ, answers=answers,
                          completed_dt=when, idempotency_key=f"{episode.id}:{week}",
                          library=LIB, now=when)


@pytest.fixture
def course(db_session, make_user, make_client, make_episode):
    """``course(totals)``: a new client whose PHQ-9 totals are ``totals``, one a week;
    returns (client, episode)."""
    def make(totals, **client_fields):
        person = make_client(make_user(), **client_fields)
        episode = make_episode(person)
        for week, total in enumerate(totals):
            phq(db_session, episode, total, week)
        db_session.flush()
        return person, episode
    return make


def sentences(db_session, person, episode, locale="en") -> str:
    report = client_report(db_session, person, episode, LIB, NOW, locale)
    (measure,) = report.measures
    return " ".join(measure.sentences)


# --- the clinical text: each sentence matches the numbers ---------------------------------


def test_recovered_is_a_clear_improvement_below_the_dividing_line(db_session, course):
    person, episode = course([17, 14, 9, 4])  # 13 points down, from 17 to 4: recovered
    text = sentences(db_session, person, episode)
    assert "Your PHQ-9 score was 17 at session 1 and 4 at session 4." in text
    assert "On the PHQ-9, lower scores mean fewer difficulties." in text
    assert "a change of 6 or more is larger than the usual ups and downs" in text
    assert IMPROVED in text and BELOW in text
    assert NOT_YET not in text and HARDER not in text


def test_reliable_improvement_still_above_the_line_does_not_say_below(db_session, course):
    person, episode = course([20, 14])  # 6 points: reliable (inclusive), still >= 10
    report = client_report(db_session, person, episode, LIB, NOW)
    assert report.measures[0].category == "improved"
    text = " ".join(report.measures[0].sentences)
    assert IMPROVED in text
    assert "dividing line" not in text


def test_five_points_is_not_yet_a_clear_change(db_session, course):
    person, episode = course([16, 11])  # 5 points: within the threshold of 6
    report = client_report(db_session, person, episode, LIB, NOW)
    assert report.measures[0].category == "unchanged"
    text = " ".join(report.measures[0].sentences)
    assert NOT_YET in text
    assert "improve" not in text.lower() and "recover" not in text.lower()


def test_below_the_line_without_a_reliable_change_is_a_fact_not_progress(db_session,
                                                                         course):
    person, episode = course([12, 8])  # below 10 now, but only 4 points: not recovered
    text = sentences(db_session, person, episode)
    assert NOT_YET in text and BELOW in text
    assert "improve" not in text.lower() and "recover" not in text.lower()


def test_reliable_deterioration_into_the_clinical_range_is_said_gently(db_session, course):
    person, episode = course([6, 14])  # 8 points worse, from below 10 to above: harmed
    report = client_report(db_session, person, episode, LIB, NOW)
    assert report.measures[0].category == "harmed"
    text = " ".join(report.measures[0].sentences)
    assert HARDER in text and "worth talking about together" in text
    assert AT_OR_ABOVE in text
    assert "improve" not in text.lower() and NOT_YET not in text


def test_reliable_deterioration_within_the_clinical_range(db_session, course):
    person, episode = course([12, 20])  # 8 points worse, clinical at both ends
    report = client_report(db_session, person, episode, LIB, NOW)
    assert report.measures[0].category == "deteriorated"
    text = " ".join(report.measures[0].sentences)
    assert HARDER in text and "dividing line" not in text


@pytest.fixture
def between_sessions(db_session, make_user, make_client, make_episode, make_appointment):
    """``between_sessions(totals)``: PHQ-9 ``totals`` one a week, with sessions held in the
    weeks of all but the last, so the last score is answered between sessions and counts
    at the same session as the one before it; returns (client, episode)."""
    def make(totals):
        person = make_client(make_user())
        episode = make_episode(person)
        for week in range(len(totals) - 1):
            make_appointment(episode, starts_dt=T0 + dt.timedelta(weeks=week),
                             status="attended")
        make_appointment(episode, starts_dt=T0 + dt.timedelta(weeks=len(totals) + 1))
        for week, total in enumerate(totals):
            phq(db_session, episode, total, week)
        db_session.flush()
        return person, episode
    return make


# Each category of the LATEST score against the first, where the score before it (at the
# same session) is in another category: the words follow first against latest, never the
# other score of that session (domain.md section 3: first and last valid administration).
SAME_SESSION = [
    # (totals, category, sentence, line): line is the dividing-line sentence or None
    ([17, 10, 14], "unchanged", NOT_YET, None),  # 10 was improved; 17 to 14 is 3 points
    ([20, 19, 14], "improved", IMPROVED, None),  # 6 points, still at or above 10
    ([17, 14, 8], "recovered", IMPROVED, BELOW),  # 9 points, from 17 to below 10
    ([12, 13, 20], "deteriorated", HARDER, None),  # 8 points worse, clinical throughout
    ([6, 7, 14], "harmed", HARDER, AT_OR_ABOVE),  # 8 points worse, into the clinical range
    ([6, 14, 8], "unchanged", NOT_YET, BELOW),  # 14 was harmed; 6 to 8 is 2 points
]


@pytest.mark.parametrize(("totals", "category", "sentence", "line"), SAME_SESSION,
                         ids=[f"{c}-{t[1]}" for t, c, _s, _l in SAME_SESSION])
def test_the_latest_score_is_judged_even_when_it_shares_a_session(
        db_session, between_sessions, totals, category, sentence, line):
    from outcome.services.client_record import client_record
    from outcome.services.signals import update_episode_signals
    person, episode = between_sessions(totals)
    report = client_report(db_session, person, episode, LIB, NOW)
    (measure,) = report.measures
    text = " ".join(measure.sentences)
    last = len(totals) - 1  # the last two scores share this session
    assert (f"Your PHQ-9 score was {totals[0]} at session 1 and {totals[-1]} at session "
            f"{last}.") in text
    assert measure.description.endswith(f"session {last}: {totals[-2]}; "
                                        f"session {last}: {totals[-1]}.")
    assert measure.category == category
    assert (measure.first, measure.latest) == (totals[0], totals[-1])
    assert sentence in text
    for other in {IMPROVED, NOT_YET, HARDER} - {sentence}:
        assert other not in text, other
    if line is None:
        assert "dividing line" not in text
    else:
        assert line in text
    # The therapist's page says the same of the same two scores.
    update_episode_signals(db_session, episode, LIB, NOW)
    record = client_record(db_session, episode, LIB, full=True)
    assert record.change is not None and record.change.category == category


def test_one_score_is_not_enough_to_show_a_change(db_session, course):
    person, episode = course([15])
    report = client_report(db_session, person, episode, LIB, NOW)
    (measure,) = report.measures
    assert measure.chart is None and measure.category is None
    assert NOT_ENOUGH in measure.sentences
    assert "Your PHQ-9 score was 15 at session 1." in measure.sentences
    assert not any("improve" in s or "change of" in s for s in measure.sentences)


def test_no_answers_at_all(db_session, make_user, make_client, make_episode):
    person = make_client(make_user())
    report = client_report(db_session, person, make_episode(person), LIB, NOW)
    assert report.measures == () and report.empty == "There are no answers yet."
    report = client_report(db_session, person, None, LIB, NOW)
    assert report.empty == "There are no answers yet."


def test_the_band_only_with_a_fitted_curve(db_session, course):
    person, episode = course([18, 15, 12, 10, 8])
    without = client_report(db_session, person, episode, LIB, NOW).measures[0]
    assert without.chart is not None and without.chart.band_low is None
    assert without.band_note == ""
    stored_fit(db_session, episode.clinic_id)  # 400 episodes: enough for the colours
    with_fit = client_report(db_session, person, episode, LIB, NOW).measures[0]
    assert with_fit.chart is not None and with_fit.chart.band_low is not None
    assert with_fit.band_note == BAND
    # The chart is the client's: no therapist's legend, markers or jargon.
    assert with_fit.chart.band_label == "" and with_fit.chart.markers == ()
    assert with_fit.chart.cutoff_label == "usual dividing line"


def test_the_band_words_follow_the_bands_percentiles(db_session, course):
    """The shaded area lies between the BAND_LOW and BAND_HIGH residual percentiles
    (trajectory.py); the words say the share of people inside it (about two in three for
    25 to 90) and that the better side of it is better than most (1 - BAND_LOW > 1/2)."""
    import inspect

    import numpy as np

    from outcome.core.trajectory import BAND_HIGH
    from outcome.core.trajectory import BAND_LOW
    from outcome.core.trajectory import TrajectoryModel
    from outcome.services.client_report import band_note
    from outcome.services.client_report import share_words
    defaults = inspect.signature(TrajectoryModel.band).parameters
    assert (defaults["low"].default, defaults["high"].default) == (BAND_LOW, BAND_HIGH)
    person, episode = course([18, 15, 12, 10, 8])
    model = stored_fit(db_session, episode.clinic_id)
    measure = client_report(db_session, person, episode, LIB, NOW).measures[0]
    assert measure.chart is not None and measure.chart.band_low is not None
    low, high = model.band(np.full(5, 18.0), np.arange(1, 6), low=BAND_LOW, high=BAND_HIGH)
    assert measure.chart.band_low == pytest.approx(tuple(low))
    assert measure.chart.band_high == pytest.approx(tuple(high))
    share = share_words(BAND_HIGH - BAND_LOW, "en")
    assert measure.band_note == band_note(PHQ, "en")
    assert f"where about {share} people" in measure.band_note
    assert 1 - BAND_LOW > 0.5 and "better than most" in measure.band_note
    assert (BAND_LOW, BAND_HIGH, share) == (0.25, 0.90, "two in three")  # as domain.md says


@pytest.mark.parametrize(("fraction", "words"), [
    (0.65, "two in three"), (2 / 3, "two in three"), (0.75, "three in four"),
    (0.8, "four in five"), (0.9, "nine in ten"), (0.5, "50 in 100"), (0.6, "60 in 100")])
def test_a_share_is_said_as_a_simple_fraction_only_when_close(fraction, words):
    from outcome.services.client_report import share_words
    assert share_words(fraction, "en") == words


def test_the_better_side_of_the_band_follows_the_measures_direction():
    from outcome.services.client_report import band_note
    assert "Below it means doing better" in band_note(PHQ, "en")
    assert "Above it means doing better" in band_note(LIB.get("ors_vas"), "en")
    assert band_note(PHQ, "ru") == (
        "Закрашенная область показывает, где на каждой встрече были примерно двое из трёх "
        "человек, начинавших с похожего балла. Ниже неё — лучше, чем у большинства "  # noqa: RUF001
        "из них.")
    assert "Выше неё" in band_note(LIB.get("ors_vas"), "ru")


def test_a_fit_on_too_few_episodes_draws_no_band(db_session, course):
    person, episode = course([18, 15, 12])
    stored_fit(db_session, episode.clinic_id, n_episodes=10)  # fewer than the minimum
    measure = client_report(db_session, person, episode, LIB, NOW).measures[0]
    assert measure.chart is not None and measure.chart.band_low is None
    assert measure.band_note == ""


def test_the_report_carries_no_alerts_answers_or_notes(db_session, case):
    """The case has a critical answer (item 9) with an alert, an alliance rupture and
    item answers: none of it reaches the client's page."""
    therapist, person, episode = case
    body = client_report_pdf(db_session, person, episode, LIB, NOW)
    text = pdf_text(body).replace(CANARY, "")  # a goal of the case is the canary
    for word in ("alert", "Alert", "critical", "Critical", "item 9", "rupture", "SRS",
                 "Red", "red", "yellow", "green", "Little interest", "supervisor",
                 therapist.display_name):
        assert word not in text, word
    assert "PHQ-9" in text and "Sleep through the night" in text


def test_goals_with_first_and_latest_ratings(db_session, case):
    _therapist, person, episode = case
    report = client_report(db_session, person, episode, LIB, NOW)
    first, second = report.goals
    assert first.description == "Sleep through the night"
    assert first.text == "First rated 2 at session 1; most recently 6 at session 3."
    assert second.text == "First rated 1 at session 1; most recently 5 at session 3."
    assert report.goal_scale == ("Goals are rated from 0 (not at all met) to 10 "
                                 "(goal reached).")


# --- the PDF: one page, same bytes, escaped, Russian ---------------------------------------


def largest_report(locale: str = "en") -> ClientReport:
    """Three measures of 20 sessions with bands, three goals of 500 characters.

    Each measure's sentences come from the service's own code with the instrument's own
    definition (direction, reliable-change rule, cutoff): PHQ-9 18 to 8 and GAD-7 16 to 6
    (both recovered), K10 29 to 19 (no threshold without the clinic's intake SD; below 20).
    """
    from outcome.services.client_record import ChartView
    from outcome.services.client_report import _measure  # the report's own sentences
    sessions = tuple(range(1, 21))

    def measure(instrument_id: str, start: float) -> MeasureChange:
        instrument = LIB.get(instrument_id)
        low, high = instrument.primary_range
        assert instrument.cutoff is not None

        def inside(value: float) -> float:
            return float(min(high, max(low, value)))

        scores = tuple(inside(round(start - 0.6 * s + (s % 3))) for s in sessions)
        data = TrajectoryData(
            title=instrument.short_name, sessions=sessions, scores=scores, y_min=low,
            y_max=high, cutoff=instrument.cutoff.value,
            band_low=tuple(inside(start - 0.8 * s) for s in sessions),
            band_high=tuple(inside(start + 2 - 0.3 * s) for s in sessions))
        chart = ChartView(instrument_id, data, "",
                          tuple((s, "", v, "") for s, v in zip(sessions, scores, strict=True)))
        return _measure(instrument, chart, None, locale, drawn=True)

    long = "I would like to " + "sleep better and walk in the park every morning " * 10
    return ClientReport(
        client_name="Александра Константинопольская-Ходжсон", produced=dt.date(2026, 11, 16),
        locale=locale, intro="This page shows how your answers have changed. " * 3,
        measures=(measure("phq9", 18), measure("gad7", 16), measure("k10", 29)),
        goals=tuple(GoalProgress(n, (long * 2)[:500], "First rated 2 at session 1; most "
                                 "recently 8 at session 20.") for n in (1, 2, 3)),
        goal_scale="Goals are rated from 0 (not at all met) to 10 (goal reached).",
        closing="Scores go up and down from week to week. " * 2)


def test_the_largest_content_fits_one_a4_page():
    body = render_client_report(largest_report())
    reader = PdfReader(io.BytesIO(body))
    assert len(reader.pages) == 1
    width, height = (float(v) for v in reader.pages[0].mediabox.upper_right)
    assert (round(width), round(height)) == (595, 842)  # A4
    text = pdf_text(body)
    assert "Your progress" in text and "Page 1 of 1" in text
    assert "Александра" in text
    for name in ("PHQ-9", "GAD-7", "K10"):
        assert name in text
    # The third goal's end is still on the page: shrunk, not cut.
    assert text.count("Goal 3") == 1 and "most recently 8 at session 20" in text
    assert reader.metadata.title == "Your progress"  # no name in the metadata
    assert len(pngs(body, "largest")) == 1


def test_the_largest_content_says_each_measures_own_thresholds():
    """The committed largest-1.png is built from true sentences: each measure's own
    reliable-change rule and cutoff (domain.md section 2: PHQ-9 6 points and 10, GAD-7 4
    points and 8, K10 cutoff 20 and an RCI that needs the clinic's intake SD)."""
    phq9, gad7, k10 = (" ".join(m.sentences) for m in largest_report().measures)
    assert "On the PHQ-9, a change of 6 or more" in phq9 and "dividing line of 10." in phq9
    assert "On the GAD-7, a change of 4 or more" in gad7 and "dividing line of 8." in gad7
    assert "The size of a clear change on the K10 is not set yet" in k10
    assert "dividing line of 20." in k10 and "change of 6" not in k10
    assert "change of 6" not in gad7 and "dividing line of 10" not in gad7 + k10
    for measure in largest_report().measures:
        assert measure.chart is not None
        assert all(float(v).is_integer() for v in measure.chart.scores)
        low, high = LIB.get(measure.instrument.lower().replace("-", "")).primary_range
        assert low <= min(measure.chart.scores) and max(measure.chart.scores) <= high


def test_same_data_same_bytes(db_session, case):
    _therapist, person, episode = case
    first = client_report_pdf(db_session, person, episode, LIB, NOW)
    assert client_report_pdf(db_session, person, episode, LIB, NOW) == first
    assert render_client_report(largest_report()) == render_client_report(largest_report())


def test_a_goal_written_as_markup_is_printed_as_typed(db_session, course):
    person, episode = course([17, 9])
    set_goals(db_session, episode, [GOAL_MARKUP], T0)
    db_session.flush()
    body = client_report_pdf(db_session, person, episode, LIB, NOW)
    assert GOAL_MARKUP in pdf_text(body)
    for needle in (b"/URI", b"/JavaScript", b"/Launch", b"/XObject", b"passwd"):
        assert needle not in body


def test_russian_client_report(db_session, course):
    person, episode = course([17, 14, 9, 4], locale="ru")
    set_goals(db_session, episode, ["Спать всю ночь"], T0)
    db_session.flush()
    body = client_report_pdf(db_session, person, episode, LIB, NOW, "ru")
    text = pdf_text(body)
    for words in ("Ваш прогресс", "Конфиденциально", "Страница 1 из 1", "Спать всю ночь",
                  "Это явное улучшение.", "ниже обычной границы (10)",
                  "16 ноября 2026"):
        assert words in text, words
    for english in ("Your progress", "clear improvement", "session", "Goal"):
        assert english not in text, english
    assert "■" not in text  # the chart's words are printed, not boxes
    assert b"DejaVuSans" in body
    assert len(pngs(body, "russian")) == 1


def test_russian_words_of_a_reliable_deterioration(db_session, course):
    """Plain Russian: "изменился в худшую сторону", "обычная граница"; the listing names
    each session once."""
    person, episode = course([6, 14], locale="ru")
    (measure,) = client_report(db_session, person, episode, LIB, NOW, "ru").measures
    assert measure.sentences[-2:] == (
        "Ваш балл изменился в худшую сторону сильнее обычных колебаний. Об этом стоит "  # noqa: RUF001
        "поговорить вместе.",
        "Ваш последний балл не ниже обычной границы (10).")
    assert measure.description == "Ваши баллы по PHQ-9: встреча 1: 6; встреча 2: 14."
    assert measure.chart is not None and measure.chart.cutoff_label == "обычная граница"
    text = " ".join((*measure.sentences, measure.description))
    assert "привычн" not in text and "трудную сторону" not in text


def test_the_real_record_as_png(db_session, case):
    _therapist, person, episode = case
    stored_fit(db_session, episode.clinic_id)
    body = client_report_pdf(db_session, person, episode, LIB, NOW)
    assert len(PdfReader(io.BytesIO(body)).pages) == 1
    assert BAND in pdf_text(body)
    assert len(pngs(body, "record")) == 1
    russian = client_report_pdf(db_session, person, episode, LIB, NOW, "ru")
    assert len(PdfReader(io.BytesIO(russian)).pages) == 1
    assert "примерно двое из трёх человек" in pdf_text(russian)
    assert len(pngs(russian, "record-ru")) == 1


# --- the routes: own therapist only, audited, a clear 400 for a bad language -------------


def audit(db_session, after: int) -> list[tuple]:
    return [tuple(row) for row in db_session.execute(
        select(AuditEvent.action, AuditEvent.outcome, AuditEvent.client_id)
        .where(AuditEvent.id > after).order_by(AuditEvent.id))]


def last_audit(db_session) -> int:
    return db_session.scalar(select(func.max(AuditEvent.id))) or 0


def test_the_review_page_and_its_pdf(auth, client, case, db_session):
    therapist, person, episode = case
    auth.login(therapist.email)
    record = client.get(f"/clients/{person.code}").get_data(as_text=True)
    assert f'href="/clients/{person.code}/review?episode={episode.id}"' in record
    before = last_audit(db_session)
    response = client.get(f"/clients/{person.code}/review")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert audit(db_session, before) == [("client.review", "allowed", person.id)]
    assert "Nothing is sent to the client automatically" in html
    assert "Download PDF to give to the client" in html
    assert re.search(r'<svg role="img" aria-labelledby="t-r-0 d-r-0"', html)
    assert IMPROVED in html and "Sleep through the night" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "<img src=x" not in html
    assert "critical" not in html.lower().replace("critical answer", "")
    before = last_audit(db_session)
    pdf = client.get(f"/clients/{person.code}/review.pdf?lang=en")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.headers["Content-Disposition"] == (
        f'attachment; filename="{person.code}-for-client.pdf"')
    assert pdf.headers["Cache-Control"] == "no-store"
    assert audit(db_session, before) == [("client.review.pdf", "allowed", person.id)]
    assert len(PdfReader(io.BytesIO(pdf.get_data())).pages) == 1


def test_the_clients_language_by_default_and_a_preview_in_another(auth, client, case,
                                                                   db_session):
    therapist, person, _episode = case
    person.locale = "ru"
    db_session.commit()
    auth.login(therapist.email)
    html = client.get(f"/clients/{person.code}/review").get_data(as_text=True)
    assert 'lang="ru"' in html and "Ваш прогресс" in html
    assert "Download PDF to give to the client" in html  # the therapist's own language
    assert "lang=ru" in html  # the PDF link keeps the language shown
    english = client.get(f"/clients/{person.code}/review?lang=en").get_data(as_text=True)
    assert "Your progress" in english and "Ваш прогресс" not in english
    assert "Ваш прогресс" in pdf_text(client.get(f"/clients/{person.code}/review.pdf")
                                      .get_data())


@pytest.mark.parametrize("value", ["xx", "ru-RU", "<script>", "e" * 5000])
def test_a_bad_language_is_a_400_naming_the_parameter(auth, client, case, db_session, value):
    therapist, person, _episode = case
    auth.login(therapist.email)
    for path in ("review", "review.pdf"):
        before = last_audit(db_session)
        response = client.get(f"/clients/{person.code}/{path}", query_string={"lang": value})
        assert response.status_code == 400
        body = response.get_data(as_text=True)
        assert "lang" in body and "<script>" not in body
        assert audit(db_session, before) == [(f"client.{path.replace('.pdf', '.pdf')}"
                                              if path == "review.pdf" else "client.review",
                                              "denied", person.id)]


def test_others_get_the_same_404_as_an_unknown_code(auth, client, case, db_session,
                                                    make_user, assign):
    therapist, person, _episode = case
    supervisor, other, admin = make_user("supervisor"), make_user(), make_user("admin")
    assign(supervisor, therapist)
    db_session.commit()
    unknown = client.get("/clients/C-ZZZZZZ/review")
    assert unknown.status_code in (302, 401)  # signed out: to the login page
    for user in (other, supervisor, admin):
        auth.login(user.email)
        for path in ("review", "review.pdf"):
            before = last_audit(db_session)
            response = client.get(f"/clients/{person.code}/{path}")
            assert response.status_code == 404
            assert "Ada" not in response.get_data(as_text=True)
            assert audit(db_session, before)[0][1] == "denied"
            missing = client.get(f"/clients/C-ZZZZZZ/{path}")
            assert missing.status_code == 404
            assert normalised(missing) == normalised(response)
        auth.logout()


def ors(db_session, episode, totals) -> None:
    """ORS-type totals (four 0-10 scales, higher is better), one a week."""
    from tests.helpers import submit
    for week, total in enumerate(totals):
        submit(db_session, episode, LIB.get("ors_vas"),
               {f"ors_{i}": total / 4 for i in range(1, 5)}, week)


def test_higher_is_better_recovered_and_harmed(db_session, make_user, make_client,
                                               make_episode):
    """ORS-type: 5 points (unverified), clinical below 25."""
    person = make_client(make_user())
    episode = make_episode(person)
    ors(db_session, episode, [20, 30])  # up 10, from below 25 to above: recovered
    (measure,) = client_report(db_session, person, episode, LIB, NOW).measures
    text = " ".join(measure.sentences)
    assert measure.category == "recovered"
    assert "higher scores mean things are going better" in text
    assert IMPROVED in text
    assert "Your latest score is at or above the usual dividing line of 25." in text

    other = make_client(make_user())
    episode = make_episode(other)
    ors(db_session, episode, [28, 22])  # down 6, from 28 to below 25: harmed
    (measure,) = client_report(db_session, other, episode, LIB, NOW).measures
    text = " ".join(measure.sentences)
    assert measure.category == "harmed"
    assert HARDER in text and "Your latest score is below the usual dividing line of 25." in text
    assert "improve" not in text.lower()


def test_no_threshold_yet_says_nothing_about_change(db_session, make_user, make_client,
                                                    make_episode):
    """K10's reliable change is an RCI from the clinic's intake SD: with one client there
    is none yet, so the page does not say whether the score changed."""
    from tests.helpers import submit
    person = make_client(make_user())
    episode = make_episode(person)
    for week, level in enumerate([4, 2]):
        submit(db_session, episode, LIB.get("k10"),
               {f"k10_{i}": level for i in range(1, 11)}, week)
    (measure,) = client_report(db_session, person, episode, LIB, NOW).measures
    text = " ".join(measure.sentences)
    assert measure.category is None
    assert "The size of a clear change on the K10 is not set yet" in text
    assert "improve" not in text.lower() and NOT_YET not in text


@pytest.mark.parametrize("locale", ["en", "ru"])
def test_no_reader_sees_a_wording_fault(db_session, course, locale):
    """Every category's sentences, in both languages, pass the wording checks of
    tests/test_wording.py (no doubled words, internal ids, template leftovers)."""
    from tests.helpers import faults
    for totals in ([17, 4], [20, 14], [16, 11], [12, 8], [6, 14], [12, 20], [15]):
        person, episode = course(totals)
        set_goals(db_session, episode, ["Sleep"], T0)
        report = client_report(db_session, person, episode, LIB, NOW, locale)
        text = " ".join([report.intro, report.closing, report.goal_scale,
                         *(g.text for g in report.goals),
                         *(s for m in report.measures
                           for s in (*m.sentences, m.description, m.band_note))])
        assert faults(text) == [], (totals, text)
        if locale == "ru":
            assert not re.search(r"[A-Za-z]{4,}", text.replace("PHQ-9", "")), text


def test_an_earlier_episode_and_a_foreign_one(auth, client, case, db_session, make_client,
                                              make_user, make_episode):
    therapist, person, episode = case
    episode.closed_on, episode.end_reason = dt.date(2026, 10, 30), "completed"
    later = make_episode(person, opened_on=dt.date(2026, 11, 1))
    foreign = make_episode(make_client(make_user(), name="Not Mine"))
    db_session.commit()
    auth.login(therapist.email)
    html = client.get(f"/clients/{person.code}/review?lang=en").get_data(as_text=True)
    assert 'name="episode"' in html and "There are no answers yet." in html  # the newest
    earlier = client.get(f"/clients/{person.code}/review?episode={episode.id}&lang=ru")
    assert "Ваш прогресс" in earlier.get_data(as_text=True)
    assert "Это явное улучшение." in earlier.get_data(as_text=True)
    assert f'value="{later.id}"' in html
    for path in ("review", "review.pdf"):
        before = last_audit(db_session)
        response = client.get(f"/clients/{person.code}/{path}?episode={foreign.id}")
        assert response.status_code == 404
        assert audit(db_session, before)[0][1:] == ("denied", person.id)


def test_the_clients_own_chart_after_answering_says_the_same_of_the_band(db_session,
                                                                         course):
    """The chart a client sees after answering (progress_view, thanks page) explains the
    shaded area in the same words as the report, from the band's percentiles; no words
    without a band."""
    from outcome.services.progress_view import client_progress

    person, episode = course([18, 15, 12, 10, 8], is_progress_shared=True)
    (before,) = client_progress(db_session, episode, LIB)
    assert before.data.band_low is None and before.band_note == ""
    stored_fit(db_session, episode.clinic_id)
    (after,) = client_progress(db_session, episode, LIB)
    assert after.data.band_low is not None and after.band_note == BAND
    (russian,) = client_progress(db_session, episode, LIB, "ru")
    assert russian.band_note == client_report(
        db_session, person, episode, LIB, NOW, "ru").measures[0].band_note
