"""The agent_venue matching engine: one symbol's continuous double auction with price-time priority.

Prices are integer ticks and sizes integer lots, so matching is exact. Every event the venue
publishes goes to a `Tape` as it happens: trades (taker side, buyer, seller) and the L3 feed of
resting orders (`new` when an order rests, `cancel` when it is pulled or expired by self-trade
prevention, `fill` when a resting order executes). Taker orders never rest, so they appear in the
trades only, as on venues whose L3 feed carries the book and not the order entry gateway.

Self-trade prevention is the venue's default ("expire maker": the resting order of the same
account is cancelled before the taker goes on); accounts in `stp_off` opted out, and their
orders can print against each other.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Callable

BUY, SELL = 1, -1
NEW, CANCEL, FILL = 0, 1, 2
TRADE_COLUMNS = ("ts", "price", "qty", "side", "buyer", "seller", "maker_ep", "taker_ep", "maker_oid")
ORDER_COLUMNS = ("ts", "oid", "account", "side", "price", "qty", "action", "episode")


class Order:
    """A resting order; `episode` ties it to an injected manipulation (-1 for honest flow)."""

    __slots__ = ("account", "episode", "oid", "price", "qty", "side")

    def __init__(self, oid: int, account: int, side: int, price: int, qty: int, episode: int) -> None:
        self.oid, self.account, self.side, self.price = oid, account, side, price
        self.qty, self.episode = qty, episode


class Tape:
    """Row tuples of everything the venue published, in publication order (columns: TRADE_COLUMNS,
    ORDER_COLUMNS)."""

    def __init__(self) -> None:
        self.trades: list[tuple[int, ...]] = []
        self.orders: list[tuple[int, ...]] = []
        self.volume = 0

    def order(self, ts: int, order: Order, qty: int, action: int) -> None:
        self.orders.append(
            (ts, order.oid, order.account, order.side, order.price, qty, action, order.episode)
        )

    def trade(
        self, ts: int, price: int, qty: int, side: int, taker: int, maker: Order, taker_ep: int
    ) -> None:
        buyer, seller = (taker, maker.account) if side == BUY else (maker.account, taker)
        self.trades.append((ts, price, qty, side, buyer, seller, maker.episode, taker_ep, maker.oid))
        self.volume += qty


class Book:
    """Both sides of one symbol's book; `on_fill(maker, qty, price, ts)` tells the owner of a resting
    order that it executed (market makers re-quote, icebergs refresh)."""

    def __init__(self, tape: Tape, stp_off: set[int], fills_in_feed: bool) -> None:
        self.tape, self.stp_off, self.fills_in_feed = tape, stp_off, fills_in_feed
        self.levels: dict[int, dict[int, list[Order]]] = {BUY: {}, SELL: {}}
        self.prices: dict[int, list[int]] = {BUY: [], SELL: []}  # ascending
        self.live: dict[int, Order] = {}
        self.next_oid = 1
        self.on_fill: dict[int, Callable[[Order, int, int, int], None]] = {}  # by account

    def best(self, side: int) -> int | None:
        """Best resting price of a side (highest bid, lowest ask), or None when it is empty."""
        prices = self.prices[side]
        if not prices:
            return None
        return prices[-1] if side == BUY else prices[0]

    def depth(self, side: int, levels: int) -> int:
        """Lots resting in the best `levels` price levels of a side (what a screen shows)."""
        prices = self.prices[side]
        chosen = prices[-levels:] if side == BUY else prices[:levels]
        book = self.levels[side]
        return sum(o.qty for p in chosen for o in book[p])

    def queue_ahead(self, order: Order) -> int:
        """Lots ahead of `order` at its price (0 when it is first in line)."""
        ahead = 0
        for other in self.levels[order.side].get(order.price, ()):
            if other is order:
                return ahead
            ahead += other.qty
        return ahead

    def place(
        self, ts: int, account: int, side: int, price: int, qty: int, episode: int = -1
    ) -> Order | None:
        """A post-only limit order: rests at `price`, or is rejected (None) when it would cross."""
        opposite = self.best(-side)
        if qty <= 0 or (opposite is not None and (price >= opposite if side == BUY else price <= opposite)):
            return None
        order = Order(self.next_oid, account, side, price, qty, episode)
        self.next_oid += 1
        level = self.levels[side].get(price)
        if level is None:
            self.levels[side][price] = [order]
            insort(self.prices[side], price)
        else:
            level.append(order)
        self.live[order.oid] = order
        self.tape.order(ts, order, qty, NEW)
        return order

    def cancel(self, ts: int, order: Order) -> None:
        """Pull a resting order (a no-op when it has already gone)."""
        if self.live.pop(order.oid, None) is None:
            return
        self._unlink(order)
        self.tape.order(ts, order, order.qty, CANCEL)

    def take(
        self, ts: int, account: int, side: int, qty: int, limit: int | None = None, episode: int = -1
    ) -> int:
        """An immediate-or-cancel taker order for `qty` lots up to price `limit` (None: market order).

        Walks the opposite side in price-time priority; returns the lots it executed.
        """
        done = 0
        book, prices = self.levels[-side], self.prices[-side]
        while done < qty and prices:
            price = prices[0] if side == BUY else prices[-1]
            if limit is not None and (price > limit if side == BUY else price < limit):
                break
            queue = book[price]
            while queue and done < qty:
                maker = queue[0]
                if maker.account == account and account not in self.stp_off:
                    self.cancel(ts, maker)  # venue self-trade prevention: expire the maker
                    if price not in book:
                        break
                    continue
                fill = min(qty - done, maker.qty)
                done += fill
                maker.qty -= fill
                self.tape.trade(ts, price, fill, side, account, maker, episode)
                if self.fills_in_feed:
                    self.tape.order(ts, maker, fill, FILL)
                if maker.qty == 0:
                    del self.live[maker.oid]
                    self._unlink(maker)
                callback = self.on_fill.get(maker.account)
                if callback is not None:
                    callback(maker, fill, price, ts)
            if price in book and not book[price]:
                self._drop_level(-side, price)
        return done

    def _unlink(self, order: Order) -> None:
        queue = self.levels[order.side].get(order.price)
        if queue is None:
            return
        queue.remove(order)
        if not queue:
            self._drop_level(order.side, order.price)

    def _drop_level(self, side: int, price: int) -> None:
        del self.levels[side][price]
        prices = self.prices[side]
        prices.remove(price)
