"""Licensed wording installed by upload (issue 17): checked as the command checks it,
problems said with where they are, a preview as the client sees it, installed (0600,
audited) only on confirmation; bad files are a 400 and nothing is installed."""

from __future__ import annotations

import base64
import io
import re
import stat
from pathlib import Path

import pytest
from sqlalchemy import select

from outcome.models import AuditEvent
from tests.conftest import csrf_token

OVERLAY = (b'overlay_for: srs_vas@1\nitems: {srs_1: "How well did we work together today?", '
           b'srs_2: "Did we talk about what you wanted?", srs_3: "Did the approach fit you?", '
           b'srs_4: "Overall, how was today?"}\n')


@pytest.fixture
def app(make_app, session_factory, clock, tmp_path):
    """The app with its own instruments folder (not yet created)."""
    return make_app(session_factory=session_factory, clock=clock,
                    INSTRUMENTS_DIR=str(tmp_path / "clinic-instruments"))


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def auth(client):
    from tests.conftest import AuthActions

    return AuthActions(client)


@pytest.fixture
def admin(make_user, db_session):
    user = make_user("admin")
    db_session.commit()
    return user


def folder(app) -> Path:
    return Path(app.config["INSTRUMENTS_DIR"])


def upload(client, content: bytes, name: str = "srs.yaml"):
    token = csrf_token(client.get("/admin/wording").get_data(as_text=True))
    return client.post("/admin/wording/preview", data={
        "csrf_token": token, "file": (io.BytesIO(content), name)},
        content_type="multipart/form-data")


def test_upload_preview_then_install(app, auth, client, db_session, admin):
    auth.login(admin.email)
    response = upload(client, OVERLAY)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "How well did we work together today?" in html  # the client's page
    assert "Install it" in html
    assert not (folder(app) / "srs.yaml").exists()  # a preview installs nothing
    content = re.search(r'name="content" value="([^"]+)"', html).group(1)
    assert base64.b64decode(content) == OVERLAY
    install = client.post("/admin/wording/install", data={
        "csrf_token": csrf_token(html), "name": "srs.yaml", "content": content})
    assert install.status_code == 302
    target = folder(app) / "srs.yaml"
    assert target.read_bytes() == OVERLAY
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert db_session.scalars(select(AuditEvent.outcome).where(
        AuditEvent.action == "instrument.wording.install")).all() == ["allowed"]


@pytest.mark.parametrize("content, name, where, what", [
    (OVERLAY.replace(b"srs_4", b"srs_9"), "srs.yaml", "srs_9", ""),
    (b"overlay_for: nosuch@1\nitems: {a: b}\n", "x.yaml", "overlay_for", "nosuch@1"),
    (b"overlay_for: [unclosed\n", "x.yaml", "", ""),
    (OVERLAY, "srs.txt", "file", ".yaml or .yml"),
    (OVERLAY, "../../etc/srs", "file", ".yaml or .yml"),
    (b"\xff\xfe not utf-8", "x.yaml", "file", "not UTF-8"),
    (b"", "x.yaml", "file", "empty"),
    (b"# " + b"x" * (256 * 1024), "x.yaml", "file", "larger than 256 KiB"),
])
def test_bad_files_are_a_400_saying_where_and_nothing_is_installed(
        app, auth, client, db_session, admin, content, name, where, what):
    auth.login(admin.email)
    response = upload(client, content, name)
    html = response.get_data(as_text=True)
    assert response.status_code == 400, html[:500]
    assert "Nothing was installed" in html
    assert where in html and what in html
    assert not folder(app).exists() or not list(folder(app).iterdir())
    assert db_session.scalars(select(AuditEvent.outcome).where(
        AuditEvent.action == "instrument.wording.install")).all() == ["error"]


def test_a_forged_confirmation_is_checked_again(app, auth, client, admin):
    auth.login(admin.email)
    token = csrf_token(client.get("/admin/wording").get_data(as_text=True))
    for content in ("not base64!", base64.b64encode(b"overlay_for: nosuch@1\n").decode()):
        response = client.post("/admin/wording/install", data={
            "csrf_token": token, "name": "srs.yaml", "content": content})
        assert response.status_code == 400
    assert not (folder(app) / "srs.yaml").exists()


def test_the_preview_questionnaire_stores_nothing(auth, client, admin):
    auth.login(admin.email)
    html = upload(client, OVERLAY).get_data(as_text=True)
    response = client.post("/admin/wording/preview", data={
        "csrf_token": csrf_token(html), "instrument": "srs_vas", "srs_1": "5"})
    assert response.status_code == 400
    assert "answers given there are not stored" in response.get_data(as_text=True)
