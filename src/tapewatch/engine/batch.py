"""The batch engine: every detector over whole frames, alerts merged in detection order."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

from tapewatch.detect.base import Detector, as_bar_detector
from tapewatch.detect.calibration import calibrate_all
from tapewatch.io.derive import order_events, trades_to_bars
from tapewatch.records import Alert


def run_batch(
    detectors: Sequence[Detector],
    trades: pl.DataFrame,
    bars: pl.DataFrame,
    on_detector: Callable[[Detector], None] | None = None,
    *,
    orders: pl.DataFrame | None = None,
    book: pl.DataFrame | None = None,
) -> list[Alert]:
    """Run each detector on the input it needs; bar detectors also get candles built from the trades.

    `orders` are L3 order events (ORDER_SCHEMA); the trades' named buyers and sellers are
    merged in (`order_events`), since a venue may show an execution only there. `book` are L2
    updates already merged with trades (BOOK_EVENT_SCHEMA). A detector whose input is absent
    is skipped.

    Alerts are ordered by `detected_at` (then symbol) and unique by id, so a run is
    reproducible line for line; their scores are calibrated (`tapewatch.detect.calibration`).
    """
    inputs = _Inputs(trades, bars, orders, book)
    alerts: dict[str, Alert] = {}
    for detector in detectors:
        for frame in inputs.read_by(detector):
            if frame.is_empty():
                continue
            for alert in detector.detect(frame):
                alerts.setdefault(alert.id, alert)
        if on_detector is not None:
            on_detector(detector)
    return sorted(calibrate_all(alerts.values()), key=detection_order)


def detection_order(alert: Alert) -> tuple[datetime, str, str, str]:
    """The order a run's alerts are written in: by `detected_at`, then symbol, detector and venue (so
    runs split by symbol, in partitions or on Spark, write one whole run's lines)."""
    return alert.detected_at, alert.symbol, alert.detector, alert.venue


@dataclass
class _Inputs:
    """The frames of one run, and those built from them once for every detector that reads them."""

    trades: pl.DataFrame
    bars: pl.DataFrame
    orders: pl.DataFrame | None
    book: pl.DataFrame | None
    built: dict[str, pl.DataFrame] = field(default_factory=dict)

    def read_by(self, detector: Detector) -> list[pl.DataFrame]:
        """The frames `detector` reads: the given candles and candles of its size built from the trades
        (bar detectors), else the rows of its kind (none when that input is absent)."""
        bar = as_bar_detector(detector)
        if bar is not None and self.trades.is_empty():
            return [self.bars]
        if bar is not None:
            return [self.bars, self._built(bar.interval, lambda: trades_to_bars(self.trades, bar.interval))]
        if detector.needs == "orders":
            orders = self.orders
            return (
                [] if orders is None else [self._built("orders", lambda: order_events(orders, self.trades))]
            )
        rows = {"trades": self.trades, "book": self.book}[detector.needs]
        return [] if rows is None else [rows]

    def _built(self, name: str, build: Callable[[], pl.DataFrame]) -> pl.DataFrame:
        if name not in self.built:
            self.built[name] = build()
        return self.built[name]
