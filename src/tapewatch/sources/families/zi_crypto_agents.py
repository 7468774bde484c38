"""Honest participants of the `zi_crypto` family that look, from outside, a little like abuse.

Each is a script for `Market` (a generator yielding seconds to wait):
- `market_maker`: quotes both sides around the mid, a few levels deep, and cancels and
  replaces on a timer it tunes so that 85–95 % of its orders end cancelled;
- `arbitrageur`: trades all day against one market maker's quotes, buying and selling in
  balance, so the two accounts look like a pair that passes coins back and forth;
- `busy_bot`: rests small orders at or near the touch and takes often, with self-trade
  prevention off, so it self-matches now and then (about one trade in thirty of its own);
- `iceberg`: rests a small tip that refills from a hidden reserve;
- `large_then_pull`: rests a large order near the touch and pulls it within seconds,
  sometimes after taking liquidity on the same side (impatience, not deception).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tapewatch.sources.families.zi_crypto_book import BUY, SELL
from tapewatch.sources.families.zi_crypto_sim import Market, Script

QUOTE_PERIOD_S = (0.5, 300.0)
"""Bounds of a market maker's requote period (seconds)."""
QUOTE_WIDTH = (0.01, 0.8)
"""Bounds of a market maker's half-width, in typical spreads, around the mid."""
WARM_UP_ORDERS = 60


def market_maker(market: Market, rng: np.random.Generator, account: int, target_cancel: float) -> Script:
    """Quote 1–3 levels per side around the mid, steering period and width toward `target_cancel`.

    Fewer fills than planned (too many cancels) lengthens the period and tightens the quotes;
    more fills does the opposite: a maker's order-to-trade ratio is a budget it manages.
    """
    spec, book = market.spec, market.book
    levels = int(rng.integers(1, 4))
    size = spec.typical_lots * float(rng.uniform(0.6, 2.0))
    width = float(rng.uniform(0.3, 0.5))
    period = float(rng.uniform(5.0, 20.0))
    own: list[int] = []
    while True:
        kept = _refresh(market, rng, own)
        half = max(1, round(width * spec.spread_ticks))
        gap = max(1, spec.spread_ticks // 3)
        mid = market.mid()
        bid, ask = market.touch()
        top_bid = int(np.floor(mid)) - half
        top_ask = int(np.ceil(mid)) + half
        if ask is not None:
            top_bid = min(top_bid, ask - 1)
        if bid is not None:
            top_ask = max(top_ask, bid + 1)
        own = kept
        for level in range(levels):
            for side, price in ((BUY, top_bid - level * gap), (SELL, top_ask + level * gap)):
                if price > 0:
                    own.append(market.post(account, side, price, max(1, int(size * rng.uniform(0.7, 1.3)))))
        news = book.news.get(account, 0)
        if news > WARM_UP_ORDERS:
            excess = book.cancels.get(account, 0) / news - target_cancel
            period = float(np.clip(period * np.exp(8.0 * excess), *QUOTE_PERIOD_S))
            width = float(np.clip(width * np.exp(-6.0 * excess), *QUOTE_WIDTH))
        yield period * float(rng.uniform(0.5, 1.5))


def _refresh(market: Market, rng: np.random.Generator, own: list[int]) -> list[int]:
    """Cancel the maker's resting quotes; one in ten is trimmed (a `modify`) and kept instead."""
    kept = []
    for oid in own:
        order = market.book.orders.get(oid)
        if order is None:
            continue
        if rng.random() < 0.1 and order.lots > 1 and market.book.modify(market.now, oid, order.lots // 2):
            kept.append(oid)
        else:
            market.cancel(oid)
    return kept


def arbitrageur(market: Market, rng: np.random.Generator, account: int, maker: int) -> Script:
    """Take the maker's quote when it is first in line (and, less often, anyone's), keeping inventory flat."""
    spec, book = market.spec, market.book
    inventory = 0
    per_hour = float(rng.uniform(30.0, 90.0))
    while True:
        yield float(rng.exponential(3600.0 / per_hour))
        lean = inventory / (8.0 * spec.typical_lots)
        side = BUY if rng.random() < float(np.clip(0.5 - lean, 0.1, 0.9)) else SELL
        front = book.front(SELL if side == BUY else BUY)
        if front is None or (front.account != maker and rng.random() > 0.3):
            continue
        lots = min(front.lots, max(1, int(spec.typical_lots * rng.uniform(0.5, 2.0))))
        made = market.take(account, side, lots, limit=front.price)
        traded = sum(book.tape.trade_lots[i] for i in made)
        inventory += traded if side == BUY else -traded


def busy_bot(market: Market, rng: np.random.Generator, account: int) -> Script:
    """Rest small orders at or just behind the touch and take small clips at the touch, self-trade
    prevention off: when its own order is first in line on the other side, it trades with itself."""
    spec = market.spec
    per_hour = float(rng.uniform(120.0, 250.0))
    take_share = float(rng.uniform(0.15, 0.3))
    while True:
        yield float(rng.exponential(3600.0 / per_hour))
        side = BUY if rng.random() < 0.5 else SELL
        lots = max(1, int(spec.typical_lots * rng.uniform(0.2, 0.8)))
        if rng.random() < take_share:
            market.take(account, side, lots, limit=market.book.best(1 - side), allow_self=True)
        else:
            oid = market.post(account, side, market.passive_price(side, int(rng.integers(0, 3))), lots)
            market.expire_after(float(rng.uniform(2.0, 12.0)), oid)


def iceberg(market: Market, rng: np.random.Generator, account: int) -> Script:
    """Rest a tip of one or two typical sizes backed by 10–40 more, pulled after 10–60 minutes."""
    spec = market.spec
    side = BUY if rng.random() < 0.5 else SELL
    tip = max(1, int(spec.typical_lots * rng.uniform(1.0, 2.0)))
    hidden = int(spec.typical_lots * rng.uniform(10.0, 40.0))
    first = market.post(account, side, market.passive_price(side, 0), tip, hidden)
    yield float(rng.uniform(600.0, 3600.0))
    market.cancel(market.book.iceberg_current(first))


def large_then_pull(
    market: Market, rng: np.random.Generator, account: int, log: list[tuple[int, int, int]]
) -> Script:
    """Rest 3–20 typical sizes 0–10 ticks behind the touch, maybe take on the same side, pull it.

    Appends (placed µs, pulled µs, account) to `log` so the organic frame can name it.
    """
    spec, tape = market.spec, market.book.tape
    side = BUY if rng.random() < 0.5 else SELL
    lots = int(spec.typical_lots * rng.uniform(3.0, 20.0))
    oid = market.post(account, side, market.passive_price(side, int(rng.integers(0, 11))), lots)
    placed = tape.order_ts[-1]
    yield float(rng.uniform(0.3, 8.0))
    if rng.random() < 0.3:
        market.take(account, side, max(1, int(spec.typical_lots * rng.uniform(0.5, 2.0))))
        yield float(rng.uniform(0.1, 2.0))
    if market.cancel(oid):
        log.append((placed, tape.order_ts[-1], account))


@dataclass
class Honest:
    """Who plays which honest role on a symbol (ground truth for the organic frame and tests)."""

    roles: dict[str, list[int]] = field(default_factory=dict)
    pulls: list[tuple[int, int, int]] = field(default_factory=list)


def start_honest(market: Market, rng: np.random.Generator, firms: np.ndarray, regulars: np.ndarray) -> Honest:
    """Start the symbol's honest scripts: makers, their arbitrageur, the busy bot, icebergs, pulls."""
    spec, seconds = market.spec, market.seconds
    honest = Honest({"market_maker": [], "arbitrageur": [], "self_matching_bot": [], "iceberg": []})
    makers = rng.choice(firms[:6], spec.makers, replace=False).tolist()
    for maker in makers:
        target = float(rng.uniform(0.87, 0.93))
        market.start(float(rng.uniform(0, 30)), market_maker(market, rng, maker, target))
        honest.roles["market_maker"].append(maker)
    if makers:
        arb = int(rng.choice(firms[6:9]))
        market.start(float(rng.uniform(0, 60)), arbitrageur(market, rng, arb, makers[0]))
        honest.roles["arbitrageur"].append(arb)
    if spec.busy_bot:
        bot = int(rng.choice(firms[9:12]))
        market.start(float(rng.uniform(0, 60)), busy_bot(market, rng, bot))
        honest.roles["self_matching_bot"].append(bot)
    days = seconds / 86_400.0
    for _ in range(int(rng.poisson(4 * days))):
        whale = int(regulars[rng.integers(regulars.size)])
        market.start(float(rng.uniform(0, seconds)), iceberg(market, rng, whale))
        honest.roles["iceberg"].append(whale)
    for _ in range(int(rng.poisson(20 * days))):
        whale = int(regulars[rng.integers(regulars.size)])
        market.start(float(rng.uniform(0, seconds)), large_then_pull(market, rng, whale, honest.pulls))
    return honest
