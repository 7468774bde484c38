"""What a symbol looks like and when its public order flow arrives, drawn up front with numpy.

Order arrivals are a marked Hawkes process in its cluster form: background "immigrant" orders
arrive at a rate that follows the time of day and hour-long activity regimes, and every order
triggers a Poisson number of follow-up orders after short or long delays (order splitting,
herding, liquidity replenishment), which is what makes real order flow come in clusters.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

import numpy as np

US = 1_000_000
DAY_S = 86_400


@dataclass(frozen=True)
class Symbol:
    """One market's scale: where it trades, in which units, how busy and how volatile it is."""

    name: str
    price: float  # opening price
    tick: float
    lot: float  # smallest amount step
    order_lots: float  # median order size in lots
    half_spread: float  # a typical market maker's half spread, ticks
    daily_vol: float  # of log price
    market_rate: float  # background market orders per second (before clustering)
    limit_rate: float  # background limit orders per second (before clustering)


@dataclass(frozen=True)
class Arrivals:
    """Background orders, time-sorted: µs, is-market, side (+1 buy / -1 sell)."""

    t: np.ndarray
    market: np.ndarray
    side: np.ndarray


def draw_symbol(rng: np.random.Generator, index: int) -> Symbol:
    """A stock-like or USDT-quoted symbol between about $0.5 and $150."""
    price = float(np.exp(rng.uniform(np.log(0.5), np.log(150.0))))
    tick = 0.001 if price < 1.0 else 0.01
    stock_like = bool(rng.random() < 0.5)
    letters = "".join(rng.choice(list(string.ascii_uppercase), size=3 + int(stock_like)))
    name = f"{letters}{index}" if stock_like else f"{letters}{index}USDT"
    decimals = 0 if stock_like else max(0, 2 - int(np.floor(np.log10(price))))
    lot = 10.0**-decimals
    notional = float(np.exp(rng.uniform(np.log(400.0), np.log(4000.0))))
    return Symbol(
        name=name,
        price=round(price / tick) * tick,
        tick=tick,
        lot=lot,
        order_lots=max(notional / price / lot, 5.0),
        half_spread=max(0.45, price * rng.uniform(1.5e-4, 5e-4) / tick),
        daily_vol=float(rng.uniform(0.012, 0.04)),
        market_rate=float(rng.uniform(0.06, 0.11)),
        limit_rate=float(rng.uniform(0.22, 0.36)),
    )


def activity(rng: np.random.Generator, seconds: int) -> np.ndarray:
    """Per-second multiplier of the baseline rate: a daily cycle times hour-long regimes."""
    t = np.arange(seconds)
    cycle = 1.0 + 0.45 * np.sin(2 * np.pi * (t / DAY_S - 0.3)) + 0.25 * np.sin(4 * np.pi * t / DAY_S)
    regimes = np.exp(rng.normal(0.0, 0.35, size=seconds // 3600 + 1))
    return cycle * np.repeat(regimes, 3600)[:seconds]


def hawkes(rng: np.random.Generator, symbol: Symbol, seconds: int) -> Arrivals:
    """Background orders of one symbol as a two-type (market / limit) clustered process."""
    profile = activity(rng, seconds)
    branching = float(rng.uniform(0.55, 0.72))
    base = np.array([symbol.market_rate, symbol.limit_rate]) * (1.0 - branching)
    times, kinds, sides = [], [], []
    for kind, rate in enumerate(base):
        counts = rng.poisson(rate * profile)
        t = np.repeat(np.arange(seconds), counts) + rng.random(int(counts.sum()))
        times.append(t * US)
        kinds.append(np.full(t.size, kind))
        sides.append(rng.choice([1, -1], size=t.size))
    t, kind, side = np.concatenate(times), np.concatenate(kinds), np.concatenate(sides)
    parents = (t, kind, side)
    while parents[0].size:
        parents = _offspring(rng, *parents, branching=branching)
        t = np.concatenate([t, parents[0]])
        kind = np.concatenate([kind, parents[1]])
        side = np.concatenate([side, parents[2]])
    keep = t < seconds * US
    order = np.argsort(t[keep], kind="stable")
    return Arrivals(
        t=t[keep][order].astype(np.int64),
        market=kind[keep][order] == 0,
        side=side[keep][order].astype(np.int8),
    )


def _offspring(
    rng: np.random.Generator, t: np.ndarray, kind: np.ndarray, side: np.ndarray, *, branching: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One generation of triggered orders: mostly within a second, some minutes later.

    A market order mostly triggers more market orders on the same side (a parent order split
    into slices, or traders following the move) and limit orders that refill the side it
    emptied; a limit order mostly triggers limit orders near it.
    """
    n = rng.poisson(branching, size=t.size)
    parent = np.repeat(np.arange(t.size), n)
    fast = rng.random(parent.size) < 0.75
    delay = np.where(fast, rng.exponential(0.6, parent.size), rng.exponential(40.0, parent.size))
    parent_market = kind[parent] == 0
    child_market = rng.random(parent.size) < np.where(parent_market, 0.55, 0.12)
    same_side = rng.random(parent.size) < np.where(parent_market & child_market, 0.8, 0.6)
    child_side = np.where(same_side, side[parent], -side[parent])
    # a market order that took liquidity on one side is refilled on that side: the opposite book side
    child_side = np.where(parent_market & ~child_market, -child_side, child_side)
    return t[parent] + (delay * US).astype(np.int64), np.where(child_market, 0, 1), child_side


def fair_value(rng: np.random.Generator, symbol: Symbol, seconds: int) -> np.ndarray:
    """Per-second latent value in ticks: a fat-tailed random walk of log price with rare jumps."""
    sigma = symbol.daily_vol / np.sqrt(DAY_S)
    steps = sigma * rng.standard_t(4, size=seconds) / np.sqrt(2.0)
    jumps = rng.random(seconds) < 3.0 / DAY_S
    steps = steps + jumps * rng.normal(0.0, 4 * symbol.daily_vol / np.sqrt(24), size=seconds)
    return symbol.price / symbol.tick * np.exp(np.cumsum(steps))


def lognormal_lots(rng: np.random.Generator, median: float, sigma: float, size: int) -> np.ndarray:
    """Order sizes in whole lots (at least one), log-normal around `median`."""
    return np.maximum(1, np.round(median * np.exp(rng.normal(0.0, sigma, size)))).astype(np.int64)
