"""The therapist's pages after a signal (issue 19): the support check offered on the
client record, its link, its results by domain with their explanations, the action plan
recorded from its suggestions (or without a check), the follow-up at the review date, and
closing or revising the plan; the caseload's plan marker and the pre-session brief.

The loop is ``../shared/design/support.md`` ("The loop"): a signal offers a check; the
plan resolves the alerts of ``PLAN_KINDS`` (not a bare note); at the review date the
follow-up says the main measure's colour then and now and its change since the plan.
Every sentence about the client is checked against its numbers, naming its measure.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import re

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from outcome.core.messages import Message
from outcome.core.support import CheckReading
from outcome.core.support import DomainResult
from outcome.core.support import Suggestion
from outcome.models import ActionPlan
from outcome.models import Alert
from outcome.models import AuditEvent
from outcome.models import OutboundEmail
from outcome.models import QuestionnaireLink
from outcome.models import SupportCheck
from outcome.services import support
from outcome.services.explanations import render_explanation
from outcome.services.links import hash_token
from outcome.services.links import open_link
from outcome.services.links import submit_page
from outcome.services.plan_marks import plan_marks
from outcome.services.therapist_reports.brief import brief_pdf
from outcome.services.therapist_reports.brief import build_brief
from tests.conftest import csrf_token
from tests.helpers import LIB
from tests.helpers import PHQ
from tests.helpers import flat
from tests.helpers import submit

# PHQ-9 8 -> 16 over four weeks: up 8, at least PHQ-9's 6 points (Kroenke et al. 2001;
# the definition's reliable-change threshold), so a reliable deterioration and red.
RED_LEVELS = [1, 1, 2, 2]


def phq(level: int) -> dict[str, int]:
    values = {f"phq9_{i}": level for i in range(1, 9)}
    values["phq9_9"] = 0
    return values


@pytest.fixture
def red(db_session, make_user, make_client, make_episode):
    """A therapist and their client (with an e-mail address) whose PHQ-9 went from 8 to
    16: reliably deteriorated, red, with an open not-on-track alert."""
    therapist = make_user()
    person = make_client(therapist, name="Rosa Example", email="rosa@example.org")
    episode = make_episode(person)
    for week, level in enumerate(RED_LEVELS):
        submit(db_session, episode, PHQ, phq(level), week)
    db_session.commit()
    alert = db_session.scalar(select(Alert).where(Alert.episode_id == episode.id,
                                                  Alert.kind == "not_on_track"))
    assert alert is not None and alert.status == "open"
    return therapist, person, episode, alert


def _post(client, url: str, page_url: str, **data):
    token = csrf_token(client.get(page_url).get_data(as_text=True))
    return client.post(url, data={"csrf_token": token, **data})


REASONS = {"red": "Red on PHQ-9: not on track.",
           "deterioration": "Reliable deterioration on PHQ-9."}


def test_the_offer_names_the_measure_and_the_signal(auth, client, db_session, red):
    therapist, person, episode, alert = red
    offer = support.offer_for(db_session, episode)
    assert offer is not None and offer.reason in REASONS
    auth.login(therapist.email)
    page = client.get(f"/clients/{person.code}").get_data(as_text=True)
    assert "Support check offered" in page
    assert REASONS[offer.reason] in page
    # The not-on-track alert offers the loop, not the bare acknowledgement note.
    assert f'/clients/{person.code}/alerts/{alert.id}/acknowledge' not in page
    assert "Start a support check" in page and "Record an action plan" in page


def test_starting_a_check_emails_the_link_and_shows_it_once(auth, client, db_session, red):
    therapist, person, episode, alert = red
    auth.login(therapist.email)
    response = _post(client, f"/clients/{person.code}/support-checks",
                     f"/clients/{person.code}", alert=str(alert.id))
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "The link has been e-mailed to the client\u2019s address." in page
    url = re.search(r'value="(http[^"]+/q/([^"]+))"', page)
    assert url, "the link is shown once"
    check = db_session.scalar(select(SupportCheck).where(SupportCheck.episode_id == episode.id))
    assert check.status == "sent" and check.alert_id == alert.id
    link = db_session.get(QuestionnaireLink, check.link_id)
    assert link.purpose == "support" and link.token_hash == hash_token(url.group(2))
    [mail] = db_session.scalars(select(OutboundEmail).where(OutboundEmail.kind == "support"))
    assert mail.to_address == "rosa@example.org"
    # No clinical content in the e-mail (security.md): no measure, colour or score.
    for word in ("PHQ", "red", "16", "not on track", "Rosa", "support"):
        assert not re.search(rf"\b{word}\b", mail.body_text + mail.subject, re.I), word
    # The record shows the check waiting, and offers no second one.
    record = client.get(f"/clients/{person.code}").get_data(as_text=True)
    assert "waiting for the client\u2019s answers" in record
    assert "Support check offered" not in record
    audit = db_session.scalars(select(AuditEvent.action).where(
        AuditEvent.client_id == person.id, AuditEvent.action == "support.check.start")).all()
    assert audit == ["support.check.start"]


def test_a_client_without_an_address_gets_the_link_in_person(auth, client, db_session, red):
    therapist, person, _episode, _alert = red
    person.email = None
    db_session.commit()
    auth.login(therapist.email)
    page = _post(client, f"/clients/{person.code}/support-checks",
                 f"/clients/{person.code}").get_data(as_text=True)
    assert "The client has no e-mail address" in page
    assert db_session.scalar(select(OutboundEmail.id).where(OutboundEmail.kind == "support")) \
        is None


def test_cancelling_asks_to_confirm_and_withdraws_the_check(auth, client, db_session, red):
    therapist, person, episode, _alert = red
    auth.login(therapist.email)
    _post(client, f"/clients/{person.code}/support-checks", f"/clients/{person.code}")
    check = db_session.scalar(select(SupportCheck).where(SupportCheck.episode_id == episode.id))
    url = f"/clients/{person.code}/support-checks/{check.id}"
    assert _post(client, f"{url}/cancel", url).status_code == 400
    assert db_session.get(SupportCheck, check.id).status == "sent"
    response = _post(client, f"{url}/cancel", url, confirm="yes")
    assert response.status_code == 302
    db_session.expire_all()
    assert db_session.get(SupportCheck, check.id).status == "cancelled"
    assert "Cancelled." in client.get(url).get_data(as_text=True)


# A reading as the core gives it (the rules' numbers are the core's, pinned in its own
# tests); here: does the page show each domain's measure, score, cutoff and state, and
# its explanation in the reader's language?
def _reading() -> CheckReading:
    text = Message("progress.rule_based_notice", {"instrument": "X", "episodes": 3,
                                                   "needed": 30})
    return CheckReading(
        results=(
            DomainResult("alliance", "wai_sr", 38.0, False, text, "Duncan et al. 2003",
                         reused=True, numbers={"score": 38.0, "op": "<", "value": 36}),
            DomainResult("motivation", "phq9", 3.0, True, text, "CASAA",
                         numbers={"score": 3.0, "op": "<=", "value": 5}),
            DomainResult("social_support", None, None, None, text, "Kocalevent 2018"),
            DomainResult("life_events", "phq9", 2.0, True, text, "Brugha et al. 1985",
                         numbers={"score": 2.0, "op": ">=", "value": 1}),
        ),
        suggestions=(
            Suggestion("motivation.mi", "motivation", Message("colour.red"), "Miller & Rollnick"),
            Suggestion("life_events.address", "life_events", Message("colour.green"),
                       "support.md"),
        ),
        none_flagged=False)


@pytest.fixture
def answered(red, db_session, monkeypatch):
    """``red`` with a check the client has answered (its reading: :func:`_reading`)."""
    therapist, person, episode, alert = red
    check = SupportCheck(episode_id=episode.id, alert_id=alert.id, reason="red",
                         started_by_id=therapist.id, status="answered",
                         started_dt=dt.datetime(2026, 11, 10, 9, tzinfo=dt.UTC),
                         answered_dt=dt.datetime(2026, 11, 11, 9, tzinfo=dt.UTC))
    db_session.add(check)
    db_session.commit()
    real = support.view_check

    def view(session, row, library, now=None):
        if row.id == check.id:
            return support.CheckView(row, _reading())
        return real(session, row, library, now)

    monkeypatch.setattr(support, "view_check", view)
    return therapist, person, episode, alert, check


def _cells(page: str, label: str) -> list[str]:
    row = re.search(r"<tr[^>]*><th scope=\"row\">" + re.escape(label) + r"</th>(.*?)</tr>",
                    page, re.S)
    assert row, f"no row for {label}"
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)
    return [html.unescape(flat(re.sub(r"<[^>]+>", " ", c))) for c in cells]


def test_the_results_show_each_domain_with_its_numbers(auth, client, answered):
    therapist, person, _episode, _alert, check = answered
    auth.login(therapist.email)
    page = client.get(f"/clients/{person.code}/support-checks/{check.id}").get_data(
        as_text=True)
    assert _cells(page, "Alliance") == [
        "WAI-SR (the episode\u2019s own score, not asked again)", "38", "< 36", "Not flagged"]
    assert _cells(page, "Motivation") == ["PHQ-9", "3", "\u2264 5", "Flagged"]
    assert _cells(page, "Social support") == ["\u2013", "\u2013", "\u2013", "Not measured"]
    assert _cells(page, "Life events") == ["PHQ-9", "2", "\u2265 1", "Flagged"]
    explanation = render_explanation(_reading().results[0].explanation.as_json())
    assert explanation in page
    # The suggestions by domain, each to accept, edit or decline, in the reader's words.
    assert 'name="s0-decision" value="accepted"' in page and "<legend>Red</legend>" in page
    assert "Source: Miller &amp; Rollnick" in page


def test_the_results_in_russian(auth, client, db_session, answered):
    therapist, person, _episode, _alert, check = answered
    therapist.locale = "ru"
    db_session.commit()
    auth.login(therapist.email)
    page = client.get(f"/clients/{person.code}/support-checks/{check.id}").get_data(
        as_text=True)
    assert "<legend>Красный</legend>" in page
    assert "Support check" not in page and "Not flagged" not in page


def _plan_data(check_id: int | None = None, **extra) -> dict[str, str]:
    data = {"s0-decision": "edited", "s0-text": "Ask what they want from the sessions now",
            "s1-decision": "declined", "s1-text": "Green",
            "own0-text": "Weekly sessions for a month", "own0-domain": "formulation",
            "note": "Discussed openly", "review_on": "2026-12-14"}
    if check_id is not None:
        data["check"] = str(check_id)
    data.update(extra)
    return data


def test_a_plan_from_the_check_keeps_the_choices_and_resolves_the_alert(
        auth, client, db_session, answered):
    therapist, person, episode, alert, check = answered
    auth.login(therapist.email)
    url = f"/clients/{person.code}/support-checks/{check.id}"
    response = _post(client, f"/clients/{person.code}/plans", url, **_plan_data(check.id))
    assert response.status_code == 302, response.get_data(as_text=True)
    plan = db_session.scalar(select(ActionPlan).where(ActionPlan.episode_id == episode.id))
    assert plan.support_check_id == check.id and plan.review_on == dt.date(2026, 12, 14)
    assert plan.note == "Discussed openly"
    assert [(s["domain"], s["suggestion"], s["text"], s["decision"]) for s in plan.steps] == [
        ("motivation", "motivation.mi", "Ask what they want from the sessions now", "edited"),
        ("life_events", "life_events.address", "Green", "declined"),
        ("formulation", None, "Weekly sessions for a month", "own")]
    db_session.expire_all()
    alert = db_session.get(Alert, alert.id)
    assert alert.status == "resolved" and alert.plan_id == plan.id
    record = client.get(f"/clients/{person.code}").get_data(as_text=True)
    assert "Resolved by an action plan." in record
    assert f"/clients/{person.code}/plans/{plan.id}" in record
    assert "Ask what they want from the sessions now" in record
    assert "Open; review on Dec 14, 2026." in record


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"s0-decision": ""}, "s0", "Choose accept, edit or decline."),
    ({"s0-text": ""}, "s0", "Write the step in your own words, or accept it as it is."),
    ({"review_on": "14.12.2026"}, "review-on", "Give the review date as a date (YYYY-MM-DD)."),
    ({"review_on": "2026-11-16"}, "review-on", "The review date must be after today."),
    ({"note": "x" * 2001}, "plan-note", "The note has at most 2000 characters."),
    ({"own0-text": "y" * 501}, "own0", "A step has at most 500 characters."),
    ({"s0-decision": "declined", "own0-text": ""}, "steps",
     "Choose at least one step: accept or edit a suggestion, or write a step of your own."),
])
def test_refused_plans_keep_the_input_and_say_what_is_wrong(auth, client, db_session,
                                                           answered, change, field, message):
    therapist, person, _episode, alert, check = answered
    auth.login(therapist.email)
    url = f"/clients/{person.code}/support-checks/{check.id}"
    data = _plan_data(check.id, **change)
    response = _post(client, f"/clients/{person.code}/plans", url, **data)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert f'id="{field}-error">{message}<' in page
    if data["own0-text"] and len(data["own0-text"]) <= 500:
        assert data["own0-text"] in page  # the therapist's words are kept
    assert db_session.scalar(select(ActionPlan.id)) is None
    assert db_session.get(Alert, alert.id).status == "open"


def test_a_plan_without_a_check(auth, client, db_session, red):
    therapist, person, episode, alert = red
    auth.login(therapist.email)
    form = client.get(f"/clients/{person.code}/plans/new").get_data(as_text=True)
    assert 'name="review_on" value="2026-12-14"' in form  # today + plan_review_days (28)
    response = _post(client, f"/clients/{person.code}/plans",
                     f"/clients/{person.code}/plans/new",
                     **{"own0-text": "Review the formulation in supervision",
                        "own0-domain": "formulation", "note": "", "review_on": "2026-12-01"})
    assert response.status_code == 302
    plan = db_session.scalar(select(ActionPlan).where(ActionPlan.episode_id == episode.id))
    assert plan.support_check_id is None and plan.review_on == dt.date(2026, 12, 1)
    db_session.expire_all()
    assert db_session.get(Alert, alert.id).plan_id == plan.id


def _record(client, db_session, person, episode, review_on: str) -> ActionPlan:
    _post(client, f"/clients/{person.code}/plans", f"/clients/{person.code}/plans/new",
          **{"own0-text": "Weekly sessions for a month", "review_on": review_on})
    return db_session.scalar(select(ActionPlan).where(ActionPlan.episode_id == episode.id,
                                                      ActionPlan.status == "open"))


def test_the_follow_up_at_the_review_date(auth, client, db_session, clock, red):
    """PHQ-9 16 (red) at the plan; two weeks later 8 and then 6: down 10 since the plan."""
    therapist, person, episode, _alert = red
    auth.login(therapist.email)
    plan = _record(client, db_session, person, episode, "2026-11-30")
    before = client.get(f"/clients/{person.code}/plans/{plan.id}").get_data(as_text=True)
    assert "Follow-up since the plan" not in before
    auth.logout()
    clock.advance(days=15)  # 2026-12-01: the review date has come
    for week, level in ((12, 1), (13, 1)):  # after the plan (2026-11-24, 2026-12-01)
        values = phq(level)
        values["phq9_1"] = 0 if week == 13 else 1
        values["phq9_2"] = 0 if week == 13 else 1
        submit(db_session, episode, PHQ, values, week)
    db_session.commit()
    auth.login(therapist.email)
    follow = support.follow_up(db_session, plan, LIB, clock())
    assert follow.is_due and follow.instrument_id == "phq9"
    assert (follow.score_then, follow.score_now, follow.change) == (16, 6, -10)
    assert follow.colour_then == "red"
    page = flat(client.get(f"/clients/{person.code}/plans/{plan.id}").get_data(as_text=True))
    colour_now = {"red": "Red", "yellow": "Yellow", "green": "Green", "white": "White"}[
        follow.colour_now]
    assert "At the plan: PHQ-9 16 (Red)." in page
    assert (f"Now: PHQ-9 6 ({colour_now}), {follow.sessions_since} scored sessions since "
            "the plan.") in page
    assert "Change on PHQ-9 since the plan: -10 points (better)." in page
    if follow.colour_now == "red":
        assert "Not back on track: PHQ-9 is Red now." in page and "Back on track:" not in page
    elif follow.colour_now == "yellow":
        assert ("No longer red: PHQ-9 is Yellow now (less progress than expected)."
                in page) and "Back on track:" not in page
    else:
        assert f"Back on track: PHQ-9 is {colour_now} now." in page
    record = flat(re.sub(r"<[^>]+>", "", client.get(f"/clients/{person.code}").get_data(
        as_text=True)))
    assert "Review due: the review date was Nov 30, 2026." in record
    assert "Close the plan" in record and "Revise the plan" in record


def srs(total: float) -> dict[str, float]:
    part = round(total / 4, 1)
    return {"srs_1": part, "srs_2": part, "srs_3": part, "srs_4": round(total - 3 * part, 1)}


@pytest.fixture
def rupture(db_session, make_user, make_client, make_episode):
    """A client whose PHQ-9 stays 0 (white: below its cutoff of 10, Kroenke et al. 2001)
    and whose SRS goes 38, 38, 38, then 33 in session 4: below the personal mean by more
    than the rupture rule (domain.md section 5), an open rupture alert; no red."""
    therapist = make_user()
    person = make_client(therapist, name="Ruth Example")
    episode = make_episode(person)
    for week, total in enumerate([38, 38, 38, 33]):
        submit(db_session, episode, PHQ, phq(0), week)
        submit(db_session, episode, LIB.get("srs_vas"), srs(total), week)
    db_session.commit()
    alert = db_session.scalar(select(Alert).where(Alert.episode_id == episode.id,
                                                  Alert.kind == "rupture"))
    assert alert is not None and alert.status == "open"
    assert alert.detail["numbers"]["session"] == 4
    return therapist, person, episode, alert


def test_the_follow_up_of_a_plan_after_a_rupture(auth, client, db_session, clock, rupture):
    """A plan on an alliance rupture, PHQ-9 white at the plan and after: never "back on
    track" nor "no longer red" (it was not off track on PHQ-9), the colour now and then;
    and whether the rupture the plan resolved is repaired, from the stored signals
    (domain.md section 5: repaired when the rating is back at the personal level within
    the repair window)."""
    therapist, person, episode, alert = rupture
    auth.login(therapist.email)
    plan = _record(client, db_session, person, episode, "2026-11-30")
    db_session.expire_all()
    assert db_session.get(Alert, alert.id).plan_id == plan.id
    auth.logout()
    clock.advance(days=15)  # 2026-12-01: the review date has come
    submit(db_session, episode, PHQ, phq(0), 12)  # session 5: no SRS rating yet
    db_session.commit()
    auth.login(therapist.email)
    url = f"/clients/{person.code}/plans/{plan.id}"
    page = flat(client.get(url).get_data(as_text=True))
    assert "At the plan: PHQ-9 0 (White)." in page
    assert "PHQ-9 is White now (it was White at the plan)." in page
    assert "Change on PHQ-9 since the plan: 0 points (no change)." in page
    assert "Back on track" not in page and "No longer red" not in page
    assert "Alliance: the rupture on SRS-type at session 4 is not repaired yet." in page
    submit(db_session, episode, PHQ, phq(0), 13)
    # Without booked appointments a measure's sessions are its ratings in order (services.
    # sessions.SessionClock), as in the alert's own words: SRS's fifth rating repairs.
    submit(db_session, episode, LIB.get("srs_vas"), srs(38), 13)
    db_session.commit()
    page = flat(client.get(url).get_data(as_text=True))
    assert ("Alliance: the rupture on SRS-type at session 4 was repaired at session 5."
            in page)
    assert "not repaired yet" not in page
    therapist.locale = "ru"  # the same in the reader's language
    db_session.commit()
    page = flat(client.get(url).get_data(as_text=True))
    assert "Альянс: разрыв по SRS-type на встрече 4 устранён на встрече 5." in page
    assert "PHQ-9 сейчас — Белый (при составлении плана — Белый)." in page
    assert "Изменение по PHQ-9 после плана: 0 баллов (без изменений)." in page


def test_the_follow_up_of_a_rupture_not_repaired_in_its_window(auth, client, db_session,
                                                              clock, rupture):
    """SRS 34 and 34.5 in the two sessions after the dip (the repair window of 2, the
    clinic's default): the rupture is unrepaired for good, and the follow-up says so."""
    therapist, person, episode, _alert = rupture
    auth.login(therapist.email)
    plan = _record(client, db_session, person, episode, "2026-11-30")
    auth.logout()
    clock.advance(days=15)
    for week, total in ((12, 34), (13, 34.5)):
        submit(db_session, episode, PHQ, phq(0), week)
        submit(db_session, episode, LIB.get("srs_vas"), srs(total), week)
    db_session.commit()
    auth.login(therapist.email)
    page = flat(client.get(f"/clients/{person.code}/plans/{plan.id}").get_data(
        as_text=True))
    assert ("Alliance: the rupture on SRS-type at session 4 was not repaired within the "
            "repair window.") in page
    assert "Back on track" not in page and "No longer red" not in page


def test_no_alliance_words_for_a_plan_on_red(auth, client, db_session, clock, red):
    """A plan that resolved no rupture alert says nothing about the alliance."""
    therapist, person, episode, _alert = red
    auth.login(therapist.email)
    plan = _record(client, db_session, person, episode, "2026-11-30")
    auth.logout()
    clock.advance(days=15)
    submit(db_session, episode, PHQ, phq(2), 12)
    db_session.commit()
    auth.login(therapist.email)
    page = flat(client.get(f"/clients/{person.code}/plans/{plan.id}").get_data(
        as_text=True))
    assert "Follow-up since the plan" in page and "Alliance: the rupture" not in page


def test_closing_needs_a_note(auth, client, db_session, red):
    therapist, person, episode, _alert = red
    auth.login(therapist.email)
    plan = _record(client, db_session, person, episode, "2026-11-30")
    url = f"/clients/{person.code}/plans/{plan.id}"
    refused = _post(client, f"{url}/close", url, note="  ")
    assert refused.status_code == 400
    assert "Please say why the plan is closed" in refused.get_data(as_text=True)
    assert db_session.get(ActionPlan, plan.id).status == "open"
    assert _post(client, f"{url}/close", url, note="Back on track").status_code == 302
    db_session.expire_all()
    assert db_session.get(ActionPlan, plan.id).status == "closed"
    page = client.get(url).get_data(as_text=True)
    assert "Back on track" in page and "Close the plan" not in page


def test_revising_prefills_a_new_plan_from_the_old(auth, client, db_session, red):
    therapist, person, episode, _alert = red
    auth.login(therapist.email)
    old = _record(client, db_session, person, episode, "2026-11-30")
    url = f"/clients/{person.code}/plans/{old.id}/revise"
    form = client.get(url).get_data(as_text=True)
    assert "Weekly sessions for a month" in form and f'name="revises" value="{old.id}"' in form
    response = _post(client, f"/clients/{person.code}/plans", url,
                     **{"p0-decision": "edited", "p0-text": "Two sessions a week",
                        "revises": str(old.id), "review_on": "2026-12-20"})
    assert response.status_code == 302, response.get_data(as_text=True)
    db_session.expire_all()
    assert db_session.get(ActionPlan, old.id).status == "revised"
    new = db_session.scalar(select(ActionPlan).where(ActionPlan.revised_from_id == old.id))
    assert new.status == "open" and new.steps[0]["text"] == "Two sessions a week"
    history = client.get(f"/clients/{person.code}/plans/{new.id}").get_data(as_text=True)
    assert "All plans of this episode" in history


def test_another_therapist_gets_the_same_404(auth, client, db_session, make_user, answered):
    _therapist, person, _episode, _alert, check = answered
    other = make_user()
    db_session.commit()
    auth.login(other.email)
    for url in (f"/clients/{person.code}/support-checks/{check.id}",
                f"/clients/{person.code}/plans/new",
                f"/clients/{person.code}/support-checks/987654321"):
        assert client.get(url).status_code == 404


def test_the_caseload_marks_the_plan_state(auth, client, db_session, clock, red):
    therapist, person, episode, _alert = red
    auth.login(therapist.email)
    _record(client, db_session, person, episode, "2026-11-30")
    assert plan_marks(db_session, therapist.id, dt.date(2026, 11, 16)) == {
        person.code: ("plan_open", dt.date(2026, 11, 30))}
    assert plan_marks(db_session, therapist.id, dt.date(2026, 11, 30)) == {
        person.code: ("review_due", dt.date(2026, 11, 30))}
    home = client.get("/").get_data(as_text=True)
    assert "Plan: review on Nov 30, 2026" in flat(home)
    auth.logout()
    clock.advance(days=14)
    auth.login(therapist.email)
    home = client.get("/").get_data(as_text=True)
    assert "Plan: review due" in flat(home)


def test_the_brief_shows_the_open_plan(auth, client, db_session, clock, make_appointment, red):
    therapist, person, episode, _alert = red
    auth.login(therapist.email)
    _record(client, db_session, person, episode, "2026-11-30")
    make_appointment(episode, starts_dt=dt.datetime(2026, 11, 30, 10, tzinfo=dt.UTC))
    db_session.commit()
    day = dt.date(2026, 11, 30)
    brief = build_brief(db_session, therapist, day, LIB, clock())
    [section] = brief.clients
    assert section.plan is not None and section.plan.review_due
    assert section.plan.steps == ("Weekly sessions for a month",)
    text = flat(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(
        brief_pdf(db_session, therapist, day, LIB, clock()))).pages))
    assert "Action plan of 16 November 2026: review due (review date 30 November 2026)" in text
    assert "Weekly sessions for a month" in text


def test_huge_and_malformed_ids_are_refused_cleanly(auth, client, db_session, red):
    """An id past the database's integers is the same 404 as an unknown one (the access
    matrix tries unknown ids; a huge one never reaches the view, so it is tried here); a
    malformed id in a form is a 400 naming the field, never a 500."""
    therapist, person, _episode, _alert = red
    auth.login(therapist.email)
    for url in (f"/clients/{person.code}/support-checks/99999999999999999999",
                f"/clients/{person.code}/plans/99999999999999999999",
                f"/clients/{person.code}/plans/99999999999999999999/revise"):
        assert client.get(url).status_code == 404
    page = f"/clients/{person.code}"
    for url, data in ((f"{page}/support-checks", {"alert": "x1"}),
                      (f"{page}/plans", {"check": "1e9"}),
                      (f"{page}/plans", {"revises": "٣"})):
        response = _post(client, url, page, **data)
        assert response.status_code == 400, url
        name = next(iter(data))
        assert f"The field “{name}” must be a number." in response.get_data(as_text=True)
    assert db_session.scalar(select(SupportCheck.id)) is None


# The client's answers to the shipped support measures, and what the rules make of them
# (questionnaires/support/rules.yaml, each cutoff with its source there): readiness 3 on
# the project's 0-10 question, at or below its default 5: motivation flagged; people
# around me 8 + 8 + 8 = 24 of 30, above its default 15: social support not flagged; one
# event (own health), at or above 1: life events flagged.
ANSWERS = {"readiness_check": {"readiness_now": 3},
           "support_people_check": {"people_turn_to": 8, "people_interest": 8,
                                    "people_practical": 8},
           "life_events_check": {"events_own_health": 1, "events_someone_close": 0,
                                 "events_relationship": 0, "events_work_money": 0,
                                 "events_law_loss": 0, "events_other": 0},
           "session_check": {"check_listened": 3, "check_focus": 3, "check_method": 3,
                             "check_glad": 3}}


def test_the_whole_loop_on_the_pages(auth, client, db_session, clock, red):
    """Red on PHQ-9; the check is started, answered on the client's link, read by domain
    with the rules' numbers; the plan from its suggestions resolves the alert."""
    therapist, person, episode, alert = red
    auth.login(therapist.email)
    page = _post(client, f"/clients/{person.code}/support-checks", f"/clients/{person.code}",
                 alert=str(alert.id)).get_data(as_text=True)
    token = re.search(r'value="http[^"]+/q/([^"]+)"', page).group(1)
    link, problem = open_link(db_session, token, clock())
    assert problem is None and link is not None and link.purpose == "support"
    for instrument_id in link.battery:
        form = {k: str(v) for k, v in ANSWERS[instrument_id].items()}
        result = submit_page(db_session, link=link, instrument=LIB.get(instrument_id),
                             form=form, library=LIB, now=clock())
        assert not result.errors, result.errors
    db_session.commit()
    check = db_session.scalar(select(SupportCheck).where(SupportCheck.episode_id == episode.id))
    assert check.status == "answered"
    url = f"/clients/{person.code}/support-checks/{check.id}"
    page = client.get(url).get_data(as_text=True)
    assert _cells(page, "Motivation") == ["Readiness (not validated)", "3", "\u2264 5",
                                          "Flagged"]
    assert _cells(page, "Social support") == ["People around me (not validated)", "24",
                                              "\u2264 15", "Not flagged"]
    assert _cells(page, "Life events") == ["Life events (not validated)", "1", "\u2265 1",
                                           "Flagged"]
    reading = support.view_check(db_session, check, LIB).reading
    # Each measure by its name in the explanations too, never a definition's id.
    for instrument_id in ("readiness_check", "support_people_check", "life_events_check"):
        assert instrument_id not in page
    for result in reading.results:  # each explanation, as the core words it
        assert html.escape(render_explanation(result.explanation.as_json()), quote=False) \
            in page
    ids = [s.id for s in reading.suggestions]
    assert {s.domain for s in reading.suggestions} >= {"motivation", "life_events"}
    data = {f"s{n}-decision": "declined" for n in range(len(ids))}
    data.update({"s0-decision": "accepted", "check": str(check.id),
                 "review_on": "2026-12-14"})
    response = _post(client, f"/clients/{person.code}/plans", url, **data)
    assert response.status_code == 302, response.get_data(as_text=True)
    plan = db_session.scalar(select(ActionPlan).where(ActionPlan.support_check_id == check.id))
    assert plan.steps[0]["suggestion"] == ids[0] and plan.steps[0]["decision"] == "accepted"
    db_session.expire_all()
    assert db_session.get(Alert, alert.id).plan_id == plan.id


def fu(instrument_id="phq9", *, then, now, score_then, score_now, sessions=2,
       back=None, no_longer_red=None):
    """A follow-up as the service builds it (services.support.FollowUp), by keyword."""
    change = (round(score_now - score_then, 2)
              if score_then is not None and score_now is not None else None)
    return support.FollowUp(instrument_id=instrument_id, colour_then=then, colour_now=now,
                            score_then=score_then, score_now=score_now, change=change,
                            sessions_since=sessions, back_on_track=back, is_due=True,
                            no_longer_red=no_longer_red)


# The colours are domain.md section 4's: white = in the functional range, green = on
# track, yellow = less progress than expected, red = not on track. "Back on track" after a
# plan (support.md, "The loop", 5) is green or white (core.trajectory.ON_TRACK_COLOURS):
# yellow is part of Lambert's not-on-track signal, so after red it is "no longer red", not
# back on track. A plan whose baseline was not red (e.g. after an alliance rupture) was
# never off track on its measure: its follow-up only says the colour now and then. The
# change's direction is the measure's (PHQ-9 and GAD-7: higher is worse; WHO-5: higher is
# better, Topp et al. 2015).
@pytest.mark.parametrize(("follow", "sentences"), [
    # Red at the plan, green now after two scores, 10 points lower.
    (fu(then="red", now="green", score_then=16.0, score_now=6.0, back=True,
        no_longer_red=True),
     ["At the plan: PHQ-9 16 (Red).", "Now: PHQ-9 6 (Green), 2 scored sessions since the "
      "plan.", "Change on PHQ-9 since the plan: -10 points (better).",
      "Back on track: PHQ-9 is Green now."]),
    (fu(then="red", now="white", score_then=16.0, score_now=4.0, back=True,
        no_longer_red=True),
     ["At the plan: PHQ-9 16 (Red).", "Now: PHQ-9 4 (White), 2 scored sessions since the "
      "plan.", "Change on PHQ-9 since the plan: -12 points (better).",
      "Back on track: PHQ-9 is White now."]),
    # Red then yellow: no longer red, but less progress than expected, not back on track.
    (fu(then="red", now="yellow", score_then=16.0, score_now=13.0, back=False,
        no_longer_red=True),
     ["At the plan: PHQ-9 16 (Red).", "Now: PHQ-9 13 (Yellow), 2 scored sessions since "
      "the plan.", "Change on PHQ-9 since the plan: -3 points (better).",
      "No longer red: PHQ-9 is Yellow now (less progress than expected)."]),
    # A plan closed before "back on track" meant green or white kept True for yellow: its
    # words follow the colours, never "back on track" for yellow.
    (fu(then="red", now="yellow", score_then=16.0, score_now=15.0, back=True),
     ["At the plan: PHQ-9 16 (Red).", "Now: PHQ-9 15 (Yellow), 2 scored sessions since "
      "the plan.", "Change on PHQ-9 since the plan: -1 point (better).",
      "No longer red: PHQ-9 is Yellow now (less progress than expected)."]),
    (fu("gad7", then="red", now="red", score_then=15.0, score_now=17.0, sessions=3,
        back=False, no_longer_red=False),
     ["At the plan: GAD-7 15 (Red).", "Now: GAD-7 17 (Red), 3 scored sessions since the "
      "plan.", "Change on GAD-7 since the plan: +2 points (worse).",
      "Not back on track: GAD-7 is Red now."]),
    # Red now with a lower score: still not back on track; the change is better.
    (fu(then="red", now="red", score_then=20.0, score_now=18.0, back=False,
        no_longer_red=False),
     ["At the plan: PHQ-9 20 (Red).", "Now: PHQ-9 18 (Red), 2 scored sessions since the "
      "plan.", "Change on PHQ-9 since the plan: -2 points (better).",
      "Not back on track: PHQ-9 is Red now."]),
    # No score since the plan: nothing is said about being on track, nor any change.
    (fu(then="red", now="red", score_then=16.0, score_now=16.0, sessions=0),
     ["At the plan: PHQ-9 16 (Red).", "No PHQ-9 score since the plan yet."]),
    # Not red at the plan (e.g. a plan after an alliance rupture): the colour now and
    # then, never "back on track" or "no longer red"; no change is 0, not +0.
    (fu(then="white", now="white", score_then=5.0, score_now=5.0, sessions=1, back=True,
        no_longer_red=False),
     ["At the plan: PHQ-9 5 (White).", "Now: PHQ-9 5 (White), 1 scored session since the "
      "plan.", "Change on PHQ-9 since the plan: 0 points (no change).",
      "PHQ-9 is White now (it was White at the plan)."]),
    (fu(then="green", now="green", score_then=9.0, score_now=7.0, back=True,
        no_longer_red=False),
     ["At the plan: PHQ-9 9 (Green).", "Now: PHQ-9 7 (Green), 2 scored sessions since the "
      "plan.", "Change on PHQ-9 since the plan: -2 points (better).",
      "PHQ-9 is Green now (it was Green at the plan)."]),
    (fu(then="yellow", now="green", score_then=12.0, score_now=9.0, back=True,
        no_longer_red=False),
     ["At the plan: PHQ-9 12 (Yellow).", "Now: PHQ-9 9 (Green), 2 scored sessions since "
      "the plan.", "Change on PHQ-9 since the plan: -3 points (better).",
      "PHQ-9 is Green now (it was Yellow at the plan)."]),
    (fu(then="green", now="red", score_then=9.0, score_now=17.0, back=False,
        no_longer_red=False),
     ["At the plan: PHQ-9 9 (Green).", "Now: PHQ-9 17 (Red), 2 scored sessions since the "
      "plan.", "Change on PHQ-9 since the plan: +8 points (worse).",
      "PHQ-9 is Red now (it was Green at the plan)."]),
    # No score at the plan: no change and no colour then to compare with.
    (fu(then=None, now="green", score_then=None, score_now=7.0, back=True),
     ["At the plan: no PHQ-9 score yet.", "Now: PHQ-9 7 (Green), 2 scored sessions since "
      "the plan.", "PHQ-9 is Green now."]),
    # WHO-5 (0-100, higher is better): up is better, down is worse.
    (fu("who5", then="red", now="green", score_then=28.0, score_now=52.0, back=True,
        no_longer_red=True),
     ["At the plan: WHO-5 28 (Red).", "Now: WHO-5 52 (Green), 2 scored sessions since the "
      "plan.", "Change on WHO-5 since the plan: +24 points (better).",
      "Back on track: WHO-5 is Green now."]),
    (fu("who5", then="red", now="red", score_then=28.0, score_now=20.0, back=False,
        no_longer_red=False),
     ["At the plan: WHO-5 28 (Red).", "Now: WHO-5 20 (Red), 2 scored sessions since the "
      "plan.", "Change on WHO-5 since the plan: -8 points (worse).",
      "Not back on track: WHO-5 is Red now."]),
])
def test_the_follow_up_in_words(app, follow, sentences):
    from outcome.web.support import follow_up_sentences
    with app.test_request_context():
        assert follow_up_sentences(follow, LIB) == sentences


@pytest.mark.parametrize(("follow", "sentences"), [
    (fu(then="red", now="green", score_then=16.0, score_now=6.0, back=True,
        no_longer_red=True),
     ["Изменение по PHQ-9 после плана: -10 баллов (лучше).",
      "Снова на верном пути: PHQ-9 сейчас — Зелёный."]),
    (fu(then="red", now="yellow", score_then=16.0, score_now=15.0, back=False,
        no_longer_red=True),
     ["Изменение по PHQ-9 после плана: -1 балл (лучше).",
      "Уже не красный: PHQ-9 сейчас — Жёлтый (прогресс меньше ожидаемого)."]),
    (fu("gad7", then="red", now="red", score_then=15.0, score_now=17.0, back=False,
        no_longer_red=False),
     ["Изменение по GAD-7 после плана: +2 балла (хуже).",
      "Не вернулся на верный путь: GAD-7 сейчас — Красный."]),  # noqa: RUF001
    (fu(then="white", now="white", score_then=5.0, score_now=5.0, back=True,
        no_longer_red=False),
     ["Изменение по PHQ-9 после плана: 0 баллов (без изменений).",
      "PHQ-9 сейчас — Белый (при составлении плана — Белый)."]),
])
def test_the_follow_up_in_russian(app, follow, sentences):
    """The same sentences in the reader's language (the therapist's locale)."""
    from flask_babel import force_locale

    from outcome.web.support import follow_up_sentences
    with app.test_request_context(), force_locale("ru"):
        assert follow_up_sentences(follow, LIB)[2:] == sentences


def test_an_answered_check_leads_to_its_results(auth, client, db_session, clock, answered):
    """After the client answered, the alert and the card lead to the results (not a second
    check), and the caseload marks it until a plan is recorded."""
    therapist, person, _episode, alert, _check = answered
    auth.login(therapist.email)
    page = client.get(f"/clients/{person.code}").get_data(as_text=True)
    assert "Support check answered: see its results" in page
    assert f'name="alert" value="{alert.id}"' not in page  # no start button for the alert
    assert plan_marks(db_session, therapist.id, dt.date(2026, 11, 16), clock()) == {
        person.code: ("check_answered", None)}
    assert "Support check answered" in client.get("/").get_data(as_text=True)

