"""Every sentence a clinician reads is true to its numbers and readable, in English and
Russian: no "1 points", no internal ids ("phq9_9", "harmed"), no doubled words ("(unverified)
(unverified)", "red Red:"), no template leftovers, and no English left in the Russian.

The catalogue is walked dynamically (every id of ``outcome.core.messages.TEMPLATES``, with
boundary parameters), so messages added later are checked too; the real explanations of
every built-in instrument are rendered; and the caseload and client pages of a small world
are scanned for the same faults (issue 15, "Sentences that are untrue or unreadable").
"""

from __future__ import annotations

import dataclasses
import html as htmllib
import io
import re

import numpy as np
import pytest
from pypdf import PdfReader

from outcome.core.change import CATEGORIES
from outcome.core.messages import TEMPLATES
from outcome.core.messages import Message
from outcome.core.signals import alliance_signals
from outcome.core.signals import explain_critical
from outcome.core.signals import explain_unanswered_critical
from outcome.core.signals import outcome_signals
from outcome.core.signals import reliable_change_source
from outcome.core.trajectory import COLOURS
from outcome.services.explanations import render
from outcome.services.explanations import render_explanation
from tests.helpers import LIB
from tests.helpers import faults
from tests.helpers import flat
from tests.helpers import submit

PLACEHOLDER = re.compile(r"%\((\w+)\)s")
PHQ, ORS, SRS = LIB.get("phq9"), LIB.get("ors_vas"), LIB.get("srs_vas")
KINDS = ("rupture", "possible_rupture", "concern")

def _m(message_id: str, **params) -> dict:
    return Message(message_id, params).as_json()


def _sources() -> list:
    """The reliable-change source of every built-in instrument (verified or not), and of
    the instruments whose rule needs the clinic's intake SD."""
    found = []
    for ins in LIB:
        for sd in (None, 5.3):
            source = reliable_change_source(ins, sd, 40 if sd else None)
            if source is not None:
                found.append(source.as_json())
    return found


def _candidates(name: str, count: str | None) -> list:
    """Values a placeholder called ``name`` is tried with, first one the default."""
    numbers = [7.5, 0, 1, 2, 5, 21, 1.5, 0.25, 12.0]
    if name == count:
        return [2, 0, 1, 5, 21, 1.5, 0.5, 101]
    table: dict[str, list] = {
        "colour": [_m(f"colour.{c}") for c in COLOURS],
        "category": [_m(f"change.category.{c}") for c in CATEGORIES],
        "kind": [_m(f"alliance.kind.{k}") for k in KINDS],
        "instrument": ["PHQ-9", "ORS", "GBO"],
        "rule": [*_sources(), _m("reliable_change.not_defined")],
        "source": ["NHS Talking Therapies"],
        "head": [_m("progress.head", colour=_m(f"colour.{c}"), instrument="PHQ-9",
                    observed=12, session=3) for c in COLOURS],
        "body": [_m("progress.on_track"), _m("progress.first_session")],
        "moved": [_m("progress.moved.improved", points=1), _m("progress.moved.unchanged"),
                  _m("progress.moved.worse", points=2)],
        "state": [_m("alliance.repaired", session=5, score=38),
                  _m("alliance.unrepaired"), _m("alliance.open")],
        "clauses": [[_m("alliance.head", kind=_m("alliance.kind.rupture"), session=3,
                        instrument="SRS", observed=28)]],
        "answers": [[explain_critical(PHQ, "phq9_9", v).message.as_json() for v in (1, 3)]],
        "change": [{"signed": v} for v in (-7.5, 0, 1, 6)],
        "side": [">=", "<", "<="],
        "text": ["Old words."],
        "clinician_message": [PHQ.critical_items[0].clinician_message],
        "label": ["Several days"],
        "reliability": [{"number": 0.84, "digits": 6}],
        "percentile": [{"number": 92, "digits": 0}, {"number": 1, "digits": 0}],
        "green_max": [{"number": 75, "digits": 0}],
        "yellow_max": [{"number": 90, "digits": 0}],
        "fraction": [{"number": 50, "digits": 0}],
        "session": [1, 2, 5, 21],
    }
    return table.get(name, numbers)


def _renderings(template):
    """``(params, text_en, text_ru)`` for ``template``: each placeholder swept through its
    candidates while the others keep their first; the count through every boundary."""
    names = list(dict.fromkeys(PLACEHOLDER.findall(template.singular)))
    base = {n: _candidates(n, template.count)[0] for n in names}
    sweeps = [dict(base)]
    for n in names:
        for value in _candidates(n, template.count)[1:]:
            sweeps.append({**base, n: value})
    for params in sweeps:
        yield params, render(template.id, params, "en"), render(template.id, params, "ru")


def _english_words(template) -> set[str]:
    # The template's own words (not its parameters'); abbreviations such as SD, RCI and
    # n stay as they are in Russian clinical text, and so does the name of the English
    # programme whose paired rules are applied (NHS Talking Therapies).
    text = PLACEHOLDER.sub(" ", " ".join(filter(None, (template.singular, template.plural))))
    return set(re.findall(r"[A-Za-z]{3,}", text)) - {"SD", "RCI", "NHS", "Talking", "Therapies"}


def _shown(value) -> str:
    if isinstance(value, dict) and "message" in value:
        return render(value["message"], value.get("params") or {}, "ru") + " " + render(
            value["message"], value.get("params") or {}, "en")
    if isinstance(value, list):
        return " ".join(_shown(v) for v in value)
    return str(value)


def _has_words(template) -> bool:
    return bool(re.search(r"[A-Za-z]", PLACEHOLDER.sub("", template.singular)))


def test_every_message_in_the_catalogue_reads_well_in_both_languages():
    problems = []
    for template in TEMPLATES.values():
        for params, en, ru in _renderings(template):
            for locale, text in (("en", en), ("ru", ru)):
                for fault in faults(text):
                    problems.append(f"{template.id} [{locale}] {fault} in {text!r}")
                if text == template.id:
                    problems.append(f"{template.id} [{locale}] did not render with {params}")
            if _has_words(template) and en == ru:
                problems.append(f"{template.id}: the Russian is the English: {ru!r}")
            left = _english_words(template) & set(re.findall(r"[A-Za-z]{3,}", ru))
            left -= {w for v in params.values()
                     for w in re.findall(r"[A-Za-z]{3,}", _shown(v))}
            if left:
                problems.append(f"{template.id}: English {sorted(left)} in the Russian {ru!r}")
    assert problems == []


def _cases():
    """Explanations of hand-made series on the edges of every rule, per instrument."""
    series = [[8, 8, 16, 16], [9, 10, 10, 11], [15, 15, 14, 14], [20, 19, 18, 17, 16, 15],
              [8, 9], [3], [14, 3], [np.nan, 12, 12, 13], [12, 13, 12, 12, 13, 12, 12, 12, 12]]
    for ins in [PHQ, ORS, *(i for i in LIB if i.role == "outcome")]:
        for rows in (series, [[40 - v if np.isfinite(v) else v for v in r] for r in series]):
            width = max(len(r) for r in rows)
            scores = np.array([list(r) + [np.nan] * (width - len(r)) for r in rows], float)
            low, high = ins.primary_range
            scores = np.clip(scores, low, high)
            sessions = np.tile(np.arange(1, width + 1), (len(rows), 1))
            for sd in (None, 5.3):
                signals = outcome_signals(ins, scores, sessions, intake_sd=sd,
                                          n_intake=40 if sd else None)
                for i in range(len(rows)):
                    yield signals.explain_progress(i)
                    if (change := signals.explain_change(i)) is not None:
                        yield change
    srs = np.array([[38, 38.5, 30, 38, 38.4], [39, 39, 39, 35, 34], [30, 31, 30, 29, 28]],
                   float)
    ally = alliance_signals(SRS, srs, np.tile(np.arange(1, 6), (3, 1)))
    for row in range(3):
        yield from ally.explain(row)
    for ins in LIB:
        for critical in ins.critical_items:
            for option in ins.item(critical.item).options:
                yield explain_critical(ins, critical.item, option.value)
            yield explain_unanswered_critical(ins, critical.item)


def test_the_core_s_explanations_read_well_in_both_languages():
    problems = []
    for explanation in _cases():
        for locale in ("en", "ru"):
            text = render_explanation(explanation.as_json(), locale)
            problems += [f"[{locale}] {fault} in {text!r}" for fault in faults(text)]
    assert sorted(set(problems)) == []


def test_reliable_change_sources_say_unverified_once():
    for ins in LIB:
        for sd in (None, 5.3):
            source = reliable_change_source(ins, sd, 40 if sd else None)
            if source is None:
                continue
            for locale, word in (("en", "unverified"), ("ru", "не проверено")):
                text = render_explanation(source.as_json(), locale)
                assert text.count(word) == (0 if ins.reliable_change.is_verified else 1), text
                assert not faults(text), text


def _progress(ins, series, **kwargs) -> str:
    scores = np.array([series], float)
    sessions = np.arange(1, len(series) + 1)[None, :]
    signals = outcome_signals(ins, scores, sessions, **kwargs)
    return render_explanation(signals.explain_progress(0).as_json(), "en")


def test_still_in_the_clinical_range_only_when_it_was_at_intake():
    # PHQ-9 (clinical 10 or more): 9 at intake, 11 at session 4: yellow, not "still".
    text = _progress(PHQ, [9, 10, 10, 11])
    assert text.startswith("Yellow:") and "still" not in text
    assert "in the clinical range now, though not at intake" in text
    # 15 -> 14: clinical at both ends, "still" is true.
    text = _progress(PHQ, [15, 15, 14, 14])
    assert text.startswith("Yellow:") and "still in the clinical range" in text
    # Without a cutoff nothing is said about a clinical range.
    text = _progress(dataclasses.replace(PHQ, cutoff=None), [15, 15, 14, 14])
    assert text.startswith("Yellow:") and "clinical range" not in text


def test_the_first_white_score_does_not_say_colours_start_later():
    text = _progress(PHQ, [5])
    assert text.startswith("White:") and "colours start" not in text
    assert "functional range" in text


def test_category_names_are_the_user_facing_ones():
    names = {c: render(f"change.category.{c}", {}, "en") for c in CATEGORIES}
    assert names == {"recovered": "Recovered", "improved": "Reliably improved",
                     "unchanged": "No reliable change",
                     "deteriorated": "Reliably deteriorated",
                     "harmed": "Reliably deteriorated into the clinical range"}
    scores, sessions = np.array([[8.0, 8, 16, 16]]), np.array([[1, 2, 3, 4]])
    change = outcome_signals(PHQ, scores, sessions).explain_change(0)
    assert change.level == "harmed"  # the internal key stays
    assert render_explanation(change.as_json(), "en").startswith(
        "Reliably deteriorated into the clinical range: PHQ-9 from 8 to 16 (+8)")


def test_an_unanswered_safety_question_is_named_by_its_number_and_text():
    text = render_explanation(explain_unanswered_critical(PHQ, "phq9_9").as_json(), "en")
    assert text.startswith("PHQ-9 item 9 (Thoughts that you would be better off dead or of "
                           "hurting yourself in some way)") and "phq9_9" not in text
    assert "left unanswered" in text
    assert "пункт 9" in render_explanation(
        explain_unanswered_critical(PHQ, "phq9_9").as_json(), "ru")


# --- the pages: a small world, scanned ---------------------------------------------------

BLOCK = re.compile(r"<(/?)(td|th|tr|li|p|div|h\d|br|dt|dd|option|label|table|section|"
                   r"figcaption|summary|caption|ul|ol|nav|header|footer|title|text)\b[^>]*>", re.I)


def visible_text(page: str) -> str:
    """The words of a page as a reader meets them: scripts, styles and SVG drawing left
    out, block elements apart (" _ "), inline ones (a badge's span) joined by a space."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S | re.I)
    page = re.sub(r"<!--.*?-->", " ", page, flags=re.S)
    page = BLOCK.sub(" _ ", page)
    page = re.sub(r"<[^>]+>", " ", page)
    return " ".join(htmllib.unescape(page).split())


def _phq(total: int, item9: int | None = 0) -> dict:
    values, left = {}, total - (item9 or 0)
    for i in range(1, 9):
        values[f"phq9_{i}"] = min(3, max(0, left))
        left -= values[f"phq9_{i}"]
    if item9 is not None:
        values["phq9_9"] = item9
    return values


@pytest.fixture
def world(db_session, make_user, make_client, make_episode, assign):
    """A therapist (supervised) whose clients are: harmed (8 -> 16), yellow without being
    clinical at intake (9 -> 11), yellow and still clinical (15 -> 14), a safety question
    left blank, an ORS (unverified threshold) recovery and an SRS rupture."""
    therapist = make_user(display_name="Dana Mills")
    supervisor = make_user("supervisor", display_name="Sam Reyes")
    assign(supervisor, therapist)
    people = {}
    for name, totals in (("worse", [8, 8, 16, 16]), ("mild", [9, 10, 10, 11]),
                         ("still", [15, 15, 14, 14]), ("blank", [14, 13])):
        person = make_client(therapist, name=f"Person {name}")
        episode = make_episode(person)
        for week, total in enumerate(totals):
            blank = name == "blank" and week == len(totals) - 1
            submit(db_session, episode, PHQ, _phq(total, None if blank else 0), week)
        people[name] = person
    person = make_client(therapist, name="Person ors")
    episode = make_episode(person)
    for week, value in enumerate([4, 4.5, 6, 8]):
        submit(db_session, episode, ORS, {f"ors_{i}": value for i in range(1, 5)}, week)
    for week, value in enumerate([9.5, 9.6, 7.0, 9.0, 8.8]):
        submit(db_session, episode, SRS, {f"srs_{i}": value for i in range(1, 5)}, week)
    people["ors"] = person
    db_session.commit()
    return therapist, supervisor, people


@pytest.mark.parametrize("language", ["en", "ru"])
def test_caseload_and_client_pages_read_well(auth, client, world, language):
    therapist, supervisor, people = world
    headers = {"Accept-Language": language}
    pages = {}
    auth.login(therapist.email)
    pages["caseload"] = client.get("/", headers=headers)
    for name, person in people.items():
        pages[name] = client.get(f"/clients/{person.code}", headers=headers)
    reports = {name: client.get(f"/clients/{person.code}/report.pdf")
               for name, person in people.items()} if language == "en" else {}
    auth.logout()
    auth.login(supervisor.email)
    pages["supervision index"] = client.get("/supervision/", headers=headers)
    pages["supervision"] = client.get(f"/supervision/therapists/{therapist.id}",
                                      headers=headers)
    for name, person in people.items():
        pages[f"supervision {name}"] = client.get(f"/supervision/clients/{person.code}",
                                                  headers=headers)
    problems = []
    for name, response in pages.items():
        assert response.status_code == 200, name
        text = visible_text(response.get_data(as_text=True))
        problems += [f"{name}: {fault}" for fault in faults(text)]
    for name, response in reports.items():  # the progress report (PDF, English)
        assert response.status_code == 200, name
        pdf = PdfReader(io.BytesIO(response.data))
        text = flat(" ".join(page.extract_text() for page in pdf.pages))
        problems += [f"{name} report: {fault}" for fault in faults(text)]
    assert "\n".join(problems) == ""
    if language == "en":
        text = visible_text(pages["mild"].get_data(as_text=True))
        assert "still in the clinical range" not in text
        assert "in the clinical range now, though not at intake" in text
        text = visible_text(pages["worse"].get_data(as_text=True))
        assert "Reliably deteriorated into the clinical range" in text
        text = visible_text(pages["blank"].get_data(as_text=True))
        assert "PHQ-9 item 9 (" in text


def test_analyse_prints_the_category_names(tmp_path):
    from click.testing import CliRunner

    from outcome.cli.monitoring import analyse_command

    rows = ["id,time,score"]
    for n, (pre, post) in enumerate([(20, 5), (20, 14), (12, 12), (14, 22), (4, 16), (18, 17),
                                     (6, 7), (22, 9)]):
        rows += [f"{n},pre,{pre}", f"{n},post,{post}"]
    path = tmp_path / "scores.csv"
    path.write_text("\n".join(rows) + "\n")
    result = CliRunner().invoke(analyse_command, [
        str(path), "--id", "id", "--time", "time", "--score", "score", "--pre", "pre",
        "--post", "post", "--reliability", "0.8", "--direction", "lower-is-better",
        "--cutoff", "c", "--functional-mean", "5", "--functional-sd", "3"])
    assert result.exit_code == 0, result.output
    for name in ("Recovered", "Reliably improved", "No reliable change",
                 "Reliably deteriorated into the clinical range"):
        assert f"  {name} " in result.output
    assert not faults(result.output), result.output
