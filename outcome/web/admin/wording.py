"""Licensed wording installed by upload (issue 17): upload a definition or overlay file,
see what is wrong and where, or a preview of the questionnaire as a client would see it;
then confirm to install it into the clinic's instruments folder (as ``outcome
instruments install`` does). The site and the scheduler load it when restarted.

Nothing is kept between the preview and the confirmation: the confirmation form carries
the file (base64) and it is checked again before it is written. A bad file is a 400 and
nothing is installed.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from outcome.services import wording
from outcome.web.admin.blueprint import _record
from outcome.web.admin.blueprint import bp
from outcome.web.database import audit_event
from questionnaires.wording import instrument_wording


def _folder() -> Path:
    return Path(current_app.config["INSTRUMENTS_DIR"])


def _refused(problems: list[wording.UploadProblem], name: str = "") -> tuple[str, int]:
    audit_event(action="instrument.wording.install", outcome="error",
                actor_user_id=current_user.id, clinic_id=current_user.clinic_id,
                object_type="file", object_id=name[:64] or None, even_if_failed=True)
    return render_template("admin/wording.html", problems=problems, name=name,
                           max_kib=wording.MAX_BYTES // 1024), 400


@bp.route("/wording")
def wording_form() -> str:
    return render_template("admin/wording.html", problems=[], name="",
                           max_kib=wording.MAX_BYTES // 1024)


@bp.route("/wording/preview", methods=["POST"])
def wording_preview() -> str | tuple[str, int]:
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        if "instrument" in request.form:  # the preview's own questionnaire was sent
            message = _("This was a preview: answers given there are not stored.")
        else:
            message = _("Choose a file to upload.")
        return _refused([wording.UploadProblem("file", message)])
    name = upload.filename
    content = upload.stream.read(wording.MAX_BYTES + 1)
    try:
        instrument = wording.check_upload(name, content, _folder())
    except wording.UploadError as exc:
        return _refused(exc.problems, name)
    audit_event(action="instrument.wording.preview", outcome="allowed",
                actor_user_id=current_user.id, clinic_id=current_user.clinic_id,
                object_type="instrument", object_id=instrument.id)
    return render_template(
        "admin/wording_preview.html", instrument=instrument, values={}, errors={},
        position=1, total=1, goals={}, name=wording.file_name(name),
        wording=instrument_wording(instrument, str(get_locale() or "en")),
        content=base64.b64encode(content).decode("ascii"),
        replaces=(_folder() / wording.file_name(name)).exists())


@bp.route("/wording/install", methods=["POST"])
def wording_install() -> Response | tuple[str, int]:
    name = request.form.get("name", "")
    try:
        content = base64.b64decode(request.form.get("content", ""), validate=True)
    except (binascii.Error, ValueError):
        return _refused([wording.UploadProblem("file", _(
            "The confirmation did not carry the file; upload it again."))], name)
    try:
        instrument, target = wording.install_upload(name, content, _folder())
    except wording.UploadError as exc:
        return _refused(exc.problems, name)
    _record("instrument.wording.install", object_type="instrument", object_id=instrument.id)
    flash(_("%(name)s is installed as %(file)s. Restart the site and the scheduler to load "
            "it; then attest its licence here if it needs one.", name=instrument.short_name,
            file=target.name), "info")
    return redirect(url_for(".instrument_list"))
