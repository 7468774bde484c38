"""The `zi_crypto` family's matching engine: one symbol's limit order book with price-time priority.

Prices are integer ticks and sizes integer lots, so matching and netting are exact. The engine
writes the venue's public record of what happened: an L3 feed of resting orders (`new`,
`cancel`, `modify`; no `fill` rows, as on venues whose order feed leaves executions to the
trade feed) and trades that name buyer, seller and the taker side. Taker orders never rest and
never appear in the order feed. Self-trade prevention is the venue's "expire maker": a taker
that reaches its own resting order cancels it (a `cancel` row) unless the taker opted out, as a
wash trader or a sloppy bot does. A spoofer's order is "skittish": it wins the race against a
sweep that reaches it and is cancelled at the sweep's timestamp, never filled.

Within one microsecond the feed is ordered as the engine acted: order events stamped with a
trade's ts (an expired own order, an iceberg refill) happened before or alongside that
trade's sweep, so a book rebuilt from the feed applies order events before trades of equal ts.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field

BUY, SELL = 0, 1
NEW, CANCEL, MODIFY = 0, 1, 2
ACTIONS = ("new", "cancel", "modify")
SIDES = ("buy", "sell")


@dataclass
class Order:
    """A resting order; `hidden` is an iceberg's undisplayed reserve, refilled `tip` at a time."""

    oid: int
    account: int
    side: int
    price: int
    lots: int
    hidden: int = 0
    tip: int = 0


@dataclass
class Tape:
    """Column lists of the feed the engine writes (converted to frames once, at the end)."""

    order_ts: list[int] = field(default_factory=list)
    order_id: list[int] = field(default_factory=list)
    order_account: list[int] = field(default_factory=list)
    order_side: list[int] = field(default_factory=list)
    order_price: list[int] = field(default_factory=list)
    order_lots: list[int] = field(default_factory=list)
    order_action: list[int] = field(default_factory=list)
    trade_ts: list[int] = field(default_factory=list)
    trade_price: list[int] = field(default_factory=list)
    trade_lots: list[int] = field(default_factory=list)
    trade_side: list[int] = field(default_factory=list)
    trade_buyer: list[int] = field(default_factory=list)
    trade_seller: list[int] = field(default_factory=list)
    trade_maker_oid: list[int] = field(default_factory=list)


class Book:
    """Price-time priority book of one symbol, writing every change to its `Tape`."""

    def __init__(self) -> None:
        self.tape = Tape()
        self.orders: dict[int, Order] = {}
        self.levels: tuple[dict[int, deque[int]], dict[int, deque[int]]] = ({}, {})
        self._heaps: tuple[list[int], list[int]] = ([], [])  # bids stored negated
        self._next_oid = 1
        self._last_us = -1
        self.refilled: dict[int, int] = {}
        """Iceberg chains: exhausted tip's order id -> the refill's order id."""
        self.news: dict[int, int] = {}
        self.cancels: dict[int, int] = {}
        """Orders placed and cancelled per account: the budget a market maker steers by."""
        self.filled: dict[int, int] = {}
        """Lots of each order id executed so far (kept after the order is gone)."""
        self.skittish: set[int] = set()
        """Orders whose owner pulls them the moment a sweep reaches them (a spoofer watching its bait)."""
        self.fled: dict[int, int] = {}
        """Skittish order id -> µs at which a sweep made its owner pull it."""

    # -- time and the touch -------------------------------------------------------------
    def stamp(self, t: float) -> int:
        """A strictly increasing µs stamp for one engine action at time `t` (seconds)."""
        us = max(int(t * 1_000_000), self._last_us + 1)
        self._last_us = us
        return us

    def best(self, side: int) -> int | None:
        """Best price in ticks on `side` (BUY = best bid), None when that side is empty."""
        heap, level = self._heaps[side], self.levels[side]
        while heap:
            price = -heap[0] if side == BUY else heap[0]
            if level.get(price):
                return price
            heapq.heappop(heap)
            level.pop(price, None)
        return None

    def front(self, side: int) -> Order | None:
        """The order first in line at the best price of `side`."""
        price = self.best(side)
        return None if price is None else self.orders[self.levels[side][price][0]]

    # -- resting orders -----------------------------------------------------------------
    def post(self, t: float, account: int, side: int, price: int, lots: int, hidden: int = 0) -> int:
        """Rest a passive limit order (never crossing the opposite best) and return its id."""
        opposite = self.best(1 - side)
        if opposite is not None and (price >= opposite if side == BUY else price <= opposite):
            raise ValueError("post() takes passive orders only; use take() to cross")
        if lots <= 0 or price <= 0:
            raise ValueError("an order needs positive lots and price")
        return self._rest(self.stamp(t), account, side, price, lots, hidden, lots if hidden else 0)

    def cancel(self, t: float, oid: int) -> bool:
        """Pull a resting order; False when it is already gone (filled or cancelled)."""
        order = self.orders.get(oid)
        if order is None:
            return False
        self._unlink(order)
        self._record_order(self.stamp(t), order, CANCEL)
        self.cancels[order.account] = self.cancels.get(order.account, 0) + 1
        return True

    def modify(self, t: float, oid: int, lots: int) -> bool:
        """Reduce a resting order's displayed size to `lots`, keeping its place in line."""
        order = self.orders.get(oid)
        if order is None or not 0 < lots < order.lots:
            return False
        order.lots = lots
        self._record_order(self.stamp(t), order, MODIFY)
        return True

    # -- taking -------------------------------------------------------------------------
    def take(
        self, t: float, account: int, side: int, lots: int, limit: int | None = None, allow_self: bool = False
    ) -> list[int]:
        """Sweep the opposite side for up to `lots` (an IOC order, limit price optional).

        Returns the indices of the trades written. Own resting orders met on the way are
        expired (cancelled) unless `allow_self`, in which case they trade as self-trades;
        skittish orders of others are pulled by their owner just ahead of the sweep.
        """
        us = self.stamp(t)
        opposite = 1 - side
        made: list[int] = []
        while lots > 0:
            price = self.best(opposite)
            if price is None or (limit is not None and (price > limit if side == BUY else price < limit)):
                break
            order = self.orders[self.levels[opposite][price][0]]
            if order.oid in self.skittish and order.account != account:
                self.fled[order.oid] = us
            if order.oid in self.fled or (order.account == account and not allow_self):
                self._unlink(order)
                self._record_order(us, order, CANCEL)
                self.cancels[order.account] = self.cancels.get(order.account, 0) + 1
                continue
            done = min(lots, order.lots)
            lots -= done
            made.append(self._trade(us, order, account, side, done))
        return made

    # -- internals ----------------------------------------------------------------------
    def _rest(self, us: int, account: int, side: int, price: int, lots: int, hidden: int, tip: int) -> int:
        oid = self._next_oid
        self._next_oid += 1
        order = Order(oid, account, side, price, lots, hidden, tip)
        self.orders[oid] = order
        level = self.levels[side].get(price)
        if level is None:
            level = self.levels[side][price] = deque()
            heapq.heappush(self._heaps[side], -price if side == BUY else price)
        level.append(oid)
        self._record_order(us, order, NEW)
        self.news[account] = self.news.get(account, 0) + 1
        return oid

    def _unlink(self, order: Order) -> None:
        del self.orders[order.oid]
        level = self.levels[order.side][order.price]
        level.remove(order.oid)

    def _trade(self, us: int, maker: Order, taker: int, side: int, lots: int) -> int:
        tape = self.tape
        tape.trade_ts.append(us)
        tape.trade_price.append(maker.price)
        tape.trade_lots.append(lots)
        tape.trade_side.append(side)
        tape.trade_buyer.append(taker if side == BUY else maker.account)
        tape.trade_seller.append(maker.account if side == BUY else taker)
        tape.trade_maker_oid.append(maker.oid)
        self.filled[maker.oid] = self.filled.get(maker.oid, 0) + lots
        maker.lots -= lots
        if maker.lots == 0:
            self._unlink(maker)
            if maker.hidden > 0:
                refill = min(maker.tip, maker.hidden)
                new_oid = self._rest(
                    us, maker.account, maker.side, maker.price, refill, maker.hidden - refill, maker.tip
                )
                self.refilled[maker.oid] = new_oid
        return len(tape.trade_ts) - 1

    def _record_order(self, us: int, order: Order, action: int) -> None:
        tape = self.tape
        tape.order_ts.append(us)
        tape.order_id.append(order.oid)
        tape.order_account.append(order.account)
        tape.order_side.append(order.side)
        tape.order_price.append(order.price)
        tape.order_lots.append(order.lots)
        tape.order_action.append(action)

    def iceberg_current(self, oid: int) -> int:
        """The order id now displaying an iceberg first posted as `oid`."""
        while oid in self.refilled:
            oid = self.refilled[oid]
        return oid
