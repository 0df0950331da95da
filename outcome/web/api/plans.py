"""Action plans and supervision reviews as ``/api/v1`` shows them (issue 19), read only.

The routes live in :mod:`outcome.web.api.routes`; this module builds their queries and
their JSON, so that a list of fifty plans costs a handful of queries, not fifty.

Who sees what follows the rest of the API (and security.md):

- the client's own therapist (a personal token): the whole plan, its steps' words, its
  note and closing note; every review of the client with its note;
- a supervisor of the client's therapist: the plan's *state* by client code: status,
  dates, who made and closed it, the steps' domains, suggestion ids and decisions, the
  baseline and outcome (scores and colours, as the signals show them), the support
  check's reason and status, the alerts it resolved; never the steps' words, the notes
  or any answer. A review's note is for the supervisor who wrote it and the therapist;
- an admin (integration token, or a personal token without a clinical role) reaches no
  plan and no review: the lists are empty and every plan is a 404.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import request
from sqlalchemy import Select
from sqlalchemy import and_
from sqlalchemy import not_
from sqlalchemy import or_
from sqlalchemy import select

from outcome.core.inputs import InputError
from outcome.core.inputs import parse_timestamp
from outcome.models import ActionPlan
from outcome.models import Alert
from outcome.models import Client
from outcome.models import Episode
from outcome.models import SupervisionReview
from outcome.models import SupportCheck
from outcome.models.support import PLAN_STATUSES
from outcome.services.explanations import render_explanation
from outcome.web.api.problems import FieldError
from outcome.web.api.problems import Problem
from outcome.web.database import db_session
from outcome.web.inputs import arg_id
from outcome.web.scoping import acting_user
from outcome.web.scoping import sees_names

PLAN_STATUS_FILTER = (*PLAN_STATUSES, "all")
BOOLEAN_WORDS = {"true": True, "false": False}


def _utc(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


# --- query parameters ----------------------------------------------------------------------


def _refuse(parameter: str, detail: str, code: str) -> Problem:
    return Problem(400, f"The {parameter} parameter is not valid.", errors=[FieldError(
        detail, parameter=parameter, code=code)])


def status_filter() -> str:
    """``?status=`` of a plan list: open (the default), closed, revised or all."""
    status = request.args.get("status", "open")
    if status not in PLAN_STATUS_FILTER:
        raise _refuse("status", f"status is one of {', '.join(PLAN_STATUS_FILTER)}.",
                      "not_an_option")
    return status


def review_due_filter() -> bool | None:
    """``?review_due=true|false``, or None when absent."""
    raw = request.args.get("review_due")
    if raw is None:
        return None
    if raw not in BOOLEAN_WORDS:
        raise _refuse("review_due", "review_due is true or false.", "not_an_option")
    return BOOLEAN_WORDS[raw]


def updated_since_filter() -> dt.datetime | None:
    """``?updated_since=`` as an RFC 3339 time with its offset, or None when absent."""
    raw = request.args.get("updated_since")
    if raw is None:
        return None
    try:
        return parse_timestamp(raw)
    except InputError as exc:
        raise _refuse("updated_since", exc.message, exc.code) from None


def plan_id_filter() -> int | None:
    """``?plan_id=`` of a review list: a plan's id (1 or more), or None when absent."""
    value = arg_id("plan_id")
    if value is not None and value < 1:
        raise _refuse("plan_id", "plan_id is a plan's id, a whole number from 1.",
                      "out_of_range")
    return value


def plans_query(visible: Select, today: dt.date) -> Select:
    """The plans of the ``visible`` clients' episodes (a SELECT of client ids), narrowed by
    the request's ``status``, ``review_due`` and ``updated_since``.

    A plan's review is due when it is open and its review date (``review_on``) is today or
    past, in the clinic's calendar (``today``). A plan was updated since a time when it was
    created, closed or revised at or after it (a revision closes the plan it replaces).
    """
    status, due, since = status_filter(), review_due_filter(), updated_since_filter()
    query = (select(ActionPlan).join(Episode, Episode.id == ActionPlan.episode_id)
             .where(Episode.client_id.in_(visible)))
    if status != "all":
        query = query.where(ActionPlan.status == status)
    if due is not None:
        is_due = and_(ActionPlan.status == "open", ActionPlan.review_on <= today)
        query = query.where(is_due if due else not_(is_due))
    if since is not None:
        query = query.where(or_(ActionPlan.created_dt >= since, ActionPlan.closed_dt >= since))
    return query


def reviews_query(visible: Select) -> Select:
    """The supervision reviews of the ``visible`` clients' episodes, narrowed by the
    request's ``plan_id``."""
    plan_id = plan_id_filter()
    query = (select(SupervisionReview)
             .join(Episode, Episode.id == SupervisionReview.episode_id)
             .where(Episode.client_id.in_(visible)))
    if plan_id is not None:
        query = query.where(SupervisionReview.plan_id == plan_id)
    return query


# --- representations -----------------------------------------------------------------------


def _clients_of(episode_ids: set[int]) -> dict[int, Client]:
    """Each episode's client, by episode id."""
    store = db_session()
    rows = store.execute(select(Episode.id, Client).join(Client, Client.id == Episode.client_id)
                         .where(Episode.id.in_(episode_ids))).all()
    return {episode_id: client for episode_id, client in rows}


def _step_text(value: Any) -> str | None:
    """A step's words: stored as text, or as a message (a suggestion's wording)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return render_explanation(value) or None
    return None


def _step_json(step: Any, own: bool) -> dict[str, Any]:
    step = step if isinstance(step, dict) else {}
    return {"domain": step.get("domain"), "suggestion_id": step.get("suggestion"),
            "decision": step.get("decision"),
            "text": _step_text(step.get("text")) if own else None}


def _check_json(check: SupportCheck | None) -> dict[str, Any] | None:
    if check is None:
        return None
    return {"id": check.id, "reason": check.reason, "status": check.status,
            "started_at": _utc(check.started_dt), "answered_at": _utc(check.answered_dt)}


def plans_json(plans: list[ActionPlan], today: dt.date) -> list[dict[str, Any]]:
    """The plans as the API shows them to this request's reader (see the module's
    docstring); ``today`` in the clinic's calendar decides ``review_due``."""
    if not plans:
        return []
    store = db_session()
    ids = [p.id for p in plans]
    clients = _clients_of({p.episode_id for p in plans})
    alerts: dict[int | None, list[int]] = {}
    for alert_id, plan_id in store.execute(select(Alert.id, Alert.plan_id).where(
            Alert.plan_id.in_(ids)).order_by(Alert.id)).all():
        alerts.setdefault(plan_id, []).append(alert_id)
    revised_by = dict(store.execute(select(ActionPlan.revised_from_id, ActionPlan.id).where(
        ActionPlan.revised_from_id.in_(ids)).order_by(ActionPlan.id)).all())
    check_ids = {p.support_check_id for p in plans if p.support_check_id is not None}
    checks = {c.id: c for c in store.scalars(select(SupportCheck).where(
        SupportCheck.id.in_(check_ids)))} if check_ids else {}
    out = []
    for plan in plans:
        client = clients[plan.episode_id]
        own = sees_names(client)
        out.append({
            "id": plan.id, "client_code": client.code, "episode_id": plan.episode_id,
            "status": plan.status, "created_at": _utc(plan.created_dt),
            "created_by_id": plan.created_by_id, "review_on": plan.review_on.isoformat(),
            "review_due": plan.status == "open" and plan.review_on <= today,
            "steps": [_step_json(s, own) for s in plan.steps or []],
            "note": plan.note if own else None,
            "baseline": plan.baseline or None,
            "closed_at": _utc(plan.closed_dt), "closed_by_id": plan.closed_by_id,
            "closing_note": plan.closing_note if own else None,
            "outcome": plan.outcome or None,
            "revised_from_id": plan.revised_from_id, "revised_by_id": revised_by.get(plan.id),
            "support_check": _check_json(checks.get(plan.support_check_id)
                                         if plan.support_check_id is not None else None),
            "resolved_alert_ids": alerts.get(plan.id, [])})
    return out


def reviews_json(reviews: list[SupervisionReview]) -> list[dict[str, Any]]:
    """The reviews as the API shows them: the note to its author and to the client's own
    therapist only."""
    if not reviews:
        return []
    clients = _clients_of({r.episode_id for r in reviews})
    reader = acting_user()
    out = []
    for review in reviews:
        client = clients[review.episode_id]
        shown = sees_names(client) or review.supervisor_id == reader.id
        out.append({
            "id": review.id, "client_code": client.code, "episode_id": review.episode_id,
            "plan_id": review.plan_id, "supervisor_id": review.supervisor_id,
            "reviewed_at": _utc(review.reviewed_dt), "discussed": review.discussed,
            "plan_agreed": review.plan_agreed,
            "follow_up_on": review.follow_up_on.isoformat() if review.follow_up_on else None,
            "note": review.note if shown else None})
    return out


def plan_owner_code(plan_id: int, clinic_id: int) -> str | None:
    """The code of the client whose episode holds plan ``plan_id``, if that client is of
    ``clinic_id`` (a plan of another clinic is as unknown as one that does not exist)."""
    return db_session().scalar(
        select(Client.code).join(Episode, Episode.client_id == Client.id)
        .join(ActionPlan, ActionPlan.episode_id == Episode.id)
        .where(ActionPlan.id == plan_id, Client.clinic_id == clinic_id))
