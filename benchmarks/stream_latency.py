"""Streaming latency, throughput, CPU and memory on a realistic market: 2,500 symbols, every default detector.

    python benchmarks/stream_latency.py [--symbols 2500] [--window 60] [--speeds 1,10,30k,max]
                                        [--history-h H] [--max-data-s 1800]

The market (`Market` below) is heavy-tailed like a crypto exchange's spot pairs: symbol k trades
200 · (k+1)^-1.3 times a second (three above 30/s, the median one about once a minute; ≈720
trades/s in all), taker orders of 1–3 fills, and pumps on quiet coins during the live stretch (a
crowd of 300 buy orders in 20 s lifting the price 50 %, then the dump). The engine runs every
default trade detector (`pump_onset`, `wash_accounts`; `spoofing_l3` reads L3 orders, which a
public tape has not).

1. Warm-up: `--history-h` hours of history (default: the engine's longest lookback, so every
   detector's window is full) are decided in 5-minute chunks, as `stream --exchange` does at start;
   the engine is then checkpointed (`StreamEngine.snapshot`).
2. Each speed runs in a fresh process that restores the checkpoint and replays the live stretch
   (`--window` wall seconds; `max`: `--max-data-s` of data as fast as possible; `30k`: the speed
   at which 30,000 trades/s arrive), stepping every `batch_ms` as `run_stream` does, with Polars
   on one thread (POLARS_MAX_THREADS=1 unless set).

Per speed it prints: decision latency (arrival of a step's oldest row → the step done) p50/p99
over steps, step time p50/p99 (wall and CPU: CPU is what a loaded machine distorts least), alert latency (arrival of the last trade used → emitted) p50/p99,
trades/s, CPU share of one core and peak RSS. Targets (issue 13, one core): p99 ≤ 150 ms at 1×;
≥ 30,000 trades/s sustained with p99 ≤ 250 ms; memory ≤ 2 GiB at default lookbacks. Timings are
noisy on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from tapewatch.config import Settings
from tapewatch.detect.registry import build_detectors
from tapewatch.engine.stream import NOT_LIVE, StreamEngine
from tapewatch.records import TRADE_SCHEMA, conform
from tapewatch.sources.replay import replay

START = datetime(2024, 6, 1, tzinfo=UTC)
CHUNK_S = 300
TARGET_P99_1X_MS = 150.0
TARGET_RATE = 30_000
TARGET_P99_RATE_MS = 250.0
TARGET_RSS_GIB = 2.0


class Market:
    """A deterministic heavy-tailed market: any stretch can be regenerated alone (seeded by its start)."""

    def __init__(self, symbols: int, seed: int = 7) -> None:
        rng = np.random.default_rng(seed)
        self.rates = 200.0 * (np.arange(symbols) + 1.0) ** -1.3  # trades per second
        self.names = pl.Series([f"C{i:04d}/USDT" for i in range(symbols)])
        self.base = rng.uniform(1e-3, 50.0, symbols)
        self.seed = seed

    @property
    def rate(self) -> float:
        return float(self.rates.sum())

    def trades(self, start_s: float, seconds: float) -> pl.DataFrame:
        """Every symbol's trades in [start_s, start_s + seconds) past START (orders of 1–3 fills)."""
        rng = np.random.default_rng([self.seed, int(start_s * 1000)])
        orders = rng.poisson(self.rates / 1.4 * seconds)
        symbol = np.repeat(np.arange(self.rates.size), orders)
        at = rng.uniform(start_s, start_s + seconds, symbol.size)
        fills = rng.choice([1, 2, 3], size=symbol.size, p=[0.75, 0.15, 0.10])
        symbol, at = np.repeat(symbol, fills), np.repeat(at, fills)
        side = np.repeat(np.where(rng.random(fills.size) < 0.5, "buy", "sell"), fills)
        price = self.base[symbol] * np.exp(rng.normal(0, 0.004, symbol.size))
        return self._frame(at, symbol, price, rng.lognormal(3, 1.2, symbol.size), side)

    def pump(self, index: int, at_s: float) -> pl.DataFrame:
        """A Telegram-style pump on a quiet coin: 300 buy orders in 20 s up 50 %, then 200 sells over 2 min."""
        rng = np.random.default_rng([self.seed, 99, index])
        symbol = (
            300 + 37 * index
        ) % self.rates.size  # quiet coins (one trade every few minutes to a few a minute)
        rise = np.concatenate([np.sort(rng.uniform(0, 20, 300)), np.sort(rng.uniform(20, 140, 200))])
        lift = np.concatenate([0.5 * np.minimum(1, np.arange(1, 301) / 60), np.linspace(0.5, 0.0, 200)])
        side = np.array(["buy"] * 300 + ["sell"] * 200)
        price = self.base[symbol] * (1 + lift) * np.exp(rng.normal(0, 0.002, rise.size))
        return self._frame(
            at_s + rise, np.full(rise.size, symbol), price, rng.lognormal(5, 1, rise.size), side
        )

    def live(self, start_s: float, seconds: float, pumps: int) -> pl.DataFrame:
        """The live stretch: the market plus `pumps` pumps spread over it, in time order."""
        parts = [self.trades(start_s + s, min(CHUNK_S, seconds - s)) for s in np.arange(0, seconds, CHUNK_S)]
        spacing = seconds / (pumps + 1)
        parts += [self.pump(i, start_s + spacing * (i + 0.5)) for i in range(pumps)]
        return pl.concat(parts).filter(pl.col("ts") < _at(start_s + seconds)).sort("ts", maintain_order=True)

    def _frame(self, at: np.ndarray, symbol: np.ndarray, price, amount, side) -> pl.DataFrame:
        micros = (at * 1e6).astype(np.int64) + int(START.timestamp() * 1e6)
        frame = pl.DataFrame(
            {
                "ts": pl.Series(micros).cast(pl.Datetime("us", "UTC")),
                "venue": "bench",
                "symbol": self.names.gather(symbol),
                "price": price,
                "amount": amount,
                "side": side,
            }
        )
        return conform(frame, TRADE_SCHEMA).sort("ts", maintain_order=True)


def _at(seconds: float) -> datetime:
    return START + timedelta(seconds=float(seconds))


def _engine() -> StreamEngine:
    settings = Settings()
    return StreamEngine(build_detectors(settings), settings.stream)


def _rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def warm_up(market: Market, hours: float, path: Path | None) -> StreamEngine:
    """Decide `hours` of history in 5-minute chunks; write the checkpoint to `path` (when given)."""
    engine = _engine()
    started, cpu = time.perf_counter(), time.process_time()
    end = hours * 3600
    for start in np.arange(0, end, CHUNK_S):
        engine.push(market.trades(float(start), min(CHUNK_S, end - start)), arrived_at=NOT_LIVE)
        engine.step(now=NOT_LIVE)
    engine.step(now=time.time())  # the held-back last milliseconds: long past, decided now
    wall = time.perf_counter() - started
    blob = engine.snapshot() if path is not None and hasattr(engine, "snapshot") else b""
    if path is not None:
        path.write_bytes(blob)
    print(
        f"warm-up  {market.rates.size} symbols, {hours:.2f} h of history (engine lookback "
        f"{engine.lookback}), {engine.stats.trades_processed:,} trades in {wall:.0f} s "
        f"({engine.stats.trades_processed / wall:,.0f}/s, CPU {time.process_time() - cpu:.0f} s); "
        f"checkpoint {len(blob) / 2**20:.0f} MiB; peak RSS {_rss_gib():.2f} GiB",
        flush=True,
    )
    return engine


def live_run(
    market: Market, history_h: float, checkpoint: Path, speed_text: str, window: float, max_data_s: float
) -> None:
    """Restore the warmed-up engine and replay the live stretch at one speed; print one line."""
    settings = Settings().stream
    blob = checkpoint.read_bytes()
    # An engine without checkpoints (measuring an older version) warms up in this process instead.
    engine = _engine().restore(blob) if blob else warm_up(market, history_h, None)
    if speed_text == "max":
        speed, seconds = None, max_data_s
    elif speed_text.endswith("k"):
        speed = float(speed_text[:-1]) * 1000 / market.rate
        seconds = window * speed
    else:
        speed = float(speed_text)
        seconds = window * speed
    pumps = max(2, min(20, int(seconds / 60)))
    live = market.live(history_h * 3600, seconds, pumps=pumps)
    arrivals: deque[np.ndarray] = deque()
    decision_ms, step_ms, step_cpu_ms, alert_ms = [], [], [], []
    alerts = 0
    processed = engine.stats.trades_processed
    started, cpu = time.perf_counter(), time.process_time()
    last_step = time.time()

    def step(now: float, *, flush: bool = False) -> None:
        nonlocal processed, alerts
        began, began_cpu = time.perf_counter(), time.process_time()
        emitted = engine.finish() if flush else engine.step(now)
        done = time.time()
        step_ms.append((time.perf_counter() - began) * 1000)
        step_cpu_ms.append((time.process_time() - began_cpu) * 1000)
        decided = engine.stats.trades_processed - processed
        processed = engine.stats.trades_processed
        oldest = None
        while decided > 0 and arrivals:
            head = arrivals[0]
            oldest = head[0] if oldest is None else oldest
            if head.size <= decided:
                decided -= head.size
                arrivals.popleft()
            else:
                arrivals[0] = head[decided:]
                decided = 0
        if oldest is not None:
            decision_ms.append((done - oldest) * 1000)
        for item in emitted:
            if not item.update:
                alerts += 1
                if item.alert.timing:
                    alert_ms.append(item.alert.timing["latency_ms"])

    for trades, arrived in replay(live, speed=speed, batch_trades=25_000):
        engine.push(trades, arrived)
        arrivals.append(arrived.to_numpy())
        now = time.time()
        if engine.pending >= settings.max_batch_trades or (now - last_step) * 1000 >= settings.batch_ms:
            step(now)
            last_step = now
    step(time.time(), flush=True)
    wall = time.perf_counter() - started
    cpu_s = time.process_time() - cpu
    cpu_share = cpu_s / wall
    rate = live.height / wall
    p99 = _q(decision_ms, 0.99)
    verdict = []
    if speed == 1.0:
        verdict.append(
            f"target p99 ≤ {TARGET_P99_1X_MS:.0f} ms: {'OK' if p99 <= TARGET_P99_1X_MS else 'MISSED'}"
        )
    if speed_text.endswith("k") or speed is None:
        ok = rate >= TARGET_RATE * 0.97 and (speed is None or p99 <= TARGET_P99_RATE_MS)
        verdict.append(
            f"target ≥ {TARGET_RATE:,}/s"
            + ("" if speed is None else f" with p99 ≤ {TARGET_P99_RATE_MS:.0f} ms")
            + f": {'OK' if ok else 'MISSED'}"
        )
    rss = _rss_gib()
    verdict.append(f"RSS ≤ {TARGET_RSS_GIB:.0f} GiB: {'OK' if rss <= TARGET_RSS_GIB else 'MISSED'}")
    label = "max" if speed is None else f"{speed:g}x"
    print(
        f"{label:>6}  {live.height:,} live trades in {wall:.1f} s = {rate:,.0f} trades/s; {len(step_ms)} steps; "
        f"decision p50 {_q(decision_ms, 0.5):.0f} ms p99 {p99:.0f} ms; step p50 {_q(step_ms, 0.5):.1f} ms "
        f"p99 {_q(step_ms, 0.99):.0f} ms (CPU p50 {_q(step_cpu_ms, 0.5):.1f} ms p99 {_q(step_cpu_ms, 0.99):.0f} ms); alerts {alerts} ({pumps} pumps) latency p50 {_q(alert_ms, 0.5):.0f} ms "
        f"p99 {_q(alert_ms, 0.99):.0f} ms; CPU {cpu_share:.0%} of a core "
        f"({live.height / cpu_s:,.0f} trades per CPU-second); peak RSS {rss:.2f} GiB  "
        f"[{'; '.join(verdict)}]",
        flush=True,
    )


def _q(values: list[float], quantile: float) -> float:
    return float(np.quantile(values, quantile)) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=2500)
    parser.add_argument(
        "--window", type=float, default=60.0, help="wall seconds replayed at each paced speed"
    )
    parser.add_argument(
        "--speeds", default="1,10,30k,max", help="multiples of real time, NNk (trades/s), max"
    )
    parser.add_argument(
        "--history-h", type=float, default=None, help="default: the engine's longest lookback"
    )
    parser.add_argument("--max-data-s", type=float, default=1800.0, help="data seconds replayed at max speed")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    market = Market(args.symbols)
    history_h = args.history_h or (_engine().lookback / timedelta(hours=1))
    if args.child:
        live_run(market, history_h, args.checkpoint, args.child, args.window, args.max_data_s)
        return
    print(
        f"market  {args.symbols} symbols, {market.rate:,.0f} trades/s at 1x (busiest {market.rates[0]:.0f}/s, "
        f"median {np.median(market.rates) * 60:.1f}/min)",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as scratch:
        checkpoint = Path(scratch) / "warm.ckpt"
        warm_up(market, history_h, checkpoint)
        for speed in args.speeds.split(","):
            command = [
                sys.executable,
                __file__,
                *sys.argv[1:],
                "--child",
                speed,
                "--checkpoint",
                str(checkpoint),
            ]
            command += ["--history-h", str(history_h)]
            # One core, as the targets say: Polars' thread pool is one thread in the measured process.
            env = {"POLARS_MAX_THREADS": "1"} | dict(os.environ)
            subprocess.run(command, check=True, env=env)


if __name__ == "__main__":
    main()
