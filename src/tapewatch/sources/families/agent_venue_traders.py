"""agent_venue's directional populations: retail sessions, active traders, whales.

Retail arrives in sessions (one account sending one to a handful of small market orders over a few
minutes, mostly one way), more in the busy hours of the UTC day, leaning towards the heavier side
of the visible book. Active traders wake every few minutes: momentum traders take in the direction
of the last move, mean-reversion traders rest an order at the touch against it and pull it when it
is not hit. Whales work large parents in slices (TWAP), hide size in icebergs that refresh at one
price, and sometimes show a large order near the touch and pull it within seconds.
"""

from __future__ import annotations

import math
import random

from tapewatch.sources.families.agent_venue_book import BUY, SELL, Order
from tapewatch.sources.families.agent_venue_makers import lots_for
from tapewatch.sources.families.agent_venue_world import DAY_US, US, World, poisson

PEAK_SEASON = 1.6


def imbalance(world: World) -> float:
    """(bid − ask) / (bid + ask) over the five best levels a side: what a screen shows."""
    bid, ask = world.book.depth(BUY, 5), world.book.depth(SELL, 5)
    return (bid - ask) / (bid + ask) if bid + ask else 0.0


def rest_then_pull(
    world: World, t: int, account: int, side: int, behind: int, qty: int, mean_life_s: float
) -> None:
    """Rest a limit order `behind` ticks from the touch and pull it after an exponential lifetime."""
    touch = world.book.best(side)
    if touch is None:
        return
    order = world.book.place(t, account, side, touch - side * behind, qty)
    if order is not None:
        life = world.rnd.expovariate(1.0 / mean_life_s)
        world.at(t + int(life * US) + 1, lambda now: world.book.cancel(now, order))


class Retail:
    """Sessions of small orders by a pool of retail accounts, frequent ones more often."""

    def __init__(self, world: World, accounts: list[int], rnd: random.Random) -> None:
        self.world, self.accounts, self.rnd = world, accounts, rnd
        self.peak_rate = rnd.uniform(25.0, 70.0) * world.instrument.activity * PEAK_SEASON / 3600.0
        self._next(0)

    def _next(self, t: int) -> None:
        self.world.at(t + int(self.rnd.expovariate(self.peak_rate) * US) + 1, self._arrive)

    def _arrive(self, t: int) -> None:
        rnd = self.rnd
        if rnd.random() < self.world.season(t) / PEAK_SEASON:
            account = self.accounts[int(len(self.accounts) * rnd.random() ** 2)]
            lean = rnd.uniform(-0.3, 0.3)
            at = t
            for _ in range(1 + int(rnd.expovariate(1 / 1.5))):
                self.world.at(at, lambda now, a=account, b=lean: self._order(now, a, b))
                at += int(rnd.expovariate(1 / 40.0) * US) + 1
        self._next(t)

    def _order(self, t: int, account: int, lean: float) -> None:
        rnd, world = self.rnd, self.world
        side = BUY if rnd.random() < 0.5 + lean + 0.3 * imbalance(world) else SELL
        qty = lots_for(world, min(rnd.lognormvariate(math.log(60.0), 1.1), 20_000.0))
        if rnd.random() < 0.8:
            world.book.take(t, account, side, qty)
        else:
            rest_then_pull(world, t, account, side, rnd.randint(0, 3), qty, 900.0)


class ActiveTrader:
    """A frequent trader; `momentum` takes with the last move, otherwise it rests against it."""

    def __init__(self, world: World, account: int, momentum: bool, rnd: random.Random) -> None:
        self.world, self.account, self.momentum, self.rnd = world, account, momentum, rnd
        self.mean_gap = rnd.uniform(120.0, 480.0)
        tick_bp = world.instrument.tick / world.instrument.price * 1e4
        self.threshold = rnd.uniform(5.0, 30.0) / tick_bp  # in ticks of mid move
        self.notional = rnd.lognormvariate(math.log(800.0), 0.7) * world.instrument.activity
        self.last_mid = world.ref
        world.at(rnd.randint(0, int(self.mean_gap * US)), self.act)

    def act(self, t: int) -> None:
        rnd, world = self.rnd, self.world
        mid = world.mid()
        move, self.last_mid = mid - self.last_mid, mid
        qty = lots_for(world, self.notional * rnd.uniform(0.5, 1.5))
        if abs(move) >= self.threshold or rnd.random() < 0.15:
            direction = (
                (BUY if move > 0 else SELL) if abs(move) >= self.threshold else rnd.choice((BUY, SELL))
            )
            if self.momentum:
                world.book.take(t, self.account, direction, qty)
            else:
                rest_then_pull(world, t, self.account, -direction, rnd.randint(0, 1), qty, 120.0)
        world.at(t + int(rnd.expovariate(1 / self.mean_gap) / world.season(t) * US) + 1, self.act)


class Whales:
    """The large honest accounts of one symbol: TWAP parents, icebergs and quickly pulled large orders."""

    def __init__(self, world: World, accounts: list[int], rnd: random.Random) -> None:
        self.world, self.accounts, self.rnd = world, accounts, rnd
        self.icebergs: dict[
            int, list[int]
        ] = {}  # live display order id -> [hidden lots left, first order id]
        for account in accounts:
            world.book.on_fill[account] = self._refresh
        days = world.duration / DAY_US
        for plan, per_day in ((self._twap, 1.5), (self._pull, 5.0), (self._iceberg, 2.0)):
            for _ in range(poisson(rnd, per_day * days)):
                world.at(rnd.randint(0, world.duration), plan)

    def _level_lots(self) -> int:
        return lots_for(self.world, 600.0 * self.world.instrument.activity)

    def _twap(self, t: int) -> None:
        rnd, world = self.rnd, self.world
        account, side = rnd.choice(self.accounts), rnd.choice((BUY, SELL))
        minutes, every = rnd.uniform(20.0, 120.0), rnd.uniform(30.0, 120.0)
        slices = max(2, int(minutes * 60 / every))
        qty = max(1, int(self._level_lots() * rnd.uniform(40.0, 150.0) / slices))
        for k in range(slices):
            at = t + int((k + rnd.uniform(-0.2, 0.2)) * every * US)
            world.at(at, lambda now, a=account, s=side: world.book.take(now, a, s, qty))
        end = t + int(slices * every * US)
        world.organic.append(("twap", t, end, {"account": account, "side": side, "slices": slices}))

    def _pull(self, t: int) -> None:
        rnd, world = self.rnd, self.world
        account, side = rnd.choice(self.accounts), rnd.choice((BUY, SELL))
        life = rnd.uniform(1.0, 30.0)
        touch = world.book.best(side)
        order = (
            None
            if touch is None
            else world.book.place(
                t,
                account,
                side,
                touch - side * rnd.randint(1, 5),
                int(self._level_lots() * rnd.uniform(8.0, 25.0)),
            )
        )
        if order is None:
            return
        world.at(t + int(life * US), lambda now: world.book.cancel(now, order))
        changed_mind = rnd.random() < 0.1  # then sells what it meant to buy (or the reverse)
        if changed_mind:
            world.at(
                t + int(life * rnd.uniform(0.3, 0.9) * US),
                lambda now: world.book.take(now, account, -side, self._level_lots()),
            )
        details = {"account": account, "side": side, "other_side_trade": changed_mind}
        world.organic.append(("pulled_large_order", t, t + int(life * US), details))

    def _iceberg(self, t: int) -> None:
        rnd, world = self.rnd, self.world
        account, side = rnd.choice(self.accounts), rnd.choice((BUY, SELL))
        peak = int(self._level_lots() * rnd.uniform(0.7, 2.0))
        touch = world.book.best(side)
        order = None if touch is None else world.book.place(t, account, side, touch, peak)
        if order is None:
            return
        self.icebergs[order.oid] = [peak * rnd.randint(5, 20), order.oid]
        life = int(rnd.uniform(20.0, 90.0) * 60 * US)
        world.at(t + life, lambda now: self._expire(now, order.oid))
        world.organic.append(("iceberg", t, t + life, {"account": account, "side": side, "peak": peak}))

    def _refresh(self, order: Order, qty: int, price: int, t: int) -> None:
        """An iceberg's displayed part was taken: show the next slice at the same price (new id, back of the queue)."""
        state = self.icebergs.pop(order.oid, None) if order.qty == 0 else None
        if state is None or state[0] <= 0:
            return
        shown = min(state[0], self._level_lots())
        new = self.world.book.place(t, order.account, order.side, order.price, shown)
        if new is not None:
            self.icebergs[new.oid] = [state[0] - shown, state[1]]

    def _expire(self, t: int, first: int) -> None:
        """The iceberg's time is up: pull whatever of it is still showing."""
        for oid, (_, chain) in list(self.icebergs.items()):
            if chain == first:
                order = self.world.book.live.get(oid)
                if order is not None:
                    self.world.book.cancel(t, order)
                del self.icebergs[oid]
