"""Application-wide behaviour: headers, error pages, configuration failures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from outcome.config import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_security_headers_on_every_page(client):
    response = client.get("/login")
    headers = response.headers
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert "'unsafe-inline'" not in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-store"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_unknown_page_is_a_friendly_404(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "Page not found" in response.get_data(as_text=True)


def test_wrong_method_is_a_405_page(client):
    response = client.get("/logout")
    assert response.status_code == 405
    assert "Not allowed" in response.get_data(as_text=True)


def test_production_without_secret_key_refuses_to_start(make_app, monkeypatch):
    monkeypatch.delenv("OUTCOME_SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="OUTCOME_SECRET_KEY is not set"):
        make_app(ENV="production", SECRET_KEY=None)


def test_secure_cookies_when_served_over_https(make_app):
    app = make_app(BASE_URL="https://outcome.example.org")
    assert app.config["SESSION_COOKIE_SECURE"] is True


def test_wsgi_with_a_bad_configuration_prints_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTCOME_")}
    env["OUTCOME_INSTANCE_PATH"] = str(tmp_path)
    result = subprocess.run([sys.executable, "-c", "import wsgi"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "outcome: configuration error: OUTCOME_SECRET_KEY is not set; run `outcome config "
        "init` to write a random one to the instance file, or set OUTCOME_SECRET_KEY to 32+ "
        "random characters."]
