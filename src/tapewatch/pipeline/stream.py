"""`tapewatch stream` as a function: feed a source into the streaming engine and the sinks."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from tapewatch.config import ExchangeSettings, Settings
from tapewatch.detect.base import Detector
from tapewatch.detect.registry import build_detectors
from tapewatch.durations import parse_duration
from tapewatch.engine.kinds import BOOK, ORDERS, TRADES, RecordKind
from tapewatch.engine.stream import Emitted, StreamEngine
from tapewatch.errors import InputError
from tapewatch.io.deadletter import DeadLetterFile, check_writable, letter, letters_frame
from tapewatch.io.derive import book_events, order_events
from tapewatch.io.lake import Lake, open_lake
from tapewatch.io.normalise import COUNTED
from tapewatch.io.readers import Kind, ReadTally, expand_inputs, read_inputs
from tapewatch.io.spill import partitions_for
from tapewatch.pipeline.gaps import GapLedger
from tapewatch.pipeline.replay_spill import AUTO, REPLAY_KINDS, check_replay_kind, spill_replay
from tapewatch.pipeline.sinks import Sink, open_alerts_out
from tapewatch.progress import SILENT, Progress
from tapewatch.sources.replay import parse_speed
from tapewatch.sources.replay import replay as replay_trades
from tapewatch.store.patient import PatientStore

if TYPE_CHECKING:
    from tapewatch.sources.exchange import ExchangeLiveSource

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
    letters: DeadLetterFile = field(default_factory=lambda: DeadLetterFile(None))
    """Every refused row — the replayed files' (as `detect` refuses them), the live source's and the
    engine's set-asides (source `stream`) — appended to `--dead-letter` as it comes, counted by reason."""
    tally: ReadTally | None = None
    """A replay's read: files, rows, duplicates removed (a spilled replay adds those it removes as it
    streams), so every row read is accounted for in the summary."""
    unused: dict[Kind, int] = field(default_factory=dict)
    """Records the files held that this stream does not carry (one stream carries one kind; candles
    none), by kind."""
    live_source: ExchangeLiveSource | None = None
    """The live exchange source, for its counters (gaps, reconnects, halted symbols) in the summary."""

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
    dead_letter: Path | None = None,
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
    Every refused or set-aside row goes to `dead_letter` as it comes (`StreamJob.letters`).
    """
    if bool(replay) == bool(exchange):
        raise InputError("stream: give exactly one source: --replay FILE... or --exchange ID --symbols S...")
    if notify and not use_store:
        raise InputError(
            "--notify: needs the store (cooldowns look up earlier alerts there); drop --no-store"
        )
    for path, option in ((output, "--output"), (dead_letter, "--dead-letter")):
        if path is not None:
            check_writable(path, option)  # before a long read, not at its end
    letters = DeadLetterFile(dead_letter)
    chosen = build_detectors(settings, detectors)
    replayed = _open_replay(replay, settings, fmt, venue, kind, chosen, letters) if replay else None
    record_kind = TRADES if replayed is None else replayed.kind
    engine = StreamEngine(chosen, settings.stream, check_clock=bool(exchange), kind=record_kind)
    try:
        if not engine.detectors:
            raise InputError(
                f"stream: none of the chosen detectors ({', '.join(d.name for d in chosen)}) reads "
                f"{record_kind.noun}s; name one that does with --detector (spoofing_l2 reads book updates)"
            )
        out = open_alerts_out(settings, output=output, store=use_store, db=db, notify=notify)
    except BaseException:
        for close in [] if replayed is None else replayed.closers:
            close()  # a spill is deleted now, not whenever it is collected
        raise
    job = StreamJob(
        engine=engine,
        sinks=[out, _set_aside_to(letters, engine)],
        store=out.patient,
        closers=[out.close],
        letters=letters,
    )
    if replayed is not None:
        job.source = replay_trades(
            replayed.rows, speed=parse_speed(speed), batch_trades=settings.stream.max_batch_trades
        )
        job.closers += replayed.closers
        job.tally, job.unused = replayed.tally, replayed.unused
        job.description = f"{replayed.description} at {speed} speed"
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
        known_gaps = GapLedger(the_lake)  # unrepaired gaps kept in the lake; alerts across one say so
        engine.gaps = known_gaps.evidence
        from tapewatch.sources.exchange import ExchangeLiveSource

        job.live_source = ExchangeLiveSource(venue_settings, list(symbols), lake=the_lake if span else None)
        job.live = _exchange_batches(job.live_source, letters, known_gaps)
        job.description = f"live {exchange}: {len(symbols)} symbol(s)"
    return job


@dataclass
class Replay:
    """A replay's rows (one frame, or a spill's hours), their kind, and what the read found."""

    rows: pl.DataFrame | Iterable[pl.DataFrame]
    kind: RecordKind
    tally: ReadTally
    unused: dict[Kind, int] = field(default_factory=dict)
    description: str = ""
    """What is streamed, for the summary."""
    closers: list[Callable[[], object]] = field(default_factory=list)


def _open_replay(
    inputs: Sequence[str],
    settings: Settings,
    fmt: str,
    venue: str | None,
    kind: str,
    detectors: Sequence[Detector],
    letters: DeadLetterFile,
) -> Replay:
    """Read the files (whole, or spilled by hour when larger than memory); refused rows go to `letters`."""
    if partitions_for(expand_inputs(inputs), settings.batch.memory_gib) == 1:
        return replay_rows(inputs, fmt, venue, kind, detectors, letters)
    spilled = spill_replay(inputs, settings, fmt=fmt, venue=venue, kind=kind, kinds=READ, on_rejected=letters)
    return Replay(
        spilled.frames(),
        TRADES,
        spilled.tally,
        _unused(inputs, spilled.tally, {"trades"}),
        f"replay of trades larger than memory ({spilled.hours:,} hour(s) spilled to disk)",
        [spilled.close],
    )


def replay_rows(
    inputs: Sequence[str],
    fmt: str,
    venue: str | None,
    kind: str,
    detectors: Sequence[Detector],
    letters: DeadLetterFile,
) -> Replay:
    """The rows a replay streams, their kind (one stream carries one kind); refused rows go to `letters`,
    a file that cannot be read is set aside (`tally.failed`) and the rest replayed, as `detect` does.

    `auto` takes L2 book updates (with the files' trades merged in, which the L2
    detector needs) when there are any and one of `detectors` reads them, else L3 order
    events (with the files' trades that name buyers and sellers merged in, as the batch
    engine merges them), else trades; files holding both trades and order events need
    `--kind` to say which to replay. Records of a kind the stream does not carry are
    counted (`unused`), never dropped unsaid; candles too: a candle file is read, not replayed.
    """
    check_replay_kind(kind)
    read = read_inputs(inputs, fmt=fmt, venue=venue, kinds=READ, set_aside=True, on_rejected=letters)
    if kind == AUTO:
        reads_book = read.book.height > 0 and any(BOOK.serves(detector) for detector in detectors)
        if read.orders.height and read.trades.height and not reads_book:
            raise InputError(
                "--replay: the files hold trades and L3 order events; one stream carries one kind: "
                "add --kind trades or --kind orders"
            )
        kind = "book" if reads_book else "orders" if read.orders.height else "trades"
    tally = read.tally()
    if kind == "book":
        rows, record_kind, used = book_events(read.book, read.trades), BOOK, {"book", "trades"}
    elif kind == "orders":
        rows, record_kind, used = order_events(read.orders, read.trades), ORDERS, {"orders", "trades"}
    else:
        rows, record_kind, used = read.trades, TRADES, {"trades"}
    return Replay(
        rows,
        record_kind,
        tally,
        _unused(inputs, tally, used),
        f"replay of {rows.height:,} {record_kind.noun}s",
    )


READ: tuple[Kind, ...] = (*REPLAY_KINDS, "bars")
"""What a replay reads: the kinds it streams, and candles, so that a candle file named is reported as what
it is (read, not replayed), not as a file that cannot be read."""
NOT_STREAMED = "a stream builds its candles from trades; it replays trades, order events or book updates"
"""Why candles are not replayed."""


def _unused(inputs: Sequence[str], tally: ReadTally, used: set[str]) -> dict[Kind, int]:
    """The records read that the stream does not carry, by kind, those with any; one error line when
    they are all the files held (candles only), as a stream of nothing would exit 0 having done nothing."""
    unused = {kind: count for kind, count in tally.records.items() if count and kind not in used}
    if set(unused) == {"bars"} and not any(tally.records[kind] for kind in used):
        named = f"input '{inputs[0]}' holds" if len(inputs) == 1 else f"the {len(inputs)} inputs hold"
        raise InputError(f"--replay: {named} {unused['bars']:,} bars and nothing to stream: {NOT_STREAMED}")
    return unused


def _set_aside_to(letters: DeadLetterFile, engine: StreamEngine) -> Sink:
    """A sink (called after every step) moving the engine's set-asides to the dead letters, so a long
    stream of bad rows holds none of them in memory."""

    def drain(_emitted: list[Emitted]) -> None:
        if engine.set_aside:
            letters.add(
                letters_frame(letter("stream", item["reason"], item["record"]) for item in engine.set_aside)
            )
            engine.set_aside.clear()

    return drain


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
    for symbol, result in report.symbols.items():
        for first, last in result.not_available:
            say(f"warm-up: {symbol}: history not available from {first:%F %T} to {last:%F %T} UTC")
    history = lake.read("trades", venue=venue.exchange, start=until - span)
    return history.filter(pl.col("symbol").is_in(symbols))


async def _exchange_batches(
    source: ExchangeLiveSource, letters: DeadLetterFile, known_gaps: GapLedger
) -> AsyncIterator[tuple[pl.DataFrame, float | None]]:
    """Live trades; with the warm-up's lake, each symbol also refills what came after its history.
    What the source refuses (malformed frames, bad trades) goes to `letters`."""
    async for batch in source.batches():
        letters.add(letters_frame(batch.rejected))
        # recorded before the trades after a gap reach the engine, so alerts across it can say so
        known_gaps.record_new(source.venue, source.unrepaired)
        yield batch.trades, batch.arrived_at


def report_stream(job: StreamJob, report: StreamReport, say: Callable[[str], None]) -> None:
    """The end-of-run summary: throughput, unused records, set-asides by reason, alerts, latency."""
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
    if job.live_source is not None:
        from tapewatch.sources.exchange.summary import live_lines

        for line in live_lines(job.live_source.stats, job.live_source.unrepaired):
            say(line)
    if report.latencies_ms:
        say(f"arrival → alert latency: p50 {report.latency(0.5):.1f} ms, p99 {report.latency(0.99):.1f} ms")
    if job.store is not None and job.store.failures:
        say(
            f"store: {job.store.failures} failed save(s); {job.store.saved} alert line(s) saved in the end, "
            f"{len(job.store.waiting)} not saved (they are in the JSON-lines output)"
        )
    for kind, count in job.unused.items():
        why = NOT_STREAMED if kind == "bars" else f"one stream carries one kind: {job.engine.kind.noun}s"
        say(f"not replayed: {count:,} {COUNTED[kind]} ({why})")
    for reason, count in job.letters.reasons.most_common():
        say(f"set aside {count:,}: {reason}")
    if job.letters.path is not None:
        say(f"set-aside rows written to {job.letters.path}")
