"""Live trades and books on Bybit and Kraken, through ccxt.pro's real classes against the local fakes.

Neither venue numbers its trades one by one, so a dropped connection opens a gap in time:
Kraken's cursor-paged history refills it, Bybit's recent-trades-only endpoint cannot reach
back far enough and the gap is reported with its bounds. A trade that arrives live and the
same trade fetched over REST must become the same record, or the lake would keep both.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from tapewatch.cli.app import app
from tapewatch.config import ExchangeSettings
from tapewatch.io.lake import Lake
from tapewatch.sources.exchange import ExchangeLiveSource, backfill_trades
from tapewatch.sources.exchange.coverage import Coverage
from tapewatch.sources.exchange.sequence import Gap
from unit.sources.exchange.crypto_harness import Collector, CtrlC, call, run, settings_for, until
from unit.sources.exchange.fake_bybit import EXEC_BASE, FakeBybit
from unit.sources.exchange.fake_kraken import FakeKraken

NOW = int(time.time() * 1000) - 120_000  # two minutes ago


def settings(venue: str, server: FakeBybit | FakeKraken, **overrides: object) -> ExchangeSettings:
    """Settings reaching only the fake venue, with short back-offs."""
    return settings_for(server, exchange=venue, **overrides)  # type: ignore[arg-type]


async def reconnected(server: FakeBybit | FakeKraken, source: ExchangeLiveSource, topics: set[str]) -> None:
    """Drop every connection from the server side and wait until the source has subscribed again."""
    await call(server.drop_connections)
    await until(lambda: source.stats["reconnects"] >= 1, what="reconnect")
    await until(lambda: server.subscribed() == topics, what="resubscription")


def trades(first_ms: int, count: int, step_ms: int = 100) -> list[tuple[int, float, float, bool]]:
    """`count` trades `step_ms` apart, alternating taker sides."""
    return [(first_ms + i * step_ms, 100.0 + i * 0.5, 1.0 + i % 3, i % 2 == 0) for i in range(count)]


def exec_id(trade: int) -> int:
    """The `execId` the Bybit fake gives its trade number `trade`."""
    return EXEC_BASE + trade * 7


def micros(ms: int) -> int:
    return ms * 1000


def stored_once(lake: Lake, venue: str, live: pl.DataFrame, settings_: ExchangeSettings) -> pl.DataFrame:
    """Write the live trades to a lake, then back-fill the same minutes over REST into it; the lake's trades."""
    lake.write("trades", live)
    start = datetime.fromtimestamp((NOW - 1000) / 1000, UTC)
    end = datetime.fromtimestamp((NOW + 60_000) / 1000, UTC)
    run(backfill_trades(settings_, ["BTC/USD" if venue == "kraken" else "BTC/USDT"], start, end, lake))
    return lake.read("trades", venue=venue)


def test_bybit_live_trades_are_the_rest_records_and_a_gap_beyond_recent_trades_is_reported(tmp_path):
    async def scenario(server: FakeBybit) -> tuple[ExchangeLiveSource, Collector]:
        source = ExchangeLiveSource(settings("bybit", server), ["BTC/USDT"])
        async with Collector(source) as live:
            await until(lambda: server.subscribed() == {"publicTrade.BTCUSDT"}, what="subscription")
            await call(server.publish, "BTC/USDT", range(1, 6))
            await until(lambda: len(live.ids("BTC/USDT")) == 5, what="5 live trades")
            await reconnected(server, source, {"publicTrade.BTCUSDT"})
            # 100 trades while away: more than the 60 Bybit's recent-trades endpoint gives
            await call(server.add, "BTC/USDT", trades(NOW + 1000, 100, 10))
            await call(server.add, "BTC/USDT", trades(NOW + 3000, 5))
            await call(server.publish, "BTC/USDT", range(106, 111))
            await until(lambda: source.stats["gaps_failed"] == 1, what="the refill given up")
            await until(lambda: exec_id(110) in live.ids("BTC/USDT"), what="the held trades")
        return source, live

    with FakeBybit(["BTC/USDT"]) as server:
        server.add("BTC/USDT", trades(NOW, 5))
        source, live = run(scenario(server))
        lake = stored_once(Lake(tmp_path), "bybit", live.trades(), settings("bybit", server))

    ids = live.ids("BTC/USDT")
    # live 1…5, what the newest 60 trades held of the gap (51…105), then the trades held back meanwhile
    assert ids == [exec_id(n) for n in [*range(1, 6), *range(51, 111)]]
    assert source.stats["gaps_backfilled"] == 0 and source.stats["gap_trades"] == 55
    # the gap stands from the last trade before the drop to the first after it: Bybit's ids say nothing
    assert source.unrepaired == [("BTC/USDT", Gap(micros(NOW + 400), micros(NOW + 3000)))]
    assert [row["reason"] for row in live.rejected()][-1].startswith("gap not refilled after 3 attempts")
    # trades 106…110 came over the WebSocket and again over REST: one record each in the lake
    assert lake.height == 65 and lake["trade_id"].n_unique() == 65


def test_kraken_live_trades_are_the_rest_records_and_a_gap_is_refilled_from_the_cursor(tmp_path):
    async def scenario(server: FakeKraken) -> tuple[ExchangeLiveSource, Collector]:
        source = ExchangeLiveSource(settings("kraken", server), ["BTC/USD"])
        async with Collector(source) as live:
            await until(lambda: server.subscribed() == {"trade:BTC/USD"}, what="subscription")
            await call(server.publish, "BTC/USD", range(1, 6))
            await until(lambda: live.ids("BTC/USD") == [1, 2, 3, 4, 5], what="5 live trades")
            await reconnected(server, source, {"trade:BTC/USD"})
            await call(server.add, "BTC/USD", trades(NOW + 1000, 20))  # while away
            await call(server.add, "BTC/USD", trades(NOW + 4000, 5))
            await call(server.publish, "BTC/USD", range(26, 31))
            await until(lambda: 30 in live.ids("BTC/USD"), what="the held trades")
        return source, live

    with FakeKraken(["BTC/USD"]) as server:
        server.add("BTC/USD", trades(NOW, 5))
        source, live = run(scenario(server))
        lake = stored_once(Lake(tmp_path), "kraken", live.trades(), settings("kraken", server))
        cursor = server.asked("/0/public/Trades")

    assert live.ids("BTC/USD") == list(range(1, 31))  # the refill's trades in their place, each once
    assert source.stats["gaps_backfilled"] == 1 and source.stats["gaps_failed"] == 0
    assert source.stats["gap_trades"] == 20 and source.unrepaired == []
    assert cursor and "since" in cursor[0]  # the refill read Kraken's ranged history
    # every trade came live or by refill, and the backfill read all 30 again: one record each
    assert lake.height == 30 and sorted(int(i) for i in lake["trade_id"]) == list(range(1, 31))


def _book_levels(live: Collector) -> set[tuple[str, float, float]]:
    frames = [batch.book for batch in live.batches if batch.book.height]
    if not frames:
        return set()
    book = pl.concat(frames)
    return set(zip(book["side"], book["price"], book["amount"], strict=True))


def test_bybit_books_are_asked_at_a_depth_bybit_accepts_and_follow_its_deltas():
    async def scenario(server: FakeBybit) -> Collector:
        source = ExchangeLiveSource(settings("bybit", server, book_levels=100), ["BTC/USDT"], book=True)
        async with Collector(source) as live:
            await until(lambda: "orderbook.200.BTCUSDT" in server.subscribed(), what="book subscription")
            await until(lambda: ("bid", 99.0, 1.0) in _book_levels(live), what="the snapshot")
            await call(server.update_book, "BTC/USDT", [("99.00", "0"), ("99.50", "2")], [])
            await until(lambda: ("bid", 99.5, 2.0) in _book_levels(live), what="the delta")
            assert source.stats["watches_failed"] == 0
        return live

    with FakeBybit(["BTC/USDT"]) as server:
        server.books["BTCUSDT"].bids.update({"99.00": "1", "98.00": "3"})
        server.books["BTCUSDT"].asks.update({"101.00": "2"})
        live = run(scenario(server))
    levels = _book_levels(live)
    assert {("bid", 98.0, 3.0), ("ask", 101.0, 2.0), ("bid", 99.0, 0.0)} <= levels  # 99 removed by the delta


def test_kraken_books_are_asked_at_a_depth_kraken_accepts_and_follow_its_updates():
    async def scenario(server: FakeKraken) -> Collector:
        source = ExchangeLiveSource(settings("kraken", server, book_levels=50), ["BTC/USD"], book=True)
        async with Collector(source) as live:
            await until(lambda: "book:BTC/USD" in server.subscribed(), what="book subscription")
            await until(lambda: ("ask", 101.0, 2.0) in _book_levels(live), what="the snapshot")
            await call(server.update_book, "BTC/USD", [(99.0, 0.0)], [(100.5, 4.0)])
            await until(lambda: ("ask", 100.5, 4.0) in _book_levels(live), what="the update")
            assert source.stats["watches_failed"] == 0
        return live

    with FakeKraken(["BTC/USD"]) as server:
        server.books["BTC/USD"].bids.update({99.0: 1.0, 98.0: 3.0})
        server.books["BTC/USD"].asks.update({101.0: 2.0})
        live = run(scenario(server))
        connections = server.asked("/v2")
    assert ("bid", 99.0, 0.0) in _book_levels(live)
    assert len(connections) == 1  # Kraken multiplexes: the book shares the trades' v2 connection


# ---- `tapewatch stream --exchange bybit|kraken` ------------------------------------------------


def stream_args(tmp_path: Path, venue: str, symbol: str, server: FakeBybit | FakeKraken) -> list[str]:
    """`tapewatch stream` on the fake venue, warming up on the last hour into a lake of its own."""
    config = tmp_path / "tapewatch.toml"
    config.write_text(
        f'[exchange]\nrest_url = "{server.rest_url}"\nws_url = "{server.ws_url}"\nrate_limit_ms = 1\n'
        "history_settle_s = 0.0\nreconnect_initial_s = 0.05\nreconnect_max_s = 0.4\n"
    )
    args = ["stream", "--exchange", venue, "--symbols", symbol, "--config", str(config), "--warmup", "1h"]
    return args + ["--lake", str(tmp_path / "lake"), "--no-store", "-o", str(tmp_path / "alerts.jsonl")]


def settled(condition: Callable[[], bool], grace_s: float = 0.5) -> Callable[[], bool]:
    """True `grace_s` after `condition` first held: time for the source to count what it just did."""
    since: list[float] = []

    def check() -> bool:
        if not since and condition():
            since.append(time.monotonic())
        return bool(since) and time.monotonic() > since[0] + grace_s

    return check


def drop_and_miss(server: FakeBybit | FakeKraken, symbol: str, missed: int) -> Callable[[], None]:
    """Publish 5 trades, drop the connection, store `missed` trades while away, then publish 5 more."""

    def act() -> None:
        now = int(time.time() * 1000)
        server.publish(symbol, server.add(symbol, trades(now, 5, 10)))
        server.drop_connections()
        time.sleep(0.2)
        server.wait_until(lambda: bool(server.subscribed()), timeout=10)
        server.add(symbol, trades(now + 100, missed, 1))
        server.publish(symbol, server.add(symbol, trades(now + 300, 5, 10)))

    return act


def test_stream_on_bybit_warms_up_on_what_it_can_and_reports_the_gap_it_cannot_repair(tmp_path):
    now = int(time.time() * 1000)
    with FakeBybit(["BTC/USDT"]) as server:
        server.add("BTC/USDT", trades(now - 20 * 60_000, 100, 10_000))  # REST history only
        requests = server.asked  # the refill's three attempts read the recent trades after the drop
        done = settled(lambda: len(requests("/v5/market/recent-trade")) >= 5)  # warm-up, 1st gap, 3 tries
        act = drop_and_miss(server, "BTC/USDT", missed=100)
        result = CtrlC(server, act, done).run(
            lambda: CliRunner().invoke(app, stream_args(tmp_path, "bybit", "BTC/USDT", server))
        )

    assert result.exit_code == 0, result.output
    assert "warmed up on 60 trades of history" in result.output  # Bybit's newest 60, all it gives
    assert "warm-up: BTC/USDT: history not available from" in result.output
    line = re.search(r"live: (\d+) trade\(s\); .* (\d+) not repaired, (\d+) reconnect\(s\)", result.output)
    assert line is not None, result.output
    assert int(line.group(2)) == 1 and int(line.group(3)) >= 1, result.output
    assert re.search(r"BTC/USDT: trades missing \(not repaired\) between \S+ and \S+\n", result.output)
    ledger = Coverage(Lake(tmp_path / "lake").store, "trades", "bybit", "BTC/USDT", "trades")
    assert ledger.not_available(now - 2 * 3_600_000, now)  # recorded as not available, not as fetched


def test_stream_on_kraken_refills_the_gap_a_dropped_connection_left(tmp_path):
    now = int(time.time() * 1000)
    with FakeKraken(["BTC/USD"]) as server:
        server.add("BTC/USD", trades(now - 20 * 60_000, 100, 10_000))
        before = len(server.asked("/0/public/Trades"))
        act = drop_and_miss(server, "BTC/USD", missed=20)
        done = settled(lambda: len(server.asked("/0/public/Trades")) >= before + 3)  # warm-up, 2 refills
        result = CtrlC(server, act, done).run(
            lambda: CliRunner().invoke(app, stream_args(tmp_path, "kraken", "BTC/USD", server))
        )

    assert result.exit_code == 0, result.output
    assert "warmed up on 100 trades of history" in result.output
    assert "not available" not in result.output
    line = re.search(
        r"live: (\d+) trade\(s\); .* (\d+) gap\(s\) refilled \((\d+) trades\), 0 not repaired", result.output
    )
    assert line is not None, result.output
    assert int(line.group(1)) == 30 and int(line.group(3)) == 20  # 10 live, the 20 missed refilled
    ledger = Coverage(Lake(tmp_path / "lake").store, "trades", "kraken", "BTC/USD", "trades")
    assert ledger.not_available(now - 2 * 3_600_000, now) == []


# ---- `tapewatch ingest crypto --live --exchange bybit|kraken` -----------------------------------


def ingest_live_args(tmp_path: Path, venue: str, symbol: str, server: FakeBybit | FakeKraken) -> list[str]:
    """`tapewatch ingest crypto --live` on the fake venue, writing live trades into a lake of its own."""
    config = tmp_path / "tapewatch.toml"
    config.write_text(
        f'[exchange]\nrest_url = "{server.rest_url}"\nws_url = "{server.ws_url}"\nrate_limit_ms = 1\n'
        "history_settle_s = 0.0\nreconnect_initial_s = 0.05\nreconnect_max_s = 0.4\nlive_flush_s = 0.2\n"
    )
    args = ["ingest", "crypto", "--exchange", venue, "--symbols", symbol, "--live", "--live-for", "30s"]
    return args + [
        "--config",
        str(config),
        "--lake",
        str(tmp_path / "lake"),
        "--db",
        str(tmp_path / "store.db"),
    ]


def test_ingest_live_on_kraken_keeps_live_and_refilled_trades_once_in_the_lake(tmp_path):
    now = int(time.time() * 1000)
    lake = Lake(tmp_path / "lake")
    with FakeKraken(["BTC/USD"]) as server:
        act = drop_and_miss(server, "BTC/USD", missed=20)
        done = settled(lambda: lake.read("trades").height >= 30, grace_s=0.6)  # 10 live, 20 refilled
        result = CtrlC(server, act, done).run(
            lambda: CliRunner().invoke(app, ingest_live_args(tmp_path, "kraken", "BTC/USD", server))
        )

    assert result.exit_code == 0, result.output
    assert re.search(r"gap\(s\) refilled \(20 trades\), 0 not repaired", result.output), result.output
    stored = lake.read("trades", venue="kraken", symbol="BTC/USD")
    assert stored.height == 30 and stored["trade_id"].n_unique() == 30  # each trade once
    assert stored["ts"].min() >= datetime.fromtimestamp(now / 1000, UTC).replace(microsecond=0)


def test_ingest_live_on_bybit_reports_the_gap_its_recent_trades_cannot_cover(tmp_path):
    lake = Lake(tmp_path / "lake")
    with FakeBybit(["BTC/USDT"]) as server:
        act = drop_and_miss(server, "BTC/USDT", missed=100)
        done = settled(lambda: len(server.asked("/v5/market/recent-trade")) >= 3)  # the refill's 3 tries
        result = CtrlC(server, act, done).run(
            lambda: CliRunner().invoke(app, ingest_live_args(tmp_path, "bybit", "BTC/USDT", server))
        )

    assert result.exit_code == 0, result.output
    assert re.search(r"1 not repaired", result.output), result.output
    assert re.search(r"BTC/USDT: trades missing \(not repaired\) between \S+ and \S+\n", result.output)
    stored = lake.read("trades", venue="bybit", symbol="BTC/USDT")
    # the 10 live trades and what the newest 60 held of the 100 missed, each once
    assert stored.height == 65 and stored["trade_id"].n_unique() == 65, stored.height
