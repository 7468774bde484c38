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
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

import polars as pl

from tapewatch.durations import parse_duration
from tapewatch.records import TIME, Alert

InputKind = Literal["trades", "bars", "orders", "book"]
"""trades, candles, L3 order events, or L2 updates merged with trades (BOOK_EVENT_SCHEMA)."""
Key = tuple[str, ...]


Rows = TypeVar("Rows", pl.DataFrame, pl.LazyFrame)
"""An eager or lazy frame: the state's filters give back what they were given."""


@dataclass
class DetectorState:
    """What a detector carries from one micro-batch to the next, so the stream decides like the batch.

    The streaming engine calls `detect(tail, state)` on each symbol's recent rows
    (old rows for context plus the new ones). With the state a detector knows
    which rows were already decided (`decided_until`), where each symbol's
    history began (`history_start`, for warm-ups) and its last qualifying moment
    (`last_hit`, for cooldowns that chain across batches). Keys are the
    detector's grouping columns (venue, symbol[, interval]).

    The filters below are the bookkeeping every detector needs; a batch call
    runs them on an empty state (`state or DetectorState()`): nothing decided
    before, no older history, no earlier hit, so batch and stream share one
    code path. Each filter takes `at`, the column (or expression, of TIME
    dtype) holding the moment a row is decided, where that is not `ts`: a
    chunk's close, a window's end.
    """

    decided_until: dict[Key, datetime] = field(default_factory=dict)
    history_start: dict[Key, datetime] = field(default_factory=dict)
    last_hit: dict[Key, datetime] = field(default_factory=dict)
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)
    """A detector's running aggregates (per-minute counts, baselines, …), owned and named by it, so
    a stream step reads the new rows plus a short raw window instead of its whole lookback."""
    raw_lookback: timedelta | None = None
    """Set by a detector whose `tables` carry the older history: how many raw rows before each
    symbol's newest decided row its next call still reads (None: its whole `lookback`)."""

    MOMENTS = ("decided_until", "history_start", "last_hit")

    def moments_frame(self) -> pl.DataFrame:
        """The three moment maps as one frame (field, key, at): what a checkpoint stores."""
        rows = [
            (name, list(key), moment) for name in self.MOMENTS for key, moment in getattr(self, name).items()
        ]
        schema = {"field": pl.String(), "key": pl.List(pl.String()), "at": TIME}
        return pl.DataFrame(rows, schema=schema, orient="row")

    @classmethod
    def from_frames(
        cls, moments: pl.DataFrame, tables: dict[str, pl.DataFrame], raw_lookback: timedelta | None
    ) -> DetectorState:
        """The state `moments_frame`, `tables` and `raw_lookback` were taken from."""
        state = cls(tables=dict(tables), raw_lookback=raw_lookback)
        for name, key, moment in moments.iter_rows():
            getattr(state, name)[tuple(key)] = moment
        return state

    def undecided(self, rows: Rows, key: list[str], at: str | pl.Expr = "ts") -> Rows:
        """The rows whose moment `at` is after their key's `decided_until`: what this call has left to decide.

        A stream's tail repeats rows an earlier call decided (they are context for
        the new ones); deciding them again would raise their alerts twice.
        """
        moment = _column(at)
        joined = _with_known(rows, self.decided_until, key, "_decided_until")
        if joined is None:
            return rows
        after = pl.col("_decided_until").is_null() | (moment > pl.col("_decided_until"))
        return joined.filter(after).drop("_decided_until")

    def history_starts(self, seen: pl.DataFrame | pl.LazyFrame, key: list[str]) -> pl.DataFrame:
        """Where each key's history began (`history_start`): its first `ts` in `seen` (this call's rows,
        or any frame holding each key's first one), or earlier where the state saw older rows."""
        first = seen.lazy().group_by(key).agg(history_start=pl.col("ts").min()).collect()
        known = _with_known(first, self.history_start, key, "_known")
        if known is None:
            return first
        return known.select(*key, history_start=pl.min_horizontal("history_start", "_known"))

    def warmed_up(
        self,
        rows: Rows,
        key: list[str],
        warmup: timedelta,
        seen: pl.DataFrame | pl.LazyFrame,
        at: str | pl.Expr = "ts",
    ) -> Rows:
        """The rows at least `warmup` after their key's history began (see `history_starts`).

        A baseline read over less history than it needs is noise. A stream's tail
        starts later than the data, so the start must come from the state for the
        stream to wait exactly as long as the batch.
        """
        starts = self.history_starts(seen, key).rename({"history_start": "_history_start"})
        return (
            rows.join(_like(starts, rows), on=key, how="left", maintain_order="left")
            .filter(_column(at) >= pl.col("_history_start") + warmup)
            .drop("_history_start")
        )

    def cooled_down(self, hits: Rows, key: list[str], cooldown: timedelta, at: str | pl.Expr = "ts") -> Rows:
        """The hits more than `cooldown` after their key's previous hit, in this call or (`last_hit`)
        an earlier one: the first moment of each run of qualifying moments.

        A pump or a wash group qualifies at many moments in a row; it is one fact
        for an analyst, and the key re-arms only after a quiet spell of `cooldown`
        with no qualifying moment. The chain runs over every hit, not only the
        alerts, so advance the state with all of them.
        """
        moment = _column(at)
        hits = hits.sort(*key, moment, maintain_order=True)
        previous = moment.shift(1).over(key)
        joined = _with_known(hits, self.last_hit, key, "_last_hit")
        if joined is not None:
            hits, previous = joined, previous.fill_null(pl.col("_last_hit"))
        gap = moment - previous
        kept = hits.filter(gap.is_null() | (gap > cooldown))
        return kept if joined is None else kept.drop("_last_hit")

    def spaced(self, hits: pl.DataFrame, key: list[str], window: timedelta, at: str = "ts") -> pl.DataFrame:
        """The hits at least `window` after their key's last alert, in this call or (`last_hit`) an earlier
        one: one alert per window of a run.

        For patterns that repeat without a quiet spell (a spoofer's cycles, every few
        minutes for hours): a cooldown chained over every hit would keep that run to
        one alert however long it lasts; this reports it again each window. The chain
        runs over the alerts only, so advance the state with them. Greedy, so a loop
        (hits are few). Among hits at one moment the first in `hits` wins.
        """
        hits = hits.sort(*key, at, maintain_order=True)
        last = dict(self.last_hit)
        keep: list[bool] = []
        for *name, moment in hits.select(*key, at).iter_rows():
            previous = last.get(tuple(name))
            keep.append(previous is None or moment - previous >= window)
            if keep[-1]:
                last[tuple(name)] = moment
        return hits.filter(pl.Series(keep, dtype=pl.Boolean))

    def advance(self, key: list[str], seen: pl.DataFrame, hits: pl.DataFrame) -> None:
        """Record that every row of `seen` is decided, and the latest qualifying moment in `hits`."""
        for row in seen.group_by(key).agg(first=pl.col("ts").min(), last=pl.col("ts").max()).iter_rows():
            name, first, last = tuple(row[: len(key)]), row[-2], row[-1]
            self.history_start.setdefault(name, first)
            self.decided_until[name] = max(last, self.decided_until.get(name, last))
        for row in hits.group_by(key).agg(pl.col("ts").max()).iter_rows():
            self.last_hit[tuple(row[: len(key)])] = row[-1]


def _column(at: str | pl.Expr) -> pl.Expr:
    return pl.col(at) if isinstance(at, str) else at


def _like(frame: pl.DataFrame, rows: Rows) -> Rows:
    """`frame`, lazy when `rows` is (a join needs both of one kind)."""
    return frame.lazy() if isinstance(rows, pl.LazyFrame) else frame


def _with_known(rows: Rows, known: dict[Key, datetime], key: list[str], name: str) -> Rows | None:
    """`rows` with the state's moment for their key (string columns) as column `name` (null for a key it
    does not hold), in the rows' order; None when the state holds no key at all (nothing to join)."""
    if not known:
        return None
    schema = {column: pl.String() for column in key} | {name: TIME}
    if isinstance(rows, pl.DataFrame):
        # Only the keys these rows hold: a stream step touches a few of thousands of symbols, and
        # building the table of every key the state holds would cost more than the step's work.
        present = rows.select(key).unique().iter_rows()
        entries = [(*k, known[k]) for k in present if k in known]
    else:
        entries = [(*k, moment) for k, moment in known.items()]
    table = pl.DataFrame(entries, schema=schema, orient="row")
    return rows.join(_like(table, rows), on=key, how="left", maintain_order="left")


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


@runtime_checkable
class BarDetector(Detector, Protocol):
    """A detector on candles (`needs` "bars") also says which candles to build when the input is trades:
    their size, and how many a decision reads (the stream keeps that many per symbol)."""

    interval: str
    lookback_bars: int


def as_bar_detector(detector: Detector) -> BarDetector | None:
    """The detector as a `BarDetector` when it reads candles, None when it reads rows as they come.

    The one place the engines ask how a detector is fed. A detector that needs bars but does not
    say its candle size is a programming error, never a guessed default.
    """
    if detector.needs != "bars":
        return None
    if not isinstance(detector, BarDetector):
        raise TypeError(f"{detector.name}: needs bars but has no `interval` and `lookback_bars`")
    return detector
