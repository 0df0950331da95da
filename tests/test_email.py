"""Links by e-mail through a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from outcome.jobs import deliver_mail
from outcome.jobs import send_links
from outcome.models import OutboundEmail
from outcome.models import QuestionnaireLink
from outcome.services import clinic_settings
from outcome.services.appointments import book_appointment
from tests.helpers import free_port


@pytest.fixture
def booked(db_session, clock, make_user, make_client, make_episode):
    client = make_client(make_user(), email="rowan@example.org", name="Rowan Example")
    episode = make_episode(client)
    appointment = book_appointment(db_session, episode, clock() + dt.timedelta(hours=20))
    db_session.commit()
    return appointment


def test_link_is_emailed_once_and_works(app, client, db_session, clock, smtp, booked):
    assert send_links(app, now=clock()) == 1
    assert send_links(app, now=clock()) == 0  # idempotent
    assert deliver_mail(app, now=clock()) == (1, 0, 0)
    [envelope] = smtp.messages
    body = envelope.content.decode()
    assert envelope.rcpt_tos == ["rowan@example.org"]
    assert "Subject: Before your appointment at" in body
    url = re.search(r"http://127\.0\.0\.1:5000(/q/[A-Za-z0-9_-]{43})", body).group(1)
    for clinical in ("PHQ", "GAD", "depress", "anxi", "score"):
        assert clinical not in body  # links, never clinical content
    assert client.get(url).status_code == 303


def test_one_reminder_with_a_fresh_link_when_not_done(app, db_session, clock, smtp, booked):
    send_links(app, now=clock())
    clock.advance(hours=18)  # 2 hours before: the reminder is due
    assert send_links(app, now=clock()) == 1
    assert send_links(app, now=clock()) == 0
    kinds = db_session.scalars(select(OutboundEmail.kind).order_by(OutboundEmail.id)).all()
    assert kinds == ["link", "reminder"]


def test_delivery_failures_are_retried_and_recorded(app, db_session, clock, booked):
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=free_port(), SMTP_SECURITY="none")
    send_links(app, now=clock())
    assert deliver_mail(app, now=clock()) == (0, 1, 0)
    email = db_session.scalar(select(OutboundEmail))
    db_session.refresh(email)
    assert email.status == "pending" and email.attempts == 1
    assert "ConnectionRefusedError" in email.last_error
    assert email.next_attempt_dt == clock() + dt.timedelta(minutes=1)
    for minutes in (1, 5, 15, 60, 240):
        clock.advance(minutes=minutes)
        deliver_mail(app, now=clock())
    db_session.refresh(email)
    assert (email.status, email.attempts) == ("failed", 6)  # recorded, never lost silently


def test_scheduler_once_runs_every_job(runner, smtp, booked):
    result = runner.invoke(args=["scheduler", "--once"])
    assert result.exit_code == 0, result.output
    assert "send-links: " in result.output and "deliver-mail: " in result.output


def test_post_session_link_after_the_session(app, db_session, clock, smtp, booked, clinic,
                                             make_user):
    import pathlib

    from outcome.services.instruments import attest
    from questionnaires.loader import load_library

    # The clinic installs SRS wording (an overlay) and attests its licence.
    folder = pathlib.Path(app.instance_path) / "instruments"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "srs.yaml").write_text("overlay_for: srs_vas@1\nitems: {srs_1: A, srs_2: B, "
                                     "srs_3: C, srs_4: D}\n")
    app.extensions["outcome.instruments"] = load_library(folder)
    attest(db_session, clinic=clinic, instrument=app.extensions["outcome.instruments"].get(
        "srs_vas"), admin=make_user("admin"), now=clock())
    clinic_settings.update(db_session, clinic, {"post_instrument": "srs_vas"})
    db_session.commit()
    clock.advance(hours=21)  # the session (20 h ahead, 50 minutes) has just ended
    send_links(app, now=clock())
    deliver_mail(app, now=clock())
    post = [m for m in smtp.messages if b"How was today" in m.content]
    assert len(post) == 1
    send_links(app, now=clock())  # not twice
    assert db_session.scalars(select(OutboundEmail.kind)).all().count("post") == 1


def test_no_post_session_email_when_the_alliance_measure_cannot_be_asked(
        app, db_session, clock, smtp, booked, clinic, make_user):
    """SRS-type configured and attested but no wording installed: no link, no e-mail."""
    from outcome.services.instruments import attest

    attest(db_session, clinic=clinic, instrument=app.extensions["outcome.instruments"].get(
        "srs_vas"), admin=make_user("admin"), now=clock())
    clinic_settings.update(db_session, clinic, {"post_instrument": "srs_vas"})
    db_session.commit()
    clock.advance(hours=21)
    send_links(app, now=clock())
    deliver_mail(app, now=clock())
    assert not [m for m in smtp.messages if b"How was today" in m.content]
    assert "post" not in db_session.scalars(select(OutboundEmail.kind)).all()
    assert not db_session.scalars(select(QuestionnaireLink).where(
        QuestionnaireLink.purpose == "post")).all()


def test_the_default_post_session_email_asks_the_session_check(app, db_session, clock, smtp,
                                                               booked):
    clock.advance(hours=21)
    send_links(app, now=clock())
    deliver_mail(app, now=clock())
    assert len([m for m in smtp.messages if b"How was today" in m.content]) == 1
    post = db_session.scalars(select(QuestionnaireLink).where(
        QuestionnaireLink.purpose == "post")).one()
    assert post.battery == ["session_check"]



def test_a_russian_speaking_client_is_written_to_in_russian(app, client, db_session, clock,
                                                            smtp, make_user, make_client,
                                                            make_episode):
    """The client's language ("of the questionnaires and messages") is the e-mails' too:
    subject, words and the appointment's day (found by tests/test_browser_day_one.py)."""
    import email
    import email.policy

    from outcome.models import Clinic

    person = make_client(make_user(), email="anna@example.org", locale="ru")
    name = db_session.get(Clinic, person.clinic_id).name
    book_appointment(db_session, make_episode(person),
                     clock() + dt.timedelta(hours=20))  # Tuesday 17 November, 05:00 UTC
    db_session.commit()
    send_links(app, now=clock())
    clock.advance(hours=21)  # the session is over: the post-session link goes out
    send_links(app, now=clock())
    assert deliver_mail(app, now=clock()) == (2, 0, 0)
    before, after = (email.message_from_bytes(m.content, policy=email.policy.default)
                     for m in smtp.messages)
    assert before["Subject"] == f"Перед вашей встречей в {name}"
    assert after["Subject"] == f"Как прошла сегодняшняя встреча в {name}?"
    first = "Здравствуйте!\n\nКороткие опросники к вашей встрече вторник 17 ноября в 05:00 "  # noqa: RUF001
    assert before.get_content().startswith(first + "готовы.")
    assert "Спасибо, что пришли сегодня." in after.get_content()
    for message in (before, after):
        body = message.get_content()
        url = re.search(r"http://127\.0\.0\.1:5000(/q/[A-Za-z0-9_-]{43})", body).group(1)
        words = body.replace(name, "").replace(f"http://127.0.0.1:5000{url}", "")
        assert not re.search(r"[A-Za-z]{2,}", words), body  # no English left
        assert client.get(url).status_code == 303  # the link works
