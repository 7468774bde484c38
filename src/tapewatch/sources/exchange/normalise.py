"""ccxt's unified trades and candles → Tapewatch's record frames, with a reason for each one refused.

REST backfill and live streams both come through here, so a trade looks the same
in the lake whichever way it arrived (which is what lets the lake drop the overlap).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from tapewatch.io.aggregates import range_id
from tapewatch.io.deadletter import letter
from tapewatch.records import BAR_SCHEMA, BOOK_SCHEMA, TIME, TRADE_SCHEMA, conform
from tapewatch.validity import TS_GIVEN, Problems, first_reason, trade_problems

_TRADE_COLUMNS = ("ts", "symbol", "price", "amount", "side", "trade_id")


@dataclass
class TradeRow:
    """One normalised trade before it joins a frame; `ts` in epoch microseconds."""

    ts: int
    symbol: str
    price: float
    amount: float
    side: str | None
    trade_id: str | None
    count: int = 1  # trades the record stands for: OKX's live messages aggregate them (ids end at trade_id)


@dataclass
class Normalised:
    """Trades that became rows, and those refused (dead letters: source, row, reason, record)."""

    rows: list[TradeRow] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)


def normalise_trades(
    trades: Iterable[dict[str, Any]], *, source: str, symbols: Collection[str] | None = None
) -> Normalised:
    """Check and convert ccxt trades; `symbols`, when given, are the only ones expected.

    The checks are the trade rule every source applies (`tapewatch.validity`), run once
    on the whole batch; refused trades become dead letters (`io.deadletter.letter`)
    holding the exchange's own record.
    """
    trades = list(trades)
    if not trades:
        return Normalised()
    frame = _candidates(trades)
    checks = [*_expected_symbols(symbols), *trade_problems(frame.columns)]
    reasons = frame.select(first_reason(checks)).to_series().to_list()
    out = Normalised()
    for trade, values, reason in zip(trades, frame.iter_rows(), reasons, strict=True):
        if reason is None:
            out.rows.append(TradeRow(*values[: len(_TRADE_COLUMNS)], count=_count(trade)))
        else:
            out.rejected.append(letter(source, reason, trade.get("info", trade)))
    return out


def _candidates(trades: list[dict[str, Any]]) -> pl.DataFrame:
    """The trades' fields as trade columns, read leniently: what cannot be read is null, for the rule to name.

    `ts` stays in epoch µs (what `TradeRow` holds); a timestamp that is not a positive
    integer of milliseconds counts as given but unparsable.
    """
    stamps = [trade.get("timestamp") for trade in trades]
    return pl.DataFrame(
        {
            "ts": [v * 1000 if type(v) is int and v > 0 else None for v in stamps],
            "symbol": [trade.get("symbol") or None for trade in trades],
            "price": [_number(trade.get("price")) for trade in trades],
            "amount": [_number(trade.get("amount")) for trade in trades],
            "side": [trade.get("side") for trade in trades],
            "trade_id": [None if trade.get("id") is None else str(trade.get("id")) for trade in trades],
            TS_GIVEN: [v is not None for v in stamps],
        },
        schema={
            "ts": pl.Int64,
            "symbol": pl.String,
            "price": pl.Float64,
            "amount": pl.Float64,
            "side": pl.String,
            "trade_id": pl.String,
            TS_GIVEN: pl.Boolean,
        },
    ).with_columns(pl.col("side").str.strip_chars().str.to_lowercase())


def _count(trade: dict[str, Any]) -> int:
    """How many trades a ccxt trade stands for: the venue's `count` where it sends one (OKX), else 1."""
    info = trade.get("info")
    count = str(info.get("count", "")) if isinstance(info, dict) else ""
    return max(int(count), 1) if count.isdigit() else 1


def _expected_symbols(symbols: Collection[str] | None) -> Problems:
    """The source's own check: a trade of a symbol it did not subscribe to."""
    if symbols is None:
        return []
    symbol = pl.col("symbol")
    unknown = (symbol.is_not_null() & ~symbol.is_in(list(symbols))).fill_null(False)
    return [(unknown, pl.format("unknown symbol '{}'", symbol))]


def _number(value: Any) -> float | None:
    """A number ccxt gave as a number or text; None when it is neither (the rule then names the field)."""
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def trades_frame(rows: Iterable[TradeRow], venue: str) -> pl.DataFrame:
    """TRADE_SCHEMA frame of normalised rows (buyer/seller are null: crypto venues do not publish them).

    A row standing for several trades (OKX's live messages) gets the range of ids it covers
    as its id (`io.aggregates`), so the lake can tell it from the single trade of its last id.
    """
    records = [(r.ts, r.symbol, r.price, r.amount, r.side, _record_id(r)) for r in rows]
    return _frame(records, _TRADE_COLUMNS, TRADE_SCHEMA, venue=venue)


def _record_id(row: TradeRow) -> str | None:
    if row.count > 1 and row.trade_id is not None and row.trade_id.isdigit():
        return range_id(int(row.trade_id), row.count)
    return row.trade_id


def bars_frame(candles: list[list[Any]], venue: str, symbol: str, interval: str) -> pl.DataFrame:
    """BAR_SCHEMA frame of ccxt OHLCV rows `[ts_ms, open, high, low, close, volume]`."""
    records = [(int(row[0]) * 1000, *row[1:6]) for row in candles]
    columns = ("ts", "open", "high", "low", "close", "volume")
    return _frame(records, columns, BAR_SCHEMA, venue=venue, symbol=symbol, interval=interval)


def book_frame(levels: list[tuple[int, str, str, float, float]], venue: str) -> pl.DataFrame:
    """BOOK_SCHEMA frame of `(ts_us, symbol, side, price, amount)` level updates."""
    return _frame(levels, ("ts", "symbol", "side", "price", "amount"), BOOK_SCHEMA, venue=venue)


def _frame(
    records: list[tuple[Any, ...]], columns: tuple[str, ...], schema: dict[str, pl.DataType], **constants: str
) -> pl.DataFrame:
    """Rows with `ts` in epoch µs, plus columns that are the same on every row, in the record schema."""
    types = {name: pl.Int64() if name == "ts" else schema[name] for name in columns}
    frame = pl.DataFrame(records, schema=types, orient="row")
    return conform(
        frame.with_columns(pl.col("ts").cast(TIME), *(pl.lit(v).alias(k) for k, v in constants.items())),
        schema,
    )
