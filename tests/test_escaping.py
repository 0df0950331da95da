"""Injected HTML, PDF markup and spreadsheet formulas in every free-text field come out
escaped on every output path (issue 9; security.md, "stored XSS", "formula injection").

The free-text fields: the client's name, their goals (in their own words), an alert's
acknowledgement note, staff display names, an API token's name and the clinic's name.
Each carries a canary; the outputs are the therapist's caseload, client, care and
report pages, the supervisor's client and caseload pages, the admin token and user
pages, the CSV and FHIR exports, the progress report PDF and the API's JSON.
"""

from __future__ import annotations

import csv
import datetime as dt
import io

from pypdf import PdfReader
from sqlalchemy import select

from outcome.core.answers import parse_answers
from outcome.models import Alert
from outcome.services.alerts import acknowledge_alert
from outcome.services.goals import set_goals
from outcome.services.submissions import submit_administration
from questionnaires.loader import builtin_library

LIB = builtin_library()
HTML = '<img src=x onerror=alert(1)>'
ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"
FORMULA = '=HYPERLINK("http://x","y")'
PDF_MARKUP = "<b>bold</b><font color=red>x</font>"
T0 = dt.datetime(2026, 11, 2, 9, tzinfo=dt.UTC)


def test_every_free_text_field_is_escaped_everywhere(
        app, client, auth, db_session, clinic, make_user, make_client, make_episode, assign,
        make_token, clock):
    clinic.name = f"Clinic {HTML}"
    therapist = make_user(display_name=f"Therapist {HTML}")
    supervisor = make_user("supervisor", display_name=f"Supervisor {HTML}")
    admin = make_user("admin")
    assign(supervisor, therapist)
    person = make_client(therapist, name=f"{HTML} {FORMULA}")
    episode = make_episode(person)
    set_goals(db_session, episode, [HTML, FORMULA, PDF_MARKUP], T0)
    phq = LIB.get("phq9")
    for week, level in enumerate((2, 2)):
        when = T0 + dt.timedelta(weeks=week)
        values = {f"phq9_{i}": level for i in range(1, 10)}
        submit_administration(db_session, episode=episode, instrument=phq,
                              answers=parse_answers(phq, values), completed_dt=when,
                              idempotency_key=f"esc-{week}", library=LIB, now=when)
    alert = db_session.scalar(select(Alert).where(Alert.episode_id == episode.id))
    acknowledge_alert(db_session, alert, therapist, f"{HTML} {FORMULA} {PDF_MARKUP}",
                      clock(), LIB)
    db_session.commit()
    secret = make_token(therapist, name=f"EHR {HTML}")

    def pages(email: str, paths: list[str]) -> dict[str, str]:
        auth.login(email)
        out = {}
        for path in paths:
            response = client.get(path)
            assert response.status_code == 200, path
            out[path] = response.get_data(as_text=True)
        auth.logout()
        return out

    html = pages(therapist.email, ["/", f"/clients/{person.code}",
                                   f"/clients/{person.code}/care"])
    html |= pages(supervisor.email, ["/supervision/", f"/supervision/therapists/{therapist.id}",
                                     f"/supervision/clients/{person.code}"])
    html |= pages(admin.email, ["/admin/tokens", "/admin/users"])
    for path, body in html.items():
        assert "<img src=x" not in body, path
        assert "<b>bold</b>" not in body, path
    assert ESCAPED in html[f"/clients/{person.code}"]
    assert ESCAPED in html["/admin/tokens"]

    auth.login(therapist.email)
    exported = client.get(f"/clients/{person.code}/export.csv").get_data(as_text=True)
    for row in csv.reader(io.StringIO(exported)):
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")) or \
                cell.lstrip("-").replace(".", "").isdigit(), cell
    report = client.get(f"/clients/{person.code}/report.pdf")
    assert report.status_code == 200
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(report.data)).pages)
    # Shown as the text typed, neither interpreted as markup nor lost.
    assert "<img src=x onerror=alert(1)>" in text and "<b>bold</b>" in text
    fhir = client.get(f"/clients/{person.code}/export.fhir.json")
    assert fhir.mimetype == "application/fhir+json" and HTML not in fhir.get_data(as_text=True)
    auth.logout()

    api = client.get(f"/api/v1/clients/{person.code}",
                     headers={"Authorization": f"Bearer {secret}"})
    assert api.mimetype == "application/json"
    assert api.get_json()["name"] == f"{HTML} {FORMULA}"  # JSON carries data, not markup
