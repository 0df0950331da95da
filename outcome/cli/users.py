"""``outcome users``: staff accounts from the command line (the first admin, rescues).

Passwords are typed at a hidden prompt with confirmation, never passed as options
(they would stay in the shell history and the process list), or generated with
``--generate-password`` and printed once. Each change is audited as the ``system``
actor with the command as its label (the audit trail knows no "cli" actor kind).
Errors are one line: exit status 1 when the change is refused, 2 for bad usage.

``outcome users grant`` is the way out of the separation of duties for a clinic with a
single admin (see :mod:`outcome.services.access_requests`): it gives an account roles,
clients or supervisees at once, with no second admin's approval, because access to the
server is already the highest trust. Its audit records name the operating-system
account that ran it.
"""

from __future__ import annotations

import datetime as dt
import getpass

import click
from flask.cli import AppGroup
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.cli.clinic import chosen_clinic
from outcome.cli.clinic import require_clinic
from outcome.db import transaction
from outcome.extensions import database
from outcome.models import Client
from outcome.models import User
from outcome.models.clinic import ROLES
from outcome.services import audit
from outcome.services import staff

users_group = AppGroup("users", help="Staff accounts: create, list, disable, enable, "
                                     "reset passwords and second factors, grant access.")


def _user(session: Session, email: str, slug: str | None) -> User:
    user = staff.find_user(session, email)
    if user is None:
        raise click.BadParameter(f"no user {email!r}", param_hint="EMAIL")
    if slug and require_clinic(session, slug).id != user.clinic_id:
        raise click.BadParameter(f"{email} is not a user of {slug}", param_hint="--clinic")
    return user


def _new_password(generate: bool) -> str:
    if generate:
        return staff.generate_password()
    return click.prompt("New password (at least 15 characters)", hide_input=True,
                        confirmation_prompt="Repeat the password")


def _audit(session: Session, action: str, command: str, user: User, now: dt.datetime) -> None:
    audit.record(session, action=action, outcome="allowed", now=now, actor_kind="system",
                 actor_label=f"outcome users {command}",
                 clinic_id=user.clinic_id, object_type="user", object_id=user.id)


def _refused(exc: staff.StaffError) -> click.ClickException:
    return click.ClickException(str(exc))


password_option = click.option(
    "--generate-password", "generate", is_flag=True,
    help="Generate a strong password and print it once, instead of prompting.")
clinic_option = click.option("--clinic", "clinic_slug", metavar="SLUG",
                             help="The clinic (needed when there are several).")


@users_group.command("list")
@clinic_option
def list_command(clinic_slug: str | None) -> None:
    """List the clinic's staff: e-mail, name, roles, status and last sign-in (UTC)."""
    with transaction(database().session_factory) as session:
        clinic = chosen_clinic(session, clinic_slug)
        users = session.scalars(select(User).where(User.clinic_id == clinic.id).order_by(
            func.lower(User.email))).all()
        rows = [(u.email, u.display_name, ",".join(u.roles),
                 "active" if u.is_active else "disabled",
                 f"{u.last_login_dt:%Y-%m-%d %H:%M}" if u.last_login_dt else "never")
                for u in users]
    click.echo(f"{clinic.name} ({clinic.slug}): {len(rows)} account(s)")
    for email, name, roles, status, last in rows:
        click.echo(f"  {email:<32} {name:<24} {roles:<26} {status:<8} last sign-in {last}")


@users_group.command("create")
@click.argument("email")
@click.option("--name", "display_name", required=True, help="The name colleagues know.")
@click.option("--role", "roles", multiple=True, required=True,
              type=click.Choice(ROLES, case_sensitive=False),
              help="A role; repeat for several (e.g. --role admin --role therapist).")
@clinic_option
@password_option
def create_command(email: str, display_name: str, roles: tuple[str, ...],
                   clinic_slug: str | None, generate: bool) -> None:
    """Create a staff account with EMAIL as its login name."""
    now = dt.datetime.now(dt.UTC)
    with transaction(database().session_factory) as session:
        clinic = chosen_clinic(session, clinic_slug)
        # Refuse a taken e-mail before asking for a password.
        if staff.find_user(session, email) is not None:
            raise click.ClickException(f"there is already an account with the e-mail "
                                       f"{email.strip().lower()}.")
        password = _new_password(generate)
        try:
            user = staff.create_user(session, clinic, email, display_name, roles, password,
                                     now)
        except staff.StaffError as exc:
            raise _refused(exc) from None
        _audit(session, "user.create", "create", user, now)
        summary = f"Created {user.email} ({', '.join(user.roles)}) in {clinic.slug}."
    click.echo(summary)
    if generate:
        click.echo(f"Password (shown only now): {password}")
    click.echo("They must change this password at their first sign-in.")


@users_group.command("disable")
@click.argument("email")
@clinic_option
def disable_command(email: str, clinic_slug: str | None) -> None:
    """Stop EMAIL from signing in and end their sessions at once."""
    now = dt.datetime.now(dt.UTC)
    with transaction(database().session_factory) as session:
        user = _user(session, email, clinic_slug)
        try:
            clients = staff.disable_user(session, user)
        except staff.StaffError as exc:
            raise _refused(exc) from None
        _audit(session, "user.disable", "disable", user, now)
        address = user.email
    click.echo(f"Disabled {address}; their sessions have ended.")
    if clients:
        click.echo(f"{address} still has {clients} client(s): transfer them to another "
                   "therapist on the admin clients page.", err=True)


@users_group.command("enable")
@click.argument("email")
@clinic_option
def enable_command(email: str, clinic_slug: str | None) -> None:
    """Let a disabled EMAIL sign in again."""
    now = dt.datetime.now(dt.UTC)
    with transaction(database().session_factory) as session:
        user = _user(session, email, clinic_slug)
        try:
            staff.enable_user(session, user)
        except staff.StaffError as exc:
            raise _refused(exc) from None
        _audit(session, "user.enable", "enable", user, now)
        address = user.email
    click.echo(f"Enabled {address}.")


@users_group.command("reset-password")
@click.argument("email")
@clinic_option
@password_option
def reset_password_command(email: str, clinic_slug: str | None, generate: bool) -> None:
    """Set a new password for EMAIL; every session of theirs ends."""
    now = dt.datetime.now(dt.UTC)
    with transaction(database().session_factory) as session:
        user = _user(session, email, clinic_slug)
        password = _new_password(generate)
        try:
            staff.reset_password(session, user, password, now, by=None)
        except staff.StaffError as exc:
            raise _refused(exc) from None
        _audit(session, "user.password.reset", "reset-password", user, now)
        address = user.email
    click.echo(f"Password of {address} changed; their sessions have ended and they are "
               "told by e-mail.")
    if generate:
        click.echo(f"Password (shown only now): {password}")
    click.echo("They must change this password at their next sign-in.")


# issue 20: two-factor
@users_group.command("reset-2fa")
@click.argument("email")
@clinic_option
def reset_two_factor_command(email: str, clinic_slug: str | None) -> None:
    """Remove EMAIL's authenticator app, recovery codes and passkeys (a lost phone or
    key); every session of theirs ends. Their next sign-in takes the password alone, or
    leads to setting up a new second factor where the clinic requires one."""
    from outcome.services import two_factor

    now = dt.datetime.now(dt.UTC)
    with transaction(database().session_factory) as session:
        user = _user(session, email, clinic_slug)
        had = two_factor.status(session, user)
        two_factor.reset(session, user)
        _audit(session, "two_factor.reset", "reset-2fa", user, now)
        address = user.email
    removed = ("an authenticator app" if had.totp else None,
               f"{had.recovery_codes_left} unused recovery code(s)"
               if had.recovery_codes_left else None,
               f"{had.passkeys} passkey(s)" if had.passkeys else None)
    what = ", ".join(r for r in removed if r) or "no second factor (nothing to remove)"
    click.echo(f"Second factors of {address} reset: removed {what}; their sessions have "
               "ended.")


def _operator() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name (a container without a passwd entry)
        return "unknown"


@users_group.command("grant")
@click.argument("email")
@click.option("--role", "roles", multiple=True, type=click.Choice(ROLES, case_sensitive=False),
              help="A role to add; repeat for several.")
@click.option("--client", "codes", multiple=True, metavar="CODE",
              help="A client (by code) to transfer to EMAIL; repeat for several.")
@click.option("--supervises", "supervisees", multiple=True, metavar="THERAPIST_EMAIL",
              help="A therapist EMAIL will supervise; repeat for several.")
@clinic_option
def grant_command(email: str, roles: tuple[str, ...], codes: tuple[str, ...],
                  supervisees: tuple[str, ...], clinic_slug: str | None) -> None:
    """Give EMAIL roles, clients or supervisees at once, with no second admin's approval.

    On the pages an admin's access to clients for themselves waits for another admin;
    a clinic with a single admin uses this command on the server instead. Every change
    is in the audit log, with the operating-system account that ran the command, and
    listed on the admin overview.
    """
    if not (roles or codes or supervisees):
        raise click.UsageError("give at least one --role, --client or --supervises.")
    now = dt.datetime.now(dt.UTC)
    label = f"outcome users grant (by {_operator()})"
    with transaction(database().session_factory) as session:
        user = _user(session, email, clinic_slug)
        done = []
        try:
            if roles:
                wanted = set(user.roles) | {role.lower() for role in roles}
                staff.set_roles(session, user, wanted)
                audit.record(session, action="user.roles.change", outcome="allowed", now=now,
                             actor_kind="system", actor_label=label, clinic_id=user.clinic_id,
                             object_type="user", object_id=user.id)
                done.append(f"roles {', '.join(user.roles)}")
            for code in codes:
                client = session.scalar(select(Client).where(
                    Client.clinic_id == user.clinic_id, Client.code == code.strip().upper()))
                if client is None:
                    raise click.BadParameter(f"no client {code!r} in {email}'s clinic",
                                             param_hint="--client")
                staff.transfer_client(session, client, user, now)
                audit.record(session, action="client.transfer", outcome="allowed", now=now,
                             actor_kind="system", actor_label=label, clinic_id=user.clinic_id,
                             client_id=client.id, object_type="user", object_id=user.id)
                done.append(f"client {client.code}")
            for address in supervisees:
                therapist = _user(session, address, clinic_slug)
                row = staff.assign_supervisor(session, user, therapist, now)
                audit.record(session, action="assignment.create", outcome="allowed", now=now,
                             actor_kind="system", actor_label=label, clinic_id=user.clinic_id,
                             object_type="assignment", object_id=row.id)
                done.append(f"supervises {therapist.email}")
        except staff.StaffError as exc:
            raise _refused(exc) from None
        address = user.email
    click.echo(f"Granted to {address}: {'; '.join(done)}. Recorded in the audit log.")
