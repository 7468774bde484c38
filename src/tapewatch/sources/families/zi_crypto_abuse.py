"""Manipulation injected into a `zi_crypto` symbol, and the record each episode leaves for its label.

Wash trading transfers nothing: either one account trades with itself (``self_trade``) or a
ring of 2–6 accounts passes the same amount around, A→B→…→A, so every member nets to zero
each lap (``round_trip``). Each print is one member resting an order inside the spread and
another (or the same) account taking it within a second; which member rests depends on the
episode (always the seller, always the buyer, alternating or random). The volume is 0.2 %–5 %
of what the symbol trades in that hour, spread over 20–60 minutes or compressed into 2–5.

Spoofing is an order placed to be cancelled: 3–20 typical sizes 1–10 ticks behind the touch
(layering: 3–6 smaller orders on several of those levels), then the same account trades the
other side, either taking liquidity itself or having its resting order hit by the traders
the fake depth draws in, and the fake order is pulled unfilled within seconds. An episode
repeats that cycle one to four times. The label spans the cycles that reached a trade.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tapewatch.sources.families.zi_crypto_book import BUY, SELL
from tapewatch.sources.families.zi_crypto_flow import activity
from tapewatch.sources.families.zi_crypto_sim import Market, Script

MAKER_MODES = ("seller", "buyer", "alternate", "random")
KINDS = ("self_trade", "round_trip", "spoofing", "layering")
"""Episodes take these kinds in turn, symbol k starting at the k-th, so a few symbols show them all."""
OTHER_FLOW = 1.4
"""Total volume over the anonymous market orders' volume (measured: their share is about 70 %)."""
EPISODE_ROOM_S = 5400.0
"""Episodes start at least this long before the end, so the longest one finishes inside the day."""


@dataclass
class Episode:
    """What one injected episode did, in engine terms (trade indices, order ids, µs stamps)."""

    typology: str
    accounts: list[int]
    details: dict[str, Any]
    trades: list[int] = field(default_factory=list)
    stamps: list[int] = field(default_factory=list)
    """µs stamps of the episode's own order events (spoof placements and cancels)."""


# -- wash trading ---------------------------------------------------------------------------
def _cross(
    market: Market,
    rng: np.random.Generator,
    episode: Episode,
    seller: int,
    buyer: int,
    maker_sells: bool,
    lots: int,
) -> Script:
    """Move `lots` from seller to buyer: one rests inside the spread, the other takes it.

    Retries until the whole amount has passed between the two (an outsider may hit the
    resting order first, or the spread may be a single tick), so every lap nets to zero.
    """
    book, remaining = market.book, lots
    while remaining:
        bid, ask = market.touch()
        if bid is None or ask is None or ask - bid < 2:
            yield float(rng.uniform(1.0, 5.0))
            continue
        price = int(rng.integers(bid + 1, ask))
        maker, taker = (seller, buyer) if maker_sells else (buyer, seller)
        rest_side = SELL if maker_sells else BUY
        oid = market.post(maker, rest_side, price, remaining)
        yield float(rng.uniform(0.02, 0.8))
        front = book.front(rest_side)
        if front is not None and front.oid == oid:
            made = market.take(taker, 1 - rest_side, front.lots, limit=price, allow_self=seller == buyer)
            episode.trades.extend(made)
            remaining -= sum(book.tape.trade_lots[i] for i in made)
        market.cancel(oid)
        if remaining:
            yield float(rng.uniform(0.5, 3.0))


def _maker_sells(mode: str, leg: int, rng: np.random.Generator) -> bool:
    if mode == "random":
        return bool(rng.random() < 0.5)
    return {"seller": True, "buyer": False}.get(mode, leg % 2 == 0)


def wash(
    market: Market,
    rng: np.random.Generator,
    episode: Episode,
    ring: list[int],
    laps: int,
    lots: int,
    span_s: float,
) -> Script:
    """`laps` laps of the ring (one account: `laps` self-trades), evenly paced over `span_s`."""
    legs = laps * len(ring)
    pause = span_s / legs
    mode = episode.details["maker"]
    for leg in range(legs):
        seller, buyer = ring[leg % len(ring)], ring[(leg + 1) % len(ring)]
        yield from _cross(market, rng, episode, seller, buyer, _maker_sells(mode, leg, rng), lots)
        yield pause * float(rng.uniform(0.75, 1.25))


def hour_volume_lots(market: Market, at: float) -> float:
    """Expected lots traded in the hour around `at`: anonymous market orders × their mean size,
    grossed up by `OTHER_FLOW` for the arbitrageur, the busy bot and traders reacting to depth."""
    spec = market.spec
    level = float(activity(spec, np.array([at]))[0])
    anonymous = spec.market_per_s * level * 3600.0 * 0.7 * spec.typical_lots * float(np.exp(0.5))
    return OTHER_FLOW * anonymous


# -- spoofing and layering ------------------------------------------------------------------
def spoof(market: Market, rng: np.random.Generator, episode: Episode, layers: int, taker: bool) -> Script:
    """One to four cycles of fake depth, a trade on the other side, and the pull."""
    for _ in range(int(rng.integers(1, 5))):
        yield from _spoof_cycle(market, rng, episode, layers, taker)
        yield float(rng.uniform(5.0, 60.0))


def _spoof_cycle(
    market: Market, rng: np.random.Generator, episode: Episode, layers: int, taker: bool
) -> Script:
    """Bait (maker variant), fake depth on one side, the execution on the other, the pull."""
    book, spec, account = market.book, market.spec, episode.accounts[0]
    side = BUY if rng.random() < 0.5 else SELL
    other = 1 - side
    for _ in range(20):
        bid, ask = market.touch()
        if bid is not None and ask is not None and ask - bid >= 2:
            break
        yield float(rng.uniform(1.0, 5.0))
    else:
        return
    bait: int | None = None
    stamps: list[int] = []
    fakes: list[int] = []
    placed: list[dict[str, Any]] = []
    if not taker:
        bid, ask = market.touch()
        price = ask - 1 if other == SELL else bid + 1
        bait = market.post(account, other, price, max(1, int(spec.typical_lots * rng.uniform(0.5, 2.0))))
        stamps.append(book.tape.order_ts[-1])
        yield float(rng.uniform(0.1, 1.5))
    scale = (3.0, 20.0) if layers == 1 else (2.0, 8.0)
    for distance in np.sort(rng.choice(np.arange(1, 11), layers, replace=False)).tolist():
        touch = book.best(side)
        if touch is None:
            continue
        price = touch - distance if side == BUY else touch + distance
        oid = market.post(account, side, price, int(spec.typical_lots * rng.uniform(*scale)))
        book.skittish.add(oid)
        stamps.append(book.tape.order_ts[-1])
        fakes.append(oid)
        side_name = "buy" if side == BUY else "sell"
        placed.append({"order": oid, "side": side_name, "touch": touch, "distance_ticks": distance})
        yield float(rng.uniform(0.02, 0.3))
    made = yield from _trade_other_side(market, rng, account, other, bait, fakes, taker)
    if made:
        yield float(rng.uniform(0.1, 2.0))
    for oid in fakes + ([bait] if bait is not None else []):
        if market.cancel(oid):
            stamps.append(book.tape.order_ts[-1])
        elif oid in book.fled:
            stamps.append(book.fled[oid])
    if made:
        episode.trades.extend(made)
        episode.stamps.extend(stamps)
        episode.details.setdefault("orders", []).extend(placed)


def _trade_other_side(
    market: Market,
    rng: np.random.Generator,
    account: int,
    other: int,
    bait: int | None,
    fakes: list[int],
    taker: bool,
) -> Generator[float, None, list[int]]:
    """The execution the fake depth was for: take the other side, or wait for the bait to be hit."""
    book, spec = market.book, market.spec
    if taker:
        yield float(rng.uniform(0.2, 3.0))
        prices = [book.orders[oid].price for oid in fakes if oid in book.orders]
        if not prices:
            return []
        limit = max(prices) + 1 if other == SELL else min(prices) - 1
        lots = max(1, int(spec.typical_lots * rng.uniform(0.5, 3.0)))
        return market.take(account, other, lots, limit=limit)
    first = len(book.tape.trade_ts)
    waited, patience = 0.0, float(rng.uniform(4.0, 10.0))
    while waited < patience and book.filled.get(bait, 0) == 0:
        yield 0.25
        waited += 0.25
    return [i for i in range(first, len(book.tape.trade_ts)) if book.tape.trade_maker_oid[i] == bait]


# -- scheduling ------------------------------------------------------------------------------
def start_abuse(
    market: Market,
    rng: np.random.Generator,
    rate: float,
    regulars: np.ndarray,
    fresh: np.ndarray,
    makers: list[int],
    index: int,
) -> list[Episode]:
    """Start `rate` episodes per symbol-day at random times; returns their (still filling) records."""
    seconds = market.seconds
    expected = rate * seconds / 86_400.0
    count = int(expected) + int(rng.random() < expected - int(expected))
    fresh_pool = list(rng.permutation(fresh).tolist())
    episodes = []
    for n in range(count):
        kind = KINDS[(index + n) % len(KINDS)]
        at = float(rng.uniform(0.0, max(seconds - EPISODE_ROOM_S, 60.0)))
        episode, script = _episode(market, rng, kind, at, regulars, fresh_pool, makers)
        market.start(at, script)
        episodes.append(episode)
    return episodes


def _episode(
    market: Market,
    rng: np.random.Generator,
    kind: str,
    at: float,
    regulars: np.ndarray,
    fresh_pool: list[int],
    makers: list[int],
) -> tuple[Episode, Script]:
    """The episode's accounts and script. Manipulators are fresh accounts, or regulars of the
    symbol who also trade honestly all day (and, for a spoofer, now and then its market maker)."""
    regular = int(regulars[rng.integers(regulars.size)])
    if kind in ("spoofing", "layering"):
        roll = rng.random()
        account = makers[0] if makers and roll < 0.1 else regular if roll < 0.55 else fresh_pool.pop()
        taker = bool(rng.random() < 0.5)
        layers = 1 if kind == "spoofing" else int(rng.integers(3, 7))
        episode = Episode(kind, [account], {"variant": "taker" if taker else "maker", "layers": layers})
        return episode, spoof(market, rng, episode, layers, taker)
    size = int(rng.integers(2, 7)) if kind == "round_trip" else 1
    ring = [fresh_pool.pop() for _ in range(size)]
    if rng.random() < (0.5 if size == 1 else 0.4):
        ring[0] = regular
    laps = int(rng.integers(6, 26)) if size == 1 else int(rng.integers(2, 7))
    compressed = rng.random() < 0.5
    span = float(rng.uniform(120.0, 300.0) if compressed else rng.uniform(1200.0, 3600.0))
    share = float(np.exp(rng.uniform(np.log(0.002), np.log(0.05))))
    lots = max(1, int(share * hour_volume_lots(market, at + span / 2) / (laps * size)))
    details = {
        "scheme": kind,
        "ring": size,
        "laps": laps,
        "maker": str(rng.choice(MAKER_MODES)),
        "pace": "compressed" if compressed else "spread",
        "target_share": round(share, 5),
    }
    episode = Episode("wash_trading", sorted(set(ring)), details)
    return episode, wash(market, rng, episode, ring, laps, lots, span)
