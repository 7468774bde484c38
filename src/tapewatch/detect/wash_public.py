"""Wash trading from public trades alone: Cong et al. (2023), "Crypto Wash Trading", per symbol and window.

Without account ids nobody can see who traded with whom, but fabricated volume
leaves statistical fingerprints on the tape that genuine trading does not. Four
tests per symbol and UTC-aligned window (default one day), each with statistic,
p-value and effect size (`wash_public_stats`):

    benford          first significant digit of trade sizes vs Benford's law;
                     effect: Nigrini's MAD                       > benford_max_mad
    round_clustering round sizes (3 significant digits ≡ 0 mod round_step) vs
                     their neighbours; effect: clustering ratio  outside [low, high]
    tail_exponent    Hill exponent of the notional tail          outside [low, high]
    price_impact     P(volume of a flat bucket > a moving one)   ≥ impact_min_auc

A test votes "wash-like" only when both p ≤ max_p_value and its effect passes the
threshold, so a huge clean sample with a trivial deviation stays quiet. An alert
needs `min_tests` votes; it is low-confidence evidence (no account ids) and says so.

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
from typing import Any, Literal

import numpy as np
import polars as pl

from tapewatch.config import WashPublicSettings
from tapewatch.detect.base import DetectorState
from tapewatch.detect.scoring import excess_score
from tapewatch.detect.wash_public_stats import (
    TestResult,
    benford_test,
    clustering_test,
    impact_test,
    tail_test,
)
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
class Sample:
    """What the tests read from one window: trade sizes, notionals, and per-bucket volume and price change."""

    amount: np.ndarray
    notional: np.ndarray
    bucket_volume: np.ndarray
    bucket_moved: np.ndarray

    @classmethod
    def of(cls, parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], bucket_us: int) -> Sample:
        """Pool (ts µs, price, amount) of one or more symbols; buckets stay per symbol."""
        buckets = [bucket_moves(ts, price, price * amount, bucket_us) for ts, price, amount in parts]
        return cls(
            amount=np.concatenate([amount for _, _, amount in parts]),
            notional=np.concatenate([price * amount for _, price, amount in parts]),
            bucket_volume=np.concatenate([volume for volume, _ in buckets]),
            bucket_moved=np.concatenate([moved for _, moved in buckets]),
        )


def bucket_moves(
    ts_us: np.ndarray, price: np.ndarray, notional: np.ndarray, bucket_us: int
) -> tuple[np.ndarray, np.ndarray]:
    """Volume of each non-empty bucket and whether its last price differs from the previous bucket's.

    The first bucket has no previous one inside the window and is left out, so a
    window's result never depends on trades before it.
    """
    bucket = ts_us // bucket_us
    starts = np.flatnonzero(np.diff(bucket, prepend=bucket[:1] - 1)) if bucket.size else bucket
    if starts.size < 2:
        return np.empty(0), np.empty(0, dtype=bool)
    volume = np.add.reduceat(notional, starts)
    close = price[np.append(starts[1:], bucket.size) - 1]
    return volume[1:], close[1:] != close[:-1]


def window_checks(sample: Sample, settings: WashPublicSettings) -> list[Check]:
    """All four tests on one window's sample, each with its verdict."""
    return [check(sample, settings) for check in _CHECKS]


def _benford(sample: Sample, s: WashPublicSettings) -> Check:
    result = benford_test(sample.amount)
    return _judge(
        "benford",
        result,
        result.effect > s.benford_max_mad,
        result.effect / s.benford_max_mad,
        {"max_mad": s.benford_max_mad},
        s,
        enough=result.n >= s.min_trades,
    )


def _clustering(sample: Sample, s: WashPublicSettings) -> Check:
    low, high = s.clustering_low, s.clustering_high
    result = clustering_test(sample.amount, s.round_step, s.round_width, low, high)
    return _judge(
        "round_clustering",
        result,
        not low <= result.effect <= high,
        _range_excess(result.effect, low, high),
        {"low": low, "high": high},
        s,
        enough=result.n >= s.round_min_sample,
    )


def _tail(sample: Sample, s: WashPublicSettings) -> Check:
    low, high = s.tail_low, s.tail_high
    result = tail_test(sample.notional, low, high, s.tail_share, s.tail_min)
    return _judge(
        "tail_exponent",
        result,
        not low <= result.effect <= high,
        _range_excess(result.effect, low, high),
        {"low": low, "high": high},
        s,
        enough=math.isfinite(result.effect),
    )


def _impact(sample: Sample, s: WashPublicSettings) -> Check:
    result = impact_test(sample.bucket_volume, sample.bucket_moved)
    flat = int((~sample.bucket_moved).sum())
    enough = min(flat, sample.bucket_moved.size - flat) >= s.impact_min_buckets
    return _judge(
        "price_impact",
        result,
        result.effect >= s.impact_min_auc,
        (result.effect - 0.5) / (s.impact_min_auc - 0.5),
        {"min_auc": s.impact_min_auc},
        s,
        enough=enough,
    )


_CHECKS: tuple[Callable[[Sample, WashPublicSettings], Check], ...] = (_benford, _clustering, _tail, _impact)


def _judge(
    test: str,
    result: TestResult,
    material: bool,
    excess: float,
    threshold: dict[str, float],
    s: WashPublicSettings,
    *,
    enough: bool,
) -> Check:
    """Wash-like needs a material effect and significance; too small a sample decides nothing."""
    if not enough:
        verdict: Verdict = "insufficient"
    elif material and result.p_value <= s.max_p_value:
        verdict = "wash_like"
    else:
        verdict = "normal"
    return Check(test, result, threshold, verdict, excess)


def _range_excess(value: float, low: float, high: float) -> float:
    """How far outside [low, high] a value is, as a ratio ≥ 1 past the nearer bound (≤ 1 inside)."""
    return max(low / value, value / high) if value > 0 else math.inf


class WashPublicDetector:
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

    def followup_horizon(self) -> timedelta:
        """Nothing is looked up after the decision."""
        return timedelta(0)

    def refresh_followups(self, alerts: list[Alert], frame: pl.DataFrame) -> list[Alert]:
        """No follow-up to refresh."""
        return alerts

    def detect(self, frame: pl.DataFrame, state: DetectorState | None = None) -> list[Alert]:
        """Alerts for every closed, undecided window of every symbol in a trades frame sorted by venue, symbol, ts."""
        alerts = [
            self._alert(window, checks)
            for window, checks in self.evaluate(frame, state)
            if sum(c.verdict == "wash_like" for c in checks) >= self.settings.min_tests
        ]
        return sorted(alerts, key=lambda alert: (alert.detected_at, alert.symbol))

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
        bucket_us = int(self.settings.bucket_s * _US)
        decided = []
        for row in windows.iter_rows(named=True):
            part = (np.array(row["ts_us"]), np.array(row["price"]), np.array(row["amount"]))
            decided.append((row, window_checks(Sample.of([part], bucket_us), self.settings)))
        return decided

    def _closed_windows(self, frame: pl.DataFrame, state: DetectorState | None) -> pl.DataFrame:
        """Each window with a later trade of its symbol (which closes it), not decided before, big enough."""
        window_us = int(self.settings.window_h * 3600 * _US)
        ts_us = pl.col("ts").dt.epoch("us")
        windows = (
            frame.lazy()
            .with_columns(ts_us=ts_us, window=ts_us - ts_us % window_us)
            .group_by(*KEY, "window", maintain_order=True)
            .agg("ts_us", "price", "amount", first=pl.col("ts").min())
            .with_columns(closed_by=pl.col("first").shift(-1).over(KEY), end_us=pl.col("window") + window_us)
            .filter(
                pl.col("closed_by").is_not_null() & (pl.col("ts_us").list.len() >= self.settings.min_trades)
            )
        )
        if state is not None:
            decided = state.frame(KEY, only=frame).select(*KEY, "decided_until")
            windows = windows.join(decided.lazy(), on=KEY, how="left").filter(
                pl.col("decided_until").is_null()
                | (pl.col("decided_until").dt.epoch("us") < pl.col("end_us"))
            )
        return windows.collect()

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
                "trades": len(row["ts_us"]),
                "tests_wash_like": [c.test for c in fired],
                "min_tests": s.min_tests,
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
    window_us, bucket_us = int(s.window_h * 3600 * _US), int(s.bucket_s * _US)
    ts_us = pl.col("ts").dt.epoch("us")
    symbols = (
        trades.with_columns(ts_us=ts_us, window=ts_us - ts_us % window_us)
        .group_by("venue", "window", "symbol", maintain_order=True)
        .agg("ts_us", "price", "amount")
        .group_by("venue", "window", maintain_order=True)
        .agg("ts_us", "price", "amount", symbols=pl.len())
    )
    rows = []
    for row in symbols.iter_rows(named=True):
        parts = [
            tuple(np.array(x) for x in part)
            for part in zip(row["ts_us"], row["price"], row["amount"], strict=True)
        ]
        sample = Sample.of(parts, bucket_us)
        if sample.amount.size < s.min_trades:
            continue
        checks = window_checks(sample, s)
        rows.append(
            {
                "venue": row["venue"],
                "start": _moment(row["window"]),
                "symbols": row["symbols"],
                "trades": sample.amount.size,
            }
            | {f"{c.test}_effect": _number(c.result.effect) for c in checks}
            | {f"{c.test}_verdict": c.verdict for c in checks}
            | {"wash_like": sum(c.verdict == "wash_like" for c in checks)}
        )
    return pl.DataFrame(rows)


def _number(value: float, digits: int = 4) -> float | None:
    """Rounded to significant digits for the evidence; NaN and infinities are not JSON."""
    if not math.isfinite(value):
        return None
    return float(f"{value:.{digits}g}")


def _moment(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)
