"""``outcome tokens``: API tokens from the command line (create, list, revoke).

The same rules as the pages (:mod:`outcome.services.api_tokens`): a token acts for the
person it is made as. ``create --user EMAIL`` makes a personal token of that staff
member, "as them" (whoever can run commands on the server can read the database
anyway); ``create --admin EMAIL`` makes an integration token of that admin (client
codes only, read-only). The secret is printed once, when the token is created; ``list``
shows the prefix only, never the secret or its hash. Each change is audited as the
``system`` actor, naming the person it was done as, with the command and the token
(its creator and whom it acts for) as its label, so the log tells a token made on the
server from one made on a page. Errors are one line: exit status 1 when the change is
refused, 2 for bad usage.
"""

from __future__ import annotations

import datetime as dt

import click
from flask.cli import AppGroup
from sqlalchemy.orm import Session

from outcome.cli.clinic import chosen_clinic
from outcome.cli.clinic import require_clinic
from outcome.db import transaction
from outcome.extensions import database
from outcome.models import ApiToken
from outcome.models import Clinic
from outcome.models import User
from outcome.models.api import API_SCOPES
from outcome.services import api_tokens
from outcome.services import audit
from outcome.services import staff

tokens_group = AppGroup("tokens", help="API tokens for integrations: create, list, revoke.")


def _staff_member(session: Session, email: str, option: str, clinic: Clinic | None) -> User:
    """The user with ``email`` (of ``clinic`` when given), or a usage error naming ``option``."""
    user = staff.find_user(session, email)
    if user is None:
        raise click.BadParameter(f"no user {email!r}", param_hint=option)
    if clinic is not None and user.clinic_id != clinic.id:
        raise click.BadParameter(f"{user.email} is not a user of {clinic.slug}",
                                 param_hint=option)
    return user


def _audit(session: Session, action: str, command: str, token: ApiToken, as_user: User,
           now: dt.datetime) -> None:
    audit.record(session, action=action, outcome="allowed", now=now, actor_kind="system",
                 actor_user_id=as_user.id,
                 actor_label=f"outcome tokens {command}: {api_tokens.audit_label(token)}",
                 clinic_id=token.clinic_id, object_type="api_token", object_id=token.id)


def _refused(exc: api_tokens.TokenError) -> click.ClickException:
    return click.ClickException(str(exc))


@tokens_group.command("create")
@click.option("--user", "user_email", metavar="EMAIL",
              help="A personal token of this staff member, made as them: it sees what "
                   "they see.")
@click.option("--admin", "admin_email", metavar="EMAIL",
              help="An integration token of this admin: client codes only, read-only.")
@click.option("--name", required=True, help="Which system uses the token (e.g. 'EHR sync').")
@click.option("--scope", "scopes", multiple=True, required=True,
              type=click.Choice(API_SCOPES, case_sensitive=False),
              help="read and/or write; repeat for both (--scope read --scope write). "
                   "An integration token is read only.")
@click.option("--days", type=int, default=api_tokens.DEFAULT_DAYS, show_default=True,
              help=f"Valid for this many days (1 to {api_tokens.MAX_DAYS}).")
@click.option("--clinic", "clinic_slug", metavar="SLUG",
              help="The clinic (by default the person's).")
def create_command(user_email: str | None, admin_email: str | None, name: str,
                   scopes: tuple[str, ...], days: int, clinic_slug: str | None) -> None:
    """Create an API token and print its secret once: --user (personal) or --admin
    (integration)."""
    if (user_email is None) == (admin_email is None):
        raise click.UsageError("Name exactly one of --user (a personal token, made as that "
                               "staff member) and --admin (an integration token).")
    now = dt.datetime.now(dt.UTC)
    kind = "personal" if user_email else "integration"
    option = "--user" if user_email else "--admin"
    with transaction(database().session_factory) as session:
        named = require_clinic(session, clinic_slug) if clinic_slug else None
        user = _staff_member(session, user_email or admin_email or "", option, named)
        clinic = named or session.get(Clinic, user.clinic_id)
        assert clinic is not None
        try:
            token, secret = api_tokens.create_token(
                session, user=user, name=name, kind=kind,
                scopes=[s.lower() for s in scopes], created_by=user, now=now, days=days)
        except api_tokens.TokenError as exc:
            raise _refused(exc) from None
        _audit(session, "api_token.create", "create", token, user, now)
        summary = (f"Created {kind} token {token.id} {token.name!r} ({token.prefix}…) for "
                   f"{user.email} in {clinic.slug}: {', '.join(token.scopes)}, expires "
                   f"{token.expires_dt:%Y-%m-%d %H:%M} UTC.")
    click.echo(summary)
    click.echo("Copy this token now; it will not be shown again:", err=True)
    click.echo(secret)


@tokens_group.command("list")
@click.option("--clinic", "clinic_slug", metavar="SLUG",
              help="The clinic (needed when there are several).")
def list_command(clinic_slug: str | None) -> None:
    """List the clinic's tokens: id, name, prefix, kind, user, scopes, expiry (UTC) and
    status."""
    now = dt.datetime.now(dt.UTC)
    with transaction(database().session_factory) as session:
        clinic = chosen_clinic(session, clinic_slug)
        rows = [(t.id, t.name, f"{t.prefix}…", t.kind, t.user.email, ",".join(t.scopes),
                 f"{t.expires_dt:%Y-%m-%d %H:%M}", api_tokens.token_status(t, now))
                for t in api_tokens.clinic_tokens(session, clinic)]
    click.echo(f"{clinic.name} ({clinic.slug}): {len(rows)} token(s)")
    for token_id, name, prefix, kind, email, scopes, expires, status in rows:
        click.echo(f"  {token_id:>5} {name:<24} {prefix:<12} {kind:<11} {email:<32} {scopes:<10} "
                   f"expires {expires} {status}")


@tokens_group.command("revoke")
@click.argument("token_id", metavar="ID", type=int)
@click.option("--admin", "admin_email", required=True, metavar="EMAIL",
              help="The admin of the token's clinic who revokes it, or the staff member "
                   "whose personal token it is.")
def revoke_command(token_id: int, admin_email: str) -> None:
    """Revoke token ID at once: its next request is refused."""
    now = dt.datetime.now(dt.UTC)
    with transaction(database().session_factory) as session:
        token = session.get(ApiToken, token_id)
        if token is None:
            raise click.BadParameter(f"no token {token_id}", param_hint="ID")
        admin = _staff_member(session, admin_email, "--admin", None)
        try:
            api_tokens.revoke_token(session, token, admin, now)
        except api_tokens.TokenError as exc:
            raise _refused(exc) from None
        _audit(session, "api_token.revoke", "revoke", token, admin, now)
        summary = f"Revoked token {token.id} {token.name!r} ({token.prefix}…)."
    click.echo(summary)
