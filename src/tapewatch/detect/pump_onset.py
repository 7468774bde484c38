"""Pump onset on trades: the first seconds of a Telegram-style pump-and-dump.

A pump group announces a coin and its members market-buy within seconds. In an
illiquid coin that normally trades a few times a minute this is unmistakable: tens
of distinct taker orders in a few seconds (orders, not trades — one large order
sweeping several levels prints several trades in the same millisecond, La Morgia
et al.'s "rush orders"), most of them buys, lifting the price well above where it
traded over the last hours. Four thresholds, all in `PumpOnsetSettings`:

    orders in the last `window_s`                ≥ min_orders
    max price in the window / baseline mean − 1  ≥ min_price_rise
      (or: ≥ big_move_orders orders lifting it ≥ big_move_price_rise — a smaller
       crowd suffices when the move is large)
    that order rate / the trailing `baseline_h` rate   ≥ min_rate_ratio
    buy orders / orders in the window            ≥ min_buy_share

The decision at a taker order reads only orders with ts ≤ its ts, so
`detected_at` is that order's timestamp. One alert per pump: after a qualifying
moment the symbol re-arms only once `cooldown_min` passes with none. The dump is
reported afterwards in `followup` (price giving back `dump_retrace` of the rise
within `dump_window_min`) — the only part of the alert that looks past
`detected_at`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from tapewatch.config import PumpOnsetSettings
from tapewatch.detect.base import DetectorState
from tapewatch.detect.scoring import excess_score, stable
from tapewatch.records import Alert, to_iso

KEY = ["venue", "symbol"]
_US = 1_000_000
_SYMBOL_SPACING_US = 1 << 52


def order_starts() -> pl.Expr:
    """True on the first trade of each taker order: consecutive trades sharing venue, symbol, ts and side
    are one order that swept several price levels."""
    return pl.any_horizontal(pl.col(name).ne_missing(pl.col(name).shift(1)) for name in (*KEY, "ts", "side"))


def taker_orders(trades: pl.DataFrame) -> pl.DataFrame:
    """One row per taker order with its number of fills (for inspection and tests)."""
    return (
        trades.with_columns(order=order_starts().cum_sum())
        .group_by("order", maintain_order=True)
        .agg(pl.col(*KEY, "ts", "side").first(), fills=pl.len())
        .drop("order")
    )


@dataclass
class _Tape:
    """All trades as arrays, for the few per-alert look-ups (evidence, follow-up).

    Look-ups stay inside one symbol's rows [lo, hi): the frame is sorted by venue,
    symbol, ts, so each symbol is one contiguous block.
    """

    ts: np.ndarray  # µs since epoch
    buy: np.ndarray
    first: np.ndarray  # first trade of its taker order
    price: np.ndarray
    quote: np.ndarray

    @classmethod
    def of(cls, trades: pl.DataFrame) -> _Tape:
        return cls(
            ts=trades["ts"].dt.epoch("us").to_numpy(),
            buy=(trades["side"] == "buy").fill_null(False).to_numpy(),
            first=trades["first"].to_numpy(),
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

    def fills_per_order(self, rows: slice) -> np.ndarray:
        """Number of trades in each taker order that starts within `rows`."""
        starts = np.flatnonzero(self.first[rows])
        return np.diff(np.append(starts, rows.stop - rows.start))


class PumpOnsetDetector:
    """Flags the onset of a pump within seconds from public trades alone."""

    name = "pump_onset"
    typology = "pump_and_dump"
    needs = "trades"

    def __init__(self, settings: PumpOnsetSettings | None = None) -> None:
        self.settings = settings or PumpOnsetSettings()

    @property
    def lookback(self) -> timedelta:
        """The burst and baseline windows, plus a minute so the oldest kept row is never inside one."""
        return timedelta(hours=self.settings.baseline_h, seconds=self.settings.window_s, minutes=1)

    def followup_horizon(self) -> timedelta:
        """The dump is watched for this long after detection."""
        return timedelta(minutes=self.settings.dump_window_min)

    def detect(self, frame: pl.DataFrame, state: DetectorState | None = None) -> list[Alert]:
        """Alerts for every symbol in a trades frame sorted by venue, symbol, ts (see DetectorState)."""
        if frame.is_empty():
            return []
        trades = frame.with_columns(first=order_starts())
        features = self._features(trades)
        if state is not None:
            features = self._with_state(features, state.frame(KEY, only=trades))
        hits = self._qualifying(features).collect()
        triggers = self._first_of_runs(hits)
        if state is not None:
            state.advance(KEY, trades.select(*KEY, "ts"), hits)
        if triggers.is_empty():
            return []
        tape = _Tape.of(trades)
        alerts = [self._alert(row, tape) for row in triggers.iter_rows(named=True)]
        return sorted(alerts, key=lambda alert: (alert.detected_at, alert.symbol))

    def refresh_followups(self, alerts: list[Alert], frame: pl.DataFrame) -> list[Alert]:
        """Recompute each alert's dump follow-up from `frame` (its symbol's trades up to now)."""
        trades = frame.with_columns(first=order_starts())
        tape = _Tape.of(trades)
        blocks = _blocks(trades)
        refreshed = []
        for alert in alerts:
            block = blocks.get((alert.venue, alert.symbol))
            if block is None:
                refreshed.append(alert)
                continue
            ref_price = alert.evidence["price"]["baseline_mean"]
            dump = self._dump_followup(tape, block, _micros(alert.detected_at), ref_price)
            refreshed.append(alert.model_copy(update={"followup": {**alert.followup, "dump": dump}}))
        return refreshed

    def _features(self, trades: pl.DataFrame) -> pl.LazyFrame:
        """Per trade: the burst window's orders, buys and high against the trailing baseline.

        Windows are (t − size, t] by timestamp, so every trade of one millisecond sees
        the same window and nothing later than its own timestamp. The baseline is the
        trailing window minus the burst window; its price is the mean of its orders'
        first prices (`stable`, so a stream's tail and a whole file agree).
        """
        s = self.settings
        window, baseline = f"{int(s.window_s * _US)}i", f"{int(s.baseline_h * 3600 * _US)}i"
        baseline_seconds = s.baseline_h * 3600 - s.window_s

        def rolling(column: str, size: str, how: str = "sum") -> pl.Expr:
            return getattr(pl.col(column), f"rolling_{how}_by")("clock", window_size=size)

        new_symbol = pl.any_horizontal(pl.col(name).ne_missing(pl.col(name).shift(1)) for name in KEY)
        frame = trades.lazy().with_columns(
            # One monotone clock for all symbols: each symbol's µs timestamps shifted 2^52 µs
            # (142 years) past the previous symbol's, so time windows never cross symbols and
            # the rolling sums need no per-symbol partitioning (twice as fast as .over()).
            clock=pl.col("ts").dt.epoch("us") + new_symbol.cum_sum().cast(pl.Int64) * _SYMBOL_SPACING_US,
            first_ts=pl.when(new_symbol).then(pl.col("ts")).forward_fill(),
            block_start=pl.when(new_symbol).then(pl.int_range(pl.len())).forward_fill(),
            block_end=pl.when(new_symbol.shift(-1, fill_value=True))
            .then(pl.int_range(1, pl.len() + 1))
            .backward_fill(),
            order=pl.col("first").cast(pl.Int32),
            buy_order=(pl.col("first") & (pl.col("side") == "buy")).cast(pl.Int32),
            order_price=pl.when(pl.col("first")).then(pl.col("price")).otherwise(0.0),
        )
        frame = frame.with_columns(
            orders_w=rolling("order", window),
            buys_w=rolling("buy_order", window),
            price_max_w=rolling("price", window, "max"),
            orders_l=rolling("order", baseline),
            price_sum_l=rolling("order_price", baseline),
            price_sum_w=rolling("order_price", window),
        )
        base_orders = pl.col("orders_l") - pl.col("orders_w")
        return frame.with_columns(
            base_orders=base_orders,
            expected_w=base_orders * (s.window_s / baseline_seconds),
            ref_price=stable((pl.col("price_sum_l") - pl.col("price_sum_w")) / base_orders),
        ).with_columns(
            rate_ratio=pl.col("orders_w") / pl.col("expected_w"),
            price_rise=pl.col("price_max_w") / pl.col("ref_price") - 1,
            buy_share=pl.col("buys_w") / pl.col("orders_w"),
        )

    def _with_state(self, features: pl.LazyFrame, known: pl.DataFrame) -> pl.LazyFrame:
        """Join what earlier batches knew: history start (warm-up), decided rows, last hit (cooldown)."""
        return features.join(known.lazy(), on=KEY, how="left").with_columns(
            first_ts=pl.min_horizontal("first_ts", "history_start")
        )

    def _qualifying(self, features: pl.LazyFrame) -> pl.LazyFrame:
        """Every undecided, warmed-up moment that meets the thresholds."""
        s = self.settings
        undecided = (
            pl.col("decided_until").is_null() | (pl.col("ts") > pl.col("decided_until"))
            if "decided_until" in features.collect_schema()
            else True
        )
        return features.filter(
            undecided
            & (pl.col("ts") >= pl.col("first_ts") + timedelta(hours=s.warmup_h))
            & (pl.col("base_orders") > 0)
            & (pl.col("rate_ratio") >= s.min_rate_ratio)
            & (pl.col("buy_share") >= s.min_buy_share)
            & (
                ((pl.col("orders_w") >= s.min_orders) & (pl.col("price_rise") >= s.min_price_rise))
                | (
                    (pl.col("orders_w") >= s.big_move_orders)
                    & (pl.col("price_rise") >= s.big_move_price_rise)
                )
            )
        )

    def _first_of_runs(self, hits: pl.DataFrame) -> pl.DataFrame:
        """The cooldown: a qualifying moment alerts only if the previous one is over `cooldown_min` ago."""
        previous = pl.col("ts").shift(1).over(KEY)
        if "last_hit" in hits.columns:
            previous = previous.fill_null(pl.col("last_hit"))
        gap = pl.col("ts") - previous
        return hits.filter(gap.is_null() | (gap > timedelta(minutes=self.settings.cooldown_min))).select(
            *KEY,
            "ts",
            "block_start",
            "block_end",
            "orders_w",
            "base_orders",
            "expected_w",
            "ref_price",
            "price_max_w",
            "rate_ratio",
            "price_rise",
            "buy_share",
        )

    def _alert(self, row: dict[str, Any], book: _Tape) -> Alert:
        s = self.settings
        detected_us = _micros(row["ts"])
        block = slice(row["block_start"], row["block_end"])
        burst = book.span(block, detected_us - int(s.window_s * _US), detected_us)
        fills = book.fills_per_order(burst)
        buy_orders = book.buy[burst][book.first[burst]]
        quote, buys = book.quote[burst], book.buy[burst]
        crowd = row["orders_w"] >= s.min_orders and row["price_rise"] >= s.min_price_rise
        evidence = {
            "rule": "crowd" if crowd else "big_move",
            "window_s": s.window_s,
            "baseline_h": s.baseline_h,
            "orders": {"now": row["orders_w"], "baseline": round(row["expected_w"], 4)},
            "order_rate_ratio": round(row["rate_ratio"], 1),
            "buy_share": {"now": round(row["buy_share"], 3), "threshold": s.min_buy_share},
            "price": {
                "now_max": row["price_max_w"],
                "baseline_mean": row["ref_price"],
                "rise": round(row["price_rise"], 4),
            },
            "trades": {"now": burst.stop - burst.start},
            "rush_orders": {"now": int(((fills >= 2) & buy_orders).sum())},
            "quote_volume": {"now": float(quote.sum()), "buy_share": _share(quote[buys].sum(), quote.sum())},
            "baseline_orders_per_hour": round(
                row["base_orders"] * 3600 / (s.baseline_h * 3600 - s.window_s), 2
            ),
        }
        score = excess_score(
            row["orders_w"] / s.min_orders,
            row["rate_ratio"] / s.min_rate_ratio,
            row["price_rise"] / s.min_price_rise if s.min_price_rise > 0 else 2.0,
        )
        return Alert.build(
            detector=self.name,
            typology=self.typology,
            venue=row["venue"],
            symbol=row["symbol"],
            start=_moment(int(book.ts[burst.start])),
            end=row["ts"],
            detected_at=row["ts"],
            score=score,
            evidence=evidence,
            followup={"dump": self._dump_followup(book, block, detected_us, row["ref_price"])},
        )

    def _dump_followup(self, book: _Tape, block: slice, detected_us: int, ref_price: float) -> dict[str, Any]:
        """Did the price give back `dump_retrace` of the rise within the dump window?"""
        s = self.settings
        horizon_us = detected_us + int(s.dump_window_min * 60 * _US)
        after = book.span(block, detected_us - 1, horizon_us)
        prices, times = book.price[after], book.ts[after]
        peak_index = int(np.argmax(prices))
        peak = float(prices[peak_index])
        dump_level = peak - s.dump_retrace * (peak - ref_price)
        below = np.flatnonzero(prices[peak_index:] <= dump_level)
        result: dict[str, Any] = {
            "window_min": s.dump_window_min,
            "peak_price": peak,
            "peak_at": to_iso(_moment(int(times[peak_index]))),
            "peak_gain": round(peak / ref_price - 1, 4),
            "dump_level": dump_level,
        }
        if below.size:
            result.update(
                status="confirmed",
                confirmed_at=to_iso(_moment(int(times[peak_index + below[0]]))),
                low_after_peak=float(prices[peak_index:].min()),
            )
        elif book.ts[block.stop - 1] >= horizon_us:
            result.update(status="not_confirmed", low_after_peak=float(prices[peak_index:].min()))
        else:
            result.update(status="pending")
        return result


def _blocks(trades: pl.DataFrame) -> dict[tuple[str, str], slice]:
    """Each venue/symbol's contiguous row range in a frame sorted by venue, symbol, ts."""
    ranges = (
        trades.with_row_index("row")
        .group_by(KEY, maintain_order=True)
        .agg(start=pl.col("row").min(), stop=pl.col("row").max() + 1)
    )
    return {(row[0], row[1]): slice(row[2], row[3]) for row in ranges.iter_rows()}


def _micros(moment: datetime) -> int:
    return int((moment - _EPOCH) / timedelta(microseconds=1))


def _moment(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def _share(part: float, whole: float) -> float | None:
    return round(float(part) / float(whole), 3) if whole else None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
