"""Bar signals for the risk score: how unusual the last complete bar is against its own history."""

from __future__ import annotations

import polars as pl

from tapewatch.detect.bars.anomalies import bar_scores
from tapewatch.durations import parse_duration

SIGNALS = {"volume": "log_volume_z", "return": "log_return_z", "amplitude": "body_z"}
"""Risk signal → the bar detectors' robust z of that feature (see `bar_scores`)."""


def last_bar_signals(bars: pl.DataFrame) -> tuple[dict[str, float], str | None]:
    """Robust z of the last bar's volume, return and amplitude, at the finest interval the bars have.

    The finest interval is the most recent picture; the numbers are the bar
    detectors' own (same baselines), so a risk reason and an alert agree.
    """
    if bars.is_empty():
        return {}, None
    intervals = bars["interval"].drop_nulls().unique().to_list()
    interval = min(intervals, key=lambda text: parse_duration(text, what="interval"), default=None)
    series = bars.filter(pl.col("interval") == interval) if interval else bars
    last = bar_scores(series.sort("ts")).tail(1).to_dicts()[0]
    signals = {name: float(last[column]) for name, column in SIGNALS.items() if last.get(column) is not None}
    return signals, interval
