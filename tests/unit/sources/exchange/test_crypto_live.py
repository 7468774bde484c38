"""Live trades and book updates over ccxt.pro WebSockets against the fake Binance streams."""

from __future__ import annotations

import asyncio
import itertools
import json

import polars as pl
import pytest

from tapewatch.errors import InputError
from tapewatch.io.lake import Lake
from tapewatch.records import BOOK_SCHEMA, TRADE_SCHEMA
from tapewatch.sources.exchange import ExchangeLiveSource
from tapewatch.sources.exchange import connect as connect_module
from unit.sources.exchange.crypto_harness import T0, Collector, call, run, settings_for, steady, until
from unit.sources.exchange.fake_binance import FakeBinance

SYMBOLS = ["BTC/USDT", "ETH/USDT", "ETH/BTC"]


@pytest.mark.parametrize("endpoint", ["/stream", "/ws"])
def test_trades_of_several_symbols_arrive_once_in_small_batches(endpoint):
    # "/ws": bare events, what Binance sends ccxt's own URL; "/stream": combined-stream frames
    async def scenario(server: FakeBinance) -> None:
        settings = settings_for(
            server, streams_per_connection=2, ws_url=server.ws_url.replace("/stream", endpoint)
        )
        source = ExchangeLiveSource(settings, SYMBOLS)
        async with Collector(source) as live:
            await until(lambda: len(server.subscribed()) == 3, what="subscriptions")
            for symbol in SYMBOLS:
                await call(server.add_trades, symbol, steady(T0, 4, 5))
            await until(lambda: live.trades().height == 12, what="12 trades")
            await asyncio.sleep(0.1)  # nothing more may come
        trades = live.trades()
        assert trades.schema == pl.Schema(TRADE_SCHEMA)
        assert trades.height == 12
        for symbol in SYMBOLS:
            assert live.ids(symbol) == [1, 2, 3, 4]
        first = trades.filter(pl.col("symbol") == "ETH/BTC").row(0, named=True)
        assert (first["venue"], first["price"], first["amount"], first["side"]) == (
            "binance",
            100.0,
            1.0,
            "sell",
        )
        assert all(
            batch.arrived_at > 0 and batch.book.schema == pl.Schema(BOOK_SCHEMA) for batch in live.batches
        )
        assert source.stats["trades"] == 12
        assert source.stats["messages"] >= 12
        assert source.stats["duplicates"] == source.stats["malformed"] == source.stats["reconnects"] == 0
        # three symbols, two per connection: two sockets
        opened = server.connections
        assert len(opened) == 2
        assert all(c.path.startswith(f"{endpoint}/") and len(c.streams) <= 2 for c in opened)
        assert sorted(s for c in opened for s in c.streams) == [
            "btcusdt@aggTrade",
            "ethbtc@aggTrade",
            "ethusdt@aggTrade",
        ]

    with FakeBinance(SYMBOLS) as server:
        run(scenario(server))


def test_a_connection_carries_several_watch_calls_up_to_streams_per_connection(monkeypatch):
    monkeypatch.setitem(connect_module.CALL_LIMITS, "binance", 2)  # ccxt's 200 a call, scaled down
    symbols = ["AAA/USDT", "BBB/USDT", "CCC/USDT", "DDD/USDT", "EEE/USDT"]

    async def scenario(server: FakeBinance) -> None:
        source = ExchangeLiveSource(settings_for(server, streams_per_connection=4), symbols)
        async with Collector(source) as live:
            await until(lambda: len(server.subscribed()) == 5, what="subscriptions")
            await call(server.add_trades, "EEE/USDT", steady(T0, 1, 1))
            await until(lambda: live.ids("EEE/USDT") == [1], what="a trade")
        by_size = sorted(server.connections, key=lambda c: len(c.streams))
        assert [len(c.streams) for c in by_size] == [1, 4]
        assert [c.subscribe_messages for c in by_size] == [1, 2]

    with FakeBinance(symbols) as server:
        run(scenario(server))


def test_a_dropped_connection_backs_off_reconnects_and_refills_the_gap_over_rest(tmp_path):
    async def scenario(server: FakeBinance) -> None:
        settings = settings_for(server, reconnect_initial_s=0.05, reconnect_max_s=0.4)
        source = ExchangeLiveSource(settings, ["BTC/USDT", "ETH/USDT"])
        async with Collector(source) as live:
            await until(lambda: len(server.subscribed()) == 2, what="subscriptions")
            await call(server.add_trades, "BTC/USDT", steady(T0, 5, 10))
            await call(server.add_trades, "ETH/USDT", steady(T0, 2, 10))
            await until(lambda: live.trades().height == 7, what="7 trades")

            server.flaky_connects = 2  # the next two attempts fail at once: the back-off must grow
            await call(server.drop_connections)
            # while the client is away: trades whose frames it never sees
            await call(server.add_trades, "BTC/USDT", steady(T0 + 100, 4, 10), broadcast=False)
            await until(
                lambda: len(server.subscribed()) == 2 and len(server.connections) == 4, what="reconnect"
            )
            await call(server.add_trades, "BTC/USDT", steady(T0 + 200, 2, 10))
            await call(server.add_trades, "ETH/USDT", steady(T0 + 200, 1, 10))
            await until(lambda: live.trades().height == 14, what="14 trades")
            await asyncio.sleep(0.1)

        assert live.ids("BTC/USDT") == list(range(1, 12))  # every trade once, in order
        assert live.ids("ETH/USDT") == [1, 2, 3]
        assert source.stats["gaps_backfilled"] == 1
        assert source.stats["gap_trades"] == 4
        assert source.stats["reconnects"] == 3  # two failed attempts, then the one that held
        assert source.stats["duplicates"] == 0
        attempts = [c.opened_at for c in server.connections[1:]]
        pauses = [later - earlier for earlier, later in itertools.pairwise(attempts)]
        assert pauses[0] >= 0.09 and pauses[1] >= 0.18  # 0.05 → 0.1 → 0.2: exponential
        gap_requests = [p for path, p in server.requests if path == "/api/v3/aggTrades"]
        assert gap_requests and all(p["symbol"] == "BTCUSDT" for p in gap_requests)

        lake = Lake(tmp_path)
        lake.write("trades", live.trades())
        stored = lake.read("trades", venue="binance", symbol="BTC/USDT")
        assert stored["trade_id"].to_list() == [str(i) for i in range(1, 12)]

    with FakeBinance(["BTC/USDT", "ETH/USDT"]) as server:
        run(scenario(server))


def test_malformed_frames_are_counted_set_aside_and_the_stream_goes_on():
    async def scenario(server: FakeBinance) -> None:
        source = ExchangeLiveSource(settings_for(server), ["BTC/USDT"])
        async with Collector(source) as live:
            await until(lambda: len(server.subscribed()) == 1, what="subscription")
            await call(server.add_trades, "BTC/USDT", steady(T0, 1, 1))
            await until(lambda: live.ids("BTC/USDT") == [1], what="first trade")
            await call(server.send_raw, '{"stream": "btcusdt@aggTrade", "data": {"e": "aggTr')  # cut short
            no_price = server.agg_event("BTC/USDT", 2, T0 + 5)
            del no_price["p"]
            await call(server.send_event, no_price, "btcusdt@aggTrade")
            stranger = server.agg_event("DOGE/USDT", 1, T0 + 6)
            await call(server.send_event, stranger, "dogeusdt@aggTrade")
            await call(server.add_trades, "BTC/USDT", steady(T0 + 10, 1, 1))
            await until(lambda: live.ids("BTC/USDT") == [1, 2], what="the stream to go on")
            await until(lambda: len(live.rejected()) == 3, what="3 rejections")

        reasons = [row["reason"] for row in live.rejected()]
        assert reasons[0].startswith("not JSON")
        assert live.rejected()[0]["record"].startswith('{"stream"')
        assert "price" in reasons[1]
        assert reasons[2] == "unknown symbol 'DOGE/USDT'"
        assert live.rejected()[2]["record"]["s"] == "DOGEUSDT"  # the frame as the exchange sent it
        assert {row["source"] for row in live.rejected()} == {"binance:ws"}
        assert source.stats["malformed"] == 3
        assert source.stats["trades"] == 2

    with FakeBinance(["BTC/USDT", "DOGE/USDT"]) as server:
        run(scenario(server))


def test_repeated_trades_are_dropped_and_late_ones_counted():
    async def scenario(server: FakeBinance) -> None:
        await call(server.add_trades, "BTC/USDT", steady(T0, 9, 1), broadcast=False)  # before we listen
        source = ExchangeLiveSource(settings_for(server), ["BTC/USDT"])
        async with Collector(source) as live:
            await until(lambda: len(server.subscribed()) == 1, what="subscription")
            await call(server.add_trades, "BTC/USDT", steady(T0 + 50, 2, 1))  # ids 10, 11
            again = server.agg_event("BTC/USDT", 11, T0 + 51)
            await call(server.send_event, again, "btcusdt@aggTrade")
            late = server.agg_event("BTC/USDT", 5, T0 + 4)  # never seen, but older
            await call(server.send_event, late, "btcusdt@aggTrade")
            await call(server.add_trades, "BTC/USDT", steady(T0 + 60, 1, 1))  # id 12
            await until(lambda: len(live.ids("BTC/USDT")) == 4, what="4 trades")
            await asyncio.sleep(0.1)
        assert sorted(live.ids("BTC/USDT")) == [5, 10, 11, 12]  # the repeat of 11 dropped, 5 kept
        assert source.stats["duplicates"] == 1
        assert source.stats["out_of_order"] == 1
        assert source.stats["gaps_backfilled"] == 0  # a first trade after a cold start opens no gap

    with FakeBinance(["BTC/USDT"]) as server:
        run(scenario(server))


def test_a_restart_resumes_from_the_lake_and_refills_what_it_missed(tmp_path):
    lake = Lake(tmp_path)

    async def first_run(server: FakeBinance) -> None:
        source = ExchangeLiveSource(settings_for(server), ["BTC/USDT"], lake=lake)
        async with Collector(source) as live:
            await until(lambda: len(server.subscribed()) == 1, what="subscription")
            await call(server.add_trades, "BTC/USDT", steady(T0, 5, 100))
            await until(lambda: len(live.ids("BTC/USDT")) == 5, what="5 trades")
        lake.write("trades", live.trades())

    async def second_run(server: FakeBinance) -> Collector:
        source = ExchangeLiveSource(settings_for(server), ["BTC/USDT"], lake=lake)
        async with Collector(source) as live:
            await until(lambda: len(server.subscribed()) == 1, what="subscription")
            await call(server.add_trades, "BTC/USDT", steady(T0 + 2000, 1, 1))  # id 9
            await until(lambda: len(live.ids("BTC/USDT")) == 4, what="refill and the new trade")
            await asyncio.sleep(0.1)
        assert source.stats["gaps_backfilled"] == 1
        return live

    with FakeBinance(["BTC/USDT"]) as server:
        run(first_run(server))
        server.add_trades("BTC/USDT", steady(T0 + 1000, 3, 100), broadcast=False)  # while we were down
        live = run(second_run(server))
    assert live.ids("BTC/USDT") == [6, 7, 8, 9]
    lake.write("trades", live.trades())
    assert lake.read("trades")["trade_id"].to_list() == [str(i) for i in range(1, 10)]


def test_book_updates_come_out_as_changed_levels():
    async def scenario(server: FakeBinance) -> None:
        await call(server.update_book, "BTC/USDT", [("99.0", "1.5"), ("98.0", "2")], [("101.0", "3")])
        source = ExchangeLiveSource(settings_for(server, book_levels=5), ["BTC/USDT"], book=True)
        async with Collector(source) as live:
            await until(lambda: "btcusdt@depth@100ms" in server.subscribed(), what="depth subscription")
            await until(lambda: sum(b.book.height for b in live.batches) == 3, what="the snapshot")
            await call(server.update_book, "BTC/USDT", [("99.0", "0"), ("99.5", "1")], [])
            await until(lambda: sum(b.book.height for b in live.batches) == 5, what="the update")
        book = pl.concat([b.book for b in live.batches])
        assert book.schema == pl.Schema(BOOK_SCHEMA)
        rows = {(r["side"], r["price"], r["amount"]) for r in book.iter_rows(named=True)}
        assert rows == {
            ("bid", 99.0, 1.5),
            ("bid", 98.0, 2.0),
            ("ask", 101.0, 3.0),
            ("bid", 99.0, 0.0),  # removed
            ("bid", 99.5, 1.0),
        }
        assert set(book["symbol"]) == {"BTC/USDT"} and set(book["venue"]) == {"binance"}
        depth = [p for path, p in server.requests if path == "/api/v3/depth"]
        assert depth == [{"symbol": "BTCUSDT", "limit": "5"}]

    with FakeBinance(["BTC/USDT"]) as server:
        run(scenario(server))


def test_unknown_symbols_are_a_one_line_error_before_anything_connects():
    async def scenario(server: FakeBinance) -> None:
        source = ExchangeLiveSource(settings_for(server), ["BTC/USDT", "NOPE/USDT"])
        with pytest.raises(InputError, match=r"NOPE/USDT not listed on binance"):
            async for _ in source.batches():
                break

    with FakeBinance(["BTC/USDT"]) as server:
        run(scenario(server))
        assert server.connections == []
    with pytest.raises(InputError, match="no symbols"):
        ExchangeLiveSource(settings_for(server), [])


def test_rejections_are_json_serialisable_for_dead_letters():
    async def scenario(server: FakeBinance) -> list[dict]:
        source = ExchangeLiveSource(settings_for(server), ["BTC/USDT"])
        async with Collector(source) as live:
            await until(lambda: len(server.subscribed()) == 1, what="subscription")
            await call(server.send_raw, "{oops")
            await until(lambda: len(live.rejected()) == 1, what="a rejection")
        return live.rejected()

    with FakeBinance(["BTC/USDT"]) as server:
        rejected = run(scenario(server))
    assert json.loads(json.dumps(rejected))[0]["record"] == "{oops"
