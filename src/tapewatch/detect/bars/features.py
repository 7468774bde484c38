"""Candle features judged against a robust baseline of the same series' own recent candles.

Every bar anomaly detector asks one question of a feature (the candle's body, its
range, its volume, its return, its gap): how far is this candle from what this
venue/symbol/interval usually does? The answer is a robust z-score
`(value − centre) / scale` over the trailing `window` candles, the current candle
excluded, so a candle is judged only by what came before it (causal, and the
stream, which sees the same trailing candles, decides alike).

The baseline is the interquartile range: the centre is the midhinge (Q1 + Q3) / 2
and the scale is (Q3 − Q1) / 1.349, which is σ for a normal series. Both ignore the
outer quarter of the window on each side, so one crash inside the window does not
blind the detector to the next, as a mean ± σ baseline would. Quartiles are exact
rolling kernels (a rolling MAD is not: it needs each window's own median first), two
per feature, which keeps each detector above a million candles a second.

Features are on relative or log scales (returns, log volume), so the z-scores of a
1-minute crypto series and of a daily index are comparable and one threshold serves
every interval; `scale` has a floor so a series that never moved (a stale quote, a
synthetic flat line) does not turn a tick into an infinite z.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import polars as pl

KEY = ["venue", "symbol", "interval"]
IQR_PER_SIGMA = 1.349
"""(Q3 − Q1) of a normal distribution in units of σ: turns an IQR into a σ-like scale."""

QUARTILES = (0.25, 0.75)
Side = Literal["both", "up"]


@dataclass(frozen=True)
class Feature:
    """One candle feature and how a detector judges it.

    `side` "up" counts only values above the baseline (a volume spike, a wide range:
    a quiet candle is no anomaly); "both" counts either direction (a crash or a spike).
    `floor` is the least scale, an expression that may read any feature's raw IQR
    scale (`<name>_spread`), e.g. a gap's floor from the scale of returns.
    """

    name: str
    value: pl.Expr
    side: Side
    floor: pl.Expr
    threshold: float


def body() -> pl.Expr:
    """The candle's body relative to its open, (close − open) / open: what an amplitude alert watches."""
    return (pl.col("close") - pl.col("open")) / pl.col("open")


def log_range() -> pl.Expr:
    """log((high − low) / open): the width of the candle, on a log scale because ranges are skewed.

    A candle without a range (one trade, or a flat quote) has nothing to judge and is
    left out of the baselines (null) rather than counted as log 0 = −∞.
    """
    spread = (pl.col("high") - pl.col("low")) / pl.col("open")
    return pl.when(spread > 0).then(spread.log())


def log_volume() -> pl.Expr:
    """log(volume): volumes multiply, so a spike is a distance on the log scale; empty candles are null."""
    return pl.when(pl.col("volume") > 0).then(pl.col("volume").log())


def previous_close() -> pl.Expr:
    """The close of the series' previous candle; for its first, which has none, its own open.

    The stand-in makes the first return the candle's body and its gap zero instead of
    null: a column without nulls takes Polars' fast rolling kernels (3–4× faster), and
    that first candle never has a baseline of its own to be judged against.
    """
    return pl.col("close").shift(1).over(KEY).fill_null(pl.col("open"))


def log_return() -> pl.Expr:
    """log(close / previous close): the candle's move including any gap before it."""
    return (pl.col("close") / previous_close()).log()


def gap() -> pl.Expr:
    """open / previous close − 1: how far the candle opened from where the last one closed."""
    return pl.col("open") / previous_close() - 1


def with_robust_z(
    frame: pl.LazyFrame,
    features: Sequence[Feature],
    window: int,
    min_history: int,
    into: str = "excess",
) -> pl.LazyFrame:
    """Add, per feature, `<name>` (its value), `<name>_centre`, `_spread` (raw IQR scale), `_scale`
    (floored), `_z` (signed) and `_excess` (z / threshold in the directions its side watches: ≥ 1 is
    anomalous); and `into`, the largest excess over the features.

    The frame must be sorted by ts within each venue/symbol/interval. Rows with fewer
    than `min_history` earlier valid values get null z: no decision without history.
    """
    names = [feature.name for feature in features]
    return (
        frame.with_columns(feature.value.alias(feature.name) for feature in features)
        .with_columns(_trailing_quartile(name, q, window, min_history) for name in names for q in QUARTILES)
        .with_columns(expr for name in names for expr in _baseline(name))
        .with_columns(pl.max_horizontal(spread(f.name), f.floor).alias(f"{f.name}_scale") for f in features)
        .with_columns(
            ((pl.col(f.name) - pl.col(f"{f.name}_centre")) / pl.col(f"{f.name}_scale"))
            .fill_nan(None)  # NaN would compare above any threshold
            .alias(f"{f.name}_z")
            for f in features
        )
        .with_columns(_oriented(f).alias(f"{f.name}_excess") for f in features)
        .with_columns(pl.max_horizontal(f"{name}_excess" for name in names).alias(into))
        .drop(_quartile_name(name, q) for name in names for q in QUARTILES)
    )


def spread(name: str) -> pl.Expr:
    """A feature's raw IQR scale (before its floor), for another feature's floor to read."""
    return pl.col(f"{name}_spread")


def _trailing_quartile(name: str, q: float, window: int, min_history: int) -> pl.Expr:
    """The quartile of the window that ends at the previous candle.

    Rolling and then shifting gives the same numbers as shifting and then rolling, but
    the rolled column has no nulls, which keeps Polars on its fast kernels (3–4×).
    """
    rolled = pl.col(name).rolling_quantile(q, window_size=window, min_samples=min_history)
    return rolled.shift(1).over(KEY).alias(_quartile_name(name, q))


def _baseline(name: str) -> tuple[pl.Expr, pl.Expr]:
    """Centre (the midhinge) and raw scale (IQR / 1.349) from a feature's trailing quartiles."""
    q1, q3 = (pl.col(_quartile_name(name, q)) for q in QUARTILES)
    return ((q1 + q3) / 2).alias(f"{name}_centre"), ((q3 - q1) / IQR_PER_SIGMA).alias(f"{name}_spread")


def _quartile_name(name: str, q: float) -> str:
    return f"_{name}_q{q}"


def _oriented(feature: Feature) -> pl.Expr:
    """The feature's z as a multiple of its threshold, counting only the directions its side watches."""
    z = pl.col(f"{feature.name}_z")
    return (z.abs() if feature.side == "both" else z) / feature.threshold
