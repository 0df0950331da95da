"""Measurement-based-care fidelity per therapist (issue 19; support.md, "The loop", 7).

A small hand-built world with exact numbers. The period is the twelve weeks from
T0 (2026-09-01 09:00 UTC) to 2026-11-24 09:00 UTC. Scores go through the production
submission service (so colours are the engine's own); alerts, plans, appointments and
episode ends are model rows written here (no support service).
"""

from __future__ import annotations

import datetime as dt
import inspect

import pytest
from sqlalchemy import delete

from outcome.models import ActionPlan
from outcome.models import Administration
from outcome.models import Alert
from outcome.services import fidelity as fidelity_module
from outcome.services.digests.figures import WeekReader
from outcome.services.fidelity import FEW_CASES
from outcome.services.fidelity import fidelity
from outcome.services.supervision import primary_outcome
from questionnaires.loader import builtin_library
from tests.helpers import PHQ
from tests.helpers import T0
from tests.helpers import submit

LIB = builtin_library()
END = T0 + dt.timedelta(weeks=12)
SECRET = "Quentin Hiddenname"


def week(n: float) -> dt.datetime:
    return T0 + dt.timedelta(weeks=n)


def phq(store, episode, levels_by_week: dict[int, int]) -> None:
    """PHQ-9 at the given weeks, every item at the level (item 9 at 0)."""
    for w, level in levels_by_week.items():
        values = {f"phq9_{i}": level for i in range(1, 9)}
        values["phq9_9"] = 0
        submit(store, episode, PHQ, values, w, key=f"{episode.id}:{w}")


@pytest.fixture
def world(db_session, make_user, make_client, make_episode, make_appointment, assign):
    s = make_user("supervisor", display_name="Sam Supervisor")
    bea = make_user(display_name="Bea Therapist")   # made first: rows are still by name
    alex = make_user(display_name="Alex Therapist")
    cal = make_user(display_name="Cal Elsewhere")
    assign(s, bea)
    assign(s, alex)

    def episode(therapist, **kw):
        return make_episode(make_client(therapist, name=SECRET), **kw)

    start = {0: 1, 1: 1, 2: 2, 3: 2}
    a1, a2, a3, a12 = (episode(alex) for _ in range(4))
    phq(db_session, a1, {**start, 4: 2, 5: 0})           # back on track at week 5
    phq(db_session, a2, start)
    phq(db_session, a3, {**start, 4: 2, 5: 2, 6: 2, 7: 2, 8: 2})  # red throughout
    phq(db_session, a12, {**start, 4: 2})                # one score after its plan
    # Completion: four sessions of a4 in the period, the measure answered at two.
    a4 = episode(alex)
    for w in range(4):
        appointment = make_appointment(a4, starts_dt=week(w) + dt.timedelta(hours=1),
                                       status="attended")
        if w < 2:
            adm, _ = submit(db_session, a4, PHQ, {f"phq9_{i}": 0 for i in range(1, 10)},
                            w, key=f"a4:{w}")
            adm.appointment_id = appointment.id
    make_appointment(a4, starts_dt=T0 - dt.timedelta(days=3), status="attended")  # before
    # Automatic alerts of the submissions are replaced by the hand-written ones below.
    db_session.execute(delete(Alert))

    def alert(ep, kind, raised, ack_hours=None):
        row = Alert(episode_id=ep.id, kind=kind, raised_dt=raised, detail={})
        if ack_hours is not None:
            row.status, row.acknowledged_by_id = "acknowledged", ep.therapist_id
            row.acknowledged_dt = raised + dt.timedelta(hours=ack_hours)
            row.acknowledgement_note = "called"
        db_session.add(row)
        db_session.flush()
        return row

    def plan(ep, created, review_on, status="open", closed=None, **kw):
        row = ActionPlan(episode_id=ep.id, created_by_id=ep.therapist_id, created_dt=created,
                         review_on=review_on, status=status, closed_dt=closed,
                         closed_by_id=ep.therapist_id if closed else None, note="", **kw)
        db_session.add(row)
        db_session.flush()
        return row

    # Critical answers of Alex: acknowledged after 2, 6 and 30 hours, one still open,
    # one before the period.
    alert(a4, "critical_item", week(1), ack_hours=2)
    alert(a1, "critical_item", week(2), ack_hours=6)
    alert(a2, "critical_item", week(3) + dt.timedelta(days=1), ack_hours=30)
    alert(a3, "critical_item", week(5))
    alert(a12, "critical_item", T0 - dt.timedelta(days=1), ack_hours=1)
    # Not-on-track alerts at week 3: a1 planned after 1 day, a3 after 10, a2 never;
    # a13's alert came 2 days before the end: still inside its 7 days, left out.
    for ep in (a1, a2, a3):
        alert(ep, "not_on_track", week(3) + dt.timedelta(hours=1))
    a13 = episode(alex)
    alert(a13, "not_on_track", END - dt.timedelta(days=2))
    p1 = plan(a1, week(3) + dt.timedelta(days=1), (T0 + dt.timedelta(days=30)).date(),
              status="closed", closed=T0 + dt.timedelta(days=35))   # reviewed
    plan(a3, week(3) + dt.timedelta(days=10), (T0 + dt.timedelta(weeks=6)).date())  # not
    plan(a12, week(3) + dt.timedelta(days=1), (T0 + dt.timedelta(weeks=14)).date())  # later
    a5 = episode(alex)   # closed before its review date: left out of "reviewed"
    plan(a5, week(1), (T0 + dt.timedelta(weeks=8)).date(), status="closed", closed=week(2))
    # Endings in the period (and one before it).
    for reason in ("completed", "dropped_out", "mutual", "referred", "other"):
        episode(alex, closed_on=(T0 + dt.timedelta(weeks=2)).date(), end_reason=reason)
    episode(alex, opened_on=dt.date(2026, 6, 1), closed_on=dt.date(2026, 8, 20),
            end_reason="completed")
    # Cal is not Sam's supervisee: none of this counts.
    c1 = episode(cal)
    alert(c1, "critical_item", week(1), ack_hours=100)
    episode(cal, closed_on=(T0 + dt.timedelta(weeks=2)).date(), end_reason="dropped_out")
    db_session.flush()
    return dict(s=s, alex=alex, bea=bea, a1=a1, a3=a3, a12=a12, p1=p1)


def test_the_world_reads_as_the_engine_colours_it(db_session, world):
    """The colours the fixture relies on, by the engine's own rule."""
    from outcome.models import Clinic
    clinic = db_session.get(Clinic, world["s"].clinic_id)
    reader = WeekReader(db_session, world["s"], clinic, [world["alex"].id],
                        primary_outcome(clinic, LIB))
    a1 = [c for _, c in reader.colours_by_score(world["a1"].id)]
    a3 = [c for _, c in reader.colours_by_score(world["a3"].id)]
    assert a1[3] == "red" and a1[4] == "red" and a1[5] != "red"
    assert a3[3:] == ["red"] * 6


def test_figures_per_therapist_exact(db_session, world):
    rows = fidelity(db_session, world["s"], LIB, start=T0, end=END)
    assert [r.therapist_name for r in rows] == ["Alex Therapist", "Bea Therapist"]
    alex, bea = rows
    assert (alex.completion.count, alex.completion.n) == (2, 4)
    assert alex.acknowledge.median_hours == pytest.approx(6.0)
    assert (alex.acknowledge.acknowledged, alex.acknowledge.raised) == (3, 4)
    assert (alex.plan_within_7_days.count, alex.plan_within_7_days.n) == (1, 3)
    assert (alex.plans_reviewed.count, alex.plans_reviewed.n) == (1, 2)
    assert (alex.back_on_track.count, alex.back_on_track.n) == (1, 2)
    assert alex.back_on_track_waiting == 1
    assert {k: (v.count, v.n) for k, v in alex.endings.items()} == {
        "planned": (1, 5), "mutual": (1, 5), "unilateral": (1, 5), "other": (2, 5)}
    assert (bea.completion.count, bea.completion.n) == (0, 0)
    assert bea.acknowledge.median_hours is None
    assert all(share.n == 0 for share in bea.endings.values())


def test_small_numbers_are_labelled_not_hidden(db_session, world):
    """users.md ("Small numbers are labelled, not ranked"): N < FEW_CASES (5) is few."""
    assert FEW_CASES == 5
    import reports.digest
    source = inspect.getsource(reports.digest)
    assert "FEW_CASES = 5  # a project default (unverified)" in source
    alex = fidelity(db_session, world["s"], LIB, start=T0, end=END)[0]
    assert alex.plan_within_7_days.is_few and alex.plan_within_7_days.n == 3
    assert not alex.endings["planned"].is_few  # N = 5


def test_read_as_at_the_periods_end(db_session, world):
    """An acknowledgement or a closing after the period's end does not count yet."""
    end = T0 + dt.timedelta(days=34)  # before p1 was closed (day 35)
    alex = fidelity(db_session, world["s"], LIB, start=T0, end=end)[0]
    assert (alex.plans_reviewed.count, alex.plans_reviewed.n) == (0, 1)
    # the 30-hour acknowledgement (week 3 + 1 day + 30 h) is inside; the open one is not
    assert (alex.acknowledge.acknowledged, alex.acknowledge.raised) == (3, 3)


def test_plan_within_7_days_definition():
    """support.md, "The loop", 7: "red cases with a plan within 7 days": 7 days = 168 h
    from the not-on-track alert; an alert still inside its 7 days is left out."""
    from types import SimpleNamespace as NS

    from outcome.services.fidelity import Period
    from outcome.services.fidelity import plan_within_days
    period = Period.of(T0, END, "UTC")
    alert = NS(kind="not_on_track", episode_id=1, raised_dt=week(1), resolved_dt=None,
               plan_id=None)
    at = [NS(episode_id=1, created_dt=week(1) + dt.timedelta(hours=168))]
    late = [NS(episode_id=1, created_dt=week(1) + dt.timedelta(hours=168, seconds=1))]
    assert (plan_within_days([alert], at, period).count, ) == (1, )
    assert (plan_within_days([alert], late, period).count,
            plan_within_days([alert], late, period).n) == (0, 1)
    fresh = NS(kind="not_on_track", episode_id=1, raised_dt=END - dt.timedelta(days=6),
               resolved_dt=None, plan_id=None)
    assert plan_within_days([fresh], [], period).n == 0


def test_ending_categories_map_the_end_reasons():
    """support.md, "The loop", 7 (the ICCE indices: planned, mutual, unilateral);
    Westmacott et al. 2010, Psychother Res 20:423 (mutual vs unilateral termination)."""
    from outcome.models.care import END_REASONS
    from outcome.services.fidelity import ENDING_OF_REASON
    assert set(ENDING_OF_REASON) == set(END_REASONS)
    assert ENDING_OF_REASON == {"completed": "planned", "mutual": "mutual",
                                "dropped_out": "unilateral", "referred": "other",
                                "other": "other"}


def test_every_figure_states_its_definition_and_source():
    """Each figure's docstring defines it and names its source (support.md, "The loop",
    7; Delgadillo et al. 2018 in the module; ICCE for the endings)."""
    for name in ("completion", "acknowledge_hours", "plan_within_days", "plans_reviewed",
                 "back_on_track", "endings"):
        doc = inspect.getdoc(getattr(fidelity_module, name)) or ""
        assert "support.md" in doc or "domain.md" in doc, name
    assert "Delgadillo et al. 2018" in (fidelity_module.__doc__ or "")
    assert "ICCE" in inspect.getdoc(fidelity_module.endings)


def test_no_ranking_and_no_client_detail(db_session, world):
    rows = fidelity(db_session, world["s"], LIB, start=T0, end=END)
    text = repr(rows).lower()
    assert SECRET.lower() not in text
    assert "best" not in text and "worst" not in text and "rank" not in text
    assert db_session.query(Administration).count() > 0


def test_the_weekly_digest_carries_the_agenda_and_the_fidelity_figures(db_session, world):
    """The digest PDF, parsed back: the agenda by code with its states, and the fidelity
    figures per supervisee with n/N and the few-cases label; never a client's name."""
    import io

    from pypdf import PdfReader

    from outcome.services.digests.loop import build_supervisor_digest as build_digest
    from reports.digest_pdf import render_digest
    from tests.helpers import flat
    from tests.helpers import save_pngs

    produced = END  # Tuesday after ISO week 2026-W47
    digest = build_digest(db_session, world["s"], "2026-W47", LIB, produced)
    assert [r.therapist_name for r in digest.fidelity] == ["Alex Therapist", "Bea Therapist"]
    states = sorted((e.code, e.state) for e in digest.agenda)
    a3, a12 = world["a3"].client.code, world["a12"].client.code
    assert (a3, "plan_due") in states and (a12, "plan_new") in states
    assert sum(1 for _, s in states if s == "no_plan") == 3
    pdf = render_digest(digest)
    save_pngs(pdf, "digest-agenda-fidelity")  # for people to look at
    text = flat(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages))
    assert "Supervision agenda" in text and "Fidelity to measurement-based care" in text
    assert a3 in text and a12 in text
    assert "no action plan; days since the alert" in text
    assert "New action plan, not yet reviewed" in text
    alex = text[text.index("Fidelity to measurement-based care"):]
    assert "2/4 (50 %)" in alex          # completion
    assert "1/3 (33 %)" in alex          # plans within 7 days
    assert "1/5 (20 %)" in alex          # ended: planned
    assert "few cases: read with care" in alex
    assert "0/0" in alex                 # Bea: nothing, shown, not hidden
    assert SECRET not in text and "best" not in text.lower()


def _plan(**kw):
    from types import SimpleNamespace
    base = dict(id=1, episode_id=1, created_dt=week(1), review_on=week(4).date(),
                status="open", closed_dt=None, revised_from_id=None)
    return SimpleNamespace(**{**base, **kw})


def test_plans_reviewed_definition():
    """support.md, "The loop", 5 and 7: at the review date the therapist closes or revises
    the plan; "plans reviewed" counts those closed or revised on or after their review
    date, of the plans whose review date fell in the period (closed earlier: left out)."""
    from outcome.services.fidelity import Period
    from outcome.services.fidelity import plans_reviewed
    period = Period.of(T0, END, "UTC")
    on_the_day = _plan(status="closed", closed_dt=dt.datetime.combine(
        week(4).date(), dt.time(8), dt.UTC))
    revised_later = _plan(status="revised", closed_dt=week(6))
    still_open = _plan()
    early = _plan(status="closed", closed_dt=week(2))
    after_period = _plan(review_on=(END + dt.timedelta(days=1)).date())
    after_end = _plan(status="closed", closed_dt=END + dt.timedelta(hours=1))
    share = plans_reviewed([on_the_day, revised_later, still_open, early, after_period,
                            after_end], period, "UTC")
    assert (share.count, share.n) == (2, 4)


def test_back_on_track_definition():
    """support.md, "The loop", 7: red cases back on track within 4 (scored) sessions of a
    plan. Red just before the plan; back when one of the next 4 scores reads green or
    white (outcome.core.trajectory.ON_TRACK_COLOURS; domain.md section 4: yellow is less
    progress than expected, still off track); not back after 4 scores without that or an
    ended episode; otherwise waiting (not in N)."""
    from outcome.core.trajectory import ON_TRACK_COLOURS
    from outcome.services.fidelity import Period
    from outcome.services.fidelity import back_on_track
    assert ON_TRACK_COLOURS == ("white", "green")
    period = Period.of(T0, END, "UTC")
    histories = {
        1: ["red", "red", "green"],                   # back at the 2nd score after
        2: ["red", "red", "red", "red", "red"],       # 4 red after: not back
        3: ["red", "red"],                            # 1 after, open: waiting
        4: ["red", "red"],                            # 1 after, ended: not back
        5: ["green", "red"],                          # not red before the plan: not a case
        6: ["red", "red", "red", "red", "red", "green"],  # green at the 5th: too late
        7: ["red", "yellow", "yellow", "yellow", "yellow"],  # yellow: not back
        8: ["red", "yellow", "white"],                # white (functional range): back
        9: ["red", "yellow"],                         # yellow, open: still waiting
    }

    def colours(plan):
        return [(week(w), c) for w, c in enumerate(histories[plan.episode_id])]

    plans = [_plan(episode_id=e, created_dt=week(0.5)) for e in histories]
    plans.append(_plan(episode_id=1, created_dt=week(0.5), revised_from_id=9))  # revision
    ended = {4: week(3).date()}
    share, waiting = back_on_track(colours, plans, ended, period)
    assert (share.count, share.n, waiting) == (2, 6, 2)


def test_back_on_track_reads_the_plans_own_measure(db_session, world, make_client,
                                                   make_episode):
    """The follow-up of a plan reads plan.baseline["instrument"], else the episode's own
    primary measure (outcome/services/support.py, main_measure); the fidelity figure reads
    the same measure, not the clinic's main one. Here GAD-7 (the episode's primary
    measure) is red before the plan and green after it, while PHQ-9 stays red."""
    gad = LIB.get("gad7")
    bea = world["bea"]
    for baseline in ({"instrument": "gad7"}, {}):
        ep = make_episode(make_client(bea, name=SECRET), primary_instrument_id="gad7")
        phq(db_session, ep, {w: 2 for w in range(8)})
        for w, level in {0: 1, 1: 1, 2: 2, 3: 2, 4: 2, 5: 0}.items():
            submit(db_session, ep, gad, {f"gad7_{i}": level for i in range(1, 8)}, w,
                   key=f"g{ep.id}:{w}")
        db_session.add(ActionPlan(episode_id=ep.id, created_by_id=bea.id,
                                  created_dt=week(3) + dt.timedelta(days=1),
                                  review_on=(T0 + dt.timedelta(weeks=6)).date(),
                                  baseline=baseline, note=""))
    db_session.flush()
    from outcome.models import Clinic
    clinic = db_session.get(Clinic, world["s"].clinic_id)
    reader = WeekReader(db_session, world["s"], clinic, [bea.id], gad)
    colours = [c for _, c in reader.colours_by_score(ep.id)]
    assert colours[3] == "red" and colours[5] in ("green", "white")  # the engine's own
    row = fidelity(db_session, world["s"], LIB, start=T0, end=END)[1]
    assert row.therapist_name == "Bea Therapist"
    assert (row.back_on_track.count, row.back_on_track.n) == (2, 2)


def test_plan_within_7_days_counts_cases_not_alerts():
    """support.md, "The loop", 7: "red cases with a plan within 7 days" counts cases
    (episodes) whose not-on-track alert was raised in the period, not alerts; a case whose
    alert cleared by itself (resolved without a plan, plan_id NULL) before its 7 days ran
    out is left out (not a failure); a case still inside its 7 days without a plan waits."""
    from types import SimpleNamespace as NS

    from outcome.services.fidelity import Period
    from outcome.services.fidelity import plan_within_days
    period = Period.of(T0, END, "UTC")

    def alert(episode, raised, resolved=None, plan_id=None):
        return NS(kind="not_on_track", episode_id=episode, raised_dt=raised,
                  resolved_dt=resolved, plan_id=plan_id)

    alerts = [
        # case 1: two alerts in the period, a plan within 7 days of the first: one case
        alert(1, week(1), resolved=week(1) + dt.timedelta(days=2), plan_id=10),
        alert(1, week(5)),
        # case 2: cleared by itself after 3 days, no plan: left out
        alert(2, week(1), resolved=week(1) + dt.timedelta(days=3)),
        # case 3: cleared by itself after 8 days (past its 7): a case without a plan
        alert(3, week(1), resolved=week(1) + dt.timedelta(days=8)),
        # case 4: cleared by itself, then raised again and no plan: one case, not met
        alert(4, week(1), resolved=week(1) + dt.timedelta(days=1)),
        alert(4, week(3)),
        # case 5: cleared by itself after the period's end: read as open at its end
        alert(5, END - dt.timedelta(days=8), resolved=END + dt.timedelta(days=1)),
    ]
    plans = [NS(episode_id=1, created_dt=week(1) + dt.timedelta(days=2))]
    share = plan_within_days(alerts, plans, period)
    assert (share.count, share.n) == (1, 4)
def test_median_hours_to_acknowledge_definition():
    """support.md, "The loop", 7 ("time to acknowledge a critical answer"): the median
    over critical_item alerts raised in the period and acknowledged by its end."""
    from types import SimpleNamespace as NS

    from outcome.services.fidelity import Period
    from outcome.services.fidelity import acknowledge_hours
    period = Period.of(T0, END, "UTC")

    def alert(hours, kind="critical_item", raised=None):
        raised = raised or week(1)
        return NS(kind=kind, raised_dt=raised, acknowledged_dt=(
            raised + dt.timedelta(hours=hours) if hours is not None else None))

    figure = acknowledge_hours([alert(1), alert(3), alert(10), alert(20), alert(None),
                                alert(1, kind="critical_unanswered"),
                                alert(1, raised=T0 - dt.timedelta(hours=2))], period)
    assert (figure.median_hours, figure.acknowledged, figure.raised) == (6.5, 4, 5)
    assert figure.is_few  # 4 < 5


def test_digest_pages_escape_names_and_label_few_cases():
    """A hand-built digest: a canary in a therapist's name prints as text; every share
    with N < 5 carries the label; nothing is hidden."""
    import dataclasses
    import io

    from pypdf import PdfReader

    from reports.digest import AgendaEntry
    from reports.digest import HoursFigure
    from reports.digest import Share
    from reports.digest import TherapistFidelity
    from reports.digest_pdf import render_digest
    from tests.helpers import flat
    from tests.test_digest_pdf import CANARY
    from tests.test_digest_pdf import sample_digest

    row = TherapistFidelity(
        therapist_name=CANARY, completion=Share(9, 10), acknowledge=HoursFigure(2.5, 2, 3),
        plan_within_7_days=Share(1, 2), plans_reviewed=Share(0, 0),
        back_on_track=Share(3, 6), back_on_track_waiting=2,
        endings={"planned": Share(2, 6), "mutual": Share(1, 6), "unilateral": Share(3, 6),
                 "other": Share(0, 6)})
    digest = dataclasses.replace(
        sample_digest(), fidelity=(row,), fidelity_starts=dt.date(2026, 8, 31),
        agenda=(AgendaEntry("C-ABC123", CANARY, "no_plan", 9, "not_on_track"),
                AgendaEntry("C-DEF456", "Bea", "plan_due", 2, None, dt.date(2026, 11, 20),
                            dt.date(2026, 11, 1))))
    text = flat(" ".join(p.extract_text() for p in
                         PdfReader(io.BytesIO(render_digest(digest))).pages))
    assert CANARY in text and "C-ABC123" in text and "C-DEF456" in text
    assert "Not on track: no action plan; days since the alert: 9" in text
    assert "9/10 (90 %)" in text
    assert "1/2 (50 %) · few cases: read with care" in text
    assert "0/0 · few cases: read with care" in text
    assert "3/6 (50 %) · waiting: 2" in text
    assert "median 2.5 hours · 2 of 3 acknowledged · few cases: read with care" in text
    # The labels say what is counted (cases; green or white) and that 5 is a default.
    assert "Red cases (episodes with a not-on-track alert) with an action plan within 7 " \
           "days" in text
    assert "Red cases back on track (green or white) within 4 scored sessions" in text
    assert "a project default" in text
