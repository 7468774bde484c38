"""The market around an alert, from the lake: trades and 1-minute candles for the console's chart.

The window runs from 30 minutes before the alert starts to 30 minutes after it
ends, clipped to its last 24 hours, so a chart always shows the run-up and the
aftermath at a size a browser can draw. Trades beyond `MAX_TRADES` are thinned
evenly (the candles still use all of them). With no trades, stored candles of
the finest interval are used; with nothing at all, empty lists and a note.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
from pydantic import BaseModel

from tapewatch.durations import parse_duration
from tapewatch.io.derive import trades_to_bars
from tapewatch.io.lake import Lake
from tapewatch.records import Alert

MARGIN = timedelta(minutes=30)
MAX_SPAN = timedelta(hours=24)
MAX_TRADES = 5_000
CANDLE_INTERVAL = "1m"
CANDLE_COLUMNS = ["ts", "open", "high", "low", "close", "volume"]


class TradePoint(BaseModel):
    """One trade, as the chart plots it."""

    ts: datetime
    price: float
    amount: float
    side: str | None


class Candle(BaseModel):
    """One candle (1 minute when built from trades)."""

    ts: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float


class MarketView(BaseModel):
    """What the chart needs: the window, its trades (maybe thinned), candles, and a note when data is short."""

    alert_id: str
    venue: str
    symbol: str
    start: datetime
    end: datetime
    interval: str | None
    trades: list[TradePoint]
    trades_total: int
    candles: list[Candle]
    note: str | None = None


def market_window(alert: Alert) -> tuple[datetime, datetime, bool]:
    """[start, end) of the chart around an alert, and whether it had to be clipped."""
    start, end = alert.start - MARGIN, alert.end + MARGIN
    if end - start > MAX_SPAN:
        return end - MAX_SPAN, end, True
    return start, end, False


def market_view(lake: Lake, alert: Alert) -> MarketView:
    """Trades and candles of the alert's venue and symbol in its window."""
    start, end, clipped = market_window(alert)
    trades = lake.read("trades", venue=alert.venue, symbol=alert.symbol, start=start, end=end)
    notes = ["window clipped to its last 24 hours"] if clipped else []
    interval: str | None = CANDLE_INTERVAL
    if trades.height:
        candles = trades_to_bars(trades, CANDLE_INTERVAL)
    else:
        candles, interval = _stored_candles(lake, alert, start, end)
        notes.append("no trades in the lake for this window")
        if interval is None:
            notes.append("no candles either: nothing to chart")
    shown = trades
    if trades.height > MAX_TRADES:
        step = -(-trades.height // MAX_TRADES)
        shown = trades.gather_every(step)
        notes.append(f"trades thinned to every {step}th of {trades.height:,}; candles use all of them")
    return MarketView(
        alert_id=alert.id,
        venue=alert.venue,
        symbol=alert.symbol,
        start=start,
        end=end,
        interval=interval,
        trades=shown.select("ts", "price", "amount", "side").to_dicts(),  # type: ignore[arg-type]
        trades_total=trades.height,
        candles=candles.select(CANDLE_COLUMNS).to_dicts(),  # type: ignore[arg-type]
        note="; ".join(notes) or None,
    )


def _stored_candles(
    lake: Lake, alert: Alert, start: datetime, end: datetime
) -> tuple[pl.DataFrame, str | None]:
    """The lake's own candles of the finest interval stored for the window, and that interval."""
    bars = lake.read("bars", venue=alert.venue, symbol=alert.symbol, start=start, end=end)
    intervals = [value for value in bars["interval"].unique().to_list() if value]
    if not intervals:
        return bars.clear(), None
    finest = min(intervals, key=lambda value: parse_duration(value, what="interval"))
    return bars.filter(pl.col("interval") == finest), finest
