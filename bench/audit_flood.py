"""Benchmark: how many audit rows one anonymous client can add in a minute (issue 16).

One client floods the app from one address, in turn: an unknown questionnaire link, an
API call with a made-up token and a signed-out request for a client page; every tenth
round also a sign-in with an unknown e-mail and one with a real account's e-mail and a
wrong password (each costs an argon2 hash, which would otherwise set the pace).

- **before**: the app with its rate limits off. Until issue 16 each of these requests
  wrote one permanent audit row, so the rows a minute were the requests a minute (the
  issue measured about 120 a second against a real server).
- **after**: the app as shipped (limits on, anonymous refusals counted per address,
  action and minute). The figure is the largest number of rows (audit events plus
  denial counts) added in any one calendar minute; ``docs/operators.md`` states the
  bound, which ``tests/test_limits.py`` checks.

In-process (Flask's test client, a fresh SQLite file), so the request rate is the app's,
not a network's. Run: ``.venv/bin/python -m bench.audit_flood [--seconds 60]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import secrets
import tempfile
import time
from collections import Counter
from pathlib import Path

CSRF = re.compile(r'name="csrf_token"[^>]*?value="([^"]+)"')
WRONG = "wrong password, long enough"


def _prepare(url: str) -> str:
    from outcome import schema
    from outcome.db import make_engine
    from outcome.db import make_session_factory
    from outcome.db import transaction
    from outcome.models import Clinic
    from outcome.models import User
    from outcome.services.passwords import hash_password

    engine = make_engine(url)
    schema.upgrade(engine)
    with transaction(make_session_factory(engine)) as session:
        clinic = Clinic(slug="flood", name="Flood Clinic")
        session.add(clinic)
        session.flush()
        session.add(User(clinic_id=clinic.id, email="t@flood.example.org",
                         display_name="Theo Therapist", is_therapist=True,
                         password_hash=hash_password("the right password, long enough")))
    engine.dispose()
    return "t@flood.example.org"


def _rows_by_minute(url: str, since: dt.datetime) -> Counter[dt.datetime]:
    from sqlalchemy import select

    from outcome.db import make_engine
    from outcome.db import make_session_factory
    from outcome.models import AuditDenialCount
    from outcome.models import AuditEvent

    engine = make_engine(url)
    minutes: Counter[dt.datetime] = Counter()
    with make_session_factory(engine)() as session:
        for moment in session.scalars(select(AuditEvent.occurred_dt)
                                      .where(AuditEvent.occurred_dt >= since)):
            minutes[moment.replace(second=0, microsecond=0)] += 1
        for minute in session.scalars(select(AuditDenialCount.minute)
                                      .where(AuditDenialCount.minute >= since)):
            minutes[minute] += 1
    engine.dispose()
    return minutes


def flood(url: str, email: str, seconds: float, limits: bool) -> dict[str, object]:
    """Flood for ``seconds``; the requests sent, their statuses and the rows added."""
    from outcome.app import create_app

    app = create_app({"ENV": "production", "DATABASE_URL": url,
                      "SECRET_KEY": secrets.token_urlsafe(40), "RATELIMIT_ENABLED": limits,
                      "RATELIMIT_STORAGE_URL": "memory://"})
    from outcome.extensions import limiter

    if limits:
        limiter.reset()
    client = app.test_client()
    token = CSRF.search(client.get("/login").get_data(as_text=True))
    assert token
    form = {"csrf_token": token.group(1), "password": WRONG}
    since = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    statuses: Counter[int] = Counter()
    end, n = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        n += 1
        replies = [
            client.get(f"/q/{secrets.token_urlsafe(32)}"),
            client.get("/api/v1/clients",
                       headers={"Authorization": f"Bearer {secrets.token_urlsafe(32)}"}),
            client.get("/clients/C-0001")]
        if n % 10 == 1:
            replies += [client.post("/login", data={**form, "email": f"nobody{n}@example.org"}),
                        client.post("/login", data={**form, "email": email})]
        for reply in replies:
            statuses[reply.status_code] += 1
    sent = sum(statuses.values())
    rows = _rows_by_minute(url, since)
    return {"seconds": seconds, "requests": sent,
            "requests_per_minute": round(sent * 60 / seconds),
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "rows": sum(rows.values()), "max_rows_in_a_minute": max(rows.values(), default=0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="flood time of each run (default 60: one whole minute)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        figures: dict[str, object] = {}
        for name, limits in (("before", False), ("after", True)):
            url = f"sqlite:///{Path(folder) / (name + '.sqlite3')}"
            figures[name] = flood(url, _prepare(url), args.seconds, limits)
    before, after = figures["before"], figures["after"]
    assert isinstance(before, dict) and isinstance(after, dict)
    # Before issue 16 every one of these requests wrote an audit row of its own.
    figures["before_rows_per_minute"] = before["requests_per_minute"]
    figures["after_rows_per_minute"] = after["max_rows_in_a_minute"]
    if args.json:
        print(json.dumps(figures))
        return
    print(f"One anonymous client, {args.seconds:g} s of flooding per run (in-process):")
    print(f"  before: {before['requests_per_minute']} requests a minute, each one an audit "
          f"row until issue 16 -> {figures['before_rows_per_minute']} rows/minute")
    print(f"  after:  {after['requests_per_minute']} requests a minute "
          f"(statuses {after['statuses']}) -> at most {figures['after_rows_per_minute']} "
          "rows in any minute")


if __name__ == "__main__":
    main()
