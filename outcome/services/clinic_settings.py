"""Clinic settings: declared once, validated on every change.

Settings live in ``clinics.settings`` (JSON). Missing keys take the defaults below (from
domain.md); a value outside its range is refused with a sentence that says why.
"""

from __future__ import annotations

import math
import zoneinfo
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from outcome.core.battery import entry_problem
from outcome.core.inputs import InputError
from outcome.core.inputs import load_json
from outcome.models import Clinic
from outcome.services import crisis


class SettingError(ValueError):
    """A clinic setting that cannot be used."""


@dataclass(frozen=True)
class ClinicSetting:
    key: str
    kind: type
    default: Any
    doc: str
    check: Callable[[Any], bool]
    rule: str


def _battery_ok(value: Any) -> bool:
    return isinstance(value, list) and all(entry_problem(entry) is None for entry in value)


def _time_ok(value: Any) -> bool:
    if not (isinstance(value, str) and len(value) == 5 and value[2] == ":"):
        return False
    hours, minutes = value[:2], value[3:]
    return (hours.isdigit() and minutes.isdigit() and int(hours) < 24
            and int(minutes) < 60)


def time_ok(value: Any) -> bool:
    """Whether ``value`` is a time of day written "HH:MM" (00:00 to 23:59)."""
    return _time_ok(value)


def _instrument_id_ok(value: Any) -> bool:
    return (isinstance(value, str) and 0 < len(value) <= 64
            and all(c.isascii() and (c.isalnum() or c in "_-") for c in value))


BOOLEAN_WORDS = {"true": True, "yes": True, "on": True, "1": True,
                 "false": False, "no": False, "off": False, "0": False}


DEFAULT_PRE_BATTERY = [{"instrument": "phq9", "every": "session"},
                       {"instrument": "gad7", "every": "session"},
                       {"instrument": "gbo", "every": "session"}]
DEFAULT_CRISIS_TEXT = (
    "If you are thinking about harming yourself and need help now, call your local "
    "emergency number or go to the nearest emergency department. You do not have to wait "
    "for your next session.")

CLINIC_SETTINGS: tuple[ClinicSetting, ...] = (
    ClinicSetting("colour_green_max", float, 0.75, "Residual percentile up to which progress "
                  "is green (on track).", lambda v: 0 < v < 1, "between 0 and 1"),
    ClinicSetting("colour_yellow_max", float, 0.90, "Residual percentile up to which progress "
                  "is yellow; above it, red.", lambda v: 0 < v < 1, "between 0 and 1"),
    ClinicSetting("model_min_episodes", int, 50, "Episodes (ongoing included) with three or "
                  "more measures needed before expected recovery curves replace the "
                  "rational rules.", lambda v: v >= 10, "at least 10"),
    ClinicSetting("rational_from_session", int, 4, "Rational rules: the session from which "
                  "too little improvement is yellow.", lambda v: v >= 2, "at least 2"),
    ClinicSetting("rational_fraction", float, 0.5, "Rational rules: yellow below this "
                  "fraction of the reliable-change threshold.", lambda v: 0 < v <= 1,
                  "above 0 and at most 1"),
    ClinicSetting("rational_red_session", int, 8, "Rational rules: from this session, still "
                  "in the clinical range without reliable improvement is red (project "
                  "default, unverified).", lambda v: v >= 2, "at least 2"),
    ClinicSetting("repair_window", int, 2, "Sessions within which a rupture must be repaired "
                  "before it is unrepaired.", lambda v: 1 <= v <= 10, "from 1 to 10"),
    ClinicSetting("pre_battery", list, DEFAULT_PRE_BATTERY, "Questionnaires before each "
                  "session, as a JSON list of {instrument, every}; every is session, nth (with "
                  "n, 2 to 52: every n-th session, the first included), intake_and_end, "
                  "intake, or month (as nth with n 4).", _battery_ok,
                  'a JSON list such as [{"instrument": "phq9", "every": "session"}]'),
    ClinicSetting("post_instrument", str, "session_check", "The alliance measure after each "
                  "session (empty for none).", lambda v: isinstance(v, str),
                  "an instrument id or empty"),
    ClinicSetting("link_opens_hours", int, 48, "A questionnaire link opens this many hours "
                  "before the appointment.", lambda v: 1 <= v <= 24 * 14, "1 to 336"),
    ClinicSetting("link_closes_hours", int, 24, "...and closes this many hours after it.",
                  lambda v: 1 <= v <= 24 * 14, "1 to 336"),
    ClinicSetting("link_email_hours", int, 24, "E-mail each client their link this many "
                  "hours before the session.", lambda v: 1 <= v <= 24 * 7, "1 to 168"),
    ClinicSetting("reminder_hours", int, 3, "One reminder this many hours before the "
                  "session if the questionnaires are not done yet (0 for none).",
                  lambda v: 0 <= v <= 48, "0 to 48"),
    ClinicSetting("crisis_text", str, DEFAULT_CRISIS_TEXT, "Shown to a client at once after "
                  "a critical answer: the clinic's own crisis contacts.",
                  lambda v: isinstance(v, str) and 20 <= len(v) <= 2000, "20 to 2000 "
                  "characters"),
    ClinicSetting("staff_idle_minutes", int, 30, "Staff are signed out after this many "
                  "minutes without a request (enforced on the server).",
                  lambda v: 5 <= v <= 240, "5 to 240"),
    ClinicSetting("staff_session_hours", int, 12, "Staff sign in again after this many hours, "
                  "however active.", lambda v: 1 <= v <= 24, "1 to 24"),
    ClinicSetting("digest_weekday", int, 0, "The day the supervisors' weekly digest is "
                  "sent: 0 Monday ... 6 Sunday.", lambda v: 0 <= v <= 6,
                  "0 (Monday) to 6 (Sunday)"),
    ClinicSetting("digest_time", str, "07:00", "The local time (HH:MM, clinic time zone) the "
                  "weekly digest is sent.", _time_ok, "a time from 00:00 to 23:59"),
    ClinicSetting("discrepancy_points", float, 5.0, "How much higher the therapist's alliance "
                  "rating must be than the client's to flag a discrepancy (0-40 scales; "
                  "project default, unverified).", lambda v: v > 0, "above 0"),
    ClinicSetting("primary_measure", str, "phq9", "The outcome measure whose change since "
                  "intake is an episode's change (domain.md section 3); a therapist may "
                  "choose another for one episode.", _instrument_id_ok,
                  "an instrument id such as phq9"),
    ClinicSetting("paired_rules", bool, False, "NHS Talking Therapies paired rules: with PHQ-9 "
                  "as the primary measure, an episode's change is the paired result of PHQ-9 "
                  "and its anxiety measure (GAD-7 unless the problem descriptor names "
                  "another). Off by default: the clinic turns them on.",
                  lambda v: isinstance(v, bool), "true or false"),
    # --- issue 17: crisis contacts and reading hours (outcome.services.crisis) ----------
    ClinicSetting("crisis_contacts", list, [], "The clinic's crisis contacts, shown to a "
                  "client after a critical answer as tap-to-call links: a JSON list of 1 to "
                  "5 {label, phone, note}. Edited on the admin's crisis form.",
                  crisis.contacts_ok, 'a JSON list of 1 to 5 {"label": "Crisis line", '
                  '"phone": "+44 800 123 4567", "note": "24 hours"}'),
    ClinicSetting("reading_hours", list, [], "When staff read incoming answers, clinic "
                  "time: a JSON list of 7 entries, Monday first, each [\"09:00\", "
                  "\"17:00\"] or null for a day without reading. Edited on the admin's "
                  "crisis form.", crisis.hours_ok,
                  'a JSON list of 7 entries (Monday first), each ["09:00", "17:00"] or null'),
    # issue 17: mail and escalation
    ClinicSetting("urgent_escalation_hours", int, 24, "An urgent answer not acknowledged "
                  "after this many hours is sent again to the therapist; after twice as "
                  "long, to the therapist's supervisors (the admins when there is none).",
                  lambda v: 1 <= v <= 24 * 7, "1 to 168"),
    # issue 18: therapist reports
    ClinicSetting("brief_time", str, "07:00", "The local time (HH:MM, clinic time zone) "
                  "each therapist's pre-session brief is produced on a day with "
                  "appointments; a therapist may choose another time.", _time_ok,
                  "a time from 00:00 to 23:59"),
    ClinicSetting("weekly_report_weekday", int, 0, "The day each therapist's weekly "
                  "caseload report (of the week just ended) is produced: 0 Monday ... 6 "
                  "Sunday.", lambda v: 0 <= v <= 6, "0 (Monday) to 6 (Sunday)"),
    ClinicSetting("weekly_report_time", str, "07:00", "The local time (HH:MM, clinic time "
                  "zone) the weekly caseload report is produced.", _time_ok,
                  "a time from 00:00 to 23:59"),
    # issue 19: after the signal
    ClinicSetting("support_check_auto", bool, False, "Send a support check to the client "
                  "automatically when their episode turns red, reliably deteriorates or has "
                  "an unrepaired alliance rupture (otherwise the therapist starts it).",
                  lambda v: isinstance(v, bool), "yes or no"),
    ClinicSetting("support_alliance_recent_days", int, 14, "A support check does not ask "
                  "about the alliance again when the episode has an alliance score this "
                  "many days old or newer; it reuses that score.", lambda v: 0 <= v <= 90,
                  "0 to 90 days"),
    ClinicSetting("plan_review_days", int, 28, "The review date a new action plan is "
                  "given by default, in days from the day it is recorded (the therapist "
                  "may choose another).", lambda v: 7 <= v <= 90, "7 to 90 days"),
    ClinicSetting("plan_overdue_days", int, 7, "A not-on-track or unrepaired-rupture case "
                  "with no action plan this many days after its alert was raised goes on "
                  "the supervisor's agenda.", lambda v: 1 <= v <= 60, "1 to 60 days"),
    # issue 20: procurement-grade trust
    ClinicSetting("two_factor_roles", list, [], "The staff roles that must sign in with a "
                  "second factor (an authenticator app's code or a passkey) after their "
                  "password; a user with any of these roles sets one up at their next sign-in.",
                  lambda v: (isinstance(v, list) and len(set(v)) == len(v)
                             and all(r in ("admin", "supervisor", "therapist") for r in v)),
                  'a JSON list of roles, e.g. ["admin", "supervisor", "therapist"], or []'),
    ClinicSetting("consent_online", bool, True, "Ask each client to agree to the clinic's "
                  "consent text on their phone before their first questionnaire (turn off "
                  "only where the clinic records consent another way).",
                  lambda v: isinstance(v, bool), "yes or no"),
    ClinicSetting("retention_years", int, 0, "Erase a client's personal data and answers "
                  "this many years after their last episode ended; 0 keeps them until "
                  "erased by hand.", lambda v: 0 <= v <= 100, "0 (keep) to 100 years"),
    ClinicSetting("retention_notice_days", int, 14, "How many days before the retention "
                  "job erases a client it lists them in its dry-run report to admins.",
                  lambda v: 1 <= v <= 90, "1 to 90 days"),
)
BY_KEY = {s.key: s for s in CLINIC_SETTINGS}


def current(clinic: Clinic) -> dict[str, Any]:
    """Every setting's value for the clinic (stored or default)."""
    stored = clinic.settings or {}
    return {s.key: stored.get(s.key, s.default) for s in CLINIC_SETTINGS}


def parse(key: str, raw: str) -> Any:
    """Turn text (from a form or the command line) into a setting's value."""
    setting = BY_KEY.get(key)
    if setting is None:
        raise SettingError(f"unknown setting {key!r}; known: {', '.join(BY_KEY)}")
    if setting.kind is list:
        try:  # nesting, number size and surrogates limited: never a crash
            return load_json(raw)
        except InputError:
            raise SettingError(f"{key} must be {setting.rule}; got {raw[:80]!r}") from None
    if setting.kind is bool:
        value = BOOLEAN_WORDS.get(raw.strip().lower())
        if value is None:
            raise SettingError(f"{key} must be {setting.rule}; got {raw!r}")
        return value
    if not raw.strip().isascii():  # int() and float() read other scripts' digits
        kind = "a whole number" if setting.kind is int else "a number"
        raise SettingError(f"{key} must be {kind} in the digits 0-9; got {raw[:80]!r}")
    try:
        return setting.kind(raw)
    except ValueError:
        kind = "a whole number" if setting.kind is int else "a number"
        raise SettingError(f"{key} must be {kind}; got {raw!r}") from None


def problems(clinic: Clinic, changes: Mapping[str, Any]) -> dict[str, str]:
    """Every reason ``changes`` cannot be stored, by setting key; empty when they can.

    A form shows each message next to its field; :func:`update` refuses on the first.
    """
    found: dict[str, str] = {}
    merged = current(clinic)
    for key, value in changes.items():
        setting = BY_KEY.get(key)
        if setting is None:
            found[key] = f"unknown setting {key!r}; known: {', '.join(BY_KEY)}"
            continue
        try:
            ok = _right_kind(setting, value) and bool(setting.check(value))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            found[key] = f"{key} must be {setting.rule}; got {value!r}"
            continue
        merged[key] = value
    if (not {"colour_green_max", "colour_yellow_max"} & found.keys()
            and merged["colour_green_max"] >= merged["colour_yellow_max"]):
        found["colour_green_max"] = "colour_green_max must be below colour_yellow_max"
    return found


def _right_kind(setting: ClinicSetting, value: Any) -> bool:
    if isinstance(value, bool):
        return setting.kind is bool
    if setting.kind is float:
        return isinstance(value, int | float) and math.isfinite(value)
    return isinstance(value, setting.kind)


def update(session: Session, clinic: Clinic, changes: Mapping[str, Any]) -> dict[str, Any]:
    """Validate and store ``changes``; flush. Returns every setting afterwards."""
    found = problems(clinic, changes)
    if found:
        raise SettingError(next(iter(found.values())))
    clinic.settings = {**(clinic.settings or {}), **dict(changes)}
    session.flush()
    return current(clinic)


def set_timezone(session: Session, clinic: Clinic, name: str) -> None:
    """Set the clinic's time zone (an IANA name such as Europe/London); flush."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise SettingError(f"timezone must be an IANA time zone such as Europe/London; "
                           f"got {name!r}") from None
    clinic.timezone = name
    session.flush()
