"""The persistence model. Importing this package registers every table on ``Base.metadata``.

The models are imported explicitly (not loaded lazily on first attribute access) so that a
type checker sees each class: ``from outcome.models import Client`` is ``type[Client]``,
not ``Any``. Importing the package therefore imports SQLAlchemy, which the layers allowed
to use the models may do (see tests/test_layering.py).
"""

from __future__ import annotations

from outcome.models.administration import Administration
from outcome.models.alert import Alert
from outcome.models.api import ApiIdempotencyRecord
from outcome.models.api import ApiToken
from outcome.models.approval import AccessRequest
from outcome.models.audit import AuditDenialCount
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
from outcome.models.kiosk import KioskCode
from outcome.models.kiosk import KioskDevice
from outcome.models.mail import OutboundEmail
from outcome.models.monitoring import EpisodeSignal
from outcome.models.monitoring import TrajectoryFit
from outcome.models.report import ReportDocument
from outcome.models.report import ReportPreference
from outcome.models.report import ReportRun
from outcome.models.support import ActionPlan
from outcome.models.support import SupervisionReview
from outcome.models.support import SupportCheck
from outcome.models.trust import ConsentDecision
from outcome.models.trust import ConsentText
from outcome.models.trust import Passkey
from outcome.models.trust import RecoveryCode
from outcome.models.trust import RetentionRun
from outcome.models.trust import TotpSecret

__all__ = [
    "AccessRequest",
    "ActionPlan",
    "Administration",
    "Alert",
    "ApiIdempotencyRecord",
    "ApiToken",
    "Appointment",
    "AuditDenialCount",
    "AuditEvent",
    "Base",
    "Client",
    "Clinic",
    "ConsentDecision",
    "ConsentText",
    "Episode",
    "EpisodeSignal",
    "Goal",
    "InstrumentAttestation",
    "KioskCode",
    "KioskDevice",
    "OutboundEmail",
    "Passkey",
    "QuestionnaireLink",
    "RecoveryCode",
    "ReportDocument",
    "ReportPreference",
    "ReportRun",
    "RetentionRun",
    "SupervisionReview",
    "SupervisorAssignment",
    "SupportCheck",
    "TotpSecret",
    "TrajectoryFit",
    "User",
    "load_all",
]


def load_all() -> None:
    """Register every table and relationship on ``Base.metadata``.

    Importing this package already does so; the function stays for callers (the Alembic
    environment, ``outcome.schema``) that say so explicitly.
    """
