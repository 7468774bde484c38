"""What one `zi_crypto` symbol is, and its zero-intelligence order flow drawn in bulk.

A symbol is a small-cap coin quoted in BTC (price 1e-7 … 1e-4 BTC on a 1e-8 or 1e-9 BTC
tick, so a tick is 0.01 %–1 % of the price and the spread spans many ticks) or, now and
then, in USDT. Its anonymous flow follows the zero-intelligence model of Farmer, Patelli and
Zovko (2005): limit orders arrive as a Poisson process at random distances from the touch,
market orders as another, and every resting order is cancelled at a constant hazard. The
rates follow a UTC day (busier afternoons, when Europe and America overlap) and a few
news-like bursts that multiply activity and tilt it to one side. Everything here is drawn
with numpy before the event loop runs; the loop only turns draws into prices against the
book as it stands.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

import numpy as np

DAY_S = 86_400.0
BTC_NOTIONAL = 0.002
"""Median order notional of the anonymous flow on BTC pairs (≈ 100–150 USD)."""
USDT_NOTIONAL = 150.0


@dataclass(frozen=True)
class Burst:
    """A news-like stretch of heavier, one-sided activity (honest: no label)."""

    start: float
    end: float
    multiplier: float
    buy_share: float


@dataclass(frozen=True)
class SymbolSpec:
    """Everything fixed about one symbol for the day: instrument, activity, participants."""

    name: str
    tick: float
    lot: float
    price_ticks: int
    typical_lots: int
    spread_ticks: int
    market_per_s: float
    limit_per_market: float
    lifetime_s: float
    seasonality: float
    peak_hour: float
    makers: int
    busy_bot: bool
    bursts: tuple[Burst, ...]


def draw_spec(rng: np.random.Generator, index: int, hours: float) -> SymbolSpec:
    """One symbol's instrument and activity; every fourth symbol is a USDT pair."""
    base = "".join(rng.choice(list(string.ascii_uppercase), size=int(rng.integers(3, 6))))
    usdt = index % 4 == 3
    rel_tick = float(np.exp(rng.uniform(np.log(1e-4), np.log(1e-2))))
    if usdt:
        price = float(np.exp(rng.uniform(np.log(0.005), np.log(5.0))))
        tick = float(10.0 ** np.round(np.log10(price * rel_tick)))
        notional = USDT_NOTIONAL
    else:
        tick = 1e-9 if rng.random() < 0.5 else 1e-8
        price = tick / rel_tick
        notional = BTC_NOTIONAL
    price_ticks = max(round(price / tick), 100)
    typical_base = notional / (price_ticks * tick)
    lot = float(10.0 ** np.floor(np.log10(typical_base / 3000.0)))
    spread_rel = float(np.exp(rng.uniform(np.log(0.003), np.log(0.03))))
    trades_per_day = float(np.exp(rng.uniform(np.log(3000), np.log(11000))))
    return SymbolSpec(
        name=f"{base}/{'USDT' if usdt else 'BTC'}",
        tick=tick,
        lot=lot,
        price_ticks=price_ticks,
        typical_lots=round(typical_base / lot),
        spread_ticks=int(np.clip(round(spread_rel * price_ticks), 3, 60)),
        market_per_s=trades_per_day / 2.2 / DAY_S,
        limit_per_market=float(rng.uniform(4.0, 7.0)),
        lifetime_s=float(rng.uniform(240.0, 900.0)),
        seasonality=float(rng.uniform(0.3, 0.6)),
        peak_hour=float(rng.uniform(13.5, 16.5)),
        makers=(1, 2, 0, 1, 2, 1, 0, 1)[index % 8],
        busy_bot=index % 2 == 0,
        bursts=_draw_bursts(rng, hours),
    )


def _draw_bursts(rng: np.random.Generator, hours: float) -> tuple[Burst, ...]:
    count = int(rng.poisson(1.5 * hours / 24.0))
    bursts = []
    for _ in range(count):
        start = float(rng.uniform(0.0, hours * 3600.0))
        tilt = float(rng.uniform(0.62, 0.8))
        bursts.append(
            Burst(
                start=start,
                end=start + float(rng.uniform(180.0, 1200.0)),
                multiplier=float(rng.uniform(3.0, 8.0)),
                buy_share=tilt if rng.random() < 0.5 else 1.0 - tilt,
            )
        )
    return tuple(sorted(bursts, key=lambda b: b.start))


def activity(spec: SymbolSpec, t: np.ndarray) -> np.ndarray:
    """Multiplier of the base rates at times `t` (seconds from midnight UTC)."""
    hour = (t / 3600.0) % 24.0
    level = 1.0 + spec.seasonality * np.cos(2.0 * np.pi * (hour - spec.peak_hour) / 24.0)
    for burst in spec.bursts:
        level = np.where((t >= burst.start) & (t < burst.end), level * burst.multiplier, level)
    return level


def buy_share(spec: SymbolSpec, t: np.ndarray) -> np.ndarray:
    """Probability that a market order at `t` buys: one half, tilted inside a burst."""
    share = np.full(t.shape, 0.5)
    for burst in spec.bursts:
        share = np.where((t >= burst.start) & (t < burst.end), burst.buy_share, share)
    return share


def arrivals(rng: np.random.Generator, spec: SymbolSpec, rate: float, seconds: float) -> np.ndarray:
    """Sorted times of a Poisson process with intensity `rate * activity(t)` (by thinning)."""
    peak = rate * (1.0 + spec.seasonality) * max([b.multiplier for b in spec.bursts], default=1.0)
    times = np.sort(rng.uniform(0.0, seconds, int(rng.poisson(peak * seconds))))
    return times[rng.random(times.size) * peak < rate * activity(spec, times)]


def order_sizes(rng: np.random.Generator, median_lots: float, sigma: float, count: int) -> np.ndarray:
    """Log-normal sizes in lots; a third are rounded to one significant digit, as people type them."""
    lots = np.exp(rng.normal(np.log(median_lots), sigma, count))
    magnitude = 10.0 ** np.floor(np.log10(np.maximum(lots, 1.0)))
    rounded = np.where(rng.random(count) < 0.35, np.round(lots / magnitude) * magnitude, np.round(lots))
    return np.maximum(rounded, 1).astype(np.int64)


@dataclass(frozen=True)
class Flow:
    """The anonymous flow as arrays, one row per arrival, sorted by time.

    `limit` rows rest at a price the loop chooses from the book at that moment: `inside`
    rows improve the spread at fraction `spot` of it, the others sit `behind` ticks beyond
    half a typical spread from the mid. `lifetime` is the order's time until cancellation.
    """

    t: np.ndarray
    limit: np.ndarray
    side: np.ndarray
    lots: np.ndarray
    account: np.ndarray
    inside: np.ndarray
    spot: np.ndarray
    behind: np.ndarray
    lifetime: np.ndarray


def draw_flow(rng: np.random.Generator, spec: SymbolSpec, seconds: float, accounts: np.ndarray) -> Flow:
    """Limit and market arrivals with sides, sizes, placements, lifetimes and (Zipf) accounts."""
    market_t = arrivals(rng, spec, spec.market_per_s, seconds)
    limit_t = arrivals(rng, spec, spec.market_per_s * spec.limit_per_market, seconds)
    t = np.concatenate([limit_t, market_t])
    order = np.argsort(t, kind="stable")
    count = t.size
    limit = np.concatenate([np.ones(limit_t.size, bool), np.zeros(market_t.size, bool)])[order]
    t = t[order]
    buys = rng.random(count) < np.where(limit, 0.5, buy_share(spec, t))
    lots = np.where(
        limit,
        order_sizes(rng, spec.typical_lots, 0.9, count),
        order_sizes(rng, spec.typical_lots * 0.7, 1.0, count),
    )
    weights = 1.0 / np.arange(1, accounts.size + 1) ** 1.1
    return Flow(
        t=t,
        limit=limit,
        side=np.where(buys, 0, 1).astype(np.int8),
        lots=lots,
        account=accounts[rng.choice(accounts.size, count, p=weights / weights.sum())],
        inside=rng.random(count) < 0.05,
        spot=rng.random(count),
        behind=rng.geometric(1.0 / (0.8 * spec.spread_ticks + 1.0), count) - 1,
        lifetime=rng.exponential(spec.lifetime_s, count),
    )
