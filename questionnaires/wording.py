"""An instrument's wording in the client's language (pure: definitions in, plain data out).

Only a *verified* translation is used: every text in it was found word for word in two
independent public sources, named in the definition (``translations.<lang>.sources``).
An item a verified translation leaves out (``not_translated``) keeps its original
wording, marked with the original's language on the page.
"""

from __future__ import annotations

from typing import Any

from outcome.core.instruments import Instrument
from outcome.core.instruments import Translation


def verified_translation(instrument: Instrument, language: str) -> Translation | None:
    """The instrument's verified translation into ``language``, or None."""
    return next((t for t in instrument.translations
                 if t.language == language and t.is_verified), None)


def shown_language(instrument: Instrument, language: str) -> str:
    """The language the instrument's wording is shown in for a reader of ``language``:
    ``language`` where a verified translation exists, else the original's."""
    original = instrument.languages[0]
    if language == original or verified_translation(instrument, language) is not None:
        return language
    return original


def instrument_wording(instrument: Instrument, language: str) -> dict[str, Any]:
    """The instrument's verbatim wording in ``language`` where a verified translation has it.

    Returns {"language": ..., "original": ..., "stem": ..., "items": {id: text},
    "options": {id: {value: label}}}: "language" is the language the page is in for this
    measure (the original where no verified translation exists); items and options hold
    the translated texts only, the page shows the original (marked) for the rest.
    """
    original = instrument.languages[0]
    translation = verified_translation(instrument, language) if language != original \
        else None
    if translation is None:
        return {"language": original, "original": original, "stem": None, "items": {},
                "options": {}}
    items = dict(translation.items)
    options = {item_id: dict(labels) for item_id, labels in translation.options}
    shared = dict(translation.default_options)
    if shared:
        for item in instrument.items:
            if item.id in items and item.id not in options and item.options:
                options[item.id] = {o.value: shared[o.value] for o in item.options
                                    if o.value in shared}
    return {"language": language, "original": original, "stem": translation.stem,
            "items": items, "options": options}
