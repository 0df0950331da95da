"""Client consent (issue 20): the service, the client's pages, and what stops after no."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from outcome.models import Administration
from outcome.models import AuditEvent
from outcome.models import ConsentDecision
from outcome.models import OutboundEmail
from outcome.models import QuestionnaireLink
from outcome.services import consent
from outcome.services import consent_withdrawal
from outcome.services.links import CollectionStopped
from outcome.services.links import issue_link
from outcome.services.submissions import NoConsent
from outcome.services.submissions import Submission
from outcome.services.submissions import submit
from questionnaires.loader import builtin_library
from tests.conftest import csrf_token

LIB = builtin_library()


@pytest.fixture
def asking(db_session, clinic):
    """The clinic asks online (the real default)."""
    clinic.settings = {**clinic.settings, "consent_online": True}
    db_session.flush()
    return clinic


@pytest.fixture
def person(db_session, asking, make_user, make_client, make_episode):
    therapist = make_user(email="tess@example.org")
    client = make_client(therapist, name="Zelda Canary")
    episode = make_episode(client, therapist)
    return therapist, client, episode


def _link(db_session, episode, clock):
    link, token = issue_link(db_session, episode=episode, purpose="pre", now=clock(),
                             library=LIB)
    db_session.commit()
    return link, token


def phq(level=1):
    return {f"phq9_{i}": str(level) for i in range(1, 10)}


# --- service ------------------------------------------------------------------------------


def test_the_first_text_is_the_shipped_default_as_version_one(db_session, asking, clock):
    text = consent.current_text(db_session, asking, "ru", clock())
    assert (text.language, text.version) == ("ru", 1)
    assert text.body == consent.DEFAULT_TEXTS["ru"]
    assert consent.current_text(db_session, asking, "ru", clock()).id == text.id
    # A language with no text of its own and no shipped default: English.
    assert consent.current_text(db_session, asking, "de", clock()).language == "en"
    for body in consent.DEFAULT_TEXTS.values():  # honest and complete in each language
        assert len(body) > 500


def test_english_default_says_what_who_and_the_right_to_refuse(db_session):
    body = consent.DEFAULT_TEXTS["en"]
    for words in ("What is collected", "your own therapist", "You may decline",
                  "care will not be affected", "withdraw at any time"):
        assert words in body


@pytest.mark.parametrize(("language", "phrases"), [
    ("en", ("figures and alerts under a code, never your name or your answers",
            "their supervisor is told, under your code",
            "an administrator is told only that a client of your therapist",
            "for the time its policy sets, then erases them")),
    ("ru", ("видят цифры и сигналы под кодом, но никогда не видят ваше имя и ваши ответы",
            "сообщат супервизору терапевта, под вашим кодом",
            "администратору сообщат только, что такой ответ дал один из клиентов",
            "хранит их столько, сколько предусматривают её правила, а затем удаляет")),  # noqa: RUF001
])
def test_shipped_texts_say_escalation_retention_and_what_supervisors_see(language, phrases):
    """The promises of docs/security.md: supervisors see codes, figures and alerts, never
    names or answers; an urgent answer nobody acts on goes to the supervisor by code, or
    an admin learns only that one of the therapist's clients gave one; answers are kept
    for the clinic's retention period, then erased (no number: the clinic sets it)."""
    body = " ".join(consent.DEFAULT_TEXTS[language].split())
    for words in phrases:
        assert words in body
    assert "видят только цифры" not in body
    assert not any(ch.isdigit() for ch in body)


def test_publishing_makes_a_new_version_and_never_edits(db_session, asking, make_user,
                                                        clock):
    admin = make_user("admin")
    first = consent.current_text(db_session, asking, "en", clock())
    second = consent.publish(db_session, clinic=asking, language="en", body="New words.",
                             user=admin, now=clock())
    assert second.version == 2 and first.body == consent.DEFAULT_TEXTS["en"]
    assert [t.version for t in consent.history(db_session, asking.id, "en")] == [2, 1]
    with pytest.raises(consent.ConsentError, match="same"):
        consent.publish(db_session, clinic=asking, language="en", body=" New words. ",
                        user=admin, now=clock())
    with pytest.raises(consent.ConsentError, match="empty"):
        consent.publish(db_session, clinic=asking, language="en", body="  ", user=admin,
                        now=clock())
    with pytest.raises(consent.ConsentError, match="language"):
        consent.publish(db_session, clinic=asking, language="xx", body="x", user=admin,
                        now=clock())
    with pytest.raises(consent.ConsentError, match="admin"):
        consent.publish(db_session, clinic=asking, language="en", body="Other.",
                        user=make_user(), now=clock())


def test_status_and_may_collect_follow_the_latest_decision(db_session, person, clock):
    _therapist, client, _episode = person
    text = consent.current_text(db_session, client_clinic(db_session, client), "en", clock())
    assert consent.status(db_session, client) == consent.NOT_ASKED
    assert consent.may_collect(db_session, client)  # staff-entered answers: allowed
    assert not consent.may_collect(db_session, client, from_link=True)
    assert consent.needs_asking(db_session, client)
    consent.record_decision(db_session, client=client, text=text, decision="agreed",
                            channel="link", now=clock())
    state = consent.status(db_session, client)
    assert (state.state, state.version, state.is_outdated) == ("agreed", 1, False)
    assert consent.may_collect(db_session, client, from_link=True)
    assert not consent.needs_asking(db_session, client)
    clock.advance(minutes=1)
    consent_withdrawal.withdraw(db_session, client=client, text=text, channel="link",
                                now=clock())
    assert consent.status(db_session, client).state == "withdrawn"
    assert not consent.may_collect(db_session, client)
    assert consent.statuses(db_session, [client.id])[client.id].state == "withdrawn"


def client_clinic(db_session, client):
    from outcome.models import Clinic
    return db_session.get(Clinic, client.clinic_id)


def test_withdrawing_needs_an_agreement(db_session, person, clock):
    _therapist, client, _episode = person
    text = consent.current_text(db_session, client_clinic(db_session, client), "en", clock())
    with pytest.raises(consent.ConsentError, match="agreement"):
        consent.record_decision(db_session, client=client, text=text, decision="withdrawn",
                                channel="link", now=clock())
    with pytest.raises(consent.ConsentError, match="staff"):
        consent.record_decision(db_session, client=client, text=text, decision="agreed",
                                channel="staff", now=clock())


def test_no_link_and_no_answers_after_a_refusal(db_session, person, clock):
    _therapist, client, episode = person
    clinic = client_clinic(db_session, client)
    text = consent.current_text(db_session, clinic, "en", clock())
    consent.record_decision(db_session, client=client, text=text, decision="refused",
                            channel="staff", now=clock(), user=_therapist)
    with pytest.raises(CollectionStopped):
        issue_link(db_session, episode=episode, purpose="pre", now=clock(), library=LIB)
    with pytest.raises(NoConsent):
        submit(db_session, Submission(clinic_id=clinic.id, episode=episode,
                                      instrument_id="phq9", answers=phq(),
                                      completed_dt=clock(), idempotency_key="k1"),
               library=LIB, now=clock())
    assert db_session.scalar(select(Administration.id)) is None


# --- pages --------------------------------------------------------------------------------


def _post(client, path, **data):
    token = csrf_token(client.get(path).get_data(as_text=True))
    return client.post(path, data={"csrf_token": token, **data})


def _choose(client, decision):
    """Decide on the consent page, on the version it shows."""
    html = client.get("/q/consent").get_data(as_text=True)
    text = re.search(r'name="text" value="(\d+)"', html).group(1)
    return client.post("/q/consent", data={"csrf_token": csrf_token(html),
                                           "decision": decision, "text": text})


def test_the_link_asks_first_and_agree_continues(client, db_session, person, clock):
    _therapist, _someone, episode = person
    _link_row, token = _link(db_session, episode, clock)
    assert client.get(f"/q/{token}").status_code == 303
    first = client.get("/q/")
    assert first.status_code == 303 and first.headers["Location"] == "/q/consent"
    page = client.get("/q/consent").get_data(as_text=True)
    assert "What is collected" in page and "version 1" in page
    response = _choose(client, "agree")
    assert response.status_code == 303 and response.headers["Location"] == "/q/"
    html = client.get("/q/").get_data(as_text=True)
    assert "Questionnaire 1 of" in html and "Withdraw consent" in html
    row = db_session.scalar(select(ConsentDecision))
    assert (row.decision, row.channel, row.link_id) == ("agreed", "link", _link_row.id)
    actions = db_session.scalars(select(AuditEvent.action)).all()
    assert "consent.agree" in actions and "consent.view" in actions


def test_declining_stores_nothing_and_says_how_to_change_ones_mind(client, db_session, person,
                                                                  clock):
    _therapist, _someone, episode = person
    _link_row, token = _link(db_session, episode, clock)
    client.get(f"/q/{token}")
    response = _choose(client, "decline")
    assert response.headers["Location"] == "/q/consent/declined"
    html = client.get("/q/consent/declined").get_data(as_text=True)
    assert "No answers have been stored" in html and "same link again" in html
    # A questionnaire sent anyway is refused and stores nothing.
    assert client.get("/q/").headers["Location"] == "/q/consent"
    token_ = csrf_token(client.get("/q/consent").get_data(as_text=True))
    sent = client.post("/q/", data={"csrf_token": token_, "instrument": "phq9", **phq()})
    assert sent.status_code == 303 and sent.headers["Location"] == "/q/consent"
    assert db_session.scalar(select(Administration.id)) is None
    assert db_session.scalar(select(ConsentDecision.decision)) == "refused"
    assert "consent.refuse" in db_session.scalars(select(AuditEvent.action)).all()
    # Changing their mind on the same link.
    again = client.get("/q/consent").get_data(as_text=True)
    assert "You declined earlier" in again
    _choose(client, "agree")
    assert "Questionnaire 1 of" in client.get("/q/").get_data(as_text=True)


def test_withdrawal_revokes_links_and_tells_the_therapist_without_content(
        client, db_session, person, clock, make_appointment):
    therapist, someone, episode = person
    _first, token = _link(db_session, episode, clock)
    appointment = make_appointment(episode, starts_dt=clock() + dt.timedelta(days=3))
    other, _other_token = issue_link(db_session, episode=episode, purpose="pre", now=clock(),
                                     library=LIB, appointment=appointment)
    db_session.commit()
    client.get(f"/q/{token}")
    _choose(client, "agree")
    confirm = client.get("/q/withdraw")
    assert confirm.status_code == 200 and "Withdraw my consent" in confirm.get_data(as_text=True)
    done = _post(client, "/q/withdraw")
    assert done.status_code == 200 and "Consent withdrawn" in done.get_data(as_text=True)
    for row in db_session.scalars(select(QuestionnaireLink)):
        db_session.refresh(row)
        assert row.revoked_dt is not None
    assert other.id
    notice = db_session.scalar(select(OutboundEmail).where(
        OutboundEmail.kind == "consent_withdrawn"))
    assert notice is not None and notice.to_address == therapist.email
    assert "Zelda" not in notice.body_text + notice.subject
    assert someone.code not in notice.body_text + notice.subject
    assert "PHQ" not in notice.body_text
    assert client.get("/q/").status_code == 401  # the visit has ended
    assert "consent.withdraw" in db_session.scalars(select(AuditEvent.action)).all()
    with pytest.raises(CollectionStopped):
        issue_link(db_session, episode=episode, purpose="pre", now=clock(), library=LIB)


def test_a_new_version_asks_again_at_the_next_questionnaire(client, db_session, person,
                                                            clock, make_user):
    _therapist, someone, episode = person
    clinic = client_clinic(db_session, someone)
    text = consent.current_text(db_session, clinic, "en", clock())
    consent.record_decision(db_session, client=someone, text=text, decision="agreed",
                            channel="link", now=clock())
    consent.publish(db_session, clinic=clinic, language="en", body="Version two words.",
                    user=make_user("admin"), now=clock())
    _row, token = _link(db_session, episode, clock)
    client.get(f"/q/{token}")
    assert client.get("/q/").headers["Location"] == "/q/consent"
    html = client.get("/q/consent").get_data(as_text=True)
    assert "Version two words." in html and "changed its consent text" in html
    # Declining the new version withdraws the earlier agreement.
    _choose(client, "decline")
    assert consent.status(db_session, someone).state == "withdrawn"


def test_a_stale_form_shows_the_new_version(client, db_session, person, clock):
    _therapist, _someone, episode = person
    _row, token = _link(db_session, episode, clock)
    client.get(f"/q/{token}")
    response = _post(client, "/q/consent", decision="agree", text="999999")
    assert response.headers["Location"] == "/q/consent"
    assert db_session.scalar(select(ConsentDecision.id)) is None
    bad = _post(client, "/q/consent", decision="maybe", text="1")
    assert bad.status_code == 400


def test_russian_client_reads_the_russian_text(client, db_session, person, clock):
    _therapist, someone, episode = person
    someone.locale = "ru"
    db_session.flush()
    _row, token = _link(db_session, episode, clock)
    client.get(f"/q/{token}")
    html = client.get("/q/consent").get_data(as_text=True)
    assert "Что собирается" in html


# --- FHIR ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("decisions", "expected"), [
    (("agreed",), [("active", "permit")]),
    (("refused",), [("active", "deny")]),
    (("agreed", "withdrawn"), [("inactive", "permit"), ("active", "deny")]),
    (("refused", "agreed"), [("inactive", "deny"), ("active", "permit")]),
])
def test_the_export_bundle_carries_every_decision_as_a_valid_consent(
        db_session, person, clock, decisions, expected):
    """R4/R4B: ``inactive`` is a consent no longer in force; the decision in force is
    ``active``, and a refusal or withdrawal in force is an active ``deny``."""
    import base64

    from fhir.resources.R4B.bundle import Bundle
    from fhir.resources.R4B.consent import Consent

    from outcome.services.exports import episodes_bundle

    _therapist, someone, episode = person
    clinic = client_clinic(db_session, someone)
    text = consent.current_text(db_session, clinic, "en", clock())
    for decision in decisions:
        consent.record_decision(db_session, client=someone, text=text, decision=decision,
                                channel="link", now=clock())
        clock.advance(minutes=1)
    bundle = episodes_bundle(db_session, someone, [episode], LIB, clock())
    Bundle.model_validate(bundle)
    resources = [e["resource"] for e in bundle["entry"]
                 if e["resource"]["resourceType"] == "Consent"]
    assert [(r["status"], r["provision"]["type"]) for r in resources] == expected
    for resource in resources:
        Consent.model_validate(resource)
        assert resource["policy"] == [
            {"uri": f"urn:outcome:{clinic.slug}:consent-text:en:1"}]
        assert base64.b64decode(resource["sourceAttachment"]["data"]).decode() == text.body
        assert resource["patient"]["reference"].startswith("Patient/")
        assert "Zelda" not in str(resource)
    assert len({r["id"] for r in resources}) == len(resources)


def test_no_consent_resource_before_the_client_is_asked(db_session, person, clock):
    from outcome.services.exports import episodes_bundle

    _therapist, someone, episode = person
    bundle = episodes_bundle(db_session, someone, [episode], LIB, clock())
    assert "Consent" not in {e["resource"]["resourceType"] for e in bundle["entry"]}


def test_the_api_refuses_answers_after_a_withdrawal_with_a_4xx(api, db_session, person,
                                                                clock):
    therapist, someone, _episode = person
    text = consent.current_text(db_session, client_clinic(db_session, someone), "en", clock())
    consent.record_decision(db_session, client=someone, text=text, decision="agreed",
                            channel="link", now=clock())
    consent_withdrawal.withdraw(db_session, client=someone, text=text, channel="staff",
                                now=clock(), user=therapist)
    db_session.commit()
    response = api(therapist).post(f"/api/v1/clients/{someone.code}/administrations", json={
        "instrument": "phq9", "answers": {f"phq9_{i}": 1 for i in range(1, 10)}})
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["code"] == "no_consent"
    assert db_session.scalar(select(Administration.id)) is None
    # The therapist recorded it: no e-mail tells them what they did.
    assert db_session.scalar(select(OutboundEmail.id)) is None


# --- staff pages --------------------------------------------------------------------------


def test_the_record_shows_consent_and_takes_a_paper_decision(client, auth, db_session, person,
                                                            clock):
    therapist, someone, _episode = person
    db_session.commit()
    auth.login(therapist.email)
    page = client.get(f"/clients/{someone.code}").get_data(as_text=True)
    assert "not yet asked" in page
    response = client.post(f"/clients/{someone.code}/consent",
                           data={"csrf_token": csrf_token(page), "decision": "agreed"})
    assert response.status_code == 302
    page = client.get(f"/clients/{someone.code}").get_data(as_text=True)
    assert "agreed (version 1," in page
    row = db_session.scalar(select(ConsentDecision))
    assert (row.channel, row.recorded_by_user_id) == ("staff", therapist.id)
    client.post(f"/clients/{someone.code}/consent",
                data={"csrf_token": csrf_token(page), "decision": "declined"})
    page = client.get(f"/clients/{someone.code}").get_data(as_text=True)
    assert "withdrawn on" in page
    home = client.get("/").get_data(as_text=True)
    assert "Consent withdrawn" in home
    actions = db_session.scalars(select(AuditEvent.action)).all()
    assert actions.count("consent.record") == 2


def test_an_admin_publishes_a_new_version(client, auth, db_session, asking, make_user):
    admin = make_user("admin")
    db_session.commit()
    auth.login(admin.email)
    page = client.get("/admin/consent?language=ru")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Что собирается" in html
    empty = client.post("/admin/consent", data={"csrf_token": csrf_token(html),
                                                "language": "ru", "body": "  "})
    assert empty.status_code == 422
    done = client.post("/admin/consent", data={"csrf_token": csrf_token(html),
                                               "language": "ru", "body": "Новый текст."})
    assert done.status_code == 302
    assert [t.version for t in consent.history(db_session, asking.id, "ru")] == [2, 1]
    assert "consent.text.publish" in db_session.scalars(select(AuditEvent.action)).all()
    settings = client.get("/admin/settings").get_data(as_text=True)
    assert "Ask for consent on the client" in settings


# --- review of issue 20: what a no leaves behind ------------------------------------------


def _draft(db_session, link):
    from outcome.services.links import save_draft
    save_draft(link, LIB.get("phq9"), phq(2))
    db_session.flush()
    assert link.draft


def test_a_withdrawal_forgets_the_unsent_answers_kept_by_back(db_session, person, clock):
    _therapist, someone, episode = person
    text = consent.current_text(db_session, client_clinic(db_session, someone), "en", clock())
    consent.record_decision(db_session, client=someone, text=text, decision="agreed",
                            channel="link", now=clock())
    link, _token = _link(db_session, episode, clock)
    _draft(db_session, link)
    consent_withdrawal.withdraw(db_session, client=someone, text=text, channel="link",
                                now=clock(), link=link)
    assert link.draft is None


def test_a_paper_refusal_forgets_the_unsent_answers_kept_by_back(db_session, person, clock):
    therapist, someone, episode = person
    text = consent.current_text(db_session, client_clinic(db_session, someone), "en", clock())
    link, _token = _link(db_session, episode, clock)
    _draft(db_session, link)
    consent_withdrawal.decline(db_session, client=someone, text=text, channel="staff",
                               now=clock(), user=therapist)
    assert link.draft is None


def test_declining_a_new_version_online_is_a_withdrawal_and_says_so(client, db_session,
                                                                   person, clock, make_user):
    _therapist, someone, episode = person
    clinic = client_clinic(db_session, someone)
    text = consent.current_text(db_session, clinic, "en", clock())
    consent.record_decision(db_session, client=someone, text=text, decision="agreed",
                            channel="link", now=clock())
    consent.publish(db_session, clinic=clinic, language="en", body="Version two words.",
                    user=make_user("admin"), now=clock())
    _row, token = _link(db_session, episode, clock)
    client.get(f"/q/{token}")
    done = _choose(client, "decline")
    html = done.get_data(as_text=True)
    assert done.status_code == 200 and "Consent withdrawn" in html
    assert "Your therapist has been told" in html
    assert "No answers have been stored" not in html and "answers so far are kept" not in html
    assert client.get("/q/").status_code == 401  # the visit has ended, as after /q/withdraw
    assert "consent.withdraw" in db_session.scalars(select(AuditEvent.action)).all()


def test_a_refusal_keeps_the_link_it_was_made_on_and_stops_the_rest(
        client, db_session, person, clock, make_appointment):
    from outcome.models import SupportCheck

    therapist, _someone, episode = person
    current, token = _link(db_session, episode, clock)
    appointment = make_appointment(episode, starts_dt=clock() + dt.timedelta(days=3))
    other, _other_token = issue_link(db_session, episode=episode, purpose="pre", now=clock(),
                                     library=LIB, appointment=appointment)
    check = SupportCheck(episode_id=episode.id, reason="therapist", started_by_id=therapist.id,
                         started_dt=clock(), status="sent", battery=[])
    db_session.add(check)
    db_session.commit()
    client.get(f"/q/{token}")
    _choose(client, "decline")
    for row in (current, other, check):
        db_session.refresh(row)
    assert current.revoked_dt is None  # the declined page: "open the same link again"
    assert other.revoked_dt is not None
    assert check.status == "cancelled"
    # The client changes their mind on the same link.
    _choose(client, "agree")
    assert "Questionnaire 1 of" in client.get("/q/").get_data(as_text=True)


def test_the_record_says_what_a_refusal_leaves_open(client, auth, db_session, person, clock):
    therapist, someone, _episode = person
    db_session.commit()
    auth.login(therapist.email)
    page = client.get(f"/clients/{someone.code}").get_data(as_text=True)
    client.post(f"/clients/{someone.code}/consent",
                data={"csrf_token": csrf_token(page), "decision": "declined"})
    page = client.get(f"/clients/{someone.code}").get_data(as_text=True)
    assert "declined on" in page
    assert "no questionnaires are sent or stored" not in page
    # Declined on paper: no link was kept open.
    assert ("no questionnaires are sent and nothing is stored unless the client agrees on "
            "paper") in page
    # Declined on a link: that link stays open.
    row = db_session.scalar(select(ConsentDecision))
    row.channel, row.recorded_by_user_id = "link", None
    db_session.commit()
    page = client.get(f"/clients/{someone.code}").get_data(as_text=True)
    assert ("no new questionnaires are sent and nothing is stored unless the client agrees "
            "(on the link they declined on, while it is valid, or on paper)") in page


def _competitor(db_session, clinic, language, version, body):
    """Another request's text, written between this one's read and its write."""
    from outcome.models import ConsentText
    with db_session.begin_nested():
        db_session.add(ConsentText(clinic_id=clinic.id, language=language, version=version,
                                   body=body, created_dt=dt.datetime(2026, 1, 1,
                                                                     tzinfo=dt.UTC)))


def test_two_first_views_at_once_share_version_one(db_session, asking, clock, monkeypatch):
    real = consent._latest_text
    calls = []

    def racing(session, clinic_id, language):
        calls.append(language)
        if len(calls) == 1:  # this request read nothing; the other one writes v1 now
            _competitor(db_session, asking, language, 1, consent.DEFAULT_TEXTS[language])
            return None
        return real(session, clinic_id, language)

    monkeypatch.setattr(consent, "_latest_text", racing)
    text = consent.current_text(db_session, asking, "en", clock())
    assert (text.language, text.version) == ("en", 1)
    assert [t.version for t in consent.history(db_session, asking.id, "en")] == [1]


def test_two_publishes_at_once_both_become_versions(db_session, asking, make_user, clock,
                                                    monkeypatch):
    admin = make_user("admin")
    consent.current_text(db_session, asking, "en", clock())
    real = consent._next_version
    calls = []

    def racing(session, clinic_id, language):
        version = real(session, clinic_id, language)
        calls.append(version)
        if len(calls) == 1:  # the other admin's publish lands with the same number
            _competitor(db_session, asking, language, version, "The other admin's words.")
        return version

    monkeypatch.setattr(consent, "_next_version", racing)
    mine = consent.publish(db_session, clinic=asking, language="en", body="My words.",
                           user=admin, now=clock())
    assert mine.version == 3
    assert [t.version for t in consent.history(db_session, asking.id, "en")] == [3, 2, 1]


def test_changing_a_stored_page_after_a_withdrawal_is_refused(db_session, person, clock):
    from outcome.services.links import amend_page
    from outcome.services.links import submit_page

    _therapist, someone, episode = person
    text = consent.current_text(db_session, client_clinic(db_session, someone), "en", clock())
    consent.record_decision(db_session, client=someone, text=text, decision="agreed",
                            channel="link", now=clock())
    link, _token = _link(db_session, episode, clock)
    instrument = LIB.get(link.battery[0])
    form = {item.id: "1" for item in instrument.items}
    assert not submit_page(db_session, link=link, instrument=instrument, form=form,
                           library=LIB, now=clock()).errors
    stored = db_session.scalar(select(Administration))
    before = dict(stored.answers)
    clock.advance(minutes=1)
    consent_withdrawal.withdraw(db_session, client=someone, text=text, channel="link",
                                now=clock(), link=link)
    with pytest.raises(NoConsent):
        amend_page(db_session, link=link, instrument=instrument,
                   form={item.id: "2" for item in instrument.items}, library=LIB, now=clock())
    db_session.refresh(stored)
    assert stored.answers == before


def test_a_withdrawal_without_an_active_therapist_tells_the_admins_by_code(
        client, db_session, person, clock, make_user):
    therapist, someone, episode = person
    admin = make_user("admin", email="ada@example.org")
    _link_row, token = _link(db_session, episode, clock)
    client.get(f"/q/{token}")
    _choose(client, "agree")
    therapist.is_active = False  # left the clinic; the client not yet moved
    db_session.commit()
    assert _post(client, "/q/withdraw").status_code == 200
    [notice] = db_session.scalars(select(OutboundEmail).where(
        OutboundEmail.kind == "consent_withdrawn")).all()
    assert notice.to_address == admin.email
    assert someone.code in notice.body_text
    assert "Zelda" not in notice.body_text + notice.subject
    assert someone.code not in notice.subject
    assert "PHQ" not in notice.body_text


def test_a_paper_decision_names_the_version_chosen_on_the_form(client, auth, db_session,
                                                               person, clock, make_user):
    therapist, someone, _episode = person
    clinic = client_clinic(db_session, someone)
    first = consent.current_text(db_session, clinic, "en", clock())
    clock.advance(days=3)
    second = consent.publish(db_session, clinic=clinic, language="en", body="Version two.",
                             user=make_user("admin"), now=clock())
    other_language = consent.current_text(db_session, clinic, "ru", clock())
    db_session.commit()
    auth.login(therapist.email)
    page = client.get(f"/clients/{someone.code}").get_data(as_text=True)
    assert re.search(rf'<option value="{second.id}" selected>[^<]*version 2', page)
    assert re.search(rf'<option value="{first.id}">[^<]*version 1', page)
    assert f'value="{other_language.id}"' not in page
    assert "(current version)" not in page
    # The client signed the older form on paper.
    client.post(f"/clients/{someone.code}/consent",
                data={"csrf_token": csrf_token(page), "decision": "agreed",
                      "text": str(first.id)})
    row = db_session.scalar(select(ConsentDecision))
    assert row.text_id == first.id
    # A version of another language (or clinic, or none at all) is refused; nothing stored.
    client.post(f"/clients/{someone.code}/consent",
                data={"csrf_token": csrf_token(page), "decision": "declined",
                      "text": str(other_language.id)})
    client.post(f"/clients/{someone.code}/consent",
                data={"csrf_token": csrf_token(page), "decision": "declined", "text": "x"})
    assert len(db_session.scalars(select(ConsentDecision)).all()) == 1
    assert "Choose a version of the clinic" in client.get(
        f"/clients/{someone.code}").get_data(as_text=True)


@pytest.mark.parametrize("state, outdated, online, from_link, collect, ask", [
    ("none", False, False, False, True, False),
    ("none", False, False, True, True, False),
    ("none", False, True, False, True, False),   # staff-entered: the clinic may have paper
    ("none", False, True, True, False, True),
    ("agreed", False, True, True, True, False),
    ("agreed", True, True, True, True, True),     # a new version: asked again, not stopped
    ("agreed", True, False, True, True, False),
    ("refused", False, False, False, False, False),
    ("refused", False, True, True, False, True),
    ("withdrawn", False, False, True, False, False),
    ("withdrawn", False, True, False, False, False),
])
def test_one_rule_decides_collection_and_asking(state, outdated, online, from_link,
                                                collect, ask):
    """The rule of :func:`consent.may_collect`, :func:`consent.needs_asking` and the link
    pages' gate, from a decision already read (issue 21)."""
    verdict = consent.verdict(consent.ConsentStatus(state, is_outdated=outdated),
                              online=online, from_link=from_link)
    assert (verdict.may_collect, verdict.needs_asking) == (collect, ask)
