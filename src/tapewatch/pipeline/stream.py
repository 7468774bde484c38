"""`tapewatch stream` as a function: feed a source into the streaming engine and the sinks."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import numpy as np
import polars as pl

from tapewatch.config import ExchangeSettings, Settings
from tapewatch.detect.base import Detector
from tapewatch.detect.registry import build_detectors
from tapewatch.durations import parse_duration
from tapewatch.engine.kinds import BOOK, ORDERS, TRADES, RecordKind
from tapewatch.engine.stream import Emitted, StreamEngine
from tapewatch.errors import InputError
from tapewatch.io.deadletter import empty_rejected, letter, letters_frame, write_dead_letters
from tapewatch.io.derive import book_events, order_events
from tapewatch.io.lake import Lake, open_lake
from tapewatch.io.readers import RECORD_KINDS, expand_inputs, read_inputs
from tapewatch.io.spill import partitions_for
from tapewatch.pipeline.replay_spill import AUTO, check_replay_kind, spill_replay
from tapewatch.pipeline.sinks import Sink, open_alerts_out
from tapewatch.progress import SILENT, Progress
from tapewatch.sources.replay import parse_speed
from tapewatch.sources.replay import replay as replay_trades
from tapewatch.store.patient import PatientStore

log = logging.getLogger(__name__)


@dataclass
class StreamReport:
    """What a stream run did, for the summary and the benchmarks."""

    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    history_trades: int = 0  # decided before the live part (warm-up), not counted in `seconds`

    def latency(self, quantile: float) -> float | None:
        """Arrival → alert latency at a quantile, in ms (None when no alert carried timing)."""
        return float(np.quantile(self.latencies_ms, quantile)) if self.latencies_ms else None


def run_stream(
    batches: Iterable[tuple[pl.DataFrame, pl.Series | float | None]],
    engine: StreamEngine,
    sinks: Iterable[Sink],
    *,
    clock: Callable[[], float] = time.time,
    report: StreamReport | None = None,
) -> StreamReport:
    """Push every batch; step when `batch_ms` has passed or `max_batch_trades` are waiting; finish at the end.

    `report` is filled in as the run goes, so a caller interrupted by Ctrl-C still has it.
    """
    delivery = _Delivery(list(sinks), report)
    started = last_step = clock()
    settings = engine.settings
    try:
        for trades, arrived in batches:
            engine.push(trades, arrived)
            now = clock()
            if engine.pending >= settings.max_batch_trades or (now - last_step) * 1000 >= settings.batch_ms:
                delivery(engine.step(now))
                last_step = now
        delivery(engine.finish())
    finally:
        delivery.report.seconds = clock() - started
    return delivery.report


async def run_stream_async(
    batches: AsyncIterator[tuple[pl.DataFrame, float | None]],
    engine: StreamEngine,
    sinks: Iterable[Sink],
    report: StreamReport | None = None,
    history: Callable[[], Awaitable[pl.DataFrame]] | None = None,
) -> StreamReport:
    """The live loop: push batches as they come and step every `batch_ms` even when none come.

    `history`, when given, is awaited first and decided at once (`StreamEngine.warm_up`),
    so baselines are in place for the first live trade. The timer is what lets a
    held-back millisecond be decided when the market goes quiet right after it.
    Cancelling the task (Ctrl-C) still finishes the engine and fills in `report`.
    """
    delivery = _Delivery(list(sinks), report)
    if history is not None:
        delivery(engine.warm_up(await history()))
        delivery.report.history_trades = engine.stats.trades_processed
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

    def __init__(self, sinks: list[Sink], report: StreamReport | None) -> None:
        self.sinks = sinks
        self.report = StreamReport() if report is None else report

    def __call__(self, emitted: list[Emitted]) -> None:
        """Every step calls this, alerts or not, so a sink holding alerts back (PatientStore) retries."""
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
    history: Callable[[], Awaitable[pl.DataFrame]] | None = None
    store: PatientStore | None = None
    closers: list[Callable[[], object]] = field(default_factory=list)
    description: str = ""
    interrupted: bool = False
    rejected: pl.DataFrame = field(default_factory=empty_rejected)
    """Rows the replayed files refused (`io.deadletter` columns), as `detect` refuses them."""

    def dead_letters(self) -> pl.DataFrame:
        """The files' refused rows, then the rows the engine set aside (source `stream`), in one format."""
        set_aside = (letter("stream", entry["reason"], entry["record"]) for entry in self.engine.set_aside)
        return pl.concat([self.rejected, letters_frame(set_aside)])

    def run(self) -> StreamReport:
        """Run until the input ends or Ctrl-C; the report covers what ran, and sinks are closed either way."""
        report = StreamReport()
        try:
            if self.live is not None:
                asyncio.run(run_stream_async(self.live, self.engine, self.sinks, report, self.history))
            else:
                run_stream(self.source or [], self.engine, self.sinks, report=report)
        except KeyboardInterrupt:
            self.interrupted = True
        finally:
            for close in self.closers:
                close()
        return report


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
    warmup: str | None = None,
    lake: str | None = None,
    notify: bool = False,
    kind: str = "auto",
    detectors: Sequence[str] | None = None,
    progress: Callable[[], AbstractContextManager[Progress]] = lambda: nullcontext(SILENT),
    say: Callable[[str], None] = log.warning,
) -> StreamJob:
    """Build the stream `tapewatch stream` runs; exactly one source: --replay or --exchange.

    Live, the detectors first warm up on the last `warmup` of trades (default: as far
    back as they look, 3 h), fetched over REST into the lake where it lacks them, shown
    on a `progress()` display; `say` tells a person what went wrong with a symbol.
    """
    if bool(replay) == bool(exchange):
        raise InputError("stream: give exactly one source: --replay FILE... or --exchange ID --symbols S...")
    if notify and not use_store:
        raise InputError(
            "--notify: needs the store (cooldowns look up earlier alerts there); drop --no-store"
        )
    chosen = build_detectors(settings, detectors)
    spilled = None
    if replay and partitions_for(expand_inputs(replay), settings.batch.memory_gib) > 1:
        spilled = spill_replay(replay, settings, fmt=fmt, venue=venue, kind=kind)
    rows, record_kind, rejected = (
        replay_rows(replay, fmt, venue, kind, chosen)
        if replay and spilled is None
        else (None, TRADES, empty_rejected() if spilled is None else spilled.rejected)
    )
    engine = StreamEngine(chosen, settings.stream, check_clock=bool(exchange), kind=record_kind)
    if not engine.detectors:
        raise InputError(
            f"stream: none of the chosen detectors ({', '.join(d.name for d in chosen)}) reads "
            f"{record_kind.noun}s; name one that does with --detector (spoofing_l2 reads book updates)"
        )
    out = open_alerts_out(settings, output=output, store=use_store, db=db, notify=notify)
    job = StreamJob(engine=engine, sinks=[out], store=out.patient, closers=[out.close], rejected=rejected)
    if spilled is not None:
        job.source = replay_trades(
            spilled.frames(), speed=parse_speed(speed), batch_trades=settings.stream.max_batch_trades
        )
        job.closers.append(spilled.close)
        job.description = (
            f"replay of {spilled.trades:,} trades at {speed} speed, larger than memory: "
            f"{spilled.hours:,} hour(s) spilled to disk"
        )
    elif rows is not None:
        job.source = replay_trades(
            rows, speed=parse_speed(speed), batch_trades=settings.stream.max_batch_trades
        )
        job.description = f"replay of {rows.height:,} {record_kind.noun}s at {speed} speed"
    else:
        if not symbols:
            raise InputError("--exchange: give the symbols to watch with --symbols (e.g. --symbols BTC/USDT)")
        span = engine.lookback if warmup is None else parse_duration(warmup, what="--warmup")
        venue_settings = settings.exchange.model_copy(update={"exchange": exchange})
        the_lake = open_lake(lake, settings.store.lake)
        if span > timedelta(0):
            job.history = partial(
                _exchange_history, venue_settings, list(symbols), span, the_lake, progress, say
            )
        job.live = _exchange_batches(venue_settings, list(symbols), the_lake if span else None)
        job.description = f"live {exchange}: {len(symbols)} symbol(s)"
    return job


def replay_rows(
    inputs: Sequence[str], fmt: str, venue: str | None, kind: str, detectors: Sequence[Detector]
) -> tuple[pl.DataFrame, RecordKind, pl.DataFrame]:
    """The rows a replay streams, their kind (one stream carries one kind) and the files' refused rows.

    `auto` takes L2 book updates (with the files' trades merged in, which the L2
    detector needs) when there are any and one of `detectors` reads them, else L3 order
    events (with the files' trades that name buyers and sellers merged in, as the batch
    engine merges them), else trades; files holding both trades and order events need
    `--kind` to say which to replay.
    """
    check_replay_kind(kind)
    read = read_inputs(inputs, fmt=fmt, venue=venue, kinds=RECORD_KINDS)
    if kind == AUTO:
        reads_book = read.book.height > 0 and any(BOOK.serves(detector) for detector in detectors)
        if read.orders.height and read.trades.height and not reads_book:
            raise InputError(
                "--replay: the files hold trades and L3 order events; one stream carries one kind: "
                "add --kind trades or --kind orders"
            )
        kind = "book" if reads_book else "orders" if read.orders.height else "trades"
    if kind == "book":
        return book_events(read.book, read.trades), BOOK, read.rejected
    if kind == "orders":
        return order_events(read.orders, read.trades), ORDERS, read.rejected
    return read.trades, TRADES, read.rejected


async def _exchange_history(
    venue: ExchangeSettings,
    symbols: list[str],
    span: timedelta,
    lake: Lake,
    progress: Callable[[], AbstractContextManager[Progress]],
    say: Callable[[str], None],
) -> pl.DataFrame:
    """The last `span` of trades: what the lake lacks is fetched over REST first (under a progress display)."""
    from tapewatch.sources.exchange.backfill import backfill_trades

    until = datetime.now(UTC)
    with progress() as shown:
        report = await backfill_trades(venue, symbols, until - span, until, lake, shown)
    for symbol, error in report.failed.items():
        say(f"warm-up: {symbol}: {error}; it starts without history")
    history = lake.read("trades", venue=venue.exchange, start=until - span)
    return history.filter(pl.col("symbol").is_in(symbols))


async def _exchange_batches(
    venue: ExchangeSettings, symbols: list[str], lake: Lake | None
) -> AsyncIterator[tuple[pl.DataFrame, float | None]]:
    """Live trades; with the warm-up's lake, each symbol also refills what came after its history."""
    from tapewatch.sources.exchange import ExchangeLiveSource

    source = ExchangeLiveSource(venue, symbols, lake=lake)
    async for batch in source.batches():
        yield batch.trades, batch.arrived_at


def report_stream(
    job: StreamJob, report: StreamReport, dead_letter: Path | None, say: Callable[[str], None]
) -> None:
    """The end-of-run summary: throughput, set-asides by reason, alerts, latency."""
    stats = job.engine.stats
    processed = stats.trades_processed - report.history_trades
    rate = processed / report.seconds if report.seconds else 0.0
    stopped = " (stopped by Ctrl-C)" if job.interrupted else ""
    if report.history_trades:
        say(f"warmed up on {report.history_trades:,} trades of history")
    say(
        f"{job.description}{stopped}: {processed:,} {job.engine.kind.noun}s in {report.seconds:.2f}s "
        f"({rate:,.0f}/s), "
        f"{stats.alerts} alert(s), {stats.updates} follow-up update(s)"
    )
    if report.latencies_ms:
        say(f"arrival → alert latency: p50 {report.latency(0.5):.1f} ms, p99 {report.latency(0.99):.1f} ms")
    if job.store is not None and job.store.failures:
        say(
            f"store: {job.store.failures} failed save(s); {job.store.saved} alert line(s) saved in the end, "
            f"{len(job.store.waiting)} not saved (they are in the JSON-lines output)"
        )
    set_aside = Counter(job.rejected["reason"].to_list()) + stats.set_aside
    for reason, count in set_aside.most_common():
        say(f"set aside {count:,}: {reason}")
    if dead_letter is not None and set_aside:
        write_dead_letters(job.dead_letters(), dead_letter)
        say(f"set-aside rows written to {dead_letter}")
