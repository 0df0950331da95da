"""Scheduled reports and e-mail: what went out, what is retrying, what failed, and an
admin's "Retry now" (issue 17).

Admins read a delivery's state in plain words ("Waiting to retry (attempt 2 of 6)",
"Could not be delivered: the mail server refused the connection"), never an exception's
name; a questionnaire-link message names its client by code, never by name or address.
A retry goes through the delivery job's own send path
(:func:`outcome.services.mail.attempt_delivery`) and is audited.
"""

from __future__ import annotations

import re

from flask import abort
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from outcome.extensions import instrument_library
from outcome.models import Appointment
from outcome.models import Episode
from outcome.models import OutboundEmail
from outcome.models import ReportRun
from outcome.models import User
from outcome.services import mail_status
from outcome.services.mail import attempt_delivery
from outcome.services.mail import mask_addresses
from outcome.services.mail import settings_from_config
from outcome.services.mail import smtp_sender
from outcome.web.admin.blueprint import _clinic
from outcome.web.admin.blueprint import _local
from outcome.web.admin.blueprint import _record
from outcome.web.admin.blueprint import _tz
from outcome.web.admin.blueprint import bp
from outcome.web.clock import now
from outcome.web.database import audit_event
from outcome.web.database import db_session
from outcome.web.database import discard_changes

# A stored error starts with its exception's class name (services.mail.describe_error);
# admins read a plain reason instead, which completes "Could not be delivered: ...". The
# first matching name wins; an SMTP reply code, when there is one, is more precise still.
_ERROR_CLASSES = (
    ("LinkWithdrawn", _l("the questionnaire link had been withdrawn, used or had expired, "
                         "so no dead link was sent")),
    ("ConnectionRefusedError", _l("the mail server refused the connection")),
    ("SMTPRecipientsRefused", _l("the mail server refused the recipient's address")),
    ("SMTPSenderRefused", _l("the mail server refused the sender address")),
    ("SMTPAuthenticationError", _l("the mail server refused the user name or password")),
    ("SMTPNotSupportedError", _l("the mail server does not offer encryption (STARTTLS), "
                                 "which the settings require")),
    ("SSLCertVerificationError", _l("the mail server's certificate is not trusted")),
    ("SSLError", _l("the encrypted connection to the mail server failed")),
    ("SMTPServerDisconnected", _l("the mail server closed the connection")),
    ("SMTPDataError", _l("the mail server refused the message")),
    ("SMTPResponseException", _l("the mail server refused the message")),
    ("TimeoutError", _l("the mail server did not answer in time")),
    ("timeout", _l("the mail server did not answer in time")),
    ("gaierror", _l("the mail server's name could not be found")),
    ("OSError", _l("the mail server could not be reached")),
)
_SMTP_CODES = (
    ((421,), _l("the mail server is busy or shutting down; it asked to try later")),
    ((450, 451, 452), _l("the mail server asked to try again later")),
    ((535, 534, 530), _l("the mail server refused the user name or password")),
    ((550, 551, 553), _l("the recipient's address does not exist or was refused")),
    ((552,), _l("the recipient's mailbox is full")),
    ((554,), _l("the mail server refused the message")),
)
_CODE = re.compile(r"\((\d{3}), b['\"]")
# The server's own words (an SMTP reply) are worth showing, masked; a Python error's are not.
_SERVER_WORDS = re.compile(r"b['\"](.{1,300}?)['\"]\)")
# Why a retry was refused, by RetryRefused.reason.
RETRY_REFUSALS = {
    "delivered": _l("This message has been delivered already."),
    "waiting": _l("This message has not been tried yet; it is sent within a minute."),
    "passed": _l("Not sent again: the session has passed or was cancelled, or the episode "
                 "has ended."),
    "answered": _l("Not sent again: the client has answered the questionnaires already."),
    "no_address": _l("Not sent again: the client has no e-mail address now. Their "
                     "therapist can add one."),
    "nothing_to_ask": _l("Not sent again: no questionnaire is due for this session."),
    "no_consent": _l("Not sent again: the client declined or withdrew consent to "
                     "questionnaires."),  # issue 20
    "unknown": _l("Not sent again: the message no longer matches an appointment."),
    "support": _l("Not sent again: a support check's link cannot be sent twice. The "
                  "therapist can cancel the check and start a new one."),  # issue 19
}
KINDS = {"link": _l("Questionnaire link"), "reminder": _l("Questionnaire reminder"),
         "post": _l("After-session questionnaire"), "escalation": _l("Urgent answer notice"),
         "digest": _l("Weekly digest notice"),
         "therapist_report": _l("Therapist report notice"),  # issue 18
         "support": _l("Support check link")}  # issue 19
# issue 18: every report kind by its name on the runs list (never its content).
RUN_KINDS = {"supervisor_digest": _l("Weekly supervision digest"),
             "therapist_brief": _l("Pre-session brief"),
             "therapist_weekly": _l("Weekly caseload report")}


def reason(stored: str | None) -> str:
    """A stored delivery error as the end of "Could not be delivered: ..."."""
    if not stored:
        return ""
    name, colon, detail = stored.partition(": ")
    code = _CODE.search(detail) if colon else None
    if code is not None:
        for codes, label in _SMTP_CODES:
            if int(code.group(1)) in codes:
                return str(label)
    if colon and name.isidentifier():
        for known, label in _ERROR_CLASSES:
            if name == known:
                return str(label)
    return _("the mail server could not take the message")


def server_words(stored: str | None) -> str:
    """The mail server's own reply in a stored error, every address masked; else ''.

    A text not written by ``describe_error`` (no exception name before it: older rows,
    another writer) is shown whole, masked: it holds no exception of ours.
    """
    if not stored:
        return ""
    name, colon, _detail = stored.partition(": ")
    if not colon or not name.isidentifier():
        return mask_addresses(stored)
    found = _SERVER_WORDS.search(stored)
    return mask_addresses(found.group(1)) if found else ""


def error_summary(stored: str | None) -> tuple[str, str]:
    """(plain reason, the server's words): kept for the digest runs and older callers."""
    return reason(stored), server_words(stored)


def status_words(email: OutboundEmail) -> str:
    """A message's state in plain words."""
    if email.status == "sent":
        return _("Sent")
    if email.status == "failed":
        return _("Could not be delivered: %(reason)s", reason=reason(email.last_error))
    if email.attempts == 0:
        return _("Waiting to be sent")
    return _("Waiting to retry (attempt %(n)s of %(total)s): %(reason)s",
             n=email.attempts + 1, total=mail_status.MAX_ATTEMPTS,
             reason=reason(email.last_error))


def kind_words(kind: str) -> str:
    return str(KINDS.get(kind, _("Message to staff")))


def run_kind_words(kind: str) -> str:
    """A report run's kind by its name ("Pre-session brief")."""
    return str(RUN_KINDS.get(kind, kind))


@bp.route("/deliveries")
def deliveries() -> str:
    """Report runs and e-mail of this clinic: what went out, what is retrying, what failed.

    Every run (digests, briefs, weekly reports) by its kind, period, recipient (staff,
    named) and state, never its content; clients by code only: no recipient addresses,
    no subjects, and the server's words with every e-mail address masked.
    """
    store = db_session()
    clinic = _clinic()
    runs = store.execute(
        select(ReportRun, User.display_name).join(User, User.id == ReportRun.recipient_user_id)
        .where(User.clinic_id == clinic.id)
        .order_by(ReportRun.created_dt.desc(), ReportRun.id.desc()).limit(100)).all()
    emails = list(store.scalars(
        select(OutboundEmail).where(OutboundEmail.clinic_id == clinic.id,
                                    OutboundEmail.status != "sent")
        .order_by(OutboundEmail.created_dt.desc(), OutboundEmail.id.desc()).limit(100)))
    return render_template("admin/deliveries.html", runs=runs, emails=emails, tz=_tz(),
                           local=_local, error_summary=error_summary, masked=mask_addresses,
                           codes=mail_status.client_codes(store, emails),
                           status_words=status_words, kind_words=kind_words,
                           run_kind_words=run_kind_words,
                           server_words=server_words,
                           failed=sum(e.status == "failed" for e in emails))


def _message(email_id: int) -> OutboundEmail:
    """A message of the admin's clinic, or a 404 (and a ``denied`` record)."""
    email = db_session().get(OutboundEmail, email_id)
    if email is None or email.clinic_id != current_user.clinic_id:
        audit_event(action="mail.retry", outcome="denied", actor_user_id=current_user.id,
                    clinic_id=current_user.clinic_id, object_type="email", object_id=email_id,
                    even_if_failed=True)
        abort(404)
    return email


def _client_id(email: OutboundEmail) -> int | None:
    appointment_id = mail_status.appointment_id_of(email)
    if appointment_id is None:
        return None
    return db_session().scalar(select(Episode.client_id).join(
        Appointment, Appointment.episode_id == Episode.id).where(
        Appointment.id == appointment_id))


@bp.route("/deliveries/<int:email_id>/retry", methods=["POST"])
def retry_email(email_id: int) -> Response:
    """Send one message again now, through the delivery job's send path."""
    store, moment, config = db_session(), now(), current_app.config
    email = _message(email_id)
    client_id = _client_id(email)
    try:
        mail_status.requeue(store, email, now=moment, library=instrument_library(current_app),
                            secret_key=config["SECRET_KEY"])
    except mail_status.RetryRefused as exc:
        discard_changes()
        audit_event(action="mail.retry", outcome="error", actor_user_id=current_user.id,
                    clinic_id=current_user.clinic_id, object_type="email", object_id=email_id,
                    client_id=client_id, even_if_failed=True)
        flash(str(RETRY_REFUSALS[exc.reason]), "error")
        return redirect(url_for(".deliveries"))
    outcome = attempt_delivery(store, email, smtp_sender(settings_from_config(config)),
                               sender=config["MAIL_FROM"], now=moment,
                               secret_key=config["SECRET_KEY"])
    _record("mail.retry", object_type="email", object_id=email.id, client_id=client_id)
    if outcome == "sent":
        flash(_("Sent."), "info")
    else:
        flash(status_words(email), "error")
    return redirect(url_for(".deliveries"))


@bp.route("/deliveries/retry-failed", methods=["POST"])
def retry_failed() -> Response:
    """Put every message that was given up back in the outbox; the delivery job sends
    them within a minute. Those that cannot usefully be sent again stay as they are."""
    store, moment, config = db_session(), now(), current_app.config
    library = instrument_library(current_app)
    queued = refused = 0
    for email in mail_status.failed_messages(store, current_user.clinic_id):
        try:  # a refusal changes nothing (see requeue)
            mail_status.requeue(store, email, now=moment, library=library,
                                secret_key=config["SECRET_KEY"])
        except mail_status.RetryRefused:
            refused += 1
            continue
        queued += 1
    _record("mail.retry_failed", object_type="clinic", object_id=current_user.clinic_id)
    if queued:
        flash(ngettext("%(num)s message is back in the outbox and is sent within a minute.",
                       "%(num)s messages are back in the outbox and are sent within a minute.",
                       queued), "info")
    if refused:
        flash(ngettext("%(num)s message was not sent again (the session has passed, the "
                       "client has answered or has no address).",
                       "%(num)s messages were not sent again (the session has passed, the "
                       "client has answered or has no address).", refused), "info")
    if not queued and not refused:
        flash(_("No message had failed."), "info")
    return redirect(url_for(".deliveries"))
