"""A client's answers and scores for other systems: CSV for spreadsheets, FHIR for the EHR.

Both carry the client code, never the name or contact details: the receiving system
matches the code to its own record. Every text cell of the CSV goes through
:func:`outcome.core.spreadsheet.safe_cell` (formula injection, OWASP).
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.core.answers import Answers
from outcome.core.answers import parse_answers
from outcome.core.instruments import Instrument
from outcome.core.spreadsheet import safe_cell
from outcome.models import Administration
from outcome.models import Client
from outcome.models import Clinic
from outcome.models import ConsentDecision
from outcome.models import ConsentText
from outcome.models import Episode
from outcome.services.client_record import administration_notes
from outcome.services.client_record import episode_administrations
from outcome.services.explanations import render
from outcome.services.sessions import appointment_numbers
from questionnaires.fhir import LOINC
from questionnaires.fhir import questionnaire_response
from questionnaires.loader import InstrumentLibrary

CSV_COLUMNS = (
    "client_code", "episode_id", "administration_id", "supersedes_id", "instrument",
    "instrument_version", "respondent", "completed_utc", "session", "score", "is_valid",
    "is_prorated", "critical_unanswered", "notes", "item", "answer",
)
CODE_SYSTEM = "urn:outcome:client-code"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
# A fixed namespace makes FHIR ids stable across exports of the same data.
_NAMESPACE = uuid.UUID("0e6f8b4a-6f0c-4a52-9a3f-6b1f5c2f7d10")


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def episodes_csv(session: Session, client: Client, episodes: list[Episode],
                 library: InstrumentLibrary) -> str:
    """Long-format CSV: one row per answered item of every administration.

    Columns are :data:`CSV_COLUMNS`; an administration with no answers still has one row
    (item empty). Times are UTC ISO 8601; numbers stay numeric; text cells are made safe
    for spreadsheets. ``critical_unanswered`` lists blank critical items (space
    separated); ``notes`` says in English what must be said beside the
    score, joined by " | " ("prorated; item 9 (the safety question) unanswered", "Probable
    PTSD by the DSM-5 rule: cannot be determined (3 items blank)").
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
                    int(row.is_prorated),
                    safe_cell(" ".join((row.scores or {}).get("critical_unanswered", []))),
                    safe_cell(" | ".join(render(m.id, m.as_json()["params"])
                                         for m in administration_notes(library, row)))]
            answers = sorted(row.answers.items()) or [("", "")]
            for item_id, value in answers:
                cell = safe_cell(value) if isinstance(value, str) else f"{value:g}"
                writer.writerow([*head, safe_cell(item_id), cell])
    return out.getvalue()


def patient_id(code: str) -> str:
    """The stable FHIR ``Patient`` id of the client with ``code``: a UUID (version 5) of
    the code in this system's namespace, the same in every export and search."""
    return str(uuid.uuid5(_NAMESPACE, f"patient:{code}"))


def patient_reference(code: str) -> str:
    """The FHIR reference ``Patient/<uuid>`` of the client with ``code``."""
    return f"Patient/{patient_id(code)}"


def response_id(administration_id: int) -> str:
    """The stable ``QuestionnaireResponse`` id of an administration (UUID version 5)."""
    return str(uuid.uuid5(_NAMESPACE, f"administration:{administration_id}"))


def observation_id(administration_id: int) -> str:
    """The stable total-score ``Observation`` id of an administration (UUID version 5)."""
    return str(uuid.uuid5(_NAMESPACE, f"score:{administration_id}"))


@dataclass(frozen=True)
class AdministrationResources:
    """One stored administration in FHIR R4 form (plain dicts).

    ``observation`` is the total-score Observation, ``None`` when the administration has
    no valid score (too many items unanswered, or an instrument without a total).
    """

    administration: Administration
    instrument: Instrument
    questionnaire_response: dict[str, Any]
    observation: dict[str, Any] | None


def exported_administrations(session: Session, episodes: list[Episode]
                             ) -> list[Administration]:
    """The administrations of ``episodes`` that an export shows, oldest first per episode:
    superseded ones are left out (their corrections are included)."""
    out: list[Administration] = []
    for episode in episodes:
        rows = episode_administrations(session, episode.id)
        superseded = {row.supersedes_id for row in rows if row.supersedes_id}
        out.extend(row for row in rows if row.id not in superseded)
    return out


def _instrument_of(library: InstrumentLibrary, row: Administration) -> Instrument | None:
    try:
        return library.get(row.instrument_id, row.instrument_version)
    except KeyError:
        try:
            return library.get(row.instrument_id)
        except KeyError:
            return None


def administration_resources(row: Administration, library: InstrumentLibrary, subject: str
                             ) -> AdministrationResources | None:
    """The administration as an R4 ``QuestionnaireResponse`` and, if it has a valid
    score, an ``Observation`` of its total (LOINC coded where the instrument has a code:
    PHQ-9 44261-6, GAD-7 70274-6; unit ``{score}``), derived from the response.

    ``subject`` is the Patient reference (:func:`patient_reference`). Ids are stable
    (:func:`response_id`, :func:`observation_id`). ``None`` when the clinic no longer
    defines the instrument (at the stored version or any), since its answers cannot be
    coded.
    """
    instrument = _instrument_of(library, row)
    if instrument is None:
        return None
    parsed = parse_answers(instrument, row.answers, allow_incomplete=True)
    if not isinstance(parsed, Answers):
        return None
    qr_id = response_id(row.id)
    response = questionnaire_response(instrument, parsed, subject=subject,
                                      authored=row.completed_dt, response_id=qr_id)
    score = (row.scores or {}).get("primary")
    if score is None or not row.is_valid:
        return AdministrationResources(row, instrument, response, None)
    code: dict[str, Any] = {"text": f"{instrument.short_name} total score"}
    if instrument.loinc_total:
        code["coding"] = [{"system": LOINC, "code": instrument.loinc_total}]
    observation = {
        "resourceType": "Observation", "id": observation_id(row.id), "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "survey"}]}],
        "code": code, "subject": {"reference": subject},
        "effectiveDateTime": _utc(row.completed_dt),
        "valueQuantity": {"value": float(score), "unit": "{score}",
                          "system": "http://unitsofmeasure.org", "code": "{score}"},
        "derivedFrom": [{"reference": f"QuestionnaireResponse/{qr_id}"}]}
    # A prorated total with a blank safety question, a rule's state: said with the total.
    notes = [render(m.id, m.as_json()["params"]) for m in administration_notes(library, row)]
    if notes:
        observation["note"] = [{"text": text} for text in notes]
    return AdministrationResources(row, instrument, response, observation)


def client_resources(session: Session, client: Client, episodes: list[Episode],
                     library: InstrumentLibrary) -> list[AdministrationResources]:
    """Every exported administration of ``episodes`` (:func:`exported_administrations`)
    in FHIR form, subject the client's stable Patient reference; administrations of
    instruments the clinic no longer defines are skipped."""
    subject = patient_reference(client.code)
    out = []
    for row in exported_administrations(session, episodes):
        resources = administration_resources(row, library, subject)
        if resources is not None:
            out.append(resources)
    return out


# The clinic's consent text, as the Consent's policy: clinic, language and version.
CONSENT_TEXT_SYSTEM = "urn:outcome"


def consent_text_uri(clinic_slug: str, text: ConsentText) -> str:
    """The clinic's consent text version as a URI
    (``urn:outcome:<clinic-slug>:consent-text:en:2``): versions are numbered per clinic."""
    return f"{CONSENT_TEXT_SYSTEM}:{clinic_slug}:consent-text:{text.language}:{text.version}"


def consent_resource(client: Client, decision: ConsentDecision, text: ConsentText,
                     *, clinic_slug: str, in_force: bool) -> dict[str, Any]:
    """One of the client's consent decisions as an R4 ``Consent`` (issue 20).

    R4/R4B semantics: ``status`` is ``active`` for the decision in force (``in_force``)
    and ``inactive`` for one a later decision superseded; ``provision.type`` is
    ``permit`` for an agreement and ``deny`` for a refusal or a withdrawal. ``dateTime``
    when it was decided; scope ``patient-privacy`` and category LOINC 59284-0 (patient
    consent); ``policy`` names the clinic and the text's language and version
    (:func:`consent_text_uri`) and ``sourceAttachment`` carries its exact words, so the
    receiving system knows what the client answered; ``provision`` permits or denies the
    collection of questionnaire answers.
    """
    return {
        "resourceType": "Consent",
        "id": str(uuid.uuid5(_NAMESPACE, f"consent:{decision.id}")),
        "status": "active" if in_force else "inactive",
        "scope": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/consentscope",
            "code": "patient-privacy", "display": "Privacy Consent"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0",
                                  "display": "Patient Consent"}]}],
        "patient": {"reference": patient_reference(client.code)},
        "dateTime": _utc(decision.decided_dt),
        "performer": [{"reference": patient_reference(client.code)}],
        "policy": [{"uri": consent_text_uri(clinic_slug, text)}],
        "sourceAttachment": {
            "contentType": "text/plain; charset=utf-8", "language": text.language,
            "title": f"Consent text, version {text.version} ({text.language})",
            "data": base64.b64encode(text.body.encode("utf-8")).decode("ascii"),
            "creation": _utc(text.created_dt)},
        "provision": {"type": "permit" if decision.decision == "agreed" else "deny",
                      "action": [{"coding": [{
                          "system": "http://terminology.hl7.org/CodeSystem/consentaction",
                          "code": "collect", "display": "Collect"}]}]},
    }


def consent_resources(session: Session, client: Client) -> list[dict[str, Any]]:
    """Every consent decision of the client, oldest first, as a ``Consent``
    (:func:`consent_resource`): the latest is the one in force (``active``)."""
    decisions = list(session.scalars(select(ConsentDecision).where(
        ConsentDecision.client_id == client.id)
        .order_by(ConsentDecision.decided_dt, ConsentDecision.id)))
    if not decisions:
        return []
    slug = session.get_one(Clinic, client.clinic_id).slug
    return [consent_resource(client, row, session.get_one(ConsentText, row.text_id),
                             clinic_slug=slug, in_force=index == len(decisions) - 1)
            for index, row in enumerate(decisions)]


def patient_resource(client: Client) -> dict[str, Any]:
    """The client as an R4 ``Patient``: the stable id and the client code as identifier
    (system ``urn:outcome:client-code``), nothing else."""
    return {"resourceType": "Patient", "id": patient_id(client.code),
            "identifier": [{"system": CODE_SYSTEM, "value": client.code}]}


def episodes_bundle(session: Session, client: Client, episodes: list[Episode],
                    library: InstrumentLibrary, now: dt.datetime) -> dict[str, Any]:
    """A FHIR R4 ``Bundle`` (collection): the Patient by code, per administration a
    ``QuestionnaireResponse`` and an ``Observation`` of its total score
    (:func:`administration_resources`), and each of the client's consent decisions as a
    ``Consent`` (:func:`consent_resources`; the one in force ``active``).

    Superseded administrations are left out (their corrections are included). An
    administration of an instrument the clinic no longer defines is skipped, since its
    answers cannot be coded.
    """
    entries: list[dict[str, Any]] = [{"fullUrl": f"urn:uuid:{patient_id(client.code)}",
                                      "resource": patient_resource(client)}]
    for resources in client_resources(session, client, episodes, library):
        response = resources.questionnaire_response
        entries.append({"fullUrl": f"urn:uuid:{response['id']}", "resource": response})
        if resources.observation is not None:
            entries.append({"fullUrl": f"urn:uuid:{resources.observation['id']}",
                            "resource": resources.observation})
    for resource in consent_resources(session, client):  # issue 20: every decision
        entries.append({"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource})
    return {"resourceType": "Bundle", "type": "collection", "timestamp": _utc(now),
            "entry": entries}
