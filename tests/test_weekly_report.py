"""The therapist's weekly caseload report (issue 18): figures read from the database and
every sentence of the PDF read back with pypdf; pages rendered to PNG in
``test-artifacts/weekly/``.

One therapist, Alex, in a Berlin clinic, report week 2026-W40 (Monday 28 September to
Sunday 4 October 2026), produced on Monday 5 October at 09:00 Berlin time. PHQ-9 is
answered on Tuesdays at 09:00 UTC from 1 September (week n of :func:`phq`); every item
but the last at ``level``, so a score is 8 x level (+ item 9).

- Anna: 16, 16, 16 then 24 in the week: green -> red (a rise of 8 >= 6 points is a
  reliable deterioration since intake), a "not on track" alert raised Tuesday 29 Sept.
- Борис (Cyrillic): 24 four times (session 4, still clinical, not improved: yellow),
  then 8 in the week (functional range): yellow -> white. A rupture alert acknowledged
  in the week, and one raised after the week (open now, not at the week's end).
- The canary client (a name of markup): 17 (item 9 answered 1: a critical alert,
  Tuesday 8 Sept, still open), 16, 16; green all week; a session in the week unanswered.
- Dora: 24, 24, 8, 0 (recovered), episode ended Friday 2 October, "completed".
- Evan: episode opened Wednesday 30 Sept, no scores (grey), a booked session in the week
  unanswered, a "critical question unanswered" alert raised Sunday 23:30 Berlin time.
- Olga's client Harriet (another therapist): never appears.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from pypdf import PdfReader

from outcome.core.answers import parse_answers
from outcome.models import Alert
from outcome.services.caseload import caseload
from outcome.services.digests.figures import DigestError
from outcome.services.digests.figures import build_digest
from outcome.services.submissions import submit_administration
from outcome.services.therapist_reports.weekly import build_weekly
from outcome.services.therapist_reports.weekly import weekly_pdf
from reports.pdf import for_reader
from reports.weekly_pdf import render_weekly
from tests.helpers import LIB
from tests.helpers import PHQ
from tests.helpers import T0
from tests.helpers import artifacts
from tests.helpers import flat

WEEK = "2026-W40"
NOW = dt.datetime(2026, 10, 5, 7, 0, tzinfo=dt.UTC)  # Monday 09:00 in Berlin
BERLIN = "Europe/Berlin"
CANARY = '<b>x</b><img src="/etc/passwd"/>'
BORIS = "Борис Иванов"


def at(week: int) -> dt.datetime:
    return T0 + dt.timedelta(weeks=week)


def phq(db, episode, week: int, level: int, item9: int = 0, appointment=None) -> None:
    values = {f"phq9_{i}": level for i in range(1, 9)}
    values["phq9_9"] = item9
    answers = parse_answers(PHQ, values)
    assert not isinstance(answers, list), answers
    submit_administration(db, episode=episode, instrument=PHQ, answers=answers,
                          completed_dt=at(week), idempotency_key=f"{episode.id}:{week}",
                          library=LIB, now=at(week),
                          appointment_id=appointment.id if appointment else None)


@pytest.fixture
def alex(db_session, make_clinic, make_user, make_client, make_episode, make_appointment):
    """Alex's caseload for week 2026-W40 (see the module docstring); returns names."""
    clinic = make_clinic(name="Berlin Mitte", timezone=BERLIN)
    alex = make_user(clinic_id=clinic.id, display_name="Alex Rivers")
    olga = make_user(clinic_id=clinic.id, display_name="Olga Other")

    def person(therapist, name, opened=dt.date(2026, 8, 31)):
        client = make_client(therapist, name=name, clinic_id=clinic.id)
        return client, make_episode(client, opened_on=opened)

    def session(episode, week, status="attended", hours=-1.0):
        return make_appointment(episode, starts_dt=at(week) + dt.timedelta(hours=hours),
                                status=status)

    anna, anna_e = person(alex, "Anna Schmidt")
    for week, level in ((0, 2), (1, 2), (2, 2), (4, 3)):
        phq(db_session, anna_e, week, level, appointment=session(anna_e, week))
    boris, boris_e = person(alex, BORIS)
    for week, level in ((0, 3), (1, 3), (2, 3), (3, 3), (4, 1)):
        phq(db_session, boris_e, week, level, appointment=session(boris_e, week))
    canary, canary_e = person(alex, CANARY)
    for week, level, item9 in ((1, 2, 1), (2, 2, 0), (3, 2, 0)):
        phq(db_session, canary_e, week, level, item9, appointment=session(canary_e, week))
    session(canary_e, 4, hours=48)  # Thursday 1 October: held, PHQ-9 not answered
    dora, dora_e = person(alex, "Dora Fischer")
    for week, level in ((0, 3), (1, 3), (2, 1), (3, 0)):
        phq(db_session, dora_e, week, level, appointment=session(dora_e, week))
    dora_e.closed_on, dora_e.end_reason = dt.date(2026, 10, 2), "completed"
    evan, evan_e = person(alex, "Evan Novak", opened=dt.date(2026, 9, 30))
    session(evan_e, 4, status="scheduled", hours=72)  # Friday 2 October, booked
    db_session.add_all([
        Alert(episode_id=evan_e.id, kind="critical_unanswered",
              detail={"text": "PHQ-9 item 9 left unanswered"},
              raised_dt=dt.datetime(2026, 10, 4, 21, 30, tzinfo=dt.UTC)),  # Sun 23:30
        Alert(episode_id=boris_e.id, kind="rupture", status="acknowledged",
              detail={"text": "Alliance rupture at session 4"},
              raised_dt=dt.datetime(2026, 9, 30, 10, tzinfo=dt.UTC),
              acknowledged_dt=dt.datetime(2026, 10, 3, 10, tzinfo=dt.UTC),
              acknowledged_by_id=alex.id, acknowledgement_note="Talked it through"),
        Alert(episode_id=boris_e.id, kind="rupture",
              detail={"text": "Alliance rupture at session 6"},
              raised_dt=dt.datetime(2026, 10, 5, 6, tzinfo=dt.UTC)),  # after the week
    ])
    harriet, harriet_e = person(olga, "Harriet Hidden")
    for week, level in ((0, 1), (1, 1), (4, 3)):
        phq(db_session, harriet_e, week, level, item9=1 if week == 4 else 0,
            appointment=session(harriet_e, week))
    db_session.flush()
    return {"alex": alex, "olga": olga, "clinic": clinic, "anna": anna, "boris": boris,
            "canary": canary, "dora": dora, "evan": evan, "harriet": harriet}


def save_pngs(pdf: bytes, name: str) -> list[Path]:
    """Render each page to ``test-artifacts/weekly/<name>-<n>.png`` (72 dpi)."""
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed: `make browser-tools` "
                    "installs it; the PNG pages were not rendered")
    folder = artifacts("weekly")
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(f"{name}-*.png"):
        old.unlink()
    source = folder / f"{name}.pdf"
    source.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "72", "-png", str(source), str(folder / name)],
                   check=True, timeout=60)
    return sorted(folder.glob(f"{name}-*.png"))


def text_of(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def names(rows) -> list[str]:
    return [row.name for row in rows]


def test_weekly_figures_follow_the_data(db_session, alex):
    report = build_weekly(db_session, alex["alex"], WEEK, LIB, NOW)
    assert (report.week, report.starts, report.ends) == (WEEK, dt.date(2026, 9, 28),
                                                         dt.date(2026, 10, 4))
    assert (report.therapist_name, report.clinic_name, report.timezone,
            report.instrument) == ("Alex Rivers", "Berlin Mitte", BERLIN, "PHQ-9")
    # Anna, Boris, the canary client, Dora (ended in the week) and Evan (opened in it).
    assert report.active_episodes == 5
    assert report.colours == {"red": 1, "yellow": 0, "green": 1, "white": 2, "grey": 1}
    assert sum(report.colours.values()) == report.active_episodes
    # Anna's and Boris's sessions answered; the canary's and Evan's not.
    assert (report.completion.count, report.completion.n) == (2, 4)
    # The caseload now: the caseload page's own rows, in its order (critical answer first).
    rows = caseload(db_session, alex["alex"], now=NOW, library=LIB)
    assert names(report.caseload) == names(rows) == [CANARY, "Anna Schmidt", BORIS,
                                                     "Evan Novak"]
    assert [line.colour for line in report.caseload] == ["green", "red", "white", "grey"]
    assert report.caseload[0].reason.startswith("Thoughts of being better off dead")
    assert report.caseload[2].reason == "Alliance rupture at session 6"  # raised today
    assert [(c.name, c.before, c.after, c.now) for c in report.changes] == [
        ("Anna Schmidt", "green", "red", "red"), (BORIS, "yellow", "white", "white")]
    assert report.changes[0].reason.startswith("Red: PHQ-9 24 at session 4, 16 at intake")
    assert report.changes[1].reason.startswith("White: PHQ-9 8 at session 5")
    # Open at the week's end, oldest first: the acknowledged rupture and the one raised
    # after the week are not; Evan's, raised Sunday 23:30 in Berlin, is 0 days old.
    assert [(a.name, a.kind, a.raised, a.days) for a in report.alerts] == [
        (CANARY, "critical_item", dt.date(2026, 9, 8), 26),
        ("Anna Schmidt", "not_on_track", dt.date(2026, 9, 29), 5),
        ("Evan Novak", "critical_unanswered", dt.date(2026, 10, 4), 0)]
    # Aged as the caseload ages them, read at the week's last minute.
    sunday_night = dt.datetime(2026, 10, 4, 21, 59, tzinfo=dt.UTC)  # 23:59 in Berlin
    aged = {(row.name, reason.kind): reason.days
            for row in caseload(db_session, alex["alex"], now=sunday_night, library=LIB)
            for reason in row.alerts}
    del aged[(BORIS, "rupture")]  # raised after the week (open now, not at its end)
    assert {(a.name, a.kind): a.days for a in report.alerts} == aged
    assert [(e.name, e.closed_on, e.measure, e.category, e.end_reason)
            for e in report.ended] == [("Dora Fischer", dt.date(2026, 10, 2), "PHQ-9",
                                        "recovered", "Completed as planned")]
    assert "Harriet" not in repr(report) and alex["harriet"].code not in repr(report)


def test_weekly_figures_are_the_digests(db_session, alex, make_user, assign):
    """The supervisor's digest and the therapist's report say the same numbers."""
    supervisor = make_user("supervisor", clinic_id=alex["clinic"].id)
    assign(supervisor, alex["alex"])
    digest = build_digest(db_session, supervisor, WEEK, LIB, NOW)
    report = build_weekly(db_session, alex["alex"], WEEK, LIB, NOW)
    figures = digest.sections[0].week
    assert figures.active_episodes == report.active_episodes
    assert figures.colours == report.colours
    assert figures.completion == report.completion
    assert figures.open_alerts == len(report.alerts)
    assert figures.episodes_ended == len(report.ended)
    assert [(category, on) for _, category, on in digest.sections[0].ended] == [
        (e.category, e.measure) for e in report.ended]


def test_weekly_pdf_says_every_figure(db_session, alex):
    pdf = weekly_pdf(db_session, alex["alex"], WEEK, LIB, NOW)
    text = flat(text_of(pdf))
    save_pngs(pdf, "weekly-en")
    assert "Weekly caseload report" in text
    assert ("Week 2026-W40 \u00b7 Monday 28 September 2026 to Sunday 4 October 2026"
            in text)
    assert "As of 5 October 2026, 09:00 (Europe/Berlin)" in text
    assert "Therapist Alex Rivers" in text and "Clinic Berlin Mitte" in text
    assert ("The week\u2019s figures are as at the end of Sunday 4 October 2026 "
            "(Europe/Berlin); the caseload by urgency is as at the time above." in text)
    # Colours, each with its word and meaning, counted of the active episodes.
    assert ("Episodes open at any time this week: 5 (4 open at its end, 1 ended during it), "
            "by colour on PHQ-9" in text)
    assert "Red Yellow Green White Grey" in text
    assert ("not on track less progress than expected on track in the functional range "
            "no colour yet" in text)
    assert ("1 of 5 (20 %) 0 of 5 (0 %) 1 of 5 (20 %) 2 of 5 (40 %) 1 of 5 (20 %)"
            in text)
    assert "Completion Sessions this week with PHQ-9 answered: 2 of 4 (50 %)." in text
    assert "Open alerts 3 open at the end of the week." in text
    assert "Episodes ended 1 ended this week." in text
    # The caseload by urgency, in the caseload page's order, each with its colour word.
    caseload_part = text[text.index("Caseload by urgency"):text.index("Who changed")]
    assert "Open episodes as at 5 October 2026, 09:00 (Europe/Berlin)" in caseload_part
    order = [caseload_part.index(n) for n in ('<b>x</b><img src="/etc/passwd"/>',
                                              "Anna Schmidt", BORIS, "Evan Novak")]
    assert order == sorted(order)
    for code in ("canary", "anna", "boris", "evan"):
        assert alex[code].code in caseload_part
    assert re.search(r"1 <b>x</b><img src=\"/etc/passwd\"/> C-\w+ Green on PHQ-9 Thoughts of "
                     r"being better off dead", caseload_part)
    assert re.search(r"2 Anna Schmidt C-\w+ Red on PHQ-9 Red: PHQ-9 24 at session 4",
                     caseload_part)
    assert re.search(r"3 Борис Иванов C-\w+ White on PHQ-9 Alliance rupture at session 6",
                     caseload_part)
    assert re.search(r"4 Evan Novak C-\w+ Grey PHQ-9 item 9 left unanswered", caseload_part)
    # Who changed colour: from, to, and the explanation of the colour now.
    changes = text[text.index("Who changed colour"):text.index("Open alerts by age")]
    assert re.search(r"Anna Schmidt C-\w+ Green on PHQ-9 \(on track\) \u2192 Red on PHQ-9 "
                     r"\(not on track\) Red: PHQ-9 24 at session 4, 16 at intake", changes)
    assert re.search(r"Борис Иванов C-\w+ Yellow on PHQ-9 \(less progress than expected\) "
                     r"\u2192 White on PHQ-9 \(in the functional range\) White: PHQ-9 8 at "
                     r"session 5", changes)
    assert "Dora" not in changes and "Evan" not in changes and "<b>x</b>" not in changes
    # Open alerts at the week's end, oldest first, with their age in calendar days.
    alerts = text[text.index("Open alerts by age"):text.index("Episodes ended this week")]
    assert "Alerts open at the end of Sunday 4 October 2026 (Europe/Berlin), oldest first." \
        in alerts
    assert re.search(r"<b>x</b><img src=\"/etc/passwd\"/> C-\w+ Critical answer "
                     r"8 September 2026 26 Anna Schmidt C-\w+ Not on track "
                     r"29 September 2026 5 Evan Novak C-\w+ Critical question unanswered "
                     r"4 October 2026 0", alerts)
    assert "rupture" not in alerts.lower() and BORIS not in alerts
    # Episodes ended, with the change category named with its measure, and why.
    ended = text[text.index("Episodes ended this week"):]
    assert re.search(r"Dora Fischer C-\w+ 2 October 2026 PHQ-9: Recovered "
                     r"Completed as planned", ended)
    assert "Harriet" not in text and alex["harriet"].code not in text


def test_same_data_gives_the_same_bytes(db_session, alex):
    first = weekly_pdf(db_session, alex["alex"], WEEK, LIB, NOW)
    assert weekly_pdf(db_session, alex["alex"], WEEK, LIB, NOW) == first
    report = build_weekly(db_session, alex["alex"], WEEK, LIB, NOW)
    assert render_weekly(report) == render_weekly(report) == first


def test_markup_in_a_name_is_printed_not_interpreted(db_session, alex):
    """The canary name is printed whole; no image is drawn (no file is read)."""
    pdf = weekly_pdf(db_session, alex["alex"], WEEK, LIB, NOW)
    assert text_of(pdf).count("/etc/passwd") == 2  # the caseload and the open alerts
    assert b"/Subtype /Image" not in pdf and b"/Subtype/Image" not in pdf


def test_quiet_weeks_say_so(db_session, alex, make_user, make_client, make_episode):
    quiet = make_user(clinic_id=alex["clinic"].id, display_name="Quinn Quiet")
    episode = make_episode(make_client(quiet, name="Steady Stella",
                                       clinic_id=alex["clinic"].id), opened_on=dt.date(2026, 8, 31))
    for week in range(4):
        phq(db_session, episode, week, 2)
    text = flat(text_of(weekly_pdf(db_session, quiet, WEEK, LIB, NOW)))
    assert ("Episodes open at any time this week: 1 (1 open at its end, 0 ended during it)"
            in text and "0 of 1 (0 %) 1 of 1 (100 %)" in text)
    assert "No client changed colour this week." in text
    assert "No alerts were open at the end of the week." in text
    assert "No episodes ended this week." in text
    assert "No sessions were held this week, so there was nothing to complete." in text
    assert "Open alerts 0 open at the end of the week." in text
    assert "Steady Stella" in text and "Alex" not in text and "Anna" not in text
    nobody = make_user(clinic_id=alex["clinic"].id, display_name="Nora New")
    text = flat(text_of(weekly_pdf(db_session, nobody, WEEK, LIB, NOW)))
    assert ("Episodes open at any time this week: 0" in text
            and "No active episodes this week." in text)
    assert "No open episodes." in text


def test_a_week_not_yet_ended_is_refused(db_session, alex):
    with pytest.raises(DigestError, match="has not ended yet"):
        build_weekly(db_session, alex["alex"], "2026-W41", LIB, NOW)
    with pytest.raises(DigestError, match="not an ISO week"):
        build_weekly(db_session, alex["alex"], "week 40", LIB, NOW)


def test_another_therapists_clients_never_appear(db_session, alex, assign):
    """Not even when the therapist also supervises the other one (who then may read her
    clients by code on the supervision pages): this report is their own caseload."""
    alex["alex"].is_supervisor = True
    assign(alex["alex"], alex["olga"])
    db_session.flush()
    text = flat(text_of(weekly_pdf(db_session, alex["alex"], WEEK, LIB, NOW)))
    assert "Harriet" not in text and alex["harriet"].code not in text
    assert "Episodes open at any time this week: 5" in text
    olga = flat(text_of(weekly_pdf(db_session, alex["olga"], WEEK, LIB, NOW)))
    assert "Harriet Hidden" in olga and alex["harriet"].code in olga
    for key in ("anna", "boris", "canary", "dora", "evan"):
        assert alex[key].code not in olga
    assert "Anna" not in olga and BORIS not in olga and "passwd" not in olga


def test_russian_report(db_session, alex):
    alex["alex"].locale = "ru"
    db_session.flush()
    pdf = weekly_pdf(db_session, alex["alex"], WEEK, LIB, NOW)
    save_pngs(pdf, "weekly-ru")
    text = flat(text_of(pdf))
    assert "Еженедельный отчёт по клиентам" in text
    assert ("Неделя 2026-W40 \u00b7 понедельник, 28 сентября 2026 \u2014 воскресенье, "
            "4 октября 2026" in text)
    assert BORIS in text  # Cyrillic names print
    assert "Красный" in text and "Жёлтый" in text
    assert "Кто сменил цвет на этой неделе" in text
    assert "Открытые оповещения по давности" in text
    assert "PHQ-9: Выздоровление" in text or "PHQ-9: Восстановление" in text
    for english in ("Weekly caseload report", "Who changed colour", "Open alerts by age",
                    "Episodes ended this week", "Completed as planned", "Critical answer"):
        assert english not in text, english
    with for_reader(None):  # the context is left as it was
        assert "Weekly caseload report" in text_of(render_weekly(
            build_weekly(db_session, alex["alex"], WEEK, LIB, NOW)))


# --- review findings W3, W4, M1, M2: every colour and change names its measure ----------

GAD = LIB.get("gad7")
PROBE_WEEK = "2026-W38"  # Monday 14 to Sunday 20 September 2026 (UTC clinic)
PROBE_NOW = dt.datetime(2026, 10, 5, 7, tzinfo=dt.UTC)


def _phq_total(total: int) -> dict[str, int]:
    left, values = total, {}
    for i in range(1, 10):
        values[f"phq9_{i}"] = min(3, left) if i < 9 else 0
        left -= values[f"phq9_{i}"]
    return values


def _gad_total(total: int) -> dict[str, int]:
    left, values = total, {}
    for i in range(1, 8):
        values[f"gad7_{i}"] = min(3, left)
        left -= values[f"gad7_{i}"]
    return values


@pytest.fixture
def two_measures(db_session, make_user, make_client, make_episode, make_appointment):
    """The review's probe. Alpha: PHQ-9 12, 11, 5 (green, then white in the week) while
    GAD-7 goes 6, 10, 15 (red: worse by 9 >= 4). Beta: GAD-7 is the episode's own primary
    measure, 15, 9, 5 (recovered on GAD-7), no PHQ-9; ended Thursday 17 September."""
    from outcome.services.signals import update_episode_signals
    from tests.helpers import submit

    therapist = make_user(display_name="Tess")
    alpha = make_client(therapist, name="Alpha")
    alpha_e = make_episode(alpha)
    beta = make_client(therapist, name="Beta")
    beta_e = make_episode(beta, primary_instrument_id="gad7")
    for episode in (alpha_e, beta_e):
        for week in (0, 1, 2):
            make_appointment(episode, starts_dt=at(week), status="attended")
    for week, (p, g) in enumerate([(12, 6), (11, 10), (5, 15)]):
        submit(db_session, alpha_e, PHQ, _phq_total(p), week)
        submit(db_session, alpha_e, GAD, _gad_total(g), week)
    for week, g in enumerate([15, 9, 5]):
        submit(db_session, beta_e, GAD, _gad_total(g), week)
    beta_e.closed_on, beta_e.end_reason = dt.date(2026, 9, 17), "completed"
    db_session.flush()
    for episode in (alpha_e, beta_e):
        update_episode_signals(db_session, episode, LIB, PROBE_NOW)
    return {"therapist": therapist, "alpha": alpha, "beta": beta, "beta_e": beta_e}


def test_a_colour_change_is_said_on_its_measure(db_session, two_measures):
    """W3: the week's colours are on PHQ-9; the caseload's is the episode's worst, here
    GAD-7. Neither is printed without its measure, and "Now" is said only of PHQ-9."""
    report = build_weekly(db_session, two_measures["therapist"], PROBE_WEEK, LIB, PROBE_NOW)
    (change,) = report.changes
    assert (change.name, change.measure, change.before, change.after) == (
        "Alpha", "PHQ-9", "green", "white")
    assert (change.now, change.now_measure, change.now_main) == ("red", "GAD-7", "white")
    assert [(line.name, line.colour, line.measure) for line in report.caseload] == [
        ("Alpha", "red", "GAD-7")]
    text = flat(text_of(render_weekly(report)))
    changes = text[text.index("Who changed colour"):text.index("Open alerts by age")]
    assert re.search(r"Alpha C-\w+ Green on PHQ-9 \(on track\) \u2192 White on PHQ-9 "
                     r"\(in the functional range\) GAD-7 is red \(not on track\): "
                     r"Red: GAD-7 15 at session 3, 6 at intake", changes)
    assert "Now" not in changes
    caseload_part = text[text.index("Caseload by urgency"):text.index("Who changed")]
    assert re.search(r"1 Alpha C-\w+ Red on GAD-7 Red: GAD-7 15", caseload_part)


def test_now_is_said_when_the_same_measure_changed_again(db_session, alex):
    """W3: "Now" is said of the week's own measure only, with that measure's name."""
    report = build_weekly(db_session, alex["alex"], WEEK, LIB, NOW)
    from dataclasses import replace
    anna = replace(report.changes[0], now="yellow", now_main="yellow")
    text = flat(text_of(render_weekly(replace(report, changes=(anna,)))))
    assert "Now Yellow on PHQ-9 (less progress than expected)." in text


def test_an_ended_episode_shows_its_own_change(db_session, two_measures, make_user, assign):
    """W4: the change of an ended episode is the episode's own (its primary measure, or
    the NHS Talking Therapies pair), as the client's page says it; the digest says the same."""
    from outcome.services.client_record import client_record

    report = build_weekly(db_session, two_measures["therapist"], PROBE_WEEK, LIB, PROBE_NOW)
    page = client_record(db_session, two_measures["beta_e"], LIB, full=True).change
    assert page is not None and (page.category, page.measure) == ("recovered", "GAD-7")
    assert [(e.name, e.measure, e.category) for e in report.ended] == [
        ("Beta", "GAD-7", "recovered")]
    text = flat(text_of(render_weekly(report)))
    assert re.search(r"Beta C-\w+ 17 September 2026 GAD-7: Recovered Completed as planned",
                     text)
    assert "no change score" not in text
    supervisor = make_user("supervisor")
    assign(supervisor, two_measures["therapist"])
    digest = build_digest(db_session, supervisor, PROBE_WEEK, LIB, PROBE_NOW)
    assert [(category, on) for _, category, on in digest.sections[0].ended] == [
        ("recovered", "GAD-7")]


def test_the_counts_say_what_they_count(db_session, alex):
    """M1 and M2: the week's episodes are open at any time in it; the caseload is open
    now; the sentences say how the two relate, and what grey is."""
    report = build_weekly(db_session, alex["alex"], WEEK, LIB, NOW)
    assert (report.active_episodes, report.open_at_end, len(report.ended)) == (5, 4, 1)
    assert (len(report.caseload), report.ended_since, report.opened_since) == (4, 0, 0)
    text = flat(text_of(render_weekly(report)))
    assert ("Episodes open at any time this week: 5 (4 open at its end, 1 ended during "
            "it), by colour on PHQ-9 from each one\u2019s scores up to the end of the week "
            "(for an episode that ended, its last score)" in text)
    assert ("Grey: no colour yet: no score by then, or the latest score is from the first "
            "session and outside the functional range (a first score in the functional "
            "range is white), or the measure has no reliable-change threshold yet." in text)
    assert "fewer than two" not in text
    assert ("Open now: 4 (the 4 open at the end of the week, none ended since, none "
            "opened since)." in text)


def test_open_now_counts_episodes_ended_and_opened_since(db_session, alex, make_episode,
                                                          make_client):
    """M1: an episode ended after the week and one opened after it are both said."""
    from sqlalchemy import select

    from outcome.models import Episode

    anna_e = db_session.scalars(select(Episode).where(
        Episode.client_id == alex["anna"].id)).one()
    anna_e.closed_on, anna_e.end_reason = dt.date(2026, 10, 5), "completed"
    newcomer = make_client(alex["alex"], name="Nina New", clinic_id=alex["clinic"].id)
    make_episode(newcomer, opened_on=dt.date(2026, 10, 5))
    db_session.flush()
    report = build_weekly(db_session, alex["alex"], WEEK, LIB, NOW)
    assert (report.active_episodes, report.open_at_end) == (5, 4)
    assert (len(report.caseload), report.ended_since, report.opened_since) == (4, 1, 1)
    text = flat(text_of(render_weekly(report)))
    assert ("Open now: 4 (the 4 open at the end of the week, 1 ended since, 1 opened "
            "since)." in text)


def test_an_ended_episode_under_the_paired_rules_shows_the_pair(db_session, two_measures,
                                                                 make_user, assign):
    """W4: with the clinic's NHS Talking Therapies paired rules on, Alpha (PHQ-9 12 to 5,
    a reliable fall; GAD-7 6 to 15, a reliable rise) has no reliable change on the pair,
    as its client page says, though PHQ-9 alone recovered."""
    from sqlalchemy import select

    from outcome.models import Clinic
    from outcome.models import Episode
    from outcome.services import clinic_settings
    from outcome.services.client_record import client_record
    from outcome.services.signals import recompute_signals

    alpha_e = db_session.scalars(select(Episode).where(
        Episode.client_id == two_measures["alpha"].id)).one()
    alpha_e.closed_on, alpha_e.end_reason = dt.date(2026, 9, 18), "completed"
    clinic = db_session.get(Clinic, alpha_e.clinic_id)
    clinic_settings.update(db_session, clinic, {"paired_rules": True})
    recompute_signals(db_session, LIB, PROBE_NOW, clinic.id)
    db_session.flush()
    page = client_record(db_session, alpha_e, LIB, full=True).change
    assert page is not None
    assert (page.category, page.measure) == ("unchanged",
                                             "PHQ-9 + GAD-7, NHS Talking Therapies")
    report = build_weekly(db_session, two_measures["therapist"], PROBE_WEEK, LIB, PROBE_NOW)
    assert [(e.name, e.category, e.measure) for e in report.ended] == [
        ("Beta", "recovered", "GAD-7"),
        ("Alpha", "unchanged", "PHQ-9 + GAD-7, NHS Talking Therapies")]
    text = flat(text_of(render_weekly(report)))
    assert re.search(r"Alpha C-\w+ 18 September 2026 PHQ-9 \+ GAD-7, NHS Talking "
                     r"Therapies: No reliable change Completed as planned", text)
    supervisor = make_user("supervisor")
    assign(supervisor, two_measures["therapist"])
    digest = build_digest(db_session, supervisor, PROBE_WEEK, LIB, PROBE_NOW)
    assert sorted((category, on) for _, category, on in digest.sections[0].ended) == [
        ("recovered", "GAD-7"), ("unchanged", "PHQ-9 + GAD-7, NHS Talking Therapies")]
    # The digest's rates stay on the main measure (PHQ-9), as their label says.
    assert digest.sections[0].week.recovered.count == 1
