"""History as each venue really gives it, through ccxt's real classes against local fakes.

OKX pages backwards by trade id, 100 a page; Bybit gives only its newest trades; Binance
numbers its trades. What a venue cannot give must end up "not available", never fetched,
and a live gap refill that leaves a hole must say where the hole is.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import typer
from typer.testing import CliRunner

from tapewatch.cli.app import user_errors
from tapewatch.cli.exchange import ingest_crypto
from tapewatch.config import ExchangeSettings
from tapewatch.io.lake import Lake
from tapewatch.sources.exchange import ExchangeLiveSource, backfill_trades
from tapewatch.sources.exchange.coverage import Coverage
from tapewatch.sources.exchange.sequence import Gap
from unit.sources.exchange.crypto_harness import T0, Collector, call, run, settings_for, steady, until
from unit.sources.exchange.fake_binance import FakeBinance
from unit.sources.exchange.fake_bybit import FakeBybit
from unit.sources.exchange.fake_kraken import FakeKraken
from unit.sources.exchange.fake_okx import FakeOkx

HOUR = 3_600_000
RECENT = (int(time.time() * 1000) - 48 * HOUR) // HOUR * HOUR
"""Two days ago, on the hour: inside OKX's three months of history."""


def _moment(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _settings(venue: str, server: FakeOkx | FakeBybit, **overrides: object) -> ExchangeSettings:
    values = {"exchange": venue, "rest_url": server.rest_url, "rate_limit_ms": 1, "history_settle_s": 0.0}
    return ExchangeSettings(**{**values, **overrides})


def test_okx_history_is_paged_back_by_trade_id_until_the_range_is_covered(tmp_path):
    lake = Lake(tmp_path)
    with FakeOkx(["BTC/USDT"]) as server:
        server.add("BTC/USDT", steady(RECENT - 60_000, 100, 500))  # before the range
        server.add("BTC/USDT", steady(RECENT, 5000, 700))  # 5,000 trades, about 58 minutes
        server.add("BTC/USDT", steady(RECENT + HOUR + 1, 10, 500))  # after it
        settings = _settings("okx", server, backfill_page=1000)  # OKX gives 100 a page, silently
        start, end = _moment(RECENT), _moment(RECENT + HOUR)
        report = run(backfill_trades(settings, ["BTC/USDT"], start, end, lake))
        history = server.asked("/api/v5/market/history-trades")
        recent = server.asked("/api/v5/market/trades")

    result = report.symbols["BTC/USDT"]
    assert result.error is None and result.not_available == []
    assert result.written == 5000  # a page at the venue's cap of 100 meant: more to come
    stored = lake.read("trades", venue="okx", symbol="BTC/USDT")
    assert sorted(int(i) for i in stored["trade_id"]) == list(range(101, 5101))
    assert not recent  # the recent-trades endpoint ignores the range: never used for history
    assert history[0]["type"] == "2" and history[0]["after"] == str(RECENT + HOUR)
    assert all(p["limit"] == "100" and p["type"] == "1" for p in history[1:])
    assert [int(p["after"]) for p in history[1:]] == list(range(5001, 100, -100))  # each page's oldest id
    coverage = Coverage(lake.store, "trades", "okx", "BTC/USDT", "trades")
    assert coverage.missing(RECENT, RECENT + HOUR) == []


def test_ids_missing_from_okx_history_are_a_hole_not_fetched_and_a_later_run_fills_it(tmp_path):
    lake = Lake(tmp_path)
    with FakeOkx(["BTC/USDT"]) as server:
        server.add("BTC/USDT", steady(RECENT, 300, 1000))  # ids 1…300, one a second
        hidden = server.trades["BTC-USDT"].pop(199)  # id 200: the last of the first page, were it there
        settings = _settings("okx", server)
        start, end = _moment(RECENT), _moment(RECENT + HOUR)
        first = run(backfill_trades(settings, ["BTC/USDT"], start, end, lake))
        server.trades["BTC-USDT"].insert(199, hidden)
        second = run(backfill_trades(settings, ["BTC/USDT"], start, end, lake))

    assert first.symbols["BTC/USDT"].written == 299
    # between trade 199 (at 198 s) and trade 201 (at 200 s), across two pages
    hole = (_moment(RECENT + 198_000), _moment(RECENT + 200_001))
    assert first.symbols["BTC/USDT"].not_available == [hole]
    assert second.symbols["BTC/USDT"].resumed_from == hole[0]  # only the hole was asked again
    assert second.symbols["BTC/USDT"].written == 1
    assert second.symbols["BTC/USDT"].not_available == []
    assert sorted(int(i) for i in lake.read("trades")["trade_id"]) == list(range(1, 301))


def test_okx_history_older_than_three_months_is_not_available_and_not_asked_for(tmp_path):
    lake = Lake(tmp_path)
    with FakeOkx(["BTC/USDT"]) as server:
        server.add("BTC/USDT", steady(T0, 10, 1000))  # 2024: far beyond OKX's history
        settings = _settings("okx", server)
        report = run(backfill_trades(settings, ["BTC/USDT"], _moment(T0), _moment(T0 + HOUR), lake))
        history = server.asked("/api/v5/market/history-trades")
    assert history == []
    assert report.symbols["BTC/USDT"].not_available == [(_moment(T0), _moment(T0 + HOUR))]
    assert Coverage(lake.store, "trades", "okx", "BTC/USDT", "trades").missing(T0, T0 + HOUR) == [
        (T0, T0 + HOUR)
    ]


def test_kraken_history_is_paged_by_the_cursor_each_answer_returns(tmp_path):
    lake = Lake(tmp_path)
    with FakeKraken(["BTC/USD"]) as server:
        server.add("BTC/USD", [(T0 + 200, 99.0, 1.0, True)] * 2)  # the start's second, but before it
        bursts = [(T0 + 1000 + (i // 3) * 1000, 100.0 + i * 0.01, 1.0, i % 2 == 0) for i in range(2500)]
        server.add("BTC/USD", bursts)  # three trades a millisecond, each second: pages end inside one
        server.add("BTC/USD", [(T0 + HOUR, 101.0, 1.0, True)])  # at the end: outside
        settings = _settings("kraken", server, backfill_page=5000)
        report = run(backfill_trades(settings, ["BTC/USD"], _moment(T0 + 500), _moment(T0 + HOUR), lake))
        asked = server.asked("/0/public/Trades")

    result = report.symbols["BTC/USD"]
    assert result.error is None and result.not_available == []
    assert result.written == result.fetched == 2500  # nothing lost or repeated at the page edges
    assert sorted(int(i) for i in lake.read("trades")["trade_id"]) == list(range(3, 2503))
    assert [p["count"] for p in asked] == ["1000"] * 3  # Kraken's cap, not the 5,000 asked for
    assert asked[0]["since"] == str((T0 + 500) // 1000)  # whole seconds first, then the cursors given
    assert [int(p["since"]) // 1_000_000 for p in asked[1:]] == [bursts[997][0], bursts[1997][0]]
    assert bursts[997][0] == bursts[998][0]  # the first page ended inside a millisecond


def test_bybit_recent_trades_do_not_mark_a_day_fetched(tmp_path):
    lake = Lake(tmp_path)
    day = 24 * HOUR
    with FakeBybit(["BTC/USDT"]) as server:
        server.add("BTC/USDT", steady(RECENT - day, 2400, 36_000))  # a trade every 36 s for a day
        settings = _settings("bybit", server, backfill_page=1000)
        start, end = _moment(RECENT - day), _moment(RECENT)
        report = run(backfill_trades(settings, ["BTC/USDT"], start, end, lake))
        asked = server.asked("/v5/market/recent-trade")

    result = report.symbols["BTC/USDT"]
    assert result.error is None
    assert [p["limit"] for p in asked] == ["60"]  # Bybit's spot cap, not the 1000 asked for
    assert result.written == 60
    oldest = RECENT - day + 2340 * 36_000  # the 60 newest of the 2,400
    assert result.not_available == [(start, _moment(oldest + 1))]
    coverage = Coverage(lake.store, "trades", "bybit", "BTC/USDT", "trades")
    assert coverage.missing(RECENT - day, RECENT) == [(RECENT - day, oldest + 1)]  # not done
    assert coverage.not_available(RECENT - day, RECENT) == [(RECENT - day, oldest + 1)]


def test_ingest_crypto_on_bybit_reports_what_is_not_available(tmp_path):
    app = typer.Typer()
    app.command()(user_errors(ingest_crypto))
    with FakeBybit(["BTC/USDT", "ETH/USDT"]) as server:
        server.add("BTC/USDT", steady(RECENT - 2 * HOUR, 200, 30_000))  # the last 100 minutes of 2 h
        config = tmp_path / "tapewatch.toml"
        config.write_text(f'[exchange]\nrest_url = "{server.rest_url}"\nrate_limit_ms = 1\n')
        since, until = _moment(RECENT - 2 * HOUR), _moment(RECENT)
        result = CliRunner().invoke(
            app,
            [
                "--exchange",
                "bybit",
                "--symbols",
                "BTC/USDT",
                "--since",
                since.isoformat(),
                "--until",
                until.isoformat(),
                "--lake",
                str(tmp_path / "lake"),
                "--db",
                str(tmp_path / "store.db"),
                "--config",
                str(config),
            ],
        )
    assert result.exit_code == 0, result.output
    assert "bybit: 2 spot market(s) listed" in result.output
    assert "BTC/USDT: 60 new of 60 fetched" in result.output
    oldest = _moment(RECENT - 2 * HOUR + 140 * 30_000)
    expected = f"not available from bybit: {since:%Y-%m-%dT%H:%M:%SZ} → {oldest:%Y-%m-%dT%H:%M:%SZ}"
    assert expected in result.output
    assert "(recent trades only)" in result.output


def test_a_refill_that_leaves_a_hole_is_recorded_with_its_bounds():
    async def scenario(server: FakeBinance) -> ExchangeLiveSource:
        source = ExchangeLiveSource(settings_for(server), ["BTC/USDT"])
        async with Collector(source) as live:
            await until(lambda: len(server.subscribed()) == 1, what="subscription")
            await call(server.add_trades, "BTC/USDT", steady(T0, 5, 10))  # ids 1…5
            await until(lambda: len(live.ids("BTC/USDT")) == 5, what="5 trades")
            await call(server.drop_connections)
            await call(server.add_trades, "BTC/USDT", steady(T0 + 100, 4, 10), broadcast=False)  # 6…9
            server.trades["BTCUSDT"][6:7] = []  # id 7 never reaches the REST history
            await until(lambda: len(server.subscribed()) == 1, what="reconnect")
            await call(server.add_trades, "BTC/USDT", steady(T0 + 200, 1, 10))  # id 10
            await until(lambda: 10 in live.ids("BTC/USDT"), what="the held trade")
        assert live.ids("BTC/USDT") == [1, 2, 3, 4, 5, 6, 8, 9, 10]  # what was found still comes out
        return source

    with FakeBinance(["BTC/USDT"]) as server:
        source = run(scenario(server))
        refills = server.requests
    assert source.stats["gaps_backfilled"] == 0 and source.stats["gaps_failed"] == 1
    # id 7 lies between trade 6 (T0 + 100 ms) and trade 8 (T0 + 120 ms)
    assert source.unrepaired == [("BTC/USDT", Gap((T0 + 100) * 1000, (T0 + 120) * 1000, 6, 8))]
    assert sum(path == "/api/v3/aggTrades" for path, _ in refills) == 3  # tried three times


def test_a_refill_waits_the_venues_settle_time_first():
    settle = 0.4

    async def scenario(server: FakeBinance) -> float:
        source = ExchangeLiveSource(settings_for(server, history_settle_s=settle), ["BTC/USDT"])
        async with Collector(source) as live:
            await until(lambda: len(server.subscribed()) == 1, what="subscription")
            await call(server.add_trades, "BTC/USDT", steady(T0, 2, 10))
            await until(lambda: len(live.ids("BTC/USDT")) == 2, what="2 trades")
            await call(server.drop_connections)
            await call(server.add_trades, "BTC/USDT", steady(T0 + 100, 2, 10), broadcast=False)
            await until(lambda: len(server.subscribed()) == 1, what="reconnect")
            opened = time.monotonic()
            await call(server.add_trades, "BTC/USDT", steady(T0 + 200, 1, 10))
            await until(lambda: len(live.ids("BTC/USDT")) == 5, what="refill")
            waited = time.monotonic() - opened
            await asyncio.sleep(0)
        assert live.ids("BTC/USDT") == [1, 2, 3, 4, 5]
        assert source.stats["gaps_backfilled"] == 1
        return waited

    with FakeBinance(["BTC/USDT"]) as server:
        assert run(scenario(server)) >= settle


def test_backfill_stops_the_settle_time_before_now(tmp_path):
    now = int(time.time() * 1000)
    with FakeOkx(["BTC/USDT"]) as server:
        settings = _settings("okx", server, history_settle_s=60.0)
        run(backfill_trades(settings, ["BTC/USDT"], _moment(now - HOUR), _moment(now + HOUR), Lake(tmp_path)))
        first = server.asked("/api/v5/market/history-trades")[0]
    assert now - 60_000 <= int(first["after"]) <= now - 55_000  # the first page ends a minute ago
