"""Response headers every page gets, and error pages that reveal nothing."""

from __future__ import annotations

from flask import Flask
from flask import abort
from flask import current_app
from flask import render_template
from flask import request
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from flask_wtf.csrf import CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response

from outcome.web.api.errors import http_error as integration_error
from outcome.web.api.errors import is_integration_request
from outcome.web.api.problems import FieldError
from outcome.web.api.problems import Problem
from outcome.web.database import audit_event
from outcome.web.scoping import attempted_client_id

csrf = CSRFProtect()

# No inline script or style anywhere, so the policy can be strict.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


# Two years, subdomains included: the form the HSTS preload list asks for (RFC 6797).
STRICT_TRANSPORT_SECURITY = "max-age=63072000; includeSubDomains"


def init_app(app: Flask) -> None:
    hops = int(app.config.get("PROXY_HOPS", 0))
    if hops:
        # Behind a TLS-terminating proxy: trust its X-Forwarded-For/-Proto/-Host, so
        # request.is_secure and the audit trail's addresses are the client's.
        # (mypy: Flask documents wrapping wsgi_app by assigning it.)
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    app.before_request(_refuse_nul)
    csrf.init_app(app)
    app.after_request(_set_headers)
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)


def _refuse_nul() -> None:
    """A NUL character in the address or a form is refused (400) before any view runs.

    No legitimate input has one, PostgreSQL cannot store one in text, and SQLite would
    store what the other backend refuses; refusing it here keeps both alike.
    """
    fields = [("path", request.path), *((k, k) for k in request.args),
              *request.args.items(multi=True)]
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        fields += [*((k, k) for k in request.form), *request.form.items(multi=True)]
    bad = next((name for name, value in fields if "\x00" in value), None)
    if bad is None:
        return
    if is_integration_request():
        raise Problem(400, "The request contains a NUL character.", errors=[FieldError(
            "Contains a NUL character, which no parameter accepts.", parameter=bad[:64],
            code="nul_character")])
    abort(400, description="The request contains a NUL character.")


def _set_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if request.is_secure or current_app.config["BASE_URL"].startswith("https://"):
        headers.setdefault("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY)
    if request.endpoint != "static":
        # Pages, exports, reports and API answers may carry client data: never keep them
        # in a shared or browser cache. Only the static CSS and JS may be cached.
        headers["Cache-Control"] = "no-store"
    return response


def _csrf_error(error: CSRFError) -> tuple[str, int]:
    _audit_csrf_refusal()
    return render_template(
        "error.html", title=_("This form has expired"),
        message=_("For your safety the form could not be sent. Go back, reload the page "
                  "and try again."), code=400), 400


def _audit_csrf_refusal() -> None:
    """A signed-in staff member's refused form about a client (``<code>`` in the route)
    is recorded: one denied event, ``csrf.<endpoint>``, naming the client. (Anonymous
    requests write no row each; they are counted per address elsewhere.)"""
    code = (request.view_args or {}).get("code")
    if not isinstance(code, str) or not current_user.is_authenticated:
        return
    audit_event(action=f"csrf.{request.endpoint}"[:64], outcome="denied", even_if_failed=True,
                actor_user_id=current_user.id, clinic_id=current_user.clinic_id,
                client_id=attempted_client_id(code), object_type="client",
                object_id=code[:64])


def _http_error(error: HTTPException) -> tuple[str, int] | HTTPException | Response:
    if error.code is None or error.code < 400:
        return error
    if is_integration_request():
        return integration_error(error)
    messages = {
        404: (_("Page not found"), _("There is nothing at this address.")),
        405: (_("Not allowed"), _("This page cannot be used that way.")),
    }
    title, message = messages.get(error.code, (error.name, error.description or ""))
    return render_template("error.html", title=title, message=message,
                           code=error.code), error.code
