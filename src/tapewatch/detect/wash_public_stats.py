"""The four public-tape statistics of Cong et al. (2023), "Crypto Wash Trading", as pure numpy functions.

Each test returns a `TestResult`: the test statistic, a one-sided p-value and an
effect size. Verdicts are left to the detector, which requires both a small
p-value and a material effect, because with tens of thousands of trades any
tiny deviation is "significant". p-values come from scipy.stats: chi-square
for the digits, the normal tail for the binomial and Hill statistics, and the
Mann-Whitney U test (tie-corrected) for price impact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

BENFORD = np.log10(1 + 1 / np.arange(1, 10))
"""P(first significant digit = d), d = 1…9."""
_MANTISSA_SLACK = 1e-9
"""Relative nudge so 0.3 / 0.1 = 2.9999999999999996 reads as digit 3, not 2."""


@dataclass(frozen=True)
class TestResult:
    """One test on one sample: statistic, p-value (small = evidence of wash trading) and effect size."""

    statistic: float
    p_value: float
    effect: float
    n: int
    standard_error: float | None = None

    __test__ = False  # not a pytest class


def mantissas(values: np.ndarray) -> np.ndarray:
    """Each positive value scaled into [1, 10): the size "in its own scale"."""
    values = values[values > 0]
    scaled = values / 10.0 ** np.floor(np.log10(values)) * (1 + _MANTISSA_SLACK)
    return np.where(scaled >= 10, scaled / 10, scaled)


def benford_test(sizes: np.ndarray) -> TestResult:
    """First-digit counts against Benford's law: chi-square (8 df) and Nigrini's MAD as the effect.

    MAD (mean absolute deviation of the nine digit shares) does not grow with n, so
    a huge clean sample with a trivial deviation keeps a small effect; Nigrini's
    bands for first digits are 0.006 / 0.012 / 0.015 (close / acceptable /
    marginal), above 0.015 is nonconformity.
    """
    digits = np.floor(mantissas(sizes)).astype(int)
    n = digits.size
    if n == 0:
        return TestResult(0.0, 1.0, 0.0, 0)
    observed = np.bincount(digits, minlength=10)[1:10]
    expected = n * BENFORD
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    mad = float(np.abs(observed / n - BENFORD).mean())
    return TestResult(chi2, float(stats.chi2.sf(chi2, df=8)), mad, n)


def round_size_counts(sizes: np.ndarray, step: int, width: int) -> tuple[int, int]:
    """Trades at round sizes and at their unrounded neighbours, in each size's own scale.

    A size's three significant digits give an integer 100…999; it is round when that
    is a multiple of `step` (10: 120, 250, 3000 …) and a neighbour when it lies within
    `width` of one (e.g. 117…119, 121…123). Unrounded sizes spread smoothly over
    these bins, so without clustering a round bin holds about 1/(2·width) of what
    its neighbours hold together.
    """
    grid = np.floor(mantissas(sizes) * 100 + 0.5).astype(int)
    offset = (grid + width) % step - width  # signed distance to the nearest multiple of step
    round_count = int((offset == 0).sum())
    neighbours = int(((offset != 0) & (np.abs(offset) <= width)).sum())
    return round_count, neighbours


def clustering_test(sizes: np.ndarray, step: int, width: int, low: float, high: float) -> TestResult:
    """Round-size clustering outside the plausible range [low, high] of the clustering ratio.

    The ratio (effect) is round count / (neighbour count / 2·width): 1 means no
    clustering, 3 means round sizes are three times as common as sizes beside
    them. Genuine traders type round sizes (Cong et al.: the clustering is
    significant on regulated venues), so a ratio near 1 suggests bot-generated
    sizes; a ratio far above the range suggests one size repeated by a bot. The
    statistic is the binomial z of the round count against the nearer bound, the
    p-value one-sided away from the range.
    """
    round_count, neighbours = round_size_counts(sizes, step, width)
    n = round_count + neighbours
    if n == 0:
        return TestResult(0.0, 1.0, 1.0, 0)
    ratio = round_count * 2 * width / neighbours if neighbours else math.inf
    bound = low if ratio < low else high
    share = bound / (bound + 2 * width)
    z = (round_count - n * share) / math.sqrt(n * share * (1 - share))
    return TestResult(z, _outside_p(z, ratio, low, high), ratio, n)


def _outside_p(z: float, estimate: float, low: float, high: float) -> float:
    """One-sided p-value for "the estimate lies beyond the bound it is nearer to"; 1 inside the range."""
    if estimate < low:
        return float(stats.norm.sf(-z))
    if estimate > high:
        return float(stats.norm.sf(z))
    return 1.0


def hill_exponent(sizes: np.ndarray, tail_share: float, min_tail: int) -> tuple[float, float, int]:
    """Hill estimate of the power-law tail exponent α over the top `tail_share` of sizes, its standard
    error α/√k, and k. NaNs when fewer than `min_tail` sizes are in the tail; α = ∞ (standard error 0)
    when the tail is one repeated size, as far from a power law as a tail gets."""
    ordered = np.sort(sizes[sizes > 0])[::-1]
    k = int(ordered.size * tail_share)
    if k < min_tail or k >= ordered.size:
        return math.nan, math.nan, k
    logs = np.log(ordered[:k] / ordered[k])
    mean = float(logs.mean())
    if mean <= 0:
        return math.inf, 0.0, k
    alpha = 1 / mean
    return alpha, alpha / math.sqrt(k), k


def tail_test(sizes: np.ndarray, low: float, high: float, tail_share: float, min_tail: int) -> TestResult:
    """Is the Hill tail exponent (the effect) outside the plausible range [low, high]?

    The statistic is the distance to the nearer bound in standard errors, so a
    large sample with an exponent just past the edge is significant, and the
    range itself is the materiality threshold.
    """
    alpha, se, k = hill_exponent(sizes, tail_share, min_tail)
    if math.isnan(alpha):
        return TestResult(0.0, 1.0, alpha, k)
    if se == 0:
        return TestResult(math.inf, 0.0, alpha, k, standard_error=se)
    bound = low if alpha < low else high
    z = (alpha - bound) / se
    return TestResult(z, _outside_p(z, alpha, low, high), alpha, k, standard_error=se)


def mann_whitney_auc(first: np.ndarray, second: np.ndarray) -> tuple[float, float]:
    """P(a value of `first` exceeds one of `second`) (ties count half) and the one-sided p-value
    of "first tends to be larger" (Mann-Whitney U, tie-corrected normal approximation)."""
    if first.size == 0 or second.size == 0:
        return 0.5, 1.0
    result = stats.mannwhitneyu(first, second, alternative="greater", method="asymptotic")
    return float(result.statistic) / (first.size * second.size), float(result.pvalue)


def impact_test(volumes: np.ndarray, moved: np.ndarray) -> TestResult:
    """Volume that moves no price: do buckets whose price did not change carry as much volume as
    buckets whose price did?

    In a genuine market volume and price change go together (trades consume
    liquidity), so flat buckets are the quiet ones: P(flat bucket's volume > moving
    bucket's volume) is well below ½. Wash prints add volume and leave the price
    where it was, pushing that probability (the effect, a common-language effect
    size) towards and past ½. The statistic is the Mann-Whitney z.
    """
    auc, p_value = mann_whitney_auc(volumes[~moved], volumes[moved])
    n1, n2 = int((~moved).sum()), int(moved.sum())
    z = (auc - 0.5) / math.sqrt((n1 + n2 + 1) / (12 * n1 * n2)) if n1 and n2 else 0.0
    return TestResult(z, p_value, auc, n1 + n2)
