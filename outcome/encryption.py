"""Encryption at rest (issue 20): the key ring, field encryption and the name-search hash.

Off by default: with no keys configured values are stored as plaintext, exactly as before.
With keys, each key is an id and 256 random bits, kept outside the database (a key file,
``OUTCOME_ENCRYPTION_KEY_FILE``, or the environment, ``OUTCOME_ENCRYPTION_KEYS``). The
first key is the *current* one (new values are encrypted under it); the others still
decrypt, so a rotation can run while the application serves.

A value is encrypted with AES-256-GCM under a random 96-bit nonce, with associated data
naming the table and column (``clients.name``), so a ciphertext copied into another column
does not decrypt. The associated data does not name the row: two rows' values of the same
column can be swapped by someone who can write to the database and each still decrypts.
The row's primary key cannot be bound because it is assigned by the database at insert,
after the value is encrypted (autoincrement ids). It is stored as self-describing text::

    enc:1:<key id>:<base64 of nonce + ciphertext + tag>

A plaintext value that itself starts with ``enc:`` (a client named ``enc:1:x:Joke``) is
stored escaped as ``enc:0:<the text>`` so that it can never be taken for a ciphertext;
reading ``enc:0:`` returns the rest. Everything else that does not start with ``enc:1:``
is plaintext written before encryption was switched on, and reads as itself.

Reading accepts plaintext and ciphertext alike (mixed data while encryption is switched on
or keys rotate). A ciphertext whose key is not in the ring, or that fails to authenticate,
raises :class:`EncryptionError` naming the key id: never garbage, never a silent empty value.

Name search with encryption on: :meth:`KeyRing.name_search` stores keyed hashes
(HMAC-SHA256 under a key derived from each encryption key with HKDF, separate from it) of
the name's normalised tokens and of their prefixes of 3+ letters; :meth:`KeyRing.term_hashes`
hashes a search term's tokens under every key of the ring, so clients not yet re-hashed
by a rotation are still found.

The process has one active key ring (:func:`install`, :func:`active`), set from the
configuration when the application or a CLI command starts; the column types in
:mod:`outcome.models.encrypted` read it. No Flask, no database here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from outcome.config import ConfigError

PREFIX = "enc:1:"
# A plaintext value that starts with ``enc:`` is stored behind this (see the module doc).
PLAIN_PREFIX = "enc:0:"
KEY_BYTES = 32
NONCE_BYTES = 12
KEY_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
# Search terms shorter than this match whole name tokens only; longer ones also prefixes.
MIN_PREFIX = 3
# Hex digits kept of each token's HMAC: 64 bits, ample against collisions in a clinic.
HASH_HEX = 16
_SEARCH_INFO = b"outcome name search v1"
_TOKEN = re.compile(r"[^\W\d_]+")


class EncryptionError(Exception):
    """A stored value cannot be decrypted: its key is missing from the ring, or it was altered.

    The message names the key id and the column, never the value.
    """


@dataclass(frozen=True)
class KeyRing:
    """Encryption keys by id, the current (first) one used for new values.

    An empty ring means encryption is off: values are written as plaintext, and reading a
    ciphertext raises :class:`EncryptionError`.
    """

    keys: tuple[tuple[str, bytes], ...] = ()
    _by_id: dict[str, bytes] = field(init=False, repr=False, compare=False)
    _search: dict[str, bytes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_id: dict[str, bytes] = {}
        for key_id, key in self.keys:
            if not KEY_ID_PATTERN.match(key_id):
                raise ConfigError(f"encryption key id {key_id!r} must be 1-32 letters, digits, "
                                  "'-' or '_'.")
            if len(key) != KEY_BYTES:
                raise ConfigError(f"encryption key {key_id!r} must be 256 bits (32 bytes); "
                                  f"it has {len(key)} bytes.")
            if key_id in by_id:
                raise ConfigError(f"encryption key id {key_id!r} appears twice.")
            by_id[key_id] = key
        object.__setattr__(self, "_by_id", by_id)
        object.__setattr__(self, "_search", {
            key_id: HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                         info=_SEARCH_INFO).derive(key)
            for key_id, key in self.keys})

    def __repr__(self) -> str:  # never the keys themselves
        return f"KeyRing(key_ids={self.key_ids!r})"

    @property
    def enabled(self) -> bool:
        """True when there is a current key (new values are encrypted)."""
        return bool(self.keys)

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The ids, current first."""
        return tuple(key_id for key_id, _ in self.keys)

    @property
    def current_id(self) -> str | None:
        """The id new values are encrypted under, or None when encryption is off."""
        return self.keys[0][0] if self.keys else None

    # --- text ---------------------------------------------------------------------------

    def encrypt(self, plaintext: str, context: str) -> str:
        """``plaintext`` encrypted under the current key, bound to ``context`` (table.column).

        With encryption off, ``plaintext`` as stored plaintext (:func:`stored_plaintext`).
        """
        if not self.keys:
            return stored_plaintext(plaintext)
        key_id, key = self.keys[0]
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(key).encrypt(nonce, plaintext.encode("utf-8"), _aad(key_id, context))
        return f"{PREFIX}{key_id}:{base64.b64encode(nonce + sealed).decode('ascii')}"

    def decrypt(self, stored: str, context: str) -> str:
        """The plaintext of a stored value: itself when it is not a ciphertext.

        Raises :class:`EncryptionError` naming the key id when the key is not in the ring or
        the ciphertext does not authenticate (altered, or copied from another column).
        """
        if not is_ciphertext(stored):
            return stored[len(PLAIN_PREFIX):] if stored.startswith(PLAIN_PREFIX) else stored
        key_id, _, payload = stored[len(PREFIX):].partition(":")
        key = self._by_id.get(key_id)
        if key is None:
            configured = ", ".join(self.key_ids) or "none"
            raise EncryptionError(
                f"{context}: the value is encrypted under key {key_id!r}, which is not "
                f"configured (configured keys: {configured}); add it to "
                "OUTCOME_ENCRYPTION_KEY_FILE or OUTCOME_ENCRYPTION_KEYS.")
        try:
            raw = base64.b64decode(payload.encode("ascii"), validate=True)
            if len(raw) < NONCE_BYTES + 16:
                raise ValueError("too short")
            plain = AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:],
                                        _aad(key_id, context))
        except (InvalidTag, ValueError, binascii.Error, UnicodeEncodeError):
            raise EncryptionError(
                f"{context}: a value encrypted under key {key_id!r} does not decrypt (the "
                "key is wrong, or the value was altered or belongs to another column)."
            ) from None
        return plain.decode("utf-8")

    def is_current(self, stored: Any) -> bool:
        """True when ``stored`` (text or a JSON envelope) is already what rotation would write."""
        key_id = stored_key_id(stored)
        if self.keys:
            return key_id == self.current_id
        return key_id is None

    # --- name search --------------------------------------------------------------------

    def name_search(self, name: str | None) -> str | None:
        """The search column's value for ``name``: space-separated keyed hashes of its
        tokens and their prefixes of :data:`MIN_PREFIX`+ letters, under the current key.

        None with encryption off (search then reads the name itself) or no name.
        """
        if not self.keys or not name:
            return None
        key = self._search[self.keys[0][0]]
        pieces: set[str] = set()
        for token in name_tokens(name):
            pieces.add(token)
            pieces.update(token[:n] for n in range(MIN_PREFIX, len(token)))
        digests = sorted(_token_hash(key, piece) for piece in pieces)
        return " " + " ".join(digests) + " " if digests else None

    def term_hashes(self, term: str) -> list[list[str]]:
        """For each token of a search ``term``, its hashes under every key of the ring.

        A client matches when, for every token, one of its hashes is in their search column.
        """
        return [[_token_hash(key, token) for key in self._search.values()]
                for token in name_tokens(term)]


def _aad(key_id: str, context: str) -> bytes:
    return f"outcome:1:{context}:{key_id}".encode()


def _token_hash(key: bytes, token: str) -> str:
    return hmac.new(key, token.encode("utf-8"), hashlib.sha256).hexdigest()[:HASH_HEX]


def name_tokens(text: str) -> list[str]:
    """Normalised tokens of a name: accents stripped (NFKD), case folded, split on non-letters."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _TOKEN.findall(stripped.casefold())


def stored_plaintext(text: str) -> str:
    """``text`` as it is stored unencrypted: itself, or escaped behind :data:`PLAIN_PREFIX`
    when it starts with ``enc:`` (so that it cannot be read as a ciphertext)."""
    return PLAIN_PREFIX + text if text.startswith("enc:") else text


def is_ciphertext(value: Any) -> bool:
    """True when ``value`` is text in the stored ciphertext format."""
    return isinstance(value, str) and value.startswith(PREFIX)


def stored_key_id(stored: Any) -> str | None:
    """The key id of a stored text or JSON envelope; None for plaintext (or NULL)."""
    if isinstance(stored, dict) and set(stored) == {"enc"}:
        stored = stored["enc"]
    if not is_ciphertext(stored):
        return None
    return str(stored)[len(PREFIX):].partition(":")[0]


# --- loading keys -----------------------------------------------------------------------


def parse_keys(text: str, source: str) -> list[tuple[str, bytes]]:
    """Keys from ``text``: one ``<key id>:<base64 of 32 bytes>`` per line or comma-separated
    item, blank lines and ``#`` comments ignored. Raises :class:`ConfigError` naming ``source``."""
    keys: list[tuple[str, bytes]] = []
    for raw_line in text.replace(",", "\n").splitlines():
        line = raw_line.split("#", 1)[0].strip()
        if not line:
            continue
        key_id, sep, encoded = line.partition(":")
        key_id, encoded = key_id.strip(), encoded.strip()
        if not sep or not encoded:
            raise ConfigError(f"{source}: each key is '<key id>:<base64 key>'; "
                              "`outcome keys generate` writes one.")
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(f"{source}: key {key_id!r} is not valid base64.") from None
        keys.append((key_id, key))
    return keys


def key_ring_from_config(values: Mapping[str, Any]) -> KeyRing:
    """The ring the configuration names: the key file's keys, then the environment's.

    Raises :class:`ConfigError` when the file is missing, readable by others, or malformed.
    """
    keys: list[tuple[str, bytes]] = []
    path_text = values.get("ENCRYPTION_KEY_FILE") or ""
    if path_text:
        path = Path(path_text)
        try:
            mode = path.stat().st_mode
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"OUTCOME_ENCRYPTION_KEY_FILE {path_text!r} cannot be read "
                              f"({exc.strerror}).") from None
        if mode & 0o077:
            raise ConfigError(f"OUTCOME_ENCRYPTION_KEY_FILE {path_text!r} is readable by "
                              "others; run chmod 600 on it.")
        keys.extend(parse_keys(text, "OUTCOME_ENCRYPTION_KEY_FILE"))
    inline = values.get("ENCRYPTION_KEYS") or ""
    if inline:
        keys.extend(parse_keys(inline, "OUTCOME_ENCRYPTION_KEYS"))
    return KeyRing(tuple(keys))


def new_key_line(key_id: str) -> str:
    """A fresh key as a key-file line, ``<key id>:<base64 of 32 random bytes>``."""
    if not KEY_ID_PATTERN.match(key_id):
        raise ConfigError(f"key id {key_id!r} must be 1-32 letters, digits, '-' or '_'.")
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode('ascii')}"


# --- the process's key ring ----------------------------------------------------------------

_active = KeyRing()


def install(ring: KeyRing) -> KeyRing:
    """Make ``ring`` the process's key ring (the column types use it); returns the previous."""
    global _active
    previous, _active = _active, ring
    return previous


def active() -> KeyRing:
    """The process's key ring (empty, encryption off, until :func:`install`)."""
    return _active

