"""Looking up a client for a page: through the one scoping function, audited, 404 if not.

Every client-data route starts here, so each request writes exactly one audit record
for the client it is about, allowed or denied, and an object outside the viewer's
visible set answers 404 (never 403: its existence is not revealed).

The viewer is the signed-in staff member, or, for an API request, the staff member the
API token acts for (:func:`acting_user`); the audit record then names the token, its
creator and the person it acts for. What a token reaches depends on its kind
(:func:`outcome.services.access.token_clients`): an integration token reaches client
codes only, and only where the caller serves nothing more (``codes_only``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import abort
from flask import g
from flask_login import current_user
from sqlalchemy import Select
from sqlalchemy import select
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from outcome.models import Client
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import ReportDocument
from outcome.models import User
from outcome.services.access import sees_client_names
from outcome.services.access import token_clients
from outcome.services.access import token_sees_client_names
from outcome.services.access import visible_clients
from outcome.services.api_tokens import audit_label
from outcome.web.api.problems import Problem
from outcome.web.database import audit_event
from outcome.web.database import db_session


def role_only(allowed: bool, action: str, **fields: Any) -> None:
    """A 404 (the same as for anything that does not exist), audited as ``action``
    denied with ``fields``, unless the signed-in user has the role (``allowed``)."""
    if not allowed:
        audit_event(action=action, outcome="denied", actor_user_id=current_user.id,
                    clinic_id=current_user.clinic_id, even_if_failed=True, **fields)
        abort(404)


def archived_download(document: ReportDocument | None, action: str, run_id: int) -> Response:
    """An archived report's PDF as a download, the download audited as ``action`` (denied,
    and a 404, when ``document`` is None: not the reader's, or no such run). The
    ``X-Content-SHA256`` header is the hash kept with the document."""
    audit_event(action=action, outcome="allowed" if document else "denied",
                actor_user_id=current_user.id, clinic_id=current_user.clinic_id,
                object_type="report_run", object_id=run_id, even_if_failed=True)
    if document is None:
        abort(404)
    return Response(document.content, mimetype=document.media_type, headers={
        "Content-Disposition": f'attachment; filename="{document.filename}"',
        "Cache-Control": "no-store", "X-Content-SHA256": document.sha256})


def acting_user() -> User:
    """Whose access this request has: the API token's user, else the signed-in user."""
    token = g.get("api_token")
    return token.user if token is not None else current_user


def actor_fields() -> dict[str, Any]:
    """The audit record's actor: the staff member, or the API token acting for them."""
    token = g.get("api_token")
    if token is not None:
        return {"actor_kind": "api_token", "actor_user_id": token.user_id,
                "actor_label": audit_label(token)}
    return {"actor_kind": "user", "actor_user_id": current_user.id}


def reachable_clients(*, codes_only: bool = False) -> Select[Client]:
    """The clients this request may reach: the signed-in user's visible clients, or the
    API token's (:func:`outcome.services.access.token_clients`; ``codes_only`` when the
    caller serves a client's code and therapist and nothing else)."""
    token = g.get("api_token")
    if token is not None:
        return token_clients(token, codes_only=codes_only)
    return visible_clients(current_user)


def sees_names(client: Client) -> bool:
    """Whether this request may show the client's name, contacts, answers and notes."""
    token = g.get("api_token")
    if token is not None:
        return token_sees_client_names(token, client)
    return sees_client_names(current_user, client)


def note_client(client: Client) -> None:
    """Record that this request is about ``client`` (one it has just created), as a
    lookup does, so that a stored result is tied to them."""
    g.scoped_client_id = client.id


def scoped_client_id() -> int | None:
    """The client this request's lookup allowed (None before one, or if refused)."""
    return g.get("scoped_client_id")


def recheck_client(client_id: int, action: str, **audit: Any) -> Client:
    """The client ``client_id``, if this request may still reach them as their own
    therapist (:func:`sees_names`), for a stored result replayed; one audit record with
    the client either way, and a 404 if not (access may have ended since, a transfer)."""
    client = db_session().get(Client, client_id)
    viewer = acting_user()
    allowed = (client is not None and client.clinic_id == viewer.clinic_id
               and db_session().scalar(reachable_clients().where(Client.id == client_id)
                                       .with_only_columns(Client.id)) is not None
               and sees_names(client))
    audit_event(action=action, outcome="allowed" if allowed else "denied",
                even_if_failed=True, clinic_id=viewer.clinic_id,
                client_id=client_id if client is not None
                and client.clinic_id == viewer.clinic_id else None,
                **{**actor_fields(), **audit})
    if not allowed:
        abort(404)
    assert client is not None
    return client


def attempted_client_id(code: str) -> int | None:
    """The id of the user's own clinic's client with ``code``, for the audit trail only."""
    return db_session().scalar(select(Client.id).where(
        Client.code == code, Client.clinic_id == acting_user().clinic_id))


def _lookup(code: str, action: str, *, own: bool, therapist_ids: list[int] | None = None,
            check: Callable[[Client], bool] | None = None, codes_only: bool = False) -> Client:
    store = db_session()
    viewer = acting_user()
    query = reachable_clients(codes_only=codes_only).where(Client.code == code)
    if therapist_ids is not None:
        query = query.where(Client.therapist_id.in_(therapist_ids))
    client = store.scalar(query)
    allowed = client is not None and (not own or sees_names(client))
    # An object named in the URL besides the client (episode, alert, appointment) must
    # belong to it; checked before the record is written, so the record tells the truth.
    # A check may refuse a malformed parameter (a 400 naming it): recorded as denied.
    refusal: HTTPException | Problem | None = None
    if allowed and check is not None:
        assert client is not None
        try:
            allowed = check(client)
        except (HTTPException, Problem) as exc:
            allowed, refusal = False, exc
    # A denied attempt still records which client of the user's own clinic it was about
    # (for the audit trail only; the response says nothing).
    attempted = client.id if client else attempted_client_id(code)
    # An access is recorded whatever the request's outcome: a later failure of the
    # request must not erase that the record was (or was not) shown.
    audit_event(action=action, outcome="allowed" if allowed else "denied",
                even_if_failed=True, clinic_id=viewer.clinic_id, client_id=attempted,
                object_type="client", object_id=code[:64], **actor_fields())
    if refusal is not None:
        raise refusal
    if not allowed:
        abort(404)
    assert client is not None
    g.scoped_client_id = client.id
    return client


def visible_client(code: str, action: str, check: Callable[[Client], bool] | None = None,
                   *, codes_only: bool = False) -> Client:
    """The client if the viewer may read their data at all (own therapist, or supervisor
    of their therapist); the caller shows names only if :func:`sees_names`. With
    ``codes_only`` (the caller then serves nothing but the code and therapist to a
    viewer who does not see names) an integration token reaches the clinic's clients."""
    return _lookup(code, action, own=False, check=check, codes_only=codes_only)


def own_client(code: str, action: str, check: Callable[[Client], bool] | None = None
               ) -> tuple[Client, Episode | None, Clinic]:
    """The client, open episode and clinic, if the signed-in user is the client's therapist.

    ``check`` can refuse the request (404, recorded as denied) when another object in
    the URL does not belong to this client.
    """
    client = _lookup(code, action, own=True, check=check)
    store = db_session()
    episode = store.scalar(select(Episode).where(Episode.client_id == client.id,
                                                 Episode.closed_on.is_(None)))
    clinic = store.get(Clinic, client.clinic_id)
    assert clinic is not None
    return client, episode, clinic


def supervised_client(code: str, action: str, therapist_ids: list[int],
                      check: Callable[[Client], bool] | None = None) -> Client:
    """The client if visible to the signed-in user and seen by one of ``therapist_ids``
    (the supervisor's supervisees). A supervisor sees codes only."""
    return _lookup(code, action, own=False, therapist_ids=therapist_ids, check=check)


def client_episodes(client: Client) -> list[Episode]:
    """The client's episodes, newest first."""
    return list(db_session().scalars(select(Episode).where(Episode.client_id == client.id)
                                     .order_by(Episode.opened_on.desc(), Episode.id.desc())))
