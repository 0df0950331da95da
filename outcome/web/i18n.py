"""Interface language: English and Russian, with Flask-Babel.

Clients see their own language (``Client.locale``, set by their therapist), or the one
they chose with the switch on the client pages for this visit; staff see the language
chosen on their account page (``User.locale``) or, when they chose none, the best match
of their browser's languages. Only interface strings are translated here: questionnaire
wording comes from an instrument definition's verified verbatim translation, or stays in
its original language; it is never machine-translated.

The list of languages is :data:`outcome.core.languages.SUPPORTED_LOCALES`, the one list.
"""

from __future__ import annotations

import datetime as dt

from flask import Flask
from flask import g
from flask import has_request_context
from flask import request
from flask_babel import Babel
from flask_babel import get_locale
from flask_babel import get_timezone
from flask_login import current_user

from outcome.core.languages import LANGUAGE_NAMES
from outcome.core.languages import SUPPORTED_LOCALES
from outcome.models import Clinic
from outcome.services import explanations
from outcome.web.database import db_session

LANGUAGES = SUPPORTED_LOCALES
babel = Babel()


def staff_locale() -> str | None:
    """The signed-in staff member's chosen language, or None (follow the browser)."""
    try:
        chosen = getattr(current_user, "locale", None)
    except Exception:  # no login manager or no request: no choice
        return None
    return chosen if chosen in LANGUAGES else None


def select_locale() -> str:
    """The client's language on questionnaire pages; a staff member's own choice; otherwise
    the browser's best match."""
    browser = request.accept_languages.best_match(LANGUAGES) or "en"
    if "client_locale" in g:  # a client page: never the staff member's choice
        chosen = g.get("client_locale")
        return str(chosen) if chosen in LANGUAGES else browser
    return staff_locale() or browser


def select_timezone() -> str | None:
    """The clinic's time zone: the client's clinic on questionnaire pages (a view sets
    ``g.clinic_timezone``), else the signed-in staff member's clinic; None (UTC)
    otherwise."""
    chosen = g.get("clinic_timezone")
    if chosen:
        return str(chosen)
    if has_request_context() and current_user and current_user.is_authenticated:
        clinic = db_session().get(Clinic, current_user.clinic_id)
        return clinic.timezone if clinic is not None else None
    return None


def format_day(value: dt.date | dt.datetime | None) -> str:
    """A date on any page: one style, the reader's language, the clinic's time zone
    ("Sep 8, 2026"; in Russian the day first); the ``day`` filter in templates."""
    return explanations.format_day(value, get_locale(), get_timezone())


def format_moment(value: dt.datetime | None, seconds: bool = False) -> str:
    """A date and time on any page, in the clinic's time zone ("Sep 8, 2026, 9:00 AM";
    in Russian with the 24-hour clock); the ``moment`` filter in templates."""
    return explanations.format_moment(value, get_locale(), get_timezone(), seconds)


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "en")
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone)
    app.context_processor(lambda: {"current_locale": str(get_locale() or "en"),
                                   "supported_locales": LANGUAGES,
                                   "language_names": LANGUAGE_NAMES})
    # Issue 17: one date style and one date-and-time style on every page.
    app.add_template_filter(format_day, "day")
    app.add_template_filter(format_moment, "moment")
