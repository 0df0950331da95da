"""Pseudonymous client codes such as ``C-7F3K9Q``.

Codes stand in for names wherever a name is not needed (supervisor views, digests,
exports). They are drawn at random from an alphabet without look-alike characters
(no 0/O, 1/I/L), so they can be read aloud and are not guessable: 31**6, about
8.9e8, possibilities.
"""

from __future__ import annotations

import random
import secrets

from sqlalchemy import exists
from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.models import Client

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 6
PREFIX = "C-"
_system_random = secrets.SystemRandom()


def random_client_code(rng: random.Random | None = None) -> str:
    """A new random code; ``rng`` may be seeded for reproducible demo data only."""
    rng = rng or _system_random
    return PREFIX + "".join(rng.choice(ALPHABET) for _ in range(CODE_LENGTH))


def is_client_code(value: str) -> bool:
    """Whether ``value`` has the shape of a client code (case-sensitive)."""
    body = value[len(PREFIX):]
    return (value.startswith(PREFIX) and len(body) == CODE_LENGTH
            and all(ch in ALPHABET for ch in body))


def allocate_client_code(session: Session, rng: random.Random | None = None) -> str:
    """A random code not yet used by any client (the unique constraint is the final guard)."""
    for _ in range(100):
        code = random_client_code(rng)
        if not session.scalar(select(exists().where(Client.code == code))):
            return code
    raise RuntimeError("could not find a free client code in 100 draws")
