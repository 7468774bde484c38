"""Order books: the L2 window, the depths venues accept, watches that keep failing, per-symbol resync,
and Binance's 24-hour disconnect, against the fake Binance through ccxt's real classes."""

from __future__ import annotations

import logging
from typing import Any

import ccxt
import ccxt.pro
import polars as pl
import pytest

from tapewatch.sources.exchange import ExchangeLiveSource
from tapewatch.sources.exchange import books as books_module
from tapewatch.sources.exchange.books import BookDiffer, book_depth
from tapewatch.sources.exchange.connect import make_exchange
from unit.sources.exchange.crypto_harness import T0, Collector, call, run, settings_for, steady, until
from unit.sources.exchange.fake_binance import FakeBinance

SYMBOLS = ["BTC/USDT", "ETH/USDT", "ETH/BTC"]


def _book(bids: list[float], asks: list[float], amount: float = 1.0) -> dict[str, Any]:
    return {"timestamp": 1, "bids": [[p, amount] for p in bids], "asks": [[p, amount] for p in asks]}


def _moves(levels: list[tuple[int, str, str, float, float]]) -> set[tuple[str, float, float]]:
    return {(side, price, amount) for _, _, side, price, amount in levels}


# ---- the top-N window ----------------------------------------------------------------------


def test_a_level_pushed_out_of_the_window_by_better_ones_is_not_removed():
    differ = BookDiffer(3)
    differ.changes("X", _book([100, 99, 98], [101, 102, 103]), 0.0)
    # a better bid and a better ask move in: 98 and 103 drop out of the top 3 but still rest in the book
    changes = differ.changes("X", _book([100.5, 100, 99, 98], [100.8, 101, 102, 103]), 0.0)
    assert _moves(changes) == {("bid", 100.5, 1.0), ("ask", 100.8, 1.0)}


def test_a_level_that_vanished_inside_the_window_is_removed_and_the_next_one_moves_in():
    differ = BookDiffer(3)
    differ.changes("X", _book([100, 99, 98, 97], [101, 102, 103, 104]), 0.0)
    changes = differ.changes("X", _book([100, 98, 97], [101, 103, 104]), 0.0)
    assert _moves(changes) == {
        ("bid", 99.0, 0.0),  # gone from inside the window: removed
        ("bid", 97.0, 1.0),  # moved into the window from below
        ("ask", 102.0, 0.0),
        ("ask", 104.0, 1.0),
    }


def test_in_a_window_that_is_not_full_every_vanished_level_is_removed():
    differ = BookDiffer(5)
    differ.changes("X", _book([100, 99], [101]), 0.0)
    assert _moves(differ.changes("X", _book([100], []), 0.0)) == {("bid", 99.0, 0.0), ("ask", 101.0, 0.0)}


def test_a_level_that_left_the_window_comes_back_with_its_amount():
    differ = BookDiffer(2)
    differ.changes("X", _book([100, 99], [101, 102]), 0.0)
    differ.changes("X", _book([100.5, 100, 99], [101, 102]), 0.0)  # 99 pushed out
    back = differ.changes("X", _book([100, 99], [101, 102]), 0.0)  # 100.5 cancelled: 99 is back
    assert _moves(back) == {("bid", 100.5, 0.0), ("bid", 99.0, 1.0)}


# ---- depths --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("venue", "wanted", "asked"),
    [
        ("bybit", 100, 200),  # ccxt raises for 100 on Bybit spot
        ("bybit", 1, 1),
        ("bybit", 5000, 1000),  # the deepest there is
        ("binance", 100, 100),
        ("binance", 150, 500),
        ("kraken", 20, 25),
        ("okx", 100, 400),
        ("somevenue", 77, 77),  # depths unknown: as wanted
    ],
)
def test_the_smallest_depth_the_venue_accepts_that_holds_the_wanted_levels(venue, wanted, asked):
    assert book_depth(venue, wanted) == asked


def test_depths_chosen_for_bybit_pass_ccxts_own_validation():
    bybit = ccxt.pro.bybit()
    bybit.set_markets([_spot_market("BTC/USDT", "BTCUSDT")])
    with pytest.raises(ccxt.BadRequest):
        run(bybit.watch_order_book_for_symbols(["BTC/USDT"], 100))
    assert book_depth("bybit", 100) in books_module.DEPTHS["bybit"]


def _spot_market(symbol: str, market_id: str) -> dict[str, Any]:
    base, quote = symbol.split("/")
    return {
        "id": market_id,
        "symbol": symbol,
        "base": base,
        "quote": quote,
        "baseId": base,
        "quoteId": quote,
        "type": "spot",
        "spot": True,
        "margin": False,
        "swap": False,
        "future": False,
        "option": False,
        "contract": False,
        "active": True,
        "precision": {"amount": 0.0001, "price": 0.01},
        "limits": {},
        "info": {},
    }


# ---- watches that keep failing -------------------------------------------------------------


def test_a_book_watch_failing_the_same_way_is_given_up_in_one_line_and_trades_go_on(monkeypatch, caplog):
    # Bybit-style: the venue accepts only some depths, and ccxt refuses the others before sending
    allowed = (1, 50, 200, 1000)
    monkeypatch.setitem(books_module.DEPTHS, "binance", (100,))  # Tapewatch wrongly believes 100 is fine

    async def scenario(server: FakeBinance) -> None:
        settings = settings_for(server, reconnect_initial_s=0.01, reconnect_max_s=0.02)
        exchange = make_exchange(settings, pro=True)
        watch = exchange.watch_order_book_for_symbols

        async def strict_watch(symbols: list[str], limit: int | None = None, params: Any = None) -> Any:
            if limit not in allowed:
                raise ccxt.BadRequest(f"binance watchOrderBookForSymbols(): limit can be one of: {allowed}")
            return await watch(symbols, limit)

        exchange.watch_order_book_for_symbols = strict_watch
        source = ExchangeLiveSource(settings, ["BTC/USDT"], book=True, exchange=exchange)
        try:
            async with Collector(source) as live:
                await until(lambda: source.stats["watches_failed"] == 1, what="the book watch given up")
                await call(server.add_trades, "BTC/USDT", steady(T0, 2, 5))
                await until(lambda: live.ids("BTC/USDT") == [1, 2], what="trades still flowing")
        finally:
            await exchange.close()

    with (
        caplog.at_level(logging.DEBUG, logger="tapewatch.sources.exchange.live"),
        FakeBinance(SYMBOLS) as server,
    ):
        run(scenario(server))
    records = [r for r in caplog.records if "book BTC/USDT" in r.getMessage()]
    assert [r.levelno for r in records].count(logging.ERROR) == 1
    assert [r.levelno for r in records].count(logging.WARNING) == 1  # the first failure, then quieter
    assert "given up after 5 failures in a row" in records[-1].getMessage()


# ---- resync --------------------------------------------------------------------------------


def _snapshots(server: FakeBinance) -> list[str]:
    return [params["symbol"] for params in server.requests_to("/api/v3/depth")]


def test_one_symbols_desync_resnapshots_only_that_symbol():
    async def scenario(server: FakeBinance) -> None:
        source = ExchangeLiveSource(settings_for(server), SYMBOLS, book=True)
        async with Collector(source) as live:
            await until(lambda: len(server.subscribed()) == 6, what="subscriptions")
            await until(lambda: len(_snapshots(server)) == 3, what="three snapshots")
            for symbol in SYMBOLS:
                await call(server.update_book, symbol, [("99", "1")], [("101", "1")])
            await until(lambda: _book_levels(live) == 6, what="first levels")

            await call(server.desync_book, "ETH/USDT")
            await call(server.update_book, "ETH/USDT", [("98", "2")], [])  # U does not follow: desync
            await until(lambda: len(_snapshots(server)) == 4, what="the resync snapshot")
            await call(server.update_book, "ETH/USDT", [("97", "3")], [])
            await until(lambda: _has_level(live, "ETH/USDT", 97.0), what="ETH's book after the resync")
            await call(server.update_book, "BTC/USDT", [("96", "1")], [])
            await until(lambda: _has_level(live, "BTC/USDT", 96.0), what="BTC untouched and flowing")
        assert sorted(_snapshots(server)) == sorted(["BTCUSDT", "ETHUSDT", "ETHBTC", "ETHUSDT"])
        eth = _levels(live).filter(pl.col("symbol") == "ETH/USDT")
        assert {(p, a) for p, a in eth.select("price", "amount").iter_rows()} >= {(98.0, 2.0), (97.0, 3.0)}

    with FakeBinance(SYMBOLS) as server:
        run(scenario(server))


def test_a_24_hour_disconnect_reconnects_once_and_refills_without_a_storm():
    async def scenario(server: FakeBinance) -> None:
        settings = settings_for(server, history_settle_s=0.0)
        source = ExchangeLiveSource(settings, SYMBOLS, book=True)
        async with Collector(source) as live:
            await until(lambda: len(server.subscribed()) == 6, what="subscriptions")
            await until(lambda: len(_snapshots(server)) == 3, what="three snapshots")
            for symbol in SYMBOLS:
                await call(server.add_trades, symbol, steady(T0, 2, 5))
            await until(lambda: live.trades().height == 6, what="first trades")
            opened = len(server.connections)

            await call(server.shut_down)  # serverShutdown, then the close
            for symbol in SYMBOLS:  # traded while the connection was down
                await call(server.add_trades, symbol, steady(T0 + 100, 3, 5), broadcast=False)
            await until(lambda: len(server.subscribed()) == 6, what="subscribed again")
            for symbol in SYMBOLS:
                await call(server.add_trades, symbol, steady(T0 + 200, 1, 5))
            await until(lambda: live.trades().height == 18, what="every trade, refilled ones too")
            await until(lambda: len(_snapshots(server)) == 6, what="one fresh snapshot per symbol")
        for symbol in SYMBOLS:
            assert live.ids(symbol) == [1, 2, 3, 4, 5, 6]
        assert len(server.connections) == 2 * opened  # each socket (trades, book) opened again once
        assert sorted(_snapshots(server)[3:]) == sorted(s.replace("/", "") for s in SYMBOLS)
        refills = server.requests_to("/api/v3/aggTrades")
        assert len(refills) <= 2 * len(SYMBOLS)  # one gap per symbol, a page or two each
        assert source.stats["malformed"] == 0  # the serverShutdown event is not a bad frame
        assert 429 not in server.answered()

    with FakeBinance(SYMBOLS) as server:
        run(scenario(server))


def test_book_snapshots_of_many_symbols_are_paced_under_the_weight_limit():
    symbols = [f"C{i:02d}/USDT" for i in range(12)]  # 12 snapshots × 5 = 60 weight, 27 a window allowed

    async def scenario(server: FakeBinance) -> None:
        settings = settings_for(server, rate_limit_weight=30, rate_limit_window_s=1.0)
        source = ExchangeLiveSource(settings, symbols, book=True)
        async with Collector(source):
            await until(lambda: len(_snapshots(server)) == 12, timeout=10, what="every snapshot")
        assert set(server.answered()) == {200}  # no 429, let alone a 418
        assert server.peak_weight <= 27
        windows = {int(at) for at, path, _ in server.answers if path == "/api/v3/depth"}
        assert len(windows) >= 3

    with FakeBinance(symbols) as server:
        server.limits.weight = 30
        server.limits.window_s = 1.0
        run(scenario(server))


def _levels(live: Collector) -> pl.DataFrame:
    return pl.concat([batch.book for batch in live.batches])


def _book_levels(live: Collector) -> int:
    return _levels(live).height if live.batches else 0


def _has_level(live: Collector, symbol: str, price: float) -> bool:
    if not live.batches:
        return False
    levels = _levels(live)
    return levels.filter((pl.col("symbol") == symbol) & (pl.col("price") == price)).height > 0
