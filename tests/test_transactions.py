"""One transaction per request, decided and ended at the edge (outcome.web.database).

- No view module calls ``commit()`` or ``rollback()``.
- GET, HEAD and OPTIONS begin as reads (``BEGIN DEFERRED`` on SQLite), other methods and
  views marked ``@writes`` as writes (``BEGIN IMMEDIATE``); a read that tries to write
  fails at once.
- A success (< 400) is committed, with its audit records; a failure keeps nothing but the
  records marked ``even_if_failed``.
- A commit that fails answers 503 and says nothing was stored, never 500.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from flask import Blueprint
from sqlalchemy import event
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from outcome import schema
from outcome.db import make_engine
from outcome.extensions import database
from outcome.models import AuditEvent
from outcome.models import Clinic
from outcome.web.database import ReadOnlyRequest
from outcome.web.database import audit_event
from outcome.web.database import db_session
from outcome.web.database import discard_changes
from outcome.web.database import writes
from outcome.web.security import csrf

ROOT = Path(__file__).resolve().parents[1]
# The edge itself; everything else under outcome/web is a view or a helper of views.
EDGE = {ROOT / "outcome" / "web" / "database.py"}


def test_no_view_commits_or_rolls_back():
    found = []
    for path in sorted((ROOT / "outcome" / "web").rglob("*.py")):
        if path in EDGE:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in {"commit", "rollback"}):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.func.attr}()")
    assert not found, "\n".join(found)


def _probe_routes(app):
    """Routes that do one thing each, on the test app."""
    bp = Blueprint("probe", __name__, url_prefix="/probe")

    @bp.route("/read")
    def read():
        return str(db_session().scalar(select(func.count()).select_from(Clinic)))

    @bp.route("/read-then-write")
    def read_then_write():
        db_session().add(Clinic(slug="sneaky", name="Written by a GET"))
        db_session().flush()
        return "wrote"

    @bp.route("/marked", methods=["GET"])
    @writes
    def marked():
        db_session().add(Clinic(slug="marked", name="Written by a marked GET"))
        audit_event(action="probe.marked", outcome="allowed", actor_kind="anonymous")
        return "wrote"

    @bp.route("/write/<int:status>", methods=["POST"])
    def write(status: int):
        db_session().add(Clinic(slug=f"probe-{status}", name="Probe"))
        db_session().flush()
        audit_event(action="probe.kept-with-change", outcome="allowed", actor_kind="anonymous")
        audit_event(action="probe.kept-always", outcome="denied", actor_kind="anonymous",
                    even_if_failed=True)
        return "done", status

    @bp.route("/discard", methods=["POST"])
    def discard():
        db_session().add(Clinic(slug="discarded", name="Probe"))
        discard_changes()
        audit_event(action="probe.discarded", outcome="error", actor_kind="anonymous",
                    even_if_failed=True)
        return "", 303, {"Location": "/"}

    @bp.route("/audited-read")
    def audited_read():
        audit_event(action="probe.read", outcome="allowed", actor_kind="anonymous")
        return str(db_session().scalar(select(func.count()).select_from(Clinic)))

    @bp.route("/unflushed-audited-read")
    def unflushed_audited_read():
        db_session().add(Clinic(slug="unflushed", name="Changed by a GET, never flushed"))
        audit_event(action="probe.unflushed", outcome="allowed", actor_kind="anonymous")
        return "read"

    csrf.exempt(bp)  # the probes test transactions, not forms
    app.register_blueprint(bp)


@pytest.fixture
def probe(app):
    _probe_routes(app)
    return app.test_client()


def _clinics(db_session, slug):
    return db_session.scalar(select(func.count()).select_from(Clinic).where(Clinic.slug == slug))


def _events(db_session, action):
    return db_session.scalar(select(func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action == action))


def test_a_read_request_cannot_write(probe, db_session):
    with pytest.raises(ReadOnlyRequest):
        probe.get("/probe/read-then-write")
    assert _clinics(db_session, "sneaky") == 0


def test_a_marked_get_writes_with_its_audit_record(probe, db_session):
    assert probe.get("/probe/marked").status_code == 200
    assert _clinics(db_session, "marked") == 1
    assert _events(db_session, "probe.marked") == 1


def test_a_success_is_committed_with_its_records(probe, db_session):
    assert probe.post("/probe/write/200").status_code == 200
    assert _clinics(db_session, "probe-200") == 1
    assert _events(db_session, "probe.kept-with-change") == 1
    assert _events(db_session, "probe.kept-always") == 1


@pytest.mark.parametrize("status", [400, 404, 422, 500])
def test_a_failure_keeps_only_the_records_marked_to_survive(probe, db_session, status):
    assert probe.post(f"/probe/write/{status}").status_code == status
    assert _clinics(db_session, f"probe-{status}") == 0
    assert _events(db_session, "probe.kept-with-change") == 0
    assert _events(db_session, "probe.kept-always") == 1


def test_discarded_changes_are_not_kept_whatever_the_status(probe, db_session):
    assert probe.post("/probe/discard").status_code == 303
    assert _clinics(db_session, "discarded") == 0
    assert _events(db_session, "probe.discarded") == 1


def test_a_read_requests_audit_record_is_written_after_the_read(probe, db_session):
    assert probe.get("/probe/audited-read").status_code == 200
    assert _events(db_session, "probe.read") == 1


def test_a_commit_that_fails_is_a_503_that_says_nothing_was_stored(probe, app, monkeypatch):
    from sqlalchemy.orm import Session

    def broken_commit(self):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Session, "commit", broken_commit)
    response = probe.post("/probe/write/200")
    assert response.status_code == 503
    assert "Nothing was changed" in response.get_data(as_text=True)
    assert "Content-Security-Policy" in response.headers  # still a page of ours


def test_a_read_that_changed_rows_without_flushing_is_refused_on_every_backend(
        probe, db_session):
    """On PostgreSQL a read's audit record goes in the read's own transaction (issue 21):
    a change the view made in memory must not ride along with it."""
    response = probe.get("/probe/unflushed-audited-read")
    assert response.status_code == 503
    assert _clinics(db_session, "unflushed") == 0
    assert _events(db_session, "probe.unflushed") == 0


@pytest.mark.sqlite_only
def test_a_write_that_cannot_get_sqlites_lock_in_time_is_a_503_not_a_500(
        app, probe, databases):
    """The write lock held by another connection past the busy timeout: the request is
    refused with the page that says nothing was changed, and nothing is stored."""
    url = databases.new_url()
    engine = make_engine(url, sqlite_busy_timeout_ms=50)
    schema.upgrade(engine)
    database(app).session_factory = sessionmaker(bind=engine, expire_on_commit=False)
    try:
        with engine.connect() as writer, writer.begin():  # BEGIN IMMEDIATE: holds the lock
            response = probe.post("/probe/write/200")
        assert response.status_code == 503
        assert "Nothing was changed" in response.get_data(as_text=True)
        assert response.headers["Retry-After"] == "5"
        with engine.connect() as reader:
            assert reader.scalar(select(func.count()).select_from(Clinic)
                                 .where(Clinic.slug == "probe-200")) == 0
        assert probe.post("/probe/write/200").status_code == 200  # once the lock is free
    finally:
        engine.dispose()


@pytest.mark.sqlite_only
def test_sqlite_reads_begin_deferred_and_writes_immediate(app, probe, databases):
    """On a real SQLite engine: the one place that decides is what the database sees."""
    url = databases.new_url()
    engine = make_engine(url)
    schema.upgrade(engine)
    begins: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _seen(_conn, _cursor, statement, *_args):
        if statement.startswith("BEGIN"):
            begins.append(statement)

    database(app).session_factory = sessionmaker(bind=engine, expire_on_commit=False)
    try:
        assert probe.get("/probe/read").status_code == 200
        assert begins == ["BEGIN DEFERRED"]
        begins.clear()
        assert probe.post("/probe/write/200").status_code == 200
        assert begins == ["BEGIN IMMEDIATE"]
        begins.clear()
        # A read's audit record: the read, then a short write of its own.
        assert probe.get("/probe/audited-read").status_code == 200
        assert begins == ["BEGIN DEFERRED", "BEGIN IMMEDIATE"]
        begins.clear()
        assert probe.get("/probe/marked").status_code == 200
        assert begins == ["BEGIN IMMEDIATE"]
        # A read runs beside a writer that holds the write lock (WAL), without waiting.
        with engine.connect() as writer, writer.begin():  # BEGIN IMMEDIATE: holds the lock
            assert probe.get("/probe/read").status_code == 200
    finally:
        engine.dispose()
