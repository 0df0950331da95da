"""The persistence model.

``from outcome.models import Client`` works as usual. The model modules are loaded
together on first use (PEP 562), not when the package is merely imported: tools that
walk the package (layering checks, the CLI's help) then do not pull in SQLAlchemy.
Code that needs every table registered on ``Base.metadata`` without naming a model
(migrations) calls :func:`load_all`.
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULES = ("administration", "alert", "api", "audit", "base", "care", "clinic", "instrument",
            "mail", "monitoring", "report")
_NAMES = {
    "Administration": "administration", "Alert": "alert", "ApiIdempotencyRecord": "api",
    "ApiToken": "api", "AuditEvent": "audit",
    "Base": "base", "Appointment": "care", "Client": "care", "Episode": "care",
    "Goal": "care", "QuestionnaireLink": "care", "Clinic": "clinic",
    "SupervisorAssignment": "clinic", "User": "clinic",
    "InstrumentAttestation": "instrument", "OutboundEmail": "mail",
    "EpisodeSignal": "monitoring", "TrajectoryFit": "monitoring", "ReportDocument": "report",
    "ReportRun": "report",
}
__all__ = sorted(_NAMES)


def load_all() -> None:
    """Import every model module, so every table and relationship is registered."""
    for module in _MODULES:
        importlib.import_module(f"{__name__}.{module}")


def __getattr__(name: str) -> Any:
    if name not in _NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    load_all()  # all at once: relationships refer to each other by name
    return getattr(importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)
