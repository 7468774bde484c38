"""One symbol's market, event by event: background flow, market makers and scripted participants.

Three things drive the book. The background orders drawn by `hawkes_lob_flow` (retail and
institutional traders, a few busy algorithms among them) are replayed in time order; market
makers requote on their own timers and after their quotes are hit; everything else (whales,
icebergs, honest pairs and the manipulation episodes) is a *script*: a generator that acts on
the book and yields how many µs to wait before it acts again.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Generator
from dataclasses import dataclass, field

import numpy as np

from tapewatch.sources.families.hawkes_lob_book import BUY, HONEST, ID, NEW, PRICE, SELL, Book
from tapewatch.sources.families.hawkes_lob_flow import US, Arrivals, Symbol

Script = Generator[int, None, object]
"""Acts on `Sim.book`, yields the µs to wait before it is resumed; may return a value to `yield from`."""

RESUME, EXPIRE, REQUOTE, REPLACE, REFILL = range(5)
NEAR_TICKS = 10
"""How far from the touch traders look when they weigh the displayed depth of the two sides."""


@dataclass
class MarketMaker:
    """A two-sided quoter: `levels` orders a side, `gap` ticks apart, around the latent value."""

    account: int
    half_spread: float
    lots: float
    levels: int
    gap: int
    interval_us: float  # mean time between requote rounds
    refresh: float  # chance an unchanged quote is still replaced (queue and size management)
    target: float  # cancel ratio the desk runs at; fresh quotes are refreshed only below it
    posted: int = 0
    cancelled: int = 0
    quotes: dict[tuple[int, int], int] = field(default_factory=dict)  # (side, level) -> order id


@dataclass
class Iceberg:
    """A large hidden order shown `slice_lots` at a time; each filled slice is replaced."""

    account: int
    side: int
    price: int
    hidden: int
    slice_lots: int
    until_us: int
    tag: int = HONEST


@dataclass
class Background:
    """Per-arrival draws for the background orders, as Python lists for fast indexing."""

    account: list[int]
    lots: list[int]
    depth: list[int]  # ticks behind the own-side best for a resting order
    inside: list[float]  # uniform: decides (and places) an order inside the spread
    informed: list[float]  # uniform: decides whether a market order follows the latent value
    stp: list[bool]  # sent with self-trade prevention
    life_us: list[int]


class Sim:
    """The event loop of one symbol; `now` is the current µs since the start."""

    def __init__(
        self,
        symbol: Symbol,
        rng: np.random.Generator,
        arrivals: Arrivals,
        background: Background,
        value: np.ndarray,
        makers: list[MarketMaker],
    ) -> None:
        self.symbol = symbol
        self.fast = random.Random(int(rng.integers(2**63)))  # scalar draws are fastest in pure Python
        self.value = value.tolist() + [float(value[-1])]  # one spare second for the very end
        self.arrivals, self.background, self.makers = arrivals, background, makers
        self.book = Book(self._filled)
        self._queue: list[tuple[int, int, int, object]] = []
        self._seq = 0
        self._maker_of: dict[int, MarketMaker] = {}
        self._icebergs: dict[int, Iceberg] = {}
        self.collar = max(10, int(40 * symbol.half_spread))

    @property
    def now(self) -> int:
        return self.book.now

    # --- scheduling -----------------------------------------------------------------
    def at(self, t_us: int, kind: int, payload: object) -> None:
        heapq.heappush(self._queue, (int(t_us), self._seq, kind, payload))
        self._seq += 1

    def start(self, t_us: int, script: Script) -> None:
        self.at(t_us, RESUME, script)

    def run(self, end_us: int) -> None:
        """Play every arrival, timer and script step before `end_us`."""
        times = self.arrivals.t.tolist()
        market = self.arrivals.market.tolist()
        sides = self.arrivals.side.tolist()
        for mm in self.makers:
            self.at(self.fast.uniform(0, 1e5), REQUOTE, mm)
        queue, book, i, n = self._queue, self.book, 0, len(times)
        while True:
            if queue and (i >= n or queue[0][0] <= times[i]):
                t, _, kind, payload = heapq.heappop(queue)
                if t >= end_us:
                    break
                book.now = t
                self._dispatch(kind, payload)
            elif i < n:
                if times[i] >= end_us:
                    break
                book.now = times[i]
                if market[i]:
                    self._market(i, sides[i])
                else:
                    self._limit(i, sides[i])
                i += 1
            else:
                break

    def _dispatch(self, kind: int, payload: object) -> None:
        if kind == RESUME:
            try:
                delay = next(payload)  # type: ignore[call-overload]
            except StopIteration:
                return
            self.at(self.now + max(1, delay), RESUME, payload)
        elif kind == EXPIRE:
            self.book.cancel(payload)  # type: ignore[arg-type]
        elif kind == REQUOTE:
            self._requote(payload)  # type: ignore[arg-type]
            self.at(self.now + self.fast.expovariate(1 / payload.interval_us), REQUOTE, payload)  # type: ignore[attr-defined]
        elif kind == REPLACE:
            self._requote(payload)  # type: ignore[arg-type]
        else:
            self._refill(payload)  # type: ignore[arg-type]

    # --- the market's state as participants see it -----------------------------------
    def fair(self) -> float:
        """Latent value (ticks) now."""
        return self.value[self.book.now // US]

    def quotes(self) -> tuple[int, int]:
        """(best bid, best ask) in ticks."""
        return self.book.quotes(int(self.fair()))

    def typical_lots(self) -> float:
        """Median size of the orders entered lately: what a participant watching the feed calls
        a typical order."""
        recent = [event[5] for event in self.book.events[-4000:] if event[6] == NEW]
        return float(np.median(recent)) if recent else self.symbol.order_lots

    # --- background flow -------------------------------------------------------------
    def _limit(self, i: int, side: int) -> None:
        bg, book = self.background, self.book
        bid, ask = self.quotes()
        if ask - bid >= 2 and bg.inside[i] < 0.25:
            price = (bid if side == BUY else ask) + side * (1 + int(bg.inside[i] * 4 * (ask - bid - 1)))
        else:
            price = (bid if side == BUY else ask) - side * bg.depth[i]
        oid = book.submit(bg.account[i], side, price, bg.lots[i], stp=bg.stp[i])
        if oid in book.live:
            self.at(self.now + bg.life_us[i], EXPIRE, oid)

    def _market(self, i: int, side: int) -> None:
        """Half the market orders keep their drawn side (the clustered flow); the other half
        lean towards the latent value and towards the side with more displayed depth near the
        touch, which is what makes a large resting order move the market."""
        bg = self.background
        if bg.informed[i] < 0.5:
            bid, ask = self.quotes()
            gap = (self.fair() - (bid + ask) / 2) / max(self.symbol.half_spread, 0.5)
            bids, asks = self.book.near(BUY, bid, NEAR_TICKS), self.book.near(SELL, ask, NEAR_TICKS)
            lean = min(max(2 * gap, -10.0), 10.0) + 2.0 * (bids - asks) / max(bids + asks, 1)
            side = BUY if bg.informed[i] < 0.5 / (1 + math.exp(-lean)) else SELL
        self.market_order(bg.account[i], side, bg.lots[i], stp=bg.stp[i])

    def market_order(self, account: int, side: int, lots: int, tag: int = HONEST, stp: bool = False) -> int:
        """An immediate-or-cancel order that walks the book up to the venue's price collar."""
        bid, ask = self.quotes()
        limit = ask + self.collar if side == BUY else bid - self.collar
        return self.book.submit(account, side, limit, lots, tag, ioc=True, stp=stp)

    # --- market makers ----------------------------------------------------------------
    def _requote(self, mm: MarketMaker) -> None:
        """Replace stale quotes (deeper levels may lag by a tick a level) and, while the desk
        cancels less than its target share, some fresh ones too."""
        book, fast = self.book, self.fast
        value = self.fair()
        bid, ask = self.quotes()
        for side in (BUY, SELL):
            for level in range(mm.levels):
                if side == BUY:
                    price = min(math.floor(value - mm.half_spread), ask - 1) - level * mm.gap
                else:
                    price = max(math.ceil(value + mm.half_spread), bid + 1) + level * mm.gap
                oid = mm.quotes.get((side, level))
                order = book.order(oid) if oid else None
                if order is not None and self._keeps(mm, order[PRICE] - price, level):
                    continue
                if order is not None:
                    book.cancel(oid)  # type: ignore[arg-type]
                    self._maker_of.pop(oid, None)  # type: ignore[arg-type]
                    mm.cancelled += 1
                lots = max(1, round(mm.lots * fast.lognormvariate(0.0, 0.5)))
                mm.posted += 1
                new = book.submit(mm.account, side, price, lots)
                mm.quotes[(side, level)] = new
                if new in book.live:
                    self._maker_of[new] = mm

    def _keeps(self, mm: MarketMaker, off: int, level: int) -> bool:
        """Whether a quote `off` ticks from where it belongs stays.

        Deeper levels may lag a tick per level. A desk above its cancel target lets quotes lag
        further (and sometimes be picked off) instead of pulling them; below it, it refreshes
        some fresh quotes too, for queue and size management.
        """
        over = mm.cancelled > mm.target * mm.posted
        if abs(off) > level + (1 + int(2 * mm.half_spread) if over else 0):
            return False
        return over or self.fast.random() > mm.refresh

    def _filled(self, order: list) -> None:
        """A resting order was filled completely: its market maker requotes, its iceberg refills."""
        oid = order[ID]
        mm = self._maker_of.pop(oid, None)
        if mm is not None:
            self.at(self.now + self.fast.expovariate(1 / (0.3 * US)), REPLACE, mm)
        iceberg = self._icebergs.pop(oid, None)
        if iceberg is not None:
            self.at(self.now + self.fast.randrange(200, 20_000), REFILL, iceberg)

    # --- icebergs -----------------------------------------------------------------------
    def iceberg(self, iceberg: Iceberg) -> None:
        """Start an iceberg now: show its first slice."""
        self._refill(iceberg)

    def _refill(self, iceberg: Iceberg) -> None:
        if iceberg.hidden <= 0 or self.now >= iceberg.until_us:
            return
        lots = min(iceberg.slice_lots, iceberg.hidden)
        iceberg.hidden -= lots
        oid = self.book.submit(iceberg.account, iceberg.side, iceberg.price, lots, iceberg.tag)
        if oid in self.book.live:
            self._icebergs[oid] = iceberg
            self.at(iceberg.until_us, EXPIRE, oid)
