"""agent_venue's professional populations: ladder market makers, latency arbitrageurs, the busy algo.

Market makers quote ladders of several levels a side around the reference price, skewed by their
inventory, and re-price on every reference move past their hysteresis: orders whose price is no
longer on the ladder are cancelled and the missing rungs placed, so most of what they post is
cancelled unfilled; the fastest (1–5 ms) also probe wide spreads with orders they pull within
tens of milliseconds.
Arbitrage bots take quotes left stale by a slow maker, so the same bot and the same maker meet
again and again, in both directions, over the day. The busy algo rests small quotes near the
touch and takes liquidity on its own schedule; it opted out of self-trade prevention, so its
taker orders now and then print against its own resting quote.
"""

from __future__ import annotations

import math
import random

from tapewatch.sources.families.agent_venue_book import BUY, SELL, Order
from tapewatch.sources.families.agent_venue_world import US, World


def lots_for(world: World, notional: float) -> int:
    """Lots worth `notional` quote units at the current reference price (at least one)."""
    inst = world.instrument
    return max(1, int(notional / (world.ref * inst.tick * inst.lot)))


class MarketMaker:
    """A ladder quoter: `levels` rungs a side, `step` ticks apart, `half` ticks from its fair price."""

    def __init__(self, world: World, account: int, rnd: random.Random) -> None:
        self.world, self.account = world, account
        tick_bp = world.instrument.tick / world.instrument.price * 1e4
        self.levels = rnd.randint(3, 5)
        self.step = max(1, round(rnd.uniform(2.0, 12.0) / tick_bp))
        self.half = max(1, round(rnd.uniform(3.0, 25.0) / tick_bp))
        self.hysteresis = max(1, round(rnd.uniform(3.0, 8.0) / tick_bp))
        self.size = rnd.lognormvariate(math.log(600.0), 0.6) * world.instrument.activity
        speed = rnd.random()
        self.latency = (
            rnd.randint(1_000, 5_000)
            if speed < 0.35
            else rnd.randint(10_000, 60_000)
            if speed < 0.8
            else rnd.randint(80_000, 400_000)
        )
        self.max_inventory = 12 * lots_for(world, self.size)
        self.skew = self.half / self.max_inventory
        self.inventory = 0
        self.center = math.inf
        self.pending = False
        self.rungs: dict[int, list[Order | None]] = {BUY: [None] * self.levels, SELL: [None] * self.levels}
        world.on_ref.append(self.on_ref)
        world.book.on_fill[account] = self.on_fill
        world.at(rnd.randint(0, 2 * US), self.requote)
        self.rnd = rnd
        if self.latency <= 5_000:
            world.at(rnd.randint(0, 300 * US), self.flicker)

    def flicker(self, t: int) -> None:
        """Fast makers probe a wide spread: a small order one tick inside it, pulled 3–45 ms later."""
        rnd, book = self.rnd, self.world.book
        bid, ask = book.best(BUY), book.best(SELL)
        if bid is not None and ask is not None and ask - bid >= 2:
            side = rnd.choice((BUY, SELL))
            probe = book.place(
                t,
                self.account,
                side,
                bid + 1 if side == BUY else ask - 1,
                lots_for(self.world, self.size / 4),
            )
            if probe is not None:
                self.world.at(t + rnd.randint(3_000, 45_000), lambda now: book.cancel(now, probe))
        self.world.at(t + int(rnd.expovariate(1 / 180.0) / self.world.season(t) * US) + 1, self.flicker)

    def fair(self) -> float:
        shift = self.skew * self.inventory
        return self.world.ref - max(-2 * self.half, min(2 * self.half, shift))

    def on_ref(self, t: int) -> None:
        if not self.pending and abs(self.fair() - self.center) >= self.hysteresis:
            self.pending = True
            self.world.at(t + self.latency, self.requote)

    def on_fill(self, order: Order, qty: int, price: int, t: int) -> None:
        self.inventory += qty if order.side == BUY else -qty
        if not self.pending:
            self.pending = True
            self.world.at(t + self.latency, self.requote)

    def requote(self, t: int) -> None:
        """Move the rungs that drifted off the ladder (deeper rungs tolerate more drift, keeping their
        queue place) or were eaten into; after a jump of the reference the whole ladder is pulled at
        once and rebuilt; over its inventory limit a maker pulls the inner rung of the side that
        would add to the position and keeps the deeper ones."""
        self.pending = False
        book, fair = self.world.book, self.fair()
        jumped = abs(fair - self.center) > 2 * self.half  # a jump: pull the whole ladder and rebuild
        self.center = fair
        base = lots_for(self.world, self.size)
        for side in (BUY, SELL):
            rungs, loaded = self.rungs[side], side * self.inventory > self.max_inventory
            for k in range(self.levels):
                order = rungs[k]
                if order is not None and order.oid not in book.live:
                    order = rungs[k] = None
                offset = self.half + k * self.step
                target = math.floor(fair - offset) if side == BUY else math.ceil(fair + offset)
                qty = int(base * (1 + 0.6 * k))
                wanted = not (loaded and k == 0)
                if order is not None:
                    drift = abs(order.price - target)
                    if wanted and not jumped and drift <= self.hysteresis * (1 + k) and 2 * order.qty >= qty:
                        continue
                    book.cancel(t, order)
                rungs[k] = book.place(t, self.account, side, target, qty) if wanted else None


class Arbitrageur:
    """Takes this venue's quotes that are through the reference price by more than its costs."""

    def __init__(self, world: World, account: int, rnd: random.Random) -> None:
        self.world, self.account = world, account
        tick_bp = world.instrument.tick / world.instrument.price * 1e4
        self.edge = max(1, round(rnd.uniform(4.0, 12.0) / tick_bp))
        self.latency = rnd.randint(300, 2_500)
        self.cap = 20 * lots_for(world, 500.0 * world.instrument.activity)
        self.pending = False
        world.on_ref.append(self.on_ref)

    def on_ref(self, t: int) -> None:
        if not self.pending and self._target() is not None:
            self.pending = True
            self.world.at(t + self.latency, self.strike)

    def _target(self) -> tuple[int, int] | None:
        book, ref = self.world.book, self.world.ref
        ask, bid = book.best(SELL), book.best(BUY)
        if ask is not None and ask <= ref - self.edge:
            return BUY, math.floor(ref - self.edge)
        if bid is not None and bid >= ref + self.edge:
            return SELL, math.ceil(ref + self.edge)
        return None

    def strike(self, t: int) -> None:
        self.pending = False
        target = self._target()
        if target is not None:
            self.world.book.take(t, self.account, target[0], self.cap, limit=target[1])


class BusyAlgo:
    """Two strategies on one account: a contrarian one resting a small quote at or 1–4 ticks behind
    the touch against the last move, a momentum one taking small sizes with it. When both fire on
    the same move, the taker can meet the quote (no STP on this account)."""

    def __init__(self, world: World, account: int, rnd: random.Random) -> None:
        self.world, self.account, self.rnd = world, account, rnd
        self.mean_gap = rnd.uniform(40.0, 120.0) / world.instrument.activity
        self.at_touch = rnd.uniform(0.4, 0.8)
        self.quote: Order | None = None
        self.last_mid = world.ref
        world.at(rnd.randint(0, 30 * US), self.act)

    def act(self, t: int) -> None:
        rnd, book = self.rnd, self.world.book
        mid = self.world.mid()
        move, self.last_mid = mid - self.last_mid, mid
        trend = (BUY if move > 0 else SELL) if move else rnd.choice((BUY, SELL))
        size = lots_for(self.world, rnd.lognormvariate(math.log(100.0), 0.5))
        if rnd.random() < 0.3:
            if self.quote is not None:
                book.cancel(t, self.quote)
            side = -trend if rnd.random() < 0.6 else trend
            touch = book.best(side)
            behind = 0 if rnd.random() < self.at_touch else rnd.randint(1, 4)
            self.quote = (
                None if touch is None else book.place(t, self.account, side, touch - side * behind, size)
            )
            if self.quote is not None:
                quote, life = self.quote, rnd.expovariate(1 / 20.0)
                self.world.at(t + int(life * US), lambda now: book.cancel(now, quote))
        else:
            book.take(t, self.account, trend if rnd.random() < 0.6 else -trend, size)
        gap = rnd.expovariate(1.0 / self.mean_gap) / self.world.season(t)
        self.world.at(t + int(gap * US) + 1, self.act)
