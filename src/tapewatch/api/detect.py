"""POST /detect: run the batch detectors on trades and/or bars sent in the request.

Rows follow the record layouts (`records.TRADE_SCHEMA`, `records.BAR_SCHEMA`)
and the rules every source applies: a time is ISO-8601 (naive = UTC) or an epoch
number whose magnitude tells ms from µs from ns (as `io.timeparse` decides); what
makes a typed row unusable (prices and amounts not positive and finite, an unknown
side, a negative volume, a high below the low) is `tapewatch.validity`'s rule of its
kind, so a row is refused with the words a file's dead letter gives. A bad row is a
422 naming the row and the reason; nothing is skipped silently, since the caller is
there to fix it.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import polars as pl
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

from tapewatch.api.inputs import Name
from tapewatch.config import Settings
from tapewatch.detect.registry import DETECTORS, build_detectors
from tapewatch.durations import parse_duration
from tapewatch.engine.batch import run_batch
from tapewatch.errors import InputError, TapewatchError
from tapewatch.io.symbols import UNKNOWN_VENUE, canonical_symbol
from tapewatch.io.timeparse import NS_FROM, US_FROM
from tapewatch.records import BAR_SCHEMA, TRADE_SCHEMA, Alert, conform, empty_frame
from tapewatch.validity import first_reason, problems

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_ROWS = 1_000_000
DEFAULT_VENUE = "api"
DEFAULT_INTERVAL = "1h"


def row_time(value: Any) -> datetime:
    """A row's `ts`: ISO-8601 text or an epoch number (ms, µs or ns by magnitude), as UTC."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError("expected an ISO-8601 time or epoch milliseconds")  # noqa: TRY004 (pydantic wants it)
    try:
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value.strip())
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        if not math.isfinite(value):
            raise ValueError("expected a finite epoch number")
        micros = value // 1000 if value >= NS_FROM else value if value >= US_FROM else value * 1000
        return EPOCH + timedelta(microseconds=int(micros))
    except (OverflowError, ValueError) as exc:
        raise ValueError(f"expected an ISO-8601 time or epoch milliseconds in range ({exc})") from None


def _interval(text: str) -> str:
    try:
        parse_duration(text, what="interval")
    except TapewatchError as exc:
        raise ValueError(str(exc)) from None
    return text


RowTime = Annotated[
    datetime,
    BeforeValidator(row_time),
    WithJsonSchema(
        {
            "anyOf": [{"type": "string", "format": "date-time"}, {"type": "integer"}],
            "description": "ISO-8601 (naive = UTC) or epoch milliseconds (µs and ns told by magnitude)",
        }
    ),
]
Number = Annotated[float, Field(allow_inf_nan=True)]
"""A JSON number; whether it is usable (positive, finite) is the validity rule's to say."""
Interval = Annotated[
    str, Field(min_length=1, max_length=16, examples=["1m", "1h"]), AfterValidator(_interval)
]
DetectorName = Literal[tuple(DETECTORS)]  # type: ignore[valid-type]
OptionalText = Annotated[str | None, Field(max_length=128, pattern=r"^[^\x00]*$")]


class TradeRow(BaseModel):
    """One trade (`records.TRADE_SCHEMA`); `venue` defaults to the request's."""

    model_config = ConfigDict(extra="ignore")

    ts: RowTime
    venue: Name | None = None
    symbol: Name
    price: Number
    amount: Number
    side: Annotated[str | None, Field(max_length=16, examples=["buy", "sell"])] = None
    trade_id: OptionalText = None
    buyer: OptionalText = None
    seller: OptionalText = None


class BarRow(BaseModel):
    """One candle (`records.BAR_SCHEMA`); `venue` and `interval` default to the request's."""

    model_config = ConfigDict(extra="ignore")

    ts: RowTime
    venue: Name | None = None
    symbol: Name
    interval: Interval | None = None
    open: Number
    high: Number
    low: Number
    close: Number
    volume: Number
    quote_volume: Number | None = None
    trades: Annotated[int, Field(le=2**62)] | None = None


class DetectRequest(BaseModel):
    """Market data to run the detectors on; at least one trade or bar."""

    trades: Annotated[list[TradeRow], Field(max_length=MAX_ROWS)] = []
    bars: Annotated[list[BarRow], Field(max_length=MAX_ROWS)] = []
    venue: Name = Field(DEFAULT_VENUE, description="venue of rows that name none")
    interval: Interval = Field(DEFAULT_INTERVAL, description="interval of bars that name none")
    detectors: list[DetectorName] | None = Field(
        None,
        description="run only these (default: the default detectors; the candle anomaly rules only when "
        "bars are sent)",
    )
    store: bool = Field(False, description="also save the alerts (analyst or admin)")

    @model_validator(mode="after")
    def _some_data(self) -> DetectRequest:
        if not self.trades and not self.bars:
            raise ValueError("expected at least one row in 'trades' or 'bars'")
        return self


class DetectResult(BaseModel):
    """The alerts found, in detection order, and what was read; `stored` counts new ones when asked to save."""

    alerts: list[Alert]
    trades: int
    bars: int
    stored: int | None = None


def frames(request: DetectRequest) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The request's rows as trade and bar frames in the engine's order (venue, symbol, ts).

    Raises InputError (422) naming the first refused rows and their reasons.
    """
    trades = _frame(
        [row.model_dump() | {"venue": row.venue or request.venue} for row in request.trades], TRADE_SCHEMA
    )
    bars = _frame(
        [
            row.model_dump()
            | {"venue": row.venue or request.venue, "interval": row.interval or request.interval}
            for row in request.bars
        ],
        BAR_SCHEMA,
    )
    refused = [*_refused("trades", trades), *_refused("bars", bars)]
    if refused:
        more = f" (and {len(refused) - SHOWN} more)" if len(refused) > SHOWN else ""
        raise InputError("; ".join(refused[:SHOWN]) + more)
    return _sorted(trades), _sorted(bars)


SHOWN = 3
"""Refused rows named in a 422 before the rest are counted."""


def _refused(kind: str, frame: pl.DataFrame) -> list[str]:
    """`body: trades[i]: reason` for each row of `frame` (request order) the kind's rule refuses."""
    reasons = frame.select(first_reason(problems(kind, frame.columns))).with_row_index("i")
    return [f"body: {kind}[{i}]: {why}" for i, why in reasons.drop_nulls("reason").iter_rows()]


def _frame(rows: list[dict[str, Any]], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """The rows in the record schema, in request order, each symbol in its venue's one spelling
    (`tapewatch.io.symbols`; the default venue is one nobody named)."""
    if not rows:
        return empty_frame(schema)
    columns = {name: [row.get(name) for row in rows] for name in schema}
    venue = pl.col("venue")
    named = pl.when(venue == DEFAULT_VENUE).then(pl.lit(UNKNOWN_VENUE)).otherwise(venue)
    frame = pl.DataFrame(columns, schema=schema).with_columns(canonical_symbol(pl.col("symbol"), named))
    return conform(frame, schema)


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    """The engine's order: venue, symbol (interval for bars), ts."""
    schema = frame.schema
    keys = ["venue", "symbol", "interval", "ts"] if "interval" in schema else ["venue", "symbol", "ts"]
    return frame.sort(keys, maintain_order=True)


def detect(settings: Settings, request: DetectRequest) -> tuple[list[Alert], int, int]:
    """Run the chosen detectors; returns the alerts and the trade and bar counts."""
    trades, bars = frames(request)
    alerts = run_batch(build_detectors(settings, request.detectors, candles=bars.height > 0), trades, bars)
    return alerts, trades.height, bars.height
