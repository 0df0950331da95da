"""outcome: progress feedback (routine outcome monitoring) for psychotherapy practices.

The package root imports no Flask; the application factory is ``outcome.app.create_app``.
"""

from __future__ import annotations

__version__ = "0.1.0"
