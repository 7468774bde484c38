"""Wash trading from public trades alone: Cong et al. (2023), "Crypto Wash Trading", per symbol and window.

Without account ids nobody can see who traded with whom, but fabricated volume
leaves statistical fingerprints on the tape that genuine trading does not. Four
tests per symbol and UTC-aligned window (default one day), each with statistic,
p-value and effect size (`public_stats`):

    benford          first significant digit of trade sizes vs Benford's law;
                     effect: Nigrini's MAD                       > benford_max_mad
    round_clustering round sizes (3 significant digits ≡ 0 mod round_step) vs
                     their neighbours; effect: clustering ratio  outside [low, high]
    tail_exponent    Hill exponent of the notional tail          outside [low, high]
    price_impact     P(volume of a flat bucket > a moving one)   ≥ impact_min_auc

A test votes "wash-like" only when both p ≤ max_p_value and its effect passes the
threshold, so a huge clean sample with a trivial deviation stays quiet. An alert
needs `min_tests` votes, or one vote from a test in `sufficient_tests` (by default
price impact: fabricated volume is volume that never moves the price); it is
low-confidence evidence (no account ids) and says so.

Timing: a window [start, end) is decided once, by the first trade of its symbol at
or after `end` — that trade is `detected_at`. The decision reads the window's
trades (all before `detected_at`), so batch and stream agree; the last, still open
window of an input is never decided. The exchange-level view (`venue_view`)
pools every symbol of a venue: it is a report, not an alert, because the stream
hands a detector only the symbols that just traded.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, Literal

import numpy as np
import polars as pl

from tapewatch.detect.base import DetectorState, FinalAlerts
from tapewatch.detect.scoring import excess_score
from tapewatch.detect.wash.public_stats import (
    Mantissas,
    TestResult,
    TestResults,
    benford_test,
    clustering_test,
    impact_test,
    split_counts,
    tail_test,
)
from tapewatch.detect.wash.settings import WashPublicSettings
from tapewatch.records import Alert

KEY = ["venue", "symbol"]
TESTS = ("benford", "round_clustering", "tail_exponent", "price_impact")
Verdict = Literal["wash_like", "normal", "insufficient"]
_US = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Check:
    """One test's outcome on one window, with the threshold it was judged against."""

    test: str
    result: TestResult
    threshold: dict[str, float]
    verdict: Verdict
    excess: float
    """Effect / threshold (≥ 1 when the effect passes it), for the alert's score."""

    def evidence(self) -> dict[str, Any]:
        """The numbers an analyst needs to judge the test; non-finite values become null (JSON)."""
        fields = {
            "statistic": _number(self.result.statistic),
            "p_value": _number(self.result.p_value, 3),
            "effect": _number(self.result.effect),
            "threshold": self.threshold,
            "n": self.result.n,
            "verdict": self.verdict,
        }
        if self.result.standard_error is not None:
            fields["standard_error"] = _number(self.result.standard_error)
        return fields


@dataclass(frozen=True)
class Tape:
    """The trades of many windows at once, as numpy columns, so every test runs on all windows together.

    `window` is each trade's window index (0 … count-1) and `series` its symbol-window:
    a series is contiguous and in time order, and price buckets never span two
    (a pooled venue-window keeps its symbols' prices apart).
    """

    window: np.ndarray
    series: np.ndarray
    ts_us: np.ndarray
    price: np.ndarray
    amount: np.ndarray
    sell: np.ndarray
    """True where the taker sold: the order in which one instant's fills swept the book."""
    count: int

    @classmethod
    def of(cls, frame: pl.DataFrame, spans: pl.DataFrame, window: np.ndarray, count: int) -> Tape:
        """The trades of `spans` (symbol-windows, rows of `symbol_windows`) in `count` windows; `window`
        is each span's window index."""
        start, length = (
            spans[name].explode(empty_as_null=False).to_numpy().astype(np.int64)
            for name in ("start", "length")
        )
        runs = spans["length"].list.len().to_numpy()
        series = np.repeat(np.repeat(np.arange(spans.height), runs), length)
        rows = np.repeat(start - (np.cumsum(length) - length), length) + np.arange(length.sum())
        return cls(
            window=window.astype(np.int64)[series],
            series=series,
            ts_us=frame["ts"].dt.epoch("us").to_numpy()[rows],
            price=frame["price"].to_numpy()[rows],
            amount=frame["amount"].to_numpy()[rows],
            sell=(frame["side"] == "sell").fill_null(False).to_numpy()[rows],
            count=count,
        )

    @cached_property
    def notional(self) -> np.ndarray:
        """Each trade's notional: the tail and the price-impact tests both read it."""
        return self.price * self.amount

    @cached_property
    def mantissas(self) -> Mantissas:
        """Trade sizes in their own scale: the Benford and round-size tests both read them."""
        return Mantissas.of(self.amount, self.window, self.count)


def symbol_windows(frame: pl.DataFrame, window_us: int) -> pl.LazyFrame:
    """One row per venue, symbol and window (UTC-aligned, start µs), in order of first appearance, with
    its trade count, first ts, and trades as runs of consecutive rows: lists of `start` row and `length`.

    A frame sorted by venue, symbol and ts has one run per symbol-window, and finding
    runs is a single pass, several times cheaper than hashing every row's strings;
    grouping the runs keeps any other order (symbols interleaved) right.
    """
    ts_us = pl.col("ts").dt.epoch("us")
    return (
        frame.lazy()
        .with_row_index("row")
        .with_columns(window=ts_us - ts_us % window_us)
        .group_by(run=pl.struct(*KEY, "window").rle_id(), maintain_order=True)
        .agg(
            pl.col(*KEY, "window").first(),
            start=pl.col("row").first(),
            length=pl.len(),
            first=pl.col("ts").min(),
        )
        .group_by(*KEY, "window", maintain_order=True)
        .agg("start", "length", trades=pl.col("length").sum(), first=pl.col("first").min())
    )


def bucket_moves(tape: Tape, bucket_us: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Window, volume and price change of each non-empty bucket: whether its last price differs from
    the previous bucket's of the same series.

    A series' first bucket has no previous one inside the window and is left out, so a
    window's result never depends on trades before it.
    """
    bucket = tape.ts_us // bucket_us
    new = np.ones(bucket.size, dtype=bool)
    new[1:] = (bucket[1:] != bucket[:-1]) | (tape.series[1:] != tape.series[:-1])
    starts = np.flatnonzero(new)
    if starts.size == 0:
        return np.empty(0, dtype=np.int64), np.empty(0), np.empty(0, dtype=bool)
    volume = np.add.reduceat(tape.notional, starts)
    close = closing_prices(tape, starts)
    series = tape.series[starts]
    follows = np.zeros(starts.size, dtype=bool)
    follows[1:] = series[1:] == series[:-1]
    moved = np.zeros(starts.size, dtype=bool)
    moved[1:] = close[1:] != close[:-1]
    return tape.window[starts][follows], volume[follows], moved[follows]


def closing_prices(tape: Tape, starts: np.ndarray) -> np.ndarray:
    """Each bucket's last price (buckets are the runs of rows from `starts`), the fills of its last
    instant taken in sweep order (up for buys, down for sells, as `io.derive.sweep_order`), so the
    row order of simultaneous trades cannot change it."""
    lengths = np.diff(np.append(starts, tape.ts_us.size))
    last_instant = np.repeat(tape.ts_us[starts + lengths - 1], lengths)
    sweep = np.where(tape.sell, -tape.price, tape.price)  # prices are positive: abs() undoes the sign
    return np.abs(np.maximum.reduceat(np.where(tape.ts_us == last_instant, sweep, -np.inf), starts))


@dataclass(frozen=True)
class Judged:
    """One test on every window: results, verdicts and excess per window, and the threshold."""

    test: str
    results: TestResults
    threshold: dict[str, float]
    verdict: np.ndarray
    excess: np.ndarray

    def check(self, window: int) -> Check:
        return Check(
            self.test,
            self.results.at(window),
            self.threshold,
            str(self.verdict[window]),
            float(self.excess[window]),
        )


def window_checks(tape: Tape, settings: WashPublicSettings) -> list[list[Check]]:
    """All four tests on every window of a tape, each with its verdict: one list of checks per window."""
    judged = [judge(tape, settings) for judge in _JUDGES]
    return [[test.check(window) for test in judged] for window in range(tape.count)]


def _benford(tape: Tape, s: WashPublicSettings) -> Judged:
    results = benford_test(tape.mantissas)
    return _judge(
        "benford",
        results,
        results.effect > s.benford_max_mad,
        results.effect / s.benford_max_mad,
        {"max_mad": s.benford_max_mad},
        s,
        enough=results.n >= s.min_trades,
    )


def _clustering(tape: Tape, s: WashPublicSettings) -> Judged:
    low, high = s.clustering_low, s.clustering_high
    results = clustering_test(tape.mantissas, s.round_step, s.round_width, low, high)
    return _judge_range("round_clustering", results, low, high, s, enough=results.n >= s.round_min_sample)


def _tail(tape: Tape, s: WashPublicSettings) -> Judged:
    low, high = s.tail_low, s.tail_high
    results = tail_test(tape.notional, tape.window, tape.count, low, high, s.tail_share, s.tail_min)
    return _judge_range("tail_exponent", results, low, high, s, enough=np.isfinite(results.effect))


def _impact(tape: Tape, s: WashPublicSettings) -> Judged:
    window, volume, moved = bucket_moves(tape, int(s.bucket_s * _US))
    results = impact_test(volume, moved, window, tape.count)
    flat, moving = split_counts(~moved, window, tape.count)
    return _judge(
        "price_impact",
        results,
        results.effect >= s.impact_min_auc,
        (results.effect - 0.5) / (s.impact_min_auc - 0.5),
        {"min_auc": s.impact_min_auc},
        s,
        enough=np.minimum(flat, moving) >= s.impact_min_buckets,
    )


_JUDGES: tuple[Callable[[Tape, WashPublicSettings], Judged], ...] = (_benford, _clustering, _tail, _impact)


def _judge(
    test: str,
    results: TestResults,
    material: np.ndarray,
    excess: np.ndarray,
    threshold: dict[str, float],
    s: WashPublicSettings,
    *,
    enough: np.ndarray,
) -> Judged:
    """Wash-like needs a material effect and significance; too small a sample decides nothing."""
    verdict = np.select(
        [~enough, material & (results.p_value <= s.max_p_value)], ["insufficient", "wash_like"], "normal"
    )
    return Judged(test, results, threshold, verdict, excess)


def _judge_range(
    test: str, results: TestResults, low: float, high: float, s: WashPublicSettings, *, enough: np.ndarray
) -> Judged:
    """A test whose effect is normal inside [low, high]: material outside it, excess by how far."""
    return _judge(
        test,
        results,
        _outside(results.effect, low, high),
        _range_excess(results.effect, low, high),
        {"low": low, "high": high},
        s,
        enough=enough,
    )


def _outside(value: np.ndarray, low: float, high: float) -> np.ndarray:
    """Outside [low, high]; NaN counts as outside (its sample is judged insufficient anyway)."""
    return ~((low <= value) & (value <= high))


def _range_excess(value: np.ndarray, low: float, high: float) -> np.ndarray:
    """How far outside [low, high] a value is, as a ratio ≥ 1 past the nearer bound (≤ 1 inside)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(value > 0, np.maximum(low / value, value / high), math.inf)


class WashPublicDetector(FinalAlerts):
    """Flags symbol-windows whose trade sizes and volume look fabricated, from public trades alone."""

    name = "wash_public"
    typology = "wash_trading"
    needs = "trades"

    def __init__(self, settings: WashPublicSettings | None = None) -> None:
        self.settings = settings or WashPublicSettings()

    @property
    def lookback(self) -> timedelta:
        """One window, plus a minute: when its closing trade arrives the whole window is still kept."""
        return timedelta(hours=self.settings.window_h, minutes=1)

    def detect(self, frame: pl.DataFrame, state: DetectorState | None = None) -> list[Alert]:
        """Alerts for every closed, undecided window of every symbol in a trades frame sorted by venue, symbol, ts."""
        alerts = [
            self._alert(window, checks)
            for window, checks in self.evaluate(frame, state)
            if self.alerts_on(checks)
        ]
        return sorted(alerts, key=lambda alert: (alert.detected_at, alert.symbol))

    def alerts_on(self, checks: list[Check]) -> bool:
        """Enough wash-like votes, or a vote from a test that suffices on its own."""
        fired = [c.test for c in checks if c.verdict == "wash_like"]
        return len(fired) >= self.settings.min_tests or bool(set(fired) & set(self.settings.sufficient_tests))

    def evaluate(
        self, frame: pl.DataFrame, state: DetectorState | None = None
    ) -> list[tuple[dict[str, Any], list[Check]]]:
        """Every window decided by this call with its four checks, alerting or not (for benchmarks and
        reports); with a state, windows decided before are skipped and the state is advanced."""
        if frame.is_empty():
            return []
        windows = self._closed_windows(frame, state)
        if state is not None:
            state.advance(KEY, frame.select(*KEY, "ts"), frame.clear().select(*KEY, "ts"))
        tape = Tape.of(frame, windows, np.arange(windows.height), windows.height)
        rows = windows.drop("start", "length").to_dicts()
        return list(zip(rows, window_checks(tape, self.settings), strict=True))

    def _closed_windows(self, frame: pl.DataFrame, state: DetectorState | None) -> pl.DataFrame:
        """Each window with a later trade of its symbol (which closes it), not decided before, big enough."""
        window_us = int(self.settings.window_h * 3600 * _US)
        windows = (
            symbol_windows(frame, window_us)
            .with_columns(closed_by=pl.col("first").shift(-1).over(KEY), end_us=pl.col("window") + window_us)
            .filter(pl.col("closed_by").is_not_null() & (pl.col("trades") >= self.settings.min_trades))
        )
        end = pl.from_epoch("end_us", time_unit="us").dt.replace_time_zone("UTC")
        return (state or DetectorState()).undecided(windows, KEY, at=end).collect()

    def _alert(self, row: dict[str, Any], checks: list[Check]) -> Alert:
        s = self.settings
        fired = [c for c in checks if c.verdict == "wash_like"]
        start = _moment(row["window"])
        return Alert.build(
            detector=self.name,
            typology=self.typology,
            venue=row["venue"],
            symbol=row["symbol"],
            start=start,
            end=_moment(row["end_us"]),
            detected_at=row["closed_by"],
            score=excess_score(*(c.excess for c in fired)),
            evidence={
                "confidence": "low",
                "basis": "public trades, no account ids",
                "method": "Cong et al. (2023) distribution tests",
                "window_h": s.window_h,
                "trades": row["trades"],
                "tests_wash_like": [c.test for c in fired],
                "min_tests": s.min_tests,
                "sufficient_tests": s.sufficient_tests,
                "max_p_value": s.max_p_value,
                "tests": {c.test: c.evidence() for c in checks},
            },
        )


def venue_view(trades: pl.DataFrame, settings: WashPublicSettings | None = None) -> pl.DataFrame:
    """Exchange-level view: the four tests on each venue-window, all symbols pooled (Cong et al.'s unit).

    One row per venue and window with each test's effect and verdict and how many
    tests are wash-like. Every window is evaluated, open or closed: this is a
    retrospective report, not an alert.
    """
    s = settings or WashPublicSettings()
    symbols = symbol_windows(trades, int(s.window_h * 3600 * _US)).collect()
    windows = (
        symbols.group_by("venue", "window", maintain_order=True)
        .agg(symbols=pl.len(), trades=pl.col("trades").sum())
        .filter(pl.col("trades") >= s.min_trades)
        .with_row_index("index")
    )
    symbols = symbols.join(
        windows.select("venue", "window", "index"), on=["venue", "window"], maintain_order="left"
    )
    tape = Tape.of(trades, symbols, symbols["index"].to_numpy(), windows.height)
    rows = [
        {
            "venue": window["venue"],
            "start": _moment(window["window"]),
            "symbols": window["symbols"],
            "trades": window["trades"],
        }
        | {f"{c.test}_effect": _number(c.result.effect) for c in checks}
        | {f"{c.test}_verdict": c.verdict for c in checks}
        | {"wash_like": sum(c.verdict == "wash_like" for c in checks)}
        for window, checks in zip(windows.to_dicts(), window_checks(tape, s), strict=True)
    ]
    return pl.DataFrame(rows)


def _number(value: float, digits: int = 4) -> float | None:
    """Rounded to significant digits for the evidence; NaN and infinities are not JSON."""
    if not math.isfinite(value):
        return None
    return float(f"{value:.{digits}g}")


def _moment(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)
