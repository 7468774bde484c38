"""`tapewatch stream` as a function: feed a source into the streaming engine and the sinks."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
from rich.console import Console

from tapewatch.config import Settings
from tapewatch.detect.registry import build_detectors
from tapewatch.engine.stream import Emitted, StreamEngine
from tapewatch.errors import InputError
from tapewatch.io.alerts import AlertLineWriter
from tapewatch.io.readers import read_inputs
from tapewatch.sources.replay import parse_speed
from tapewatch.sources.replay import replay as replay_trades
from tapewatch.store.alerts import default_db_path, open_store

Sink = Callable[[list[Emitted]], None]


@dataclass
class StreamReport:
    """What a stream run did, for the summary and the benchmarks."""

    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    def latency(self, quantile: float) -> float | None:
        """Arrival → alert latency at a quantile, in ms (None when no alert carried timing)."""
        return float(np.quantile(self.latencies_ms, quantile)) if self.latencies_ms else None


def run_stream(
    batches: Iterable[tuple[pl.DataFrame, pl.Series | float | None]],
    engine: StreamEngine,
    sinks: Iterable[Sink],
    *,
    clock: Callable[[], float] = time.time,
) -> StreamReport:
    """Push every batch; step when `batch_ms` has passed or `max_batch_trades` are waiting; finish at the end."""
    delivery = _Delivery(list(sinks))
    started = last_step = clock()
    settings = engine.settings
    for trades, arrived in batches:
        engine.push(trades, arrived)
        now = clock()
        if engine.pending >= settings.max_batch_trades or (now - last_step) * 1000 >= settings.batch_ms:
            delivery(engine.step(now))
            last_step = now
    delivery(engine.finish())
    delivery.report.seconds = clock() - started
    return delivery.report


async def run_stream_async(
    batches: AsyncIterator[tuple[pl.DataFrame, float | None]],
    engine: StreamEngine,
    sinks: Iterable[Sink],
) -> StreamReport:
    """The live loop: push batches as they come and step every `batch_ms` even when none come.

    The timer is what lets a held-back millisecond be decided when the market goes
    quiet right after it. Cancelling the task (Ctrl-C) still finishes the engine.
    """
    delivery = _Delivery(list(sinks))
    started = time.time()
    settings = engine.settings

    async def tick() -> None:
        while True:
            await asyncio.sleep(settings.batch_ms / 1000)
            delivery(engine.step())

    ticker = asyncio.create_task(tick())
    try:
        async for trades, arrived in batches:
            engine.push(trades, arrived)
            if engine.pending >= settings.max_batch_trades:
                delivery(engine.step())
    finally:
        ticker.cancel()
        delivery(engine.finish())
        delivery.report.seconds = time.time() - started
    return delivery.report


class _Delivery:
    """Hands emitted alerts to every sink and records their latency."""

    def __init__(self, sinks: list[Sink]) -> None:
        self.sinks = sinks
        self.report = StreamReport()

    def __call__(self, emitted: list[Emitted]) -> None:
        if not emitted:
            return
        self.report.latencies_ms.extend(
            item.alert.timing["latency_ms"] for item in emitted if not item.update and item.alert.timing
        )
        for sink in self.sinks:
            sink(emitted)


@dataclass
class StreamJob:
    """A configured stream: its source, engine and sinks; `run` drives it to the end of input."""

    engine: StreamEngine
    sinks: list[Sink]
    source: Iterable[tuple[pl.DataFrame, pl.Series | float | None]] | None = None
    live: AsyncIterator[tuple[pl.DataFrame, float | None]] | None = None
    closers: list[Callable[[], None]] = field(default_factory=list)
    description: str = ""

    def run(self) -> StreamReport:
        """Run until the input ends (replay) or Ctrl-C (live); sinks are closed either way."""
        try:
            if self.live is not None:
                try:
                    return asyncio.run(run_stream_async(self.live, self.engine, self.sinks))
                except KeyboardInterrupt:
                    return StreamReport()
            return run_stream(self.source or [], self.engine, self.sinks)
        finally:
            for close in self.closers:
                close()


def open_stream(
    settings: Settings,
    *,
    replay: Sequence[str] | None = None,
    speed: str = "max",
    exchange: str | None = None,
    symbols: Sequence[str] | None = None,
    fmt: str = "auto",
    venue: str | None = None,
    output: Path | None = None,
    db: str | None = None,
    use_store: bool = True,
) -> StreamJob:
    """Build the stream `tapewatch stream` runs; exactly one source: --replay or --exchange."""
    if bool(replay) == bool(exchange):
        raise InputError("stream: give exactly one source: --replay FILE... or --exchange ID --symbols S...")
    engine = StreamEngine(build_detectors(settings), settings.stream, check_clock=bool(exchange))
    writer = AlertLineWriter(output)
    job = StreamJob(engine=engine, sinks=[lambda items: writer.write(item.alert for item in items)])
    job.closers.append(writer.close)
    if use_store:
        store = open_store(db or settings.store.db or default_db_path())
        job.sinks.append(lambda items: store.save(item.alert for item in items))
        job.closers.append(store.close)
    if replay:
        trades = read_inputs(replay, fmt=fmt, venue=venue).trades
        job.source = replay_trades(
            trades, speed=parse_speed(speed), batch_trades=settings.stream.max_batch_trades
        )
        job.description = f"replay of {trades.height:,} trades at {speed} speed"
    else:
        if not symbols:
            raise InputError("--exchange: give the symbols to watch with --symbols (e.g. --symbols BTC/USDT)")
        job.live = _exchange_batches(settings, exchange, list(symbols))
        job.description = f"live {exchange}: {len(symbols)} symbol(s)"
    return job


async def _exchange_batches(
    settings: Settings, exchange: str, symbols: list[str]
) -> AsyncIterator[tuple[pl.DataFrame, float | None]]:
    from tapewatch.sources.exchange import ExchangeLiveSource

    source = ExchangeLiveSource(settings.exchange.model_copy(update={"exchange": exchange}), symbols)
    async for batch in source.batches():
        yield batch.trades, batch.arrived_at


def report_stream(console: Console, job: StreamJob, report: StreamReport, dead_letter: Path | None) -> None:
    """The end-of-run summary: throughput, set-asides by reason, alerts, latency."""
    stats = job.engine.stats
    rate = stats.trades_processed / report.seconds if report.seconds else 0.0
    console.print(
        f"{job.description}: {stats.trades_processed:,} trades in {report.seconds:.2f}s ({rate:,.0f}/s), "
        f"{stats.alerts} alert(s), {stats.updates} follow-up update(s)",
        highlight=False,
    )
    if report.latencies_ms:
        console.print(
            f"arrival → alert latency: p50 {report.latency(0.5):.1f} ms, p99 {report.latency(0.99):.1f} ms",
            highlight=False,
        )
    for reason, count in stats.set_aside.most_common():
        console.print(f"set aside {count:,}: {reason}", highlight=False)
    if dead_letter is not None and job.engine.set_aside:
        dead_letter.parent.mkdir(parents=True, exist_ok=True)
        with dead_letter.open("w", encoding="utf-8") as handle:
            for entry in job.engine.set_aside:
                handle.write(json.dumps(entry, default=str) + "\n")
        console.print(f"set-aside trades written to {dead_letter}", highlight=False)
