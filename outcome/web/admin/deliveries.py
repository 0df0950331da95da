"""Scheduled reports and e-mail: what went out, what is retrying, what failed."""

from __future__ import annotations

from flask import render_template
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from outcome.models import OutboundEmail
from outcome.models import ReportRun
from outcome.models import User
from outcome.services.mail import mask_addresses
from outcome.web.admin.blueprint import _clinic
from outcome.web.admin.blueprint import _local
from outcome.web.admin.blueprint import _tz
from outcome.web.admin.blueprint import bp
from outcome.web.database import db_session

# A stored error starts with its exception's class name (services.mail.describe_error);
# admins read a plain-language class instead. The first matching name wins.
_ERROR_CLASSES = (
    ("LinkWithdrawn", _l("Not sent: the link had been withdrawn, used or had expired; "
                         "no dead link was sent")),
    ("ConnectionRefusedError", _l("Connection refused by the mail server")),
    ("SMTPRecipientsRefused", _l("The mail server refused the recipient's address")),
    ("SMTPSenderRefused", _l("The mail server refused the sender address")),
    ("SMTPAuthenticationError", _l("The mail server refused the user name or password")),
    ("SMTPNotSupportedError", _l("The mail server does not offer encryption (STARTTLS), "
                                 "which the settings require")),
    ("SSLCertVerificationError", _l("The mail server's certificate is not trusted")),
    ("SSLError", _l("The encrypted connection to the mail server failed")),
    ("SMTPServerDisconnected", _l("The mail server closed the connection")),
    ("SMTPDataError", _l("The mail server refused the message")),
    ("SMTPResponseException", _l("The mail server refused the message")),
    ("TimeoutError", _l("The mail server did not answer in time")),
    ("timeout", _l("The mail server did not answer in time")),
    ("gaierror", _l("The mail server's name could not be found")),
    ("OSError", _l("The mail server could not be reached")),
)


def error_summary(stored: str | None) -> tuple[str, str]:
    """A stored delivery error as (plain-language class, details), every address masked.

    Errors stored before addresses were masked at the source are masked here too.
    """
    if not stored:
        return "", ""
    name, colon, detail = stored.partition(": ")
    if not colon or not name.isidentifier():
        return _("Delivery failed"), mask_addresses(stored)
    for known, label in _ERROR_CLASSES:
        if name == known:
            return str(label), mask_addresses(detail)
    return _("Delivery failed"), mask_addresses(detail)


@bp.route("/deliveries")
def deliveries() -> str:
    """Digest runs and e-mail of this clinic: what went out, what is retrying, what failed.

    Supervisors are named (staff); no client data is shown: no recipient addresses,
    no subjects, and errors with every e-mail address masked.
    """
    store = db_session()
    clinic = _clinic()
    runs = store.execute(
        select(ReportRun, User.display_name).join(User, User.id == ReportRun.recipient_user_id)
        .where(User.clinic_id == clinic.id)
        .order_by(ReportRun.created_dt.desc(), ReportRun.id.desc()).limit(100)).all()
    emails = store.scalars(
        select(OutboundEmail).where(OutboundEmail.clinic_id == clinic.id,
                                    OutboundEmail.status != "sent")
        .order_by(OutboundEmail.created_dt.desc()).limit(100)).all()
    return render_template("admin/deliveries.html", runs=runs, emails=emails, tz=_tz(),
                           local=_local, error_summary=error_summary,
                           masked=mask_addresses)
