"""Who may see which clients: the one place that decides.

Every query of client data starts from :func:`visible_clients`, so a rule changed here
is changed for every page, export, report and API call. Objects outside the visible
set are treated as not existing (the web layer answers 404, never 403).

The rules (security.md, "access control"):

- a therapist sees the clients they are responsible for;
- a supervisor sees the clients of their supervisees, by code rather than name;
- an admin who is not also a clinician sees no client data;
- an admin manages the clinic's clients by code only (who their therapist is, for
  transfers): :func:`administered_clients`, never names, contacts or answers;
- an API token has its person's access if it is ``personal``; an ``integration``
  token (an admin's) sees at most what the admin pages show: client codes and their
  therapist (:func:`token_clients`), never names, contacts, answers, scores or notes;
- a therapist registers clients for themselves; an admin registers them for any active
  therapist of the clinic and then sees their code only (:func:`may_register_for`);
- nobody sees another clinic.
"""

from __future__ import annotations

from sqlalchemy import Select
from sqlalchemy import false
from sqlalchemy import or_
from sqlalchemy import select

from outcome.models import ApiToken
from outcome.models import Client
from outcome.models import SupervisorAssignment
from outcome.models import User


def visible_clients(user: User) -> Select[Client]:
    """A SELECT of the clients whose data ``user`` may read (deny by default). An erased
    client (a tombstone, issue 20) is nobody's: it drops out of every caseload."""
    query = select(Client).where(Client.clinic_id == user.clinic_id,
                                 Client.erased_dt.is_(None))
    if not user.is_active:
        return query.where(false())
    conditions = []
    if user.is_therapist:
        conditions.append(Client.therapist_id == user.id)
    if user.is_supervisor:
        supervisees = select(SupervisorAssignment.therapist_id).where(
            SupervisorAssignment.supervisor_id == user.id,
            SupervisorAssignment.clinic_id == user.clinic_id,
        )
        conditions.append(Client.therapist_id.in_(supervisees))
    if not conditions:
        return query.where(false())
    return query.where(or_(*conditions))


def sees_client_names(user: User, client: Client) -> bool:
    """Whether ``user`` sees the client's name and contact details, not only the code.

    Only the client's own therapist does; a supervisor works with codes.
    """
    return bool(user.is_active and user.is_therapist and client.therapist_id == user.id
                and client.clinic_id == user.clinic_id)


def may_register_for(user: User, therapist: User) -> bool:
    """Whether ``user`` may register a client (and open their first episode) for
    ``therapist``: an active therapist for themselves; an active admin for any active
    therapist of their clinic (the admin then sees the new client by code only). Nobody
    else: a supervisor registers no clients, and nobody registers for another clinic.
    """
    if not (user.is_active and therapist.is_active and therapist.is_therapist
            and therapist.clinic_id == user.clinic_id):
        return False
    return therapist.id == user.id or bool(user.is_admin)


def administered_clients(user: User) -> Select[Client]:
    """A SELECT of the clients an admin manages: every client of the admin's clinic.

    For administration only (the client's code and therapist, to transfer clients);
    callers select those columns and never show names, contacts or answers. Empty for
    anybody who is not an active admin.
    """
    query = select(Client).where(Client.clinic_id == user.clinic_id)
    if not (user.is_active and user.is_admin):
        return query.where(false())
    return query


def token_clients(token: ApiToken, *, codes_only: bool = False) -> Select[Client]:
    """A SELECT of the clients an API token reaches.

    A ``personal`` token reaches what its staff member sees (:func:`visible_clients`).
    An ``integration`` token reaches nothing of a client's data, and with
    ``codes_only`` (a caller that serves a client's code and therapist, nothing else)
    the clinic's clients as the admin pages list them (:func:`administered_clients` of
    the admin it acts for, so nothing once they are no longer an active admin).
    """
    if token.kind == "personal":
        return visible_clients(token.user)
    if codes_only:  # a tombstone is not served to integrations (issue 20: a 404)
        return administered_clients(token.user).where(Client.erased_dt.is_(None))
    return select(Client).where(false())


def token_sees_client_names(token: ApiToken, client: Client) -> bool:
    """Whether a token sees the client's name, contacts, answers and notes: only a
    personal token of the client's own therapist (:func:`sees_client_names`)."""
    return token.kind == "personal" and sees_client_names(token.user, client)
