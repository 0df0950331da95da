"""The mail server settings as the site uses them, and a test e-mail (issue 17).

Admins see the host, port, security mode, sender and user from the configuration
(``OUTCOME_SMTP_*``, ``OUTCOME_MAIL_FROM``; :mod:`outcome.config`), never the password:
only whether one is set. "Send a test e-mail" sends to the signed-in admin's own address
through the same sender as the delivery job and shows the result in plain words. It is
limited to :data:`TEST_LIMIT` a :data:`TEST_WINDOW` per admin, counted in the audit trail
(every attempt is an audit event), so the limit holds with any number of workers.
"""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage

from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import func
from sqlalchemy import select
from werkzeug.wrappers import Response

from outcome.models import AuditEvent
from outcome.services.mail import describe_error
from outcome.services.mail import is_loopback_host
from outcome.services.mail import settings_from_config
from outcome.services.mail import smtp_sender
from outcome.web.admin.blueprint import _clinic
from outcome.web.admin.blueprint import _record
from outcome.web.admin.blueprint import bp
from outcome.web.admin.deliveries import reason
from outcome.web.admin.deliveries import server_words
from outcome.web.clock import now
from outcome.web.database import db_session

TEST_LIMIT = 3
TEST_WINDOW = dt.timedelta(minutes=10)
SECURITY_WORDS = {
    "auto": _l("STARTTLS when the server offers it (the certificate is checked only with "
               "a CA file), plain otherwise"),
    "starttls": _l("STARTTLS required, certificate verified"),
    "tls": _l("TLS from the first byte, certificate verified"),
    "none": _l("no encryption (for a relay on this machine only)"),
}


def _settings_rows() -> list[tuple[str, str]]:
    config = current_app.config
    smtp = settings_from_config(config)
    return [
        (_("Server"), smtp.host),
        (_("Port"), str(smtp.port)),
        (_("Security"), f"{smtp.security}: {SECURITY_WORDS.get(smtp.security, '')}"),
        (_("CA file"), smtp.ca_file or _("the system's authorities")),
        (_("Sender address"), smtp.sender),
        (_("User name"), smtp.username or _("none (no sign-in)")),
        (_("Password"), _("set (not shown)") if smtp.password else _("not set")),
    ]


def _page(status: int = 200) -> tuple[str, int]:
    smtp = settings_from_config(current_app.config)
    warn = smtp.security in ("none", "auto") and not smtp.ca_file \
        and not is_loopback_host(smtp.host)
    return render_template("admin/mail.html", rows=_settings_rows(), warn_plain=warn,
                           address=current_user.email, limit=TEST_LIMIT,
                           minutes=int(TEST_WINDOW.total_seconds() // 60)), status


@bp.route("/mail")
def mail_settings() -> tuple[str, int]:
    return _page()


def _recent_tests() -> int:
    return db_session().scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "mail.test", AuditEvent.actor_user_id == current_user.id,
        AuditEvent.occurred_dt > now() - TEST_WINDOW)) or 0


@bp.route("/mail/test", methods=["POST"])
def send_test_email() -> Response | tuple[str, int]:
    """Send a test message to the admin's own address, now, and say what happened."""
    if _recent_tests() >= TEST_LIMIT:
        _record("mail.test", outcome="denied", object_type="user", object_id=current_user.id,
                even_if_failed=True)
        flash(_("At most %(n)s test e-mails in %(minutes)s minutes; please wait a few minutes.",
                n=TEST_LIMIT, minutes=int(TEST_WINDOW.total_seconds() // 60)), "error")
        return _page(429)
    config = current_app.config
    clinic = _clinic()
    message = EmailMessage()
    message["From"] = config["MAIL_FROM"]
    message["To"] = current_user.email
    message["Subject"] = f"Test e-mail from outcome ({clinic.name})"
    message.set_content(f"Hello,\n\nThis is a test e-mail, sent from the mail settings page "
                        f"of outcome. E-mail from {clinic.name} reaches you.\n")
    try:
        smtp_sender(settings_from_config(config))(message)
    except Exception as exc:  # every failure is shown in plain words, never raised
        stored = describe_error(exc)
        _record("mail.test", outcome="error", object_type="user", object_id=current_user.id)
        words = server_words(stored)
        flash(_("The test e-mail could not be sent: %(reason)s.", reason=reason(stored))
              + (f" ({words})" if words else ""), "error")
    else:
        _record("mail.test", object_type="user", object_id=current_user.id)
        flash(_("The test e-mail was handed to the mail server for %(address)s. If it does "
                "not arrive within a few minutes, look in the spam folder, then ask the "
                "mail server's operator.", address=current_user.email), "info")
    return redirect(url_for(".mail_settings"))
