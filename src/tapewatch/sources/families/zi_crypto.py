"""Scenario family `zi_crypto`: small-cap BTC (and a few USDT) pairs with zero-intelligence order flow.

An independent market generator for judging wash-trading and spoofing detectors. Per symbol:
an anonymous Zipf-active crowd sends Poisson limit orders at random distances from the touch,
market orders, and constant-hazard cancellations (`zi_crypto_flow`), busier on UTC afternoons
and in news-like bursts; zero to two market makers cancel 85–95 % of their quotes; honest
look-alikes of abuse (a bot that self-matches now and then, an arbitrageur trading with one
maker all day, icebergs, large orders pulled within seconds) run beside them
(`zi_crypto_agents`); and `rate` manipulation episodes per symbol-day are injected and
labelled (`zi_crypto_abuse`). A matching engine with price-time priority (`zi_crypto_book`)
turns all of it into the venue's record.

Format, as a detector meets it:
- `orders` holds resting orders only: `new`, `cancel` (amount = what was still open) and
  `modify` (amount = the new, smaller open size). There are no `fill` rows: executions are in
  `trades` alone, with buyer, seller and the taker side, so a resting order that fills simply
  stops appearing. Its maker is the `seller` of a `buy` trade and the `buyer` of a `sell` one,
  and among one account's orders at that price the oldest fills first. Taker orders (market or
  immediate-or-cancel) never appear in `orders`.
- An iceberg refill is a `new` order (new id, same account, side and price) stamped with the
  trade that exhausted the tip; a book rebuilt from the feed applies order events before
  trades of the same microsecond. A sweep's trades share one timestamp.
- Self-trade prevention expires the resting order (`cancel` at the sweep's ts) unless the
  taker opted out: honest self-trades come only from the busy bot, the rest are wash trading.
  A spoof order a sweep reaches is pulled at the sweep's ts too, so spoof orders never fill.
- Account ids are opaque and shared across symbols (market-making firms quote several).
  `organic` names the honest look-alikes per symbol (kinds `volume_burst`, `market_maker`,
  `arbitrageur`, `self_matching_bot`, `iceberg`, `large_order_pulled`) for explaining false
  alarms; it is ground truth, not something a detector may read.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import polars as pl

from tapewatch.records import ORDER_SCHEMA, TIME, TRADE_SCHEMA
from tapewatch.sources.families.zi_crypto_abuse import Episode, start_abuse
from tapewatch.sources.families.zi_crypto_agents import Honest, start_honest
from tapewatch.sources.families.zi_crypto_book import ACTIONS, SIDES, Book
from tapewatch.sources.families.zi_crypto_flow import SymbolSpec, draw_flow, draw_spec
from tapewatch.sources.families.zi_crypto_sim import Market
from tapewatch.sources.simulator.labels import LABEL_SCHEMA, ORGANIC_SCHEMA
from tapewatch.sources.simulator.market import SimulatedMarket

FAMILY = "zi_crypto"
VENUE = "ziex"
START = datetime(2025, 3, 3, tzinfo=UTC)
ACCOUNT_SPACE = 60_000
FIRMS = 12
CROWD = (400, 1500)
FRESH_PER_SYMBOL = 400
REGULAR_RANK = 40
"""Crowd members this active (Zipf rank) are the 'regulars' whales and manipulators come from."""


def generate(
    seed: int, *, symbols: int = 8, hours: float = 24.0, rate: float = 1.0, honest_only: bool = False
) -> SimulatedMarket:
    """`symbols` symbols × `hours` of trades, L3 order events and labels; same arguments, same frames."""
    names = _account_names(seed)
    parts = [_symbol(seed, k, hours, 0.0 if honest_only else rate, names) for k in range(symbols)]
    trades = pl.concat([p[0] for p in parts]).sort(["venue", "symbol", "ts"], maintain_order=True)
    orders = pl.concat([p[1] for p in parts]).sort(["venue", "symbol", "ts"], maintain_order=True)
    labels = pl.concat([p[2] for p in parts]).sort(["symbol", "start"], maintain_order=True)
    organic = pl.concat([p[3] for p in parts]).sort(["symbol", "start"], maintain_order=True)
    return SimulatedMarket(trades=trades, orders=orders, labels=labels, organic=organic)


def _account_names(seed: int) -> np.ndarray:
    """Opaque account ids shared by all symbols: firms first, then the crowd, then fresh accounts."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xACC]))
    codes = rng.permutation(np.unique(rng.integers(16**7, 16**8, ACCOUNT_SPACE * 2)))[:ACCOUNT_SPACE]
    return np.array([f"acct-{code:08x}" for code in codes.tolist()], dtype=object)


def _symbol(
    seed: int, k: int, hours: float, rate: float, names: np.ndarray
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    spec_rng, flow_rng, agent_rng, loop_rng, abuse_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence([seed, k]).spawn(5)
    )
    spec = draw_spec(spec_rng, k, hours)
    seconds = hours * 3600.0
    crowd_size = int(spec_rng.integers(*CROWD))
    crowd = FIRMS + spec_rng.choice(ACCOUNT_SPACE // 2, crowd_size, replace=False)
    fresh = ACCOUNT_SPACE // 2 + FRESH_PER_SYMBOL * k + np.arange(FRESH_PER_SYMBOL)
    market = Market(spec, seconds, loop_rng, crowd)
    regulars = crowd[:REGULAR_RANK]
    honest = start_honest(market, agent_rng, np.arange(FIRMS), regulars)
    episodes = start_abuse(market, abuse_rng, rate, regulars, fresh, honest.roles["market_maker"], k)
    market.run(draw_flow(flow_rng, spec, seconds, crowd))
    prefix = f"{FAMILY}-{k}-"
    return (
        _trades(market.book, spec, names, prefix),
        _orders(market.book, spec, names, prefix),
        _labels(episodes, market.book, spec, names, prefix),
        _organic(spec, seconds, honest, names),
    )


def _us(offsets: list[int] | np.ndarray) -> pl.Series:
    """Engine µs offsets as UTC times from `START`."""
    start = int(START.timestamp()) * 1_000_000
    stamps = pl.Series(np.asarray(offsets, dtype=np.int64) + start)
    return stamps.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


def _decimals(step: float) -> int:
    return max(0, int(-np.floor(np.log10(step) + 1e-9)))


def _prices(ticks: list[int], spec: SymbolSpec) -> np.ndarray:
    return np.round(np.asarray(ticks, dtype=np.float64) * spec.tick, _decimals(spec.tick))


def _amounts(lots: list[int] | np.ndarray, spec: SymbolSpec) -> np.ndarray:
    return np.round(np.asarray(lots, dtype=np.float64) * spec.lot, _decimals(spec.lot))


def _pick(values: tuple[str, ...] | np.ndarray, codes: list[int]) -> np.ndarray:
    return np.asarray(values, dtype=object)[np.asarray(codes, dtype=np.int64)]


def _trades(book: Book, spec: SymbolSpec, names: np.ndarray, prefix: str) -> pl.DataFrame:
    tape = book.tape
    return _record_frame(
        TRADE_SCHEMA,
        spec,
        tape.trade_ts,
        tape.trade_side,
        tape.trade_price,
        tape.trade_lots,
        trade_id=[f"{prefix}t{i}" for i in range(len(tape.trade_ts))],
        buyer=_pick(names, tape.trade_buyer),
        seller=_pick(names, tape.trade_seller),
    )


def _orders(book: Book, spec: SymbolSpec, names: np.ndarray, prefix: str) -> pl.DataFrame:
    tape = book.tape
    return _record_frame(
        ORDER_SCHEMA,
        spec,
        tape.order_ts,
        tape.order_side,
        tape.order_price,
        tape.order_lots,
        order_id=[f"{prefix}o{oid}" for oid in tape.order_id],
        account=_pick(names, tape.order_account),
        action=_pick(ACTIONS, tape.order_action),
    )


def _record_frame(
    schema: dict[str, pl.DataType],
    spec: SymbolSpec,
    ts: list[int],
    side: list[int],
    ticks: list[int],
    lots: list[int],
    **own: list[str] | np.ndarray,
) -> pl.DataFrame:
    """Trades and order events alike: the tape's times, sides, ticks and lots in record units, plus `own`."""
    n = len(ts)
    columns = {
        "ts": _us(ts),
        "venue": [VENUE] * n,
        "symbol": [spec.name] * n,
        "side": _pick(SIDES, side),
        "price": _prices(ticks, spec),
        "amount": _amounts(lots, spec),
        **own,
    }
    return pl.DataFrame({name: columns[name] for name in schema}, schema=schema)


def _labels(
    episodes: list[Episode], book: Book, spec: SymbolSpec, names: np.ndarray, prefix: str
) -> pl.DataFrame:
    """One row per episode that reached at least one trade, spanning its trades and own order events.

    Details: wash trading names its `scheme`, ring size, laps, which member rested (`maker`),
    `pace` and the realised `volume_share` of the hour around it; spoofing and layering name
    the `variant` (the spoofer's execution as `taker` or as resting `maker`), the `tick` and
    each fake order with its side, the `touch` it was placed against and `distance_ticks`.
    Both list the episode's `trade_ids`.
    """
    ts = np.asarray(book.tape.trade_ts, dtype=np.int64)
    lots = np.asarray(book.tape.trade_lots, dtype=np.int64)
    rows = []
    for episode in (e for e in episodes if e.trades):
        own = ts[episode.trades]
        details = dict(episode.details)
        details["trade_ids"] = [f"{prefix}t{i}" for i in sorted(episode.trades)]
        details["volume"] = float(_amounts([lots[episode.trades].sum()], spec)[0])
        if episode.typology == "wash_trading":
            details["volume_share"] = round(_hour_share(ts, lots, episode.trades), 5)
        else:
            details["tick"] = spec.tick
            details["orders"] = [
                {**o, "order": f"{prefix}o{o['order']}", "touch": float(_prices([o["touch"]], spec)[0])}
                for o in details["orders"]
            ]
        stamps = np.concatenate([own, np.asarray(episode.stamps, dtype=np.int64)])
        rows.append(
            {
                "typology": episode.typology,
                "venue": VENUE,
                "symbol": spec.name,
                "start": int(stamps.min()),
                "end": int(stamps.max()),
                "event_time": int(own.min()),
                "accounts": ",".join(sorted(names[episode.accounts].tolist())),
                "details": json.dumps(details, sort_keys=True),
            }
        )
    return _frame(rows, LABEL_SCHEMA)


def _hour_share(ts: np.ndarray, lots: np.ndarray, mine: list[int]) -> float:
    """The share of the trades `mine` in all volume traded in the hour centred on them."""
    centre = (int(ts[mine].min()) + int(ts[mine].max())) // 2
    lo, hi = np.searchsorted(ts, [centre - 1_800_000_000, centre + 1_800_000_000])
    total = int(lots[lo:hi].sum())
    return float(lots[mine].sum()) / total if total else 0.0


def _organic(spec: SymbolSpec, seconds: float, honest: Honest, names: np.ndarray) -> pl.DataFrame:
    """Honest activity a detector may mistake for abuse: news bursts, and who plays each look-alike role.

    Kinds: `volume_burst` (news-like, one-sided), `market_maker`, `arbitrageur` (trades with the
    first market maker all day), `self_matching_bot`, `iceberg` (whole span, details name the
    accounts) and `large_order_pulled` (one row per honest large order pulled within seconds).
    """
    day = int(seconds * 1e6)
    rows = [
        _organic_row(
            spec,
            "volume_burst",
            int(b.start * 1e6),
            int(min(b.end, seconds) * 1e6),
            {"multiplier": round(b.multiplier, 2), "buy_share": round(b.buy_share, 2)},
        )
        for b in spec.bursts
    ]
    rows += [
        _organic_row(spec, kind, 0, day, {"accounts": sorted(set(names[accounts].tolist()))})
        for kind, accounts in honest.roles.items()
        if accounts
    ]
    rows += [
        _organic_row(spec, "large_order_pulled", placed, pulled, {"accounts": [str(names[account])]})
        for placed, pulled, account in honest.pulls
    ]
    return _frame(rows, ORGANIC_SCHEMA)


def _organic_row(
    spec: SymbolSpec, kind: str, start: int, end: int, details: dict[str, object]
) -> dict[str, object]:
    row = {"kind": kind, "venue": VENUE, "symbol": spec.name, "start": start, "end": end}
    return {**row, "details": json.dumps(details, sort_keys=True)}


def _frame(rows: list[dict[str, object]], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Rows with µs offsets in their time columns, as a frame of `schema` with UTC times."""
    if not rows:
        return pl.DataFrame(schema=schema)
    frame = pl.DataFrame(rows)
    times = [name for name, dtype in schema.items() if dtype == TIME]
    return frame.with_columns(_us(frame[name].to_numpy()).alias(name) for name in times).select(list(schema))
