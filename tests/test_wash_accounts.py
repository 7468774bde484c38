"""Wash trading between known accounts: self-trades and netting rings, found causally and as the stream does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from tapewatch.config import StreamSettings, WashAccountsSettings
from tapewatch.detect import wash_accounts_graph as graph
from tapewatch.detect.base import DetectorState
from tapewatch.detect.wash_accounts import WashAccountsDetector
from tapewatch.engine.stream import StreamEngine
from tapewatch.records import TRADE_SCHEMA, conform
from tapewatch.sources.simulator import SimulationConfig, simulate_market

START = datetime(2024, 3, 1, tzinfo=UTC)
SYMBOL = "AAA/BTC"


def frame(rows: list[dict]) -> pl.DataFrame:
    """Trades in TRADE_SCHEMA, sorted as the engines pass them, with ids in time order."""
    trades = pl.DataFrame(rows).with_columns(venue=pl.lit("testex"), symbol=pl.lit(SYMBOL))
    trades = conform(trades, TRADE_SCHEMA).sort("ts", maintain_order=True)
    return trades.with_columns(trade_id=pl.int_range(pl.len()).cast(pl.String))


def background(hours: float = 6.0, per_minute: float = 3.0, retail: int = 40, seed: int = 0) -> list[dict]:
    """A market maker and busy retail accounts trading with each other both ways, sizes log-normal."""
    rng = np.random.default_rng(seed)
    count = rng.poisson(per_minute * hours * 60)
    rows = []
    for offset in np.sort(rng.uniform(0, hours * 3600, count)):
        trader = f"r{int(rng.zipf(1.3)) % retail}"
        other = "mm" if rng.random() < 0.8 else f"r{rng.integers(retail)}"
        if other == trader:
            other = "mm"
        buy = rng.random() < 0.5
        rows.append(
            {
                "ts": START + timedelta(seconds=float(offset)),
                "price": 1e-5,
                "amount": float(rng.lognormal(5, 1.8)),
                "side": "buy" if buy else "sell",
                "buyer": trader if buy else other,
                "seller": other if buy else trader,
            }
        )
    return rows


def ring(
    members: list[str], at: datetime, laps: int = 4, quantity: float = 2000.0, short: dict | None = None
) -> list[dict]:
    """Laps round a ring: each member sells `quantity` to the next, a minute apart, laps 5 minutes apart.

    `short` = {member: fraction}: that member passes on only this fraction of what it got.
    A ring of one account is a run of self-trades.
    """
    rows = []
    moment = at
    for lap in range(laps):
        for index, seller in enumerate(members):
            buyer = members[(index + 1) % len(members)]
            size = quantity * (1 + 0.001 * lap) * (short or {}).get(seller, 1.0)
            rows.append(
                {"ts": moment, "price": 1e-5, "amount": size, "side": "buy", "buyer": buyer, "seller": seller}
            )
            moment += timedelta(minutes=1)
        moment += timedelta(minutes=5)
    return rows


AT = START + timedelta(hours=3, minutes=7)


def test_self_trades_are_found_with_their_evidence():
    trades = frame(background() + ring(["x"], AT, laps=4))
    alerts = WashAccountsDetector().detect(trades)
    assert len(alerts) == 1
    alert = alerts[0]
    evidence = alert.evidence
    assert alert.typology == "wash_trading" and alert.detector == "wash_accounts"
    assert evidence["scheme"] == "self_trade" and evidence["accounts"] == ["x"]
    assert alert.start == AT and alert.detected_at == AT + timedelta(minutes=6)  # the second self-trade
    assert evidence["trades"] == 2 and evidence["positions"]["x"]["net"] == 0
    own = trades.filter((pl.col("buyer") == "x") & (pl.col("seller") == "x"))["trade_id"].to_list()
    assert evidence["trade_ids"] == own[:2] and evidence["trade_ids_total"] == 2
    assert 0 < evidence["volume_share"] <= 1
    assert alert.followup["scheme"]["trades"] == 4  # the whole run, gathered after detection
    assert alert.followup["scheme"]["trade_ids"] == own


@pytest.mark.parametrize("members", [["a", "b"], ["a", "b", "c"], ["a", "b", "c", "d", "e"]])
def test_rings_of_two_three_and_five_accounts_are_found(members):
    trades = frame(background(seed=len(members)) + ring(members, AT))
    alerts = WashAccountsDetector().detect(trades)
    assert [alert.evidence["accounts"] for alert in alerts] == [sorted(members)]
    evidence = alerts[0].evidence
    assert evidence["scheme"] == "round_trip" and evidence["ring"] == members
    assert evidence["round_trips"] >= 2 and evidence["max_net_ratio"] <= 0.02
    assert set(evidence["positions"]) == set(members)
    assert all(abs(p["net"]) <= 0.02 * p["gross"] for p in evidence["positions"].values())
    assert alerts[0].start == AT
    laps = max(2, -(-WashAccountsSettings().min_trades // len(members)))  # two laps and min_trades
    assert alerts[0].detected_at == AT + timedelta(minutes=laps * len(members) - 1 + 5 * (laps - 1))


def test_a_market_maker_trading_both_ways_with_many_accounts_does_not_fire():
    trades = frame(background(hours=12, per_minute=8, retail=30, seed=11))
    pairs = trades.filter(pl.col("buyer") != pl.col("seller")).group_by("buyer", "seller").len()
    assert pairs.filter(pl.col("len") >= 20).height >= 10  # plenty of repeated two-way trading
    assert WashAccountsDetector().detect(trades) == []


def test_a_ring_leaving_one_account_long_does_not_fire():
    members = ["a", "b", "c"]
    assert WashAccountsDetector().detect(frame(ring(members, AT))) != []
    uneven = frame(background(seed=4) + ring(members, AT, short={"b": 0.8}))  # b keeps a fifth
    assert WashAccountsDetector().detect(uneven) == []
    loose = WashAccountsDetector(WashAccountsSettings(net_tolerance=0.3))
    assert members in [a.evidence["accounts"] for a in loose.detect(uneven)]  # 20 % is within 30 %


def test_the_decision_reads_nothing_after_detected_at():
    trades = frame(background(seed=5) + ring(["a", "b", "c"], AT, laps=6))
    alert = WashAccountsDetector().detect(trades)[0]
    cut = WashAccountsDetector().detect(trades.filter(pl.col("ts") <= alert.detected_at))[0]
    assert cut.id == alert.id and cut.detected_at == alert.detected_at
    assert cut.evidence == alert.evidence
    assert cut.followup["scheme"]["status"] == "open"
    assert alert.followup["scheme"]["trades"] > cut.followup["scheme"]["trades"]


def test_the_stream_in_random_chunks_gives_the_batch_alerts():
    market = simulate_market(
        SimulationConfig(seed=3, symbols=3, hours=12, wash_groups_per_symbol_day=6, pumps_per_symbol_day=0)
    )
    trades = market.trades.select(list(TRADE_SCHEMA))
    detector = WashAccountsDetector()
    batch = detector.detect(trades)
    assert {a.evidence["scheme"] for a in batch} == {"self_trade", "round_trip"}

    engine = StreamEngine([detector], StreamSettings(hold_ms=10**9))
    final = {}
    rng = np.random.default_rng(0)
    offset = 0
    while offset < trades.height:
        size = int(rng.integers(1, 400))
        engine.push(trades.slice(offset, size))  # arriving now: each symbol's newest instant is held back
        final.update({item.alert.id: item.alert for item in engine.step()})
        offset += size
    final.update({item.alert.id: item.alert for item in engine.finish()})
    assert not engine.stats.set_aside and engine.stats.trades_processed == trades.height
    assert sorted(final) == sorted(alert.id for alert in batch)
    for alert in batch:
        assert final[alert.id].model_dump(exclude={"timing"}) == alert.model_dump(exclude={"timing"})


def test_state_carries_the_cooldown_across_calls():
    trades = frame(background(seed=6) + ring(["a", "b"], AT, laps=12))
    detector = WashAccountsDetector()
    assert len(detector.detect(trades)) == 1
    state = DetectorState()
    middle = AT + timedelta(minutes=40)
    first = detector.detect(trades.filter(pl.col("ts") <= middle), state)
    second = detector.detect(trades, state)
    assert len(first) == 1 and second == []


def test_empty_frames_and_unknown_accounts_give_no_alerts():
    detector = WashAccountsDetector()
    assert detector.detect(conform(pl.DataFrame(), TRADE_SCHEMA)) == []
    anonymous = frame(ring(["a", "b", "c"], AT)).with_columns(
        buyer=pl.lit(None, dtype=pl.String), seller=pl.lit(None, dtype=pl.String)
    )
    state = DetectorState()
    assert detector.detect(anonymous) == [] and detector.detect(anonymous, state) == []
    assert state.decided_until[("testex", SYMBOL)] == anonymous["ts"].max()
    without_columns = anonymous.drop("buyer", "seller")
    assert detector.detect(without_columns) == []
    assert detector.detect(frame(background(hours=0.1, per_minute=1))) == []  # accounts known, no group


def test_pair_index_window_sums_match_a_brute_force_count():
    """Prefix-sum windows per account pair (both ways) agree with counting each window directly."""
    rng = np.random.default_rng(7)
    count, window_us = 400, 50
    transfers = pl.DataFrame(
        {
            "sym": np.sort(rng.integers(0, 2, count)),
            "ts_us": np.sort(rng.integers(0, 400, count)),
            "seller_id": rng.integers(0, 4, count),
            "buyer_id": rng.integers(0, 4, count),
            "amount": rng.uniform(1, 2, count),
            "new": rng.random(count) < 0.8,
        }
    ).with_columns(cell=pl.col("ts_us") // window_us)
    index = graph.PairIndex(transfers, window_us)
    rows = transfers.to_dicts()
    for position, original in enumerate(index.order):
        row = rows[original]
        pair = {row["seller_id"], row["buyer_id"]}
        inside = [  # the pair's rows up to this one (tape order) within (ts − W, ts]
            other
            for other in rows[: original + 1]
            if other["sym"] == row["sym"]
            and {other["seller_id"], other["buyer_id"]} == pair
            and other["ts_us"] > row["ts_us"] - window_us
        ]
        up = sum(o["new"] and o["seller_id"] <= o["buyer_id"] for o in inside)
        down = sum(o["new"] and o["seller_id"] > o["buyer_id"] for o in inside)
        assert (index.up_w[position], index.down_w[position]) == (up, down)


@pytest.mark.parametrize("accounts", [10, 2**40])
def test_the_pair_order_is_the_three_key_stable_order(accounts):
    """One integer key where it fits in 63 bits, a lexsort where it does not: both the (sym, low, high) order."""
    rng = np.random.default_rng(3)
    sym = np.sort(rng.integers(0, 50, 1000))
    low, high = np.sort(rng.integers(0, 10, (2, 1000)), axis=0) * (accounts // 10)
    order = graph._pair_order(sym, low, high, accounts)
    assert np.array_equal(order, np.lexsort((high, low, sym)))
