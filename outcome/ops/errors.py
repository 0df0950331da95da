"""The one error of backup and restore, raised by every module of :mod:`outcome.ops`.

A module of its own so the backends and the entry points can all raise it without
importing each other.
"""

from __future__ import annotations


class BackupError(Exception):
    """A backup or restore cannot go ahead; the message is one line that says why."""
