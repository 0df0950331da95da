"""Issue 17, the caseload: next appointment, last answered date, alert age, sorting by
column, the most urgent reason first in each row and the statistical basis said once."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from outcome.services.caseload import REASON_ORDER
from outcome.services.caseload import CaseloadSort
from outcome.services.caseload import caseload
from outcome.services.caseload import reason_rank
from outcome.services.explanations import render_explanation
from outcome.services.explanations import split_basis
from tests.helpers import answer

# A red row's stored explanation with an empirical curve (as outcome.core.signals makes it).
RED = {
    "kind": "progress", "level": "red", "rule": "progress.expected_percentile",
    "message": "progress.explanation",
    "params": {
        "head": {"message": "progress.head_since_intake",
                 "params": {"colour": {"message": "colour.red"}, "instrument": "PHQ-9",
                            "observed": 24, "session": 14, "intake": 21}},
        "body": {"message": "progress.expected_stratum",
                 "params": {"expected": 11.1, "intake": 21, "percentile": 95, "low": 0,
                            "high": 27, "green_max": 75, "yellow_max": 90,
                            "fit": {"message": "progress.fit.clinic",
                                    "params": {"episodes": 152}}}}},
    "numbers": {"instrument": "phq9", "percentile": 95.0},
}


def _page(client, path="/", **kwargs) -> str:
    """A page's HTML; Babel puts narrow no-break spaces in dates ("2:00\u202fPM")."""
    return client.get(path, **kwargs).get_data(as_text=True).replace("\u202f", " ")


def _people(db_session, make_user, make_client, make_episode, make_appointment, clock):
    therapist = make_user()
    # Red (16 after 8 at intake, week 2) and a critical answer at week 3, raised later.
    both = make_episode(make_client(therapist, name="Cy Both"))
    answer(db_session, both, [1, 1, 2, 2], item9=2)
    white = make_episode(make_client(therapist, name="Ada White"))
    answer(db_session, white, [2, 2, 1])  # last answered 15 September
    make_episode(make_client(therapist, name="Bo Nodata"))
    make_appointment(white, starts_dt=clock() - dt.timedelta(days=2))  # held: not next
    make_appointment(white, starts_dt=dt.datetime(2026, 11, 20, 14, 0, tzinfo=dt.UTC))
    make_appointment(white, starts_dt=dt.datetime(2026, 11, 27, 14, 0, tzinfo=dt.UTC))
    make_appointment(white, starts_dt=dt.datetime(2026, 11, 18, 9, 0, tzinfo=dt.UTC),
                     status="cancelled")
    db_session.commit()
    return therapist


def test_reasons_are_ordered_once_for_all_rows():
    assert REASON_ORDER[:2] == ("critical_item", "critical_unanswered")
    deterioration = {"rule": "progress.reliable_deterioration_since_intake"}
    assert (reason_rank("critical_item", {}) < reason_rank("not_on_track", deterioration)
            < reason_rank("not_on_track", RED) < reason_rank("unrepaired_rupture", {})
            < reason_rank("rupture", {}) < reason_rank("something new", {}))


def test_next_appointment_last_answered_and_alert_age(db_session, make_user, make_client,
                                                     make_episode, make_appointment, clock):
    therapist = _people(db_session, make_user, make_client, make_episode, make_appointment,
                        clock)
    rows = {r.name: r for r in caseload(db_session, therapist, now=clock())}
    both, white, nodata = rows["Cy Both"], rows["Ada White"], rows["Bo Nodata"]
    # The critical answer (raised at week 3) comes before red (raised at week 2).
    assert [r.kind for r in both.alerts] == ["critical_item", "not_on_track"]
    assert both.reason is not None and both.reason.kind == "critical_item"
    # Answered weekly from 1 September 2026; the clock reads 16 November 2026, 09:00.
    assert both.last_answered == dt.datetime(2026, 9, 22, 9, 0, tzinfo=dt.UTC)
    assert [r.days for r in both.alerts] == [55, 62]
    assert both.alert_days == 62  # the oldest open alert
    assert white.next_appointment == dt.datetime(2026, 11, 20, 14, 0, tzinfo=dt.UTC)
    assert white.alerts == () and white.alert_days is None and white.reason is None
    assert nodata.next_appointment is None and nodata.last_answered is None


def test_the_page_shows_the_new_columns(auth, client, db_session, make_user, make_client,
                                        make_episode, make_appointment, clock):
    therapist = _people(db_session, make_user, make_client, make_episode, make_appointment,
                        clock)
    auth.login(therapist.email)
    html = _page(client)
    assert "Next appointment" in html and "Last answered" in html
    assert "Nov 20, 2026, 2:00 PM" in html and "Sep 22, 2026" in html
    assert "open 55 days" in html and "open 62 days" in html
    row = re.search(r"Cy Both</a>.*?</tr>", html, re.S).group(0)
    assert row.index("alert-critical_item") < row.index("alert-not_on_track")


def test_russian_dates_have_russian_month_names(auth, client, db_session, make_user,
                                                make_client, make_episode, make_appointment,
                                                clock):
    therapist = _people(db_session, make_user, make_client, make_episode, make_appointment,
                        clock)
    auth.login(therapist.email)
    html = _page(client, headers={"Accept-Language": "ru"})
    assert "20 нояб. 2026 г., 14:00" in html and "22 сент. 2026 г." in html  # noqa: RUF001
    assert "Nov 20" not in html and "Sep 22" not in html
    assert "открыто 55 дней" in html


def test_dates_follow_the_clinic_timezone(auth, client, db_session, make_user, make_client,
                                          make_episode, make_appointment, clock, clinic):
    clinic.timezone = "Asia/Tokyo"  # UTC+9: 14:00 UTC is 23:00 there
    therapist = _people(db_session, make_user, make_client, make_episode, make_appointment,
                        clock)
    auth.login(therapist.email)
    assert "Nov 20, 2026, 11:00 PM" in _page(client)


@pytest.mark.parametrize(("query", "order"), [
    ("", ["Cy Both", "Ada White", "Bo Nodata"]),  # urgency
    ("?sort=name", ["Ada White", "Bo Nodata", "Cy Both"]),
    ("?sort=name&dir=desc", ["Cy Both", "Bo Nodata", "Ada White"]),
    ("?sort=colour", ["Cy Both", "Ada White", "Bo Nodata"]),  # red, white, grey
    ("?sort=colour&dir=desc", ["Bo Nodata", "Ada White", "Cy Both"]),
    ("?sort=next", ["Ada White", "Cy Both", "Bo Nodata"]),  # none last, most urgent first
    ("?sort=last", ["Ada White", "Cy Both", "Bo Nodata"]),  # longest ago first
    ("?sort=last&dir=desc", ["Cy Both", "Ada White", "Bo Nodata"]),
    ("?sort=alert", ["Cy Both", "Ada White", "Bo Nodata"]),
])
def test_sorting_by_column(auth, client, db_session, make_user, make_client, make_episode,
                           make_appointment, clock, query, order):
    therapist = _people(db_session, make_user, make_client, make_episode, make_appointment,
                        clock)
    auth.login(therapist.email)
    html = client.get("/" + query).get_data(as_text=True)
    names = [m for m in re.findall(r">(\w+ \w+)</a>", html) if m in order]
    assert names == order
    if query:
        column, _, direction = query.removeprefix("?sort=").partition("&dir=")
        expected = "descending" if direction == "desc" else "ascending"
        assert re.search(rf'<th scope="col" aria-sort="{expected}"[^>]*>\s*<a [^>]*'
                         rf'sort={column}', html), html


def test_sort_links_keep_the_filters(auth, client, db_session, make_user, make_client,
                                     make_episode, make_appointment, clock):
    therapist = _people(db_session, make_user, make_client, make_episode, make_appointment,
                        clock)
    auth.login(therapist.email)
    html = client.get("/?colour=red&colour=white&sort=name").get_data(as_text=True)
    # The sorted column's link turns the direction round; the filters stay.
    assert 'href="?colour=red&amp;colour=white&amp;sort=name&amp;dir=desc"' in html
    assert 'href="?colour=red&amp;colour=white&amp;sort=next&amp;dir=asc"' in html


@pytest.mark.parametrize("query", ["?sort=age", "?sort=name&dir=up", "?dir=desc&sort=",
                                   "?sort=name&sort=next"])
def test_a_bad_sort_is_a_400_with_a_message(auth, client, db_session, make_user, query):
    auth.login(make_user().email)
    response = client.get("/" + query)
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert "sort" in text and "name, colour, next, last, alert" in text


def test_sort_model_defaults():
    assert CaseloadSort() == CaseloadSort("urgency", descending=False)


def test_the_statistical_basis_is_split_out():
    shown, basis = split_basis(RED)
    text = render_explanation(shown, "en")
    assert text == ("Red: PHQ-9 24 at session 14, 21 at intake: expected 11.1 for someone "
                    "starting at 21; this is worse than 95 % of past clients with an intake "
                    "of 0 to 27 at this session.")
    assert render_explanation(basis, "en") == (
        "PHQ-9 colours: yellow when a score is worse than 75 % of past clients' at the same "
        "session, red when worse than 90 % (clinic fit, n = 152 episodes).")
    assert "75 %" not in text and "152" not in text
    russian = render_explanation(basis, "ru")
    assert "PHQ-9" in russian and "75" in russian and "152" in russian
    assert "yellow" not in russian
    # The record page keeps the whole sentence; other explanations are left alone.
    assert split_basis({"message": "progress.explanation", "params": {}}) == (
        {"message": "progress.explanation", "params": {}}, None)
    assert split_basis(None) == (None, None)


def test_the_basis_is_said_once_above_the_table(auth, client, db_session, make_user,
                                                make_client, make_episode, clock,
                                                monkeypatch):
    from sqlalchemy import select

    from outcome.models import Alert

    therapist = make_user()
    for name in ("Cy One", "Di Two"):
        episode = make_episode(make_client(therapist, name=name))
        answer(db_session, episode, [1, 1, 2, 2])
    db_session.flush()
    for alert in db_session.scalars(select(Alert).where(Alert.kind == "not_on_track")):
        alert.detail = RED
    db_session.commit()
    auth.login(therapist.email)
    html = client.get("/").get_data(as_text=True)
    basis = "PHQ-9 colours: yellow when a score is worse than 75 %"
    assert html.count(basis) == 1
    assert html.index(basis) < html.index("<table")
    assert html.count("this is worse than 95 % of past clients") == 2


def test_charts_are_drawn_large_enough_for_11_px_text():
    """On screen a chart is shown at its own width and height (it scrolls on a phone):
    those are enlarged so its smallest text is 11 px; the drawing (and the PDF) is not."""
    from reports.charts import HeatmapData
    from reports.charts import TrajectoryData
    from reports.charts import heatmap_drawing
    from reports.charts import scrolling_chart
    from reports.charts import smallest_font
    from reports.charts import to_svg
    from reports.charts import trajectory_drawing

    heat = heatmap_drawing(HeatmapData("PHQ-9 items", ("Little interest", "Feeling down"),
                                       (1, 2), ((1.0, 2.0), (0.0, None)), 0, 3))
    assert smallest_font(heat) == 6.5 and heat.width == 520
    svg = to_svg(heat, "PHQ-9 items", "by session", key="h")
    head = svg[:svg.index(">")]
    assert 'width="880"' in head and 'viewBox="0 0 520 68"' in head  # 520 x 11 / 6.5
    line = trajectory_drawing(TrajectoryData("PHQ-9", (1, 2), (16.0, 12.0), 0, 27))
    assert 'width="360"' in to_svg(line, "PHQ-9", "d", min_font_px=6.5)[:200]
    wrapped = scrolling_chart(svg, "h")
    assert wrapped.startswith('<div class="chart-scroll" role="group" tabindex="0" '
                              'aria-labelledby="t-h">') and wrapped.endswith("</svg>\n</div>")


def test_a_new_booking_shows_at_once(auth, client, db_session, make_user, make_client,
                                     make_episode, make_appointment, clock):
    """The cached table follows a booking (the next appointment it shows)."""
    therapist = _people(db_session, make_user, make_client, make_episode, make_appointment,
                        clock)
    auth.login(therapist.email)
    assert "Dec 1, 2026" not in _page(client)
    nodata = next(r for r in caseload(db_session, therapist) if r.name == "Bo Nodata")
    from sqlalchemy import select

    from outcome.models import Client
    from outcome.models import Episode

    episode = db_session.scalar(select(Episode).join(Client).where(Client.code == nodata.code))
    make_appointment(episode, starts_dt=dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC))
    db_session.commit()
    assert "Dec 1, 2026, 10:00 AM" in _page(client)


def test_alert_age_counts_the_clinic_calendar_days(db_session, make_clinic, make_user,
                                                   make_client, make_episode, clock):
    """An urgent answer given last evening is "open 1 day" this morning, not "since today"
    (found by tests/test_browser_day_one.py): the age is counted in the clinic's days."""
    from outcome.models import Alert

    clinic = make_clinic(timezone="Europe/Berlin")
    therapist = make_user(clinic_id=clinic.id)
    episode = make_episode(make_client(therapist, name="Eve Ning"))
    # The clock reads Monday 16 November 2026, 10:00 in Berlin (09:00 UTC).
    # Sunday 18:00 and Monday 08:00 in Berlin; Friday 23:30 in Berlin (22:30 UTC).
    for kind, raised in (("critical_item", clock() - dt.timedelta(hours=16)),
                         ("rupture", clock() - dt.timedelta(hours=2)),
                         ("unrepaired_rupture", dt.datetime(2026, 11, 13, 22, 30,
                                                            tzinfo=dt.UTC))):
        db_session.add(Alert(episode_id=episode.id, kind=kind, detail={}, raised_dt=raised))
    db_session.commit()
    row = caseload(db_session, therapist, now=clock())[0]
    # Friday late evening is three days before Monday, not two.
    assert {r.kind: r.days for r in row.alerts} == {
        "critical_item": 1, "rupture": 0, "unrepaired_rupture": 3}
