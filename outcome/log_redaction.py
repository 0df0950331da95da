"""Secrets never reach a log line: questionnaire link tokens and API token secrets.

A link token is the key to a client's questionnaires, and an API secret (``oc_...``) the
key to a staff member's clients; either can sit in a request's address, an exception's
message or a traceback. :func:`install` makes every log record of the process (gunicorn's
error and access logs, Flask's, the app's own ``outcome.*`` loggers, any library's) carry
:func:`redact`'s text instead: the record is cleaned where it is made, before any handler
or formatter sees it, so a handler added later (by gunicorn, ``logging.basicConfig`` or an
operator's configuration) cannot print the original.

Standard library only: the command line, the scheduler and gunicorn's logger class use it.
"""

from __future__ import annotations

import logging
import re
from typing import Any

# /q/<token> (and anything else after /q/ but the fixed pages): the token is the whole
# path segment, whatever characters a client put in it.
_LINK_PATH = re.compile(r"/q/(?!support(?![^\s/?#\"'<>\\]))[^\s/?#\"'<>\\]+")
# An API secret: "oc_" and at least 16 of its 43 characters (the first 10 characters are
# shown on the tokens page, so a shorter run is no secret).
_API_SECRET = re.compile(r"(?<![A-Za-z0-9_-])oc_[A-Za-z0-9_-]{16,}")
# A bare token (secrets.token_urlsafe(32) is 43 characters): a run of 40 or more URL-safe
# base64 characters with upper- and lower-case letters and a digit. Hex digests (lower
# case) and identifiers are left alone.
_BARE_TOKEN = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{40,}(?![A-Za-z0-9_-])")

LINK_PLACEHOLDER = "/q/[token]"
SECRET_PLACEHOLDER = "oc_[secret]"  # noqa: S105 (a placeholder, not a secret)
BARE_PLACEHOLDER = "[token]"


def _bare(match: re.Match[str]) -> str:
    text = match.group(0)
    if (any(c.isupper() for c in text) and any(c.islower() for c in text)
            and any(c.isdigit() for c in text)):
        return BARE_PLACEHOLDER
    return text


def redact(text: str) -> str:
    """``text`` with link tokens (``/q/<token>`` and bare 43-character tokens) and API
    secrets (``oc_...``) replaced by placeholders; unchanged when it holds none."""
    if not text:
        return text
    text = _LINK_PATH.sub(LINK_PLACEHOLDER, text)
    text = _API_SECRET.sub(SECRET_PLACEHOLDER, text)
    return _BARE_TOKEN.sub(_bare, text)


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Clean ``record`` in place: its message, its formatted exception and stack."""
    try:
        message = record.getMessage()
    except Exception:  # a broken %-format: logging reports it at the handler
        message = None
    if message is not None:
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        text = logging.Formatter().formatException(record.exc_info)
        clean = redact(text)
        if clean != text:
            record.exc_text = clean  # formatters print exc_text when it is set
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


class RedactingFilter(logging.Filter):
    """A filter for handlers that receive records made before :func:`install` ran."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def install() -> None:
    """Make every log record of this process redacted when it is made (idempotent).

    Wraps the current log record factory, so records from every logger, propagating or
    not (gunicorn's do not), are clean before any handler sees them.
    """
    current = logging.getLogRecordFactory()
    if getattr(current, "outcome_redacts", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return redact_record(current(*args, **kwargs))

    factory.outcome_redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
