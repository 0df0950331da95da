"""The crisis block a client sees after a critical answer (``questionnaires/_crisis.html``).

Shown on the support page at once, and again on the end page of a link with a critical
answer. With the clinic's crisis setup complete (:mod:`outcome.services.crisis`): its
contacts as tap-to-call links, its reading hours, and when answers sent now will be
read, in the clinic's time zone and the client's language. Never "today": at 23:00 the
answers are read the next working morning, and the page says which. Until the setup is
complete, the generic emergency text only.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from babel.dates import format_datetime
from babel.dates import get_day_names
from flask_babel import get_locale
from flask_babel import gettext as _

from outcome.models import Clinic
from outcome.services import clinic_settings
from outcome.services import crisis


def _clock(moment: dt.time | dt.datetime) -> str:
    return f"{moment.hour}:{moment.minute:02d}"


def emergency_text(clinic: Clinic) -> str:
    """The clinic's crisis text; the default one in the reader's language."""
    text = clinic_settings.current(clinic)["crisis_text"]
    if text == clinic_settings.DEFAULT_CRISIS_TEXT:
        return _("If you are thinking about harming yourself and need help now, call your "
                 "local emergency number or go to the nearest emergency department. You do "
                 "not have to wait for your next session.")
    return str(text)


def hours_sentence(clinic: Clinic) -> str:
    """The reading hours in words: "Monday to Friday, 9:00-17:00; Saturday, 10:00-12:00"."""
    locale = str(get_locale() or "en")
    names = get_day_names("wide", locale=locale)
    parts = []
    for first, last, opens, closes in crisis.hours_groups(clinic):
        days = names[first] if first == last else _(
            "%(first)s to %(last)s", first=names[first], last=names[last])
        parts.append(_("%(days)s, %(opens)s\u2013%(closes)s", days=days, opens=_clock(opens),
                       closes=_clock(closes)))
    return "; ".join(parts)


def crisis_block(clinic: Clinic, now_utc: dt.datetime) -> dict[str, Any]:
    """What ``questionnaires/_crisis.html`` shows for ``clinic`` at ``now_utc``."""
    block: dict[str, Any] = {"emergency": emergency_text(clinic), "complete": False}
    window = crisis.next_reading_window(clinic, now_utc)
    if not crisis.crisis_setup_complete(clinic) or window is None:
        return block
    tz = zoneinfo.ZoneInfo(clinic.timezone)
    locale = str(get_locale() or "en")
    start, end = (moment.astimezone(tz) for moment in window)
    day = format_datetime(start, "EEEE d MMMM", tzinfo=tz, locale=locale)
    if start.astimezone(dt.UTC) == now_utc.astimezone(dt.UTC):
        when = _("The clinic is reading answers now: yours will be read by %(time)s on "
                 "%(day)s.", time=_clock(end), day=day)
    else:
        when = _("The clinic is not reading answers now: yours will be read on %(day)s, "
                 "between %(opens)s and %(closes)s.", day=day, opens=_clock(start),
                 closes=_clock(end))
    block.update(complete=True, contacts=crisis.crisis_contacts(clinic),
                 hours=_("Your therapist's clinic reads answers %(hours)s.",
                         hours=hours_sentence(clinic)), when=when)
    return block
