"""Streaming throughput and arrival → alert latency across 1,000+ symbols.

    python benchmarks/stream_latency.py [--symbols 1000] [--window 60]

A synthetic market (benchmarks/_market.py) of N symbols is fed to the streaming
engine in two parts:
- the history (the detectors' 3-hour baseline) as fast as possible, then
- a `--window`-second stretch with pumps injected on 40 symbols, replayed at real
  speed (1×) and at 10×, each trade stamped with the moment it would have
  arrived live; latency = alert emitted − last trade used arrived.
Throughput is measured separately on the whole market replayed at max speed.
Targets (issue 3): p99 < 250 ms at real speed with 1,000 symbols; ≥ 200,000 trades/s at max.
"""

from __future__ import annotations

import argparse
import time
from datetime import timedelta

import polars as pl
from _market import START, pump_bursts, quiet_market

from tapewatch.config import Settings
from tapewatch.detect.registry import build_detectors
from tapewatch.engine.stream import StreamEngine
from tapewatch.pipeline.stream import run_stream
from tapewatch.sources.replay import replay

HISTORY_HOURS = 3.5
PUMPS = 40


def market(symbols: int, window_s: float, speed: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    """History plus a live stretch of `window_s` wall seconds at `speed` (so window_s × speed of data)."""
    span_h = HISTORY_HOURS + window_s * speed / 3600
    trades = quiet_market(symbols, span_h, per_minute=6)
    live_from = START + timedelta(hours=HISTORY_HOURS)
    step = window_s * speed / (PUMPS + 1)
    pumps = pump_bursts(trades, [live_from + timedelta(seconds=step * (i + 0.5)) for i in range(PUMPS)])
    everything = pl.concat([trades, pumps]).sort("venue", "symbol", "ts")
    return everything.filter(pl.col("ts") < live_from), everything.filter(pl.col("ts") >= live_from)


def latency_run(symbols: int, window_s: float, speed: float) -> None:
    history, live = market(symbols, window_s, speed)
    engine = StreamEngine(build_detectors(Settings(), ["pump_onset"]), Settings().stream)
    engine.warm_up(history)  # baseline windows filled, as `stream --exchange` does at start
    started = time.perf_counter()
    report = run_stream(replay(live, speed=speed, batch_trades=10**6), engine, [])
    wall = time.perf_counter() - started
    alerts = len(report.latencies_ms)
    print(
        f"{speed:>4g}x  {symbols} symbols, {live.height:,} live trades in {wall:.1f}s, "
        f"{alerts}/{PUMPS} pumps alerted; latency p50 {report.latency(0.5):.1f} ms, "
        f"p99 {report.latency(0.99):.1f} ms, max {max(report.latencies_ms):.1f} ms"
        + ("  (target p99 < 250 ms)" if speed == 1 else "")
    )


def throughput_run(symbols: int) -> None:
    trades = quiet_market(symbols, 6.0, per_minute=6)
    engine = StreamEngine(build_detectors(Settings()), Settings().stream)
    started = time.perf_counter()
    run_stream(replay(trades, speed=None, batch_trades=250_000), engine, [])
    seconds = time.perf_counter() - started
    rate = trades.height / seconds
    print(
        f" max  {symbols} symbols, {trades.height:,} trades in {seconds:.1f}s: {rate:,.0f} trades/s "
        f"(target ≥ 200,000) {'OK' if rate >= 200_000 else 'UNDER TARGET'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=1000)
    parser.add_argument("--window", type=float, default=60.0, help="wall seconds replayed at 1× and 10×")
    args = parser.parse_args()
    throughput_run(args.symbols)
    for speed in (1.0, 10.0):
        latency_run(args.symbols, args.window, speed)


if __name__ == "__main__":
    main()
