"""How often a questionnaire of the pre-session battery is asked (pure rules).

A battery entry is ``{"instrument": id, "every": how often}`` with ``every`` one of:

- ``session``: every session (the default when ``every`` is missing);
- ``nth`` with ``n`` (2 to 52): every n-th session, the first included (1, 1+n, 1+2n...);
- ``intake_and_end``: the first session and the episode's last booked session;
- ``intake``: the first session only;
- ``month``: kept from before issue 17, the same as ``nth`` with ``n`` 4 (the first
  session of each four); the battery form writes it as ``nth``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FREQUENCIES = ("session", "nth", "intake_and_end", "intake", "month")
NTH_MIN, NTH_MAX = 2, 52


def entry_problem(entry: Any) -> str | None:
    """Why ``entry`` is not a valid battery entry, or None."""
    if not isinstance(entry, Mapping):
        return "each entry must be an object such as {\"instrument\": \"phq9\"}"
    if not isinstance(entry.get("instrument"), str) or not entry["instrument"]:
        return "each entry needs an instrument id"
    every = entry.get("every", "session")
    if every not in FREQUENCIES:
        return f"every must be one of {', '.join(FREQUENCIES)}"
    if every == "nth":
        n = entry.get("n")
        if isinstance(n, bool) or not isinstance(n, int) or not NTH_MIN <= n <= NTH_MAX:
            return f"every nth needs n, a whole number from {NTH_MIN} to {NTH_MAX}"
    return None


def is_asked(entry: Mapping[str, Any], session_no: int, *, is_last: bool = False) -> bool:
    """Whether ``entry`` is asked before session ``session_no`` (1 is the intake).

    ``is_last``: the session is the last one booked in the episode (``intake_and_end``).
    """
    every = entry.get("every", "session")
    if every == "session":
        return True
    if every == "intake":
        return session_no == 1
    if every == "intake_and_end":
        return session_no == 1 or is_last
    if every == "month":
        return (session_no - 1) % 4 == 0
    if every == "nth":
        return (session_no - 1) % int(entry["n"]) == 0
    return False
