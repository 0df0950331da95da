"""The therapist's progress report PDF: /clients/<code>/report.pdf, from a real record."""

from __future__ import annotations

import datetime as dt
import io

from pypdf import PdfReader
from sqlalchemy import func
from sqlalchemy import select

from outcome.models import Alert
from outcome.models import AuditEvent
from outcome.services.alerts import acknowledge_alert
from tests.helpers import CANARY
from tests.helpers import LIB
from tests.helpers import T0
from tests.helpers import flat
from tests.helpers import save_pngs

NOTE = "Safety plan updated <b>together</b> & shared\nwith the GP"


def pdf_text(body: bytes) -> str:
    reader = PdfReader(io.BytesIO(body))
    return flat(" ".join(page.extract_text() for page in reader.pages))


def audit_events(db_session, after: int, action: str = "client.report.pdf"):
    return db_session.execute(select(AuditEvent.action, AuditEvent.outcome,
                                     AuditEvent.client_id)
                              .where(AuditEvent.id > after, AuditEvent.action == action)
                              .order_by(AuditEvent.id)).all()


def last_audit_id(db_session) -> int:
    return db_session.scalar(select(func.max(AuditEvent.id))) or 0


def test_report_shows_name_scores_charts_goals_and_alerts(auth, client, case, db_session):
    therapist, person, episode = case
    alert = db_session.scalar(select(Alert).where(Alert.episode_id == episode.id,
                                                  Alert.kind == "critical_item"))
    acknowledge_alert(db_session, alert, therapist, NOTE, T0 + dt.timedelta(days=8), LIB)
    db_session.commit()
    auth.login(therapist.email)
    page = client.get(f"/clients/{person.code}").get_data(as_text=True)
    assert "Download progress report (PDF)" in page
    assert f'href="/clients/{person.code}/report.pdf?episode={episode.id}"' in page

    before = last_audit_id(db_session)
    response = client.get(f"/clients/{person.code}/report.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="{person.code}-progress.pdf"')
    assert response.headers["Cache-Control"] == "no-store"
    assert [tuple(e) for e in audit_events(db_session, before)] == [
        ("client.report.pdf", "allowed", person.id)]

    body = response.get_data()
    reader = PdfReader(io.BytesIO(body))
    assert reader.metadata.title == f"Progress report {person.code}"  # no name in it
    assert reader.metadata.author == "outcome"
    text = pdf_text(body)
    # Who, what and when.
    assert "Ada Lovelace" in text and person.code in text
    assert therapist.display_name in text
    assert "opened 1 September 2026, ongoing" in text
    assert "Produced 16 November 2026" in text  # the app's frozen clock
    # The signals in words, the outcome chart's scores and their reliable change.
    assert "What the measures say" in text and "Recovered" in text
    assert ("PHQ-9 by session (lower is better): session 1: 17 (moderately severe); "
            "session 2: 18 (moderately severe); session 3: 10 (moderate; reliable "
            "improvement); session 4: 9 (mild; recovered)") in text
    assert "The clinical cutoff is 10." in text
    # The charts themselves: their axis and cutoff labels are text in the PDF.
    assert "cutoff 10" in text and "concern below 36" in text
    # The alliance chart and its rupture and repair.
    assert "session 3: 28 (rupture)" in text and "session 4: 38 (repair)" in text
    # The heat map and the items that stayed high.
    assert "PHQ-9: items by session" in text
    assert "Items that stayed high" in text and "1. Little interest" in text
    # Goals in the client's words (printed as typed, never parsed), with ratings.
    assert "Sleep through the night" in text
    assert CANARY in text
    assert "session 1: 2; session 2: 4; session 3: 6" in text
    # Alerts, with the acknowledgement note as typed.
    assert "Critical answer" in text
    assert f"Acknowledged by {therapist.display_name}" in text
    assert "Safety plan updated <b>together</b> & shared with the GP" in text
    assert "Page 1 of" in text and "Confidential" in text
    for needle in (b"/URI", b"/JavaScript", b"/Launch"):
        assert needle not in body


def test_progress_report_pages_as_png(auth, client, case):
    therapist, person, _episode = case
    auth.login(therapist.email)
    pngs = save_pngs(client.get(f"/clients/{person.code}/report.pdf").get_data(), "progress")
    assert len(pngs) >= 2 and all(p.stat().st_size > 1000 for p in pngs)


def test_same_record_same_bytes(auth, client, case):
    therapist, person, _episode = case
    auth.login(therapist.email)
    first = client.get(f"/clients/{person.code}/report.pdf").get_data()
    assert client.get(f"/clients/{person.code}/report.pdf").get_data() == first


def test_another_therapist_gets_404_audited_as_denied(auth, client, case, db_session,
                                                      make_user, make_client, make_episode):
    therapist, person, episode = case
    other = make_user()
    db_session.commit()
    auth.login(other.email)
    before = last_audit_id(db_session)
    response = client.get(f"/clients/{person.code}/report.pdf")
    assert response.status_code == 404
    assert "Ada" not in response.get_data(as_text=True)
    assert [tuple(e) for e in audit_events(db_session, before)] == [
        ("client.report.pdf", "denied", person.id)]
    auth.logout()

    # The own therapist naming another client's episode: 404 too, recorded as denied.
    someone = make_client(therapist, name="Someone Else")
    foreign = make_episode(make_client(other, name="Not Mine"))
    make_episode(someone)
    db_session.commit()
    auth.login(therapist.email)
    before = last_audit_id(db_session)
    response = client.get(f"/clients/{someone.code}/report.pdf?episode={foreign.id}")
    assert response.status_code == 404
    assert [tuple(e) for e in audit_events(db_session, before)] == [
        ("client.report.pdf", "denied", someone.id)]
    assert client.get(f"/clients/{person.code}/report.pdf?episode={episode.id}"
                      ).status_code == 200


def test_client_without_an_episode_gets_a_short_report(auth, client, db_session, make_user,
                                                       make_client):
    therapist = make_user()
    person = make_client(therapist, name="Grace Hopper")
    db_session.commit()
    auth.login(therapist.email)
    response = client.get(f"/clients/{person.code}/report.pdf")
    assert response.status_code == 200
    text = pdf_text(response.get_data())
    assert "Grace Hopper" in text and "This client has no episode yet." in text


def test_names_in_other_scripts_print_as_text_not_boxes():
    """The shipped DejaVu Sans covers Cyrillic and Greek (the standard fonts do not)."""
    import io

    from pypdf import PdfReader

    from reports.pdf import FONT
    from reports.pdf import esc
    from reports.pdf import para

    assert FONT == "DejaVuSans"
    from reportlab.platypus import SimpleDocTemplate

    buffer = io.BytesIO()
    SimpleDocTemplate(buffer, invariant=1).build([para(esc("Анна Каренина, Ελένη"))])
    text = PdfReader(io.BytesIO(buffer.getvalue())).pages[0].extract_text()
    assert "Анна Каренина" in text and "Ελένη" in text
