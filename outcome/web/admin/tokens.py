"""API tokens of the clinic: list and revoke every token, create integration tokens
(the secret shown once; see :mod:`outcome.services.api_tokens`).

An admin creates integration tokens only: acting for the admin, read-only, they see
client codes and therapists, as these pages do. A token that reads client data is a
personal one, made by its staff member on their own account page; the admin lists and
revokes those too, and never sees a secret but the one just created here.
"""

from __future__ import annotations

from flask import abort
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from werkzeug.wrappers import Response

from outcome.models import ApiToken
from outcome.services import api_tokens
from outcome.web.admin.blueprint import _admin
from outcome.web.admin.blueprint import _clinic
from outcome.web.admin.blueprint import _clinic_users
from outcome.web.admin.blueprint import _form_user
from outcome.web.admin.blueprint import _local
from outcome.web.admin.blueprint import _record
from outcome.web.admin.blueprint import _refused
from outcome.web.admin.blueprint import _tz
from outcome.web.admin.blueprint import bp
from outcome.web.admin.blueprint import message
from outcome.web.clock import now
from outcome.web.confirm import require_confirmation
from outcome.web.database import audit_event
from outcome.web.database import db_session

SCOPE_LABELS = {"read": _l("read"), "write": _l("write")}
KIND_LABELS = {"personal": _l("personal"), "integration": _l("integration")}


@bp.route("/tokens")
def tokens(form: dict | None = None, errors: dict | None = None,
           created: tuple[ApiToken, str] | None = None) -> str:
    """The clinic's API tokens (never their secrets) and the form that creates one.

    ``created`` is the token just made and its secret, shown once on this response.
    """
    people = _clinic_users()
    return render_template(
        "admin/tokens.html", tokens=api_tokens.clinic_tokens(db_session(), _clinic()),
        people={u.id: u for u in people}, active=[u for u in people if u.is_active],
        status=api_tokens.token_status, at=now(), tz=_tz(), local=_local,
        scope_labels=SCOPE_LABELS,
        kind_labels=KIND_LABELS,
        form=form or {"days": str(api_tokens.DEFAULT_DAYS)},
        errors=errors or {}, created=created, max_days=api_tokens.MAX_DAYS,
        name_max=api_tokens.NAME_MAX)


@bp.route("/tokens", methods=["POST"])
def create_token() -> str:
    """Create a token and show its secret on this response only (200, never a redirect:
    the secret must not travel through the session or a URL)."""
    form = request.form
    raw_days = (form.get("days") or "").strip()
    kept = {"name": form.get("name", ""), "scopes": form.getlist("scope") or ["read"],
            "days": raw_days}
    # The token acts for the admin. A user named in the form (an older form, a crafted
    # request) must be the admin: the service refuses anybody else by the field;
    # another clinic's user is a 404.
    user = _form_user("user_id", "api_token.create") if "user_id" in form else _admin()
    # Not a whole number (or absurdly long): 0, which the service refuses for the field.
    days = int(raw_days) if raw_days.isdecimal() and len(raw_days) <= 4 else 0
    try:
        token, secret = api_tokens.create_token(
            db_session(), user=user, name=form.get("name", ""), kind="integration",
            scopes=kept["scopes"], created_by=_admin(), now=now(), days=days)
    except api_tokens.TokenError as exc:
        _refused("api_token.create", exc, object_type="api_token")
        return tokens(form=kept, errors={exc.field or "form": message(exc)})
    _record("api_token.create", object_type="api_token", object_id=token.id,
            actor_label=api_tokens.audit_label(token))
    flash(_("Integration token %(name)s created.", name=token.name), "info")
    return tokens(created=(token, secret))


@bp.route("/tokens/<int:token_id>/revoke", methods=["POST"])
def revoke_token(token_id: int) -> Response:
    """Revoke a token of the admin's clinic at once (another clinic's is a 404)."""
    store = db_session()
    token = store.get(ApiToken, token_id)
    if token is None or token.clinic_id != current_user.clinic_id:
        audit_event(action="api_token.revoke", outcome="denied", actor_user_id=current_user.id,
                    clinic_id=current_user.clinic_id, object_type="api_token", object_id=token_id,
                    even_if_failed=True)
        abort(404)
    require_confirmation()
    name, label = token.name, api_tokens.audit_label(token)
    try:
        api_tokens.revoke_token(store, token, _admin(), now())
    except api_tokens.TokenError as exc:
        _refused("api_token.revoke", exc, object_type="api_token", object_id=token_id)
    else:
        _record("api_token.revoke", object_type="api_token", object_id=token_id,
                actor_label=label)
        flash(_("API token %(name)s is revoked; its next request is refused.", name=name),
              "info")
    return redirect(url_for(".tokens"))
