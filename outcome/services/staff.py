"""Staff accounts, supervision pairs and client transfers: the admin's use cases.

Every function flushes and never commits (the edge commits once). Bad input raises
:class:`StaffError` with a sentence an admin can act on. Its message is marked with
``N_`` so that the web layer can show it translated (``gettext(exc.message,
**exc.params)``) while this module stays free of Flask; ``str(exc)`` is the English
sentence, for the command line.

The invariants kept here:

- every clinic keeps at least one active admin (nobody can lock the clinic out);
- a user's roles match what they do: a therapist with clients keeps the therapist role,
  and supervision pairs join a supervisor to a therapist of the same clinic;
- ending access ends it at once: disabling an account or changing its password bumps
  ``session_version``, so every session cookie issued before stops working; a reset by
  an admin also tells the user by e-mail.

Whether the admin who asks may make a change alone is not decided here: an admin's
client access of their own (a clinical role, a client, a supervisee) waits for a second
admin in :mod:`outcome.services.access_requests`, which checks with the ``check_*``
functions below before it stores a request, and calls the changes here on approval.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.models import Client
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import SupervisorAssignment
from outcome.models import User
from outcome.models.clinic import ROLES
from outcome.services.mail import queue_email
from outcome.services.passwords import hash_password
from outcome.services.passwords import password_problems
from outcome.services.passwords import verify_password

MAX_EMAIL_LENGTH = 254
MAX_NAME_LENGTH = 200
# No 0/O, 1/l/I: a generated password is read off a screen and typed once.
_GENERATED_ALPHABET = "abcdefghijkmnpqrstuvwxyzACDEFGHJKLMNPQRSTUVWXYZ23456789"


def N_(message: str) -> str:  # the gettext convention for "mark only"
    """Mark ``message`` for translation without translating it (Babel extracts ``N_``)."""
    return message


# The refusal for an address that a login elsewhere in the installation already uses
# (logins are unique across clinics): it neither confirms nor denies that account.
NEUTRAL_EMAIL_REFUSAL = N_("%(email)s cannot be used for a new account here; choose another "
                           "address, such as the person's address at this clinic.")


class StaffError(ValueError):
    """A change to staff, supervision or clients that cannot be made; the message says why.

    ``message`` is the untranslated template and ``params`` its ``%(name)s`` values;
    ``field`` names the input at fault (``email``, ``password``...), for forms.
    """

    def __init__(self, message: str, *, field: str | None = None, **params: Any) -> None:
        self.message = message
        self.params = params
        self.field = field
        super().__init__(message % params if params else message)


# --- accounts ----------------------------------------------------------------------------


def normalise_email(email: str) -> str:
    """The e-mail as stored and compared: trimmed and lower-case.

    Raises :class:`StaffError` when it does not look like an address.
    """
    cleaned = (email or "").strip().lower()
    local, at, domain = cleaned.partition("@")
    if (not at or not local or not domain or "@" in domain or any(c.isspace() for c in cleaned)
            or len(cleaned) > MAX_EMAIL_LENGTH):
        raise StaffError(N_("%(email)s is not an e-mail address."), field="email",
                         email=email or "''")
    return cleaned


def find_user(session: Session, email: str) -> User | None:
    """The user whose e-mail is ``email`` (case-insensitive), in any clinic, or None."""
    wanted = (email or "").strip().lower()
    return session.scalar(select(User).where(func.lower(User.email) == wanted))


def _clean_roles(roles: Iterable[str]) -> set[str]:
    chosen = {role.strip().lower() for role in roles if role and role.strip()}
    unknown = chosen - set(ROLES)
    if unknown:
        raise StaffError(N_("Unknown role %(role)s; the roles are admin, supervisor and "
                            "therapist."), field="roles", role=", ".join(sorted(unknown)))
    if not chosen:
        raise StaffError(N_("Choose at least one role."), field="roles")
    return chosen


def _check_password(password: str, email: str) -> None:
    problems = password_problems(password, email)
    if problems:
        raise StaffError(N_("The password cannot be used: %(problems)s"), field="password",
                         problems=" ".join(problems))


def create_user(session: Session, clinic: Clinic, email: str, display_name: str,
                roles: Iterable[str], password: str | None, now: dt.datetime, *,
                must_change_password: bool = True) -> User:
    """Add a staff account to ``clinic``; flush and return it.

    The password is one somebody else chose (an admin, the server's operator), so by
    default the account must change it at its first sign-in (``must_change_password``).

    The e-mail must be unused (in any clinic, case-insensitively; an address used at another
    clinic gets a neutral refusal that does not say an account exists); at least one role is
    needed; the password must pass the policy of :mod:`outcome.services.passwords`.
    Without a password the account exists but cannot sign in until one is set with
    :func:`reset_password`.
    """
    address = normalise_email(email)
    name = (display_name or "").strip()
    if not name:
        raise StaffError(N_("Give the person's name as colleagues know it."),
                         field="display_name")
    if len(name) > MAX_NAME_LENGTH:
        raise StaffError(N_("A name has at most %(count)s characters."), field="display_name",
                         count=MAX_NAME_LENGTH)
    chosen = _clean_roles(roles)
    existing = find_user(session, address)
    if existing is not None and existing.clinic_id == clinic.id:
        raise StaffError(N_("There is already an account with the e-mail %(email)s."),
                         field="email", email=address)
    if existing is not None:
        # Another clinic's account: say nothing about it (issue 16, finding 12), so that
        # an admin cannot probe which addresses exist at other clinics.
        raise StaffError(NEUTRAL_EMAIL_REFUSAL, field="email", email=address)
    if password is not None:
        _check_password(password, address)
    user = User(clinic_id=clinic.id, email=address, display_name=name,
                is_admin="admin" in chosen, is_supervisor="supervisor" in chosen,
                is_therapist="therapist" in chosen, is_active=True, session_version=1,
                password_hash=hash_password(password) if password is not None else None,
                password_changed_dt=now if password is not None else None, created_dt=now,
                must_change_password=must_change_password)
    session.add(user)
    session.flush()
    return user


def other_active_admins(session: Session, user: User) -> int:
    """How many active admins ``user``'s clinic has besides ``user``."""
    return session.scalar(select(func.count()).select_from(User).where(
        User.clinic_id == user.clinic_id, User.id != user.id, User.is_admin.is_(True),
        User.is_active.is_(True))) or 0


def client_count(session: Session, user: User) -> int:
    """How many clients ``user`` is currently the responsible therapist of."""
    return session.scalar(select(func.count()).select_from(Client).where(
        Client.clinic_id == user.clinic_id, Client.therapist_id == user.id)) or 0


def _assignment_count(session: Session, user: User, *, as_supervisor: bool) -> int:
    column = (SupervisorAssignment.supervisor_id if as_supervisor
              else SupervisorAssignment.therapist_id)
    return session.scalar(select(func.count()).select_from(SupervisorAssignment).where(
        SupervisorAssignment.clinic_id == user.clinic_id, column == user.id)) or 0


def check_roles(session: Session, user: User, roles: Iterable[str]) -> set[str]:
    """The roles ``user`` would have, if :func:`set_roles` may give them; nothing changes.

    Refused when it would leave the clinic without an active admin, drop the therapist
    role of someone who still has clients (transfer them first) or who is supervised,
    or drop the supervisor role of someone who still supervises (remove the pairs first).
    """
    chosen = _clean_roles(roles)
    if (user.is_admin and "admin" not in chosen and user.is_active
            and other_active_admins(session, user) == 0):
        raise StaffError(N_("%(name)s is the clinic's last active admin; make someone else "
                            "an admin first."), name=user.display_name)
    if user.is_therapist and "therapist" not in chosen:
        clients = client_count(session, user)
        if clients:
            raise StaffError(N_("%(name)s still has %(count)s client(s); transfer them to "
                                "another therapist first."), name=user.display_name,
                             count=clients)
        if _assignment_count(session, user, as_supervisor=False):
            raise StaffError(N_("%(name)s is still supervised as a therapist; remove those "
                                "supervision pairs first."), name=user.display_name)
    if (user.is_supervisor and "supervisor" not in chosen
            and _assignment_count(session, user, as_supervisor=True)):
        raise StaffError(N_("%(name)s still supervises therapists; remove those supervision "
                            "pairs first."), name=user.display_name)
    return chosen


def set_roles(session: Session, user: User, roles: Iterable[str]) -> User:
    """Give ``user`` exactly ``roles``; flush. The refusals are those of :func:`check_roles`.

    Whether the admin who asks may do so alone (not for client access of their own) is
    decided by :mod:`outcome.services.access_requests`, which calls this.
    """
    chosen = check_roles(session, user, roles)
    user.is_admin = "admin" in chosen
    user.is_supervisor = "supervisor" in chosen
    user.is_therapist = "therapist" in chosen
    session.flush()
    return user


def disable_user(session: Session, user: User) -> int:
    """Stop ``user`` from signing in and end their sessions at once; flush.

    Refused for the clinic's last active admin. The user's clients stay theirs until an
    admin transfers them: the number of such clients is returned, so the edge can say so.
    """
    if not user.is_active:
        raise StaffError(N_("%(name)s is already disabled."), name=user.display_name)
    if user.is_admin and other_active_admins(session, user) == 0:
        raise StaffError(N_("%(name)s is the clinic's last active admin and cannot be "
                            "disabled; make someone else an admin first."),
                         name=user.display_name)
    user.is_active = False
    user.session_version += 1
    session.flush()
    return client_count(session, user)


def enable_user(session: Session, user: User) -> User:
    """Let a disabled ``user`` sign in again (with their existing password); flush."""
    if user.is_active:
        raise StaffError(N_("%(name)s is already active."), name=user.display_name)
    user.is_active = True
    session.flush()
    return user


def generate_password() -> str:
    """A strong random password that passes the policy (about 119 bits), grouped for reading."""
    groups = ["".join(secrets.choice(_GENERATED_ALPHABET) for _ in range(5)) for _ in range(4)]
    return "-".join(groups)


def reset_password(session: Session, user: User, new_password: str,
                   now: dt.datetime, *, by: str | None = None) -> User:
    """Set ``user``'s password (a reset by an admin, or on the server); flush.

    Ends every session of the user (``session_version`` is bumped), so a captured
    cookie stops working, and queues an e-mail telling them (see
    :func:`queue_reset_notice`): a reset they did not expect is how a colleague taking
    over their account shows. ``by`` names who reset it (an admin's name), or None for
    the server's operator.

    The user must change the new password at their next sign-in: somebody else knows it.
    """
    _set_password(session, user, new_password, now)
    user.must_change_password = True
    queue_reset_notice(session, user, now, by=by)
    return user


def _set_password(session: Session, user: User, new_password: str, now: dt.datetime) -> None:
    _check_password(new_password, user.email)
    user.password_hash = hash_password(new_password)
    user.password_changed_dt = now
    user.session_version += 1
    session.flush()


def queue_reset_notice(session: Session, user: User, now: dt.datetime, *,
                       by: str | None) -> None:
    """Queue the e-mail that tells ``user`` their password was reset; flush.

    It says when (UTC) and by whom, that their sessions ended, and whom to tell if they
    did not expect it: no password, link or clinical content. One message per reset
    (the key is the user and their new session version).
    """
    clinic = session.get(Clinic, user.clinic_id)
    assert clinic is not None
    who = f"{by}, an administrator of {clinic.name}," if by else "the server's operator"
    queue_email(
        session, clinic_id=user.clinic_id, kind="password_reset",
        dedupe_key=f"password_reset:{user.id}:{user.session_version}",
        to_address=user.email, subject=f"Your password for {clinic.name} was reset",
        body=(f"Hello {user.display_name},\n\n"
              f"The password of your account ({user.email}) was reset by {who} "
              f"on {now.astimezone(dt.UTC):%Y-%m-%d at %H:%M} UTC. Every session of "
              "yours has been signed out; sign in with the new password you are given "
              "in person or by phone.\n\n"
              "If you did not expect this, tell another administrator of your clinic "
              "at once.\n"),
        now=now)


def change_password(session: Session, user: User, current: str, new: str,
                    now: dt.datetime) -> User:
    """Change ``user``'s own password after checking the current one; flush.

    The password is now the user's own choice: ``must_change_password`` is cleared.

    Like :func:`reset_password`, ends every session of the user (no e-mail: they did it
    themselves); the edge re-issues the current browser's session if it wants to keep
    the user signed in.
    """
    if not verify_password(user.password_hash, current or ""):
        raise StaffError(N_("The current password is not right."), field="current_password")
    if new == current:
        raise StaffError(N_("The new password is the same as the current one."),
                         field="password")
    _set_password(session, user, new, now)
    user.must_change_password = False
    session.flush()
    return user


# --- supervision -------------------------------------------------------------------------


def assign_supervisor(session: Session, supervisor: User, therapist: User,
                      now: dt.datetime) -> SupervisorAssignment:
    """Let ``supervisor`` oversee ``therapist`` (and so see their clients by code); flush.

    Both must be active and of the same clinic, with the supervisor and therapist roles;
    nobody supervises themselves; a pair exists only once.
    """
    check_assignment(session, supervisor, therapist)
    row = SupervisorAssignment(clinic_id=supervisor.clinic_id, supervisor_id=supervisor.id,
                               therapist_id=therapist.id, created_dt=now)
    session.add(row)
    session.flush()
    return row


def check_assignment(session: Session, supervisor: User, therapist: User) -> None:
    """Refuse (:class:`StaffError`) a supervision pair :func:`assign_supervisor` would not make."""
    if supervisor.clinic_id != therapist.clinic_id:
        raise StaffError(N_("A supervisor and a therapist must belong to the same clinic."))
    if supervisor.id == therapist.id:
        raise StaffError(N_("Nobody can supervise themselves."))
    if not supervisor.is_supervisor:
        raise StaffError(N_("%(name)s does not have the supervisor role."),
                         name=supervisor.display_name)
    if not therapist.is_therapist:
        raise StaffError(N_("%(name)s does not have the therapist role."),
                         name=therapist.display_name)
    for person in (supervisor, therapist):
        if not person.is_active:
            raise StaffError(N_("%(name)s is disabled."), name=person.display_name)
    existing = session.scalar(select(SupervisorAssignment).where(
        SupervisorAssignment.supervisor_id == supervisor.id,
        SupervisorAssignment.therapist_id == therapist.id))
    if existing is not None:
        raise StaffError(N_("%(supervisor)s already supervises %(therapist)s."),
                         supervisor=supervisor.display_name, therapist=therapist.display_name)


def unassign_supervisor(session: Session, supervisor: User, therapist: User) -> None:
    """End the supervision of ``therapist`` by ``supervisor``; flush."""
    row = session.scalar(select(SupervisorAssignment).where(
        SupervisorAssignment.clinic_id == supervisor.clinic_id,
        SupervisorAssignment.supervisor_id == supervisor.id,
        SupervisorAssignment.therapist_id == therapist.id))
    if row is None:
        raise StaffError(N_("%(supervisor)s does not supervise %(therapist)s."),
                         supervisor=supervisor.display_name, therapist=therapist.display_name)
    session.delete(row)
    session.flush()


# --- clients -----------------------------------------------------------------------------


def transfer_client(session: Session, client: Client, new_therapist: User,
                    now: dt.datetime) -> Episode | None:
    """Make ``new_therapist`` responsible for ``client`` and their open episode; flush.

    The target must be an active therapist of the client's clinic. Appointments, links,
    answers and closed episodes stay as they are (a closed episode keeps the therapist
    who treated it). Returns the open episode that moved, if there is one.
    """
    check_transfer(client, new_therapist)
    client.therapist_id = new_therapist.id
    episode = session.scalar(select(Episode).where(Episode.client_id == client.id,
                                                   Episode.closed_on.is_(None)))
    if episode is not None:
        episode.therapist_id = new_therapist.id
    session.flush()
    return episode


def check_transfer(client: Client, new_therapist: User) -> None:
    """Refuse (:class:`StaffError`) a transfer :func:`transfer_client` would not make."""
    if new_therapist.clinic_id != client.clinic_id:
        raise StaffError(N_("A client can only move to a therapist of their own clinic."))
    if not (new_therapist.is_therapist and new_therapist.is_active):
        raise StaffError(N_("%(name)s is not an active therapist."),
                         name=new_therapist.display_name)
    if client.therapist_id == new_therapist.id:
        raise StaffError(N_("%(code)s is already with %(name)s."), code=client.code,
                         name=new_therapist.display_name)
