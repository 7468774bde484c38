"""agent_venue's manipulators: ordinary active traders who, in one episode, wash or spoof.

Every script acts through the same book as everyone else, so what it leaves in the tape is what
the venue would print: a wash leg can be partly taken by an outsider, a spoof can be hit when the
market runs into it, a self-trade placed behind a queue first trades with the queue.

- self_trade: bursts of orders resting inside the spread (or at the touch) crossed by the same
  account 2 ms–1.5 s later; the account switched self-trade prevention off.
- round_trip: a ring of 2–6 accounts passes a quantity around until everyone is back to even;
  per episode either inside the spread or by resting at (or improving) the touch and waiting to be
  first in line before the partner hits it.
- spoofing: one or two large orders 1–10 ticks behind the touch, an execution on the other side
  (as taker, or resting at the far touch until hit), the large orders pulled seconds later;
  pulled at once if the market runs towards them.
- layering: 3–6 orders at consecutive levels on one side, placed within ~150 ms, the same
  execution, all pulled in the same millisecond.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from tapewatch.sources.families.agent_venue_book import BUY, SELL, Order
from tapewatch.sources.families.agent_venue_makers import lots_for
from tapewatch.sources.families.agent_venue_world import DAY_US, US, World

KINDS = ("self_trade", "round_trip", "spoofing", "layering")
MS = 1_000
MAX_TRIES = 8
"""How often a ring leg is tried again (placement refused, outsider took it, queue never cleared)."""


@dataclass
class Episode:
    """One planned manipulation and the ids of what it placed (for its label)."""

    id: int
    kind: str
    accounts: list[int]
    start: int
    share: float  # planned volume as a share of the symbol's daily volume
    details: dict[str, object] = field(default_factory=dict)
    decoys: set[int] = field(default_factory=set)  # spoof / layer order ids
    executions: set[int] = field(default_factory=set)  # resting execution order ids (maker variant)


def launch(world: World, episode: Episode, rnd: random.Random) -> None:
    """Schedule the episode's script at its start."""
    script = {"self_trade": _self_trade, "round_trip": _round_trip, "spoofing": _spoof, "layering": _spoof}
    world.at(episode.start, lambda t: script[episode.kind](world, episode, rnd, t))


def _daily_lots(world: World, t: int) -> float:
    """The symbol's volume per day as the manipulator sees it so far."""
    return world.tape.volume / max(t, 1) * DAY_US


def _level_lots(world: World) -> int:
    return lots_for(world, 600.0 * world.instrument.activity)


def _inside_price(world: World, rnd: random.Random) -> int | None:
    """A price strictly inside the spread, or None when the spread is one tick."""
    bid, ask = world.book.best(BUY), world.book.best(SELL)
    if bid is None or ask is None or ask - bid < 2:
        return None
    return rnd.randint(bid + 1, ask - 1)


def _cancel_later(world: World, t: int, order: Order) -> None:
    world.at(t, lambda now: world.book.cancel(now, order))


def _self_trade(world: World, ep: Episode, rnd: random.Random, t0: int) -> None:
    account, legs = ep.accounts[0], rnd.randint(6, 30)
    qty = max(1, int(ep.share * _daily_lots(world, t0) / legs))
    span = rnd.uniform(5.0, 60.0) * 60 * US
    ep.details.update({"planned_legs": legs})
    for offset in sorted(rnd.random() ** 1.5 * span for _ in range(legs)):

        def leg(t: int) -> None:
            side = rnd.choice((BUY, SELL))
            price = _inside_price(world, rnd)
            if price is None:
                price = world.book.best(side)
            if price is None:
                return
            rest = world.book.place(t, account, side, price, qty, ep.id)
            if rest is None:
                return
            cross = t + rnd.randint(2 * MS, 1_500 * MS)
            world.at(cross, lambda now: world.book.take(now, account, -side, qty, price, ep.id))
            _cancel_later(world, cross + rnd.randint(1 * MS, 200 * MS), rest)

        world.at(t0 + int(offset), leg)


def _round_trip(world: World, ep: Episode, rnd: random.Random, t0: int) -> None:
    ring, inside = ep.accounts, ep.details["mode"] == "inside_spread"
    cycles = rnd.randint(1, 5)
    qty = max(1, int(ep.share * _daily_lots(world, t0) / (len(ring) * cycles)))
    gap = rnd.uniform(5.0, 60.0) * 60 * US / (len(ring) * cycles)
    for j in range(len(ring) * cycles):
        seller, buyer = ring[j % len(ring)], ring[(j + 1) % len(ring)]
        world.at(
            t0 + int(j * gap * rnd.uniform(0.7, 1.0)),
            lambda t, s=seller, b=buyer: _pass(world, ep, rnd, t, s, b, qty, inside),
        )


def _pass(
    world: World,
    ep: Episode,
    rnd: random.Random,
    t: int,
    seller: int,
    buyer: int,
    qty: int,
    inside: bool,
    tries: int = 0,
) -> None:
    """One leg of the ring: one member rests, the other takes exactly that order; a leg that cannot
    be placed, or waits too long behind a queue, is tried again a few seconds later, improving the
    touch when it can; what outsiders took is passed again, so the ring comes back to even."""

    def again(now: int, lots: int = qty) -> None:
        if tries < MAX_TRIES:
            redo = now + rnd.randint(1 * US, 8 * US)
            world.at(redo, lambda later: _pass(world, ep, rnd, later, seller, buyer, lots, inside, tries + 1))

    rester_side = rnd.choice((BUY, SELL))
    rester, taker = (buyer, seller) if rester_side == BUY else (seller, buyer)
    book = world.book
    price = _inside_price(world, rnd) if inside else None
    touch = book.best(rester_side)
    if price is None and touch is not None:
        bid, ask = book.best(BUY), book.best(SELL)
        improve = bid is not None and ask is not None and ask - bid >= 2 and (tries or rnd.random() < 0.5)
        price = touch + rester_side if improve else touch
    order = None if price is None else book.place(t, rester, rester_side, price, qty, ep.id)
    if order is None:
        again(t)
        return
    patience = t + int(rnd.uniform(30.0, 180.0) * US)

    def hit(now: int) -> None:
        """Take the partner's order once it is first in line; what outsiders got is passed again."""
        if order.oid not in book.live:
            again(now)  # an outsider took it all
        elif book.queue_ahead(order) and now < patience:
            world.at(now + rnd.randint(1 * US, 4 * US), hit)
        elif book.queue_ahead(order) and tries < MAX_TRIES:
            book.cancel(now, order)
            again(now)
        else:
            before = order.qty
            book.take(now, taker, -rester_side, before, order.price, ep.id)
            passed = before - order.qty  # the rest went to better-priced outsiders
            book.cancel(now, order)
            if passed < qty:
                again(now, qty - passed)

    world.at(t + (rnd.randint(30 * MS, 3 * US) if inside else rnd.randint(1 * US, 20 * US)), hit)


def _spoof(world: World, ep: Episode, rnd: random.Random, t0: int) -> None:
    cycles = int(ep.details["cycles"])
    qty = max(1, min(int(ep.share * _daily_lots(world, t0) / cycles), 4 * _level_lots(world)))
    at = t0
    for _ in range(cycles):
        world.at(at, lambda t: _spoof_cycle(world, ep, rnd, t, qty))
        at += int(rnd.uniform(30.0, 300.0) * US)


def _spoof_cycle(world: World, ep: Episode, rnd: random.Random, t: int, qty: int) -> None:
    """Show size on one side, execute on the other, pull the size."""
    account, side = ep.accounts[0], int(ep.details["execution_side"])
    book, fake = world.book, -side
    touch = book.best(fake)
    if touch is None:
        return
    layered = ep.kind == "layering"
    level = _level_lots(world)
    if layered:
        first, step = rnd.randint(1, 3), rnd.randint(1, 2)
        prices = [touch - fake * (first + j * step) for j in range(rnd.randint(3, 6))]
        sizes = [int(level * rnd.uniform(2.0, 6.0)) for _ in prices]
    else:
        prices = [touch - fake * rnd.randint(1, 10) for _ in range(rnd.randint(1, 2))]
        sizes = [int(level * rnd.uniform(5.0, 15.0)) for _ in prices]
    decoys: list[Order] = []

    def show(now: int, price: int, size: int) -> None:
        order = book.place(now, account, fake, price, size, ep.id)
        if order is not None:
            decoys.append(order)
            ep.decoys.add(order.oid)

    for j, (price, size) in enumerate(zip(prices, sizes, strict=True)):
        world.at(t + j * rnd.randint(0, 30 * MS), lambda now, p=price, s=size: show(now, p, s))
    deadline = t + int(rnd.uniform(8.0, 60.0) * US)
    state = {"pulled": False}

    def pull(now: int) -> None:
        if not state["pulled"]:
            state["pulled"] = True
            for order in decoys:
                _cancel_later(world, now if layered else now + rnd.randint(0, 20 * MS), order)

    def guard(now: int) -> None:
        """Pull everything when the market comes within a tick of the nearest decoy."""
        if not decoys:
            return
        near = book.best(fake)
        nearest = max(o.price for o in decoys) if fake == BUY else min(o.price for o in decoys)
        if near is not None and abs(near - nearest) <= 1:
            pull(now)
        elif not state["pulled"] and now < deadline:
            world.at(now + 500 * MS, guard)

    world.at(t + 500 * MS, guard)
    act = t + rnd.randint(300 * MS, 6 * US)
    if ep.details["execution"] == "taker":
        world.at(act, lambda now: book.take(now, account, side, qty, None, ep.id))
        world.at(act + rnd.randint(100 * MS, 3 * US), pull)
    else:

        def rest(now: int) -> None:
            price = book.best(side)
            if price is None:
                return
            spread = (book.best(SELL) or price) - (book.best(BUY) or price)
            order = book.place(now, account, side, price + side * (spread >= 2), qty, ep.id)
            if order is not None:
                ep.executions.add(order.oid)
                stop = max(deadline, now + 2 * US)
                world.at(stop, lambda later: impatient(later, order))
                world.at(stop + rnd.randint(50 * MS, 2 * US), pull)

        def impatient(now: int, order: Order) -> None:
            """Nobody hit the resting execution in time: pull it and take instead."""
            untouched = order.oid in book.live and order.qty == qty
            book.cancel(now, order)
            if untouched:
                book.take(now, account, side, qty, None, ep.id)

        world.at(act, rest)


def plan(
    rnd: random.Random, kinds: list[str], active: list[int], takers: list[int], duration: int, first_id: int
) -> list[Episode]:
    """The episodes of one symbol, one per kind given, spread over the day with room to finish.

    Self-traders come from `takers` (active traders who trade often), so the burst stays a
    minority of the account's prints; the other schemes recruit any active trader."""
    episodes = []
    early, late = min(3600 * US, duration * 3 // 10), max(duration - 75 * 60 * US, duration * 6 // 10)
    for j, kind in enumerate(kinds):
        share = math.exp(rnd.uniform(math.log(0.002), math.log(0.05)))
        start = rnd.randint(early, max(early, late))
        if kind == "round_trip":
            accounts = rnd.sample(active, min(len(active), rnd.randint(2, 6)))
            details: dict[str, object] = {"mode": rnd.choice(("inside_spread", "rest_at_touch"))}
        else:
            accounts = [rnd.choice(takers if kind == "self_trade" else active)]
            details = {}
        if kind in ("spoofing", "layering"):
            details = {
                "execution": rnd.choice(("taker", "maker")),
                "execution_side": rnd.choice((BUY, SELL)),
                "cycles": rnd.randint(1, 3),
            }
        episodes.append(Episode(first_id + j, kind, accounts, start, share, details))
    return episodes
