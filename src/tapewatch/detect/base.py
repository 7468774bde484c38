"""The one interface every detector implements, in the spirit of scikit-learn/River estimators.

A detector is configured once and then called on normalised frames: `detect(frame)`
gets every symbol at once (sorted by venue, symbol, ts) and returns alerts. It must be
causal — a decision at `detected_at` reads only rows with ts ≤ `detected_at` — so the
batch engine, the streaming engine (the same call on each symbol's recent tail) and
backtests agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol, runtime_checkable

import polars as pl

from tapewatch.durations import parse_duration
from tapewatch.records import TIME, Alert

InputKind = Literal["trades", "bars", "orders", "book"]
"""trades, candles, L3 order events, or L2 updates merged with trades (BOOK_EVENT_SCHEMA)."""
Key = tuple[str, ...]


@dataclass
class DetectorState:
    """What a detector carries from one micro-batch to the next, so the stream decides like the batch.

    The streaming engine calls `detect(tail, state)` on each symbol's recent rows
    (old rows for context plus the new ones). With the state a detector knows
    which rows were already decided (`decided_until`), where each symbol's
    history began (`history_start`, for warm-ups) and its last qualifying moment
    (`last_hit`, for cooldowns that chain across batches). Keys are the
    detector's grouping columns (venue, symbol[, interval]).
    """

    decided_until: dict[Key, datetime] = field(default_factory=dict)
    history_start: dict[Key, datetime] = field(default_factory=dict)
    last_hit: dict[Key, datetime] = field(default_factory=dict)

    def frame(self, key: list[str], only: pl.DataFrame | None = None) -> pl.DataFrame:
        """The state as a frame to join on the key columns; `only` limits it to the keys in that frame."""
        known = set(self.decided_until) | set(self.history_start) | set(self.last_hit)
        if only is not None:
            known &= set(only.select(key).unique().iter_rows())
        keys = sorted(known)
        columns: dict[str, list] = {name: [k[i] for k in keys] for i, name in enumerate(key)}
        columns["decided_until"] = [self.decided_until.get(k) for k in keys]
        columns["history_start"] = [self.history_start.get(k) for k in keys]
        columns["last_hit"] = [self.last_hit.get(k) for k in keys]
        schema = {name: pl.String() for name in key} | {
            "decided_until": TIME,
            "history_start": TIME,
            "last_hit": TIME,
        }
        return pl.DataFrame(columns, schema=schema)

    def undecided(self, rows: pl.LazyFrame, key: list[str], only: pl.DataFrame) -> pl.LazyFrame:
        """The rows whose `ts` is after their key's `decided_until`: what this call has left to decide
        (`only`: the frame of the call, to limit the state to its keys)."""
        decided = self.frame(key, only=only).select(*key, "decided_until")
        return (
            rows.join(decided.lazy(), on=key, how="left")
            .filter(pl.col("decided_until").is_null() | (pl.col("ts") > pl.col("decided_until")))
            .drop("decided_until")
        )

    def advance(self, key: list[str], seen: pl.DataFrame, hits: pl.DataFrame) -> None:
        """Record that every row of `seen` is decided, and the latest qualifying moment in `hits`."""
        for row in seen.group_by(key).agg(first=pl.col("ts").min(), last=pl.col("ts").max()).iter_rows():
            name, first, last = tuple(row[: len(key)]), row[-2], row[-1]
            self.history_start.setdefault(name, first)
            self.decided_until[name] = max(last, self.decided_until.get(name, last))
        for row in hits.group_by(key).agg(pl.col("ts").max()).iter_rows():
            self.last_hit[tuple(row[: len(key)])] = row[-1]


@runtime_checkable
class Detector(Protocol):
    """What the engines need to know about a detector."""

    name: str
    typology: str
    needs: InputKind

    lookback: timedelta
    """How much history before a row its decision reads: the stream keeps at least this much."""

    def detect(self, frame: pl.DataFrame, state: DetectorState | None = None) -> list[Alert]:
        """Alerts for every symbol in `frame` (trades, bars, orders or book events, per `needs`).

        Without a state (batch) every row is decided; with one (stream) only rows
        after `state.decided_until`, and the state is advanced.
        """
        ...

    def refresh_followups(self, alerts: list[Alert], frame: pl.DataFrame) -> list[Alert]:
        """The alerts with their follow-ups recomputed from `frame` (data up to now)."""
        ...

    def followup_horizon(self) -> timedelta:
        """How long after `detected_at` the follow-up keeps changing (zero: it never does)."""
        ...


class FinalAlerts:
    """For detectors whose alerts are complete when raised: nothing is learnt after `detected_at`."""

    def followup_horizon(self) -> timedelta:
        """No follow-up."""
        return timedelta(0)

    def refresh_followups(self, alerts: list[Alert], frame: pl.DataFrame) -> list[Alert]:
        """Nothing to refresh: the alerts as they are."""
        return alerts


class CandleDetector(FinalAlerts):
    """What every detector on candles shares: its candle size comes from its settings, it
    reads `lookback_bars` candles, and its alerts are final when raised (no follow-up).

    Subclasses set `name`, `typology`, `settings` (with an `interval`) and `lookback_bars`.
    """

    needs: InputKind = "bars"
    settings: Any

    @property
    def interval(self) -> str:
        """Candle size the engine builds from trades for this detector."""
        return self.settings.interval

    @property
    def lookback_bars(self) -> int:
        """Candles a decision reads, the current one included."""
        raise NotImplementedError

    @property
    def lookback(self) -> timedelta:
        """The same in time, for the trade tail a stream keeps to build its candles."""
        return parse_duration(self.settings.interval, what="interval") * (self.lookback_bars + 1)

    def candle_alert(self, row: dict[str, Any], score: float, evidence: dict[str, Any]) -> Alert:
        """An alert on one candle: it spans the candle, its id carries the candle size, and it is
        decided when the candle closes (at the trade that closed it, when built from trades)."""
        end = row["ts"] + parse_duration(row["interval"] or self.settings.interval, what="interval")
        return Alert.build(
            detector=self.name,  # type: ignore[attr-defined]
            typology=self.typology,  # type: ignore[attr-defined]
            venue=row["venue"],
            symbol=row["symbol"],
            start=row["ts"],
            part=row["interval"],
            end=end,
            detected_at=row.get("last_trade_ts") or end,
            score=score,
            evidence={"interval": row["interval"], **evidence},
        )


class BarDetector(Detector, Protocol):
    """A detector on candles also says which candle size to build when the input is trades."""

    interval: str
