"""Staff second factors (issue 20): authenticator-app codes (TOTP), recovery codes, and
whether a user must or may use a second step at sign-in.

Passkeys live in :mod:`outcome.services.passkeys`; this module only asks whether a user
has one.
"""

from __future__ import annotations

from sqlalchemy import exists
from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.models import Clinic
from outcome.models import Passkey
from outcome.models import TotpSecret
from outcome.models import User
from outcome.services import clinic_settings


def has_second_factor(store: Session, user: User) -> bool:
    """Whether ``user`` has a confirmed authenticator app or at least one passkey, so
    signing in takes a second step after the password."""
    totp = exists().where(TotpSecret.user_id == user.id, TotpSecret.confirmed_dt.is_not(None))
    passkey = exists().where(Passkey.user_id == user.id)
    return bool(store.scalar(select(totp | passkey)))


def required_for(user: User, clinic: Clinic) -> bool:
    """Whether the clinic's ``two_factor_roles`` setting names one of ``user``'s roles."""
    required = set(clinic_settings.current(clinic)["two_factor_roles"])
    return bool(required.intersection(user.roles))
