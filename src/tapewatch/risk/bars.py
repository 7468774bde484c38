"""Bar signals for the risk score: how unusual the last complete bar is against its own history."""

from __future__ import annotations

import polars as pl

FEATURES = ("volume", "return", "amplitude")
BASELINE_BARS = 50
"""Bars before the last one that form its baseline."""
MAD_TO_SIGMA = 1.4826


def last_bar_signals(bars: pl.DataFrame) -> tuple[dict[str, float], str | None]:
    """Robust z of the last bar's volume, return and amplitude, at the finest interval the bars have.

    The finest interval is the most recent picture; the bar detectors' own
    robust baselines (median/MAD of the trailing bars) make the numbers the same
    ones their alerts report.
    """
    if bars.is_empty():
        return {}, None
    interval = _finest(bars["interval"].drop_nulls().unique().to_list())
    series = bars.filter(pl.col("interval") == interval) if interval else bars
    values = (
        series.sort("ts")
        .tail(BASELINE_BARS + 2)
        .select(
            volume=pl.col("volume").log1p(),
            **{"return": (pl.col("close") / pl.col("close").shift(1)).log()},
            amplitude=(pl.col("close") - pl.col("open")) / pl.col("open"),
        )
    )
    signals = {}
    for name in FEATURES:
        history, last = values[name].head(-1).drop_nulls(), values[name][-1]
        centre = history.median()
        spread = (history - centre).abs().median() if centre is not None else None
        if last is not None and spread:
            signals[name] = (last - centre) / (MAD_TO_SIGMA * spread)
    return signals, interval


def _finest(intervals: list[str]) -> str | None:
    from tapewatch.durations import parse_duration

    return min(intervals, key=lambda text: parse_duration(text, what="interval"), default=None)
