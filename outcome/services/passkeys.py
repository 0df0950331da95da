"""Passkeys (WebAuthn credentials) as a staff member's second factor (issue 20).

A staff member registers passkeys on their account page and uses one on the second step
of sign-in, after the password (:mod:`outcome.web.second_factor`). This module holds the
ceremony's server side, with no Flask in it: the web layer keeps each challenge (in the
signed session, single-use, time-limited) and passes it in with the relying party.

- **Registration** offers options that exclude the user's existing credentials, prefer
  user verification and a discoverable ("resident") key, and ask for no attestation
  (the clinic trusts any authenticator its staff choose). A verified credential is
  stored with the staff member's own label (1 to :data:`NAME_MAX` characters).
- **Authentication** allows only the pending user's own credentials. After the signature
  is verified the authenticator's counter is checked: a counter that does not go up
  while both the stored and the new one are nonzero is refused, as the key may have
  been copied (WebAuthn section 6.1.1); a counter of 0 means the authenticator keeps
  none (synced passkeys), which is accepted.
- **Deletion** is the owner's alone, and refused when the clinic requires a second
  factor for one of their roles and this passkey is their last one.

Functions flush, never commit. Errors are :class:`PasskeyError` with an untranslated
message (marked with ``N_``) that the web layer translates.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists
from sqlalchemy import select
from sqlalchemy.orm import Session
from webauthn import generate_authentication_options
from webauthn import generate_registration_options
from webauthn import options_to_json
from webauthn import verify_authentication_response
from webauthn import verify_registration_response
from webauthn.helpers import base64url_to_bytes
from webauthn.helpers import bytes_to_base64url
from webauthn.helpers import parse_authentication_credential_json
from webauthn.helpers import parse_registration_credential_json
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import AuthenticatorSelectionCriteria
from webauthn.helpers.structs import AuthenticatorTransport
from webauthn.helpers.structs import PublicKeyCredentialDescriptor
from webauthn.helpers.structs import ResidentKeyRequirement
from webauthn.helpers.structs import UserVerificationRequirement

from outcome.models import Clinic
from outcome.models import Passkey
from outcome.models import TotpSecret
from outcome.models import User
from outcome.services import two_factor
from outcome.services.staff import N_
from outcome.services.staff import StaffError

NAME_MAX = 100
# How long the browser may take (the web layer refuses a challenge older than this too).
TIMEOUT_SECONDS = 300
# What can go wrong when untrusted JSON meets the parser and the verifier: the library's
# own errors, and the decoding errors of its base64url, CBOR and key helpers.
_BAD_CREDENTIAL = (WebAuthnException, ValueError, TypeError, KeyError, IndexError,
                   AttributeError, OverflowError)


class PasskeyError(StaffError):
    """A passkey that cannot be registered, used or deleted; the message says why."""


@dataclass(frozen=True)
class RelyingParty:
    """The site as WebAuthn knows it: its RP ID (a host name, never an IP address), the
    origin pages run at (``https://host[:port]``), and the name authenticators show."""

    id: str
    origin: str
    name: str = "outcome"


def passkeys_of(store: Session, user: User) -> list[Passkey]:
    """The user's passkeys, oldest first."""
    return list(store.scalars(select(Passkey).where(Passkey.user_id == user.id)
                              .order_by(Passkey.created_dt, Passkey.id)))


def user_handle(user: User) -> bytes:
    """The WebAuthn user handle: stable per account, and no name or e-mail in it."""
    return f"outcome-user:{user.id}".encode()


def clean_name(name: object) -> str:
    """The passkey's label trimmed; raises :class:`PasskeyError` when empty or too long."""
    cleaned = name.strip() if isinstance(name, str) else ""
    if not cleaned:
        raise PasskeyError(N_("Give the passkey a name, such as the device it is on."),
                           field="name")
    if len(cleaned) > NAME_MAX:
        raise PasskeyError(N_("A passkey's name has at most %(max)s characters."),
                           field="name", max=NAME_MAX)
    if any(not c.isprintable() for c in cleaned):
        raise PasskeyError(N_("A passkey's name cannot contain control characters."),
                           field="name")
    return cleaned


def _descriptor(passkey: Passkey) -> PublicKeyCredentialDescriptor:
    transports = []
    for value in passkey.transports or []:
        try:
            transports.append(AuthenticatorTransport(value))
        except ValueError:
            continue  # a transport this library does not know: the browser finds it anyway
    return PublicKeyCredentialDescriptor(id=base64url_to_bytes(passkey.credential_id),
                                         transports=transports or None)


def registration_options(store: Session, user: User, rp: RelyingParty) -> tuple[str, bytes]:
    """Options (JSON for ``navigator.credentials.create``) for a new passkey of ``user``,
    and their challenge, which the caller keeps for :func:`register`."""
    options = generate_registration_options(
        rp_id=rp.id, rp_name=rp.name, user_id=user_handle(user), user_name=user.email,
        user_display_name=user.display_name, timeout=TIMEOUT_SECONDS * 1000,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.PREFERRED),
        exclude_credentials=[_descriptor(p) for p in passkeys_of(store, user)])
    return options_to_json(options), options.challenge


def register(store: Session, user: User, rp: RelyingParty, credential: Any,
             challenge: bytes, name: object, now: dt.datetime) -> Passkey:
    """Verify the browser's answer to :func:`registration_options` and store the passkey
    under ``name``. Raises :class:`PasskeyError` (nothing stored) when the name is wrong,
    the answer does not verify, or the credential is already registered."""
    label = clean_name(name)
    try:
        parsed = parse_registration_credential_json(_as_json(credential))
        verified = verify_registration_response(
            credential=parsed, expected_challenge=challenge, expected_rp_id=rp.id,
            expected_origin=rp.origin, require_user_verification=False)
    except _BAD_CREDENTIAL:
        raise PasskeyError(N_("The passkey could not be checked. Please try again.")) from None
    credential_id = bytes_to_base64url(verified.credential_id)
    if store.scalar(select(exists().where(Passkey.credential_id == credential_id))):
        raise PasskeyError(N_("This passkey is already registered."))
    passkey = Passkey(
        user_id=user.id, credential_id=credential_id,
        public_key=bytes_to_base64url(verified.credential_public_key),
        sign_count=verified.sign_count, name=label, created_dt=now,
        transports=[t.value for t in parsed.response.transports or []])
    store.add(passkey)
    store.flush()
    return passkey


def authentication_options(store: Session, user: User, rp: RelyingParty) -> tuple[str, bytes]:
    """Options (JSON for ``navigator.credentials.get``) that allow only ``user``'s own
    passkeys, and their challenge. Raises :class:`PasskeyError` when they have none."""
    own = passkeys_of(store, user)
    if not own:
        raise PasskeyError(N_("You have no passkey. Sign in another way."))
    options = generate_authentication_options(
        rp_id=rp.id, timeout=TIMEOUT_SECONDS * 1000,
        allow_credentials=[_descriptor(p) for p in own],
        user_verification=UserVerificationRequirement.PREFERRED)
    return options_to_json(options), options.challenge


def authenticate(store: Session, user: User, rp: RelyingParty, credential: Any,
                 challenge: bytes, now: dt.datetime) -> Passkey:
    """Verify an assertion made with one of ``user``'s passkeys against ``challenge``;
    on success record its new counter and use, and return it.

    Raises :class:`PasskeyError` (nothing changed) for an unknown credential or one of
    somebody else, an assertion that does not verify, or a counter that did not go up
    (``field="counter"``: the key may have been copied).
    """
    try:
        parsed = parse_authentication_credential_json(_as_json(credential))
    except _BAD_CREDENTIAL:
        raise PasskeyError(N_("The passkey could not be checked. Please try again.")) from None
    passkey = store.scalar(select(Passkey).where(
        Passkey.credential_id == bytes_to_base64url(parsed.raw_id), Passkey.user_id == user.id))
    if passkey is None:
        raise PasskeyError(N_("This passkey is not registered for your account."),
                           field="credential")
    try:
        # The stored counter is compared below, after the signature: a forged answer is
        # "could not be checked", only a genuine one with a stale counter is a clone.
        verified = verify_authentication_response(
            credential=parsed, expected_challenge=challenge, expected_rp_id=rp.id,
            expected_origin=rp.origin,
            credential_public_key=base64url_to_bytes(passkey.public_key),
            credential_current_sign_count=0, require_user_verification=False)
    except _BAD_CREDENTIAL:
        raise PasskeyError(N_("The passkey could not be checked. Please try again.")) from None
    if counter_went_back(passkey.sign_count, verified.new_sign_count):
        raise PasskeyError(N_("This passkey's counter went backwards, so it may have been "
                              "copied. Sign in another way and remove it from your "
                              "account."), field="counter")
    passkey.sign_count = max(passkey.sign_count, verified.new_sign_count)
    passkey.last_used_dt = now
    store.flush()
    return passkey


def counter_went_back(stored: int, new: int) -> bool:
    """Whether a signature counter shows a possibly cloned key (WebAuthn section 7.2
    step 21): either counter nonzero and the new one not above the stored one. Both 0
    means the authenticator keeps no counter; a key that counted and now says 0 is
    refused."""
    return (stored > 0 or new > 0) and new <= stored


def delete_passkey(store: Session, user: User, passkey: Passkey, clinic: Clinic) -> None:
    """Delete ``user``'s own ``passkey``. Refused (:class:`PasskeyError`, nothing changed)
    for somebody else's, and for the last second factor of a user whose clinic requires
    one for one of their roles."""
    if passkey.user_id != user.id:
        raise PasskeyError(N_("This passkey is not yours."))
    if two_factor.required_for(user, clinic) and not _other_factor(store, user, passkey):
        raise PasskeyError(N_("The clinic requires a second step at sign-in for your role: "
                              "add another passkey or an authenticator app before you "
                              "remove this one."))
    store.delete(passkey)
    store.flush()


def _other_factor(store: Session, user: User, passkey: Passkey) -> bool:
    totp = exists().where(TotpSecret.user_id == user.id, TotpSecret.confirmed_dt.is_not(None))
    other = exists().where(Passkey.user_id == user.id, Passkey.id != passkey.id)
    return bool(store.scalar(select(totp | other)))


def _as_json(credential: Any) -> str:
    if isinstance(credential, str):
        return credential
    if not isinstance(credential, dict):
        raise ValueError("a credential is a JSON object")
    return json.dumps(credential)
