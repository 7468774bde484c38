"""`tapewatch ingest crypto` end to end against the fake Binance: options, summary, lake, errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import typer
from typer.testing import CliRunner

from tapewatch.cli.app import user_errors
from tapewatch.cli.exchange import ingest_crypto, parse_moment
from tapewatch.errors import InputError
from tapewatch.io.lake import Lake
from tapewatch.store.alert_store import open_engine
from tapewatch.store.instruments import InstrumentStore
from unit.sources.exchange.crypto_harness import T0, CtrlC, steady
from unit.sources.exchange.fake_binance import FakeBinance

app = typer.Typer()
app.command()(user_errors(ingest_crypto))
runner = CliRunner()


@pytest.fixture
def server():
    with FakeBinance(["BTC/USDT", "ETH/USDT", "ETH/BTC"]) as fake:
        fake.add_trades("BTC/USDT", steady(T0, 900, 8000))  # 2 hours
        fake.add_trades("ETH/USDT", steady(T0, 100, 60_000))
        yield fake


@pytest.fixture
def config(tmp_path, server):
    path = tmp_path / "tapewatch.toml"
    path.write_text(
        "[exchange]\n"
        f'rest_url = "{server.rest_url}"\n'
        f'ws_url = "{server.ws_url}"\n'
        "rate_limit_ms = 1\n"
        "reconnect_initial_s = 0.05\n"
        "live_flush_s = 0.2\n"
    )
    return path


def _ingest(tmp_path, config, *args: str):
    paths = ["--lake", str(tmp_path / "lake"), "--db", str(tmp_path / "store.db"), "--config", str(config)]
    return runner.invoke(app, [*args, *paths])


def test_sync_backfill_trades_and_candles_then_a_rerun_that_has_nothing_to_do(tmp_path, config):
    window = ["--since", "2024-01-01", "--until", "2024-01-01T02:00:00Z"]
    result = _ingest(tmp_path, config, "--symbols", "BTC/USDT,ETH/USDT", *window, "--ohlcv", "1h")
    assert result.exit_code == 0, result.output
    assert "binance: 3 spot market(s) listed, 3 added, 0 delisted" in result.output
    assert "trades: 1,000 new row(s) for 2 symbol(s)" in result.output
    assert "BTC/USDT: 900 new of 900 fetched" in result.output
    assert "bars: 4 new row(s)" in result.output
    lake = Lake(tmp_path / "lake")
    assert lake.read("trades", symbol="BTC/USDT").height == 900
    assert lake.read("bars", symbol="ETH/USDT")["ts"].to_list() == [
        datetime(2024, 1, 1, tzinfo=UTC),
        datetime(2024, 1, 1, 1, tzinfo=UTC),
    ]
    engine = open_engine(tmp_path / "store.db")
    assert [row.symbol for row in InstrumentStore(engine).list(venue="binance")] == [
        "BTC/USDT",
        "ETH/BTC",
        "ETH/USDT",
    ]
    engine.dispose()

    again = _ingest(tmp_path, config, "--symbols", "BTC/USDT", *window)
    assert again.exit_code == 0, again.output
    assert "0 added" in again.output
    assert "BTC/USDT: 0 new of 0 fetched (already up to date)" in again.output

    later = _ingest(
        tmp_path, config, "--symbols", "BTC/USDT", "--since", "2024-01-01", "--until", "2024-01-01T03:00Z"
    )
    assert "resumed from 2024-01-01T02:00:00Z" in later.output


def _ingest_live(tmp_path, config, *args: str):
    return lambda: _ingest(tmp_path, config, *args, "--live", "--live-for", "20s")


def test_live_trades_are_written_to_the_lake_until_ctrl_c(tmp_path, config, server):
    lake = Lake(tmp_path / "lake")
    ctrl_c = CtrlC(
        server,
        lambda: server.add_trades("ETH/BTC", steady(T0, 3, 5)),
        lambda: lake.read("trades").height == 3,  # the regular flush wrote them
    )
    result = ctrl_c.run(_ingest_live(tmp_path, config, "--symbols", "ETH/BTC"))
    assert result.exit_code == 0, result.output
    assert "stopped" in result.output
    assert "live: 3 trade(s), 3 new in the lake" in result.output
    assert lake.read("trades", venue="binance", symbol="ETH/BTC")["trade_id"].to_list() == ["1", "2", "3"]


def test_live_book_updates_are_written_to_the_lake_with_book(tmp_path, config, server):
    lake = Lake(tmp_path / "lake")
    ctrl_c = CtrlC(
        server,
        lambda: server.update_book("ETH/BTC", [("0.05", "2"), ("0.049", "1")], [("0.051", "3")]),
        lambda: lake.read("book").height >= 3,
    )
    result = ctrl_c.run(_ingest_live(tmp_path, config, "--symbols", "ETH/BTC", "--book"))
    assert result.exit_code == 0, result.output
    assert "book: 3 level update(s) new in the lake" in result.output
    book = lake.read("book", venue="binance", symbol="ETH/BTC")
    assert sorted(zip(book["side"], book["price"], book["amount"], strict=True)) == [
        ("ask", 0.051, 3.0),
        ("bid", 0.049, 1.0),
        ("bid", 0.05, 2.0),
    ]


def test_live_rejections_go_to_the_dead_letter_file(tmp_path, config, server):
    dead = tmp_path / "lake" / "_rejected" / "binance.jsonl"
    result = CtrlC(server, lambda: server.send_raw("{not json"), dead.is_file).run(
        _ingest_live(tmp_path, config, "--symbols", "ETH/BTC")
    )
    assert result.exit_code == 0, result.output
    assert "1 message(s) set aside" in result.output
    assert '"record":"{not json"' in dead.read_text()


def test_live_for_ends_the_run_on_its_own(tmp_path, config):
    result = _ingest(tmp_path, config, "--symbols", "ETH/BTC", "--live", "--live-for", "0.3s")
    assert result.exit_code == 0, result.output
    assert "live: 0 trade(s)" in result.output and "stopped" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "2d"], "--since/--live: no markets chosen"),
        (
            ["--symbols", "BTC/USDT", "--since", "last tuesday"],
            "--since 'last tuesday': expected an ISO date",
        ),
        (["--symbols", "BTC/USDT", "--until", "2024-01-02"], "--until 2024-01-02: needs --since"),
        (["--symbols", "BTC/USDT", "--book"], "--book: only with --live"),
        (
            ["--symbols", "BTC/USDT", "--since", "2024-01-02", "--until", "2024-01-01"],
            "expected a time before",
        ),
        (["--symbols", "BTC/USDT", "--since", "2024-01-01", "--ohlcv", "7x"], "--ohlcv 7x: not a timeframe"),
        (["--symbols", "NOPE/USDT", "--since", "2024-01-01"], "--symbols NOPE/USDT: not a spot market"),
        (["--exchange", "nosuchex", "--symbols", "BTC/USDT"], "--exchange 'nosuchex': not a ccxt exchange"),
        (["--symbols", "BTC/USDT", "--live-for", "1m"], "--live-for: only with --live"),
        (
            ["--exchange", "bitbank", "--all", "--live"],
            "--exchange 'bitbank': not a ccxt.pro exchange (WebSocket)",
        ),
    ],
)
def test_bad_options_are_one_line_errors_with_exit_code_2(tmp_path, config, args, message):
    result = _ingest(tmp_path, config, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_times_are_iso_dates_or_durations_back_from_now():
    now = datetime(2024, 5, 10, 12, tzinfo=UTC)
    assert parse_moment("2024-01-31", option="--since", now=now) == datetime(2024, 1, 31, tzinfo=UTC)
    assert parse_moment("2024-01-31T12:30Z", option="--since", now=now) == datetime(
        2024, 1, 31, 12, 30, tzinfo=UTC
    )
    assert parse_moment("2d", option="--since", now=now) == now - timedelta(days=2)
    assert parse_moment("90m", option="--since", now=now) == now - timedelta(minutes=90)
    with pytest.raises(InputError, match="--since '2024': expected"):  # a bare number is not a duration here
        parse_moment("2024", option="--since", now=now)
