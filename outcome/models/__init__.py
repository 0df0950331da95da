"""The persistence model. Importing this package registers every table on ``Base.metadata``."""

from __future__ import annotations

from outcome.models.administration import Administration
from outcome.models.alert import Alert
from outcome.models.audit import AuditEvent
from outcome.models.base import Base
from outcome.models.care import Appointment
from outcome.models.care import Client
from outcome.models.care import Episode
from outcome.models.care import Goal
from outcome.models.care import QuestionnaireLink
from outcome.models.clinic import Clinic
from outcome.models.clinic import SupervisorAssignment
from outcome.models.clinic import User
from outcome.models.instrument import InstrumentAttestation
from outcome.models.mail import OutboundEmail
from outcome.models.monitoring import EpisodeSignal
from outcome.models.monitoring import TrajectoryFit
from outcome.models.report import ReportRun

__all__ = [
    "Administration",
    "Alert",
    "Appointment",
    "AuditEvent",
    "Base",
    "Client",
    "Clinic",
    "Episode",
    "EpisodeSignal",
    "Goal",
    "InstrumentAttestation",
    "OutboundEmail",
    "QuestionnaireLink",
    "ReportRun",
    "SupervisorAssignment",
    "TrajectoryFit",
    "User",
]
