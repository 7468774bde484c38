"""The record schemas every part of Tapewatch exchanges, and the Alert model.

Readers normalise into these frames; detectors read only these columns; the
store and the API serialise Alert. Changing a field here is a contract change
(see DESIGN.md), so the schemas live in one place.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, Field, field_serializer

TIME = pl.Datetime("us", "UTC")
"""Every timestamp is UTC with microsecond resolution (Binance spot data has µs since 2025)."""

TRADE_SCHEMA: dict[str, pl.DataType] = {
    "ts": TIME,
    "venue": pl.String(),
    "symbol": pl.String(),
    "price": pl.Float64(),
    "amount": pl.Float64(),
    "side": pl.String(),  # taker side: "buy", "sell" or null when the venue does not say
    "trade_id": pl.String(),
    "buyer": pl.String(),
    "seller": pl.String(),
}
TRADE_REQUIRED = ("ts", "symbol", "price", "amount")

BAR_SCHEMA: dict[str, pl.DataType] = {
    "ts": TIME,  # bucket start
    "venue": pl.String(),
    "symbol": pl.String(),
    "interval": pl.String(),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
    "quote_volume": pl.Float64(),
    "trades": pl.Int64(),
}
BAR_REQUIRED = ("ts", "open", "high", "low", "close", "volume")

BOOK_SCHEMA: dict[str, pl.DataType] = {
    "ts": TIME,
    "venue": pl.String(),
    "symbol": pl.String(),
    "side": pl.String(),  # "bid" / "ask"
    "price": pl.Float64(),
    "amount": pl.Float64(),  # new total at that level; 0 removes it
}

ORDER_SCHEMA: dict[str, pl.DataType] = {
    "ts": TIME,
    "venue": pl.String(),
    "symbol": pl.String(),
    "order_id": pl.String(),
    "account": pl.String(),
    "side": pl.String(),  # "buy" / "sell"
    "price": pl.Float64(),
    "amount": pl.Float64(),
    "action": pl.String(),  # "new" / "cancel" / "fill" / "modify"
}

BOOK_EVENT_SCHEMA: dict[str, pl.DataType] = {
    "ts": TIME,
    "venue": pl.String(),
    "symbol": pl.String(),
    "event": pl.String(),  # "level" (an L2 update) or "trade" (a print)
    "side": pl.String(),  # bid/ask for levels, the taker side buy/sell (or null) for trades
    "price": pl.Float64(),
    "amount": pl.Float64(),  # level: new total (0 removes it); trade: its size
}
"""L2 updates and trades of the same symbols in one time-ordered frame: whether a level that
vanished was traded away or pulled can only be told with the prints beside it."""

POST_SCHEMA: dict[str, pl.DataType] = {
    "ts": TIME,
    "source": pl.String(),
    "channel": pl.String(),
    "author": pl.String(),
    "text": pl.String(),
    "symbols": pl.List(pl.String()),
}

TRADE_SIDES = ("buy", "sell")
BOOK_SIDES = ("bid", "ask")
BOOK_EVENTS = ("level", "trade")
ORDER_ACTIONS = ("new", "cancel", "fill", "modify")

Typology = Literal[
    "pump_and_dump",
    "wash_trading",
    "spoofing",
    "layering",
    "volume_anomaly",
    "price_anomaly",
    "amplitude_anomaly",
    "bar_anomaly",
    "social_hype",
]
Severity = Literal["low", "medium", "high", "critical"]


def empty_frame(schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """A zero-row frame with the given schema, so empty inputs flow like any other."""
    return pl.DataFrame(schema=schema)


def conform(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Cast to the schema's types, add missing optional columns as nulls, drop the rest, fix the order."""
    if frame.height == 0:
        # Literals on a frame without rows or columns would broadcast to one row of nulls.
        return pl.DataFrame(schema=schema)
    columns = []
    for name, dtype in schema.items():
        if name in frame.columns:
            columns.append(pl.col(name).cast(dtype))
        else:
            columns.append(pl.lit(None, dtype=dtype).alias(name))
    return frame.select(columns)


def severity_for(score: float) -> Severity:
    """Map a 0–1 score to a severity band; one mapping for every detector so severities compare."""
    if score >= 0.9:
        return "critical"
    if score >= 0.7:
        return "high"
    if score >= 0.4:
        return "medium"
    return "low"


def alert_id(detector: str, venue: str, symbol: str, start: datetime, part: str | None = None) -> str:
    """Deterministic id: a replayed or restarted run produces the same id, so nothing duplicates.

    `part` tells apart alerts one detector can raise on one symbol at one moment
    (a bar detector's candle sizes: the 1h and the 1d candle of midnight).
    """
    key = f"{detector}|{venue}|{symbol}|{to_iso(start)}" + (f"|{part}" if part else "")
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def to_iso(moment: datetime) -> str:
    """ISO-8601 UTC with a trailing Z and millisecond precision (or µs where present)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    spec = "microseconds" if moment.microsecond % 1000 else "milliseconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


UNSETTLED_FOLLOWUP = frozenset({"pending", "open"})
"""A follow-up section (`followup[name]["status"]`) with one of these statuses may still change as
data arrive; any other status is settled: the horizon has passed and nothing later can change it."""


def newer_followup(stored: dict[str, Any], incoming: dict[str, Any]) -> dict[str, Any]:
    """`stored` updated by `incoming`, section by section, except that a settled section is never
    replaced by an unsettled one: at-least-once delivery can bring an alert's earlier copy (still
    pending) after its settled update, and the earlier copy must not undo what was learnt."""
    merged = dict(stored)
    for name, section in incoming.items():
        kept = stored.get(name)
        if _status(kept) not in (None, *UNSETTLED_FOLLOWUP) and _status(section) in UNSETTLED_FOLLOWUP:
            continue
        merged[name] = section
    return merged


def _status(section: Any) -> str | None:
    return section.get("status") if isinstance(section, dict) else None


class Alert(BaseModel):
    """One detection: what, where, when it was decided, how sure, and the numbers behind it.

    `detected_at` is the timestamp of the last market event the decision used;
    nothing after it influenced the alert (detectors are causal). `followup`
    holds what was learnt later (e.g. whether the dump came) and is the only
    part allowed to depend on data after `detected_at`.
    """

    id: str
    typology: str
    venue: str
    symbol: str
    start: datetime
    end: datetime
    detected_at: datetime
    score: float = Field(ge=0.0, le=1.0)
    severity: Severity
    detector: str
    evidence: dict[str, Any] = Field(default_factory=dict)
    followup: dict[str, Any] = Field(default_factory=dict)
    timing: dict[str, Any] = Field(default_factory=dict)
    """Live runs only: when the last trade used arrived and when the alert was emitted (latency)."""

    @classmethod
    def build(
        cls,
        *,
        detector: str,
        typology: str,
        venue: str,
        symbol: str,
        start: datetime,
        end: datetime,
        detected_at: datetime,
        score: float,
        evidence: dict[str, Any],
        followup: dict[str, Any] | None = None,
        part: str | None = None,
    ) -> Alert:
        """Create an alert with its deterministic id (see `alert_id` for `part`) and the severity its
        score implies."""
        score = min(1.0, max(0.0, float(score)))
        return cls(
            id=alert_id(detector, venue, symbol, start, part),
            typology=typology,
            venue=venue,
            symbol=symbol,
            start=start,
            end=end,
            detected_at=detected_at,
            score=round(score, 4),
            severity=severity_for(score),
            detector=detector,
            evidence=evidence,
            followup=followup or {},
        )

    @field_serializer("start", "end", "detected_at")
    def _iso(self, moment: datetime) -> str:
        return to_iso(moment)

    def to_json_line(self) -> str:
        """One JSON object on one line, as `tapewatch detect` writes it (`timing` only when measured)."""
        fields = self.model_dump(mode="json", exclude=None if self.timing else {"timing"})
        return json.dumps(fields, separators=(",", ":"), default=str)
