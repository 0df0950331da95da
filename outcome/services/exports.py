"""A client's answers and scores for other systems: CSV for spreadsheets, FHIR for the EHR.

Both carry the client code, never the name or contact details: the receiving system
matches the code to its own record. Every text cell of the CSV goes through
:func:`outcome.core.spreadsheet.safe_cell` (formula injection, OWASP).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from typing import Any

from sqlalchemy.orm import Session

from outcome.core.answers import Answers
from outcome.core.answers import parse_answers
from outcome.core.spreadsheet import safe_cell
from outcome.models import Client
from outcome.models import Episode
from outcome.services.client_record import appointment_numbers
from outcome.services.client_record import episode_administrations
from questionnaires.fhir import questionnaire_response
from questionnaires.loader import InstrumentLibrary

CSV_COLUMNS = (
    "client_code", "episode_id", "administration_id", "supersedes_id", "instrument",
    "instrument_version", "respondent", "completed_utc", "session", "score", "is_valid",
    "is_prorated", "item", "answer",
)
CODE_SYSTEM = "urn:outcome:client-code"
# A fixed namespace makes FHIR ids stable across exports of the same data.
_NAMESPACE = uuid.UUID("0e6f8b4a-6f0c-4a52-9a3f-6b1f5c2f7d10")


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def episodes_csv(session: Session, client: Client, episodes: list[Episode]) -> str:
    """Long-format CSV: one row per answered item of every administration.

    Columns are :data:`CSV_COLUMNS`; an administration with no answers still has one row
    (item empty). Times are UTC ISO 8601; numbers stay numeric; text cells are made safe
    for spreadsheets.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for episode in episodes:
        numbers = appointment_numbers(session, episode.id)
        for row in episode_administrations(session, episode.id):
            score = (row.scores or {}).get("primary")
            head = [safe_cell(client.code), episode.id, row.id, row.supersedes_id or "",
                    safe_cell(row.instrument_id), safe_cell(row.instrument_version),
                    row.respondent, _utc(row.completed_dt),
                    numbers.get(row.appointment_id, "") if row.appointment_id else "",
                    "" if score is None else f"{score:g}", int(row.is_valid),
                    int(row.is_prorated)]
            answers = sorted(row.answers.items()) or [("", "")]
            for item_id, value in answers:
                cell = safe_cell(value) if isinstance(value, str) else f"{value:g}"
                writer.writerow([*head, safe_cell(item_id), cell])
    return out.getvalue()


def episodes_bundle(session: Session, client: Client, episodes: list[Episode],
                    library: InstrumentLibrary, now: dt.datetime) -> dict[str, Any]:
    """A FHIR R4 ``Bundle`` (collection): the Patient by code, and per administration a
    ``QuestionnaireResponse`` and an ``Observation`` of its total score.

    Superseded administrations are left out (their corrections are included). An
    administration of an instrument the clinic no longer defines is skipped, since its
    answers cannot be coded.
    """
    patient_id = str(uuid.uuid5(_NAMESPACE, f"patient:{client.code}"))
    subject = f"Patient/{patient_id}"
    entries: list[dict[str, Any]] = [{
        "fullUrl": f"urn:uuid:{patient_id}",
        "resource": {"resourceType": "Patient", "id": patient_id,
                     "identifier": [{"system": CODE_SYSTEM, "value": client.code}]}}]
    for episode in episodes:
        rows = episode_administrations(session, episode.id)
        superseded = {row.supersedes_id for row in rows if row.supersedes_id}
        for row in rows:
            if row.id in superseded:
                continue
            try:
                instrument = library.get(row.instrument_id, row.instrument_version)
            except KeyError:
                try:
                    instrument = library.get(row.instrument_id)
                except KeyError:
                    continue
            parsed = parse_answers(instrument, row.answers, allow_incomplete=True)
            if not isinstance(parsed, Answers):
                continue
            response_id = str(uuid.uuid5(_NAMESPACE, f"administration:{row.id}"))
            response = questionnaire_response(instrument, parsed, subject=subject,
                                              authored=row.completed_dt,
                                              response_id=response_id)
            entries.append({"fullUrl": f"urn:uuid:{response_id}", "resource": response})
            score = (row.scores or {}).get("primary")
            if score is None or not row.is_valid:
                continue
            observation_id = str(uuid.uuid5(_NAMESPACE, f"score:{row.id}"))
            code: dict[str, Any] = {"text": f"{instrument.short_name} total score"}
            if instrument.loinc_total:
                code["coding"] = [{"system": "http://loinc.org",
                                   "code": instrument.loinc_total}]
            entries.append({"fullUrl": f"urn:uuid:{observation_id}", "resource": {
                "resourceType": "Observation", "id": observation_id, "status": "final",
                "category": [{"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "survey"}]}],
                "code": code, "subject": {"reference": subject},
                "effectiveDateTime": _utc(row.completed_dt),
                "valueQuantity": {"value": float(score), "unit": "{score}",
                                  "system": "http://unitsofmeasure.org", "code": "{score}"},
                "derivedFrom": [{"reference": f"QuestionnaireResponse/{response_id}"}]}})
    return {"resourceType": "Bundle", "type": "collection", "timestamp": _utc(now),
            "entry": entries}
