"""The audit-log query (outcome.services.audit_log): filters, local days, pagination, scope.

The page that shows it is tested in test_admin_pages.py; these run the service alone on
the test database.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from outcome.services import audit
from outcome.services.audit_log import AuditLine
from outcome.services.audit_log import audit_page

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
START = dt.datetime(2026, 10, 1, 12, tzinfo=dt.UTC)


@pytest.fixture
def log(db_session, clinic, make_clinic, make_user, make_client):
    """Sixty views of one client an hour apart, a denied login, another clinic's event."""
    admin = make_user("admin")
    therapist = make_user("therapist", display_name="Theo Therapist")
    client = make_client(therapist)
    for n in range(60):
        audit.record(db_session, action="client.care.view", outcome="allowed",
                     now=START + dt.timedelta(hours=n), actor_user_id=therapist.id,
                     clinic_id=clinic.id, client_id=client.id, object_type="client",
                     object_id=client.code, ip_address="10.0.0.7")
    audit.record(db_session, action="login", outcome="denied", now=START,
                 actor_kind="anonymous", actor_label="unknown@example.org",
                 clinic_id=clinic.id, ip_address="10.0.0.8")
    foreign = make_clinic()
    foreign_admin = make_user("admin", clinic_id=foreign.id)
    foreign_client = make_client(make_user("therapist", clinic_id=foreign.id))
    audit.record(db_session, action="secret.foreign.action", outcome="allowed", now=START,
                 actor_user_id=foreign_admin.id, clinic_id=foreign.id,
                 client_id=foreign_client.id)
    return {"admin": admin, "therapist": therapist, "client": client,
            "foreign_client": foreign_client, "foreign_admin": foreign_admin}


def test_a_page_is_newest_first_plain_data_of_the_admins_clinic_only(db_session, log):
    page = audit_page(db_session, log["admin"], tz=BERLIN)
    assert len(page.lines) == 50 and page.page == 1 and page.has_more
    assert all(isinstance(line, AuditLine) for line in page.lines)
    newest = page.lines[0]
    assert newest.occurred_dt == START + dt.timedelta(hours=59)
    assert (newest.action, newest.outcome, newest.actor_name, newest.actor_email,
            newest.client_code, newest.object_type, newest.ip_address) == (
        "client.care.view", "allowed", "Theo Therapist", log["therapist"].email,
        log["client"].code, "client", "10.0.0.7")
    times = [(line.occurred_dt, line.id) for line in page.lines]
    assert times == sorted(times, reverse=True)
    assert page.actions == ["client.care.view", "login"]
    assert not page.unknown_client


def test_pages_follow_one_another_and_the_last_says_so(db_session, log):
    second = audit_page(db_session, log["admin"], tz=BERLIN, page=2)
    assert (len(second.lines), second.has_more) == (11, False)
    first_ids = {line.id for line in audit_page(db_session, log["admin"], tz=BERLIN).lines}
    assert first_ids.isdisjoint(line.id for line in second.lines)
    small = audit_page(db_session, log["admin"], tz=BERLIN, page=3, page_size=20)
    assert (len(small.lines), small.has_more) == (20, True)
    assert audit_page(db_session, log["admin"], tz=BERLIN, page=0).page == 1
    assert audit_page(db_session, log["admin"], tz=BERLIN, page=9).lines == []


def test_filters_by_action_outcome_and_actor(db_session, log):
    denied = audit_page(db_session, log["admin"], tz=BERLIN, outcome="denied").lines
    assert [(line.action, line.actor_name, line.actor_label, line.actor_kind)
            for line in denied] == [("login", None, "unknown@example.org", "anonymous")]
    views = audit_page(db_session, log["admin"], tz=BERLIN, action="client.care.view",
                       page_size=100).lines
    assert len(views) == 60
    by_actor = audit_page(db_session, log["admin"], tz=BERLIN,
                          actor_user_id=log["therapist"].id, page_size=100).lines
    assert {line.action for line in by_actor} == {"client.care.view"} and len(by_actor) == 60
    assert audit_page(db_session, log["admin"], tz=BERLIN, action="nothing.such").lines == []


def test_a_client_code_of_the_clinic_filters_another_is_unknown(db_session, log):
    mine = audit_page(db_session, log["admin"], tz=BERLIN, client_code=log["client"].code,
                      page_size=100)
    assert len(mine.lines) == 60 and not mine.unknown_client
    foreign = audit_page(db_session, log["admin"], tz=BERLIN,
                         client_code=log["foreign_client"].code)
    assert foreign.unknown_client and foreign.lines == []
    nobody = audit_page(db_session, log["admin"], tz=BERLIN, client_code="C-NOSUCH")
    assert nobody.unknown_client and nobody.lines == []


def test_days_are_the_clinics_local_days_both_included(db_session, log):
    # 2026-10-01 12:00 UTC + n hours; the Berlin (CEST, UTC+2) day 2026-10-02 is n = 10..33.
    day = dt.date(2026, 10, 2)
    one_day = audit_page(db_session, log["admin"], tz=BERLIN, action="client.care.view",
                         start=day, end=day, page_size=100).lines
    assert len(one_day) == 24
    assert min(line.occurred_dt for line in one_day) == START + dt.timedelta(hours=10)
    in_utc = audit_page(db_session, log["admin"], tz=dt.UTC, action="client.care.view",
                        start=day, end=day, page_size=100).lines
    assert min(line.occurred_dt for line in in_utc) == START + dt.timedelta(hours=12)
    since = audit_page(db_session, log["admin"], tz=BERLIN, start=dt.date(2026, 10, 3),
                       page_size=100).lines
    assert len(since) == 60 - 34
    until = audit_page(db_session, log["admin"], tz=BERLIN, end=dt.date(2026, 10, 1),
                       page_size=100).lines
    assert len(until) == 10 + 1  # n = 0..9 and the login


def test_only_an_active_admin_reads_anything(db_session, log, make_user):
    assert audit_page(db_session, log["therapist"], tz=BERLIN).lines == []
    assert audit_page(db_session, log["therapist"], tz=BERLIN).actions == []
    retired = make_user("admin", is_active=False)
    assert audit_page(db_session, retired, tz=BERLIN).lines == []
    foreign = audit_page(db_session, log["foreign_admin"], tz=BERLIN)
    assert [line.action for line in foreign.lines] == ["secret.foreign.action"]
    assert foreign.lines[0].client_code == log["foreign_client"].code
