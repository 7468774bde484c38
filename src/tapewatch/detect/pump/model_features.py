"""La Morgia et al. (2020/2023) pump features: per symbol and fixed chunk of seconds, against the hours before.

A Telegram pump is a crowd of market buys in a coin that normally trades a few
times a minute, so every feature compares one chunk (5, 15 or 25 s in the paper)
with the same symbol's recent past. Per chunk [start, start + chunk_s):

    trades, orders (distinct taker orders), rush_orders (buy orders of ≥ 2 fills:
    a market buy large enough to sweep several levels, La Morgia's signature),
    volume_base, volume_quote, buy_share (buy orders / orders), and the chunk's
    max, min and last price relative to the last price of the previous chunk
    (price_max_delta, price_min_delta, price_last_delta)

and for each rolling window W (`windows_h`, 1 h and 6 h by default) the mean and
std of that feature over the chunks that *end before* the chunk starts — causal:
a chunk's features read nothing at or after its own start except its own trades.
Additive features (counts, volumes) average over every chunk slot of the window,
empty slots counting as zero; the ratio-like ones (buy share, price deltas) over
the chunks that have a value. The model sees scale-free numbers, so one model
serves coins whose volumes differ by orders of magnitude: z-scores
(value − mean) / std per window, value / mean for additive features, and the raw
value where it is comparable across coins.

Only chunks with at least one trade exist (a pump cannot be an empty chunk). A
chunk is *complete* once its symbol has a later trade: `closed_at` is that
trade's timestamp, the first moment the data shows the chunk is over.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from tapewatch.detect.pump.settings import PumpFeatureSettings
from tapewatch.io.derive import KEY, order_starts, stable, sweep_order

_US = 1_000_000


@dataclass(frozen=True)
class _Base:
    """One per-chunk feature: how it aggregates the window and whether its raw value is comparable."""

    name: str
    additive: bool  # counts and volumes: empty chunk slots count as zero
    raw: bool  # the raw value means the same on every coin


BASE_FEATURES = (
    _Base("trades", additive=True, raw=True),
    _Base("orders", additive=True, raw=True),
    _Base("rush_orders", additive=True, raw=True),
    _Base("volume_base", additive=True, raw=False),
    _Base("volume_quote", additive=True, raw=True),
    _Base("buy_share", additive=False, raw=True),
    _Base("price_max_delta", additive=False, raw=True),
    _Base("price_min_delta", additive=False, raw=True),
    _Base("price_last_delta", additive=False, raw=True),
)


def window_label(hours: float) -> str:
    """`1h`, `6h`, `0.5h`: a window's suffix in column names."""
    return f"{hours:g}h"


def model_feature_names(settings: PumpFeatureSettings) -> list[str]:
    """The columns the classifier reads, in a fixed order (the model card lists them)."""
    names = []
    for base in BASE_FEATURES:
        if base.raw:
            names.append(base.name)
        for hours in settings.windows_h:
            names.append(f"{base.name}_z_{window_label(hours)}")
            if base.additive:
                names.append(f"{base.name}_ratio_{window_label(hours)}")
    return names


def feature_lookback_us(settings: PumpFeatureSettings) -> int:
    """How far before a chunk's start its features read (the longest window), in µs."""
    return int(max(settings.windows_h) * 3600 * _US)


def chunk_features(trades: pl.DataFrame, settings: PumpFeatureSettings) -> pl.DataFrame:
    """One row per non-empty chunk of each symbol: KEY, `start`, `end`, `closed_at`, the base features,
    their rolling means/stds and the model's features (see the module docstring).

    `trades` is sorted by venue, symbol, ts (as readers and engines hand them over).
    """
    chunks = _chunk_values(trades, settings)
    chunks = _with_rolling_stats(chunks, settings)
    return chunks.with_columns(_model_columns(settings)).collect()


def feature_matrix(chunks: pl.DataFrame, names: list[str]) -> np.ndarray:
    """The model's columns as a float matrix, nulls as NaN (LightGBM's missing value)."""
    return chunks.select(pl.col(names).cast(pl.Float64).fill_null(float("nan"))).to_numpy()


def _chunk_values(trades: pl.DataFrame, settings: PumpFeatureSettings) -> pl.LazyFrame:
    """Per chunk: counts, volumes, buy share, prices, and the price before it (the previous chunk's last,
    when that chunk began within the shortest window — older is not "the previous chunk" any more)."""
    chunk_us = int(settings.chunk_s * _US)
    buy = pl.col("side") == "buy"
    per_trade = trades.lazy().with_columns(
        chunk_us=pl.col("ts").dt.epoch("us") // chunk_us * chunk_us,
        first=order_starts(),
        fills=pl.len().over(*KEY, "ts", "side"),  # one taker order's fills, in whatever row order
    )
    chunks = (
        per_trade.group_by(*KEY, "chunk_us", maintain_order=True)
        .agg(
            first_ts=pl.col("ts").first(),
            trades=pl.len().cast(pl.Float64),
            orders=pl.col("first").sum().cast(pl.Float64),
            buy_orders=(pl.col("first") & buy).sum().cast(pl.Float64),
            rush_orders=(pl.col("first") & buy & (pl.col("fills") >= 2)).sum().cast(pl.Float64),
            volume_base=pl.col("amount").sum(),
            volume_quote=(pl.col("price") * pl.col("amount")).sum(),
            price_max=pl.col("price").max(),
            price_min=pl.col("price").min(),
            price_last=pl.col("price").sort_by("ts", sweep_order()).last(),
        )
        .sort(*KEY, "chunk_us")
    )
    shortest_us = int(settings.windows_h[0] * 3600 * _US)
    previous = pl.col("price_last").shift(1).over(KEY)
    recent = (pl.col("chunk_us") - pl.col("chunk_us").shift(1).over(KEY)) <= shortest_us
    before = pl.when(recent).then(previous)
    return chunks.with_columns(
        start=pl.from_epoch("chunk_us", time_unit="us").dt.replace_time_zone("UTC"),
        end=pl.from_epoch(pl.col("chunk_us") + chunk_us, time_unit="us").dt.replace_time_zone("UTC"),
        closed_at=pl.col("first_ts").shift(-1).over(KEY),
        buy_share=pl.col("buy_orders") / pl.col("orders"),
        price_max_delta=pl.col("price_max") / before - 1,
        price_min_delta=pl.col("price_min") / before - 1,
        price_last_delta=pl.col("price_last") / before - 1,
    )


def _with_rolling_stats(chunks: pl.LazyFrame, settings: PumpFeatureSettings) -> pl.LazyFrame:
    """`<feature>_mean_<W>` and `<feature>_std_<W>` over the chunks that started in [start − W, start).

    Sums are rounded (`stable`) because a rolling sum carries rounding from wherever the
    frame begins: the batch starts at the file, the stream at its tail.
    """
    columns = []
    for hours in settings.windows_h:
        size = f"{int(hours * 3600 * _US)}i"
        slots = hours * 3600 / settings.chunk_s
        suffix = window_label(hours)

        def rolling(expr: pl.Expr, size: str = size) -> pl.Expr:
            return expr.rolling_sum_by("chunk_us", window_size=size, closed="left").over(KEY)

        for base in BASE_FEATURES:
            value = pl.col(base.name)
            total = stable(rolling(value.fill_null(0.0)))
            squares = stable(rolling(value.fill_null(0.0) ** 2))
            count = pl.lit(slots) if base.additive else rolling(value.is_not_null().cast(pl.Float64))
            mean = pl.when(count > 0).then(total / count)
            variance = (squares / count - mean**2).clip(lower_bound=0.0)
            columns += [
                mean.alias(f"{base.name}_mean_{suffix}"),
                variance.sqrt().alias(f"{base.name}_std_{suffix}"),
            ]
    return chunks.with_columns(columns)


def _model_columns(settings: PumpFeatureSettings) -> list[pl.Expr]:
    """z-scores and ratios against each window; null where the window gives nothing to compare with."""
    columns = []
    for base in BASE_FEATURES:
        value = pl.col(base.name)
        for hours in settings.windows_h:
            suffix = window_label(hours)
            mean, std = pl.col(f"{base.name}_mean_{suffix}"), pl.col(f"{base.name}_std_{suffix}")
            columns.append(
                stable(pl.when(std > 0).then((value - mean) / std)).alias(f"{base.name}_z_{suffix}")
            )
            if base.additive:
                columns.append(
                    stable(pl.when(mean > 0).then(value / mean)).alias(f"{base.name}_ratio_{suffix}")
                )
    return columns
