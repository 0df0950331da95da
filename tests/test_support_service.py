"""Issue 19, services: the support check, the action plan and its follow-up, end to end.

The loop (../shared/design/support.md, "The loop"): a signal (red, reliable
deterioration, an unrepaired rupture) offers a support check; the client answers it on
the usual link (purpose "support"); the results lead to an action plan, which resolves
the signal's alerts ("an alert of these kinds is resolved by a plan, not by a bare
note", step 4); while the plan is open the condition is not alerted again; at review the
follow-up says whether the client came back on track (step 5); closing the plan lets a
persisting condition alert again.

PHQ-9 numbers: reliable change 6 points (Kroenke 2001 via the definition's rule), so
8 -> 16 is reliable deterioration since intake (red).
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from outcome.core import support as core_support
from outcome.core.support import CheckReading
from outcome.models import Alert
from outcome.models import AuditEvent
from outcome.models import Client
from outcome.models import EpisodeSignal
from outcome.models import OutboundEmail
from outcome.models import QuestionnaireLink
from outcome.models import SupportCheck
from outcome.services import clinic_settings
from outcome.services import support
from outcome.services.alerts import AlertError
from outcome.services.alerts import acknowledge_alert
from outcome.services.explanations import render_explanation
from outcome.services.links import open_link
from outcome.services.links import steps as link_steps
from outcome.services.links import submit_page
from outcome.services.support import MailContext
from outcome.services.support import SupportError
from questionnaires import support as support_rules
from tests.helpers import LIB
from tests.helpers import PHQ
from tests.helpers import T0
from tests.helpers import submit

DAY = dt.timedelta(days=1)


class FakeCore:
    """Stands in for outcome.core.support where a test pins the service, not the rules:
    the battery it offers (by domain) and the calls read_check received."""

    def __init__(self) -> None:
        self.battery = ["session_check", "gad7"]
        self.read_calls: list[dict] = []

    def load_rules(self):
        return {"fake": True}

    def check_battery(self, rules, available, alliance_instrument, reuse_alliance,
                      item_counts=None):
        domains = {"session_check": "alliance", "gad7": "motivation", "phq9": "motivation"}
        return [{"domain": domains[i], "instrument": i} for i in self.battery
                if i in available and not (reuse_alliance and domains[i] == "alliance")]

    def read_check(self, rules, scores, *, alliance, critical, **named):
        self.read_calls.append({"scores": dict(scores), "alliance": alliance,
                                "critical": critical})
        return CheckReading(results=(), suggestions=(), none_flagged=True)


@pytest.fixture
def fake_core(monkeypatch):
    fake = FakeCore()
    for name in ("check_battery", "read_check"):
        monkeypatch.setattr(core_support, name, getattr(fake, name), raising=False)
    monkeypatch.setattr(support_rules, "load_rules", fake.load_rules, raising=False)
    return fake


def answer_check(db_session, link, when):
    """The client answers every page of the link: each item's lowest admissible value."""
    for instrument_id in link.battery:
        instrument = LIB.get(instrument_id)
        form = {item.id: (str(item.options[0].value) if item.options else
                          f"{item.minimum:g}") for item in instrument.items
                if item.type != "text"}
        result = submit_page(db_session, link=link, instrument=instrument, form=form,
                             library=LIB, now=when)
        assert not result.errors, result.errors


def phq(level, item9=0):
    values = {f"phq9_{i}": level for i in range(1, 9)}
    values["phq9_9"] = item9
    return values


@pytest.fixture
def therapist(make_user):
    return make_user()


@pytest.fixture
def episode(therapist, make_client, make_episode):
    return make_episode(make_client(therapist, email="client@example.org"))


def red(db_session, episode):
    """PHQ-9 8, 8, 16, 16: reliable deterioration since intake (8 points > 6)."""
    for week, level in enumerate([1, 1, 2, 2]):
        submit(db_session, episode, PHQ, phq(level), week)
    return db_session.scalar(select(Alert).where(Alert.episode_id == episode.id,
                                                 Alert.kind == "not_on_track"))


def alerts(db_session, episode, kind):
    return db_session.scalars(select(Alert).where(Alert.episode_id == episode.id,
                                                  Alert.kind == kind).order_by(Alert.id)).all()


def plan_steps():
    return [{"domain": "motivation", "suggestion": "motivation.explore_ambivalence",
             "text": "Explore ambivalence about the homework", "decision": "edited"},
            {"domain": "alliance", "suggestion": "alliance.metacommunication",
             "text": "Talk about the relationship", "decision": "declined"}]


NOW = T0 + dt.timedelta(weeks=3, days=1)


def record(db_session, episode, therapist, **kwargs):
    kwargs.setdefault("steps", plan_steps())
    kwargs.setdefault("note", "Agreed in session")
    kwargs.setdefault("review_on", NOW.date() + dt.timedelta(days=28))
    kwargs.setdefault("now", NOW)
    return support.record_plan(db_session, episode=episode, user=therapist, library=LIB,
                               **kwargs)


# --- the whole loop ----------------------------------------------------------------------


def test_the_whole_loop_red_check_plan_no_reraise_close_reraise(db_session, episode,
                                                               therapist, fake_core):
    alert = red(db_session, episode)
    assert alert.status == "open" and alert.detail["rule"] == support.DETERIORATION_RULE
    offer = support.offer_for(db_session, episode)
    assert offer == support.Offer("deterioration", alert.id)

    check, link, token = support.start_check(db_session, episode=episode, user=therapist,
                                             now=NOW, library=LIB)
    assert (check.status, check.reason, check.alert_id) == ("sent", "deterioration", alert.id)
    assert link.purpose == "support" and link.id == check.link_id
    assert link.battery == [e["instrument"] for e in check.battery] == fake_core.battery
    assert support.offer_for(db_session, episode) is None  # a check is out
    with pytest.raises(SupportError, match="already waiting"):
        support.start_check(db_session, episode=episode, user=therapist, now=NOW,
                            library=LIB)

    # The client answers on the link, page by page; the last page marks the check.
    opened, problem = open_link(db_session, token, NOW + dt.timedelta(hours=1))
    assert problem is None and opened.id == link.id
    signal_before = dict(db_session.get(EpisodeSignal, episode.id).state["outcomes"])
    answer_check(db_session, link, NOW + dt.timedelta(hours=1))
    assert check.status == "answered" and check.answered_dt == NOW + dt.timedelta(hours=1)
    assert link.used_dt is not None
    # Stored as usual, but not read as sessions: no new outcome series, no new alert.
    assert db_session.get(EpisodeSignal, episode.id).state["outcomes"].keys() \
        == signal_before.keys()
    assert [a.kind for a in db_session.scalars(select(Alert).where(
        Alert.episode_id == episode.id))] == ["not_on_track"]

    view = support.view_check(db_session, check, LIB)
    assert view.reading is not None
    assert fake_core.read_calls[-1]["scores"].keys() == set(fake_core.battery)
    assert fake_core.read_calls[-1]["critical"] is False

    plan = record(db_session, episode, therapist, check=check)
    assert plan.status == "open" and plan.support_check_id == check.id
    assert plan.baseline == {"instrument": "phq9", "score": 16.0, "colour": "red",
                             "session": 4, "administration": plan.baseline["administration"]}
    assert alert.status == "resolved" and alert.plan_id == plan.id and alert.resolved_dt == NOW
    assert support.active_plan(db_session, episode.id) is plan
    with pytest.raises(SupportError, match="already has an open plan"):
        record(db_session, episode, therapist)

    # Still red a week later: not alerted again while the plan is open.
    submit(db_session, episode, PHQ, phq(2), 4)
    assert [a.status for a in alerts(db_session, episode, "not_on_track")] == ["resolved"]
    assert db_session.get(EpisodeSignal, episode.id).colour == "red"

    later = NOW + dt.timedelta(days=29)
    follow = support.follow_up(db_session, plan, LIB, later)
    assert follow == support.FollowUp(
        instrument_id="phq9", colour_then="red", colour_now="red", score_then=16.0,
        score_now=16.0, change=0.0, sessions_since=1, back_on_track=False, is_due=True,
        no_longer_red=False)

    support.close_plan(db_session, plan, user=therapist, note="No change; re-assess",
                       now=later, library=LIB)
    assert (plan.status, plan.closed_by_id, plan.closed_dt) == ("closed", therapist.id, later)
    assert plan.outcome["back_on_track"] is False and plan.outcome["change"] == 0.0
    # Closed and still red: alerted again.
    assert [a.status for a in alerts(db_session, episode, "not_on_track")] == [
        "resolved", "open"]
    assert support.offer_for(db_session, episode).reason == "deterioration"


def test_back_on_track_after_the_plan_closes_without_a_new_alert(db_session, episode,
                                                                 therapist, fake_core):
    red(db_session, episode)
    plan = record(db_session, episode, therapist)
    submit(db_session, episode, PHQ, phq(0, 0), 4)   # 16 -> 0, six days after the plan
    assert support.follow_up(db_session, plan, LIB, NOW + DAY).sessions_since == 0
    follow = support.follow_up(db_session, plan, LIB, NOW + 7 * DAY)
    assert (follow.score_then, follow.score_now, follow.change) == (16.0, 0.0, -16.0)
    assert follow.sessions_since == 1 and follow.is_due is False
    # 0 is below the PHQ-9 cutoff of 10 (Kroenke 2001): white, in the functional range.
    assert follow.colour_now == "white" and follow.back_on_track is True
    assert follow.no_longer_red is True   # red at the plan, white now
    support.close_plan(db_session, plan, user=therapist, note="Back on track",
                       now=NOW + 7 * DAY, library=LIB)
    assert [a.status for a in alerts(db_session, episode, "not_on_track")] == ["resolved"]


def test_follow_up_before_any_new_score_is_undecided(db_session, episode, therapist,
                                                     fake_core):
    red(db_session, episode)
    plan = record(db_session, episode, therapist)
    follow = support.follow_up(db_session, plan, LIB, NOW)
    assert follow.sessions_since == 0 and follow.back_on_track is None
    assert follow.change == 0.0 and follow.is_due is False


def test_a_revision_replaces_the_open_plan(db_session, episode, therapist, fake_core):
    red(db_session, episode)
    first = record(db_session, episode, therapist)
    second = record(db_session, episode, therapist, revises=first,
                    now=NOW + dt.timedelta(days=2))
    assert (first.status, first.closed_by_id) == ("revised", therapist.id)
    assert first.closed_dt == NOW + dt.timedelta(days=2)
    assert second.revised_from_id == first.id and second.status == "open"
    assert support.plans_for(db_session, episode.id) == [second, first]
    # No alert in between: the revision is still a plan.
    assert [a.status for a in alerts(db_session, episode, "not_on_track")] == ["resolved"]
    # It answers what the plan it replaced answered: still red a week on, not alerted.
    submit(db_session, episode, PHQ, phq(2), 4)
    assert [a.status for a in alerts(db_session, episode, "not_on_track")] == ["resolved"]
    with pytest.raises(SupportError, match="Only an open plan can be revised"):
        record(db_session, episode, therapist, revises=first)


# --- acknowledgement and events ----------------------------------------------------------


def test_a_bare_note_is_refused_for_plan_kinds_but_not_for_critical_answers(
        db_session, episode, therapist):
    alert = red(db_session, episode)
    with pytest.raises(AlertError, match="An action plan resolves this kind of alert"):
        acknowledge_alert(db_session, alert, therapist, "discussed", NOW, LIB)
    assert alert.status == "open"
    submit(db_session, episode, PHQ, phq(2, item9=2), 4)
    [critical] = alerts(db_session, episode, "critical_item")
    acknowledge_alert(db_session, critical, therapist, "Safety plan", NOW, LIB)
    assert critical.status == "acknowledged"


def test_a_critical_alert_makes_the_check_read_risk(db_session, episode, therapist,
                                                      fake_core):
    red(db_session, episode)
    submit(db_session, episode, PHQ, phq(2, item9=1), 3.1)   # before the check (NOW)
    check, link, _token = support.start_check(db_session, episode=episode, user=therapist,
                                              now=NOW, library=LIB)
    answer_check(db_session, link, NOW)
    support.view_check(db_session, check, LIB)
    assert fake_core.read_calls[-1]["critical"] is True


# --- checks ------------------------------------------------------------------------------


def test_recent_alliance_is_reused_and_not_asked_again(db_session, episode, therapist,
                                                       fake_core):
    """Clinic setting support_alliance_recent_days (default 14): an alliance score at
    most that old is reused (support.md: "use the episode's own alliance series")."""
    red(db_session, episode)
    alliance = LIB.get("session_check")
    values = {item.id: 4 for item in alliance.items}
    row, _ = submit(db_session, episode, alliance, values, 3)   # NOW - 1 day
    check, link, _token = support.start_check(db_session, episode=episode, user=therapist,
                                              now=NOW, library=LIB)
    assert check.reused_alliance_id == row.id
    assert "alliance" not in [e["domain"] for e in check.battery]
    assert "session_check" not in link.battery
    answer_check(db_session, link, NOW)
    support.view_check(db_session, check, LIB)
    assert fake_core.read_calls[-1]["alliance"]["administration"] == row.id
    assert fake_core.read_calls[-1]["alliance"]["instrument"] == "session_check"


def test_an_old_alliance_score_is_asked_again(db_session, episode, therapist, fake_core):
    red(db_session, episode)
    alliance = LIB.get("session_check")
    submit(db_session, episode, alliance, {item.id: 4 for item in alliance.items}, 0)
    check, _link, _token = support.start_check(db_session, episode=episode, user=therapist,
                                               now=NOW, library=LIB)
    assert check.reused_alliance_id is None   # 22 days old > 14
    assert "alliance" in [e["domain"] for e in check.battery]


def test_refusals_when_starting(db_session, episode, therapist, fake_core):
    with pytest.raises(SupportError, match="No signal offers"):
        support.start_check(db_session, episode=episode, user=None, now=NOW, library=LIB)
    check, _l, _t = support.start_check(db_session, episode=episode, user=therapist,
                                        now=NOW, library=LIB)
    assert check.reason == "therapist" and check.alert_id is None
    support.cancel_check(db_session, check, therapist, NOW)
    submit(db_session, episode, PHQ, phq(0, item9=2), 0)
    [critical] = alerts(db_session, episode, "critical_item")
    with pytest.raises(SupportError, match="not this kind"):
        support.start_check(db_session, episode=episode, user=therapist, now=NOW,
                            library=LIB, alert=critical)
    check, _l, _t = support.start_check(db_session, episode=episode, user=therapist,
                                        now=NOW, library=LIB)
    support.cancel_check(db_session, check, therapist, NOW)
    episode.closed_on, episode.end_reason = NOW.date(), "completed"
    db_session.flush()
    with pytest.raises(SupportError, match="has ended"):
        support.start_check(db_session, episode=episode, user=therapist, now=NOW,
                            library=LIB)


def test_no_support_measure_stores_nothing(db_session, episode, therapist, fake_core):
    fake_core.battery = []
    with pytest.raises(SupportError, match="No support measure"):
        support.start_check(db_session, episode=episode, user=therapist, now=NOW,
                            library=LIB)
    assert support.checks_for(db_session, episode.id) == []
    assert db_session.scalars(select(QuestionnaireLink)).all() == []


def test_cancel_revokes_the_link_and_allows_a_new_check(db_session, episode, therapist,
                                                        fake_core):
    check, link, token = support.start_check(db_session, episode=episode, user=therapist,
                                             now=NOW, library=LIB)
    support.cancel_check(db_session, check, therapist, NOW)
    assert check.status == "cancelled" and link.revoked_dt == NOW
    assert open_link(db_session, token, NOW)[1] == "revoked"
    with pytest.raises(SupportError, match="cannot be cancelled: it is cancelled"):
        support.cancel_check(db_session, check, therapist, NOW)
    second, link2, _t = support.start_check(db_session, episode=episode, user=therapist,
                                            now=NOW, library=LIB)
    # Two checks the same day never share answers.
    assert not any(step.is_done for step in link_steps(db_session, link2))
    assert support.checks_for(db_session, episode.id) == [second, check]


def test_an_unanswered_check_expires_with_its_link(db_session, episode, therapist,
                                                   fake_core):
    check, link, _t = support.start_check(db_session, episode=episode, user=therapist,
                                          now=NOW, library=LIB)
    after = link.valid_until_dt + DAY
    assert support.view_check(db_session, check, LIB, after).check.status == "expired"
    support.start_check(db_session, episode=episode, user=therapist, now=after, library=LIB)


def test_the_email_names_no_measure_or_reason(db_session, episode, therapist, fake_core):
    red(db_session, episode)
    check, _link, token = support.start_check(
        db_session, episode=episode, user=therapist, now=NOW, library=LIB,
        mail=MailContext("https://outcome.example", "k" * 40))
    [email] = db_session.scalars(select(OutboundEmail)).all()
    assert email.kind == "support" and email.dedupe_key == f"support:{check.id}"
    assert email.to_address == "client@example.org" and token not in email.body_text
    text = (email.subject + email.body_text).lower()
    for word in ("phq", "red", "deteriorat", "alliance", "score", "support check"):
        assert not re.search(rf"\b{word}", text), word
    assert open_link(db_session, token, NOW)[1] is None  # the e-mailed token opens it


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(("change", "message"), [
    ({"steps": []}, "at least one step"),
    ({"steps": [{**plan_steps()[1]}]}, "at least one step that is not declined"),
    ({"steps": [{**plan_steps()[0], "text": "  "}]}, "Step 1: please write"),
    ({"steps": [{**plan_steps()[0], "text": "x" * 501}]}, "at most 500"),
    ({"steps": [{**plan_steps()[0], "decision": "maybe"}]}, "decision must be one of"),
    ({"steps": [{**plan_steps()[0], "domain": "astrology"}]}, "unknown domain"),
    ({"steps": [{**plan_steps()[0], "decision": "own"}]}, "has no suggestion"),
    ({"steps": [{**plan_steps()[0], "suggestion": None}]}, "names the suggestion"),
    ({"steps": ["walk"]}, "Step 1 is not a step"),
    ({"note": "x" * 2001}, "at most 2000"),
    ({"review_on": NOW.date()}, "after today"),
    ({"review_on": NOW.date() + dt.timedelta(days=91)}, "within 90 days"),
])
def test_bad_plans_are_refused_and_nothing_is_stored(db_session, episode, therapist,
                                                     fake_core, change, message):
    alert = red(db_session, episode)
    with pytest.raises(SupportError, match=message):
        record(db_session, episode, therapist, **change)
    assert support.plans_for(db_session, episode.id) == []
    assert alert.status == "open"


def test_the_limits_themselves_are_accepted(db_session, episode, therapist, fake_core):
    plan = record(db_session, episode, therapist, note="x" * 2000,
                  steps=[{"domain": "formulation", "suggestion": None, "text": "y" * 500,
                          "decision": "own"}],
                  review_on=NOW.date() + dt.timedelta(days=90))
    assert plan.status == "open" and plan.baseline["score"] is None


def test_a_plan_on_an_ended_episode_or_closing_twice_is_refused(db_session, episode,
                                                               therapist, fake_core):
    plan = record(db_session, episode, therapist)
    support.close_plan(db_session, plan, user=therapist, note="", now=NOW, library=LIB)
    with pytest.raises(SupportError, match="Only an open plan can be closed"):
        support.close_plan(db_session, plan, user=therapist, note="", now=NOW, library=LIB)
    episode.closed_on, episode.end_reason = NOW.date(), "completed"
    db_session.flush()
    with pytest.raises(SupportError, match="has ended"):
        record(db_session, episode, therapist)


# --- automatic offers --------------------------------------------------------------------


def test_automatic_checks_only_when_the_clinic_says_so_and_once(db_session, clinic, episode,
                                                                therapist, fake_core,
                                                                make_client, make_episode):
    mail = MailContext("https://outcome.example", "k" * 40)
    red(db_session, episode)
    no_address = make_episode(make_client(therapist))
    red(db_session, no_address)
    assert support.offer_automatically(db_session, LIB, NOW, mail=mail) == []
    clinic_settings.update(db_session, clinic, {"support_check_auto": True})
    [check] = support.offer_automatically(db_session, LIB, NOW, mail=mail)
    assert check.episode_id == episode.id and check.started_by_id is None
    assert check.reason == "deterioration"
    assert support.offer_automatically(db_session, LIB, NOW + DAY, mail=mail) == []
    [event] = db_session.scalars(select(AuditEvent).where(
        AuditEvent.action == "support.check.start")).all()
    assert (event.actor_kind, event.object_id) == ("system", str(check.id))
    [email] = db_session.scalars(select(OutboundEmail)).all()
    assert email.dedupe_key == f"support:{check.id}"


def test_the_scheduler_job_offers_checks(app, db_session, clinic, episode, fake_core):
    from outcome.jobs import JOBS
    from outcome.jobs import offer_support_checks

    assert "offer-support-checks" in {job_id for job_id, *_rest in JOBS}
    red(db_session, episode)
    clinic_settings.update(db_session, clinic, {"support_check_auto": True})
    db_session.commit()
    assert offer_support_checks(app, now=NOW) == 1
    assert offer_support_checks(app, now=NOW + DAY) == 0


def test_the_api_answers_a_note_for_a_plan_kind_with_a_409_naming_the_reason(
        api, db_session, episode, therapist):
    alert = red(db_session, episode)
    code = db_session.get(Client, episode.client_id).code
    db_session.commit()
    response = api(therapist).post(f"/api/v1/clients/{code}/alerts/{alert.id}/acknowledge",
                                   json={"note": "discussed"})
    assert response.status_code == 409
    assert "An action plan resolves this kind of alert" in response.get_json()["detail"]
    db_session.refresh(alert)
    assert alert.status == "open"


def test_the_client_answers_a_support_link_through_the_usual_pages(
        client, db_session, clock, episode, therapist, fake_core):
    """On a phone through the usual link pages: one page per measure, the first says who
    asks (no session behind it), a thank-you page at the end; the check is answered."""
    from tests.conftest import csrf_token

    check, link, token = support.start_check(db_session, episode=episode, user=therapist,
                                             now=clock(), library=LIB)
    db_session.commit()
    phone = {"User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)"}
    assert client.get(f"/q/{token}", headers=phone).status_code == 303
    first = client.get("/q/", headers=phone).get_data(as_text=True)
    assert f"A few questions from {therapist.display_name}" in first
    assert "Questionnaire 1 of 2" in first and "Before your session" not in first
    for n, instrument_id in enumerate(link.battery, start=1):
        html = client.get("/q/").get_data(as_text=True)
        assert f"Questionnaire {n} of 2" in html
        instrument = LIB.get(instrument_id)
        form = {item.id: str(item.options[0].value) if item.options else "0"
                for item in instrument.items if item.type != "text"}
        response = client.post("/q/", data={"csrf_token": csrf_token(html),
                                            "instrument": instrument_id, **form})
        assert response.status_code == 303, response.get_data(as_text=True)[:500]
    thanks = client.get("/q/")
    assert thanks.status_code == 200 and "Thank you" in thanks.get_data(as_text=True)
    db_session.expire_all()
    assert db_session.get(SupportCheck, check.id).status == "answered"


def test_colour_history_tells_each_score_its_colour_then(db_session, episode):
    """PHQ-9 8, 8, 16, 8 (no curve yet: rule-based colours): the rise of 8 points (more
    than the 6 of reliable change, Kroenke 2001 via the definition) is red at the third
    score; back at 8, white again."""
    from outcome.services.signals import colour_history

    for week, level in enumerate([1, 1, 2, 1]):
        submit(db_session, episode, PHQ, phq(level), week)
    history = colour_history(db_session, episode, "phq9", LIB)
    assert [h.score for h in history] == [8.0, 8.0, 16.0, 8.0]
    assert [h.session for h in history] == [1, 2, 3, 4]
    # 8 is below the PHQ-9 cutoff of 10 (Kroenke 2001): white, in the functional range.
    assert [h.colour for h in history] == ["white", "white", "red", "white"]
    assert history[3].colour == db_session.get(EpisodeSignal, episode.id).colour


# --- the loop with the shipped rules and measures ----------------------------------------


def test_the_loop_with_the_shipped_rules_reads_true_numbers(db_session, episode, therapist):
    """Rules from questionnaires/support/rules.yaml (each with its source): readiness
    0-10 flags at <= 5 (project default, the middle of the scale); the people check
    (0-30) at <= 15 (project default, half the range); life events at >= 1 (project
    default, any event; the LTE-Q has no published cutoff, Brugha et al. 1985)."""
    red(db_session, episode)
    alliance = LIB.get("session_check")
    row, _ = submit(db_session, episode, alliance, {i.id: 9 for i in alliance.items}, 3)
    check, link, _token = support.start_check(db_session, episode=episode, user=therapist,
                                              now=NOW, library=LIB)
    # The alliance rated a day ago (36/40) is reused, not asked again.
    assert check.reused_alliance_id == row.id
    assert check.battery == [
        {"domain": "motivation", "instrument": "readiness_check"},
        {"domain": "social_support", "instrument": "support_people_check"},
        {"domain": "life_events", "instrument": "life_events_check"}]
    forms = {"readiness_check": {"readiness_now": "4"},
             "support_people_check": {"people_turn_to": "8", "people_interest": "7",
                                      "people_practical": "6"},
             "life_events_check": {"events_own_health": "0", "events_someone_close": "1",
                                   "events_relationship": "0", "events_work_money": "0",
                                   "events_law_loss": "0", "events_other": "0"}}
    for instrument_id in link.battery:
        result = submit_page(db_session, link=link, instrument=LIB.get(instrument_id),
                             form=forms[instrument_id], library=LIB, now=NOW)
        assert not result.errors
    assert check.status == "answered"
    # Support measures raise no signal: still one alert, the not-on-track one.
    assert [a.kind for a in db_session.scalars(select(Alert).where(
        Alert.episode_id == episode.id))] == ["not_on_track"]
    reading = support.view_check(db_session, check, LIB).reading
    assert reading.result("motivation").score == 4 and reading.result("motivation").flagged
    assert reading.result("social_support").score == 21
    assert reading.result("social_support").flagged is False
    assert reading.result("life_events").score == 1 and reading.result("life_events").flagged
    assert reading.result("alliance").reused
    assert reading.flagged_domains == ("motivation", "life_events")
    ids = [s.id for s in reading.suggestions]
    assert "motivation.explore_ambivalence" in ids and "life_events.address_event" in ids
    plan = record(db_session, episode, therapist, check=check, steps=[
        {"domain": "motivation", "suggestion": "motivation.explore_ambivalence",
         "text": "Explore ambivalence about change with motivational interviewing.",
         "decision": "accepted"}])
    assert plan.support_check_id == check.id
    assert db_session.scalar(select(Alert).where(Alert.episode_id == episode.id)).status \
        == "resolved"
    # Each explanation names its measure as the pages and reports name it (its short
    # name), never by its id (found by tests/test_browser_support_loop.py: the results
    # read "readiness_check total 4 ..."). Rules and sources as in the docstring above.
    said = {r.domain: render_explanation(r.explanation.as_json(), "en")
            for r in reading.results}
    assert said["motivation"] == (
        "Readiness (not validated) total 4 is at or below 5 (project default, the middle "
        "of the 0-10 scale; unverified). Flagged.")
    assert said["social_support"] == (
        "People around me (not validated) total 21 is not at or below 15 (project "
        "default, half of the 0-30 range; unverified). Not flagged.")
    assert said["alliance"].startswith("Session check (not validated), from the episode's "
                                       "own series, total 36: ")
    assert all(not re.search(r"\b[a-z]+_[a-z_]+\b", text) for text in said.values()), said


def test_a_given_up_support_email_is_not_sent_again(db_session, episode, therapist,
                                                    fake_core):
    """Its token was derived for that one message; a retry would send a dead link."""
    from outcome.services.mail_status import RetryRefused
    from outcome.services.mail_status import requeue

    support.start_check(db_session, episode=episode, user=therapist, now=NOW, library=LIB,
                        mail=MailContext("https://outcome.example", "k" * 40))
    email = db_session.scalar(select(OutboundEmail))
    email.status, email.link_nonce, email.last_error = "failed", None, "SMTP 550"
    with pytest.raises(RetryRefused) as refused:
        requeue(db_session, email, now=NOW, library=LIB, secret_key="k" * 40)
    assert refused.value.reason == "support" and email.status == "failed"


def srs(total):
    part = round(total / 4, 1)
    return {"srs_1": part, "srs_2": part, "srs_3": part, "srs_4": round(total - 3 * part, 1)}


def test_a_new_unrepaired_rupture_after_the_plan_still_alerts(db_session, episode,
                                                             therapist, fake_core):
    """Rupture rules of domain.md section 5 (SRS below its personal mean by more than
    the rule, not back within the repair window): the first unrepaired rupture is
    resolved by the plan; a new dip after it is a new rupture, which the plan did not
    answer: alerted while it waits for repair, then as unrepaired (an event)."""
    srs_vas = LIB.get("srs_vas")
    for week, total in enumerate([38, 38, 38, 33, 34, 34.5]):
        submit(db_session, episode, srs_vas, srs(total), week)
    [first] = alerts(db_session, episode, "unrepaired_rupture")
    assert support.offer_for(db_session, episode).reason == "unrepaired_rupture"
    plan = record(db_session, episode, therapist,
                  now=T0 + dt.timedelta(weeks=5, days=1),
                  review_on=(T0 + dt.timedelta(weeks=9)).date())
    assert first.status == "resolved" and first.plan_id == plan.id
    for week, total in enumerate([38.5, 38.5, 38.5, 31, 32, 32], start=6):
        submit(db_session, episode, srs_vas, srs(total), week)
        if week == 9:  # the new dip: a rupture waiting for repair, alerted
            assert alerts(db_session, episode, "rupture")[-1].status == "open"
    kinds = [(a.kind, a.status) for a in db_session.scalars(select(Alert).where(
        Alert.episode_id == episode.id).order_by(Alert.id))]
    assert kinds.count(("unrepaired_rupture", "open")) == 1, kinds
    assert ("rupture", "open") not in kinds
    signal = db_session.get(EpisodeSignal, episode.id)
    assert (signal.ruptures, signal.ruptures_unrepaired) == (2, 2)  # both read


def test_a_critical_answer_on_a_support_link_still_alerts(db_session, episode, therapist,
                                                          fake_core):
    """Crisis handling is unchanged on a support link: a measure with a critical item
    (PHQ-9 item 9, here standing in) alerts, though its score joins no series."""
    red(db_session, episode)
    fake_core.battery = ["phq9"]
    _check, link, _token = support.start_check(db_session, episode=episode, user=therapist,
                                               now=NOW, library=LIB)
    result = submit_page(db_session, link=link, instrument=PHQ, form=phq(0, item9=2),
                         library=LIB, now=NOW)
    assert result.is_critical
    [critical] = alerts(db_session, episode, "critical_item")
    assert critical.status == "open"
    state = db_session.get(EpisodeSignal, episode.id).state["outcomes"]["phq9"]
    assert state["series"] == [8.0, 8.0, 16.0, 16.0] and state["latest"] == 16.0


def test_a_plan_dated_in_the_past_keeps_the_score_and_colour_of_its_day(
        db_session, episode, therapist, fake_core):
    """PHQ-9 8, 8, 16, 16 then 0: a plan dated the day after the third score keeps 16
    and red at session 3; its follow-up a week after the fifth counts two scores since,
    0 now (white: below the cutoff of 10, Kroenke 2001), change -16, back on track."""
    red(db_session, episode)
    submit(db_session, episode, PHQ, phq(0, item9=0), 4)   # 0 at week 4
    when = T0 + dt.timedelta(weeks=2, days=1)
    plan = record(db_session, episode, therapist, now=when,
                  review_on=(when + dt.timedelta(days=28)).date())
    assert (plan.baseline["score"], plan.baseline["colour"], plan.baseline["session"]) == (
        16.0, "red", 3)
    follow = support.follow_up(db_session, plan, LIB, T0 + dt.timedelta(weeks=5))
    assert (follow.sessions_since, follow.score_now, follow.change) == (2, 0.0, -16.0)
    assert follow.colour_now == "white" and follow.back_on_track is True
    assert follow.is_due is False   # 6 October; reviewed 28 days after 16 September
    assert support.follow_up(db_session, plan, LIB,
                             dt.datetime(2026, 10, 14, 9, tzinfo=dt.UTC)).is_due is True


# --- the independent clinical review (issue 19) ------------------------------------------


def test_an_open_plan_made_before_red_does_not_silence_a_new_red(db_session, episode,
                                                                 therapist, fake_core):
    """A plan holds back only the condition it answered (domain.md section 4: red is
    alerted while it lasts): PHQ-9 8, 8 (not red) -> plan -> 16, 16 (reliable
    deterioration, 8 points > 6, Kroenke 2001): the new red is alerted."""
    for week in (0, 1):
        submit(db_session, episode, PHQ, phq(1), week)
    when = T0 + dt.timedelta(weeks=1, days=1)
    plan = record(db_session, episode, therapist, now=when,
                  review_on=(when + dt.timedelta(days=28)).date())
    assert plan.baseline["colour"] != "red"
    for week in (2, 3):
        submit(db_session, episode, PHQ, phq(2), week)
    assert [a.status for a in alerts(db_session, episode, "not_on_track")] == ["open"]


def test_an_open_plan_for_red_does_not_silence_a_new_rupture(db_session, episode, therapist,
                                                             fake_core):
    """A plan made for red holds back red, not a rupture that starts after it (SRS 38,
    38, 38 then 33: below the personal mean by more than the rule, domain.md section 5)."""
    red(db_session, episode)
    record(db_session, episode, therapist)
    for week, total in enumerate([38, 38, 38, 33], start=4):
        submit(db_session, episode, LIB.get("srs_vas"), srs(total), week)
    assert [a.status for a in alerts(db_session, episode, "rupture")] == ["open"]
    # The red the plan answered is still held back.
    assert [a.status for a in alerts(db_session, episode, "not_on_track")] == ["resolved"]


def test_a_plan_for_a_rupture_holds_back_that_rupture_only(db_session, episode, therapist,
                                                           fake_core):
    """SRS 38, 38, 38, 33: a rupture waiting for repair (domain.md section 5); the plan
    resolves it and the same rupture, still open a week later, is not alerted again."""
    srs_vas = LIB.get("srs_vas")
    for week, total in enumerate([38, 38, 38, 33]):
        submit(db_session, episode, srs_vas, srs(total), week)
    [first] = alerts(db_session, episode, "rupture")
    assert first.status == "open"
    record(db_session, episode, therapist)
    assert first.status == "resolved"
    submit(db_session, episode, srs_vas, srs(33.5), 4)
    assert [a.status for a in alerts(db_session, episode, "rupture")] == ["resolved"]


def test_a_review_date_is_at_most_90_days_ahead(db_session, clinic, episode, therapist,
                                                fake_core):
    """A plan is reviewed within about three months (support.md, "The loop", 5): the
    review date at most 90 days ahead; the clinic's default from 7 to 90 days."""
    assert support.REVIEW_MAX_DAYS == 90
    with pytest.raises(SupportError, match="within 90 days"):
        record(db_session, episode, therapist, review_on=NOW.date() + dt.timedelta(days=91))
    assert record(db_session, episode, therapist,
                  review_on=NOW.date() + dt.timedelta(days=90)).status == "open"
    with pytest.raises(clinic_settings.SettingError):
        clinic_settings.update(db_session, clinic, {"plan_review_days": 91})
    assert clinic_settings.update(db_session, clinic, {"plan_review_days": 90})[
        "plan_review_days"] == 90


def unrepaired(db_session, episode):
    """SRS 38, 38, 38, 33, 34, 34.5 at weeks 0-5: a rupture not repaired within the
    window (domain.md section 5), alerted as unrepaired_rupture."""
    for week, total in enumerate([38, 38, 38, 33, 34, 34.5]):
        submit(db_session, episode, LIB.get("srs_vas"), srs(total), week)
    [alert] = alerts(db_session, episode, "unrepaired_rupture")
    return alert


def test_an_asked_alliance_is_judged_with_the_episodes_rupture(db_session, episode,
                                                              therapist, fake_core):
    """A check started for an unrepaired rupture that asks the alliance again (the last
    SRS is older than 14 days) is read with the rupture: read_check's ``alliance``
    carries ``rupture`` True (domain.md section 5), so the domain cannot read as clear."""
    unrepaired(db_session, episode)
    when = T0 + dt.timedelta(weeks=5, days=15)
    check, link, _token = support.start_check(db_session, episode=episode, user=therapist,
                                              now=when, library=LIB)
    assert check.reason == "unrepaired_rupture" and check.reused_alliance_id is None
    answer_check(db_session, link, when)
    support.view_check(db_session, check, LIB)
    alliance = fake_core.read_calls[-1]["alliance"]
    assert alliance is not None and alliance["rupture"] is True
    assert alliance["instrument"] == "srs_vas"


def test_with_the_shipped_rules_a_rupture_check_flags_the_asked_alliance(
        db_session, episode, therapist):
    """The shipped rules end to end: a check for an unrepaired rupture (SRS, domain.md
    section 5) that asks the clinic's alliance measure again never reads the alliance
    as clear, whatever the client answers; the rupture is named in its explanation."""
    unrepaired(db_session, episode)
    when = T0 + dt.timedelta(weeks=5, days=15)
    check, link, _token = support.start_check(db_session, episode=episode, user=therapist,
                                              now=when, library=LIB)
    assert "alliance" in [e["domain"] for e in check.battery]
    answer_check(db_session, link, when)
    reading = support.view_check(db_session, check, LIB).reading
    alliance = reading.result("alliance")
    assert alliance.flagged is True and alliance.reused is False
    assert "alliance" in [s.domain for s in reading.suggestions]
    assert reading.none_flagged is False


def test_an_asked_alliance_without_a_rupture_is_read_as_no_rupture(db_session, episode,
                                                                  therapist, fake_core):
    """An episode with an alliance series (SRS 38, 38, more than 14 days old, so asked
    again) and no rupture: ``rupture`` False, naming the series; without any series
    there is no rupture status to pass."""
    red(db_session, episode)
    bare, link, _token = support.start_check(db_session, episode=episode, user=therapist,
                                             now=NOW, library=LIB)
    answer_check(db_session, link, NOW)
    support.view_check(db_session, bare, LIB)
    assert fake_core.read_calls[-1]["alliance"] is None
    for week in (0, 1):
        submit(db_session, episode, LIB.get("srs_vas"), srs(38), week)
    check, link, _token = support.start_check(db_session, episode=episode, user=therapist,
                                              now=NOW + DAY, library=LIB)
    assert check.reused_alliance_id is None
    answer_check(db_session, link, NOW + DAY)
    support.view_check(db_session, check, LIB)
    alliance = fake_core.read_calls[-1]["alliance"]
    assert alliance["rupture"] is False and alliance["instrument"] == "srs_vas"
    assert alliance["score"] is None   # the asked measure gives the domain's score


def test_a_checks_results_are_read_as_of_its_answers(db_session, episode, therapist,
                                                     fake_core):
    """Rupture and risk are read as they stood when the client answered (answered_dt),
    not when the results are viewed: a plan or an acknowledgement later changes
    nothing, and a critical answer that came later is not the check's."""
    red(db_session, episode)
    srs_vas = LIB.get("srs_vas")
    for week, total in enumerate([38, 38, 38, 33]):
        submit(db_session, episode, srs_vas, srs(total), week)
    assert [a.status for a in alerts(db_session, episode, "rupture")] == ["open"]
    submit(db_session, episode, PHQ, phq(2, item9=1), 3.1)   # critical, before the check
    check, link, _token = support.start_check(db_session, episode=episode, user=therapist,
                                              now=NOW, library=LIB)
    assert check.reused_alliance_id is not None and check.reason == "deterioration"
    answer_check(db_session, link, NOW)
    [critical] = alerts(db_session, episode, "critical_item")
    acknowledge_alert(db_session, critical, therapist, "Safety plan made", NOW + DAY, LIB)
    record(db_session, episode, therapist, check=check, now=NOW + DAY)
    assert [a.status for a in alerts(db_session, episode, "rupture")] == ["resolved"]
    support.view_check(db_session, check, LIB)
    assert fake_core.read_calls[-1]["alliance"]["rupture"] is True
    assert fake_core.read_calls[-1]["critical"] is True


def test_a_critical_answer_after_the_check_is_not_the_checks_risk(db_session, episode,
                                                                 therapist, fake_core):
    red(db_session, episode)
    check, link, _token = support.start_check(db_session, episode=episode, user=therapist,
                                              now=NOW, library=LIB)
    answer_check(db_session, link, NOW)
    submit(db_session, episode, PHQ, phq(2, item9=1), 4)   # a week later
    assert alerts(db_session, episode, "critical_item")[0].status == "open"
    support.view_check(db_session, check, LIB)
    assert fake_core.read_calls[-1]["critical"] is False


@pytest.mark.parametrize("ending", ["cancel", "expire"])
def test_a_cancelled_or_expired_automatic_check_is_not_sent_again(
        db_session, clinic, episode, therapist, fake_core, ending):
    """Any check started since the alert (cancelled or expired included) means no new
    automatic one for that alert: the client is not e-mailed again every 15 minutes."""
    mail = MailContext("https://outcome.example", "k" * 40)
    red(db_session, episode)
    clinic_settings.update(db_session, clinic, {"support_check_auto": True})
    [check] = support.offer_automatically(db_session, LIB, NOW, mail=mail)
    later = NOW + dt.timedelta(minutes=15)
    if ending == "cancel":
        support.cancel_check(db_session, check, therapist, NOW)
    else:
        later = db_session.get(QuestionnaireLink, check.link_id).valid_until_dt + DAY
        # The therapist's page reads it, which stores its expiry.
        assert support.view_check(db_session, check, LIB, later).check.status == "expired"
    assert support.offer_automatically(db_session, LIB, later, mail=mail) == []
    assert support.offer_automatically(db_session, LIB, later + DAY, mail=mail) == []
    assert len(db_session.scalars(select(OutboundEmail)).all()) == 1
    # The therapist may still start one, for the same reason.
    again, _link, _token = support.start_check(db_session, episode=episode, user=therapist,
                                               now=later, library=LIB)
    assert again.reason == "deterioration"


def test_an_alliance_answered_in_a_support_check_is_not_reused(db_session, episode,
                                                               therapist, fake_core):
    """recent_alliance reads the episode's own series, as load_series does: not an
    alliance answer given through an earlier support link."""
    red(db_session, episode)
    first, link, _token = support.start_check(db_session, episode=episode, user=therapist,
                                              now=NOW, library=LIB)
    assert first.reused_alliance_id is None
    answer_check(db_session, link, NOW)
    assert support.recent_alliance(db_session, episode, LIB, NOW + DAY) is None
    second, _link, _token = support.start_check(db_session, episode=episode, user=therapist,
                                                now=NOW + DAY, library=LIB)
    assert second.reused_alliance_id is None
    assert "alliance" in [e["domain"] for e in second.battery]


def history_of(colours):
    """A colour history of PHQ-9 scores, one a week from T0."""
    return [support.ScoreColour(n, T0 + dt.timedelta(weeks=n), 10.0 + n, n + 1, colour)
            for n, colour in enumerate(colours)]


@pytest.mark.parametrize(("then", "now", "back", "no_longer_red"), [
    ("red", "yellow", False, True),    # less progress than expected: still off track
    ("red", "green", True, True),
    ("red", "white", True, True),
    ("red", "red", False, False),
    ("yellow", "green", True, False),  # never red: "no longer red" does not apply
    ("green", "red", False, False),
])
def test_back_on_track_is_green_or_white_and_no_longer_red_is_separate(
        db_session, episode, therapist, fake_core, monkeypatch, then, now, back,
        no_longer_red):
    """domain.md section 4: on track is green or white (trajectory.ON_TRACK_COLOURS);
    yellow is less progress than expected. ``no_longer_red``: the baseline was red and
    the colour now is not."""
    plan = record(db_session, episode, therapist, now=T0 + dt.timedelta(weeks=1, days=1),
                  review_on=(T0 + dt.timedelta(weeks=5)).date())
    plan.baseline = {**plan.baseline, "instrument": "phq9", "colour": then, "score": 11.0}
    monkeypatch.setattr(support, "colour_history",
                        lambda *args: history_of([then, then, now]))
    follow = support.follow_up(db_session, plan, LIB, T0 + dt.timedelta(weeks=3))
    assert follow.sessions_since == 1 and follow.colour_now == now
    assert follow.back_on_track is back and follow.no_longer_red is no_longer_red
    monkeypatch.setattr(support, "colour_history", lambda *args: history_of([then, then]))
    before = support.follow_up(db_session, plan, LIB, T0 + dt.timedelta(weeks=3))
    assert before.back_on_track is None and before.no_longer_red is None
