"""Model-based bar detectors on real OHLCV: alert rates, where known market events rank, forecast MAE, speed.

Usage: python benchmarks/bar_models.py [OHLCV_DIR]   (default ../shared/data/ohlcv)

For each file it prints the alert rate (alerts / bars decided) of the Isolation
Forest and the forecast-residual detector (GBM, and LSTM when PyTorch is
installed); on the daily indices, the best rank among all scored days of each
known event (rank 1 = the most anomalous day); the forecaster's held-out MAE
against the last-value forecast; and the batch speed on a generated
100k-bar, 50-symbol universe.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from tapewatch.detect.bars.forecast import ForecastResidualDetector, train_forecaster
from tapewatch.detect.bars.isolation import IsolationForestDetector
from tapewatch.detect.bars.settings import ForecasterSettings, ForecastResidualSettings
from tapewatch.io.readers import read_inputs
from tapewatch.records import BAR_SCHEMA, conform

REPO = Path(__file__).resolve().parents[1]
OHLCV = REPO.parent / "shared" / "data" / "ohlcv"
FILES = ("btc_usdt_hourly_2021.csv.gz", "sp500.csv.gz", "nasdaq.csv.gz")
EVENTS = {"2008-09..10": ("2008-09", "2008-10"), "2010-05-06": ("2010-05-06",), "2015-08-24": ("2015-08-24",)}
EVENTS["2011-08-08"] = ("2011-08-08",)
HAS_TORCH = importlib.util.find_spec("torch") is not None


def detectors() -> dict[str, object]:
    """Each detector under its default settings (and the LSTM variant when torch is importable)."""
    found: dict[str, object] = {
        "isolation_forest": IsolationForestDetector(),
        "forecast_gbm": ForecastResidualDetector(),
    }
    if HAS_TORCH:
        lstm = ForecastResidualSettings(forecaster=ForecasterSettings(kind="lstm"))
        found["forecast_lstm"] = ForecastResidualDetector(lstm)
    return found


def excess(scored: pl.DataFrame) -> pl.DataFrame:
    """Decided bars with one comparable number per bar: how far past its own threshold it is."""
    if "anomaly" in scored.columns:
        ratio = (pl.col("anomaly") - pl.col("center")) / (pl.col("threshold") - pl.col("center"))
    else:
        ratio = pl.max_horizontal("z_high", "z_low", "z_close")
    return scored.with_columns(excess=ratio).filter(pl.col("excess").is_not_null())


def event_ranks(scored: pl.DataFrame) -> str:
    """Best rank of each known event's days among all scored days."""
    ranked = scored.with_columns(
        rank=pl.col("excess").rank(descending=True, method="min"), day=pl.col("ts").dt.strftime("%Y-%m-%d")
    )
    parts = []
    for name, prefixes in EVENTS.items():
        hits = ranked.filter(pl.any_horizontal(pl.col("day").str.starts_with(p) for p in prefixes))
        parts.append(f"{name} #{hits['rank'].min()}")
    return ", ".join(parts)


def report_file(path: Path) -> None:
    """Alert rates, event ranks (daily files) and forecast MAE for one OHLCV file."""
    bars = read_inputs([path]).bars
    daily = bars["interval"][0] == "1d"
    print(f"\n{path.name}: {bars.height} bars")
    for name, detector in detectors().items():
        started = time.perf_counter()
        scored = excess(detector.score_frame(bars))
        seconds = time.perf_counter() - started
        rate = scored["flagged"].sum() / max(scored.height, 1)
        ranks = f"; ranks: {event_ranks(scored)}" if daily else ""
        print(f"  {name:17s} alert rate {rate:6.2%} of {scored.height} bars ({seconds:.1f}s){ranks}")
    for kind in ("gbm", "lstm") if HAS_TORCH else ("gbm",):
        _, report = train_forecaster(bars, kind)
        mae = ", ".join(f"{t} {report.mae[t]:.5f} vs {report.naive_mae[t]:.5f}" for t in report.mae)
        print(f"  {kind} held-out MAE (log units) vs last value: {mae}")


def universe(symbols: int = 50, per_symbol: int = 2000, seed: int = 1) -> pl.DataFrame:
    """A generated universe of hourly bars with volatility clusters, for the speed figure."""
    rng = np.random.default_rng(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    end = start + timedelta(hours=per_symbol - 1)
    vol = np.exp(np.cumsum(rng.normal(0, 0.05, (symbols, per_symbol)), axis=1)) * 0.005
    close = 100 * np.exp(np.cumsum(vol * rng.standard_normal((symbols, per_symbol)), axis=1))
    open_ = np.concatenate([np.full((symbols, 1), 100.0), close[:, :-1]], axis=1)
    wick = np.abs(rng.standard_normal((2, symbols, per_symbol))) * vol * 0.6
    frame = pl.DataFrame(
        {
            "ts": pl.concat([pl.datetime_range(start, end, "1h", eager=True, time_zone="UTC")] * symbols),
            "venue": "bench",
            "symbol": np.repeat([f"S{i:02d}" for i in range(symbols)], per_symbol),
            "interval": "1h",
            "open": open_.ravel(),
            "high": (np.maximum(open_, close) * np.exp(wick[0])).ravel(),
            "low": (np.minimum(open_, close) * np.exp(-wick[1])).ravel(),
            "close": close.ravel(),
            "volume": rng.lognormal(5, 0.5, symbols * per_symbol),
        }
    )
    return conform(frame, BAR_SCHEMA)


def report_speed() -> None:
    """Batch bars/s of the default detectors on the generated universe (the LSTM would take minutes)."""
    bars = universe()
    print(f"\nspeed, generated universe: {bars.height} bars, {bars['symbol'].n_unique()} symbols")
    for name in ("isolation_forest", "forecast_gbm"):
        detector = detectors()[name]
        started = time.perf_counter()
        alerts = detector.detect(bars)
        seconds = time.perf_counter() - started
        print(f"  {name:17s} {bars.height / seconds:9,.0f} bars/s ({seconds:.1f}s, {len(alerts)} alerts)")


def main(argv: list[str]) -> None:
    folder = Path(argv[1]) if len(argv) > 1 else OHLCV
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        sys.exit(f"OHLCV data not found: '{folder}' lacks {', '.join(missing)} (pass the ohlcv directory)")
    for name in FILES:
        report_file(folder / name)
    report_speed()


if __name__ == "__main__":
    main(sys.argv)
