"""Issue 17: staff pages in Russian carry no English signal words (colours, change
categories, alert kinds, explanations, table headers) and no untranslated message ids.

Renders the demo clinic's caseload, client records, care pages and supervision pages with
the reader's language set to Russian and looks for English words a Russian reader would
meet as untranslated interface text. Questionnaire wording on the record (the items'
verbatim text in its original language) is not interface text and is taken out first.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from outcome.db import make_engine
from outcome.models import Client
from outcome.models import User
from outcome.services.demo import DEMO_DOMAIN
from questionnaires.loader import builtin_library

pytestmark = pytest.mark.slow

LIB = builtin_library()
TODAY = dt.date(2026, 11, 22)
PASSWORD = "demo password for tests"
# English words that, on a Russian page, mean an untranslated signal, category, kind,
# explanation or header. Whole words, case-sensitive where a capital marks a label.
SIGNAL_WORDS = (
    "Recovered", "recovered", "Reliably", "reliably", "Improved", "Deteriorated",
    "deteriorated", "Unchanged", "off track", "Off track", "Not on track", "on track",
    "rupture", "Rupture", "critical", "Critical", "green", "amber", "red", "Green", "Amber",
    "Red", "not answered", "score", "Score", "session", "Session", "Question", "Answer",
    "Client", "Therapist", "Alerts", "Goals", "minimal", "mild", "moderate", "severe",
    "moderately severe", "prorated", "acknowledged", "Acknowledge", "unrepaired", "repaired",
    "Expected", "expected", "trajectory", "worse", "better", "None", "none",
)
# A message id left untranslated looks like a dotted key ("change.category.recovered").
MSGID = re.compile(r"\b[a-z_]+\.[a-z_]+\.[a-z_.]+\b")


@pytest.fixture(scope="module")
def seeded(demo_databases):
    """The suite's demo clinic (a copy of its own), in a transaction rolled back at the
    module's end."""
    engine = make_engine(demo_databases.new_url())
    conn = engine.connect()
    outer = conn.begin()
    yield conn
    outer.rollback()
    conn.close()
    engine.dispose()


@pytest.fixture
def connection(seeded):
    savepoint = seeded.begin_nested()
    yield seeded
    if savepoint.is_active:
        savepoint.rollback()


def _wording() -> set[str]:
    """Every questionnaire text a record may quote verbatim (items, options, names)."""
    texts: set[str] = set()
    for instrument in LIB:
        # Measure names ("Session check (not validated)") are names, not interface words.
        texts.update(t for t in (instrument.name, instrument.short_name, instrument.stem) if t)
        for item in instrument.items:
            texts.update(t for t in (item.text, item.label) if t)
            texts.update(o.label for o in item.options if o.label)
    return texts


def _visible(html: str) -> str:
    """The page's text as a reader sees it: no tags, scripts, styles or attribute values,
    and no verbatim questionnaire wording."""
    html = re.sub(r"<(script|style|svg)\b.*?</\1>", " ", html, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", html)
    for quoted in sorted(_wording(), key=len, reverse=True):
        text = text.replace(quoted, " ")
    return re.sub(r"\s+", " ", text)


def problems(html: str) -> list[str]:
    """Each English signal word found, with the words around it (to find its source)."""
    text = _visible(html)
    found = []
    for word in SIGNAL_WORDS:
        match = re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text)
        if match:
            found.append(f"{word!r} in …{text[max(0, match.start() - 60):match.end() + 40]}…")
    found += [f"msgid {m}" for m in MSGID.findall(text) if not m.endswith((".pdf", ".csv"))]
    return found


def _sign_in(client, db_session, handle: str) -> User:
    user = db_session.scalar(select(User).where(User.email == f"{handle}@{DEMO_DOMAIN}"))
    user.locale = "ru"
    db_session.commit()
    from tests.conftest import csrf_token
    token = csrf_token(client.get("/login").get_data(as_text=True))
    signed = client.post("/login", data={"csrf_token": token, "email": user.email,
                                         "password": PASSWORD})
    assert signed.status_code in (302, 303)
    return user


def test_a_russian_therapist_sees_no_english_signal_words(client, db_session, clock):
    clock.set(dt.datetime.combine(TODAY, dt.time(12), tzinfo=dt.UTC)) if hasattr(
        clock, "set") else None
    therapist = _sign_in(client, db_session, "therapist1")
    codes = db_session.scalars(select(Client.code).where(
        Client.therapist_id == therapist.id).order_by(Client.id)).all()
    pages = {"/": client.get("/")}
    for code in codes[:6]:
        pages[f"/clients/{code}"] = client.get(f"/clients/{code}")
        pages[f"/clients/{code}/care"] = client.get(f"/clients/{code}/care")
    report = {}
    for path, response in pages.items():
        assert response.status_code == 200, path
        html = response.get_data(as_text=True)
        assert '<html lang="ru">' in html, path
        if found := problems(html):
            report[path] = found
    _keep(report, "therapist")
    assert report == {}


def _keep(report: dict, who: str) -> None:
    """What was found, in full, for the reader of a failing run."""
    import json
    from pathlib import Path
    folder = Path(__file__).resolve().parent.parent / "test-artifacts"
    folder.mkdir(exist_ok=True)
    (folder / f"russian-signal-words-{who}.json").write_text(
        json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")


def test_a_russian_supervisor_sees_no_english_signal_words(client, db_session):
    supervisor = _sign_in(client, db_session, "supervisor1")
    home = client.get("/supervision/")
    assert home.status_code == 200
    html = home.get_data(as_text=True)
    report = {"/supervision/": problems(html)}
    for path in sorted(set(re.findall(r'href="(/supervision/(?:therapists|clients)/[^"]+)"',
                                      html)))[:6]:
        response = client.get(path)
        assert response.status_code == 200, path
        report[path] = problems(response.get_data(as_text=True))
    assert supervisor.is_supervisor
    _keep({path: found for path, found in report.items() if found}, "supervisor")
    assert {path: found for path, found in report.items() if found} == {}
