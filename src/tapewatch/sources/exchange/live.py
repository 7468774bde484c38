"""Live trades (and L2 book updates) of many symbols over ccxt.pro WebSockets, as small normalised batches.

Symbols are split into connections of `streams_per_connection` and, within them,
into watch calls of the size ccxt accepts. Each call runs in its own task that
re-subscribes after a dropped connection, backing off exponentially from
`reconnect_initial_s` to `reconnect_max_s`. The tap (see `tap.py`) reports every
frame and every parsed update the moment ccxt produces it; the batch loop turns
them into records: trades already seen are dropped, late ones counted, and a gap
in a symbol's trade ids (a reconnect, a restart after the lake's last trade) is
refilled over REST while that symbol's newer trades wait, so each symbol's trades
come out in order and exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import ccxt.async_support
import polars as pl

from tapewatch.config import ExchangeSettings
from tapewatch.errors import InputError
from tapewatch.io.deadletter import letter
from tapewatch.io.lake import Lake
from tapewatch.io.symbols import canonical_symbol_of
from tapewatch.sources.exchange.books import BookDiffer
from tapewatch.sources.exchange.connect import (
    load_markets,
    make_exchange,
    pin_to_connection,
    watch_call_limit,
)
from tapewatch.sources.exchange.normalise import TradeRow, book_frame, normalise_trades, trades_frame
from tapewatch.sources.exchange.paging import trade_pages
from tapewatch.sources.exchange.sequence import Gap, TradeSequence, Verdict
from tapewatch.sources.exchange.tap import install_tap

log = logging.getLogger(__name__)

STAT_KEYS = (
    "messages",  # WebSocket frames received, of any kind
    "trades",  # trades handed on (live and refilled)
    "duplicates",  # trades dropped because their id was already seen
    "out_of_order",  # trades older than one already handed on (kept)
    "gaps_backfilled",  # gaps refilled over REST
    "gap_trades",  # trades those refills recovered
    "gaps_failed",  # gaps whose REST refill failed
    "reconnects",  # connections re-opened after a drop
    "malformed",  # frames or trades set aside with a reason
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FILL_ATTEMPTS = 3


@dataclass
class SourceBatch:
    """What arrived since the last batch, normalised."""

    trades: pl.DataFrame  # TRADE_SCHEMA
    book: pl.DataFrame  # BOOK_SCHEMA (empty unless book updates were asked for)
    rejected: list[dict]  # dead letters (`io.deadletter.letter`): source, row, reason, record
    arrived_at: float  # time.time() when the newest message of this batch arrived


class ExchangeLiveSource:
    """One exchange's live trades for many symbols; iterate `batches()` until cancelled.

    With a `lake`, each symbol resumes from its last stored trade: the first live
    trade's id shows what was missed while Tapewatch was down, and that stretch (up
    to `gap_backfill_max_s`) is refilled over REST. The source never writes the lake.
    """

    def __init__(
        self,
        settings: ExchangeSettings,
        symbols: list[str],
        *,
        book: bool = False,
        lake: Lake | None = None,
        exchange: ccxt.async_support.Exchange | None = None,
    ) -> None:
        if not symbols:
            raise InputError("live source: no symbols to watch (expected at least one, e.g. BTC/USDT)")
        self.settings = settings
        self.symbols = list(
            dict.fromkeys(canonical_symbol_of(symbol, settings.exchange) for symbol in symbols)
        )
        self.book = book
        self.lake = lake
        self.venue = settings.exchange
        self.stats: dict[str, int] = dict.fromkeys(STAT_KEYS, 0)
        self._given_exchange = exchange
        self._wanted = set(self.symbols)
        self._sequences: dict[str, TradeSequence] = {}
        self._differ = BookDiffer(settings.book_levels)
        self._inbox: list[dict[str, Any]] = []
        self._books: dict[str, tuple[Any, float]] = {}
        self._rejected: list[dict] = []
        self._fills: list[tuple[str, list[TradeRow]]] = []
        self._filling: Counter[str] = Counter()
        self._held: dict[str, list[TradeRow]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._ready = asyncio.Event()
        self._first_pending: float | None = None
        self._newest = 0.0
        self._failure: BaseException | None = None

    # ---- what the tap reports --------------------------------------------------------------

    def on_frame(self, arrived: float) -> None:
        """Count a frame."""
        self.stats["messages"] += 1

    def on_malformed(self, reason: str, raw: Any) -> None:
        """Set a frame aside with its reason."""
        self._reject(f"{self.venue}:ws", reason, raw)

    def on_trades(self, trades: list[dict[str, Any]], arrived: float) -> None:
        """Queue parsed trades for the next batch."""
        self._inbox.extend(trades)
        self._wake(arrived)

    def on_book(self, symbol: str, book: Any, arrived: float) -> None:
        """Mark a symbol's book as changed (only its latest state matters)."""
        if self.book and symbol in self._wanted:
            self._books[symbol] = (book, arrived)
            self._wake(arrived)

    def on_reconnect(self, url: str) -> None:
        """Count a re-opened connection."""
        self.stats["reconnects"] += 1

    # ---- the batch loop --------------------------------------------------------------------

    async def batches(self) -> AsyncIterator[SourceBatch]:
        """Yield batches as messages arrive, at most `live_batch_ms` after the first of each; runs until cancelled.

        To stop early from inside the loop, iterate `contextlib.aclosing(source.batches())`, so the
        connections close at once rather than whenever the generator is collected.
        """
        exchange = self._given_exchange or make_exchange(self.settings, pro=True)
        install_tap(exchange, self)
        window = self.settings.live_batch_ms / 1000
        try:
            await load_markets(exchange, self.venue)
            self._check_symbols(exchange)
            self._seed()
            for kind, symbols, connection in self._plan(exchange):
                self._spawn(self._watch(exchange, kind, symbols, connection))
            while True:
                await self._ready.wait()
                if self._failure is not None:
                    raise self._failure
                if self._first_pending is not None:
                    await asyncio.sleep(max(0.0, self._first_pending + window - time.time()))
                self._ready.clear()
                batch = self._drain(exchange)
                if batch is not None:
                    yield batch
        finally:
            for task in list(self._tasks):
                task.cancel()
            try:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            finally:
                if self._given_exchange is None:
                    await exchange.close()

    def _check_symbols(self, exchange: ccxt.async_support.Exchange) -> None:
        unknown = [symbol for symbol in self.symbols if symbol not in exchange.markets]
        if unknown:
            raise InputError(f"live source: {', '.join(unknown)} not listed on {self.venue}")

    def _plan(self, exchange: ccxt.async_support.Exchange) -> list[tuple[str, list[str], int]]:
        """(kind, symbols of one watch call, connection index) for every watch call."""
        per_connection = self.settings.streams_per_connection
        per_call = watch_call_limit(exchange, per_connection)
        calls: list[tuple[str, list[str], int]] = []
        connection = 0
        for kind in ("trades", "book") if self.book else ("trades",):
            for first in range(0, len(self.symbols), per_connection):
                members = self.symbols[first : first + per_connection]
                calls.extend(
                    (kind, members[i : i + per_call], connection) for i in range(0, len(members), per_call)
                )
                connection += 1
        return calls

    async def _watch(
        self, exchange: ccxt.async_support.Exchange, kind: str, symbols: list[str], connection: int
    ) -> None:
        """Keep one watch call subscribed, backing off exponentially while the connection keeps failing."""
        pin_to_connection(exchange, kind, symbols, connection)
        initial, ceiling = self.settings.reconnect_initial_s, self.settings.reconnect_max_s
        delay = initial
        while True:
            try:
                if kind == "trades":
                    await exchange.watch_trades_for_symbols(symbols)
                else:
                    await exchange.watch_order_book_for_symbols(symbols, self.settings.book_levels)
                delay = initial
            except ccxt.BaseError as exc:
                if kind == "trades":
                    for symbol in symbols:
                        self._sequences[symbol].suspect = True
                level = logging.INFO if isinstance(exc, ccxt.NetworkError) else logging.WARNING
                log.log(
                    level,
                    "%s %s connection %d: %s; retrying in %.2fs",
                    self.venue,
                    kind,
                    connection,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, ceiling)

    def _seed(self) -> None:
        """Start each symbol's sequence from the lake's last stored trade, if there is a lake."""
        for symbol in self.symbols:
            sequence = TradeSequence(self.settings.dedup_memory)
            if self.lake is not None:
                last = self.lake.high_water("trades", self.venue, symbol)
                if last is not None:
                    tail = self.lake.read("trades", venue=self.venue, symbol=symbol, start=last)
                    ids = [i for i in tail["trade_id"].to_list() if i]
                    numbers = [int(i) for i in ids if i.isdigit()]
                    sequence = TradeSequence(
                        self.settings.dedup_memory, _micros(last), max(numbers) if numbers else None
                    )
                    for trade_id in ids:
                        sequence.remember(trade_id)
                    sequence.suspect = True  # a restart is a reconnect: what happened since is unknown
            self._sequences[symbol] = sequence

    def _drain(self, exchange: ccxt.async_support.Exchange) -> SourceBatch | None:
        """Turn everything reported since the last batch into one batch (None if nothing came)."""
        inbox, self._inbox = self._inbox, []
        fills, self._fills = self._fills, []
        books, self._books = self._books, {}
        rejected, self._rejected = self._rejected, []
        self._first_pending = None
        out: list[TradeRow] = []
        for symbol, rows in fills:
            out.extend(rows)
            self._filling[symbol] -= 1
            if self._filling[symbol] <= 0:
                del self._filling[symbol]
                out.extend(self._held.pop(symbol, []))
        checked = normalise_trades(inbox, source=f"{self.venue}:ws", symbols=self._wanted)
        self.stats["malformed"] += len(checked.rejected)
        rejected.extend(checked.rejected)
        for row in checked.rows:
            self._admit(exchange, row, out)
        levels = [
            change
            for symbol, (book, at) in books.items()
            for change in self._differ.changes(symbol, book, at)
        ]
        if not (out or levels or rejected):
            return None
        self.stats["trades"] += len(out)
        trades = trades_frame(out, self.venue).sort("ts", maintain_order=True)
        return SourceBatch(trades, book_frame(levels, self.venue), rejected, self._newest)

    def _admit(self, exchange: ccxt.async_support.Exchange, row: TradeRow, out: list[TradeRow]) -> None:
        verdict, gap = self._sequences[row.symbol].admit(row.trade_id, row.ts)
        if verdict is Verdict.DUPLICATE:
            self.stats["duplicates"] += 1
            return
        if verdict is Verdict.LATE:
            self.stats["out_of_order"] += 1
        if gap is not None and self.settings.gap_backfill_max_s > 0:
            self._filling[row.symbol] += 1
            self._held.setdefault(row.symbol, [])
            self._spawn(self._fill(exchange, row.symbol, gap))
        if row.symbol in self._filling:
            self._held[row.symbol].append(row)
        else:
            out.append(row)

    async def _fill(self, exchange: ccxt.async_support.Exchange, symbol: str, gap: Gap) -> None:
        """Fetch a gap's trades over REST; the symbol's newer trades wait until this is done."""
        longest = int(self.settings.gap_backfill_max_s * 1_000_000)
        start = max(gap.after_ts, gap.before_ts - longest) // 1000
        end = gap.before_ts // 1000 + 1
        window = int(self.settings.backfill_window_s * 1000)
        sequence = self._sequences[symbol]
        rows: list[TradeRow] = []
        delay = self.settings.reconnect_initial_s
        for attempt in range(1, _FILL_ATTEMPTS + 1):
            try:
                pages = trade_pages(
                    exchange, symbol, start, end, limit=self.settings.backfill_page, window=window
                )
                async for page in pages:
                    checked = normalise_trades(page.records, source=f"{self.venue}:rest", symbols={symbol})
                    rows.extend(row for row in checked.rows if gap.wants(row.trade_id, row.ts))
                self.stats["gaps_backfilled"] += 1
                break
            except ccxt.BaseError as exc:
                rows = []
                if attempt == _FILL_ATTEMPTS:
                    self.stats["gaps_failed"] += 1
                    reason = f"gap not refilled after {attempt} attempts: {exc}"
                    record = {"symbol": symbol, **vars(gap)}
                    self._rejected.append(letter(f"{self.venue}:rest", reason, record))
                    break
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.reconnect_max_s)
        fresh = [row for row in sorted(rows, key=lambda r: r.ts) if sequence.remember(row.trade_id)]
        self.stats["gap_trades"] += len(fresh)
        self._fills.append((symbol, fresh))
        self._wake(time.time())

    # ---- plumbing --------------------------------------------------------------------------

    def _reject(self, source: str, reason: str, raw: Any) -> None:
        self.stats["malformed"] += 1
        self._rejected.append(letter(source, reason, raw))
        self._wake(time.time())

    def _wake(self, arrived: float) -> None:
        if self._first_pending is None:
            self._first_pending = arrived
        self._newest = max(self._newest, arrived)
        self._ready.set()

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._failure = task.exception()  # a bug, not a network problem: end the stream with it
            self._ready.set()


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)
