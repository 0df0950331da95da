"""The submission service's rules, at service level: availability, clock skew, episode
and appointment, answers, idempotency (replay and conflict) and each source's key."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy import func
from sqlalchemy import select

from outcome.core.answers import parse_answers
from outcome.models import Administration
from outcome.models import EpisodeSignal
from outcome.services.appointments import book_appointment
from outcome.services.exports import response_id
from outcome.services.links import issue_link
from outcome.services.submissions import CLOCK_SKEW
from outcome.services.submissions import CompletedInFuture
from outcome.services.submissions import IdempotencyConflict
from outcome.services.submissions import ImportConflict
from outcome.services.submissions import InstrumentUnavailable
from outcome.services.submissions import InvalidAnswers
from outcome.services.submissions import NoOpenEpisode
from outcome.services.submissions import Submission
from outcome.services.submissions import UnknownAppointment
from outcome.services.submissions import UnknownInstrument
from outcome.services.submissions import UnknownVersion
from outcome.services.submissions import api_key
from outcome.services.submissions import import_key
from outcome.services.submissions import link_key
from outcome.services.submissions import link_key_prefix
from outcome.services.submissions import previous_import
from outcome.services.submissions import submit
from questionnaires.loader import builtin_library

LIB = builtin_library()
NOW = dt.datetime(2026, 11, 16, 10, tzinfo=dt.UTC)
PHQ = {f"phq9_{i}": 2 for i in range(1, 10)}


@pytest.fixture
def episode(make_user, make_client, make_episode):
    return make_episode(make_client(make_user()))


@pytest.fixture
def send(db_session, episode):
    """Submit PHQ-9 answers for the episode; any field of the Submission can be changed."""
    def send(**changes):
        submission = Submission(clinic_id=episode.clinic_id, episode=episode,
                                instrument_id="phq9", answers=PHQ, completed_dt=NOW,
                                idempotency_key="test:1")
        return submit(db_session, dataclasses.replace(submission, **changes), library=LIB,
                      now=NOW)
    return send


def stored(db_session) -> int:
    return db_session.scalar(select(func.count()).select_from(Administration))


# --- availability ----------------------------------------------------------------------------


def test_an_available_instrument_is_stored_with_its_signals(db_session, episode, send):
    result = send()
    assert result.created and result.instrument.id == "phq9"
    assert result.administration.total == 18 and result.administration.episode_id == episode.id
    assert db_session.get(EpisodeSignal, episode.id) is not None


@pytest.mark.parametrize(("changes", "error", "field", "code"), [
    ({"instrument_id": "no-such"}, UnknownInstrument, "instrument", "unknown_instrument"),
    ({"instrument_id": "k10", "answers": {}}, InstrumentUnavailable, "instrument",
     "instrument_unavailable"),
    ({"version": "99"}, UnknownVersion, "version", "unknown_version"),
])
def test_the_clinic_must_be_able_to_use_the_instrument(db_session, send, changes, error,
                                                       field, code):
    with pytest.raises(error) as raised:
        send(**changes)
    assert (raised.value.field, raised.value.code) == (field, code)
    assert stored(db_session) == 0


def test_unavailable_says_why(send):
    with pytest.raises(InstrumentUnavailable) as raised:
        send(instrument_id="k10", answers={})
    assert raised.value.status == "needs attestation"
    assert str(raised.value) == "k10 is not available to this clinic (needs attestation)."


def test_a_link_offers_its_battery_only(db_session, send):
    # The battery was checked against the clinic when the link was issued.
    with pytest.raises(InstrumentUnavailable, match="not part of this link"):
        send(offered=["gad7"])
    assert send(offered=["phq9", "gad7"]).created


# --- clock skew ------------------------------------------------------------------------------


def test_a_completion_time_a_little_ahead_of_the_clock_is_accepted(send):
    assert send(completed_dt=NOW + CLOCK_SKEW).created


def test_a_completion_time_further_ahead_is_refused(db_session, send):
    with pytest.raises(CompletedInFuture) as raised:
        send(completed_dt=NOW + CLOCK_SKEW + dt.timedelta(seconds=1))
    assert (raised.value.field, raised.value.code) == ("completed", "future")
    assert stored(db_session) == 0


def test_availability_is_checked_before_the_clock(send):
    with pytest.raises(InstrumentUnavailable):
        send(instrument_id="k10", answers={}, completed_dt=NOW + dt.timedelta(days=1))


# --- episode, appointment, answers -------------------------------------------------------------


def test_no_episode_is_refused(db_session, send):
    with pytest.raises(NoOpenEpisode):
        send(episode=None)
    assert stored(db_session) == 0


def test_an_appointment_of_another_episode_is_refused(db_session, episode, send, make_user,
                                                      make_client, make_episode):
    other = make_episode(make_client(make_user()))
    theirs = book_appointment(db_session, other, NOW)
    with pytest.raises(UnknownAppointment) as raised:
        send(appointment_id=theirs.id)
    assert raised.value.appointment_id == theirs.id and raised.value.field == "appointment"
    ours = book_appointment(db_session, episode, NOW)
    assert send(appointment_id=ours.id).administration.appointment_id == ours.id


def test_invalid_answers_name_each_item_and_store_nothing(db_session, send):
    with pytest.raises(InvalidAnswers) as raised:
        send(answers={**PHQ, "phq9_3": 7})
    assert [(e.item, e.code) for e in raised.value.errors] == [("phq9_3", "not_an_option")]
    assert stored(db_session) == 0


def test_answers_parsed_by_the_edge_are_taken_as_they_are(send):
    parsed = parse_answers(LIB.get("phq9"), PHQ)
    assert send(answers=parsed).administration.answers == parsed.as_json()


# --- idempotency -------------------------------------------------------------------------------


def test_the_same_key_and_answers_replay_the_stored_administration(db_session, send):
    first = send()
    again = send()
    assert first.created and not again.created
    assert again.administration.id == first.administration.id
    assert stored(db_session) == 1


def test_the_same_key_with_other_answers_is_a_conflict(db_session, send):
    send()
    with pytest.raises(IdempotencyConflict) as raised:
        send(answers={**PHQ, "phq9_1": 0})
    assert raised.value.field == "key" and "test:1" in str(raised.value)
    assert stored(db_session) == 1


def test_api_keys_are_per_token_and_random_without_a_header():
    assert api_key(1, "abc") == api_key(1, "abc") != api_key(2, "abc")
    assert api_key(1, "abc").startswith("api:") and len(api_key(1, "abc")) == 64
    assert api_key(1, None) != api_key(1, None)


def test_import_keys_follow_the_resource_id_and_the_client():
    assert import_key("C-1", "r1", 1, None) == import_key("C-1", "r1", 2, "other")
    assert import_key("C-1", "r1", 1, None) != import_key("C-2", "r1", 1, None)
    assert import_key("C-1", None, 1, "k").startswith("fhir-key:")
    assert import_key("C-1", None, 1, "k") != api_key(1, "k")  # sources never meet
    assert import_key("C-1", "", 1, None) != import_key("C-1", "", 1, None)


def test_link_keys_are_per_appointment_or_per_episode_and_day(db_session, episode):
    appointment = book_appointment(db_session, episode, NOW)
    booked, _ = issue_link(db_session, episode=episode, purpose="pre", now=NOW, library=LIB,
                           appointment=appointment)
    reissued, _ = issue_link(db_session, episode=episode, purpose="pre", now=NOW,
                             library=LIB, appointment=appointment)
    assert link_key(booked, "phq9") == link_key(reissued, "phq9") == (
        f"appointment:{appointment.id}:pre:phq9")
    bare, _ = issue_link(db_session, episode=episode, purpose="pre", now=NOW, library=LIB)
    assert link_key(bare, "gad7") == link_key_prefix(bare) + "gad7"
    assert link_key_prefix(bare).startswith(f"episode:{episode.id}:pre:")


def test_a_fhir_resource_is_found_again_by_its_key_or_its_exported_id(db_session, episode,
                                                                      send):
    phq = LIB.get("phq9")
    answers = parse_answers(phq, PHQ)
    key = import_key("C-1", "r1", 1, None)
    assert previous_import(db_session, client_id=episode.client_id, resource_id="r1",
                           key=key, instrument=phq, answers=answers) is None
    row = send(idempotency_key=key).administration
    for resource_id in ("r1", response_id(row.id)):
        found = previous_import(db_session, client_id=episode.client_id,
                                resource_id=resource_id, key=key, instrument=phq,
                                answers=answers)
        assert found is not None and found.id == row.id
    with pytest.raises(ImportConflict) as raised:
        previous_import(db_session, client_id=episode.client_id, resource_id="r1", key=key,
                        instrument=phq, answers=parse_answers(phq, {**PHQ, "phq9_1": 0}))
    assert isinstance(raised.value, IdempotencyConflict) and raised.value.field == "id"
    assert previous_import(db_session, client_id=episode.client_id, resource_id=None,
                           key=key, instrument=phq, answers=answers) is None
