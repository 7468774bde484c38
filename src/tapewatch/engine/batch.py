"""The batch engine: every detector over whole frames, alerts merged in detection order."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import polars as pl

from tapewatch.detect.base import Detector
from tapewatch.detect.calibration import calibrate_all
from tapewatch.detect.spoofing_l3 import order_events
from tapewatch.engine.bars import trades_to_bars
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
    built: dict[str, pl.DataFrame] = {}
    alerts: dict[str, Alert] = {}
    for detector in detectors:
        if detector.needs == "trades":
            frames = [trades]
        elif detector.needs == "orders":
            if orders is not None and "orders" not in built:
                built["orders"] = order_events(orders, trades)
            frames = [] if orders is None else [built["orders"]]
        elif detector.needs == "book":
            frames = [] if book is None else [book]
        else:
            interval = getattr(detector, "interval", "1h")
            if interval not in built and not trades.is_empty():
                built[interval] = trades_to_bars(trades, interval)
            frames = [bars, built.get(interval, bars.clear())]
        for frame in frames:
            if frame.is_empty():
                continue
            for alert in detector.detect(frame):
                alerts.setdefault(alert.id, alert)
        if on_detector is not None:
            on_detector(detector)
    return sorted(
        calibrate_all(alerts.values()), key=lambda alert: (alert.detected_at, alert.symbol, alert.detector)
    )
