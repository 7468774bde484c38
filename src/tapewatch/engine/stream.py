"""The streaming engine: the batch detectors, run in micro-batches on each symbol's recent tail.

Trades are pushed as they arrive; `step` runs every detector on the symbols that
got new trades — their kept tail for context plus the new rows — with a
`DetectorState` per detector, so each moment is decided once and exactly as the
batch engine decides it: replaying a file gives the same alerts, ids and
`detected_at` as `tapewatch detect` on it.

What makes that hold:
- the newest millisecond of each symbol is held back until a later trade (or
  `hold_ms`) shows it is complete, because every trade of one millisecond shares
  one window;
- bar detectors get a candle only once a later trade closes it;
- follow-ups (did the dump come?) are recomputed once their horizon has passed,
  and emitted again as an update of the same alert;
- rows that cannot be processed in order — late (at or before what was already
  decided), duplicated, malformed, from the future (clock skew) or for a symbol
  not being watched — are set aside with their reason and counted, never raised.
"""

from __future__ import annotations

import io
import json
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from tapewatch.config import StreamSettings
from tapewatch.detect.base import Detector, DetectorState, as_bar_detector
from tapewatch.detect.calibration import calibrate
from tapewatch.engine.kinds import TRADES, RecordKind
from tapewatch.epoch import from_micros, micros_of
from tapewatch.io.derive import trades_to_bars
from tapewatch.io.readers import REPEATS_ARE_EVENTS
from tapewatch.records import Alert, conform, to_iso

KEY = ["venue", "symbol"]
ARRIVED = "_arrived"
KID = "_kid"  # a small integer per venue/symbol: sorting by (KID, ts) groups symbols 4-5x faster than strings
ORDER = [KID, "ts"]
Key = tuple[str, str]
GapLookup = Callable[[str, str, datetime, datetime], list[dict[str, Any]]]
"""(venue, symbol, start, end) → the known gaps in that symbol's data reaching into [start, end], as evidence."""


TRIM_MIN_ROWS = 10_000
"""The tail is trimmed only once it holds this many rows (and half as many again as after the last trim)."""

NOT_LIVE = 0.0
"""The arrival time of history pushed by `warm_up`: long past, so nothing is held back, and no timing."""


@dataclass
class Emitted:
    """An alert leaving the engine: new, or an update of one emitted before (its follow-up completed)."""

    alert: Alert
    update: bool = False


@dataclass
class StreamStats:
    """Counters a live operator watches: throughput, set-asides by reason, alerts."""

    trades_in: int = 0
    trades_processed: int = 0
    steps: int = 0
    alerts: int = 0
    updates: int = 0
    set_aside: Counter = field(default_factory=Counter)


@dataclass
class _Candles:
    """One bar detector's candles being built, for all symbols at once.

    `open_trades` holds each symbol's trades of its still-open candle; a candle
    closes when a trade of a later candle arrives (or at the end of input).
    `closed` keeps each symbol's last `keep` closed candles as context.
    """

    interval: str
    keep: int
    open_trades: pl.DataFrame = field(default_factory=lambda: _empty(TRADES).drop(ARRIVED))
    closed: pl.DataFrame | None = None

    def add(self, trades: pl.DataFrame, *, close_all: bool) -> pl.DataFrame | None:
        """Add trades; if candles closed, return them after their symbols' kept ones, else None."""
        combined = pl.concat([self.open_trades, trades]).sort(ORDER, maintain_order=True)
        if combined.is_empty():
            return None
        bars = trades_to_bars(combined, self.interval)
        if close_all:
            newly_closed, self.open_trades = bars, combined.clear()
        else:
            last = pl.col("ts") == pl.col("ts").max().over(KEY)
            newly_closed = bars.filter(~last)
            open_from = bars.filter(last).select(*KEY, _open=pl.col("ts"))
            self.open_trades = (
                combined.join(open_from, on=KEY).filter(pl.col("ts") >= pl.col("_open")).drop("_open")
            )
        if newly_closed.is_empty():
            return None
        touched = newly_closed.select(KEY).unique()
        context = None if self.closed is None else self.closed.join(touched, on=KEY, how="semi")
        candles = newly_closed if context is None else pl.concat([context, newly_closed])
        candles = candles.sort(KEY + ["ts"], maintain_order=True)  # few rows: strings are fine
        kept = candles.group_by(KEY, maintain_order=True).tail(self.keep).select(candles.columns)
        others = None if self.closed is None else self.closed.join(touched, on=KEY, how="anti")
        self.closed = kept if others is None else pl.concat([others, kept])
        return candles


class StreamEngine:
    """Micro-batch detection over pushed rows of one kind; see the module docstring for the guarantees.

    One engine carries one record kind (`kind`: trades by default, L3 orders, or
    L2 book events) and runs the detectors that read it; a venue streaming
    several kinds runs one engine per kind.
    """

    def __init__(
        self,
        detectors: Sequence[Detector],
        settings: StreamSettings | None = None,
        *,
        symbols: Iterable[str] | None = None,
        check_clock: bool = False,
        kind: RecordKind = TRADES,
        gaps: GapLookup | None = None,
    ) -> None:
        self.settings = settings or StreamSettings()
        self.gaps = gaps
        self.kind = kind
        self.detectors = [detector for detector in detectors if kind.serves(detector)]
        self.watched = set(symbols) if symbols is not None else None
        self.check_clock = check_clock
        self.stats = StreamStats()
        self.set_aside: list[dict[str, Any]] = []
        self._states = {detector.name: DetectorState() for detector in self.detectors}
        self._candles = {
            bar.name: _Candles(bar.interval, bar.lookback_bars + 1)
            for bar in map(as_bar_detector, self.detectors)
            if bar is not None
        }
        row_lookbacks = [d.lookback for d in self.detectors if d.name not in self._candles]
        self._lookback = max(row_lookbacks, default=timedelta(0))
        self._pending: list[pl.DataFrame] = []
        self._held = _empty(self.kind)
        self._tail = _empty(self.kind).drop(ARRIVED)  # every symbol's decided trades, in arrival chunks
        self._tail_after_trim = 0
        self._processed_until: dict[Key, datetime] = {}
        self._decided_us = np.full(0, np.iinfo(np.int64).min, dtype=np.int64)  # per symbol id
        self._kids: dict[Key, int] = {}
        self._kid_table: pl.DataFrame | None = None
        self._open_followups: dict[str, tuple[Detector, Alert]] = {}

    def push(self, rows: pl.DataFrame, arrived_at: float | pl.Series | None = None) -> None:
        """Queue normalised rows of the engine's kind; `arrived_at` is when they arrived (epoch seconds)."""
        if rows.is_empty():
            return
        arrival = time.time() if arrived_at is None else arrived_at
        frame = conform(rows, self.kind.schema).with_columns(
            pl.lit(None, dtype=pl.UInt32).alias(KID),
            arrival.cast(pl.Float64).alias(ARRIVED)
            if isinstance(arrival, pl.Series)
            else pl.lit(float(arrival)).alias(ARRIVED),
        )
        self._pending.append(frame)
        self.stats.trades_in += frame.height

    def decided_until(self, venue: str, symbol: str) -> datetime | None:
        """The newest trade time decided for a symbol (None before its first), so a consumer
        can acknowledge exactly the input the engine no longer needs."""
        return self._processed_until.get((venue, symbol))

    @property
    def pending(self) -> int:
        """Trades pushed but not yet decided (including held-back ones)."""
        return sum(frame.height for frame in self._pending) + self._held.height

    def step(self, now: float | None = None, *, flush: bool = False) -> list[Emitted]:
        """Run the detectors on everything ready; `flush` also decides held-back trades and open candles."""
        now = time.time() if now is None else now
        incoming = pl.concat([self._held, *self._pending]) if self._pending else self._held
        self._pending = []
        if incoming.is_empty() and not flush:
            return []
        incoming = self._set_aside_bad(self._with_kid(incoming).sort(ORDER, maintain_order=True), now)
        ready, self._held = self._split_held(incoming, now, flush)
        self.stats.steps += 1
        emitted: list[Emitted] = []
        if ready.height or flush:
            emitted += self._detect(ready, flush)
        if ready.height:
            newest = ready.group_by(KEY).agg(pl.col(KID).first(), pl.col("ts").max())
            for venue, symbol, kid, ts in newest.iter_rows():
                self._processed_until[(venue, symbol)] = ts
                self._decided_us[kid] = micros_of(ts)
            self._tail = pl.concat([self._tail, ready.drop(ARRIVED)], rechunk=False)
        emitted += self._complete_followups(flush)
        self._trim()
        self.stats.trades_processed += ready.height
        self.stats.alerts += sum(not item.update for item in emitted)
        self.stats.updates += sum(item.update for item in emitted)
        return emitted

    @property
    def lookback(self) -> timedelta:
        """How much history the row detectors look back over: what a live start should warm up on."""
        return self._lookback

    def warm_up(self, history: pl.DataFrame) -> list[Emitted]:
        """Decide trades from before the stream started (the lake, a REST backfill) at once.

        A live start without them would have no baselines or cooldowns for hours.
        Alerts on history are real, but not live: they carry no timing, so they do
        not count in the arrival → alert latency.
        """
        self.push(history, arrived_at=NOT_LIVE)
        return self.step()

    def finish(self) -> list[Emitted]:
        """End of input: decide everything still held, close candles, complete follow-ups."""
        return self.step(flush=True)

    # -- checkpoints ------------------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """Everything the engine needs to continue, as bytes: a restart or a takeover restores it
        (`restore`) and replays only what came after.

        Frames (kept tail, held and pending rows, candles, set-asides, each detector's state and
        running aggregates) are Arrow IPC; the rest is a small JSON header. Nothing is pickled, so
        a checkpoint is data, not code.
        """
        frames: dict[str, pl.DataFrame] = {
            "tail": self._tail,
            "held": self._held,
            "pending": pl.concat([_empty(self.kind), *self._pending]),
            "set_aside": _set_aside_frame(self.set_aside, self.kind),
        }
        for name, candles in self._candles.items():
            frames[f"candles/{name}/open"] = candles.open_trades
            if candles.closed is not None:
                frames[f"candles/{name}/closed"] = candles.closed
        states = {}
        for name, state in self._states.items():
            frames[f"state/{name}/moments"] = state.moments_frame()
            for table, frame in state.tables.items():
                frames[f"state/{name}/table/{table}"] = frame
            states[name] = {
                "tables": list(state.tables),
                "raw_lookback_us": None if state.raw_lookback is None else state.raw_lookback // _US,
            }
        header = {
            "version": SNAPSHOT_VERSION,
            "kind": self.kind.name,
            "detectors": [detector.name for detector in self.detectors],
            "kids": [list(key) for key in self._kids],
            "decided_us": self._decided_us.tolist(),
            "tail_after_trim": self._tail_after_trim,
            "followups": [[d.name, alert.model_dump_json()] for d, alert in self._open_followups.values()],
            "stats": {
                "trades_in": self.stats.trades_in,
                "trades_processed": self.stats.trades_processed,
                "steps": self.stats.steps,
                "alerts": self.stats.alerts,
                "updates": self.stats.updates,
                "set_aside": dict(self.stats.set_aside),
            },
            "states": states,
        }
        return _pack(header, frames)

    def restore(self, data: bytes) -> StreamEngine:
        """Load a `snapshot` into this engine, built fresh with the same detectors and kind; returns it.

        Raises ValueError (one line) when the bytes are not a checkpoint or were taken with other
        detectors or another record kind: continuing those would decide differently, silently.
        """
        header, frames = _unpack(data)
        names = [detector.name for detector in self.detectors]
        if header["kind"] != self.kind.name or header["detectors"] != names:
            raise ValueError(
                f"checkpoint of {header['kind']} with detectors {header['detectors']}; this engine runs "
                f"{self.kind.name} with {names}"
            )
        self._tail = frames["tail"]
        self._held = frames["held"]
        pending = frames["pending"]
        self._pending = [pending] if pending.height else []
        self.set_aside = _set_aside_records(frames["set_aside"], self.kind)
        for name, candles in self._candles.items():
            candles.open_trades = frames[f"candles/{name}/open"]
            candles.closed = frames.get(f"candles/{name}/closed")
        for name, saved in header["states"].items():
            lookback = saved["raw_lookback_us"]
            self._states[name] = DetectorState.from_frames(
                frames[f"state/{name}/moments"],
                {table: frames[f"state/{name}/table/{table}"] for table in saved["tables"]},
                None if lookback is None else timedelta(microseconds=lookback),
            )
        self._kids = {(venue, symbol): kid for kid, (venue, symbol) in enumerate(header["kids"])}
        self._kid_table = None
        self._decided_us = np.array(header["decided_us"], dtype=np.int64)
        never = np.iinfo(np.int64).min
        self._processed_until = {
            key: from_micros(int(self._decided_us[kid]))
            for key, kid in self._kids.items()
            if self._decided_us[kid] != never
        }
        self._tail_after_trim = header["tail_after_trim"]
        by_name = {detector.name: detector for detector in self.detectors}
        self._open_followups = {}
        for name, text in header["followups"]:
            alert = Alert.model_validate_json(text)
            self._open_followups[alert.id] = (by_name[name], alert)
        stats = header["stats"]
        self.stats = StreamStats(
            **{k: v for k, v in stats.items() if k != "set_aside"}, set_aside=Counter(stats["set_aside"])
        )
        return self

    def _with_kid(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Tag rows with their symbol's integer id, giving new symbols the next ids."""
        frame = frame.drop(KID)
        new = [
            key for key in frame.select(KEY).unique(maintain_order=True).iter_rows() if key not in self._kids
        ]
        if new or self._kid_table is None:
            for key in new:
                self._kids[key] = len(self._kids)
            self._kid_table = pl.DataFrame(
                {
                    "venue": [k[0] for k in self._kids],
                    "symbol": [k[1] for k in self._kids],
                    KID: list(self._kids.values()),
                },
                schema={"venue": pl.String, "symbol": pl.String, KID: pl.UInt32},
            )
            grown = np.full(len(self._kids), np.iinfo(np.int64).min, dtype=np.int64)
            grown[: self._decided_us.size] = self._decided_us
            self._decided_us = grown
        return frame.join(
            self._kid_table, on=KEY, how="left", nulls_equal=True, maintain_order="left"
        ).select(*self.kind.schema, KID, ARRIVED)

    # -- set-asides -----------------------------------------------------------------------------

    def _set_aside_bad(self, frame: pl.DataFrame, now: float) -> pl.DataFrame:
        """Drop rows that cannot be decided in order, recording each with its reason."""
        columns = list(self.kind.schema)
        checks: list[tuple[pl.Expr, str]] = [(self.kind.malformed, self.kind.malformed_reason)]
        if self.watched is not None:
            checks.append((~pl.col("symbol").is_in(list(self.watched)), "unknown symbol"))
        if self.check_clock:
            limit = datetime.fromtimestamp(now, UTC) + timedelta(seconds=self.settings.max_clock_skew_s)
            checks.append((pl.col("ts") > limit, "clock skew: timestamp in the future"))
        frame = self._mark_late(frame)
        checks.append((pl.col("_duplicate"), f"duplicate of a {self.kind.noun} already processed"))
        checks.append(
            (
                pl.col("_late") & ~pl.col("_duplicate"),
                f"out of order: at or before {self.kind.noun}s already decided",
            )
        )
        frame = frame.with_columns(_repeat=_copies(self.kind))
        checks.append((pl.col("_repeat"), "duplicate within the batch"))
        reason = pl.coalesce([pl.when(check.fill_null(False)).then(pl.lit(text)) for check, text in checks])
        frame = frame.with_columns(_reason=reason)
        bad = frame.filter(pl.col("_reason").is_not_null())
        if bad.height:
            bad = self.kind.explain(bad, "_reason")
            self.stats.set_aside.update(bad["_reason"].to_list())
            self.set_aside.extend(
                {"reason": row["_reason"], "record": {k: row[k] for k in columns}}
                for row in bad.iter_rows(named=True)
            )
        return frame.filter(pl.col("_reason").is_null()).select(*columns, KID, ARRIVED)

    def _mark_late(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Flag rows at or before their symbol's decided time, and which of those repeat a kept row.

        The tail keeps only what the detectors still read raw (seconds, once their states carry
        the rest), so a repeat of an older row is set aside as out of order, not as a duplicate.
        """
        kids = frame[KID].to_numpy()
        late = (
            frame["ts"].dt.epoch("us").fill_null(np.iinfo(np.int64).max).to_numpy() <= self._decided_us[kids]
        )
        frame = frame.with_columns(_late=pl.Series(late), _duplicate=pl.lit(False))
        if not late.any():
            return frame
        late_kids = frame.filter("_late")[KID].unique().implode()
        columns = list(self.kind.schema)
        seen = (
            self._tail.filter(pl.col(KID).is_in(late_kids))
            .select(columns)
            .unique()
            .with_columns(_seen=pl.lit(True))
        )
        return (
            frame.drop("_duplicate")
            .join(seen, on=columns, how="left", nulls_equal=True, maintain_order="left")
            .with_columns(_duplicate=pl.col("_late") & pl.col("_seen").fill_null(False))
            .drop("_seen")
        )

    def _split_held(self, frame: pl.DataFrame, now: float, flush: bool) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Hold back each symbol's newest millisecond until it is known to be complete."""
        if flush or frame.is_empty():
            return frame, _empty(self.kind)
        newest = pl.col("ts") == pl.col("ts").max().over(
            KID
        )  # KID: one per venue/symbol, cheaper than strings
        waited = (now - pl.col(ARRIVED).max().over(KID)) * 1000 >= self.settings.hold_ms
        hold = newest & ~waited
        return frame.filter(~hold), frame.filter(hold)

    # -- detection --------------------------------------------------------------------------------

    def _detect(self, ready: pl.DataFrame, flush: bool) -> list[Emitted]:
        emitted = []
        new_rows = ready.drop(ARRIVED)
        work = None
        if ready.height:
            context = self._tail.filter(pl.col(KID).is_in(ready[KID].unique().implode()))
            work = pl.concat([context, new_rows]).sort(ORDER, maintain_order=True)
        for detector in self.detectors:
            if detector.name in self._candles:
                candles = self._candles[detector.name].add(new_rows, close_all=flush)
                if candles is None:
                    continue
                alerts = detector.detect(candles, self._states[detector.name])
            else:
                if work is None:
                    continue
                state = self._states[detector.name]
                alerts = detector.detect(self._within(work, self._raw_lookback(detector)), state)
            emitted += [self._emit(detector, alert, ready) for alert in alerts]
        return emitted

    def _raw_lookback(self, detector: Detector) -> timedelta:
        """The raw rows a detector's next call reads: its lookback, or less once its state carries
        the older history as running aggregates (`DetectorState.raw_lookback`)."""
        raw = self._states[detector.name].raw_lookback
        return detector.lookback if raw is None else min(raw, detector.lookback)

    def _kept(self) -> timedelta:
        """How much raw history the tail keeps: the longest any row detector still reads."""
        return max(
            (self._raw_lookback(d) for d in self.detectors if d.name not in self._candles),
            default=timedelta(0),
        )

    def _within(self, work: pl.DataFrame, lookback: timedelta) -> pl.DataFrame:
        """The rows a detector's decisions can read: the tail kept for the longest lookback
        would make a detector with a short one recompute hours it never needs."""
        if lookback >= self._lookback:
            return work
        never = np.iinfo(np.int64).min
        span = int(lookback / timedelta(microseconds=1))
        horizons = np.where(self._decided_us == never, never, self._decided_us - span)
        keep_from = pl.Series(horizons).gather(work[KID])
        return work.filter(work["ts"].dt.epoch("us") > keep_from)

    def _emit(self, detector: Detector, alert: Alert, ready: pl.DataFrame) -> Emitted:
        alert = self._with_gaps(detector, calibrate(alert))
        arrived = ready.filter(
            (pl.col("venue") == alert.venue)
            & (pl.col("symbol") == alert.symbol)
            & (pl.col("ts") <= alert.detected_at)
        )[ARRIVED].max()
        emitted_at = time.time()
        if arrived is not None and arrived != NOT_LIVE:
            alert = alert.model_copy(
                update={
                    "timing": {
                        "arrived_at": to_iso(datetime.fromtimestamp(arrived, UTC)),
                        "emitted_at": to_iso(datetime.fromtimestamp(emitted_at, UTC)),
                        "latency_ms": round((emitted_at - arrived) * 1000, 3),
                    }
                }
            )
        if detector.followup_horizon() > timedelta(0):
            self._open_followups[alert.id] = (detector, alert)
        return Emitted(alert)

    def _with_gaps(self, detector: Detector, alert: Alert) -> Alert:
        """The alert with `evidence["data_gaps"]` when its evidence window (its start less the detector's
        lookback, up to `detected_at`) reaches into a known gap of its symbol's data: it was decided on a
        partial picture, and whoever reads it must know. No key at all when there is none."""
        if self.gaps is None:
            return alert
        known = self.gaps(alert.venue, alert.symbol, alert.start - detector.lookback, alert.detected_at)
        if not known:
            return alert
        return alert.model_copy(update={"evidence": {**alert.evidence, "data_gaps": known}})

    def _complete_followups(self, flush: bool) -> list[Emitted]:
        """Re-emit alerts whose follow-up horizon has passed (or all of them at the end of input)."""
        due: dict[str, list[Alert]] = {}
        for alert_id, (detector, alert) in list(self._open_followups.items()):
            newest = self._processed_until.get((alert.venue, alert.symbol))
            if flush or (newest is not None and newest >= alert.detected_at + detector.followup_horizon()):
                due.setdefault(detector.name, []).append(alert)
                del self._open_followups[alert_id]
        done = []
        for detector in self.detectors:
            alerts = due.get(detector.name)
            if not alerts:
                continue
            keys = pl.DataFrame(
                {"venue": [a.venue for a in alerts], "symbol": [a.symbol for a in alerts]}
            ).unique()
            frame = self._tail.join(keys, on=KEY, how="semi").sort(ORDER, maintain_order=True)
            refreshed = detector.refresh_followups(alerts, frame)
            done += [Emitted(calibrate(alert), update=True) for alert in refreshed]
        return done

    def _trim(self) -> None:
        """Forget rows no decision can read any more, once the tail has grown by half since the last trim.

        Extra context is harmless (windows are by time), so trimming is batched for
        speed; rows back to an open follow-up's detection are kept.
        """
        if self._tail.height < max(1.5 * self._tail_after_trim, TRIM_MIN_ROWS):
            return
        horizons = self._decided_us - int(self._kept() / timedelta(microseconds=1))
        for _, alert in self._open_followups.values():
            kid = self._kids[(alert.venue, alert.symbol)]
            horizons[kid] = min(horizons[kid], micros_of(alert.detected_at) - 1)
        keep_from = pl.Series(horizons).gather(self._tail[KID])
        self._tail = self._tail.filter(self._tail["ts"].dt.epoch("us") > keep_from).rechunk()
        self._tail_after_trim = self._tail.height


SNAPSHOT_VERSION = 1
_MAGIC = b"TAPEWATCH-STREAM\n"
_US = timedelta(microseconds=1)


def _pack(header: dict[str, Any], frames: dict[str, pl.DataFrame]) -> bytes:
    """Magic, the header's length and JSON (with each frame's name and size), then each frame as Arrow IPC."""
    blobs = []
    for frame in frames.values():
        buffer = io.BytesIO()
        frame.write_ipc(buffer, compression="lz4")
        blobs.append(buffer.getvalue())
    header = header | {"frames": [[name, len(blob)] for name, blob in zip(frames, blobs, strict=True)]}
    text = json.dumps(header, separators=(",", ":")).encode()
    return b"".join([_MAGIC, struct.pack("<Q", len(text)), text, *blobs])


def _unpack(data: bytes) -> tuple[dict[str, Any], dict[str, pl.DataFrame]]:
    if not data.startswith(_MAGIC):
        raise ValueError("not a stream engine checkpoint (no TAPEWATCH-STREAM header)")
    at = len(_MAGIC)
    (size,) = struct.unpack_from("<Q", data, at)
    at += 8
    header = json.loads(data[at : at + size])
    if header.get("version") != SNAPSHOT_VERSION:
        raise ValueError(f"checkpoint version {header.get('version')}; expected {SNAPSHOT_VERSION}")
    at += size
    frames = {}
    for name, length in header["frames"]:
        frames[name] = pl.read_ipc(io.BytesIO(data[at : at + length]), memory_map=False)
        at += length
    return header, frames


def _set_aside_frame(entries: list[dict[str, Any]], kind: RecordKind) -> pl.DataFrame:
    schema = {"reason": pl.String(), **kind.schema}
    rows = [{"reason": entry["reason"], **entry["record"]} for entry in entries]
    return pl.DataFrame(rows, schema=schema)


def _set_aside_records(frame: pl.DataFrame, kind: RecordKind) -> list[dict[str, Any]]:
    columns = list(kind.schema)
    return [
        {"reason": row["reason"], "record": {k: row[k] for k in columns}}
        for row in frame.iter_rows(named=True)
    ]


def _copies(kind: RecordKind) -> pl.Expr:
    """Rows repeating an earlier row of the batch that are copies, judged as the readers judge a file's
    rows (`io.readers.REPEATS_ARE_EVENTS`), so a replay keeps every row `detect` keeps: a trade with a
    trade_id is one trade, its repeat a copy; a trade without one, or an order event, repeated is another
    event (two equal trades in one second of second-resolution data, two equal fills in one µs).

    A book stream's prints follow the trades' rule: they carry no trade_id (the readers already
    removed the copies of those that had one), so two equal prints are two trades; its level updates
    repeated are copies, as the readers take them."""
    repeat = ~pl.struct(list(kind.schema)).is_first_distinct()
    if kind.name == "trades":
        return repeat & pl.col("trade_id").is_not_null()
    if kind.name == "book":
        return repeat & pl.col("event").ne_missing("trade")
    return pl.lit(False) if kind.name in REPEATS_ARE_EVENTS else repeat


def _empty(kind: RecordKind) -> pl.DataFrame:
    return conform(pl.DataFrame(), kind.schema).with_columns(
        pl.lit(None, dtype=pl.UInt32).alias(KID), pl.lit(None, dtype=pl.Float64).alias(ARRIVED)
    )
