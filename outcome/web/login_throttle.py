"""Login throttling that slows guessing down without letting anyone lock an account.

The rule (also in docs/operators.md):

- Only failures count: a wrong password for an e-mail address (known or not). A
  successful sign-in never counts, and it wipes the account's failures.
- Per account (the e-mail typed, lower-cased): the first 5 failures are free; after
  ``n >= 5`` failures the next attempt must wait ``2 s x 2^(n - 5)``, at most 5 minutes,
  from the last failure. Per address: the same from 10 failures, at most 15 minutes.
  An attempt during a wait is answered 429 with ``Retry-After`` before the password is
  checked, and does not count. There is no hard lock: a wait always ends.
- The account's wait does not apply to an address from which the account signed in
  within the last 30 days (that address's own wait still does), so an attacker elsewhere
  cannot delay the user at their usual place at all.
- Failures are forgotten an hour after the first of them.

The counts live in the rate limiter's store (``OUTCOME_RATELIMIT_STORAGE_URL``), so every
worker sees the same ones. Keys hold a hash of the e-mail, never the address itself.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass

from flask import current_app
from limits.storage import Storage

from outcome.extensions import limiter


@dataclass(frozen=True)
class Backoff:
    """``free`` failures, then a wait of ``base_seconds x 2^(failures - free)``, at most
    ``cap_seconds``."""

    name: str
    free: int
    base_seconds: int
    cap_seconds: int

    def wait(self, failures: int) -> int:
        """Seconds to wait after ``failures`` failures (0 while they are free)."""
        if failures < self.free:
            return 0
        return int(min(self.base_seconds * 2 ** min(failures - self.free, 30),
                       self.cap_seconds))


ACCOUNT = Backoff("account", free=5, base_seconds=2, cap_seconds=300)
ADDRESS = Backoff("address", free=10, base_seconds=2, cap_seconds=900)
FORGET_SECONDS = 3600
KNOWN_ADDRESS_SECONDS = 30 * 24 * 3600


def _enabled() -> bool:
    return bool(current_app.config.get("RATELIMIT_ENABLED", True))


def _store() -> Storage:
    return limiter.storage


def _subject(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


def _keys(email: str, address: str) -> list[tuple[Backoff, str]]:
    return [(ACCOUNT, f"login:account:{_subject(email)}"), (ADDRESS, f"login:address:{address}")]


def _known_key(email: str, address: str) -> str:
    return f"login:known:{_subject(email)}:{address}"


def retry_after(email: str, address: str, now: dt.datetime) -> int:
    """Seconds before ``email`` may be tried from ``address`` (0: now)."""
    if not _enabled():
        return 0
    store, moment = _store(), now.timestamp()
    known = store.get(_known_key(email, address)) > 0
    waits = [0]
    for rule, key in _keys(email, address):
        if rule is ACCOUNT and known:
            continue
        until = store.get(key + ":until")
        # To the second: Flask-Limiter rounds the Retry-After it sends down, so the last
        # second of a wait is not held against whoever waited as told.
        if until - moment > 1:
            waits.append(math.ceil(until - moment))
    return max(waits)


def record_failure(email: str, address: str, now: dt.datetime) -> None:
    """Count a failed sign-in for the account and the address, and set their waits."""
    if not _enabled():
        return
    store = _store()
    for rule, key in _keys(email, address):
        failures = store.incr(key, FORGET_SECONDS)
        wait = rule.wait(failures)
        if wait:
            store.clear(key + ":until")
            store.incr(key + ":until", FORGET_SECONDS, amount=int(now.timestamp()) + wait)


def record_success(email: str, address: str) -> None:
    """Wipe the account's failures and remember the address as the account's own."""
    if not _enabled():
        return
    store = _store()
    account_key = _keys(email, address)[0][1]
    store.clear(account_key)
    store.clear(account_key + ":until")
    store.clear(_known_key(email, address))
    store.incr(_known_key(email, address), KNOWN_ADDRESS_SECONDS)
