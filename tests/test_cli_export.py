"""``outcome export --client CODE --fhir|--csv [--out FILE]``."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from sqlalchemy import select

from outcome.core.answers import parse_answers
from outcome.models import AuditEvent
from outcome.models import Episode
from outcome.services.exports import episodes_bundle
from outcome.services.submissions import submit_administration
from questionnaires.fhir import validate_resource
from questionnaires.loader import builtin_library

LIB = builtin_library()
T0 = dt.datetime(2026, 10, 5, 9, tzinfo=dt.UTC)


@pytest.fixture
def person(db_session, make_user, make_client, make_episode):
    """A client with two PHQ-9s and one GAD-7."""
    found = make_client(make_user(), name="Quentin Private")
    episode = make_episode(found)
    for week, (instrument_id, values) in enumerate([
            ("phq9", {f"phq9_{i}": 2 for i in range(1, 10)}),
            ("gad7", {f"gad7_{i}": 1 for i in range(1, 8)}),
            ("phq9", {f"phq9_{i}": 1 for i in range(1, 10)})]):
        instrument = LIB.get(instrument_id)
        when = T0 + dt.timedelta(weeks=week)
        submit_administration(db_session, episode=episode, instrument=instrument,
                              answers=parse_answers(instrument, values), completed_dt=when,
                              idempotency_key=f"cli-export:{week}", library=LIB, now=when)
    db_session.commit()
    return found


def exports(db_session, kind: str) -> list[AuditEvent]:
    return list(db_session.scalars(select(AuditEvent).where(
        AuditEvent.action == f"client.export.{kind}")))


def test_fhir_bundle_to_stdout(runner, person, db_session):
    result = runner.invoke(args=["export", "--client", person.code, "--fhir"])
    assert result.exit_code == 0, result.output
    bundle = json.loads(result.stdout)
    assert validate_resource(bundle) == []
    assert bundle["type"] == "collection"
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds == ["Patient"] + ["QuestionnaireResponse", "Observation"] * 3
    assert bundle["entry"][0]["resource"]["identifier"][0]["value"] == person.code
    codes = [e["resource"]["code"]["coding"][0]["code"] for e in bundle["entry"]
             if e["resource"]["resourceType"] == "Observation"]
    assert codes == ["44261-6", "70274-6", "44261-6"]
    assert "Quentin" not in result.stdout
    # The same Bundle as the client page's download, apart from its time.
    episodes = db_session.scalars(select(Episode).where(Episode.client_id == person.id)).all()
    expected = episodes_bundle(db_session, person, list(episodes), LIB, T0)
    assert {**bundle, "timestamp": None} == {**expected, "timestamp": None}
    [event] = exports(db_session, "fhir")
    assert (event.actor_kind, event.actor_label, event.client_id, event.outcome) == (
        "system", "outcome export", person.id, "allowed")


def test_fhir_bundle_to_a_file(runner, person, db_session, tmp_path):
    out = tmp_path / "export.fhir.json"
    result = runner.invoke(args=["export", "--client", person.code, "--fhir", "--out",
                                 str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    bundle = json.loads(out.read_text(encoding="utf-8"))
    assert validate_resource(bundle) == [] and len(bundle["entry"]) == 7
    assert len(exports(db_session, "fhir")) == 1


def test_csv_to_stdout_and_a_file(runner, person, db_session, tmp_path):
    result = runner.invoke(args=["export", "--client", person.code, "--csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 9 + 7 + 9
    assert {r["client_code"] for r in rows} == {person.code}
    assert [r["score"] for r in rows if r["item"] == "phq9_1"] == ["18", "9"]
    out = tmp_path / "export.csv"
    again = runner.invoke(args=["export", "--client", person.code, "--csv", "--out",
                                str(out)])
    assert again.exit_code == 0, again.output
    assert out.read_bytes() == result.stdout_bytes
    assert out.read_bytes().count(b"\r\n") == len(rows) + 1
    events = exports(db_session, "csv")
    assert len(events) == 2 and {e.actor_label for e in events} == {"outcome export"}


def test_an_unknown_client_or_no_format_is_an_error(runner, person, db_session, tmp_path):
    out = tmp_path / "never.json"
    result = runner.invoke(args=["export", "--client", "C-ZZZZZZ", "--fhir", "--out",
                                 str(out)])
    assert result.exit_code != 0 and "no client 'C-ZZZZZZ'" in result.output
    assert not out.exists()
    neither = runner.invoke(args=["export", "--client", person.code])
    assert neither.exit_code != 0 and "--fhir or --csv" in neither.output
    assert exports(db_session, "fhir") == exports(db_session, "csv") == []
