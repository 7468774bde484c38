"""Trades and the orders behind them: taker orders priced on the touch path, the resting orders
they hit (placed honestly, partially filled, remainder cancelled) and the L3 rows of both.

A resting order may exist at price p only while the market never trades through p; the
first-passage search in `core.PathSearch` enforces that for every order at once, so the
L3 stream never shows a bid above a price that traded lower.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tapewatch.sources.simulator.config import SimulationConfig
from tapewatch.sources.simulator.core import (
    SPOOF_INDUCED,
    US,
    WASH,
    Accounts,
    Cols,
    SymbolSpec,
    nice_numbers,
    pick_traders,
)
from tapewatch.sources.simulator.path import Path

MERGE_PROBABILITY = 0.35
"""Chance that successive fills at one price come from the same resting order (partial fills)."""
MERGE_MAX_GAP_S = 1200.0
"""Fills further apart than this are never the same resting order."""

ACTIONS = ("new", "cancel", "fill", "modify")
AUTO_RANK = -1
"""Rank of rows not written by a taker: sorted after every taker event in the same µs."""
AFTER_TAKER = 1 << 40
"""`sub` that puts a row after all rows of the taker event it is ranked with."""
NEW, CANCEL, FILL, MODIFY = range(4)
ROLE_RETAIL, ROLE_MM, ROLE_FORCED, ROLE_WASH, ROLE_SPOOF = range(5)


@dataclass
class Fills:
    """One row per trade print, before accounts and orders are final."""

    owner: np.ndarray  # taker index
    pos: np.ndarray  # fill position within the taker order
    price: np.ndarray  # ticks
    lots: np.ndarray
    valid: np.ndarray  # False: a planned fill the book could not honour (dropped)
    swept: np.ndarray  # the taker went on to a deeper level: this resting order was used up


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
    levels_taken: np.ndarray,
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
    base[free] = nice_numbers(
        takers["notional"][free] / (touch_price[free] * spec.tick), rng, config.round_size_share
    )
    total = np.maximum(np.round(base / spec.lot), takers["n_fills"]).astype(np.int64)
    share = rng.exponential(1.0, owner.size)
    share /= np.bincount(owner, weights=share, minlength=takers["t"].size)[owner]
    lots = np.maximum(np.round(share * total[owner]), 1).astype(np.int64)
    return Fills(owner, pos, price, lots, valid, level < levels_taken[owner])


def _alternative(
    account: np.ndarray, avoid: np.ndarray, spec: SymbolSpec, accounts: Accounts, rng: np.random.Generator
) -> np.ndarray:
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
        & ~fills.swept[a]
    )
    can &= path.search.first_cross(f_side[a], f_state[a], fills.price[a]) >= f_state[b]
    join = can & (rng.random(a.size) < MERGE_PROBABILITY)
    chain = np.full(fills.owner.size, -1, dtype=np.int64)
    chain[idx] = np.cumsum(np.concatenate([[True], ~join])) - 1
    n_free = int(chain[idx].max()) + 1 if idx.size else 0
    head_mm = rng.random(n_free) < config.mm_maker_share
    chain_acct = np.where(
        head_mm, rng.choice(spec.market_makers, n_free), pick_traders(spec, accounts, rng, n_free)
    )

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
    clash = (account == taker_acct) & (takers["kind"][fills.owner] != WASH) & ~explicit
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


Column = np.ndarray | int
"""A row-set column: an array, or a scalar broadcast to every row."""


def rows(
    ts: Column,
    rank: Column,
    sub: Column,
    order: Column,
    account: Column,
    side: Column,
    price: Column,
    lots: Column,
    action: Column,
) -> OrderRows:
    """Build an OrderRows with scalars broadcast to the length of `ts`."""
    n = np.asarray(ts).size
    values = (ts, rank, sub, order, account, side, price, lots, action)
    types = (np.int64, np.int64, np.int64, np.int64, np.int64, np.int8, np.int64, np.int64, np.int8)
    return OrderRows(*[np.broadcast_to(np.asarray(v), (n,)).astype(t) for v, t in zip(values, types)])


def concat_rows(parts: list[OrderRows]) -> OrderRows:
    """Stack several row sets."""
    return OrderRows(
        *[np.concatenate([getattr(p, f) for p in parts]) for f in OrderRows.__dataclass_fields__]
    )


def lifecycle_end(
    rng: np.random.Generator,
    path: Path,
    side: np.ndarray,
    state: np.ndarray,
    price: np.ndarray,
    t_after: np.ndarray,
    life_s: np.ndarray,
    latency_max_s: float,
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
    order = np.lexsort((fills.pos[f], fills.owner[f], chain[f]))  # takers are in feed order
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
    filled = np.bincount(np.searchsorted(uniq, ch), weights=fills.lots[f], minlength=uniq.size).astype(
        np.int64
    )

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
        [
            rng.uniform(0.02, 2.0, head.size),
            rng.uniform(0.3, 3.0, head.size),
            rng.uniform(30, 1800, head.size),
            rng.lognormal(np.log(4.0), 1.0, head.size),
        ],
        rng.lognormal(np.log(480.0), 1.5, head.size),
    )
    last_bad = path.search.last_cross(side, s_first - 1, price)
    since = np.where(last_bad >= 0, path.time[np.minimum(last_bad + 1, path.time.size - 1)], 0)
    # a wash order inside the spread improves the touch: place it within the state it trades in
    inside_spread = (role == ROLE_WASH) & (price > path.bid[s_first - 1]) & (price < path.ask[s_first - 1])
    since = np.where(inside_spread, path.time[s_first - 1], since)
    t_new = np.minimum(t_first - (age_s * US).astype(np.int64), t_first)
    # older than the price has been there: placed some time after the price came to its level
    late = t_new < since
    t_new[late] = since[late] + ((t_first[late] - since[late]) * rng.random(int(late.sum()))).astype(np.int64)
    # placed in the very µs it trades (the price reached it by an earlier order in that µs):
    # sort it right after the taker before its filler
    head_taker = fills.owner[head]
    same = t_new == t_first
    new_rank = np.where(same, np.where(head_taker == 0, -2, head_taker - 1), AUTO_RANK)

    p_rest = np.choose(role, [0.45, 0.7, 0.5, 0.0, 0.3])
    extra = np.ceil(filled * rng.lognormal(-0.5, 0.8, head.size)).astype(np.int64)
    life_s = np.choose(
        role,
        [
            rng.lognormal(np.log(1200.0), 1.2, head.size),
            rng.exponential(20.0, head.size),
            rng.uniform(10, 600, head.size),
            np.ones(head.size),
            rng.uniform(0.5, 5.0, head.size),
        ],
    )
    cancel, _ = lifecycle_end(rng, path, side, s_last, price, t_last, life_s, 0.3)
    next_cross = path.crossing_time(side, s_last, price)
    has_rest = (rng.random(head.size) < p_rest) & (next_cross - t_last >= 2)
    has_rest &= (path.search.first_cross(side, s_last, price) > s_last) & ~fills.swept[tail]
    remainder = np.where(has_rest, extra, 0)

    local = first_local + np.arange(head.size)
    new_rows = rows(
        t_new, new_rank, np.where(same, AFTER_TAKER, 0), local, acct, side, price, filled + remainder, NEW
    )
    r = np.flatnonzero(has_rest & (cancel < spec.duration))  # the rest stay open at the end
    cancel_rows = rows(cancel[r], AUTO_RANK, 0, local[r], acct[r], side[r], price[r], remainder[r], CANCEL)
    maker_local = np.full(fills.owner.size, -1, dtype=np.int64)
    maker_local[f] = local[np.searchsorted(uniq, ch)]
    return concat_rows([new_rows, cancel_rows]), maker_local


def fill_rows(
    takers: Cols, fills: Fills, maker_local: np.ndarray, maker_account: np.ndarray, first_local: int
) -> tuple[OrderRows, np.ndarray]:
    """Taker orders (new + fills) and the maker-side fill rows; returns the taker order id per fill."""
    v = np.flatnonzero(fills.valid)
    owner = fills.owner[v]
    used = np.unique(owner)
    taker_local = first_local + np.arange(used.size)
    t_local = taker_local[np.searchsorted(used, owner)]
    side = takers["side"][used]
    lots = np.bincount(np.searchsorted(used, owner), weights=fills.lots[v], minlength=used.size).astype(
        np.int64
    )
    slot = np.searchsorted(used, owner)
    worst = np.where(side > 0, 1, -1)
    limit = np.full(used.size, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(limit, slot, fills.price[v] * worst[slot])
    limit = limit * worst
    ts = takers["t"][owner]
    parts = [
        rows(takers["t"][used], used, 0, taker_local, takers["account"][used], side, limit, lots, NEW),
        rows(
            ts,
            owner,
            1 + 2 * fills.pos[v],
            maker_local[v],
            maker_account[v],
            -takers["side"][owner],
            fills.price[v],
            fills.lots[v],
            FILL,
        ),
        rows(
            ts,
            owner,
            2 + 2 * fills.pos[v],
            t_local,
            takers["account"][owner],
            takers["side"][owner],
            fills.price[v],
            fills.lots[v],
            FILL,
        ),
    ]
    taker_of_fill = np.full(fills.owner.size, -1, dtype=np.int64)
    taker_of_fill[v] = t_local
    return concat_rows(parts), taker_of_fill


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
    alive = (
        path.search.first_cross(side, path.taker_state[owner[head]], price[head])
        >= path.taker_state[owner[idx]]
    )
    ok = first | ((price[idx] == price[head]) & alive)
    bad = owner[idx[~ok]]
    takers["maker_group"][bad] = -1
    takers["maker_account"][bad] = -1


def place_explicit(
    spec: SymbolSpec, rng: np.random.Generator, path: Path, orders: Cols
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Price planned resting orders on the touch at placement; pull them before they could be traded through.

    Returns (price ticks, lots, cancel time) per order.
    """
    state = path.state_at(orders["t"])
    side = orders["side"]
    price = np.maximum(path.touch(side, state) - side * orders["offset"], 1)
    lots = np.maximum(np.round(orders["notional"] / (price * spec.tick) / spec.lot), 1).astype(np.int64)
    life_s = (orders["t_cancel"] - orders["t"]) / US
    cancel, _ = lifecycle_end(rng, path, side, state + 1, price, orders["t"], life_s, 0.2)
    return price, lots, np.maximum(cancel, orders["t"] + 1)


def explicit_rows(
    orders: Cols,
    price: np.ndarray,
    lots: np.ndarray,
    cancel: np.ndarray,
    filled: np.ndarray,
    first_local: int,
) -> OrderRows:
    """New and cancel rows of planned resting orders (their fills come with the taker events)."""
    local = first_local + np.arange(price.size)
    return concat_rows(
        [
            rows(orders["t"], AUTO_RANK, 0, local, orders["account"], orders["side"], price, lots, NEW),
            rows(
                cancel, AUTO_RANK, 0, local, orders["account"], orders["side"], price, lots - filled, CANCEL
            ),
        ]
    )
