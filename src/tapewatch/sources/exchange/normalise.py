"""ccxt's unified trades and candles → Tapewatch's record frames, with a reason for each one refused.

REST backfill and live streams both come through here, so a trade looks the same
in the lake whichever way it arrived (which is what lets the lake drop the overlap).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from tapewatch.records import BAR_SCHEMA, BOOK_SCHEMA, TIME, TRADE_SCHEMA, conform

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


@dataclass
class Normalised:
    """Trades that became rows, and those refused with their reason."""

    rows: list[TradeRow] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)


def normalise_trades(
    trades: Iterable[dict[str, Any]], *, source: str, symbols: Collection[str] | None = None
) -> Normalised:
    """Check and convert ccxt trades; `symbols`, when given, are the only ones expected."""
    out = Normalised()
    for trade in trades:
        row, reason = _trade_row(trade, symbols)
        if row is None:
            out.rejected.append({"source": source, "reason": reason, "raw": trade.get("info", trade)})
        else:
            out.rows.append(row)
    return out


def _trade_row(trade: dict[str, Any], symbols: Collection[str] | None) -> tuple[TradeRow | None, str]:
    symbol = trade.get("symbol")
    if not symbol:
        return None, "no symbol"
    if symbols is not None and symbol not in symbols:
        return None, f"unknown symbol '{symbol}'"
    timestamp = trade.get("timestamp")
    if not isinstance(timestamp, int) or timestamp <= 0:
        return None, f"timestamp missing or invalid: {timestamp!r}"
    price, amount = _positive(trade.get("price")), _positive(trade.get("amount"))
    if price is None:
        return None, f"price missing or not positive: {trade.get('price')!r}"
    if amount is None:
        return None, f"amount missing or not positive: {trade.get('amount')!r}"
    side = trade.get("side")
    trade_id = trade.get("id")
    return (
        TradeRow(
            ts=timestamp * 1000,
            symbol=symbol,
            price=price,
            amount=amount,
            side=side if side in ("buy", "sell") else None,
            trade_id=None if trade_id is None else str(trade_id),
        ),
        "",
    )


def _positive(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def trades_frame(rows: Iterable[TradeRow], venue: str) -> pl.DataFrame:
    """TRADE_SCHEMA frame of normalised rows (buyer/seller are null: crypto venues do not publish them)."""
    records = [(r.ts, r.symbol, r.price, r.amount, r.side, r.trade_id) for r in rows]
    return _frame(records, _TRADE_COLUMNS, TRADE_SCHEMA, venue=venue)


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
