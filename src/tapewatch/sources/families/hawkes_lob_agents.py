"""Scripted participants: honest ones that look suspicious, and the manipulators.

Each script is a generator run by `Sim`: it acts on the book, then yields the µs to wait. Honest
whales, pairs and icebergs use the same mechanics as the manipulators (large orders pulled
quickly, two accounts crossing with each other), so the two differ only in what manipulation
*is*: wash trades move nothing between owners, a spoofer trades the other side of the orders it
pulls.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tapewatch.sources.families.hawkes_lob_book import BUY, HONEST, PRICE, REMAINING, SELL, SIDE
from tapewatch.sources.families.hawkes_lob_flow import US
from tapewatch.sources.families.hawkes_lob_sim import Iceberg, Script, Sim


@dataclass
class Episode:
    """One injected manipulation and what its script did (order ids, distances, roles)."""

    id: int
    typology: str  # wash_trading | spoofing | layering
    scheme: str | None  # self_trade | round_trip for wash trading
    accounts: list[int]
    start_us: int
    lots: int  # per wash trade / per spoof order (set when a spoof starts, from the book it sees)
    facts: dict[str, list] = field(default_factory=dict)

    def note(self, key: str, value: object) -> None:
        self.facts.setdefault(key, []).append(value)


def _wait(rng: np.random.Generator, low_s: float, high_s: float) -> int:
    return int(rng.uniform(low_s, high_s) * US)


def cross(
    sim: Sim,
    rng: np.random.Generator,
    maker: int,
    taker: int,
    maker_side: int,
    lots: int,
    tag: int = HONEST,
    patience_s: float = 180.0,
) -> Script:
    """Move `lots` from one account to another (or to itself) through the book; returns the lots moved.

    The maker rests an order inside the spread when there is room, else at the back of the touch
    queue, and waits until little is queued in front of it; then the taker sends an
    immediate-or-cancel order sized to reach it, trading with whatever is still ahead on the way
    (the longer the wait, the more it is willing to trade through). An order that loses the touch
    is pulled and placed again, and one at the touch moves inside when the spread opens.
    """
    book, moved, oid, price = sim.book, 0, 0, 0
    begin, unit = sim.now, 0.5 * sim.typical_lots()
    deadline = begin + int(patience_s * US)
    while moved < lots and sim.now < deadline:
        allowance = unit * (1 + (sim.now - begin) / (10 * US))
        bid, ask = sim.quotes()
        order = book.order(oid)
        touch = bid if maker_side == BUY else ask
        if (
            order is None
            or touch != price
            or (ask - bid >= 2 and book.depth(maker_side, price) > order[REMAINING])
        ):
            book.cancel(oid)
            price = bid + int(rng.integers(1, ask - bid)) if ask - bid >= 2 else touch
            oid = book.submit(maker, maker_side, price, lots - moved, tag)
            yield _wait(rng, 0.002, 0.4)
            continue
        ahead = book.ahead(oid) or 0
        if ahead <= max(order[REMAINING] // 2, allowance):
            reach = order[REMAINING]
            book.submit(taker, -maker_side, price, ahead + reach, tag, ioc=True)
            moved += reach
            continue
        yield _wait(rng, 0.1, 1.5)
    book.cancel(oid)
    return moved


# --- honest participants that look like manipulators -----------------------------------------
def whale(sim: Sim, rng: np.random.Generator, account: int, log: list[dict]) -> Script:
    """A large order a few ticks from the touch, pulled within seconds; sometimes the whale then
    buys (or sells) on the same side at market. It never trades the other side."""
    side = BUY if rng.random() < 0.5 else SELL
    bid, ask = sim.quotes()
    touch = bid if side == BUY else ask
    price = touch - side * int(rng.integers(1, 9))
    lots = int(sim.typical_lots() * rng.uniform(4, 15))
    oid = sim.book.submit(account, side, price, lots)
    start = sim.now
    yield _wait(rng, 0.5, 12)
    sim.book.cancel(oid)
    if rng.random() < 0.3:
        yield _wait(rng, 0.2, 3)
        sim.market_order(account, side, max(1, int(sim.typical_lots() * rng.uniform(0.5, 2))))
    log.append({"kind": "whale_order", "start": start, "end": sim.now, "accounts": [account]})


def pair(sim: Sim, rng: np.random.Generator, buyer: int, seller: int, trades: int, log: list[dict]) -> Script:
    """An honest pair (a broker working a client's order against one counterparty): a burst of
    crossings, mostly in one direction, so neither side's position nets out."""
    start = sim.now
    for _ in range(trades):
        forward = rng.random() < 0.85
        b, s = (buyer, seller) if forward else (seller, buyer)
        lots = max(1, int(sim.typical_lots() * rng.lognormal(0.0, 0.5)))
        maker_is_seller = rng.random() < 0.5
        yield from cross(
            sim,
            rng,
            s if maker_is_seller else b,
            b if maker_is_seller else s,
            SELL if maker_is_seller else BUY,
            lots,
        )
        yield _wait(rng, 5, 90)
    log.append({"kind": "honest_pair", "start": start, "end": sim.now, "accounts": [buyer, seller]})


def iceberg(sim: Sim, rng: np.random.Generator, account: int, log: list[dict]) -> Script:
    """A hidden order of 15–60 typical sizes at or near the touch, shown one slice at a time."""
    side = BUY if rng.random() < 0.5 else SELL
    bid, ask = sim.quotes()
    price = (bid if side == BUY else ask) - side * int(rng.integers(0, 3))
    slice_lots = max(1, int(sim.typical_lots() * rng.uniform(0.5, 1.5)))
    life = _wait(rng, 120, 1800)
    start, total = sim.now, int(slice_lots * rng.uniform(15, 60))
    sim.iceberg(Iceberg(account, side, price, total, slice_lots, start + life))
    yield life
    log.append({"kind": "iceberg", "start": start, "end": sim.now, "accounts": [account]})


# --- manipulation --------------------------------------------------------------------------
def self_trade(sim: Sim, rng: np.random.Generator, episode: Episode, trades: int) -> Script:
    """One account crossing its own orders a handful to a dozen+ times within minutes."""
    account, done = episode.accounts[0], 0
    for _ in range(trades + 5):
        side = BUY if rng.random() < 0.5 else SELL
        lots = max(1, int(episode.lots * rng.uniform(0.7, 1.3)))
        done += bool((yield from cross(sim, rng, account, account, side, lots, episode.id)))
        if done == trades:
            return
        yield _wait(rng, 2, 30)


def round_trip(sim: Sim, rng: np.random.Generator, episode: Episode, laps: int) -> Script:
    """A ring passing the same amount around, lap after lap: each member nets to about zero.

    Who makes and who takes is the ring's habit: the seller, the buyer, or either at random.
    A leg that does not go through is tried again; the ring stops only if it keeps failing.
    """
    members = episode.accounts
    habit = rng.choice(["seller", "buyer", "either"])
    for _ in range(laps):
        for j, seller in enumerate(members):
            buyer = members[(j + 1) % len(members)]
            owed = episode.lots
            for _ in range(3):
                seller_makes = habit == "seller" or (habit == "either" and rng.random() < 0.5)
                maker, taker = (seller, buyer) if seller_makes else (buyer, seller)
                side = SELL if seller_makes else BUY
                owed -= yield from cross(sim, rng, maker, taker, side, owed, episode.id)
                if owed <= 0:
                    break
            if owed > 0:
                return
            yield _wait(rng, 1, 25)
        yield _wait(rng, 5, 90)


def spoof(
    sim: Sim, rng: np.random.Generator, episode: Episode, layers: int, cycles: int, as_taker: bool
) -> Script:
    """Large orders 1–10 ticks behind the touch, a trade on the other side, then the orders pulled.

    With `layers` > 1 several levels are stacked at once (layering). The execution is a market
    order (`as_taker`) or a resting order at the other touch that waits to be lifted; if nobody
    lifts it within 10–40 s the spoofer crosses after all. Spoof orders that the price reaches are
    pulled at once: they are not meant to trade.
    """
    account = episode.accounts[0]
    exec_side = BUY if rng.random() < 0.5 else SELL
    episode.lots = max(1, round(sim.typical_lots() * rng.uniform(4, 15)))
    for _ in range(cycles):
        distances = np.sort(rng.choice(np.arange(1, 11), size=layers, replace=False, p=_near(10)))
        spoofs = []
        for d in distances.tolist():
            bid, ask = sim.quotes()
            touch = ask if exec_side == BUY else bid  # the spoof side is opposite to the execution
            lots = int(episode.lots * rng.uniform(0.8, 1.25))
            spoofs.append(sim.book.submit(account, -exec_side, touch + exec_side * d, lots, episode.id))
            episode.note("spoof_order", (spoofs[-1], d))
            yield _wait(rng, 0.005, 0.3)
        yield from _guard(sim, rng, spoofs, _wait(rng, 0.05, 0.8))
        size = max(1, int(sim.typical_lots() * rng.uniform(0.7, 3)))
        if as_taker:
            episode.note("execution_order", sim.market_order(account, exec_side, size, episode.id))
        else:
            yield from _rest_until_lifted(sim, rng, episode, spoofs, exec_side, size)
        yield from _guard(sim, rng, spoofs, _wait(rng, 0.1, 2.5))
        for oid in spoofs:
            sim.book.cancel(oid)
        yield _wait(rng, 5, 70)


def _near(n: int) -> np.ndarray:
    """Distance weights: spoofers prefer levels close to the touch."""
    weights = 1.0 / np.arange(1, n + 1) ** 0.7
    return weights / weights.sum()


def _guard(
    sim: Sim, rng: np.random.Generator, spoofs: list[int], duration: int, until_gone: int = 0
) -> Script:
    """Wait `duration` µs (or until order `until_gone` has left the book), pulling any spoof
    order that has become the best price on its side."""
    while duration > 0:
        step = min(duration, _wait(rng, 0.08, 0.25))
        duration -= step
        yield step
        for oid in spoofs:
            order = sim.book.order(oid)
            if order is not None and sim.book.best(order[SIDE]) == order[PRICE]:
                sim.book.cancel(oid)
        if until_gone and sim.book.order(until_gone) is None:
            return


def _rest_until_lifted(
    sim: Sim, rng: np.random.Generator, episode: Episode, spoofs: list[int], side: int, lots: int
) -> Script:
    """Execute as a maker: rest at (or inside) the other touch; cross instead if nobody takes it in 10–40 s."""
    bid, ask = sim.quotes()
    if side == BUY:
        price = bid + 1 if ask - bid >= 2 else bid
    else:
        price = ask - 1 if ask - bid >= 2 else ask
    oid = sim.book.submit(episode.accounts[0], side, price, lots, episode.id)
    episode.note("execution_order", oid)
    yield from _guard(sim, rng, spoofs, _wait(rng, 10, 40), until_gone=oid)
    left = sim.book.cancel(oid)
    if left:
        episode.note("execution_order", sim.market_order(episode.accounts[0], side, left, episode.id))
