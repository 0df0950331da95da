"""The therapist's caseload on the start page, most urgent first."""

from __future__ import annotations

import datetime as dt
import re

from outcome.core.answers import parse_answers
from outcome.services.caseload import caseload
from outcome.services.monitoring import submit_administration
from questionnaires.loader import builtin_library

LIB = builtin_library()
PHQ = LIB.get("phq9")
T0 = dt.datetime(2026, 9, 1, 9, tzinfo=dt.UTC)


def answer(db_session, episode, levels, item9=0):
    for week, level in enumerate(levels):
        values = {f"phq9_{i}": level for i in range(1, 9)}
        values["phq9_9"] = item9 if week == len(levels) - 1 else 0
        when = T0 + dt.timedelta(weeks=week)
        submit_administration(db_session, episode=episode, instrument=PHQ,
                              answers=parse_answers(PHQ, values), completed_dt=when,
                              idempotency_key=f"{episode.id}:{week}", library=LIB, now=when)


def test_most_urgent_first_with_words_for_every_colour(auth, client, db_session, make_user,
                                                       make_client, make_episode):
    therapist = make_user()
    people = {}
    for name, levels, item9 in (("Ada White", [2, 2, 1, 1], 0), ("Bo Nodata", [], 0),
                                ("Cy Red", [1, 1, 2, 2], 0), ("Di Critical", [1, 1], 2)):
        person = make_client(therapist, name=name)
        episode = make_episode(person)
        answer(db_session, episode, levels, item9)
        people[name] = person
    make_client(make_user(), name="Someone Else")  # another therapist's client
    db_session.commit()

    rows = caseload(db_session, therapist)
    assert [r.name for r in rows] == ["Di Critical", "Cy Red", "Ada White", "Bo Nodata"]
    assert [r.urgency for r in rows] == [0, 1, 6, 7]  # Ada's 8 is below the cutoff: white
    assert rows[0].alerts[0][0] == "critical_item"

    auth.login(therapist.email)
    html = client.get("/").get_data(as_text=True)
    order = [m for m in re.findall(r">(\w+ \w+)</a>", html) if m in people]
    assert order == ["Di Critical", "Cy Red", "Ada White", "Bo Nodata"]
    assert "Red: not on track" in html and "White: functional range" in html
    # Cy went from 8 (functional) to 16 (clinical): harmed, not merely deteriorated.
    assert "Grey: no colour yet" in html and "since intake: harmed" in html
    assert "Thoughts of being better off dead" in html
    assert "Someone Else" not in html


def test_names_are_escaped(auth, client, db_session, make_user, make_client, make_episode):
    therapist = make_user()
    make_episode(make_client(therapist, name="<script>alert(1)</script>"))
    db_session.commit()
    auth.login(therapist.email)
    html = client.get("/").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html


def test_supervisors_get_no_named_caseload(auth, client, db_session, make_user, make_client,
                                           make_episode, assign):
    therapist, supervisor = make_user(), make_user("supervisor")
    assign(supervisor, therapist)
    make_episode(make_client(therapist, name="Private Person"))
    db_session.commit()
    auth.login(supervisor.email)
    assert "Private Person" not in client.get("/").get_data(as_text=True)
