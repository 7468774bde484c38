"""The streaming engine decides exactly as the batch engine, whatever the micro-batch boundaries."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest
from conftest import START, burst, market, quiet_trades

from tapewatch.config import Settings, StreamSettings
from tapewatch.detect.registry import build_detectors
from tapewatch.engine import stream
from tapewatch.engine.batch import run_batch
from tapewatch.engine.stream import StreamEngine
from tapewatch.pipeline.stream import run_stream
from tapewatch.records import BAR_SCHEMA, empty_frame
from tapewatch.sources.replay import replay

DETECTORS = ["pump_onset", "kamps_kleinberg", "wash_public", "wash_accounts"]
"""The trade detectors and a candle one: the stream builds candles from trades as the batch does."""


def busy_market() -> pl.DataFrame:
    """Three symbols over 16 h: pumps (one dumped, one chained within the cooldown), a bar-level spike."""
    at = START + timedelta(hours=3)
    dump = burst(
        at + timedelta(minutes=3), orders=60, seconds=120, price=1.4e-5, rise=0.35, side="sell", seed=3
    )
    return market(
        quiet_trades("AAA/BTC", hours=16, per_minute=1),
        quiet_trades("BBB/BTC", hours=16, per_minute=3, seed=2),
        quiet_trades("CCC/BTC", hours=16, per_minute=0.5, seed=5),
        burst(at, symbol="AAA/BTC"),
        dump,
        burst(at + timedelta(minutes=20), symbol="AAA/BTC", seed=9),  # inside the cooldown: no second alert
        burst(at + timedelta(hours=2), symbol="BBB/BTC", seed=7),
        burst(at + timedelta(hours=10), symbol="CCC/BTC", orders=400, seconds=60, rise=0.5, seed=8),
        burst(
            at + timedelta(hours=12, minutes=50), symbol="AAA/BTC", seed=11
        ),  # follow-up pending at the end
    )


def streamed(trades: pl.DataFrame, batch_trades: int) -> tuple[dict, StreamEngine]:
    engine = StreamEngine(
        build_detectors(Settings(), DETECTORS), StreamSettings(max_batch_trades=1, hold_ms=10**9)
    )
    final: dict = {}
    run_stream(
        replay(trades, speed=None, batch_trades=batch_trades),
        engine,
        [lambda items: final.update({item.alert.id: item.alert for item in items})],
    )
    return final, engine


def comparable(alert):
    return alert.model_dump(exclude={"timing"})


@pytest.mark.parametrize("batch_trades", [13, 97, 5000, 10**6])
def test_replay_through_the_stream_gives_the_batch_alerts(batch_trades):
    trades = busy_market()
    batch = run_batch(build_detectors(Settings(), DETECTORS), trades, empty_frame(BAR_SCHEMA))
    assert {a.detector for a in batch} == {"pump_onset", "kamps_kleinberg"} and len(batch) >= 5
    final, engine = streamed(trades, batch_trades)
    assert sorted(final) == sorted(a.id for a in batch)
    for alert in batch:
        assert comparable(final[alert.id]) == comparable(alert), alert.id
    assert engine.stats.trades_processed == trades.height
    assert not engine.stats.set_aside


def test_alerts_carry_arrival_and_emission_times():
    trades = busy_market()
    engine = StreamEngine(build_detectors(Settings(), ["pump_onset"]), StreamSettings(hold_ms=0))
    emitted = []
    report = run_stream(replay(trades, speed=None, batch_trades=500), engine, [emitted.extend])
    first = [item.alert for item in emitted if not item.update]
    assert first and all(a.timing["latency_ms"] >= 0 for a in first)
    assert report.latency(0.99) is not None and len(report.latencies_ms) == len(first)
    updates = [item.alert for item in emitted if item.update]
    assert {a.id for a in updates} == {a.id for a in first}  # every follow-up completed once


def test_late_duplicate_malformed_and_unknown_trades_are_set_aside():
    trades = quiet_trades("AAA/BTC", hours=2).with_columns(trade_id=pl.int_range(pl.len()).cast(pl.String))
    engine = StreamEngine(build_detectors(Settings(), ["pump_onset"]), symbols=["AAA/BTC"])
    first, second = trades.head(100), trades.slice(100)
    engine.push(first)
    engine.step(flush=True)
    late = first.slice(10, 1).with_columns(price=pl.col("price") * 2)  # a different trade, back in time
    duplicate = first.slice(20, 1)
    broken = second.head(1).with_columns(price=pl.lit(-1.0))
    stranger = second.head(1).with_columns(symbol=pl.lit("ZZZ/BTC"))
    engine.push(pl.concat([second, late, duplicate, broken, stranger, second.head(1)]))
    engine.step(flush=True)
    reasons = engine.stats.set_aside
    assert reasons["duplicate of a trade already processed"] == 1
    assert reasons["out of order: at or before trades already decided"] == 1
    assert reasons["price is not a positive number"] == 1  # the reason files give (tapewatch.validity)
    assert reasons["unknown symbol"] == 1
    assert reasons["duplicate within the batch"] == 1
    assert engine.stats.trades_processed == trades.height
    assert {entry["reason"] for entry in engine.set_aside} == set(reasons)


def test_future_trades_are_set_aside_when_the_clock_is_checked():
    trades = quiet_trades("AAA/BTC", hours=1)
    engine = StreamEngine(build_detectors(Settings(), ["pump_onset"]), check_clock=True)
    engine.push(trades)
    engine.step(now=(START + timedelta(minutes=30)).timestamp(), flush=True)
    assert engine.stats.set_aside["clock skew: timestamp in the future"] > 0
    assert engine.stats.trades_processed + engine.stats.set_aside.total() == trades.height


def test_real_speed_replay_paces_by_timestamps():
    trades = quiet_trades(hours=0.05, per_minute=120)  # three minutes of data
    now = [1000.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    batches = list(replay(trades, speed=60.0, clock=lambda: now[0], sleep=sleep))
    assert sum(b.height for b, _ in batches) == trades.height
    assert 2.5 <= sum(slept) <= 3.5  # three minutes at 60× is three seconds
    arrivals = pl.concat([a for _, a in batches])
    assert arrivals.is_sorted() and arrivals[-1] - arrivals[0] == pytest.approx(
        (trades["ts"].max() - trades["ts"].min()).total_seconds() / 60
    )


def test_a_tail_trimmed_to_the_raw_lookback_still_gives_the_batch_alerts(monkeypatch):
    """Once `pump_onset` keeps its minutes in its state, the stream keeps about a minute of raw rows
    (and those of open follow-ups); trimming often must not change an alert."""
    monkeypatch.setattr(stream, "TRIM_MIN_ROWS", 100)
    names = ["pump_onset", "wash_accounts", "kamps_kleinberg"]
    trades = busy_market()
    batch = run_batch(build_detectors(Settings(), names), trades, empty_frame(BAR_SCHEMA))
    engine = StreamEngine(
        build_detectors(Settings(), names), StreamSettings(max_batch_trades=1, hold_ms=10**9)
    )
    final: dict = {}
    run_stream(
        replay(trades, speed=None, batch_trades=31),  # many steps: the state's minutes are trimmed too
        engine,
        [lambda items: final.update({item.alert.id: item.alert for item in items})],
    )
    assert sorted(final) == sorted(a.id for a in batch) and len(batch) >= 5
    for alert in batch:
        assert comparable(final[alert.id]) == comparable(alert), alert.id
    assert engine._tail.height < trades.height / 10  # the tail was trimmed: not hours of every symbol


@pytest.mark.xfail(
    strict=True,
    reason="known limitation: on a tape that names no accounts at first, wash_accounts' stream state keeps "
    "no raw rows (raw_lookback 0), so when accounts are named later its symbol_volume misses the public "
    "trades of the window before; keeping them raw costs every step (checkpoint 7 → 134 MiB, step CPU "
    "24 → 186 ms on benchmarks/stream_latency.py), a running per-symbol volume is the fix",
)
def test_accounts_named_only_after_a_public_start_give_the_batch_alerts(monkeypatch):
    from tapewatch.sources.simulator.config import SimulationConfig
    from tapewatch.sources.simulator.market import simulate_market

    monkeypatch.setattr(stream, "TRIM_MIN_ROWS", 100)
    trades = simulate_market(SimulationConfig(symbols=4, seed=21)).trades
    named_from = START.replace(year=2024, month=1, day=1, hour=9, minute=17)  # 20 min before a wash alert
    trades = trades.with_columns(
        pl.when(pl.col("ts") < named_from).then(None).otherwise(pl.col(side)).alias(side)
        for side in ("buyer", "seller")
    )
    names = ["wash_accounts", "pump_onset"]
    batch = run_batch(build_detectors(Settings(), names), trades, empty_frame(BAR_SCHEMA))
    engine = StreamEngine(
        build_detectors(Settings(), names), StreamSettings(max_batch_trades=1, hold_ms=10**9)
    )
    final: dict = {}
    run_stream(
        replay(trades, speed=None, batch_trades=50),
        engine,
        [lambda items: final.update({item.alert.id: item.alert for item in items})],
    )
    assert "wash_accounts" in {alert.detector for alert in batch}
    assert [comparable(final.get(alert.id, alert)) for alert in batch] == [comparable(a) for a in batch]
    assert sorted(final) == sorted(alert.id for alert in batch)
