"""Bars through the real yfinance client against the fake Yahoo: daily, intraday, resume, no data."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from peewee import OperationalError

from tapewatch.errors import InputError
from tapewatch.io.lake import Lake
from tapewatch.records import BAR_SCHEMA
from tapewatch.sources.stocks.bars import BarWindow, download_bars, interval_high_water, normalise_interval
from tapewatch.sources.stocks.yahoo import MirrorSession, YahooClient

NEW_YORK = ZoneInfo("America/New_York")
AFTER_CLOSE = datetime(2024, 3, 8, 21, 30, tzinfo=UTC)  # Friday 16:30 in New York
FIRST_MINUTE = datetime(2024, 3, 8, 14, 30, tzinfo=UTC)  # the fixtures' 1m bars start here (09:30 New York)


def tickers(*rows: tuple[str, str, str]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["venue", "symbol", "yahoo"], orient="row")


def window(interval: str, now: datetime = AFTER_CLOSE) -> BarWindow:
    return BarWindow(interval, now, now - timedelta(days=30), time(16, 15), NEW_YORK)


@pytest.fixture
def client(yahoo, yahoo_server) -> YahooClient:
    return YahooClient(yahoo_server[1], retries=2, backoff_s=0.0)


def test_daily_bars_for_three_tickers(client, yahoo, tmp_path):
    lake = Lake(tmp_path)
    three = tickers(("nasdaq", "AAA", "AAA"), ("nyse", "BBB", "BBB"), ("tsxv", "CCC", "CCC.V"))
    report = download_bars(three, window("1d"), lake, client, workers=3)
    assert (report.tickers, report.written, report.no_data, report.failed) == (3, 15, [], {})
    bars = lake.read("bars")
    assert bars.schema == pl.Schema(BAR_SCHEMA)
    aaa = bars.filter(symbol="AAA")
    # a daily bar starts at midnight in the exchange's time zone (05:00 UTC in March, before DST)
    assert aaa["ts"].to_list() == [datetime(2024, 3, day, 5, tzinfo=UTC) for day in range(4, 9)]
    assert aaa["interval"].unique().to_list() == ["1d"] and aaa["venue"].unique().to_list() == ["nasdaq"]
    assert aaa.row(-1, named=True) | {"ts": None} == {
        "ts": None,
        "venue": "nasdaq",
        "symbol": "AAA",
        "interval": "1d",
        "open": 1.283,
        "high": 1.3349,
        "low": 1.2571,
        "close": 1.296,  # what traded, not the dividend-adjusted 1.2908
        "volume": 190000.0,
        "quote_volume": None,
        "trades": None,
    }
    assert bars.filter(symbol="CCC")["close"].to_list() == [0.3, 0.306, 0.312, 0.318, 0.324]


def test_intraday_bars_drop_yahoos_empty_minutes(client, tmp_path):
    lake = Lake(tmp_path)
    report = download_bars(
        tickers(("nasdaq", "AAA", "AAA"), ("nyse", "BBB", "BBB")), window("1m"), lake, client
    )
    assert report.written == 19  # 10 minutes each, AAA's 09:37 minute had no trades
    aaa = lake.read("bars", symbol="AAA")
    assert aaa["ts"][0] == FIRST_MINUTE and aaa.height == 9
    assert FIRST_MINUTE + timedelta(minutes=7) not in aaa["ts"].to_list()


def test_resume_asks_from_the_high_water_mark_and_writes_each_bar_once(client, yahoo, tmp_path):
    lake = Lake(tmp_path)
    aaa = tickers(("nasdaq", "AAA", "AAA"))
    at_0935 = FIRST_MINUTE + timedelta(minutes=5, seconds=5)
    first = download_bars(aaa, window("1m", at_0935), lake, client)
    assert first.written == 5  # 09:30–09:34; the 09:35 bar is still forming at 09:35:05
    again = download_bars(aaa, window("1m", at_0935), lake, client)
    assert (again.written, again.up_to_date) == (0, 1)
    assert len(yahoo.charts("AAA")) == 1  # nothing new can be final yet: Yahoo is not even asked
    later = download_bars(aaa, window("1m", FIRST_MINUTE + timedelta(minutes=12)), lake, client)
    assert later.written == 4  # 09:35, 09:36, 09:38, 09:39 (09:37 had no trades)
    resumed = yahoo.charts("AAA")[-1]
    assert int(resumed["period1"]) == int((FIRST_MINUTE + timedelta(minutes=5)).timestamp())
    stored = lake.read("bars", symbol="AAA")
    assert stored.height == 9 and stored["ts"].is_unique().all()
    assert interval_high_water(lake, "nasdaq", "AAA", "1m") == FIRST_MINUTE + timedelta(minutes=9)
    assert interval_high_water(lake, "nasdaq", "AAA", "1d") is None  # other intervals have their own mark


def test_daily_bar_is_written_only_after_the_close_job_time(client, tmp_path):
    lake = Lake(tmp_path)
    aaa = tickers(("nasdaq", "AAA", "AAA"))
    morning = datetime(2024, 3, 8, 15, 0, tzinfo=UTC)  # 10:00 in New York: Friday's bar is still forming
    assert download_bars(aaa, window("1d", morning), lake, client).written == 4
    assert download_bars(aaa, window("1d"), lake, client).written == 1
    assert lake.read("bars")["ts"].max() == datetime(2024, 3, 8, 5, tzinfo=UTC)


def test_a_ticker_without_data_is_reported_and_skipped(client, tmp_path):
    lake = Lake(tmp_path)
    report = download_bars(
        tickers(("nasdaq", "ZZZQ", "ZZZQ"), ("nyse", "BBB", "BBB")), window("1d"), lake, client
    )
    assert report.no_data == ["nasdaq:ZZZQ"] and report.written == 5 and not report.failed
    assert lake.symbols("bars", "nasdaq") == []


def test_rate_limits_are_retried(client, yahoo, tmp_path):
    yahoo.rate_limited = 2
    report = download_bars(tickers(("nyse", "BBB", "BBB")), window("1d"), Lake(tmp_path), client)
    assert report.written == 5 and not report.failed
    assert yahoo.rate_limited == 0


def test_a_locked_yfinance_cache_is_retried_and_other_database_errors_are_not():
    """yfinance's SQLite caches lock when worker threads start on a fresh cache (seen on CI)."""
    waits: list[float] = []
    client = YahooClient(retries=3, backoff_s=0.5, sleep=waits.append)
    outcomes = iter([OperationalError("database is locked"), OperationalError("database is locked"), "bars"])

    def locked_twice() -> str:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert client._retry(locked_twice) == "bars" and waits == [0.5, 1.0]
    with pytest.raises(OperationalError, match="no such table"):
        client._retry(lambda: (_ for _ in ()).throw(OperationalError("no such table: _tz_kv")))
    assert waits == [0.5, 1.0]  # not retried


def test_one_failing_ticker_does_not_stop_the_others(client, tmp_path):
    class Flaky(YahooClient):
        def bars(self, ticker, interval, start, end):
            if ticker == "BBB":
                raise ConnectionError("reset by peer")
            return super().bars(ticker, interval, start, end)

    flaky = Flaky(client.session.base_url, retries=0)
    report = download_bars(
        tickers(("nasdaq", "AAA", "AAA"), ("nyse", "BBB", "BBB")), window("1d"), Lake(tmp_path), flaky
    )
    assert report.failed == {"nyse:BBB": "ConnectionError: reset by peer"} and report.written == 5


def test_facts_come_from_yahoos_quote_with_cookie_and_crumb(client, yahoo):
    quotes = client.facts(["AAA", "BRK-B", "NOPE", "CCC.V"], batch=2)
    facts, errors = quotes.found, quotes.errors
    assert errors == []
    assert set(facts) == {"AAA", "BRK-B", "CCC.V"}
    assert facts["AAA"].last_price == 1.2974 and facts["AAA"].avg_volume == 184000
    assert facts["BRK-B"].market_cap == 888e9
    quote_calls = [q for path, q in yahoo.requests if path == "/v7/finance/quote"]
    assert [q["symbols"] for q in quote_calls] == ["AAA,BRK-B", "NOPE,CCC.V"]
    assert all(q["crumb"] == "Xq7fake.Crumb" for q in quote_calls)


def test_mirror_session_rewrites_only_yahoo_hosts():
    session = MirrorSession("http://127.0.0.1:8080/")
    assert session.rewrite("https://query2.finance.yahoo.com/v8/finance/chart/AAA?interval=1d") == (
        "http://127.0.0.1:8080/v8/finance/chart/AAA?interval=1d"
    )
    assert session.rewrite("https://fc.yahoo.com") == "http://127.0.0.1:8080/"
    assert session.rewrite("https://example.com/x") == "https://example.com/x"


def test_intervals():
    assert normalise_interval("60m") == "1h" and normalise_interval(" 1D ") == "1d"
    with pytest.raises(InputError, match="--interval '1mo': expected one of 1m, 2m"):
        normalise_interval("1mo")
