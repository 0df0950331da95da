"""The clinic's consent text (issue 20): per language, the current version and its
history; publishing a change makes a new version (the old ones stay, since each client's
decision names the version they read). Audited as ``consent.text.publish``.

The rules are in :mod:`outcome.services.consent`. Clients who agreed to an older version
are asked again at their next questionnaire.
"""

from __future__ import annotations

from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from outcome.core.languages import LANGUAGE_NAMES
from outcome.core.languages import SUPPORTED_LOCALES
from outcome.services import consent
from outcome.web.admin.blueprint import _admin
from outcome.web.admin.blueprint import _clinic
from outcome.web.admin.blueprint import _record
from outcome.web.admin.blueprint import bp
from outcome.web.clock import now
from outcome.web.database import audit_event
from outcome.web.database import db_session
from outcome.web.database import discard_changes
from outcome.web.database import writes


@bp.route("/consent", methods=["GET", "POST"])
@writes  # a language's first text is made from the shipped default when first shown
def consent_texts() -> str | Response | tuple[str, int]:
    """Per language: the current text in an editor, and every earlier version."""
    clinic = _clinic()
    store = db_session()
    language = request.values.get("language", SUPPORTED_LOCALES[0])
    error = None
    draft = None
    if request.method == "POST":
        draft = request.form.get("body", "")
        try:
            text = consent.publish(store, clinic=clinic, language=language, body=draft,
                                   user=_admin(), now=now())
        except consent.ConsentError as exc:
            discard_changes()
            audit_event(action="consent.text.publish", outcome="error",
                        actor_user_id=_admin().id, clinic_id=clinic.id,
                        object_type="consent_text", even_if_failed=True)
            error = {"the consent text is empty": _("The consent text is empty."),
                     "the text is the same as the current version": _(
                         "The text is the same as the current version: nothing to "
                         "publish.")}.get(exc.message, exc.message)
        else:
            _record("consent.text.publish", object_type="consent_text", object_id=text.id)
            flash(_("Version %(version)s published. Clients who agreed to an earlier version "
                    "are asked again at their next questionnaire.", version=text.version),
                  "info")
            return redirect(url_for(".consent_texts", language=language) + "#editor")
    languages = []
    for code in SUPPORTED_LOCALES:
        current = consent.current_text(store, clinic, code, now())
        languages.append({"code": code, "name": LANGUAGE_NAMES[code], "current": current,
                          "history": consent.history(store, clinic.id, code)})
    if language not in SUPPORTED_LOCALES:
        language = SUPPORTED_LOCALES[0]
    return render_template("admin/consent.html", languages=languages, language=language,
                           error=error, draft=draft), (422 if error else 200)
