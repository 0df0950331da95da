"""A staff member's own language for pages and PDFs (issue 17). Flushes; never commits."""

from __future__ import annotations

from sqlalchemy.orm import Session

from outcome.core.languages import SUPPORTED_LOCALES
from outcome.models import User
from outcome.services.staff import N_
from outcome.services.staff import StaffError


def set_staff_locale(session: Session, user: User, locale: str | None) -> None:
    """Set ``user``'s language (one of SUPPORTED_LOCALES), or None to follow the browser.

    Raises :class:`StaffError` (field ``locale``) for any other value; nothing changes.
    """
    if locale is not None and locale not in SUPPORTED_LOCALES:
        raise StaffError(N_("The language must be one of: %(choices)s."), field="locale",
                         choices=", ".join(SUPPORTED_LOCALES))
    user.locale = locale
    session.flush()
