"""Causality: an alert decided at `detected_at` must not change when later data is removed or altered."""

from datetime import timedelta

import polars as pl
from conftest import START, burst, market, quiet_trades

from tapewatch.config import Settings
from tapewatch.detect.registry import build_detectors
from tapewatch.engine.batch import run_batch
from tapewatch.records import BAR_SCHEMA, empty_frame


def decided(alerts):
    """An alert without its follow-up: everything that was decided at detected_at."""
    return [alert.model_dump(exclude={"followup"}) for alert in alerts]


def multi_symbol_market():
    at = START + timedelta(hours=3)
    return market(
        quiet_trades("AAA/BTC", hours=8),
        quiet_trades("BBB/BTC", hours=8, seed=2),
        burst(at, symbol="AAA/BTC"),
        burst(at + timedelta(hours=2), symbol="BBB/BTC", seed=7),
        burst(at + timedelta(hours=3, minutes=40), symbol="AAA/BTC", seed=8),
    )


def test_truncating_at_detected_at_gives_the_same_alert():
    trades = multi_symbol_market()
    detectors = build_detectors(Settings())
    alerts = run_batch(detectors, trades, empty_frame(BAR_SCHEMA))
    onsets = [alert for alert in alerts if alert.detector == "pump_onset"]
    assert len(onsets) == 3
    for alert in onsets:
        truncated = trades.filter(pl.col("ts") <= alert.detected_at)
        again = [a for a in run_batch(detectors, truncated, empty_frame(BAR_SCHEMA)) if a.id == alert.id]
        assert decided(again) == decided([alert])


def test_changing_the_future_changes_nothing_decided():
    trades = multi_symbol_market()
    detectors = build_detectors(Settings(), ["pump_onset"])
    alerts = run_batch(detectors, trades, empty_frame(BAR_SCHEMA))
    cut = alerts[0].detected_at
    future_crash = trades.with_columns(
        pl.when(pl.col("ts") > cut).then(pl.col("price") * 0.2).otherwise(pl.col("price")).alias("price")
    )
    changed = run_batch(detectors, future_crash, empty_frame(BAR_SCHEMA))
    assert decided(changed[:1]) == decided(alerts[:1])
    assert changed[0].followup != alerts[0].followup  # the follow-up is the only forward-looking part


def test_wash_and_spoofing_alerts_depend_only_on_data_up_to_detected_at():
    from tapewatch.io.derive import book_events, l2_from_l3
    from tapewatch.sources.simulator.market import SimulationConfig, simulate_market

    busy = SimulationConfig(
        seed=3,
        symbols=2,
        hours=5.0,
        spoofs_per_symbol_day=48.0,
        layering_share=1.0,
        wash_groups_per_symbol_day=24.0,
    )
    market = simulate_market(busy)
    detectors = build_detectors(Settings(), ["wash_accounts", "spoofing_l3", "spoofing_l2"])

    def run(until=None):
        trades, orders = market.trades, market.orders
        if until is not None:
            trades, orders = trades.filter(pl.col("ts") <= until), orders.filter(pl.col("ts") <= until)
        book = book_events(l2_from_l3(orders), trades)
        return run_batch(detectors, trades, empty_frame(BAR_SCHEMA), orders=orders, book=book)

    alerts = run()
    by_detector = {d.name: [a for a in alerts if a.detector == d.name][:3] for d in detectors}
    assert all(by_detector.values()), {name: len(found) for name, found in by_detector.items()}
    for alert in (a for found in by_detector.values() for a in found):
        again = [a for a in run(alert.detected_at) if a.id == alert.id]
        assert decided(again) == decided([alert])
