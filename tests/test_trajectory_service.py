"""Issue 15, expected response (domain.md section 4): the treatment session t, fits on
ongoing episodes, fit import/export, the rule-based notice and the band on the charts."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import xml.etree.ElementTree as ET

import pytest
from pypdf import PdfReader
from sqlalchemy import func
from sqlalchemy import select

from outcome.core.answers import parse_answers
from outcome.core.trajectory import TrajectoryModel
from outcome.core.trajectory import fit_trajectory
from outcome.models import EpisodeSignal
from outcome.models import TrajectoryFit
from outcome.services import clinic_settings
from outcome.services.fits import refit_models
from outcome.services.fits import severity_strata
from outcome.services.signals import clinic_context
from outcome.services.signals import load_series
from outcome.services.submissions import submit_administration
from tests.helpers import LIB
from tests.helpers import T0
from tests.helpers import flat
from tests.helpers import simulated

PHQ = LIB.get("phq9")


def phq(store, episode, total, when, key, appointment=None):
    """A PHQ-9 totalling ``total`` (items 1-8; item 9 is 0), stored for real."""
    base, extra = divmod(int(total), 8)
    values = {f"phq9_{i}": base + (1 if i <= extra else 0) for i in range(1, 9)}
    answers = parse_answers(PHQ, {**values, "phq9_9": 0})
    return submit_administration(store, episode=episode, instrument=PHQ, answers=answers,
                                 completed_dt=when, idempotency_key=key, library=LIB, now=when,
                                 appointment_id=appointment.id if appointment else None)[0]


def test_t_is_the_treatment_session_and_a_missed_appointment_does_not_advance_it(
        db_session, make_user, make_client, make_episode, make_appointment):
    episode = make_episode(make_client(make_user()))
    week = dt.timedelta(weeks=1)
    status = ["attended", "no_show", "attended", "cancelled", "attended", "scheduled"]
    appointments = [make_appointment(episode, starts_dt=T0 + k * week, status=s)
                    for k, s in enumerate(status)]
    before = dt.timedelta(hours=2)
    phq(db_session, episode, 16, T0 - before, "a", appointments[0])       # session 1
    phq(db_session, episode, 16, T0 + week - before, "b", appointments[1])  # missed: still 1
    phq(db_session, episode, 16, T0 + 2 * week - before, "c", appointments[2])  # session 2
    # No appointment, between sessions 2 and 3: two sessions held so far.
    phq(db_session, episode, 16, T0 + 3 * week + before, "d")
    phq(db_session, episode, 8, T0 + 4 * week - before, "e", appointments[4])  # session 3
    phq(db_session, episode, 8, T0 + 5 * week - before, "f", appointments[5])  # session 4
    series = load_series(db_session, [episode.id], LIB)["phq9"]
    assert series.sessions[0].tolist() == [1, 1, 2, 2, 3, 4]  # six forms, four sessions
    signal = db_session.get(EpisodeSignal, episode.id)
    assert signal.state["outcomes"]["phq9"]["session"] == 4
    assert signal.state["outcomes"]["phq9"]["progress"]["numbers"]["session"] == 4


def test_without_appointments_the_nth_form_is_session_n(db_session, make_user, make_client,
                                                        make_episode):
    episode = make_episode(make_client(make_user()))
    for k in range(3):
        phq(db_session, episode, 16, T0 + dt.timedelta(weeks=k), f"k{k}")
    assert load_series(db_session, [episode.id], LIB)["phq9"].sessions[0].tolist() == [1, 2, 3]


def courses(db_session, make_user, make_client, make_episode, n, closed, forms=4):
    """``n`` episodes of ``forms`` weekly PHQ-9s each, the first ``closed`` of them ended."""
    therapist = make_user()
    for e in range(n):
        kwargs = ({"closed_on": dt.date(2026, 12, 1), "end_reason": "completed"}
                  if e < closed else {})
        episode = make_episode(make_client(therapist), **kwargs)
        for k in range(forms):
            phq(db_session, episode, min(24, max(0, 20 - 3 * k + e % 5)),
                T0 + dt.timedelta(weeks=k), f"{episode.id}:{k}")


def test_fits_include_ongoing_episodes(db_session, clinic, make_user, make_client,
                                       make_episode):
    courses(db_session, make_user, make_client, make_episode, n=12, closed=4)
    # An episode with only two forms is left out.
    courses(db_session, make_user, make_client, make_episode, n=1, closed=0, forms=2)
    reports = {r.instrument_id: r for r in refit_models(db_session, clinic, LIB, T0)}
    assert reports["phq9"].n_episodes == 12  # 4 completed + 8 ongoing
    fit = db_session.scalar(select(TrajectoryFit).where(TrajectoryFit.instrument_id == "phq9"))
    assert fit.n_episodes == 12 and fit.source is None
    assert fit.parameters["strata"] == [[0, 4], [5, 9], [10, 14], [15, 19], [20, 27]]
    assert "12 of the 50 episodes" in reports["phq9"].note


def stored_fit(db_session, clinic_id, n_episodes=400, source=None):
    model = fit_trajectory("phq9", "higher_is_worse", *simulated(), now=T0,
                           strata=severity_strata(PHQ))
    db_session.add(TrajectoryFit(clinic_id=clinic_id, instrument_id="phq9", fitted_dt=T0,
                                 n_episodes=n_episodes, n_observations=model.n_observations,
                                 parameters={**model.as_json(), "n_episodes": n_episodes},
                                 source=source))
    db_session.flush()
    return model


def test_export_then_import_round_trips_and_is_used_like_an_own_fit(
        runner, db_session, clinic, make_clinic, tmp_path):
    model = stored_fit(db_session, clinic.id)
    other = make_clinic()
    db_session.commit()
    path = tmp_path / "phq9-fit.json"
    result = runner.invoke(args=["fits", "export", "--clinic", clinic.slug, "-o", str(path)])
    assert result.exit_code == 0, result.output
    data = json.loads(path.read_text())
    assert data["format"] == "outcome-trajectory-fit" and len(data["fits"]) == 1
    entry = data["fits"][0]
    assert entry["n_episodes"] == 400 and entry["source"] == f"{clinic.name}, own episodes"
    assert entry["model"]["stratum_quantiles"]  # the band table by intake severity
    assert TrajectoryModel.from_json(entry["model"]) == model

    result = runner.invoke(args=["fits", "import", str(path), "--clinic", other.slug,
                                 "--source", "Test Clinic export, 2026-12"])
    assert result.exit_code == 0, result.output
    assert "used for colours" in result.output
    row = db_session.scalar(select(TrajectoryFit).where(TrajectoryFit.clinic_id == other.id))
    assert row.source == "Test Clinic export, 2026-12" and row.n_episodes == 400
    imported = clinic_context(db_session, other).models["phq9"]
    assert imported.source == "Test Clinic export, 2026-12"
    assert imported == TrajectoryModel.from_json(entry["model"],
                                                 source="Test Clinic export, 2026-12")
    # Exported again, it keeps its source.
    again = json.loads(runner.invoke(args=["fits", "export", "--clinic", other.slug]).output)
    assert again["fits"][0]["source"] == "Test Clinic export, 2026-12"


def test_an_own_fit_replaces_an_import_only_with_enough_episodes(
        db_session, clinic, make_user, make_client, make_episode):
    stored_fit(db_session, clinic.id, source="Published fit (n = 400)")
    courses(db_session, make_user, make_client, make_episode, n=11, closed=0)
    refit_models(db_session, clinic, LIB, T0 + dt.timedelta(days=1))
    kept = clinic_context(db_session, clinic).models["phq9"]
    assert kept.source == "Published fit (n = 400)" and kept.n_episodes == 400
    # With a clinic minimum of 10, the own fit of 11 episodes takes over.
    clinic_settings.update(db_session, clinic, {"model_min_episodes": 10})
    refit_models(db_session, clinic, LIB, T0 + dt.timedelta(days=2))
    own = clinic_context(db_session, clinic).models["phq9"]
    assert own.source is None and own.n_episodes == 11


def good_file():
    model = fit_trajectory("phq9", "higher_is_worse", *simulated(episodes=80), now=T0,
                           strata=severity_strata(PHQ))
    return {"format": "outcome-trajectory-fit", "format_version": 1,
            "fits": [{"instrument_id": "phq9", "source": "x", "n_episodes": 80,
                      "model": model.as_json()}]}


def broken(change):
    data = good_file()
    change(data)
    return data


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not a JSON file"),
    (broken(lambda d: d.update(format="other")), "format: expected 'outcome-trajectory-fit'"),
    (broken(lambda d: d.update(fits=[])), "fits: expected a non-empty list"),
    (broken(lambda d: d["fits"][0]["model"].update(instrument_id="nope")),
     "fits[0].instrument_id: does not match model.instrument_id"),
    (broken(lambda d: (d["fits"][0].update(instrument_id="nope"),
                       d["fits"][0]["model"].update(instrument_id="nope"))),
     "fits[0].model.instrument_id: unknown instrument 'nope'"),
    (broken(lambda d: d["fits"][0]["model"].update(direction="higher_is_better")),
     "fits[0].model.direction: phq9 is higher_is_worse"),
    (broken(lambda d: d["fits"][0]["model"].update(beta0="fast")),
     "fits[0].model.beta0: expected a finite number"),
    (broken(lambda d: d["fits"][0]["model"].update(n_episodes=0)),
     "fits[0].model.n_episodes: expected a whole number of at least 1"),
    (broken(lambda d: d["fits"][0]["model"]["quantiles"][0].pop()),
     "fits[0].model.quantiles[0]: expected 99 finite numbers"),
    (broken(lambda d: d["fits"][0]["model"]["stratum_quantiles"][1][2].reverse()),
     "fits[0].model.stratum_quantiles[1][2]: percentiles must not decrease"),
    (broken(lambda d: d["fits"][0]["model"].update(strata=[[5, 9], [0, 4]])),
     "fits[0].model.strata: expected in score order"),
])
def test_a_bad_fit_file_is_refused_naming_the_field_and_nothing_is_stored(
        runner, db_session, clinic, tmp_path, content, message):
    db_session.commit()
    path = tmp_path / "fit.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    before = db_session.scalar(select(func.count()).select_from(TrajectoryFit))
    result = runner.invoke(args=["fits", "import", str(path), "--clinic", clinic.slug,
                                 "--source", "somewhere"])
    assert result.exit_code == 2
    assert message in result.output and "nothing was imported" in result.output
    assert db_session.scalar(select(func.count()).select_from(TrajectoryFit)) == before


def test_an_import_needs_a_source(runner, db_session, clinic, tmp_path):
    db_session.commit()
    path = tmp_path / "fit.json"
    path.write_text(json.dumps(good_file()))
    result = runner.invoke(args=["fits", "import", str(path), "--clinic", clinic.slug])
    assert result.exit_code == 2 and "--source" in result.output
    result = runner.invoke(args=["fits", "import", str(path), "--clinic", clinic.slug,
                                 "--source", "  "])
    assert result.exit_code == 2 and "--source: say where the fit comes from" in result.output
    assert db_session.scalar(select(func.count()).select_from(TrajectoryFit)) == 0


@pytest.mark.parametrize("source", [None, "Lambert et al. 2004, published"])
def test_the_band_is_drawn_and_labelled_on_the_page_and_in_the_pdf(
        auth, client, case, db_session, source):
    therapist, person, episode = case
    stored_fit(db_session, episode.clinic_id, source=source)
    db_session.commit()
    auth.login(therapist.email)
    html = client.get(f"/clients/{person.code}").get_data(as_text=True)
    svgs = re.findall(r"<svg.*?</svg>", html, flags=re.S)
    phq_svg = next(s for s in svgs if "PHQ-9" in s and "session" in s)
    fit = source or "clinic fit"
    label = f"PHQ-9 expected range ({fit}, n = 400)"
    assert label in phq_svg
    root = ET.fromstring(phq_svg)
    band = [e for e in root.iter() if e.tag.split("}")[-1] == "polygon"
            and "rgb(85%,88%,92%)" in (e.get("fill") or e.get("style") or "")]  # charts.BAND
    assert len(band) == 1
    # One point per session on each edge: the shaded range spans the whole series.
    assert len(band[0].get("points").split(",")) == 2 * 5
    body = client.get(f"/clients/{person.code}/report.pdf").get_data()
    text = flat(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(body)).pages))
    assert label in text


def test_rule_based_notice_is_said_once_above_the_caseload(
        auth, client, db_session, make_user, make_client, make_episode):
    therapist = make_user()
    for n in range(3):
        episode = make_episode(make_client(therapist))
        for k in range(3):
            phq(db_session, episode, 16, T0 + dt.timedelta(weeks=k), f"n{n}:{k}")
    db_session.commit()
    auth.login(therapist.email)
    html = flat(client.get("/").get_data(as_text=True))
    notice = ("PHQ-9 colours are rule-based until the clinic has enough episodes with three "
              "or more measures for an expected recovery curve: 0 of 50.")
    assert html.count(notice) == 1
    assert html.index(notice) < html.index("<table class=\"caseload\"")
    assert "Rule-based colours" not in html


def test_rational_red_counts_treatment_sessions(db_session, make_user, make_client,
                                                make_episode, make_appointment):
    """Rational red at session 8 counts sessions held: eight forms with a missed
    appointment among them are session 7 (yellow); the next session held is 8 (red)."""
    episode = make_episode(make_client(make_user()))
    week = dt.timedelta(weeks=1)
    statuses = ["attended"] * 3 + ["no_show"] + ["attended"] * 5
    appointments = [make_appointment(episode, starts_dt=T0 + k * week, status=s)
                    for k, s in enumerate(statuses)]
    # Intake 16, then 14: improved 2 points, less than half of the reliable 6; clinical.
    for k, appointment in enumerate(appointments[:8]):
        phq(db_session, episode, 16 if k == 0 else 14, T0 + k * week - dt.timedelta(hours=1),
            f"s{k}", appointment)
    signal = db_session.get(EpisodeSignal, episode.id)
    assert signal.state["outcomes"]["phq9"]["session"] == 7
    assert signal.colour == "yellow"
    phq(db_session, episode, 14, T0 + 8 * week - dt.timedelta(hours=1), "s8", appointments[8])
    signal = db_session.get(EpisodeSignal, episode.id)
    progress = signal.state["outcomes"]["phq9"]["progress"]
    assert signal.state["outcomes"]["phq9"]["session"] == 8 and signal.colour == "red"
    assert progress["rule"] == "progress.no_reliable_improvement_by_this_session"
    from outcome.services.explanations import render_explanation
    assert render_explanation(progress, "en") == (
        "Red: PHQ-9 14 at session 8, 16 at intake: still in the clinical range and improved "
        "by 2 points: no reliable improvement by session 8 (reliable change is 6 points, "
        "NHS Talking Therapies).")


def test_rule_based_notice_is_said_once_on_the_client_page_and_in_the_pdf(auth, client,
                                                                          case):
    therapist, person, _episode = case
    auth.login(therapist.email)
    notice = ("PHQ-9 colours are rule-based until the clinic has enough episodes with three "
              "or more measures for an expected recovery curve: 0 of 50.")
    html = flat(client.get(f"/clients/{person.code}").get_data(as_text=True))
    assert html.count(notice) == 1 and "Rule-based colours" not in html
    body = client.get(f"/clients/{person.code}/report.pdf").get_data()
    text = flat(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(body)).pages))
    assert text.count(notice) == 1
