"""Sending clients their questionnaire link before each session, and one reminder.

Run by the scheduler every few minutes; safe to run any number of times (each message
has a dedupe key per appointment). A reminder carries a fresh link: tokens are stored
only as hashes, so the first one cannot be sent again, and issuing the new one revokes
the old. A queued message holds no token: its body has a slot, filled in at sending with
the token derived from the message's nonce and the app's secret key
(:mod:`outcome.services.mail`).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from babel.dates import format_date
from babel.dates import format_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.models import Appointment
from outcome.models import Client
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import OutboundEmail
from outcome.models import QuestionnaireLink
from outcome.models.care import SESSION_STATUSES
from outcome.services import clinic_settings
from outcome.services import consent
from outcome.services.appointments import is_last_booked
from outcome.services.appointments import session_number
from outcome.services.explanations import language
from outcome.services.explanations import say
from outcome.services.links import battery_for
from outcome.services.links import issue_link
from outcome.services.mail import LINK_SLOT
from outcome.services.mail import link_token
from outcome.services.mail import new_link_nonce
from outcome.services.mail import queue_email
from questionnaires.loader import InstrumentLibrary


def N_(message: str) -> str:  # the gettext convention for "mark only"
    return message


# The client's e-mails, in the language of their record (Client.locale, "of the
# questionnaires and messages"): rendered through the catalogue by ``say``.
HELLO = N_("Hello,")
LINK_FIRST = N_("Your short questionnaires for your appointment on %(date)s at %(time)s "
                "are ready. They take a few minutes:")
REMINDER_FIRST = N_("A reminder: your short questionnaires for your appointment on "
                    "%(date)s at %(time)s are ready. They take a few minutes:")
ONLY_FOR_YOU = N_("The link is only for you and works until you have answered; please do "
                  "not forward it.")
PRE_SUBJECT = N_("Before your appointment at %(clinic)s")
POST_SUBJECT = N_("How was today's session at %(clinic)s?")
POST_FIRST = N_("Thank you for coming today. Two minutes of your time helps your therapist "
                "make the next session work for you:")


def _body(clinic: Clinic, url: str, starts: dt.datetime, reminder: bool,
          locale: str | None = None) -> str:
    local = starts.astimezone(zoneinfo.ZoneInfo(clinic.timezone))
    code = language(locale)
    first = say(REMINDER_FIRST if reminder else LINK_FIRST, code,
                date=format_date(local, "EEEE d MMMM", locale=code),
                time=format_time(local, "HH:mm", locale=code))
    return (f"{say(HELLO, code)}\n\n{first}\n\n{url}\n\n{say(ONLY_FOR_YOU, code)}\n\n"
            f"{clinic.name}\n")


def send_due_links(session: Session, library: InstrumentLibrary, *, base_url: str,
                   now: dt.datetime, secret_key: str) -> int:
    """Queue link e-mails (and reminders) for upcoming appointments; flush. Returns count.

    ``secret_key`` is the app's: each link's token is derived from it and the message's
    nonce, and is stored nowhere in clear.
    """
    queued = 0
    horizon = now + dt.timedelta(days=8)
    rows = session.execute(
        select(Appointment, Episode, Client, Clinic)
        .join(Episode, Appointment.episode_id == Episode.id)
        .join(Client, Episode.client_id == Client.id)
        .join(Clinic, Episode.clinic_id == Clinic.id)
        .where(Appointment.status == "scheduled", Appointment.starts_dt > now,
               Appointment.starts_dt <= horizon, Episode.closed_on.is_(None),
               Client.email.is_not(None))).all()
    for appointment, episode, client, clinic in rows:
        assert client.email is not None  # the query selects only clients with an address
        if not consent.may_collect(session, client):
            continue  # declined or withdrawn: no link, no reminder (issue 20)
        settings = clinic_settings.current(clinic)
        until = appointment.starts_dt - now
        for kind, hours in (("link", settings["link_email_hours"]),
                            ("reminder", settings["reminder_hours"])):
            if hours <= 0 or until > dt.timedelta(hours=hours):
                continue
            key = f"{kind}:{appointment.id}:pre"
            if session.scalar(select(OutboundEmail.id).where(OutboundEmail.dedupe_key == key)):
                continue
            if kind == "reminder" and _answered(session, appointment):
                continue
            if kind == "link" and until <= dt.timedelta(hours=settings["reminder_hours"]):
                continue  # booked at short notice: the reminder sends the link
            if not battery_for(session, clinic, library, purpose="pre",
                               session_no=session_number(session, appointment),
                               episode_id=episode.id,
                               is_last=is_last_booked(session, appointment)):
                continue  # nothing to ask: no link, no message
            nonce = new_link_nonce()
            link, _ = issue_link(session, episode=episode, purpose="pre", now=now,
                                 library=library, appointment=appointment,
                                 token=link_token(secret_key, nonce))
            if not link.battery:
                continue
            url = f"{base_url.rstrip('/')}/q/{LINK_SLOT}"
            queue_email(session, clinic_id=clinic.id, kind=kind, dedupe_key=key,
                        to_address=client.email,
                        subject=say(PRE_SUBJECT, client.locale, clinic=clinic.name),
                        body=_body(clinic, url, appointment.starts_dt, kind == "reminder",
                                   client.locale),
                        now=now, link_nonce=nonce)
            queued += 1
    return queued


def send_post_session_links(session: Session, library: InstrumentLibrary, *, base_url: str,
                            now: dt.datetime, secret_key: str) -> int:
    """Queue the post-session link (the alliance measure) once each session has ended.

    Sent within 12 hours of the end of an appointment that was not cancelled or missed.
    """
    queued = 0
    rows = session.execute(
        select(Appointment, Episode, Client, Clinic)
        .join(Episode, Appointment.episode_id == Episode.id)
        .join(Client, Episode.client_id == Client.id)
        .join(Clinic, Episode.clinic_id == Clinic.id)
        .where(Appointment.status.in_(SESSION_STATUSES),
               Appointment.starts_dt <= now, Appointment.starts_dt > now - dt.timedelta(hours=14),
               Client.email.is_not(None))).all()
    for appointment, episode, client, clinic in rows:
        assert client.email is not None  # the query selects only clients with an address
        if not consent.may_collect(session, client):
            continue  # declined or withdrawn: no link (issue 20)
        ended = appointment.starts_dt + dt.timedelta(minutes=appointment.duration_minutes)
        if not ended <= now <= ended + dt.timedelta(hours=12):
            continue
        key = f"post:{appointment.id}"
        if session.scalar(select(OutboundEmail.id).where(OutboundEmail.dedupe_key == key)):
            continue
        if not battery_for(session, clinic, library, purpose="post", session_no=1):
            continue
        nonce = new_link_nonce()
        link, _ = issue_link(session, episode=episode, purpose="post", now=now,
                             library=library, appointment=appointment,
                             token=link_token(secret_key, nonce))
        if not link.battery:
            continue
        queue_email(session, clinic_id=clinic.id, kind="post", dedupe_key=key,
                    to_address=client.email,
                    subject=say(POST_SUBJECT, client.locale, clinic=clinic.name),
                    body=(f"{say(HELLO, client.locale)}\n\n{say(POST_FIRST, client.locale)}"
                          f"\n\n{base_url.rstrip('/')}/q/{LINK_SLOT}\n\n"
                          f"{say(ONLY_FOR_YOU, client.locale)}\n\n{clinic.name}\n"),
                    now=now, link_nonce=nonce)
        queued += 1
    return queued


def _answered(session: Session, appointment: Appointment) -> bool:
    return session.scalar(select(QuestionnaireLink.id).where(
        QuestionnaireLink.appointment_id == appointment.id,
        QuestionnaireLink.purpose == "pre", QuestionnaireLink.used_dt.is_not(None))) is not None
