"""Interface language: English and Russian, with Flask-Babel.

Clients see their own language (``Client.locale``, set by their therapist); staff get
the best match of their browser's languages. Only interface strings are translated
here: questionnaire wording comes from an instrument definition's verbatim
translation, or stays in its original language; it is never machine-translated.
"""

from __future__ import annotations

from flask import Flask
from flask import g
from flask import request
from flask_babel import Babel
from flask_babel import get_locale

LANGUAGES = ("en", "ru")
babel = Babel()


def select_locale() -> str:
    """The client's language on questionnaire pages; otherwise the browser's best match."""
    chosen = g.get("client_locale")
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(LANGUAGES) or "en"


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "en")
    babel.init_app(app, locale_selector=select_locale)
    app.context_processor(lambda: {"current_locale": str(get_locale() or "en")})
