"""Erasing a client (issue 20): their personal data and answers go, a tombstone stays.

:func:`erase_client` deletes everything the application keeps about one client and
keeps the ``clients`` row as a tombstone holding the code, the clinic, and when and why
it was erased (``erased_dt``, ``erasure_reason``). What goes:

- every episode, and with it (``ON DELETE CASCADE``) administrations and their answers,
  goals, appointments, questionnaire links (and their drafts), kiosk codes, alerts
  (with acknowledgement notes), episode signals, support checks, action plans and
  supervision reviews;
- the client's consent decisions, pending access requests naming the client (a
  transfer), and stored API idempotency results about the client;
- outbox e-mails addressed to the client (links, reminders, support checks: they hold
  the client's e-mail address) or about the client's alerts (escalation notices);
- the archived therapist briefs and weekly reports (PDFs) of every therapist of the
  client's episodes, produced since the client's first episode opened; if the audit
  trail records a transfer of the client (it names the new therapist, not the old),
  those of every staff member of the clinic. The data model does not record which
  clients a PDF names, so every such document that *may* name the client is deleted
  (its run stays, without a document: a report can be produced again from the data
  left). Supervisor digests name clients by code only and are kept: the figures they
  give by code (an ended episode's change category) stay in digests already made.

The name becomes :data:`ERASED_NAME`, e-mail and phone NULL, the language the default,
the therapist NULL (the tombstone is nobody's caseload), progress sharing off, and the
registration time the erasure's. The audit
trail is append-only and holds identifiers only (ids and codes, never names): it is kept,
and the erasure itself is recorded as ``client.erase`` naming the code.

Services flush, never commit.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from outcome.models import AccessRequest
from outcome.models import Alert
from outcome.models import ApiIdempotencyRecord
from outcome.models import Appointment
from outcome.models import AuditEvent
from outcome.models import Client
from outcome.models import ConsentDecision
from outcome.models import Episode
from outcome.models import OutboundEmail
from outcome.models import ReportDocument
from outcome.models import ReportRun
from outcome.models import SupportCheck
from outcome.models import User
from outcome.models.report import REPORT_KINDS
from outcome.models.trust import ERASURE_REASONS
from outcome.services import audit

# The tombstone's name (the column is NOT NULL and non-empty): the same for everybody.
ERASED_NAME = "Erased client"
ERASED_LOCALE = "en"
# The archived reports that name clients (briefs and weekly reports, by name); the
# supervisor digest names codes only.
NAMING_REPORT_KINDS = tuple(k for k in REPORT_KINDS if k != "supervisor_digest")
# The audit trail's actions: the erasure itself, and the two exports offered first.
ERASE_ACTION = "client.erase"
EXPORT_ACTIONS = ("client.export.csv", "client.export.fhir")


class ErasureError(Exception):
    """An erasure refused (already erased, an unknown reason); nothing was changed."""


def is_erased(client: Client) -> bool:
    """Whether ``client`` is a tombstone."""
    return client.erased_dt is not None


def _client_mail(session: Session, client: Client, episode_ids: list[int]) -> int:
    """Delete the outbox rows addressed to the client or about their appointments,
    support checks and alerts; the number deleted."""
    appointment_ids = list(session.scalars(select(Appointment.id).where(
        Appointment.episode_id.in_(episode_ids)))) if episode_ids else []
    check_ids = list(session.scalars(select(SupportCheck.id).where(
        SupportCheck.episode_id.in_(episode_ids)))) if episode_ids else []
    alert_ids = list(session.scalars(select(Alert.id).where(
        Alert.episode_id.in_(episode_ids)))) if episode_ids else []
    keys = ([f"link:{a}:pre" for a in appointment_ids]
            + [f"reminder:{a}:pre" for a in appointment_ids]
            + [f"post:{a}" for a in appointment_ids]
            + [f"support:{c}" for c in check_ids])
    conditions = []
    if keys:
        conditions.append(OutboundEmail.dedupe_key.in_(keys))
    conditions += [OutboundEmail.dedupe_key.like(f"escalation:{a}:%") for a in alert_ids]
    ids = list(session.scalars(select(OutboundEmail.id).where(
        OutboundEmail.clinic_id == client.clinic_id, or_(*conditions)))) if conditions else []
    if client.email:
        # to_address may be encrypted at rest (issue 20): compared after decryption, in
        # Python (the clinic's outbox is read once; erasure is rare).
        address, found = client.email.lower(), set(ids)
        ids += [email_id for email_id, to_address in session.execute(
                    select(OutboundEmail.id, OutboundEmail.to_address)
                    .where(OutboundEmail.clinic_id == client.clinic_id))
                if email_id not in found and (to_address or "").lower() == address]
    if ids:
        session.execute(delete(OutboundEmail).where(OutboundEmail.id.in_(ids)))
    return len(ids)


TRANSFER_ACTION = "client.transfer"  # the audit trail's record of a client moving


def _was_transferred(session: Session, client: Client) -> bool:
    """Whether the audit trail records the client moving to another therapist (by an
    admin, an approved request or ``outcome users grant --client``)."""
    return session.scalar(select(AuditEvent.id).where(
        AuditEvent.client_id == client.id, AuditEvent.action == TRANSFER_ACTION,
        AuditEvent.outcome == "allowed").limit(1)) is not None


def _naming_documents(session: Session, client: Client, episodes: list[Episode]) -> int:
    """Delete the archived briefs and weekly reports that may name the client, made since
    their first episode opened; the number deleted.

    Those of the therapists of ``episodes`` only, unless the client was transferred: a
    transfer moves the open episode, and the audit trail records whom it moved *to* but
    not whom *from*, so every brief and weekly report of the clinic's staff made since
    then is deleted (a clinic-wide cost: those reports can be produced again from the
    data left, but their archived copies go).
    """
    if not episodes:
        return 0
    since = min(e.opened_on for e in episodes)
    since_dt = dt.datetime.combine(since, dt.time(), tzinfo=dt.UTC) - dt.timedelta(days=1)
    if _was_transferred(session, client):
        recipients = select(User.id).where(User.clinic_id == client.clinic_id)
        by_recipient = ReportRun.recipient_user_id.in_(recipients)
    else:
        by_recipient = ReportRun.recipient_user_id.in_(
            sorted({e.therapist_id for e in episodes}))
    ids = list(session.scalars(
        select(ReportDocument.id).join(ReportRun, ReportRun.id == ReportDocument.report_run_id)
        .where(ReportRun.kind.in_(NAMING_REPORT_KINDS), by_recipient,
               ReportDocument.created_dt >= since_dt)))
    if ids:
        # Pre-issue-16 e-mails kept a reference to their document: detach them first.
        session.execute(update(OutboundEmail)
                        .where(OutboundEmail.attachment_document_id.in_(ids))
                        .values(attachment_document_id=None))
        session.execute(delete(ReportDocument).where(ReportDocument.id.in_(ids)))
    return len(ids)


def erase_client(session: Session, client: Client, reason: str, actor: User | None,
                 now: dt.datetime, *, actor_label: str | None = None) -> dict[str, int]:
    """Erase ``client``'s personal data and answers, keep the tombstone, audit it; flush.

    ``reason`` is ``request`` or ``retention``; ``actor`` the staff member who erased
    (None: the system, named by ``actor_label`` such as ``outcome clients erase`` or
    ``retention``). Refuses (:class:`ErasureError`) a client already erased. Returns
    how many rows of each kind went (no names), for the caller's message.
    """
    if reason not in ERASURE_REASONS:
        raise ErasureError(f"Unknown erasure reason {reason!r}.")
    if client.erased_dt is not None:
        raise ErasureError(f"{client.code} was already erased on "
                           f"{client.erased_dt:%Y-%m-%d}; there is nothing left to erase.")
    episodes = list(session.scalars(select(Episode).where(Episode.client_id == client.id)))
    episode_ids = [e.id for e in episodes]
    counts = {
        "emails": _client_mail(session, client, episode_ids),
        "documents": _naming_documents(session, client, episodes),
    }
    counts["consent_decisions"] = session.execute(delete(ConsentDecision).where(
        ConsentDecision.client_id == client.id)).rowcount or 0  # type: ignore[attr-defined]
    counts["access_requests"] = session.execute(delete(AccessRequest).where(
        AccessRequest.client_id == client.id)).rowcount or 0  # type: ignore[attr-defined]
    counts["idempotency_records"] = session.execute(delete(ApiIdempotencyRecord).where(
        ApiIdempotencyRecord.client_id == client.id)).rowcount or 0  # type: ignore[attr-defined]
    # The episodes last: the database cascades to everything recorded within them.
    counts["episodes"] = len(episode_ids)
    if episode_ids:
        session.execute(delete(Episode).where(Episode.id.in_(episode_ids)))
    session.expire(client, ["episodes"])
    _blank_tombstone(client, reason, now)
    session.flush()
    audit.record(session, action=ERASE_ACTION, outcome="allowed", now=now,
                 actor_kind="user" if actor is not None else "system",
                 actor_user_id=actor.id if actor is not None else None,
                 actor_label=None if actor is not None else (actor_label or "system"),
                 clinic_id=client.clinic_id, client_id=client.id, object_type="client",
                 object_id=client.code)
    return counts


def _blank_tombstone(client: Client, reason: str, now: dt.datetime) -> None:
    """Overwrite every personal column of ``client``; keep the code and the clinic (the
    registration time becomes the erasure's, so the tombstone does not date the care).

    A column added to ``clients`` that holds personal data (a name search index,
    encrypted copies) must be cleared here too.
    """
    client.name = ERASED_NAME
    client.email = None
    client.phone = None
    client.locale = ERASED_LOCALE
    client.therapist_id = None
    client.is_progress_shared = False
    client.created_dt = now
    client.erased_dt = now
    client.erasure_reason = reason


def last_exports(session: Session, client: Client) -> dict[str, dt.datetime | None]:
    """When the client's CSV and FHIR exports were last downloaded (from the audit trail):
    {"client.export.csv": datetime or None, "client.export.fhir": ...}."""
    rows = session.execute(
        select(AuditEvent.action, func.max(AuditEvent.occurred_dt))
        .where(AuditEvent.client_id == client.id,
               AuditEvent.action.in_(EXPORT_ACTIONS),
               AuditEvent.outcome == "allowed")
        .group_by(AuditEvent.action)).all()
    found: dict[str, dt.datetime | None] = dict.fromkeys(EXPORT_ACTIONS)
    found.update({action: when for action, when in rows})
    return found


def erased_codes(session: Session, clinic_id: int | None = None,
                 since: dt.datetime | None = None) -> list[Client]:
    """The tombstones (of one clinic, erased at or after ``since``), oldest erasure first."""
    query = select(Client).where(Client.erased_dt.is_not(None))
    if clinic_id is not None:
        query = query.where(Client.clinic_id == clinic_id)
    if since is not None:
        query = query.where(Client.erased_dt >= since)
    return list(session.scalars(query.order_by(Client.erased_dt, Client.code)))


def tombstone_words(client: Client) -> dict[str, str]:
    """The tombstone as screens show it: code, the erasure's date (YYYY-MM-DD, UTC) and
    its reason code."""
    assert client.erased_dt is not None and client.erasure_reason is not None
    return {"code": client.code, "date": f"{client.erased_dt:%Y-%m-%d}",
            "reason": client.erasure_reason}
