"""Scenario family `hawkes_lob`: a full L3 limit order book with clustered (Hawkes) order flow.

Stock-like and USDT-quoted symbols from about $0.5 to $150 (tick 0.01, or 0.001 below $1)
trade in a price-time-priority book built order by order: many small orders at many levels,
market orders that walk the book, 3–6 market makers per symbol that requote constantly and
cancel most of what they post. The honest crowd includes what makes surveillance hard on real
venues: busy algorithms that now and then trade with themselves, whales that post large orders
and pull them within seconds, pairs of accounts that trade with each other all day, icebergs.
Injected manipulation: self-trades, round-trip rings of 2–6 accounts, spoofing and layering.

The L3 feed shows executions: every trade is also a `fill` row for the resting and for the
aggressing order. See `generate` for the data format.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import polars as pl

from tapewatch.errors import InputError
from tapewatch.records import ORDER_SCHEMA, TRADE_SCHEMA, conform
from tapewatch.sources.families import hawkes_lob_agents as agents
from tapewatch.sources.families.hawkes_lob_agents import Episode
from tapewatch.sources.families.hawkes_lob_flow import (
    US,
    Arrivals,
    Symbol,
    draw_symbol,
    fair_value,
    hawkes,
    lognormal_lots,
)
from tapewatch.sources.families.hawkes_lob_labels import label_rows, order_key, organic_rows, trade_key
from tapewatch.sources.families.hawkes_lob_sim import Background, MarketMaker, Sim
from tapewatch.sources.simulator.labels import LABEL_SCHEMA, ORGANIC_SCHEMA
from tapewatch.sources.simulator.market import SimulatedMarket

VENUE = "hawkeslob"
ORIGIN = datetime(2026, 3, 2, tzinfo=UTC)
ACTIONS = ("new", "cancel", "fill")


@dataclass(frozen=True)
class Roster:
    """The venue's accounts by role (indices into `names`); roles are never visible in the data."""

    names: list[str]
    makers: np.ndarray
    algos: np.ndarray
    whales: np.ndarray
    crowd: np.ndarray


@dataclass
class SymbolRun:
    """One symbol's raw output, before it becomes frames: engine units (µs, ticks, lots, indices)."""

    symbol: Symbol
    trades: np.ndarray  # rows as `Book.trades`
    events: np.ndarray  # rows as `Book.events`
    episodes: list[Episode]
    log: list[dict]


def generate(
    seed: int, *, symbols: int = 8, hours: float = 24.0, rate: float = 1.0, honest_only: bool = False
) -> SimulatedMarket:
    """Generate the market; the same arguments always give identical frames.

    Format notes: `ts` is µs UTC from 2026-03-02 00:00; trades of one aggressing order share
    its ts. Each order appears as `new` (marketable orders too, at their limit price), then one
    `fill` per execution (execution price and quantity), then, if anything is left and withdrawn,
    `cancel` with the quantity removed. Immediate-or-cancel orders that do not fill completely
    end in such a `cancel` at the same ts. Icebergs show each slice as a new order. There are no
    `modify` rows. Symbol k is the same whatever the number of symbols, and the honest part of
    a symbol does not depend on `rate` until the first episode starts.
    """
    if symbols < 1 or hours <= 0 or rate < 0:
        raise InputError(f"need symbols >= 1, hours > 0 and rate >= 0, got {symbols}, {hours}, {rate}")
    children = np.random.SeedSequence(seed).spawn(symbols + 1)
    roster = _roster(np.random.default_rng(children[0]))
    seconds = round(hours * 3600)
    runs = [
        _run_symbol(k, children[k + 1], roster, seconds, 0.0 if honest_only else rate) for k in range(symbols)
    ]
    names = pl.Series(roster.names, dtype=pl.String)
    trades = pl.concat([_trade_frame(k, run, names) for k, run in enumerate(runs)])
    orders = pl.concat([_order_frame(k, run, names) for k, run in enumerate(runs)])
    labels = [row for k, run in enumerate(runs) for row in label_rows(run, k, VENUE, ORIGIN, roster.names)]
    organic = [row for run in runs for row in organic_rows(run, VENUE, ORIGIN, roster.names)]
    return SimulatedMarket(
        trades=trades.sort(["venue", "symbol", "ts"], maintain_order=True),
        orders=orders.sort(["venue", "symbol", "ts"], maintain_order=True),
        labels=pl.DataFrame(labels, schema=LABEL_SCHEMA).sort(["symbol", "start"]),
        organic=pl.DataFrame(organic, schema=ORGANIC_SCHEMA).sort(["symbol", "start", "kind"]),
    )


def _roster(rng: np.random.Generator) -> Roster:
    """Account ids are opaque numbers; roles are drawn, not encoded in the id."""
    count = 2600
    ids = rng.choice(90_000_000, size=count, replace=False) + 10_000_000
    idx = np.arange(count)
    return Roster([str(i) for i in ids], idx[:14], idx[14:22], idx[22:60], idx[60:])


def _run_symbol(k: int, seq: np.random.SeedSequence, roster: Roster, seconds: int, rate: float) -> SymbolRun:
    shape, flow, market, honest, abuse = (np.random.default_rng(s) for s in seq.spawn(5))
    symbol = draw_symbol(shape, k)
    arrivals = hawkes(flow, symbol, seconds)
    crowd = shape.permutation(roster.crowd)
    algos = shape.choice(roster.algos, size=int(shape.integers(1, 3)), replace=False)
    background = _background(flow, symbol, arrivals.t.size, crowd, algos)
    makers = _makers(shape, symbol, roster)
    sim = Sim(symbol, market, arrivals, background, fair_value(flow, symbol, seconds), makers)
    log = [{"kind": "market_maker", "start": 0, "end": seconds * US, "accounts": [m.account]} for m in makers]
    log += [{"kind": "busy_algo", "start": 0, "end": seconds * US, "accounts": [int(a)]} for a in algos]
    _honest_scripts(sim, honest, roster, crowd, seconds, log)
    hour_lots = _hourly_volume(arrivals, background.lots, seconds)
    episodes = _episodes(sim, abuse, crowd, seconds, rate, hour_lots)
    sim.run(seconds * US)
    trades = np.array(sim.book.trades, dtype=np.int64).reshape(-1, 10)
    return SymbolRun(symbol, trades, np.array(sim.book.events, dtype=np.int64).reshape(-1, 8), episodes, log)


def _background(
    rng: np.random.Generator, symbol: Symbol, n: int, crowd: np.ndarray, algos: np.ndarray
) -> Background:
    """Who sends each background order, its size, where it rests and for how long.

    The crowd's activity is heavily skewed (a few accounts send a large share); each busy
    algorithm sends 4–8 % of all orders, on both sides, almost all with self-trade prevention,
    so only now and then does it meet itself.
    """
    weights = 1.0 / (np.arange(crowd.size) + 4.0) ** 1.1
    account = rng.choice(crowd, size=n, p=weights / weights.sum())
    stp = rng.random(n) < 0.9
    for algo in algos:
        mine = rng.random(n) < rng.uniform(0.04, 0.08)
        account = np.where(mine, algo, account)
        stp = np.where(mine, rng.random(n) < 0.97, stp)
    scale = max(1.0, symbol.half_spread)
    depth = np.floor(scale * rng.lognormal(0.0, 1.2, n)).astype(np.int64)
    life_s = np.minimum(rng.lognormal(np.log(45.0), 1.6, n), 6 * 3600)  # most short, a few all day
    return Background(
        account=account.tolist(),
        lots=lognormal_lots(rng, symbol.order_lots, 1.0, n).tolist(),
        depth=np.minimum(depth, 400).tolist(),
        inside=rng.random(n).tolist(),
        informed=rng.random(n).tolist(),
        stp=stp.tolist(),
        life_us=(life_s * US).astype(np.int64).tolist(),
    )


def _makers(rng: np.random.Generator, symbol: Symbol, roster: Roster) -> list[MarketMaker]:
    chosen = rng.choice(roster.makers, size=int(rng.integers(3, 7)), replace=False)
    makers = []
    for account in chosen.tolist():
        half = symbol.half_spread * rng.uniform(0.8, 1.6)
        makers.append(
            MarketMaker(
                account=account,
                half_spread=half,
                lots=symbol.order_lots * rng.uniform(1.0, 3.0),
                levels=int(rng.integers(1, 4)),
                gap=max(1, round(half * rng.uniform(0.5, 1.5))),
                interval_us=rng.uniform(4.0, 16.0) * US,
                refresh=float(rng.uniform(0.2, 0.4)),
                target=float(rng.uniform(0.82, 0.93)),
            )
        )
    return makers


def _honest_scripts(
    sim: Sim, rng: np.random.Generator, roster: Roster, crowd: np.ndarray, seconds: int, log: list[dict]
) -> None:
    """Whales, honest pairs and icebergs at random moments of the day."""
    days = seconds / 86_400
    for _ in range(rng.poisson(25 * days)):
        account = int(rng.choice(roster.whales))
        sim.start(rng.integers(0, seconds * US), agents.whale(sim, _child(rng), account, log))
    for _ in range(int(rng.integers(1, 3))):
        buyer, seller = (int(a) for a in rng.choice(crowd[20:300], size=2, replace=False))
        for _ in range(rng.poisson(3 * days)):
            burst = agents.pair(sim, _child(rng), buyer, seller, int(rng.integers(3, 11)), log)
            sim.start(rng.integers(0, seconds * US), burst)
    for _ in range(rng.poisson(6 * days)):
        account = int(rng.choice(np.concatenate([roster.whales, crowd[:10]])))
        sim.start(rng.integers(0, seconds * US), agents.iceberg(sim, _child(rng), account, log))


def _episodes(
    sim: Sim, rng: np.random.Generator, crowd: np.ndarray, seconds: int, rate: float, hour_lots: np.ndarray
) -> list[Episode]:
    """`rate` episodes per symbol-day (the fraction drawn), each a random kind at a random time."""
    count = episode_count(rng, rate, seconds)
    lead, tail = min(600, seconds // 10), min(1800, seconds // 3)
    episodes = []
    for i in range(count):
        start = int(rng.integers(lead, seconds - tail)) * US
        kind = rng.choice(["self_trade", "round_trip", "spoofing", "layering"])
        share = float(np.exp(rng.uniform(np.log(0.002), np.log(0.05))))
        volume = share * hour_lots[min(start // (3600 * US), hour_lots.size - 1)]
        episode, script = _episode(sim, _child(rng), i, str(kind), start, crowd, volume)
        episodes.append(episode)
        sim.start(start, script)
    return episodes


def episode_count(rng: np.random.Generator, rate: float, seconds: int) -> int:
    """`rate` per day over `seconds`: the whole part always, the fraction with its probability,
    so counts vary as little as they can around the rate."""
    expected = rate * seconds / 86_400
    return int(expected) + int(rng.random() < expected - int(expected))


def _episode(
    sim: Sim, rng: np.random.Generator, i: int, kind: str, start: int, crowd: np.ndarray, volume: float
) -> tuple[Episode, agents.Script]:
    """The episode's accounts, sizes and script. A self-trader is a busy account half the time."""
    if kind == "self_trade":
        pool = crowd[:15] if rng.random() < 0.5 else crowd[100:]
        trades = int(rng.integers(5, 19))
        episode = Episode(
            i, "wash_trading", kind, [int(rng.choice(pool))], start, max(1, round(volume / trades))
        )
        return episode, agents.self_trade(sim, rng, episode, trades)
    if kind == "round_trip":
        members = [int(a) for a in rng.choice(crowd[20:], size=int(rng.integers(2, 7)), replace=False)]
        laps = int(rng.integers(2, 6))
        lots = max(1, round(volume / (laps * len(members))))
        episode = Episode(i, "wash_trading", kind, members, start, lots)
        return episode, agents.round_trip(sim, rng, episode, laps)
    layers = int(rng.integers(3, 6)) if kind == "layering" else 1
    episode = Episode(i, kind, None, [int(rng.choice(crowd[5:]))], start, 0)
    script = agents.spoof(sim, rng, episode, layers, int(rng.integers(1, 4)), bool(rng.random() < 0.5))
    return episode, script


def _child(rng: np.random.Generator) -> np.random.Generator:
    """An independent stream for one script, so scripts do not shift each other's draws."""
    return np.random.default_rng(rng.integers(2**63))


def _hourly_volume(arrivals: Arrivals, lots: list[int], seconds: int) -> np.ndarray:
    """Background market-order lots per clock hour: the symbol's traded volume, known up front."""
    hours = max(1, int(np.ceil(seconds / 3600)))
    hour = arrivals.t[arrivals.market] // (3600 * US)
    return np.bincount(hour, weights=np.asarray(lots)[arrivals.market], minlength=hours)


def _trade_frame(k: int, run: SymbolRun, names: pl.Series) -> pl.DataFrame:
    ts, price, lots, side, buyer, seller = run.trades[:, :6].T
    return _record_frame(
        run,
        TRADE_SCHEMA,
        ts,
        side,
        price,
        lots,
        trade_id=pl.Series(trade_key(k, np.arange(ts.size))).cast(pl.String),
        buyer=names.gather(buyer),
        seller=names.gather(seller),
    )


def _order_frame(k: int, run: SymbolRun, names: pl.Series) -> pl.DataFrame:
    ts, oid, account, side, price, lots, action = run.events[:, :7].T
    return _record_frame(
        run,
        ORDER_SCHEMA,
        ts,
        side,
        price,
        lots,
        order_id=pl.Series(order_key(k, oid)).cast(pl.String),
        account=names.gather(account),
        action=np.asarray(ACTIONS)[action],
    )


def _record_frame(
    run: SymbolRun,
    schema: dict[str, pl.DataType],
    ts: np.ndarray,
    side: np.ndarray,
    price: np.ndarray,
    lots: np.ndarray,
    **own: pl.Series | np.ndarray,
) -> pl.DataFrame:
    """Trades and order events alike: internal ticks, lots and ±1 sides in record units, plus `own` columns."""
    symbol = run.symbol
    shared = {
        "ts": _times(ts),
        "venue": VENUE,
        "symbol": symbol.name,
        "side": np.where(side > 0, "buy", "sell"),
        "price": np.round(price * symbol.tick, 6),
        "amount": np.round(lots * symbol.lot, 8),
    }
    return conform(pl.DataFrame(shared | own), schema)


def _times(us: np.ndarray) -> pl.Series:
    epoch = int(ORIGIN.timestamp()) * US
    return pl.Series("ts", us + epoch).cast(pl.Datetime("us", "UTC"))
