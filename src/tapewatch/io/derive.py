"""Candles from trades, for the bar detectors when the input is trades."""

from __future__ import annotations

import polars as pl

from tapewatch.detect.scoring import stable
from tapewatch.durations import parse_duration, polars_interval
from tapewatch.records import BAR_SCHEMA, conform


def ohlcv_aggregations() -> list[pl.Expr]:
    """Open, high, low, close and volume of the trades in a bucket (trades sorted by ts; ties in
    time taken in `sweep_order`)."""
    in_order = pl.col("price").sort_by(pl.col("ts"), sweep_order())
    return [
        in_order.first().alias("open"),
        pl.col("price").max().alias("high"),
        pl.col("price").min().alias("low"),
        in_order.last().alias("close"),
        pl.col("amount").sum().alias("volume"),
    ]


def sweep_order() -> pl.Expr:
    """Trades of one timestamp in the order a taker sweeps the book: up for buys, down for sells.

    Prints sharing a timestamp are mostly one order's fills, and a feed may list them in any
    order; the open and close must not depend on which (the same trades in another row order
    give the same candles).
    """
    return pl.when(pl.col("side") == "sell").then(-pl.col("price")).otherwise(pl.col("price"))


def trades_to_bars(trades: pl.DataFrame, interval: str) -> pl.DataFrame:
    """Bucket trades into BAR_SCHEMA candles plus `last_trade_ts` (when each candle's data ended).

    Only buckets that saw a trade appear: an empty hour has no price, and inventing one
    would feed detectors data that never happened.
    """
    every = polars_interval(parse_duration(interval, what="interval"))
    if trades.is_empty():
        return conform(pl.DataFrame(), BAR_SCHEMA).with_columns(last_trade_ts=pl.col("ts"))
    bars = (
        trades.lazy()
        .with_columns(bucket=pl.col("ts").dt.truncate(every))
        .group_by("venue", "symbol", "bucket", maintain_order=True)
        .agg(
            *ohlcv_aggregations(),
            quote_volume=(pl.col("price") * pl.col("amount")).sum(),
            trades=pl.len(),
            last_trade_ts=pl.col("ts").last(),
        )
        .rename({"bucket": "ts"})
        .with_columns(
            stable(pl.col("volume", "quote_volume")),  # sums whose last digit no row order can change
            interval=pl.lit(interval),
        )
        .collect()
    )
    return conform(bars, BAR_SCHEMA).with_columns(bars["last_trade_ts"])
