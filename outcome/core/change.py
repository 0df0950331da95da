"""Reliable and clinically significant individual change (domain.md section 3).

Vectorised over many pre/post pairs. With ``d = +1`` for higher-is-better and ``-1``
for higher-is-worse (Jacobson & Truax 1991):

- JT: ``SE = SD1 * sqrt(1 - r)``, ``S_diff = sqrt(2 * SE**2)``, ``RCI = (x2 - x1) / S_diff``;
- GLN: ``(x2 - M1 - r (x1 - M1)) / (SD1 sqrt(1 - r**2))`` (Speer's Gulliksen-Lord-Novick);
- HLL: ``((x2 - M2) - r (x1 - M1)) / (SD1 sqrt(1 - r**2))`` (Hsu-Linn-Lord);
- EN: ``(x2 - (r (x1 - M1) + M1)) / SE`` (Edwards-Nunnally);
- NK: ``(x2 - (r (x1 - M1) + M1)) / sqrt(r**2 SD1**2 (1 - r) + SD1**2 (1 - r_post))``
  (Nunnally-Kotsch);
- reliably improved when ``d * RCI > critical`` and deteriorated when ``d * RCI < -critical``
  (strict; critical 1.96 by default). With a fixed threshold in points (PHQ-9: 6),
  improved when ``d * (x2 - x1) >= points``, deteriorated when ``<= -points``.

Cutoffs, from the clinical mean and SD (the sample's pre scores unless given) and the
functional population's: ``a = M_c + d 2 SD_c``, ``b = M_f - d 2 SD_c``,
``c = (SD_c M_f + SD_f M_c) / (SD_c + SD_f)``. (Cutoff b follows domain.md and the
clinicalsignificance R package, which use the clinical SD; Jacobson & Truax's paper
defines b's range with the functional population's SD.) For a computed cutoff, clinical
at pre means ``d x1 < d cutoff`` and functional at post ``d x2 > d cutoff``; a published
cutoff keeps its own clinical side (PHQ-9: ``>= 10`` is clinical, below is functional).

Categories, in this order: recovered (clinical at pre, functional at post, reliably
improved); improved (reliably improved, not recovered); harmed (not clinical at pre,
not functional at post, reliably deteriorated); deteriorated (not harmed); unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Literal

import numpy as np

if TYPE_CHECKING:  # annotations only: `outcome analyse` need not build the instrument model
    from outcome.core.instruments import Cutoff
    from outcome.core.instruments import Direction

Method = Literal["jt", "gln", "hll", "en", "nk"]
CutoffType = Literal["a", "b", "c"]
METHODS: tuple[Method, ...] = ("jt", "gln", "hll", "en", "nk")
CATEGORIES = ("recovered", "improved", "unchanged", "deteriorated", "harmed")
RECOVERED, IMPROVED, UNCHANGED, DETERIORATED, HARMED = range(5)
NO_DATA = -1
DEFAULT_CRITICAL = 1.96


class ChangeError(ValueError):
    """Parameters that cannot give a result (the message says which and why)."""


@dataclass(frozen=True)
class ChangeResult:
    """Individual change for n pairs, with every parameter and where it came from."""

    method: str
    index: np.ndarray
    reliably_improved: np.ndarray
    reliably_deteriorated: np.ndarray
    clinical_pre: np.ndarray | None
    functional_post: np.ndarray | None
    category: np.ndarray
    direction: Direction
    cutoff: float | None
    cutoff_source: str | None
    s_diff: float | None
    sd: float | None
    sd_source: str | None
    reliability: float | None
    reliability_source: str | None
    critical_value: float
    points: float | None

    def counts(self) -> dict[str, int]:
        """How many pairs fall in each category (pairs with a missing score are left out)."""
        return {name: int(np.sum(self.category == code)) for code, name in enumerate(CATEGORIES)}

    def label(self, index: int) -> str | None:
        code = int(self.category[index])
        return None if code == NO_DATA else CATEGORIES[code]


def sample_sd(values: np.ndarray) -> float:
    """Sample standard deviation (n - 1) of the finite values."""
    finite = values[np.isfinite(values)]
    if finite.size < 2:
        raise ChangeError("a sample SD needs at least two scores")
    return float(np.std(finite, ddof=1))


def cronbach_alpha(items: np.ndarray) -> float:
    """Cronbach's alpha of an (n respondents x k items) matrix, complete rows only.

    ``alpha = k / (k - 1) * (1 - sum(item variances) / variance(total))``, variances
    with n - 1 (Cronbach 1951).
    """
    items = np.asarray(items, dtype=float)
    complete = items[np.all(np.isfinite(items), axis=1)]
    n, k = complete.shape
    if n < 2 or k < 2:
        raise ChangeError("Cronbach's alpha needs at least two complete rows and two items")
    total_var = np.var(complete.sum(axis=1), ddof=1)
    if total_var == 0:
        raise ChangeError("Cronbach's alpha is undefined when every total is the same")
    return float(k / (k - 1) * (1 - np.var(complete, axis=0, ddof=1).sum() / total_var))


def compute_cutoff(cutoff_type: CutoffType, d: int, *, clinical_mean: float, clinical_sd: float,
                   functional_mean: float | None = None,
                   functional_sd: float | None = None) -> float:
    """Jacobson & Truax cutoff a, b or c (see the module docstring)."""
    if cutoff_type == "a":
        return clinical_mean + d * 2 * clinical_sd
    if functional_mean is None or (cutoff_type == "c" and functional_sd is None):
        needs = "a functional mean" if cutoff_type == "b" else "a functional mean and SD"
        raise ChangeError(f"cutoff {cutoff_type} needs {needs}")
    if cutoff_type == "b":
        return functional_mean - d * 2 * clinical_sd
    assert functional_sd is not None
    return (clinical_sd * functional_mean + functional_sd * clinical_mean) / (
        clinical_sd + functional_sd)


def individual_change(
    x1: np.ndarray,
    x2: np.ndarray,
    *,
    direction: Direction,
    method: Method = "jt",
    reliability: float | None = None,
    reliability_source: str | None = "given",
    reliability_post: float | None = None,
    sd: float | None = None,
    sd_source: str | None = "given",
    points: float | None = None,
    critical_value: float = DEFAULT_CRITICAL,
    cutoff: Cutoff | None = None,
    cutoff_type: CutoffType | None = None,
    clinical_mean: float | None = None,
    clinical_sd: float | None = None,
    functional_mean: float | None = None,
    functional_sd: float | None = None,
    items_pre: np.ndarray | None = None,
) -> ChangeResult:
    """Classify every pre/post pair (see the module docstring for the formulas).

    ``points`` (a fixed reliable-change threshold) replaces the RCI. Without ``sd`` the
    SD of the pre scores is used (over complete pairs, n - 1). Without ``reliability``
    but with ``items_pre`` (the pre administrations' item matrix), reliability is
    Cronbach's alpha of those items; the result's ``reliability_source`` says which. A
    published ``cutoff`` wins over a computed ``cutoff_type``; with neither, only
    improved, unchanged and deteriorated occur. Pairs with a missing score get category
    -1 (``NO_DATA``).
    """
    x1 = np.asarray(x1, dtype=float)
    x2 = np.asarray(x2, dtype=float)
    if x1.shape != x2.shape:
        raise ChangeError(f"pre and post differ in length ({x1.size} and {x2.size})")
    d = 1 if direction == "higher_is_better" else -1
    complete = np.isfinite(x1) & np.isfinite(x2)
    pre, post = x1[complete], x2[complete]
    n = int(complete.sum())

    sd1: float | None = sd
    if points is None or cutoff_type is not None:
        if sd1 is None:
            sd1, sd_source = sample_sd(pre), f"sample SD of pre scores (n = {n})"
    else:
        sd_source = None if sd is None else sd_source

    index = np.full(x1.shape, np.nan)
    s_diff = None
    if points is not None:
        if points <= 0:
            raise ChangeError("the reliable-change threshold in points must be positive")
        method_name = "points"
        change = d * (x2 - x1)
        index = x2 - x1
        improved = complete & (change >= points)
        deteriorated = complete & (change <= -points)
        reliability_source = None  # not used
    else:
        if reliability is None and items_pre is not None:
            reliability = cronbach_alpha(items_pre)
            complete_rows = int(np.all(np.isfinite(np.asarray(items_pre, dtype=float)),
                                       axis=1).sum())
            reliability_source = (f"Cronbach's alpha of the pre items "
                                  f"(n = {complete_rows} complete administrations)")
        if reliability is None:
            raise ChangeError("the RCI needs a reliability (from the definition, the "
                              "sample's items, or given)")
        if not 0 < reliability < 1:
            raise ChangeError(f"reliability must be between 0 and 1; got {reliability}")
        assert sd1 is not None
        if sd1 <= 0:
            raise ChangeError("the SD of the pre scores is 0; the RCI is undefined")
        r = reliability
        m1 = float(np.mean(pre)) if n else math.nan
        se = sd1 * math.sqrt(1 - r)
        if method == "jt":
            s_diff = math.sqrt(2 * se**2)
            index = (x2 - x1) / s_diff
        elif method == "gln":
            index = (x2 - m1 - r * (x1 - m1)) / (sd1 * math.sqrt(1 - r**2))
        elif method == "hll":
            m2 = float(np.mean(post)) if n else math.nan
            index = ((x2 - m2) - r * (x1 - m1)) / (sd1 * math.sqrt(1 - r**2))
        elif method == "en":
            index = (x2 - (r * (x1 - m1) + m1)) / se
        elif method == "nk":
            if reliability_post is None or not 0 < reliability_post < 1:
                raise ChangeError("the NK method needs the post reliability (0 to 1)")
            index = (x2 - (r * (x1 - m1) + m1)) / math.sqrt(
                r**2 * sd1**2 * (1 - r) + sd1**2 * (1 - reliability_post))
        else:
            raise ChangeError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
        method_name = method
        improved = complete & (d * index > critical_value)
        deteriorated = complete & (d * index < -critical_value)

    clinical_pre = functional_post = None
    cutoff_value = cutoff_source = None
    if cutoff is not None:
        cutoff_value, cutoff_source = cutoff.value, f"published ({cutoff.source or 'definition'})"
        with np.errstate(invalid="ignore"):
            clinical_pre = cutoff.clinical(x1) & np.isfinite(x1)
            functional_post = ~cutoff.clinical(x2) & np.isfinite(x2)
    elif cutoff_type is not None:
        # The clinical population is the sample itself unless given: its own mean and SD
        # (not a norm SD passed for the RCI).
        mc = clinical_mean if clinical_mean is not None else float(np.mean(pre))
        sc = clinical_sd if clinical_sd is not None else sample_sd(pre)
        cutoff_value = compute_cutoff(cutoff_type, d, clinical_mean=mc, clinical_sd=sc,
                                      functional_mean=functional_mean,
                                      functional_sd=functional_sd)
        cutoff_source = f"cutoff {cutoff_type} (Jacobson & Truax)"
        clinical_pre = d * x1 < d * cutoff_value
        functional_post = d * x2 > d * cutoff_value

    category = np.full(x1.shape, UNCHANGED, dtype=np.int8)
    if clinical_pre is not None and functional_post is not None:
        recovered = clinical_pre & functional_post & improved
        harmed = ~clinical_pre & ~functional_post & deteriorated
    else:
        recovered = harmed = np.zeros(x1.shape, dtype=bool)
    category[deteriorated] = DETERIORATED
    category[harmed] = HARMED
    category[improved] = IMPROVED
    category[recovered] = RECOVERED
    category[~complete] = NO_DATA

    return ChangeResult(
        method=method_name, index=index, reliably_improved=improved,
        reliably_deteriorated=deteriorated, clinical_pre=clinical_pre,
        functional_post=functional_post, category=category, direction=direction,
        cutoff=cutoff_value, cutoff_source=cutoff_source, s_diff=s_diff, sd=sd1,
        sd_source=sd_source if sd1 is not None else None,
        reliability=reliability if points is None else None,
        reliability_source=reliability_source if points is None else None,
        critical_value=critical_value, points=points)
