from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from conftest import START, quiet_trades

from tapewatch.errors import InputError
from tapewatch.io.derive import trades_to_bars
from tapewatch.io.lake import Lake, list_partitions, read_partition


def test_trades_partition_by_venue_symbol_day_and_read_back(tmp_path):
    lake = Lake(tmp_path)
    trades = pl.concat([quiet_trades("AAA/BTC", hours=30), quiet_trades("BBB/BTC", hours=5, seed=3)])
    assert lake.write("trades", trades) == trades.height
    days = sorted(p.name for p in (tmp_path / "trades" / "venue=testex" / "symbol=AAA%2FBTC").iterdir())
    assert days == ["date=2024-03-01", "date=2024-03-02"]
    back = lake.read("trades")
    assert back.height == trades.height
    assert back.sort("symbol", "ts").equals(trades.sort("symbol", "ts"))
    assert lake.symbols("trades", "testex") == ["AAA/BTC", "BBB/BTC"]


def test_rewriting_overlapping_data_adds_only_new_rows(tmp_path):
    lake = Lake(tmp_path)
    trades = quiet_trades(hours=10)
    first, second = trades.head(300), trades.slice(200)
    assert lake.write("trades", first) == 300
    assert lake.write("trades", second) == trades.height - 300
    assert lake.write("trades", trades) == 0
    assert lake.read("trades").height == trades.height


def test_high_water_and_time_filters(tmp_path):
    lake = Lake(tmp_path)
    trades = quiet_trades(hours=40)
    lake.write("trades", trades)
    assert lake.high_water("trades", "testex", "AAA/BTC") == trades["ts"].max()
    assert lake.high_water("trades", "testex", "ZZZ/BTC") is None
    start, end = START + timedelta(hours=20), START + timedelta(hours=30)
    window = lake.read("trades", symbol="AAA/BTC", start=start, end=end)
    assert window["ts"].min() >= start and window["ts"].max() < end
    assert window.height == trades.filter((pl.col("ts") >= start) & (pl.col("ts") < end)).height


def test_bars_and_unknown_kind(tmp_path):
    lake = Lake(tmp_path)
    bars = trades_to_bars(quiet_trades(hours=6), "1h").drop("last_trade_ts")
    assert lake.write("bars", bars) == bars.height
    assert lake.read("bars", venue="testex").height == bars.height
    with pytest.raises(InputError, match="quotes"):
        lake.write("quotes", bars)
    assert datetime(2024, 3, 1, tzinfo=UTC) == lake.read("bars")["ts"].min()


def test_high_water_of_one_bar_interval(tmp_path):
    lake = Lake(tmp_path)
    trades = quiet_trades(hours=30)
    daily = trades_to_bars(trades, "1d").drop("last_trade_ts")
    hourly = trades_to_bars(trades.filter(pl.col("ts") < START + timedelta(hours=5)), "1h").drop(
        "last_trade_ts"
    )
    lake.write("bars", pl.concat([daily, hourly]))
    assert lake.high_water("bars", "testex", "AAA/BTC", interval="1h") == START + timedelta(hours=4)
    assert lake.high_water("bars", "testex", "AAA/BTC", interval="1d") == START + timedelta(days=1)
    assert lake.high_water("bars", "testex", "AAA/BTC", interval="5m") is None


def test_book_updates_keep_their_order_within_a_timestamp_across_writes(tmp_path):
    lake = Lake(tmp_path)
    at = START + timedelta(hours=1)

    def updates(*rows):
        return pl.DataFrame(
            [
                {"ts": at, "venue": "binance", "symbol": "X/USDT", "side": s, "price": p, "amount": a}
                for s, p, a in rows
            ]
        )

    assert lake.write("book", updates(("bid", 1.0, 5.0), ("bid", 1.0, 0.0))) == 2
    assert lake.write("book", updates(("ask", 2.0, 1.0))) == 1
    assert lake.write("book", updates(("ask", 2.0, 1.0))) == 0  # the same update again
    book = lake.read("book", symbol="X/USDT")
    assert list(zip(book["side"], book["amount"], strict=True)) == [("bid", 5.0), ("bid", 0.0), ("ask", 1.0)]


def test_partitions_of_a_folder_are_listed_and_read_by_path_alone(tmp_path):
    trades = pl.concat([quiet_trades("AAA/BTC", hours=30), quiet_trades("BBB/BTC", hours=5, seed=3)])
    lake = Lake(tmp_path)
    lake.write("trades", trades)
    parts = list_partitions(str(tmp_path), "trades", symbol="AAA/BTC")
    assert [p.day.isoformat() for p in parts] == ["2024-03-01", "2024-03-02"]
    assert parts[1].url == lake.partition("trades", "testex", "AAA/BTC", parts[1].day)
    assert parts[1].url == str(tmp_path / "trades/venue=testex/symbol=AAA%2FBTC/date=2024-03-02/data.parquet")
    every = list_partitions(f"file://{tmp_path}", "trades")
    assert (
        pl.concat([read_partition(p.url) for p in every])
        .sort("symbol", "ts")
        .equals(trades.sort("symbol", "ts"))
    )
    with pytest.raises(InputError, match="not found"):
        read_partition(str(tmp_path / "trades" / "nothing.parquet"))
    with pytest.raises(InputError, match="quotes"):
        lake.symbols("quotes", "testex")  # an unknown kind never reaches the file system
