"""Hand-built L3 tapes and a simulated spoofing market shared by the L3 and L2 spoofing tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache

import polars as pl

from tapewatch.detect.base import DetectorState
from tapewatch.io.derive import order_events
from tapewatch.records import ORDER_SCHEMA, TRADE_SCHEMA, conform
from tapewatch.sources.simulator.market import SimulatedMarket, SimulationConfig, simulate_market

T0 = datetime(2024, 1, 1, tzinfo=UTC)
SPOOF_AT = 1200.0
"""Seconds after T0 when the hand-built scenarios start (after 20 minutes of background)."""


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class Tape:
    """A hand-built L3 stream: rows appended in feed order, one symbol, and the trades printed beside it."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.prints: list[dict] = []

    def add(self, t: float, order_id: str, account: str, side: str, price: float, amount: float, action: str):
        self.rows.append(
            {
                "ts": at(t),
                "venue": "v",
                "symbol": "S/BTC",
                "order_id": order_id,
                "account": account,
                "side": side,
                "price": price,
                "amount": amount,
                "action": action,
            }
        )

    def trade(
        self, t: float, taker: str, taker_side: str, maker_order: str, maker: str, price: float, amount: float
    ):
        """A taker order that fills against a resting one in the same instant."""
        taker_id = f"{taker}-{t}"
        self.add(t, taker_id, taker, taker_side, price, amount, "new")
        maker_side = "sell" if taker_side == "buy" else "buy"
        self.add(t, maker_order, maker, maker_side, price, amount, "fill")
        self.add(t, taker_id, taker, taker_side, price, amount, "fill")
        return taker_id

    def print_trade(
        self, t: float, buyer: str, seller: str, taker_side: str, price: float, amount: float
    ) -> str:
        """A trade naming both parties, as the venue's trade feed shows it (no L3 fill is added)."""
        trade_id = f"t{len(self.prints)}"
        self.prints.append(
            {
                "ts": at(t),
                "venue": "v",
                "symbol": "S/BTC",
                "price": price,
                "amount": amount,
                "side": taker_side,
                "trade_id": trade_id,
                "buyer": buyer,
                "seller": seller,
            }
        )
        return trade_id

    def frame(self) -> pl.DataFrame:
        return conform(pl.DataFrame(self.rows), ORDER_SCHEMA).sort("ts", maintain_order=True)

    def trades(self) -> pl.DataFrame:
        trades = conform(pl.DataFrame(self.prints, schema=TRADE_SCHEMA), TRADE_SCHEMA)
        return trades.sort("ts", maintain_order=True)

    def events(self) -> pl.DataFrame:
        """The order events with the printed trades merged in, as the engines feed the L3 detector."""
        return order_events(self.frame(), self.trades())


def background(tape: Tape, until: float = SPOOF_AT + 60) -> None:
    """Small two-sided quotes from ten accounts, each pulled after 20 s: the symbol's typical size."""
    for k, t in enumerate(range(0, int(until), 3)):
        account = f"bg{k % 10}"
        for side, price in (("buy", 99.99), ("sell", 100.01)):
            tape.add(t, f"q{k}{side}", account, side, price, 10.0, "new")
            tape.add(t + 20, f"q{k}{side}", account, side, price, 10.0, "cancel")
    tape.rows.sort(key=lambda row: row["ts"])


def spoof(
    tape: Tape,
    t: float,
    account: str,
    prices: list[float],
    execute: bool = True,
    fill: bool = False,
    pull_after: float = 7.0,
    replace_with: float | None = None,
):
    """Big bids at `prices`, a sell by the same account hitting a background bid 5 s in, then the bids
    pulled `pull_after` s in (each replaced, in the same instant, by a bid of `replace_with` one tick
    lower when given: a requote)."""
    ids = [f"{account}-spoof-{t}-{i}" for i in range(len(prices))]
    for i, (order_id, price) in enumerate(zip(ids, prices, strict=True)):
        tape.add(t + 0.2 * i, order_id, account, "buy", price, 200.0, "new")
    if fill:
        tape.add(t + 3, ids[0], account, "buy", prices[0], 200.0, "fill")
    execution = None
    if execute:
        tape.add(t + 4, f"bgbid-{t}", "bg9", "buy", 99.99, 10.0, "new")
        execution = tape.trade(t + 5, account, "sell", f"bgbid-{t}", "bg9", 99.99, 10.0)
    for i, order_id in enumerate(ids):
        if not fill or i:
            pulled = t + pull_after + 0.1 * i
            tape.add(pulled, order_id, account, "buy", prices[i], 200.0, "cancel")
            if replace_with is not None:
                tape.add(pulled, f"{order_id}-requote", account, "buy", prices[i] - 0.01, replace_with, "new")
    tape.rows.sort(key=lambda row: row["ts"])
    return ids, execution


def crowd(tape: Tape, accounts: int, until: float = SPOOF_AT) -> None:
    """`accounts` honest accounts that each rest one big bid for 5 s in the 10 minutes before `until`
    and pull it, untied to any execution of theirs: spoof-shaped orders a busy symbol shows every hour."""
    for k in range(accounts):
        t = until - 600 + k * 600 / accounts
        tape.add(t, f"crowd-{k}", f"crowd{k}", "buy", 99.99, 200.0, "new")
        tape.add(t + 5, f"crowd-{k}", f"crowd{k}", "buy", 99.99, 200.0, "cancel")
    tape.rows.sort(key=lambda row: row["ts"])


def flip(tape: Tape, t: float, account: str, price: float, gap: float) -> tuple[str, str]:
    """A big bid pulled after 3 s, then the same account sells into a background bid `gap` seconds later."""
    order_id = f"{account}-flip-{t}"
    tape.add(t, order_id, account, "buy", price, 200.0, "new")
    tape.add(t + 3, order_id, account, "buy", price, 200.0, "cancel")
    maker = f"bgbid-{t}"
    tape.add(t + 3 + gap - 1, maker, "bg9", "buy", 99.99, 10.0, "new")
    execution = tape.trade(t + 3 + gap, account, "sell", maker, "bg9", 99.99, 10.0)
    tape.rows.sort(key=lambda row: row["ts"])
    return order_id, execution


def stream_like(detector, frame: pl.DataFrame, chunk: timedelta) -> list:
    """What the streaming engine does: each call sees the symbol's rows within `lookback` of the new ones."""
    state, alerts = DetectorState(), []
    start, end = frame["ts"].min(), frame["ts"].max()
    while start <= end:
        stop = start + chunk
        tail = frame.filter((pl.col("ts") > start - detector.lookback) & (pl.col("ts") < stop))
        alerts += detector.detect(tail, state)
        start = stop
    return alerts


@cache
def spoof_market() -> SimulatedMarket:
    """Five hours of two symbols with many spoofing and layering episodes (built once per session)."""
    config = SimulationConfig(seed=3, symbols=2, hours=5.0, spoofs_per_symbol_day=24.0, layering_share=0.5)
    return simulate_market(config)


@cache
def layering_market() -> SimulatedMarket:
    """Five hours of two symbols where every spoof is a layered stack (the L2 detector's visible case)."""
    config = SimulationConfig(seed=3, symbols=2, hours=5.0, spoofs_per_symbol_day=48.0, layering_share=1.0)
    return simulate_market(config)


def market_maker(tape: Tape, until: float = SPOOF_AT + 60, account: str = "mm") -> None:
    """An honest market maker on a feed without fills: it quotes both sides every 2 s and pulls 19
    quotes in 20; the others are hit or lifted by takers (shown only in the trades), so it executes
    on both sides all day. Every seventh quote it also rests a big one for 3 s."""
    for k, t in enumerate(range(0, int(until), 2)):
        for side, price in (("buy", 99.99), ("sell", 100.01)):
            order_id = f"{account}-{k}-{side}"
            tape.add(t, order_id, account, side, price, 10.0, "new")
            if k % 10 == 0 and side == ("buy" if k % 20 == 0 else "sell"):
                taker = f"tk{k % 7}"
                buyer, seller = (account, taker) if side == "buy" else (taker, account)
                tape.print_trade(t + 1, buyer, seller, "sell" if side == "buy" else "buy", price, 10.0)
            else:
                tape.add(t + 1.5, order_id, account, side, price, 10.0, "cancel")
        if k % 7 == 3:
            side, price = ("buy", 99.99) if k % 2 else ("sell", 100.01)
            tape.add(t + 0.5, f"{account}-big-{k}", account, side, price, 200.0, "new")
            tape.add(t + 3.5, f"{account}-big-{k}", account, side, price, 200.0, "cancel")
    tape.rows.sort(key=lambda row: row["ts"])


def spoof_by_trades(
    tape: Tape, t: float, account: str, price: float = 99.99, maker: bool = False
) -> tuple[str, str]:
    """A big bid pulled after 7 s while the same account sells 10 on the other side, shown only in
    the trades: as a taker hitting a background bid, or (`maker`) by having its own small ask lifted."""
    order_id = f"{account}-bait-{t}"
    tape.add(t, order_id, account, "buy", price, 200.0, "new")
    if maker:
        tape.add(t + 1, f"{account}-ask-{t}", account, "sell", 100.01, 10.0, "new")
        trade = tape.print_trade(t + 5, "bg3", account, "buy", 100.01, 10.0)
    else:
        trade = tape.print_trade(t + 5, "bg9", account, "sell", 99.99, 10.0)
    tape.add(t + 7, order_id, account, "buy", price, 200.0, "cancel")
    tape.rows.sort(key=lambda row: row["ts"])
    return order_id, trade


def deep_book(tape: Tape, until: float = SPOOF_AT + 60) -> None:
    """Ten accounts resting small orders (5) on 20 price levels a side, each pulled after 20 s:
    a book of many small orders at many levels (six of them rest on each level at any moment)."""
    for k, t in enumerate(range(0, int(until), 3)):
        for level in range(20):
            bid, ask = round(99.99 - 0.01 * level, 2), round(100.01 + 0.01 * level, 2)
            for side, price in (("buy", bid), ("sell", ask)):
                order_id = f"d{k}-{side}-{level}"
                tape.add(t, order_id, f"bg{k % 10}", side, price, 5.0, "new")
                tape.add(t + 20, order_id, f"bg{k % 10}", side, price, 5.0, "cancel")
    tape.rows.sort(key=lambda row: row["ts"])


def wall(tape: Tape, price: float, until: float = SPOOF_AT + 60) -> None:
    """Four accounts each resting 400 at `price`, re-placed every minute: a wall in the book."""
    for k, t in enumerate(range(10, int(until), 60)):
        for whale in range(4):
            order_id = f"wall-{k}-{whale}"
            tape.add(t, order_id, f"whale{whale}", "buy", price, 400.0, "new")
            tape.add(t + 60, order_id, f"whale{whale}", "buy", price, 400.0, "cancel")
    tape.rows.sort(key=lambda row: row["ts"])
