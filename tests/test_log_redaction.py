"""No link token or API secret in any log line (issue 16, finding 11).

A canary token is made to fail at ``/q/<token>`` in every way we know (unknown, used, a
malformed request line, an exception inside the view from a broken database), in the app
in-process and in a real ``outcome serve``; no line of any log, stdout or stderr may hold
the token or a long prefix of it, nor an API secret.
"""

from __future__ import annotations

import io
import logging
import secrets
import socket
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from outcome.db import transaction
from outcome.log_redaction import redact
from outcome.models import QuestionnaireLink
from outcome.services.links import hash_token
from outcome.services.links import issue_link
from questionnaires.loader import builtin_library
from tests.test_concurrency import Server
from tests.test_concurrency import setup_clinic  # noqa: F401 (a fixture used below)

LIB = builtin_library()
PREFIX = 16  # a "long prefix": this many leading characters of a 43-character token


def leaks(text_: str, *secrets_: str) -> list[str]:
    """The lines of ``text_`` that hold one of ``secrets_`` or its long prefix."""
    return [line for line in text_.splitlines()
            if any(s[:PREFIX] in line for s in secrets_)]


# --- the function -------------------------------------------------------------------------


@pytest.mark.no_database
@pytest.mark.parametrize(("raw", "clean"), [
    ("GET /q/AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-abcd HTTP/1.1",
     "GET /q/[token] HTTP/1.1"),
    ("Exception on /q/short-but-secret0 [GET]", "Exception on /q/[token] [GET]"),
    ("GET /q/support HTTP/1.1", "GET /q/support HTTP/1.1"),
    ("GET /q/ HTTP/1.1", "GET /q/ HTTP/1.1"),
    ("Bearer oc_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-abcd", "Bearer oc_[secret]"),
    ("token oc_AbCdEfG shown", "token oc_AbCdEfG shown"),  # the public 10-character prefix
    ("doc_string_of_some_long_python_name_here", "doc_string_of_some_long_python_name_here"),
    ("hash 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 kept",
     "hash 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 kept"),
    ("param ('Zx9-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_k',)", "param ('[token]',)"),
])
def test_redact(raw, clean):
    assert redact(raw) == clean


# --- in-process: every logger and handler of the app --------------------------------------


@pytest.fixture
def captured(capsys):
    """Everything logged at any level to the root logger, plus stdout and stderr."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)

    def read() -> str:
        out, err = capsys.readouterr()
        return stream.getvalue() + out + err

    yield read
    root.removeHandler(handler)
    root.setLevel(level)


def test_no_token_in_the_apps_logs_when_a_link_fails(app, client, db_session, clock,
                                                      make_user, make_client, make_episode,
                                                      monkeypatch, captured):
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: logged, answered 500
    episode = make_episode(make_client(make_user()))
    link, used = issue_link(db_session, episode=episode, purpose="pre", now=clock(),
                            library=LIB)
    link.used_dt = clock()
    db_session.commit()
    unknown = secrets.token_urlsafe(32)
    assert client.get(f"/q/{unknown}").status_code == 404
    assert client.get(f"/q/{used}").status_code == 410

    def broken(session, token=None, **_ignored):  # a database error that names the token
        raise OperationalError("SELECT * FROM questionnaire_links WHERE token = ?",
                               (token,), Exception(f"database is locked ({token})"))

    # The link's look-up with its visit's rows (issue 21: one statement) fails.
    monkeypatch.setattr("outcome.web.questionnaire._load_visit", broken)
    exploding = secrets.token_urlsafe(32)
    assert client.get(f"/q/{exploding}").status_code == 500

    secret = "oc_" + secrets.token_urlsafe(32)
    log = logging.getLogger("outcome.web")
    log.warning("request for /q/%s with Bearer %s", unknown, secret)
    # The development server's request line (werkzeug's logger, as `flask run` writes it).
    logging.getLogger("werkzeug").info('127.0.0.1 - - "%s" 404 -', f"GET /q/{used} HTTP/1.1")
    try:
        raise RuntimeError(f"failed on {secret} at /q/{unknown}")
    except RuntimeError:
        log.exception("unexpected")
        logging.getLogger("flask.app").error("again", exc_info=True, stack_info=True)
    output = captured()
    assert "Exception on /q/[token] [GET]" in output  # the 500 was logged, redacted
    assert "OperationalError" in output and "oc_[secret]" in output
    assert not leaks(output, unknown, used, exploding, secret), leaks(
        output, unknown, used, exploding, secret)


def test_a_handler_made_after_the_app_still_gets_clean_records(app, captured):
    token = secrets.token_urlsafe(32)
    late = io.StringIO()
    handler = logging.StreamHandler(late)  # e.g. an operator's logging configuration
    logger = logging.getLogger("gunicorn.error.canary")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.error("Error handling request /q/%s", token)
    finally:
        logger.removeHandler(handler)
    assert late.getvalue().strip() == "Error handling request /q/[token]"


# --- a real server: gunicorn's error and access logs, stdout and stderr ---------------------


def _raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.slow
def test_no_token_in_any_log_of_outcome_serve(setup_clinic, tmp_path):  # noqa: F811
    setup = setup_clinic(clients=2, links=True)
    used, broken = setup.link_tokens
    unknown = secrets.token_urlsafe(32)
    with transaction(setup.factory) as session:
        session.query(QuestionnaireLink).filter_by(token_hash=hash_token(used)).update(
            {"used_dt": QuestionnaireLink.created_dt})
    folder = tmp_path / "server"
    with Server(setup.url, folder, workers=2) as server:
        assert server.request("GET", f"/q/{unknown}").status == 404
        assert server.request("GET", f"/q/{used}").status == 410
        headers = {"Authorization": f"Bearer {setup.secret}x", "Referer": f"/q/{unknown}"}
        assert server.request("GET", f"/api/v1/clients?next=/q/{unknown}",
                              headers=headers).status == 401
        # A request line gunicorn cannot parse, and one with the secret in the address.
        _raw(server.port, f"GET /q/{unknown} HTTP/1.1 extra\r\n\r\n".encode())
        server.request("GET", f"/api/v1/{setup.secret}")
        # An exception inside the view: the table of links is gone.
        with setup.factory() as session:
            session.execute(text("ALTER TABLE questionnaire_links RENAME TO links_gone"))
            session.commit()
        try:
            assert server.request("GET", f"/q/{broken}").status == 500
            time.sleep(0.5)  # let the workers write their logs
        finally:
            with setup.factory() as session:
                session.execute(text("ALTER TABLE links_gone RENAME TO questionnaire_links"))
                session.commit()
    output = "".join(path.read_text(errors="replace") for path in sorted(folder.rglob("*"))
                     if path.is_file() and path.suffix == ".log")
    assert "/q/[token]" in output and "Traceback" in output, output[-3000:]
    found = leaks(output, unknown, used, broken, setup.secret)
    assert not found, "\n".join(found)
