"""The event loop of one `zi_crypto` symbol: anonymous flow, scripted participants, reactions.

Three kinds of events meet here in time order: the anonymous flow drawn in bulk by
`zi_crypto_flow` (limit and market arrivals), order expiries (each anonymous order's
constant-hazard lifetime), and scripts: generators for market makers, bots and manipulators
that act on the book and yield how long to wait before acting again. One honest behaviour
lives in the loop itself: a large order resting near the touch draws, now and then, a market
order on its own side within a few seconds (traders read depth as demand); it is what makes
a spoof pay, and it answers honest large orders just the same.
"""

from __future__ import annotations

import heapq
from collections.abc import Generator
from itertools import count

import numpy as np

from tapewatch.sources.families.zi_crypto_book import BUY, SELL, Book
from tapewatch.sources.families.zi_crypto_flow import Flow, SymbolSpec

Script = Generator[float, None, None]
"""A participant: acts on `Market` when resumed and yields seconds to wait before its next turn."""

_EXPIRE, _SCRIPT, _REACT = 0, 1, 2
REACT_SIZE = 3.0
"""An order of this many typical sizes resting within `REACT_TICKS` of the touch may draw a reaction."""
REACT_TICKS = 10
REACT_PROBABILITY = 0.5


class Market:
    """One symbol's book plus the clock and queue that scripts act through."""

    def __init__(self, spec: SymbolSpec, seconds: float, rng: np.random.Generator, crowd: np.ndarray) -> None:
        self.spec = spec
        self.book = Book()
        self.seconds = seconds
        self.now = 0.0
        self.last_price = spec.price_ticks
        self._rng = rng
        self._crowd = crowd
        self._queue: list[tuple[float, int, int, object]] = []
        self._order = count()

    # -- what participants see ----------------------------------------------------------
    def touch(self) -> tuple[int | None, int | None]:
        return self.book.best(BUY), self.book.best(SELL)

    def mid(self) -> float:
        """Mid of the book, or the last trade price when a side is empty."""
        bid, ask = self.touch()
        return (bid + ask) / 2.0 if bid is not None and ask is not None else float(self.last_price)

    # -- what participants do -----------------------------------------------------------
    def post(self, account: int, side: int, price: int, lots: int, hidden: int = 0) -> int:
        oid = self.book.post(self.now, account, side, price, lots, hidden)
        self._maybe_react(side, price, lots)
        return oid

    def take(
        self, account: int, side: int, lots: int, limit: int | None = None, allow_self: bool = False
    ) -> list[int]:
        made = self.book.take(self.now, account, side, lots, limit, allow_self)
        if made:
            self.last_price = self.book.tape.trade_price[made[-1]]
        return made

    def cancel(self, oid: int) -> bool:
        return self.book.cancel(self.now, oid)

    def expire_after(self, seconds: float, oid: int) -> None:
        """Cancel `oid` after `seconds` unless it is gone by then."""
        heapq.heappush(self._queue, (self.now + seconds, next(self._order), _EXPIRE, oid))

    def start(self, at: float, script: Script) -> None:
        heapq.heappush(self._queue, (at, next(self._order), _SCRIPT, script))

    def passive_price(self, side: int, behind: int) -> int:
        """A price `behind` ticks behind `side`'s best that cannot cross the other side."""
        bid, ask = self.touch()
        own, other = (bid, ask) if side == BUY else (ask, bid)
        step = -1 if side == BUY else 1
        if own is None:
            anchor = other + step * self.spec.spread_ticks // 2 if other is not None else self.last_price
            own = anchor
        price = own + step * behind
        if other is not None:
            price = min(price, other - 1) if side == BUY else max(price, other + 1)
        return max(price, 1)

    # -- the loop -----------------------------------------------------------------------
    def run(self, flow: Flow) -> None:
        """Play the flow and every started script up to `seconds`."""
        queue = self._queue
        columns = zip(
            flow.t.tolist(),
            flow.limit.tolist(),
            flow.side.tolist(),
            flow.lots.tolist(),
            flow.account.tolist(),
            flow.inside.tolist(),
            flow.spot.tolist(),
            flow.behind.tolist(),
            flow.lifetime.tolist(),
            strict=True,
        )
        for t, limit, side, lots, account, inside, spot, behind, lifetime in columns:
            while queue and queue[0][0] <= t:
                self._dispatch(*heapq.heappop(queue))
            self.now = t
            if limit:
                oid = self.post(account, side, self._anonymous_price(side, inside, spot, behind), lots)
                self.expire_after(lifetime, oid)
            else:
                self.take(account, side, lots)
        while queue and queue[0][0] <= self.seconds:
            self._dispatch(*heapq.heappop(queue))

    def _dispatch(self, t: float, _: int, kind: int, payload: object) -> None:
        self.now = t
        if kind == _EXPIRE:
            self._expire(payload)  # type: ignore[arg-type]
        elif kind == _SCRIPT:
            script: Script = payload  # type: ignore[assignment]
            try:
                wait = next(script)
            except StopIteration:
                return
            heapq.heappush(self._queue, (t + wait, next(self._order), _SCRIPT, script))
        else:
            side, lots, account = payload  # type: ignore[misc]
            self.take(account, side, lots)

    def _expire(self, oid: int) -> None:
        """Constant-hazard cancellation; one in twenty instead halves the order and waits again."""
        order = self.book.orders.get(oid)
        if order is None:
            return
        if self._rng.random() < 0.05 and order.lots > 1:
            self.book.modify(self.now, oid, order.lots // 2)
            self.expire_after(float(self._rng.exponential(self.spec.lifetime_s)), oid)
        else:
            self.book.cancel(self.now, oid)

    def _anonymous_price(self, side: int, inside: bool, spot: float, behind: int) -> int:
        """Inside the spread at `spot` of it, or `behind` ticks beyond half a typical spread from the mid."""
        bid, ask = self.touch()
        if inside and bid is not None and ask is not None and ask - bid >= 2:
            step = int(spot * (ask - bid - 1))
            return bid + 1 + step if side == BUY else ask - 1 - step
        half = self.spec.spread_ticks / 2.0
        mid = self.mid()
        price = int(np.floor(mid - half)) - behind if side == BUY else int(np.ceil(mid + half)) + behind
        if side == BUY and ask is not None:
            price = min(price, ask - 1)
        elif side == SELL and bid is not None:
            price = max(price, bid + 1)
        return max(price, 1)

    def _maybe_react(self, side: int, price: int, lots: int) -> None:
        """Maybe schedule a market order on `side` after a large order near the touch."""
        typical = self.spec.typical_lots
        if lots < REACT_SIZE * typical:
            return
        best = self.book.best(side)
        if best is None or abs(best - price) > REACT_TICKS or self._rng.random() >= REACT_PROBABILITY:
            return
        size = max(1, int(typical * self._rng.uniform(0.3, 1.5)))
        account = int(self._crowd[self._rng.integers(self._crowd.size)])
        delay = float(self._rng.uniform(0.2, 2.5))
        heapq.heappush(self._queue, (self.now + delay, next(self._order), _REACT, (side, size, account)))
