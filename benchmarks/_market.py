"""A fast synthetic market for the speed benchmarks: many quiet symbols and injected pump bursts.

The full simulator models accounts and order books; the speed benchmarks need only
volume, so this generator is vectorised end to end and makes millions of trades
in a second.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from tapewatch.records import TRADE_SCHEMA, conform

START = datetime(2024, 6, 1, tzinfo=UTC)


def quiet_market(symbols: int, hours: float, per_minute: float, seed: int = 1) -> pl.DataFrame:
    """`symbols` coins trading `per_minute` times a minute on average for `hours`, sorted by symbol, ts."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(per_minute * hours * 60, symbols)
    total = int(counts.sum())
    symbol_index = np.repeat(np.arange(symbols), counts)
    offsets_us = (rng.uniform(0, hours * 3600, total) * 1e6).astype(np.int64)
    order = np.lexsort((offsets_us, symbol_index))
    symbol_index, offsets_us = symbol_index[order], offsets_us[order]
    steps = rng.normal(0, 0.002, total)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    walk = np.cumsum(steps)
    walk -= np.repeat(walk[starts] - steps[starts], counts)  # each symbol's walk starts at zero
    base = rng.uniform(1e-6, 1e-4, symbols)
    frame = pl.DataFrame(
        {
            "ts": pl.Series(offsets_us + int(START.timestamp() * 1e6)).cast(pl.Datetime("us", "UTC")),
            "venue": "bench",
            "symbol": pl.Series([f"C{i:04d}/BTC" for i in range(symbols)]).gather(symbol_index),
            "price": base[symbol_index] * np.exp(walk),
            "amount": rng.lognormal(5, 1, total),
            "side": np.where(rng.random(total) < 0.5, "buy", "sell"),
        }
    )
    return conform(frame, TRADE_SCHEMA)


def pump_bursts(market: pl.DataFrame, at: list[datetime], seed: int = 2) -> pl.DataFrame:
    """One pump per moment in `at`, each on a different symbol: 120 buy orders in 10 s, price up 40 %."""
    rng = np.random.default_rng(seed)
    last = market.group_by("symbol").agg(pl.col("price").last()).sort("symbol")
    chosen = rng.choice(last.height, len(at), replace=False)
    frames = []
    for moment, index in zip(at, chosen, strict=True):
        symbol, price = last.row(int(index))
        offsets = np.sort(rng.uniform(0, 10, 120))
        frames.append(
            pl.DataFrame(
                {
                    "ts": [moment + timedelta(seconds=float(s)) for s in offsets],
                    "venue": "bench",
                    "symbol": symbol,
                    "price": price * (1 + 0.4 * np.minimum(1, np.arange(1, 121) / 60)),
                    "amount": rng.lognormal(6, 1, 120),
                    "side": "buy",
                }
            )
        )
    return conform(pl.concat(frames), TRADE_SCHEMA)
