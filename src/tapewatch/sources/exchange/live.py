"""Live trades (and L2 book updates) of many symbols over ccxt.pro WebSockets, as small normalised batches.

Symbols are split into watch calls and followed as they stop and resume trading by
`subscriptions.py`. Each call runs in its own task that re-subscribes after a dropped
connection, backing off exponentially from `reconnect_initial_s` to `reconnect_max_s`;
a call that keeps failing with the same error (not a network one) is given up after
`_GIVE_UP` tries, with one line. The tap (see `tap.py`) reports every
frame and every parsed update the moment ccxt produces it; the batch loop turns
them into records: trades already seen are dropped, late ones counted, and a gap
in a symbol's trade ids (a reconnect, a restart after the lake's last trade) is
refilled over REST (`refill.py`) while that symbol's newer trades wait, so each symbol's trades
come out in order and exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any

import ccxt.async_support
import polars as pl

from tapewatch.config import ExchangeSettings
from tapewatch.epoch import micros_of
from tapewatch.errors import InputError
from tapewatch.io.aggregates import last_number
from tapewatch.io.deadletter import letter
from tapewatch.io.lake import Lake
from tapewatch.io.symbols import canonical_symbol_of
from tapewatch.sources.exchange.books import BookDiffer, book_depth
from tapewatch.sources.exchange.capabilities import facts_of
from tapewatch.sources.exchange.connect import load_markets, make_exchange, pin_to_connection
from tapewatch.sources.exchange.normalise import TradeRow, book_frame, normalise_trades, trades_frame
from tapewatch.sources.exchange.ratelimit import VenueBanned
from tapewatch.sources.exchange.refill import ATTEMPTS, refill
from tapewatch.sources.exchange.sequence import Gap, TradeSequence, Verdict
from tapewatch.sources.exchange.subscriptions import Subscriptions, named
from tapewatch.sources.exchange.summary import iso_micros
from tapewatch.sources.exchange.tap import install_tap

log = logging.getLogger(__name__)

STAT_KEYS = (
    "messages",  # WebSocket frames received, of any kind
    "trades",  # trades handed on (live and refilled)
    "duplicates",  # trades dropped because their id was already seen
    "out_of_order",  # trades older than one already handed on (kept)
    "gaps_backfilled",  # gaps refilled over REST
    "gap_trades",  # trades those refills recovered
    "gaps_failed",  # gaps no REST refill closed (failed or not verified): bounds in `unrepaired`
    "reconnects",  # connections re-opened after a drop
    "malformed",  # frames or trades set aside with a reason
    "symbols_halted",  # symbols unsubscribed because they stopped trading (BREAK, HALT, delisted)
    "symbols_resumed",  # symbols subscribed again because they trade again
    "watches_failed",  # watch calls given up after the same error again and again
)
_GIVE_UP = 5
"""A watch call failing this many times in a row with the same (non-network) error is given up."""


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
        self._depth = book_depth(self.venue, settings.book_levels)
        self._status = Subscriptions(
            settings,
            self.symbols,
            book=book,
            stats=self.stats,
            watch=self._watch,
            spawn=self._spawn,
            on_resumed=self._suspect,
        )
        self._inbox: list[dict[str, Any]] = []
        self._breaks: list[tuple[int, list[str]]] = []  # (inbox position, symbols whose stream broke there)
        self._books: dict[str, tuple[Any, float]] = {}
        self._rejected: list[dict] = []
        self._fills: list[tuple[str, list[TradeRow]]] = []
        self.unrepaired: list[tuple[str, Gap]] = []  # (symbol, what is still missing), gaps no refill closed
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
            self._status.check(exchange)
            self._seed()
            self._status.subscribe_all(exchange)
            self._spawn(self._status.follow(exchange))
            while True:
                await self._ready.wait()
                if self._first_pending is not None:
                    await asyncio.sleep(max(0.0, self._first_pending + window - time.time()))
                if self._failure is not None:  # checked after the wait: it may have come during it
                    raise self._failure
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

    async def _watch(
        self, exchange: ccxt.async_support.Exchange, kind: str, symbols: list[str], connection: int
    ) -> None:
        """Keep one watch call subscribed, backing off exponentially while the connection keeps failing.

        Network errors (a dropped connection, a book desync) are retried for as long as they last.
        Any other error is a WARNING the first time; the same one `_GIVE_UP` times in a row ends
        the call with one ERROR line, since retrying cannot fix it (a depth the venue refuses, a
        market it no longer knows). During a REST ban (book snapshots) the call waits for its end.
        """
        pin_to_connection(exchange, kind, symbols, connection)
        initial, ceiling = self.settings.reconnect_initial_s, self.settings.reconnect_max_s
        delay = initial
        last, repeats = "", 0
        while True:
            try:
                if kind == "trades":
                    await exchange.watch_trades_for_symbols(symbols)
                else:
                    await exchange.watch_order_book_for_symbols(symbols, self._depth)
                delay, last, repeats = initial, "", 0
            except VenueBanned as exc:
                await asyncio.sleep(max(exc.until - time.time(), initial))
            except ccxt.BaseError as exc:
                if kind == "trades":
                    self._suspect(symbols)
                if isinstance(exc, ccxt.BadSymbol):
                    self._status.recheck.set()  # a symbol the venue does not know (any more): re-read its markets
                repeats = repeats + 1 if str(exc) == last else 1
                last = str(exc)
                network = isinstance(exc, ccxt.NetworkError)
                where = f"{self.venue} {kind} {named(symbols)} (connection {connection})"
                if not network and repeats >= _GIVE_UP:
                    self.stats["watches_failed"] += 1
                    log.error("%s: given up after %d failures in a row: %s", where, repeats, exc)
                    return
                level = logging.INFO if network else logging.WARNING if repeats == 1 else logging.DEBUG
                log.log(level, "%s: %s; retrying in %.2fs", where, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, ceiling)

    def _seed(self) -> None:
        """Start each symbol's sequence from the lake's last stored trade, if there is a lake."""
        ids_model = facts_of(self.venue).ids
        for symbol in self.symbols:
            sequence = TradeSequence(self.settings.dedup_memory, ids=ids_model)
            if self.lake is not None:
                last = self.lake.high_water("trades", self.venue, symbol)
                if last is not None:
                    tail = self.lake.read("trades", venue=self.venue, symbol=symbol, start=last)
                    ids = [i for i in tail["trade_id"].to_list() if i]
                    numbers = [n for n in map(last_number, ids) if n is not None]  # OKX: "2-4" ends at 4
                    sequence = TradeSequence(
                        self.settings.dedup_memory,
                        micros_of(last),
                        max(numbers) if numbers else None,
                        ids=ids_model,
                    )
                    for trade_id in ids:
                        sequence.remember(trade_id)
                    sequence.suspect = True  # a restart is a reconnect: what happened since is unknown
            self._sequences[symbol] = sequence

    def _drain(self, exchange: ccxt.async_support.Exchange) -> SourceBatch | None:
        """Turn everything reported since the last batch into one batch (None if nothing came)."""
        inbox, self._inbox = self._inbox, []
        breaks, self._breaks = self._breaks, []
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
        start = 0
        for end, broken in [*breaks, (len(inbox), [])]:
            checked = normalise_trades(inbox[start:end], source=f"{self.venue}:ws", symbols=self._wanted)
            self.stats["malformed"] += len(checked.rejected)
            rejected.extend(checked.rejected)
            for row in checked.rows:
                self._admit(exchange, row, out)
            for symbol in broken:
                self._sequences[symbol].suspect = True
            start = end
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
        verdict, gap = self._sequences[row.symbol].admit(row.trade_id, row.ts, row.count)
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
        """Refill a gap over REST (`refill`) while the symbol's newer trades wait.

        What is still missing after the last attempt is kept in `unrepaired` with its
        bounds, counted, logged and set aside as a dead letter; the trades that were found
        are handed on all the same.
        """
        done = await refill(exchange, self.settings, symbol, gap)
        self.stats["malformed"] += len(done.rejected)
        self._rejected.extend(done.rejected)
        if done.left is None:
            self.stats["gaps_backfilled"] += 1
        else:
            self._unrepaired_gap(
                symbol, done.left, f"gap not refilled after {ATTEMPTS} attempts: {done.reason}"
            )
        sequence = self._sequences[symbol]
        fresh = [row for row in sorted(done.rows, key=lambda r: r.ts) if sequence.remember(row.trade_id)]
        self.stats["gap_trades"] += len(fresh)
        self._fills.append((symbol, fresh))
        self._wake(time.time())

    def _suspect(self, symbols: list[str]) -> None:
        """Note that these symbols' streams broke now: the next trade after this point opens a gap.

        Noted at its place in the inbox, not on the sequence at once: trades received before
        the break may still wait there, and admitting them must not clear the suspicion.
        """
        self._breaks.append((len(self._inbox), list(symbols)))

    def _unrepaired_gap(self, symbol: str, gap: Gap, reason: str) -> None:
        """Keep, count, log and set aside a gap no refill closed."""
        self.stats["gaps_failed"] += 1
        self.unrepaired.append((symbol, gap))
        ids = f", ids {gap.after_id}–{gap.before_id} exclusive" if gap.numbered else ""
        log.warning(
            "%s %s: trades missing from %s to %s%s; %s",
            self.venue,
            symbol,
            iso_micros(gap.after_ts),
            iso_micros(gap.before_ts),
            ids,
            reason,
        )
        self._rejected.append(letter(f"{self.venue}:rest", reason, {"symbol": symbol, **vars(gap)}))

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

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._failure = task.exception()  # a bug, not a network problem: end the stream with it
            self._ready.set()
