"""Symbol status followed live: halts and delistings unsubscribe a symbol, relistings bring it back."""

from __future__ import annotations

import logging

import polars as pl
import pytest

from tapewatch.errors import InputError
from tapewatch.sources.exchange import ExchangeLiveSource
from unit.sources.exchange.crypto_harness import T0, Collector, call, run, settings_for, steady, until
from unit.sources.exchange.fake_binance import FakeBinance

SYMBOLS = ["BTC/USDT", "ETH/USDT"]


def test_a_halted_symbol_is_unsubscribed_and_comes_back_when_it_trades_again():
    async def scenario(server: FakeBinance) -> None:
        source = ExchangeLiveSource(settings_for(server, markets_refresh_s=0.2), SYMBOLS)
        async with Collector(source) as live:
            await until(lambda: len(server.subscribed()) == 2, what="subscriptions")
            await call(server.add_trades, "ETH/USDT", steady(T0, 2, 5))
            await until(lambda: live.ids("ETH/USDT") == [1, 2], what="ETH trades")

            await call(server.list_market, "ETH/USDT", "BREAK")
            await until(lambda: server.subscribed() == {"btcusdt@aggTrade"}, what="ETH unsubscribed")
            assert source.stats["symbols_halted"] == 1
            await call(server.add_trades, "BTC/USDT", steady(T0, 1, 5))
            await until(lambda: live.ids("BTC/USDT") == [1], what="BTC still flowing")

            await call(server.list_market, "ETH/USDT", "TRADING")
            await until(lambda: len(server.subscribed()) == 2, what="ETH subscribed again")
            await call(server.add_trades, "ETH/USDT", steady(T0 + 100, 2, 5))
            await until(lambda: live.ids("ETH/USDT") == [1, 2, 3, 4], what="ETH trades again")
        assert source.stats["symbols_resumed"] == 1
        assert source.stats["symbols_halted"] == 1
        # unsubscribed with an UNSUBSCRIBE on the same connection, not by reconnecting
        assert source.stats["reconnects"] == 0

    with FakeBinance(SYMBOLS) as server:
        run(scenario(server))


def test_a_delisted_symbol_is_unsubscribed_and_said_so(caplog):
    async def scenario(server: FakeBinance) -> None:
        source = ExchangeLiveSource(settings_for(server, markets_refresh_s=0.2), SYMBOLS)
        async with Collector(source):
            await until(lambda: len(server.subscribed()) == 2, what="subscriptions")
            await call(server.delist, "ETH/USDT")
            await until(lambda: server.subscribed() == {"btcusdt@aggTrade"}, what="ETH unsubscribed")
        assert source.stats["symbols_halted"] == 1

    with caplog.at_level(logging.WARNING), FakeBinance(SYMBOLS) as server:
        run(scenario(server))
    assert any("ETH/USDT: delisted, unsubscribed" in record.getMessage() for record in caplog.records)


def test_a_watch_failing_on_a_gone_symbol_rereads_the_markets_at_once():
    # the schedule is an hour away: only the book snapshot's "Invalid symbol" can trigger the re-read
    async def scenario(server: FakeBinance) -> None:
        settings = settings_for(server, markets_refresh_s=3600)
        source = ExchangeLiveSource(settings, SYMBOLS, book=True)
        async with Collector(source):
            await until(lambda: len(server.subscribed()) == 4, what="subscriptions")
            await until(lambda: len(server.requests_to("/api/v3/depth")) == 2, what="snapshots")
            await call(server.delist, "ETH/USDT")
            await call(server.desync_book, "ETH/USDT")
            await call(server.update_book, "ETH/USDT", [("99", "1")], [])
            await until(lambda: source.stats["symbols_halted"] == 1, what="ETH found delisted")
            await until(
                lambda: server.subscribed() == {"btcusdt@aggTrade", "btcusdt@depth@100ms"},
                what="ETH unsubscribed",
            )
        assert source.stats["watches_failed"] == 0

    with FakeBinance(SYMBOLS) as server:
        run(scenario(server))


def test_symbols_not_trading_at_start_are_left_out_with_a_warning(caplog):
    async def scenario(server: FakeBinance) -> None:
        source = ExchangeLiveSource(settings_for(server), SYMBOLS)
        async with Collector(source):
            await until(lambda: bool(server.subscribed()), what="subscriptions")
            await call(server.add_trades, "BTC/USDT", steady(T0, 1, 5))
            await until(lambda: source.stats["trades"] == 1, what="a trade")
            assert server.subscribed() == {"btcusdt@aggTrade"}

    with caplog.at_level(logging.WARNING), FakeBinance(SYMBOLS) as server:
        server.list_market("ETH/USDT", "HALT")
        run(scenario(server))
    warned = [r.getMessage() for r in caplog.records if "not trading now" in r.getMessage()]
    assert warned == ["binance: not trading now, watched once they trade again: ETH/USDT (HALT)"]


def test_a_stream_of_symbols_none_of_which_trades_is_refused_in_one_line():
    async def scenario(server: FakeBinance) -> None:
        async for _ in ExchangeLiveSource(settings_for(server), SYMBOLS).batches():
            pass

    with FakeBinance(SYMBOLS) as server:
        server.list_market("BTC/USDT", "BREAK")
        server.list_market("ETH/USDT", "HALT")
        with pytest.raises(InputError) as refused:
            run(scenario(server))
    assert str(refused.value) == (
        "live source: none of the symbols trades on binance now: BTC/USDT (BREAK), ETH/USDT (HALT)"
    )


def test_a_relisted_symbols_book_is_snapshotted_alone_and_its_changes_come_through():
    async def scenario(server: FakeBinance) -> None:
        source = ExchangeLiveSource(settings_for(server, markets_refresh_s=0.2), SYMBOLS, book=True)
        async with Collector(source) as live:
            await until(lambda: len(server.subscribed()) == 4, what="subscriptions")
            await until(lambda: len(server.requests_to("/api/v3/depth")) == 2, what="snapshots")
            await call(server.list_market, "ETH/USDT", "BREAK")
            await until(lambda: len(server.subscribed()) == 2, what="ETH's two streams unsubscribed")
            await call(server.update_book, "ETH/USDT", [("95", "4")], [])  # while unsubscribed
            await call(server.list_market, "ETH/USDT", "TRADING")
            await until(lambda: len(server.subscribed()) == 4, what="ETH subscribed again")
            await until(lambda: len(server.requests_to("/api/v3/depth")) == 3, what="ETH's snapshot")
            await until(lambda: _level(live, "ETH/USDT", 95.0) == 4.0, what="the level set while away")
        assert sorted(p["symbol"] for p in server.requests_to("/api/v3/depth")) == [
            "BTCUSDT",
            "ETHUSDT",
            "ETHUSDT",
        ]

    with FakeBinance(SYMBOLS) as server:
        run(scenario(server))


def _level(live: Collector, symbol: str, price: float) -> float | None:
    for batch in reversed(live.batches):
        rows = batch.book.filter((pl.col("symbol") == symbol) & (pl.col("price") == price))
        if rows.height:
            return float(rows["amount"][-1])
    return None
