"""Staff sessions end on the server: idle and absolute timeouts, login rate limits."""

from __future__ import annotations

import secrets

import pytest

from outcome.extensions import limiter
from outcome.services import clinic_settings


def test_idle_timeout_signs_out_after_30_minutes(auth, client, clock, make_user):
    user = make_user()
    auth.login(user.email)
    clock.advance(minutes=29)
    assert client.get("/").status_code == 200  # active: the idle clock restarts
    clock.advance(minutes=29)
    assert client.get("/").status_code == 200
    clock.advance(minutes=31)
    response = client.get("/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    page = client.get("/login").get_data(as_text=True)
    assert "signed out after a period without activity" in page


def test_absolute_timeout_after_12_hours_however_active(auth, client, clock, make_user):
    auth.login(make_user().email)
    for _ in range(25):  # a request every 29 minutes for 12 hours and a bit
        clock.advance(minutes=29)
        status = client.get("/").status_code
    assert status == 302
    assert "please sign in again" in client.get("/login").get_data(as_text=True)


def test_timeouts_are_clinic_settings(auth, client, clock, db_session, clinic, make_user):
    clinic_settings.update(db_session, clinic, {"staff_idle_minutes": 10})
    db_session.commit()
    auth.login(make_user().email)
    clock.advance(minutes=11)
    assert client.get("/").status_code == 302


def test_a_copied_cookie_also_times_out(app, auth, client, clock, make_user):
    auth.login(make_user().email)
    stolen = client.get_cookie("session").value
    clock.advance(minutes=31)
    thief = app.test_client()
    thief.set_cookie("session", stolen)
    assert thief.get("/").status_code == 302


@pytest.fixture
def limited(make_app, session_factory, clock):
    """An app with login rate limits on and fresh counters."""
    app = make_app(session_factory=session_factory, clock=clock, RATELIMIT_ENABLED=True)
    limiter.reset()
    yield app
    limiter.reset()


def test_login_is_rate_limited_per_address_and_per_account(limited, make_user):
    from tests.conftest import AuthActions

    user = make_user()
    auth = AuthActions(limited.test_client())
    # Per account: 5 failures are free, then each attempt waits (tests/test_limits.py).
    statuses = [auth.login(user.email, "wrong password, long enough").status_code
                for _ in range(6)]
    assert statuses[:5] == [200] * 5 and statuses[5] == 429
    assert "Too many attempts" in auth.login(user.email).get_data(as_text=True)
    # The same account from another address: the account's wait still holds.
    other_address = auth.login(user.email, environ_base={"REMOTE_ADDR": "10.9.1.1"})
    assert other_address.status_code == 429 and int(other_address.headers["Retry-After"]) > 0
    # Per address: 10 failures a minute, whatever the accounts.
    limiter.reset()
    for n in range(10):
        auth.login(f"someone{n}@example.org", "wrong again, long enough",
                   environ_base={"REMOTE_ADDR": "10.9.0.1"})
    assert auth.login(user.email, environ_base={"REMOTE_ADDR": "10.9.0.1"}).status_code == 429


def test_limits_are_shared_between_workers_through_redis(make_app, session_factory, clock,
                                                         make_user):
    # Two apps stand for two gunicorn workers; with Redis they share one count.
    import redis

    from tests.conftest import AuthActions

    url = "redis://127.0.0.1:6379/15"
    # The database is shared with any other test run on the machine (make test runs the
    # SQLite and PostgreSQL runs side by side), so this test counts under an account and
    # an address of its own and never flushes the database.
    tag = secrets.token_hex(6)
    address = f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250)}"
    workers = [make_app(session_factory=session_factory, clock=clock, RATELIMIT_ENABLED=True,
                        RATELIMIT_STORAGE_URL=url) for _ in range(2)]
    user = make_user(email=f"redis-{tag}@example.org")
    first, second = (AuthActions(app.test_client()) for app in workers)
    for n in range(10):
        (first if n % 2 else second).login(f"{n}-{user.email}", "wrong password, long enough",
                                           environ_base={"REMOTE_ADDR": address})
    # 10 failures from one address, across both workers
    assert first.login(user.email, environ_base={"REMOTE_ADDR": address}).status_code == 429
    # The counts live in Redis, where every worker process reads the same numbers.
    store = redis.Redis.from_url(url)
    keys = [key for key in store.keys("*") if address.encode() in key]
    assert any(b"login:address:" in key for key in keys), keys
    store.delete(*keys)
