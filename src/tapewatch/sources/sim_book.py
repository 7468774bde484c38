"""The book side of the simulator: the best bid/ask path, taker orders filled against it, and the
resting orders (with their L3 lifecycles) that make every trade and quote consistent.

The touch is a step function over "change points" (taker orders, efficient-price updates and
samples of planned excursions). A resting order may exist at price p only while the market
never trades through p; the first-passage search in `sim_core.PathSearch` enforces that for
every order at once, so the L3 stream never shows a bid above a price that traded lower.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tapewatch.sources.sim_config import SimulationConfig
from tapewatch.sources.sim_core import (
    DAY_S,
    MS,
    SPOOF_INDUCED,
    US,
    WASH,
    Accounts,
    Cols,
    Curve,
    PathSearch,
    SymbolSpec,
    decayed_cumsum,
    group_starts,
    nice_numbers,
    pick_traders,
)
from tapewatch.sources.sim_flow import BIN_S

DIFFUSION_S = 5.0
"""Mean seconds between updates of the efficient price (quotes re-centre on news flow)."""
REFILL_S = 15.0
"""Decay time of transient impact: liquidity taken by a sweep is replaced within tens of seconds."""
PERMANENT_IMPACT_TICKS = 0.04
"""Permanent price impact per taker order, in ticks per √(notional / median)."""
LEVEL_ADVANCE = 0.6
"""Probability that the next fill of a sweeping order is one price level further."""
SPREAD_FLICKER = 0.12
"""Probability that the spread is momentarily one step wider (a level emptied, quotes reloading)."""
MERGE_PROBABILITY = 0.35
"""Chance that successive fills at one price come from the same resting order (partial fills)."""
MERGE_MAX_GAP_S = 1200.0

ACTIONS = ("new", "cancel", "fill", "modify")
NEW, CANCEL, FILL, MODIFY = range(4)
ROLE_RETAIL, ROLE_MM, ROLE_FORCED, ROLE_WASH, ROLE_SPOOF = range(5)


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
    transient = decayed_cumsum(times, push, REFILL_S)
    mid = mid + np.clip(transient, -np.maximum(3 * spec.gap, 0.03 * mid), np.maximum(3 * spec.gap, 0.03 * mid))
    spread = spec.spread + (rng.random(times.size) < SPREAD_FLICKER) * max(1, spec.spread // 2)
    bid = np.maximum(np.floor(mid - spread / 2 + 0.5), 1).astype(np.int64)
    ask = bid + spread
    return Path(times, bid, ask, taker_state, PathSearch.build(bid, ask))


@dataclass
class Fills:
    """One row per trade print, before accounts and orders are final."""

    owner: np.ndarray  # taker index
    pos: np.ndarray  # fill position within the taker order
    price: np.ndarray  # ticks
    lots: np.ndarray
    valid: np.ndarray  # False: a planned fill the book could not honour (dropped)


def price_fills(
    spec: SymbolSpec,
    config: SimulationConfig,
    rng: np.random.Generator,
    takers: Cols,
    path: Path,
    owner: np.ndarray,
    pos: np.ndarray,
    level: np.ndarray,
    explicit_price: np.ndarray,
) -> Fills:
    """Price every fill on the state the taker met, and split the taker's size across its fills."""
    pre = path.taker_state[owner] - 1
    side = takers["side"][owner]
    price = np.where(side > 0, path.ask[pre] + level * spec.gap, path.bid[pre] - level * spec.gap)
    spread = path.ask[pre] - path.bid[pre]
    inside = takers["inside"][owner] & (spread >= 2) & (rng.random(owner.size) < 0.5)
    price = np.where(inside, path.bid[pre] + rng.integers(1, np.maximum(spread, 2)), price)
    price = np.maximum(price, 1)
    valid = np.ones(owner.size, dtype=bool)
    hits = np.flatnonzero(takers["explicit_order"][owner] >= 0)
    valid[hits] = price[hits] == explicit_price[takers["explicit_order"][owner[hits]]]

    touch_price = price[pos == 0][np.argsort(owner[pos == 0])]
    base = takers["amount"].copy()
    free = np.isnan(base)
    base[free] = nice_numbers(takers["notional"][free] / (touch_price[free] * spec.tick), rng, config.round_size_share)
    total = np.maximum(np.round(base / spec.lot), takers["n_fills"]).astype(np.int64)
    share = rng.exponential(1.0, owner.size)
    share /= np.bincount(owner, weights=share, minlength=takers["t"].size)[owner]
    lots = np.maximum(np.round(share * total[owner]), 1).astype(np.int64)
    return Fills(owner, pos, price, lots, valid)


def _alternative(account: np.ndarray, avoid: np.ndarray, spec: SymbolSpec, accounts: Accounts, rng: np.random.Generator) -> np.ndarray:
    """Re-draw accounts that equal `avoid` (no background self-trades: venues block them)."""
    out = account.copy()
    for _ in range(5):
        clash = out == avoid
        if not clash.any():
            break
        out[clash] = pick_traders(spec, accounts, rng, int(clash.sum()))
    return out


def maker_chains(
    spec: SymbolSpec,
    config: SimulationConfig,
    rng: np.random.Generator,
    accounts: Accounts,
    takers: Cols,
    path: Path,
    fills: Fills,
) -> tuple[np.ndarray, np.ndarray]:
    """Group fills into resting orders and give each its account: (chain id per fill, account per fill).

    Fills with a planned group share one order; the rest merge with the previous fill at the
    same price when the order could have rested in between, so partial fills appear.
    """
    f_side = -takers["side"][fills.owner]
    f_state = path.taker_state[fills.owner]
    f_t = takers["t"][fills.owner]
    group = takers["maker_group"][fills.owner]
    forced = takers["maker_account"][fills.owner]
    explicit = takers["explicit_order"][fills.owner] >= 0
    free = (group < 0) & (forced < 0) & ~explicit & fills.valid
    idx = np.flatnonzero(free)
    idx = idx[np.lexsort((fills.owner[idx], f_t[idx], fills.price[idx], f_side[idx]))]
    a, b = idx[:-1], idx[1:]
    can = (
        (f_side[a] == f_side[b])
        & (fills.price[a] == fills.price[b])
        & (fills.owner[a] != fills.owner[b])
        & ((f_t[b] - f_t[a]) <= MERGE_MAX_GAP_S * US)
    )
    can &= path.search.first_cross(f_side[a], f_state[a], fills.price[a]) >= f_state[b]
    join = can & (rng.random(a.size) < MERGE_PROBABILITY)
    chain = np.full(fills.owner.size, -1, dtype=np.int64)
    chain[idx] = np.cumsum(np.concatenate([[True], ~join])) - 1
    n_free = int(chain[idx].max()) + 1 if idx.size else 0
    head_mm = rng.random(n_free) < config.mm_maker_share
    chain_acct = np.where(head_mm, rng.choice(spec.market_makers, n_free), pick_traders(spec, accounts, rng, n_free))

    account = np.full(fills.owner.size, -1, dtype=np.int64)
    account[idx] = chain_acct[chain[idx]]
    rest = np.flatnonzero(~free)
    # planned groups keep one order per group; forced accounts and explicit hits are singletons
    keyed = np.where(group[rest] >= 0, group[rest], -1 - rest)
    _, inverse = np.unique(keyed, return_inverse=True)
    chain[rest] = n_free + inverse
    account[rest] = np.where(forced[rest] >= 0, forced[rest], -1)
    missing = rest[account[rest] < 0]
    account[missing] = pick_traders(spec, accounts, rng, missing.size)

    taker_acct = takers["account"][fills.owner]
    clash = (account == taker_acct) & (takers["kind"][fills.owner] != WASH)
    if clash.any():
        where = np.flatnonzero(clash)
        chain[where] = chain.max() + 1 + np.arange(where.size)
        account[where] = _alternative(account[where], taker_acct[where], spec, accounts, rng)
    _, chain = np.unique(chain, return_inverse=True)
    return chain.astype(np.int64), account


@dataclass
class OrderRows:
    """L3 rows in numeric form; published ids and names are attached once all sources are known."""

    ts: np.ndarray
    rank: np.ndarray  # taker index for rows written by a taker event, −1 otherwise (tie order)
    sub: np.ndarray  # order of rows within one taker event
    order: np.ndarray  # local order number
    account: np.ndarray
    side: np.ndarray
    price: np.ndarray
    lots: np.ndarray
    action: np.ndarray


def rows(ts, rank, sub, order, account, side, price, lots, action) -> OrderRows:  # noqa: ANN001
    """Build an OrderRows with scalars broadcast to the length of `ts`."""
    n = np.asarray(ts).size
    b = [np.broadcast_to(np.asarray(v), (n,)).astype(dt) for v, dt in zip(
        (ts, rank, sub, order, account, side, price, lots, action),
        (np.int64, np.int64, np.int64, np.int64, np.int64, np.int8, np.int64, np.int64, np.int8),
    )]
    return OrderRows(*b)


def concat_rows(parts: list[OrderRows]) -> OrderRows:
    """Stack several row sets."""
    return OrderRows(*[np.concatenate([getattr(p, f) for p in parts]) for f in OrderRows.__dataclass_fields__])


def _lifecycle_end(
    rng: np.random.Generator, path: Path, side, state, price, t_after, life_s, latency_max_s: float  # noqa: ANN001
) -> tuple[np.ndarray, np.ndarray]:
    """Planned cancel time, pulled before the market would trade through the order: (time, crossed)."""
    planned = t_after + (life_s * US).astype(np.int64)
    cross = path.crossing_time(side, state, price)
    latency = (rng.uniform(0.001, latency_max_s, side.size) * US).astype(np.int64)
    early = cross - latency
    crossed = early < planned
    cancel = np.where(crossed, np.maximum(early, t_after + 1), planned)
    cancel = np.where(crossed & (cancel >= cross), (t_after + cross) // 2, cancel)
    return cancel, crossed


def chain_orders(
    spec: SymbolSpec,
    rng: np.random.Generator,
    takers: Cols,
    path: Path,
    fills: Fills,
    chain: np.ndarray,
    account: np.ndarray,
    explicit_order: np.ndarray,
    first_local: int,
) -> tuple[OrderRows, np.ndarray]:
    """Resting orders behind the fills: new (honestly placed), fills, and a cancel of any remainder.

    Returns the rows and, per fill, the local id of the maker order it hit.
    """
    keep = fills.valid & (explicit_order < 0)
    f = np.flatnonzero(keep)
    order = np.lexsort((fills.pos[f], takers["t"][fills.owner[f]], chain[f]))
    f = f[order]
    ch = chain[f]
    uniq, first_pos = np.unique(ch, return_index=True)
    last_pos = np.concatenate([first_pos[1:], [f.size]]) - 1
    head, tail = f[first_pos], f[last_pos]
    side = -takers["side"][fills.owner[head]]
    price = fills.price[head]
    acct = account[head]
    t_first = takers["t"][fills.owner[head]]
    t_last = takers["t"][fills.owner[tail]]
    s_first = path.taker_state[fills.owner[head]]
    s_last = path.taker_state[fills.owner[tail]]
    filled = np.bincount(np.searchsorted(uniq, ch), weights=fills.lots[f], minlength=uniq.size).astype(np.int64)

    kind = takers["kind"][fills.owner[head]]
    grouped = takers["maker_group"][fills.owner[head]] >= 0
    forced = takers["maker_account"][fills.owner[head]] >= 0
    is_mm = np.isin(acct, spec.market_makers)
    role = np.select(
        [grouped & (kind == WASH), grouped & (kind == SPOOF_INDUCED), forced, is_mm],
        [ROLE_WASH, ROLE_SPOOF, ROLE_FORCED, ROLE_MM],
        ROLE_RETAIL,
    )
    age_s = np.select(
        [role == ROLE_WASH, role == ROLE_SPOOF, role == ROLE_FORCED, role == ROLE_MM],
        [rng.uniform(0.02, 2.0, head.size), rng.uniform(0.3, 3.0, head.size), rng.uniform(30, 1800, head.size),
         rng.lognormal(np.log(4.0), 1.0, head.size)],
        rng.lognormal(np.log(480.0), 1.5, head.size),
    )
    last_bad = path.search.last_cross(side, s_first - 1, price)
    since = np.where(last_bad >= 0, path.time[np.minimum(last_bad + 1, path.time.size - 1)], 0)
    inside_spread = (role == ROLE_WASH) & (price > path.bid[s_first - 1]) & (price < path.ask[s_first - 1])
    since = np.where(inside_spread, 0, since)
    t_new = np.clip(t_first - (age_s * US).astype(np.int64), since, t_first)
    t_new = np.maximum(t_new, 0)

    p_rest = np.choose(role, [0.45, 0.7, 0.5, 0.0, 0.3])
    extra = np.ceil(filled * rng.lognormal(-0.5, 0.8, head.size)).astype(np.int64)
    life_s = np.choose(role, [rng.lognormal(np.log(1200.0), 1.2, head.size), rng.exponential(20.0, head.size),
                              rng.uniform(10, 600, head.size), np.ones(head.size), rng.uniform(0.5, 5.0, head.size)])
    cancel, _ = _lifecycle_end(rng, path, side, s_last, price, t_last, life_s, 0.3)
    next_cross = path.crossing_time(side, s_last, price)
    has_rest = (rng.random(head.size) < p_rest) & (next_cross - t_last >= 2)
    has_rest &= path.search.first_cross(side, s_last, price) > s_last
    remainder = np.where(has_rest, extra, 0)

    local = first_local + np.arange(head.size)
    new_rows = rows(t_new, -1, 0, local, acct, side, price, filled + remainder, NEW)
    r = np.flatnonzero(has_rest & (cancel < spec.duration))  # the rest stay open at the end
    cancel_rows = rows(cancel[r], -1, 0, local[r], acct[r], side[r], price[r], remainder[r], CANCEL)
    maker_local = np.full(fills.owner.size, -1, dtype=np.int64)
    maker_local[f] = local[np.searchsorted(uniq, ch)]
    return concat_rows([new_rows, cancel_rows]), maker_local


def fill_rows(takers: Cols, fills: Fills, maker_local: np.ndarray, maker_account: np.ndarray, first_local: int) -> tuple[OrderRows, np.ndarray]:
    """Taker orders (new + fills) and the maker-side fill rows; returns the taker order id per fill."""
    v = np.flatnonzero(fills.valid)
    owner = fills.owner[v]
    used = np.unique(owner)
    taker_local = first_local + np.arange(used.size)
    t_local = taker_local[np.searchsorted(used, owner)]
    side = takers["side"][used]
    lots = np.bincount(np.searchsorted(used, owner), weights=fills.lots[v], minlength=used.size).astype(np.int64)
    slot = np.searchsorted(used, owner)
    worst = np.where(side > 0, 1, -1)
    limit = np.full(used.size, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(limit, slot, fills.price[v] * worst[slot])
    limit = limit * worst
    ts = takers["t"][owner]
    parts = [
        rows(takers["t"][used], used, 0, taker_local, takers["account"][used], side, limit, lots, NEW),
        rows(ts, owner, 1 + 2 * fills.pos[v], maker_local[v], maker_account[v], -takers["side"][owner],
             fills.price[v], fills.lots[v], FILL),
        rows(ts, owner, 2 + 2 * fills.pos[v], t_local, takers["account"][owner], takers["side"][owner],
             fills.price[v], fills.lots[v], FILL),
    ]
    taker_of_fill = np.full(fills.owner.size, -1, dtype=np.int64)
    taker_of_fill[v] = t_local
    return concat_rows(parts), taker_of_fill


def quote_rows(
    spec: SymbolSpec, config: SimulationConfig, rng: np.random.Generator, path: Path, first_local: int
) -> OrderRows:
    """Market makers' two-sided quotes: placed at or behind the touch, mostly cancelled within seconds.

    40 % of quotes are re-quotes right after the touch moved, as real quoting engines do.
    """
    interval = config.mm_quote_interval_s * np.sqrt(config.trades_per_day / spec.trades_per_day)
    per = spec.duration / US / interval
    counts = rng.poisson(per, (spec.market_makers.size, 2))
    mm = np.repeat(np.repeat(spec.market_makers, 2), counts.ravel())
    side = np.repeat(np.tile(np.array([1, -1], dtype=np.int8), spec.market_makers.size), counts.ravel())
    n = mm.size
    requote = rng.random(n) < 0.4
    t = rng.integers(0, spec.duration, n)
    after = path.time[rng.integers(0, path.time.size, n)] + rng.integers(1 * MS, 300 * MS, n)
    t = np.where(requote, after, t)
    offset = rng.choice([0, 0, 1, 2, 3], size=n)
    notional = spec.median_btc * 4 * rng.lognormal(0.0, 0.9, n)
    notional *= np.where(rng.random(n) < 0.03, rng.uniform(8, 25, n), 1.0)  # occasional big quote
    life = np.where(rng.random(n) < 0.85, rng.exponential(12.0, n), rng.lognormal(np.log(180.0), 1.0, n))
    return _resting_rows(spec, rng, path, t, side, offset * spec.gap, notional, mm, life, 0.08, first_local, drop_crossed=False)


def resting_rows(
    spec: SymbolSpec,
    config: SimulationConfig,
    rng: np.random.Generator,
    accounts: Accounts,
    path: Path,
    anchor_times: np.ndarray,
    n_retail_makers: int,
    first_local: int,
) -> OrderRows:
    """Retail limit orders away from the touch that never trade (cancelled after minutes or hours)."""
    n = rng.poisson(config.retail_resting_ratio * n_retail_makers)
    if n == 0 or anchor_times.size == 0:
        return rows(np.zeros(0), -1, 0, 0, 0, 0, 0, 0, NEW)
    t = anchor_times[rng.integers(0, anchor_times.size, n)] + rng.integers(-120 * US, 120 * US, n)
    side = np.where(rng.random(n) < 0.5, 1, -1).astype(np.int8)
    offset = np.maximum(1, np.ceil(rng.exponential(0.01, n) / spec.tick_rel)).astype(np.int64)
    notional = nice_numbers(spec.median_btc * 2 * rng.lognormal(0.0, 1.4, n), rng, config.round_size_share)
    acct = pick_traders(spec, accounts, rng, n)
    life = rng.lognormal(np.log(1200.0), 1.2, n)
    return _resting_rows(spec, rng, path, t, side, offset, notional, acct, life, 0.05, first_local, drop_crossed=True)


def _resting_rows(
    spec: SymbolSpec,
    rng: np.random.Generator,
    path: Path,
    t: np.ndarray,
    side: np.ndarray,
    offset_ticks: np.ndarray,
    notional: np.ndarray,
    account: np.ndarray,
    life_s: np.ndarray,
    modify_share: float,
    first_local: int,
    drop_crossed: bool,
) -> OrderRows:
    """Orders that never trade: new, maybe one modify away from the touch, then a cancel (or still open)."""
    ok = (t >= 0) & (t < spec.duration)
    t, side, offset_ticks, notional, account, life_s = (x[ok] for x in (t, side, offset_ticks, notional, account, life_s))
    state = path.state_at(t)
    price = np.maximum(path.touch(side, state) - side * offset_ticks, 1)
    lots = np.maximum(np.round(notional / (price * spec.tick) / spec.lot), 1).astype(np.int64)
    cancel, crossed = _lifecycle_end(rng, path, side, state + 1, price, t, life_s, 0.5)
    keep = ~crossed if drop_crossed else np.ones(t.size, dtype=bool)
    keep &= cancel > t
    t, side, price, lots, account, cancel = (x[keep] for x in (t, side, price, lots, account, cancel))
    local = first_local + np.arange(t.size)
    closed = cancel < spec.duration
    mod = np.flatnonzero((rng.random(t.size) < modify_share) & closed & (cancel - t > 2))
    mod_t = t[mod] + ((cancel[mod] - t[mod]) * rng.uniform(0.2, 0.8, mod.size)).astype(np.int64)
    deeper = rng.random(mod.size) < 0.5
    mod_price = np.where(deeper, np.maximum(price[mod] - side[mod] * spec.gap, 1), price[mod])
    mod_lots = np.where(deeper, lots[mod], np.maximum(np.round(lots[mod] * rng.uniform(0.5, 1.5, mod.size)), 1)).astype(np.int64)
    final_price, final_lots = price.copy(), lots.copy()
    final_price[mod], final_lots[mod] = mod_price, mod_lots
    c = np.flatnonzero(closed)
    return concat_rows([
        rows(t, -1, 0, local, account, side, price, lots, NEW),
        rows(mod_t, -1, 0, local[mod], account[mod], side[mod], mod_price, mod_lots, MODIFY),
        rows(cancel[c], -1, 0, local[c], account[c], side[c], final_price[c], final_lots[c], CANCEL),
    ])


def settle_groups(takers: Cols, path: Path, owner: np.ndarray, price: np.ndarray) -> None:
    """Fills planned against one resting order must trade at its price while it could still rest.

    The first fill of a group fixes the price; a later member that met another price (the
    market moved) or came after the order would have been traded through hits someone else.
    """
    group = takers["maker_group"][owner]
    idx = np.flatnonzero(group >= 0)
    if idx.size == 0:
        return
    idx = idx[np.lexsort((takers["t"][owner[idx]], group[idx]))]
    g = group[idx]
    first = np.concatenate([[True], g[1:] != g[:-1]])
    head = idx[np.maximum.accumulate(np.where(first, np.arange(idx.size), 0))]
    side = -takers["side"][owner[idx]]
    alive = path.search.first_cross(side, path.taker_state[owner[head]], price[head]) >= path.taker_state[owner[idx]]
    ok = first | ((price[idx] == price[head]) & alive)
    bad = owner[idx[~ok]]
    takers["maker_group"][bad] = -1
    takers["maker_account"][bad] = -1


def place_explicit(spec: SymbolSpec, rng: np.random.Generator, path: Path, orders: Cols) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Price planned resting orders on the touch at placement; pull them before they could be traded through.

    Returns (price ticks, lots, cancel time) per order.
    """
    state = path.state_at(orders["t"])
    side = orders["side"]
    price = np.maximum(path.touch(side, state) - side * orders["offset"], 1)
    lots = np.maximum(np.round(orders["notional"] / (price * spec.tick) / spec.lot), 1).astype(np.int64)
    life_s = (orders["t_cancel"] - orders["t"]) / US
    cancel, _ = _lifecycle_end(rng, path, side, state + 1, price, orders["t"], life_s, 0.2)
    return price, lots, np.maximum(cancel, orders["t"] + 1)


def explicit_rows(
    orders: Cols, price: np.ndarray, lots: np.ndarray, cancel: np.ndarray, filled: np.ndarray, first_local: int
) -> OrderRows:
    """New and cancel rows of planned resting orders (their fills come with the taker events)."""
    local = first_local + np.arange(price.size)
    return concat_rows([
        rows(orders["t"], -1, 0, local, orders["account"], orders["side"], price, lots, NEW),
        rows(cancel, -1, 0, local, orders["account"], orders["side"], price, lots - filled, CANCEL),
    ])
