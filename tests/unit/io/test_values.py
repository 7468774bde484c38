"""Implausible row values: magnitudes no market prints, times before the kind's earliest or in the future,
and epoch seconds told from milliseconds per column.

Values sit at and just beyond each bound, so a bound moved by a factor of ten or off by
one comparison fails here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from tapewatch import validity
from tapewatch.config import load_settings
from tapewatch.engine.kinds import TRADES
from tapewatch.io.formats import open_source
from tapewatch.io.normalise import FileContext, convert_ccxt
from tapewatch.io.readers import ReadResult, read_inputs
from tapewatch.io.timeparse import parse_times
from tapewatch.records import BAR_SCHEMA, BOOK_SCHEMA, ORDER_SCHEMA, TIME, TRADE_SCHEMA, conform
from tapewatch.sources.exchange.normalise import normalise_trades
from tapewatch.validity import DEFAULT_TIME_BOUNDS, TimeBounds, first_reason, problems

T0 = datetime(2024, 1, 1, tzinfo=UTC)
T0_MS = int(T0.timestamp() * 1000)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.fixture(autouse=True)
def default_bounds():
    """Each test starts and ends with the default time bounds (load_settings changes those in force)."""
    validity.use_time_bounds(DEFAULT_TIME_BOUNDS)
    yield
    validity.use_time_bounds(DEFAULT_TIME_BOUNDS)


def reasons_of(
    kind: str, rows: list[dict], schema: dict, bounds: TimeBounds | None = None
) -> list[str | None]:
    """Each row's first failed check under the kind's rule, None for a good row."""
    base = {name: None for name in schema}
    frame = conform(pl.DataFrame([base | row for row in rows], schema=schema), schema)
    return frame.select(first_reason(problems(kind, frame.columns, bounds))).to_series().to_list()


def trade(**values: object) -> dict:
    return {"ts": T0, "symbol": "X/Y", "price": 1.0, "amount": 1.0} | values


def bar(**values: object) -> dict:
    prices = dict.fromkeys(("open", "high", "low", "close"), 1.0)
    return {"ts": T0, "symbol": "X", "interval": "1d", **prices, "volume": 1.0} | values


def order(**values: object) -> dict:
    fields = {"order_id": "o1", "side": "buy", "action": "new"}
    return {"ts": T0, "symbol": "X/Y", "price": 1.0, "amount": 1.0, **fields} | values


def level(**values: object) -> dict:
    return {"ts": T0, "symbol": "X/Y", "side": "bid", "price": 1.0, "amount": 1.0} | values


# --- magnitudes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (1e12, None),
        (1.01e12, "price 1010000000000.0 is beyond what any market prints (max 1e12)"),
        (1e308, "price 1e+308 is beyond what any market prints (max 1e12)"),
        (1e-18, None),
        (9e-19, "price 9e-19 is below what any market prints (min 1e-18)"),
        (1e-320, "price 1e-320 is below what any market prints (min 1e-18)"),
        (float("inf"), "price is not a positive number"),
        (float("nan"), "price is not a positive number"),
    ],
)
def test_trade_price_bounds(value: float, reason: str | None) -> None:
    assert reasons_of("trades", [trade(price=value)], TRADE_SCHEMA) == [reason]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (1e18, None),
        (1.1e18, "amount 1.1e+18 is beyond what any market prints (max 1e18)"),
        (1e-18, None),
        (1e-320, "amount 1e-320 is below what any market prints (min 1e-18)"),
    ],
)
def test_trade_amount_bounds(value: float, reason: str | None) -> None:
    assert reasons_of("trades", [trade(amount=value)], TRADE_SCHEMA) == [reason]


@pytest.mark.parametrize("column", ["open", "high", "low", "close"])
def test_every_bar_price_is_bounded(column: str) -> None:
    at_bound = bar(**{column: 1e12}) | ({"high": 1e12} if column == "low" else {})  # high not below low
    rows = [at_bound, bar(**{column: 1e13}), bar(**{column: 1e-19})]
    got = reasons_of("bars", rows, BAR_SCHEMA)
    assert got[0] is None
    assert got[1] == f"{column} 10000000000000.0 is beyond what any market prints (max 1e12)"
    assert got[2] == f"{column} 1e-19 is below what any market prints (min 1e-18)"


def test_bar_volume_may_be_zero_but_not_beyond_what_markets_print() -> None:
    got = reasons_of(
        "bars", [bar(volume=0.0), bar(volume=1e18), bar(volume=2e18), bar(volume=1e-320)], BAR_SCHEMA
    )
    assert got == [
        None,
        None,
        "volume 2e+18 is beyond what any market prints (max 1e18)",
        "volume 1e-320 is below what any market prints (min 1e-18)",
    ]


def test_order_events_and_book_levels_are_bounded() -> None:
    assert reasons_of("orders", [order(price=1e308), order(action="cancel", amount=0.0)], ORDER_SCHEMA) == [
        "price 1e+308 is beyond what any market prints (max 1e12)",
        None,
    ]
    got = reasons_of("book", [level(amount=0.0), level(amount=1e-320), level(price=2e12)], BOOK_SCHEMA)
    assert got == [
        None,
        "amount 1e-320 is below what any market prints (min 1e-18)",
        "price 2000000000000.0 is beyond what any market prints (max 1e12)",
    ]


def test_implausible_values_in_a_file_are_dead_lettered_and_counted(tmp_path: Path) -> None:
    lines = [f"X/Y,{T0_MS},buy,{price},{amount}" for price, amount in [(1, 1), ("1e308", 1), (1, "1e-320")]]
    path = tmp_path / "t.csv"
    path.write_text("symbol,timestamp,side,price,amount\n" + "\n".join(lines) + "\n")
    result = read_inputs([path])
    assert result.trades.height == 1
    assert sorted(result.rejected["reason"]) == [
        "amount 1e-320 is below what any market prints (min 1e-18)",
        "price 1e+308 is beyond what any market prints (max 1e12)",
    ]


def test_the_exchange_source_refuses_the_same_values() -> None:
    """ccxt trades come through the same rule, with `ts` still in epoch µs."""
    good = {"timestamp": T0_MS, "symbol": "X/Y", "price": 1.0, "amount": 1.0, "side": "buy", "id": 1}
    trades = [good, good | {"price": 1e308}, good | {"timestamp": 1}, good | {"amount": 1e-320}]
    out = normalise_trades(trades, source="test:rest")
    assert [row.ts for row in out.rows] == [T0_MS * 1000]
    assert [letter["reason"] for letter in out.rejected] == [
        "price 1e+308 is beyond what any market prints (max 1e12)",
        "timestamp 1970-01-01 00:00:00.001 UTC is before 2009-01-01, the earliest plausible time for trades",
        "amount 1e-320 is below what any market prints (min 1e-18)",
    ]


# --- times ---------------------------------------------------------------------------------------


def read_ccxt(tmp_path: Path, stamps: list[str], name: str = "t.csv") -> ReadResult:
    path = tmp_path / name
    rows = "".join(f"X/Y,{stamp},buy,1,1\n" for stamp in stamps)
    path.write_text("symbol,timestamp,side,price,amount\n" + rows)
    return read_inputs([path])


def test_epoch_zero_minus_one_fractions_and_negatives_are_bad_rows(tmp_path: Path) -> None:
    result = read_ccxt(tmp_path, ["0", "-1", "1.5", "-1600000000000", str(T0_MS)])
    assert result.trades["ts"].to_list() == [T0]
    assert sorted(result.rejected["reason"]) == [
        "timestamp 1919-04-20 11:33:20 UTC is before 2009-01-01, the earliest plausible time for trades",
        "timestamp 1969-12-31 23:59:59.999 UTC is before 2009-01-01, the earliest plausible time for trades",
        "timestamp 1970-01-01 00:00:00 UTC is before 2009-01-01, the earliest plausible time for trades",
        "timestamp 1970-01-01 00:00:00.001500 UTC is before 2009-01-01, the earliest plausible time for trades",
    ]


def test_times_at_the_bounds(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    at_floor = int(datetime(2009, 1, 1, tzinfo=UTC).timestamp() * 1000)
    soon, later = (int((now + timedelta(seconds=s)).timestamp() * 1000) for s in (60, 3600))
    result = read_ccxt(tmp_path, [str(at_floor - 1), str(at_floor), str(soon), str(later)])
    assert result.trades["ts"].to_list() == [utc(2009, 1, 1), datetime.fromtimestamp(soon / 1000, UTC)]
    assert [reason.split(" UTC ")[1] for reason in result.rejected["reason"]] == [
        "is before 2009-01-01, the earliest plausible time for trades",
        "is more than 300 s in the future",
    ]


def test_bars_reach_back_to_1900_for_index_history() -> None:
    got = reasons_of(
        "bars", [bar(ts=utc(1927, 12, 30)), bar(ts=utc(1900, 1, 1)), bar(ts=utc(1899, 12, 31))], BAR_SCHEMA
    )
    assert got == [
        None,
        None,
        "timestamp 1899-12-31 00:00:00 UTC is before 1900-01-01, the earliest plausible time for bars",
    ]


def test_orders_and_book_updates_start_in_2009() -> None:
    assert reasons_of("orders", [order(ts=utc(2008, 12, 31))], ORDER_SCHEMA) == [
        "timestamp 2008-12-31 00:00:00 UTC is before 2009-01-01, the earliest plausible time for order events"
    ]
    assert reasons_of("book", [level(ts=utc(2008, 12, 31))], BOOK_SCHEMA) == [
        "timestamp 2008-12-31 00:00:00 UTC is before 2009-01-01, the earliest plausible time for book updates"
    ]


def test_time_bounds_come_from_the_input_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TAPEWATCH_CONFIG", raising=False)
    config = tmp_path / "t.toml"
    config.write_text("[input]\nearliest = 2020-01-01\nearliest_bars = 1950-01-01\nmax_future_skew_s = 0\n")
    load_settings(config)
    assert reasons_of("trades", [trade(ts=utc(2019, 12, 31)), trade(ts=utc(2020, 1, 1))], TRADE_SCHEMA) == [
        "timestamp 2019-12-31 00:00:00 UTC is before 2020-01-01, the earliest plausible time for trades",
        None,
    ]
    assert reasons_of("bars", [bar(ts=utc(1949, 12, 31))], BAR_SCHEMA)[0].endswith("before 1950-01-01, "
        "the earliest plausible time for bars")  # fmt: skip
    ahead = datetime.now(UTC) + timedelta(seconds=30)
    assert reasons_of("trades", [trade(ts=ahead)], TRADE_SCHEMA)[0].endswith("is more than 0 s in the future")


def test_explicit_bounds_beat_those_in_force() -> None:
    bounds = TimeBounds(utc(2024, 6, 1), utc(2024, 6, 1), 300.0)
    assert reasons_of("trades", [trade()], TRADE_SCHEMA, bounds)[0].startswith(
        "timestamp 2024-01-01 00:00:00"
    )
    assert reasons_of("trades", [trade()], TRADE_SCHEMA) == [None]


def test_the_stream_engine_takes_now_when_it_checks_not_when_it_was_imported() -> None:
    validity.use_time_bounds(TimeBounds(utc(2009, 1, 1), utc(1900, 1, 1), 0.0))
    just_now = conform(pl.DataFrame([trade(ts=datetime.now(UTC))]), TRADE_SCHEMA)
    assert not just_now.select(TRADES.malformed).item()
    ahead = conform(pl.DataFrame([trade(ts=datetime.now(UTC) + timedelta(minutes=1))]), TRADE_SCHEMA)
    assert ahead.select(TRADES.malformed).item()


# --- epoch units ---------------------------------------------------------------------------------


def test_a_file_of_epoch_seconds_is_read_as_seconds_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("symbol,timestamp,side,price,amount\nX/Y,1700000000,buy,1,1\nX/Y,1700000001,buy,1,1\n")
    converted = convert_ccxt(pl.read_csv(path), FileContext(open_source(path), "ccxt-trades", None, None))
    assert converted.notes == ("timestamps read as epoch seconds (column 'timestamp')",)
    result = read_inputs([path])
    assert result.trades["ts"].to_list() == [utc(2023, 11, 14, 22, 13, 20), utc(2023, 11, 14, 22, 13, 21)]
    assert result.notes == {str(path): ["timestamps read as epoch seconds (column 'timestamp')"]}


def test_a_millisecond_file_is_unchanged_and_says_nothing(tmp_path: Path) -> None:
    result = read_ccxt(tmp_path, [str(T0_MS), str(T0_MS + 1)])
    assert result.trades["ts"].to_list() == [T0, T0 + timedelta(milliseconds=1)]
    assert result.notes == {}


@pytest.mark.parametrize(
    ("raw", "expected", "seconds"),
    [
        (pl.Series([1700000000.25, 1700000001.5]), [utc(2023, 11, 14, 22, 13, 20, 250000), utc(2023, 11, 14, 22, 13, 21, 500000)], True),
        (pl.Series(["1700000000", "1700000000.000001"]), [utc(2023, 11, 14, 22, 13, 20), utc(2023, 11, 14, 22, 13, 20, 1)], True),
        (pl.Series(["1700000000.5", "nan"]), [utc(2023, 11, 14, 22, 13, 20, 500000), None], True),
        # Binance 2025: ms and µs in one column, each value by its own magnitude
        (pl.Series([T0_MS, T0_MS * 1000]), [T0, T0], False),
        # a seconds file with a stray millisecond value: that one keeps the per-value rule
        (pl.Series([1700000000, 1700000001, T0_MS]), [utc(2023, 11, 14, 22, 13, 20), utc(2023, 11, 14, 22, 13, 21), T0], True),
        # mostly milliseconds with tiny junk: the bulk decides, junk stays in 1970 for the rules to refuse
        (pl.Series([T0_MS, T0_MS, 5]), [T0, T0, utc(1970, 1, 1, 0, 0, 0, 5000)], False),
    ],
)  # fmt: skip
def test_the_unit_is_decided_per_column(raw: pl.Series, expected: list, seconds: bool) -> None:
    parsed = parse_times(raw)
    assert parsed.values.dtype == TIME
    assert (parsed.values.to_list(), parsed.seconds) == (expected, seconds)


def test_dates_are_not_epochs() -> None:
    parsed = parse_times(pl.Series(["2024-01-01", "2024-01-02"]))
    assert (parsed.values.to_list(), parsed.seconds) == ([T0, utc(2024, 1, 2)], False)
