"""Issue 17, language: a client's questionnaires in their language where a verified
translation exists, told before starting where none does; the language stored with each
administration; a switch for this visit; one list of supported languages."""

from __future__ import annotations

from sqlalchemy import select

from outcome.core.languages import SUPPORTED_LOCALES
from outcome.models import Administration
from outcome.services.links import issue_link
from outcome.web.api.openapi import SCHEMAS
from questionnaires.loader import builtin_library
from questionnaires.wording import instrument_wording
from questionnaires.wording import shown_language
from tests.conftest import csrf_token

LIB = builtin_library()
PHQ9_RU_1 = "Вам не хотелось ничего делать"
NOTICE = "GAD-7: этот опросник на английском языке, потому что проверенной русской версии нет."


def _visit(client, db_session, clock, make_user, make_client, make_episode, locale="ru"):
    person = make_client(make_user(), locale=locale)
    _, token = issue_link(db_session, episode=make_episode(person), purpose="pre",
                          now=clock(), library=LIB)
    db_session.commit()
    assert client.get(f"/q/{token}").status_code == 303
    return person


def _answer(client, instrument, items, value="1"):
    html = client.get("/q/").get_data(as_text=True)
    data = {"csrf_token": csrf_token(html), "instrument": instrument}
    data.update({item: value for item in items})
    return client.post("/q/", data=data)


def test_only_verified_translations_are_shown():
    phq9, gad7 = LIB.get("phq9"), LIB.get("gad7")
    assert shown_language(phq9, "ru") == "ru" and shown_language(gad7, "ru") == "en"
    wording = instrument_wording(phq9, "ru")
    assert wording["items"]["phq9_1"] == PHQ9_RU_1
    assert wording["options"]["phq9_9"][2] == "Более недели"
    assert "phq9_10" not in wording["items"] and "phq9_10" not in wording["options"]
    assert instrument_wording(gad7, "ru")["items"] == {}


def test_every_builtin_translation_names_two_sources_and_is_verified():
    for instrument in LIB:
        for translation in instrument.translations:
            assert translation.is_verified, (instrument.id, translation.language)
    # The definition file itself records where each text came from.
    from questionnaires.loader import BUILTIN_DIR
    from questionnaires.loader import read_yaml
    ru = read_yaml(BUILTIN_DIR / "phq9.yaml")["translations"]["ru"]
    assert len(ru["sources"]) >= 2 and ru["sources"][0]["commit"]
    assert "phq9_10" in ru["not_translated"]


def test_an_unverified_translation_is_never_shown(tmp_path):
    import json

    from questionnaires.loader import load_library
    overlay = {"overlay_for": "gad7@1", "translations": {"ru": {
        "items": {"gad7_1": "Текст из одного источника"}}}}
    (tmp_path / "gad7-ru.yaml").write_text(json.dumps(overlay, ensure_ascii=False))
    gad7 = load_library(tmp_path).get("gad7")
    assert shown_language(gad7, "ru") == "en"
    assert instrument_wording(gad7, "ru")["items"] == {}


def test_a_russian_client_is_told_and_each_administration_keeps_its_language(
        client, db_session, clock, make_user, make_client, make_episode):
    _visit(client, db_session, clock, make_user, make_client, make_episode)
    first = client.get("/q/").get_data(as_text=True)
    assert PHQ9_RU_1 in first and NOTICE in first  # told before starting
    assert _answer(client, "phq9", [f"phq9_{n}" for n in range(1, 11)], "0").status_code == 303
    second = client.get("/q/").get_data(as_text=True)
    assert NOTICE in second and '<span lang=en>Feeling nervous, anxious or on edge' in second
    assert _answer(client, "gad7", [f"gad7_{n}" for n in range(1, 8)], "0").status_code == 303
    rows = db_session.scalars(select(Administration).order_by(Administration.id)).all()
    assert [(r.instrument_id, r.language) for r in rows] == [("phq9", "ru"), ("gad7", "en")]


def test_an_english_client_is_not_told_anything(
        client, db_session, clock, make_user, make_client, make_episode):
    _visit(client, db_session, clock, make_user, make_client, make_episode, locale="en")
    html = client.get("/q/").get_data(as_text=True)
    assert "Little interest or pleasure in doing things" in html
    assert "language-notice" not in html


def test_the_switch_changes_this_visit_only(
        client, db_session, clock, make_user, make_client, make_episode):
    person = _visit(client, db_session, clock, make_user, make_client, make_episode)
    html = client.get("/q/").get_data(as_text=True)
    switched = client.post("/q/visit/language", data={"csrf_token": csrf_token(html),
                                                "language": "en"})
    assert switched.status_code == 303
    html = client.get("/q/").get_data(as_text=True)
    assert '<html lang="en">' in html and "Little interest or pleasure" in html
    assert "language-notice" not in html
    db_session.refresh(person)
    assert person.locale == "ru"  # the therapist's setting is untouched
    _answer(client, "phq9", [f"phq9_{n}" for n in range(1, 11)], "0")
    assert db_session.scalar(select(Administration.language)) == "en"


def test_the_switch_refuses_unknown_languages_and_needs_a_session(
        client, db_session, clock, make_user, make_client, make_episode):
    assert client.post("/q/visit/language", data={"language": "en"}).status_code in (400, 401)
    _visit(client, db_session, clock, make_user, make_client, make_episode)
    html = client.get("/q/").get_data(as_text=True)
    refused = client.post("/q/visit/language", data={"csrf_token": csrf_token(html),
                                               "language": "de"})
    assert refused.status_code == 400
    assert "Vam" not in refused.get_data(as_text=True)


def test_one_list_of_languages_for_the_api_and_the_services():
    from outcome.services import clients
    from outcome.services import explanations
    from outcome.web import i18n
    assert clients.LOCALES == explanations.LANGUAGES == i18n.LANGUAGES == SUPPORTED_LOCALES
    assert SCHEMAS["ClientCreate"]["properties"]["locale"]["enum"] == list(SUPPORTED_LOCALES)


def test_a_staff_member_chooses_their_language(client, auth, db_session, make_user):
    user = make_user()
    db_session.commit()
    auth.login(user.email)
    html = client.get("/account/language").get_data(as_text=True)
    assert "Follow my browser" in html
    refused = client.post("/account/language", data={"csrf_token": csrf_token(html),
                                                     "locale": "xx"})
    assert refused.status_code == 400 and "en, ru" in refused.get_data(as_text=True)
    saved = client.post("/account/language", data={"csrf_token": csrf_token(html),
                                                   "locale": "ru"})
    assert saved.status_code == 303
    db_session.refresh(user)
    assert user.locale == "ru"
    page = client.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="ru">' in page  # the account's choice wins over the browser
    html = client.get("/account/language").get_data(as_text=True)
    client.post("/account/language", data={"csrf_token": csrf_token(html), "locale": ""})
    db_session.refresh(user)
    assert user.locale is None
