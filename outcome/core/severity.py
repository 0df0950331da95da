"""The severity band of a score, as the instrument's definition names it (domain.md section 2).

A band is the definition's own: its label, and its range on the primary score,
inclusive at both ends (PHQ-9 15-19 "moderately severe", Kroenke, Spitzer & Williams
2001; GAD-7 Spitzer et al. 2006; K10 Andrews & Slade 2001; WHO-5 index Topp et al.
2015; PCL-5 the probable-PTSD cutoff 33 of the US National Center for PTSD, as two
bands in its definition). An instrument without bands (ORS, SRS, WAI-SR, goals) has no
severity: :func:`severity` returns None and nothing is shown; no band is ever made up.

A band's words are user-facing, not item wording, so they are translated: each known
label has a message id (``severity.<label>``) in :mod:`outcome.core.messages`; a label
a clinic's overlay adds is shown as the overlay wrote it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from outcome.core.instruments import Instrument


@dataclass(frozen=True)
class Severity:
    """A score's band: the definition's label and the band's range (inclusive)."""

    label: str
    minimum: float
    maximum: float

    @property
    def message_id(self) -> str:
        """``severity.moderately_severe`` for "moderately severe" (see messages.py)."""
        return "severity." + re.sub(r"[^a-z0-9]+", "_", self.label.lower()).strip("_")

    @property
    def range_text(self) -> str:
        """"15-19" with an en dash (the numbers as the definition gives them)."""
        return f"{self.minimum:g}\u2013{self.maximum:g}"


def severity(instrument: Instrument, score: float | None) -> Severity | None:
    """The band of ``score`` on ``instrument``'s primary score; None when the instrument
    has no bands, or the score is missing, NaN or outside every band.

    Bands are inclusive at both ends and sorted (the loader checks that they cover the
    range without gaps at the score's precision); a prorated score between two bands'
    integers (PHQ-9 14.5 cannot happen at precision 0, but a clinic's mean-scored
    overlay might) belongs to the band whose upper end it does not pass, the lower one.
    """
    if score is None or not instrument.bands:
        return None
    value = float(score)
    if math.isnan(value):
        return None
    for band in instrument.bands:
        if band.minimum <= value <= band.maximum:
            return Severity(band.label, band.minimum, band.maximum)
    for lower, upper in zip(instrument.bands, instrument.bands[1:], strict=False):
        if lower.maximum < value < upper.minimum:  # between two bands' ends
            return Severity(lower.label, lower.minimum, lower.maximum)
    return None


__all__ = ["Severity", "severity"]
