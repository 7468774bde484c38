"""Bar anomaly detectors on real candles: alert rates, where known market events rank, speed.

    python benchmarks/bar_anomalies.py [OHLCV_DIR]

OHLCV_DIR (default ../shared/data/ohlcv) holds hourly BTC/USDT 2021
(`btc_usdt_hourly_2021.csv.gz`) and daily S&P 500 and NASDAQ 1999–2018
(`sp500.csv.gz`, `nasdaq.csv.gz`). Prints, per dataset, each detector's alerts per
candle (Kamps & Kleinberg for comparison, then the three bar anomaly detectors and
their union); on the daily indices, the rank of known market events among all days by
`bar_scores` excess (the crash: its best day in Sep–Oct 2008); and each detector's
speed in batch on generated candles of many symbols. Targets (issue 6): the events
among the highest-scoring days, under 2 % of days alerting, ≥ 1M candles/s.
"""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
from _common import REPO, best_of

from tapewatch.config import Settings
from tapewatch.detect.bars.anomalies import bar_anomaly_detectors, bar_scores
from tapewatch.detect.base import Detector
from tapewatch.detect.registry import build_detectors
from tapewatch.io.readers import read_inputs
from tapewatch.records import BAR_SCHEMA, conform

OHLCV = REPO.parent / "shared" / "data" / "ohlcv"
DATASETS = {
    "BTC/USDT 1h": "btc_usdt_hourly_2021.csv.gz",
    "S&P 500 1d": "sp500.csv.gz",
    "NASDAQ 1d": "nasdaq.csv.gz",
}
DAILY = ("S&P 500 1d", "NASDAQ 1d")
EVENTS = {
    "2008 crash (best day Sep–Oct)": ("2008-09-01", "2008-10-31"),
    "2010-05-06 flash crash": ("2010-05-06", "2010-05-06"),
    "2011-08-08 downgrade": ("2011-08-08", "2011-08-08"),
    "2015-08-24 China": ("2015-08-24", "2015-08-24"),
}
SPEED_SYMBOLS, SPEED_BARS = 1000, 1000
REPEATS = 3


def ohlcv_files(argv: list[str]) -> dict[str, Path]:
    """The dataset files, or exit with one line saying what is missing and what to pass."""
    directory = Path(argv[1]) if len(argv) > 1 else OHLCV
    files = {name: directory / file for name, file in DATASETS.items()}
    missing = [path.name for path in files.values() if not path.is_file()]
    if missing:
        sys.exit(
            f"OHLCV data not found in '{directory}' (missing {', '.join(missing)}): "
            "pass the directory that holds them as the first argument"
        )
    return files


def alert_rates(detectors: list[Detector], bars: pl.DataFrame) -> dict[str, float]:
    """Alerts per candle of each detector, and of the bar anomaly detectors together (candles with any)."""
    rates, anomalous = {}, set()
    for detector in detectors:
        alerts = detector.detect(bars)
        rates[detector.name] = len(alerts) / bars.height
        if detector.name != "kamps_kleinberg":
            anomalous |= {(alert.symbol, alert.start) for alert in alerts}
    rates["any bar anomaly"] = len(anomalous) / bars.height
    return rates


def event_ranks(bars: pl.DataFrame) -> pl.DataFrame:
    """Each known event's best day and its rank among all days by overall and per-detector excess."""
    scores = bar_scores(bars)
    excesses = [name for name in scores.columns if name.endswith("excess")]
    ranked = scores.with_columns(
        pl.col(name).rank(descending=True, method="min").alias(f"rank {name}") for name in excesses
    ).with_columns(day=pl.col("ts").dt.date())
    rows = []
    for event, (first, last) in EVENTS.items():
        days = ranked.filter(pl.col("day").is_between(_day(first), _day(last)))
        best = days.sort("rank excess").head(1)
        rows.append(best.select(pl.lit(event).alias("event"), "day", pl.col("excess").round(2), "^rank .*$"))
    return pl.concat(rows)


def generated_bars(symbols: int, bars: int, seed: int = 0) -> pl.DataFrame:
    """Hourly random-walk candles with lognormal volumes for many symbols: the speed workload."""
    rng = np.random.default_rng(seed)
    n = symbols * bars
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (symbols, bars)), axis=1)).ravel()
    open_ = close * np.exp(rng.normal(0, 0.002, n))
    wick = np.abs(rng.normal(0, 0.004, (2, n)))
    start = datetime(2024, 1, 1, tzinfo=UTC)
    hours = pl.datetime_range(start, start + timedelta(hours=bars - 1), "1h", time_zone="UTC", eager=True)
    frame = pl.DataFrame(
        {
            "ts": pl.concat([hours] * symbols),
            "venue": "sim",
            "symbol": np.repeat([f"S{i:04d}" for i in range(symbols)], bars),
            "interval": "1h",
            "open": open_,
            "high": np.maximum(open_, close) * (1 + wick[0]),
            "low": np.minimum(open_, close) * (1 - wick[1]),
            "close": close,
            "volume": rng.lognormal(5, 0.5, n),
        }
    )
    return conform(frame, BAR_SCHEMA)


def _day(text: str) -> date:
    return date.fromisoformat(text)


def main() -> None:
    files = ohlcv_files(sys.argv)
    detectors = build_detectors(Settings(), ["kamps_kleinberg"]) + bar_anomaly_detectors()
    pl.Config.set_tbl_rows(20).set_tbl_cols(20).set_tbl_width_chars(200).set_tbl_hide_dataframe_shape(True)
    print("alerts per candle (target: each under 2 % of days)")
    for name, path in files.items():
        bars = read_inputs([path]).bars
        rates = alert_rates(detectors, bars)
        cells = "  ".join(f"{detector} {rate:6.2%}" for detector, rate in rates.items())
        print(f"  {name:12} {bars.height:6,} candles  {cells}")
        if name in DAILY:
            print(f"  {name}: known events, rank among {bars.height:,} days (1 = highest score)")
            print(event_ranks(bars))
    speed()


def speed() -> None:
    """Candles per second of each detector in batch (best of REPEATS), target ≥ 1M/s."""
    bars = generated_bars(SPEED_SYMBOLS, SPEED_BARS)
    print(f"speed on {bars.height:,} generated candles of {SPEED_SYMBOLS:,} symbols (best of {REPEATS})")
    for detector in bar_anomaly_detectors():
        seconds, alerts = best_of(REPEATS, lambda d=detector: d.detect(bars))
        print(f"  {detector.name:18} {bars.height / seconds:>12,.0f} candles/s  ({len(alerts):,} alerts)")
    seconds, _ = best_of(REPEATS, lambda: bar_scores(bars))
    print(f"  {'bar_scores (all)':18} {bars.height / seconds:>12,.0f} candles/s")


if __name__ == "__main__":
    main()
