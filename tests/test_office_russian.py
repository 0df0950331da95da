"""The office pages of issue 17 in Russian: no English left on them."""

from __future__ import annotations

import re

import pytest

RU = {"Accept-Language": "ru,en;q=0.5"}
# Words of the English pages that a Russian page must not show (ids, codes and
# instrument names aside).
ENGLISH = re.compile(r"\b(Every|session|Ask|Position|How often|Save|Kiosks?|Create|Name|"
                     r"Revoke|Upload|Install|file|Questionnaire|Yes|Withdraw|Disable|"
                     r"Transfer|code|Welcome|Start|Your)\b")


@pytest.fixture
def admin(make_user, db_session):
    user = make_user("admin")
    db_session.commit()
    return user


def _visible_text(html: str) -> str:
    body = html.split("<main", 1)[-1]
    body = re.sub(r"<script.*?</script>", " ", body, flags=re.S)
    body = re.sub(r"<[^>]+>", " ", body)
    # Instrument ids and short names in brackets, and client codes, are not words.
    return re.sub(r"\([a-z0-9_]+\)|C-[A-Z0-9]+|PHQ-9|GAD-7|PCL-5|GBO|WHO-5|K10", " ", body)


@pytest.mark.parametrize("path", ["/admin/battery", "/admin/kiosks", "/admin/wording",
                                  "/admin/clients"])
def test_admin_office_pages_in_russian(auth, client, admin, path):
    auth.login(admin.email)
    html = client.get(path, headers=RU).get_data(as_text=True)
    found = ENGLISH.findall(_visible_text(html))
    assert not found, (path, found)


def test_the_kiosk_code_screen_in_russian(client):
    # Without a kiosk cookie the screen is a 404; the template itself is checked here.
    from flask import render_template

    with client.application.test_request_context("/kiosk/", headers=RU):
        html = render_template("kiosk/entry.html", done=True, error="x")
    assert not ENGLISH.findall(_visible_text(html)), ENGLISH.findall(_visible_text(html))
