"""Scenario family `hawkes_lob`: contract, determinism, and labels that the data bears out.

The label checks read only the public frames (trades, L3 events), never the generator's
internals, so they are what a detector author can rely on.
"""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from tapewatch.records import ORDER_SCHEMA, TRADE_SCHEMA
from tapewatch.sources.families import hawkes_lob
from tapewatch.sources.simulator.labels import LABEL_SCHEMA
from tapewatch.sources.simulator.market import SimulatedMarket

SEED = 11


@pytest.fixture(scope="module")
def market() -> SimulatedMarket:
    """3 symbols × 12 h at 8 episodes per symbol-day: 4 episodes a symbol."""
    return hawkes_lob.generate(SEED, symbols=3, hours=12, rate=8.0)


@pytest.fixture(scope="module")
def honest() -> SimulatedMarket:
    return hawkes_lob.generate(SEED, symbols=3, hours=12, rate=8.0, honest_only=True)


def _details(row: dict) -> dict:
    return json.loads(row["details"])


def _window(frame: pl.DataFrame, row: dict) -> pl.DataFrame:
    return frame.filter(
        (pl.col("symbol") == row["symbol"]) & pl.col("ts").is_between(row["start"], row["end"])
    )


def test_same_seed_same_frames_and_another_seed_differs() -> None:
    a = hawkes_lob.generate(5, symbols=2, hours=1.5, rate=40.0)
    b = hawkes_lob.generate(5, symbols=2, hours=1.5, rate=40.0)
    c = hawkes_lob.generate(6, symbols=2, hours=1.5, rate=40.0)
    assert a.trades.height > 500 and a.labels.height > 0
    for name in ("trades", "orders", "labels", "organic"):
        assert getattr(a, name).equals(getattr(b, name)), name
    assert not a.trades.equals(c.trades)


def test_frames_follow_the_schemas(market: SimulatedMarket) -> None:
    assert market.trades.schema == pl.Schema(TRADE_SCHEMA)
    assert market.orders.schema == pl.Schema(ORDER_SCHEMA)
    assert market.labels.schema == pl.Schema(LABEL_SCHEMA)
    for frame in (market.trades, market.orders):
        assert frame.equals(frame.sort(["venue", "symbol", "ts"], maintain_order=True))
        assert frame.null_count().sum_horizontal().item() == 0
    assert set(market.orders["action"].unique()) == {"new", "cancel", "fill"}
    assert set(market.trades["side"].unique()) == {"buy", "sell"}
    assert market.trades["trade_id"].is_unique().all()
    assert market.trades["symbol"].n_unique() == 3
    prices = market.trades.group_by("symbol").agg(pl.col("price").median())["price"]
    assert prices.min() > 0.3 and prices.max() < 250


def test_every_trade_is_two_fills_in_the_order_feed(market: SimulatedMarket) -> None:
    """The feed shows executions: each trade is a fill of the resting and of the aggressing order."""
    fills = market.orders.filter(pl.col("action") == "fill")
    assert fills.height == 2 * market.trades.height
    per_side = fills.group_by("side").agg(pl.col("amount").sum()).sort("side")["amount"].to_list()
    assert per_side == pytest.approx([market.trades["amount"].sum()] * 2, rel=1e-9)
    # every order starts with a `new` row
    first = market.orders.group_by("order_id", maintain_order=True).first()
    assert (first["action"] == "new").all()


def test_market_makers_cancel_most_of_what_they_post(market: SimulatedMarket) -> None:
    makers = market.organic.filter(pl.col("kind") == "market_maker").select(
        "symbol", pl.col("details").str.json_path_match("$.accounts[0]").alias("account")
    )
    assert makers.group_by("symbol").len()["len"].is_between(3, 6).all()
    ratios = (
        market.orders.join(makers, on=["symbol", "account"])
        .group_by("symbol", "account")
        .agg(((pl.col("action") == "cancel").sum() / (pl.col("action") == "new").sum()).alias("ratio"))
    )
    assert ratios.height == makers.height
    assert ratios["ratio"].is_between(0.8, 0.95).all(), ratios


def test_honest_confounders_are_present(honest: SimulatedMarket) -> None:
    """Self-matches by busy accounts, whales, pairs and icebergs exist without any label."""
    assert honest.labels.is_empty()
    kinds = set(honest.organic["kind"])
    assert {"market_maker", "busy_algo", "whale_order", "honest_pair", "iceberg"} <= kinds
    self_trades = honest.trades.filter(pl.col("buyer") == pl.col("seller"))
    assert 0 < self_trades.height < 0.01 * honest.trades.height


def test_honest_only_injects_nothing_but_its_twin_does(
    market: SimulatedMarket, honest: SimulatedMarket
) -> None:
    assert honest.labels.is_empty()
    assert market.labels.height >= 10
    # the honest part is the same market: identical until the first episode starts
    first = market.labels["start"].min()
    before = [m.trades.filter(pl.col("ts") < first) for m in (market, honest)]
    assert before[0].height > 0 and before[0].equals(before[1])


def test_self_trade_labels_are_self_trades(market: SimulatedMarket) -> None:
    rows = [r for r in market.labels.iter_rows(named=True) if _details(r).get("scheme") == "self_trade"]
    assert rows
    for row in rows:
        account = row["accounts"]
        assert "," not in account
        own = _window(market.trades, row).filter((pl.col("buyer") == account) & (pl.col("seller") == account))
        assert own.height >= 5
        # a busy self-trader's honest orders can meet each other too, inside the episode
        assert own.height >= _details(row)["self_trades"] >= 5
        assert own["ts"].min() == row["event_time"]


def test_round_trip_members_net_out(market: SimulatedMarket) -> None:
    rows = [r for r in market.labels.iter_rows(named=True) if _details(r).get("scheme") == "round_trip"]
    assert rows
    for row in rows:
        members = row["accounts"].split(",")
        assert 2 <= len(members) <= 6
        # transfers between members (a member's own honest orders may meet each other too)
        legs = _window(market.trades, row).filter(
            pl.col("buyer").is_in(members)
            & pl.col("seller").is_in(members)
            & (pl.col("buyer") != pl.col("seller"))
        )
        assert legs.height >= 2 * len(members)
        assert legs.height == _details(row)["n_trades"]
        bought = legs.group_by("buyer").agg(pl.col("amount").sum()).rows()
        sold = legs.group_by("seller").agg(pl.col("amount").sum()).rows()
        net = dict.fromkeys(members, 0.0)
        for who, amount in bought:
            net[who] += amount
        for who, amount in sold:
            net[who] -= amount
        assert max(abs(v) for v in net.values()) <= 1e-6 * legs["amount"].sum(), net


def test_wash_volume_share_is_in_range(market: SimulatedMarket) -> None:
    shares = [
        _details(r)["hour_volume_share"]
        for r in market.labels.iter_rows(named=True)
        if r["typology"] == "wash_trading"
    ]
    assert shares and min(shares) >= 0.0005 and max(shares) <= 0.1


def _book_at_new_rows(orders: pl.DataFrame, wanted: set[str]) -> dict[str, tuple[float, float]]:
    """Replay one symbol's feed; for each wanted order id, (best same-side price, median resting
    order size) among the other live orders just before it was entered."""
    live: dict[str, list] = {}
    seen = {}
    for oid, side, price, amount, action in orders.select(
        "order_id", "side", "price", "amount", "action"
    ).iter_rows():
        if action == "new":
            if oid in wanted:
                same = [o[1] for o in live.values() if o[0] == side]
                best = max(same) if side == "buy" else min(same)
                seen[oid] = (best, float(np.median([o[2] for o in live.values()])))
            live[oid] = [side, price, amount]
        elif oid in live:
            live[oid][2] -= amount
            if action == "cancel" or live[oid][2] <= 1e-9:
                del live[oid]
    return seen


def test_spoof_orders_were_near_the_touch_and_pulled_while_the_account_traded_the_other_side(
    market: SimulatedMarket,
) -> None:
    rows = [r for r in market.labels.iter_rows(named=True) if r["typology"] in ("spoofing", "layering")]
    assert rows
    # the tick, as a reader would find it: the smallest step between the prices orders use
    ticks = {
        symbol: float(np.round(np.diff(group["price"].unique().sort().to_numpy()).min(), 6))
        for (symbol,), group in market.orders.group_by("symbol")
    }
    assert set(ticks.values()) <= {0.001, 0.01}
    filled_orders = 0
    all_ids = 0
    for row in rows:
        details = _details(row)
        ids = details["order_ids"]
        assert len(ids) >= (3 if row["typology"] == "layering" else 1)
        all_ids += len(ids)
        feed = market.orders.filter(pl.col("symbol") == row["symbol"])
        own = feed.filter(pl.col("order_id").is_in(ids))
        assert set(own["account"]) == {row["accounts"]}
        placed = own.filter(pl.col("action") == "new")
        assert placed["ts"].min() == row["start"]
        book = _book_at_new_rows(feed, set(ids))
        for oid, side, price, amount in placed.select("order_id", "side", "price", "amount").iter_rows():
            best, median = book[oid]
            behind = round((best - price) / ticks[row["symbol"]]) * (1 if side == "buy" else -1)
            assert 1 <= behind <= 10, (oid, behind)
            assert amount >= 2.5 * median
            life = own.filter((pl.col("order_id") == oid) & (pl.col("action") == "cancel"))["ts"]
            assert (
                life.len() == 1
                or own.filter((pl.col("order_id") == oid) & (pl.col("action") == "fill")).height
            )
            if life.len():
                assert life[0] - placed.filter(pl.col("order_id") == oid)["ts"][0] <= timedelta(seconds=60)
        filled_orders += own.filter(pl.col("action") == "fill")["order_id"].n_unique()
        spoof_side = placed["side"][0]
        other = "seller" if spoof_side == "buy" else "buyer"
        executions = _window(market.trades, row).filter(pl.col(other) == row["accounts"])
        assert executions.height >= 1
        assert executions["ts"].min() == row["event_time"]
    assert filled_orders <= 0.1 * all_ids


def test_episode_count_follows_the_rate() -> None:
    rng = np.random.default_rng(0)
    for rate in (0.2, 1.0, 5.0):
        counts = [hawkes_lob.episode_count(rng, rate, 86_400) for _ in range(4000)]
        assert np.mean(counts) == pytest.approx(rate, rel=0.06)
        assert max(counts) - min(counts) <= 1


def test_labels_scale_with_the_rate() -> None:
    low = hawkes_lob.generate(3, symbols=2, hours=3, rate=16.0)  # a quarter symbol-day: 4 episodes
    high = hawkes_lob.generate(3, symbols=2, hours=3, rate=48.0)
    assert low.labels.height == 4
    assert high.labels.height == 12
    assert set(high.labels["typology"]) == {"wash_trading", "spoofing", "layering"}
