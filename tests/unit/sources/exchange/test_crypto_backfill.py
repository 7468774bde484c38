"""REST backfill of trades and candles through ccxt into the lake: paging, resume, closed candles only."""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from tapewatch.io.lake import Lake
from tapewatch.records import BAR_SCHEMA, TRADE_SCHEMA
from tapewatch.sources.exchange import backfill_ohlcv, backfill_trades
from unit.sources.exchange.crypto_harness import START, T0, run, settings_for, steady
from unit.sources.exchange.fake_binance import FakeBinance

HOUR = 3_600_000


def _agg_requests(server: FakeBinance) -> list[dict[str, str]]:
    return [params for path, params in server.requests if path == "/api/v3/aggTrades"]


def test_trades_are_paged_through_hour_windows_and_stored_once(tmp_path):
    lake = Lake(tmp_path)
    with FakeBinance(["BTC/USDT", "ETH/USDT"]) as server:
        # 2,700 BTC trades over 3 hours (every 4 s), and a quiet ETH with 3 trades
        server.add_trades("BTC/USDT", steady(T0, 2700, 4000))
        server.add_trades(
            "ETH/USDT", [(T0 + 90 * 60_000, 2200.0, 0.5, False), (T0 + 95 * 60_000, 2201.0, 0.1, True)]
        )
        server.add_trades("ETH/USDT", [(T0 + 3 * HOUR + 1, 2202.0, 0.1, True)])  # outside the range
        settings = settings_for(server, backfill_page=500)
        report = run(
            backfill_trades(settings, ["BTC/USDT", "ETH/USDT"], START, START + timedelta(hours=3), lake)
        )
        requests = _agg_requests(server)

    assert report.written == 2702
    assert report.symbols["BTC/USDT"].written == 2700
    assert report.symbols["ETH/USDT"].written == 2
    assert report.failed == {}
    stored = lake.read("trades", venue="binance", symbol="BTC/USDT")
    assert stored.schema == pl.Schema(TRADE_SCHEMA)
    assert stored["trade_id"].to_list() == [str(i) for i in range(1, 2701)]
    assert stored["ts"][0] == START
    first = stored.row(0, named=True)
    assert (first["price"], first["amount"], first["side"]) == (100.0, 1.0, "sell")  # m=true: the taker sold
    assert stored.row(1, named=True)["side"] == "buy"
    # Binance refuses aggTrades spans over an hour: every request stayed inside one
    assert all(int(r["endTime"]) - int(r["startTime"]) < HOUR for r in requests)
    btc = [r for r in requests if r["symbol"] == "BTCUSDT"]
    assert len(btc) >= 2700 // 500  # it had to page
    assert all(r["limit"] == "500" for r in requests)


def test_a_second_run_fetches_nothing_and_an_extended_range_only_the_new_part(tmp_path):
    lake = Lake(tmp_path)
    with FakeBinance(["BTC/USDT"]) as server:
        server.add_trades("BTC/USDT", steady(T0, 1800, 6000))  # 3 hours
        settings = settings_for(server)
        two_hours = START + timedelta(hours=2)
        first = run(backfill_trades(settings, ["BTC/USDT"], START, two_hours, lake))
        requests_after_first = len(_agg_requests(server))
        again = run(backfill_trades(settings, ["BTC/USDT"], START, two_hours, lake))
        assert len(_agg_requests(server)) == requests_after_first  # the ledger said: nothing missing
        longer = run(backfill_trades(settings, ["BTC/USDT"], START, START + timedelta(hours=3), lake))
        extension = _agg_requests(server)[requests_after_first:]

    assert first.written == 1200
    assert again.written == 0 and again.symbols["BTC/USDT"].up_to_date
    assert longer.written == 600
    assert longer.symbols["BTC/USDT"].resumed_from == two_hours
    assert extension and all(int(r["startTime"]) >= T0 + 2 * HOUR for r in extension)
    assert lake.read("trades")["trade_id"].to_list() == [str(i) for i in range(1, 1801)]


def test_an_earlier_start_fetches_only_what_lies_before_the_stored_range(tmp_path):
    lake = Lake(tmp_path)
    with FakeBinance(["BTC/USDT"]) as server:
        server.add_trades("BTC/USDT", steady(T0, 720, 10_000))  # 2 hours
        settings = settings_for(server)
        run(
            backfill_trades(
                settings, ["BTC/USDT"], START + timedelta(hours=1), START + timedelta(hours=2), lake
            )
        )
        seen = len(_agg_requests(server))
        earlier = run(backfill_trades(settings, ["BTC/USDT"], START, START + timedelta(hours=2), lake))
        later_requests = _agg_requests(server)[seen:]
    assert earlier.written == 360
    assert all(int(r["startTime"]) < T0 + HOUR for r in later_requests)
    assert lake.read("trades").height == 720


def test_pages_that_end_inside_a_millisecond_lose_and_repeat_nothing(tmp_path):
    lake = Lake(tmp_path)
    with FakeBinance(["BTC/USDT"]) as server:
        # bursts: 3 trades in each of 12 milliseconds, read 5 at a time
        rows = [(T0 + 1000 * burst, 100.0 + burst, 1.0, False) for burst in range(12) for _ in range(3)]
        server.add_trades("BTC/USDT", rows)
        settings = settings_for(server, backfill_page=5)
        report = run(backfill_trades(settings, ["BTC/USDT"], START, START + timedelta(minutes=1), lake))
    assert report.written == 36
    assert report.symbols["BTC/USDT"].fetched == 36  # no page overlap handed on twice
    assert sorted(int(i) for i in lake.read("trades")["trade_id"]) == list(range(1, 37))


def test_a_failed_run_keeps_what_it_wrote_and_the_next_run_resumes_there(tmp_path):
    lake = Lake(tmp_path)
    with FakeBinance(["BTC/USDT"]) as server:
        server.add_trades("BTC/USDT", steady(T0, 1000, 10_000))  # ~2.8 hours
        settings = settings_for(server, backfill_page=100, backfill_flush_rows=100)
        server.fail_after("/api/v3/aggTrades", 4)
        end = START + timedelta(hours=3)
        broken = run(backfill_trades(settings, ["BTC/USDT"], START, end, lake))
        server.recover("/api/v3/aggTrades")
        resumed = run(backfill_trades(settings, ["BTC/USDT"], START, end, lake))

    assert "BTC/USDT" in broken.failed and "503" in broken.failed["BTC/USDT"]
    # four pages made it to disk before the outage; each page after the first starts at the
    # millisecond the previous one ended in, so it repeats (and drops) one trade: 100 + 3 × 99
    assert broken.written == 397
    assert resumed.symbols["BTC/USDT"].resumed_from is not None
    assert resumed.symbols["BTC/USDT"].resumed_from > START
    assert resumed.written == 603
    assert lake.read("trades")["trade_id"].to_list() == [str(i) for i in range(1, 1001)]


def test_a_trade_the_normaliser_refuses_is_set_aside_with_its_reason(tmp_path):
    lake = Lake(tmp_path)
    with FakeBinance(["BTC/USDT"]) as server:
        server.add_trades(
            "BTC/USDT", [(T0, 100.0, 1.0, False), (T0 + 1, 100.0, 0.0, True), (T0 + 2, 101.0, 2.0, True)]
        )
        report = run(
            backfill_trades(settings_for(server), ["BTC/USDT"], START, START + timedelta(minutes=1), lake)
        )
    result = report.symbols["BTC/USDT"]
    assert result.written == 2
    assert [r["reason"] for r in result.rejected] == ["amount is not a positive number"]
    assert result.rejected[0]["record"]["a"] == 2  # the exchange's own record, for the dead letters
    assert result.rejected[0]["source"] == "binance:rest"


def test_candles_are_stored_closed_once_and_match_the_trades(tmp_path):
    lake = Lake(tmp_path)
    with FakeBinance(["BTC/USDT"]) as server:
        server.add_trades("BTC/USDT", steady(T0, 600, 1000))  # 10 minutes of trades
        settings = settings_for(server, backfill_page=4)  # 4 candles a page: it has to page
        end = START + timedelta(minutes=10)
        first = run(backfill_ohlcv(settings, ["BTC/USDT"], "1m", START, end, lake))
        again = run(backfill_ohlcv(settings, ["BTC/USDT"], "1m", START, end, lake))
    bars = lake.read("bars", venue="binance", symbol="BTC/USDT")
    assert first.written == 10 and again.written == 0
    assert bars.schema == pl.Schema(BAR_SCHEMA)
    assert bars["ts"].to_list() == [START + timedelta(minutes=m) for m in range(10)]
    assert set(bars["interval"]) == {"1m"}
    minute = steady(T0, 600, 1000)[60:120]
    second = bars.row(1, named=True)
    assert second["open"] == minute[0][1] and second["close"] == minute[-1][1]
    assert second["high"] == max(t[1] for t in minute) and second["low"] == min(t[1] for t in minute)
    assert second["volume"] == sum(t[2] for t in minute)


def test_a_candle_still_open_is_left_for_a_later_run(tmp_path):
    lake = Lake(tmp_path)
    with FakeBinance(["BTC/USDT"]) as server:
        server.add_trades("BTC/USDT", steady(T0, 300, 1000))  # 5 minutes of trades
        server.now_ms = T0 + 150_000  # the server's clock: minute 2 is still open
        settings = settings_for(server)
        end = START + timedelta(minutes=5)
        report = run(backfill_ohlcv(settings, ["BTC/USDT"], "1m", START, end, lake))
    assert report.written == 2
    assert lake.read("bars")["ts"].to_list() == [START, START + timedelta(minutes=1)]
