"""A price-time-priority limit order book that writes an L3 feed and a trade tape as it matches.

Prices are integer ticks and quantities integer lots, so matching and netting are exact; the
family converts both to decimals only when it builds the frames. Every order's life is in the
feed: ``new`` (also for marketable orders, at their limit price), one ``fill`` per execution for
the resting *and* the aggressing order, and ``cancel`` for what is withdrawn (or the unfilled
rest of an immediate-or-cancel order), the cancel carrying the quantity removed.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable

BUY, SELL = 1, -1
NEW, CANCEL, FILL = 0, 1, 2
HONEST = -1
"""Tag of an order that belongs to no manipulation episode."""

# An order is a mutable list, for speed: [id, account, side, price, remaining, tag].
ID, ACCOUNT, SIDE, PRICE, REMAINING, TAG = range(6)


class Book:
    """One symbol's book. `now` (µs) is set by the caller before each action.

    Cancelled orders are removed lazily: they stay in their level's queue with nothing
    remaining and are skipped when the queue is matched or measured.
    """

    def __init__(self, on_done: Callable[[list], None]) -> None:
        self.now = 0
        self.levels: dict[int, dict[int, deque[list]]] = {BUY: {}, SELL: {}}
        self.sizes: dict[int, dict[int, int]] = {BUY: {}, SELL: {}}
        self.heaps: dict[int, list[int]] = {BUY: [], SELL: []}  # min-heaps of -price * side
        self.live: dict[int, list] = {}
        self.events: list[tuple] = []  # (ts, order id, account, side, price, lots, action, tag)
        self.trades: list[tuple] = []  # (ts, price, lots, taker side, buyer, seller, maker tag, taker tag)
        self._next_id = 1
        self._on_done = on_done  # told when a resting order is completely filled

    # --- reading the book -------------------------------------------------------------
    def best(self, side: int) -> int | None:
        """Best price (ticks) on `side`, or None when that side is empty."""
        heap, sizes = self.heaps[side], self.sizes[side]
        while heap:
            price = -heap[0] * side
            if sizes.get(price, 0) > 0:
                return price
            heapq.heappop(heap)
            sizes.pop(price, None)
            self.levels[side].pop(price, None)
        return None

    def quotes(self, fallback: int) -> tuple[int, int]:
        """(best bid, best ask); an empty side is reported one tick beyond `fallback`."""
        bid, ask = self.best(BUY), self.best(SELL)
        bid = fallback - 1 if bid is None else bid
        ask = max(bid + 1, fallback + 1) if ask is None else ask
        return bid, ask

    def depth(self, side: int, price: int) -> int:
        """Lots resting at one price on one side."""
        return self.sizes[side].get(price, 0)

    def near(self, side: int, touch: int, ticks: int) -> int:
        """Lots resting on `side` within `ticks` ticks behind its best price `touch`."""
        sizes = self.sizes[side]
        return sum(sizes.get(touch - side * k, 0) for k in range(ticks))

    def ahead(self, order_id: int) -> int | None:
        """Lots queued in front of a live order at its price, None when the order is gone."""
        order = self.live.get(order_id)
        if order is None:
            return None
        total = 0
        for other in self.levels[order[SIDE]][order[PRICE]]:
            if other is order:
                return total
            total += other[REMAINING]
        return total

    # --- acting on the book ----------------------------------------------------------
    def submit(
        self,
        account: int,
        side: int,
        price: int,
        lots: int,
        tag: int = HONEST,
        ioc: bool = False,
        stp: bool = False,
    ) -> int:
        """Enter a limit order; it trades against the other side first, then rests (or, if
        `ioc`, its rest is cancelled). With self-trade prevention (`stp`) an order that would
        meet its own account's resting order stops there and its rest is cancelled, as the
        "expire taker" mode of real venues does. Returns the order id."""
        order = [self._next_id, account, side, price, lots, tag]
        self._next_id += 1
        self.events.append((self.now, order[ID], account, side, price, lots, NEW, tag))
        prevented = self._match(order, stp)
        if order[REMAINING] > 0:
            if ioc or prevented:
                self.events.append((self.now, order[ID], account, side, price, order[REMAINING], CANCEL, tag))
            else:
                self._rest(order)
        return order[ID]

    def cancel(self, order_id: int) -> int:
        """Withdraw what is left of a live order; returns the lots removed (0 if it was gone)."""
        order = self.live.pop(order_id, None)
        if order is None:
            return 0
        lots, side, price = order[REMAINING], order[SIDE], order[PRICE]
        self.events.append((self.now, order_id, order[ACCOUNT], side, price, lots, CANCEL, order[TAG]))
        order[REMAINING] = 0
        left = self.sizes[side][price] - lots
        self.sizes[side][price] = left
        if left == 0:
            del self.sizes[side][price]
            del self.levels[side][price]
        return lots

    def order(self, order_id: int) -> list | None:
        """The live order (read only), or None once filled or cancelled."""
        return self.live.get(order_id)

    # --- internals --------------------------------------------------------------------
    def _rest(self, order: list) -> None:
        side, price = order[SIDE], order[PRICE]
        sizes = self.sizes[side]
        if price not in sizes:
            sizes[price] = 0
            self.levels[side][price] = deque()
            heapq.heappush(self.heaps[side], -price * side)
        sizes[price] += order[REMAINING]
        self.levels[side][price].append(order)
        self.live[order[ID]] = order

    def _match(self, taker: list, stp: bool) -> bool:
        """Trade `taker` against the other side; True if self-trade prevention stopped it."""
        side = taker[SIDE]
        other = -side
        while taker[REMAINING] > 0:
            price = self.best(other)
            if price is None or (price - taker[PRICE]) * side > 0:
                return False
            queue = self.levels[other][price]
            while queue and taker[REMAINING] > 0:
                maker = queue[0]
                if maker[REMAINING] == 0:
                    queue.popleft()
                    continue
                if stp and maker[ACCOUNT] == taker[ACCOUNT]:
                    return True
                self._execute(maker, taker, price)
                if maker[REMAINING] == 0:
                    queue.popleft()
                    del self.live[maker[ID]]
                    self._on_done(maker)
            if self.sizes[other].get(price, 0) == 0:
                self.sizes[other].pop(price, None)
                self.levels[other].pop(price, None)
        return False

    def _execute(self, maker: list, taker: list, price: int) -> None:
        lots = min(maker[REMAINING], taker[REMAINING])
        maker[REMAINING] -= lots
        taker[REMAINING] -= lots
        self.sizes[maker[SIDE]][price] -= lots
        now, events = self.now, self.events
        events.append((now, maker[ID], maker[ACCOUNT], maker[SIDE], price, lots, FILL, maker[TAG]))
        events.append((now, taker[ID], taker[ACCOUNT], taker[SIDE], price, lots, FILL, taker[TAG]))
        buyer, seller = (taker, maker) if taker[SIDE] == BUY else (maker, taker)
        self.trades.append(
            (
                now,
                price,
                lots,
                taker[SIDE],
                buyer[ACCOUNT],
                seller[ACCOUNT],
                maker[TAG],
                taker[TAG],
                maker[ID],
                taker[ID],
            )
        )
