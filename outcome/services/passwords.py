"""Staff passwords: argon2id hashes and a policy after NIST SP 800-63B.

Hashing uses argon2-cffi's defaults (argon2id, RFC 9106 low-memory profile); a hash
made with older parameters is upgraded at the next successful login.

Policy (NIST SP 800-63B-4, section 3.1.1.2, passwords as a single factor): at least
15 characters, at most 256 accepted, no composition rules, every Unicode character
allowed, and refused when it is a commonly used password or contains the account's
e-mail name.
"""

from __future__ import annotations

import contextlib
import unicodedata

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError
from argon2.exceptions import VerificationError

MIN_LENGTH = 15
MAX_LENGTH = 256

_hasher = PasswordHasher()
_EQUALISER_TEXT = "no such account: timing equaliser"
# A hash of a fixed string, verified against when the account does not exist, so that an
# unknown e-mail costs the same time as a wrong password. It is no secret, so it is kept
# as a literal made with the default parameters: hashing it at import cost every
# `outcome` process (each command, each gunicorn worker) about 0.2 CPU-seconds.
# _dummy_hash() makes a new one if the parameters ever change.
_DUMMY_HASH = ("$argon2id$v=19$m=65536,t=3,p=4$7kreYXtmc6I7gSiWzdZeDQ$"
               "SnRD/eMlc7jJt0AQCFrSIMS7nfukqJzNoBo1lxbIe/w")

# The most common passwords of 15+ characters in public breach corpora, and patterns
# people use to reach a length rule. Short ones are already refused by length.
COMMON_PASSWORDS = frozenset({
    "123456789012345", "1234567890123456", "12345678901234567890", "qwertyuiopasdfg",
    "qwertyuiopasdfgh", "qwertyuiopasdfghjkl", "qwertyuiop123456", "passwordpassword",
    "password1234567", "password12345678", "passwordpassword1", "iloveyouiloveyou",
    "abcdefghijklmno", "abcdefghijklmnop", "aaaaaaaaaaaaaaa", "111111111111111",
    "000000000000000", "letmeinletmein1", "welcomewelcome1", "changemechangeme",
    "administrator123", "therapisttherapist", "outcomeoutcome1", "correcthorsebatterystaple",
})


def _dummy_hash() -> str:
    """The unknown-account hash, made with the current parameters (remade if they differ
    from the literal's, e.g. after an argon2-cffi upgrade changes the defaults)."""
    global _DUMMY_HASH
    if _hasher.check_needs_rehash(_DUMMY_HASH):
        _DUMMY_HASH = _hasher.hash(_EQUALISER_TEXT)
    return _DUMMY_HASH


def normalise(password: str) -> str:
    """NFKC-normalise, as NIST asks, so the same password typed on two keyboards matches."""
    return unicodedata.normalize("NFKC", password)


def password_problems(password: str, email: str = "") -> list[str]:
    """Plain-language reasons a new password is refused; empty when it is acceptable."""
    pw = normalise(password)
    problems = []
    if len(pw) < MIN_LENGTH:
        problems.append(f"Use at least {MIN_LENGTH} characters; a few words together work well.")
    if len(pw) > MAX_LENGTH:
        problems.append(f"Use at most {MAX_LENGTH} characters.")
    folded = pw.casefold()
    if folded in COMMON_PASSWORDS or len(set(folded)) <= 2:
        problems.append("This password is too common; choose one that others would not guess.")
    local = email.split("@", 1)[0].casefold()
    if len(local) >= 4 and local in folded:
        problems.append("Do not include your e-mail name in the password.")
    return problems


def hash_password(password: str) -> str:
    """An argon2id hash of the normalised password."""
    return _hasher.hash(normalise(password))


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash``; a missing hash never matches.

    Takes about as long for a missing account (``stored_hash`` None) as for a wrong
    password.
    """
    if not stored_hash:
        with contextlib.suppress(VerificationError):
            _hasher.verify(_dummy_hash(), normalise(password))
        return False
    try:
        return _hasher.verify(stored_hash, normalise(password))
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than the current defaults."""
    return _hasher.check_needs_rehash(stored_hash)
