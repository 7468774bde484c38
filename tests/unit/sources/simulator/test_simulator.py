"""The synthetic market: schemas, internal consistency of trades and L3 orders, and ground truth
that really describes what the tape shows (detectors are scored against it)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import numpy as np
import polars as pl
import pytest

from tapewatch.errors import InputError
from tapewatch.records import ORDER_SCHEMA, TRADE_SCHEMA
from tapewatch.sources.simulator.market import (
    LABEL_SCHEMA,
    ORGANIC_SCHEMA,
    SimulatedMarket,
    SimulationConfig,
    simulate_market,
    write_market,
)

START = datetime(2024, 1, 1, tzinfo=UTC)
BUSY = SimulationConfig(
    seed=11, symbols=3, pumps_per_symbol_day=1.5, wash_groups_per_symbol_day=2.0, spoofs_per_symbol_day=3.0
)


@pytest.fixture(scope="module")
def market() -> SimulatedMarket:
    """Three symbol-days with every typology present (rates raised so each appears)."""
    return simulate_market(BUSY)


def details(label: dict) -> dict:
    return json.loads(label["details"])


def labels_of(market: SimulatedMarket, *typologies: str) -> list[dict]:
    found = market.labels.filter(pl.col("typology").is_in(typologies)).to_dicts()
    assert found, f"the fixture should contain {typologies}"
    return found


def test_frames_have_exact_schemas(market: SimulatedMarket) -> None:
    assert dict(market.trades.schema) == TRADE_SCHEMA
    assert dict(market.orders.schema) == ORDER_SCHEMA
    assert dict(market.labels.schema) == LABEL_SCHEMA
    assert market.trades.select(pl.col("trade_id", "buyer", "seller").null_count()).row(0) == (0, 0, 0)
    assert set(market.trades["side"].unique()) == {"buy", "sell"}
    assert set(market.orders["action"].unique()) == {"new", "cancel", "fill", "modify"}
    assert set(market.labels["typology"]) == {"pump_and_dump", "wash_trading", "spoofing", "layering"}
    assert dict(market.organic.schema) == ORGANIC_SCHEMA
    assert set(market.organic["kind"]) <= {"news", "volume_burst"} and market.organic.height > 0


def test_trades_sorted_unique_and_in_range(market: SimulatedMarket) -> None:
    trades = market.trades
    assert trades.equals(trades.sort("symbol", "ts", maintain_order=True))
    assert trades["trade_id"].is_unique().all()
    end = START + timedelta(hours=BUSY.hours)
    for frame in (trades, market.orders):
        assert frame["ts"].min() >= START and frame["ts"].max() < end
    for column in ("start", "end", "event_time"):
        assert market.labels[column].min() >= START and market.labels[column].max() <= end
    assert (market.labels["start"] <= market.labels["end"]).all()


def test_background_looks_like_a_small_cap_btc_pair(market: SimulatedMarket) -> None:
    per_symbol = market.trades.group_by("symbol").agg(
        n=pl.len(),
        price=pl.col("price").median(),
        buys=(pl.col("side") == "buy").mean(),
        same_ms=pl.col("ts").is_duplicated().mean(),
        size_spread=pl.col("amount").log().std(),
    )
    assert per_symbol["n"].is_between(300, 30_000).all()  # a few trades a minute
    assert per_symbol["price"].is_between(1e-7, 2e-4).all()
    assert per_symbol["buys"].is_between(0.35, 0.65).all()  # real small caps: 0.44–0.60 (one 0.80)
    assert per_symbol["same_ms"].is_between(0.05, 0.7).all()  # sweeps print several trades in one ms
    assert (per_symbol["size_spread"] > 1.0).all()
    minute = market.trades.group_by("symbol", pl.col("ts").dt.truncate("1m")).len()
    assert minute["len"].std() / minute["len"].mean() > 1.0  # bursty, not Poisson
    buyers = market.trades["buyer"].value_counts(sort=True)
    assert buyers.height > 200
    assert buyers["count"].head(10).sum() > 5 * buyers["count"].tail(100).sum() / 10  # Zipf-like


def test_every_trade_has_a_maker_and_a_taker_fill(market: SimulatedMarket) -> None:
    keys = ["symbol", "ts", "price", "amount", "side", "account"]
    t = market.trades
    from_trades = pl.concat(
        t.select("symbol", "ts", "price", "amount", pl.lit(side).alias("side"), pl.col(who).alias("account"))
        for side, who in (("buy", "buyer"), ("sell", "seller"))
    )
    fills = market.orders.filter(pl.col("action") == "fill").select(keys)
    assert from_trades.sort(keys).equals(fills.sort(keys))


def test_order_lifecycles_are_consistent(market: SimulatedMarket) -> None:
    per_order = market.orders.group_by("order_id", maintain_order=True).agg(
        first=pl.col("action").first(),
        last=pl.col("action").last(),
        news=(pl.col("action") == "new").sum(),
        cancels=(pl.col("action") == "cancel").sum(),
        size=pl.col("amount").filter(pl.col("action").is_in(["new", "modify"])).last(),
        filled=pl.col("amount").filter(pl.col("action") == "fill").sum(),
        cancelled=pl.col("amount").filter(pl.col("action") == "cancel").sum(),
    )
    assert (per_order["first"] == "new").all() and (per_order["news"] == 1).all()
    assert (per_order["cancels"] <= 1).all()
    assert ((per_order["cancels"] == 0) | (per_order["last"] == "cancel")).all()
    assert (per_order["filled"] <= per_order["size"] + 1e-6).all()
    cancelled = per_order.filter(pl.col("cancels") == 1)
    assert np.allclose(cancelled["cancelled"], cancelled["size"] - cancelled["filled"], atol=1e-6)


def _replay_violations(orders: pl.DataFrame, trades: pl.DataFrame) -> Counter:
    """Rebuild the book from the L3 stream; count prices a resting order could not have had."""
    fills = orders.filter(pl.col("action") == "fill")
    takers = fills.join(
        trades.select("symbol", "ts", "price", "amount", pl.col("side").alias("taker_side")),
        on=["symbol", "ts", "price", "amount"],
    )
    taker_ids = set(takers.filter(pl.col("side") == pl.col("taker_side"))["order_id"])
    bad: Counter = Counter()
    for (_,), rows in orders.group_by("symbol", maintain_order=True):
        book: dict[str, Counter] = {"buy": Counter(), "sell": Counter()}
        resting: dict[str, list] = {}
        for oid, side, price, amount, action in rows.select(
            "order_id", "side", "price", "amount", "action"
        ).rows():
            if oid in taker_ids:
                continue
            other = book["sell" if side == "buy" else "buy"]
            if action == "new":
                if other and (price >= min(other) if side == "buy" else price <= max(other)):
                    bad["new order crosses the book"] += 1
                resting[oid] = [side, price, amount]
                book[side][price] += 1
                continue
            order = resting[oid]
            level = order[1]
            book[side][level] -= 1
            if action == "fill":
                best = max(book[side], default=price) if side == "buy" else min(book[side], default=price)
                if book[side] and (best > price if side == "buy" else best < price):
                    bad["filled behind a better resting price"] += 1
                order[2] = round(order[2] - amount, 8)
            elif action == "modify":
                order[1], order[2] = price, amount
            if action == "cancel" or order[2] <= 0:
                del resting[oid]
            else:
                book[side][order[1]] += 1
            if book[side][level] <= 0:
                book[side].pop(level, None)
    return bad


def test_book_is_never_traded_through() -> None:
    """Resting orders rest only where the market never trades through them (pumps included)."""
    config = SimulationConfig(
        seed=5, symbols=1, hours=12.0, pumps_per_symbol_day=4.0, spoofs_per_symbol_day=4.0
    )
    market = simulate_market(config)
    assert market.labels.filter(pl.col("typology") == "pump_and_dump").height > 0
    assert _replay_violations(market.orders, market.trades) == Counter()


def test_market_makers_cancel_most_orders_retail_fewer(market: SimulatedMarket) -> None:
    orders = market.orders
    per_account = (
        orders.group_by("account")
        .agg(new=(pl.col("action") == "new").sum(), cancel=(pl.col("action") == "cancel").sum())
        .with_columns(ratio=pl.col("cancel") / pl.col("new"))
        .sort("new", descending=True)
    )
    busiest = per_account.head(3)  # market makers quote far more than anyone
    assert (busiest["ratio"] > 0.9).all()
    retail = per_account.filter(pl.col("new") >= 20).tail(50)
    assert retail["ratio"].median() < 0.6


def test_pumps_move_the_price_and_then_dump(market: SimulatedMarket) -> None:
    trades = market.trades
    per_symbol: dict[str, list] = {}
    for label in labels_of(market, "pump_and_dump"):
        sym = trades.filter(pl.col("symbol") == label["symbol"])
        before = sym.filter(pl.col("ts") < label["start"])["price"][-1]
        window = sym.filter(pl.col("ts").is_between(label["start"], label["end"]))
        assert window["price"].max() >= 1.1 * before
        assert label["event_time"] >= START + timedelta(hours=6)
        rush = window.filter(pl.col("ts") < label["event_time"] + timedelta(minutes=2))
        baseline = sym.filter(pl.col("ts") < label["start"] - timedelta(minutes=5)).height / (
            (label["start"] - timedelta(minutes=5) - START).total_seconds() / 120
        )
        assert rush.height >= 10 * baseline
        assert rush.filter(pl.col("side") == "buy")["buyer"].n_unique() >= 10
        assert rush["ts"].is_duplicated().any()
        after = sym.filter(pl.col("ts") > label["end"])["price"].head(20).median()
        assert 0.7 * before <= after <= 1.35 * before
        organisers = set(label["accounts"].split(","))
        assert organisers & set(window.filter(pl.col("side") == "sell")["seller"])  # they dump
        per_symbol.setdefault(label["symbol"], []).append((label["start"], label["end"]))
    for windows in per_symbol.values():
        windows.sort()
        assert all(a[1] < b[0] for a, b in pairwise(windows))


def test_wash_trades_net_to_zero_at_market_prices(market: SimulatedMarket) -> None:
    trades = market.trades
    for label in labels_of(market, "wash_trading"):
        info = details(label)
        legs = trades.filter(pl.col("trade_id").is_in(info["trade_ids"]))
        assert legs.height == info["n_trades"] == len(info["trade_ids"])
        members = set(label["accounts"].split(","))
        assert set(legs["buyer"]) | set(legs["seller"]) <= members
        if info["scheme"] == "self_trade":
            assert (legs["buyer"] == legs["seller"]).all()
        else:
            assert len(members) >= 2 and (legs["buyer"] != legs["seller"]).all()
        for account in members:
            bought = legs.filter(pl.col("buyer") == account)["amount"].sum()
            sold = legs.filter(pl.col("seller") == account)["amount"].sum()
            assert abs(bought - sold) <= 0.02 * max(bought, sold)
        others = trades.filter(
            (pl.col("symbol") == label["symbol"])
            & ~pl.col("trade_id").is_in(info["trade_ids"])
            & pl.col("ts").is_between(
                label["start"] - timedelta(minutes=30), label["end"] + timedelta(minutes=30)
            )
        )
        assert legs["price"].min() >= 0.9 * others["price"].min()
        assert legs["price"].max() <= 1.1 * others["price"].max()


def test_wash_groups_differ_in_size_and_timing(market: SimulatedMarket) -> None:
    washes = labels_of(market, "wash_trading")
    shapes = {(details(w)["n_trades"], round(details(w)["volume_btc"], 6)) for w in washes}
    assert len(shapes) == len(washes)


def test_spoof_orders_are_large_cancelled_and_offset_by_a_trade(market: SimulatedMarket) -> None:
    orders, trades = market.orders, market.trades
    for label in labels_of(market, "spoofing", "layering"):
        info = details(label)
        mine = orders.filter(pl.col("order_id").is_in(info["order_ids"]))
        assert set(mine["account"]) == {label["accounts"]}
        new = mine.filter(pl.col("action") == "new")
        cancel = mine.filter(pl.col("action") == "cancel")
        assert new.height == cancel.height == len(info["order_ids"])
        assert (cancel["ts"].max() - new["ts"].min()) < timedelta(seconds=60)
        filled = mine.filter(pl.col("action") == "fill")["amount"].sum()
        assert filled <= 0.1 * new["amount"].sum()
        typical = trades.filter(pl.col("symbol") == label["symbol"])["amount"].median()
        assert new["amount"].min() >= 3 * typical
        if label["typology"] == "layering":
            assert new["price"].n_unique() >= 3
        spoof_side = info["side"]
        executions = trades.filter(pl.col("trade_id").is_in(info["execution_trade_ids"]))
        assert executions.height > 0
        party = "seller" if spoof_side == "buy" else "buyer"
        assert (executions[party] == label["accounts"]).all()  # traded on the other side
        assert executions["ts"].is_between(label["start"], label["end"]).all()


def test_spoofers_also_trade_normally(market: SimulatedMarket) -> None:
    spoofers = {label["accounts"] for label in labels_of(market, "spoofing", "layering")}
    spoof_ids = {
        oid for label in labels_of(market, "spoofing", "layering") for oid in details(label)["order_ids"]
    }
    normal = market.orders.filter(
        pl.col("account").is_in(spoofers) & (pl.col("action") == "new") & ~pl.col("order_id").is_in(spoof_ids)
    )
    assert normal.height > 0


def test_same_config_same_market_other_seed_other_market() -> None:
    config = SimulationConfig(seed=3, symbols=2, hours=8.0)
    first, second = simulate_market(config), simulate_market(config)
    for name in ("trades", "orders", "labels", "organic"):
        assert getattr(first, name).equals(getattr(second, name))
    other = simulate_market(SimulationConfig(seed=4, symbols=2, hours=8.0))
    assert not first.trades.equals(other.trades)


def test_a_symbol_does_not_depend_on_how_many_are_simulated() -> None:
    one = simulate_market(SimulationConfig(symbols=1, hours=6.0))
    two = simulate_market(SimulationConfig(symbols=2, hours=6.0))
    assert one.trades.equals(two.trades.filter(pl.col("symbol") == "SIM01/BTC"))


def test_rates_are_configurable() -> None:
    quiet = simulate_market(
        SimulationConfig(seed=11, symbols=2, hours=24.0, pumps_per_symbol_day=0.0, spoofs_per_symbol_day=0.0)
    )
    assert set(quiet.labels["typology"]) == {"wash_trading"}
    none = simulate_market(
        SimulationConfig(symbols=1, hours=6.0, wash_groups_per_symbol_day=0.0, spoofs_per_symbol_day=0.0)
    )
    assert none.labels.is_empty() and dict(none.labels.schema) == LABEL_SCHEMA
    busy = simulate_market(SimulationConfig(symbols=1, hours=6.0, trades_per_day=8000.0))
    assert busy.trades.height > 2 * none.trades.height


def test_progress_is_reported_per_symbol() -> None:
    calls: list[tuple[int, int]] = []
    simulate_market(
        SimulationConfig(symbols=3, hours=1.0), on_progress=lambda done, total: calls.append((done, total))
    )
    assert calls == [(1, 3), (2, 3), (3, 3)]


@pytest.mark.parametrize(
    ("option", "value"), [("symbols", 0), ("hours", 0.0), ("hawkes_branching", 1.2), ("accounts", 10)]
)
def test_bad_options_are_one_line_errors(option: str, value: object) -> None:
    with pytest.raises(InputError, match=option):
        SimulationConfig(**{option: value})


def test_write_market_csv_uses_the_ccxt_layout(tmp_path, market: SimulatedMarket) -> None:
    paths = write_market(market, tmp_path / "csv", fmt="csv")
    header = paths["trades"].read_text().splitlines()[0]
    assert header == "symbol,timestamp,datetime,side,price,amount,cost,buyer,seller"
    back = pl.read_csv(paths["trades"])
    assert back.height == market.trades.height
    assert back["timestamp"][0] == market.trades["ts"].dt.epoch("ms")[0]
    assert back["datetime"][0].endswith("Z")
    labels = pl.read_csv(paths["labels"])
    assert labels.columns == list(LABEL_SCHEMA) and labels.height == market.labels.height
    assert pl.read_csv(paths["orders"]).height == market.orders.height


def test_write_market_parquet_round_trips(tmp_path, market: SimulatedMarket) -> None:
    paths = write_market(market, tmp_path / "pq")
    assert pl.read_parquet(paths["trades"]).equals(market.trades)
    assert pl.read_parquet(paths["orders"]).equals(market.orders)
    with pytest.raises(InputError, match="format"):
        write_market(market, tmp_path / "x", fmt="xlsx")
