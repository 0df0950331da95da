"""Clinic administration: staff accounts, supervision, client transfers, settings,
instrument licences, API tokens and the audit log.

Only active admins use these pages. Anybody else who is signed in gets a 404 (never a
403) and a ``denied`` audit record; a visitor who is not signed in is sent to the login
page, as on every staff page. An object of another clinic is a 404 too.

Admins see clients by code only: these pages never load a client's name, contacts or
answers, whether or not the admin is also a clinician (the clinician sees names on
their own pages). Clients are listed through ``administered_clients``, the access
module's one rule for administration.

Every change is audited with identifiers only: ``allowed`` when it happened, ``error``
when the input was refused (nothing changed), ``denied`` when the object is outside the
admin's clinic. Routes stay thin: the rules live in :mod:`outcome.services.staff`,
:mod:`outcome.services.access_requests` (an admin's client access of their own waits for
a second admin), :mod:`outcome.services.clinic_settings`, :mod:`outcome.services.instruments` and
:mod:`outcome.services.api_tokens`, and the audit log's query in
:mod:`outcome.services.audit_log`.

The package: :mod:`outcome.web.admin.blueprint` holds the blueprint, the admins-only
guard and the helpers the views share; one module per area holds its views
(``overview``, ``staff``, ``assignments``, ``clients``, ``settings``, ``instruments``,
``tokens``, ``audit_log``, ``deliveries``, ``mail_settings``, ``approvals``). Importing this package
registers them all on ``bp``; endpoints are ``admin.<view function>``.
"""

from __future__ import annotations

# The view modules are imported for their routes, which they add to ``bp``.
from outcome.web.admin import approvals  # noqa: F401
from outcome.web.admin import assignments  # noqa: F401
from outcome.web.admin import audit_log  # noqa: F401
from outcome.web.admin import battery  # noqa: F401
from outcome.web.admin import clients  # noqa: F401
from outcome.web.admin import consent_texts  # noqa: F401
from outcome.web.admin import crisis  # noqa: F401
from outcome.web.admin import deliveries  # noqa: F401
from outcome.web.admin import erasure  # noqa: F401  # issue 20
from outcome.web.admin import instruments  # noqa: F401
from outcome.web.admin import kiosks  # noqa: F401
from outcome.web.admin import mail_settings  # noqa: F401
from outcome.web.admin import overview  # noqa: F401
from outcome.web.admin import settings  # noqa: F401
from outcome.web.admin import staff  # noqa: F401
from outcome.web.admin import tokens  # noqa: F401
from outcome.web.admin import wording  # noqa: F401
from outcome.web.admin.blueprint import bp
from outcome.web.admin.blueprint import message

__all__ = ["bp", "message"]
