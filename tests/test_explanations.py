"""Explanations as data: every message the core can produce has an English template and a
Russian translation, and renders in both languages, plurals included."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pytest
from babel.messages.pofile import read_po

from outcome.core.change import CATEGORIES
from outcome.core.messages import TEMPLATES
from outcome.core.messages import Message
from outcome.core.signals import alliance_signals
from outcome.core.signals import explain_critical
from outcome.core.signals import explain_unanswered_critical
from outcome.core.signals import outcome_signals
from outcome.core.trajectory import COLOURS
from outcome.core.trajectory import fit_trajectory
from outcome.services.explanations import format_number
from outcome.services.explanations import language
from outcome.services.explanations import render
from outcome.services.explanations import render_explanation
from questionnaires.loader import builtin_library

ROOT = Path(__file__).resolve().parent.parent
PO = ROOT / "outcome" / "translations" / "ru" / "LC_MESSAGES" / "messages.po"
LIB = builtin_library()
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _ids(value, found: set[str]) -> set[str]:
    if isinstance(value, dict):
        if "message" in value:
            found.add(value["message"])
        for v in value.values():
            _ids(v, found)
    elif isinstance(value, list):
        for v in value:
            _ids(v, found)
    return found


def _every_explanation():
    """Explanations of every built-in instrument over varied random series, with and
    without a clinic intake SD and a fitted curve: every path of the core."""
    rng = np.random.default_rng(7)
    for ins in LIB:
        lo, hi = ins.primary_range
        rows = []
        for _ in range(150):
            length = int(rng.integers(1, 9))
            values = np.clip(np.round(rng.uniform(lo, hi, length) * 2) / 2, lo, hi)
            row = [float(v) for v in values]
            if rng.random() < 0.1:
                row[0] = np.nan
            rows.append(row + [np.nan] * (9 - length))
        scores = np.array(rows)
        sessions = np.tile(np.arange(1, 10), (len(rows), 1))
        if ins.role == "outcome":
            ok = np.isfinite(scores.ravel())
            episode = np.repeat(np.arange(len(rows)), 9)
            model = fit_trajectory(ins.id, ins.direction, episode[ok], sessions.ravel()[ok],
                                   scores.ravel()[ok], now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                                   min_per_session=5)
            for m in (None, model):
                for sd in (None, 5.3):
                    signals = outcome_signals(ins, scores, sessions, model=m, intake_sd=sd,
                                              n_intake=40 if sd else None)
                    for i in range(len(rows)):
                        yield signals.explain_progress(i)
                        change = signals.explain_change(i)
                        if change is not None:
                            yield change
        elif ins.role == "alliance":
            signals = alliance_signals(ins, scores, sessions)
            for i in range(len(rows)):
                yield from signals.explain(i)
        for critical in ins.critical_items:
            for option in ins.item(critical.item).options:
                yield explain_critical(ins, critical.item, option.value)
            yield explain_unanswered_critical(ins, critical.item)


def test_every_message_the_core_produces_has_a_template():
    produced: set[str] = set()
    for explanation in _every_explanation():
        produced |= _ids(explanation.as_json(), set())
    assert produced - set(TEMPLATES) == set()
    # Ids built from a word: every colour, change category and rupture kind.
    built = ({f"colour.{c}" for c in COLOURS} | {f"change.category.{c}" for c in CATEGORIES}
             | {f"alliance.kind.{k}" for k in ("rupture", "possible_rupture", "concern")})
    assert built - set(TEMPLATES) == set()
    # Ids written out in the core and services (monitoring combines critical answers).
    written = set()
    for path in [*(ROOT / "outcome" / "core").glob("*.py"),
                 *(ROOT / "outcome" / "services").rglob("*.py")]:
        written |= set(re.findall(r'Message\(\s*"([\w.]+)"', path.read_text()))
    assert written - set(TEMPLATES) == set() and written


def test_every_message_has_a_russian_translation_with_the_same_placeholders():
    catalog = read_po(PO.open("rb"), locale="ru")
    for template in TEMPLATES.values():
        msgid = (template.singular, template.plural) if template.plural else template.singular
        entry = catalog.get(msgid, context=template.id)
        assert entry is not None and "fuzzy" not in entry.flags, template.id
        english = set(PLACEHOLDER.findall(template.singular))
        if template.plural:
            assert set(PLACEHOLDER.findall(template.plural)) == english, template.id
            assert template.count in english, template.id
            assert len(entry.string) == 3 and all(entry.string), template.id  # one, few, many
            forms = entry.string
        else:
            assert entry.string, template.id
            forms = (entry.string,)
        for form in forms:
            assert set(PLACEHOLDER.findall(form)) == english, template.id


def _sample(template, count=3.0):
    return {name: (count if name == template.count else
                   Message("colour.red").as_json() if name in ("colour", "head", "rule") else
                   7.5 if name in ("observed", "intake", "cutoff", "threshold") else "X")
            for name in PLACEHOLDER.findall(template.singular)}


@pytest.mark.parametrize("locale", ["en", "ru"])
def test_every_message_renders_in_both_languages(locale):
    for template in TEMPLATES.values():
        counts = (1, 2, 5, 21, 1.5) if template.plural else (3,)
        for count in counts:
            text = render(template.id, _sample(template, count), locale)
            assert text and "%(" not in text, (template.id, text)
    for explanation in _every_explanation():
        text = render_explanation(explanation.as_json(), locale)
        assert text and "%(" not in text and "{" not in text


def test_plurals_follow_each_language():
    for points, en, ru in ((1, "worse by 1 point", "ухудшение на 1 балл"),
                           (2, "worse by 2 points", "ухудшение на 2 балла"),
                           (5, "worse by 5 points", "ухудшение на 5 баллов"),
                           (21, "worse by 21 points", "ухудшение на 21 балл"),
                           (1.5, "worse by 1.5 points", "ухудшение на 1,5 балла"),
                           # Counted as shown: 1.04 is shown as 1.
                           (1.04, "worse by 1 point", "ухудшение на 1 балл")):
        assert render("progress.moved.worse", {"points": points}, "en") == en
        assert render("progress.moved.worse", {"points": points}, "ru") == ru


def test_a_whole_explanation_in_russian():
    scores = np.array([[12.0, 14.0, 16.0, 19.5]])
    sessions = np.array([[1, 2, 3, 4]])
    signals = outcome_signals(LIB.get("phq9"), scores, sessions)
    progress = signals.explain_progress(0).as_json()
    assert render_explanation(progress, "en").startswith(
        "Red: PHQ-9 19.5 at session 4, 12 at intake: worse by 7.5 points; reliable change "
        "is 6 points, NHS Talking Therapies.")
    russian = render_explanation(progress, "ru")
    assert russian.startswith("Красный: PHQ-9 19,5 на встрече 4, 12 в начале терапии: хуже "
                              "на 7,5 балла; надёжное изменение — 6 баллов, NHS Talking "
                              "Therapies.")
    from outcome.core.signals import rule_based_notice
    notice = render_explanation(rule_based_notice("PHQ-9", 3, 50).as_json(), "ru")
    assert "ожидаемой кривой выздоровления: 3 из 50." in notice


def test_numbers_keep_their_digits_and_take_the_locale_signs():
    assert format_number(2.25, "en") == "2.2" and format_number(2.0, "en") == "2"
    assert format_number(2.5, "ru") == "2,5" and format_number(-1.5, "ru") == "-1,5"
    assert format_number(None, "en") == "-" and format_number(float("nan"), "ru") == "-"
    assert format_number(0.0, "en", signed=True) == "+0"
    assert render("reliable_change.definition_sd",
                  {"sd": 5.25, "reliability": {"number": 0.84, "digits": 6}}, "en") == \
        "RCI from the definition's SD 5.2 and reliability 0.84"


def test_readers_languages_and_old_rows():
    assert language("ru_RU") == "ru" and language("ru-RU") == "ru" and language("de") == "en"
    assert language(None) == "en" and language("not a locale!") == "en"
    # Rows stored before migration 0008 still show their English text.
    assert render_explanation({"kind": "progress", "text": "Red: old words."}, "ru") == \
        "Red: old words."
    assert render_explanation({"message": "legacy.text", "params": {"text": "Old."}},
                              "ru") == "Old."
    assert render_explanation(None) == "" and render("no.such.id", {}, "ru") == "no.such.id"
