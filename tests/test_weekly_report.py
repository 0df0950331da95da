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
from sqlalchemy import select

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


def test_dump(db_session, alex):
    report = build_weekly(db_session, alex["alex"], WEEK, LIB, NOW)
    print(report)
    pdf = render_weekly(report)
    print(text_of(pdf))
    save_pngs(pdf, "dump")
