"""Password hashing (argon2id) and the NIST SP 800-63B-4 policy."""

from __future__ import annotations

import pytest

from outcome.services.passwords import hash_password
from outcome.services.passwords import needs_rehash
from outcome.services.passwords import password_problems
from outcome.services.passwords import verify_password


def test_hash_is_argon2id_and_verifies():
    stored = hash_password("a long enough passphrase")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "a long enough passphrase")
    assert not verify_password(stored, "a long enough passphrasE")
    assert not needs_rehash(stored)


def test_missing_or_garbage_hash_never_matches():
    assert not verify_password(None, "anything at all here")
    assert not verify_password("", "anything at all here")
    assert not verify_password("not-a-hash", "anything at all here")


def test_unicode_is_normalised():
    # "é" typed as one code point or as e + combining accent is the same password.
    stored = hash_password("caf\u00e9 au lait tous les jours")
    assert verify_password(stored, "cafe\u0301 au lait tous les jours")


@pytest.mark.parametrize(("password", "problem"), [
    ("short one", "at least 15 characters"),
    ("passwordpassword", "too common"),
    ("aaaaaaaaaaaaaaaaaaaa", "too common"),
    ("x" * 257, "at most 256"),
    ("jamie.clarke-is-my-password", "e-mail name"),
])
def test_policy_refuses(password, problem):
    assert any(problem in p for p in password_problems(password, "jamie.clarke@example.org"))


@pytest.mark.parametrize("password", [
    "violet kettle orbit 7",
    "ЗеленаяЛампаНаСтоле",  # any Unicode is allowed; no composition rules
    "exactly15chars!",
])
def test_policy_accepts(password):
    assert password_problems(password, "jamie@example.org") == []
