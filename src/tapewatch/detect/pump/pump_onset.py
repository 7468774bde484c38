"""Pump onset on trades: the first seconds of a Telegram-style pump-and-dump.

A pump group announces a coin and its members market-buy within seconds. In an
illiquid coin that normally trades a few times a minute this is unmistakable: tens
of distinct taker orders in a few seconds (orders, not trades — one large order
sweeping several levels prints several trades in the same millisecond, La Morgia
et al.'s "rush orders") lifting the price above the range it traded in over the
last hours. Three thresholds, all in `PumpOnsetSettings`, each on the symbol's own
scale:

    taker orders in the last `window_s`                              ≥ min_orders
    that order rate / the symbol's rate over the baseline            ≥ min_rate_ratio
    burst price / the top of the baseline's range (its
      `range_quantile` price) − 1                                    ≥ min_price_rise

The baseline is the `baseline_h` hours that end `window_s` before the decision, so
the burst never dilutes it. Prices are robust: the baseline's level and range are
quantiles of its trade prices, and the burst price is a median — at least half of
the burst's trades are above the top of the range by min_price_rise — so one bad
print (a trade far outside the market) neither lifts the baseline and hides a pump
nor makes a move by itself: a price the following prints do not confirm is not a
move. The burst price is the median of the whole window or of only the trades of its
latest `confirm_min_orders` taker orders when they lie within the last
`confirm_window_s`: a crowd lifts the price in its first second, and a median over
all `window_s` waits for the trades before the crowd to leave the window (on three
of the 16 later dev pumps, held out when the setting was chosen, that wait was
2–9 s); a median over all of the last `confirm_window_s` still waits for the trades
of a fast crowd's first, unmoved orders. The direction
comes from the price, not the taker side: in the first seconds of real pumps the
pumpers' limit bids are often hit by sellers, so a taker-buy share is only evidence.

Every feature is a function of the set of trades in a time window, and a taker
order is a distinct (venue, symbol, ts, side), so the order of rows that share a
timestamp cannot change an alert. The decision at a trade reads only trades with
ts ≤ its ts, so `detected_at` is that trade's timestamp. One alert per pump: after a
qualifying moment the symbol re-arms only once `cooldown_min` passes with none. The
dump is reported afterwards in `followup` (price giving back `dump_retrace` of the
rise within `dump_window_min`) — the only part of the alert that looks past
`detected_at`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from tapewatch.detect.base import DetectorState
from tapewatch.detect.pump.settings import PumpOnsetSettings
from tapewatch.detect.scoring import excess_score
from tapewatch.epoch import from_micros, micros_of
from tapewatch.errors import InputError
from tapewatch.io.derive import KEY, SIDE_CODES, first_of_each_order, side_code
from tapewatch.records import Alert, to_iso

_US = 1_000_000
_MINUTE_US = 60 * _US
_CLOCK_LIMIT_US = 1 << 62  # the shared clock's reach: int64 with room for window arithmetic


def _symbol_offsets(first_ts: np.ndarray, last_ts: np.ndarray, gap_us: int) -> np.ndarray:
    """Per symbol, what to add to its µs timestamps to lay it on the shared clock (see `_Clock`): its
    first whole minute lands `gap_us` (rounded up to whole minutes) past the previous symbol's last
    minute. Raises InputError when the symbols' spans do not fit the clock (timestamps thousands of
    years apart: a wrong unit, most likely)."""
    first = first_ts - first_ts % _MINUTE_US
    gap = -(-gap_us // _MINUTE_US) * _MINUTE_US
    room = (last_ts - first) // _MINUTE_US * _MINUTE_US + _MINUTE_US + gap
    if sum(int(value) for value in room) >= _CLOCK_LIMIT_US:
        raise InputError(
            f"ts: trades from {_iso_us(int(first_ts.min()))} to {_iso_us(int(last_ts.max()))}; expected "
            "timestamps a few centuries apart at most (are some in seconds or nanoseconds?)"
        )
    laid = np.concatenate([[0], np.cumsum(room[:-1])]).astype(np.int64)
    return laid - first


def _iso_us(micros: int) -> str:
    return to_iso(datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros))


@dataclass
class _Tape:
    """All trades as arrays, for the few per-alert look-ups (evidence, follow-up).

    Look-ups stay inside one symbol's rows [lo, hi): the frame is sorted by venue,
    symbol, ts, so each symbol is one contiguous block. Every look-up reads whole
    timestamps and sums exactly (math.fsum), so tie order cannot change it.
    """

    ts: np.ndarray  # µs since epoch
    side: np.ndarray  # 0 buy, 1 sell, 2 unknown
    price: np.ndarray
    quote: np.ndarray

    @classmethod
    def of(cls, trades: pl.DataFrame) -> _Tape:
        return cls(
            ts=trades["ts"].dt.epoch("us").to_numpy(),
            side=trades.select(side_code()).to_series().to_numpy(),
            price=trades["price"].to_numpy(),
            quote=(trades["price"] * trades["amount"]).to_numpy(),
        )

    def span(self, block: slice, after_us: int, upto_us: int) -> slice:
        """Rows of `block` with after < ts ≤ upto, as the rolling windows define them."""
        times = self.ts[block]
        return slice(
            block.start + int(np.searchsorted(times, after_us, side="right")),
            block.start + int(np.searchsorted(times, upto_us, side="right")),
        )

    def fills_per_order(self, rows: slice) -> tuple[np.ndarray, np.ndarray]:
        """Each taker order in `rows` (a distinct ts and side): its side code and number of trades."""
        orders, fills = np.unique(self.ts[rows] * SIDE_CODES + self.side[rows], return_counts=True)
        return orders % SIDE_CODES, fills


@dataclass
class _Minutes:
    """The baseline's minutes, in order: each one's end on the shared clock and median price, and
    the baseline ending with it (orders, top of the price range)."""

    ends: np.ndarray
    prices: np.ndarray
    base_orders: np.ndarray
    range_high: np.ndarray
    baseline_us: int

    def baseline_medians(self, minutes: pl.Series) -> pl.Series:
        """The median of the minute prices over the baseline that ends with each of `minutes` (the
        minutes' own medians, weighted by time like the range)."""
        medians = []
        for minute in minutes.to_list():
            first = int(np.searchsorted(self.ends, self.ends[minute] - self.baseline_us, side="right"))
            medians.append(float(np.median(self.prices[first : minute + 1])))
        return pl.Series(medians, dtype=pl.Float64)


@dataclass
class _Clock:
    """All trades on one monotone clock, as arrays: what the burst and baseline windows count.

    The clock lays the symbols end to end: each symbol's µs timestamps, counted from its first
    whole minute, start `gap_us` (the longest window read) past the end of the previous
    symbol's, so time windows never cross symbols and need no per-symbol partitioning. Laid
    by each symbol's own span, not a fixed spacing, it stays monotone for any number of
    symbols and any timestamps, and minutes stay wall-clock minutes.
    """

    ts: np.ndarray  # µs since epoch
    clock: np.ndarray
    starts: np.ndarray  # where each symbol's clock begins: a clock value's symbol (see `symbol_of`)
    price: np.ndarray
    order: np.ndarray  # 1 on one trade of each taker order (see order_starts)
    orders: np.ndarray  # running total of `order`, with a leading zero
    order_clock: np.ndarray  # the clock of each taker order's first trade
    moment_end: np.ndarray  # one past the last row with the row's symbol and timestamp
    block_start: np.ndarray  # the row's symbol's row range
    block_end: np.ndarray
    symbol: np.ndarray  # the row's symbol (its number in row order)
    offsets: np.ndarray  # per symbol: clock − ts
    first_rows: np.ndarray  # per symbol: its first row

    @classmethod
    def of(cls, trades: pl.DataFrame, gap_us: int, earliest_us: np.ndarray | None = None) -> _Clock:
        """From trades sorted by venue, symbol, ts; `gap_us` at least the longest window read;
        `earliest_us` per symbol, when minutes from before its first row are read too (a stream's
        stored minutes): the clock then begins at the earlier of the two."""
        new_symbol = (
            trades.select(pl.any_horizontal(pl.col(name).ne_missing(pl.col(name).shift(1)) for name in KEY))
            .to_series()
            .to_numpy()
        )
        ts = trades["ts"].dt.epoch("us").to_numpy()
        symbol = np.cumsum(new_symbol) - 1
        starts = np.flatnonzero(new_symbol)
        ends = np.append(starts[1:], len(ts))
        first = ts[starts] if earliest_us is None else np.minimum(ts[starts], earliest_us)
        offsets = _symbol_offsets(first, ts[ends - 1], gap_us)
        clock = ts + offsets[symbol]
        new_moment = np.ones(len(clock), dtype=bool)
        new_moment[1:] = clock[1:] != clock[:-1]
        side = trades.select(side_code()).to_series().to_numpy()
        order = first_of_each_order(np.cumsum(new_moment), side)
        return cls(
            ts=ts,
            clock=clock,
            starts=first - first % _MINUTE_US + offsets,
            price=trades["price"].to_numpy(),
            order=order.astype(np.int32),
            orders=_running(order),
            order_clock=clock[order],
            moment_end=_run_ends(new_moment),
            block_start=starts[symbol],
            block_end=ends[symbol],
            symbol=symbol,
            offsets=offsets,
            first_rows=starts,
        )

    def symbol_of(self, clock: np.ndarray) -> np.ndarray:
        """The symbol (its number in row order) each clock value falls in."""
        return np.searchsorted(self.starts, clock, side="right") - 1

    def busy(self, window_us: int, min_orders: int) -> np.ndarray:
        """The rows with at least `min_orders` taker orders in the window (t − window, t]: those where
        the `min_orders`-th latest order up to t is later than t − window."""
        upto = self.orders[self.moment_end]
        enough = upto >= min_orders
        rows = np.flatnonzero(enough)
        recent = self.order_clock[upto[rows] - min_orders]
        return rows[recent > self.clock[rows] - window_us]

    def latest_orders_from(self, rows: np.ndarray, count: int, window_us: int) -> np.ndarray:
        """Per row: the first row of the moment of the `count`-th latest taker order up to it, when that
        moment is in the window (t − window, t]; else one past the row's moment (no trades). From the
        order's moment, not its flagged row, so the trades taken do not depend on tie order."""
        upto = self.orders[self.moment_end[rows]]
        since = self.order_clock[np.maximum(upto - count, 0)]
        inside = (upto >= count) & (since > self.clock[rows] - window_us)
        return np.where(inside, np.searchsorted(self.clock, since, side="left"), self.moment_end[rows])


_NONE = np.iinfo(np.int64).min
_NO_HITS = pl.DataFrame(schema={"venue": pl.String, "symbol": pl.String, "ts": pl.Datetime("us", "UTC")})


@dataclass
class _Known:
    """What a stream call knows of its symbols' minutes: every minute (symbol number in the frame,
    end µs, orders, price) and where each symbol's first one begins (INT64 max: none)."""

    earliest_us: np.ndarray
    minutes: pl.DataFrame


@dataclass
class _StoredMinutes:
    """A stream call's bookkeeping of minutes, for the symbols of its frame.

    A stream step would otherwise count hours of each touched symbol's trades into minutes again,
    and read them all to do it. The state keeps every symbol's complete minutes (taker orders,
    median price) over the baseline, and the trades of its minute still open (order flag, price:
    a median needs them all), so a step reads only its new trades and the burst window before
    them; and only the symbols with a new trade busy enough to qualify read their minutes at all
    (`read`). Tables: `symbols` (venue, symbol, until: where the open minute begins, decided: the
    newest trade decided; µs, the minimum int64 for none; a symbol's id is its row), `minutes`
    (sid, end µs, orders, price; appended to and trimmed now and then) and `open` (sid, end,
    order, price).
    """

    frame: pl.DataFrame  # the call's new trades and the burst window before each symbol's first one
    symbol: np.ndarray  # per row of `frame`: its symbol's number
    sids: np.ndarray  # per symbol: its id in the tables
    decided_us: np.ndarray  # per symbol: its newest trade decided before this call (_NONE: none)
    counted: pl.DataFrame  # the open minute's trades and the new ones: symbol, end, order, price
    last_us: np.ndarray  # per symbol: its newest trade

    @classmethod
    def of(cls, state: DetectorState, trades: pl.DataFrame, window_us: int) -> _StoredMinutes:
        change = (
            trades.select(pl.any_horizontal(pl.col(name).ne_missing(pl.col(name).shift(1)) for name in KEY))
            .to_series()
            .to_numpy()
        )
        every = np.cumsum(change) - 1
        keys = trades.select(KEY)[np.flatnonzero(change)]
        table = state.tables.get("symbols")
        if table is None:
            table = pl.DataFrame(
                schema={"venue": pl.String, "symbol": pl.String, "until": pl.Int64, "decided": pl.Int64}
            )
        known = keys.join(
            table.with_row_index("sid"), on=KEY, how="left", nulls_equal=True, maintain_order="left"
        )
        sids = known["sid"].fill_null(0).cast(pl.Int64).to_numpy().copy()
        added = known["sid"].is_null().to_numpy()
        if added.any():
            sids[added] = table.height + np.arange(int(added.sum()))
            fresh = keys.filter(pl.Series(added)).with_columns(
                until=pl.lit(_NONE, dtype=pl.Int64), decided=pl.lit(_NONE, dtype=pl.Int64)
            )
            state.tables["symbols"] = pl.concat([table, fresh])
        decided = known["decided"].fill_null(_NONE).to_numpy()
        stamps = trades["ts"].dt.epoch("us").to_numpy()
        since = np.where(decided == _NONE, _NONE, decided - window_us - _US)
        recent = stamps > since[every]
        kept = np.unique(every[recent])
        frame = trades.filter(pl.Series(recent))
        symbol, sids, decided = np.searchsorted(kept, every[recent]), sids[kept], decided[kept]
        ts = stamps[recent]
        new = ts > decided[symbol]
        starts_moment = np.ones(ts.size, dtype=bool)
        starts_moment[1:] = (ts[1:] != ts[:-1]) | (symbol[1:] != symbol[:-1])
        moment = np.cumsum(starts_moment)
        side = frame.select(side_code()).to_series().to_numpy()
        arrived = pl.DataFrame(
            {
                "symbol": symbol[new],
                "end": ts[new] - ts[new] % _MINUTE_US + _MINUTE_US,
                "order": first_of_each_order(moment[new], side[new]).astype(np.int64),
                "price": frame["price"].to_numpy()[new],
            }
        )
        still_open = _of_symbols(state.tables.get("open"), sids)
        counted = arrived if still_open is None else pl.concat([still_open.select(arrived.columns), arrived])
        last = np.flatnonzero(np.append(symbol[1:] != symbol[:-1], ts.size > 0))
        return cls(frame, symbol, sids, decided, counted, ts[last])

    def read(self, state: DetectorState, chosen: np.ndarray) -> tuple[pl.DataFrame, _Known]:
        """The frame's rows of the chosen symbols and their minutes (symbols numbered anew)."""
        if not chosen.any():  # no symbol can qualify: read no minutes
            return self.frame.clear(), _Known(np.zeros(0, np.int64), self.counted.clear())
        index = np.flatnonzero(chosen)
        renumber = np.full(chosen.size, -1)
        renumber[index] = np.arange(index.size)
        counted = self.counted.filter(pl.col("symbol").is_in(pl.Series(index).implode())).with_columns(
            symbol=pl.lit(pl.Series(renumber)).gather(pl.col("symbol"))
        )
        opened = counted.group_by("symbol", "end").agg(
            orders=pl.col("order").sum().cast(pl.Int64), price=pl.col("price").median()
        )
        closed = _of_symbols(state.tables.get("minutes"), self.sids[index])
        minutes = opened if closed is None else pl.concat([closed.select(opened.columns), opened])
        first = minutes.group_by("symbol").agg(pl.col("end").min())
        earliest = np.full(index.size, np.iinfo(np.int64).max)
        earliest[first["symbol"].to_numpy()] = first["end"].to_numpy() - _MINUTE_US
        return self.frame.filter(pl.Series(chosen[self.symbol])), _Known(earliest, minutes)

    def keep(self, state: DetectorState, kept_us: int) -> None:
        """Move this call's complete minutes (ending by the start of each symbol's newest trade's
        minute: no later trade can fall in them) to `minutes`; keep the open one's trades."""
        until = self.last_us - self.last_us % _MINUTE_US
        limit = pl.lit(pl.Series(until)).gather(pl.col("symbol"))
        sid = pl.lit(pl.Series(self.sids)).gather(pl.col("symbol"))
        done = (
            self.counted.filter(pl.col("end") <= limit)
            .group_by("symbol", "end")
            .agg(orders=pl.col("order").sum().cast(pl.Int64), price=pl.col("price").median())
            .select(sid=sid, end="end", orders="orders", price="price")
            .sort("sid", "end")
        )
        still_open = self.counted.filter(pl.col("end") > limit).select(
            sid=sid, end="end", order="order", price="price"
        )
        others = state.tables.get("open")
        if others is not None:
            touched = pl.Series(self.sids).implode()
            still_open = pl.concat([others.filter(~pl.col("sid").is_in(touched)), still_open])
        state.tables["open"] = still_open
        table = state.tables.get("minutes")
        table = done if table is None else pl.concat([table, done], rechunk=False)
        symbols = state.tables["symbols"]
        marks, decided = symbols["until"].to_numpy().copy(), symbols["decided"].to_numpy().copy()
        marks[self.sids] = np.maximum(marks[self.sids], until)
        decided[self.sids] = np.maximum(decided[self.sids], self.last_us)
        state.tables["symbols"] = symbols.with_columns(until=pl.Series(marks), decided=pl.Series(decided))
        if table.n_chunks() > 64:  # appended every step: trim (and rechunk) now and then
            newest = table.group_by("sid").agg(pl.col("end").max())
            horizon = np.full(symbols.height, _NONE)
            horizon[newest["sid"].to_numpy()] = newest["end"].to_numpy() - kept_us
            keep = table["end"].to_numpy() > horizon[table["sid"].to_numpy()]
            table = table.filter(pl.Series(keep)).rechunk()
        state.tables["minutes"] = table


def _of_symbols(table: pl.DataFrame | None, sids: np.ndarray) -> pl.DataFrame | None:
    """The rows of a state table for these symbol ids, numbered by their place in `sids`."""
    if table is None:
        return None
    number = pl.DataFrame({"sid": sids, "symbol": np.arange(sids.size)})
    return table.filter(pl.col("sid").is_in(pl.Series(sids).implode())).join(number, on="sid").drop("sid")


class PumpOnsetDetector:
    """Flags the onset of a pump within seconds from public trades alone."""

    name = "pump_onset"
    typology = "pump_and_dump"
    needs = "trades"

    def __init__(self, settings: PumpOnsetSettings | None = None) -> None:
        self.settings = settings or PumpOnsetSettings()

    @property
    def lookback(self) -> timedelta:
        """The burst and baseline windows, plus two minutes so the baseline's oldest minute is whole."""
        s = self.settings
        return timedelta(hours=s.baseline_h, seconds=s.window_s, minutes=2)

    @property
    def raw_lookback(self) -> timedelta:
        """What a stream step reads of raw trades once its state holds the minutes (the open one's
        prices too): the burst window before the first undecided trade, plus a second of margin."""
        return timedelta(seconds=self.settings.window_s + 1)

    @property
    def _kept_minutes_us(self) -> int:
        """How far before each symbol's latest stored minute its minutes are kept: the baseline read
        at any later trade (the baseline ending `window_s` before it), and a minute of margin."""
        s = self.settings
        return int((s.baseline_h * 3600 + s.window_s + 120) * _US)

    def followup_horizon(self) -> timedelta:
        """The dump is watched for this long after detection."""
        return timedelta(minutes=self.settings.dump_window_min)

    def detect(self, frame: pl.DataFrame, state: DetectorState | None = None) -> list[Alert]:
        """Alerts for every symbol in a trades frame sorted by venue, symbol, ts (see DetectorState)."""
        if frame.is_empty():
            return []
        if state is None:
            return self._decide(frame, None, DetectorState())[0]
        stored = _StoredMinutes.of(state, frame, int(self.settings.window_s * _US))
        if stored.frame.is_empty():  # only rows decided before: nothing to do
            return []
        part, known = stored.read(state, self._may_qualify(stored))
        alerts, hits = self._decide(part, known, state) if part.height else ([], _NO_HITS)
        state.advance(KEY, stored.frame.select(*KEY, "ts"), hits)
        stored.keep(state, self._kept_minutes_us)
        state.raw_lookback = self.raw_lookback
        return alerts

    def _decide(
        self, frame: pl.DataFrame, stored: _Known | None, known: DetectorState
    ) -> tuple[list[Alert], pl.DataFrame]:
        """The alerts on `frame` and every qualifying moment (for the state's cooldown chain)."""
        features, minutes = self._features(frame, stored)
        hits = self._qualifying(features.collect(), known)
        triggers = self._first_of_runs(hits, known)
        if triggers.is_empty():
            return [], hits
        tape = _Tape.of(frame)
        triggers = triggers.with_columns(ref_price=minutes.baseline_medians(triggers["minute"]))
        alerts = [self._alert(row, tape) for row in triggers.iter_rows(named=True)]
        return sorted(alerts, key=lambda alert: (alert.detected_at, alert.venue, alert.symbol)), hits

    def _may_qualify(self, stored: _StoredMinutes) -> np.ndarray:
        """Per symbol of a stream call: whether a new trade has `min_orders` taker orders in its burst
        window. No other can qualify, so the other symbols (most, in most steps) skip the baseline."""
        s = self.settings
        window_us = int(s.window_s * _US)
        timeline = _Clock.of(stored.frame, gap_us=window_us + _MINUTE_US)
        rows = timeline.busy(window_us, s.min_orders)
        rows = rows[timeline.ts[rows] > stored.decided_us[timeline.symbol[rows]]]
        chosen = np.zeros(stored.sids.size, dtype=bool)
        chosen[timeline.symbol[rows]] = True
        return chosen

    def refresh_followups(self, alerts: list[Alert], frame: pl.DataFrame) -> list[Alert]:
        """Recompute each alert's dump follow-up from `frame` (its symbol's trades up to now)."""
        tape = _Tape.of(frame)
        blocks = _blocks(frame)
        refreshed = []
        for alert in alerts:
            block = blocks.get((alert.venue, alert.symbol))
            if block is None:
                refreshed.append(alert)
                continue
            ref_price = alert.evidence["price"]["baseline_median"]
            dump = self._dump_followup(tape, block, micros_of(alert.detected_at), ref_price)
            refreshed.append(alert.model_copy(update={"followup": {**alert.followup, "dump": dump}}))
        return refreshed

    def _features(self, trades: pl.DataFrame, stored: _Known | None = None) -> tuple[pl.LazyFrame, _Minutes]:
        """Per trade with `min_orders` taker orders or more in its burst window (no other can
        qualify): those orders, and whether its median price (or that of the trades of its latest
        `confirm_min_orders` orders) is above the baseline's range; and the baseline's minutes.

        Windows are (t − size, t] by timestamp, so every trade of one millisecond sees
        the same window and nothing later than its own timestamp. The baseline is read
        from the last whole minute that ended by t − window_s (see `_minutes`). A median
        at or above a level is the same as at least half of the trades at or above it, so
        the medians are counts of trades above the range. Every count over a window is a
        difference of running totals at the window's ends (found by binary search on the
        clock): exact, and a fraction of the cost of rolling sums.

        In a stream (`stored`), every minute comes counted from the state and this call's new
        trades (`_StoredMinutes`): the same minutes a whole file gives.
        """
        s = self.settings
        window_us = int(s.window_s * _US)
        confirm_us = int(min(s.confirm_window_s, s.window_s) * _US)
        timeline = _Clock.of(
            trades,
            gap_us=int(s.baseline_h * 3600 * _US) + window_us + _MINUTE_US,
            earliest_us=None if stored is None else stored.earliest_us,
        )
        minutes = self._minutes(trades, timeline, stored)
        # The baseline minute of each trade (-1: none). One of an earlier symbol is none either:
        # `same_symbol` is False there, so its figures are never read.
        minute = np.searchsorted(minutes.ends, timeline.clock - window_us, side="right") - 1
        same_symbol = minute >= 0
        same_symbol[same_symbol] = timeline.symbol_of(
            minutes.ends[minute[same_symbol]]
        ) == timeline.symbol_of(timeline.clock[same_symbol])
        # Above the range: above its top as known when the trade printed (by the same rule as a
        # decision then, so within one window the top moves only where a minute ends, if at all).
        level = minutes.range_high[minute] * (1 + s.min_price_rise)
        above = _running(same_symbol & (timeline.price >= level))
        rows = timeline.busy(window_us, s.min_orders)
        upto = timeline.moment_end[rows]
        burst_from = np.searchsorted(timeline.clock, timeline.clock[rows] - window_us, side="right")
        confirm_from = timeline.latest_orders_from(rows, s.confirm_min_orders, confirm_us)
        at, block_start = minute[rows], timeline.block_start[rows]
        candidates = pl.DataFrame(
            {
                **{name: trades[name].gather(rows) for name in (*KEY, "ts")},
                "first_ts": trades["ts"].gather(block_start),
                "block_start": block_start,
                "block_end": timeline.block_end[rows],
                "minute": at,
                "base_orders": minutes.base_orders[at],
                "range_high": minutes.range_high[at],
                "same_symbol": same_symbol[rows],
                "burst_from": burst_from,
                "confirm_from": confirm_from,
                "orders_w": timeline.orders[upto] - timeline.orders[burst_from],
                "above_w": above[upto] - above[burst_from],
                "trades_w": upto - burst_from,
                "orders_c": timeline.orders[upto] - timeline.orders[confirm_from],
                "above_c": above[upto] - above[confirm_from],
                "trades_c": upto - confirm_from,
            }
        )
        return (
            candidates.lazy()
            .with_columns(
                expected_w=pl.col("base_orders") * (s.window_s / (s.baseline_h * 3600)),
            )
            .with_columns(
                rate_ratio=pl.col("orders_w") / pl.col("expected_w"),
                # The first row of the trades whose median price confirms the rise: the whole burst
                # window's, else those of its latest confirm_min_orders orders.
                confirmed_from=pl.when(2 * pl.col("above_w") >= pl.col("trades_w"))
                .then(pl.col("burst_from"))
                .when(
                    (pl.col("orders_c") >= s.confirm_min_orders)
                    & (2 * pl.col("above_c") >= pl.col("trades_c"))
                )
                .then(pl.col("confirm_from")),
            ),
            minutes,
        )

    def _minutes(self, trades: pl.DataFrame, timeline: _Clock, stored: _Known | None) -> _Minutes:
        """Per whole minute (by its end on the shared clock): orders and price range over the
        `baseline_h` hours of minutes ending then, and each minute's median price.

        Minutes are wall-clock minutes, so a stream's tail and a whole file agree. Prices
        are weighted by time, not by trades: each minute with trades gives one value (its
        median), so a past burst of hundreds of trades is one or two minutes of the range,
        like a lone bad print, and neither stretches it. The clock is sorted, so are the
        minutes: grouping them needs no hashing.
        """
        s = self.settings
        baseline_us = int(s.baseline_h * 3600 * _US)
        window = f"{baseline_us}i"
        if stored is None:
            minute_end = timeline.clock - timeline.ts % _MINUTE_US + _MINUTE_US
            minutes = (
                pl.DataFrame({"minute_end": minute_end, "order": timeline.order, "price": trades["price"]})
                .with_columns(pl.col("minute_end").set_sorted())
                .group_by("minute_end", maintain_order=True)
                .agg(orders=pl.col("order").sum(), price=pl.col("price").median())
            )
        else:  # a stream: every minute comes counted, from the state and this call's new trades
            symbol = stored.minutes["symbol"].to_numpy()
            minutes = pl.DataFrame(
                {
                    "minute_end": stored.minutes["end"].to_numpy() + timeline.offsets[symbol],
                    "orders": stored.minutes["orders"],
                    "price": stored.minutes["price"],
                }
            ).sort("minute_end")
        minutes = minutes.with_columns(pl.col("minute_end").set_sorted()).with_columns(
            base_orders=pl.col("orders").rolling_sum_by("minute_end", window_size=window),
            range_high=pl.col("price").rolling_quantile_by(
                "minute_end", quantile=s.range_quantile, window_size=window, interpolation="nearest"
            ),
        )
        return _Minutes(
            *(minutes[name].to_numpy() for name in ("minute_end", "price", "base_orders", "range_high")),
            baseline_us=baseline_us,
        )

    def _qualifying(self, features: pl.DataFrame, known: DetectorState) -> pl.DataFrame:
        """Every undecided, warmed-up moment with a baseline that meets the thresholds.

        The thresholds first: they leave few rows (none in most stream steps) for the state's joins.
        `first_ts` is the same on every row of a symbol, so the warm-up reads it from those left.
        """
        s = self.settings
        meets = features.filter(
            pl.col("same_symbol")
            & (pl.col("base_orders") > 0)
            & (pl.col("orders_w") >= s.min_orders)
            & (pl.col("rate_ratio") >= s.min_rate_ratio)
            & pl.col("confirmed_from").is_not_null()
        )
        if meets.is_empty():  # most stream steps: no join with the state needed
            return meets
        first = meets.select(*KEY, ts="first_ts")  # each symbol's first trade in this call
        return known.warmed_up(known.undecided(meets, KEY), KEY, timedelta(hours=s.warmup_h), first)

    def _first_of_runs(self, hits: pl.DataFrame, known: DetectorState) -> pl.DataFrame:
        """The cooldown: a qualifying moment alerts only if the previous one is over `cooldown_min` ago."""
        runs = (
            hits
            if hits.is_empty()
            else known.cooled_down(hits, KEY, timedelta(minutes=self.settings.cooldown_min))
        )
        return runs.select(
            *KEY,
            "ts",
            "block_start",
            "block_end",
            "orders_w",
            "base_orders",
            "expected_w",
            "minute",
            "range_high",
            "rate_ratio",
            "confirmed_from",
        )

    def _alert(self, row: dict[str, Any], book: _Tape) -> Alert:
        s = self.settings
        detected_us = micros_of(row["ts"])
        block = slice(row["block_start"], row["block_end"])
        burst = book.span(block, detected_us - int(s.window_s * _US), detected_us)
        confirming = slice(row["confirmed_from"], burst.stop)
        sides, fills = book.fills_per_order(burst)
        quote, buys = book.quote[burst], book.side[burst] == 0
        total_quote = math.fsum(quote)
        median = _upper_median(book.price[confirming])
        rise = median / row["range_high"] - 1
        evidence = {
            "window_s": s.window_s,
            "baseline_h": s.baseline_h,
            "orders": {"now": row["orders_w"], "baseline": round(row["expected_w"], 4)},
            "order_rate_ratio": round(row["rate_ratio"], 1),
            "buy_share": {"now": round(float(np.mean(sides == 0)), 3)},
            "price": {
                "now_median": median,
                "now_max": float(book.price[burst].max()),
                "median_over_s": (detected_us - int(book.ts[confirming.start])) / _US,
                "baseline_median": row["ref_price"],
                "baseline_high": row["range_high"],
                "range_quantile": s.range_quantile,
                "rise": round(rise, 4),
            },
            "trades": {"now": burst.stop - burst.start},
            "rush_orders": {"now": int(((fills >= 2) & (sides == 0)).sum())},
            "quote_volume": {
                "now": total_quote,
                "buy_share": _share(math.fsum(quote[buys]), total_quote),
            },
            "baseline_orders_per_hour": round(row["base_orders"] / s.baseline_h, 2),
        }
        score = excess_score(
            row["orders_w"] / s.min_orders,
            row["rate_ratio"] / s.min_rate_ratio,
            rise / s.min_price_rise if s.min_price_rise > 0 else 2.0,
        )
        return Alert.build(
            detector=self.name,
            typology=self.typology,
            venue=row["venue"],
            symbol=row["symbol"],
            start=from_micros(int(book.ts[burst.start])),
            end=row["ts"],
            detected_at=row["ts"],
            score=score,
            evidence=evidence,
            followup={"dump": self._dump_followup(book, block, detected_us, row["ref_price"])},
        )

    def _dump_followup(self, book: _Tape, block: slice, detected_us: int, ref_price: float) -> dict[str, Any]:
        """Did the price give back `dump_retrace` of the rise (peak over the baseline median) in the window?

        "After the peak" starts at the peak's timestamp, so rows sharing it count whatever their order.
        """
        s = self.settings
        horizon_us = detected_us + int(s.dump_window_min * 60 * _US)
        after = book.span(block, detected_us - 1, horizon_us)
        prices, times = book.price[after], book.ts[after]
        peak_index = int(np.argmax(prices))
        peak = float(prices[peak_index])
        from_peak = int(np.searchsorted(times, times[peak_index], side="left"))
        dump_level = peak - s.dump_retrace * (peak - ref_price)
        below = np.flatnonzero(prices[from_peak:] <= dump_level)
        result: dict[str, Any] = {
            "window_min": s.dump_window_min,
            "peak_price": peak,
            "peak_at": to_iso(from_micros(int(times[peak_index]))),
            "peak_gain": round(peak / ref_price - 1, 4),
            "dump_level": dump_level,
        }
        if below.size:
            result.update(
                status="confirmed",
                confirmed_at=to_iso(from_micros(int(times[from_peak + below[0]]))),
                low_after_peak=float(prices[from_peak:].min()),
            )
        elif book.ts[block.stop - 1] >= horizon_us:
            result.update(status="not_confirmed", low_after_peak=float(prices[from_peak:].min()))
        else:
            result.update(status="pending")
        return result


def _running(values: np.ndarray) -> np.ndarray:
    """Running totals with a leading zero: the sum of rows [a, b) is total[b] − total[a]."""
    return np.concatenate(([0], np.cumsum(values, dtype=np.int64)))


def _run_ends(starts: np.ndarray) -> np.ndarray:
    """For each row, one past the last row of its run (`starts` flags each run's first row):
    windows (t − size, t] take every trade of t, whatever their order."""
    ends = np.append(np.flatnonzero(starts[1:]) + 1, len(starts))
    return np.repeat(ends, np.diff(ends, prepend=0))


def _blocks(trades: pl.DataFrame) -> dict[tuple[str, str], slice]:
    """Each venue/symbol's contiguous row range in a frame sorted by venue, symbol, ts."""
    ranges = (
        trades.with_row_index("row")
        .group_by(KEY, maintain_order=True)
        .agg(start=pl.col("row").min(), stop=pl.col("row").max() + 1)
    )
    return {(row[0], row[1]): slice(row[2], row[3]) for row in ranges.iter_rows()}


def _upper_median(prices: np.ndarray) -> float:
    """The middle price, the higher of the two middle ones for an even count: the median as the
    detector tests it (at least half of the trades at or above it)."""
    return float(np.sort(prices)[len(prices) // 2])


def _share(part: float, whole: float) -> float | None:
    return round(float(part) / float(whole), 3) if whole else None
