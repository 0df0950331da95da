"""An instrument's wording in the client's language (pure: definitions in, plain data out)."""

from __future__ import annotations

from typing import Any

from outcome.core.instruments import Instrument


def instrument_wording(instrument: Instrument, language: str) -> dict[str, Any]:
    """The instrument's verbatim wording in ``language`` where the definition has it.

    Returns {"lang": ..., "stem": ..., "items": {id: text}, "options": {id: {value: label}}}
    with the original wording (marked with its language) wherever no translation exists.
    """
    original = instrument.languages[0]
    translation = next((t for t in instrument.translations if t.language == language), None)
    items = dict(translation.items) if translation else {}
    options = {item_id: dict(labels) for item_id, labels in translation.options} if (
        translation) else {}
    return {"language": language if translation else original, "original": original,
            "stem": (translation.stem if translation and translation.stem else None),
            "items": items, "options": options}
