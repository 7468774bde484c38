"""The four public-tape statistics of Cong et al. (2023), "Crypto Wash Trading", on many windows at once.

Each test takes the values of all windows together with, per value, the index of
its window, and returns `TestResults`: per window the test statistic, a one-sided
p-value and an effect size. A few array operations over every window cost far
less than a Python call (and a scipy call) per window. Verdicts are
left to the detector, which requires both a small p-value and a material effect,
because with tens of thousands of trades any tiny deviation is "significant".
p-values come from the distribution tails scipy.stats itself uses (scipy.special's
`chdtrc` and `ndtr`, without the second it takes to import scipy.stats): chi-square
for the digits, the normal tail for the binomial and Hill statistics, and the Mann-Whitney U test (tie-corrected
normal approximation with continuity correction, as `scipy.stats.mannwhitneyu`
computes it with method="asymptotic") for price impact. SciPy loads inside the tests that use it,
not with the module, so that a run without `wash_public` never pays for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

BENFORD = np.log10(1 + 1 / np.arange(1, 10))
"""P(first significant digit = d), d = 1…9."""
_MANTISSA_SLACK = 1e-9
"""Relative nudge so 0.3 / 0.1 = 2.9999999999999996 reads as digit 3, not 2."""
_LOWEST_EXPONENT = -324
_POWERS_OF_TEN = 10.0 ** np.arange(_LOWEST_EXPONENT, 309.0)
"""10^e for every decimal exponent of a float64, the very values `10.0 ** e` gives: looking a size's
scale up is several times faster than raising 10 to a power per trade."""


@dataclass(frozen=True)
class TestResult:
    """One test on one window: statistic, p-value (small = evidence of wash trading) and effect size."""

    statistic: float
    p_value: float
    effect: float
    n: int
    standard_error: float | None = None

    __test__ = False  # not a pytest class


@dataclass(frozen=True)
class TestResults:
    """One test on many windows: arrays indexed by window. A NaN standard error means "none"."""

    statistic: np.ndarray
    p_value: np.ndarray
    effect: np.ndarray
    n: np.ndarray
    standard_error: np.ndarray | None = None

    __test__ = False  # not a pytest class

    def at(self, window: int) -> TestResult:
        """The result of one window, as plain floats for the evidence."""
        se = None if self.standard_error is None else float(self.standard_error[window])
        return TestResult(
            float(self.statistic[window]),
            float(self.p_value[window]),
            float(self.effect[window]),
            int(self.n[window]),
            None if se is None or math.isnan(se) else se,
        )


def mantissas(values: np.ndarray) -> np.ndarray:
    """Each positive value scaled into [1, 10): the size "in its own scale"."""
    values = values[values > 0]
    exponent = np.floor(np.log10(values)).astype(np.int64) - _LOWEST_EXPONENT
    scaled = values / _POWERS_OF_TEN[exponent] * (1 + _MANTISSA_SLACK)
    return np.where(scaled >= 10, scaled / 10, scaled)


@dataclass(frozen=True)
class Mantissas:
    """The positive sizes of many windows scaled into [1, 10), each with its window index.

    Both size tests read them: scaling once is cheaper than once per test.
    """

    values: np.ndarray
    ids: np.ndarray
    windows: int

    @classmethod
    def of(cls, sizes: np.ndarray, ids: np.ndarray, windows: int) -> Mantissas:
        """From sizes and their window indices (non-positive sizes have no mantissa and are left out)."""
        return cls(mantissas(sizes), ids[sizes > 0], windows)


def _counts(ids: np.ndarray, windows: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Per-window count (or sum of weights) of the values whose window ids are given."""
    return np.bincount(ids, weights=weights, minlength=windows)


def split_counts(flag: np.ndarray, ids: np.ndarray, windows: int) -> tuple[np.ndarray, np.ndarray]:
    """Per window, how many values have the flag and how many do not."""
    return _counts(ids[flag], windows), _counts(ids[~flag], windows)


def benford_test(sizes: Mantissas) -> TestResults:
    """First-digit counts against Benford's law: chi-square (8 df) and Nigrini's MAD as the effect.

    MAD (mean absolute deviation of the nine digit shares) does not grow with n, so
    a huge clean sample with a trivial deviation keeps a small effect; Nigrini's
    bands for first digits are 0.006 / 0.012 / 0.015 (close / acceptable /
    marginal), above 0.015 is nonconformity.
    """
    from scipy import special

    digits = np.floor(sizes.values).astype(np.int64)
    counts = _counts(sizes.ids * 10 + digits, sizes.windows * 10).reshape(sizes.windows, 10)
    n = counts.sum(axis=1)
    empty = n == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        observed = counts[:, 1:10]
        expected = n[:, None] * BENFORD
        chi2 = ((observed - expected) ** 2 / expected).sum(axis=1)
        mad = np.abs(observed / n[:, None] - BENFORD).mean(axis=1)
    return TestResults(
        statistic=np.where(empty, 0.0, chi2),
        p_value=np.where(empty, 1.0, special.chdtrc(8, chi2)),
        effect=np.where(empty, 0.0, mad),
        n=n,
    )


def round_size_counts(sizes: Mantissas, step: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Per window, trades at round sizes and at their unrounded neighbours, in each size's own scale.

    A size's three significant digits give an integer 100…999; it is round when that
    is a multiple of `step` (10: 120, 250, 3000 …) and a neighbour when it lies within
    `width` of one (e.g. 117…119, 121…123). Unrounded sizes spread smoothly over
    these bins, so without clustering a round bin holds about 1/(2·width) of what
    its neighbours hold together.
    """
    grid = np.floor(sizes.values * 100 + 0.5).astype(np.int64)
    distance = np.abs((grid + width) % step - width)  # to the nearest multiple of step
    bins = width + 2  # distance 0 (round), 1 … width (neighbour), farther
    counts = _counts(sizes.ids * bins + np.minimum(distance, width + 1), sizes.windows * bins)
    counts = counts.reshape(sizes.windows, bins)
    return counts[:, 0], counts[:, 1 : width + 1].sum(axis=1)


def clustering_test(sizes: Mantissas, step: int, width: int, low: float, high: float) -> TestResults:
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
    empty = n == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(neighbours > 0, round_count * 2 * width / neighbours, math.inf)
        bound = np.where(ratio < low, low, high)
        share = bound / (bound + 2 * width)
        z = (round_count - n * share) / np.sqrt(n * share * (1 - share))
    return TestResults(
        statistic=np.where(empty, 0.0, z),
        p_value=np.where(empty, 1.0, _outside_p(z, ratio, low, high)),
        effect=np.where(empty, 1.0, ratio),
        n=n,
    )


def _outside_p(z: np.ndarray, estimate: np.ndarray, low: float, high: float) -> np.ndarray:
    """One-sided p-value for "the estimate lies beyond the bound it is nearer to"; 1 inside the range."""
    from scipy import special

    return np.where(estimate < low, special.ndtr(z), np.where(estimate > high, special.ndtr(-z), 1.0))


def hill_exponent(
    sizes: np.ndarray, ids: np.ndarray, windows: int, tail_share: float, min_tail: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per window, the Hill estimate of the power-law tail exponent α over the top `tail_share` of
    sizes, its standard error α/√k, and k. NaNs when fewer than `min_tail` sizes are in the tail;
    α = ∞ (standard error 0) when the tail is one repeated size, as far from a power law as a tail gets.

    The sizes above the (k+1)-th largest are exactly the tail's sizes that are not tied with it,
    and the tied ones add log 1 = 0, so only that threshold per window needs an order statistic.
    """
    positive = sizes > 0
    sizes, ids = sizes[positive], ids[positive]
    tail_k = (pl.len() * tail_share).cast(pl.Int64)
    tails = (
        pl.DataFrame({"id": ids, "size": sizes})
        .group_by("id")
        .agg(m=pl.len(), k=tail_k, threshold=pl.col("size").top_k(tail_k + 1).min())
    )
    at = tails["id"].to_numpy()
    m, k, threshold = np.zeros(windows, np.int64), np.zeros(windows, np.int64), np.full(windows, math.nan)
    m[at], k[at], threshold[at] = tails["m"].to_numpy(), tails["k"].to_numpy(), tails["threshold"].to_numpy()
    valid = (k >= min_tail) & (k < m)
    above = sizes > np.where(valid, threshold, math.inf)[ids]
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = _counts(ids[above], windows, np.log(sizes[above] / threshold[ids[above]])) / k
        alpha = np.where(mean > 0, 1 / mean, math.inf)
        se = np.where(mean > 0, alpha / np.sqrt(k), 0.0)
    return np.where(valid, alpha, math.nan), np.where(valid, se, math.nan), k


def tail_test(
    sizes: np.ndarray,
    ids: np.ndarray,
    windows: int,
    low: float,
    high: float,
    tail_share: float,
    min_tail: int,
) -> TestResults:
    """Is the Hill tail exponent (the effect) outside the plausible range [low, high]?

    The statistic is the distance to the nearer bound in standard errors, so a
    large sample with an exponent just past the edge is significant, and the
    range itself is the materiality threshold.
    """
    alpha, se, k = hill_exponent(sizes, ids, windows, tail_share, min_tail)
    missing, repeated = np.isnan(alpha), se == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (alpha - np.where(alpha < low, low, high)) / se
    return TestResults(
        statistic=np.select([missing, repeated], [0.0, math.inf], z),
        p_value=np.select([missing, repeated], [1.0, 0.0], _outside_p(z, alpha, low, high)),
        effect=alpha,
        n=k,
        standard_error=se,
    )


def mann_whitney_auc(
    values: np.ndarray, first: np.ndarray, ids: np.ndarray, windows: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per window, P(a value of the `first` group exceeds one of the rest) (ties count half) and the
    one-sided p-value of "the first group tends to be larger": (0.5, 1) when a group is empty.

    Mann-Whitney U from ranks averaged over ties within each window, and the tie-corrected
    normal approximation with continuity correction, computed as `scipy.stats.mannwhitneyu`
    (method="asymptotic") does, so the results match it.
    """
    from scipy import special

    ranked = pl.DataFrame({"id": ids, "value": values}).with_columns(
        rank=pl.col("value").rank("average").over("id")
    )
    ties = ranked.group_by("id", "value").len()
    n1, n2 = split_counts(first, ids, windows)
    r1 = _counts(ids[first], windows, ranked["rank"].to_numpy()[first])
    t = ties["len"].to_numpy().astype(np.float64)
    tie_term = _counts(ties["id"].to_numpy(), windows, t**3 - t)
    u1 = r1 - n1 * (n1 + 1) / 2
    n = n1 + n2
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.sqrt(n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1))))
        z = (u1 - n1 * n2 / 2 - 0.5) / s
        auc = u1 / (n1 * n2)
    both = (n1 > 0) & (n2 > 0)
    return np.where(both, auc, 0.5), np.where(both, np.clip(special.ndtr(-z), 0.0, 1.0), 1.0)


def impact_test(volumes: np.ndarray, moved: np.ndarray, ids: np.ndarray, windows: int) -> TestResults:
    """Volume that moves no price: do buckets whose price did not change carry as much volume as
    buckets whose price did?

    In a genuine market volume and price change go together (trades consume
    liquidity), so flat buckets are the quiet ones: P(flat bucket's volume > moving
    bucket's volume) is well below ½. Wash prints add volume and leave the price
    where it was, pushing that probability (the effect, a common-language effect
    size) towards and past ½. The statistic is the Mann-Whitney z (without tie correction).
    """
    auc, p_value = mann_whitney_auc(volumes, ~moved, ids, windows)
    n1, n2 = split_counts(~moved, ids, windows)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (auc - 0.5) / np.sqrt((n1 + n2 + 1) / (12 * n1 * n2))
    return TestResults(np.where((n1 > 0) & (n2 > 0), z, 0.0), p_value, auc, n1 + n2)
