"""Interface languages: every string translated, clients in their own language, and
questionnaire wording only from verbatim translations."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from outcome.services.links import issue_link
from questionnaires.loader import builtin_library
from questionnaires.loader import load_library
from questionnaires.wording import instrument_wording

ROOT = Path(__file__).resolve().parent.parent
PO = ROOT / "outcome" / "translations" / "ru" / "LC_MESSAGES" / "messages.po"
LIB = builtin_library()


def test_every_interface_string_has_a_russian_translation(tmp_path):
    pot = tmp_path / "messages.pot"
    subprocess.run([str(Path(sys.executable).parent / "pybabel"), "extract", "-F",
                    "babel.cfg", "-k", "_l", "-k", "N_", "-o", str(pot), "."], cwd=ROOT, check=True,
                   capture_output=True)
    wanted = {m.id for m in read_po(pot.open("rb")) if m.id}
    catalog = read_po(PO.open("rb"), locale="ru")
    translated = {m.id for m in catalog if m.id and m.string and "fuzzy" not in m.flags}
    assert wanted - translated == set(), "run pybabel update and translate these"


def test_compiled_catalog_matches_the_po_file():
    buffer = io.BytesIO()
    write_mo(buffer, read_po(PO.open("rb"), locale="ru"))
    assert buffer.getvalue() == PO.with_suffix(".mo").read_bytes(), "recompile messages.mo"


def test_staff_pages_follow_the_browser_language(client):
    html = client.get("/login", headers={"Accept-Language": "ru,en;q=0.5"}).get_data(
        as_text=True)
    assert '<html lang="ru">' in html and "Войти" in html
    assert "Sign in" in client.get("/login").get_data(as_text=True)


def test_a_russian_client_sees_russian_interface_and_the_verified_russian_phq9(
        client, db_session, clock, make_user, make_client, make_episode):
    person = make_client(make_user(), locale="ru")
    _, token = issue_link(db_session, episode=make_episode(person), purpose="pre",
                          now=clock(), library=LIB)
    db_session.commit()
    client.get(f"/q/{token}")
    html = client.get("/q/").get_data(as_text=True)
    assert '<html lang="ru">' in html and "Опросник 1 из 2" in html
    # The verified official Russian PHQ-9 (issue 17); its difficulty question, found in
    # one source only, stays in English and is marked as English.
    assert "Вам не хотелось ничего делать" in html and "Более недели" in html
    assert "Little interest or pleasure" not in html
    assert '<span lang=en>If you checked off any problems' in html
    assert "Далее" in html


def test_verbatim_translations_from_a_definition_are_used(tmp_path):
    overlay = {"overlay_for": "gad7@1", "translations": {"ru": {
        "verified": True, "sources": [{"covers": "all", "url": "https://a.example"},
                                      {"covers": "all", "url": "https://b.example"}],
        "stem": "Как часто за последние 2 недели вас беспокоили следующие проблемы?",
        "items": {"gad7_1": "Нервозность, тревожность или ощущение, что вы на пределе"},
        "options": {"gad7_1": {"0": "Ни разу"}}}}}
    (tmp_path / "gad7-ru.yaml").write_text(json.dumps(overlay, ensure_ascii=False))
    gad7 = load_library(tmp_path).get("gad7")
    wording = instrument_wording(gad7, "ru")
    assert wording["language"] == "ru" and wording["stem"].startswith("Как часто")
    assert wording["items"]["gad7_1"].startswith("Нервозность")
    assert wording["options"]["gad7_1"][0] == "Ни разу"
    assert instrument_wording(gad7, "en")["language"] == "en"


def catalogue_faults(text: str) -> list[str]:
    """What is wrong with the entries of a .po/.pot text: each entry (lines between blank
    lines) has comments, then at most one msgctxt, one msgid, at most one msgid_plural and
    its msgstr lines, in that order; and no (msgctxt, msgid) twice."""
    faults, seen = [], set()
    for number, block in enumerate(text.split("\n\n")):
        lines = [line for line in block.splitlines() if line and not line.startswith("#")]
        if not lines:
            continue
        keywords = [line.split(" ", 1)[0] for line in lines if not line.startswith('"')]
        if not lines[0].startswith(("msgctxt ", "msgid ")):
            faults.append(f"entry {number} starts with {lines[0][:40]!r}")
        shape = [k if not k.startswith("msgstr[") else "msgstr[]" for k in keywords]
        allowed = (["msgid", "msgstr"], ["msgctxt", "msgid", "msgstr"],
                   ["msgid", "msgid_plural"] + ["msgstr[]"] * (len(shape) - 2),
                   ["msgctxt", "msgid", "msgid_plural"] + ["msgstr[]"] * (len(shape) - 3))
        if shape not in allowed:
            faults.append(f"entry {number} ({lines[0][:40]!r}) has {keywords}")
        head = block.split("msgstr", 1)[0]
        if head in seen and number:
            faults.append(f"entry {number} ({lines[0][:40]!r}) is there twice")
        seen.add(head)
    return faults


def test_the_catalogues_are_well_formed():
    # A line-based merge of two branches that both appended entries can drop a `msgid ""`
    # or a blank line, and keep an entry twice; babel's reader then glues one entry's text
    # onto another's translation, or keeps either duplicate, without a word.
    for path in (PO, ROOT / "outcome" / "translations" / "messages.pot"):
        assert catalogue_faults(path.read_text(encoding="utf-8")) == [], path
