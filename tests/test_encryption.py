"""Encryption at rest (issue 20): the key ring, the column types, name search, `outcome
keys` (generate, status, rotate) and a backup/restore drill with encryption on.

Any other test file runs with encryption on when the run sets OUTCOME_ENCRYPTION_KEYS
(tests/conftest.py ``_key_ring``; docs/operators.md, "Encryption at rest").
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import stat

import pytest
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.orm import Session

from outcome import encryption
from outcome import schema
from outcome.config import ConfigError
from outcome.db import make_engine
from outcome.encryption import EncryptionError
from outcome.encryption import KeyRing
from outcome.extensions import database
from outcome.models import Administration
from outcome.models import AuditEvent
from outcome.models import Client
from outcome.models import Clinic
from outcome.models import Episode
from outcome.models import User
from outcome.models.base import Base
from outcome.ops import backup as ops_backup
from outcome.services import encryption_keys
from outcome.services.caseload import CaseloadFilter
from outcome.services.caseload import caseload
from outcome.services.caseload import past_clients
from outcome.services.goals import set_goals
from tests.helpers import answer
from tests.helpers import independent_figures
from tests.helpers import new_app

K1 = bytes(range(32))
K2 = bytes(range(32, 64))
RING1 = KeyRing((("k1", K1),))
RING21 = KeyRing((("k2", K2), ("k1", K1)))
CANARY_NAME = "Canaryname Zoë Ölander"
CANARY_GOAL = "Canarygoal sleep through the night"
CANARY_NOTE = "Canarynote called the crisis line"


def keys_setting(ring_keys) -> str:
    return ",".join(f"{k}:{base64.b64encode(v).decode()}" for k, v in ring_keys)


@pytest.fixture
def ring():
    """Install a ring for the test (the autouse fixture resets it afterwards)."""
    def use(r: KeyRing) -> KeyRing:
        encryption.install(r)
        return r
    return use


# --- the key ring ----------------------------------------------------------------------


def test_round_trip_under_a_random_nonce_in_the_self_describing_format():
    one, two = RING1.encrypt("Anna", "clients.name"), RING1.encrypt("Anna", "clients.name")
    assert one.startswith("enc:1:k1:") and one != two  # a fresh nonce each time
    assert "Anna" not in one
    assert len(base64.b64decode(one.split(":")[3])) == 12 + 4 + 16  # nonce, text, tag
    assert RING1.decrypt(one, "clients.name") == RING1.decrypt(two, "clients.name") == "Anna"
    assert RING21.decrypt(one, "clients.name") == "Anna"  # an older key still decrypts
    assert RING21.encrypt("x", "c.d").startswith("enc:1:k2:")  # the first is current


def test_plaintext_reads_as_itself_and_no_keys_means_plaintext():
    assert RING1.decrypt("plain words", "clients.name") == "plain words"
    off = KeyRing()
    assert not off.enabled and off.encrypt("Anna", "clients.name") == "Anna"
    assert off.name_search("Anna") is None


def test_a_missing_key_fails_naming_its_id():
    stored = RING21.encrypt("Anna", "clients.name")
    with pytest.raises(EncryptionError, match="key 'k2', which is not configured"):
        RING1.decrypt(stored, "clients.name")
    with pytest.raises(EncryptionError, match=r"'k2'.*configured keys: none"):
        KeyRing().decrypt(stored, "clients.name")


def test_a_wrong_key_under_the_same_id_fails_and_never_returns_garbage():
    stored = RING1.encrypt("Anna", "clients.name")
    impostor = KeyRing((("k1", K2),))
    with pytest.raises(EncryptionError, match="key 'k1' does not decrypt"):
        impostor.decrypt(stored, "clients.name")


def test_tampered_ciphertext_fails():
    stored = RING1.encrypt("Anna", "clients.name")
    raw = bytearray(base64.b64decode(stored.split(":")[3]))
    raw[-1] ^= 1
    tampered = "enc:1:k1:" + base64.b64encode(bytes(raw)).decode()
    for bad in (tampered, stored[:-4], "enc:1:k1:not base64!", "enc:1:k1:"):
        with pytest.raises(EncryptionError, match="'k1'"):
            RING1.decrypt(bad, "clients.name")


def test_a_value_copied_to_another_column_does_not_decrypt():
    stored = RING1.encrypt("Anna", "clients.name")
    with pytest.raises(EncryptionError, match=r"clients\.email"):
        RING1.decrypt(stored, "clients.email")


def test_keys_are_checked_at_start_up(tmp_path, database_url):
    assert [k for k, _ in encryption.parse_keys("# current\nk2:" + base64.b64encode(K2).decode()
                                                + "\n\nk1:" + base64.b64encode(K1).decode(),
                                                "f")] == ["k2", "k1"]
    bad = {"short": "k1:" + base64.b64encode(b"x" * 16).decode(),
           "base64": "k1:@@@", "shape": "k1", "twice": keys_setting([("k", K1), ("k", K2)]),
           "id": "a b:" + base64.b64encode(K1).decode()}
    for value in bad.values():
        with pytest.raises(ConfigError):
            new_app(database_url, ENCRYPTION_KEYS=value)
    key_file = tmp_path / "keys"
    key_file.write_text(keys_setting([("k1", K1)]) + "\n")
    key_file.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        new_app(database_url, ENCRYPTION_KEY_FILE=str(key_file))
    with pytest.raises(ConfigError, match="cannot be read"):
        new_app(database_url, ENCRYPTION_KEY_FILE=str(tmp_path / "missing"))
    key_file.chmod(0o600)
    app = new_app(database_url, ENCRYPTION_KEY_FILE=str(key_file))
    try:
        assert encryption.active().key_ids == ("k1",)
    finally:
        database(app).engine.dispose()


def test_name_tokens_are_normalised():
    assert encryption.name_tokens("Zoë O'Brien-SMITH 2nd") == ["zoe", "o", "brien", "smith", "nd"]
    assert encryption.name_tokens("Ångström") == encryption.name_tokens("angstrom")


# --- the column types --------------------------------------------------------------------


def raw(session: Session, sql: str, **params):
    return session.execute(text(sql), params).scalar_one()


def test_columns_are_stored_encrypted_and_read_back(db_session, make_user, make_client,
                                                    make_episode, clock, ring):
    ring(RING1)
    therapist = make_user()
    client = make_client(therapist, name=CANARY_NAME, email="zoe@example.org",
                         phone="+44 1234")
    episode = make_episode(client)
    set_goals(db_session, episode, [CANARY_GOAL], clock())
    answer(db_session, episode, [2])
    db_session.flush()
    for column in ("name", "email", "phone"):
        stored = raw(db_session, f"SELECT {column} FROM clients WHERE id = :i", i=client.id)
        assert stored.startswith("enc:1:k1:"), column
    assert raw(db_session, "SELECT description FROM goals WHERE episode_id = :e",
               e=episode.id).startswith("enc:1:k1:")
    answers = raw(db_session, "SELECT answers FROM administrations WHERE episode_id = :e",
                  e=episode.id)
    assert "enc:1:k1:" in str(answers) and "phq9_1" not in str(answers)
    db_session.expire_all()
    assert db_session.get(Client, client.id).name == CANARY_NAME
    assert db_session.get(Client, client.id).email == "zoe@example.org"
    administration = db_session.scalars(select(Administration)
                                        .where(Administration.episode_id == episode.id)).one()
    assert administration.answers["phq9_1"] == 2


def test_mixed_plaintext_and_ciphertext_rows_read(db_session, make_user, make_client, ring):
    therapist = make_user()
    plain = make_client(therapist, name="Plain Person")  # written with encryption off
    db_session.flush()
    ring(RING1)
    sealed = make_client(therapist, name="Sealed Person")
    db_session.flush()
    db_session.expire_all()
    assert raw(db_session, "SELECT name FROM clients WHERE id = :i", i=plain.id) \
        == "Plain Person"
    assert db_session.get(Client, plain.id).name == "Plain Person"
    assert db_session.get(Client, sealed.id).name == "Sealed Person"


def test_reading_without_the_key_fails_clearly(db_session, make_user, make_client, ring):
    ring(RING21)
    client = make_client(make_user(), name=CANARY_NAME)
    db_session.flush()
    db_session.expire_all()
    ring(RING1)
    with pytest.raises(EncryptionError, match=r"clients\.name.*key 'k2'") as caught:
        db_session.get(Client, client.id)
    assert "Canary" not in str(caught.value)


# --- search --------------------------------------------------------------------------------


@pytest.mark.parametrize("encrypted", [False, True], ids=["off", "on"])
def test_search_by_name(db_session, make_user, make_client, make_episode, ring, encrypted):
    if encrypted:
        ring(RING1)
    therapist = make_user()
    for name in ("Zoë Ölander", "Anna Berg", "anton chekhov", "Bernard Shaw"):
        make_episode(make_client(therapist, name=name))
    db_session.flush()

    def found(term):
        rows = caseload(db_session, therapist, filters=CaseloadFilter(search=term))
        return [r.name for r in rows]

    # In Python, by name (case folded), whatever is stored.
    assert found("") == ["Anna Berg", "anton chekhov", "Bernard Shaw", "Zoë Ölander"]
    assert found("Zoë") == ["Zoë Ölander"]
    assert found("ber") == ["Anna Berg", "Bernard Shaw"]  # a prefix of 3+ letters
    assert found("nonesuch") == []
    if encrypted:
        # Tokens in any order, case and accents ignored.
        assert found("zoe olander") == found("ÖLANDER ZOË") == ["Zoë Ölander"]
        assert found("Shaw Bernard") == ["Bernard Shaw"]
        assert found("nna") == []  # not a substring inside a token: hashes of prefixes only
        assert found("an") == []  # under 3 letters: whole tokens only
        assert found("enc") == []  # the ciphertext itself is never matched
    else:
        assert found("nna") == ["Anna Berg"]  # as before: any substring
    assert [r.name for r in past_clients(db_session, therapist, search="ber")] == []


def test_renaming_a_client_updates_the_search_hashes(db_session, make_user, make_client,
                                                    make_episode, ring):
    ring(RING1)
    therapist = make_user()
    client = make_client(therapist, name="Anna Berg")
    make_episode(client)
    db_session.flush()
    before = client.name_search
    assert before and "anna" not in before.lower()
    client.name = "Maria Lund"
    db_session.flush()
    assert client.name_search != before
    rows = caseload(db_session, therapist, filters=CaseloadFilter(search="lund"))
    assert [r.name for r in rows] == ["Maria Lund"]
    assert caseload(db_session, therapist, filters=CaseloadFilter(search="anna")) == []


def test_search_keeps_working_during_a_rotation(db_session, make_user, make_client,
                                                make_episode, ring):
    ring(RING1)
    therapist = make_user()
    make_episode(make_client(therapist, name="Anna Berg"))
    db_session.flush()
    ring(RING21)  # new current key, the client's hashes still under k1
    rows = caseload(db_session, therapist, filters=CaseloadFilter(search="berg"))
    assert [r.name for r in rows] == ["Anna Berg"]


# --- outcome keys ------------------------------------------------------------------------


@pytest.fixture
def keyed_runner(make_app, session_factory, clock, tmp_path):
    """``keyed_runner(ring_keys)``: a CLI runner of an app configured with those keys."""
    from outcome.cli.commands import all_commands

    def make(ring_keys):
        app = make_app(instance_path=tmp_path / "instance", session_factory=session_factory,
                       clock=clock, ENCRYPTION_KEYS=keys_setting(ring_keys))
        for command in all_commands():
            app.cli.add_command(command)
        return app.test_cli_runner()
    return make


def test_keys_generate_prints_or_writes_a_private_key_file(runner, tmp_path):
    printed = runner.invoke(args=["keys", "generate", "--id", "first"])
    assert printed.exit_code == 0, printed.output
    key_id, _, key = printed.output.strip().partition(":")
    assert key_id == "first" and len(base64.b64decode(key)) == 32
    path = tmp_path / "keys"
    for key_id in ("k1", "k2"):
        result = runner.invoke(args=["keys", "generate", "--id", key_id, "--file", str(path)])
        assert result.exit_code == 0, result.output
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    ring = encryption.key_ring_from_config({"ENCRYPTION_KEY_FILE": str(path)})
    assert ring.key_ids == ("k2", "k1")  # the newest first: it is current
    again = runner.invoke(args=["keys", "generate", "--id", "k1", "--file", str(path)])
    assert again.exit_code == 2 and "already has a key 'k1'" in again.output
    bad = runner.invoke(args=["keys", "generate", "--id", "no good"])
    assert bad.exit_code == 2


def _world(db_session, make_user, make_client, make_episode, clock, n=5):
    therapist = make_user()
    clients = [make_client(therapist, name=f"Person {i}") for i in range(n)]
    for client in clients:
        set_goals(db_session, make_episode(client), [CANARY_GOAL], clock())
    db_session.commit()
    return clients


def test_keys_status_and_rotate(keyed_runner, db_session, make_user, make_client, make_episode,
                                clock, ring, monkeypatch):
    plain = _world(db_session, make_user, make_client, make_episode, clock, n=3)
    ring(RING1)
    _world(db_session, make_user, make_client, make_episode, clock, n=4)
    runner = keyed_runner([("k2", K2), ("k1", K1)])
    status = runner.invoke(args=["keys", "status"])
    assert status.exit_code == 0, status.output
    assert "clients.name: (plaintext): 3, k1: 4" in status.output
    assert "run `outcome keys rotate`" in status.output

    # Interrupted in the goals, after their first batch: what was done stays done, and the
    # run is audited.
    real = encryption_keys.rotate_batch

    def flaky(session, table, column, is_json, *, after_id, **kwargs):
        if table == "goals" and after_id > 0:
            raise KeyboardInterrupt
        return real(session, table, column, is_json, after_id=after_id, **kwargs)

    monkeypatch.setattr(encryption_keys, "rotate_batch", flaky)
    stopped = runner.invoke(args=["keys", "rotate", "--batch-size", "2"])
    assert stopped.exit_code != 0
    monkeypatch.setattr(encryption_keys, "rotate_batch", real)
    census = encryption_keys.key_census(db_session)
    assert census["clients.name"] == {"k2": 7}  # "clients" comes before "goals"
    assert census["goals.description"]["k2"] == 2  # one batch of two

    done = runner.invoke(args=["keys", "rotate", "--batch-size", "2"])
    assert done.exit_code == 0, done.output
    assert "already done" in done.output
    census = encryption_keys.key_census(db_session)
    for column, counts in census.items():
        assert set(counts) <= {"k2"}, (column, counts)
    assert census["clients.name"]["k2"] == 7 and census["goals.description"]["k2"] == 7
    db_session.expire_all()
    assert db_session.get(Client, plain[0].id).name == "Person 0"  # read under k2
    again = runner.invoke(args=["keys", "rotate"])
    assert "0 values rewritten to k2" in again.output

    events = db_session.scalars(select(AuditEvent).where(AuditEvent.action == "encryption.rotate")
                                .order_by(AuditEvent.id)).all()
    assert [e.outcome for e in events] == ["error", "allowed", "allowed"]
    assert all(e.actor_kind == "system" and e.object_id == "k2" for e in events)
    assert "interrupted" in events[0].actor_label and "Person" not in events[0].actor_label
    assert "0 rewritten" in events[2].actor_label

    # Search works on the rotated names (hashes recomputed under k2).
    encryption.install(KeyRing((("k2", K2),)))
    therapist = db_session.get(Client, plain[0].id).therapist
    rows = caseload(db_session, therapist, filters=CaseloadFilter(search="person"))
    assert len(rows) == 3

    # Back to plaintext, before switching encryption off.
    runner = keyed_runner([("k2", K2)])
    out = runner.invoke(args=["keys", "rotate", "--decrypt"])
    assert out.exit_code == 0, out.output
    census = encryption_keys.key_census(db_session)
    assert census["clients.name"] == {"(plaintext)": 7}
    assert raw(db_session, "SELECT count(*) FROM clients WHERE name_search IS NOT NULL") == 0


def test_keys_status_fails_when_a_needed_key_is_missing(keyed_runner, db_session, make_user,
                                                        make_client, ring):
    ring(RING21)
    make_client(make_user(), name="Under K2")
    db_session.commit()
    runner = keyed_runner([("k1", K1)])
    status = runner.invoke(args=["keys", "status"])
    assert status.exit_code == 1
    assert "key(s) k2, which are not configured" in status.output
    rotate = runner.invoke(args=["keys", "rotate"])
    assert rotate.exit_code == 1 and "'k2'" in rotate.output


def test_the_client_record_and_caseload_pages_with_encryption_on(make_app, session_factory,
                                                                 clock, tmp_path, team,
                                                                 db_session):
    from tests.conftest import TEAM_CLIENT_GOAL
    from tests.conftest import AuthActions
    app = make_app(instance_path=tmp_path / "instance", session_factory=session_factory,
                   clock=clock, ENCRYPTION_KEYS=keys_setting([("k1", K1)]))
    red = team["red"]
    red.name = NEW_NAME = "Private Newname"  # written under k1
    db_session.commit()
    assert raw(db_session, "SELECT name FROM clients WHERE id = :i",
               i=red.id).startswith("enc:1:k1:")
    client = app.test_client()
    AuthActions(client).login(team["a"].email)
    page = client.get("/")
    assert page.status_code == 200 and NEW_NAME in page.get_data(as_text=True)
    record = client.get(f"/clients/{red.code}")
    assert record.status_code == 200, record.status_code
    assert NEW_NAME in record.get_data(as_text=True)
    assert TEAM_CLIENT_GOAL in record.get_data(as_text=True)  # written before: plaintext
    found = client.get("/?q=newname")
    assert found.status_code == 200 and NEW_NAME in found.get_data(as_text=True)


# --- backup and restore with encryption on ---------------------------------------------------


# One canary per encrypted column: the drill proves none of them leaves the database in
# plain text (review finding 12).
CANARIES = {
    "clients.name": CANARY_NAME, "clients.email": "canarymail@example.org",
    "clients.phone": "+44 7700 900777", "goals.description": CANARY_GOAL,
    "alerts.acknowledgement_note": CANARY_NOTE, "alerts.detail": "Canarydetail",
    "episode_signals.state": "Canarystate", "administrations.answers": "Canaryanswer",
    "questionnaire_links.draft": "Canarydraft", "action_plans.steps": "Canarystep",
    "action_plans.note": "Canaryplannote", "action_plans.closing_note": "Canaryclosing",
    "supervision_reviews.note": "Canaryreview", "totp_secrets.secret": "CANARYTOTPSECRETXYZ",
    "outbound_emails.to_address": "canaryqueue@example.org",
}


def _seed_canaries(engine) -> dict:
    from outcome.models import ActionPlan
    from outcome.models import Alert
    from outcome.models import EpisodeSignal
    from outcome.models import OutboundEmail
    from outcome.models import QuestionnaireLink
    from outcome.models import SupervisionReview
    from outcome.models import TotpSecret
    now = dt.datetime(2026, 11, 16, 9, 0, tzinfo=dt.UTC)
    c = CANARIES
    with Session(engine) as session:
        clinic = Clinic(slug="canary", name="Canary Clinic")
        session.add(clinic)
        session.flush()
        user = User(clinic_id=clinic.id, email="t@canary.example.org", display_name="T",
                    is_therapist=True)
        session.add(user)
        session.flush()
        client = Client(clinic_id=clinic.id, code="C-CANARY2", name=c["clients.name"],
                        email=c["clients.email"], phone=c["clients.phone"],
                        therapist_id=user.id)
        session.add(client)
        session.flush()
        episode = Episode(clinic_id=clinic.id, client_id=client.id, therapist_id=user.id,
                          opened_on=dt.date(2026, 11, 1))
        session.add(episode)
        session.flush()
        set_goals(session, episode, [c["goals.description"]], now)
        answer(session, episode, [1])
        administration = session.scalars(select(Administration)
                                         .where(Administration.episode_id == episode.id)).one()
        administration.answers = {**administration.answers,
                                  "free_text": c["administrations.answers"]}
        signal = session.get(EpisodeSignal, episode.id) or EpisodeSignal(
            episode_id=episode.id, colour="white", urgency=6)
        signal.state = {"critical": [{"label": c["episode_signals.state"]}]}
        session.add(signal)
        plan = ActionPlan(episode_id=episode.id, created_by_id=user.id, created_dt=now,
                          steps=[c["action_plans.steps"]], note=c["action_plans.note"],
                          review_on=dt.date(2026, 12, 1), status="closed", closed_dt=now,
                          closed_by_id=user.id, closing_note=c["action_plans.closing_note"])
        session.add(plan)
        session.flush()
        session.add_all([
            Alert(episode_id=episode.id, kind="manual", status="acknowledged",
                  acknowledged_dt=now, acknowledged_by_id=user.id,
                  acknowledgement_note=c["alerts.acknowledgement_note"],
                  detail={"params": {"label": c["alerts.detail"]}}),
            QuestionnaireLink(episode_id=episode.id, purpose="pre", token_hash="a" * 64,
                              valid_from_dt=now, valid_until_dt=now + dt.timedelta(days=1),
                              draft={"phq9": {"note": c["questionnaire_links.draft"]}}),
            SupervisionReview(episode_id=episode.id, plan_id=plan.id, supervisor_id=user.id,
                              note=c["supervision_reviews.note"]),
            TotpSecret(user_id=user.id, secret=c["totp_secrets.secret"]),
            OutboundEmail(clinic_id=clinic.id, kind="link", dedupe_key="canary",
                          to_address=c["outbound_emails.to_address"], subject="s",
                          body_text="b", next_attempt_dt=now),
        ])
        session.commit()
        return {"client": client.id}


def _no_canary_in(data: bytes) -> None:
    for column, canary in CANARIES.items():
        assert canary.encode() not in data, column
        assert canary[:10].encode() not in data, column
    assert b"Canary" not in data.replace(b"Canary Clinic", b"")


def _content_with_the_key(engine) -> dict[str, list[str]]:
    """Per mapped table, its rows as read through the models' column types (encrypted
    columns decrypted with the installed ring), sorted as text."""
    with engine.connect() as conn:
        return {name: sorted(repr(tuple(row)) for row in conn.execute(select(table)))
                for name, table in sorted(Base.metadata.tables.items())}


def _plain_sql(backup_file) -> bytes:
    """A PostgreSQL backup (pg_dump custom format, compressed) as plain SQL: grepping the
    archive itself could never find a canary."""
    import subprocess
    return subprocess.run(["pg_restore", "-f", "-", str(backup_file)], check=True,
                          capture_output=True).stdout


@pytest.mark.slow
def test_backup_and_restore_drill_with_encryption_on(databases, tmp_path, ring):
    ring(RING1)
    source_url, target_url = databases.new_url(), databases.new_url()
    source = make_engine(source_url)
    target = make_engine(target_url)
    try:
        schema.upgrade(source)
        ids = _seed_canaries(source)
        if source.dialect.name == "sqlite":
            path = source.url.database
            source.dispose()  # checkpoint the WAL into the file
            with open(path, "rb") as fh:
                _no_canary_in(fh.read())
        out = tmp_path / "backup.out"
        ops_backup.backup(source, out)
        if source.dialect.name == "postgresql":
            dump = _plain_sql(out)
            assert b"C-CANARY2" in dump  # the conversion shows the rows: the check can fail
            _no_canary_in(dump)
        else:
            assert b"C-CANARY2" in out.read_bytes()
            _no_canary_in(out.read_bytes())

        ops_backup.restore(target, out)
        # Every table as stored (ciphertext and all) is copied exactly, figures computed by
        # reflection as tests/test_backup.py does without encryption...
        figures = independent_figures(target_url)
        assert figures == independent_figures(source_url)
        # ...and every table read with the key, every row decrypted, equals the source's.
        restored = _content_with_the_key(target)
        assert set(restored) == set(figures) - {"alembic_version"}  # every table
        assert restored == _content_with_the_key(source)
        for column, canary in CANARIES.items():  # read as plaintext: the check can fail
            assert any(canary in row for row in restored[column.partition(".")[0]]), column
        with Session(target) as session:
            client = session.get(Client, ids["client"])
            assert client.name == CANARY_NAME
            assert [g.description for e in client.episodes for g in e.goals] == [CANARY_GOAL]
            census = encryption_keys.key_census(session)
        for column in CANARIES:
            assert census[column]["k1"] >= 1, column
        assert all(set(counts) <= {"k1"} for counts in census.values()), census

        ring(KeyRing())  # the key absent: unreadable ciphertext, and a clear failure
        with Session(target) as session:
            for sql in ("SELECT name FROM clients", "SELECT description FROM goals",
                        "SELECT acknowledgement_note FROM alerts"):
                value = session.execute(text(sql)).scalar_one()
                assert value.startswith("enc:1:k1:") and "Canary" not in value
            with pytest.raises(EncryptionError, match="key 'k1', which is not configured"):
                session.get(Client, ids["client"])
        with target.connect() as conn:  # every encrypted column, not only the canaries'
            for name in census:
                if not census[name]:
                    continue
                table, _, column = name.partition(".")
                with pytest.raises(EncryptionError, match="key 'k1', which is not configured"):
                    conn.execute(select(Base.metadata.tables[table].c[column])).all()
    finally:
        source.dispose()
        target.dispose()


# --- user text that looks like a ciphertext (review finding 10) -------------------------------


def test_plain_text_starting_like_a_ciphertext_is_escaped_and_reads_back():
    off = KeyRing()
    for value in ("enc:1:x:Joke", "enc:0:already", "enc:", "encore"):
        stored = off.encrypt(value, "clients.name")
        assert off.decrypt(stored, "clients.name") == value
        assert RING1.decrypt(stored, "clients.name") == value
        assert encryption.stored_key_id(stored) is None
    assert off.encrypt("encore", "clients.name") == "encore"  # only "enc:" is escaped
    assert off.encrypt("enc:1:x:Joke", "clients.name") == "enc:0:enc:1:x:Joke"


@pytest.mark.parametrize("encrypted", [False, True], ids=["off", "on"])
def test_a_client_named_like_a_ciphertext_reads_and_rotates(db_session, make_user, make_client,
                                                            ring, encrypted):
    if encrypted:
        ring(RING1)
    therapist = make_user()
    client = make_client(therapist, name="enc:1:x:Joke", email="enc:1:k1:bogus")
    db_session.flush()
    db_session.expire_all()
    again = db_session.get(Client, client.id)
    assert again.name == "enc:1:x:Joke" and again.email == "enc:1:k1:bogus"
    census = encryption_keys.key_census(db_session)
    assert census["clients.name"][encryption_keys.PLAINTEXT if not encrypted else "k1"] >= 1
    for decrypt in (False, True):
        for table, column, is_json in encryption_keys.encrypted_columns():
            encryption_keys.rotate_batch(db_session, table, column, is_json, after_id=0,
                                         limit=1000, decrypt=decrypt)
        db_session.expire_all()
        assert db_session.get(Client, client.id).name == "enc:1:x:Joke"


@pytest.mark.parametrize("encrypted", [False, True], ids=["off", "on"])
def test_a_json_value_shaped_like_an_envelope_reads_back(db_session, make_user, make_client,
                                                         make_episode, ring, encrypted):
    from outcome.models import Alert
    if encrypted:
        ring(RING1)
    therapist = make_user()
    episode = make_episode(make_client(therapist))
    looks_sealed = {"enc": "enc:1:k1:bogus"}
    alert = Alert(episode_id=episode.id, kind="manual", status="acknowledged",
                  acknowledged_dt=dt.datetime(2026, 11, 16, tzinfo=dt.UTC),
                  acknowledged_by_id=therapist.id, acknowledgement_note="enc:1:k1:note")
    db_session.add(alert)
    answer(db_session, episode, [1])
    administration = db_session.scalars(select(Administration)
                                        .where(Administration.episode_id == episode.id)).one()
    administration.answers = looks_sealed
    db_session.flush()
    db_session.expire_all()
    assert db_session.get(Administration, administration.id).answers == looks_sealed
    assert db_session.get(Alert, alert.id).acknowledgement_note == "enc:1:k1:note"
    encryption_keys.rotate_batch(db_session, "administrations", "answers", True, after_id=0,
                                 limit=1000, decrypt=True)
    db_session.expire_all()
    assert db_session.get(Administration, administration.id).answers == looks_sealed


# --- the critical answer with encryption on (review finding 8) ------------------------------


def _all_stored_text(session: Session) -> str:
    from outcome.models.base import Base
    rows = []
    for table in Base.metadata.sorted_tables:
        rows += [repr(tuple(row)) for row in session.execute(text(f"SELECT * FROM {table.name}"))]
    return "\n".join(rows)


def test_no_critical_answer_in_plain_text_with_encryption_on(db_session, make_user, make_client,
                                                             make_episode, ring):
    from outcome.models import Alert
    from outcome.models import EpisodeSignal
    from outcome.services.signals import recompute_signals
    from tests.helpers import LIB
    from tests.helpers import T0
    ring(RING1)
    episode = make_episode(make_client(make_user()))
    answer(db_session, episode, [1, 1], item9=3)
    recompute_signals(db_session, LIB, T0 + dt.timedelta(weeks=2))
    db_session.flush()
    alert = db_session.scalars(select(Alert).where(Alert.episode_id == episode.id,
                                                   Alert.kind == "critical_item")).one()
    assert "Nearly every day" in repr(alert.detail)  # still readable through the model
    state = db_session.get(EpisodeSignal, episode.id).state
    assert state["critical"], state
    for sql in ("SELECT detail FROM alerts", "SELECT state FROM episode_signals"):
        for (value,) in db_session.execute(text(sql)):
            assert "enc:1:k1:" in str(value), sql
    stored = _all_stored_text(db_session)
    for plain in ("Nearly every day", "'answer': 3", '"answer": 3', '"answer":3',
                  '"observed": 3', "'observed': 3"):
        assert plain not in stored, plain


# --- the mail queue's addresses (review finding 9) -------------------------------------------


def test_queued_mail_addresses_are_encrypted(db_session, make_user, ring):
    from outcome.models import OutboundEmail
    from outcome.services.mail import queue_email
    ring(RING1)
    user = make_user()
    address = "canary.mailbox@example.org"
    queue_email(db_session, clinic_id=user.clinic_id, kind="link", dedupe_key="link:canary",
                to_address=address, subject="s", body="b",
                now=dt.datetime(2026, 11, 16, tzinfo=dt.UTC))
    db_session.flush()
    stored = raw(db_session, "SELECT to_address FROM outbound_emails WHERE dedupe_key = :k",
                 k="link:canary")
    assert stored.startswith("enc:1:k1:") and "canary" not in stored
    db_session.expire_all()
    email = db_session.scalars(select(OutboundEmail)
                               .where(OutboundEmail.dedupe_key == "link:canary")).one()
    assert email.to_address == address


def test_sqlite_overwrites_deleted_content(tmp_path):
    """Replaced plaintext does not linger in free pages of the SQLite file (finding 13)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
    finally:
        engine.dispose()
