"""Explanations rendered in a reader's language: message id and parameters in, text out.

The core says what a signal means as a message id with parameters
(:mod:`outcome.core.messages`); this is the one place that turns them into words, with
Babel's catalogues in ``outcome/translations`` (English is the templates themselves,
Russian is ``ru/LC_MESSAGES/messages.mo``). It needs no Flask, so the pages (in the
reader's Flask-Babel locale), the API and the PDFs made by the scheduler all use it.

- Plurals go through Babel's ``npgettext`` with the count the reader sees: a whole
  number is its own count ("1 point", "2 points"); a fraction counts as 2, which picks
  the right form in English ("1.5 points") and in Russian ("1,5 балла").
- Numbers keep the digits they always had (at most one decimal, trailing zeros
  dropped) and take the locale's decimal sign and minus sign ("2.5" / "2,5").
- An unknown message id or a parameter the template lacks never breaks a page: the
  English text of what is known, or the id itself, is shown instead.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import zoneinfo
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from babel import Locale
from babel.core import UnknownLocaleError
from babel.dates import format_date
from babel.dates import format_time
from babel.numbers import get_decimal_symbol
from babel.numbers import get_minus_sign_symbol
from babel.support import NullTranslations
from babel.support import Translations

from outcome.core.languages import DEFAULT_LOCALE
from outcome.core.languages import SUPPORTED_LOCALES
from outcome.core.messages import SEPARATORS
from outcome.core.messages import TEMPLATES
from outcome.core.severity import Severity

if TYPE_CHECKING:
    from questionnaires.loader import InstrumentLibrary

TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"
LANGUAGES = SUPPORTED_LOCALES


@functools.cache
def _catalogue(locale: str) -> NullTranslations:
    if locale == DEFAULT_LOCALE:
        return NullTranslations()
    return Translations.load(str(TRANSLATIONS), [locale])


@functools.cache
def _symbols(locale: str) -> tuple[str, str]:
    return get_decimal_symbol(locale), get_minus_sign_symbol(locale)


def language(locale: Any) -> str:
    """The supported language of ``locale`` (a code, a babel ``Locale`` or None): its
    language if it is one of :data:`LANGUAGES`, else English."""
    if locale is None:
        return DEFAULT_LOCALE
    if isinstance(locale, Locale):
        return locale.language if locale.language in LANGUAGES else DEFAULT_LOCALE
    return _language(str(locale))


@functools.lru_cache(maxsize=256)
def _language(locale: str) -> str:
    if locale in LANGUAGES:
        return locale
    try:
        code = Locale.parse(locale.replace("-", "_")).language
    except (ValueError, UnknownLocaleError):
        return DEFAULT_LOCALE
    return code if code in LANGUAGES else DEFAULT_LOCALE


def format_number(value: Any, locale: str, digits: int = 1, signed: bool = False) -> str:
    """``value`` with at most ``digits`` decimals, trailing zeros dropped, in the locale's
    decimal and minus signs; "-" for a missing number (None or NaN)."""
    return _format(value, language(locale), digits, signed)


def _format(value: Any, code: str, digits: int = 1, signed: bool = False) -> str:
    if value is None or isinstance(value, bool):
        return "-"
    value = float(value)
    if not math.isfinite(value):
        return "-"
    text = f"{value:.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    decimal, minus = _symbols(code)
    text = text.replace(".", decimal).replace("-", minus)
    return f"+{text}" if signed and value >= 0 else text


def format_day(value: dt.date | dt.datetime | None, locale: Any = DEFAULT_LOCALE,
               tz: dt.tzinfo | str | None = None) -> str:
    """A date as every page and report writes one: Babel's medium date in ``locale``
    ("Sep 8, 2026";
    in Russian the day first and the month abbreviated); a moment is first put in ``tz``
    (the clinic's time zone). "" for None."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        value = _in_zone(value, tz).date()
    return format_date(value, "medium", locale=language(locale))


def format_moment(value: dt.datetime | None, locale: Any = DEFAULT_LOCALE,
                  tz: dt.tzinfo | str | None = None, seconds: bool = False) -> str:
    """A date and time in ``tz`` (the clinic's time zone) as every page and report writes
    one: the medium date and the short time joined the locale's way
    ("Sep 8, 2026, 9:00 AM"; in Russian with the 24-hour clock); with ``seconds`` (the
    audit log) "Sep 8, 2026, 9:00:00 AM". "" for None."""
    if value is None:
        return ""
    code = language(locale)
    moment = _in_zone(value, tz)
    pattern = Locale.parse(code).datetime_formats["medium"]
    return str(pattern).format(format_time(moment, "medium" if seconds else "short",
                                           locale=code),
                               format_date(moment, "medium", locale=code))


def _in_zone(value: dt.datetime, tz: dt.tzinfo | str | None) -> dt.datetime:
    if value.tzinfo is None:  # stored moments are UTC
        value = value.replace(tzinfo=dt.UTC)
    zone = zoneinfo.ZoneInfo(tz) if isinstance(tz, str) else tz
    return value.astimezone(zone) if zone is not None else value


def _count(value: Any) -> int:
    # The count the reader sees: a whole number is itself, a fraction counts as 2.
    if isinstance(value, dict):
        digits = int(value.get("digits", 1))
        value = value.get("number", value.get("signed"))
    else:
        digits = 1
    if value is None or not math.isfinite(float(value)):
        return 2
    shown = float(f"{abs(float(value)):.{digits}f}")
    return int(shown) if shown.is_integer() else 2


def _value(message_id: str, value: Any, code: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return SEPARATORS.get(message_id, "; ").join(_value(message_id, v, code)
                                                     for v in value)
    if isinstance(value, dict):
        if "message" in value:
            return _render(value["message"], value.get("params") or {}, code)
        if "signed" in value:
            return _format(value["signed"], code, signed=True)
        if "number" in value:
            return _format(value["number"], code, int(value.get("digits", 1)))
        if "texts" in value:  # data's own wording per language (issue 19 suggestions)
            texts = value["texts"] or {}
            return str(texts.get(code) or texts.get(DEFAULT_LOCALE) or "")
        return str(value)
    return _format(value, code)


def say(message: str, locale: Any = DEFAULT_LOCALE, **params: Any) -> str:
    """An interface sentence, marked with ``N_`` where it is written, in ``locale`` through
    the catalogue (English where it has no translation), with ``%(name)s`` ``params``."""
    code = language(locale)
    text = message if code == DEFAULT_LOCALE else _catalogue(code).gettext(message)
    return text % params if params else text


def render(message_id: str, params: dict[str, Any] | None, locale: Any = DEFAULT_LOCALE
           ) -> str:
    """The text of message ``message_id`` with ``params`` in ``locale`` ("en", "ru", a
    babel Locale; anything else is English). Nested messages render in the same
    language; see :mod:`outcome.core.messages` for the parameter forms."""
    return _render(message_id, params or {}, language(locale))


def _render(message_id: str, params: dict[str, Any], code: str) -> str:
    template = TEMPLATES.get(message_id)
    if template is None:
        return message_id
    catalogue = _catalogue(code)
    wording: str
    if template.plural is not None and template.count is not None:
        wording = str(catalogue.npgettext(template.id, template.singular, template.plural,
                                          _count(params.get(template.count))))
    else:
        wording = str(catalogue.pgettext(template.id, template.singular))
    shown = {name: _value(message_id, value, code) for name, value in params.items()}
    # A translation that lost a placeholder, or a parameter missing from an old row, must
    # not take a page down: the English wording, else the id.
    for text in (wording, template.singular):
        try:
            return text % shown
        except (KeyError, TypeError, ValueError):
            continue
    return message_id


def render_explanation(explanation: dict[str, Any] | None, locale: Any = DEFAULT_LOCALE
                       ) -> str:
    """The text of a stored explanation (an ``Explanation.as_json()`` dict, or an alert's
    detail): its ``message`` and ``params`` in ``locale``; "" when there is none."""
    if not explanation:
        return ""
    if "message" in explanation:
        return render(explanation["message"], explanation.get("params") or {}, locale)
    # Not migrated yet (migration 0008 rewrites these): the English text as it was.
    return str(explanation.get("text", ""))


def explanation_json(explanation: dict[str, Any], locale: Any = DEFAULT_LOCALE
                     ) -> dict[str, Any]:
    """What the API shows of an explanation: message id, parameters and its text."""
    return {"message": explanation.get("message"), "params": explanation.get("params") or {},
            "text": render_explanation(explanation, locale)}


# --- what a reader who may not see answers is shown ---------------------------------------

# The messages that carry a critical item's answer (its value and its option's label).
CRITICAL_ANSWER_MESSAGES = frozenset({"critical.answer", "critical.answer_labelled",
                                      "critical.answers"})


def carries_answer(explanation: dict[str, Any] | None) -> bool:
    """Whether a stored explanation states a client's answer: a critical answer's
    explanation or alert detail (``rule`` ``critical.answer``, from
    :func:`outcome.core.signals.explain_critical`)."""
    if not explanation:
        return False
    return (explanation.get("rule") == "critical.answer"
            or explanation.get("message") in CRITICAL_ANSWER_MESSAGES)


def without_answers(explanation: dict[str, Any] | None,
                    library: InstrumentLibrary | None = None) -> dict[str, Any] | None:
    """A stored explanation as a reader who may not see the client's answers reads it.

    A supervisor (and anyone else who is not the client's therapist) learns that a
    critical item was answered at or above its threshold, which item (its number on the
    form) and how urgent it is: "Critical item answered (urgent): PHQ-9 item 9." The
    answer's value, its option label, the definition's message about it and the
    threshold are left out, in the text, the parameters and the numbers alike. Every
    other explanation is returned unchanged. ``library`` gives the instrument's short
    name, the item's number and each item's urgency; without it (or for an instrument
    no longer installed) the instrument's id and the item's id stand in.
    """
    if not carries_answer(explanation):
        return explanation
    assert explanation is not None
    kept = {key: value for key, value in explanation.items()
            if key not in ("message", "params", "numbers", "text")}
    numbers = explanation.get("numbers") or {}
    level = str(explanation.get("level") or "high")
    listed = numbers.get("items")
    items: list[Any] = listed if isinstance(listed, list) else [numbers]
    answered = [_answered(n, level, library) for n in items if isinstance(n, dict)]
    if len(answered) == 1:
        message, item_numbers = answered[0]
        return {**kept, **message, "numbers": item_numbers}
    return {**kept, "message": "critical.answers",
            "params": {"answers": [m for m, _ in answered]},
            "numbers": {"items": [n for _, n in answered]}}


def _answered(numbers: dict[str, Any], level: str, library: InstrumentLibrary | None
              ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The "critical item answered" message for one item, and the numbers it may keep."""
    instrument_id, item_id = numbers.get("instrument"), numbers.get("item")
    short, number = str(instrument_id or ""), None
    if library is not None and instrument_id:
        try:
            instrument = library.get(str(instrument_id))
        except KeyError:
            instrument = None
        if instrument is not None:
            short = instrument.short_name
            number = next((n for n, item in enumerate(instrument.items, start=1)
                           if item.id == item_id), None)
            level = next((c.urgency for c in instrument.critical_items if c.item == item_id),
                         level)
    item: Any = ({"message": "item.numbered", "params": {"number": number}}
                 if number is not None else str(item_id or ""))
    level = level if level in ("urgent", "high") else "high"
    message = {"message": "critical.answered",
               "params": {"instrument": short, "item": item,
                          "urgency": {"message": f"critical.urgency.{level}"}}}
    return message, {"instrument": instrument_id, "item": item_id, "item_number": number,
                     "urgency": level}


# --- the statistical basis of a colour, said once above a list (issue 17) -----------------

# A progress body that ends with its basis (the percentile thresholds and the fit), and
# the same words without it.
_WITHOUT_BASIS = {"progress.expected_stratum": "progress.expected_stratum_short",
                  "progress.expected_pooled": "progress.expected_pooled_short",
                  "progress.expected": "progress.expected_pooled_short"}


def split_basis(explanation: dict[str, Any] | None
                ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """A stored progress explanation without its statistical basis, and the basis.

    A red or yellow colour read from the clinic's expected recovery curves ends with the
    percentile thresholds and the fit it comes from ("yellow above 75 %, red above 90 %;
    clinic fit, n = 152 episodes"): the same for every client of a measure, so a list
    says it once (``progress.basis``) and each row keeps its own numbers. Any other
    explanation comes back unchanged, with None.
    """
    if not explanation or explanation.get("message") != "progress.explanation":
        return explanation, None
    params = explanation.get("params") or {}
    body, head = params.get("body") or {}, params.get("head") or {}
    short = _WITHOUT_BASIS.get(body.get("message", ""))
    if short is None:
        return explanation, None
    numbers = body.get("params") or {}
    fit = numbers.get("fit")
    if fit is None and "episodes" in numbers:  # stored before issue 15
        fit = {"message": "progress.fit.clinic", "params": {"episodes": numbers["episodes"]}}
    basis = {"message": "progress.basis",
             "params": {"instrument": (head.get("params") or {}).get("instrument", ""),
                        "green_max": numbers.get("green_max"),
                        "yellow_max": numbers.get("yellow_max"), "fit": fit}}
    shown = {**explanation, "params": {**params, "body": {**body, "message": short}}}
    return shown, basis


# English ordinal suffixes by CLDR ordinal plural category (Babel's ``ordinal_form``:
# 1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st, 22nd, 23rd, 101st, 111th).
_EN_ORDINAL = {"one": "st", "two": "nd", "few": "rd"}


def ordinal(n: int, locale: Any = DEFAULT_LOCALE) -> str:
    """``n`` as an ordinal number: "1st", "11th", "21st" in English; "16-й" in Russian
    (the masculine form, which agrees with "опросник", a questionnaire)."""
    code = language(locale)
    if code == "ru":
        return f"{n}-й"
    return f"{n}{_EN_ORDINAL.get(Locale.parse(code).ordinal_form(n), 'th')}"


def band_name(band: Severity | None, locale: Any = DEFAULT_LOCALE) -> str | None:
    """A severity band's words in ``locale`` ("moderately severe", "умеренно тяжёлая");
    a label the catalogue does not know (a clinic overlay's) as the definition wrote it;
    None for no band."""
    if band is None:
        return None
    return render(band.message_id, {}, locale) if band.message_id in TEMPLATES else band.label


def scored_text(instrument: str, score: float | None, band: Severity | None,
                locale: Any = DEFAULT_LOCALE) -> str:
    """"PHQ-9 16 (moderately severe)"; without a band "ORS 31"; "PHQ-9 -" for no score."""
    number = _format(score, language(locale))
    name = band_name(band, locale)
    if name is None:
        return f"{instrument} {number}"
    return render("severity.score", {"instrument": instrument, "score": number, "band": name},
                  locale)


def measure_count(n: int, instrument: str, locale: Any = DEFAULT_LOCALE) -> str:
    """A measure's own count: "the 15th GAD-7" ("15-й GAD-7"), never "session 15"."""
    return render("measure.ordinal", {"ordinal": ordinal(n, locale), "instrument": instrument},
                  locale)


__all__ = [
    "CRITICAL_ANSWER_MESSAGES",
    "LANGUAGES",
    "band_name",
    "carries_answer",
    "explanation_json",
    "format_day",
    "format_moment",
    "format_number",
    "language",
    "measure_count",
    "ordinal",
    "render",
    "render_explanation",
    "say",
    "scored_text",
    "split_basis",
    "without_answers",
]
