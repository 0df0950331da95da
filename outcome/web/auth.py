"""Staff login and logout.

A session identifies the user as ``"<id>:<session_version>"``. Logging out (and, later,
changing the password) bumps the version, so a copied session cookie stops working:
Flask's signed-cookie session cannot be revoked otherwise (flask-login issue 480).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint
from flask import Flask
from flask import flash
from flask import g
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import LoginManager
from flask_login import current_user
from flask_login import login_required
from flask_login import logout_user
from flask_login import user_unauthorized
from flask_wtf import FlaskForm
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from werkzeug.wrappers import Response
from wtforms import EmailField
from wtforms import PasswordField
from wtforms import StringField
from wtforms.validators import InputRequired
from wtforms.validators import Length

from outcome.extensions import limiter
from outcome.models import Clinic
from outcome.models import User
from outcome.services import clinic_settings
from outcome.services import setup
from outcome.services import two_factor
from outcome.services.passwords import MAX_LENGTH
from outcome.services.passwords import hash_password
from outcome.services.passwords import needs_rehash
from outcome.services.passwords import verify_password
from outcome.web import login_throttle
from outcome.web import second_factor
from outcome.web.api.errors import http_error as integration_error
from outcome.web.api.errors import is_integration_request
from outcome.web.clock import now
from outcome.web.database import audit_event
from outcome.web.database import count_denial
from outcome.web.database import db_session

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = _l("Please sign in to continue.")
login_manager.login_message_category = "info"
# No "remember me": a long-lived second cookie would outlive logout and timeouts.
login_manager.session_protection = "strong"

# Failed login attempts per address (successes do not count); per account, failures
# slow down without a hard lock (outcome.web.login_throttle; NIST SP 800-63B asks to limit
# failed attempts on an account). The password change form counts every attempt of its
# signed-in user with both limits.
ADDRESS_LIMIT = "10 per minute;50 per hour"
ACCOUNT_LIMIT = "10 per hour"


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    # Each app decides: the shared Limiter would otherwise reuse the last app's choice.
    app.config.setdefault("RATELIMIT_ENABLED", True)
    # An empty setting is one process's memory; `outcome serve` sets a shared store for
    # several workers (outcome.cli.serve.rate_limit_storage).
    app.config.setdefault("RATELIMIT_STORAGE_URI",
                          app.config["RATELIMIT_STORAGE_URL"] or "memory://")
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    limiter.init_app(app)
    app.register_blueprint(bp)
    app.before_request(_enforce_session_limits)
    app.before_request(_password_change_first)
    app.before_request(_second_factor_first)
    app.register_error_handler(429, _too_many)
    user_unauthorized.connect(_count_signed_out_request, app)


def _count_signed_out_request(_app: Flask, **_extra: object) -> None:
    """A signed-out request for a staff page (client data among them) is counted as a
    refused anonymous request, per address and minute (not one audit row each)."""
    count_denial("sign_in_required")


def _login_failed(_response: Response) -> bool:
    return bool(g.get("login_failed"))


def _too_many(error) -> tuple[str, int] | Response:
    if is_integration_request():
        return integration_error(error)
    return _too_many_page()


def _too_many_page() -> tuple[str, int]:
    if request.blueprint == "questionnaire":
        return render_template(
            "error.html", title=_("Too many attempts"),
            message=_("Too many requests came from your network. Please wait a minute and "
                      "open your link again."), code=429), 429
    return render_template(
        "error.html", title=_("Too many attempts"),
        message=_("For your safety, signing in is paused for a while after several "
                  "attempts. Please wait a few minutes and try again."), code=429), 429


def _enforce_session_limits() -> Response | None:
    """Sign staff out after the clinic's idle time (30 min) or session length (12 h).

    Enforced on the server from times kept in the session, so a cookie kept in a browser
    tab, or copied, stops working when either limit passes.
    """
    if not current_user.is_authenticated:
        return None
    clinic = db_session().get_one(Clinic, current_user.clinic_id)
    # Held for the request: the session's identity map keeps objects only while they are
    # referenced, so later look-ups of the clinic (second factor, pages) run no query.
    g.outcome_clinic = clinic
    limits = clinic_settings.current(clinic)
    moment = now().timestamp()
    seen, started = session.get("seen_at"), session.get("signed_in_at")
    idle = seen is None or moment - float(seen) > 60 * limits["staff_idle_minutes"]
    too_long = started is None or moment - float(started) > 3600 * limits["staff_session_hours"]
    if idle or too_long:
        logout_user()
        session.clear()
        flash(_("You were signed out after a period without activity.") if idle
              else _("For your safety, please sign in again."), "info")
        return redirect(url_for("auth.login", next=request.path))
    session["seen_at"] = moment
    return None


# What a user who must change their password may still reach: the change itself, signing
# out, and what is not a staff page (static files, health, a client's questionnaire, the
# integration API, which a session cookie never authenticates).
PASSWORD_CHANGE_ALLOWED = frozenset({"account.password", "auth.logout", "auth.login",
                                     "static", "health.healthz"})
PASSWORD_CHANGE_FREE_BLUEPRINTS = frozenset({"questionnaire", "api", "fhir", "setup"})


def _password_change_first() -> Response | None:
    """A user whose password somebody else chose changes it before anything else.

    After signing in with such a password (``User.must_change_password``: an account
    made by an admin, by ``outcome users`` or ``outcome clinic create``, or reset by
    them), every staff page redirects to the change-password page until the user has
    chosen their own; signing out stays possible.
    """
    if not current_user.is_authenticated or not current_user.must_change_password:
        return None
    if (request.endpoint in PASSWORD_CHANGE_ALLOWED
            or request.blueprint in PASSWORD_CHANGE_FREE_BLUEPRINTS):
        return None
    return redirect(url_for("account.password"), 303)


# What a user who must set up a second factor may still reach (besides what a password
# change allows): the account's two-factor page and its forms, and passkeys.
SECOND_FACTOR_ALLOWED = PASSWORD_CHANGE_ALLOWED | frozenset({
    "account.two_factor", "account.two_factor_start", "account.two_factor_confirm",
    "auth.second_factor"})
SECOND_FACTOR_FREE_BLUEPRINTS = PASSWORD_CHANGE_FREE_BLUEPRINTS | frozenset({"passkeys"})


def _second_factor_first() -> Response | None:
    """Where the clinic requires a second factor of one of the user's roles
    (``two_factor_roles``) and the user has none, every staff page redirects to the
    two-factor page until they set one up (after a password change, which comes first);
    signing out stays possible."""
    if not current_user.is_authenticated or current_user.must_change_password:
        return None
    if (request.endpoint in SECOND_FACTOR_ALLOWED
            or request.blueprint in SECOND_FACTOR_FREE_BLUEPRINTS):
        return None
    store = db_session()
    clinic = store.get_one(Clinic, current_user.clinic_id)
    if not two_factor.required_for(current_user, clinic):
        return None
    if two_factor.has_second_factor(store, current_user._get_current_object()):
        return None
    return redirect(url_for("account.two_factor"), 303)


@login_manager.user_loader
def load_user(identity: str) -> User | None:
    """The user of a session identity, if the account is active and the version current."""
    user_id, _, version = identity.partition(":")
    if not (user_id.isdigit() and version.isdigit()):
        return None
    # The clinic comes in the same query: every signed-in request reads it next (the
    # session limits, then the second-factor rule), and finds it in the identity map.
    user = db_session().get(User, int(user_id), options=[joinedload(User.clinic)])
    if user is None or not user.is_active or user.session_version != int(version):
        return None
    return user


class LoginForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[InputRequired(), Length(max=254)],
                       render_kw={"autocomplete": "username", "autofocus": True})
    password = PasswordField(_l("Password"),
                             validators=[InputRequired(), Length(max=MAX_LENGTH)],
                             render_kw={"autocomplete": "current-password"})


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(ADDRESS_LIMIT, methods=["POST"], deduct_when=_login_failed)
def login() -> str | Response | tuple[str, int, dict[str, str]]:
    if current_user.is_authenticated:
        return redirect(url_for("home.index"))
    form = LoginForm()
    if form.validate_on_submit():
        email = (form.email.data or "").strip().lower()
        address = request.remote_addr or ""
        wait = login_throttle.retry_after(email, address, now())
        if wait:  # before the password is checked, and not counted
            body, status = _too_many_page()
            return body, status, {"Retry-After": str(wait)}
        store = db_session()
        user = store.scalar(select(User).where(func.lower(User.email) == email))
        usable = user is not None and user.is_active
        if verify_password(user.password_hash if usable and user else None,
                           form.password.data or ""):
            assert user is not None
            if needs_rehash(user.password_hash or ""):
                user.password_hash = hash_password(form.password.data or "")
            target = _safe_next(request.args.get("next"))
            if two_factor.has_second_factor(store, user):
                return second_factor.begin(user, target)
            return second_factor.complete(user, "password", target)
        g.login_failed = True
        login_throttle.record_failure(email, address, now())
        if user is None:  # nobody's account: a count per address and minute
            count_denial("login")
        else:
            audit_event(action="login", outcome="denied", even_if_failed=True,
                        actor_kind="user", actor_user_id=user.id, clinic_id=user.clinic_id)
        flash(_("That e-mail and password do not match an active account."), "error")
    # A fresh installation (no clinic yet): nobody can sign in; the page says how to set up.
    return render_template("auth/login.html", form=form,
                           no_clinic=not setup.has_clinic(db_session()))


class SecondFactorForm(FlaskForm):
    code = StringField(_l("Code"), validators=[Length(max=100)],
                       render_kw={"autocomplete": "one-time-code", "inputmode": "numeric",
                                  "autocapitalize": "off", "spellcheck": "false",
                                  "autofocus": True})
    recovery_code = StringField(_l("Recovery code"), validators=[Length(max=100)],
                                render_kw={"autocomplete": "off", "autocapitalize": "off",
                                           "spellcheck": "false"})


def _lapsed() -> Response:
    flash(_("Your sign-in lapsed or was not started: type your e-mail and password again "
            "(the second step must follow within 5 minutes)."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/login/second-factor", methods=["GET", "POST"], endpoint="second_factor")
@limiter.limit(ADDRESS_LIMIT, methods=["POST"], deduct_when=_login_failed)
def second_factor_page() -> str | Response | tuple[str, int, dict[str, str]]:
    """The second step of signing in: a code from the authenticator app, a recovery code
    (or a passkey, :mod:`outcome.web.passkeys`), after a correct password.

    Throttled as the password is: per address (Flask-Limiter, failures only) and per
    account (:mod:`outcome.web.login_throttle`, answered 429 with ``Retry-After`` before
    the code is checked); a wrong code is audited as a refused sign-in of that user.
    Each wrong code (app or recovery) is also counted on the user's app secret: after 10
    in a row (``two_factor.TOTP_FAILURE_LIMIT``, NIST SP 800-63B section 5.2.2) the
    app's codes are refused until a recovery code, a passkey or an admin's reset. The
    user is e-mailed about a failed second step at most once an hour.
    """
    if current_user.is_authenticated:
        return redirect(url_for("home.index"))
    user = second_factor.pending_user()
    if user is None:
        return _lapsed()
    form = SecondFactorForm()
    if form.validate_on_submit():
        address = request.remote_addr or ""
        email = user.email.lower()
        wait = login_throttle.retry_after(email, address, now())
        if wait:  # before the code is checked, and not counted
            body, status = _too_many_page()
            return body, status, {"Retry-After": str(wait)}
        store = db_session()
        typed_recovery = (form.recovery_code.data or "").strip()
        typed = typed_recovery or (form.code.data or "").strip()
        if not typed:  # nothing typed: said, not counted
            form.code.errors = [*form.code.errors, _("Type the 6-digit code your "
                                                     "authenticator app shows.")]
            return _second_factor_form(form, user)
        if not typed_recovery and two_factor.looks_like_totp(typed):
            method = "totp"
            if two_factor.totp_locked(store, user):  # not checked, and not counted
                form.code.errors = [*form.code.errors, _(
                    "Too many wrong codes: sign in with a recovery code or a passkey, or "
                    "ask an admin to reset your second factor.")]
                return _second_factor_form(form, user)
            accepted = two_factor.verify_totp(store, user, typed, now())
        else:
            method = "recovery_code"
            accepted = two_factor.use_recovery_code(store, user, typed, now())
        if accepted:
            response = second_factor.complete(user, method)
            if method == "recovery_code":
                left = two_factor.recovery_codes_left(store, user)
                flash(ngettext("You signed in with a recovery code; %(num)d code is left. "
                               "Make new ones on your two-factor page.",
                               "You signed in with a recovery code; %(num)d codes are left. "
                               "Make new ones on your two-factor page if you run low.",
                               left), "error" if left <= 3 else "info")
            return response
        g.login_failed = True
        login_throttle.record_failure(email, address, now())
        two_factor.record_second_step_failure(store, user)
        two_factor.queue_failure_notice(store, user, now())
        audit_event(action="login", outcome="denied", even_if_failed=True,
                    actor_kind="user", actor_user_id=user.id, clinic_id=user.clinic_id,
                    object_type="sign_in_method", object_id=method)
        field = form.recovery_code if typed_recovery else form.code
        refusal = (_("That recovery code is not right or was used already.")
                   if method == "recovery_code" else
                   _("That code is not right. Type the 6-digit code your app shows now; "
                     "each code works once."))
        field.errors = [*field.errors, refusal]
    return _second_factor_form(form, user)


def _second_factor_form(form: SecondFactorForm, user: User) -> str:
    """The second step's page, with a form only for the factors ``user`` has."""
    return render_template("auth/second_factor.html", form=form,
                           state=two_factor.status(db_session(), user),
                           show_recovery=bool(form.recovery_code.errors))


@bp.route("/logout", methods=["POST"])
@login_required
def logout() -> Response:
    user: User = current_user._get_current_object()
    user.session_version += 1
    audit_event(action="logout", outcome="allowed", actor_user_id=user.id,
                clinic_id=user.clinic_id)
    logout_user()
    session.clear()
    flash(_("You are signed out."), "info")
    return redirect(url_for("auth.login"))


def _safe_next(target: str | None) -> str:
    """Only same-site paths are followed after login (no open redirect)."""
    if target:
        parts = urlsplit(target)
        # Printable only: a CR or LF would split the Location header (a 500 from werkzeug).
        if (not parts.scheme and not parts.netloc and target.startswith("/")
                and not target.startswith("//") and "\\" not in target
                and target.isprintable()):
            return target
    return url_for("home.index")
