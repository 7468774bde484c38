"""ccxt's live order books → L2 level updates (the new total at each price that changed; 0 removes it).

ccxt keeps each book whole: it takes the REST snapshot, applies the venue's deltas
in sequence and starts over after a desync or reconnect. Comparing the book with
the one last handed on yields exactly the level changes, whatever the venue's delta
format, and a fresh snapshot after a reconnect comes out as the levels that moved
while the stream was down.

Only the top `levels` of each side are compared. A level that drops out of that window
because better levels moved in still rests in the book, so it is not written as
removed; it is forgotten, and written again (with its amount then) if it comes back.
A reader rebuilding the book from these records therefore keeps only its top `levels`
per side: a level beyond them may have gone unseen.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Level = tuple[int, str, str, float, float]
"""(ts in epoch µs, symbol, side "bid"/"ask", price, new amount)."""

DEPTHS: dict[str, tuple[int, ...]] = {
    # REST snapshot limits of ccxt's diff-depth book (the WebSocket itself has no depth);
    # Binance's weight rises at 100, 500, 1000 and 5000 levels
    "binance": (5, 10, 20, 50, 100, 500, 1000, 5000),
    "bybit": (1, 50, 200, 1000),  # ccxt.pro bybit, spot: raises BadRequest for anything else
    "kraken": (10, 25, 100, 500, 1000),  # ccxt.pro kraken: NotSupported otherwise
    "kucoin": (5, 20, 50, 100),
    "htx": (5, 20, 150, 400),
    "bitfinex": (25, 100),
    "okx": (1, 5, 400),  # bbo-tbt, books5, books (400 levels); books50-l2-tbt needs a key
}
"""Book depths each venue's ccxt.pro `watchOrderBook` accepts (read from ccxt 4.5's code), smallest first."""


def book_depth(venue: str, wanted: int) -> int:
    """The depth to ask the venue for: the smallest it accepts that holds `wanted` levels.

    A venue whose deepest book is shallower than `wanted` gets its deepest (logged once
    by the caller's start-up); a venue not in `DEPTHS` gets `wanted` as is.
    """
    allowed = DEPTHS.get(venue)
    if not allowed:
        return wanted
    deeper = [depth for depth in allowed if depth >= wanted]
    if not deeper:
        log.warning("%s: books hold at most %d levels; %d asked for", venue, allowed[-1], wanted)
    return deeper[0] if deeper else allowed[-1]


class BookDiffer:
    """Remembers the last book window handed on per symbol and reports what changed since."""

    def __init__(self, levels: int) -> None:
        self.levels = levels
        self._last: dict[tuple[str, str], dict[float, float]] = {}

    def changes(self, symbol: str, book: Any, arrived: float) -> list[Level]:
        """Level updates between the last book of `symbol` and this one (top `levels` per side)."""
        stamp = book.get("timestamp")
        ts = int(stamp) * 1000 if isinstance(stamp, int) else int(arrived * 1_000_000)
        out: list[Level] = []
        for side, key in (("bid", "bids"), ("ask", "asks")):
            now = {float(price): float(amount) for price, amount, *_ in list(book[key])[: self.levels]}
            before = self._last.get((symbol, side), {})
            out.extend(
                (ts, symbol, side, price, amount)
                for price, amount in now.items()
                if before.get(price) != amount
            )
            inside = self._inside(side, now)
            out.extend(
                (ts, symbol, side, price, 0.0) for price in before if price not in now and inside(price)
            )
            self._last[(symbol, side)] = now
        return out

    def _inside(self, side: str, window: dict[float, float]) -> Callable[[float], bool]:
        """Whether a vanished price lay inside the current window, so it really left the book.

        A window that is not full shows the whole side: anything missing from it is gone.
        Otherwise only prices at or better than the window's worst level are.
        """
        if len(window) < self.levels:
            return lambda price: True
        worst = min(window) if side == "bid" else max(window)
        if side == "bid":
            return lambda price: price >= worst
        return lambda price: price <= worst
