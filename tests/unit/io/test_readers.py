"""Input readers: every format, expansion of inputs, dead letters, duplicates and one-line errors.

All fixtures are written to tmp_path by the helpers below, in the exact
layouts the real sources use (ccxt `fetch_trades` CSV, data.binance.vision
dumps, Yahoo-style OHLCV).
"""

from __future__ import annotations

import gzip
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from tapewatch.errors import InputError
from tapewatch.io import readers
from tapewatch.io.readers import FORMATS, ReadResult, expand_inputs, read_inputs, write_dead_letters
from tapewatch.io.symbols import canonical_symbol_of
from tapewatch.io.timeparse import infer_interval, parse_times
from tapewatch.records import BAR_SCHEMA, TRADE_SCHEMA

CCXT_HEADER = "symbol,timestamp,datetime,side,price,amount,btc_volume"
T0 = 1605549866174  # 2020-11-16T18:04:26.174Z in ms


def utc(*parts: int) -> datetime:
    """A UTC datetime, as the readers return them."""
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def ccxt_rows(*rows: tuple[object, ...], symbol: str = "APPC/BTC") -> str:
    """A ccxt trade CSV; each row is (timestamp, side, price, amount)."""
    lines = [CCXT_HEADER]
    for ts, side, price, amount in rows:
        lines.append(f"{symbol},{ts},x,{side},{price},{amount},0.1")
    return "\n".join(lines) + "\n"


def write(path: Path, text: str) -> Path:
    """A plain, gzip or zip file (by the name's extension) holding `text`; zips hold one CSV, like Binance's."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode()
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(data))
    elif path.suffix == ".zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(path.stem + ".csv", data)
    else:
        path.write_bytes(data)
    return path


def reasons(result: ReadResult) -> dict[str, int]:
    """How many rows were rejected for each reason."""
    counts = result.rejected.group_by("reason").len()
    return dict(zip(counts["reason"], counts["len"], strict=True))


# --- formats -----------------------------------------------------------------------------------


def test_ccxt_csv_becomes_trade_records(tmp_path: Path) -> None:
    path = write(
        tmp_path / "APPC_2020.csv", ccxt_rows((T0, "buy", "1.36e-06", "335.0"), (T0 + 5, "sell", 2, 10))
    )
    result = read_inputs([path])
    assert result.trades.schema == pl.Schema(TRADE_SCHEMA)
    assert result.trades["ts"].to_list() == [
        utc(2020, 11, 16, 18, 4, 26, 174000),
        utc(2020, 11, 16, 18, 4, 26, 179000),
    ]
    assert result.trades["price"].to_list() == [1.36e-06, 2.0]  # integers in the file still read as floats
    assert result.trades["side"].to_list() == ["buy", "sell"]
    assert result.trades["venue"].unique().to_list() == ["unknown"]
    assert result.formats == {str(path): "ccxt-trades"}
    assert result.rows_read == 2 and result.rejected.height == 0


def test_ccxt_gzip_reads_like_plain_csv(tmp_path: Path) -> None:
    text = ccxt_rows((T0, "buy", 1.5, 2), (T0 + 1, "sell", 1.6, 3))
    plain = read_inputs([write(tmp_path / "a.csv", text)]).trades
    gzipped = read_inputs([write(tmp_path / "b.csv.gz", text)]).trades
    assert gzipped.equals(plain) and gzipped.height == 2


def test_venue_option_beats_venue_column_beats_default(tmp_path: Path) -> None:
    with_column = write(
        tmp_path / "v.csv", f"symbol,timestamp,side,price,amount,exchange\nX/Y,{T0},buy,1,1,kraken\n"
    )
    assert read_inputs([with_column]).trades["venue"].to_list() == ["kraken"]
    assert read_inputs([with_column], venue="okx").trades["venue"].to_list() == ["okx"]


def test_ccxt_side_spellings_are_normalised(tmp_path: Path) -> None:
    path = write(
        tmp_path / "s.csv", ccxt_rows((T0, "BUY", 1, 1), (T0 + 1, " Sell", 1, 2), (T0 + 2, "", 1, 3))
    )
    assert read_inputs([path]).trades["side"].to_list() == ["buy", "sell", None]


BINANCE_TRADES = "1,42000.5,0.01,420.005,{t},True,True\n2,42001.0,0.02,840.02,{u},False,True\n"


@pytest.mark.parametrize("name", ["BTCUSDT-trades-2024-01-01.zip", "BTCUSDT-trades-2024-01-01.csv"])
def test_binance_trades_without_header(tmp_path: Path, name: str) -> None:
    path = write(tmp_path / name, BINANCE_TRADES.format(t=1704067200000, u=1704067200001))
    result = read_inputs([path])
    trades = result.trades
    assert trades["symbol"].to_list() == ["BTC/USDT", "BTC/USDT"]
    assert trades["venue"].to_list() == ["binance", "binance"]
    assert trades["side"].to_list() == ["sell", "buy"]  # buyer was maker → the taker sold
    assert trades["trade_id"].to_list() == ["1", "2"]
    assert trades["amount"].to_list() == [0.01, 0.02]
    assert trades["ts"][0] == utc(2024, 1, 1)
    assert result.formats[str(path)] == "binance-trades"


def test_binance_futures_trades_with_header_and_lowercase_flags(tmp_path: Path) -> None:
    text = "id,price,qty,quote_qty,time,is_buyer_maker\n7,3.5,2,7,1704067200000,true\n8,3.6,1,3.6,1704067200500,false\n"
    path = write(tmp_path / "ETHBTC-trades-2024-01.csv", text)
    trades = read_inputs([path], venue="binanceusdm").trades
    assert trades["symbol"].to_list() == ["ETH/BTC", "ETH/BTC"]
    assert trades["side"].to_list() == ["sell", "buy"]
    assert trades["venue"].unique().to_list() == ["binanceusdm"]


AGG_HEADER = (
    "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker,is_best_match"
)


@pytest.mark.parametrize("header", [True, False])
def test_binance_aggtrades_microseconds_and_milliseconds(tmp_path: Path, header: bool) -> None:
    rows = [
        "5,1.0,3,10,12,1735689600123456,false,true",  # 2025 spot data: µs
        "6,1.1,4,13,13,1735689600124,true,true",  # ms in the same input
    ]
    text = "\n".join(([AGG_HEADER] if header else []) + rows) + "\n"
    path = write(tmp_path / "SOLFDUSD-aggTrades-2025-01-01.zip", text)
    trades = read_inputs([path]).trades
    assert trades["ts"].to_list() == [utc(2025, 1, 1, 0, 0, 0, 123456), utc(2025, 1, 1, 0, 0, 0, 124000)]
    assert trades["symbol"].unique().to_list() == ["SOL/FDUSD"]
    assert trades["side"].to_list() == ["buy", "sell"]
    assert trades["trade_id"].to_list() == ["5", "6"]


KLINE_ROWS = [
    "1704067200000,42000,42100,41900,42050,12.5,1704067259999,525000,100,6,252000,0",
    "1704067260000,42050,42200,42000,42150,10.0,1704067319999,421000,80,5,210000,0",
]
KLINE_HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
    "taker_buy_volume,taker_buy_quote_volume,ignore"
)


@pytest.mark.parametrize("header", [True, False])
def test_binance_klines_take_interval_from_file_name(tmp_path: Path, header: bool) -> None:
    text = "\n".join(([KLINE_HEADER] if header else []) + KLINE_ROWS) + "\n"
    path = write(tmp_path / "BNBBTC-5m-2024-01-01.zip", text)
    result = read_inputs([path])
    bars = result.bars
    assert bars.schema == pl.Schema(BAR_SCHEMA)
    assert bars["interval"].unique().to_list() == ["5m"]  # the name says 5m, the rows are a minute apart
    assert bars["symbol"].unique().to_list() == ["BNB/BTC"]
    assert bars["quote_volume"].to_list() == [525000.0, 421000.0]
    assert bars["trades"].to_list() == [100, 80]
    assert bars["ts"][0] == utc(2024, 1, 1)
    assert result.trades.height == 0 and result.formats[str(path)] == "binance-klines"


def test_yahoo_style_ohlcv_with_us_dates(tmp_path: Path) -> None:
    text = (
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        "1/4/1999,1229.2,1248.8,1219.1,1228.1,1228.1,877000000\n"
        "1/5/1999,1228.1,1246.1,1228.1,1244.8,1244.8,775000000\n"
        "1/6/1999,1244.8,1272.5,1244.8,1272.3,1272.3,986900000\n"
        "1/13/1999,1272.3,1280.0,1270.0,1275.0,1275.0,900000000\n"
    )
    bars = read_inputs([write(tmp_path / "sp500.csv.gz", text)]).bars
    assert bars["ts"][0] == utc(1999, 1, 4)  # month first: 1/4 is January 4th
    assert bars["symbol"].unique().to_list() == ["SP500"]  # symbols are upper-case (io.symbols)
    assert bars["interval"].unique().to_list() == ["1d"]
    assert bars["close"].to_list() == [1228.1, 1244.8, 1272.3, 1275.0]
    assert bars["volume"][0] == 877000000.0


def test_crypto_ohlcv_with_volume_btc_and_offsets(tmp_path: Path) -> None:
    text = (
        "date,open,high,low,close,Volume BTC\n"
        "2021-01-01 00:00:00+00:00,28999.63,29099.0,28774.64,29056.94,397.96\n"
        "2021-01-01 01:00:00+00:00,29070.66,29543.93,29010.36,29479.12,648.59\n"
        "2021-01-01 02:00:00+00:00,29479.12,29500.0,29100.0,29249.33,290.24\n"
    )
    bars = read_inputs([write(tmp_path / "btc_usdt_hourly_2021.csv", text)], venue="binance").bars
    assert bars["interval"].unique().to_list() == ["1h"]
    assert bars["volume"].to_list() == [397.96, 648.59, 290.24]
    assert bars["ts"][1] == utc(2021, 1, 1, 1)
    assert bars["venue"].unique().to_list() == ["binance"]


def test_ohlcv_with_base_and_quote_volume_columns(tmp_path: Path) -> None:
    text = (
        "unix,date,symbol,open,high,low,close,Volume BTC,Volume USDT,tradecount\n"
        "1704067200000,2024-01-01 00:00:00,BTC/USDT,42000,42100,41900,42050,12.5,525000,100\n"
        "1704070800000,2024-01-01 01:00:00,BTC/USDT,42050,42200,42000,42150,10.0,421000,80\n"
    )
    bars = read_inputs([write(tmp_path / "Binance_BTCUSDT_1h.csv", text)]).bars
    assert bars["volume"].to_list() == [12.5, 10.0]
    assert bars["quote_volume"].to_list() == [525000.0, 421000.0]
    assert bars["trades"].to_list() == [100, 80]
    assert bars["symbol"].unique().to_list() == ["BTC/USDT"] and bars["interval"][0] == "1h"


def test_ohlcv_with_symbol_column_and_epoch_dates(tmp_path: Path) -> None:
    day = 86_400_000
    text = "timestamp,symbol,open,high,low,close,volume\n" + "".join(
        f"{1704067200000 + i * day},{sym},1,2,0.5,1.5,10\n" for i in range(3) for sym in ("AAA", "BBB")
    )
    bars = read_inputs([write(tmp_path / "daily.csv", text)], fmt="ohlcv").bars
    assert sorted(bars["symbol"].unique().to_list()) == ["AAA", "BBB"]
    assert bars["interval"].unique().to_list() == ["1d"]
    assert bars["ts"].min() == utc(2024, 1, 1)


def test_parquet_trades_with_datetime_or_epoch_ts(tmp_path: Path) -> None:
    base = {"symbol": ["X/Y", "X/Y"], "price": [1.0, 2.0], "amount": [3.0, 4.0], "side": ["buy", None]}
    as_datetime = pl.DataFrame({"ts": [datetime(2024, 1, 1), datetime(2024, 1, 2)], **base})
    as_epoch = pl.DataFrame({"ts": [1704067200000, 1704153600000], **base, "venue": ["lake", "lake"]})
    as_datetime.write_parquet(tmp_path / "a.parquet")
    as_epoch.write_parquet(tmp_path / "b.parquet")
    result = read_inputs([tmp_path / "a.parquet", tmp_path / "b.parquet"])
    assert result.trades.height == 4 and result.duplicates_removed == 0
    assert result.trades.filter(pl.col("venue") == "lake")["ts"].to_list() == [
        utc(2024, 1, 1),
        utc(2024, 1, 2),
    ]
    assert result.formats[str(tmp_path / "a.parquet")] == "parquet"


def test_parquet_bars(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "ts": [datetime(2024, 1, 1, h, tzinfo=UTC) for h in range(3)],
            "symbol": ["X"] * 3,
            "open": [1.0, 2.0, 3.0],
            "high": [2.0, 3.0, 4.0],
            "low": [0.5, 1.5, 2.5],
            "close": [2.0, 3.0, 3.5],
            "volume": [10.0, 0.0, 5.0],
        }
    )
    frame.write_parquet(tmp_path / "bars.parquet")
    bars = read_inputs([tmp_path / "bars.parquet"]).bars
    assert bars.schema == pl.Schema(BAR_SCHEMA)
    assert bars["interval"].unique().to_list() == ["1h"]
    assert bars["volume"].to_list() == [10.0, 0.0, 5.0]  # zero volume is a valid bar


def test_semicolon_separated_file(tmp_path: Path) -> None:
    path = write(tmp_path / "semi.csv", f"symbol;timestamp;side;price;amount\nX/Y;{T0};buy;1.5;2\n")
    assert read_inputs([path]).trades["price"].to_list() == [1.5]


@pytest.mark.parametrize(
    ("symbol", "unified"),
    [
        ("BTCUSDT", "BTC/USDT"),
        ("ETHFDUSD", "ETH/FDUSD"),
        ("APPCBTC", "APPC/BTC"),
        ("BTCUSD_PERP", "BTCUSD_PERP"),
    ],
)
def test_binance_names_are_unified(symbol: str, unified: str) -> None:
    assert canonical_symbol_of(symbol, "binance") == unified


def test_ccxt_without_symbol_column_uses_file_name(tmp_path: Path) -> None:
    path = write(tmp_path / "MTH-BTC.csv", f"timestamp,side,price,amount\n{T0},buy,1,1\n")
    assert read_inputs([path]).trades["symbol"].to_list() == ["MTH/BTC"]  # in its canonical spelling


def test_empty_binance_dump_gives_zero_rows(tmp_path: Path) -> None:
    result = read_inputs([write(tmp_path / "BTCUSDT-1h-2024-01-01.zip", "")])
    assert result.bars.height == 0 and result.bars.schema == pl.Schema(BAR_SCHEMA)
    assert result.formats == {str(tmp_path / "BTCUSDT-1h-2024-01-01.zip"): "binance-klines"}


# --- inputs --------------------------------------------------------------------------------------


def test_directory_expands_recursively_to_data_files(tmp_path: Path) -> None:
    a = write(tmp_path / "d" / "a.csv", ccxt_rows((T0, "buy", 1, 1)))
    b = write(tmp_path / "d" / "sub" / "b.csv.gz", ccxt_rows((T0, "buy", 2, 1)))
    write(tmp_path / "d" / "notes.md", "# not data\n")
    write(tmp_path / "d" / ".hidden.csv", "junk\n")
    assert expand_inputs([tmp_path / "d"]) == [a, b]
    assert read_inputs([tmp_path / "d"]).trades.height == 2


def test_glob_expands_sorted_and_files_are_read_once(tmp_path: Path) -> None:
    b = write(tmp_path / "b.csv", ccxt_rows((T0, "buy", 1, 1)))
    a = write(tmp_path / "a.csv", ccxt_rows((T0, "buy", 2, 1)))
    assert expand_inputs([str(tmp_path / "*.csv"), a]) == [a, b]


def test_unrecognised_file_in_directory_is_skipped_but_named_one_fails(tmp_path: Path) -> None:
    write(tmp_path / "d" / "a.csv", ccxt_rows((T0, "buy", 1, 1)))
    events = write(tmp_path / "d" / "events.csv", "coin,announced_at\nX,2021-01-01\n")
    result = read_inputs([tmp_path / "d"])
    assert result.trades.height == 1 and list(result.skipped) == [str(events)]
    with pytest.raises(InputError, match=r"events\.csv': cannot tell the format"):
        read_inputs([events])


def test_missing_input_and_empty_directory_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"^input '.*nope\.csv': no such file or directory$"):
        expand_inputs([tmp_path / "nope.csv"])
    with pytest.raises(InputError, match="no such file or directory"):
        expand_inputs([str(tmp_path / "*.zip")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"empty': no data files"):
        expand_inputs([tmp_path / "empty"])


def test_on_file_is_called_per_file_in_order(tmp_path: Path) -> None:
    paths = [write(tmp_path / f"{n}.csv", ccxt_rows((T0, "buy", 1, n))) for n in (1, 2, 3)]
    seen: list[Path] = []
    read_inputs(paths, on_file=seen.append)
    assert seen == paths


# --- bad rows ------------------------------------------------------------------------------------


def test_bad_trade_rows_become_dead_letters_with_reasons(tmp_path: Path) -> None:
    path = write(
        tmp_path / "bad.csv",
        ccxt_rows(
            (T0, "buy", 1, 1),  # good
            (T0, "buy", "", 1),  # missing price
            (T0, "buy", "nan", 1),  # NaN price
            (T0, "buy", -2, 1),  # negative price
            (T0, "sell", 1, 0),  # zero amount
            (T0, "sell", 1, -5),  # negative amount
            ("yesterday", "buy", 1, 1),  # unparsable timestamp
            ("", "buy", 1, 1),  # missing timestamp
            (T0, "xyz", 1, 1),  # unknown side
            (T0 + 1, "sell", 1, 2),  # good
        ),
    )
    result = read_inputs([path])
    assert result.trades.height == 2 and result.rows_read == 10
    assert reasons(result) == {
        "price is not a positive number": 3,
        "amount is not a positive number": 2,
        "unparsable timestamp": 1,
        "missing timestamp": 1,
        "unknown side 'xyz' (expected buy/sell)": 1,
    }
    assert result.rejected["row"].to_list() == [2, 3, 4, 5, 6, 7, 8, 9]
    assert result.rejected["source"].unique().to_list() == [str(path)]
    unparsable = result.rejected.filter(pl.col("reason") == "unparsable timestamp")
    assert json.loads(unparsable["record"][0])["timestamp"] == "yesterday"  # the raw row, verbatim


def test_blank_symbol_cell_is_rejected_not_guessed(tmp_path: Path) -> None:
    path = write(tmp_path / "s.csv", f"symbol,timestamp,side,price,amount\n,{T0},buy,1,1\nX/Y,{T0},buy,1,1\n")
    result = read_inputs([path])
    assert reasons(result) == {"missing symbol": 1}
    assert result.trades["symbol"].to_list() == ["X/Y"]


def test_text_in_a_numeric_column_is_kept_verbatim(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", ccxt_rows((T0, "buy", "abc", 1), (T0, "buy", 1, 1)))
    result = read_inputs([path])
    assert reasons(result) == {"price is not a positive number": 1}
    assert json.loads(result.rejected["record"][0])["price"] == "abc"
    assert result.trades["price"].to_list() == [1.0]


def test_a_row_failing_several_checks_gets_the_first_one(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", ccxt_rows(("bad", "up", -1, 1), (T0, "up", -1, 1), (T0, "up", 1, 1)))
    assert reasons(read_inputs([path])) == {
        "unparsable timestamp": 1,
        "price is not a positive number": 1,
        "unknown side 'up' (expected buy/sell)": 1,
    }


def test_binance_unknown_maker_flag_is_rejected(tmp_path: Path) -> None:
    text = "1,10,1,10,1704067200000,maybe,True\n2,10,1,10,1704067200001,False,True\n"
    result = read_inputs([write(tmp_path / "XRPUSDT-trades-2024-01-01.csv", text)])
    assert reasons(result) == {"is_buyer_maker is not true/false ('maybe')": 1}
    assert result.trades["side"].to_list() == ["buy"]


def test_bad_bars_become_dead_letters(tmp_path: Path) -> None:
    text = (
        "date,open,high,low,close,volume\n"
        "2024-01-01,1,2,0.5,1.5,10\n"  # good
        "2024-01-02,NaN,2,0.5,1.5,10\n"  # NaN open
        "2024-01-03,1,2,0.5,1.5,-1\n"  # negative volume
        "2024-01-04,1,0.5,2,1.5,10\n"  # high below low
        "not a date,1,2,0.5,1.5,10\n"  # unparsable timestamp
        "2024-01-06,1,2,0.5,1.5,0\n"  # good: zero volume
    )
    result = read_inputs([write(tmp_path / "x.csv", text)])
    assert result.bars.height == 2
    assert reasons(result) == {
        "open is not a positive number": 1,
        "volume is not a non-negative number": 1,
        "high is below low": 1,
        "unparsable timestamp": 1,
    }


def test_write_dead_letters_is_json_lines_with_nested_record(tmp_path: Path) -> None:
    result = read_inputs([write(tmp_path / "b.csv", ccxt_rows((T0, "buy", -1, 1), (T0, "buy", 1, -1)))])
    target = tmp_path / "out" / "deep" / "dead.jsonl"
    write_dead_letters(result.rejected, target)
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert [line["row"] for line in lines] == [1, 2]
    assert lines[0]["reason"] == "price is not a positive number"
    assert lines[0]["record"]["price"] == -1.0 and lines[0]["record"]["symbol"] == "APPC/BTC"
    assert lines[0]["source"] == str(tmp_path / "b.csv")


# --- duplicates and order ----------------------------------------------------------------------


def test_identical_trades_without_id_in_one_file_are_trades_only_another_files_copies_are_dropped(
    tmp_path: Path,
) -> None:
    """Second-resolution data prints equal trades in one second: only a copy another file adds is a copy."""
    first = write(tmp_path / "a.csv", ccxt_rows((T0, "buy", 1, 1), (T0, "buy", 1, 1), (T0 + 1, "sell", 2, 1)))
    second = write(tmp_path / "b.csv.gz", ccxt_rows((T0 + 1, "sell", 2, 1), (T0 + 2, "buy", 3, 1)))
    result = read_inputs([first, second])
    assert result.rows_read == 5
    assert result.duplicates_removed == 1
    assert result.trades["price"].to_list() == [1.0, 1.0, 2.0, 3.0]
    again = read_inputs([first, write(tmp_path / "copy.csv", first.read_text())])
    assert again.duplicates_removed == 3 and again.trades.height == 3  # the same file read twice


def test_a_trade_id_seen_twice_in_one_file_is_one_trade(tmp_path: Path) -> None:
    text = "id,symbol,timestamp,side,price,amount\n" + "".join(
        f"{trade_id},APPC/BTC,{T0},buy,1,1\n" for trade_id in ("7", "7", "8")
    )
    result = read_inputs([write(tmp_path / "ids.csv", text)])
    assert result.trades["trade_id"].to_list() == ["7", "8"] and result.duplicates_removed == 1


def test_a_hash_collision_never_loses_a_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every row hashing alike must still leave every distinct trade in place."""
    monkeypatch.setattr(
        readers, "_row_hashes", lambda frame, columns: pl.Series([7] * frame.height, dtype=pl.UInt64)
    )
    first = write(tmp_path / "a.csv", ccxt_rows((T0, "buy", 1, 1), (T0, "buy", 2, 1)))
    second = write(tmp_path / "b.csv", ccxt_rows((T0, "buy", 1, 1)))
    result = read_inputs([first, second])
    assert result.trades["price"].to_list() == [1.0, 2.0]
    assert result.duplicates_removed == 1


def test_same_time_different_trades_are_not_duplicates(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", ccxt_rows((T0, "buy", 1, 1), (T0, "buy", 1, 2), (T0, "sell", 1, 1)))
    result = read_inputs([path])
    assert result.duplicates_removed == 0 and result.trades.height == 3


def test_out_of_order_rows_are_sorted_keeping_file_order_for_ties(tmp_path: Path) -> None:
    path = write(
        tmp_path / "a.csv",
        ccxt_rows((T0 + 9, "buy", 9, 1), (T0, "buy", 5, 1), (T0, "buy", 4, 1), (T0 + 3, "buy", 3, 1)),
    )
    other = write(tmp_path / "b.csv", ccxt_rows((T0 + 1, "buy", 7, 1), symbol="AAA/BTC"))
    trades = read_inputs([path, other]).trades
    assert trades["symbol"].to_list() == ["AAA/BTC", *["APPC/BTC"] * 4]
    assert trades["price"].to_list() == [7.0, 5.0, 4.0, 3.0, 9.0]  # 5 before 4: same ms, file order kept


# --- bad files and options -----------------------------------------------------------------------


def test_missing_columns_name_the_file_and_the_expected_layout(tmp_path: Path) -> None:
    path = write(tmp_path / "short.csv", "symbol,timestamp,side,cost\nX/Y,1000,buy,1\n")
    with pytest.raises(InputError) as caught:
        read_inputs([path], fmt="ccxt-trades")
    message = str(caught.value)
    assert message.startswith(f"input '{path}': missing column(s) price, amount; expected ccxt trades")
    assert "symbol,timestamp,datetime,side,price,amount[,cost]" in message and "\n" not in message


def test_ohlcv_missing_volume_is_named(tmp_path: Path) -> None:
    path = write(tmp_path / "o.csv", "date,open,high,low,close\n2024-01-01,1,2,0.5,1\n")
    with pytest.raises(InputError, match=r"o\.csv': missing column\(s\) volume; expected OHLCV \(date,open"):
        read_inputs([path])


def test_unknown_format_option_lists_valid_names(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        read_inputs([tmp_path], fmt="excel")
    assert "'excel'" in str(caught.value)
    assert all(name in str(caught.value) for name in FORMATS)


def test_zip_must_hold_exactly_one_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.zip"
    zipfile.ZipFile(empty, "w").close()
    with pytest.raises(InputError, match=r"empty\.zip.: expected a zip holding one CSV file, found 0"):
        read_inputs([empty])
    path = tmp_path / "two.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.csv", "x\n")
        archive.writestr("b.csv", "y\n")
    with pytest.raises(InputError, match=r"two\.zip': expected a zip holding one CSV file, found 2"):
        read_inputs([path])


def test_forced_parquet_on_a_csv_says_what_was_expected(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", ccxt_rows((T0, "buy", 1, 1)))
    with pytest.raises(InputError, match=r"a\.csv': not a Parquet file; expected Parquet with trade columns"):
        read_inputs([path], fmt="parquet")


def test_corrupt_gzip_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.csv.gz"
    path.write_bytes(gzip.compress(ccxt_rows((T0, "buy", 1, 1)).encode())[:30])
    with pytest.raises(InputError, match=r"broken\.csv\.gz'"):
        read_inputs([path])


# --- time helpers --------------------------------------------------------------------------------


def test_parse_times_decides_unit_per_value() -> None:
    raw = pl.Series(
        ["1704067200000", "1704067200000000", "1704067200000000000", "1.7040672e12", "2024-01-01T00:00:00Z"]
    )
    assert parse_times(raw).values.to_list() == [utc(2024, 1, 1)] * 5


def test_parse_times_prefers_day_first_only_when_month_first_cannot_be() -> None:
    assert parse_times(pl.Series(["13/01/2024", "14/01/2024"])).values.to_list() == [
        utc(2024, 1, 13),
        utc(2024, 1, 14),
    ]


@pytest.mark.parametrize(
    ("seconds", "name"), [(60, "1m"), (900, "15m"), (14400, "4h"), (604800, "1w"), (7, "7s")]
)
def test_infer_interval(seconds: int, name: str) -> None:
    ts = pl.Series([utc(2024, 1, 1)]).dt.offset_by(f"{seconds}s")
    series = pl.concat([pl.Series([utc(2024, 1, 1)]), ts, ts.dt.offset_by(f"{seconds}s")])
    assert infer_interval(series) == name
