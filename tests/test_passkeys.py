"""Passkeys as a staff second factor (issue 20): the service, with a software
authenticator (tests/passkey_authenticator.py)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from outcome.models import Passkey
from outcome.models import TotpSecret
from outcome.services import clinic_settings
from outcome.services import passkeys
from outcome.services import two_factor
from outcome.services.passkeys import PasskeyError
from outcome.services.passkeys import RelyingParty
from tests.passkey_authenticator import SoftAuthenticator

RP = RelyingParty(id="localhost", origin="http://localhost")
NOW = dt.datetime(2026, 9, 1, 9, tzinfo=dt.UTC)


def enrol(store, user, device: SoftAuthenticator, name: str = "Laptop") -> Passkey:
    options, challenge = passkeys.registration_options(store, user, RP)
    return passkeys.register(store, user, RP, device.create(options), challenge, name, NOW)


def sign_in(store, user, device: SoftAuthenticator, **kw) -> Passkey:
    options, challenge = passkeys.authentication_options(store, user, RP)
    return passkeys.authenticate(store, user, RP, device.get(options, **kw), challenge, NOW)


def test_a_registered_passkey_signs_in_and_counts_as_a_second_factor(db_session, make_user):
    user = make_user()
    device = SoftAuthenticator()
    assert not two_factor.has_second_factor(db_session, user)
    passkey = enrol(db_session, user, device, name="  Work laptop  ")
    assert passkey.name == "Work laptop" and passkey.transports == ["internal"]
    assert two_factor.has_second_factor(db_session, user)
    used = sign_in(db_session, user, device)
    assert used.id == passkey.id and used.sign_count == 1 and used.last_used_dt == NOW


def test_registration_options_exclude_existing_and_prefer_verification(db_session, make_user):
    import json
    user = make_user()
    existing = enrol(db_session, user, SoftAuthenticator())
    options = json.loads(passkeys.registration_options(db_session, user, RP)[0])
    assert [c["id"] for c in options["excludeCredentials"]] == [existing.credential_id]
    selection = options["authenticatorSelection"]
    assert selection["residentKey"] == "preferred"
    assert selection["userVerification"] == "preferred"
    assert options["rp"]["id"] == "localhost"
    assert user.email.encode() not in passkeys.user_handle(user)


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, None, 5, "tab\there"])
def test_a_passkey_needs_a_name_of_1_to_100_characters(db_session, make_user, name):
    user = make_user()
    with pytest.raises(PasskeyError) as refused:
        enrol(db_session, user, SoftAuthenticator(), name=name)
    assert refused.value.field == "name"
    assert db_session.scalars(select(Passkey)).all() == []


def test_a_registration_for_another_challenge_origin_or_twice_is_refused(db_session, make_user):
    user = make_user()
    device = SoftAuthenticator()
    options, _challenge = passkeys.registration_options(db_session, user, RP)
    with pytest.raises(PasskeyError):
        passkeys.register(db_session, user, RP, device.create(options), b"another" * 4,
                          "Laptop", NOW)
    with pytest.raises(PasskeyError):
        options, challenge = passkeys.registration_options(db_session, user, RP)
        passkeys.register(db_session, user, RP,
                          device.create(options, origin="https://evil.example"),
                          challenge, "Laptop", NOW)
    enrol(db_session, user, device)
    with pytest.raises(PasskeyError, match="already registered"):
        enrol(db_session, make_user(), device)


@pytest.mark.parametrize("credential", [None, "not json", "[]", {}, {"id": "x"},
                                        {"id": "AA", "rawId": "AA", "type": "public-key",
                                         "response": {"clientDataJSON": "!!",
                                                      "attestationObject": "AA"}}])
def test_a_malformed_registration_is_refused_not_an_error(db_session, make_user, credential):
    user = make_user()
    _options, challenge = passkeys.registration_options(db_session, user, RP)
    with pytest.raises(PasskeyError):
        passkeys.register(db_session, user, RP, credential, challenge, "Laptop", NOW)


def test_authentication_allows_only_the_users_own_passkeys(db_session, make_user):
    import json
    mine, theirs = make_user(), make_user()
    my_device, their_device = SoftAuthenticator(), SoftAuthenticator()
    own = enrol(db_session, mine, my_device)
    enrol(db_session, theirs, their_device)
    options = json.loads(passkeys.authentication_options(db_session, mine, RP)[0])
    assert [c["id"] for c in options["allowCredentials"]] == [own.credential_id]
    # Somebody else's passkey, answering the user's options, is not theirs.
    options_text, challenge = passkeys.authentication_options(db_session, mine, RP)
    forged = json.loads(options_text)
    forged["allowCredentials"] = []
    with pytest.raises(PasskeyError, match="not registered for your account"):
        passkeys.authenticate(db_session, mine, RP, their_device.get(forged), challenge, NOW)


def test_no_passkey_no_authentication_options(db_session, make_user):
    with pytest.raises(PasskeyError):
        passkeys.authentication_options(db_session, make_user(), RP)


def test_a_wrong_challenge_rp_or_signature_is_refused(db_session, make_user):
    user = make_user()
    device = SoftAuthenticator()
    enrol(db_session, user, device)
    options, _challenge = passkeys.authentication_options(db_session, user, RP)
    with pytest.raises(PasskeyError, match="could not be checked"):
        passkeys.authenticate(db_session, user, RP, device.get(options), b"x" * 32, NOW)
    options, challenge = passkeys.authentication_options(db_session, user, RP)
    with pytest.raises(PasskeyError, match="could not be checked"):
        passkeys.authenticate(db_session, user, RP, device.get(options, rp_id="evil.example"),
                              challenge, NOW)
    impostor = SoftAuthenticator(credential_id=device.credential_id)  # same id, other key
    options, challenge = passkeys.authentication_options(db_session, user, RP)
    with pytest.raises(PasskeyError, match="could not be checked"):
        passkeys.authenticate(db_session, user, RP, impostor.get(options), challenge, NOW)


def test_a_counter_that_goes_backwards_is_refused_as_a_possible_clone(db_session, make_user):
    user = make_user()
    device = SoftAuthenticator()
    passkey = enrol(db_session, user, device)
    for _ in range(3):
        sign_in(db_session, user, device)
    assert passkey.sign_count == 3
    clone = SoftAuthenticator(credential_id=device.credential_id, key=device.key, sign_count=1)
    with pytest.raises(PasskeyError, match="copied") as refused:
        sign_in(db_session, user, clone)
    assert refused.value.field == "counter"
    assert passkey.sign_count == 3


def test_a_counter_that_drops_to_zero_is_refused_as_a_possible_clone(db_session, make_user):
    user = make_user()
    device = SoftAuthenticator()
    passkey = enrol(db_session, user, device)
    passkey.sign_count = 5
    db_session.flush()
    clone = SoftAuthenticator(credential_id=device.credential_id, key=device.key, sign_count=0,
                              step=0)
    with pytest.raises(PasskeyError, match="copied"):
        sign_in(db_session, user, clone)
    assert passkey.sign_count == 5


def test_an_authenticator_without_a_counter_is_accepted(db_session, make_user):
    user = make_user()
    device = SoftAuthenticator(step=0)
    passkey = enrol(db_session, user, device)
    sign_in(db_session, user, device)
    sign_in(db_session, user, device)
    assert passkey.sign_count == 0


@pytest.mark.parametrize(("stored", "new", "clone"), [
    (0, 0, False), (0, 5, False), (5, 6, False), (5, 0, True), (5, 5, True), (5, 4, True)])
def test_counter_rule(stored, new, clone):
    # WebAuthn section 7.2 step 21: either counter nonzero and the new one not above the
    # stored one is a possible clone (a key that counted and now says 0 is one).
    assert passkeys.counter_went_back(stored, new) is clone


def test_deleting_own_passkey_unless_it_is_the_last_required_factor(db_session, make_user,
                                                                    clinic):
    user, other = make_user(), make_user()
    first = enrol(db_session, user, SoftAuthenticator())
    second = enrol(db_session, user, SoftAuthenticator(), name="Key")
    with pytest.raises(PasskeyError, match="not yours"):
        passkeys.delete_passkey(db_session, other, first, clinic)
    clinic_settings.update(db_session, clinic, {"two_factor_roles": ["therapist"]})
    passkeys.delete_passkey(db_session, user, first, clinic)
    with pytest.raises(PasskeyError, match="requires a second step"):
        passkeys.delete_passkey(db_session, user, second, clinic)
    assert passkeys.passkeys_of(db_session, user) == [second]
    # With a confirmed authenticator app, the last passkey may go.
    db_session.add(TotpSecret(user_id=user.id, secret="x", confirmed_dt=NOW))
    db_session.flush()
    passkeys.delete_passkey(db_session, user, second, clinic)
    assert passkeys.passkeys_of(db_session, user) == []


def test_the_last_passkey_may_go_when_the_clinic_does_not_require_one(db_session, make_user,
                                                                      clinic):
    user = make_user()
    only = enrol(db_session, user, SoftAuthenticator())
    clinic_settings.update(db_session, clinic, {"two_factor_roles": ["admin"]})
    passkeys.delete_passkey(db_session, user, only, clinic)
    assert not two_factor.has_second_factor(db_session, user)
