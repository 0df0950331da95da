"""A staff member's own account: their password, second factors, personal API tokens and
language.

Personal API tokens (:mod:`outcome.services.api_tokens`) are made here by the staff
member they act for, and only they ever see the secret (once, on the response that
creates it). They list and revoke their own tokens; an admin can revoke them too.

A successful change bumps the account's session version, so every other session (and
any copied cookie) ends at once. The browser that made the change is signed in again
with the new version, keeping its original sign-in time, so the clinic's absolute
session limit is not extended by a password change. Attempts are rate-limited like
logins (per address and per account), so a stolen session cannot guess the current
password quickly.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import NoReturn

import segno
from flask import Blueprint
from flask import abort
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import refresh
from flask_login import current_user
from flask_login import login_required
from flask_login import login_user
from flask_wtf import FlaskForm
from markupsafe import Markup
from werkzeug.wrappers import Response
from wtforms import PasswordField
from wtforms.validators import EqualTo
from wtforms.validators import InputRequired
from wtforms.validators import Length

from outcome.core.languages import LANGUAGE_NAMES
from outcome.extensions import limiter
from outcome.models import ApiToken
from outcome.models import Clinic
from outcome.models import User
from outcome.services import api_tokens
from outcome.services import staff
from outcome.services import two_factor
from outcome.services.languages import set_staff_locale
from outcome.services.passwords import MAX_LENGTH
from outcome.services.passwords import MIN_LENGTH
from outcome.services.passwords import verify_password
from outcome.web.admin import message
from outcome.web.auth import ACCOUNT_LIMIT
from outcome.web.auth import ADDRESS_LIMIT
from outcome.web.clock import now
from outcome.web.confirm import require_confirmation
from outcome.web.database import audit_event
from outcome.web.database import db_session
from outcome.web.database import discard_changes
from outcome.web.i18n import format_moment

bp = Blueprint("account", __name__, url_prefix="/account")


def _account_key() -> str:
    return f"password:{current_user.id}" if current_user.is_authenticated else "password:-"


class PasswordChangeForm(FlaskForm):
    current_password = PasswordField(
        _l("Current password"), validators=[InputRequired(), Length(max=MAX_LENGTH)],
        render_kw={"autocomplete": "current-password"})
    new_password = PasswordField(
        _l("New password (at least %(count)s characters)", count=MIN_LENGTH),
        validators=[InputRequired(), Length(max=MAX_LENGTH)],
        render_kw={"autocomplete": "new-password"})
    confirm = PasswordField(
        _l("The new password again"),
        validators=[InputRequired(), EqualTo("new_password",
                                             message=_l("The two new passwords differ."))],
        render_kw={"autocomplete": "new-password"})


@bp.route("/password", methods=["GET", "POST"])
@login_required
@limiter.limit(ADDRESS_LIMIT, methods=["POST"])
@limiter.limit(ACCOUNT_LIMIT, methods=["POST"], key_func=_account_key)
def password() -> str | Response:
    form = PasswordChangeForm()
    if form.validate_on_submit():
        store = db_session()
        user: User = current_user._get_current_object()
        try:
            staff.change_password(store, user, form.current_password.data or "",
                                  form.new_password.data or "", now())
        except staff.StaffError as exc:
            wrong_current = exc.field == "current_password"
            audit_event(action="password.change", even_if_failed=True,
                        outcome="denied" if wrong_current else "error",
                        actor_user_id=user.id, clinic_id=user.clinic_id, object_type="user",
                        object_id=user.id)
            field = form.current_password if wrong_current else form.new_password
            field.errors = [*field.errors, message(exc)]
            discard_changes()  # whatever the refused change had begun
        else:
            audit_event(action="password.change", outcome="allowed", actor_user_id=user.id,
                        clinic_id=user.clinic_id, object_type="user", object_id=user.id)
            signed_in_at = session.get("signed_in_at")
            session.clear()  # the old identity (old session version) goes with it
            login_user(user)  # re-issued with the new session version
            session["signed_in_at"] = signed_in_at or now().timestamp()
            session["seen_at"] = now().timestamp()
            flash(_("Your password is changed. Any other session of yours has ended."), "info")
            return redirect(url_for("home.index"))
    return render_template("account/password.html", form=form)


# --- personal API tokens ---------------------------------------------------------------------

SCOPE_LABELS = {"read": _l("read"), "write": _l("write")}


def _me() -> User:
    return current_user._get_current_object()


def _tz() -> zoneinfo.ZoneInfo:
    clinic = db_session().get(Clinic, current_user.clinic_id)
    assert clinic is not None
    return zoneinfo.ZoneInfo(clinic.timezone)


def _local(moment: dt.datetime | None, tz: zoneinfo.ZoneInfo) -> str:
    # One date-and-time style on every page (issue 17); ``tz`` is the clinic's, which
    # the page's Babel time zone already is.
    return format_moment(moment.astimezone(tz)) if moment else ""


def _denied(action: str, object_type: str, object_id: object) -> NoReturn:
    audit_event(action=action, outcome="denied", actor_user_id=current_user.id,
                clinic_id=current_user.clinic_id, object_type=object_type,
                object_id=str(object_id)[:64], even_if_failed=True)
    abort(404)


@bp.route("/tokens")
@login_required
def tokens(form: dict | None = None, errors: dict | None = None,
           created: tuple[ApiToken, str] | None = None) -> str:
    """The signed-in staff member's personal API tokens (never their secrets) and the
    form that creates one; ``created`` is the token just made and its secret, shown once
    on this response."""
    return render_template(
        "account/tokens.html", tokens=api_tokens.user_tokens(db_session(), _me()),
        status=api_tokens.token_status, at=now(), tz=_tz(), local=_local,
        scope_labels=SCOPE_LABELS,
        form=form or {"scopes": ["read"], "days": str(api_tokens.DEFAULT_DAYS)},
        errors=errors or {}, created=created, max_days=api_tokens.MAX_DAYS,
        name_max=api_tokens.NAME_MAX)


@bp.route("/tokens", methods=["POST"])
@login_required
def create_token() -> str:
    """Create a personal token acting for the signed-in staff member and show its secret
    on this response only (200, never a redirect: the secret must not travel through
    the session or a URL). Nobody creates a token for somebody else: a ``user_id`` of
    another staff member is refused by the field, another clinic's is a 404."""
    form = request.form
    me = _me()
    raw_days = (form.get("days") or "").strip()
    kept = {"name": form.get("name", ""), "scopes": form.getlist("scope"), "days": raw_days}
    user = me
    if "user_id" in form:
        raw = form.get("user_id", "")
        named = db_session().get(User, int(raw)) if raw.isdecimal() and len(raw) <= 9 else None
        if named is None or named.clinic_id != me.clinic_id:
            _denied("api_token.create", "user", raw)
        user = named
    # Not a whole number (or absurdly long): 0, which the service refuses for the field.
    days = int(raw_days) if raw_days.isdecimal() and len(raw_days) <= 4 else 0
    try:
        token, secret = api_tokens.create_token(
            db_session(), user=user, name=form.get("name", ""), kind="personal",
            scopes=kept["scopes"], created_by=me, now=now(), days=days)
    except api_tokens.TokenError as exc:
        discard_changes()
        audit_event(action="api_token.create", outcome="error", actor_user_id=me.id,
                    clinic_id=me.clinic_id, object_type="api_token", even_if_failed=True)
        return tokens(form=kept, errors={exc.field or "form": message(exc)})
    audit_event(action="api_token.create", outcome="allowed", actor_user_id=me.id,
                clinic_id=me.clinic_id, object_type="api_token", object_id=token.id,
                actor_label=api_tokens.audit_label(token))
    flash(_("Personal token %(name)s created.", name=token.name), "info")
    return tokens(created=(token, secret))


@bp.route("/tokens/<int(max=2147483647):token_id>/revoke", methods=["POST"])
@login_required
def revoke_token(token_id: int) -> Response:
    """Revoke one of the signed-in staff member's personal tokens at once (anybody
    else's, or an unknown one, is a 404)."""
    store = db_session()
    me = _me()
    token = store.get(ApiToken, token_id)
    if token is None or token.kind != "personal" or token.user_id != me.id:
        _denied("api_token.revoke", "api_token", token_id)
    assert token is not None
    require_confirmation()
    name, label = token.name, api_tokens.audit_label(token)
    try:
        api_tokens.revoke_token(store, token, me, now())
    except api_tokens.TokenError as exc:
        discard_changes()
        audit_event(action="api_token.revoke", outcome="error", actor_user_id=me.id,
                    clinic_id=me.clinic_id, object_type="api_token", object_id=token_id,
                    even_if_failed=True)
        flash(message(exc), "error")
    else:
        audit_event(action="api_token.revoke", outcome="allowed", actor_user_id=me.id,
                    clinic_id=me.clinic_id, object_type="api_token", object_id=token_id,
                    actor_label=label)
        flash(_("API token %(name)s is revoked; its next request is refused.", name=name),
              "info")
    return redirect(url_for(".tokens"))


# --- the staff member's own language (issue 17) -----------------------------------------------


@bp.route("/language", methods=["GET", "POST"])
@login_required
def language() -> str | Response | tuple[str, int]:
    """Pages and PDFs in the chosen language; none chosen follows the browser."""
    user = _me()
    error = None
    if request.method == "POST":
        chosen = request.form.get("locale", "")
        try:
            set_staff_locale(db_session(), user, chosen or None)
        except staff.StaffError as exc:
            discard_changes()
            error = message(exc)
        else:
            audit_event(action="account.language", outcome="allowed", actor_user_id=user.id,
                        clinic_id=user.clinic_id, object_type="user", object_id=user.id)
            refresh()
            flash(_("Your language is saved."), "info")
            return redirect(url_for(".language"), 303)
    return render_template("account/language.html", chosen=user.locale, error=error,
                           languages=LANGUAGE_NAMES), (400 if error else 200)


# --- two-factor sign-in (issue 20) ----------------------------------------------------------
#
# Setting up an authenticator app needs the password (it ends with ten recovery codes);
# making new recovery codes needs a current code, and removing the app (or a passkey,
# outcome.web.passkeys) a current code or the password, so that a session left open on a
# shared screen cannot weaken the account. Those checks are throttled like the password
# change. Every change is audited.


def _clinic_of_me() -> Clinic:
    clinic = db_session().get(Clinic, current_user.clinic_id)
    assert clinic is not None
    return clinic


def _record_two_factor(action: str, outcome: str = "allowed") -> None:
    user = _me()
    audit_event(action=action, outcome=outcome, actor_user_id=user.id,
                clinic_id=user.clinic_id, object_type="user", object_id=user.id,
                even_if_failed=outcome != "allowed")


def _qr_svg(uri: str) -> Markup:
    """The provisioning URI as an inline SVG QR code (segno: no image library, no
    request to anyone), labelled for screen readers."""
    svg = segno.make(uri, error="m").svg_inline(
        scale=4, title=_("QR code for your authenticator app"))
    # segno writes only path data and the escaped title: no text of the URI.
    return Markup(svg.replace("<svg ", '<svg role="img" ', 1))  # noqa: S704  # nosec B704


def _two_factor_page(*, codes: list[str] | None = None, errors: dict[str, str] | None = None,
                     status: int = 200) -> tuple[str, int]:
    """The two-factor page: its status, the set-up in progress (QR code and the secret in
    groups), and ``codes`` (new recovery codes) shown once on this response only."""
    store = db_session()
    user = _me()
    clinic = _clinic_of_me()
    pending = two_factor.pending_secret(store, user)
    setup = None
    if pending is not None:
        uri = two_factor.provisioning_uri(pending, user, clinic)
        setup = {"qr": _qr_svg(uri), "secret": two_factor.grouped(pending)}
    return render_template(
        "account/two_factor.html", state=two_factor.status(store, user), setup=setup,
        codes=codes, codes_text="\n".join(codes or []), errors=errors or {},
        required=two_factor.required_for(user, clinic),
        clinic_name=clinic.name), status


def two_factor_key() -> str:
    """The per-account rate-limit key shared by every check of a code or password on the
    two-factor and passkey pages (``ACCOUNT_LIMIT`` a minute together)."""
    return f"two-factor:{current_user.id}" if current_user.is_authenticated else "two-factor:-"


_two_factor_key = two_factor_key


@bp.route("/two-factor", endpoint="two_factor")
@login_required
def two_factor_page() -> tuple[str, int]:
    """The signed-in staff member's second factors: authenticator app, recovery codes,
    passkeys."""
    return _two_factor_page()


@bp.route("/two-factor/start", methods=["POST"])
@login_required
@limiter.limit(ADDRESS_LIMIT, methods=["POST"])
@limiter.limit(ACCOUNT_LIMIT, methods=["POST"], key_func=_two_factor_key)
def two_factor_start() -> Response | tuple[str, int]:
    """Begin (or begin again) setting up an authenticator app: a new secret, shown as a
    QR code until the first code confirms it. The password is needed (throttled and
    audited), since the set-up ends with ten recovery codes: an open session alone must
    not get them."""
    if not current_code_ok(password_allowed=True):
        _record_two_factor("two_factor.enrol.start", "denied")
        return _two_factor_page(errors={"start": _(
            "Type your password to set up an authenticator app.")}, status=400)
    try:
        two_factor.start_enrolment(db_session(), _me(), now())
    except staff.StaffError as exc:
        discard_changes()
        _record_two_factor("two_factor.enrol.start", "error")
        return _two_factor_page(errors={"form": message(exc)}, status=400)
    _record_two_factor("two_factor.enrol.start")
    return redirect(url_for(".two_factor") + "#setup", 303)


@bp.route("/two-factor/confirm", methods=["POST"])
@login_required
@limiter.limit(ADDRESS_LIMIT, methods=["POST"])
@limiter.limit(ACCOUNT_LIMIT, methods=["POST"], key_func=_two_factor_key)
def two_factor_confirm() -> tuple[str, int]:
    """Confirm the authenticator app with its first code; the ten recovery codes are shown
    on this response only (200, never a redirect: they must not travel in the session)."""
    try:
        codes = two_factor.confirm_enrolment(db_session(), _me(),
                                             request.form.get("code", "")[:100], now())
    except staff.StaffError as exc:
        discard_changes()
        _record_two_factor("two_factor.enrol.confirm", "denied")
        return _two_factor_page(errors={exc.field or "form": message(exc)}, status=400)
    _record_two_factor("two_factor.enrol.confirm")
    flash(_("Your authenticator app is set up: from now on, signing in asks for its code."),
          "info")
    return _two_factor_page(codes=codes)


def current_code_ok(*, password_allowed: bool = False) -> bool:
    """Whether the form's ``code`` is a current authenticator code of the user (spent, as
    at sign-in), or, where allowed, its ``password`` is theirs: what weakening the
    account asks for besides the open session (callers throttle with
    :func:`two_factor_key` and audit the answer)."""
    user = _me()
    code = request.form.get("code", "")[:100].strip()
    if code and two_factor.verify_totp(db_session(), user, code, now()):
        return True
    password = request.form.get("password", "")[:MAX_LENGTH]
    return bool(password_allowed and password and user.password_hash
                and verify_password(user.password_hash, password))


@bp.route("/two-factor/recovery-codes", methods=["POST"])
@login_required
@limiter.limit(ADDRESS_LIMIT, methods=["POST"])
@limiter.limit(ACCOUNT_LIMIT, methods=["POST"], key_func=_two_factor_key)
def two_factor_codes() -> tuple[str, int]:
    """Replace the recovery codes with ten new ones (a current code from the app is
    needed); the old ones stop working. Shown on this response only."""
    if not two_factor.status(db_session(), _me()).totp:
        _record_two_factor("two_factor.recovery_codes.regenerate", "error")
        return _two_factor_page(errors={"codes": _(
            "Set up an authenticator app first.")}, status=400)
    if not current_code_ok():
        _record_two_factor("two_factor.recovery_codes.regenerate", "denied")
        return _two_factor_page(errors={"codes": _(
            "That code is not right. Type the 6-digit code your app shows now; each code "
            "works once.")}, status=400)
    codes = two_factor.regenerate_recovery_codes(db_session(), _me(), now())
    _record_two_factor("two_factor.recovery_codes.regenerate")
    flash(_("New recovery codes are made; the old ones no longer work."), "info")
    return _two_factor_page(codes=codes)


@bp.route("/two-factor/remove", methods=["POST"])
@login_required
@limiter.limit(ADDRESS_LIMIT, methods=["POST"])
@limiter.limit(ACCOUNT_LIMIT, methods=["POST"], key_func=_two_factor_key)
def two_factor_remove() -> Response | tuple[str, int]:
    """Remove the authenticator app and recovery codes (a current code or the password is
    needed, and the confirmation box); refused while the clinic requires a second factor
    for the user's role and no passkey remains."""
    require_confirmation()
    if not current_code_ok(password_allowed=True):
        _record_two_factor("two_factor.remove", "denied")
        return _two_factor_page(errors={"remove": _(
            "Type a current code from your app, or your password, to remove it.")},
            status=400)
    try:
        two_factor.remove_own(db_session(), _me(), _clinic_of_me())
    except staff.StaffError as exc:
        discard_changes()
        _record_two_factor("two_factor.remove", "error")
        return _two_factor_page(errors={"remove": message(exc)}, status=400)
    _record_two_factor("two_factor.remove")
    flash(_("The authenticator app and your recovery codes are removed."), "info")
    return redirect(url_for(".two_factor"), 303)
