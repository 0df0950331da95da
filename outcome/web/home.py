"""The signed-in landing page: who you are, and the caseload you can see."""

from __future__ import annotations

import datetime as dt
import functools
import threading
import time
import zoneinfo
from collections import OrderedDict
from types import SimpleNamespace
from urllib.parse import urlencode

from flask import Blueprint
from flask import abort
from flask import current_app
from flask import render_template
from flask import request
from flask_babel import get_locale
from flask_babel import get_timezone
from flask_babel import gettext as _
from flask_login import current_user
from flask_login import login_required
from markupsafe import Markup
from sqlalchemy import Integer
from sqlalchemy import Select
from sqlalchemy import bindparam
from sqlalchemy import func
from sqlalchemy import select

from outcome.extensions import instrument_library
from outcome.models import Appointment
from outcome.models import Clinic
from outcome.models import Episode
from outcome.services import consent as consents
from outcome.services.access import visible_clients
from outcome.services.caseload import COLOURS
from outcome.services.caseload import EPISODE_FILTERS
from outcome.services.caseload import SORT_COLUMNS
from outcome.services.caseload import CaseloadFilter
from outcome.services.caseload import CaseloadSort
from outcome.services.caseload import basis_notices
from outcome.services.caseload import caseload
from outcome.services.caseload import caseload_version
from outcome.services.caseload import past_clients
from outcome.services.caseload import rule_based_notices
from outcome.services.plan_marks import clinic_today
from outcome.services.plan_marks import plan_marks
from outcome.services.therapist_reports.archive import todays_brief
from outcome.web.clock import now
from outcome.web.database import audit_event
from outcome.web.database import db_session
from outcome.web.notices import caseload_notices

bp = Blueprint("home", __name__)


# Rendered caseload tables by (therapist, language, filters), with their fingerprint and
# time: a therapist returning to the dashboard is served the same table until anything
# it shows changes (see caseload_version), and at most CACHE_SECONDS old.
_TABLES: OrderedDict[tuple, tuple[tuple, float, Markup]] = OrderedDict()
_TABLES_LOCK = threading.Lock()
CACHE_SECONDS = 60.0
CACHE_ENTRIES = 256


@bp.route("/")
@login_required
def index() -> str:
    user = current_user
    if user.is_therapist:
        # The caseload shows many clients' signals: one record for the view as a whole.
        audit_event(action="caseload.view", outcome="allowed", actor_user_id=user.id,
                    clinic_id=user.clinic_id, object_type="user", object_id=user.id)
    store = db_session()
    start = now()
    # One round trip for the three figures, its statement built once per kind of user.
    counts = store.execute(
        _summary_statement(bool(user.is_active), bool(user.is_therapist),
                           bool(user.is_supervisor)),
        {"user_id": user.id, "clinic_id": user.clinic_id, "start": start,
         "week_end": start + dt.timedelta(days=7)}).one()
    summary = {"clients": counts[0] or 0, "open_episodes": counts[1] or 0,
               "appointments_week": counts[2] or 0}
    clinic = store.get(Clinic, user.clinic_id)
    filters = caseload_filter(request.args)
    sort = caseload_sort(request.args)
    table = (_caseload_table(store, user, filters, sort, start)
             if user.is_therapist and filters.shows_current else None)
    ended = (past_clients(store, user, search=filters.search, locale=str(get_locale()))
             if user.is_therapist and filters.shows_ended else None)
    brief = (todays_brief(store, user, start.astimezone(
        zoneinfo.ZoneInfo(clinic.timezone)).date()) if user.is_therapist and clinic else None)
    return render_template("home.html", user=user, clinic=clinic, summary=summary,
                           todays_brief=brief, caseload_table=table, filters=filters,
                           past_clients=ended,
                           episode_filter=True,
                           **caseload_notices(store, user, clinic, start))


@functools.cache
def _summary_statement(is_active: bool, is_therapist: bool, is_supervisor: bool) -> Select:
    """The start page's three figures (clients seen, open episodes, appointments in the
    next 7 days) for a user with these roles, built once (issue 21): the clients come
    from the one scoping function, given a stand-in user whose id and clinic are bound
    when the statement runs."""
    stand_in = SimpleNamespace(id=bindparam("user_id", type_=Integer),
                               clinic_id=bindparam("clinic_id", type_=Integer),
                               is_active=is_active, is_therapist=is_therapist,
                               is_supervisor=is_supervisor)
    clients = visible_clients(stand_in).subquery()  # type: ignore[arg-type]
    open_episodes = (select(Episode.id).join(clients, Episode.client_id == clients.c.id)
                     .where(Episode.closed_on.is_(None)))
    moment = Appointment.starts_dt.type
    week_ahead = (select(func.count()).select_from(Appointment)
                  .where(Appointment.episode_id.in_(open_episodes),
                         Appointment.status == "scheduled",
                         Appointment.starts_dt >= bindparam("start", type_=moment),
                         Appointment.starts_dt < bindparam("week_end", type_=moment)))
    return select(
        select(func.count()).select_from(clients).scalar_subquery(),
        select(func.count()).select_from(open_episodes.subquery()).scalar_subquery(),
        week_ahead.scalar_subquery())


def _caseload_table(store, user, filters: CaseloadFilter, sort: CaseloadSort,
                    start: dt.datetime) -> Markup:
    # The sort links carry the query string, and the alert ages the day.
    # issue 19: each client's plan marker (checks and plans do not change the version).
    marks = plan_marks(store, user.id, clinic_today(store, user.clinic_id, start), start)
    # issue 20: clients who declined or withdrew consent are marked.
    stopped = consents.caseload_marks(store, user.id)
    key = (current_app.name, id(current_app), user.id, str(get_locale()), str(get_timezone()),
           filters, sort,
           tuple(sorted(request.args.items(multi=True))), start.date(),
           tuple(sorted(marks.items())), tuple(sorted(stopped.items())))
    version = caseload_version(store, user.id, start)
    moment = time.monotonic()
    with _TABLES_LOCK:
        cached = _TABLES.get(key)
        if cached and cached[0] == version and moment - cached[1] < CACHE_SECONDS:
            _TABLES.move_to_end(key)
            return cached[2]
    library = instrument_library(current_app)
    scales = {i.id: i.primary_range for i in library}
    rows = caseload(store, user, filters=filters, sort=sort, scales=scales, now=start,
                    locale=str(get_locale()), library=library)
    # render_template's output is already escaped HTML: marking it safe escapes nothing.
    names = {i.id: i.short_name for i in library}
    table = Markup(render_template(  # noqa: S704  # nosec B704 (rendered, escaped HTML)
        "_caseload_table.html", caseload=rows, filters=filters, instrument_names=names,
        sorting=sort_links(request.args, sort), plan_marks=marks, consent_marks=stopped,
        notices=rule_based_notices((m for r in rows for m in r.rule_based), names,
                                   str(get_locale())) + basis_notices(rows)))
    with _TABLES_LOCK:
        _TABLES[key] = (version, moment, table)
        _TABLES.move_to_end(key)
        while len(_TABLES) > CACHE_ENTRIES:
            _TABLES.popitem(last=False)
    return table


def caseload_filter(args) -> CaseloadFilter:
    """Filters from the query string: ``colour`` (repeatable), ``attention=1``, ``q``,
    ``episodes`` (current, ended or all; anything else: current)."""
    episodes = args.get("episodes", "current")
    return CaseloadFilter(
        colours=tuple(c for c in args.getlist("colour") if c in COLOURS),
        needs_attention=args.get("attention") == "1",
        search=(args.get("q") or "")[:100],
        episodes=episodes if episodes in EPISODE_FILTERS else "current")


def caseload_sort(args) -> CaseloadSort:
    """The order from the query string: ``sort`` (one of :data:`SORT_COLUMNS`; none for
    the most urgent first) and ``dir`` (``asc``, the default, or ``desc``). Anything else
    is a 400 that says what is allowed."""
    columns, directions = args.getlist("sort"), args.getlist("dir")
    if (len(columns) > 1 or len(directions) > 1
            or (columns and columns[0] not in SORT_COLUMNS)
            or (directions and directions[0] not in ("asc", "desc"))):
        abort(400, description=_(
            "Sort the caseload by one of %(columns)s (parameter “sort”), in the order asc "
            "or desc (parameter “dir”).", columns=", ".join(SORT_COLUMNS)))
    return CaseloadSort(columns[0] if columns else "urgency",
                        descending=bool(directions) and directions[0] == "desc")


def sort_links(args, sort: CaseloadSort) -> dict[str, tuple[str, str | None]]:
    """Each sortable column's link (the other parameters kept) and its ``aria-sort``:
    a column not sorted on links to ascending; the sorted one to the other direction."""
    kept = [(k, v) for k, v in args.items(multi=True) if k not in ("sort", "dir")]
    links = {}
    for column in SORT_COLUMNS:
        current = sort.column == column
        descending = current and not sort.descending
        query = urlencode([*kept, ("sort", column), ("dir", "desc" if descending else "asc")])
        state = ("descending" if sort.descending else "ascending") if current else None
        links[column] = ("?" + query, state)
    return links
