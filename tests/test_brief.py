"""The therapist's pre-session brief (issue 18): plain data from real records, the PDF
read back with pypdf, pages rendered to PNG in test-artifacts/brief/."""

from __future__ import annotations

import datetime as dt
import io
import shutil
import subprocess

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from outcome.core.answers import parse_answers
from outcome.models import Appointment
from outcome.services.explanations import say
from outcome.services.signals import update_episode_signals
from outcome.services.submissions import submit_administration
from outcome.services.therapist_reports.brief import brief_pdf
from outcome.services.therapist_reports.brief import build_brief
from reports.brief_pdf import render_brief
from reports.pdf import for_reader
from tests.helpers import LIB
from tests.helpers import T0
from tests.helpers import artifacts
from tests.helpers import faults
from tests.helpers import flat
from tests.helpers import submit

PHQ, GAD, SRS = LIB.get("phq9"), LIB.get("gad7"), LIB.get("srs_vas")
DAY = dt.date(2026, 11, 17)  # a Tuesday; Berlin is UTC+1 then
NOW = dt.datetime(2026, 11, 17, 6, 0, tzinfo=dt.UTC)  # 07:00 in Berlin
MARKUP = '<b>x</b><img src="/etc/passwd"/>'
CYRILLIC = "Анна Каренина"


def local(hour: int, minute: int = 0, day: dt.date = DAY) -> dt.datetime:
    """``hour``:``minute`` in Berlin on ``day`` (UTC+1 in November), as UTC."""
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=dt.UTC) - dt.timedelta(hours=1)


def phq(total: int, item9: int = 0) -> dict[str, int]:
    """PHQ-9 answers summing to ``total``: items 1-8 filled in order, item 9 ``item9``."""
    left = total - item9
    values = {}
    for i in range(1, 9):
        values[f"phq9_{i}"] = min(3, left)
        left -= values[f"phq9_{i}"]
    values["phq9_9"] = item9
    return values


def held(make_appointment, episode, weeks) -> None:
    """Attended appointments at T0 + each week (09:00 UTC, when the answers come)."""
    for week in weeks:
        make_appointment(episode, starts_dt=T0 + dt.timedelta(weeks=week), status="attended")


@pytest.fixture
def day(db_session, clinic, case, make_user, make_client, make_episode, make_appointment):
    """Therapist of ``case`` (Ada) with five appointments on DAY, and the ones not in it."""
    therapist, ada, ada_episode = case
    clinic.timezone = "Europe/Berlin"
    therapist.display_name = "Grace Hopper"
    # Ada: PHQ-9 17, 18, 10, 9, 2 at sessions 1-5, a critical answer at session 2 (open),
    # an SRS rupture at session 3 repaired at 4; a GAD-7 since the last session.
    held(make_appointment, ada_episode, range(5))
    submit(db_session, ada_episode, GAD, {f"gad7_{i}": 1 for i in range(1, 8)}, 4.5)
    make_appointment(ada_episode, starts_dt=local(8))
    # Bo: PHQ-9 8, 16, 16 at sessions 1-3, then 25 (item 9 answered 1) after session 3.
    bo = make_client(therapist, name="Bo Berg")
    bo_episode = make_episode(bo)
    held(make_appointment, bo_episode, range(3))
    for week, total in enumerate([8, 16, 16]):
        submit(db_session, bo_episode, PHQ, phq(total), week)
    submit(db_session, bo_episode, PHQ, phq(25, item9=1), 3)
    make_appointment(bo_episode, starts_dt=local(9, 30))
    # Cy: a first session, nothing answered.
    cy = make_client(therapist, name="Cy Nobody")
    cy_episode = make_episode(cy)
    make_appointment(cy_episode, starts_dt=local(11))
    # Anna (Cyrillic): PHQ-9 15, 12, 10: a change of 2 is not reliable.
    anna = make_client(therapist, name=CYRILLIC)
    anna_episode = make_episode(anna)
    held(make_appointment, anna_episode, range(3))
    for week, total in enumerate([15, 12, 10]):
        submit(db_session, anna_episode, PHQ, phq(total), week)
    # Her SRS of session 3, given for it an hour after it began (after its 50 minutes):
    # part of that session, not "since" it.
    last = db_session.scalars(select(Appointment).where(
        Appointment.episode_id == anna_episode.id).order_by(Appointment.starts_dt.desc())
        ).first()
    when = last.starts_dt + dt.timedelta(hours=1)
    submit_administration(
        db_session, episode=anna_episode, instrument=SRS,
        answers=parse_answers(SRS, {f"srs_{i}": 9.0 for i in range(1, 5)}),
        completed_dt=when, idempotency_key="anna-srs", library=LIB, now=when,
        appointment_id=last.id)
    make_appointment(anna_episode, starts_dt=local(13))
    # A name that is markup: printed as it is.
    odd = make_client(therapist, name=MARKUP)
    odd_episode = make_episode(odd)
    make_appointment(odd_episode, starts_dt=local(15))
    # Not in the brief: cancelled today, tomorrow, yesterday, another therapist's.
    make_appointment(cy_episode, starts_dt=local(16), status="cancelled")
    make_appointment(anna_episode, starts_dt=local(8, day=DAY + dt.timedelta(days=1)))
    make_appointment(odd_episode, starts_dt=local(23, 30, day=DAY - dt.timedelta(days=1)))
    other = make_user()
    other_client = make_client(other, name="Not Mine")
    make_appointment(make_episode(other_client), starts_dt=local(10))
    for episode in (ada_episode, bo_episode, cy_episode, anna_episode, odd_episode):
        update_episode_signals(db_session, episode, LIB, NOW)
    db_session.commit()
    return therapist, {"ada": ada, "bo": bo, "cy": cy, "anna": anna, "odd": odd}


def pdf_pages(body: bytes) -> list[str]:
    return [flat(page.extract_text()) for page in PdfReader(io.BytesIO(body)).pages]


def save_pngs(body: bytes, name: str) -> list:
    """Each page as ``test-artifacts/brief/<name>-<n>.png`` (70 dpi), to look at."""
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    folder = artifacts("brief")
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(f"{name}-*.png"):
        old.unlink()
    source = folder / f"{name}.pdf"
    source.write_bytes(body)
    subprocess.run(["pdftoppm", "-r", "70", "-png", str(source), str(folder / name)],
                   check=True, timeout=60)
    return sorted(folder.glob(f"{name}-*.png"))


def test_the_brief_lists_the_days_appointments_in_time_order(db_session, day):
    therapist, _people = day
    brief = build_brief(db_session, therapist, DAY, LIB, NOW)
    assert [c.name for c in brief.clients] == ["Ada Lovelace", "Bo Berg", "Cy Nobody",
                                               CYRILLIC, MARKUP]
    assert [f"{c.starts:%H:%M}" for c in brief.clients] == ["08:00", "09:30", "11:00",
                                                            "13:00", "15:00"]
    assert brief.produced.hour == 7 and brief.timezone == "Europe/Berlin"
    ada, bo, cy, anna, odd = brief.clients
    # Most urgent: an open critical-answer alert (Ada, Bo), or red (Bo).
    assert [c.is_most_urgent for c in brief.clients] == [True, True, False, False, False]
    assert bo.colour == "red"
    # The reason: the most urgent open alert (Bo's critical answer before his red), else
    # why the colour, without the colour's word (its badge says it).
    assert bo.reason.startswith("Thoughts of being better off dead") and "item 9" in bo.reason
    assert [a.kind for a in bo.alerts] == ["critical_item", "not_on_track"]
    assert anna.reason == "PHQ-9 10 at session 3, 15 at intake: on track."
    # Sessions: the day's appointment's number among the sessions held and scheduled.
    assert (ada.session, bo.session, cy.session, anna.session) == (6, 4, 1, 4)
    # The colour's measures (both of Ada's are in the functional range); the markup-named
    # client's appointment of the evening before is still "scheduled": not marked held.
    assert [(c.colour, c.colour_measure) for c in brief.clients] == [
        ("white", "GAD-7, PHQ-9"), ("red", "PHQ-9"), ("grey", ""), ("green", "PHQ-9"),
        ("grey", "")]
    assert [c.unmarked for c in brief.clients] == [0, 0, 0, 0, 1] and odd.session == 2
    assert not cy.has_answers and cy.since is None and not odd.has_answers


def test_each_sentence_matches_the_numbers(db_session, day):
    therapist, _people = day
    ada, bo, _cy, anna, _odd = build_brief(db_session, therapist, DAY, LIB, NOW).clients
    [ada_phq] = [s for s in ada.scores if s.instrument == "PHQ-9"]
    assert ada_phq.latest.startswith("Latest: PHQ-9 2 (minimal) at session 5")
    assert ada_phq.since_previous == (
        "PHQ-9 since the previous score (session 4): 9 to 2, a reliable improvement "
        "(a change of 6 or more is reliable).")
    assert ada.change.startswith("Since intake (PHQ-9): ")
    assert "Recovered" in ada.change or "recovered" in ada.change
    [bo_phq] = bo.scores
    assert bo_phq.since_previous == (
        "PHQ-9 since the previous score (session 3): 16 to 25, a reliable deterioration "
        "(a change of 6 or more is reliable).")
    [anna_phq] = anna.scores
    assert anna_phq.since_previous == (
        "PHQ-9 since the previous score (session 2): 12 to 10, not a reliable change "
        "(a change of 6 or more is reliable).")
    # Open alerts with their age in the clinic's days (Ada's from 8 September).
    [critical] = [a for a in ada.alerts if a.kind == "critical_item"]
    assert critical.days == (DAY - (T0 + dt.timedelta(weeks=1)).date()).days == 70
    # Items that stayed high: Ada's item 1 at each of her last three PHQ-9s.
    assert [m for m, _items in ada.staying_high] == ["PHQ-9"]
    assert ada.staying_high[0][1][0].startswith("1. ")
    # The alliance: the rupture at session 3 was repaired at session 4.
    [srs] = ada.alliance
    assert srs.status == "repaired" and "Repaired at session 4 (38)" in srs.text
    assert srs.trend == ("SRS-type trend: rising (latest 38.4 against 34.8, the mean of the "
                         "3 before it).")
    # Goals and their ratings.
    assert [g.ratings[-1] for g in ada.goals] == [(3, 6.0), (3, 5.0)]
    # Answered since the last session: Ada's GAD-7 after session 5; Bo's PHQ-9 of 25
    # with its critical answer, after session 3.
    assert [(a.instrument, a.is_critical) for a in ada.answered] == [("GAD-7", False)]
    assert [(a.score, a.is_critical) for a in bo.answered] == [("PHQ-9 25 (severe)", True)]
    assert bo.since is not None and bo.since.date() == (T0 + dt.timedelta(weeks=2)).date()
    # Anna's SRS was given for her last session (after its end): not since it.
    assert anna.answered == () and [a.instrument for a in anna.alliance] == ["SRS-type"]


def test_the_pdf_says_it_and_looks_right(db_session, day):
    therapist, _people = day
    body = brief_pdf(db_session, therapist, DAY, LIB, NOW)
    assert body == brief_pdf(db_session, therapist, DAY, LIB, NOW)  # identical bytes
    reader = PdfReader(io.BytesIO(body))
    assert reader.metadata.title == "Pre-session brief 2026-11-17"  # no name in it
    pages = pdf_pages(body)
    first = pages[0]
    assert "Pre-session brief" in first and "Tuesday 17 November 2026" in first
    assert "As of 17 November 2026, 07:00 (Europe/Berlin)" in first
    assert first.count("Most urgent") == 3  # two marks and the line that says what it means
    assert "Most urgent: an open alert for a critical answer" in first
    order = [first.index(name) for name in ("Ada Lovelace", "Bo Berg", "Cy Nobody",
                                            CYRILLIC, MARKUP)]
    assert order == sorted(order)
    assert "Not Mine" not in " ".join(pages)
    text = " ".join(pages)
    assert "PHQ-9 since the previous score (session 4): 9 to 2, a reliable improvement" in text
    # Bo's PHQ-9 of 25 came after session 3, unlinked: it counts as session 3 (domain.md
    # section 3), and is his 4th PHQ-9.
    assert "Latest: PHQ-9 25 (severe) at session 3, the 4th PHQ-9." in text
    assert "Critical answer given" in text
    assert "open for 70 days" in text
    assert "No answers yet in this episode." in text
    assert "Answered since the last session" in text
    pngs = save_pngs(body, "brief-en")
    assert not faults(text), faults(text)
    assert len(pngs) == len(pages) >= 6  # the list and a page per client at least


def test_a_session_already_held_that_day_is_in_it_and_a_cancelled_one_is_not(db_session,
                                                                             day):
    therapist, people = day
    [today] = [a for a in db_session.scalars(select(Appointment).where(
        Appointment.starts_dt == local(11)))]
    today.status = "attended"
    db_session.flush()
    brief = build_brief(db_session, therapist, DAY, LIB, NOW)
    [cy] = [c for c in brief.clients if c.code == people["cy"].code]
    assert cy.status == "attended" and cy.session == 1
    text = " ".join(pdf_pages(brief_pdf(db_session, therapist, DAY, LIB, NOW)))
    assert "already held" in text
    today.status = "late_cancelled"
    db_session.flush()
    assert people["cy"].code not in [c.code for c in build_brief(
        db_session, therapist, DAY, LIB, NOW).clients]


def test_a_day_without_appointments_is_one_honest_page(db_session, day):
    therapist, _people = day
    body = brief_pdf(db_session, therapist, DAY + dt.timedelta(days=3), LIB, NOW)
    [page] = pdf_pages(body)
    assert "No appointments on this day." in page and "Friday 20 November 2026" in page


def test_markup_in_a_name_prints_as_text(db_session, day):
    therapist, _people = day
    text = " ".join(pdf_pages(brief_pdf(db_session, therapist, DAY, LIB, NOW)))
    assert MARKUP in text


def test_the_brief_in_russian(db_session, day):
    therapist, _people = day
    therapist.locale = "ru"
    db_session.flush()
    body = brief_pdf(db_session, therapist, DAY, LIB, NOW)
    text = " ".join(pdf_pages(body))
    assert CYRILLIC in text
    assert say("Pre-session brief", "ru") in text
    assert say("Most urgent", "ru") in text
    assert "17 ноября 2026" in text
    assert not faults(text), faults(text)
    save_pngs(body, "brief-ru")


def test_rendering_needs_no_database_and_is_invariant(db_session, day):
    therapist, _people = day
    brief = build_brief(db_session, therapist, DAY, LIB, NOW)
    with for_reader(None):
        assert render_brief(brief) == render_brief(brief)


# --- the review's cases (issue 18 review of the brief) ----------------------------------------

K10, WHO = LIB.get("k10"), LIB.get("who5")
EDGE_DAY = dt.date(2026, 10, 6)
EDGE_AT = dt.datetime(2026, 10, 6, 12, tzinfo=dt.UTC)
EDGE_NOW = dt.datetime(2026, 10, 6, 6, tzinfo=dt.UTC)


@pytest.fixture
def edges(db_session, clinic, make_user, make_client, make_episode, make_appointment):
    """Rea answers only at her sessions (PHQ-9 8, 16, 24: red, nothing since the last
    session); Kay's K10 has no reliable-change threshold yet; Pat's first appointment
    (T0) was never marked held; Gia's GAD-7 is red and her PHQ-9 green."""
    therapist = make_user()
    rea = make_client(therapist, name="Rea")
    rea_episode = make_episode(rea)
    held(make_appointment, rea_episode, range(3))
    for week, total in enumerate([8, 16, 24]):
        submit(db_session, rea_episode, PHQ, phq(total), week)
    make_appointment(rea_episode, starts_dt=EDGE_AT)
    kay = make_client(therapist, name="Kay")
    kay_episode = make_episode(kay)
    held(make_appointment, kay_episode, range(2))
    submit(db_session, kay_episode, K10, {f"k10_{i}": 4 for i in range(1, 11)}, 0)
    submit(db_session, kay_episode, K10, {f"k10_{i}": 2 for i in range(1, 11)}, 1)
    make_appointment(kay_episode, starts_dt=EDGE_AT + dt.timedelta(hours=1))
    pat = make_client(therapist, name="Pat")
    pat_episode = make_episode(pat)
    make_appointment(pat_episode, starts_dt=T0)
    make_appointment(pat_episode, starts_dt=EDGE_AT + dt.timedelta(hours=2))
    gia = make_client(therapist, name="Gia")
    gia_episode = make_episode(gia)
    held(make_appointment, gia_episode, range(3))
    for week, (p, g) in enumerate([(12, 6), (11, 10), (10, 15)]):
        submit(db_session, gia_episode, PHQ, phq(p), week)
        submit(db_session, gia_episode, GAD, {f"gad7_{i}": min(3, max(0, g - 3 * (i - 1)))
                                              for i in range(1, 8)}, week)
    make_appointment(gia_episode, starts_dt=EDGE_AT + dt.timedelta(hours=3))
    for episode in (rea_episode, kay_episode, pat_episode, gia_episode):
        update_episode_signals(db_session, episode, LIB, EDGE_NOW)
    db_session.commit()
    return therapist


def test_a_client_who_answers_only_at_sessions_keeps_scores_and_charts(db_session, edges):
    rea, *_rest = build_brief(db_session, edges, EDGE_DAY, LIB, EDGE_NOW).clients
    assert rea.has_answers and rea.answered == () and rea.colour == "red"
    [rea_phq] = rea.scores
    assert rea_phq.latest.startswith("Latest: PHQ-9 24 (severe) at session 3")
    body = brief_pdf(db_session, edges, EDGE_DAY, LIB, EDGE_NOW)
    pages = pdf_pages(body)
    [section] = [p for p in pages[1:] if "Rea" in p]
    assert "No answers yet in this episode." not in section
    assert "Latest: PHQ-9 24 (severe) at session 3" in section
    assert "PHQ-9 since the previous score (session 2): 16 to 24, a reliable deterioration" \
        in section
    assert "Nothing answered since the last session." in section
    save_pngs(body, "brief-edges-en")


def test_an_appointment_never_marked_held_is_said_not_contradicted(db_session, edges):
    clients = build_brief(db_session, edges, EDGE_DAY, LIB, EDGE_NOW).clients
    [pat] = [c for c in clients if c.name == "Pat"]
    # domain.md section 3: a scheduled appointment counts, so today's is session 2.
    assert pat.session == 2 and pat.since is None and pat.unmarked == 1
    [rea] = [c for c in clients if c.name == "Rea"]
    assert rea.unmarked == 0
    text = " ".join(pdf_pages(brief_pdf(db_session, edges, EDGE_DAY, LIB, EDGE_NOW)))
    assert "Session 2 \u00b7 1 earlier appointment not marked as held" in text
    assert "no session held yet" not in text


def test_colour_badges_name_their_measure(db_session, edges):
    clients = build_brief(db_session, edges, EDGE_DAY, LIB, EDGE_NOW).clients
    [gia] = [c for c in clients if c.name == "Gia"]
    assert gia.colour == "red" and gia.colour_measure == "GAD-7"
    [pat] = [c for c in clients if c.name == "Pat"]
    assert pat.colour == "grey" and pat.colour_measure == ""
    pages = pdf_pages(brief_pdf(db_session, edges, EDGE_DAY, LIB, EDGE_NOW))
    assert "Red (GAD-7)" in pages[0] and "Red (PHQ-9)" in pages[0]
    assert "Grey (K10)" in pages[0]
    [section] = [p for p in pages[1:] if "Gia" in p]
    assert "Red (GAD-7)" in section


def test_no_threshold_is_not_called_unreliability(db_session, edges):
    clients = build_brief(db_session, edges, EDGE_DAY, LIB, EDGE_NOW, "ru")
    [kay] = [c for c in clients.clients if c.name == "Kay"]
    [k10] = kay.scores
    assert "надёжного изменения" in k10.since_previous and "K10" in k10.since_previous
    clients = build_brief(db_session, edges, EDGE_DAY, LIB, EDGE_NOW).clients
    [kay] = [c for c in clients if c.name == "Kay"]
    [k10] = kay.scores
    assert k10.since_previous == (
        "K10 since the previous score (session 1): 40 to 20, no reliable-change threshold "
        "is set for K10, so whether this change is reliable is not said.")
    assert "reliability" not in k10.since_previous


def test_the_first_page_notes_say_what_is_true(db_session, edges, day):
    pages = pdf_pages(brief_pdf(db_session, edges, EDGE_DAY, LIB, EDGE_NOW))
    first = pages[0]
    assert "Why they need attention" not in first and "Notes" in first
    # Rea's reason is her not-on-track alert: its colour word is the badge's, not repeated.
    assert "Red: PHQ-9 24" not in first
    assert "PHQ-9 24 at session 3, 8 at intake: worse by 16 points" in first
    assert "Nothing needs attention." not in first
    # Pat has nothing answered.
    assert "No answers yet" in first
    therapist, _people = day
    brief = build_brief(db_session, therapist, DAY, LIB, NOW)
    cy = brief.clients[2]
    assert not cy.has_answers
    first = pdf_pages(brief_pdf(db_session, therapist, DAY, LIB, NOW))[0]
    assert "No answers yet" in first


def test_a_check_whose_link_expired_is_not_said_to_be_waiting(db_session, day):
    """Issue 19 review: the brief reads a check's status as of ``now``
    (plan_marks.check_status): a sent check whose link has closed is not "waiting"."""
    from outcome.models import Episode
    from outcome.services import support

    therapist, people = day
    bo_episode = db_session.scalar(select(Episode).where(Episode.client_id == people["bo"].id))
    check, link, _token = support.start_check(db_session, episode=bo_episode, user=therapist,
                                              now=NOW - dt.timedelta(days=30), library=LIB)
    assert link.valid_until_dt < NOW and check.status == "sent"
    bo = build_brief(db_session, therapist, DAY, LIB, NOW).clients[1]
    assert bo.name == "Bo Berg" and bo.check is None
    support.start_check(db_session, episode=bo_episode, user=therapist,
                        now=NOW - dt.timedelta(hours=1), library=LIB)
    bo = build_brief(db_session, therapist, DAY, LIB, NOW).clients[1]
    assert bo.check is not None and bo.check.status == "sent"
