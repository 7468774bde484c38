"""Readers for L3 order events and L2 book updates: CSV, Parquet and Binance diff-depth JSON lines.

Fixtures are written to tmp_path in the layouts the real sources use: the
record columns for CSV/Parquet, Binance's `<symbol>@depth` messages (bare and
in the combined-stream wrapper) for JSON lines.
"""

from __future__ import annotations

import gzip
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tapewatch.errors import InputError
from tapewatch.io.readers import FORMATS, RECORD_KINDS, ReadResult, read_inputs
from tapewatch.records import BOOK_SCHEMA, ORDER_SCHEMA

ORDERS_ONLY = ("orders",)
BOOK_ONLY = ("book",)
E0 = 1672515782136  # 2022-12-31T19:43:02.136Z in ms


def utc(*parts: int) -> datetime:
    """A UTC datetime, as the readers return them."""
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def write(path: Path, text: str) -> Path:
    """A plain or gzip file (by the name's extension) holding `text`."""
    data = text.encode()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def csv_text(*rows: str) -> str:
    """A header and rows as one CSV text."""
    return "\n".join(rows) + "\n"


def reasons(result: ReadResult) -> dict[str, int]:
    """How many rows were rejected for each reason."""
    counts = result.rejected.group_by("reason").len()
    return dict(zip(counts["reason"], counts["len"], strict=True))


def orders_frame() -> pl.DataFrame:
    """Order events as the record holds them, out of time order, two sharing a timestamp."""
    return pl.DataFrame(
        {
            "ts": [utc(2024, 1, 1, 0, 0, 1), utc(2024, 1, 1), utc(2024, 1, 1), utc(2024, 1, 1, 0, 0, 2)],
            "venue": ["lse"] * 4,
            "symbol": ["ABC"] * 4,
            "order_id": ["o1", "o2", "o3", "o2"],
            "account": ["acc1", "acc2", None, "acc2"],
            "side": ["buy", "sell", "sell", "sell"],
            "price": [10.5, 10.6, 10.7, 10.6],
            "amount": [3.0, 2.0, 1.0, 0.0],
            "action": ["new", "new", "modify", "cancel"],
        },
        schema=ORDER_SCHEMA,
    )


def book_frame() -> pl.DataFrame:
    """Book updates as the record holds them; amount 0 removes a level."""
    return pl.DataFrame(
        {
            "ts": [utc(2024, 1, 1), utc(2024, 1, 1), utc(2024, 1, 1, 0, 0, 0, 500)],
            "venue": ["kraken"] * 3,
            "symbol": ["BTC/USD"] * 3,
            "side": ["bid", "ask", "bid"],
            "price": [42000.0, 42001.0, 42000.0],
            "amount": [1.5, 2.0, 0.0],
        },
        schema=BOOK_SCHEMA,
    )


def as_csv(frame: pl.DataFrame, path: Path) -> Path:
    """The frame as CSV with ISO microsecond timestamps."""
    frame.with_columns(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")).write_csv(path)
    return path


def read_back(original: pl.DataFrame, path: Path, fmt: str, **options: Any) -> ReadResult:
    """`original` written to `path` (Parquet, else CSV as `as_csv` writes it) and read back with
    `options`, after checking the reader took the file for format `fmt`."""
    if path.suffix == ".parquet":
        original.write_parquet(path)
    else:
        as_csv(original, path)
    result = read_inputs([path], **options)
    assert result.formats == {str(path): fmt}
    return result


def depth_message(
    first: int, last: int, *, ms: int = E0, bids=(("0.0024", "10"),), asks=(("0.0026", "100"),)
):
    """A Binance spot diff-depth message as the stream sends it."""
    return {
        "e": "depthUpdate",
        "E": ms,
        "s": "BNBBTC",
        "U": first,
        "u": last,
        "b": [list(b) for b in bids],
        "a": [list(a) for a in asks],
    }


def jsonl(*messages: object) -> str:
    """JSON lines: dicts encoded, strings written as they are (for broken lines)."""
    return "".join((m if isinstance(m, str) else json.dumps(m)) + "\n" for m in messages)


# --- order events --------------------------------------------------------------------------------


def test_order_csv_round_trips_sorted_with_file_order_kept_for_ties(tmp_path: Path) -> None:
    original = orders_frame()
    result = read_back(original, tmp_path / "orders.csv", "l3-orders", kinds=ORDERS_ONLY)
    assert result.orders.schema == pl.Schema(ORDER_SCHEMA)
    assert result.orders.equals(original.sort("ts", maintain_order=True))
    assert result.orders["order_id"].to_list() == [
        "o2",
        "o3",
        "o1",
        "o2",
    ]  # o2 before o3: file order at one ts
    assert result.rejected.height == 0 and result.rows_read == 4
    assert result.trades.height == 0 and result.book.height == 0


def test_order_csv_takes_epoch_milliseconds_and_microseconds(tmp_path: Path) -> None:
    text = "ts,symbol,order_id,side,price,amount,action\n1704067200000,ABC,a,BUY,1,1,New\n1704067200000123,ABC,b,sell,1,1,fill\n"
    result = read_inputs([write(tmp_path / "o.csv", text)], kinds=ORDERS_ONLY)
    assert result.orders["ts"].to_list() == [utc(2024, 1, 1), utc(2024, 1, 1, 0, 0, 0, 123)]
    assert result.orders["side"].to_list() == ["buy", "sell"]  # spellings normalised
    assert result.orders["action"].to_list() == ["new", "fill"]
    assert result.orders["venue"].to_list() == ["unknown", "unknown"]


def test_order_parquet_round_trips(tmp_path: Path) -> None:
    original = orders_frame()
    result = read_back(original, tmp_path / "orders.parquet", "parquet", kinds=ORDERS_ONLY, venue="xetra")
    assert result.orders.equals(original.sort("ts", maintain_order=True).with_columns(venue=pl.lit("xetra")))


def test_every_bad_order_row_is_rejected_with_its_reason(tmp_path: Path) -> None:
    text = csv_text(
        "ts,symbol,order_id,side,price,amount,action",
        "2024-01-01T00:00:00Z,ABC,a,buy,1,1,new",  # fine
        "2024-01-01T00:00:00Z,ABC,b,buy,1,0,cancel",  # fine: a cancel leaves nothing
        "2024-01-01T00:00:01Z,ABC,c,buy,1,1,replace",
        "2024-01-01T00:00:02Z,ABC,d,long,1,1,new",
        "2024-01-01T00:00:03Z,ABC,,buy,1,1,new",
        "2024-01-01T00:00:04Z,ABC,e,buy,0,1,new",
        "2024-01-01T00:00:05Z,ABC,f,buy,-2,1,new",
        "2024-01-01T00:00:06Z,ABC,g,buy,1,-1,fill",
        "2024-01-01T00:00:07Z,ABC,h,buy,1,0,new",
        "2024-01-01T00:00:08Z,ABC,i,,1,1,",
        "soon,ABC,j,buy,1,1,new",
    )
    result = read_inputs([write(tmp_path / "o.csv", text)], kinds=ORDERS_ONLY)
    assert result.orders["order_id"].to_list() == ["a", "b"]
    assert reasons(result) == {
        "unknown action 'replace' (expected new/cancel/fill/modify)": 1,
        "unknown side 'long' (expected buy/sell)": 1,
        "missing order_id": 1,
        "price is not a positive number": 2,
        "amount is not a non-negative number": 1,
        "amount is 0 on a 'new' event (only a cancel may have 0)": 1,
        "missing side": 1,
        "unparsable timestamp": 1,
    }
    assert result.rejected["row"].to_list() == list(range(3, 12))  # 1-based data rows, none lost
    assert json.loads(result.rejected["record"][0])["action"] == "replace"  # the raw row, verbatim


def test_identical_order_events_in_one_file_are_kept_but_a_reread_file_is_not(tmp_path: Path) -> None:
    # Two equal fills of one order in the same µs are two events; a second copy of the file is a re-read.
    text = csv_text(
        "ts,symbol,order_id,side,price,amount,action",
        "2024-01-01T00:00:00Z,ABC,a,buy,1,1,fill",
        "2024-01-01T00:00:00Z,ABC,a,buy,1,1,fill",
        "2024-01-01T00:00:00Z,ABC,b,buy,1,1,fill",  # differs only by order_id: a different event
    )
    first = write(tmp_path / "day.csv", text)
    copy = tmp_path / "copy" / "day.csv"
    copy.parent.mkdir()
    shutil.copy(first, copy)
    assert read_inputs([first], kinds=ORDERS_ONLY).orders["order_id"].to_list() == ["a", "a", "b"]
    both = read_inputs([first, copy], kinds=ORDERS_ONLY)
    assert both.orders["order_id"].to_list() == ["a", "a", "b"]
    assert both.duplicates_removed == 3
    assert "_repeat" not in both.orders.columns


# --- book updates: CSV and Parquet ----------------------------------------------------------------


def test_book_csv_round_trips_and_is_told_from_trades_by_its_side(tmp_path: Path) -> None:
    original = book_frame()
    result = read_back(original, tmp_path / "book.csv", "l2-book", kinds=BOOK_ONLY)
    assert result.book.schema == pl.Schema(BOOK_SCHEMA)
    assert result.book.equals(original)
    trades = write(
        tmp_path / "trades.csv", "ts,venue,symbol,side,price,amount\n1704067200000,x,ABC,buy,1,1\n"
    )
    assert read_inputs([trades]).formats == {str(trades): "ccxt-trades"}  # same header, trade sides


def test_book_parquet_round_trips(tmp_path: Path) -> None:
    original = book_frame()
    result = read_back(original, tmp_path / "book.parquet", "parquet", kinds=BOOK_ONLY)
    assert result.book.equals(original)


def test_every_bad_book_row_is_rejected_with_its_reason(tmp_path: Path) -> None:
    text = csv_text(
        "ts,symbol,side,price,amount",
        "1704067200000,ABC,bid,10,0",  # fine: removes the level
        "1704067200001,ABC,buy,10,1",
        "1704067200002,ABC,ask,10,-1",
        "1704067200003,ABC,ask,0,1",
        "1704067200004,ABC,ask,nan,1",
        "1704067200005,ABC,,10,1",
    )
    result = read_inputs([write(tmp_path / "b.csv", text)], kinds=BOOK_ONLY)
    assert result.book["amount"].to_list() == [0.0]
    assert reasons(result) == {
        "unknown side 'buy' (expected bid/ask)": 1,
        "amount is not a non-negative number": 1,
        "price is not a positive number": 2,
        "missing side": 1,
    }


def test_identical_book_rows_at_one_time_are_duplicates(tmp_path: Path) -> None:
    text = "ts,symbol,side,price,amount\n1704067200000,ABC,bid,10,1\n1704067200000,ABC,bid,10,1\n"
    text += "1704067200001,ABC,bid,10,1\n"  # same level later: a new update, kept
    result = read_inputs([write(tmp_path / "b.csv", text)], kinds=BOOK_ONLY)
    assert result.book.height == 2 and result.duplicates_removed == 1


# --- book updates: Binance diff-depth JSON lines -------------------------------------------------


@pytest.mark.parametrize("name", ["depth.jsonl", "depth.jsonl.gz", "depth.json"])
@pytest.mark.parametrize("wrapped", [False, True])
def test_diff_depth_messages_become_one_row_per_level(tmp_path: Path, name: str, wrapped: bool) -> None:
    messages = [
        depth_message(157, 160, bids=(("0.0024", "10"), ("0.0023", "0")), asks=(("0.0026", "100"),)),
        depth_message(161, 161, ms=E0 + 100, bids=(), asks=(("0.0027", "5.5"),)),
    ]
    if wrapped:
        messages = [{"stream": "bnbbtc@depth", "data": m} for m in messages]
    path = write(tmp_path / name, jsonl(*messages))
    result = read_inputs([path], kinds=BOOK_ONLY)
    assert result.formats == {str(path): "binance-depth"}
    book = result.book
    assert book["symbol"].unique().to_list() == ["BNB/BTC"] and book["venue"].unique().to_list() == [
        "binance"
    ]
    assert book["side"].to_list() == ["bid", "bid", "ask", "ask"]
    assert book["price"].to_list() == [0.0024, 0.0023, 0.0026, 0.0027]
    assert book["amount"].to_list() == [10.0, 0.0, 100.0, 5.5]
    assert book["ts"].to_list() == [utc(2022, 12, 31, 19, 43, 2, 136000)] * 3 + [
        utc(2022, 12, 31, 19, 43, 2, 236000)
    ]
    assert result.rows_read == 2 and result.rejected.height == 0 and result.book_gaps.height == 0
    assert result.book_gap_summary() is None


def test_venue_option_overrides_binance_for_depth(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", jsonl(depth_message(1, 2)))
    assert read_inputs([path], kinds=BOOK_ONLY, venue="binanceus").book["venue"].unique().to_list() == [
        "binanceus"
    ]


def test_a_sequence_gap_is_reported_without_rejecting_rows(tmp_path: Path) -> None:
    path = write(
        tmp_path / "d.jsonl",
        jsonl(
            depth_message(157, 160),
            depth_message(161, 163, ms=E0 + 100),
            depth_message(168, 170, ms=E0 + 200),
        ),
    )
    result = read_inputs([path], kinds=BOOK_ONLY)
    assert result.book.height == 6 and result.rejected.height == 0
    assert result.book_gaps.to_dicts() == [
        {
            "venue": "binance",
            "symbol": "BNB/BTC",
            "ts": utc(2022, 12, 31, 19, 43, 2, 336000),
            "file": str(path),
            "line": 3,
            "last_update_id": 163,
            "next_update_id": 168,
            "missing_updates": 4,
        }
    ]
    summary = result.book_gap_summary()
    assert summary is not None and summary.startswith("1 update-id gap(s)")
    assert "BNB/BTC" in summary and "line 3" in summary and "163" in summary and "168" in summary


def test_gaps_are_counted_per_symbol_and_across_files_in_any_order(tmp_path: Path) -> None:
    later = write(
        tmp_path / "b.jsonl", jsonl(depth_message(161, 170), {**depth_message(5, 9), "s": "ETHBTC"})
    )
    earlier = write(
        tmp_path / "a.jsonl", jsonl(depth_message(150, 160), {**depth_message(1, 2), "s": "ETHBTC"})
    )
    result = read_inputs([later, earlier], kinds=BOOK_ONLY)  # BNBBTC continues across files: no gap there
    assert result.book_gaps[["symbol", "last_update_id", "next_update_id", "file"]].rows() == [
        ("ETH/BTC", 2, 5, str(later))
    ]
    reread = read_inputs([earlier, later, shutil.copy(later, tmp_path / "c.jsonl")], kinds=BOOK_ONLY)
    assert reread.book_gaps.height == 1  # an overlapping copy is not a gap
    assert reread.book.height == result.book.height  # and its rows are duplicates


def test_futures_messages_are_chained_by_pu(tmp_path: Path) -> None:
    chained = [{**depth_message(100, 120), "pu": 99}, {**depth_message(118, 130), "pu": 120}]
    broken = [{**depth_message(100, 120), "pu": 99}, {**depth_message(125, 130), "pu": 122}]
    assert read_inputs([write(tmp_path / "ok.jsonl", jsonl(*chained))], kinds=BOOK_ONLY).book_gaps.height == 0
    gaps = read_inputs([write(tmp_path / "gap.jsonl", jsonl(*broken))], kinds=BOOK_ONLY).book_gaps
    assert gaps[["last_update_id", "next_update_id", "missing_updates"]].rows() == [(120, 125, 2)]


def test_bad_depth_lines_and_levels_are_rejected_with_their_line(tmp_path: Path) -> None:
    path = write(
        tmp_path / "d.jsonl",
        jsonl(
            depth_message(1, 2),
            {"e": "trade", "E": E0, "s": "BNBBTC", "t": 1},
            {k: v for k, v in depth_message(3, 4).items() if k != "U"},
            depth_message(5, 6, bids=(("0.1", "-3"), ("x", "1")), asks=(("0.2", "1"),)),
            {**depth_message(7, 8), "E": "yesterday"},
            '{"e":"depthUpdate","E":1672515782',  # a capture cut short
        ),
    )
    result = read_inputs([path], kinds=BOOK_ONLY)
    assert result.book["price"].to_list() == [0.0024, 0.0026, 0.2]
    assert reasons(result) == {
        "not a diff-depth message (event 'trade')": 1,
        "missing update ids U/u": 2,  # each of the message's levels
        "amount is not a non-negative number": 1,
        "price is not a positive number": 1,
        "unparsable timestamp": 2,
        "not a JSON object": 1,
    }
    assert result.rejected["row"].to_list() == [2, 3, 3, 4, 4, 5, 5, 6]  # file lines, not level positions
    broken = json.loads(result.rejected["record"][-1])
    assert broken["text"].startswith('{"e":"depthUpdate"')


def test_a_depth_file_with_levels_of_the_wrong_shape_is_a_one_line_error(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", jsonl(depth_message(1, 2), {**depth_message(3, 4), "b": [{"p": 1}]}))
    with pytest.raises(InputError) as caught:
        read_inputs([path], kinds=BOOK_ONLY)
    message = str(caught.value)
    assert str(path) in message and "\n" not in message and "diff-depth" in message


# --- empty, unrecognised and unwanted files ------------------------------------------------------


def test_empty_files_give_zero_rows_of_their_kind(tmp_path: Path) -> None:
    header_only = write(tmp_path / "o.csv", "ts,symbol,order_id,side,price,amount,action\n")
    orders = read_inputs([header_only], kinds=ORDERS_ONLY)
    assert orders.orders.schema == pl.Schema(ORDER_SCHEMA) and orders.orders.height == 0
    assert orders.formats == {str(header_only): "l3-orders"}
    blank = write(tmp_path / "d.jsonl", "")
    book = read_inputs([blank], fmt="binance-depth", kinds=BOOK_ONLY)
    assert book.book.schema == pl.Schema(BOOK_SCHEMA) and book.book.height == 0 and book.book_gaps.height == 0
    with pytest.raises(InputError, match="empty file"):
        read_inputs([blank], kinds=BOOK_ONLY)  # nothing to tell the format by


def test_unrecognised_json_is_a_one_line_error_naming_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "ticker.jsonl", jsonl({"e": "24hrTicker", "s": "BNBBTC"}))
    with pytest.raises(InputError) as caught:
        read_inputs([path], kinds=RECORD_KINDS)
    message = str(caught.value)
    assert message.startswith(f"input '{path}'") and "\n" not in message and "diff-depth" in message


def test_files_of_kinds_not_asked_for_fail_when_named_and_are_skipped_in_a_directory(tmp_path: Path) -> None:
    orders = as_csv(orders_frame(), tmp_path / "orders.csv")
    orders_frame().write_parquet(tmp_path / "orders.parquet")  # has price and amount, yet is not trades
    write(tmp_path / "depth.jsonl", jsonl(depth_message(1, 2)))
    with pytest.raises(
        InputError, match="holds L3 order events .order_id, action., which this command does not read"
    ):
        read_inputs([orders])  # trades and bars by default
    with pytest.raises(  # only kinds it does not read: reading nothing is an error, not a quiet exit 0
        InputError,
        match=r"3 file\(s\) skipped as not market data; first: input '.*depth.jsonl': holds L2 book",
    ):
        read_inputs([tmp_path])
    everything = read_inputs([tmp_path], kinds=RECORD_KINDS)
    assert everything.orders.height == 4 and everything.book.height == 2 and not everything.skipped
    assert everything.duplicates_removed == 4  # orders.parquet repeats orders.csv


def test_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="order"):
        read_inputs([], kinds=("order",))  # type: ignore[arg-type]


def test_new_formats_are_accepted_by_name(tmp_path: Path) -> None:
    assert {"l3-orders", "l2-book", "binance-depth"} <= set(FORMATS)
    book = as_csv(book_frame(), tmp_path / "levels.txt.csv")
    assert read_inputs([book], fmt="l2-book", kinds=BOOK_ONLY).book.height == 3
    with pytest.raises(InputError, match="missing column.s. order_id"):
        read_inputs([book], fmt="l3-orders", kinds=ORDERS_ONLY)
