"""Oversized and malformed requests to every route get a 4xx, never a 5xx (issue 9).

Every rule of ``app.url_map`` is asked, as a visitor, as a signed-in therapist and with
an API token, with: garbage and over-long path arguments, a body over the size limit,
a body that is not what the route expects (binary, broken JSON, a form where JSON is
expected and the reverse), hostile query strings and odd headers.
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import ApiClient

GARBAGE = ("x", "C-ZZZZZZ", "%00", "..%2F..%2Fetc%2Fpasswd", "<script>", "9" * 40, "ü" * 300)
BODIES = (
    ("application/json", b'{"name": '),
    ("application/json", b"\xff\xfe\x00"),
    ("application/json", b"[]"),
    ("application/json", b'{"name": "x\\u0000", "note": "\\u0000", "answers": {"a": "\\u0000"}}'),
    ("application/json", b'{"a": ' * 2000 + b"1" + b"}" * 2000),  # deep nesting
    ("application/x-www-form-urlencoded", b"csrf_token=x&note=" + b"%" * 50),
    ("multipart/form-data; boundary=zz", b"--zz\r\nbroken"),
    ("text/plain", "\u202e\u0000".encode()),
)
QUERIES = ("?page=-1&limit=999999&cursor=%00", "?episode=abc&status=%ff", "?" + "a=1&" * 500)


def concrete(rule) -> list[str]:
    """The rule's path with each argument replaced by each garbage value."""
    paths = []
    for value in GARBAGE:
        def fill(match, value=value):
            kind = match.group(1) or ""
            return "99999999999" if kind.startswith("int") else value
        paths.append(re.sub(r"<(?:([a-z]+)(?:\([^)]*\))?:)?[a-z_]+>", fill, rule.rule))
    return list(dict.fromkeys(paths))


@pytest.fixture
def callers(client, auth, make_user, make_token, app, db_session):
    therapist = make_user()
    db_session.commit()
    anonymous = app.test_client()
    auth.login(therapist.email)
    token = ApiClient(app.test_client(), make_token(therapist))
    return {"anonymous": anonymous, "therapist": client, "token": token}


@pytest.mark.slow
def test_no_route_answers_bad_input_with_a_server_error(app, callers):
    app.config["PROPAGATE_EXCEPTIONS"] = False  # a crash becomes a 500 to count, not a raise
    failures, asked = [], 0
    oversized = b"x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for path in concrete(rule):
            for name, caller in callers.items():
                tries = [("GET", path + q, None, None) for q in QUERIES]
                if "POST" in rule.methods:
                    tries += [("POST", path, kind, body) for kind, body in BODIES]
                    tries.append(("POST", path, "application/json", oversized))
                for method, target, kind, body in tries:
                    headers = {"Content-Type": kind} if kind else {}
                    headers["Accept-Language"] = "xx-" + "y" * 300
                    if isinstance(caller, ApiClient):
                        response = (caller.get(target, headers=headers) if method == "GET"
                                    else caller._client.post(target, data=body, headers={
                                        **headers, "Authorization": f"Bearer {caller.secret}",
                                        "Idempotency-Key": "k" * 300}))
                    else:
                        response = caller.open(target, method=method, data=body,
                                               headers=headers)
                    asked += 1
                    if response.status_code >= 500:
                        failures.append(f"{name} {method} {target[:90]} {kind}: "
                                        f"{response.status_code}")
    assert asked > 1000
    assert failures == [], "\n".join(failures[:50])
