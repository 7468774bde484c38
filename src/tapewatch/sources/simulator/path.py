"""The touch (best bid and ask) as a step function over change points: taker orders,
efficient-price updates and samples of planned excursions (pumps, news, spoof pressure).

Mid = initial price × exp(random walk + planned excursions) + transient impact that heals;
the touch is the mid rounded onto the tick grid around a spread that sometimes widens, and
after every sweep it sits at least at the deepest level the sweep reached.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tapewatch.sources.simulator.core import (
    DAY_S,
    US,
    Cols,
    Curve,
    PathSearch,
    SymbolSpec,
    decayed_cumsum,
    group_starts,
)
from tapewatch.sources.simulator.flow import BIN_S

DIFFUSION_S = 5.0
"""Mean seconds between updates of the efficient price (quotes re-centre on news flow)."""
REFILL_S = 15.0
"""Decay time of transient impact: liquidity taken by a sweep is replaced within tens of seconds."""
SWEEP_REFILL_S = 2.0
"""Levels swept by orders whose price effect is a planned curve refill within seconds."""
PERMANENT_IMPACT_TICKS = 0.04
"""Permanent price impact per taker order, in ticks per √(notional / median)."""
LEVEL_ADVANCE = 0.6
"""Probability that the next fill of a sweeping order is one price level further."""
SPREAD_FLICKER = 0.12
"""Probability that the spread is momentarily one step wider (a level emptied, quotes reloading)."""


@dataclass
class Path:
    """The touch as a step function: state k holds from time[k] until time[k + 1]."""

    time: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    taker_state: np.ndarray
    """Change-point index of each taker order (its post-trade state; state − 1 is what it traded on)."""
    search: PathSearch

    def state_at(self, t: np.ndarray) -> np.ndarray:
        """The state in force at each time (changes at that very µs included)."""
        return np.searchsorted(self.time, t, side="right") - 1

    def touch(self, side: np.ndarray, state: np.ndarray) -> np.ndarray:
        """Best price on the resting side: bid for side +1, ask for side −1."""
        return np.where(side > 0, self.bid[state], self.ask[state])

    def crossing_time(self, side: np.ndarray, start: np.ndarray, price: np.ndarray) -> np.ndarray:
        """When a resting order from state `start` on would first be traded through (int64 max if never)."""
        k = self.search.first_cross(side, start, price)
        out = np.full(k.size, np.iinfo(np.int64).max, dtype=np.int64)
        hit = k < self.time.size
        out[hit] = self.time[k[hit]]
        return out


def sweep_levels(rng: np.random.Generator, n_fills: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each fill: owning taker, position in it, and price level (0 = touch) reached by the sweep."""
    owner, pos = group_starts(n_fills)
    advance = (pos > 0) & (rng.random(owner.size) < LEVEL_ADVANCE)
    running = np.cumsum(advance)
    first = np.cumsum(n_fills) - n_fills
    level = running - np.concatenate([[0], running])[first][owner]
    return owner, pos, level


def build_path(
    spec: SymbolSpec,
    rng: np.random.Generator,
    takers: Cols,
    levels_taken: np.ndarray,
    curves: list[Curve],
    sample_times: list[np.ndarray],
    vol_scale: np.ndarray,
) -> Path:
    """Merge all change points and compute the touch in ticks at each one."""
    n_t = takers["t"].size
    n_diff = rng.poisson(spec.duration / US / DIFFUSION_S)
    diff_t = np.sort(rng.integers(0, spec.duration, n_diff))
    samples = np.concatenate([np.zeros(0, dtype=np.int64), *sample_times]).astype(np.int64)
    samples = samples[(samples >= 0) & (samples < spec.duration)]
    times = np.concatenate([[0], diff_t, samples, takers["t"]]).astype(np.int64)
    kind = np.concatenate([[0], np.ones(n_diff), np.full(samples.size, 2), np.full(n_t, 3)]).astype(np.int8)
    rank = np.concatenate([[-2], np.full(n_diff + samples.size, -1), np.arange(n_t)])
    order = np.lexsort((rank, times))
    times, kind, rank = times[order], kind[order], rank[order]
    is_taker = kind == 3
    taker_state = np.empty(n_t, dtype=np.int64)
    taker_state[rank[is_taker]] = np.flatnonzero(is_taker)

    sigma_tick = spec.daily_vol / spec.tick_rel / np.sqrt(DAY_S)
    step = np.zeros(times.size)
    is_diff = kind == 1
    dt = np.diff(np.concatenate([[0], times[is_diff]])) / US
    vol = vol_scale[np.minimum(times[is_diff] // (BIN_S * US), vol_scale.size - 1)]
    step[is_diff] = rng.normal(0.0, 1.0, dt.size) * sigma_tick * np.sqrt(dt) * vol
    side = takers["side"][rank[is_taker]].astype(np.float64)
    weight = takers["impact"][rank[is_taker]]
    size = np.sqrt(takers["notional"][rank[is_taker]] / spec.median_btc)
    step[is_taker] = side * weight * PERMANENT_IMPACT_TICKS * size
    drift = np.cumsum(step)

    depleted = rng.random(n_t) < np.clip(0.08 * (takers["notional"] / spec.median_btc) ** 0.3, 0, 0.5)
    push = np.zeros(times.size)
    push[is_taker] = side * weight * (levels_taken[rank[is_taker]] + depleted[rank[is_taker]]) * spec.gap
    excursion = np.zeros(times.size)
    for curve in curves:
        excursion += curve.at(times)
    mid = spec.p0 / spec.tick * np.exp(spec.tick_rel * drift + excursion)
    # orders that do not move the price for long (their curve does) still empty the levels they sweep
    sweep = np.zeros(times.size)
    sweep[is_taker] = side * (1.0 - weight) * levels_taken[rank[is_taker]] * spec.gap
    transient = decayed_cumsum(times, push, REFILL_S) + decayed_cumsum(times, sweep, SWEEP_REFILL_S)
    mid = mid + np.clip(
        transient, -np.maximum(3 * spec.gap, 0.03 * mid), np.maximum(3 * spec.gap, 0.03 * mid)
    )
    spread = spec.spread + (rng.random(times.size) < SPREAD_FLICKER) * max(1, spec.spread // 2)
    bid = np.maximum(np.floor(mid - spread / 2 + 0.5), 1).astype(np.int64)
    ask = bid + spread
    _clear_swept_levels(bid, ask, np.flatnonzero(is_taker), side, levels_taken[rank[is_taker]] * spec.gap)
    return Path(times, bid, ask, taker_state, PathSearch.build(bid, ask))


def _clear_swept_levels(
    bid: np.ndarray, ask: np.ndarray, state: np.ndarray, side: np.ndarray, depth: np.ndarray
) -> None:
    """After a sweep the touch is at least at the deepest level it reached (the levels before are gone).

    Repeated until stable because back-to-back sweeps in one µs build on each other.
    """
    up = (side > 0) & (depth > 0)
    down = (side < 0) & (depth > 0)
    s_up, d_up, s_down, d_down = state[up], depth[up], state[down], depth[down]
    for _ in range(500):
        new_ask = np.maximum(ask[s_up], ask[s_up - 1] + d_up)
        new_bid = np.maximum(np.minimum(bid[s_down], bid[s_down - 1] - d_down), 1)
        if np.array_equal(new_ask, ask[s_up]) and np.array_equal(new_bid, bid[s_down]):
            break
        ask[s_up] = new_ask
        bid[s_down] = new_bid
    np.maximum(ask, bid + 1, out=ask)
