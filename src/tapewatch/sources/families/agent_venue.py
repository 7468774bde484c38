"""agent_venue: an agent-based mid-cap crypto exchange, written blind to the detectors.

The market is a continuous double auction with price-time priority on integer ticks, driven by
populations of agents rather than by arrival processes fitted to a tape:

- 2–8 market makers per symbol quote ladders of 3–5 levels a side around the reference price of
  a bigger exchange, skewed by inventory, re-pricing on every reference move past their
  hysteresis with latencies from 1 ms to 0.4 s; most of what they post is cancelled, and the
  fastest probe wide spreads with small orders pulled within 3–45 ms;
- arbitrage bots take quotes the slowest maker left stale, so the same bot–maker pair trades
  over and over in both directions (an honest repeat counterparty);
- retail sessions of small market orders (and a few limit orders) following the UTC day,
  leaning towards the heavier side of the visible book; momentum and mean-reversion traders
  waking every few minutes;
- whales working TWAP parents, icebergs refreshing at one price, and large orders shown near the
  touch and pulled within seconds (one in ten followed by a trade on the other side);
- a busy algo with self-trade prevention off whose taker orders sometimes meet its own quote;
  everyone else has the venue's STP (expire the resting order).

Format as a detector meets it (one venue, `agentx`; symbols like `QZVK/USDT` or `BRT/USD`,
priced $0.002–$40, ticks 1–20 bp of the price):

- trades: every execution, with taker `side`, `buyer`/`seller` as opaque 8-hex account ids and
  a numeric `trade_id`; a taker sweeping several levels prints one trade per maker order, all
  with the same µs timestamp;
- orders (L3): the book only. `new` when an order comes to rest (taker orders never rest and are
  absent), `cancel` for a pull or an STP expiry (amount = what was left), and, on every other
  symbol (which half is drawn per market), `fill` rows for resting orders that executed (amount = the
  fill, price = the trade's); on the others executions are only in the trades. No `modify`;
  an iceberg's refresh is a new order id at the same price.
- labels (LABEL_SCHEMA): wash_trading (`scheme` self_trade or round_trip), spoofing and layering,
  each spanning every order event and trade of its episode, naming the account(s), with the
  trade ids and order ids that make it up; an episode that left no wash print, or a spoof
  without an execution on the other side, is not labelled.
- organic (ORGANIC_SCHEMA): the honest look-alikes per symbol: TWAP parents, icebergs, pulled
  large orders (with a flag when the same account traded the other side), and whole-run rows
  with each maker's cancel ratio, the busy algo's self-match share and each arbitrage bot's
  repeat counterparty.

`rate` is manipulation episodes per symbol-day (Poisson per symbol); kinds go round a shuffled
cycle of self_trade, round_trip, spoofing, layering over the whole market, so any run with four
episodes or more has every kind. Manipulators are active traders of the symbol who otherwise
trade honestly (self-trades are a minority of the washer's prints). Episode volume is drawn
log-uniform in 0.2–5 % of the symbol's daily volume (as measured so far in the run); spoof
executions are capped at four maker levels a cycle, so their share is lower. A round-trip ring
redoes a leg an outsider took, so most rings come back exactly to even; a leg that fails eight
times is given up (the label's `net_position` shows it).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from tapewatch.records import ORDER_SCHEMA, TIME, TRADE_SCHEMA, empty_frame
from tapewatch.sources.families.agent_venue_abuse import KINDS
from tapewatch.sources.families.agent_venue_labels import (
    SymbolTape,
    episode_label,
    organic_details,
    summary_rows,
)
from tapewatch.sources.families.agent_venue_sim import Pools, SymbolRun, simulate_symbol
from tapewatch.sources.families.agent_venue_world import US, draw_instrument, poisson
from tapewatch.sources.simulator.labels import LABEL_SCHEMA, ORGANIC_SCHEMA
from tapewatch.sources.simulator.market import SimulatedMarket

VENUE = "agentx"
ORIGIN = datetime(2026, 3, 2, tzinfo=UTC)
SIDES = np.array(["sell", "", "buy"])
ACTIONS = np.array(["new", "cancel", "fill"])


def generate(
    seed: int, *, symbols: int = 8, hours: float = 24.0, rate: float = 1.0, honest_only: bool = False
) -> SimulatedMarket:
    """A labelled agent_venue market of `symbols` pairs over `hours`; the same arguments give the same frames."""
    root = f"agent_venue/{seed}"
    names, pools = _accounts(random.Random(f"{root}/accounts"))
    duration = int(hours * 3600 * US)
    cycle = list(KINDS)
    market_rnd = random.Random(f"{root}/kinds")
    market_rnd.shuffle(cycle)
    fills_parity = market_rnd.randint(0, 1)
    taken: set[str] = set()
    trades, orders, labels, organic = [], [], [], []
    next_kind = next_episode = 0
    for index in range(symbols):
        seed_k = f"{root}/symbol/{index}"
        instrument = draw_instrument(random.Random(f"{seed_k}/listing"), taken, index % 2 == fills_parity)
        count = 0 if honest_only else poisson(random.Random(f"{seed_k}/count"), rate * hours / 24.0)
        kinds = [cycle[(next_kind + j) % len(cycle)] for j in range(count)]
        next_kind += count
        run = simulate_symbol(instrument, pools, duration, kinds, seed_k, next_episode)
        next_episode += count
        tape = SymbolTape(run.world.tape, ORIGIN, index)
        trades.append(_trades(tape, run, names))
        orders.append(_orders(tape, run, names))
        labels += _labels(tape, run, names)
        organic += _organic(tape, run, names)
    return SimulatedMarket(
        trades=pl.concat(trades).sort("venue", "symbol", "ts", maintain_order=True),
        orders=pl.concat(orders).sort("venue", "symbol", "ts", maintain_order=True),
        labels=_frame(labels, LABEL_SCHEMA).sort("symbol", "start"),
        organic=_frame(organic, ORGANIC_SCHEMA).sort("symbol", "start"),
    )


def _accounts(rnd: random.Random) -> tuple[list[str], Pools]:
    """Venue-wide opaque account names and the pools of each population."""
    sizes = {"makers": 10, "arbs": 3, "whales": 6, "busy": 1, "active": 240, "retail": 6000}
    total = sum(sizes.values())
    names = [f"{value:08x}" for value in rnd.sample(range(16**7, 16**8), total)]
    ids = iter(range(total))
    groups = {key: [next(ids) for _ in range(size)] for key, size in sizes.items()}
    return names, Pools(
        makers=groups["makers"],
        arbs=groups["arbs"],
        whales=groups["whales"],
        busy=groups["busy"][0],
        active=groups["active"],
        retail=groups["retail"],
    )


def _common(tape: SymbolTape, ts: np.ndarray, run: SymbolRun) -> dict[str, Any]:
    origin_us = int(tape.origin.timestamp() * US)
    return {
        "ts": pl.Series(origin_us + ts, dtype=pl.Int64).cast(TIME),
        "venue": pl.repeat(VENUE, ts.size, eager=True, dtype=pl.String),
        "symbol": pl.repeat(run.instrument.name, ts.size, eager=True, dtype=pl.String),
    }


def _trades(tape: SymbolTape, run: SymbolRun, names: list[str]) -> pl.DataFrame:
    t, inst, lookup = tape.t, run.instrument, pl.Series(names, dtype=pl.String)
    if t["ts"].size == 0:
        return empty_frame(TRADE_SCHEMA)
    return pl.DataFrame(
        {
            **_common(tape, t["ts"], run),
            "price": np.round(t["price"] * inst.tick, 12),
            "amount": np.round(t["qty"] * inst.lot, 10),
            "side": SIDES[t["side"] + 1],
            "trade_id": tape.trade_ids(np.arange(t["ts"].size)),
            "buyer": lookup.gather(t["buyer"]),
            "seller": lookup.gather(t["seller"]),
        },
        schema=TRADE_SCHEMA,
    )


def _orders(tape: SymbolTape, run: SymbolRun, names: list[str]) -> pl.DataFrame:
    o, inst, lookup = tape.o, run.instrument, pl.Series(names, dtype=pl.String)
    if o["ts"].size == 0:
        return empty_frame(ORDER_SCHEMA)
    return pl.DataFrame(
        {
            **_common(tape, o["ts"], run),
            "order_id": tape.order_ids(o["oid"]),
            "account": lookup.gather(o["account"]),
            "side": SIDES[o["side"] + 1],
            "price": np.round(o["price"] * inst.tick, 12),
            "amount": np.round(o["qty"] * inst.lot, 10),
            "action": ACTIONS[o["action"]],
        },
        schema=ORDER_SCHEMA,
    )


def _labels(tape: SymbolTape, run: SymbolRun, names: list[str]) -> list[dict[str, Any]]:
    rows = []
    for episode in run.episodes:
        row = episode_label(episode, tape, names, run.instrument.lot)
        if row is not None:
            rows.append({"venue": VENUE, "symbol": run.instrument.name, **row})
    return rows


def _organic(tape: SymbolTape, run: SymbolRun, names: list[str]) -> list[dict[str, Any]]:
    end = run.world.duration
    events = [(kind, start, min(stop, end), details) for kind, start, stop, details in run.world.organic]
    events += [(kind, 0, end, details) for kind, details in summary_rows(tape, run.roles, names)]
    return [
        {
            "kind": kind,
            "venue": VENUE,
            "symbol": run.instrument.name,
            "start": ORIGIN + timedelta(microseconds=start),
            "end": ORIGIN + timedelta(microseconds=stop),
            "details": organic_details(details, names),
        }
        for kind, start, stop, details in events
    ]


def _frame(rows: list[dict[str, Any]], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else empty_frame(schema)
