"""A simulated venue written as the awkward set of files a real run meets, shared by the tests that hold
other ways of running detection (partitions, a day at a time, Spark) to one whole local run."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import polars as pl
from conftest import START, burst, market, quiet_trades

from tapewatch.sources.simulator.config import SimulationConfig
from tapewatch.sources.simulator.market import simulate_market

MODEL_FREE_DETECTORS = [
    "pump_onset",
    "kamps_kleinberg",
    "wash_public",
    "wash_accounts",
    "spoofing_l3",
    "amplitude_anomaly",
    "volume_anomaly",
    "price_anomaly",
]
"""Every detector that runs without a trained model file."""


def write_venue_files(folder: Path) -> Path:
    """Trades split by symbol into two files that overlap (a re-read page), order events (some read
    twice), one file with a bad row, a pump on another venue, and a README a directory read must skip."""
    venue = simulate_market(SimulationConfig(symbols=6, seed=13))
    symbols = venue.trades["symbol"].unique().sort().to_list()
    first = venue.trades.filter(pl.col("symbol").is_in(symbols[:4]))
    second = venue.trades.filter(pl.col("symbol").is_in(symbols[3:]))
    first.write_parquet(folder / "trades-a.parquet")
    second.write_parquet(folder / "trades-b.parquet")
    venue.orders.write_parquet(folder / "orders.parquet")
    # a re-read of 50 order events, one of them twice: its second copy is another event, not a re-read
    pl.concat([venue.orders.head(50), venue.orders.head(1)]).write_parquet(folder / "orders-again.parquet")
    bad = second.head(3).with_columns(pl.col("price").cast(pl.Float64))
    bad = bad.with_columns(
        pl.when(pl.int_range(pl.len()) == 1).then(-1.0).otherwise(pl.col("price")).alias("price")
    )
    bad.write_parquet(folder / "trades-c.parquet")
    market(quiet_trades(), burst(START + timedelta(hours=4))).write_parquet(folder / "pumped.parquet")
    (folder / "README.csv").write_text("this,is\nnot,data\n")
    return folder


def alert_lines(run) -> list[dict]:
    """A run's alerts as the JSON lines `detect` writes."""
    return [alert.model_dump(mode="json") for alert in run.alerts]
