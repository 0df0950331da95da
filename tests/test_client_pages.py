"""Clients and episodes in the browser (issue 17): register, edit, open and end episodes.

The pages call the same services as the API; a refused form is a 400 with a message
beside the field at fault and nothing stored; ending an episode is confirmed first.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func
from sqlalchemy import select

from outcome.models import AuditEvent
from outcome.models import Client
from outcome.models import Episode
from tests.conftest import csrf_token


@pytest.fixture
def therapist(db_session, make_user):
    user = make_user()
    db_session.commit()
    return user


def post(client, page: str, url: str, **data):
    token = csrf_token(client.get(page).get_data(as_text=True))
    return client.post(url, data={"csrf_token": token, **data})


def count(db_session, model) -> int:
    return db_session.scalar(select(func.count()).select_from(model))


def test_a_therapist_registers_a_client_and_the_first_episode_opens(
        auth, client, db_session, therapist):
    auth.login(therapist.email)
    page = client.get("/clients/new")
    assert page.status_code == 200 and "Register a client" in page.get_data(as_text=True)
    response = post(client, "/clients/new", "/clients/new", name="  Ada   Lovelace ",
                    email="ada@example.org", phone="", locale="ru", opened_on="2026-09-01",
                    primary="gad7", descriptor="ptsd")
    assert response.status_code == 302
    person = db_session.scalar(select(Client))
    assert person.name == "Ada Lovelace" and person.locale == "ru"
    assert person.therapist_id == therapist.id and person.email == "ada@example.org"
    episode = db_session.scalar(select(Episode))
    assert (episode.opened_on.isoformat(), episode.primary_instrument_id,
            episode.problem_descriptor, episode.closed_on) == ("2026-09-01", "gad7", "ptsd",
                                                               None)
    assert response.headers["Location"].endswith(f"/clients/{person.code}")
    created = db_session.scalar(select(AuditEvent).where(AuditEvent.action == "client.create"))
    assert created.client_id == person.id and created.outcome == "allowed"


@pytest.mark.parametrize(("field", "data", "words"), [
    ("name", {"name": ""}, "The client&#39;s name is required."),
    ("email", {"email": "not-an-address"}, "is not an e-mail address"),
    ("phone", {"phone": "call me"}, "A phone number has 5 to 40 digits"),
    ("locale", {"locale": "xx"}, "Not a valid choice"),
    ("opened_on", {"opened_on": "2026-13-01"}, "Give a date as YYYY-MM-DD"),
    ("primary", {"primary": "srs"}, "Not a valid choice"),
    ("descriptor", {"descriptor": "bad"}, "Not a valid choice"),
])
def test_bad_registration_is_a_400_beside_the_field_and_stores_nothing(
        auth, client, db_session, therapist, field, data, words):
    auth.login(therapist.email)
    good = {"name": "Ada", "email": "", "phone": "", "locale": "en",
            "opened_on": "2026-09-01", "primary": "", "descriptor": ""}
    response = post(client, "/clients/new", "/clients/new", **{**good, **data})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert f'id="{field}-error"' in html and words in html
    assert 'aria-invalid="true"' in html
    assert count(db_session, Client) == 0 and count(db_session, Episode) == 0


@pytest.mark.parametrize("role", ["supervisor", "admin"])
def test_only_therapists_register_here(auth, client, db_session, make_user, role):
    user = make_user(role)
    db_session.commit()
    auth.login(user.email)
    assert client.get("/clients/new").status_code == 404


def test_edit_end_and_open_again(auth, client, db_session, therapist, make_client,
                                 make_episode):
    person = make_client(therapist, name="Old Name")
    episode = make_episode(person)
    db_session.commit()
    auth.login(therapist.email)
    edit = f"/clients/{person.code}/edit"
    assert "Old Name" in client.get(edit).get_data(as_text=True)
    bad = post(client, edit, edit, name="New Name", email="nope", phone="", locale="en")
    assert bad.status_code == 400
    db_session.refresh(person)
    assert person.name == "Old Name"
    ok = post(client, edit, edit, name="New Name", email="new@example.org", phone="+44 1234",
              locale="ru")
    assert ok.status_code == 302
    db_session.refresh(person)
    assert (person.name, person.email, person.phone, person.locale) == (
        "New Name", "new@example.org", "+44 1234", "ru")

    end = f"/clients/{person.code}/episodes/{episode.id}/end"
    assert client.get(end).status_code == 200
    missing = post(client, end, end, closed_on="2026-10-01")
    assert missing.status_code == 400 and "Choose why the episode ended." in \
        missing.get_data(as_text=True)
    early = post(client, end, end, reason="mutual", closed_on="2026-08-01")
    assert early.status_code == 400
    review = post(client, end, end, reason="mutual", closed_on="2026-10-01")
    assert review.status_code == 200
    assert "Ended early by mutual agreement" in review.get_data(as_text=True)
    db_session.refresh(episode)
    assert episode.closed_on is None  # nothing changes before the confirmation
    done = post(client, end, end, reason="mutual", closed_on="2026-10-01", confirm="yes")
    assert done.status_code == 302
    db_session.refresh(episode)
    assert (episode.closed_on.isoformat(), episode.end_reason) == ("2026-10-01", "mutual")
    page = client.get(f"/clients/{person.code}").get_data(as_text=True)
    assert "Ended early by mutual agreement" in page and "Open a new episode" in page
    shown = client.get(end)
    assert shown.status_code == 200 and "has ended already" in shown.get_data(as_text=True)
    again = post(client, end, end, reason="other", closed_on="2026-10-02", confirm="yes")
    assert again.status_code == 400
    db_session.refresh(episode)
    assert episode.end_reason == "mutual"

    new = f"/clients/{person.code}/episodes/new"
    before = post(client, new, new, opened_on="2026-09-15", primary="", descriptor="")
    assert before.status_code == 400 and "cannot start before the last one ended" in \
        before.get_data(as_text=True)
    opened = post(client, new, new, opened_on="2026-10-05", primary="", descriptor="mixed")
    assert opened.status_code == 302
    episodes = db_session.scalars(select(Episode).order_by(Episode.id)).all()
    assert [e.closed_on is None for e in episodes] == [False, True]
    assert episodes[1].problem_descriptor == "mixed"
    refused = post(client, new, new, opened_on="2026-10-06", primary="", descriptor="")
    assert refused.status_code == 400 and count(db_session, Episode) == 2
    actions = set(db_session.scalars(select(AuditEvent.action).where(
        AuditEvent.client_id == person.id)))
    assert {"client.edit", "episode.end.review", "episode.end", "episode.open"} <= actions


@pytest.mark.parametrize("who", ["other therapist", "supervisor"])
def test_nobody_else_edits_or_ends(auth, client, db_session, make_user, make_client,
                                   make_episode, assign, therapist, who):
    person = make_client(therapist, name="Private Name")
    episode = make_episode(person)
    other = make_user("supervisor" if who == "supervisor" else "therapist")
    if who == "supervisor":
        assign(other, therapist)
    db_session.commit()
    auth.login(other.email)
    for url in (f"/clients/{person.code}/edit", f"/clients/{person.code}/episodes/new",
                f"/clients/{person.code}/episodes/{episode.id}/end"):
        response = client.get(url)
        assert response.status_code == 404 and "Private Name" not in \
            response.get_data(as_text=True)


def test_russian_pages_are_translated(auth, client, db_session, therapist, make_client,
                                      make_episode):
    person = make_client(therapist)
    episode = make_episode(person)
    db_session.commit()
    auth.login(therapist.email)
    for url in ("/clients/new", f"/clients/{person.code}/edit",
                f"/clients/{person.code}/episodes/{episode.id}/end"):
        html = client.get(url, headers={"Accept-Language": "ru"}).get_data(as_text=True)
        for english in ("Register a client", "Edit client details", "End the episode",
                        "Completed as planned", "Name", "Cancel", "Language of"):
            assert english not in html, (url, english)


LATIN = re.compile(r"[A-Za-z][A-Za-z'\u2019]{2,}")
ALLOWED = {"outcome", "PHQ", "GAD", "SPIN", "IES", "PDSS", "OCI", "HAI", "NHS", "Talking",
           "Therapies", "ORS", "WHO", "PCL", "SRS", "WAI", "CORE", "OQ", "GBO", "CSV",
           "FHIR", "PDF", "API", "Therapist", "Supervisor", "Admin", "Test", "Clinic",
           "Client", "Person", "example", "org", "therapist", "supervisor", "admin",
           "type"}  # instrument short names ("ORS-type") and the test's own names


def english_words(html: str) -> set[str]:
    """Latin words a reader sees (tags, scripts and attribute values left out)."""
    body = "<main" + html.split("<main", 1)[-1]
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style|svg)\b.*?</\1>", " ", body,
                                          flags=re.S))
    text = re.sub(r"\bC-[A-Z0-9]+", " ", text)  # client codes
    return {w for w in LATIN.findall(text) if w not in ALLOWED}


def test_russian_forms_refused_and_confirmed_show_no_english(
        auth, client, db_session, therapist, make_client, make_episode):
    person = make_client(therapist)
    episode = make_episode(person)
    db_session.commit()
    auth.login(therapist.email)
    ru = {"Accept-Language": "ru"}
    end = f"/clients/{person.code}/episodes/{episode.id}/end"
    token = csrf_token(client.get(end, headers=ru).get_data(as_text=True))
    pages = {
        "refused registration": client.post("/clients/new", headers=ru, data={
            "csrf_token": token, "name": "", "email": "x", "phone": "y", "locale": "xx",
            "opened_on": "bad", "primary": "nope", "descriptor": "nope"}),
        "refused end": client.post(end, headers=ru, data={"csrf_token": token,
                                                          "closed_on": "1800-01-01"}),
        "confirmation": client.post(end, headers=ru, data={
            "csrf_token": token, "reason": "referred", "closed_on": "2026-10-01"}),
        "new episode": client.get(f"/clients/{person.code}/episodes/new", headers=ru),
        "past clients": client.get("/?episodes=all", headers=ru),
    }
    for name, response in pages.items():
        assert english_words(response.get_data(as_text=True)) == set(), name


def test_the_api_and_the_pages_share_the_end_reasons(api, client, db_session, therapist,
                                                     make_client, make_episode):
    """One list of reasons (outcome.models.care.END_REASONS): the API's schema takes the
    new "mutual", and an ended episode's page shows it in words."""
    person = make_client(therapist)
    episode = make_episode(person)
    db_session.commit()
    caller = api(therapist)
    response = caller.post(f"/api/v1/clients/{person.code}/episodes/{episode.id}/close",
                           json={"end_reason": "mutual", "closed_on": "2026-10-01"},
                           headers={"Idempotency-Key": "end-1"})
    assert response.status_code == 200 and response.get_json()["end_reason"] == "mutual"
    refused = caller.post(f"/api/v1/clients/{person.code}/episodes/{episode.id}/close",
                          json={"end_reason": "bored"}, headers={"Idempotency-Key": "end-2"})
    assert refused.status_code == 422
    document = caller.get("/api/v1/openapi.json").get_json()
    assert "mutual" in document["components"]["schemas"]["EpisodeClose"]["properties"][
        "end_reason"]["enum"]
