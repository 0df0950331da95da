"""Crisis contacts and reading hours (issue 17): the service, the admin's form and
checklist, and the client's crisis block on the support and end pages."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape

import pytest
from sqlalchemy import select

from outcome.models import AuditEvent
from outcome.models import Clinic
from outcome.services import clinic_settings
from outcome.services import crisis
from outcome.services.links import issue_link
from questionnaires.loader import builtin_library
from tests.conftest import csrf_token

LIB = builtin_library()
WEEKDAYS_9_TO_5 = [["09:00", "17:00"]] * 5 + [None, None]
CONTACTS = [{"label": "Crisis line", "phone": "+44 800 123 4567", "note": "24 hours, free"},
            {"label": "Emergency", "phone": "112", "note": ""}]


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def clinic_with(timezone: str = "Europe/London", hours=WEEKDAYS_9_TO_5,
                contacts=CONTACTS) -> Clinic:
    settings = {}
    if hours is not None:
        settings["reading_hours"] = hours
    if contacts is not None:
        settings["crisis_contacts"] = contacts
    return Clinic(slug="c", name="C", timezone=timezone, settings=settings)


# --- the service ---------------------------------------------------------------------------


@pytest.mark.parametrize(("now", "expected", "why"), [
    (utc(2026, 12, 2, 12), utc(2026, 12, 2, 12), "Wednesday noon: now"),
    (utc(2026, 12, 2, 9), utc(2026, 12, 2, 9), "Wednesday at opening: now"),
    (utc(2026, 12, 2, 7, 30), utc(2026, 12, 2, 9), "Wednesday early: at opening"),
    (utc(2026, 12, 2, 17), utc(2026, 12, 3, 9), "Wednesday at closing: next morning"),
    (utc(2026, 12, 2, 23), utc(2026, 12, 3, 9), "Wednesday 23:00: next morning"),
    (utc(2026, 12, 4, 18), utc(2026, 12, 7, 9), "Friday evening: Monday"),
    (utc(2026, 12, 5, 12), utc(2026, 12, 7, 9), "Saturday: Monday"),
])
def test_next_reading_time(now, expected, why):
    assert crisis.next_reading_time(clinic_with(), now) == expected, why


def test_next_reading_time_follows_the_clinic_time_zone_and_its_clock_change():
    moscow = clinic_with("Europe/Moscow")  # UTC+3 all year
    # 07:00 UTC is 10:00 in Moscow: inside the hours.
    assert crisis.next_reading_time(moscow, utc(2026, 12, 2, 7)) == utc(2026, 12, 2, 7)
    # 15:00 UTC is 18:00: the next opening is 09:00 Moscow, 06:00 UTC.
    assert crisis.next_reading_time(moscow, utc(2026, 12, 2, 15)) == utc(2026, 12, 3, 6)
    london = clinic_with("Europe/London")
    # Friday 27 March 2026 evening; the clocks go forward on Sunday 29 March: Monday
    # 09:00 is British Summer Time, 08:00 UTC.
    assert crisis.next_reading_time(london, utc(2026, 3, 27, 18)) == utc(2026, 3, 30, 8)


def test_reading_window_gives_the_closing_time_and_one_day_clinics_wait_a_week():
    clinic = clinic_with(hours=[["10:00", "12:00"]] + [None] * 6)  # Mondays only
    start, end = crisis.next_reading_window(clinic, utc(2026, 12, 7, 12, 30))
    assert (start, end) == (utc(2026, 12, 14, 10), utc(2026, 12, 14, 12))
    assert crisis.next_reading_window(clinic, utc(2026, 12, 7, 11)) == (
        utc(2026, 12, 7, 11), utc(2026, 12, 7, 12))


def test_nothing_set_means_no_reading_time_and_an_incomplete_setup():
    assert crisis.next_reading_time(clinic_with(hours=None), utc(2026, 12, 2, 12)) is None
    assert not crisis.crisis_setup_complete(clinic_with(hours=None))
    assert not crisis.crisis_setup_complete(clinic_with(contacts=None))
    assert not crisis.crisis_setup_complete(clinic_with(contacts=[{"label": "x",
                                                                   "phone": "call me"}]))
    assert crisis.crisis_setup_complete(clinic_with())


def test_contacts_and_hours_groups():
    contacts = crisis.crisis_contacts(clinic_with())
    assert contacts[0] == crisis.CrisisContact("Crisis line", "+44 800 123 4567",
                                               "24 hours, free")
    assert contacts[0].tel == "+448001234567" and contacts[1].tel == "112"
    hours = [["09:00", "17:00"]] * 5 + [["10:00", "12:00"], None]
    assert crisis.hours_groups(clinic_with(hours=hours)) == [
        (0, 4, dt.time(9), dt.time(17)), (5, 5, dt.time(10), dt.time(12))]


@pytest.mark.parametrize(("contacts", "field"), [
    ([], "contact-1-label"),
    ([{"label": "", "phone": "112"}], "contact-1-label"),
    ([{"label": "A", "phone": "12"}], "contact-1-phone"),  # too few digits
    ([{"label": "A", "phone": "+44 (800) 1234"}], "contact-1-phone"),
    ([{"label": "A", "phone": "44+800"}], "contact-1-phone"),
    ([{"label": "A", "phone": "١١٢٣"}], "contact-1-phone"),  # other scripts' digits
    ([{"label": "A", "phone": "112"}, {"label": "B", "phone": "1" * 25}], "contact-2-phone"),
    ([{"label": "A", "phone": "112", "note": "x" * 201}], "contact-1-note"),
    ([{"label": "A", "phone": "112"}] * 6, None),
])
def test_contacts_are_checked(contacts, field):
    with pytest.raises(crisis.CrisisError) as refused:
        crisis.check_contacts(contacts)
    assert refused.value.field == field


@pytest.mark.parametrize("hours", [
    [None] * 7, WEEKDAYS_9_TO_5[:6], [["17:00", "09:00"]] + [None] * 6,
    [["9:00", "17:00"]] + [None] * 6, [["09:00", "24:00"]] + [None] * 6, "09:00-17:00",
])
def test_hours_are_checked(hours):
    with pytest.raises(crisis.CrisisError):
        crisis.check_hours(hours)
    assert not crisis.hours_ok(hours)


def test_the_settings_are_declared_and_checked_from_the_command_line(db_session, clinic):
    keys = [s.key for s in clinic_settings.CLINIC_SETTINGS]
    assert {"crisis_contacts", "reading_hours"} <= set(keys)
    value = clinic_settings.parse("reading_hours", '[["09:00","17:00"],null,null,null,null,'
                                                   'null,null]')
    clinic_settings.update(db_session, clinic, {"reading_hours": value})
    with pytest.raises(clinic_settings.SettingError):
        clinic_settings.update(db_session, clinic, {"crisis_contacts": [{"label": "A"}]})


# --- the admin's form and checklist -----------------------------------------------------------


@pytest.fixture
def admin_signed_in(db_session, make_user, auth):
    admin = make_user("admin")
    db_session.commit()
    auth.login(admin.email)
    return admin


def form_data(page: str, contacts=CONTACTS, days=range(5), opens="09:00", closes="17:00"):
    data = {"csrf_token": csrf_token(page)}
    for n, contact in enumerate(contacts, start=1):
        for key in ("label", "phone", "note"):
            data[f"contact-{n}-{key}"] = contact.get(key, "")
    for d in range(7):
        if d in days:
            data[f"hours-{d}-open"] = "on"
        data[f"hours-{d}-opens"], data[f"hours-{d}-closes"] = opens, closes
    return data


def test_the_checklist_shows_until_the_form_is_saved(client, db_session, clinic,
                                                      admin_signed_in):
    for start in ("/", "/admin/"):
        html = client.get(start).get_data(as_text=True)
        assert "Setup is not finished" in html and "/admin/settings/crisis" in html
    page = client.get("/admin/settings/crisis")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    # A new clinic is offered Monday to Friday, 9 to 5.
    assert html.count('value="on" checked') == 5
    saved = client.post("/admin/settings/crisis", data=form_data(html))
    assert saved.status_code == 302
    db_session.expire_all()
    stored = db_session.get(Clinic, clinic.id)
    assert crisis.crisis_setup_complete(stored)
    assert stored.settings["reading_hours"] == WEEKDAYS_9_TO_5
    assert stored.settings["crisis_contacts"][0]["phone"] == "+44 800 123 4567"
    for start in ("/", "/admin/"):
        assert "Setup is not finished" not in client.get(start).get_data(as_text=True)
    again = client.get("/admin/settings/crisis").get_data(as_text=True)
    assert 'value="+44 800 123 4567"' in again and again.count('value="on" checked') == 5
    events = db_session.scalars(select(AuditEvent.outcome).where(
        AuditEvent.action == "clinic.settings.change")).all()
    assert events == ["allowed"]


def test_a_wrong_form_saves_nothing_and_marks_each_field(client, db_session, clinic,
                                                         admin_signed_in):
    html = client.get("/admin/settings/crisis").get_data(as_text=True)
    bad = [{"label": "Crisis line", "phone": "call us"}, {"label": "", "phone": "112"}]
    response = client.post("/admin/settings/crisis",
                           data=form_data(html, contacts=bad, opens="17:00", closes="09:00"))
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="contact-1-phone-error"' in page and 'id="contact-2-label-error"' in page
    assert 'id="hours-0-error"' in page and "closing time must be after" in page
    assert 'value="call us"' in page  # what was typed is kept
    db_session.expire_all()
    assert not crisis.crisis_setup_complete(db_session.get(Clinic, clinic.id))
    assert db_session.scalar(select(AuditEvent.outcome).where(
        AuditEvent.action == "clinic.settings.change")) == "error"


def test_the_general_settings_form_does_not_show_them_as_text(client, admin_signed_in):
    html = client.get("/admin/settings").get_data(as_text=True)
    assert 'name="crisis_contacts"' not in html and 'name="reading_hours"' not in html
    assert "/admin/settings/crisis" in html


def test_the_form_is_in_russian(client, admin_signed_in):
    html = client.get("/admin/settings/crisis",
                      headers={"Accept-Language": "ru"}).get_data(as_text=True)
    assert "Кризисные контакты и часы чтения" in html and "Понедельник" in html
    assert "Phone number" not in html and "Reading hours" not in html


# --- the client's crisis block --------------------------------------------------------------


@pytest.fixture
def link_of(db_session, clock, make_user, make_client, make_episode):
    def make(clinic_settings_: dict | None, at: dt.datetime, timezone: str = "Europe/London",
             locale="en"):
        clock.current = at
        episode = make_episode(make_client(make_user(), locale=locale))
        clinic = db_session.get(Clinic, episode.clinic_id)
        clinic.timezone = timezone
        if clinic_settings_ is not None:  # on top of the test clinic's (consent on paper)
            clinic.settings = {**(clinic.settings or {}), **clinic_settings_}
        _, token = issue_link(db_session, episode=episode, purpose="pre", now=clock(),
                              library=LIB)
        db_session.commit()
        return token
    return make


def phq(level, item9=0):
    return {**{f"phq9_{i}": str(level) for i in range(1, 9)}, "phq9_9": str(item9)}


def post_page(client, instrument, answers):
    token = csrf_token(client.get("/q/").get_data(as_text=True))
    return client.post("/q/", data={"csrf_token": token, "instrument": instrument, **answers})


def critical_support_page(client, token) -> str:
    client.get(f"/q/{token}")
    response = post_page(client, "phq9", phq(1, item9=2))
    assert response.headers["Location"] == "/q/support"
    return client.get("/q/support").get_data(as_text=True)


COMPLETE = {"crisis_contacts": CONTACTS, "reading_hours": WEEKDAYS_9_TO_5}


def test_support_page_shows_tap_to_call_contacts_and_when_answers_are_read(client, clock,
                                                                           link_of):
    token = link_of(COMPLETE, utc(2026, 11, 16, 23))
    # Monday 16 November 2026, 23:00 in London: read on Tuesday from 9:00.
    html = critical_support_page(client, token)
    assert '<a class="button call" href="tel:+448001234567">' in html
    assert 'href="tel:112"' in html and "24 hours, free" in html
    text = re.sub(r"\s+", " ", unescape(html))
    assert "Your therapist's clinic reads answers Monday to Friday, 9:00\u201317:00." in text
    assert ("yours will be read on Tuesday 17 November, between 9:00 and 17:00" in text)
    assert "today" not in text.lower()
    assert "call your local emergency number" in text


def test_inside_the_hours_the_page_says_by_when(client, clock, link_of):
    token = link_of(COMPLETE, utc(2026, 11, 18, 10))
    html = critical_support_page(client, token)  # Wednesday
    text = re.sub(r"\s+", " ", unescape(html))
    assert "reading answers now: yours will be read by 17:00 on Wednesday 18 November" in text
    assert "today" not in text.lower()


def test_before_setup_is_complete_the_generic_emergency_text_only(client, clock, link_of):
    token = link_of({"reading_hours": WEEKDAYS_9_TO_5}, utc(2026, 11, 18, 10))  # no contacts
    html = critical_support_page(client, token)
    assert "call your local emergency number" in html
    assert "tel:" not in html and "reads answers Monday" not in html
    assert "today" not in html.lower()


def test_the_end_page_repeats_the_block_after_a_critical_answer_only(client, clock, link_of):
    token = link_of(COMPLETE, utc(2026, 11, 18, 10))
    critical_support_page(client, token)
    post_page(client, "gad7", {f"gad7_{i}": "0" for i in range(1, 8)})
    end = client.get("/q/").get_data(as_text=True)
    assert "Thank you" in end and 'href="tel:+448001234567"' in end
    calm = link_of(COMPLETE, utc(2026, 11, 18, 10))
    client.get(f"/q/{calm}")
    post_page(client, "phq9", phq(1))
    post_page(client, "gad7", {f"gad7_{i}": "0" for i in range(1, 8)})
    end = client.get("/q/").get_data(as_text=True)
    assert "Thank you" in end and "tel:" not in end


def test_a_russian_client_reads_the_block_in_russian(client, clock, link_of):
    token = link_of(COMPLETE, utc(2026, 11, 20, 18), timezone="Europe/Moscow", locale="ru")
    # Friday 20 November 2026, 18:00 UTC is 21:00 in Moscow: read on Monday.
    html = critical_support_page(client, token)
    text = re.sub(r"\s+", " ", unescape(html))
    assert ("Клиника вашего терапевта читает ответы: понедельник \u2013 пятница, "
            "9:00\u201317:00.") in text
    assert "Ваши ответы прочитают: понедельник 23 ноября, с 9:00 до 17:00" in text  # noqa: RUF001
    assert "сегодня" not in text.lower() and "today" not in text.lower()
    assert "позвоните по местному номеру экстренной помощи" in text
