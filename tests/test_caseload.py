"""The therapist's caseload on the start page, most urgent first."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select

from outcome.services.caseload import caseload
from tests.helpers import LIB
from tests.helpers import answer


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
    assert "Grey: no colour yet" in html
    assert "since intake (PHQ-9): reliably deteriorated into the clinical range" in html
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


def test_filters_search_sparkline_and_session(auth, client, db_session, make_user,
                                              make_client, make_episode, make_appointment,
                                              clock):
    therapist = make_user()
    red = make_client(therapist, name="Cy Red")
    answer(db_session, make_episode(red), [1, 1, 2, 2])
    white = make_client(therapist, name="Ada White")
    white_episode = make_episode(white)
    answer(db_session, white_episode, [2, 2, 1, 1])
    make_appointment(white_episode, starts_dt=clock() - dt.timedelta(days=2))
    make_appointment(white_episode, starts_dt=clock() + dt.timedelta(days=5))
    db_session.commit()
    auth.login(therapist.email)

    html = client.get("/").get_data(as_text=True)
    # A sparkline of the last scores, with the numbers as its text alternative.
    assert 'aria-label="PHQ-9 recent scores: 16, 16, 8, 8"' in html
    assert html.count('<svg class="spark"') == 2
    # Session held so far: one appointment is in the past.
    assert re.search(r"Ada White</a>.*?<td class=\"session\"[^>]*>1</td>", html, re.S)

    only_red = client.get("/?colour=red").get_data(as_text=True)
    assert "Cy Red" in only_red and "Ada White" not in only_red
    found = client.get("/?q=ada").get_data(as_text=True)
    assert "Ada White" in found and "Cy Red" not in found
    by_code = client.get(f"/?q={red.code.lower()}").get_data(as_text=True)
    assert "Cy Red" in by_code and "Ada White" not in by_code
    # Wildcards in the search are literal.
    assert "No client matches these filters." in client.get("/?q=%25").get_data(as_text=True)
    attention = client.get("/?attention=1").get_data(as_text=True)
    assert "No client matches" in attention or "Ada White" not in attention


def test_alliance_trend_words():
    from outcome.services.caseload import alliance_trend

    scale = (0.0, 40.0)  # threshold 1 point
    assert alliance_trend([38.0], scale) is None
    assert alliance_trend([38.0, 38.0, 38.0, 36.9], scale) == "falling"
    assert alliance_trend([30.0, 31.0, 32.0, 32.0], scale) == "rising"  # mean 31
    assert alliance_trend([36.0, 36.5], scale) == "steady"


def test_the_cached_table_follows_every_change(auth, client, db_session, make_user,
                                               make_client, make_episode, clock):
    """The rendered table is kept between visits, but never shown once stale."""
    from outcome.models import Alert
    from outcome.services.alerts import acknowledge_alert
    from outcome.services.staff import transfer_client

    therapist, colleague = make_user(), make_user()
    person = make_client(therapist, name="Cy Changing")
    episode = make_episode(person)
    answer(db_session, episode, [1, 1])
    db_session.commit()
    auth.login(therapist.email)
    assert "White: functional range" in client.get("/").get_data(as_text=True)

    answer(db_session, episode, [1, 1, 2, 2, 3], item9=2)  # new answers: red, critical
    db_session.commit()
    html = client.get("/").get_data(as_text=True)
    assert "Red: not on track" in html and "Thoughts of being better off dead" in html

    alert = db_session.scalar(select(Alert).where(Alert.kind == "critical_item"))
    acknowledge_alert(db_session, alert, therapist, "Safety plan reviewed", clock(), LIB)
    db_session.commit()
    assert "Thoughts of being better off dead" not in client.get("/").get_data(as_text=True)

    transfer_client(db_session, person, colleague, clock())
    db_session.commit()
    assert "Cy Changing" not in client.get("/").get_data(as_text=True)


def test_possible_rupture_is_shown_apart_from_ruptures(auth, client, db_session, make_user,
                                                       make_client, make_episode):
    from outcome.services.caseload import latest_possible_rupture
    from tests.helpers import submit

    srs = LIB.get("srs_vas")
    therapist = make_user()
    episode = make_episode(make_client(therapist, name="Pat Possible"))
    for week, total in enumerate([38, 38.5, 38.5, 38, 37]):  # 38 -> 37: a drop alone
        part = round(total / 4, 1)
        submit(db_session, episode, srs, {"srs_1": part, "srs_2": part, "srs_3": part,
                                          "srs_4": round(total - 3 * part, 1)}, week)
    db_session.commit()
    [row] = caseload(db_session, therapist)
    assert row.alerts == () and row.alliance[0].possible_rupture == 5
    auth.login(therapist.email)
    html = client.get("/").get_data(as_text=True)
    assert "possible rupture, session 5" in html
    assert 'class="alert alert-rupture"' not in html
    page = client.get(f"/clients/{episode.client.code}").get_data(as_text=True)
    assert 'badge-possible' in page and "Possible rupture at session 5: SRS-type 37" in page
    assert "session 5: 37 (possible rupture)" in page
    # A repaired one, or a later rupture, is no longer a possible rupture to show.
    possible = {"level": "possible", "numbers": {"session": 5, "status": "open"}}
    assert latest_possible_rupture([possible]) == 5
    assert latest_possible_rupture([{**possible, "numbers": {"session": 5,
                                                             "status": "repaired"}}]) is None
    assert latest_possible_rupture([possible, {"level": "open",
                                               "numbers": {"session": 6}}]) is None
    assert latest_possible_rupture([]) is None
