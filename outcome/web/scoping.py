"""Looking up a client for a page: through the one scoping function, audited, 404 if not.

Every client-data route starts here, so each request writes exactly one audit record
for the client it is about, allowed or denied, and an object outside the viewer's
visible set answers 404 (never 403: its existence is not revealed).
"""

from __future__ import annotations

from collections.abc import Callable

from flask import abort
from flask_login import current_user
from sqlalchemy import select

from outcome.models import Client
from outcome.models import Clinic
from outcome.models import Episode
from outcome.services.access import sees_client_names
from outcome.services.access import visible_clients
from outcome.web.auditing import record_now
from outcome.web.database import db_session


def attempted_client_id(code: str) -> int | None:
    """The id of the user's own clinic's client with ``code``, for the audit trail only."""
    return db_session().scalar(select(Client.id).where(
        Client.code == code, Client.clinic_id == current_user.clinic_id))


def _lookup(code: str, action: str, *, own: bool, therapist_ids: list[int] | None = None,
            check: Callable[[Client], bool] | None = None) -> Client:
    store = db_session()
    query = visible_clients(current_user).where(Client.code == code)
    if therapist_ids is not None:
        query = query.where(Client.therapist_id.in_(therapist_ids))
    client = store.scalar(query)
    allowed = client is not None and (not own or sees_client_names(current_user, client))
    # An object named in the URL besides the client (episode, alert, appointment) must
    # belong to it; checked before the record is written, so the record tells the truth.
    if allowed and check is not None:
        assert client is not None
        allowed = check(client)
    # A denied attempt still records which client of the user's own clinic it was about
    # (for the audit trail only; the response says nothing).
    attempted = client.id if client else attempted_client_id(code)
    # Recorded in its own transaction: a later rollback must not erase it.
    record_now(action=action, outcome="allowed" if allowed else "denied",
               actor_user_id=current_user.id, clinic_id=current_user.clinic_id,
               client_id=attempted, object_type="client", object_id=code)
    if not allowed:
        abort(404)
    assert client is not None
    return client


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
