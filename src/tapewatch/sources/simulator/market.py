"""A synthetic crypto market with labelled manipulation, for developing and scoring detectors.

`simulate_market` builds, per symbol, a small-cap BTC pair (sub-satoshi-scale prices on a
tick grid, a few trades a minute in bursty clusters, market makers who cancel most of what
they quote), adds organic news moves and volume bursts (not manipulation: the false-alarm
opportunities), and injects pump-and-dumps, wash trading, spoofing and layering whose ground
truth lands in `labels`. Trades and L3 order events agree with each other: every print has a
maker and a taker fill, every resting order is placed and pulled without the market ever
trading through it.

The modules beside it: `config` (knobs), `core` (shared types), `flow`
(background arrivals, organic events), `book` (touch path, fills, resting orders),
`pump` / `wash` / `spoof` (scenarios), `symbol` (one symbol end to end),
`labels` (ground truth from what was generated).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tapewatch.errors import InputError
from tapewatch.records import ORDER_SCHEMA, TIME, TRADE_SCHEMA, conform, empty_frame
from tapewatch.sources.simulator.book import ACTIONS
from tapewatch.sources.simulator.config import SimulationConfig
from tapewatch.sources.simulator.core import build_accounts
from tapewatch.sources.simulator.labels import LABEL_SCHEMA, ORGANIC_SCHEMA, label_rows, organic_rows
from tapewatch.sources.simulator.symbol import SymbolResult, simulate_symbol

__all__ = [
    "LABEL_SCHEMA",
    "ORGANIC_SCHEMA",
    "SimulatedMarket",
    "SimulationConfig",
    "simulate_market",
    "write_market",
]

WRITE_FORMATS = ("parquet", "csv")


@dataclass
class SimulatedMarket:
    """The generated tape, order stream and ground truth of one simulation."""

    trades: pl.DataFrame
    """TRADE_SCHEMA; trade_id, buyer and seller filled; sorted by symbol, ts (sweeps share a ts)."""
    orders: pl.DataFrame
    """ORDER_SCHEMA L3 events (new/cancel/fill/modify), sorted by symbol, ts in feed order."""
    labels: pl.DataFrame
    """LABEL_SCHEMA: one row per injected manipulation (pump_and_dump, wash_trading, spoofing, layering)."""
    organic: pl.DataFrame = field(default_factory=lambda: empty_frame(ORGANIC_SCHEMA))
    """ORGANIC_SCHEMA: news moves and volume bursts that are not manipulation (false-alarm bait)."""


def simulate_market(
    config: SimulationConfig, on_progress: Callable[[int, int], None] | None = None
) -> SimulatedMarket:
    """Generate the market described by `config`; the same config always yields identical frames.

    Each symbol draws from its own seeded stream (spawned from `config.seed`), so symbol k
    looks the same whatever the number of symbols. `on_progress(done, total)` is called after
    each symbol, for progress bars on long runs.
    """
    seeds = np.random.SeedSequence(config.seed).spawn(config.symbols + 1)
    accounts = build_accounts(config, np.random.default_rng(seeds[0]))
    names = pl.Series("name", accounts.names.tolist(), dtype=pl.String)
    name_list = names.to_list()
    trades, orders, labels, organic = [], [], [], []
    for index in range(config.symbols):
        result = simulate_symbol(index, config, accounts, np.random.default_rng(seeds[index + 1]))
        sym_trades, sym_orders = _frames(result, config, names)
        origin = config.start
        labels += label_rows(
            result.episodes, sym_trades, sym_orders, name_list, config.venue, result.spec.name, origin
        )
        organic += organic_rows(result.organic, config.venue, result.spec.name, origin, result.spec.duration)
        trades.append(conform(sym_trades, TRADE_SCHEMA))
        orders.append(conform(sym_orders, ORDER_SCHEMA))
        if on_progress is not None:
            on_progress(index + 1, config.symbols)
    return SimulatedMarket(
        trades=pl.concat(trades),
        orders=pl.concat(orders),
        labels=_row_frame(labels, LABEL_SCHEMA).sort("symbol", "start"),
        organic=_row_frame(organic, ORGANIC_SCHEMA).sort("symbol", "start"),
    )


def _row_frame(rows: list[dict[str, Any]], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Row dicts as a frame in `schema`; a run without episodes still yields the columns."""
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else empty_frame(schema)


def _frames(
    result: SymbolResult, config: SimulationConfig, names: pl.Series
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Numeric per-symbol tables → frames in the record schemas (plus `_`-prefixed helper columns)."""
    spec = result.spec
    origin_us = int(config.start.timestamp() * 1_000_000)
    t, o = result.trades, result.orders
    sides = np.array(["buy", "sell"])
    trades = pl.DataFrame(
        {
            "ts": pl.Series(origin_us + t["ts"], dtype=pl.Int64).cast(TIME),
            "venue": pl.repeat(config.venue, t["ts"].size, eager=True, dtype=pl.String),
            "symbol": pl.repeat(spec.name, t["ts"].size, eager=True, dtype=pl.String),
            "price": np.round(t["price"] * spec.tick, 10),
            "amount": np.round(t["lots"] * spec.lot, 8),
            "side": sides[(t["side"] < 0).astype(np.int64)],
            "trade_id": pl.Series(t["trade_id"]).cast(pl.String),
            "buyer": names.gather(t["buyer"]),
            "seller": names.gather(t["seller"]),
            "_episode": t["episode"],
            "_kind": t["kind"],
            "_maker_order": pl.Series(t["maker_order"]).cast(pl.String),
            "_taker_order": pl.Series(t["taker_order"]).cast(pl.String),
        }
    )
    orders = pl.DataFrame(
        {
            "ts": pl.Series(origin_us + o["ts"], dtype=pl.Int64).cast(TIME),
            "venue": pl.repeat(config.venue, o["ts"].size, eager=True, dtype=pl.String),
            "symbol": pl.repeat(spec.name, o["ts"].size, eager=True, dtype=pl.String),
            "order_id": pl.Series(o["order_id"]).cast(pl.String),
            "account": names.gather(o["account"]),
            "side": sides[(o["side"] < 0).astype(np.int64)],
            "price": np.round(o["price"] * spec.tick, 10),
            "amount": np.round(o["lots"] * spec.lot, 8),
            "action": np.array(ACTIONS)[o["action"]],
            "_episode": o["episode"],
        }
    )
    return trades, orders


def write_market(market: SimulatedMarket, outdir: Path, fmt: str = "parquet") -> dict[str, Path]:
    """Write trades, orders (Parquet or CSV), labels.csv and organic_events.csv; return their paths.

    With fmt="csv" the trades use the ccxt trade CSV layout that `tapewatch detect` reads
    (symbol,timestamp,datetime,side,price,amount,cost) plus buyer,seller.
    """
    if fmt not in WRITE_FORMATS:
        raise InputError(
            f"output format {fmt!r} is not supported; expected one of {', '.join(WRITE_FORMATS)}"
        )
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    paths = {
        "trades": outdir / f"trades.{fmt}",
        "orders": outdir / f"orders.{fmt}",
        "labels": outdir / "labels.csv",
        "organic": outdir / "organic_events.csv",
    }
    if fmt == "parquet":
        market.trades.write_parquet(paths["trades"])
        market.orders.write_parquet(paths["orders"])
    else:
        ccxt_trade_rows(market.trades).write_csv(paths["trades"])
        market.orders.with_columns(_iso("ts", micro=True)).write_csv(paths["orders"])
    market.labels.with_columns(_iso("start"), _iso("end"), _iso("event_time")).write_csv(paths["labels"])
    market.organic.with_columns(_iso("start"), _iso("end")).write_csv(paths["organic"])
    return paths


def _iso(column: str, micro: bool = False) -> pl.Expr:
    """ISO-8601 UTC with a Z (ms, or µs for the order stream where µs carry ordering)."""
    fraction = "%.6f" if micro else "%.3f"
    return pl.col(column).dt.strftime(f"%Y-%m-%dT%H:%M:%S{fraction}Z")


def ccxt_trade_rows(trades: pl.DataFrame) -> pl.DataFrame:
    """Trades in the ccxt `fetch_trades` CSV layout (the layout of the real dev files), with the
    buyer/seller columns when some trade names an account: what `tapewatch detect` reads back."""
    accounts = [
        name
        for name in ("buyer", "seller")
        if name in trades.columns and trades[name].null_count() < trades.height
    ]
    return trades.select(
        "symbol",
        pl.col("ts").dt.epoch("ms").alias("timestamp"),
        _iso("ts").alias("datetime"),
        "side",
        "price",
        "amount",
        (pl.col("price") * pl.col("amount")).round(12).alias("cost"),
        *accounts,
    )
