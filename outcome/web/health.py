"""``/healthz``: a liveness probe for load balancers and monitoring (no database, no data)."""

from __future__ import annotations

from flask import Blueprint
from flask import Response

bp = Blueprint("health", __name__)


@bp.route("/healthz")
def healthz() -> Response:
    return Response("ok\n", mimetype="text/plain")
