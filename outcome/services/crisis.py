"""A clinic's crisis contacts and reading hours: what a client sees after a critical answer.

Both are clinic settings (``crisis_contacts`` and ``reading_hours`` in
``clinics.settings``, declared in :mod:`outcome.services.clinic_settings`):

- **crisis contacts**: 1 to 5 of them, each a label (``Crisis line``), a phone number
  in E.164-like text (digits and spaces, an optional leading ``+``) and an optional note
  (``24 hours, free``). The client's crisis page shows them as tap-to-call links.
- **reading hours**: for each weekday (0 Monday ... 6 Sunday) the local time (clinic time
  zone) from which and until which staff read incoming answers, or nothing when the
  clinic does not read them that day. :func:`next_reading_time` says when answers sent
  now will be read, so the crisis page never promises "today" at 23:00.

Setup is not finished until both are set (:func:`crisis_setup_complete`): until then the
admin's start page shows a checklist, and the client's crisis page shows the generic
emergency text only.

No Flask here: the form (``outcome.web.admin.crisis``) turns its fields into the plain
values :func:`check_contacts` and :func:`check_hours` take, and shows the
:class:`CrisisError` messages (marked with ``N_``, translated at the edge).
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from outcome.models import Administration
from outcome.models import Clinic
from outcome.models import QuestionnaireLink

MAX_CONTACTS = 5
MAX_LABEL = 80
MAX_NOTE = 200
MAX_PHONE = 32
_PHONE = re.compile(r"\+?[0-9 ]+")
_TIME = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")


def N_(message: str) -> str:  # the gettext convention for "mark only"
    """Mark ``message`` for translation without translating it (Babel extracts ``N_``)."""
    return message


class CrisisError(ValueError):
    """Crisis contacts or reading hours that cannot be stored; the message says why.

    ``message`` is the untranslated template, ``params`` its values and ``field`` the
    form field at fault (``contact-2-phone``, ``hours-4``...).
    """

    def __init__(self, message: str, *, field: str | None = None, **params: Any) -> None:
        self.message = message
        self.params = params
        self.field = field
        super().__init__(message % params if params else message)


@dataclass(frozen=True)
class CrisisContact:
    """One of the clinic's crisis contacts."""

    label: str
    phone: str
    note: str = ""

    @property
    def tel(self) -> str:
        """The number for a ``tel:`` link: the digits, with the leading ``+`` if any."""
        digits = re.sub(r"[^0-9]", "", self.phone)
        return ("+" if self.phone.strip().startswith("+") else "") + digits


@dataclass(frozen=True)
class ReadingHours:
    """The hours in which the clinic reads answers on one weekday (0 is Monday)."""

    weekday: int
    opens: dt.time
    closes: dt.time


# --- checking (also the settings' check functions) ---------------------------------------


def contact_problem(entry: Mapping[str, Any], number: int = 1) -> CrisisError | None:
    """Why one contact (a mapping of label, phone, note) cannot be stored, or None."""
    label = entry.get("label")
    phone = entry.get("phone")
    note = entry.get("note", "")
    if not isinstance(label, str) or not label.strip():
        return CrisisError(N_("Contact %(number)s needs a label, such as Crisis line."),
                           field=f"contact-{number}-label", number=number)
    if len(label.strip()) > MAX_LABEL:
        return CrisisError(N_("A contact's label has at most %(count)s characters."),
                           field=f"contact-{number}-label", count=MAX_LABEL)
    digits = sum(c.isdigit() for c in phone) if isinstance(phone, str) else 0
    if (not isinstance(phone, str) or not phone.isascii()
            or not _PHONE.fullmatch(phone.strip()) or not 3 <= digits <= 20
            or len(phone.strip()) > MAX_PHONE):
        return CrisisError(N_("Contact %(number)s: the phone number must be digits and "
                              "spaces, with an optional + in front, such as +44 800 123 "
                              "4567 or 112."), field=f"contact-{number}-phone",
                           number=number)
    if not isinstance(note, str) or len(note.strip()) > MAX_NOTE:
        return CrisisError(N_("A contact's note has at most %(count)s characters."),
                           field=f"contact-{number}-note", count=MAX_NOTE)
    return None


def check_contacts(entries: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """The contacts as stored (label, phone, note, trimmed), or :class:`CrisisError`.

    1 to 5 contacts; a phone number is digits and spaces with an optional leading ``+``
    and 3 to 20 digits (a short emergency number such as 112 is one).
    """
    cleaned = []
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, Mapping):
            raise CrisisError(N_("Contact %(number)s is not a contact."), number=number)
        problem = contact_problem(entry, number)
        if problem is not None:
            raise problem
        cleaned.append({"label": entry["label"].strip(),
                        "phone": " ".join(entry["phone"].split()),
                        "note": (entry.get("note") or "").strip()})
    if not cleaned:
        raise CrisisError(N_("Give at least one crisis contact."), field="contact-1-label")
    if len(cleaned) > MAX_CONTACTS:
        raise CrisisError(N_("Give at most %(count)s crisis contacts."), count=MAX_CONTACTS)
    return cleaned


def day_problem(weekday: int, day: Any) -> CrisisError | None:
    """Why one weekday's reading hours (None, or ``[opens, closes]``) cannot be stored."""
    if day is None:
        return None
    if (not isinstance(day, Sequence) or isinstance(day, str) or len(day) != 2
            or not all(isinstance(t, str) and _TIME.fullmatch(t) for t in day)):
        return CrisisError(N_("Give the opening and closing times as HH:MM, such as 09:00 "
                              "and 17:00."), field=f"hours-{weekday}")
    if day[0] >= day[1]:
        return CrisisError(N_("The closing time must be after the opening time."),
                           field=f"hours-{weekday}")
    return None


def check_hours(days: Sequence[Any]) -> list[list[str] | None]:
    """The reading hours as stored: seven entries, Monday first, each ``[opens, closes]``
    (``HH:MM``, opening before closing) or None for a day without reading; or
    :class:`CrisisError`. At least one day must have hours."""
    if not isinstance(days, Sequence) or isinstance(days, str) or len(days) != 7:
        raise CrisisError(N_("Give the reading hours of each of the seven weekdays."))
    for weekday, day in enumerate(days):
        problem = day_problem(weekday, day)
        if problem is not None:
            raise problem
    if all(day is None for day in days):
        raise CrisisError(N_("Give the reading hours of at least one day."), field="hours-0")
    return [None if day is None else [day[0], day[1]] for day in days]


def problems(contacts: Sequence[Mapping[str, Any]],
             hours: Sequence[Any]) -> list[CrisisError]:
    """Every reason the form's contacts and hours cannot be stored (empty when they can),
    so that a form marks each field at fault at once."""
    found = [p for number, entry in enumerate(contacts, start=1)
             if (p := contact_problem(entry, number)) is not None]
    if not contacts:
        found.append(CrisisError(N_("Give at least one crisis contact."),
                                 field="contact-1-label"))
    if len(contacts) > MAX_CONTACTS:
        found.append(CrisisError(N_("Give at most %(count)s crisis contacts."),
                                 count=MAX_CONTACTS))
    found += [p for weekday, day in enumerate(hours)
              if (p := day_problem(weekday, day)) is not None]
    if len(hours) != 7:
        found.append(CrisisError(N_("Give the reading hours of each of the seven "
                                    "weekdays.")))
    elif all(day is None for day in hours):
        found.append(CrisisError(N_("Give the reading hours of at least one day."),
                                 field="hours-0"))
    return found


def contacts_ok(value: Any) -> bool:
    """The ``crisis_contacts`` setting's check."""
    try:
        return isinstance(value, list) and check_contacts(value) == value
    except CrisisError:
        return False


def hours_ok(value: Any) -> bool:
    """The ``reading_hours`` setting's check."""
    try:
        return isinstance(value, list) and check_hours(value) == value
    except CrisisError:
        return False


# --- reading -----------------------------------------------------------------------------


def _stored(clinic: Clinic, key: str) -> Any:
    return (clinic.settings or {}).get(key)


def crisis_contacts(clinic: Clinic) -> list[CrisisContact]:
    """The clinic's crisis contacts, in the admin's order; empty until they are set (or
    when what is stored is not valid)."""
    value = _stored(clinic, "crisis_contacts")
    if not contacts_ok(value):
        return []
    return [CrisisContact(e["label"], e["phone"], e.get("note", "")) for e in value]


def reading_hours(clinic: Clinic) -> list[ReadingHours]:
    """The clinic's reading hours, one entry per weekday it reads answers (Monday first);
    empty until they are set."""
    value = _stored(clinic, "reading_hours")
    if not hours_ok(value):
        return []
    return [ReadingHours(weekday, dt.time.fromisoformat(day[0]), dt.time.fromisoformat(day[1]))
            for weekday, day in enumerate(value) if day is not None]


def crisis_setup_complete(clinic: Clinic) -> bool:
    """Whether the clinic's crisis contacts and reading hours are both set."""
    return bool(crisis_contacts(clinic)) and bool(reading_hours(clinic))


def next_reading_window(clinic: Clinic, now_utc: dt.datetime
                        ) -> tuple[dt.datetime, dt.datetime] | None:
    """When answers sent at ``now_utc`` will be read: ``(from, by)``, both in UTC.

    ``from`` is ``now_utc`` itself inside the reading hours, otherwise the next opening;
    ``by`` is the closing time of those hours. None while no reading hours are set.
    Local times are those of the clinic's time zone (a clock change is followed).
    """
    hours = {h.weekday: h for h in reading_hours(clinic)}
    if not hours:
        return None
    tz = zoneinfo.ZoneInfo(clinic.timezone)
    local_now = now_utc.astimezone(tz)
    for offset in range(8):
        day = local_now.date() + dt.timedelta(days=offset)
        today = hours.get(day.weekday())
        if today is None:
            continue
        opens = dt.datetime.combine(day, today.opens, tzinfo=tz)
        closes = dt.datetime.combine(day, today.closes, tzinfo=tz)
        if offset == 0 and opens <= local_now < closes:
            return now_utc.astimezone(dt.UTC), closes.astimezone(dt.UTC)
        if opens > local_now:
            return opens.astimezone(dt.UTC), closes.astimezone(dt.UTC)
    return None  # unreachable: a weekday with hours comes within 7 days


def next_reading_time(clinic: Clinic, now_utc: dt.datetime) -> dt.datetime | None:
    """When answers sent at ``now_utc`` will be read (UTC): ``now_utc`` inside the reading
    hours, otherwise the next opening. None while no reading hours are set."""
    window = next_reading_window(clinic, now_utc)
    return window[0] if window else None


def hours_groups(clinic: Clinic) -> list[tuple[int, int, dt.time, dt.time]]:
    """The reading hours for a sentence: runs of consecutive weekdays with the same hours,
    as ``(first weekday, last weekday, opens, closes)`` (Monday to Friday 9-17 is one)."""
    groups: list[tuple[int, int, dt.time, dt.time]] = []
    for hours in reading_hours(clinic):
        if (groups and groups[-1][1] == hours.weekday - 1
                and groups[-1][2:] == (hours.opens, hours.closes)):
            first = groups[-1][0]
            groups[-1] = (first, hours.weekday, hours.opens, hours.closes)
        else:
            groups.append((hours.weekday, hours.weekday, hours.opens, hours.closes))
    return groups


def link_had_critical_answer(session: Session, link: QuestionnaireLink) -> bool:
    """Whether any questionnaire answered through ``link`` had a critical answer."""
    scores = session.scalars(select(Administration.scores).where(
        Administration.link_id == link.id))
    return any(isinstance(s, dict) and s.get("critical_items") for s in scores)


def save(session: Session, clinic: Clinic, contacts: Iterable[Mapping[str, Any]],
         hours: Sequence[Any]) -> None:
    """Check and store the clinic's crisis contacts and reading hours together; flush.

    Raises :class:`CrisisError` (nothing stored) on the first problem.
    """
    changes = {"crisis_contacts": check_contacts(contacts), "reading_hours": check_hours(hours)}
    clinic.settings = {**(clinic.settings or {}), **changes}
    session.flush()
