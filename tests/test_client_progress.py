"""Client-facing progress: only when shared, only their own scores, safely drawn."""

from __future__ import annotations

import re

from outcome.services.links import issue_link
from questionnaires.loader import builtin_library
from reports.charts import TrajectoryData
from reports.charts import to_svg
from reports.charts import trajectory_drawing
from tests.conftest import csrf_token

LIB = builtin_library()


def complete(client, token):
    client.get(f"/q/{token}")
    for instrument, count in (("phq9", 9), ("gad7", 7)):
        page = client.get("/q/").get_data(as_text=True)
        client.post("/q/", data={"csrf_token": csrf_token(page), "instrument": instrument,
                                 **{f"{instrument}_{i}": "1" if i < 9 else "0"
                                    for i in range(1, count + 1)}})
    return client.get("/q/").get_data(as_text=True)


def run_two_sessions(db_session, clock, client, episode):
    pages = []
    for _ in range(2):
        _, token = issue_link(db_session, episode=episode, purpose="pre", now=clock(),
                              library=LIB)
        db_session.commit()
        pages.append(complete(client, token))
        clock.advance(days=7)
    return pages[-1]


def test_shared_progress_shows_the_clients_own_chart(db_session, clock, client, make_user,
                                                     make_client, make_episode):
    person = make_client(make_user(), is_progress_shared=True)
    page = run_two_sessions(db_session, clock, client, make_episode(person))
    assert "Your answers over time" in page
    assert page.count("<svg") == 2  # PHQ-9 and GAD-7
    assert re.search(r'<title id="t-[0-9]+">PHQ-9</title>', page)
    assert "Your answers by session: PHQ-9: 1: 8, 2: 8." in page
    assert "Lower scores mean fewer difficulties." in page


def test_not_shared_means_no_chart(db_session, clock, client, make_user, make_client,
                                   make_episode):
    person = make_client(make_user())
    page = run_two_sessions(db_session, clock, client, make_episode(person))
    assert "Thank you" in page and "<svg" not in page


def test_chart_text_is_escaped():
    data = TrajectoryData(title="<img src=x onerror=alert(1)>", sessions=(1, 2),
                          scores=(10.0, 8.0), y_min=0, y_max=27, cutoff=10,
                          cutoff_label="=HYPERLINK(x)")
    svg = to_svg(trajectory_drawing(data), "<b>t</b>", "d & <i>")
    assert "<img" not in svg and "<b>" not in svg and "<i>" not in svg
    assert "&lt;img src=x onerror=alert(1)&gt;" in svg
    assert re.match(r'<svg role="img" aria-labelledby="t d" ', svg)


def test_svg_has_no_inline_styles_and_unique_ids():
    """The CSP (style-src 'self') blocks style attributes: colours must be attributes."""
    data = TrajectoryData(title="T", sessions=(1, 2), scores=(3.0, 4.0), y_min=0, y_max=10,
                          cutoff=5, cutoff_label="cut", markers=((2, "deteriorated"),))
    one, two = (to_svg(trajectory_drawing(data), "T", "d", key=k) for k in ("a", "b"))
    assert "style=" not in one and 'fill="' in one and 'font-family="Helvetica' in one
    ids = re.findall(r'\bid="([^"]+)"', one + two)
    assert len(ids) == len(set(ids))
