"""Past clients, the admin's client list and start pages (issue 17).

- The caseload's filter Current / Ended / All: past clients are found, and the search
  covers them (by name for their therapist, by code for a supervisor).
- The admin's list is paged and searched by code, and an admin registers a client for a
  therapist without seeing the name afterwards.
- End reasons reach the supervisor's figures and the weekly digest.
- Start pages are titled by role.
"""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from sqlalchemy import select

from outcome.models import AuditEvent
from outcome.models import Client
from outcome.models import Episode
from outcome.services.caseload import past_clients
from outcome.services.digests.figures import build_digest
from outcome.services.digests.figures import week_bounds
from outcome.services.supervision import ended_by_reason
from questionnaires.loader import builtin_library
from tests.conftest import csrf_token

LIB = builtin_library()


@pytest.fixture
def caseload(db_session, make_user, make_client, make_episode, assign):
    therapist = make_user()
    supervisor = make_user("supervisor")
    assign(supervisor, therapist)
    current = make_client(therapist, name="Current Person")
    make_episode(current)
    past = make_client(therapist, name="Past Person")
    make_episode(past, closed_on=dt.date(2026, 10, 1), end_reason="referred")
    db_session.commit()
    return therapist, supervisor, current, past


def rows(html: str, table: str) -> str:
    found = re.search(rf'<table class="{table}".*?</table>', html, re.S)
    return found.group(0) if found else ""


def test_the_ended_filter_finds_past_clients_and_search_covers_them(auth, client, caseload):
    therapist, _supervisor, _current, past = caseload
    auth.login(therapist.email)
    html = client.get("/").get_data(as_text=True)
    assert "Current Person" in rows(html, "caseload") and "Past Person" not in html
    ended = client.get("/?episodes=ended").get_data(as_text=True)
    table = rows(ended, "past-clients")
    assert "Past Person" in table and "Referred on" in table and "2026-10-01" in table
    assert "Current Person" not in ended
    both = client.get("/?episodes=all").get_data(as_text=True)
    assert "Current Person" in rows(both, "caseload") and "Past Person" in rows(
        both, "past-clients")
    assert "Past Person" in client.get("/?episodes=all&q=past").get_data(as_text=True)
    assert "Past Person" in client.get(f"/?episodes=ended&q={past.code.lower()}").get_data(
        as_text=True)
    none = client.get("/?episodes=ended&q=nobody").get_data(as_text=True)
    assert "No past client matches this search." in none
    # An unknown value is the default, never an error.
    assert client.get("/?episodes=bogus").status_code == 200


def test_a_supervisor_finds_past_clients_by_code_only(auth, client, db_session, caseload):
    therapist, supervisor, _current, past = caseload
    auth.login(supervisor.email)
    html = client.get(f"/supervision/therapists/{therapist.id}?episodes=ended").get_data(
        as_text=True)
    assert past.code in html and "Past Person" not in html
    by_name = client.get(f"/supervision/therapists/{therapist.id}?episodes=ended&q=Past")
    assert past.code not in by_name.get_data(as_text=True)  # names are not searchable
    assert [r.name for r in past_clients(db_session, supervisor,
                                         therapist_id=therapist.id)] == [None]


def test_past_clients_shows_the_last_ended_episode_only(db_session, make_user, make_client,
                                                        make_episode):
    therapist = make_user()
    person = make_client(therapist)
    make_episode(person, opened_on=dt.date(2026, 1, 1), closed_on=dt.date(2026, 2, 1),
                 end_reason="dropped_out")
    make_episode(person, opened_on=dt.date(2026, 3, 1), closed_on=dt.date(2026, 4, 1),
                 end_reason="mutual")
    found = past_clients(db_session, therapist)
    assert [(r.closed_on.isoformat(), r.end_reason) for r in found] == [("2026-04-01",
                                                                          "mutual")]
    make_episode(person, opened_on=dt.date(2026, 5, 1))
    assert past_clients(db_session, therapist) == []  # back in care: a current client


def test_admin_list_is_paged_and_searched_by_code(auth, client, db_session, make_user,
                                                  make_client):
    therapist = make_user()
    admin = make_user("admin")
    people = [make_client(therapist, name=f"Secret Name {n}") for n in range(30)]
    db_session.commit()
    auth.login(admin.email)
    first = client.get("/admin/clients").get_data(as_text=True)
    assert first.count("/transfer") == 25 and "Page 1 of 2 (30 clients)" in first
    second = client.get("/admin/clients?page=2").get_data(as_text=True)
    assert second.count("/transfer") == 5 and "Secret Name" not in first + second
    assert client.get("/admin/clients?page=99").status_code == 200  # the last page
    assert client.get("/admin/clients?page=x").status_code == 400
    code = people[7].code
    found = client.get(f"/admin/clients?q={code[2:].lower()}").get_data(as_text=True)
    assert code in found and found.count("/transfer") == 1


def test_admin_registers_a_client_for_a_therapist_and_sees_the_code_only(
        auth, client, db_session, make_user):
    therapist = make_user(display_name="Theo Therapist")
    admin = make_user("admin")
    db_session.commit()
    auth.login(admin.email)
    page = client.get("/admin/clients/new").get_data(as_text=True)
    assert "Theo Therapist" in page and "descriptor" not in page
    data = {"csrf_token": csrf_token(page), "name": "Typed Name", "email": "", "phone": "",
            "locale": "en", "therapist": str(therapist.id), "opened_on": "2026-09-01",
            "primary": ""}
    bad = client.post("/admin/clients/new", data={**data, "email": "nope"})
    assert bad.status_code == 400 and db_session.scalar(select(Client)) is None
    done = client.post("/admin/clients/new", data=data, follow_redirects=True)
    html = done.get_data(as_text=True)
    person = db_session.scalar(select(Client))
    assert person.therapist_id == therapist.id and person.name == "Typed Name"
    assert person.code in html and "Typed Name" not in html
    assert db_session.scalar(select(Episode)).therapist_id == therapist.id
    event = db_session.scalar(select(AuditEvent).where(AuditEvent.action == "client.create",
                                                       AuditEvent.outcome == "allowed"))
    assert event.client_id == person.id and event.actor_user_id == admin.id


def test_an_admin_cannot_register_for_a_supervisor_or_another_clinic(
        auth, client, db_session, make_user, make_clinic):
    supervisor = make_user("supervisor")
    other = make_user(clinic_id=make_clinic().id)
    admin = make_user("admin")
    db_session.commit()
    auth.login(admin.email)
    token = csrf_token(client.get("/admin/clients/new").get_data(as_text=True))
    for target in (supervisor, other):
        response = client.post("/admin/clients/new", data={
            "csrf_token": token, "name": "X", "locale": "en", "therapist": str(target.id),
            "opened_on": "2026-09-01", "primary": ""})
        assert response.status_code == 400
    assert db_session.scalar(select(Client)) is None


def test_end_reasons_in_the_supervisors_figures_and_digest(auth, client, db_session, team):
    counts = ended_by_reason(db_session, team["s"])
    assert [(r.reason, r.ended) for r in counts] == [("completed", 1)]
    assert sum(counts[0].categories.values()) == 1
    auth.login(team["s"].email)
    html = client.get("/supervision/").get_data(as_text=True)
    assert "Completed as planned" in html and 'id="end-reasons"' in html
    week = "2026-W44"  # the team's ended episode closed on Sunday 1 November
    digest = build_digest(db_session, team["s"], week,
                          LIB, week_bounds(week, "UTC")[2] + dt.timedelta(days=1))
    alex = digest.sections[0]
    assert [code for code, _c, _m in alex.ended] == [team["done"].code]
    assert alex.ended_reasons == ("Completed as planned",)
    from pypdf import PdfReader

    from reports.digest_pdf import render_digest

    text = " ".join(" ".join(page.extract_text().split())
                    for page in PdfReader(io.BytesIO(render_digest(digest))).pages)
    assert "Why it ended" in text and "Completed as planned" in text
    assert "Why episodes ended" in text
    page = client.get(f"/supervision/clients/{team['done'].code}").get_data(as_text=True)
    assert '<span class="end-reason">Completed as planned</span>' in page


@pytest.mark.parametrize(("roles", "title"), [
    ({"is_therapist": True}, "Your caseload"),
    ({"is_supervisor": True}, "Supervision"),
    ({"is_admin": True}, "Administration"),
    ({"is_admin": True, "is_supervisor": True}, "Supervision"),
    ({"is_admin": True, "is_therapist": True}, "Your caseload"),
])
def test_start_pages_fit_the_role(auth, client, db_session, make_user, roles, title):
    flags = {"is_admin": False, "is_supervisor": False, "is_therapist": False, **roles}
    user = make_user(**flags)
    db_session.commit()
    auth.login(user.email)
    html = client.get("/").get_data(as_text=True)
    assert f"<title>{title}" in html and f"<h1>{title}</h1>" in html
    assert ("/clients/new" in html) == (flags["is_therapist"] or flags["is_admin"])
    if flags["is_admin"]:
        assert "/admin/clients/new" in html
    if not flags["is_therapist"]:
        assert "Your caseload" not in html


def test_russian_admin_and_supervisor_pages_show_no_english(auth, client, db_session, team,
                                                            make_user, make_client):
    from tests.test_client_pages import english_words

    ru = {"Accept-Language": "ru"}
    for _ in range(26):
        make_client(team["a"])
    admin = make_user("admin", display_name="Админ")
    db_session.commit()
    auth.login(admin.email)
    page = client.get("/admin/clients/new", headers=ru).get_data(as_text=True)
    refused = client.post("/admin/clients/new", headers=ru, data={
        "csrf_token": csrf_token(page), "name": "", "email": "x", "locale": "en",
        "therapist": "0", "opened_on": "x", "primary": "x"}).get_data(as_text=True)
    listing = client.get("/admin/clients?q=C-", headers=ru).get_data(as_text=True)
    home = client.get("/", headers=ru).get_data(as_text=True)
    ignore = {"Alex", "Bea", "Cal", "Elsewhere", "Sam"}  # the team's staff names
    for name, html in (("register", page), ("refused", refused), ("list", listing),
                       ("home", home)):
        assert english_words(html) - ignore == set(), name
    auth.logout()
    auth.login(team["s"].email)
    for url in ("/supervision/", "/", f"/supervision/therapists/{team['a'].id}?episodes=all"):
        assert english_words(client.get(url, headers=ru).get_data(as_text=True)) - ignore \
            == set(), url
