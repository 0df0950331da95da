"""``outcome tokens``: API tokens from the command line (create, list, revoke).

The same rules as the admin page (:mod:`outcome.services.api_tokens`): an active admin
of the clinic, named with ``--admin``, creates and revokes tokens, and a token acts for
one active staff member of the same clinic. The secret is printed once, when the token
is created; ``list`` shows the prefix only, never the secret or its hash. Each change is
audited as the ``system`` actor with the command as its label (like ``outcome users``).
Errors are one line: exit status 1 when the change is refused, 2 for bad usage.
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


def _audit(session: Session, action: str, command: str, token: ApiToken,
           now: dt.datetime) -> None:
    audit.record(session, action=action, outcome="allowed", now=now, actor_kind="system",
                 actor_label=f"outcome tokens {command}", clinic_id=token.clinic_id,
                 object_type="api_token", object_id=token.id)


def _refused(exc: api_tokens.TokenError) -> click.ClickException:
    return click.ClickException(str(exc))


@tokens_group.command("create")
@click.option("--user", "user_email", required=True, metavar="EMAIL",
              help="The staff member the token acts for: it sees what they see.")
@click.option("--name", required=True, help="Which system uses the token (e.g. 'EHR sync').")
@click.option("--scope", "scopes", multiple=True, required=True,
              type=click.Choice(API_SCOPES, case_sensitive=False),
              help="read and/or write; repeat for both (--scope read --scope write).")
@click.option("--days", type=int, default=api_tokens.DEFAULT_DAYS, show_default=True,
              help=f"Valid for this many days (1 to {api_tokens.MAX_DAYS}).")
@click.option("--admin", "admin_email", required=True, metavar="EMAIL",
              help="The admin of the clinic on whose authority the token is created.")
@click.option("--clinic", "clinic_slug", metavar="SLUG",
              help="The clinic (by default the acting user's).")
def create_command(user_email: str, name: str, scopes: tuple[str, ...], days: int,
                   admin_email: str, clinic_slug: str | None) -> None:
    """Create an API token and print its secret once."""
    now = dt.datetime.now(dt.UTC)
    with transaction(database().session_factory) as session:
        named = require_clinic(session, clinic_slug) if clinic_slug else None
        user = _staff_member(session, user_email, "--user", named)
        clinic = named or session.get(Clinic, user.clinic_id)
        assert clinic is not None
        admin = _staff_member(session, admin_email, "--admin", clinic)
        try:
            token, secret = api_tokens.create_token(
                session, clinic=clinic, user=user, name=name,
                scopes=[s.lower() for s in scopes], created_by=admin, now=now, days=days)
        except api_tokens.TokenError as exc:
            raise _refused(exc) from None
        _audit(session, "api_token.create", "create", token, now)
        summary = (f"Created token {token.id} {token.name!r} ({token.prefix}…) for "
                   f"{user.email} in {clinic.slug}: {', '.join(token.scopes)}, expires "
                   f"{token.expires_dt:%Y-%m-%d %H:%M} UTC.")
    click.echo(summary)
    click.echo("Copy this token now; it will not be shown again:", err=True)
    click.echo(secret)


@tokens_group.command("list")
@click.option("--clinic", "clinic_slug", metavar="SLUG",
              help="The clinic (needed when there are several).")
def list_command(clinic_slug: str | None) -> None:
    """List the clinic's tokens: id, name, prefix, user, scopes, expiry (UTC) and status."""
    now = dt.datetime.now(dt.UTC)
    with transaction(database().session_factory) as session:
        clinic = chosen_clinic(session, clinic_slug)
        rows = [(t.id, t.name, f"{t.prefix}…", t.user.email, ",".join(t.scopes),
                 f"{t.expires_dt:%Y-%m-%d %H:%M}", api_tokens.token_status(t, now))
                for t in api_tokens.clinic_tokens(session, clinic)]
    click.echo(f"{clinic.name} ({clinic.slug}): {len(rows)} token(s)")
    for token_id, name, prefix, email, scopes, expires, status in rows:
        click.echo(f"  {token_id:>5} {name:<24} {prefix:<12} {email:<32} {scopes:<10} "
                   f"expires {expires} {status}")


@tokens_group.command("revoke")
@click.argument("token_id", metavar="ID", type=int)
@click.option("--admin", "admin_email", required=True, metavar="EMAIL",
              help="The admin of the token's clinic who revokes it.")
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
        _audit(session, "api_token.revoke", "revoke", token, now)
        summary = f"Revoked token {token.id} {token.name!r} ({token.prefix}…)."
    click.echo(summary)
