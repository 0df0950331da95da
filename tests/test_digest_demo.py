"""The demo clinic's digest, recomputed independently, week by week.

Issue 15 found the demo digest contradicting itself (7 red clients on the cover, 5 in
the 12-week table for the same week and 0 for the weeks before). Here every figure of a
supervisor's digest is recomputed from the stored rows (episodes, administrations,
appointments, alerts) with plain SQL and Python, without services/digests or
core/aggregates, and compared for all twelve weeks, for the cover and for each
supervisee. The one thing borrowed is the engine's colour and change rule
(:func:`outcome.core.signals.outcome_signals`, tested on its own elsewhere), applied to
series this test builds itself: what is checked here is which scores, which episodes
and which week each figure counts.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import zoneinfo
from collections import defaultdict

import numpy as np
import pytest
from pypdf import PdfReader
from sqlalchemy import text
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from outcome.core.signals import outcome_signals
from outcome.db import make_engine
from outcome.models import Clinic
from outcome.models import User
from outcome.services import demo
from outcome.services.digests.figures import build_digest
from outcome.services.signals import clinic_context
from questionnaires.loader import builtin_library
from reports.digest_pdf import render_digest
from tests.helpers import flat
from tests.helpers import save_pngs

pytestmark = pytest.mark.slow

LIB = builtin_library()
TODAY = dt.date(2026, 11, 22)  # a Sunday: the demo's last week is 2026-W47
TZ = "Europe/Berlin"  # not UTC, so the week's bounds are not midnight UTC
WEEK = "2026-W47"
NOW = dt.datetime(2026, 11, 23, 7, 0, tzinfo=dt.UTC)
MEASURE = "phq9"


@pytest.fixture(scope="module")
def seeded(demo_databases):
    """The demo clinic (in Berlin), built once for the module in a transaction rolled back
    at its end; the digest of its first supervisor, and its PDF."""
    engine = make_engine(demo_databases.new_url())
    conn = engine.connect()
    outer = conn.begin()
    factory = sessionmaker(bind=conn, join_transaction_mode="create_savepoint",
                           expire_on_commit=False)
    with factory() as session:
        demo.seed_demo(session, today=TODAY, password="demo password for tests",
                       timezone=TZ, library=LIB)
        session.commit()
        supervisor = session.query(User).filter_by(
            email=f"supervisor1@{demo.DEMO_DOMAIN}").one()
        digest = build_digest(session, supervisor, WEEK, LIB, NOW)
        expected = Recomputed(session, supervisor)
    yield digest, expected, render_digest(digest)
    outer.rollback()
    conn.close()
    engine.dispose()


def bounds(week: str) -> tuple[dt.date, dt.datetime, dt.datetime]:
    year, number = (int(p) for p in week.split("-W"))
    monday = dt.date.fromisocalendar(year, number, 1)
    tz = zoneinfo.ZoneInfo(TZ)
    start = dt.datetime.combine(monday, dt.time(), tz)
    end = dt.datetime.combine(monday + dt.timedelta(days=7), dt.time(), tz)
    return monday, start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def utc(value) -> dt.datetime:
    """A timestamp read with plain SQL (SQLite gives text, PostgreSQL a datetime)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def day(value) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(value)


class Recomputed:
    """The digest's figures, from the stored rows, by this test's own reading."""

    def __init__(self, session: Session, supervisor: User) -> None:
        sql = lambda q, **p: session.execute(text(q), p).all()  # noqa: E731
        self.therapists = {r[0]: r[1] for r in sql(
            "SELECT u.id, u.display_name FROM users u JOIN supervisor_assignments a "
            "ON a.therapist_id = u.id WHERE a.supervisor_id = :s", s=supervisor.id)}
        ids = ",".join(str(i) for i in self.therapists)
        self.episodes = {r[0]: (r[1], day(r[2]), day(r[3]), r[4]) for r in sql(
            "SELECT e.id, e.therapist_id, e.opened_on, e.closed_on, c.code FROM episodes e "
            f"JOIN clients c ON c.id = e.client_id WHERE e.therapist_id IN ({ids})")}
        episodes = ",".join(str(i) for i in self.episodes)
        superseded = {r[0] for r in sql("SELECT supersedes_id FROM administrations "
                                        "WHERE supersedes_id IS NOT NULL")}
        self.scores: dict[int, list[tuple[dt.datetime, int, float]]] = defaultdict(list)
        self.answered: set[int] = set()
        self.appointment_of: dict[int, int | None] = {}
        for adm_id, episode_id, appointment_id, valid, completed, scores in sql(
                "SELECT id, episode_id, appointment_id, is_valid, completed_dt, scores "
                f"FROM administrations WHERE instrument_id = '{MEASURE}' "
                f"AND respondent = 'client' AND episode_id IN ({episodes})"):
            if appointment_id is not None:
                self.answered.add(appointment_id)
            primary = (scores if isinstance(scores, dict) else _json(scores)).get("primary")
            if valid and primary is not None and adm_id not in superseded:
                self.scores[episode_id].append((utc(completed), adm_id, float(primary)))
                self.appointment_of[adm_id] = appointment_id
        self.sessions = [(r[0], r[1], utc(r[2])) for r in sql(
            "SELECT id, episode_id, starts_dt FROM appointments WHERE status IN "
            f"('scheduled', 'attended') AND episode_id IN ({episodes})")]
        # "Session" is the treatment session (domain.md section 3): an appointment's number
        # among the episode's held (scheduled or attended) ones, in time order.
        held: dict[int, list[tuple[dt.datetime, int]]] = defaultdict(list)
        for appointment_id, episode_id, starts in self.sessions:
            held[episode_id].append((starts, appointment_id))
        self.starts = {e: [s for s, _ in sorted(rows)] for e, rows in held.items()}
        self.number = {a: n for rows in held.values()
                       for n, (_, a) in enumerate(sorted(rows), start=1)}
        self.alerts = [(r[0], r[1], utc(r[2]), r[3] and utc(r[3]), r[4] and utc(r[4]))
                       for r in sql("SELECT episode_id, kind, raised_dt, acknowledged_dt, "
                                    f"resolved_dt FROM alerts WHERE episode_id IN ({episodes})")]
        clinic = session.get(Clinic, supervisor.clinic_id)
        self.context = clinic_context(session, clinic)
        self.instrument = LIB.get(MEASURE)

    def session_of(self, episode: int, adm: int, completed: dt.datetime, nth: int) -> int:
        """The treatment session of one score: its appointment's number; without a held
        appointment, the sessions started by then (at least 1); in an episode without
        any appointment, the score's own position."""
        starts = self.starts.get(episode)
        if not starts:
            return nth
        appointment = self.appointment_of.get(adm)
        if appointment in self.number:
            return self.number[appointment]
        return max(1, sum(1 for s in starts if s <= completed))

    def reading(self, end: dt.datetime) -> tuple[dict[int, str], dict[int, str | None]]:
        """Colour and change category of each episode's scores completed before ``end``."""
        series, numbers = {}, {}
        for e, rows in self.scores.items():
            before = [(when, adm, score) for when, adm, score in sorted(rows) if when < end]
            if before:  # in the engine's order: completed, then id
                series[e] = [score for _, _, score in before]
                numbers[e] = [self.session_of(e, adm, when, n)
                              for n, (when, adm, _) in enumerate(before, start=1)]
        if not series:
            return {}, {}
        order = sorted(series)
        width = max(len(series[e]) for e in order)
        matrix = np.full((len(order), width), np.nan)
        sessions = np.tile(np.arange(1, width + 1), (len(order), 1))
        for i, e in enumerate(order):
            matrix[i, :len(series[e])] = series[e]
            sessions[i, :len(series[e])] = numbers[e]
        sd = self.context.intake_sd.get(MEASURE)
        signals = outcome_signals(self.instrument, matrix, sessions,
                                  model=self.context.models.get(MEASURE),
                                  settings=self.context.colours,
                                  intake_sd=sd[0] if sd else None,
                                  n_intake=sd[1] if sd else None)
        colour = {e: signals.colours.name(i) for i, e in enumerate(order)}
        category = {e: signals.change.label(i)
                    if signals.change is not None and len(series[e]) >= 2 else None
                    for i, e in enumerate(order)}
        return colour, category

    def week(self, week: str, therapist: int | None = None) -> dict:
        monday, start, end = bounds(week)
        sunday = monday + dt.timedelta(days=6)
        mine = {e for e, row in self.episodes.items() if therapist in (None, row[0])}
        active = [e for e in mine if self.episodes[e][1] <= sunday
                  and (self.episodes[e][2] is None or self.episodes[e][2] >= monday)]
        colour, category = self.reading(end)
        colours = dict.fromkeys(("red", "yellow", "green", "white", "grey"), 0)
        for e in active:
            colours[colour.get(e, "grey")] += 1
        held = [s for s in self.sessions if s[1] in mine and start <= s[2] < end]
        alerts = [a for a in self.alerts if a[0] in mine]
        ended = [e for e in mine if self.episodes[e][2] is not None
                 and monday <= self.episodes[e][2] <= sunday]
        assessed = [category[e] for e in ended if category.get(e)]
        return {
            "active": len(active), "colours": colours,
            "completion": (sum(s[0] in self.answered for s in held), len(held)),
            "open_alerts": sum(1 for a in alerts if a[2] < end
                               and not any(t is not None and t < end for t in a[3:])),
            "ruptures_opened": sum(1 for a in alerts if a[1] == "rupture"
                                   and start <= a[2] < end),
            "ruptures_repaired": sum(1 for a in alerts if a[1] == "rupture" and a[4]
                                     and start <= a[4] < end),
            "ended": sorted((self.episodes[e][3], category.get(e) or "no change score")
                            for e in ended),
            "improved": (sum(c in ("recovered", "improved") for c in assessed), len(assessed)),
            "recovered": (sum(c == "recovered" for c in assessed), len(assessed)),
            "deteriorated": (sum(c in ("deteriorated", "harmed") for c in assessed),
                             len(assessed)),
        }


def _json(value):
    return json.loads(value) if value else {}


def shown(figures) -> dict:
    """A digest's KeyFigures in the shape of :meth:`Recomputed.week` (without the list)."""
    return {
        "active": figures.active_episodes, "colours": figures.colours,
        "completion": (figures.completion.count, figures.completion.n),
        "open_alerts": figures.open_alerts, "ruptures_opened": figures.ruptures_opened,
        "ruptures_repaired": figures.ruptures_repaired,
        "improved": (figures.reliably_improved.count, figures.reliably_improved.n),
        "recovered": (figures.recovered.count, figures.recovered.n),
        "deteriorated": (figures.deteriorated.count, figures.deteriorated.n),
    }


def weeks_back(n: int) -> list[str]:
    monday = bounds(WEEK)[0]
    return [f"{d.isocalendar()[0]}-W{d.isocalendar()[1]:02d}"
            for d in (monday - dt.timedelta(weeks=k) for k in range(n - 1, -1, -1))]


def test_every_week_of_the_table_matches_the_stored_data(seeded):
    digest, expected, _ = seeded
    assert digest.instrument == "PHQ-9"
    assert [p.week for p in digest.trend] == weeks_back(12)
    reds = []
    for point in digest.trend:
        want = expected.week(point.week)
        assert (point.active_episodes, point.red, point.open_alerts,
                (point.completion.count, point.completion.n)) == (
            want["active"], want["colours"]["red"], want["open_alerts"],
            want["completion"]), point.week
        reds.append(point.red)
    # History is read as it was, not zeros before the last week (the finding).
    assert sum(1 for r in reds[:-1] if r > 0) >= 6, reds


def test_cover_figures_are_the_table_rows_and_the_stored_data(seeded):
    digest, expected, _ = seeded
    this, before = expected.week(WEEK), expected.week(weeks_back(2)[0])
    for figures, want in ((digest.this_week, this), (digest.previous_week, before)):
        got = shown(figures)
        assert got == {k: v for k, v in want.items() if k != "ended"}
        assert sum(figures.colours.values()) == figures.active_episodes
        assert figures.episodes_ended == len(want["ended"])
    # The cover and the table: one definition, so the same week gives the same number.
    for figures, point in ((digest.this_week, digest.trend[-1]),
                           (digest.previous_week, digest.trend[-2])):
        assert (figures.active_episodes, figures.colours["red"], figures.open_alerts,
                figures.completion) == (point.active_episodes, point.red, point.open_alerts,
                                        point.completion)
    assert this["colours"]["red"] > 0 and this["active"] > 30


def test_each_supervisee_section_matches_the_stored_data(seeded):
    digest, expected, _ = seeded
    names = {name: tid for tid, name in expected.therapists.items()}
    assert sorted(s.therapist_name for s in digest.sections) == sorted(names)
    total = dict.fromkeys(digest.this_week.colours, 0)
    for section in digest.sections:
        want = expected.week(WEEK, names[section.therapist_name])
        assert shown(section.week) == {k: v for k, v in want.items() if k != "ended"}
        assert sorted((code, category) for code, category, _ in section.ended) \
            == want["ended"]
        assert {measure for _, _, measure in section.ended} <= {"PHQ-9"}
        for key, count in section.week.colours.items():
            total[key] += count
    assert total == digest.this_week.colours


def test_attention_charts_number_treatment_sessions(seeded):
    # Finding 9: "session" on the chart is the treatment session, not the n-th score.
    digest, expected, _ = seeded
    charts = [(item.code, item.chart) for section in digest.sections
              for item in section.attention if item.chart is not None]
    assert charts
    for code, chart in charts:
        # A client may have had an earlier episode: the chart's is the one whose latest
        # scores it shows.
        found = []
        for episode, row in expected.episodes.items():
            rows = sorted(expected.scores[episode])
            if row[3] == code and [score for *_, score in rows][-len(chart.scores):] \
                    == list(chart.scores):
                found.append([expected.session_of(episode, adm, when, n) for n, (when, adm, _)
                              in enumerate(rows, start=1)][-len(chart.sessions):])
        assert len(found) == 1, code
        assert list(chart.sessions) == found[0], code


def test_the_pdf_prints_the_same_numbers(seeded):
    _digest, expected, pdf = seeded
    pages = [flat(page.extract_text()) for page in PdfReader(io.BytesIO(pdf)).pages]
    cover = pages[0]
    this, before = expected.week(WEEK), expected.week(weeks_back(2)[0])

    def share(count, n):
        return f"{count} of {n} ({100 * count / n:.0f} %)" if n else "\u2014"

    red = f"Red not on track {share(this['colours']['red'], this['active'])} " \
          f"{share(before['colours']['red'], before['active'])}"
    assert red in cover, cover
    assert f"Active episodes {this['active']} {before['active']}" in cover
    table = cover[cover.index("The last 12 weeks"):]
    for week in weeks_back(12):
        want = expected.week(week)
        count, n = want["completion"]
        row = (f"{week} {want['active']} {want['colours']['red']} {want['open_alerts']} "
               f"{share(count, n)}")
        assert row in table, row
    assert "Grey 1 (100 %)" not in " ".join(pages)
    pngs = save_pngs(pdf, "demo-digest")  # not "digest-*": test_digest_pdf clears those
    assert len(pngs) == len(pages)


def test_dates_are_clinic_dates():
    monday, start, end = bounds(WEEK)
    assert monday == dt.date(2026, 11, 16)
    assert start == dt.datetime(2026, 11, 15, 23, tzinfo=dt.UTC)  # CET is UTC+1
    assert end - start == dt.timedelta(days=7)
