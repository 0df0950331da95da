"""Issue 17: PDFs in the reader's language. A staff member whose account language is
Russian downloads a Russian progress report (labels, explanations, dates); with no
choice, the browser's language decides, as for pages. Read back with pypdf."""

from __future__ import annotations

import io

from pypdf import PdfReader

from tests.helpers import flat

ENGLISH_LABELS = ("Progress report", "What the measures say", "Outcome measures",
                  "Working alliance", "Items over time", "Alerts", "Confidential",
                  "Produced", "Since intake", "by session", "lower is better",
                  "Not acknowledged", "Page 1 of")


def pdf_text(body: bytes) -> str:
    return flat(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(body)).pages))


def _report(client, auth, case, db_session, locale=None, browser="en"):
    therapist, person, _episode = case
    therapist.locale = locale
    db_session.commit()
    auth.login(therapist.email)
    response = client.get(f"/clients/{person.code}/report.pdf",
                          headers={"Accept-Language": browser})
    assert response.status_code == 200
    return pdf_text(response.get_data())


def test_a_russian_reader_gets_a_russian_progress_report(auth, client, case, db_session):
    text = _report(client, auth, case, db_session, locale="ru")
    for word in ("динамике", "Конфиденциально", "Страница 1 из", "Клиент",
                 "Терапевт", "Оповещения", "по встречам", "чем ниже, тем лучше"):
        assert word in text, word
    assert [label for label in ENGLISH_LABELS if label in text] == []
    # Dates as a Russian reader writes them: the month in words, in Russian.
    assert any(month in text for month in ("января", "февраля", "марта", "апреля", "мая",
                                           "июня", "июля", "августа", "сентября",
                                           "октября", "ноября", "декабря"))


def test_with_no_choice_the_browser_decides_and_english_stays_english(
        auth, client, case, db_session):
    text = _report(client, auth, case, db_session, locale=None, browser="en")
    assert "Progress report" in text and "Confidential" in text
    assert "динамике" not in text



def test_a_russian_supervisor_gets_a_russian_digest():
    from outcome.services.explanations import say
    from reports.digest_pdf import render_digest
    from reports.pdf import for_reader
    from tests.test_digest_pdf import sample_digest
    with for_reader(lambda message: say(message, "ru"), "ru"):
        text = pdf_text(render_digest(sample_digest()))
    for word in ("Сводка для супервизии", "Основные показатели", "Красный", "по плану",
                 "Конфиденциально", "Полнота данных", "Разрывы альянса"):
        assert word in text, word
    english = ("Supervision digest", "Key figures", "not on track", "Data completeness",
               "Alliance ruptures", "This week", "Recovered", "Reliably", "Confidential")
    assert [w for w in english if w in text] == []
    english_text = pdf_text(render_digest(sample_digest()))  # no reader: English, as before
    assert "Supervision digest" in english_text and "Key figures" in english_text
