"""A software WebAuthn authenticator for tests (issue 20: passkeys): it answers
``navigator.credentials.create`` and ``.get`` options as a browser and a platform
authenticator would, with an ES256 key, "none" attestation and a signature counter."""

from __future__ import annotations

import hashlib
import json
import secrets
import struct
from dataclasses import dataclass
from dataclasses import field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from webauthn.helpers import base64url_to_bytes
from webauthn.helpers import bytes_to_base64url
from webauthn.helpers.encode_cbor import encode_cbor

UP, UV, AT = 0x01, 0x04, 0x40


@dataclass
class SoftAuthenticator:
    """One credential, made on the first :meth:`create`; ``sign_count`` goes up by
    ``step`` at each use (0: the authenticator keeps no counter)."""

    origin: str = "http://localhost"
    step: int = 1
    sign_count: int = 0
    credential_id: bytes = field(default_factory=lambda: secrets.token_bytes(16))
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))

    def _cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return encode_cbor({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"),
                            -3: numbers.y.to_bytes(32, "big")})

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge,
                           "origin": origin or self.origin, "crossOrigin": False}).encode()

    def create(self, options: dict | str, origin: str | None = None) -> dict:
        """The browser's JSON answer to registration ``options``."""
        options = json.loads(options) if isinstance(options, str) else options
        rp_hash = hashlib.sha256(options["rp"]["id"].encode()).digest()
        data = (rp_hash + bytes([UP | UV | AT]) + struct.pack(">I", self.sign_count)
                + bytes(16) + struct.pack(">H", len(self.credential_id)) + self.credential_id
                + self._cose_key())
        attestation = encode_cbor({"fmt": "none", "attStmt": {}, "authData": data})
        client_data = self._client_data("webauthn.create", options["challenge"], origin)
        return {"id": bytes_to_base64url(self.credential_id),
                "rawId": bytes_to_base64url(self.credential_id), "type": "public-key",
                "clientExtensionResults": {},
                "response": {"clientDataJSON": bytes_to_base64url(client_data),
                             "attestationObject": bytes_to_base64url(attestation),
                             "transports": ["internal"]}}

    def get(self, options: dict | str, origin: str | None = None,
            rp_id: str | None = None) -> dict:
        """The browser's JSON answer to authentication ``options`` (counter advanced)."""
        options = json.loads(options) if isinstance(options, str) else options
        allowed = [base64url_to_bytes(c["id"]) for c in options.get("allowCredentials", [])]
        assert not allowed or self.credential_id in allowed, "not an allowed credential"
        self.sign_count += self.step
        rp_hash = hashlib.sha256((rp_id or options["rpId"]).encode()).digest()
        data = rp_hash + bytes([UP | UV]) + struct.pack(">I", self.sign_count)
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        signature = self.key.sign(data + hashlib.sha256(client_data).digest(),
                                  ec.ECDSA(hashes.SHA256()))
        return {"id": bytes_to_base64url(self.credential_id),
                "rawId": bytes_to_base64url(self.credential_id), "type": "public-key",
                "clientExtensionResults": {},
                "response": {"clientDataJSON": bytes_to_base64url(client_data),
                             "authenticatorData": bytes_to_base64url(data),
                             "signature": bytes_to_base64url(signature),
                             "userHandle": None}}
