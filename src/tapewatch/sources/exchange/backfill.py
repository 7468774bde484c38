"""REST backfill of trades and candles into the lake, resumable and never duplicating a row.

For each symbol only the parts of the requested range that the coverage ledger does
not hold are fetched; pages are buffered and merged into the lake in large writes
(each write rewrites a day's file), and the ledger advances only after the data it
stands for is on disk. A crash therefore costs at most one buffer of re-fetching.

Trades are paged as the venue allows (`capabilities`, `paging.history_pages`): what the
venue cannot give for the range is recorded in the ledger as not available and reported
per symbol, never as fetched. The newest `settle_ms` of the venue are never asked for:
its history may not hold its latest trades yet.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, Literal

import ccxt.async_support
import polars as pl

from tapewatch.config import ExchangeSettings
from tapewatch.epoch import from_millis, millis_of
from tapewatch.io.lake import Lake
from tapewatch.progress import SILENT, Progress
from tapewatch.sources.exchange.capabilities import IdModel, VenueCapabilities, capabilities_of
from tapewatch.sources.exchange.connect import load_markets, make_exchange
from tapewatch.sources.exchange.coverage import Coverage
from tapewatch.sources.exchange.normalise import bars_frame, normalise_trades, trades_frame
from tapewatch.sources.exchange.paging import Page, candle_pages, history_pages
from tapewatch.sources.exchange.sequence import IdRun


@dataclass
class SymbolBackfill:
    """What one symbol's backfill did."""

    written: int = 0
    fetched: int = 0
    resumed_from: datetime | None = None  # where fetching started, when the start was already covered
    up_to_date: bool = False  # nothing in the range was missing
    not_available: list[tuple[datetime, datetime]] = field(default_factory=list)  # the venue cannot give it
    rejected: list[dict] = field(default_factory=list)
    error: str | None = None


@dataclass
class BackfillReport:
    """Per-symbol results of one backfill run, for the summary."""

    kind: Literal["trades", "bars"]
    venue: str
    symbols: dict[str, SymbolBackfill] = field(default_factory=dict)
    capabilities: VenueCapabilities | None = None

    @property
    def written(self) -> int:
        """New rows in the lake, all symbols together."""
        return sum(result.written for result in self.symbols.values())

    @property
    def failed(self) -> dict[str, str]:
        """Symbols whose backfill stopped on an exchange error, with the error."""
        return {symbol: r.error for symbol, r in self.symbols.items() if r.error is not None}


PageSource = Callable[[ccxt.async_support.Exchange, VenueCapabilities, str, int, int], AsyncIterator[Page]]
"""(exchange, its capabilities, symbol, start ms, end ms) → pages covering that span."""
ToFrame = Callable[[Page, str, SymbolBackfill], pl.DataFrame]
"""(page, symbol, the symbol's result for rejections) → a record frame."""


@dataclass
class _Job:
    """One backfill run: what to fetch, how to read pages, where the rows go."""

    settings: ExchangeSettings
    lake: Lake
    kind: Literal["trades", "bars"]
    stream: str  # "trades" or the candle timeframe: the coverage ledger's key
    pages: PageSource
    to_frame: ToFrame
    progress: Progress


async def backfill_trades(
    settings: ExchangeSettings,
    symbols: list[str],
    since: datetime,
    until: datetime,
    lake: Lake,
    progress: Progress = SILENT,
    *,
    exchange: ccxt.async_support.Exchange | None = None,
) -> BackfillReport:
    """Fetch the trades of [since, until) that the lake lacks, for each symbol."""

    def to_frame(page: Page, symbol: str, result: SymbolBackfill) -> pl.DataFrame:
        checked = normalise_trades(page.records, source=f"{settings.exchange}:rest", symbols={symbol})
        result.rejected.extend(checked.rejected)
        return trades_frame(checked.rows, settings.exchange)

    pages = partial(_trade_pages, settings=settings)
    job = _Job(settings, lake, "trades", "trades", pages, to_frame, progress)
    return await _run(job, symbols, since, until, exchange)


async def backfill_ohlcv(
    settings: ExchangeSettings,
    symbols: list[str],
    timeframe: str,
    since: datetime,
    until: datetime,
    lake: Lake,
    progress: Progress = SILENT,
    *,
    exchange: ccxt.async_support.Exchange | None = None,
) -> BackfillReport:
    """Fetch the closed candles of [since, until) that the lake lacks, for each symbol."""

    def to_frame(page: Page, symbol: str, result: SymbolBackfill) -> pl.DataFrame:
        return bars_frame(page.records, settings.exchange, symbol, timeframe)

    pages = partial(_candle_pages, settings=settings, timeframe=timeframe)
    job = _Job(settings, lake, "bars", timeframe, pages, to_frame, progress)
    return await _run(job, symbols, since, until, exchange)


def _trade_pages(
    exchange: ccxt.async_support.Exchange,
    capabilities: VenueCapabilities,
    symbol: str,
    start: int,
    end: int,
    *,
    settings: ExchangeSettings,
) -> AsyncIterator[Page]:
    window = int(settings.backfill_window_s * 1000)
    return history_pages(
        exchange, capabilities, symbol, start, end, limit=settings.backfill_page, window=window
    )


async def _candle_pages(
    exchange: ccxt.async_support.Exchange,
    capabilities: VenueCapabilities,
    symbol: str,
    start: int,
    end: int,
    *,
    settings: ExchangeSettings,
    timeframe: str,
) -> AsyncIterator[Page]:
    limit = capabilities.ohlcv_limit(settings.backfill_page)
    now = await _exchange_now(exchange)
    async for page in candle_pages(exchange, symbol, timeframe, start, end, limit=limit, now=now):
        yield page


async def _exchange_now(exchange: ccxt.async_support.Exchange) -> int:
    """The exchange's clock in ms (its candles close by it), or ours where it does not tell."""
    if exchange.has.get("fetchTime"):
        server_time = await exchange.fetch_time()
        if isinstance(server_time, int):
            return server_time
    return int(time.time() * 1000)


async def _run(
    job: _Job,
    symbols: list[str],
    since: datetime,
    until: datetime,
    exchange: ccxt.async_support.Exchange | None,
) -> BackfillReport:
    """One symbol at a time per slot, `backfill_concurrency` slots, all on one rate-limited exchange."""
    own = exchange is None
    exchange = exchange or make_exchange(job.settings)
    results: dict[str, SymbolBackfill] = {}
    gate = asyncio.Semaphore(job.settings.backfill_concurrency)
    capabilities = capabilities_of(exchange, job.settings.history_settle_s)
    start, end = millis_of(since), min(millis_of(until), int(time.time() * 1000) - capabilities.settle_ms)

    async def one(symbol: str) -> None:
        async with gate:
            results[symbol] = await _backfill_symbol(job, exchange, capabilities, symbol, start, end)

    try:
        await load_markets(exchange, job.settings.exchange)
        await asyncio.gather(*(one(symbol) for symbol in symbols))
    finally:
        if own:
            await exchange.close()
    ordered = {symbol: results[symbol] for symbol in symbols}
    return BackfillReport(job.kind, job.settings.exchange, ordered, capabilities)


async def _backfill_symbol(
    job: _Job,
    exchange: ccxt.async_support.Exchange,
    capabilities: VenueCapabilities,
    symbol: str,
    start: int,
    end: int,
) -> SymbolBackfill:
    """Fetch one symbol's missing spans; an exchange error ends this symbol only, kept in its result."""
    coverage = Coverage(job.lake.store, job.kind, job.settings.exchange, symbol, job.stream)
    result = SymbolBackfill()
    missing = coverage.missing(start, end)
    result.up_to_date = not missing
    if missing and missing[0][0] > start:
        result.resumed_from = from_millis(missing[0][0])
    progress = job.progress
    task = _progress_task(progress, f"{symbol} {job.stream}", sum(b - a for a, b in missing))
    numbered = job.kind == "trades" and capabilities.ids is not IdModel.NONE
    buffer = _Buffer(job.lake, job.kind, coverage, job.settings.backfill_flush_rows, ids=numbered)
    try:
        for span_start, span_end in missing:
            buffer.begin()
            async for page in job.pages(exchange, capabilities, symbol, span_start, span_end):
                frame = job.to_frame(page, symbol, result)
                result.fetched += frame.height
                result.written += await buffer.add(frame, page)
                if task is not None:
                    progress.advance(task, page.end - page.start)
            result.written += await buffer.flush()
    except ccxt.BaseError as exc:
        result.error = f"{type(exc).__name__}: {exc}"[:300]
        result.written += await buffer.flush()
    finally:
        if task is not None:
            progress.remove_task(task)
    result.not_available = [(from_millis(a), from_millis(b)) for a, b in coverage.not_available(start, end)]
    return result


class _Buffer:
    """Pages waiting for one lake write; the ledger learns of them only once written.

    With `ids` (a venue whose trade ids are consecutive), the fetched trades are checked
    for missing ids; the time between the trades around a hole is recorded as not
    available, not fetched. `begin()` starts a new stretch (ids do not join across them).
    """

    def __init__(
        self, lake: Lake, kind: Literal["trades", "bars"], coverage: Coverage, rows: int, *, ids: bool
    ) -> None:
        self.lake, self.kind, self.coverage, self.rows = lake, kind, coverage, rows
        self.frames: list[pl.DataFrame] = []
        self.spans: list[tuple[int, int]] = []
        self.unavailable: list[tuple[int, int]] = []
        self.ids = IdRun() if ids else None

    def begin(self) -> None:
        if self.ids is not None:
            self.ids = IdRun()

    async def add(self, frame: pl.DataFrame, page: Page) -> int:
        self.frames.append(frame)
        (self.spans if page.available else self.unavailable).append((page.start, page.end))
        if self.ids is not None:  # the venue's records, refused ones included: a refusal is no hole
            fetched = [(str(t.get("id")), t["timestamp"]) for t in page.records if _stamped(t)]
            self.unavailable.extend((before, after + 1) for before, after in self.ids.holes(fetched))
        if sum(f.height for f in self.frames) >= self.rows:
            return await self.flush()
        return 0

    async def flush(self) -> int:
        if not (self.spans or self.unavailable):
            return 0
        frame = pl.concat(self.frames) if self.frames else pl.DataFrame()
        written = await asyncio.to_thread(self.lake.write, self.kind, frame)
        self.coverage.add(self.spans, self.unavailable)
        self.frames, self.spans, self.unavailable = [], [], []
        return written


def _stamped(trade: dict[str, Any]) -> bool:
    return isinstance(trade.get("timestamp"), int)


def _progress_task(progress: Progress, description: str, total: int) -> Any:
    if total <= 0:
        return None
    return progress.add_task(description, total=total)
