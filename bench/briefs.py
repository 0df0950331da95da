"""Benchmark: the therapists' pre-session briefs of one day, against a bare reportlab page.

A clinic of 100 therapists with 8 clients each (800 clients): one open episode each with
8 to 12 weekly sessions of PHQ-9, GAD-7 and the SRS-type alliance rating (the demo's
courses of care, built by bench/dashboard's ``Builder`` with SQLAlchemy Core
executemany), and its next session on the brief's day, the 8 of a therapist at 08:00 to
15:00. Signals and alerts are rebuilt by the service (``recompute_signals``).

Then every therapist's brief of that day is produced end to end, each in its own
read-only session: ``build_brief`` (the day's appointments and each client's record)
and ``render_brief`` (inside ``for_reader``, as ``brief_pdf`` does; one brief is also made
by ``brief_pdf`` itself and must give the same bytes). The render calls are timed alone,
and pages are counted.

The baseline is bench/digest's bare reportlab page (platypus, no outcome code but the
chart drawing) with the brief's chart row: a heading, a table of 15 rows x 4 columns of
wrapped text and two trajectory charts of the brief's size side by side, N to a
document; rendered just before and just after the briefs, the mean is used.

Then the same briefs are produced again by the scheduler's own path (``run_due_reports``:
claim, build, render, archive and queue the notice, one transaction each), timed.

Targets (issue): all briefs (800 client sections) in under 60 s, both ways, and
rendering within 2x of the bare page, per page. A functional failure (a brief without
its 8 clients in time order, pages that do not match, differing bytes) exits non-zero;
a missed target does not. Run: ``make bench`` or ``.venv/bin/python -m bench.briefs [--json]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.dashboard import Builder
from bench.dashboard import _names
from bench.digest import PAGE
from bench.digest import bare_document


def build_clinic(url: str, args, now: dt.datetime, day: dt.date) -> tuple[Builder, dict]:
    """Fill an empty database with the clinic; its shape and the seconds taken."""
    from sqlalchemy import select

    from outcome.models import Appointment
    from outcome.models import Episode
    from outcome.models import User

    start = time.perf_counter()
    per_therapist = args.appointments
    builder = Builder(url, clients=per_therapist, sessions=0, now=now)
    rng = builder.rng
    therapist_ids = [builder.therapist_id, *builder._ids("users", args.therapists - 1)]
    names = _names(rng, args.therapists)
    users = [builder._user(builder.clinic_id, user_id, f"t{user_id:04d}@bench.example.org",
                           name, None)
             for user_id, name in zip(therapist_ids[1:], names[1:], strict=True)]
    if users:
        with builder.engine.begin() as conn:
            conn.execute(User.__table__.insert(), users)
    episodes = [{"therapist_id": therapist_id, "code": f"C-B{t * per_therapist + k + 1:05d}",
                 "name": None, "sessions": int(rng.integers(8, 13)), "open": True}
                for t, therapist_id in enumerate(therapist_ids) for k in range(per_therapist)]
    for episode, name in zip(episodes, _names(rng, len(episodes)), strict=True):
        episode["name"] = name
    for at in range(0, len(episodes), 500):
        builder._insert(episodes[at:at + 500], limit=None)
    # Each open episode's next (scheduled) session moves to the brief's day, a therapist's
    # clients an hour apart from 08:00 (the clinic is in UTC).
    with builder.engine.begin() as conn:
        scheduled = conn.execute(
            select(Appointment.id, Episode.therapist_id)
            .join(Episode, Episode.id == Appointment.episode_id)
            .where(Appointment.status == "scheduled")
            .order_by(Episode.therapist_id, Episode.id)).all()
        slot: dict[int, int] = {}
        for appointment_id, therapist_id in scheduled:
            k = slot.get(therapist_id, 0)
            slot[therapist_id] = k + 1
            conn.execute(Appointment.__table__.update().where(Appointment.id == appointment_id)
                         .values(starts_dt=dt.datetime.combine(day, dt.time(8 + k),
                                                               tzinfo=dt.UTC)))
    signals_s = builder.finish()  # recompute_signals for the whole clinic
    shape = {"therapists": args.therapists, "appointments_per_therapist": per_therapist,
             "clients": len(episodes), "administrations": builder.administrations,
             "build_s": round(time.perf_counter() - start, 1),
             "signals_s": round(signals_s, 1), "therapist_ids": therapist_ids}
    return builder, shape


def run_briefs(builder: Builder, day: dt.date, now: dt.datetime, shape: dict,
               profile: Path | None = None, save: Path | None = None) -> dict:
    """Every therapist's brief of ``day``, one read-only session each; timings and checks."""
    from outcome.db import make_session_factory
    from outcome.models import User
    from outcome.services.explanations import language
    from outcome.services.explanations import say
    from outcome.services.therapist_reports.brief import brief_pdf
    from outcome.services.therapist_reports.brief import build_brief
    from reports.brief_pdf import render_brief
    from reports.pdf import for_reader

    factory = make_session_factory(builder.engine)
    profiler = None
    if profile is not None:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    results = []
    start = time.perf_counter()
    for therapist_id in shape["therapist_ids"]:
        with factory() as session:
            therapist = session.get(User, therapist_id)
            assert therapist is not None
            code = language(therapist.locale)
            brief = build_brief(session, therapist, day, builder.library, now, code)
            began = time.perf_counter()
            with for_reader(lambda message, code=code: say(message, code), code):
                content = render_brief(brief)
            results.append((brief, content, time.perf_counter() - began))
            session.rollback()  # read only
    total_s = time.perf_counter() - start
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile)

    # -- functional checks --------------------------------------------------------------
    per_therapist = shape["appointments_per_therapist"]
    pages = sections = urgent = charts = 0
    for brief, content, _seconds in results:
        n_pages = len(PAGE.findall(content))
        starts = [client.starts for client in brief.clients]
        if (not content.startswith(b"%PDF") or len(brief.clients) != per_therapist
                or starts != sorted(starts) or n_pages < 1 + per_therapist
                or not all(client.has_answers and client.scores for client in brief.clients)):
            raise RuntimeError(f"brief of {brief.therapist_name}: {len(brief.clients)} "
                               f"clients, {n_pages} pages (expected {per_therapist} clients "
                               f"in time order, with answers, and at least "
                               f"{1 + per_therapist} pages)")
        pages += n_pages
        sections += len(brief.clients)
        urgent += sum(client.is_most_urgent for client in brief.clients)
        charts += sum(len(client.scores) for client in brief.clients)
    with factory() as session:
        therapist = session.get(User, shape["therapist_ids"][0])
        again = brief_pdf(session, therapist, day, builder.library, now)
    if again != results[0][1]:
        raise RuntimeError("brief_pdf gave other bytes than build_brief and render_brief")
    if save is not None:
        save.write_bytes(again)
    builder.engine.dispose()
    render_s = sum(seconds for _, _, seconds in results)
    return {"briefs": len(results), "sections": sections, "total_s": round(total_s, 2),
            "render_s": round(render_s, 2), "build_s_briefs": round(total_s - render_s, 2),
            "pages": pages, "bytes": sum(len(c) for _, c, _ in results),
            "most_urgent": urgent, "charts": charts,
            "render_ms_per_page": round(1000 * render_s / pages, 2),
            "total_ms_per_page": round(1000 * total_s / pages, 2),
            "slowest_brief_s": round(max(s for _, _, s in results), 3)}


def run_production(builder: Builder, day: dt.date, now: dt.datetime, shape: dict) -> dict:
    """The scheduler's own path for the day's briefs: ``run_due_reports`` claims each run,
    builds and renders in a read-only transaction, archives the PDF and queues its notice,
    one therapist at a time. Checks one succeeded run, document and notice per therapist."""
    from sqlalchemy import func
    from sqlalchemy import select

    from outcome.db import make_session_factory
    from outcome.db import transaction
    from outcome.models import OutboundEmail
    from outcome.models import ReportDocument
    from outcome.services.therapist_reports.preferences import BRIEF_KIND
    from outcome.services.therapist_reports.production import run_due_reports

    factory = make_session_factory(builder.engine)
    start = time.perf_counter()
    results = run_due_reports(factory, builder.library, now, BRIEF_KIND,
                              base_url="https://outcome.example",
                              only=(None, day.isoformat()))
    seconds = time.perf_counter() - start
    with transaction(factory) as session:
        documents = session.scalar(select(func.count()).select_from(ReportDocument))
        notices = session.scalar(select(func.count()).select_from(OutboundEmail))
    expected = len(shape["therapist_ids"])
    done = sum(r.status == "succeeded" for r in results)
    if (done, documents, notices) != (expected, expected, expected):
        raise RuntimeError(f"production: {done} briefs produced, {documents} archived, "
                           f"{notices} notices queued (expected {expected} of each)")
    builder.engine.dispose()
    return {"production_s": round(seconds, 2), "produced": done}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--therapists", type=int, default=100)
    parser.add_argument("--appointments", type=int, default=8,
                        help="appointments of each therapist on the day (at most 16)")
    parser.add_argument("--bare-pages", type=int, default=200,
                        help="pages of the bare reportlab document (rendered twice)")
    parser.add_argument("--database-url",
                        help="an empty database to fill (PostgreSQL; default: a temporary "
                        "SQLite file); it is left filled")
    parser.add_argument("--profile", type=Path,
                        help="write a cProfile of the briefs to this file (the ratio then "
                        "means nothing)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary folder with the SQLite database")
    parser.add_argument("--save", type=Path,
                        help="write the first therapist's brief to this PDF file, to look at")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if min(args.therapists, args.appointments, args.bare_pages) < 1 or args.appointments > 16:
        parser.error("sizes must be at least 1, and at most 16 appointments a day")

    from reports.brief_pdf import CHART_HEIGHT
    from reports.brief_pdf import CHART_WIDTH

    now = dt.datetime.now(dt.UTC).replace(hour=6, minute=0, second=0, microsecond=0)
    day = now.date() + dt.timedelta(days=1)
    now += dt.timedelta(days=1)  # the brief's production time, 06:00 on its day
    folder = Path(tempfile.mkdtemp(prefix="outcome-bench-"))
    url = args.database_url or f"sqlite:///{folder / 'bench.sqlite3'}"

    def bare(pages: int) -> float:
        return bare_document(pages, charts=2, chart_width=CHART_WIDTH,
                             chart_height=CHART_HEIGHT)[1]

    try:
        builder, shape = build_clinic(url, args, now - dt.timedelta(days=1), day)
        load = os.getloadavg()[0]
        bare(2)  # warm-up: reportlab's first document loads fonts and modules
        bare_before = bare(args.bare_pages)
        briefs = run_briefs(builder, day, now, shape, args.profile, args.save)
        production = run_production(builder, day, now, shape)
        bare_after = bare(args.bare_pages)
    finally:
        if args.keep:
            print(f"kept {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    bare_ms = 1000 * (bare_before + bare_after) / 2 / args.bare_pages
    shape.pop("therapist_ids")
    figures = {"day": day.isoformat(), "backend": url.split(":", 1)[0].split("+")[0],
               **shape, **briefs, **production, "bare_pages": args.bare_pages,
               "bare_ms_per_page": round(bare_ms, 2),
               "bare_ms_per_page_before_after": [round(1000 * bare_before / args.bare_pages, 2),
                                                 round(1000 * bare_after / args.bare_pages, 2)],
               "render_vs_bare": round(briefs["render_ms_per_page"] / bare_ms, 2),
               "total_vs_bare": round(briefs["total_ms_per_page"] / bare_ms, 2),
               "load_average": round(load, 2), "profiled": args.profile is not None}
    targets = {"total_under_60s": briefs["total_s"] < 60,
               "production_under_60s": production["production_s"] < 60,
               "render_within_2x_bare": figures["render_vs_bare"] <= 2}
    figures["targets_met"] = targets
    if args.json:
        print(json.dumps(figures))
        return
    report(figures, targets)


def report(figures: dict, targets: dict) -> None:
    def verdict(name: str) -> str:
        return "met" if targets[name] else "MISSED"

    f = figures
    print(f"pre-session briefs for {f['day']}, {f['backend']}: {f['therapists']} therapists "
          f"x {f['appointments_per_therapist']} appointments ({f['sections']} client "
          f"sections), {f['administrations']:,} administrations")
    print(f"  data built in {f['build_s']:.1f} s (signals {f['signals_s']:.1f} s)")
    print(f"  {f['briefs']} briefs end to end (build_brief + render_brief)  "
          f"{f['total_s']:8.2f} s  (target < 60 s: {verdict('total_under_60s')})")
    print(f"  {f['produced']} briefs by the scheduler's path (run_due_reports: claim, "
          f"build, render, archive, notice)  {f['production_s']:8.2f} s  "
          f"(target < 60 s: {verdict('production_under_60s')})")
    print(f"    render_brief calls                 {f['render_s']:8.2f} s  "
          f"(slowest brief {f['slowest_brief_s']:.2f} s)")
    print(f"    build_brief (DB reads, records)    {f['build_s_briefs']:8.2f} s")
    print(f"  {f['pages']} pages ({f['bytes'] / 1024:.0f} KB), {f['charts']} charts, "
          f"{f['most_urgent']} clients marked most urgent")
    print(f"  brief render per page       {f['render_ms_per_page']:8.2f} ms")
    print(f"  bare reportlab page         {f['bare_ms_per_page']:8.2f} ms  "
          f"(heading, 15x4 table, 2 charts side by side; {f['bare_pages']} pages, "
          f"before/after {f['bare_ms_per_page_before_after'][0]:.2f}/"
          f"{f['bare_ms_per_page_before_after'][1]:.2f} ms)")
    print(f"  brief render / bare page = {f['render_vs_bare']:.2f}x "
          f"(target <= 2x: {verdict('render_within_2x_bare')}); end to end / bare page = "
          f"{f['total_vs_bare']:.2f}x")
    print(f"  load average before the run {f['load_average']:.2f}")
    if f["profiled"]:
        print("  (profiled: the briefs ran under cProfile, so their times and the ratios "
              "are inflated)")


if __name__ == "__main__":
    main()
