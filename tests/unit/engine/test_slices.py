"""The streaming engine fed slices of history gives the batch engine's alerts: the out-of-core path for a
symbol whose history does not fit in memory."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest
from conftest import START, burst, market, quiet_trades

from tapewatch.config import Settings
from tapewatch.detect.registry import build_detectors
from tapewatch.engine.batch import run_batch
from tapewatch.engine.slices import run_in_slices
from tapewatch.io.derive import order_events
from tapewatch.records import BAR_SCHEMA, ORDER_SCHEMA, empty_frame
from tapewatch.sources.simulator.config import SimulationConfig
from tapewatch.sources.simulator.market import simulate_market
from unit.pipeline.venue_files import MODEL_FREE_DETECTORS


def sliced(trades: pl.DataFrame, orders: pl.DataFrame, span: timedelta) -> list[dict[str, pl.DataFrame]]:
    """Consecutive slices of `span`, each sorted by venue, symbol, ts, as the spill reads them back."""
    every = span // timedelta(microseconds=1)

    def number(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(_slice=pl.col("ts").dt.epoch("us") // every)

    numbers = sorted(set(number(trades)["_slice"]) | set(number(orders)["_slice"]))
    return [
        {
            kind: number(frame).filter(pl.col("_slice") == n).drop("_slice")
            for kind, frame in (("trades", trades), ("orders", orders))
        }
        for n in numbers
    ]


@pytest.mark.parametrize("span_minutes", [17, 240])
def test_slices_of_a_venue_give_the_whole_runs_alerts(span_minutes):
    venue = simulate_market(SimulationConfig(symbols=4, seed=21))
    pump = market(quiet_trades(), burst(START + timedelta(hours=4)))
    trades = market(venue.trades, pump)
    detectors = build_detectors(Settings(), MODEL_FREE_DETECTORS)
    whole = run_batch(detectors, trades, empty_frame(BAR_SCHEMA), orders=venue.orders)
    assert {"pump_onset", "wash_accounts", "spoofing_l3"} <= {alert.detector for alert in whole}
    symbols = venue.orders.select("venue", "symbol").unique()
    parts = run_in_slices(detectors, sliced(trades, venue.orders, timedelta(minutes=span_minutes)), symbols)
    assert [a.model_dump() for a in parts] == [a.model_dump() for a in whole]


def test_a_symbols_executions_count_in_slices_where_it_has_no_order_events():
    venue = simulate_market(SimulationConfig(symbols=2, seed=4))
    first_hour = venue.orders.filter(pl.col("ts") < venue.orders["ts"].min() + timedelta(hours=1))
    symbols = first_hour.select("venue", "symbol").unique()
    later = venue.trades.filter(pl.col("ts") >= first_hour["ts"].max() + timedelta(hours=1))
    assert later.filter(pl.col("buyer").is_not_null()).height > 0
    assert order_events(empty_frame(ORDER_SCHEMA), later).is_empty()  # alone, the slice knows no stream
    assert order_events(empty_frame(ORDER_SCHEMA), later, symbols).height > 0
