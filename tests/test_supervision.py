"""The supervisor's view: figures per supervisee, de-identified caseloads and clients."""

from __future__ import annotations

from sqlalchemy import select

from outcome.models import AuditEvent
from outcome.models import ReportRun
from outcome.services.supervision import overview
from questionnaires.loader import builtin_library
from tests.conftest import TEAM_CLIENT_GOAL
from tests.conftest import TEAM_CLIENT_NAME

LIB = builtin_library()
NAME, GOAL = TEAM_CLIENT_NAME, TEAM_CLIENT_GOAL


def test_overview_figures_per_supervisee(db_session, team, clock):
    figures = overview(db_session, team["s"], LIB, clock())
    assert [r.therapist.display_name for r in figures.rows] == ["Alex Therapist",
                                                                "Bea Therapist"]
    alex, bea = (r.figures for r in figures.rows)
    assert alex.active_episodes == 1 and alex.colours["red"].count == 1
    assert alex.ended == 1 and alex.recovered.count == 1 and alex.recovered.n == 1
    assert alex.is_small  # one ended episode: labelled, never ranked
    assert bea.active_episodes == 1 and bea.colours["red"].count == 0
    assert figures.total.figures.active_episodes == 2
    assert figures.rows[0].open_alerts >= 1  # not on track
    assert figures.instrument.id == "phq9"


def test_pages_show_codes_never_names_answers_or_goals(auth, client, team):
    auth.login(team["s"].email)
    index = client.get("/supervision/")
    assert index.status_code == 200
    html = index.get_data(as_text=True)
    assert "Alex Therapist" in html and "small numbers" in html
    assert "Cal Elsewhere" not in html

    caseload = client.get(f"/supervision/therapists/{team['a'].id}").get_data(as_text=True)
    assert team["red"].code in caseload and NAME not in caseload
    assert team["done"].code not in caseload  # ended episodes are not on a caseload

    page = client.get(f"/supervision/clients/{team['red'].code}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert NAME not in html and GOAL not in html
    assert '<svg role="img"' in html and "PHQ-9 by session" in html
    assert 'class="administration"' not in html  # no item answers
    assert "Not on track" in html


def test_outside_supervision_is_not_found(auth, client, team, db_session):
    auth.login(team["s"].email)
    assert client.get(f"/supervision/therapists/{team['c'].id}").status_code == 404
    assert client.get(f"/supervision/clients/{team['hidden'].code}").status_code == 404
    assert client.get("/supervision/clients/NOPE-0000").status_code == 404
    # The therapist page of a supervisee's client stays the therapist's own.
    assert client.get(f"/clients/{team['red'].code}").status_code == 404
    auth.logout()
    auth.login(team["a"].email)  # a therapist is not a supervisor
    for path in ("/supervision/", f"/supervision/therapists/{team['a'].id}",
                 f"/supervision/clients/{team['red'].code}", "/supervision/digests"):
        assert client.get(path).status_code == 404
    denied = db_session.scalars(select(AuditEvent.action).where(
        AuditEvent.outcome == "denied", AuditEvent.actor_user_id == team["a"].id)).all()
    assert len(denied) == 4


def test_each_client_view_is_audited_once(auth, client, team, db_session):
    auth.login(team["s"].email)
    client.get(f"/supervision/clients/{team['red'].code}")
    events = db_session.scalars(select(AuditEvent).where(
        AuditEvent.action == "supervision.client.view")).all()
    assert [(e.outcome, e.client_id) for e in events] == [("allowed", team["red"].id)]


def test_digest_archive_lists_the_supervisors_runs(auth, client, team, db_session, clock):
    db_session.add_all([
        ReportRun(kind="supervisor_digest", period="2026-W46",
                  recipient_user_id=team["s"].id, status="succeeded",
                  finished_dt=clock(), content_sha256="0" * 64),
        ReportRun(kind="supervisor_digest", period="2026-W46",
                  recipient_user_id=team["a"].id, status="succeeded",
                  finished_dt=clock(), content_sha256="1" * 64)])
    db_session.commit()
    auth.login(team["s"].email)
    html = client.get("/supervision/digests").get_data(as_text=True)
    assert "2026-W46" in html and html.count("2026-W46") == 1 and "ready" in html
