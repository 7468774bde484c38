"""ccxt's live order books → L2 level updates (the new total at each price that changed; 0 removes it).

ccxt keeps each book whole: it takes the REST snapshot, applies the venue's deltas
in sequence and starts over after a desync or reconnect. Comparing the book with
the one last handed on yields exactly the level changes, whatever the venue's delta
format, and a fresh snapshot after a reconnect comes out as the levels that moved
while the stream was down.
"""

from __future__ import annotations

from typing import Any

Level = tuple[int, str, str, float, float]
"""(ts in epoch µs, symbol, side "bid"/"ask", price, new amount)."""


class BookDiffer:
    """Remembers the last book handed on per symbol and reports what changed since."""

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
            out.extend((ts, symbol, side, price, 0.0) for price in before if price not in now)
            self._last[(symbol, side)] = now
        return out
