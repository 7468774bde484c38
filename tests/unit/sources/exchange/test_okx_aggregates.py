"""OKX's live messages aggregate trades; its REST history does not: where both cover a period,
the lake keeps each trade's volume once."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from tapewatch.io.lake import Lake
from tapewatch.sources.exchange import ExchangeLiveSource, backfill_trades
from unit.sources.exchange.crypto_harness import Collector, call, run, until
from unit.sources.exchange.fake_okx import FakeOkx
from unit.sources.exchange.test_venue_live import NOW, _settings

QTY = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]


def _trades(lake: Lake) -> pl.DataFrame:
    return lake.read("trades", venue="okx", symbol="BTC/USDT").sort("ts", "trade_id")


def _rows(ids: list[str], amounts: list[float]) -> pl.DataFrame:
    """Trades of one OKX symbol at one moment (one taker order), by id and amount."""
    moment = datetime.fromtimestamp(NOW / 1000, UTC)
    return pl.DataFrame(
        {
            "ts": [moment] * len(ids),
            "venue": "okx",
            "symbol": "BTC/USDT",
            "price": 100.0,
            "amount": amounts,
            "side": "buy",
            "trade_id": ids,
        }
    )


def test_a_backfill_over_live_aggregates_replaces_them_and_counts_each_trade_once(tmp_path):
    async def scenario(server: FakeOkx) -> Collector:
        source = ExchangeLiveSource(_settings(server), ["BTC/USDT"])
        async with Collector(source) as live:
            await until(lambda: server.subscribed() == {"BTC-USDT"}, what="subscription")
            await call(server.publish, "BTC/USDT", 1, 3)  # one taker order, three makers
            await call(server.publish, "BTC/USDT", 4, 4)
            await call(server.publish, "BTC/USDT", 5, 6)
            await until(lambda: live.ids("BTC/USDT") == [3, 4, 6], what="3 messages")
        return live

    lake = Lake(tmp_path)
    with FakeOkx(["BTC/USDT"]) as server:
        server.add("BTC/USDT", [(NOW + (i // 3) * 100, 100.0, qty, True) for i, qty in enumerate(QTY)])
        live = run(scenario(server))
        assert live.trades()["trade_id"].to_list() == ["1-3", "4", "5-6"]  # each row says what it stands for
        assert lake.write("trades", live.trades()) == 3
        assert _trades(lake)["amount"].sum() == sum(QTY)
        start = datetime.fromtimestamp((NOW - 1000) / 1000, UTC)
        end = datetime.fromtimestamp((NOW + 1000) / 1000, UTC)
        report = run(backfill_trades(_settings(server), ["BTC/USDT"], start, end, lake))

    assert report.symbols["BTC/USDT"].fetched == 6
    stored = _trades(lake)
    assert sorted(stored["trade_id"].to_list(), key=int) == ["1", "2", "3", "4", "5", "6"]
    assert stored["amount"].sum() == sum(QTY)  # not 21 + 21: the aggregates gave way to the trades


def test_an_aggregate_written_after_its_trades_is_dropped(tmp_path):
    lake = Lake(tmp_path)
    lake.write("trades", _rows(["1", "2", "3"], [1.0, 2.0, 3.0]))
    assert lake.write("trades", _rows(["1-3"], [6.0])) == 0
    assert _trades(lake)["trade_id"].to_list() == ["1", "2", "3"]


def test_trades_an_aggregate_still_stands_for_are_not_added_beside_it(tmp_path):
    """Part of a run (not all its ids) cannot replace the aggregate: it stays, and counts them."""
    lake = Lake(tmp_path)
    lake.write("trades", _rows(["1-3", "4"], [6.0, 4.0]))
    assert lake.write("trades", _rows(["2", "3"], [2.0, 3.0])) == 0
    assert _trades(lake)["trade_id"].to_list() == ["1-3", "4"]
    assert lake.write("trades", _rows(["1", "2", "3"], [1.0, 2.0, 3.0])) == 2  # the whole run: replaced
    assert _trades(lake)["amount"].sum() == 10.0
