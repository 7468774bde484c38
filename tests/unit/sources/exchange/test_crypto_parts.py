"""The small parts on their own: coverage ledger, trade sequences, book diffs, trade checks."""

from __future__ import annotations

import math

import pytest

from tapewatch.sources.exchange.books import BookDiffer
from tapewatch.sources.exchange.coverage import Coverage
from tapewatch.sources.exchange.normalise import normalise_trades
from tapewatch.sources.exchange.sequence import Gap, TradeSequence, Verdict


def test_coverage_reports_only_the_missing_spans_and_survives_a_reload(tmp_path):
    ledger = Coverage(tmp_path, "trades", "binance", "BTC/USDT", "trades")
    assert ledger.missing(0, 100) == [(0, 100)]
    ledger.add([(10, 20), (20, 30), (50, 60)])
    assert ledger.spans == [(10, 30), (50, 60)]
    assert ledger.missing(0, 100) == [(0, 10), (30, 50), (60, 100)]
    assert ledger.missing(12, 25) == []
    reloaded = Coverage(tmp_path, "trades", "binance", "BTC/USDT", "trades")
    assert reloaded.spans == [(10, 30), (50, 60)]
    other = Coverage(tmp_path, "trades", "binance", "BTC/USDT", "1m")  # another stream in the same file
    other.add([(0, 5)])
    assert Coverage(tmp_path, "trades", "binance", "BTC/USDT", "trades").spans == [(10, 30), (50, 60)]
    assert ledger.key.endswith("/symbol=BTC%2FUSDT.json")


def test_a_damaged_coverage_file_only_means_fetching_again(tmp_path):
    ledger = Coverage(tmp_path, "bars", "binance", "BTC/USDT", "1h")
    ledger.store.write_bytes(ledger.key, b"{not json")
    assert Coverage(tmp_path, "bars", "binance", "BTC/USDT", "1h").missing(0, 10) == [(0, 10)]


def test_numbered_trades_drop_repeats_count_late_ones_and_open_exact_gaps():
    sequence = TradeSequence(memory=100)
    assert sequence.admit("10", 1_000) == (Verdict.NEW, None)
    assert sequence.admit("11", 1_100) == (Verdict.NEW, None)
    assert sequence.admit("11", 1_100) == (Verdict.DUPLICATE, None)
    assert sequence.admit("9", 900) == (Verdict.LATE, None)
    verdict, gap = sequence.admit("15", 1_500)
    assert verdict is Verdict.NEW
    assert gap == Gap(after_ts=1_100, before_ts=1_500, after_id=11, before_id=15)
    assert [gap.wants(str(i), 1_200) for i in (11, 12, 14, 15)] == [False, True, True, False]


def test_unnumbered_trades_open_a_gap_only_after_a_reconnect():
    sequence = TradeSequence(memory=100)
    sequence.admit("a1", 1_000)
    assert sequence.admit("b7", 2_000) == (Verdict.NEW, None)
    sequence.suspect = True
    verdict, gap = sequence.admit("c3", 5_000)
    assert verdict is Verdict.NEW
    assert gap == Gap(after_ts=2_000, before_ts=5_000)
    assert sequence.admit("d9", 4_000) == (Verdict.LATE, None)
    assert gap.wants("zz", 3_000) and not gap.wants("zz", 6_000)


def test_the_id_memory_is_bounded():
    sequence = TradeSequence(memory=3)
    for trade_id in ("a", "b", "c", "d"):
        assert sequence.remember(trade_id)
    assert sequence.remember("a")  # forgotten: too old to matter
    assert not sequence.remember("d")


def test_book_changes_are_the_levels_that_moved():
    differ = BookDiffer(levels=2)
    book = {"timestamp": 1_000, "bids": [[99.0, 1.0], [98.0, 2.0], [97.0, 5.0]], "asks": [[101.0, 3.0]]}
    first = differ.changes("X/Y", book, arrived=0.0)
    assert sorted(first) == [
        (1_000_000, "X/Y", "ask", 101.0, 3.0),
        (1_000_000, "X/Y", "bid", 98.0, 2.0),
        (1_000_000, "X/Y", "bid", 99.0, 1.0),
    ]
    moved = {"timestamp": None, "bids": [[99.0, 1.0], [97.5, 4.0]], "asks": []}
    second = differ.changes("X/Y", moved, arrived=2.5)
    assert sorted(second) == [
        (2_500_000, "X/Y", "ask", 101.0, 0.0),
        (2_500_000, "X/Y", "bid", 97.5, 4.0),
        (2_500_000, "X/Y", "bid", 98.0, 0.0),
    ]
    assert differ.changes("X/Y", moved, arrived=3.0) == []


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"symbol": None}, "missing symbol"),
        ({"symbol": "Z/Z"}, "unknown symbol 'Z/Z'"),
        ({"timestamp": None}, "missing timestamp"),
        ({"timestamp": "soon"}, "unparsable timestamp"),
        ({"price": "abc"}, "price is not a positive number"),
        ({"price": math.nan}, "price is not a positive number"),
        ({"amount": -1.0}, "amount is not a positive number"),
        ({"side": "long"}, "unknown side 'long' (expected buy/sell)"),
    ],
)
def test_trades_are_refused_with_the_reason_files_give(change, reason):
    trade = {
        "symbol": "A/B",
        "timestamp": 1_700_000_000_000,
        "price": 1.0,
        "amount": 2.0,
        "side": "buy",
        "id": 1,
    }
    checked = normalise_trades([{**trade, **change, "info": {"raw": True}}], source="x:ws", symbols={"A/B"})
    assert checked.rows == []
    assert checked.rejected == [{"source": "x:ws", "row": None, "reason": reason, "record": {"raw": True}}]


def test_a_good_trade_becomes_a_row_in_microseconds_with_a_string_id():
    trade = {
        "symbol": "A/B",
        "timestamp": 1_700_000_000_123,
        "price": "1.5",
        "amount": 2,
        "side": " SELL",
        "id": 42,
    }
    (row,) = normalise_trades([trade], source="x:rest").rows
    assert (row.ts, row.price, row.amount, row.side, row.trade_id) == (
        1_700_000_000_123_000,
        1.5,
        2.0,
        "sell",
        "42",
    )
