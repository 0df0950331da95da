"""The supervisor's agenda and reviews (issue 19; support.md, "The loop", 6).

Hand-built world of model rows only (no support service): supervisor S of therapists A
and B; therapist C is not S's supervisee. Now is 2026-11-20 12:00 UTC (clinic time zone
UTC unless a test says otherwise); ``plan_overdue_days`` is the default 7.
"""

from __future__ import annotations

import datetime as dt

import pytest

from outcome.models import ActionPlan
from outcome.models import Alert
from outcome.models import Clinic
from outcome.models import SupervisionReview
from outcome.services import clinic_settings
from outcome.services.supervision_agenda import FOLLOW_UP_MAX_DAYS
from outcome.services.supervision_agenda import NOTE_MAX
from outcome.services.supervision_agenda import ReviewError
from outcome.services.supervision_agenda import agenda
from outcome.services.supervision_agenda import record_review

NOW = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
TODAY = NOW.date()
SECRET_NAME = "Zelda Secretname"


def days_ago(n: float) -> dt.datetime:
    return NOW - dt.timedelta(days=n)


@pytest.fixture
def world(db_session, make_user, make_client, make_episode, assign):
    s = make_user("supervisor", display_name="Sam Supervisor")
    other_s = make_user("supervisor", display_name="Olga Othersup")
    a = make_user(display_name="Alex Therapist")
    b = make_user(display_name="Bea Therapist")
    c = make_user(display_name="Cal Elsewhere")
    assign(s, a)
    assign(s, b)
    assign(other_s, a)

    def case(therapist, **kw):
        return make_episode(make_client(therapist, name=kw.pop("name", SECRET_NAME)), **kw)

    def alert(episode, kind, raised, **kw):
        row = Alert(episode_id=episode.id, kind=kind, raised_dt=raised, detail={}, **kw)
        db_session.add(row)
        db_session.flush()
        return row

    def plan(episode, created, review_on, status="open", by=None, **kw):
        if status != "open":
            kw.setdefault("closed_dt", created + dt.timedelta(days=1))
            kw.setdefault("closed_by_id", episode.therapist_id)
        row = ActionPlan(episode_id=episode.id, created_by_id=episode.therapist_id,
                         created_dt=created, review_on=review_on, status=status,
                         steps=[{"domain": "alliance", "suggestion": None, "text": "talk",
                                 "decision": "own"}], note="private plan note", **kw)
        db_session.add(row)
        db_session.flush()
        return row

    return dict(s=s, other_s=other_s, a=a, b=b, c=c, case=case, alert=alert, plan=plan)


def test_case_without_a_plan_appears_after_the_clinic_set_days(db_session, world):
    """support.md, "The loop", 6: cases without a plan after N days (clinic setting
    plan_overdue_days, default 7); Delgadillo et al. 2018 routed not-on-track alerts
    through supervision."""
    w = world
    late = w["case"](w["a"])
    w["alert"](late, "not_on_track", days_ago(7))             # exactly 7 days: on
    rupture = w["case"](w["b"])
    w["alert"](rupture, "unrepaired_rupture", days_ago(10))
    fresh = w["case"](w["a"])
    w["alert"](fresh, "not_on_track", days_ago(6.9))           # 6.9 days: not yet
    critical = w["case"](w["a"])
    w["alert"](critical, "critical_item", days_ago(20))        # not an agenda kind
    planned = w["case"](w["a"])
    w["alert"](planned, "not_on_track", days_ago(20), status="resolved",
               resolved_dt=days_ago(15))
    elsewhere = w["case"](w["c"])
    w["alert"](elsewhere, "not_on_track", days_ago(20))        # not S's supervisee
    ended = w["case"](w["a"], closed_on=TODAY, end_reason="completed")
    w["alert"](ended, "not_on_track", days_ago(20))            # ended episode

    rows = agenda(db_session, w["s"], NOW)
    assert [(r.state, r.episode_id, r.days, r.alert_kind) for r in rows] == [
        ("no_plan", rupture.id, 10, "unrepaired_rupture"),
        ("no_plan", late.id, 7, "not_on_track")]
    assert rows[0].therapist_name == "Bea Therapist"
    assert rows[0].code == rupture.client.code

    # The clinic may ask for 10 days.
    clinic = db_session.get(Clinic, w["s"].clinic_id)
    clinic_settings.update(db_session, clinic, {"plan_overdue_days": 10})
    assert [r.episode_id for r in agenda(db_session, w["s"], NOW)] == [rupture.id]


def test_plans_under_review_due_and_new(db_session, world):
    """support.md, "The loop", 6: plans under review form the agenda: an open plan whose
    review date has come, and a plan the supervisor has not reviewed yet."""
    w = world
    due = w["case"](w["a"])
    w["plan"](due, days_ago(30), TODAY - dt.timedelta(days=2))
    new = w["case"](w["b"])
    new_plan = w["plan"](new, days_ago(3), TODAY + dt.timedelta(days=25))
    closed = w["case"](w["a"])
    w["plan"](closed, days_ago(40), TODAY - dt.timedelta(days=10), status="closed")
    rows = agenda(db_session, w["s"], NOW)
    assert [(r.state, r.episode_id, r.days) for r in rows] == [
        ("plan_due", due.id, 2), ("plan_new", new.id, 3)]
    assert rows[1].plan_id == new_plan.id and rows[1].review_on == TODAY + dt.timedelta(25)


def test_a_review_takes_the_row_off_until_its_follow_up_date(db_session, world):
    w = world
    episode = w["case"](w["a"])
    plan = w["plan"](episode, days_ago(3), TODAY + dt.timedelta(days=25))
    review = record_review(db_session, supervisor=w["s"], episode=episode, plan=plan,
                           discussed=True, plan_agreed=True,
                           follow_up_on=TODAY + dt.timedelta(days=14), note="seen", now=NOW)
    assert review.supervisor_id == w["s"].id and review.plan_id == plan.id
    assert agenda(db_session, w["s"], NOW) == []
    # Another supervisor of A still has it: reviews are each supervisor's own.
    assert [r.episode_id for r in agenda(db_session, w["other_s"], NOW)] == [episode.id]
    later = NOW + dt.timedelta(days=15)
    rows = agenda(db_session, w["s"], later)
    assert [(r.state, r.days) for r in rows] == [("follow_up_due", 1)]
    assert rows[0].last_review.note == "seen" and rows[0].last_review.plan_agreed
    # A new plan (a revision) is new again.
    plan.status, plan.closed_dt, plan.closed_by_id = "revised", later, w["a"].id
    w["plan"](episode, later, TODAY + dt.timedelta(days=40), revised_from_id=plan.id)
    assert [r.state for r in agenda(db_session, w["s"], later)] == ["plan_new"]


def test_a_review_without_follow_up_lasts_until_the_review_date(db_session, world):
    w = world
    episode = w["case"](w["a"])
    plan = w["plan"](episode, days_ago(3), TODAY + dt.timedelta(days=5))
    record_review(db_session, supervisor=w["s"], episode=episode, plan=plan, discussed=True,
                  plan_agreed=False, follow_up_on=None, note="", now=NOW)
    assert agenda(db_session, w["s"], NOW) == []
    rows = agenda(db_session, w["s"], NOW + dt.timedelta(days=6))
    assert [(r.state, r.days) for r in rows] == [("plan_due", 1)]


def test_reviewing_a_case_without_a_plan(db_session, world):
    w = world
    episode = w["case"](w["a"])
    alert = w["alert"](episode, "not_on_track", days_ago(9))
    record_review(db_session, supervisor=w["s"], episode=episode, plan=None, discussed=True,
                  plan_agreed=False, follow_up_on=TODAY + dt.timedelta(days=7),
                  note="ask for a plan", now=NOW)
    assert agenda(db_session, w["s"], NOW) == []
    rows = agenda(db_session, w["s"], NOW + dt.timedelta(days=7))
    assert [(r.state, r.days) for r in rows] == [("no_plan", 16)]
    # A plan resolves the alert: the case leaves as "no plan" and comes back as new.
    alert.status, alert.resolved_dt = "resolved", NOW + dt.timedelta(days=1)
    plan = w["plan"](episode, NOW + dt.timedelta(days=1), TODAY + dt.timedelta(days=30))
    alert.plan_id = plan.id
    assert [r.state for r in agenda(db_session, w["s"], NOW + dt.timedelta(days=2))] == [
        "plan_new"]


@pytest.mark.parametrize(("field", "changes"), [
    ("follow_up_on", {"follow_up_on": TODAY}),
    ("follow_up_on", {"follow_up_on": TODAY - dt.timedelta(days=1)}),
    ("follow_up_on", {"follow_up_on": TODAY + dt.timedelta(days=FOLLOW_UP_MAX_DAYS + 1)}),
    ("note", {"note": "x" * (NOTE_MAX + 1)}),
    ("plan_agreed", {"plan": None, "plan_agreed": True}),
])
def test_bad_reviews_are_refused_and_nothing_is_stored(db_session, world, field, changes):
    w = world
    episode = w["case"](w["a"])
    plan = w["plan"](episode, days_ago(3), TODAY + dt.timedelta(days=25))
    kwargs = dict(supervisor=w["s"], episode=episode, plan=plan, discussed=True,
                  plan_agreed=False, follow_up_on=TODAY + dt.timedelta(days=1), note="ok",
                  now=NOW)
    kwargs.update(changes)
    with pytest.raises(ReviewError) as refused:
        record_review(db_session, **kwargs)
    assert refused.value.field == field
    assert db_session.query(SupervisionReview).count() == 0
    # The limits themselves are accepted.
    kwargs.update(follow_up_on=TODAY + dt.timedelta(days=FOLLOW_UP_MAX_DAYS),
                  note="y" * NOTE_MAX, plan=plan, plan_agreed=False)
    record_review(db_session, **kwargs)


def test_only_a_supervisees_open_episode_and_its_own_plan(db_session, world):
    w = world
    foreign = w["case"](w["c"])
    mine = w["case"](w["a"])
    other_plan = w["plan"](w["case"](w["b"]), days_ago(3), TODAY + dt.timedelta(days=9))
    ended = w["case"](w["a"], closed_on=TODAY, end_reason="mutual")
    base = dict(discussed=True, plan_agreed=False, follow_up_on=None, note="", now=NOW)
    for episode, plan, field in ((foreign, None, "episode"), (ended, None, "episode"),
                                 (mine, other_plan, "plan")):
        with pytest.raises(ReviewError) as refused:
            record_review(db_session, supervisor=w["s"], episode=episode, plan=plan, **base)
        assert refused.value.field == field
    with pytest.raises(ReviewError):  # a therapist is no supervisor
        record_review(db_session, supervisor=w["a"], episode=mine, plan=None, **base)
    assert db_session.query(SupervisionReview).count() == 0


def test_rows_carry_codes_never_names_or_notes_of_the_plan(db_session, world):
    """security.md, users.md: supervisors see codes and plan states, never names or
    answers."""
    w = world
    episode = w["case"](w["a"])
    w["plan"](episode, days_ago(3), TODAY + dt.timedelta(days=25))
    w["alert"](w["case"](w["b"]), "not_on_track", days_ago(8))
    rows = agenda(db_session, w["s"], NOW)
    assert len(rows) == 2
    text = repr(rows)
    assert SECRET_NAME not in text and "private plan note" not in text


# --- the supervisor's pages ------------------------------------------------------------


@pytest.fixture
def on_agenda(db_session, world, clock):
    clock.current = NOW
    w = world
    late = w["case"](w["a"])
    w["alert"](late, "not_on_track", days_ago(9))
    planned = w["case"](w["b"])
    plan = w["plan"](planned, days_ago(2), TODAY + dt.timedelta(days=20))
    hidden = w["case"](w["c"])
    w["alert"](hidden, "not_on_track", days_ago(9))
    db_session.commit()
    return dict(w, late=late, planned=planned, plan=plan, hidden=hidden)


def form_of(html: str) -> dict:
    from tests.conftest import csrf_token
    return {"csrf_token": csrf_token(html)}


def test_agenda_page_lists_codes_never_names_or_plan_notes(auth, client, on_agenda):
    w = on_agenda
    auth.login(w["s"].email)
    page = client.get("/supervision/agenda")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert w["late"].client.code in html and w["planned"].client.code in html
    assert w["hidden"].client.code not in html
    assert "no action plan after 9 days" in html and "New action plan" in html
    assert "Alex Therapist" in html and "Bea Therapist" in html
    assert SECRET_NAME not in html and "private plan note" not in html
    assert 'name="csrf_token"' in html
    index = client.get("/supervision/").get_data(as_text=True)
    assert "/supervision/agenda" in index and "/supervision/fidelity" in index


def test_recording_a_review_in_the_browser(auth, client, db_session, on_agenda):
    w = on_agenda
    auth.login(w["s"].email)
    html = client.get("/supervision/agenda").get_data(as_text=True)
    data = {**form_of(html), "plan_id": str(w["plan"].id), "discussed": "yes",
            "plan_agreed": "yes", "follow_up_on": str(TODAY + dt.timedelta(days=14)),
            "note": "Agreed; look again in two weeks"}
    response = client.post(f"/supervision/agenda/{w['planned'].id}/review", data=data)
    assert response.status_code == 302
    review = db_session.query(SupervisionReview).one()
    assert (review.plan_id, review.plan_agreed, review.supervisor_id) == (
        w["plan"].id, True, w["s"].id)
    html = client.get("/supervision/agenda").get_data(as_text=True)
    assert w["planned"].client.code not in html and w["late"].client.code in html


def test_a_refused_review_shows_the_form_again_with_the_input(auth, client, db_session,
                                                              on_agenda):
    w = on_agenda
    auth.login(w["s"].email)
    html = client.get("/supervision/agenda").get_data(as_text=True)
    data = {**form_of(html), "plan_id": str(w["plan"].id), "discussed": "yes",
            "plan_agreed": "no", "follow_up_on": str(TODAY), "note": "kept <b>note</b>"}
    response = client.post(f"/supervision/agenda/{w['planned'].id}/review", data=data)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "The follow-up date must be after today" in html
    assert "kept &lt;b&gt;note&lt;/b&gt;" in html and f'value="{TODAY}"' in html
    for bad in ({"discussed": "maybe"}, {"follow_up_on": "31/12/2026"},
                {"note": "n" * (NOTE_MAX + 1)}, {"plan_id": "99999999999999999999"},
                {"plan_id": "", "plan_agreed": "yes"}):
        response = client.post(f"/supervision/agenda/{w['planned'].id}/review",
                               data={**data, "follow_up_on": "", **bad})
        assert response.status_code == 400, bad
    assert db_session.query(SupervisionReview).count() == 0


def test_a_case_outside_supervision_is_not_found(auth, client, db_session, on_agenda):
    w = on_agenda
    auth.login(w["s"].email)
    html = client.get("/supervision/agenda").get_data(as_text=True)
    data = {**form_of(html), "plan_id": "", "discussed": "yes", "plan_agreed": "no"}
    assert client.post(f"/supervision/agenda/{w['hidden'].id}/review",
                       data=data).status_code == 404
    assert client.post("/supervision/agenda/987654321/review", data=data).status_code == 404
    assert client.post(f"/supervision/agenda/{'9' * 30}/review",
                       data=data).status_code == 404
    auth.logout()
    auth.login(w["a"].email)  # a therapist is no supervisor
    assert client.get("/supervision/agenda").status_code == 404
    assert client.get("/supervision/fidelity").status_code == 404
    assert db_session.query(SupervisionReview).count() == 0


def test_fidelity_page_by_name_with_n_over_n_and_the_few_label(auth, client, on_agenda):
    w = on_agenda
    auth.login(w["s"].email)
    page = client.get("/supervision/fidelity")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.index("Alex Therapist") < html.index("Bea Therapist")
    assert "Cal Elsewhere" not in html
    assert "(0/1)" in html  # Alex: one red case, 9 days, no plan
    assert "few cases: read with care" in html
    assert SECRET_NAME not in html and "best" not in html.lower()


def test_a_review_is_audited_once_and_its_note_is_escaped(auth, client, db_session, on_agenda):
    """security.md: every request audited like its neighbours; free text escaped."""
    from sqlalchemy import select

    from outcome.models import AuditEvent

    w = on_agenda
    canary = "<img src=x onerror=alert(1)>"
    auth.login(w["s"].email)
    html = client.get("/supervision/agenda").get_data(as_text=True)
    data = {**form_of(html), "plan_id": "", "discussed": "yes", "plan_agreed": "no",
            "follow_up_on": "", "note": canary}
    assert client.post(f"/supervision/agenda/{w['late'].id}/review",
                       data=data).status_code == 302
    events = db_session.scalars(select(AuditEvent).where(
        AuditEvent.action == "supervision.review.record")).all()
    assert [(e.outcome, e.client_id, e.object_id) for e in events] == [
        ("allowed", w["late"].client_id, str(w["late"].id))]
    html = client.get("/supervision/agenda").get_data(as_text=True)
    assert w["late"].client.code not in html  # off the agenda until something new
    # A review whose follow-up date has come: the row is back, with the note escaped.
    db_session.add(SupervisionReview(episode_id=w["planned"].id, plan_id=w["plan"].id,
                                     supervisor_id=w["s"].id, reviewed_dt=days_ago(1),
                                     follow_up_on=TODAY, note=canary))
    db_session.commit()
    html = client.get("/supervision/agenda").get_data(as_text=True)
    assert w["planned"].client.code in html and "Your follow-up date has come" in html
    assert canary not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


# --- clinical review fixes (issue 19) ----------------------------------------------------


def test_a_plan_past_its_review_date_stays_until_closed_or_a_follow_up_date(db_session,
                                                                           world):
    """support.md, "The loop", 5-6: at the review date the therapist closes or revises the
    plan, and plans under review form the supervisor's agenda. An open plan past its review
    date therefore stays on the agenda until the therapist closes or revises it, unless
    the supervisor's latest review of it, made on or after its review date, set a
    follow-up date that has not yet come (a review without one no longer drops it)."""
    w = world
    episode = w["case"](w["a"])
    plan = w["plan"](episode, days_ago(30), TODAY - dt.timedelta(days=2))
    # A review made before the review date, even with a later follow-up date: still due.
    db_session.add(SupervisionReview(episode_id=episode.id, plan_id=plan.id,
                                     supervisor_id=w["s"].id, reviewed_dt=days_ago(10),
                                     follow_up_on=TODAY + dt.timedelta(days=5)))
    db_session.flush()
    assert [(r.state, r.days) for r in agenda(db_session, w["s"], NOW)] == [("plan_due", 2)]
    # A review after the review date without a follow-up date (stored before this rule):
    # the plan stays on the agenda.
    db_session.add(SupervisionReview(episode_id=episode.id, plan_id=plan.id,
                                     supervisor_id=w["s"].id, reviewed_dt=days_ago(1),
                                     follow_up_on=None))
    db_session.flush()
    assert [(r.state, r.days) for r in agenda(db_session, w["s"], NOW)] == [("plan_due", 2)]
    assert [r.state for r in agenda(db_session, w["s"], NOW + dt.timedelta(days=60))] == [
        "plan_due"]
    # Reviewing it now needs a follow-up date; with one, it is off until that date ...
    with pytest.raises(ReviewError) as refused:
        record_review(db_session, supervisor=w["s"], episode=episode, plan=plan,
                      discussed=True, plan_agreed=True, follow_up_on=None, note="", now=NOW)
    assert refused.value.field == "follow_up_on"
    assert db_session.query(SupervisionReview).count() == 2
    record_review(db_session, supervisor=w["s"], episode=episode, plan=plan, discussed=True,
                  plan_agreed=True, follow_up_on=TODAY + dt.timedelta(days=7), note="",
                  now=NOW)
    assert agenda(db_session, w["s"], NOW) == []
    # ... and back when it comes, staying while the plan is open.
    for later in (7, 8, 90):
        assert [r.state for r in agenda(db_session, w["s"], NOW + dt.timedelta(days=later))
                ] == ["follow_up_due"], later
    plan.status, plan.closed_dt, plan.closed_by_id = "closed", NOW, w["a"].id
    assert agenda(db_session, w["s"], NOW + dt.timedelta(days=90)) == []


def test_a_review_on_the_review_date_needs_a_follow_up_date(db_session, world):
    """The review date counts as reached on its own day (the "plan_due" state): a review
    made that day is one of a plan past its review date and needs a follow-up date."""
    w = world
    episode = w["case"](w["a"])
    plan = w["plan"](episode, days_ago(20), TODAY)
    with pytest.raises(ReviewError) as refused:
        record_review(db_session, supervisor=w["s"], episode=episode, plan=plan,
                      discussed=True, plan_agreed=False, follow_up_on=None, note="", now=NOW)
    assert refused.value.field == "follow_up_on"
    assert db_session.query(SupervisionReview).count() == 0
    # A plan whose review date has not come may be reviewed without one.
    other = w["case"](w["b"])
    later = w["plan"](other, days_ago(2), TODAY + dt.timedelta(days=1))
    record_review(db_session, supervisor=w["s"], episode=other, plan=later,
                  discussed=True, plan_agreed=False, follow_up_on=None, note="", now=NOW)


def test_the_page_asks_for_a_follow_up_date_on_a_plan_past_its_review_date(
        auth, client, db_session, world, clock):
    """The form says the follow-up date is required for a plan past its review date, and
    refuses one without it beside the field: 400, nothing stored."""
    clock.current = NOW
    w = world
    episode = w["case"](w["a"])
    plan = w["plan"](episode, days_ago(30), TODAY - dt.timedelta(days=2))
    db_session.commit()
    auth.login(w["s"].email)
    html = client.get("/supervision/agenda").get_data(as_text=True)
    assert "Follow-up date (required: the plan\u2019s review date has come" in html
    assert ("stays on your agenda until the therapist closes or revises it" in html)
    data = {**form_of(html), "plan_id": str(plan.id), "discussed": "yes",
            "plan_agreed": "yes", "follow_up_on": "", "note": "kept"}
    response = client.post(f"/supervision/agenda/{episode.id}/review", data=data)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert 'aria-describedby="follow-error-1"' in page
    assert "give a follow-up date" in page
    assert db_session.query(SupervisionReview).count() == 0


def test_a_plan_row_shows_its_step_areas_and_decision_counts_never_words(
        auth, client, db_session, world, clock):
    """The supervisor is asked "Plan agreed": the row shows the plan's step areas (the
    domain names the therapist's pages use) and how many steps each decision has, never
    the steps' words or the plan's note (security.md: plan states, never answers)."""
    clock.current = NOW
    w = world
    episode = w["case"](w["a"])
    plan = w["plan"](episode, days_ago(3), TODAY + dt.timedelta(days=25))
    plan.steps = [
        {"domain": "motivation", "suggestion": "m1", "text": "secret step one",
         "decision": "accepted"},
        {"domain": "alliance", "suggestion": "a1", "text": "secret step two",
         "decision": "edited"},
        {"domain": "alliance", "suggestion": None, "text": "secret step three",
         "decision": "own"},
        {"domain": "life_events", "suggestion": "l1", "text": "secret declined",
         "decision": "declined"}]
    db_session.flush()
    row = agenda(db_session, w["s"], NOW)[0]
    assert row.plan_domains == ("alliance", "motivation")
    assert row.plan_decisions == (("accepted", 1), ("edited", 1), ("own", 1),
                                  ("declined", 1))
    db_session.commit()
    auth.login(w["s"].email)
    html = client.get("/supervision/agenda").get_data(as_text=True)
    assert "Alliance, Motivation: 3 steps" in html
    assert "1 suggested and taken, 1 suggested in the therapist\u2019s words, 1 own" in html
    assert "1 suggestion declined" in html
    assert "secret" not in html and "private plan note" not in html


def test_the_page_says_who_can_read_a_review_note(auth, client, db_session, world, clock):
    """The API shows a review's note to the client's therapist (outcome/web/api/plans.py,
    reviews_json; docs/api.md): the agenda says so and never calls it private."""
    clock.current = NOW
    w = world
    w["alert"](w["case"](w["a"]), "not_on_track", days_ago(9))
    db_session.commit()
    auth.login(w["s"].email)
    html = client.get("/supervision/agenda").get_data(as_text=True)
    assert "the client\u2019s therapist can read it" in html
    assert "your own" not in html and "only to" not in html


def test_fidelity_page_states_cases_and_green_or_white(auth, client, on_agenda):
    """The labels and definitions say what is counted: cases (episodes), not alerts, an
    alert that cleared by itself within 7 days left out; back on track = green or white
    (outcome.core.trajectory.ON_TRACK_COLOURS; domain.md section 4), on the plan's own
    measure; FEW_CASES is a project default, not a published cutoff."""
    auth.login(on_agenda["s"].email)
    html = client.get("/supervision/fidelity").get_data(as_text=True)
    assert "Red cases (episodes with a not-on-track alert) with an action plan within 7 " \
           "days" in html
    assert "each episode once" in html and "cleared by itself" in html
    assert "Red cases back on track (green or white) within 4 scored sessions" in html
    assert "yellow, green or white" not in html
    assert "yellow (less progress than expected) is still off track" in html
    assert "the plan\u2019s own measure" in html
    assert "project default" in html
