"""Destructive actions ask for confirmation, without JavaScript.

Each destructive form (revoke, withdraw, disable, transfer) carries a required checkbox
``confirm=yes`` (``templates/_confirm.html``) that says what will happen. A POST without
it is refused with a 400 that says why, and nothing changes. The browser's ``required``
stops an unticked form before it is sent; the server check is what counts.
"""

from __future__ import annotations

from flask import abort
from flask import request
from flask_babel import gettext as _

CONFIRM_FIELD = "confirm"
CONFIRM_VALUE = "yes"


def is_confirmed() -> bool:
    return request.form.get(CONFIRM_FIELD) == CONFIRM_VALUE


def require_confirmation() -> None:
    """Abort with a 400 unless the form's confirmation box was ticked."""
    if not is_confirmed():
        abort(400, description=_(
            "Nothing was changed: tick the box that confirms what will happen, then "
            "press the button again."))
