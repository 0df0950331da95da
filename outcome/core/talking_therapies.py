"""NHS Talking Therapies paired measures: PHQ-9 with GAD-7 (domain.md section 3).

Defaults are the programme's published thresholds; every one is a parameter.

- Caseness at the start: PHQ-9 >= 10 or GAD-7 >= 8. Recovery is assessed only for
  cases at caseness.
- Recovery: at the end PHQ-9 < 10 and GAD-7 < 8.
- Reliable improvement: PHQ-9 falls by >= 6 or GAD-7 by >= 4, and neither reliably
  deteriorates.
- Reliable deterioration: PHQ-9 rises by >= 6 or GAD-7 by >= 4, and neither reliably
  improves (unverified detail of the published rule).
- Reliable recovery: recovery and reliable improvement.
- A finished course needs at least two attended sessions with measures; other
  episodes are not assessed (``assessed`` is False).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TalkingTherapiesResult:
    """Per-episode flags; every array has one entry per episode."""

    assessed: np.ndarray
    at_caseness: np.ndarray
    recovered: np.ndarray
    reliably_improved: np.ndarray
    reliably_deteriorated: np.ndarray
    reliably_recovered: np.ndarray

    def counts(self) -> dict[str, int]:
        """Counts over assessed episodes; recovery counts are among those at caseness."""
        return {
            "assessed": int(self.assessed.sum()),
            "at_caseness": int((self.assessed & self.at_caseness).sum()),
            "recovered": int(self.recovered.sum()),
            "reliably_improved": int(self.reliably_improved.sum()),
            "reliably_deteriorated": int(self.reliably_deteriorated.sum()),
            "reliably_recovered": int(self.reliably_recovered.sum()),
        }


def talking_therapies(phq_first: np.ndarray, phq_last: np.ndarray, gad_first: np.ndarray,
                      gad_last: np.ndarray, sessions_with_measures: np.ndarray, *,
                      phq_caseness: float = 10, gad_caseness: float = 8,
                      phq_reliable: float = 6, gad_reliable: float = 4,
                      minimum_sessions: int = 2) -> TalkingTherapiesResult:
    """Apply the paired rules to first and last PHQ-9 and GAD-7 totals of each episode."""
    arrays = [np.asarray(a, dtype=float) for a in (phq_first, phq_last, gad_first, gad_last)]
    p1, p2, g1, g2 = arrays
    complete = np.all([np.isfinite(a) for a in arrays], axis=0)
    assessed = complete & (np.asarray(sessions_with_measures) >= minimum_sessions)
    caseness = (p1 >= phq_caseness) | (g1 >= gad_caseness)
    phq_down, phq_up = (p1 - p2) >= phq_reliable, (p2 - p1) >= phq_reliable
    gad_down, gad_up = (g1 - g2) >= gad_reliable, (g2 - g1) >= gad_reliable
    improved = assessed & (phq_down | gad_down) & ~(phq_up | gad_up)
    deteriorated = assessed & (phq_up | gad_up) & ~(phq_down | gad_down)
    recovered = assessed & caseness & (p2 < phq_caseness) & (g2 < gad_caseness)
    return TalkingTherapiesResult(
        assessed=assessed, at_caseness=caseness & assessed, recovered=recovered,
        reliably_improved=improved, reliably_deteriorated=deteriorated,
        reliably_recovered=recovered & improved)
