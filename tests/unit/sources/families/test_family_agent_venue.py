"""agent_venue beyond the common contract: labels say what the tape shows, the honest look-alikes a
detector must not flag are really in the data, and generation is fast and reproducible.

The contract (schemas, spans, determinism, every typology) is in test_families.py.
"""

from __future__ import annotations

import json
import time
from functools import cache

import polars as pl
import pytest

from tapewatch.sources.families import agent_venue
from tapewatch.sources.simulator.market import SimulatedMarket

SEED = 11


@cache
def injected() -> SimulatedMarket:
    """A day of six symbols with five episodes per symbol-day."""
    return agent_venue.generate(SEED, symbols=6, hours=24.0, rate=5.0)


@cache
def honest() -> SimulatedMarket:
    return agent_venue.generate(SEED, symbols=4, hours=24.0, honest_only=True)


def _labels(typology: str, scheme: str | None = None) -> list[tuple[dict, dict]]:
    rows = []
    for row in injected().labels.filter(pl.col("typology") == typology).iter_rows(named=True):
        details = json.loads(row["details"])
        if scheme is None or details.get("scheme") == scheme:
            rows.append((row, details))
    assert rows, (typology, scheme)
    return rows


def _organic(market: SimulatedMarket, kind: str) -> list[dict]:
    return [json.loads(d) for d in market.organic.filter(pl.col("kind") == kind)["details"]]


def test_self_trade_labels_point_at_own_prints_that_are_a_minority_of_the_account_trading() -> None:
    trades = injected().trades
    for row, details in _labels("wash_trading", "self_trade"):
        account = row["accounts"]
        legs = trades.filter(pl.col("trade_id").is_in(details["trade_ids"]))
        assert legs.height == details["n_trades"] > 0
        assert ((legs["buyer"] == account) & (legs["seller"] == account)).all()
        assert legs["ts"].is_between(row["start"], row["end"]).all()
        own = trades.filter(
            (pl.col("symbol") == row["symbol"])
            & ((pl.col("buyer") == account) | (pl.col("seller") == account))
        )
        assert legs.height < 0.5 * own.height, "the washer's honest trading should dominate its tape"


def test_round_trip_rings_trade_among_themselves_and_mostly_come_back_to_even() -> None:
    trades, even = injected().trades, 0
    rings = _labels("wash_trading", "round_trip")
    for row, details in rings:
        ring = row["accounts"].split(",")
        legs = trades.filter(pl.col("trade_id").is_in(details["trade_ids"]))
        assert 2 <= len(ring) <= 6 and legs.height == details["n_trades"]
        assert legs["buyer"].is_in(ring).all() and legs["seller"].is_in(ring).all()
        assert (legs["buyer"] != legs["seller"]).all()
        even += max(abs(v) for v in details["net_position"].values()) == 0
    assert even >= 0.7 * len(rings)


@pytest.mark.parametrize("typology", ["spoofing", "layering"])
def test_spoof_orders_are_pulled_within_a_minute_and_the_account_executes_the_other_way(
    typology: str,
) -> None:
    market = injected()
    for row, details in _labels(typology):
        account = row["accounts"]
        own = market.orders.filter(pl.col("order_id").is_in(details["order_ids"]))
        new = own.filter(pl.col("action") == "new")
        assert (own["account"] == account).all() and (new["side"] == details["order_side"]).all()
        assert own.filter(pl.col("action") == "cancel").height == new.height, "every spoof order is pulled"
        lives = own.group_by("order_id").agg(
            (pl.col("ts").max() - pl.col("ts").min()).dt.total_seconds().alias("s")
        )
        assert lives["s"].max() <= 95
        executed = market.trades.filter(pl.col("trade_id").is_in(details["execution_trade_ids"]))
        side = "buyer" if details["execution_side"] == "buy" else "seller"
        assert executed.height > 0 and (executed[side] == account).all()
        if typology == "layering":
            assert details["levels"] >= 3
            pulls = own.filter(pl.col("action") == "cancel").group_by("ts").len()
            assert pulls["len"].max() >= 3, "layers are pulled together"


def test_spoofers_and_washers_also_trade_honestly_outside_their_episodes() -> None:
    market = injected()
    for row in market.labels.iter_rows(named=True):
        account = row["accounts"].split(",")[0]
        outside = market.trades.filter(
            (pl.col("symbol") == row["symbol"])
            & ((pl.col("buyer") == account) | (pl.col("seller") == account))
            & ~pl.col("ts").is_between(row["start"], row["end"])
        )
        assert outside.height > 0, row


def test_the_busy_algo_self_matches_in_well_under_one_percent_of_its_trades_and_nobody_else_does() -> None:
    market = honest()
    busy = _organic(market, "busy_algo_self_match")
    assert busy and sum(b["self_matches"] for b in busy) > 0
    share = sum(b["self_matches"] for b in busy) / sum(b["trades"] for b in busy)
    assert 0.0005 <= share <= 0.015
    selfs = market.trades.filter(pl.col("buyer") == pl.col("seller"))
    assert set(selfs["buyer"]) == {busy[0]["account"]}, "venue STP stops everyone else"


def test_market_makers_cancel_most_of_their_ladders_some_within_50_ms() -> None:
    makers = _organic(honest(), "market_maker_ladder")
    ratios = sorted(m["cancel_ratio"] for m in makers)
    assert 0.8 <= ratios[len(ratios) // 2] <= 0.995
    assert sum(m["cancelled_within_50ms"] for m in makers) > 100


def test_honest_look_alikes_are_in_the_data() -> None:
    market = honest()
    pulled = market.organic.filter(pl.col("kind") == "pulled_large_order")
    assert pulled.height >= 5
    arbs = _organic(market, "arbitrage_repeat_counterparty")
    assert max(a["with_counterparty"] for a in arbs) >= 20, "an arbitrage bot keeps meeting one maker"
    assert market.organic.filter(pl.col("kind") == "iceberg").height > 0
    assert market.organic.filter(pl.col("kind") == "twap").height > 0


def test_both_l3_formats_occur_and_fills_match_the_trades() -> None:
    market = injected()
    fills = market.orders.filter(pl.col("action") == "fill").group_by("symbol").len()
    trades = market.trades.group_by("symbol").len()
    with_fills = trades.join(fills, on="symbol", how="inner", suffix="_fills")
    assert 0 < with_fills.height < trades.height
    assert (with_fills["len"] == with_fills["len_fills"]).all()


def test_trading_follows_the_utc_day() -> None:
    hours = injected().trades["ts"].dt.hour()
    assert hours.is_between(13, 18).sum() > 1.2 * hours.is_between(1, 6).sum()


def test_a_symbol_is_the_same_whatever_the_number_of_symbols() -> None:
    one = agent_venue.generate(5, symbols=1, hours=2.0, honest_only=True)
    two = agent_venue.generate(5, symbols=2, hours=2.0, honest_only=True)
    symbol = one.trades["symbol"][0]
    assert two.trades.filter(pl.col("symbol") == symbol).equals(one.trades)


def test_a_symbol_day_at_rate_5_generates_in_about_a_second() -> None:
    """The benchmark needs 8 symbols x 48 h at rate 5 in ~20 s (1.25 s a symbol-day) on one core;
    the bound leaves room for a loaded machine."""
    started = time.perf_counter()
    agent_venue.generate(SEED + 1, symbols=2, hours=24.0, rate=5.0)
    assert time.perf_counter() - started < 2 * 2.5
