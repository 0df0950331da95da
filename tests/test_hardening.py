"""Hardening (issue 9): security headers on every response, cookies over TLS, no inline
script or style anywhere, and no clinical content or secret in any log line."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from tests.conftest import TEST_PASSWORD
from tests.conftest import csrf_token

ROOT = Path(__file__).resolve().parent.parent
# One of each kind of response: pages, the client flow, API and FHIR (JSON, problems,
# OperationOutcome), router errors, static files.
PATHS = ("/", "/login", "/healthz", "/q/", "/q/not-a-token", "/clients/C-ZZZZZZ",
         "/admin/", "/api/v1/openapi.json", "/api/v1/clients", "/api/v1/nothing",
         "/fhir/metadata", "/fhir/Questionnaire/phq9", "/no-such-page",
         "/static/outcome.css")


def check_headers(response, *, tls: bool) -> list[str]:
    headers, problems = response.headers, []
    csp = headers.get("Content-Security-Policy", "")
    if "frame-ancestors 'none'" not in csp or "unsafe-inline" in csp or \
            "script-src 'self'" not in csp:
        problems.append(f"CSP {csp!r}")
    if headers.get("X-Content-Type-Options") != "nosniff":
        problems.append("no nosniff")
    if headers.get("Referrer-Policy") != "no-referrer":
        problems.append("referrer policy")
    static = response.request.path.startswith("/static/")
    if not static and headers.get("Cache-Control") != "no-store":
        problems.append(f"Cache-Control {headers.get('Cache-Control')!r}")
    hsts = headers.get("Strict-Transport-Security")
    if tls and (not hsts or "max-age=63072000" not in hsts):
        problems.append(f"HSTS {hsts!r} over TLS")
    if not tls and hsts:
        problems.append("HSTS over plain HTTP")
    return problems


@pytest.mark.parametrize("path", PATHS)
def test_every_kind_of_response_has_the_headers(client, path):
    response = client.get(path)
    assert response.status_code < 500
    assert check_headers(response, tls=False) == []


def test_over_tls_hsts_and_secure_cookies(make_app, session_factory, make_user, db_session):
    app = make_app(session_factory=session_factory, BASE_URL="https://outcome.example.org")
    user = make_user()
    db_session.commit()
    web = app.test_client()
    for path in PATHS:
        response = web.get(path, base_url="https://outcome.example.org")
        assert check_headers(response, tls=True) == [], path
    page = web.get("/login", base_url="https://outcome.example.org")
    # Over HTTPS Flask-WTF also checks the Referer is this site, as a browser sends it.
    signed_in = web.post("/login", base_url="https://outcome.example.org", headers={
        "Referer": "https://outcome.example.org/login"}, data={
        "csrf_token": csrf_token(page.get_data(as_text=True)), "email": user.email,
        "password": TEST_PASSWORD})
    assert signed_in.status_code == 302
    cookie = signed_in.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_behind_a_proxy_the_forwarded_scheme_counts(make_app):
    app = make_app(RATELIMIT_ENABLED=True, PROXY_HOPS=1)
    web = app.test_client()
    forwarded = web.get("/healthz", headers={"X-Forwarded-Proto": "https",
                                             "X-Forwarded-For": "203.0.113.7"})
    assert "Strict-Transport-Security" in forwarded.headers
    assert "Strict-Transport-Security" not in web.get("/healthz").headers
    # Without PROXY_HOPS a forwarded header is not believed.
    plain = make_app(RATELIMIT_ENABLED=True)
    response = plain.test_client().get("/healthz", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in response.headers


def test_no_template_has_inline_script_or_style():
    """The strict CSP would block them; this finds them before a browser does."""
    problems = []
    for template in ROOT.glob("outcome/web/templates/**/*.html"):
        text = template.read_text(encoding="utf-8")
        for match in re.finditer(r"<script(?![^>]*\bsrc=)[^>]*>", text):
            problems.append(f"{template.name}: inline {match.group(0)}")
        for match in re.finditer(r"\s(style|on[a-z]+)=\"", text):
            problems.append(f"{template.name}: {match.group(1)}= attribute")
        if "<style" in text:
            problems.append(f"{template.name}: <style> element")
    assert problems == []


CANARIES = ("Canary Surname-Xq7", "canary-mail-xq7@example.org", "I feel canary-xq7")


def test_no_clinical_content_or_token_reaches_a_log_line(api, make_user, caplog):
    """Names, contacts, free-text answers, goals and tokens go through the API, wrong
    and right, and every logger at DEBUG is read back."""
    caplog.set_level(logging.DEBUG)
    therapist = make_user()
    t_api = api(therapist)
    created = t_api.post("/api/v1/clients", json={"name": CANARIES[0],
                                                  "email": CANARIES[1]})
    code = created.get_json()["code"]
    t_api.post(f"/api/v1/clients/{code}/administrations", json={
        "instrument": "phq9", "answers": {"phq9_1": CANARIES[2]}})  # refused: logged?
    t_api.post(f"/api/v1/clients/{code}/administrations", json={
        "instrument": "phq9", "answers": {f"phq9_{i}": 1 for i in range(1, 10)}})
    alerts = t_api.get("/api/v1/alerts").get_json()["items"]
    for alert in alerts:
        t_api.post(f"/api/v1/clients/{code}/alerts/{alert['id']}/acknowledge",
                   json={"note": CANARIES[2]})
    t_api._client.get("/api/v1/clients", headers={"Authorization": f"Bearer {t_api.secret}x"})
    text = caplog.text
    for secret in (*CANARIES, t_api.secret, t_api.secret[10:]):
        assert secret not in text
