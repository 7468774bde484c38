"""One symbol end to end: plan scenarios, generate the flow, build the book, and return the
trades and L3 rows in numeric form with published ids (the simulator turns them into frames).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tapewatch.sources.simulator import book
from tapewatch.sources.simulator.config import SimulationConfig
from tapewatch.sources.simulator.core import (
    BACKGROUND,
    ORDER_DEFAULTS,
    TAKER_DEFAULTS,
    US,
    Accounts,
    Cols,
    Episode,
    Injection,
    ScenarioInputs,
    SymbolSpec,
    concat_cols,
    draw_symbol,
    take,
)
from tapewatch.sources.simulator.flow import background_takers, plan_organic
from tapewatch.sources.simulator.path import build_path, sweep_levels
from tapewatch.sources.simulator.pump import inject_pump, plan_pumps
from tapewatch.sources.simulator.quotes import quote_rows, resting_rows
from tapewatch.sources.simulator.spoof import inject_spoof, plan_spoofs
from tapewatch.sources.simulator.wash import inject_wash, plan_wash

ORGANIC_FIRST_ID = 1_000_000
HIT_MAX_SHARE = 0.05
"""A spoof order that is 'barely filled' loses at most this share of its size."""
ID_STRIDE = 1_000_000_000
"""Published ids are (symbol number)·ID_STRIDE + sequence, unique across the whole market."""


@dataclass
class SymbolResult:
    """Everything one symbol produced, ready to become frames."""

    spec: SymbolSpec
    trades: Cols
    """ts, price (ticks), lots, side, buyer, seller, trade_id, maker_order, taker_order, episode, kind."""
    orders: Cols
    """ts, order_id, account, side, price (ticks), lots, action, episode (spoof orders)."""
    episodes: list[Episode]
    organic: list[Episode]


def plan_scenarios(
    spec: SymbolSpec, config: SimulationConfig, accounts: Accounts, rng: np.random.Generator
) -> Injection:
    """All injected manipulations and organic events for one symbol; pumps first, others keep clear of them."""
    inputs = ScenarioInputs(spec, config, accounts, rng)
    plan = Injection()
    next_id = 0
    for t0 in plan_pumps(spec, config, rng):
        plan.merge(inject_pump(inputs, t0, next_id))
        next_id += 1
    pumps = [(e.start - 60 * US, e.end) for e in plan.episodes]
    for t0 in plan_wash(spec, config, rng):
        plan.merge(inject_wash(inputs, t0, next_id))
        next_id += 1
    for t0 in plan_spoofs(spec, config, rng, pumps):
        placed = sum(o["t"].size for o in plan.orders)
        plan.merge(inject_spoof(inputs, t0, next_id, placed))
        next_id += 1
    plan.merge(plan_organic(spec, config, rng, pumps, ORGANIC_FIRST_ID))
    return plan


def _bias_makers(takers: Cols, plan: Injection, rng: np.random.Generator) -> None:
    """Let planned accounts be the resting side of some background fills (organisers' quiet bids)."""
    for lo, hi, resting_side, who, probability in plan.maker_bias:
        hit = (
            (takers["kind"] == BACKGROUND)
            & (takers["side"] == -resting_side)
            & (takers["t"] >= lo)
            & (takers["t"] < hi)
            & (rng.random(takers["t"].size) < probability)
        )
        takers["maker_account"][hit] = rng.choice(who, int(hit.sum()))


def simulate_symbol(
    index: int, config: SimulationConfig, accounts: Accounts, rng: np.random.Generator
) -> SymbolResult:
    """Generate one symbol's market: flow, path, fills, resting orders, quotes, and the episodes."""
    spec = draw_symbol(index, config, accounts, rng)
    plan = plan_scenarios(spec, config, accounts, rng)
    takers, vol = _all_takers(spec, config, accounts, rng, plan)
    owner, pos, level = sweep_levels(rng, takers["n_fills"])
    levels_taken = np.zeros(takers["t"].size, dtype=np.int64)
    np.maximum.at(levels_taken, owner, level)
    path = build_path(spec, rng, takers, levels_taken, plan.curves, plan.sample_times, vol)

    planned = concat_cols(plan.orders, ORDER_DEFAULTS)
    x_price, x_lots, x_cancel = book.place_explicit(spec, rng, path, planned)
    fills = book.price_fills(spec, config, rng, takers, path, owner, pos, level, x_price, levels_taken)
    book.settle_groups(takers, path, owner, fills.price)
    x_of_fill = takers["explicit_order"][owner]
    hit = np.flatnonzero(x_of_fill >= 0)
    x = x_of_fill[hit]
    t_hit = takers["t"][owner[hit]]
    fills.valid[hit] &= (t_hit > planned["t"][x]) & (t_hit < x_cancel[x])
    fills.lots[hit] = np.minimum(fills.lots[hit], np.maximum(1, (x_lots[x] * HIT_MAX_SHARE).astype(np.int64)))

    chain, maker_account = book.maker_chains(spec, config, rng, accounts, takers, path, fills)
    chain_rows, maker_local = book.chain_orders(
        spec, rng, takers, path, fills, chain, maker_account, x_of_fill, 0
    )
    x_local = _next_id(chain_rows) + np.arange(x_price.size)
    maker_local[hit] = x_local[x]
    x_filled = np.bincount(
        x[fills.valid[hit]], weights=fills.lots[hit][fills.valid[hit]], minlength=x_price.size
    )
    x_rows = book.explicit_rows(
        planned, x_price, x_lots, x_cancel, x_filled.astype(np.int64), int(x_local[0]) if x_local.size else 0
    )
    taker_rows, taker_local = book.fill_rows(
        takers, fills, maker_local, maker_account, _next_id(chain_rows, x_rows)
    )
    quotes = quote_rows(spec, config, rng, path, _next_id(chain_rows, x_rows, taker_rows))
    retail_makers = np.unique(chain[fills.valid & ~np.isin(maker_account, spec.market_makers)]).size
    bg_times = takers["t"][takers["kind"] == BACKGROUND]
    first = _next_id(chain_rows, x_rows, taker_rows, quotes)
    resting = resting_rows(spec, config, rng, accounts, path, bg_times, retail_makers, first)

    all_rows = book.concat_rows([chain_rows, x_rows, taker_rows, quotes, resting])
    orders, published = _publish_orders(spec, all_rows, takers["t"], planned["episode"], x_local)
    trades = _publish_trades(spec, takers, fills, maker_account, maker_local, taker_local, published)
    episodes = [e for e in plan.episodes if e.id < ORGANIC_FIRST_ID]
    organic = [e for e in plan.episodes if e.id >= ORGANIC_FIRST_ID]
    return SymbolResult(spec, trades, orders, episodes, organic)


def _all_takers(
    spec: SymbolSpec, config: SimulationConfig, accounts: Accounts, rng: np.random.Generator, plan: Injection
) -> tuple[Cols, np.ndarray]:
    """Background and injected taker orders in feed order, and the per-bin volatility scale."""
    background, vol = background_takers(spec, config, accounts, rng, plan.boosts)
    _bias_makers(background, plan, rng)
    takers = concat_cols([background, *plan.takers], TAKER_DEFAULTS)
    takers = take(takers, (takers["t"] >= 0) & (takers["t"] < spec.duration))
    return take(takers, np.argsort(takers["t"], kind="stable")), vol


def _next_id(*parts: book.OrderRows) -> int:
    """First free local order number after the given row sets."""
    return max((int(p.order.max()) + 1 for p in parts if p.order.size), default=0)


def _publish_orders(
    spec: SymbolSpec, r: book.OrderRows, taker_t: np.ndarray, x_episode: np.ndarray, x_local: np.ndarray
) -> tuple[Cols, np.ndarray]:
    """Sort L3 rows into feed order and number orders by their arrival (as a venue would).

    Rows not written by a taker event go after every taker event of the same µs: an order
    placed in the µs the price moved was placed in reaction to that move.
    """
    auto = r.rank == book.AUTO_RANK
    rank = np.where(auto, np.searchsorted(taker_t, r.ts, side="right") - 1, r.rank)
    sub = np.where(auto, book.AFTER_TAKER, r.sub)
    order = np.lexsort((r.order, sub, rank, r.ts))
    n_local = int(r.order.max()) + 1 if r.order.size else 0
    is_new = r.action[order] == book.NEW
    published = np.full(n_local, -1, dtype=np.int64)
    published[r.order[order][is_new]] = (spec.index + 1) * ID_STRIDE + np.arange(int(is_new.sum()))
    episode = np.full(n_local, -1, dtype=np.int64)
    episode[x_local] = x_episode
    cols = {
        "ts": r.ts[order],
        "order_id": published[r.order[order]],
        "account": r.account[order],
        "side": r.side[order],
        "price": r.price[order],
        "lots": r.lots[order],
        "action": r.action[order],
        "episode": episode[r.order[order]],
    }
    return cols, published


def _publish_trades(
    spec: SymbolSpec,
    takers: Cols,
    fills: book.Fills,
    maker_account: np.ndarray,
    maker_local: np.ndarray,
    taker_local: np.ndarray,
    published: np.ndarray,
) -> Cols:
    """Trade prints in time order with buyer/seller and the orders on each side."""
    v = np.flatnonzero(fills.valid)
    v = v[np.lexsort((fills.pos[v], fills.owner[v]))]  # takers are already in time order
    owner = fills.owner[v]
    side = takers["side"][owner]
    taker = takers["account"][owner]
    maker = maker_account[v]
    return {
        "ts": takers["t"][owner],
        "price": fills.price[v],
        "lots": fills.lots[v],
        "side": side,
        "buyer": np.where(side > 0, taker, maker),
        "seller": np.where(side > 0, maker, taker),
        "trade_id": (spec.index + 1) * ID_STRIDE + np.arange(v.size),
        "maker_order": published[maker_local[v]],
        "taker_order": published[taker_local[v]],
        "episode": takers["episode"][owner],
        "kind": takers["kind"][owner],
    }
