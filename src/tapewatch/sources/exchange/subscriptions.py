"""The live source's watch calls, and the venue's market status followed while it streams.

Symbols are split into connections of `streams_per_connection` and, within them, into
watch calls of the size ccxt accepts (`plan`). Only symbols trading now are subscribed.
A symbol that stops trading (BREAK, HALT, CANCEL_ONLY, delisted) otherwise just goes
quiet, and one that trades again would never come back, so the market list is re-read
every `markets_refresh_s` and at once when a watch fails on a symbol the venue does not
know (`recheck`): stopped symbols are unsubscribed, resumed ones subscribed again (the
source is told, since trades may have happened meanwhile); both are counted and logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import ccxt.async_support

from tapewatch.config import ExchangeSettings
from tapewatch.errors import InputError
from tapewatch.sources.exchange.connect import pin_to_connection, watch_call_limit
from tapewatch.sources.exchange.markets import is_trading, status_of

log = logging.getLogger(__name__)

UNWATCH_TIMEOUT_S = 10.0
"""How long an unsubscription may take: the connection it went out on may be gone already."""

Watch = Callable[[ccxt.async_support.Exchange, str, list[str], int], Coroutine[Any, Any, None]]
"""(exchange, kind, symbols, connection index) → a coroutine keeping that watch call subscribed."""
Spawn = Callable[[Coroutine[Any, Any, None]], "asyncio.Task[None]"]


@dataclass
class Call:
    """One watch call: the symbols it is responsible for, and the ones it is subscribed to now."""

    kind: str  # "trades" or "book"
    members: list[str]
    connection: int
    watching: list[str] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


class Subscriptions:
    """Which of a live source's symbols trade now, and the watch calls subscribed to them."""

    def __init__(
        self,
        settings: ExchangeSettings,
        symbols: list[str],
        *,
        book: bool,
        stats: MutableMapping[str, int],
        watch: Watch,
        spawn: Spawn,
        on_resumed: Callable[[list[str]], None],
    ) -> None:
        self.settings = settings
        self.venue = settings.exchange
        self.symbols = symbols
        self.book = book
        self.stats = stats  # the source's counters: symbols_halted, symbols_resumed
        self.recheck = asyncio.Event()  # set by a watch failing on a symbol: re-read the markets now
        self.trading: set[str] = set()
        self.calls: list[Call] = []
        self._watch, self._spawn, self._on_resumed = watch, spawn, on_resumed

    def check(self, exchange: ccxt.async_support.Exchange) -> None:
        """Unknown symbols are an error; symbols not trading now are watched from when they trade again,
        unless none of them trades (then there is nothing to watch: an error too)."""
        unknown = [symbol for symbol in self.symbols if symbol not in exchange.markets]
        if unknown:
            raise InputError(f"live source: {', '.join(unknown)} not listed on {self.venue}")
        halted = [s for s in self.symbols if not is_trading(exchange.markets[s])]
        described = ", ".join(f"{s} ({status_of(exchange.markets[s])})" for s in halted)
        if halted and len(halted) == len(self.symbols):
            raise InputError(f"live source: none of the symbols trades on {self.venue} now: {described}")
        if halted:
            log.warning("%s: not trading now, watched once they trade again: %s", self.venue, described)
        self.trading = set(self.symbols) - set(halted)

    def subscribe_all(self, exchange: ccxt.async_support.Exchange) -> None:
        """Plan every watch call and start those with a symbol trading now."""
        self.calls = self._plan(exchange)
        for call in self.calls:
            self._subscribe(exchange, call)

    async def follow(self, exchange: ccxt.async_support.Exchange) -> None:
        """Re-read the market list on a schedule, and at once when a watch fails on a symbol; runs until cancelled."""
        while True:
            try:
                await asyncio.wait_for(self.recheck.wait(), self.settings.markets_refresh_s)
            except TimeoutError:
                pass
            self.recheck.clear()
            await self._follow_status(exchange)

    def _plan(self, exchange: ccxt.async_support.Exchange) -> list[Call]:
        """Every watch call: its kind, its symbols and its connection index."""
        per_connection = self.settings.streams_per_connection
        per_call = watch_call_limit(exchange, per_connection)
        calls: list[Call] = []
        connection = 0
        for kind in ("trades", "book") if self.book else ("trades",):
            for first in range(0, len(self.symbols), per_connection):
                members = self.symbols[first : first + per_connection]
                calls.extend(
                    Call(kind, members[i : i + per_call], connection)
                    for i in range(0, len(members), per_call)
                )
                connection += 1
        return calls

    def _subscribe(self, exchange: ccxt.async_support.Exchange, call: Call) -> None:
        """Start watching the call's symbols that trade now (none: the call waits for a relisting)."""
        call.watching = [symbol for symbol in call.members if symbol in self.trading]
        call.task = None
        if call.watching:
            call.task = self._spawn(self._watch(exchange, call.kind, call.watching, call.connection))

    async def _follow_status(self, exchange: ccxt.async_support.Exchange) -> None:
        """Unsubscribe symbols that stopped trading, subscribe those trading again, and say so."""
        before = dict(exchange.markets or {})
        try:
            markets = await exchange.load_markets(reload=True)
        except ccxt.BaseError as exc:
            log.info("%s: markets not re-read (%s); symbol status unchanged", self.venue, exc)
            return
        for symbol in self.symbols:  # a delisted market stays known to ccxt, so it can be unsubscribed
            if symbol not in markets and symbol in before:
                markets[symbol] = {**before[symbol], "active": False, "info": {"status": "delisted"}}
        trading = {symbol for symbol in self.symbols if is_trading(markets.get(symbol))}
        stopped, resumed = self.trading - trading, trading - self.trading
        for symbol in sorted(stopped):
            self.stats["symbols_halted"] += 1
            log.warning("%s %s: %s, unsubscribed", self.venue, symbol, status_of(markets.get(symbol)))
        for symbol in sorted(resumed):
            self.stats["symbols_resumed"] += 1
            self._on_resumed([symbol])  # trades may have happened while unsubscribed
            log.warning("%s %s: trading again, subscribed", self.venue, symbol)
        self.trading = trading
        changed = stopped | resumed
        for call in self.calls:
            if changed & set(call.members):
                await self._resubscribe(exchange, call)

    async def _resubscribe(self, exchange: ccxt.async_support.Exchange, call: Call) -> None:
        """Restart one watch call on the symbols that trade now, unsubscribing those that stopped."""
        if call.task is not None:
            call.task.cancel()
            await asyncio.gather(call.task, return_exceptions=True)
        gone = [symbol for symbol in call.watching if symbol not in self.trading]
        if gone:
            pin_to_connection(exchange, call.kind, gone, call.connection)
            unwatch = (
                exchange.un_watch_trades_for_symbols
                if call.kind == "trades"
                else exchange.un_watch_order_book_for_symbols
            )
            try:
                await asyncio.wait_for(unwatch(gone), UNWATCH_TIMEOUT_S)
            except (ccxt.BaseError, TimeoutError) as exc:  # gone already, with its connection?
                log.info("%s %s: unsubscribing %s: %s", self.venue, call.kind, named(gone), exc)
        self._subscribe(exchange, call)


def named(symbols: list[str], most: int = 3) -> str:
    """Symbols for a log line: a watch call may hold 200."""
    more = f" and {len(symbols) - most} more" if len(symbols) > most else ""
    return ", ".join(symbols[:most]) + more
